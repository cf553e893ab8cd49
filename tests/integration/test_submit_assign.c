/* The hand-off at submit (submit.assign): an edge gives a job it queues to
 * an idle worker streaming to it, in the submit transaction, while a
 * scheduler assigns the rest. Two edges, each with its own workers, and a
 * scheduler race for the same workers here, with results not handing off
 * (worker.handoff off) so that the scheduler's passes run all along: no job
 * is ever assigned twice, each runs once, and all three assigned some. A
 * job assigned at submit has no JobQueued event (only JobAssigned). On an
 * idle system, each edge gives the jobs queued to it to its own workers. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet.h"
#include "hodei/id.h"
#include "hodei/time.h"

#define SA_THREADS 4
#define SA_JOBS_PER_THREAD 60
#define SA_JOBS (SA_THREADS * SA_JOBS_PER_THREAD)
#define SA_BURST 6
#define SA_IDLE_JOBS 4 /* per edge, one at a time on an idle system */

static fleet fl;
static char ran_file[700];
static char ids[SA_JOBS][37];

static const char *const env[] = {
    "HODEI_WORKER_HANDOFF=false",
    "HODEI_SUPERVISOR_TICK_INTERVAL=200ms",
    NULL,
};

/* One client: bursts of SA_BURST jobs (more than the idle workers of one
 * edge, so some wait for the scheduler), each burst to the other edge,
 * with short pauses (so workers go idle and the edges assign at submit). */
static void *submitter(void *arg)
{
    int t = (int)(intptr_t)arg;
    char script[900];
    snprintf(script, sizeof script, "echo \"$HODEI_JOB_ID\" >> '%s'", ran_file);
    fleet_client c;
    fleet_client_init(&fl, &c);
    unsigned seed = (unsigned)t * 7919u + 1;
    for (int i = 0; i < SA_JOBS_PER_THREAD; i++) {
        char key[HODEI_ID_BUF];
        hodei_id_new(key);
        int at = (i / SA_BURST + t) % 2;
        if (!fleet_queue(&fl, &c, at, script, 1, key, ids[t * SA_JOBS_PER_THREAD + i], 30000))
            ids[t * SA_JOBS_PER_THREAD + i][0] = '\0';
        if (i % SA_BURST == SA_BURST - 1)
            hodei_sleep_ms(50 + (int64_t)(rand_r(&seed) % 250));
    }
    fleet_client_fini(&fl, &c);
    return NULL;
}

Test(submit_assign, two_edges_and_a_scheduler_never_assign_a_job_twice, .timeout = 600)
{
    const int count[FL_KINDS] = {[FL_EDGE] = 2,
                                 [FL_SCHEDULER] = 1,
                                 [FL_PROVISIONER] = 1,
                                 [FL_RELAY] = 1,
                                 [FL_SUPERVISOR] = 1};
    fleet_start(&fl, count, false, env);
    snprintf(ran_file, sizeof ran_file, "%s/ran.txt", fl.stack.state_dir);
    fleet_provider(&fl, 8, 600000, 8);
    cr_assert(fleet_wait_sql(&fl, 8, 90000, "SELECT count(*) FROM workers WHERE state = 'READY'"),
              "8 warm workers");
    /* Both edges hold some of them (workers spread over the edges given). */
    for (int i = 0; i < 2; i++) {
        int64_t until = hodei_mono_ms() + 30000;
        while (fleet_metric(&fl, FL_EDGE, i, "hodei_edge_worker_streams") < 1 &&
               hodei_mono_ms() < until)
            hodei_sleep_ms(100);
        cr_assert_geq(fleet_metric(&fl, FL_EDGE, i, "hodei_edge_worker_streams"), 1,
                      "edge %d holds a worker stream", i);
    }

    /* Idle: one job at a time on each edge goes to a worker of that edge at
     * submit. */
    char script[900], id[37];
    snprintf(script, sizeof script, "echo \"$HODEI_JOB_ID\" >> '%s.idle'", ran_file);
    fleet_client c;
    fleet_client_init(&fl, &c);
    for (int k = 0; k < 2 * SA_IDLE_JOBS; k++) {
        char key[HODEI_ID_BUF];
        hodei_id_new(key);
        cr_assert(fleet_queue(&fl, &c, k % 2, script, 1, key, id, 30000), "idle QueueJob %d", k);
        cr_assert(fleet_wait_sql(&fl, k + 1, 60000,
                                 "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"),
                  "idle job %d succeeds", k);
    }
    fleet_client_fini(&fl, &c);
    double idle_at_submit[2];
    for (int i = 0; i < 2; i++) {
        idle_at_submit[i] = fleet_metric(&fl, FL_EDGE, i, "hodei_edge_submit_assigned_total");
        cr_expect_geq(idle_at_submit[i], SA_IDLE_JOBS - 1,
                      "edge %d gave its idle jobs to its own workers at submit (%.0f of %d)", i,
                      idle_at_submit[i], SA_IDLE_JOBS);
    }

    /* Busy: bursts to both edges at once. */
    pthread_t th[SA_THREADS];
    for (int t = 0; t < SA_THREADS; t++)
        cr_assert_eq(pthread_create(&th[t], NULL, submitter, (void *)(intptr_t)t), 0);
    for (int t = 0; t < SA_THREADS; t++)
        pthread_join(th[t], NULL);
    for (int i = 0; i < SA_JOBS; i++)
        cr_assert(ids[i][0], "QueueJob %d answered", i);

    cr_assert(fleet_wait_sql(&fl, SA_JOBS + 2 * SA_IDLE_JOBS, 180000,
                             "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"),
              "every job succeeds (%lld did)",
              (long long)fleet_sql(&fl, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"));
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM jobs WHERE epoch <> 1 OR attempt <> 1"), 0,
                 "every job was assigned once: epoch 1, attempt 1");
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM (SELECT aggregate_id FROM outbox"
                                " WHERE event_type = 'JobAssigned' GROUP BY aggregate_id"
                                " HAVING count(*) <> 1) x"),
                 0, "one JobAssigned per job");
    for (int i = 0; i < SA_JOBS; i++)
        cr_expect_eq(harness_file_count_lines(ran_file, ids[i]), 1, "job %s ran once", ids[i]);

    double at_submit[2];
    for (int i = 0; i < 2; i++)
        at_submit[i] = fleet_metric(&fl, FL_EDGE, i, "hodei_edge_submit_assigned_total");
    cr_expect_gt(at_submit[0] + at_submit[1] - idle_at_submit[0] - idle_at_submit[1], 0,
                 "the edges assigned jobs at submit while busy too");
    /* A job given to a worker at submit has no JobQueued; every other one has. */
    cr_expect_eq(
        fleet_sql(&fl, "SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM outbox o"
                       " WHERE o.aggregate_id = j.id::text AND o.event_type = 'JobQueued')"),
        (int64_t)(at_submit[0] + at_submit[1]), "JobQueued only for jobs left to the scheduler");
    cr_expect_gt(SA_JOBS + 2 * SA_IDLE_JOBS - at_submit[0] - at_submit[1], 0,
                 "the scheduler assigned the others (%.0f + %.0f at submit of %d)", at_submit[0],
                 at_submit[1], SA_JOBS + 2 * SA_IDLE_JOBS);
    fleet_stop(&fl);
}
