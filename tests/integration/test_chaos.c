/* Scale-out under fire: 2 edges (clients and workers spread over both),
 * 3 schedulers, 2 provisioners as on two hosts (own state folder, instance
 * id and pid namespace each), 2 relays and 2 supervisors (one active, one
 * standby each). HODEI_CHAOS_JOBS jobs (default 5,000) go in through both
 * edges while one replica of each kind after another is SIGKILLed and
 * started again, twice round. Every job must end once, SUCCEEDED: none
 * lost, none run twice, none stuck; the workers of an edge that dies must
 * come back on the other one. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/time.h"

#define CHAOS_JOBS_DEFAULT 5000
#define CHAOS_ROUNDS 2

static fleet fl;
static char (*ids)[37];
static int n_jobs;
static atomic_int submitted;
static atomic_bool submit_failed;
static atomic_int submitters_left;
static char ran_file[700];

static const char *const env[] = {
    "HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=5s",
    "HODEI_SUPERVISOR_TICK_INTERVAL=200ms",
    "HODEI_WORKER_RECONNECT_MAX=1s",
    "HODEI_PROVISIONER_RECONCILE_INTERVAL=1s",
    "HODEI_LOG_LEVEL=info",
    NULL,
};

/* Submitters, each with its own channels, take every CHAOS_SUBMITTERS-th
 * job, alternating the edge they try first. */
#define CHAOS_SUBMITTERS 4
static void *submitter(void *arg)
{
    int first = (int)(intptr_t)arg;
    char script[900];
    fleet_client c;
    fleet_client_init(&fl, &c);
    snprintf(script, sizeof script, "sleep 0.05; echo \"$HODEI_JOB_ID\" >> '%s'", ran_file);
    for (int i = first; i < n_jobs && !atomic_load(&submit_failed); i += CHAOS_SUBMITTERS) {
        char key[HODEI_ID_BUF];
        hodei_id_new(key);
        if (!fleet_queue(&fl, &c, i % fl.count[FL_EDGE], script, 3, key, ids[i], 60000)) {
            atomic_store(&submit_failed, true);
            break;
        }
        atomic_fetch_add(&submitted, 1);
    }
    fleet_client_fini(&fl, &c);
    atomic_fetch_sub(&submitters_left, 1);
    return NULL;
}

static int64_t q_i64(PGconn *conn, const char *sql)
{
    PGresult *res = NULL;
    hodei_err err = {0};
    int64_t v = -1;
    if (hodei_db_exec(conn, sql, 0, NULL, &res, &err) == HODEI_OK) {
        v = hodei_db_get_i64(res, 0, 0);
        PQclear(res);
    }
    return v;
}

/* The edge's workers come back on the other one: its stream count reaches
 * every live worker. Returns the ms it took, -1 if it did not. */
static int64_t edge_takeover_ms(PGconn *conn, int other)
{
    int64_t t0 = hodei_mono_ms();
    while (hodei_mono_ms() - t0 < 20000) {
        int64_t live = q_i64(conn, "SELECT count(*) FROM workers WHERE state IN ('READY','BUSY')");
        double held = fleet_metric(&fl, FL_EDGE, other, "hodei_edge_worker_streams");
        if (live > 0 && held >= (double)live)
            return hodei_mono_ms() - t0;
        hodei_sleep_ms(100);
    }
    return -1;
}

/* Kills one replica of kind k (the active one for relays and supervisors),
 * checks what must follow, starts it again. */
static void chaos_one(PGconn *conn, fleet_kind k, int round)
{
    int victim = round % fl.count[k];
    if (k == FL_RELAY || k == FL_SUPERVISOR) {
        const char *gauge = k == FL_RELAY ? "hodei_relay_active" : "hodei_supervisor_active";
        int active = fleet_active(&fl, k, gauge);
        victim = active >= 0 ? active : victim;
        fleet_kill(&fl, k, victim);
        int64_t t0 = hodei_mono_ms();
        while (fleet_active(&fl, k, gauge) < 0 && hodei_mono_ms() - t0 < 15000)
            hodei_sleep_ms(100);
        cr_log_info("%s %d killed; standby active after %lld ms", gauge, victim,
                    (long long)(hodei_mono_ms() - t0));
        cr_expect_geq(fleet_active(&fl, k, gauge), 0, "%s: the standby takes over", gauge);
    } else if (k == FL_EDGE) {
        fleet_kill(&fl, k, victim);
        int64_t ms = edge_takeover_ms(conn, 1 - victim);
        cr_log_info("edge %d killed; its workers on edge %d after %lld ms", victim, 1 - victim,
                    (long long)ms);
        cr_expect_geq(ms, 0, "the workers of the dead edge %d reconnect to edge %d", victim,
                      1 - victim);
    } else {
        fleet_kill(&fl, k, victim);
        hodei_sleep_ms(1000);
    }
    fleet_launch(&fl, k, victim);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* How many jobs' commands completed other than exactly once. */
static int ran_not_once(void)
{
    FILE *f = fopen(ran_file, "r");
    cr_assert(f, "%s", ran_file);
    size_t cap = (size_t)n_jobs * 2 + 16, n = 0;
    char **lines = calloc(cap, sizeof *lines);
    char buf[128];
    while (fgets(buf, sizeof buf, f) && n < cap) {
        buf[strcspn(buf, "\n")] = '\0';
        lines[n++] = strdup(buf);
    }
    fclose(f);
    qsort(lines, n, sizeof *lines, cmp_str);
    int bad = 0;
    for (int i = 0; i < n_jobs; i++) {
        char *key = ids[i];
        char **hit = bsearch(&key, lines, n, sizeof *lines, cmp_str);
        size_t c = 0;
        if (hit) {
            while (hit > lines && strcmp(hit[-1], key) == 0)
                hit--;
            for (; hit < lines + n && strcmp(*hit, key) == 0; hit++)
                c++;
        }
        if (c != 1) {
            if (bad < 10)
                cr_log_error("job %s completed %zu times", key, c);
            bad++;
        }
    }
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    return bad;
}

Test(chaos, jobs_through_two_hosts_while_one_replica_of_each_kind_is_killed_end_once,
     .timeout = 3600)
{
    const char *want = getenv("HODEI_CHAOS_JOBS");
    long asked = want ? strtol(want, NULL, 10) : 0;
    n_jobs = asked > 0 && asked <= 1000000 ? (int)asked : CHAOS_JOBS_DEFAULT;
    ids = calloc((size_t)n_jobs, sizeof *ids);
    const int count[FL_KINDS] = {[FL_EDGE] = 2,
                                 [FL_SCHEDULER] = 3,
                                 [FL_PROVISIONER] = 2,
                                 [FL_RELAY] = 2,
                                 [FL_SUPERVISOR] = 2};
    fleet_start(&fl, count, true, env);
    fleet_provider(&fl, 8, 60000, 4);
    snprintf(ran_file, sizeof ran_file, "%s/ran.txt", fl.stack.state_dir);
    PGconn *conn = NULL;
    hodei_err err = {0};
    cr_assert_eq(hodei_db_connect(fl.stack.db_url, 10000, &conn, &err), HODEI_OK, "%s", err.msg);
    cr_assert(fleet_wait_sql(&fl, 4, 60000,
                             "SELECT count(*) FROM workers WHERE state IN ('READY','BUSY')"),
              "warm workers");

    int64_t t0 = hodei_mono_ms();
    pthread_t sub[CHAOS_SUBMITTERS];
    atomic_store(&submitters_left, CHAOS_SUBMITTERS);
    for (int i = 0; i < CHAOS_SUBMITTERS; i++)
        cr_assert_eq(pthread_create(&sub[i], NULL, submitter, (void *)(intptr_t)i), 0);
    static const fleet_kind kinds[] = {FL_EDGE, FL_SCHEDULER, FL_PROVISIONER, FL_RELAY,
                                       FL_SUPERVISOR};
    /* At least CHAOS_ROUNDS rounds, and on while jobs are still coming. */
    int rounds = 0;
    for (; rounds < CHAOS_ROUNDS || atomic_load(&submitters_left) > 0; rounds++)
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
            hodei_sleep_ms(1500);
            chaos_one(conn, kinds[k], rounds);
        }
    for (int i = 0; i < CHAOS_SUBMITTERS; i++)
        pthread_join(sub[i], NULL);
    cr_assert(!atomic_load(&submit_failed), "every QueueJob was taken by an edge (%d were)",
              atomic_load(&submitted));
    int64_t t_sub = hodei_mono_ms();
    cr_assert(fleet_wait_sql(&fl, n_jobs, 1800000,
                             "SELECT count(*) FROM jobs WHERE state IN"
                             " ('SUCCEEDED','FAILED','CANCELLED','TIMEOUT')"),
              "every job ends, none stuck (%lld of %d did)",
              (long long)fleet_sql(&fl, "SELECT count(*) FROM jobs WHERE state IN"
                                        " ('SUCCEEDED','FAILED','CANCELLED','TIMEOUT')"),
              n_jobs);
    int64_t t_end = hodei_mono_ms();
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM jobs"), n_jobs, "none lost, none extra");
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"), n_jobs,
                 "every job SUCCEEDED (with retries)");
    int twice = ran_not_once();
    cr_expect_eq(twice, 0, "every job's command completed exactly once (%d did not)", twice);
    cr_expect_eq(fleet_sql(&fl, "SELECT count(DISTINCT w.provider_scope) FROM jobs j"
                                " JOIN workers w ON w.id = j.worker_id"),
                 2, "jobs ran on both hosts' workers");
    cr_log_info("chaos: %d jobs in %.1f s (submitted in %.1f s), %d rounds of kills (%d kills);"
                " retried attempts %lld; workers made %lld, LOST %lld",
                n_jobs, (double)(t_end - t0) / 1000, (double)(t_sub - t0) / 1000, rounds,
                rounds * (int)(sizeof kinds / sizeof kinds[0]),
                (long long)fleet_sql(&fl, "SELECT coalesce(sum(attempt - 1), 0) FROM jobs"),
                (long long)fleet_sql(&fl, "SELECT count(*) FROM workers"),
                (long long)fleet_sql(&fl, "SELECT count(*) FROM workers WHERE state = 'LOST'"));
    PQfinish(conn);
    fleet_stop(&fl);
    free(ids);
}
