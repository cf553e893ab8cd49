/* Jobs end to end on the embedded default: every daemon a real process,
 * workers real hodei-worker processes started by the process provider. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster.h"
#include "hodei/db.h"
#include "hodei/time.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/secret.pb-c.h"

static cluster cl;

/* A short heartbeat timeout finds a killed worker fast; the agents' reconnect
 * cap stays well below it (as the agent's own help asks), so a worker that
 * only lost its stream while the edge restarted is not taken for dead. */
static const char *const fast_env[] = {
    "HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=3s",
    "HODEI_WORKER_RECONNECT_MAX=1s",
    "HODEI_SUPERVISOR_TICK_INTERVAL=200ms",
    "HODEI_LOG_LEVEL=info",
    NULL,
};

static int64_t sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sqlf(const char *fmt, ...)
{
    char q[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return harness_sql_i64(&cl.stack, q);
}

/* Samples, every 20 ms, how many workers are live (not TERMINATED; the
 * count providers.max_workers bounds), each sample one snapshot, and keeps
 * the largest. The total of worker rows is not that bound: a worker idle
 * past the idle TTL (the queue ran dry for a moment) is retired, and a new
 * one is rightly created when jobs arrive again. */
typedef struct {
    PGconn *conn;
    atomic_bool stop;
    int64_t max_live;
    int samples;
    pthread_t thread;
} live_sampler;

static void *live_sampler_run(void *arg)
{
    live_sampler *ls = arg;
    while (!atomic_load(&ls->stop)) {
        PGresult *res = NULL;
        hodei_err err = {0};
        if (hodei_db_exec(ls->conn, "SELECT count(*) FROM workers WHERE state <> 'TERMINATED'", 0,
                          NULL, &res, &err) == HODEI_OK) {
            int64_t n = hodei_db_get_i64(res, 0, 0);
            if (n > ls->max_live)
                ls->max_live = n;
            ls->samples++;
            PQclear(res);
        }
        hodei_sleep_ms(20);
    }
    return NULL;
}

static void live_sampler_start(live_sampler *ls)
{
    hodei_err err = {0};
    ls->max_live = 0;
    ls->samples = 0;
    atomic_init(&ls->stop, false);
    cr_assert_eq(hodei_db_connect(cl.stack.db_url, 10000, &ls->conn, &err), HODEI_OK, "%s",
                 err.msg);
    cr_assert_eq(pthread_create(&ls->thread, NULL, live_sampler_run, ls), 0);
}

static void live_sampler_stop(live_sampler *ls)
{
    atomic_store(&ls->stop, true);
    pthread_join(ls->thread, NULL);
    PQfinish(ls->conn);
}

/* What a job that did not finish and the workers looked like, for the
 * failure message: the rows, and every daemon log line that names the job. */
static void dump_unfinished(void)
{
    static char out[1 << 16];
    harness_sh(&cl.stack, out, sizeof out,
               "psql -X -q -d '%s' -c \"SELECT id, state, attempt, worker_id, epoch, error, "
               "not_before, updated_at FROM jobs WHERE state <> 'SUCCEEDED'\" "
               "-c \"SELECT id, state, hostname, updated_at FROM workers WHERE state <> "
               "'TERMINATED'\" -c \"SELECT count(*) AS unpublished FROM outbox\"; "
               "for id in $(psql -X -qtA -d '%s' -c \"SELECT id FROM jobs WHERE state <> "
               "'SUCCEEDED' LIMIT 3\"); do grep -h \"$id\" '%s'/*.log | tail -n 40; done",
               cl.stack.db_url, cl.stack.db_url, cl.stack.state_dir);
    cr_log_error("unfinished jobs:\n%s", out);
}

Test(e2e, thousand_jobs_each_run_exactly_once_on_at_most_eight_workers, .timeout = 900)
{
    enum { N = 1000 };
    static char ids[N][37];
    char file[700], script[900];
    live_sampler ls;
    cluster_start(&cl, fast_env);
    cluster_provider(&cl, 8, 3000, 0);
    live_sampler_start(&ls);
    snprintf(file, sizeof file, "%s/ran.txt", cl.stack.state_dir);
    snprintf(script, sizeof script, "echo \"$HODEI_JOB_ID\" >> '%s'", file);
    for (int i = 0; i < N; i++)
        cluster_queue(&cl, script, 1, 0, ids[i]);
    /* Every job ends (a failed one ends the wait at once), then all must have
     * succeeded. */
    bool all = cluster_wait_sql(&cl,
                                "SELECT count(*) FROM jobs WHERE state IN ('SUCCEEDED', 'FAILED',"
                                " 'CANCELLED', 'TIMEOUT')",
                                N, 600000) &&
               sqlf("SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'") == N;
    live_sampler_stop(&ls);
    if (!all)
        dump_unfinished();
    cr_assert(all, "all %d jobs succeed (%lld did)", N,
              (long long)sqlf("SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"));
    for (int i = 0; i < N; i++)
        cr_expect_eq(harness_file_count_lines(file, ids[i]), 1, "job %s ran once", ids[i]);
    cr_assert_gt(ls.samples, 10, "the live-worker count was sampled");
    cr_expect_leq(ls.max_live, 8, "never more than 8 live workers at once (%d samples)",
                  ls.samples);
    cr_expect_gt(ls.max_live, 1, "the jobs spread over several workers");
    cr_log_info("workers created: %lld, most live at once: %lld",
                (long long)sqlf("SELECT count(*) FROM workers"), (long long)ls.max_live);
    /* The daemons' counters agree with the database. */
    int edge = cl.edge.health_port;
    cr_expect_eq(harness_metric(edge, "hodei_jobs_queued_total"), N);
    cr_expect_eq(harness_metric(edge, "hodei_jobs_finished_total{state=\"SUCCEEDED\"}"), N);
    cr_expect_eq(
        harness_metric(cl.health_port[CL_SCHEDULER], "hodei_scheduler_jobs_assigned_total") +
            harness_metric(edge, "hodei_edge_handoffs_total") +
            harness_metric(edge, "hodei_edge_submit_assigned_total"),
        N, "each job assigned once, by a pass, a hand-off or at submit");
    cr_expect_eq(
        harness_metric(cl.health_port[CL_PROVISIONER], "hodei_provisioner_sagas_succeeded_total"),
        (double)sqlf("SELECT count(*) FROM workers WHERE hostname <> ''"),
        "one saga per registered worker");
    cr_expect_eq(harness_metric(cl.health_port[CL_RELAY], "hodei_relay_active"), 1);
    cr_expect_geq(harness_metric(cl.health_port[CL_RELAY], "hodei_outbox_published_total"), 2 * N);
    cr_expect_eq(harness_metric(cl.health_port[CL_SUPERVISOR], "hodei_supervisor_active"), 1);
    cr_expect(cluster_wait_sql(
                  &cl, "SELECT count(*) FROM workers WHERE state NOT IN ('TERMINATED')", 0, 30000),
              "no worker is left after the idle TTL");
    cluster_stop(&cl);
}

/* Alive and not a zombie (this sandbox's PID 1 does not reap orphans). */
static bool proc_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] != 'Z';
}

static pid_t worker_pid(const char *worker_id)
{
    char path[800];
    snprintf(path, sizeof path, "%s/%s.pid", cl.workers_dir, worker_id);
    FILE *f = fopen(path, "r");
    long pid = 0;
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return (pid_t)pid;
}

Test(e2e, worker_killed_mid_job_the_job_succeeds_on_another_worker, .timeout = 300)
{
    char id[37], state[32], q[512], wid[64] = "";
    cluster_start(&cl, fast_env);
    cluster_provider(&cl, 4, 60000, 0);
    cluster_queue(&cl, "sleep 2; echo done", 2, 0, id);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", id);
    cr_assert(cluster_wait_sql(&cl, q, 1, 60000), "the job starts");
    harness_sh(
        &cl.stack, wid, sizeof wid,
        "psql -qtA \"$HODEI_DATABASE_URL\" -c \"SELECT worker_id FROM jobs WHERE id = '%s'\"", id);
    wid[strcspn(wid, "\n")] = '\0';
    pid_t pid = worker_pid(wid);
    cr_assert_gt(pid, 0, "the process provider recorded worker %s", wid);
    cr_assert_eq(kill(pid, SIGKILL), 0);

    cr_assert(cluster_wait_job(&cl, id, 120000, state, sizeof state), "the job ends");
    cr_assert_str_eq(state, "SUCCEEDED");
    cr_assert_eq(sqlf("SELECT attempt FROM jobs WHERE id = '%s'", id), 2);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND worker_id <> '%s'", id, wid),
                 1, "the second attempt ran on another worker");
    cr_assert(cluster_wait_sql(&cl,
                               "SELECT count(*) FROM workers WHERE state = 'LOST' OR"
                               " (state = 'TERMINATED' AND hostname <> '')",
                               1, 1) ||
                  sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state IN"
                       " ('LOST','TERMINATING','TERMINATED')",
                       wid) == 1,
              "the killed worker is marked lost");
    cluster_stop(&cl);
}

/* The scheduler tells the edge of an assignment right after its commit,
 * without waiting for the relay: with the relay stopped, the edge's
 * periodic re-send at its longest (60 s) and the assignment at submit off
 * (so the scheduler assigns the job), a job for a warm worker runs, and the
 * edge counts the hint that made it send the RunJob. What proves the hint
 * did it is that count, not a time: on a loaded machine the job may take
 * long to run, and the re-send may come at any moment of its 60 s. */
Test(e2e, a_warm_worker_gets_its_job_from_the_schedulers_hint_without_the_relay, .timeout = 300)
{
    static const char *const env[] = {
        "HODEI_SUPERVISOR_TICK_INTERVAL=200ms",
        "HODEI_LOG_LEVEL=info",
        "HODEI_WORKER_RESEND_INTERVAL=60s",
        "HODEI_WORKER_HANDOFF=false",
        "HODEI_SUBMIT_ASSIGN=false",
        NULL,
    };
    char id[37], state[32];
    cluster_start(&cl, env);
    cluster_provider(&cl, 1, 600000, 1);
    cluster_queue(&cl, "true", 1, 0, id);
    cr_assert(cluster_wait_job(&cl, id, 120000, state, sizeof state), "the warm-up job ends");
    cr_assert_str_eq(state, "SUCCEEDED");
    cr_assert(
        cluster_wait_sql(&cl, "SELECT count(*) FROM workers WHERE state = 'READY'", 1, 60000));

    harness_proc_stop(&cl.procs[CL_RELAY], SIGTERM, 10000);
    int edge = cl.edge.health_port, sched = cl.health_port[CL_SCHEDULER];
    double hints = harness_metric(edge, "hodei_edge_hints_total");
    double assigned = harness_metric(sched, "hodei_scheduler_jobs_assigned_total");
    cr_assert_geq(assigned, 1, "the scheduler assigned the warm-up job");
    cluster_queue(&cl, "echo hinted", 1, 0, id);
    cr_assert(cluster_wait_job(&cl, id, 120000, state, sizeof state), "the job ends");
    cr_expect_str_eq(state, "SUCCEEDED");
    cr_expect_eq(harness_metric(sched, "hodei_scheduler_jobs_assigned_total"), assigned + 1,
                 "the scheduler assigned the job");
    cr_expect_eq(harness_metric(edge, "hodei_edge_submit_assigned_total"), 0,
                 "not the edge at submit");
    cr_expect_eq(harness_metric(edge, "hodei_edge_hints_total"), hints + 1,
                 "the scheduler's hint made the edge send the RunJob (not the re-send)");
    cr_expect_eq(sqlf("SELECT count(*) FROM outbox WHERE aggregate_id = '%s'"
                      " AND event_type = 'JobAssigned' AND published_at IS NULL",
                      id),
                 1, "its JobAssigned event waits for the relay");
    cluster_kill_restart(&cl, CL_RELAY);
    cr_expect(
        cluster_wait_sql(&cl, "SELECT count(*) FROM outbox WHERE published_at IS NULL", 0, 60000),
        "the restarted relay publishes what waited");
    cluster_stop(&cl);
}

/* Waits up to wait_ms for pid to be gone; true when it is. */
static bool proc_gone_within(pid_t pid, int64_t wait_ms)
{
    int64_t until = hodei_mono_ms() + wait_ms;
    while (proc_alive(pid) && hodei_mono_ms() < until)
        hodei_sleep_ms(100);
    return !proc_alive(pid);
}

/* The process whose pid a job wrote to pidfile is gone within a minute
 * (it would live 10); killed here if not, so that a failure leaves none. */
static void expect_child_gone(const char *pidfile, const char *what)
{
    FILE *f = fopen(pidfile, "r");
    long child = 0;
    cr_assert(f && fscanf(f, "%ld", &child) == 1, "%s: the job wrote its child's pid", what);
    fclose(f);
    bool gone = proc_gone_within((pid_t)child, 60000);
    if (!gone)
        kill((pid_t)child, SIGKILL);
    cr_expect(gone, "%s", what);
}

/* A job's timeout and a cancel end it and its whole process tree, and it
 * is the worker that ends it: the edge counts the job ended by the worker's
 * result (hodei_jobs_finished_total), which the supervisor's server-side
 * timeout (timeout_ms + supervisor.timeout_grace, here 60 s) does not go
 * through. No time is asserted: the product promises the state and who
 * ends it, not how fast a loaded machine gets there. The jobs' processes
 * would live 10 minutes by themselves, longer than every wait here. */
Test(e2e, timeout_and_cancel_end_the_job_and_its_process_tree, .timeout = 600)
{
    static const char *const env[] = {
        "HODEI_SUPERVISOR_TIMEOUT_GRACE=60s",
        "HODEI_SUPERVISOR_TICK_INTERVAL=200ms",
        "HODEI_LOG_LEVEL=info",
        NULL,
    };
    char id[37], id2[37], state[32], q[512], pidfile[700], script[900];
    cluster_start(&cl, env);
    cluster_provider(&cl, 4, 600000, 0);
    int edge = cl.edge.health_port;

    snprintf(pidfile, sizeof pidfile, "%s/tree.pid", cl.stack.state_dir);
    snprintf(script, sizeof script, "sleep 600 & echo $! > '%s'; wait", pidfile);
    cluster_queue(&cl, script, 1, 5000, id);
    cr_assert(cluster_wait_job(&cl, id, 180000, state, sizeof state), "the job ends");
    cr_expect_str_eq(state, "TIMEOUT");
    cr_expect_eq(harness_metric(edge, "hodei_jobs_finished_total{state=\"TIMEOUT\"}"), 1,
                 "the worker's own timeout ended the job, not the supervisor's");
    expect_child_gone(pidfile, "the timed-out job's child process is gone too");

    snprintf(pidfile, sizeof pidfile, "%s/tree2.pid", cl.stack.state_dir);
    snprintf(script, sizeof script, "sleep 600 & echo $! > '%s'; wait", pidfile);
    cluster_queue(&cl, script, 1, 0, id2);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", id2);
    cr_assert(cluster_wait_sql(&cl, q, 1, 120000), "the second job starts");
    int64_t until = hodei_mono_ms() + 120000;
    struct stat sb;
    while ((stat(pidfile, &sb) != 0 || sb.st_size == 0) && hodei_mono_ms() < until)
        hodei_sleep_ms(100);
    cr_assert(stat(pidfile, &sb) == 0 && sb.st_size > 0, "the second job started its child");
    Hodei__V1__CancelJobRequest req = HODEI__V1__CANCEL_JOB_REQUEST__INIT;
    req.job_id = id2;
    char msg[256];
    cr_assert_eq(edge_call(&cl.edge, "CancelJob", &req.base,
                           &hodei__v1__cancel_job_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    cr_assert(cluster_wait_job(&cl, id2, 180000, state, sizeof state), "the cancelled job ends");
    cr_expect_str_eq(state, "CANCELLED");
    cr_expect_eq(harness_metric(edge, "hodei_jobs_finished_total{state=\"CANCELLED\"}"), 1,
                 "the worker ended the cancelled job");
    expect_child_gone(pidfile, "the cancelled job's child process is gone too");
    cluster_stop(&cl);
}

Test(e2e, every_daemon_killed_twice_while_jobs_run_loses_and_doubles_nothing, .timeout = 900)
{
    enum { N = 500 };
    static char ids[N][37];
    char file[700], script[900];
    cluster_start(&cl, fast_env);
    cluster_provider(&cl, 6, 5000, 0);
    snprintf(file, sizeof file, "%s/ran.txt", cl.stack.state_dir);
    /* Each attempt appends "<job>" only after its short sleep: a doubled
     * attempt would write twice. max_attempts 3 so a job whose worker died
     * with the edge can run again. */
    snprintf(script, sizeof script, "sleep 0.05; echo \"$HODEI_JOB_ID\" >> '%s'", file);
    for (int i = 0; i < N; i++) {
        cluster_queue(&cl, script, 3, 0, ids[i]);
        if (i % 50 == 25) {
            int round = i / 50;
            switch (round % 5) {
            case 0:
                cluster_kill_restart(&cl, CL_SCHEDULER);
                break;
            case 1:
                cluster_kill_restart(&cl, CL_PROVISIONER);
                break;
            case 2:
                cluster_kill_restart(&cl, CL_SUPERVISOR);
                break;
            case 3:
                cluster_kill_restart(&cl, CL_RELAY);
                break;
            default:
                cluster_kill_restart_edge(&cl);
                break;
            }
        }
    }
    cr_assert(cluster_wait_sql(&cl,
                               "SELECT count(*) FROM jobs WHERE state IN"
                               " ('SUCCEEDED','FAILED','CANCELLED','TIMEOUT')",
                               N, 600000),
              "every job ends (%lld did)",
              (long long)sqlf("SELECT count(*) FROM jobs WHERE state IN"
                              " ('SUCCEEDED','FAILED','CANCELLED','TIMEOUT')"));
    cr_expect_eq(sqlf("SELECT count(*) FROM jobs"), N, "none lost");
    int twice = 0;
    for (int i = 0; i < N; i++) {
        if (harness_file_count_lines(file, ids[i]) <= 1)
            continue;
        char why[512] = "";
        harness_sh(&cl.stack, why, sizeof why,
                   "psql -qtA \"$HODEI_DATABASE_URL\" -c \"SELECT attempt, state,"
                   " coalesce(error, '') FROM jobs WHERE id = '%s'\"",
                   ids[i]);
        char trail[4096] = "";
        harness_sh(&cl.stack, trail, sizeof trail,
                   "grep -h '%s' '%s'/*.log '%s'/*.log | cut -c1-300 | tail -40", ids[i],
                   cl.stack.state_dir, cl.workers_dir);
        cr_log_error("job %s completed twice: %s\n%s", ids[i], why, trail);
        twice++;
    }
    cr_expect_eq(twice, 0, "no job's command completed twice (%d did)", twice);
    cr_expect_eq(sqlf("SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"), N,
                 "with retries, every job succeeds");
    cluster_stop(&cl);
}

/* Starts a cluster and a job (2 attempts allowed) that sleeps `sleep_s`,
 * then appends its id to `file`; returns once it runs. */
static void away_start(int sleep_s, char id[37], char file[700])
{
    char q[512], script[900];
    cluster_start(&cl, fast_env);
    cluster_provider(&cl, 2, 60000, 0);
    snprintf(file, 700, "%s/ran.txt", cl.stack.state_dir);
    snprintf(script, sizeof script, "sleep %d; echo \"$HODEI_JOB_ID\" >> '%s'", sleep_s, file);
    cluster_queue(&cl, script, 2, 0, id);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", id);
    cr_assert(cluster_wait_sql(&cl, q, 1, 60000), "the job starts");
}

/* The job ends SUCCEEDED at its first attempt, its command ran once, and
 * no worker is LOST. */
static void away_check(const char *id, const char *file)
{
    char state[32];
    cr_assert(cluster_wait_job(&cl, id, 60000, state, sizeof state), "the job ends");
    cr_expect_str_eq(state, "SUCCEEDED");
    cr_expect_eq(sqlf("SELECT attempt FROM jobs WHERE id = '%s'", id), 1, "one attempt");
    cr_expect_eq(harness_file_count_lines(file, id), 1, "the command ran once");
    cr_expect_eq(sqlf("SELECT count(*) FROM workers WHERE state = 'LOST'"), 0, "no worker LOST");
}

/* Workers cut off from the edge are not dead: with the only edge away
 * for longer than the heartbeat timeout, the running worker is not LOST,
 * its attempt is not run a second time, and its result is recorded once the
 * edge is back. */
Test(e2e, an_edge_away_past_the_heartbeat_timeout_loses_no_worker_and_runs_nothing_twice,
     .timeout = 300)
{
    char id[37], file[700];
    away_start(6, id, file);
    cluster_kill_edge(&cl);
    hodei_sleep_ms(5000); /* heartbeat timeout 3 s */
    cr_expect_eq(sqlf("SELECT count(*) FROM workers WHERE state = 'LOST'"), 0,
                 "no worker is LOST while no edge is there");
    cluster_start_edge(&cl);
    away_check(id, file);
    cluster_stop(&cl);
}

/* PostgreSQL away for longer than the heartbeat timeout: no heartbeat could
 * be written meanwhile, yet when it is back no worker is LOST for the gap,
 * and the job that finished meanwhile is recorded once, from its worker's
 * kept result. (Whether the supervisor or the edges reconnect first is a
 * race; the edges' presence, which restarts with them, decides it.) */
Test(e2e, postgres_away_past_the_heartbeat_timeout_loses_no_worker_and_runs_nothing_twice,
     .timeout = 300)
{
    char id[37], file[700];
    away_start(2, id, file);
    harness_pg_stop(&cl.stack);
    hodei_sleep_ms(5000); /* heartbeat timeout 3 s; the job ends meanwhile */
    harness_pg_start(&cl.stack);
    away_check(id, file);
    hodei_sleep_ms(4000); /* past another heartbeat timeout, with PostgreSQL back */
    cr_expect_eq(sqlf("SELECT count(*) FROM workers WHERE state = 'LOST'"), 0,
                 "no worker LOST later either");
    cr_expect_eq(harness_file_count_lines(file, id), 1, "the command ran once, later too");
    cluster_stop(&cl);
}

/* Each daemon's health port, for the readiness test. */
static int readyz_ports(int *ports, const char **names)
{
    static const char *const daemon_names[CL_DAEMON_COUNT] = {[CL_RELAY] = "outbox-relay",
                                                              [CL_SCHEDULER] = "scheduler",
                                                              [CL_PROVISIONER] = "provisioner",
                                                              [CL_SUPERVISOR] = "supervisor"};
    for (int d = 0; d < CL_DAEMON_COUNT; d++) {
        ports[d] = cl.health_port[d];
        names[d] = daemon_names[d];
    }
    ports[CL_DAEMON_COUNT] = cl.edge.health_port;
    names[CL_DAEMON_COUNT] = "job-api";
    return CL_DAEMON_COUNT + 1;
}

Test(e2e, every_daemon_is_ready_and_names_the_database_while_postgresql_is_down, .timeout = 300)
{
    int ports[CL_DAEMON_COUNT + 1];
    const char *names[CL_DAEMON_COUNT + 1];
    char body[2048], id[37], state[32];
    cluster_start(&cl, fast_env);
    cluster_provider(&cl, 2, 60000, 0);
    int n = readyz_ports(ports, names);

    for (int i = 0; i < n; i++)
        cr_assert(
            harness_http_wait(ports[i], "/readyz", 200, "database: up\n", 60000, body, sizeof body),
            "%s ready with the database up: %s", names[i], body);
    harness_pg_stop(&cl.stack);
    for (int i = 0; i < n; i++) {
        cr_assert(harness_http_wait(ports[i], "/readyz", 503, "database: down (", 60000, body,
                                    sizeof body),
                  "%s: 503 naming the database while PostgreSQL is down: %s", names[i], body);
        cr_assert_eq(harness_http(ports[i], "GET", "/healthz", body, sizeof body), 200,
                     "%s alive all the same", names[i]);
    }
    harness_pg_start(&cl.stack);
    for (int i = 0; i < n; i++)
        cr_assert(harness_http_wait(ports[i], "/readyz", 200, "ready\n", 60000, body, sizeof body),
                  "%s ready again once PostgreSQL is back: %s", names[i], body);
    cluster_queue(&cl, "echo after", 1, 0, id);
    cr_assert(cluster_wait_job(&cl, id, 60000, state, sizeof state), "a job runs afterwards");
    cr_assert_str_eq(state, "SUCCEEDED");
    cluster_stop(&cl);
}

#define SECRET_VALUE "hunter2-s3cr3t-value"

typedef struct {
    cluster *c;
    const char *job;
    int64_t lines;      /* lines received: 1..N in order, then the secrets line */
    int64_t bad;        /* out of order, repeated or malformed */
    int64_t leaks;      /* lines holding the secret's value */
    bool redacted_seen; /* the job's echo of its stdin came back redacted */
    Hodei__V1__JobState final_state;
    char error[600];
} follower;

/* Follows a job's output to its end; checks line k reads "k". */
static void *follow_main(void *arg)
{
    follower *f = arg;
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    req.job_id = (char *)f->job;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    if (hodei_rpc_stream_open(f->c->edge.ch, "/hodei.v1.LogStreamService/SubscribeLogs", &req.base,
                              &hodei__v1__log_chunk__descriptor, 300000, &st, &err) != HODEI_OK) {
        snprintf(f->error, sizeof f->error, "open: %s", err.msg);
        return NULL;
    }
    for (;;) {
        ProtobufCMessage *m = NULL;
        hodei_rpc_result res;
        if (hodei_rpc_stream_recv(st, 300000, &m, &res, &err) != HODEI_OK || !m) {
            if (!m && res.code != HODEI_GRPC_OK)
                snprintf(f->error, sizeof f->error, "stream: %s", res.message);
            break;
        }
        Hodei__V1__LogChunk *ch = (Hodei__V1__LogChunk *)m;
        for (size_t i = 0; i < ch->n_lines; i++) {
            char want[32];
            int n = snprintf(want, sizeof want, "%lld", (long long)(f->lines + 1));
            const ProtobufCBinaryData *d = &ch->lines[i]->data;
            if (d->len && memmem(d->data, d->len, SECRET_VALUE, strlen(SECRET_VALUE)))
                f->leaks++;
            if (f->lines >= 200000)
                f->redacted_seen |= d->len && memmem(d->data, d->len, "[REDACTED]", 10);
            else if (d->len != (size_t)n || memcmp(d->data, want, (size_t)n) != 0)
                f->bad++;
            f->lines++;
        }
        bool end = ch->end_of_stream;
        if (end)
            f->final_state = ch->final_state;
        protobuf_c_message_free_unpacked(m, NULL);
        if (end)
            break;
    }
    hodei_rpc_stream_destroy(st);
    return NULL;
}

static void set_secret(cluster *c, const char *name, const char *value)
{
    Hodei__V1__SetSecretRequest req = HODEI__V1__SET_SECRET_REQUEST__INIT;
    req.name = (char *)name;
    req.value.data = (uint8_t *)value;
    req.value.len = strlen(value);
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    cr_assert_eq(hodei_rpc_unary(c->edge.ch, "/hodei.v1.SecretService/SetSecret", &req.base,
                                 &hodei__v1__set_secret_response__descriptor, 10000, &out, &res,
                                 &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(res.code, HODEI_GRPC_OK, "SetSecret: %s", res.message);
    protobuf_c_message_free_unpacked(out, NULL);
}

/* `seq 1 200000`, then the job echoes its stdin: the secrets JSON. */
static void queue_with_secret(cluster *c, const char *secret, char *id_out)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[] = {"-c", "seq 1 200000; cat; echo"};
    char *refs[] = {(char *)secret};
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.n_secret_refs = 1;
    spec.secret_refs = refs;
    req.spec = &spec;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    cr_assert_eq(edge_call(&c->edge, "QueueJob", &req.base,
                           &hodei__v1__queue_job_response__descriptor, &resp, msg, sizeof msg),
                 HODEI_GRPC_OK, "QueueJob: %s", msg);
    snprintf(id_out, 37, "%s", ((Hodei__V1__QueueJobResponse *)resp)->job_id);
    protobuf_c_message_free_unpacked(resp, NULL);
}

Test(e2e, two_hundred_thousand_lines_reach_early_and_late_followers_once_in_order, .timeout = 600)
{
    enum { LINES = 200000 };
    static const char *const env[] = {
        "HODEI_SECRETS_MASTER_KEY="
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        "HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=3s", NULL};
    char id[37], state[32];
    cluster_start(&cl, env);
    cluster_provider(&cl, 2, 60000, 0);
    set_secret(&cl, "db-pass", SECRET_VALUE);
    queue_with_secret(&cl, "db-pass", id);
    follower early = {.c = &cl, .job = id}, late = {.c = &cl, .job = id};
    pthread_t t;
    pthread_create(&t, NULL, follow_main, &early); /* before the job starts */
    cr_assert(cluster_wait_job(&cl, id, 300000, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    follow_main(&late); /* after it ended */
    pthread_join(t, NULL);
    cr_expect_str_eq(early.error, "");
    cr_expect_str_eq(late.error, "");
    cr_expect_geq(early.lines, LINES + 1, "the early follower got %lld lines",
                  (long long)early.lines);
    cr_expect_eq(early.lines, late.lines, "both followers got the same lines");
    cr_expect_eq(early.bad + late.bad, 0, "lines 1..200000 once each, in order");
    cr_expect_eq(early.leaks + late.leaks, 0, "the secret's value reached no follower");
    cr_expect(early.redacted_seen && late.redacted_seen, "the job's echo came back redacted");
    cr_expect_eq(early.final_state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    cr_expect_eq(late.final_state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    cluster_stop(&cl);
}
