/* GetLogs must not hold the gRPC threads that also serve workers, on the
 * whole product (real workers, their heartbeats, the supervisor):
 * - a running job with several MB of output (read from JetStream) and a
 *   finished one (read from its archive in PostgreSQL);
 * - many clients calling GetLogs on both at once, more than grpc.threads,
 *   while the log store does not answer (nats-server stopped with SIGSTOP
 *   for STOP_MS, so each read of the running job's log waits);
 * - meanwhile the workers' heartbeats keep arriving (last_heartbeat_at
 *   stays recent), no worker goes LOST, and another client's
 *   GetJobStatus and QueueJob are answered in bounded time;
 * - GetLogs calls past the readers and their queue are refused at once,
 *   RESOURCE_EXHAUSTED naming logs.readers_queue_max; once the store
 *   answers again both logs read back whole.
 * And the queue's exact bound, on an edge alone: with every reader held
 * (the jobs table locked, so each waits in PostgreSQL for as long as the
 * test holds it), exactly logs.readers_queue_max calls wait and are
 * answered once the readers go on; the next one is refused at once. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/v1/logs.pb-c.h"

#define MSG_MAX 1024
#define JOB_WAIT_MS 300000
#define LINES 40000 /* of 100 bytes: 4 MB (one GetLogs page holds them) */
#define LINE_TEXT                                                                                  \
    "0123456789012345678901234567890123456789012345678901234567890123456789"                       \
    "012345678901234567890123456789"
#define GRPC_THREADS 4
#define CLIENTS (3 * GRPC_THREADS) /* GetLogs callers at once */
#define STOP_MS 20000              /* nats-server stopped this long */
#define HEARTBEAT "500ms"
#define LOST_AFTER "10s"   /* supervisor.heartbeat_timeout */
#define BEAT_AGE_MAX 8000  /* ms: the oldest heartbeat allowed meanwhile */
#define ANSWER_MS_MAX 8000 /* another client's call is answered within this */
#define CALL_MS 30000
#define QUEUE_MAX "4" /* logs.readers_queue_max: CLIENTS fill the readers and the queue */

static cluster cl;
static pid_t nats_stopped; /* continued by the teardown if a check failed */

static void setup(void)
{
    static const char *const env[] = {"HODEI_GRPC_THREADS=4",
                                      "HODEI_LOGS_READERS=4",
                                      "HODEI_LOGS_READERS_QUEUE_MAX=" QUEUE_MAX,
                                      "HODEI_WORKER_HEARTBEAT_INTERVAL=" HEARTBEAT,
                                      "HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=" LOST_AFTER,
                                      NULL};
    cluster_start(&cl, env);
}

static void teardown(void)
{
    if (nats_stopped > 0)
        kill(nats_stopped, SIGCONT);
    cluster_stop(&cl);
}

TestSuite(logs_readers, .init = setup, .fini = teardown, .timeout = 900);

static pid_t nats_pid(void)
{
    char path[700], out[32] = "";
    snprintf(path, sizeof path, "%s/nats.pid", cl.stack.state_dir);
    FILE *f = fopen(path, "r");
    cr_assert(f, "no %s", path);
    cr_assert(fgets(out, sizeof out, f));
    fclose(f);
    pid_t pid = (pid_t)strtol(out, NULL, 10);
    cr_assert_gt(pid, 1);
    return pid;
}

static hodei_rpc_channel *channel(void)
{
    hodei_rpc_channel_opts o = {.target = cl.edge.target, .api_key = cl.stack.api_key};
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK, "%s", err.msg);
    return ch;
}

/* One GetLogs; the reply's lines and completeness on OK. */
static hodei_grpc_code get_logs(hodei_rpc_channel *ch, const char *job, size_t *n, bool *complete,
                                char *msg, size_t msg_len)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    req.job_id = (char *)job;
    ProtobufCMessage *out = NULL;
    hodei_rpc_result res;
    hodei_err err;
    if (hodei_rpc_unary(ch, "/hodei.v1.LogStreamService/GetLogs", &req.base,
                        &hodei__v1__get_logs_response__descriptor, CALL_MS, &out, &res,
                        &err) != HODEI_OK) {
        snprintf(msg, msg_len, "%s", err.msg);
        return HODEI_GRPC_UNAVAILABLE;
    }
    snprintf(msg, msg_len, "%s", res.message);
    if (res.code == HODEI_GRPC_OK) {
        Hodei__V1__GetLogsResponse *r = (Hodei__V1__GetLogsResponse *)out;
        *n = r->n_lines;
        *complete = r->complete;
        protobuf_c_message_free_unpacked(out, NULL);
    }
    return res.code;
}

/* ---------------------------------------------------------------- load */

typedef struct {
    const char *jobs[2];
    atomic_bool stop;
    atomic_int ok, exhausted, other;
    pthread_mutex_t mu;
    char exhausted_msg[MSG_MAX + 16]; /* the first RESOURCE_EXHAUSTED's text */
    char other_msg[MSG_MAX + 16];     /* the first other failure's text */
} load;

static void *load_main(void *arg)
{
    load *l = arg;
    hodei_rpc_channel *ch = channel();
    for (unsigned i = 0; !atomic_load(&l->stop); i++) {
        size_t n = 0;
        bool complete = false;
        char msg[MSG_MAX];
        hodei_grpc_code code = get_logs(ch, l->jobs[i % 2], &n, &complete, msg, sizeof msg);
        if (code == HODEI_GRPC_OK) {
            atomic_fetch_add(&l->ok, 1);
            continue;
        }
        pthread_mutex_lock(&l->mu);
        char *keep = code == HODEI_GRPC_RESOURCE_EXHAUSTED ? l->exhausted_msg : l->other_msg;
        if (!keep[0])
            snprintf(keep, MSG_MAX + 16, "%d: %s", (int)code, msg);
        pthread_mutex_unlock(&l->mu);
        atomic_fetch_add(code == HODEI_GRPC_RESOURCE_EXHAUSTED ? &l->exhausted : &l->other, 1);
        hodei_sleep_ms(50); /* as a client backs off */
    }
    hodei_rpc_channel_destroy(ch);
    return NULL;
}

/* The oldest last heartbeat of the workers (ms). */
static int64_t beat_age_ms(void)
{
    return harness_sql_i64(&cl.stack,
                           "SELECT coalesce(max((extract(epoch FROM now() - last_heartbeat_at)"
                           " * 1000)::bigint), -1) FROM workers"
                           " WHERE state IN ('READY', 'BUSY', 'LOST')");
}

/* Samples the workers' heartbeats every 200 ms until stopped. */
typedef struct {
    atomic_bool stop;
    int64_t age_max; /* ms */
    int64_t lost;    /* workers LOST seen at once, at most */
    int samples;
} beats;

static void *beats_main(void *arg)
{
    beats *b = arg;
    while (!atomic_load(&b->stop)) {
        int64_t age = beat_age_ms();
        int64_t lost =
            harness_sql_i64(&cl.stack, "SELECT count(*) FROM workers WHERE state = 'LOST'");
        if (age > b->age_max)
            b->age_max = age;
        if (lost > b->lost)
            b->lost = lost;
        b->samples++;
        hodei_sleep_ms(200);
    }
    return NULL;
}

/* Another client's GetJobStatus: how long it took (ms), asserting OK. */
static int64_t status_ms(hodei_rpc_channel *ch, const char *job, char *fail, size_t fail_len)
{
    Hodei__V1__GetJobStatusRequest req = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    req.job_id = (char *)job;
    ProtobufCMessage *out = NULL;
    hodei_rpc_result res;
    hodei_err err;
    int64_t t0 = hodei_mono_ms();
    if (hodei_rpc_unary(ch, "/hodei.v1.JobExecutionService/GetJobStatus", &req.base,
                        &hodei__v1__get_job_status_response__descriptor, CALL_MS, &out, &res,
                        &err) != HODEI_OK)
        snprintf(fail, fail_len, "GetJobStatus: %s", err.msg);
    else if (res.code != HODEI_GRPC_OK && !fail[0])
        snprintf(fail, fail_len, "GetJobStatus: %d %s", (int)res.code, res.message);
    if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return hodei_mono_ms() - t0;
}

/* Another client's QueueJob of `echo other-client`: how long it took (ms);
 * id set when it was queued. */
static int64_t queue_ms(hodei_rpc_channel *ch, char id[HODEI_ID_BUF], char *fail, size_t fail_len)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[] = {"-c", "echo other-client"}, key[HODEI_ID_BUF];
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.max_attempts = 1;
    req.spec = &spec;
    hodei_id_new(key);
    req.idempotency_key = key;
    ProtobufCMessage *out = NULL;
    hodei_rpc_result res;
    hodei_err err;
    int64_t t0 = hodei_mono_ms();
    id[0] = '\0';
    if (hodei_rpc_unary(ch, "/hodei.v1.JobExecutionService/QueueJob", &req.base,
                        &hodei__v1__queue_job_response__descriptor, CALL_MS, &out, &res,
                        &err) != HODEI_OK)
        snprintf(fail, fail_len, "QueueJob: %s", err.msg);
    else if (res.code != HODEI_GRPC_OK)
        snprintf(fail, fail_len, "QueueJob: %d %s", (int)res.code, res.message);
    else
        snprintf(id, HODEI_ID_BUF, "%s", ((Hodei__V1__QueueJobResponse *)out)->job_id);
    if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return hodei_mono_ms() - t0;
}

static void wait_lines(hodei_rpc_channel *ch, const char *job, size_t want)
{
    int64_t until = hodei_mono_ms() + JOB_WAIT_MS;
    for (;;) {
        size_t n = 0;
        bool complete = false;
        char msg[MSG_MAX];
        hodei_grpc_code code = get_logs(ch, job, &n, &complete, msg, sizeof msg);
        if (code == HODEI_GRPC_OK && n == want)
            return;
        cr_assert(hodei_mono_ms() < until, "job %s: %zu lines stored (%d %s)", job, n, (int)code,
                  msg);
        hodei_sleep_ms(500);
    }
}

Test(logs_readers, slow_get_logs_leave_heartbeats_and_other_calls_alone)
{
    char running[HODEI_ID_BUF], done[HODEI_ID_BUF], other[HODEI_ID_BUF], script[1024], sql[512],
        state[32];
    cluster_provider(&cl, 2, 600000, 2);
    char release[700];
    snprintf(release, sizeof release, "%s/release-running", cl.stack.state_dir);
    /* The finished job's log is read from its archive; the running one's
     * from JetStream. The running job is quiet while the store is stopped. */
    snprintf(script, sizeof script, "yes %s | head -n %d", LINE_TEXT, LINES);
    cluster_queue(&cl, script, 1, 0, done);
    cr_assert(cluster_wait_job(&cl, done, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job_log_archives WHERE job_id = '%s'", done);
    cr_assert(cluster_wait_sql(&cl, sql, 1, 60000), "no archive for job %s", done);
    snprintf(script, sizeof script, "yes %s | head -n %d; while [ ! -e '%s' ]; do sleep 0.2; done",
             LINE_TEXT, LINES, release);
    cluster_queue(&cl, script, 1, 0, running);
    hodei_rpc_channel *ch = channel();
    wait_lines(ch, running, LINES);
    wait_lines(ch, done, LINES);
    cr_assert(cluster_wait_sql(&cl, "SELECT count(*) FROM workers WHERE state IN ('READY', 'BUSY')",
                               2, 60000),
              "two workers");

    load l = {.jobs = {running, done}};
    pthread_mutex_init(&l.mu, NULL);
    pthread_t threads[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, load_main, &l), 0);
    hodei_sleep_ms(2000);

    /* The log store stops answering; the edge's readers of it wait. */
    beats b = {.age_max = 0};
    pthread_t sampler;
    cr_assert_eq(pthread_create(&sampler, NULL, beats_main, &b), 0);
    nats_stopped = nats_pid();
    cr_assert_eq(kill(nats_stopped, SIGSTOP), 0);
    int64_t stopped_at = hodei_mono_ms(), status_max = 0, queue = -1;
    char queue_fail[MSG_MAX] = "";
    int n_status = 0;
    char fail[MSG_MAX] = "";
    while (hodei_mono_ms() - stopped_at < STOP_MS) {
        n_status++;
        int64_t ms = status_ms(ch, running, fail, sizeof fail);
        if (ms > status_max)
            status_max = ms;
        if (queue < 0 && hodei_mono_ms() - stopped_at > STOP_MS / 2)
            queue = queue_ms(ch, other, queue_fail, sizeof queue_fail);
        hodei_sleep_ms(200);
    }
    int64_t stop_ms = hodei_mono_ms() - stopped_at;
    kill(nats_stopped, SIGCONT);
    nats_stopped = 0;
    hodei_sleep_ms(3000);
    atomic_store(&l.stop, true);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&l.mu);
    hodei_sleep_ms(2000); /* heartbeats and LOST after the load too */
    atomic_store(&b.stop, true);
    pthread_join(sampler, NULL);
    int64_t age_max = b.age_max, lost = b.lost;

    fprintf(stderr,
            "logs_readers: store stopped %lld ms with %d GetLogs clients (grpc.threads %d):"
            " oldest heartbeat %lld ms (ceiling %d; %d samples), slowest of %d GetJobStatus"
            " %lld ms, QueueJob %lld ms (ceiling %d); GetLogs ok %d, RESOURCE_EXHAUSTED %d,"
            " other %d (%s); workers LOST %lld\n",
            (long long)stop_ms, CLIENTS, GRPC_THREADS, (long long)age_max, BEAT_AGE_MAX, b.samples,
            n_status, (long long)status_max, (long long)queue, ANSWER_MS_MAX, atomic_load(&l.ok),
            atomic_load(&l.exhausted), atomic_load(&l.other), l.other_msg, (long long)lost);
    cr_expect_eq(lost, 0, "a worker went LOST while GetLogs waited for the log store");
    cr_expect_leq(age_max, BEAT_AGE_MAX, "the oldest heartbeat was %lld ms old",
                  (long long)age_max);
    cr_expect_leq(status_max, ANSWER_MS_MAX, "another client's GetJobStatus took %lld ms",
                  (long long)status_max);
    cr_expect(fail[0] == '\0', "%s", fail);
    cr_expect(queue >= 0 && queue <= ANSWER_MS_MAX, "another client's QueueJob took %lld ms",
              (long long)queue);
    cr_expect(queue_fail[0] == '\0', "%s", queue_fail);
    if (atomic_load(&l.exhausted) > 0)
        cr_expect(strstr(l.exhausted_msg, "logs.readers_queue_max") != NULL, "%s", l.exhausted_msg);
    /* The store answers again: both logs read back whole, the other
     * client's job ran. */
    wait_lines(ch, running, LINES);
    wait_lines(ch, done, LINES);
    if (other[0]) {
        cr_assert(cluster_wait_job(&cl, other, JOB_WAIT_MS, state, sizeof state));
        cr_expect_str_eq(state, "SUCCEEDED", "the other client's job");
    }
    FILE *f = fopen(release, "w");
    cr_assert(f);
    fclose(f);
    cr_assert(cluster_wait_job(&cl, running, JOB_WAIT_MS, state, sizeof state));
    cr_expect_str_eq(state, "SUCCEEDED", "the running job (its worker was not lost)");
    hodei_rpc_channel_destroy(ch);
}

/* ------------------------------------------------------- the queue's bound */

#define Q_READERS 2
#define Q_MAX 3 /* logs.readers_queue_max */
#define Q_CALLS (Q_READERS + Q_MAX)
#define Q_WAIT_MS 30000

static harness_stack qstack;
static edge_handle qedge;

static void q_setup(void)
{
    static const char *const env[] = {"HODEI_LOGS_READERS=2", "HODEI_LOGS_READERS_QUEUE_MAX=3",
                                      NULL};
    edge_stack_start(&qstack, &qedge, env);
}

static void q_teardown(void)
{
    edge_stack_stop(&qstack, &qedge);
}

TestSuite(logs_readers_queue, .init = q_setup, .fini = q_teardown, .timeout = 300);

static hodei_rpc_channel *q_channel(void)
{
    hodei_rpc_channel_opts o = {.target = qedge.target, .api_key = qstack.api_key};
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK, "%s", err.msg);
    return ch;
}

/* A value of the edge's /metrics (-1: not read). */
static long long q_metric(const char *name)
{
    static char body[256 * 1024];
    char needle[128];
    if (harness_http(qedge.health_port, "GET", "/metrics", body, sizeof body) != 200)
        return -1;
    snprintf(needle, sizeof needle, "\n%s ", name);
    const char *p = strstr(body, needle);
    return p ? strtoll(p + strlen(needle), NULL, 10) : -1;
}

typedef struct {
    const char *job;
    atomic_int *answered;
    hodei_grpc_code code;
    char msg[MSG_MAX];
} q_call;

static void *q_call_main(void *arg)
{
    q_call *c = arg;
    hodei_rpc_channel *ch = q_channel();
    size_t n = 0;
    bool complete = false;
    c->code = get_logs(ch, c->job, &n, &complete, c->msg, sizeof c->msg);
    atomic_fetch_add(c->answered, 1);
    hodei_rpc_channel_destroy(ch);
    return NULL;
}

/* Readers busy and the queue full: Q_MAX calls wait (the gauge says so, and
 * none is answered), the next is refused RESOURCE_EXHAUSTED naming
 * logs.readers_queue_max; once the readers go on, every waiting call is
 * answered OK. */
Test(logs_readers_queue, exactly_queue_max_calls_wait_and_the_next_is_refused)
{
    char job[HODEI_ID_BUF], msg[MSG_MAX];
    edge_queue_shell(&qedge, "true", NULL, job);
    hodei_rpc_channel *ch = q_channel();
    size_t n = 0;
    bool complete = false;
    cr_assert_eq(get_logs(ch, job, &n, &complete, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);

    /* The readers' first read (the job's row) waits for the lock. */
    PGconn *db = PQconnectdb(qstack.db_url);
    cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
    PGresult *r = PQexec(db, "BEGIN; LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(db));
    PQclear(r);
    atomic_int answered = 0;
    q_call calls[Q_CALLS];
    pthread_t threads[Q_CALLS];
    for (int i = 0; i < Q_CALLS; i++) {
        calls[i] = (q_call){.job = job, .answered = &answered};
        cr_assert_eq(pthread_create(&threads[i], NULL, q_call_main, &calls[i]), 0);
    }
    int64_t until = hodei_mono_ms() + Q_WAIT_MS;
    int64_t blocked = -1;
    long long waiting = -1;
    while (hodei_mono_ms() < until) {
        blocked = harness_sql_i64(&qstack, "SELECT count(*) FROM pg_locks"
                                           " WHERE relation = 'jobs'::regclass AND NOT granted");
        waiting = q_metric("hodei_edge_log_reads_waiting");
        /* both readers wait for the lock (they hold their calls until it
         * goes), then the queue is full: a steady state */
        if (blocked >= Q_READERS && waiting == Q_MAX)
            break;
        hodei_sleep_ms(50);
    }
    cr_assert(blocked >= Q_READERS && waiting == Q_MAX,
              "%d readers held and %d calls waiting (%lld held, %lld waiting)", Q_READERS, Q_MAX,
              (long long)blocked, waiting);
    cr_assert_eq(atomic_load(&answered), 0, "no call was answered while the readers were held");

    /* the next one: refused at once, naming the setting and its value */
    hodei_grpc_code code = get_logs(ch, job, &n, &complete, msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_RESOURCE_EXHAUSTED, "%d %s", (int)code, msg);
    cr_assert(strstr(msg, "logs.readers_queue_max: 3 GetLogs calls already wait"), "%s", msg);
    cr_assert_eq(q_metric("hodei_edge_log_reads_refused_total"), 1);
    cr_assert_eq(q_metric("hodei_edge_log_reads_waiting"), Q_MAX, "the refused call did not wait");
    cr_assert_eq(atomic_load(&answered), 0);

    /* the readers go on: every call that waited is answered */
    r = PQexec(db, "COMMIT");
    cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(db));
    PQclear(r);
    PQfinish(db);
    for (int i = 0; i < Q_CALLS; i++) {
        pthread_join(threads[i], NULL);
        cr_expect_eq(calls[i].code, HODEI_GRPC_OK, "call %d: %d %s", i, (int)calls[i].code,
                     calls[i].msg);
    }
    cr_assert_eq(q_metric("hodei_edge_log_reads_waiting"), 0);
    cr_assert_eq(q_metric("hodei_edge_log_reads_refused_total"), 1);
    cr_assert_eq(get_logs(ch, job, &n, &complete, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    hodei_rpc_channel_destroy(ch);
}
