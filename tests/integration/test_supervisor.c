/* hodei-supervisor as a real child process against a private PostgreSQL
 * (tests/harness). Rows are set up by SQL as the other services would leave
 * them; the effects are read back from the jobs, workers and outbox tables
 * (the outbox rows are what the relay would publish). */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "hodei/v1/events.pb-c.h"

#define T_SUPS_MAX 4
#define T_WAIT_MS 20000    /* generous: ASan build, 2 cores */
#define T_QUIET_MS 1500    /* ~15 ticks: long enough to see a wrong extra action */
#define T_TAKEOVER_MS 5000 /* a standby must take over within this */
#define T_EVENTS_MAX 16
#define T_PAYLOAD_MAX 4096
#define T_TEXT_MAX 256
#define T_PARAMS_MAX 12
#define T_HOUR_MS "3600000"
#define T_SUBJ_CANCEL "hodei.evt.job.cancel."

/* Fast settings: ticks of 100 ms and short timeouts. A test that must not
 * trip one check keeps its rows far from that check's threshold. */
static const char *const t_env_fast[] = {
    "HODEI_SUPERVISOR_TICK_INTERVAL=100ms",
    "HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=1s",
    "HODEI_SUPERVISOR_TIMEOUT_GRACE=1s",
    "HODEI_SUPERVISOR_ASSIGN_TIMEOUT=2s",
    "HODEI_SUPERVISOR_REGISTRATION_TIMEOUT=30s",
    "HODEI_SUPERVISOR_LOST_RETRY_DELAY=3s",
    NULL,
};
#define T_LOST_RETRY_DELAY_MS 3000

static harness_stack g_st;
static harness_proc g_sups[T_SUPS_MAX];
static int g_n_sups;
static PGconn *g_conn;

static void setup(void)
{
    hodei_err err = {0};
    harness_stack_start(&g_st);
    cr_assert_eq(hodei_db_connect(g_st.db_url, 5000, &g_conn, &err), HODEI_OK, "%s", err.msg);
}

static void teardown(void)
{
    for (int i = 0; i < g_n_sups; i++)
        if (harness_proc_alive(&g_sups[i]))
            harness_proc_stop(&g_sups[i], SIGKILL, 5000);
    g_n_sups = 0;
    PQfinish(g_conn);
    g_conn = NULL;
    harness_stack_stop(&g_st);
}

/* Each case its own database and an emptied NATS of one stack (tests/harness). */
HARNESS_SHARED_SERVERS()

TestSuite(supervisor, .init = setup, .fini = teardown, .timeout = 180);

/* ---- SQL with parameters ---- */

#define T_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define T_NOARGS ((const char *const[]){NULL})
#define T_NONE ((const char *const[]){NULL})

static int t_nparams(const char *const *p)
{
    int n = 0;
    while (p[n])
        n++;
    cr_assert(n <= T_PARAMS_MAX);
    return n;
}

static PGresult *t_query(const char *sql, const char *const *p)
{
    hodei_err err = {0};
    PGresult *res = NULL;
    cr_assert_eq(hodei_db_exec(g_conn, sql, t_nparams(p), p, &res, &err), HODEI_OK, "%s: %s", sql,
                 err.msg);
    return res;
}

static void t_exec(const char *sql, const char *const *p)
{
    PQclear(t_query(sql, p));
}

/* The first cell as an int64 (NULL or no row: -1). */
static int64_t t_i64(const char *sql, const char *const *p)
{
    PGresult *res = t_query(sql, p);
    int64_t v = PQntuples(res) && !hodei_db_is_null(res, 0, 0) ? hodei_db_get_i64(res, 0, 0) : -1;
    PQclear(res);
    return v;
}

static void t_str(const char *sql, const char *const *p, char *out, size_t out_len)
{
    PGresult *res = t_query(sql, p);
    snprintf(out, out_len, "%s", PQntuples(res) ? hodei_db_get_str(res, 0, 0) : "");
    PQclear(res);
}

static bool t_wait_i64(int64_t want, int64_t timeout_ms, const char *sql, const char *const *p)
{
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    do {
        if (t_i64(sql, p) == want)
            return true;
        hodei_sleep_ms(50);
    } while (hodei_mono_ms() < deadline);
    return false;
}

static void t_wait_str(const char *want, const char *sql, const char *const *p)
{
    char got[T_TEXT_MAX] = "";
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    do {
        t_str(sql, p, got, sizeof got);
        if (strcmp(got, want) == 0)
            return;
        hodei_sleep_ms(50);
    } while (hodei_mono_ms() < deadline);
    cr_assert_str_eq(got, want, "waited %d ms for %s", T_WAIT_MS, sql);
}

/* ---- rows as the other services leave them ---- */

static void t_provider(const char *name, int warm_min, int warm_max, int64_t idle_ttl_ms,
                       int max_workers, bool enabled)
{
    char wmin[16], wmax[16], ttl[24], maxw[16];
    snprintf(wmin, sizeof wmin, "%d", warm_min);
    snprintf(wmax, sizeof wmax, "%d", warm_max);
    snprintf(ttl, sizeof ttl, "%" PRId64, idle_ttl_ms);
    snprintf(maxw, sizeof maxw, "%d", max_workers);
    t_exec("INSERT INTO providers (name, type, warm_pool_min, warm_pool_max, idle_ttl_ms,"
           " max_workers, enabled, worker_cpu_millis, worker_memory_bytes, worker_architecture)"
           " VALUES ($1, 'process', $2::int, $3::int, $4::bigint, $5::int, $6::bool, 1500,"
           " 1073741824, 'amd64')",
           T_ARGS(name, wmin, wmax, ttl, maxw, enabled ? "t" : "f"));
}

/* Ages in ms before now(); negative = in the future (a worker that keeps
 * heartbeating for the whole test); NULL = SQL NULL. */
static void t_worker(char id[HODEI_ID_BUF], const char *provider, const char *state,
                     const char *created_age_ms, const char *heartbeat_age_ms,
                     const char *idle_age_ms)
{
    hodei_id_new(id);
    const char *p[] = {id, provider, state, created_age_ms, heartbeat_age_ms, idle_age_ms, NULL};
    hodei_err err = {0};
    cr_assert_eq(hodei_db_exec(g_conn,
                               "INSERT INTO workers (id, provider, state, created_at, updated_at,"
                               " last_heartbeat_at, idle_since) VALUES ($1, $2, $3,"
                               " now() - $4::bigint * interval '1 millisecond',"
                               " now() - $4::bigint * interval '1 millisecond',"
                               " now() - $5::bigint * interval '1 millisecond',"
                               " now() - $6::bigint * interval '1 millisecond')",
                               6, p, NULL, &err),
                 HODEI_OK, "%s", err.msg);
}

typedef struct {
    const char *state;
    const char *worker_id; /* NULL = none */
    const char *attempt, *max_attempts, *epoch;
    const char *timeout_ms;
    const char *started_age_ms; /* NULL = not started */
    const char *updated_age_ms;
} t_job_row;

static void t_job(char id[HODEI_ID_BUF], const t_job_row *j)
{
    hodei_id_new(id);
    const char *p[] = {
        id,       j->state,      j->worker_id,      j->attempt,       j->max_attempts,
        j->epoch, j->timeout_ms, j->started_age_ms, j->updated_age_ms};
    hodei_err err = {0};
    cr_assert_eq(
        hodei_db_exec(g_conn,
                      "INSERT INTO jobs (id, state, spec, worker_id, attempt, max_attempts,"
                      " epoch, timeout_ms, started_at, updated_at) VALUES ($1, $2,"
                      " '\\x0a00'::bytea, $3, $4::int, $5::int, $6::bigint, $7::bigint,"
                      " now() - $8::bigint * interval '1 millisecond',"
                      " now() - $9::bigint * interval '1 millisecond')",
                      9, p, NULL, &err),
        HODEI_OK, "%s", err.msg);
}

static int64_t t_outbox_count(const char *event_type, const char *aggregate_id)
{
    return t_i64("SELECT count(*) FROM outbox WHERE event_type = $1 AND aggregate_id = $2",
                 T_ARGS(event_type, aggregate_id));
}

/* The events of one type (oldest first), unpacked; caller frees each. */
static int t_events(const char *event_type, Hodei__V1__Event **out, int max)
{
    PGresult *res = t_query("SELECT encode(payload, 'hex') FROM outbox WHERE event_type = $1"
                            " ORDER BY id",
                            T_ARGS(event_type));
    int n = PQntuples(res);
    cr_assert(n <= max, "%d %s events, at most %d expected", n, event_type, max);
    for (int i = 0; i < n; i++) {
        uint8_t raw[T_PAYLOAD_MAX];
        const char *hex = hodei_db_get_str(res, i, 0);
        long len = hodei_hex_decode(hex, strlen(hex), raw, sizeof raw);
        cr_assert(len >= 0);
        out[i] = hodei__v1__event__unpack(NULL, (size_t)len, raw);
        cr_assert_not_null(out[i], "%s event %d unpacks", event_type, i);
    }
    PQclear(res);
    return n;
}

static void t_events_free(Hodei__V1__Event **evs, int n)
{
    for (int i = 0; i < n; i++)
        hodei__v1__event__free_unpacked(evs[i], NULL);
}

/* ---- the supervisor process ---- */

static harness_proc *sup_start(const char *const *extra_env)
{
    const char *argv[] = {"hodei-supervisor", NULL};
    const char *env[T_PARAMS_MAX * 2];
    int n = 0;
    for (int i = 0; t_env_fast[i]; i++)
        env[n++] = t_env_fast[i];
    for (int i = 0; extra_env && extra_env[i]; i++) {
        cr_assert(n < (int)(sizeof env / sizeof env[0]) - 1);
        env[n++] = extra_env[i];
    }
    env[n] = NULL;
    cr_assert(g_n_sups < T_SUPS_MAX);
    harness_proc *p = &g_sups[g_n_sups++];
    harness_proc_start(&g_st, p, argv, env);
    return p;
}

static harness_proc *sup_start_active(const char *const *extra_env)
{
    harness_proc *p = sup_start(extra_env);
    cr_assert(harness_log_contains(p, "active:", T_WAIT_MS), "supervisor became active (log %s)",
              p->log_path);
    return p;
}

/* SIGTERM: exit 0, which under ASan also means no leak was reported. */
static void sup_stop_clean(harness_proc *p)
{
    int ws = harness_proc_stop(p, SIGTERM, 30000);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
              "supervisor exits 0 on SIGTERM, got status 0x%x (log %s)", ws, p->log_path);
}

#define T_WORKER_STATE_SQL "SELECT state FROM workers WHERE id = $1"

/* ---- lost workers ---- */

Test(supervisor, lost_worker_requeues_its_job)
{
    char w[HODEI_ID_BUF], fresh[HODEI_ID_BUF], j[HODEI_ID_BUF];
    t_worker(w, "p1", "BUSY", "600000", "60000", NULL);
    t_worker(fresh, "p1", "READY", "600000", "-3600000", "0");
    t_job(j, &(t_job_row){.state = "RUNNING",
                          .worker_id = w,
                          .attempt = "1",
                          .max_attempts = "2",
                          .epoch = "3",
                          .timeout_ms = T_HOUR_MS,
                          .started_age_ms = "10000",
                          .updated_age_ms = "10000"});
    harness_proc *p = sup_start_active(NULL);

    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w));
    char state[T_TEXT_MAX];
    /* The wait is measured from the re-queue's own transaction (not from
     * now), so a slow machine cannot make it look already spent: the longer
     * of attempt 1's backoff and supervisor.lost_retry_delay, in which a
     * worker that was only slow may still report its success. */
    char backoff[24];
    snprintf(backoff, sizeof backoff, "%d",
             T_LOST_RETRY_DELAY_MS > HODEI_RETRY_BACKOFF_BASE_MS ? T_LOST_RETRY_DELAY_MS
                                                                 : HODEI_RETRY_BACKOFF_BASE_MS);
    t_str("SELECT state || ' ' || coalesce(worker_id::text, '-') || ' ' || attempt"
          " || ' ' || (not_before = updated_at + $2::bigint * interval '1 millisecond')::text"
          " FROM jobs WHERE id = $1",
          T_ARGS(j, backoff), state, sizeof state);
    cr_assert_str_eq(state, "PENDING - 1 true", "re-queued with a backoff: %s", state);
    cr_assert_eq(t_outbox_count("JobQueued", j), 1);
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w), 1);
    cr_assert_eq(t_outbox_count("JobFinished", j), 0);

    Hodei__V1__Event *evs[T_EVENTS_MAX];
    int n = t_events("WorkerDestroyRequested", evs, T_EVENTS_MAX);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(evs[0]->worker_destroy_requested->worker_id, w);
    cr_assert_str_eq(evs[0]->worker_destroy_requested->provider, "p1");
    cr_assert_str_eq(evs[0]->worker_destroy_requested->reason, "worker lost");
    t_events_free(evs, n);

    char line[T_TEXT_MAX];
    snprintf(line, sizeof line, "worker lost: worker=%s", w);
    cr_assert(harness_log_contains(p, line, T_WAIT_MS), "one line names the worker (%s)",
              p->log_path);
    hodei_sleep_ms(T_QUIET_MS);
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w), 1, "no second destroy request");
    t_wait_str("READY", T_WORKER_STATE_SQL, T_ARGS(fresh));
    sup_stop_clean(p);
}

/* Each worker is judged in a transaction of its own, so a heartbeat never
 * waits for the judgement of another worker. The test holds the outbox
 * (SHARE lock) so the tick stops inside the first silent worker's
 * judgement (its WorkerDestroyRequested); meanwhile the second silent
 * worker's heartbeat (the edge's UPDATE of its row) goes through at once
 * (it waited for the whole tick when the check locked its batch up front),
 * and once it beat it is not taken for lost. */
Test(supervisor, a_heartbeat_is_not_held_up_by_the_judgement_of_another_worker)
{
    char first[HODEI_ID_BUF], second[HODEI_ID_BUF];
    t_worker(first, "p1", "READY", "600000", "60000", "0");
    t_worker(second, "p1", "READY", "600000", "50000", "0"); /* judged after first */
    PGconn *holder = NULL;
    hodei_err err = {0};
    cr_assert_eq(hodei_db_connect(g_st.db_url, 5000, &holder, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_db_exec(holder, "BEGIN", 0, NULL, NULL, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_db_exec(holder, "LOCK TABLE outbox IN SHARE MODE", 0, NULL, NULL, &err),
                 HODEI_OK, "%s", err.msg);
    harness_proc *p = sup_start_active(NULL);
    cr_assert(t_wait_i64(1, T_WAIT_MS,
                         "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                         " WHERE c.relname = 'outbox' AND NOT l.granted",
                         T_NOARGS),
              "the tick never reached the first worker's event");

    t_exec("SET lock_timeout = '1s'", T_NOARGS);
    int64_t t0 = hodei_mono_ms();
    PGresult *res = NULL;
    const char *id[] = {second};
    /* it beats "for the whole test" (the timeout is 1 s here) */
    hodei_status st = hodei_db_exec(g_conn,
                                    "UPDATE workers SET last_heartbeat_at = now() + interval '1 h'"
                                    " WHERE id = $1",
                                    1, id, &res, &err);
    int64_t beat_ms = hodei_mono_ms() - t0;
    PQclear(res);
    t_exec("RESET lock_timeout", T_NOARGS);
    cr_assert_eq(st, HODEI_OK, "the heartbeat waited for the tick: %s", err.msg);
    cr_assert(beat_ms < 1000, "the heartbeat took %" PRId64 " ms", beat_ms);

    cr_assert_eq(hodei_db_exec(holder, "COMMIT", 0, NULL, NULL, &err), HODEI_OK, "%s", err.msg);
    PQfinish(holder);
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(first));
    hodei_sleep_ms(T_QUIET_MS);
    char state[T_TEXT_MAX];
    t_str(T_WORKER_STATE_SQL, T_ARGS(second), state, sizeof state);
    cr_assert_str_eq(state, "READY", "a worker that beat was taken for lost");
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", second), 0);
    sup_stop_clean(p);
}

/* Silence counts against a worker only while an edge was there to hear it:
 * an edge seen within half the heartbeat timeout (1 s here) and up for all
 * of it. Times in the future keep a row fresh for the whole test. */
Test(supervisor, a_silent_worker_is_lost_only_once_an_edge_has_been_up_for_the_timeout)
{
    char w[HODEI_ID_BUF], j[HODEI_ID_BUF];
    t_worker(w, "p1", "BUSY", "600000", "60000", NULL);
    t_job(j, &(t_job_row){.state = "RUNNING",
                          .worker_id = w,
                          .attempt = "1",
                          .max_attempts = "2",
                          .epoch = "3",
                          .timeout_ms = T_HOUR_MS,
                          .started_age_ms = "10000",
                          .updated_age_ms = "10000"});
    /* an edge gone a minute ago */
    t_exec("INSERT INTO edges (instance, up_since, seen_at)"
           " VALUES ('gone', now() - interval '1 hour', now() - interval '1 minute')",
           T_NOARGS);
    harness_proc *p = sup_start_active(NULL);
    cr_assert(
        harness_log_contains(p, "lost-worker check waits until an edge has been up", T_WAIT_MS),
        "the held check is logged (%s)", p->log_path);
    hodei_sleep_ms(T_QUIET_MS);
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE id = $1 AND state = 'BUSY'", T_ARGS(w)),
                 1, "not LOST while no edge is there");

    /* an edge seen now, but not up for a whole timeout yet */
    t_exec("INSERT INTO edges (instance, up_since, seen_at)"
           " VALUES ('new', now() + interval '1 hour', now() + interval '1 hour')",
           T_NOARGS);
    hodei_sleep_ms(T_QUIET_MS);
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE id = $1 AND state = 'BUSY'", T_ARGS(w)),
                 1, "not LOST while the edge has been up for less than the timeout");
    cr_assert_eq(t_i64("SELECT count(*) FROM jobs WHERE id = $1 AND state = 'RUNNING'", T_ARGS(j)),
                 1);

    t_exec("UPDATE edges SET up_since = now() - interval '1 minute' WHERE instance = 'new'",
           T_NOARGS);
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w));
    t_wait_str("PENDING", "SELECT state FROM jobs WHERE id = $1", T_ARGS(j));
    cr_assert(harness_log_contains(p, "lost-worker check running", T_WAIT_MS), "(%s)", p->log_path);
    sup_stop_clean(p);
}

/* The edge died shortly after the worker's last heartbeat was recorded:
 * measured to now the worker is silent past the timeout, but only part of
 * that silence fell while the edge was up, so it is not LOST; once an edge
 * has heard nothing from it for a whole timeout, it is. */
Test(supervisor, a_worker_is_not_blamed_for_silence_after_its_edge_died)
{
    char w[HODEI_ID_BUF];
    const char *const env[] = {"HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=20s", NULL};
    t_worker(w, "p1", "BUSY", "600000", "21000", NULL);
    /* up for an hour, last seen 6 s ago: 15 s of the worker's silence were heard */
    t_exec("INSERT INTO edges (instance, up_since, seen_at)"
           " VALUES ('e1', now() - interval '1 hour', now() - interval '6 seconds')",
           T_NOARGS);
    harness_proc *p = sup_start_active(env);
    cr_assert(harness_log_contains(p, "lost-worker check running", T_WAIT_MS), "(%s)", p->log_path);
    hodei_sleep_ms(T_QUIET_MS);
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE id = $1 AND state = 'BUSY'", T_ARGS(w)),
                 1, "not LOST for the time after its edge's last sighting");

    t_exec("UPDATE edges SET seen_at = now() WHERE instance = 'e1'", T_NOARGS);
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w));
    sup_stop_clean(p);
}

Test(supervisor, lost_worker_with_attempts_spent_fails_the_job)
{
    char w[HODEI_ID_BUF], j[HODEI_ID_BUF];
    t_worker(w, "p1", "BUSY", "600000", "60000", NULL);
    t_job(j, &(t_job_row){.state = "RUNNING",
                          .worker_id = w,
                          .attempt = "2",
                          .max_attempts = "2",
                          .epoch = "7",
                          .timeout_ms = T_HOUR_MS,
                          .started_age_ms = "10000",
                          .updated_age_ms = "10000"});
    harness_proc *p = sup_start_active(NULL);

    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w));
    char state[T_TEXT_MAX];
    t_str("SELECT state || ' ' || coalesce(error, '-') || ' ' || (finished_at IS NOT NULL)::text"
          " FROM jobs WHERE id = $1",
          T_ARGS(j), state, sizeof state);
    cr_assert_str_eq(state, "FAILED worker lost true");
    cr_assert_eq(t_outbox_count("JobFinished", j), 1);
    cr_assert_eq(t_outbox_count("JobQueued", j), 0);
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w), 1);
    sup_stop_clean(p);
}

Test(supervisor, orphaned_job_on_a_terminated_worker_is_requeued)
{
    char w[HODEI_ID_BUF], j[HODEI_ID_BUF];
    t_worker(w, "p1", "TERMINATED", "600000", "60000", NULL);
    t_job(j, &(t_job_row){.state = "RUNNING",
                          .worker_id = w,
                          .attempt = "1",
                          .max_attempts = "3",
                          .epoch = "1",
                          .timeout_ms = T_HOUR_MS,
                          .started_age_ms = "1000",
                          .updated_age_ms = "1000"});
    harness_proc *p = sup_start_active(NULL);

    t_wait_str("PENDING", "SELECT state FROM jobs WHERE id = $1", T_ARGS(j));
    cr_assert_eq(t_outbox_count("JobQueued", j), 1);
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w), 0, "it is already gone");
    sup_stop_clean(p);
}

/* ---- job timeouts ---- */

Test(supervisor, running_job_past_its_timeout_ends_timeout_and_is_cancelled)
{
    char w[HODEI_ID_BUF], j[HODEI_ID_BUF], ok[HODEI_ID_BUF], w2[HODEI_ID_BUF];
    t_worker(w, "p1", "BUSY", "600000", "-3600000", NULL);
    t_worker(w2, "p1", "BUSY", "600000", "-3600000", NULL);
    t_job(j, &(t_job_row){.state = "RUNNING",
                          .worker_id = w,
                          .attempt = "1",
                          .max_attempts = "1",
                          .epoch = "5",
                          .timeout_ms = "1000",
                          .started_age_ms = "30000",
                          .updated_age_ms = "30000"});
    t_job(ok, &(t_job_row){.state = "RUNNING",
                           .worker_id = w2,
                           .attempt = "1",
                           .max_attempts = "1",
                           .epoch = "1",
                           .timeout_ms = T_HOUR_MS,
                           .started_age_ms = "30000",
                           .updated_age_ms = "30000"});
    harness_proc *p = sup_start_active(NULL);

    t_wait_str("TIMEOUT", "SELECT state FROM jobs WHERE id = $1", T_ARGS(j));
    char subject[T_TEXT_MAX], want[T_TEXT_MAX];
    snprintf(want, sizeof want, T_SUBJ_CANCEL "%s", w);
    t_str("SELECT subject FROM outbox WHERE event_type = 'JobCancelRequested'"
          " AND aggregate_id = $1",
          T_ARGS(j), subject, sizeof subject);
    cr_assert_str_eq(subject, want);
    Hodei__V1__Event *evs[T_EVENTS_MAX];
    int n = t_events("JobCancelRequested", evs, T_EVENTS_MAX);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(evs[0]->job_cancel_requested->job_id, j);
    cr_assert_str_eq(evs[0]->job_cancel_requested->worker_id, w);
    cr_assert_eq(evs[0]->job_cancel_requested->epoch, 5);
    t_events_free(evs, n);
    cr_assert_eq(t_outbox_count("JobFinished", j), 1);
    char err[T_TEXT_MAX];
    t_str("SELECT coalesce(error, '') FROM jobs WHERE id = $1", T_ARGS(j), err, sizeof err);
    cr_assert(strstr(err, "timed out") != NULL, "error says why: %s", err);

    hodei_sleep_ms(T_QUIET_MS);
    t_wait_str("BUSY", T_WORKER_STATE_SQL, T_ARGS(w)); /* still killing it */
    t_wait_str("RUNNING", "SELECT state FROM jobs WHERE id = $1", T_ARGS(ok));
    cr_assert_eq(
        t_i64("SELECT count(*) FROM outbox WHERE event_type = 'JobCancelRequested'", T_NONE), 1);
    sup_stop_clean(p);
}

Test(supervisor, unacknowledged_assignment_is_requeued_and_its_worker_lost)
{
    char w[HODEI_ID_BUF], j[HODEI_ID_BUF];
    t_worker(w, "p1", "BUSY", "600000", "-3600000", NULL);
    t_job(j, &(t_job_row){.state = "ASSIGNED",
                          .worker_id = w,
                          .attempt = "1",
                          .max_attempts = "2",
                          .epoch = "1",
                          .timeout_ms = T_HOUR_MS,
                          .started_age_ms = NULL,
                          .updated_age_ms = "60000"});
    harness_proc *p = sup_start_active(NULL);

    t_wait_str("PENDING", "SELECT state FROM jobs WHERE id = $1", T_ARGS(j));
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w));
    char err[T_TEXT_MAX];
    t_str("SELECT coalesce(error, '') FROM jobs WHERE id = $1", T_ARGS(j), err, sizeof err);
    cr_assert_str_eq(err, "not acknowledged");
    cr_assert_eq(t_outbox_count("JobQueued", j), 1);
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w), 1);
    sup_stop_clean(p);
}

/* ---- registration, idle TTL, warm pool ---- */

Test(supervisor, unregistered_worker_past_the_timeout_is_destroyed)
{
    char old[HODEI_ID_BUF], young[HODEI_ID_BUF];
    t_worker(old, "p1", "CONNECTING", "600000", NULL, NULL);
    t_worker(young, "p1", "CREATING", "0", NULL, NULL);
    harness_proc *p = sup_start_active(NULL);

    t_wait_str("TERMINATING", T_WORKER_STATE_SQL, T_ARGS(old));
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", old), 1);
    Hodei__V1__Event *evs[T_EVENTS_MAX];
    int n = t_events("WorkerDestroyRequested", evs, T_EVENTS_MAX);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(evs[0]->worker_destroy_requested->reason, "registration timeout");
    t_events_free(evs, n);
    hodei_sleep_ms(T_QUIET_MS);
    t_wait_str("CREATING", T_WORKER_STATE_SQL, T_ARGS(young));
    sup_stop_clean(p);
}

Test(supervisor, idle_workers_past_ttl_are_drained_down_to_the_warm_pool_min)
{
    char w_oldest[HODEI_ID_BUF], w_old[HODEI_ID_BUF], w_young[HODEI_ID_BUF];
    char w_busy[HODEI_ID_BUF], w_other[HODEI_ID_BUF];
    t_provider("p1", 2, 4, 1000, 0, true);
    t_provider("keep", 0, 0, 0, 0, true); /* idle_ttl_ms 0: never drained */
    t_worker(w_oldest, "p1", "READY", "900000", "-3600000", "600000");
    t_worker(w_old, "p1", "READY", "900000", "-3600000", "300000");
    t_worker(w_young, "p1", "READY", "900000", "-3600000", "60000");
    t_worker(w_busy, "p1", "BUSY", "900000", "-3600000", NULL);
    t_worker(w_other, "keep", "READY", "900000", "-3600000", "600000");
    harness_proc *p = sup_start_active(NULL);

    /* live 4, warm_pool_min 2: the two oldest idle go, the youngest stays */
    t_wait_str("TERMINATING", T_WORKER_STATE_SQL, T_ARGS(w_oldest));
    t_wait_str("TERMINATING", T_WORKER_STATE_SQL, T_ARGS(w_old));
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w_oldest), 1);
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w_old), 1);
    hodei_sleep_ms(T_QUIET_MS);
    t_wait_str("READY", T_WORKER_STATE_SQL, T_ARGS(w_young));
    t_wait_str("READY", T_WORKER_STATE_SQL, T_ARGS(w_other));
    cr_assert_eq(
        t_i64("SELECT count(*) FROM outbox WHERE event_type = 'WorkerDestroyRequested'", T_NONE), 2,
        "never below warm_pool_min");
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE state = 'CREATING'", T_NONE), 0);
    char line[T_TEXT_MAX];
    snprintf(line, sizeof line, "idle ttl: worker=%s", w_oldest);
    cr_assert(harness_log_contains(p, line, T_WAIT_MS));
    sup_stop_clean(p);
}

Test(supervisor, warm_pool_creates_exactly_the_missing_workers)
{
    t_provider("wp", 2, 4, 300000, 0, true);
    t_provider("capped", 3, 3, 300000, 1, true); /* max_workers 1 binds first */
    t_provider("off", 2, 2, 300000, 0, false);   /* disabled: left alone */
    harness_proc *p = sup_start_active(NULL);

    cr_assert(t_wait_i64(2, T_WAIT_MS,
                         "SELECT count(*) FROM workers WHERE provider = 'wp' AND state = 'CREATING'"
                         " AND cpu_millis = 1500 AND memory_bytes = 1073741824"
                         " AND architecture = 'amd64'",
                         T_NONE));
    cr_assert(
        t_wait_i64(1, T_WAIT_MS, "SELECT count(*) FROM workers WHERE provider = 'capped'", T_NONE));
    hodei_sleep_ms(T_QUIET_MS);
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE provider = 'wp'", T_NONE), 2,
                 "not more on later ticks");
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE provider = 'capped'", T_NONE), 1);
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE provider = 'off'", T_NONE), 0);

    Hodei__V1__Event *evs[T_EVENTS_MAX];
    int n = t_events("ProvisionRequested", evs, T_EVENTS_MAX);
    cr_assert_eq(n, 3, "one ProvisionRequested per new worker");
    int wp = 0;
    for (int i = 0; i < n; i++) {
        Hodei__V1__ProvisionRequested *pr = evs[i]->provision_requested;
        cr_assert_not_null(pr);
        cr_assert_str_eq(pr->request_id, pr->worker_id);
        cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE id = $1::uuid"
                           " AND provider = $2 AND state = 'CREATING'",
                           T_ARGS(pr->worker_id, pr->provider)),
                     1, "event %d names a CREATING row of its provider", i);
        cr_assert_not_null(pr->resources);
        cr_assert_float_eq(pr->resources->cpu_cores, 1.5, 1e-9);
        cr_assert_eq(pr->resources->memory_bytes, 1073741824);
        wp += strcmp(pr->provider, "wp") == 0;
    }
    cr_assert_eq(wp, 2);
    t_events_free(evs, n);
    cr_assert_eq(
        t_i64("SELECT count(*) FROM outbox WHERE subject = 'hodei.evt.provision.requested'",
              T_NONE),
        3);
    sup_stop_clean(p);
}

/* ---- one active supervisor ---- */

Test(supervisor, one_active_and_a_standby_takes_over_after_sigkill)
{
    char w1[HODEI_ID_BUF], w2[HODEI_ID_BUF];
    harness_proc *a = sup_start_active(NULL);
    harness_proc *b = sup_start(NULL);
    cr_assert(harness_log_contains(b, "standby:", T_WAIT_MS), "second is standby (%s)",
              b->log_path);

    t_worker(w1, "p1", "READY", "600000", "60000", "60000");
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w1));
    char line[T_TEXT_MAX];
    snprintf(line, sizeof line, "worker lost: worker=%s", w1);
    cr_assert(harness_log_contains(a, line, T_WAIT_MS));
    cr_assert(!harness_log_contains(b, "worker lost:", 0), "the standby did nothing");
    cr_assert(!harness_log_contains(b, "active:", 0));

    cr_assert_eq(harness_proc_stop(a, SIGKILL, 5000) != -1, true);
    int64_t t0 = hodei_mono_ms();
    cr_assert(harness_log_contains(b, "active:", T_TAKEOVER_MS), "standby took over (%s)",
              b->log_path);
    int64_t took = hodei_mono_ms() - t0;
    cr_assert(took <= T_TAKEOVER_MS, "takeover took %" PRId64 " ms", took);
    t_worker(w2, "p1", "BUSY", "600000", "60000", NULL);
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w2));
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w1), 1);
    cr_assert_eq(t_outbox_count("WorkerDestroyRequested", w2), 1);
    sup_stop_clean(b);
}

Test(supervisor, lost_connection_is_lost_leadership_then_regained)
{
    harness_proc *p = sup_start_active(NULL);
    cr_assert_eq(t_i64("SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                       " WHERE locktype = 'advisory' AND granted",
                       T_NONE),
                 1, "the active supervisor holds one advisory lock");
    cr_assert(harness_log_contains(p, "leadership given up", T_WAIT_MS), "(%s)", p->log_path);
    cr_assert(t_wait_i64(1, T_WAIT_MS,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
                         T_NONE),
              "lock taken again");
    char w[HODEI_ID_BUF];
    t_worker(w, "p1", "DRAINING", "600000", "60000", NULL);
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w));
    sup_stop_clean(p);
}

Test(supervisor, resumes_after_a_postgresql_restart)
{
    hodei_err err = {0};
    harness_proc *p = sup_start_active(NULL);
    PQfinish(g_conn);
    g_conn = NULL;
    harness_pg_stop(&g_st);
    cr_assert(harness_log_contains(p, "leadership given up", T_WAIT_MS), "(%s)", p->log_path);
    harness_pg_start(&g_st);
    cr_assert_eq(hodei_db_connect(g_st.db_url, 5000, &g_conn, &err), HODEI_OK, "%s", err.msg);
    cr_assert(t_wait_i64(1, T_WAIT_MS,
                         "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
                         T_NONE),
              "lock taken again");
    char w[HODEI_ID_BUF];
    t_worker(w, "p1", "BUSY", "600000", "60000", NULL);
    t_wait_str("LOST", T_WORKER_STATE_SQL, T_ARGS(w));
    sup_stop_clean(p);
}

Test(supervisor, sigterm_exits_zero)
{
    harness_proc *p = sup_start_active(NULL);
    hodei_sleep_ms(500);
    sup_stop_clean(p);
    cr_assert(harness_log_contains(p, "released", 0), "(%s)", p->log_path);
}

/* ---- retention ---- */

/* Finished jobs, terminated workers, finished sagas and audit rows past
 * their retention are deleted, in batches of supervisor.batch_max, and
 * nothing younger or still running; a job's artifact records and log
 * archives go with it; a job row others keep updating meanwhile is never
 * held up long. */
Test(supervisor, retention_deletes_exactly_what_is_past_its_age_in_batches, .timeout = 300)
{
    static const char *const env[] = {"HODEI_RETENTION_JOBS=720h",
                                      "HODEI_RETENTION_WORKERS=168h",
                                      "HODEI_RETENTION_SAGAS=168h",
                                      "HODEI_RETENTION_AUDIT=8760h",
                                      "HODEI_RETENTION_INTERVAL=200ms",
                                      "HODEI_SUPERVISOR_BATCH_MAX=200",
                                      NULL};
    /* 3,000 finished 40 days ago, 50 finished a day ago, 20 created 40 days
     * ago and still PENDING. */
    t_exec(
        "INSERT INTO jobs (id, state, spec, timeout_ms, created_at, updated_at, finished_at)"
        " SELECT gen_random_uuid(), (ARRAY['SUCCEEDED','FAILED','CANCELLED','TIMEOUT'])[1 + g % 4],"
        " '\\x0a00'::bytea, 60000, now() - interval '40 days', now() - interval '40 days',"
        " now() - interval '40 days' FROM generate_series(1, 3000) g",
        T_NOARGS);
    t_exec(
        "INSERT INTO jobs (id, state, spec, timeout_ms, created_at, updated_at, finished_at)"
        " SELECT gen_random_uuid(), 'SUCCEEDED', '\\x0a00'::bytea, 60000, now() - interval '1 day',"
        " now() - interval '1 day', now() - interval '1 day' FROM generate_series(1, 50)",
        T_NOARGS);
    t_exec(
        "INSERT INTO jobs (id, state, spec, timeout_ms, created_at, updated_at)"
        " SELECT gen_random_uuid(), 'PENDING', '\\x0a00'::bytea, 60000, now() - interval '40 days',"
        " now() - interval '40 days' FROM generate_series(1, 20)",
        T_NOARGS);
    t_exec("INSERT INTO job_artifacts (job_id, epoch, idx, source, destination, size_bytes,"
           " checksum, state, error) SELECT id, 1, 0, 'a', 's3://b/a', 1, '', 'UPLOADED', ''"
           " FROM jobs WHERE finished_at IS NOT NULL",
           T_NOARGS);
    t_exec("INSERT INTO job_log_archives (job_id, epoch, lines, raw_bytes, data)"
           " SELECT id, 1, 0, 0, '\\x00'::bytea FROM jobs WHERE finished_at IS NOT NULL",
           T_NOARGS);
    char w_old[HODEI_ID_BUF], w_new[HODEI_ID_BUF], w_ready[HODEI_ID_BUF], busy[HODEI_ID_BUF];
    t_worker(w_old, "process", "TERMINATED", "864000000", NULL, NULL); /* 10 days */
    t_worker(w_new, "process", "TERMINATED", "86400000", NULL, NULL);  /* 1 day */
    t_worker(w_ready, "process", "READY", "864000000", "-600000", "0");
    t_exec("INSERT INTO sagas (id, type, state, created_at, updated_at) VALUES"
           " (gen_random_uuid(), 'provision', 'SUCCEEDED', now() - interval '10 days',"
           "  now() - interval '10 days'),"
           " (gen_random_uuid(), 'provision', 'RUNNING', now() - interval '10 days',"
           "  now() - interval '10 days'),"
           " (gen_random_uuid(), 'provision', 'COMPENSATED', now() - interval '1 day',"
           "  now() - interval '1 day')",
           T_NOARGS);
    t_exec("INSERT INTO audit_log (at, actor, action, object_type, object_id) VALUES"
           " (now() - interval '400 days', 'system', 'x', 'job', 'a'),"
           " (now() - interval '100 days', 'system', 'x', 'job', 'b')",
           T_NOARGS);
    t_job(busy, &(t_job_row){"PENDING", NULL, "0", "1", "0", "60000", NULL, "0"});

    harness_proc *p = sup_start_active(env);
    /* Meanwhile a job row is updated as the edge would: never held up long. */
    int64_t worst_ms = 0, deadline = hodei_mono_ms() + 120000;
    while (t_i64("SELECT count(*) FROM jobs WHERE finished_at < now() - interval '30 days'",
                 T_NOARGS) > 0) {
        cr_assert_lt(hodei_mono_ms(), deadline, "retention did not finish");
        int64_t t0 = hodei_mono_ms();
        t_exec("UPDATE jobs SET updated_at = now() WHERE id = $1", T_ARGS(busy));
        int64_t took = hodei_mono_ms() - t0;
        worst_ms = took > worst_ms ? took : worst_ms;
        hodei_sleep_ms(20);
    }
    cr_assert_lt(worst_ms, 5000, "an update waited %" PRId64 " ms on retention", worst_ms);
    cr_assert(harness_log_contains(p, "retention: deleted 200 finished jobs", T_WAIT_MS),
              "deleted in batches of supervisor.batch_max (log %s)", p->log_path);
    cr_assert(
        t_wait_i64(0, T_WAIT_MS, "SELECT count(*) FROM workers WHERE id = $1", T_ARGS(w_old)));
    hodei_sleep_ms(T_QUIET_MS);
    cr_assert_eq(t_i64("SELECT count(*) FROM jobs WHERE finished_at IS NOT NULL", T_NOARGS), 50);
    cr_assert_eq(t_i64("SELECT count(*) FROM jobs WHERE state = 'PENDING'", T_NOARGS), 21);
    cr_assert_eq(t_i64("SELECT count(*) FROM job_artifacts", T_NOARGS), 50);
    cr_assert_eq(t_i64("SELECT count(*) FROM job_log_archives", T_NOARGS), 50);
    cr_assert_eq(t_i64("SELECT count(*) FROM workers WHERE id IN ($1, $2)", T_ARGS(w_new, w_ready)),
                 2);
    cr_assert_eq(t_i64("SELECT count(*) FROM sagas", T_NOARGS), 2, "the old finished saga went");
    cr_assert_eq(t_i64("SELECT count(*) FROM sagas WHERE state = 'SUCCEEDED'", T_NOARGS), 0);
    /* Only the test's two rows: the stack's admin key (key.create) is not ours. */
    cr_assert_eq(t_i64("SELECT count(*) FROM audit_log WHERE object_id IN ('a', 'b')", T_NOARGS),
                 1);
    cr_assert_eq(t_i64("SELECT count(*) FROM audit_log WHERE object_id = 'b'", T_NOARGS), 1);
    sup_stop_clean(p);
}

/* The audit log is kept longest: a shorter retention.audit is refused. */
Test(supervisor, retention_audit_shorter_than_jobs_is_refused)
{
    static const char *const env[] = {"HODEI_RETENTION_JOBS=720h", "HODEI_RETENTION_AUDIT=24h",
                                      NULL};
    harness_proc *p = sup_start(env);
    int ws = harness_proc_wait(p, T_WAIT_MS);
    cr_assert(ws != -1 && WIFEXITED(ws) && WEXITSTATUS(ws) != 0, "status 0x%x", ws);
    cr_assert(harness_log_contains(p, "retention.audit", 1000), "log %s", p->log_path);
}
