/* hodei-worker (worker-agent/) as a real child process against a fake edge
 * inside this test process: a libs/rpc server with Register, WorkerStream
 * and UnregisterWorker that records every WorkerMessage and lets each test
 * send ServerMessages, drop the stream or refuse new ones. The fake stands
 * in for our own edge only (its worker side is written at the same time);
 * this test needs neither NATS nor PostgreSQL.
 *
 * The agent runs under the sanitizers of the test build: every test that
 * stops it asserts exit status 0 (LeakSanitizer turns a leak into exit 23). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hodei/id.h"
#include "hodei/rpc.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/worker.pb-c.h"

#define WORKER_ID "0190a0c0-0000-7000-8000-0000000000aa"
#define OTP_GOOD "otp-good-7f3a9c"
#define SESSION_TOKEN "sess-4b8d1e0f2a6c9e7d"
#define HEARTBEAT_MS 200
#define EVENTS_MAX 20000
#define WAIT_MS 10000
#define ARGS_MAX 16

/* ------------------------------------------------------------ fake edge */

typedef struct {
    int stream;                    /* 1, 2, ... in the order streams opened */
    Hodei__V1__WorkerMessage *msg; /* owned copy */
} edge_event;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    hodei_rpc_server *srv;
    int port;
    hodei_rpc_call *cur; /* the open stream (referenced) */
    int streams;
    edge_event ev[EVENTS_MAX];
    int n_ev;
    int registers, refused, unregisters;
    char unregister_token[128];
    char reg_version[32];
    double reg_cpu;
    int64_t reg_memory;
    size_t reg_labels;
    bool auto_ack;
    bool refuse_streams;
    int register_unavailable; /* answer UNAVAILABLE to this many Registers */
    int64_t heartbeat_ms;     /* in RegisterResponse */
    char peer[128];           /* client certificate SAN seen by Register */
} E;

static Hodei__V1__WorkerMessage *msg_copy(const Hodei__V1__WorkerMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(&m->base);
    uint8_t *buf = malloc(len + 1);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(&m->base, buf);
    Hodei__V1__WorkerMessage *c = hodei__v1__worker_message__unpack(NULL, len, buf);
    free(buf);
    cr_assert_not_null(c);
    return c;
}

static void on_register(hodei_rpc_call *call, const ProtobufCMessage *req, void *ctx)
{
    const Hodei__V1__RegisterRequest *r = (const void *)req;
    pthread_mutex_lock(&E.mu);
    E.registers++;
    snprintf(E.reg_version, sizeof E.reg_version, "%s", r->agent_version);
    E.reg_cpu = r->capacity ? r->capacity->cpu_cores : -1;
    E.reg_memory = r->capacity ? r->capacity->memory_bytes : -1;
    E.reg_labels = r->n_labels;
    bool ok = strcmp(r->token, OTP_GOOD) == 0 && strcmp(r->worker_id, WORKER_ID) == 0;
    if (!ok)
        E.refused++;
    bool unavailable = E.register_unavailable > 0;
    if (unavailable)
        E.register_unavailable--;
    const char *peer = hodei_rpc_call_peer_identity(call);
    snprintf(E.peer, sizeof E.peer, "%s", peer ? peer : "");
    int64_t heartbeat_ms = E.heartbeat_ms;
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
    if (unavailable) {
        hodei_rpc_call_fail(call, HODEI_GRPC_UNAVAILABLE, "fake edge: database unavailable");
        return;
    }
    if (!ok) {
        hodei_rpc_call_fail(call, HODEI_GRPC_UNAUTHENTICATED, "bootstrap token is not valid");
        return;
    }
    Hodei__V1__RegisterResponse resp = HODEI__V1__REGISTER_RESPONSE__INIT;
    resp.worker_id = WORKER_ID;
    resp.session_token = SESSION_TOKEN;
    resp.heartbeat_interval_ms = heartbeat_ms;
    hodei_rpc_call_reply(call, &resp.base);
}

static void on_unregister(hodei_rpc_call *call, const ProtobufCMessage *req, void *ctx)
{
    const Hodei__V1__UnregisterWorkerRequest *r = (const void *)req;
    pthread_mutex_lock(&E.mu);
    E.unregisters++;
    snprintf(E.unregister_token, sizeof E.unregister_token, "%s", r->session_token);
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
    Hodei__V1__UnregisterWorkerResponse resp = HODEI__V1__UNREGISTER_WORKER_RESPONSE__INIT;
    hodei_rpc_call_reply(call, &resp.base);
}

static void on_stream_call(hodei_rpc_call *call, const ProtobufCMessage *req, void *ctx)
{
    pthread_mutex_lock(&E.mu);
    if (E.refuse_streams) {
        pthread_mutex_unlock(&E.mu);
        hodei_rpc_call_fail(call, HODEI_GRPC_UNAVAILABLE, "fake edge refuses streams");
        return;
    }
    int n = ++E.streams;
    hodei_rpc_call_set_user(call, (void *)(intptr_t)n);
    if (E.cur)
        hodei_rpc_call_unref(E.cur);
    hodei_rpc_call_ref(call);
    E.cur = call;
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
}

static void edge_ack_locked(hodei_rpc_call *call, const Hodei__V1__JobResult *r)
{
    Hodei__V1__JobResultAck ack = HODEI__V1__JOB_RESULT_ACK__INIT;
    Hodei__V1__ServerMessage out = HODEI__V1__SERVER_MESSAGE__INIT;
    ack.job_id = r->job_id;
    ack.epoch = r->epoch;
    ack.accepted = true;
    out.body_case = HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK;
    out.result_ack = &ack;
    hodei_rpc_call_send(call, &out.base);
}

/* Keepalives are answered with their nonce, as the edge does. */
static void edge_keepalive_locked(hodei_rpc_call *call, int64_t nonce)
{
    Hodei__V1__Keepalive k = HODEI__V1__KEEPALIVE__INIT;
    Hodei__V1__ServerMessage out = HODEI__V1__SERVER_MESSAGE__INIT;
    k.nonce = nonce;
    out.body_case = HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE;
    out.keepalive = &k;
    hodei_rpc_call_send(call, &out.base);
}

static void on_stream_message(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    const Hodei__V1__WorkerMessage *m = (const void *)msg;
    int n = (int)(intptr_t)hodei_rpc_call_user(call);
    if (n == 0)
        return;
    Hodei__V1__WorkerMessage *c = msg_copy(m);
    pthread_mutex_lock(&E.mu);
    bool first = true;
    for (int i = 0; i < E.n_ev; i++)
        first = first && E.ev[i].stream != n;
    bool bad_hello = first && (m->body_case != HODEI__V1__WORKER_MESSAGE__BODY_HELLO ||
                               strcmp(m->hello->session_token, SESSION_TOKEN) != 0);
    if (E.n_ev < EVENTS_MAX) {
        E.ev[E.n_ev].stream = n;
        E.ev[E.n_ev++].msg = c;
    } else {
        protobuf_c_message_free_unpacked(&c->base, NULL);
    }
    if (!bad_hello && E.auto_ack && m->body_case == HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT)
        edge_ack_locked(call, m->job_result);
    if (!bad_hello && m->body_case == HODEI__V1__WORKER_MESSAGE__BODY_KEEPALIVE)
        edge_keepalive_locked(call, m->keepalive->nonce);
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
    if (bad_hello)
        hodei_rpc_call_fail(call, HODEI_GRPC_UNAUTHENTICATED, "first message must be Hello");
}

static void on_stream_close(hodei_rpc_call *call, bool cancelled, void *ctx)
{
    pthread_mutex_lock(&E.mu);
    if (E.cur == call) {
        E.cur = NULL;
        hodei_rpc_call_unref(call);
    }
    pthread_cond_broadcast(&E.cv);
    pthread_mutex_unlock(&E.mu);
    if (!cancelled)
        hodei_rpc_call_finish(call, HODEI_GRPC_OK, "bye");
}

static const hodei_rpc_method m_register = {
    .path = "/hodei.v1.WorkerAgentService/Register",
    .kind = HODEI_RPC_UNARY,
    .request = &hodei__v1__register_request__descriptor,
    .on_call = on_register,
};
static const hodei_rpc_method m_unregister = {
    .path = "/hodei.v1.WorkerAgentService/UnregisterWorker",
    .kind = HODEI_RPC_UNARY,
    .request = &hodei__v1__unregister_worker_request__descriptor,
    .on_call = on_unregister,
};
static const hodei_rpc_method m_stream = {
    .path = "/hodei.v1.WorkerAgentService/WorkerStream",
    .kind = HODEI_RPC_BIDI,
    .request = &hodei__v1__worker_message__descriptor,
    .on_call = on_stream_call,
    .on_message = on_stream_message,
    .on_close = on_stream_close,
};

/* tls_dir: NULL = insecure, else mutual TLS with gen-certs files there;
 * port 0 = any free one. */
static void edge_start_on(const char *tls_dir, int port)
{
    hodei_err err;
    char cert[700], key[700], ca[700], listen[64];
    pthread_mutex_init(&E.mu, NULL);
    pthread_cond_init(&E.cv, NULL);
    E.auto_ack = true;
    E.heartbeat_ms = HEARTBEAT_MS;
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    hodei_rpc_server_opts o = {.listen_addr = listen, .threads = 2};
    if (tls_dir) {
        snprintf(cert, sizeof cert, "%s/server.pem", tls_dir);
        snprintf(key, sizeof key, "%s/server.key", tls_dir);
        snprintf(ca, sizeof ca, "%s/ca.pem", tls_dir);
        o.tls_cert_file = cert;
        o.tls_key_file = key;
        o.tls_client_ca_file = ca;
    }
    cr_assert_eq(hodei_rpc_server_create(&o, &E.srv, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_rpc_server_add(E.srv, &m_register, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_rpc_server_add(E.srv, &m_unregister, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_rpc_server_add(E.srv, &m_stream, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_rpc_server_start(E.srv, &err), HODEI_OK, "%s", err.msg);
    E.port = hodei_rpc_server_port(E.srv);
}

static void edge_start(void)
{
    edge_start_on(NULL, 0);
}

static void edge_stop(void)
{
    pthread_mutex_lock(&E.mu);
    hodei_rpc_call *c = E.cur;
    E.cur = NULL;
    pthread_mutex_unlock(&E.mu);
    if (c)
        hodei_rpc_call_unref(c);
    hodei_rpc_server_destroy(E.srv);
    E.srv = NULL;
    for (int i = 0; i < E.n_ev; i++)
        protobuf_c_message_free_unpacked(&E.ev[i].msg->base, NULL);
    E.n_ev = 0;
    E.streams = E.registers = E.refused = E.unregisters = 0;
    E.refuse_streams = false;
    E.register_unavailable = 0;
}

/* Sends one ServerMessage on the open stream (waits for one to be open). */
static void edge_send(const Hodei__V1__ServerMessage *m)
{
    int64_t deadline = hodei_mono_ms() + WAIT_MS;
    pthread_mutex_lock(&E.mu);
    while (!E.cur && hodei_mono_ms() < deadline) {
        pthread_mutex_unlock(&E.mu);
        hodei_sleep_ms(10);
        pthread_mutex_lock(&E.mu);
    }
    hodei_rpc_call *c = E.cur;
    if (c)
        hodei_rpc_call_ref(c);
    pthread_mutex_unlock(&E.mu);
    cr_assert_not_null(c, "no stream open to send on");
    cr_assert_eq(hodei_rpc_call_send(c, &m->base), HODEI_OK);
    hodei_rpc_call_unref(c);
}

/* Ends the open stream as a failing edge would. */
static void edge_drop_stream(void)
{
    pthread_mutex_lock(&E.mu);
    hodei_rpc_call *c = E.cur;
    E.cur = NULL;
    pthread_mutex_unlock(&E.mu);
    cr_assert_not_null(c, "no stream to drop");
    hodei_rpc_call_finish(c, HODEI_GRPC_UNAVAILABLE, "fake edge dropped the stream");
    hodei_rpc_call_unref(c);
}

static const char *event_job(const Hodei__V1__WorkerMessage *m)
{
    switch (m->body_case) {
    case HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK:
        return m->run_job_ack->job_id;
    case HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH:
        return m->log_batch->job_id;
    case HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT:
        return m->job_result->job_id;
    default:
        return NULL;
    }
}

/* Index of the first event at or after `from` of body case bc (and for job
 * when not NULL), waiting up to ms; -1 when none came. */
static int edge_wait(int from, Hodei__V1__WorkerMessage__BodyCase bc, const char *job, int64_t ms)
{
    int64_t deadline = hodei_mono_ms() + ms;
    int found = -1;
    pthread_mutex_lock(&E.mu);
    for (;;) {
        for (int i = from; i < E.n_ev && found < 0; i++) {
            const Hodei__V1__WorkerMessage *m = E.ev[i].msg;
            const char *j = event_job(m);
            if (m->body_case == bc && (!job || (j && strcmp(j, job) == 0)))
                found = i;
        }
        if (found >= 0 || hodei_mono_ms() >= deadline)
            break;
        pthread_mutex_unlock(&E.mu);
        hodei_sleep_ms(10);
        pthread_mutex_lock(&E.mu);
    }
    pthread_mutex_unlock(&E.mu);
    return found;
}

static int edge_count(Hodei__V1__WorkerMessage__BodyCase bc, const char *job)
{
    int n = 0;
    pthread_mutex_lock(&E.mu);
    for (int i = 0; i < E.n_ev; i++) {
        const char *j = event_job(E.ev[i].msg);
        n += E.ev[i].msg->body_case == bc && (!job || (j && strcmp(j, job) == 0));
    }
    pthread_mutex_unlock(&E.mu);
    return n;
}

/* Events are only appended, so a pointer stays valid until edge_stop. */
static const Hodei__V1__WorkerMessage *edge_event_msg(int i, int *stream)
{
    pthread_mutex_lock(&E.mu);
    cr_assert_lt(i, E.n_ev);
    const Hodei__V1__WorkerMessage *m = E.ev[i].msg;
    if (stream)
        *stream = E.ev[i].stream;
    pthread_mutex_unlock(&E.mu);
    return m;
}

static int edge_int(const int *field)
{
    pthread_mutex_lock(&E.mu);
    int v = *field;
    pthread_mutex_unlock(&E.mu);
    return v;
}

static bool edge_wait_int(const int *field, int want, int64_t ms)
{
    int64_t deadline = hodei_mono_ms() + ms;
    while (edge_int(field) < want && hodei_mono_ms() < deadline)
        hodei_sleep_ms(10);
    return edge_int(field) >= want;
}

/* Index of the Hello that opened stream n (waits), or -1. */
static int edge_hello_of(int n)
{
    int64_t deadline = hodei_mono_ms() + WAIT_MS;
    int from = 0;
    for (;;) {
        int64_t left = deadline - hodei_mono_ms();
        int i = edge_wait(from, HODEI__V1__WORKER_MESSAGE__BODY_HELLO, NULL, left > 0 ? left : 0);
        if (i < 0)
            return -1;
        int s = 0;
        edge_event_msg(i, &s);
        if (s == n)
            return i;
        from = i + 1;
    }
}

/* ------------------------------------------------------------ jobs */

static void send_run(const char *job, int64_t epoch, const char *const *argv, const char *secrets)
{
    Hodei__V1__ShellCommand sc = HODEI__V1__SHELL_COMMAND__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__RunJob rj = HODEI__V1__RUN_JOB__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    char *args[ARGS_MAX];
    size_t n = 0;
    while (argv[n + 1]) {
        cr_assert_lt(n, ARGS_MAX);
        args[n] = (char *)argv[n + 1];
        n++;
    }
    sc.command = (char *)argv[0];
    sc.n_args = n;
    sc.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &sc;
    spec.name = "test";
    rj.job_id = (char *)job;
    rj.epoch = epoch;
    rj.attempt = 1;
    rj.spec = argv[0][0] ? &spec : NULL; /* "" = a RunJob without a spec */
    if (secrets) {
        rj.secrets_json.data = (uint8_t *)secrets;
        rj.secrets_json.len = strlen(secrets);
    }
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB;
    m.run_job = &rj;
    edge_send(&m);
}

static void send_sh(const char *job, int64_t epoch, const char *script)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    send_run(job, epoch, argv, NULL);
}

static void send_cancel(const char *job, int64_t epoch)
{
    Hodei__V1__CancelJob cj = HODEI__V1__CANCEL_JOB__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    cj.job_id = (char *)job;
    cj.epoch = epoch;
    cj.reason = "test";
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB;
    m.cancel_job = &cj;
    edge_send(&m);
}

static void send_drain(void)
{
    Hodei__V1__Drain dr = HODEI__V1__DRAIN__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    dr.reason = "idle ttl";
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_DRAIN;
    m.drain = &dr;
    edge_send(&m);
}

static void send_ack(const char *job, int64_t epoch)
{
    Hodei__V1__JobResultAck ack = HODEI__V1__JOB_RESULT_ACK__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    ack.job_id = (char *)job;
    ack.epoch = epoch;
    ack.accepted = true;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK;
    m.result_ack = &ack;
    edge_send(&m);
}

/* The job's result (waits for it); *index_out gets its event index. */
static const Hodei__V1__JobResult *wait_result(const char *job, int from, int64_t ms,
                                               int *index_out)
{
    int i = edge_wait(from, HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT, job, ms);
    cr_assert_geq(i, 0, "no JobResult for %s within %lld ms", job, (long long)ms);
    if (index_out)
        *index_out = i;
    return edge_event_msg(i, NULL)->job_result;
}

/* Every output line of job received so far, in order, one per '\n', with
 * re-sent copies of a batch skipped as the edge does; the sequence numbers
 * must increase. Returns how many lines. */
static size_t job_output(const char *job, char *out, size_t out_len)
{
    size_t used = 0, lines = 0;
    uint64_t last_seq = 0;
    out[0] = '\0';
    pthread_mutex_lock(&E.mu);
    for (int i = 0; i < E.n_ev; i++) {
        const Hodei__V1__WorkerMessage *m = E.ev[i].msg;
        if (m->body_case != HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH ||
            strcmp(m->log_batch->job_id, job) != 0)
            continue;
        const Hodei__V1__LogBatch *b = m->log_batch;
        if (b->n_lines > 0 && b->lines[0]->sequence <= last_seq) {
            /* written again after a broken stream: the edge drops it by its
             * first sequence (Nats-Msg-Id); it must be a whole copy */
            cr_assert_leq(b->lines[b->n_lines - 1]->sequence, last_seq, "overlapping batch");
            continue;
        }
        for (size_t k = 0; k < m->log_batch->n_lines; k++) {
            const Hodei__V1__LogLine *l = m->log_batch->lines[k];
            cr_assert_gt(l->sequence, last_seq, "sequence %llu after %llu",
                         (unsigned long long)l->sequence, (unsigned long long)last_seq);
            last_seq = l->sequence;
            int w = snprintf(out + used, out_len - used, "%.*s\n", (int)l->data.len,
                             (const char *)l->data.data);
            cr_assert(w >= 0 && (size_t)w < out_len - used, "output buffer too small");
            used += (size_t)w;
            lines++;
        }
    }
    pthread_mutex_unlock(&E.mu);
    return lines;
}

/* ------------------------------------------------------------ the agent */

static harness_stack ST; /* only a state folder: no servers are started */
static harness_proc AGENT;

static void agent_start_env(const char *otp, const char *const *more)
{
    static char server[64], otp_kv[128];
    const char *env[32];
    size_t n = 0;
    snprintf(server, sizeof server, "HODEI_SERVER=127.0.0.1:%d", E.port);
    snprintf(otp_kv, sizeof otp_kv, "HODEI_OTP=%s", otp);
    env[n++] = server;
    env[n++] = "HODEI_WORKER_ID=" WORKER_ID;
    env[n++] = otp_kv;
    env[n++] = "HODEI_WORKER_LABELS=zone=test,disk=ssd";
    env[n++] = "HODEI_WORKER_RECONNECT_MIN=50ms";
    env[n++] = "HODEI_WORKER_RECONNECT_MAX=500ms";
    env[n++] = "HODEI_WORKER_KILL_GRACE=2s";
    for (size_t i = 0; more && more[i]; i++) {
        cr_assert_lt(n, 30);
        env[n++] = more[i];
    }
    env[n] = NULL;
    const char *argv[] = {"hodei-worker", NULL};
    harness_proc_start(&ST, &AGENT, argv, env);
}

static void agent_start(void)
{
    agent_start_env(OTP_GOOD, NULL);
}

/* The agent registered and said Hello on its first stream. */
static const Hodei__V1__Hello *agent_ready(void)
{
    int i = edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_HELLO, NULL, WAIT_MS);
    cr_assert_geq(i, 0, "no Hello from the agent (log %s)", AGENT.log_path);
    return edge_event_msg(i, NULL)->hello;
}

static int agent_stop(int sig, int64_t ms)
{
    int status = harness_proc_stop(&AGENT, sig, ms);
    cr_assert_neq(status, -1, "the agent did not exit within %lld ms", (long long)ms);
    return status;
}

static void assert_clean_exit(int status)
{
    cr_assert(WIFEXITED(status), "agent killed by signal %d", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0, "agent exit status %d (see %s)", WEXITSTATUS(status),
                 AGENT.log_path);
}

static void setup(void)
{
    const char *root = getenv("HODEI_ROOT"), *bin = getenv("HODEI_BIN");
    cr_assert(root && bin, "HODEI_ROOT and HODEI_BIN must be set (ctest does)");
    memset(&ST, 0, sizeof ST);
    snprintf(ST.state_dir, sizeof ST.state_dir, "/tmp/hodei-agent-test-XXXXXX");
    cr_assert_not_null(mkdtemp(ST.state_dir));
    snprintf(ST.root, sizeof ST.root, "%s", root);
    snprintf(ST.bin, sizeof ST.bin, "%s", bin);
    hodei_rpc_global_init();
    edge_start();
}

static void teardown(void)
{
    if (AGENT.pid > 0 && harness_proc_alive(&AGENT))
        harness_proc_stop(&AGENT, SIGKILL, 5000);
    edge_stop();
    hodei_rpc_global_shutdown();
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ST.state_dir);
    if (!getenv("KEEP_LOGS"))
        cr_assert_eq(system(cmd), 0);
}

TestSuite(worker_agent, .init = setup, .fini = teardown, .timeout = 120);

static void new_job(char id[HODEI_ID_BUF])
{
    hodei_id_new(id);
}

/* ------------------------------------------------------------ tests */

Test(worker_agent, registers_with_the_token_and_hello_carries_the_session)
{
    agent_start();
    const Hodei__V1__Hello *h = agent_ready();
    cr_assert_str_eq(h->worker_id, WORKER_ID);
    cr_assert_str_eq(h->session_token, SESSION_TOKEN);
    cr_assert_eq(h->n_running_job_ids, 0);
    cr_assert_eq(edge_int(&E.registers), 1);
    pthread_mutex_lock(&E.mu);
    cr_assert_str_eq(E.reg_version, "0.1.0");
    cr_assert_gt(E.reg_cpu, 0);
    cr_assert_gt(E.reg_memory, 0);
    cr_assert_eq(E.reg_labels, 2);
    pthread_mutex_unlock(&E.mu);
    /* heartbeats every HEARTBEAT_MS with usage */
    int i = edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_HEARTBEAT, NULL, WAIT_MS);
    cr_assert_geq(i, 0);
    int j = edge_wait(i + 1, HODEI__V1__WORKER_MESSAGE__BODY_HEARTBEAT, NULL, WAIT_MS);
    cr_assert_geq(j, 0);
    const Hodei__V1__Heartbeat *hb = edge_event_msg(j, NULL)->heartbeat;
    cr_assert_not_null(hb->usage);
    cr_assert_gt(hb->usage->memory_bytes_total, 0);
    cr_assert_gt(hb->usage->memory_bytes_used, 0);
    cr_assert_geq(hb->usage->cpu_cores_used, 0);
    cr_assert_eq(hb->usage->running_jobs, 0);
    cr_assert(!harness_log_contains(&AGENT, OTP_GOOD, 0), "the token reached the log");
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, seq_1000_streams_every_line_in_order_then_succeeds)
{
    char job[HODEI_ID_BUF];
    new_job(job);
    agent_start();
    agent_ready();
    const char *argv[] = {"seq", "1", "1000", NULL};
    send_run(job, 1, argv, NULL);
    int ack = edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK, job, WAIT_MS);
    cr_assert_geq(ack, 0, "no RunJobAck");
    cr_assert_eq(edge_event_msg(ack, NULL)->run_job_ack->epoch, 1);
    int ri;
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, &ri);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "state %d error %s", r->state,
                 r->error);
    cr_assert_eq(r->exit_code, 0);
    cr_assert_eq(r->epoch, 1);
    cr_assert_not_null(r->started_at);
    cr_assert_not_null(r->finished_at);
    cr_assert_geq(r->finished_at->seconds, r->started_at->seconds);
    int first_log = edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH, job, 0);
    cr_assert(ack < first_log && first_log < ri, "order: ack %d, first batch %d, result %d", ack,
              first_log, ri);
    cr_assert_eq(edge_wait(ri, HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH, job, 0), -1,
                 "output after the result");
    static char out[16384], want[16384];
    cr_assert_eq(job_output(job, out, sizeof out), 1000);
    size_t w = 0;
    for (int k = 1; k <= 1000; k++)
        w += (size_t)snprintf(want + w, sizeof want - w, "%d\n", k);
    cr_assert_str_eq(out, want);
    cr_assert(harness_log_contains(&AGENT, "result acknowledged", WAIT_MS));
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, exit_7_fails_with_7)
{
    char job[HODEI_ID_BUF];
    new_job(job);
    agent_start();
    agent_ready();
    send_sh(job, 3, "exit 7");
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r->exit_code, 7);
    cr_assert_eq(r->epoch, 3);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, repeated_run_job_is_acked_again_and_runs_once_and_busy_is_refused)
{
    char job[HODEI_ID_BUF], other[HODEI_ID_BUF], script[1024], out[256];
    new_job(job);
    new_job(other);
    snprintf(script, sizeof script, "echo ran >> '%s/count'; sleep 1", ST.state_dir);
    agent_start();
    agent_ready();
    send_sh(job, 1, script);
    cr_assert_geq(edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK, job, WAIT_MS), 0);
    send_sh(job, 1, script);         /* the edge re-sends: same job, same epoch */
    send_sh(other, 1, "echo never"); /* another job while busy */
    const Hodei__V1__JobResult *busy = wait_result(other, 0, WAIT_MS, NULL);
    cr_assert_eq(busy->state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert(strstr(busy->error, "busy") && strstr(busy->error, job), "error: %s", busy->error);
    cr_assert_eq(edge_count(HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK, other), 0);
    int ri;
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, &ri);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error %s", r->error);
    cr_assert_eq(edge_count(HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK, job), 2);
    /* after the result was acknowledged, the same RunJob again is not run either */
    cr_assert(harness_log_contains(&AGENT, "result acknowledged", WAIT_MS));
    send_sh(job, 1, script);
    cr_assert(harness_log_contains(&AGENT, "already finished here", WAIT_MS));
    hodei_sleep_ms(300);
    cr_assert_eq(edge_count(HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT, job), 1);
    snprintf(script, sizeof script, "wc -l < '%s/count'", ST.state_dir);
    cr_assert_eq(harness_sh(&ST, out, sizeof out, "%s", script), 0);
    cr_assert_eq(strtol(out, NULL, 10), 1, "the job ran %s times", out);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, cancel_of_sleep_30_ends_cancelled_quickly)
{
    char job[HODEI_ID_BUF];
    new_job(job);
    agent_start();
    agent_ready();
    const char *argv[] = {"sleep", "30", NULL};
    send_run(job, 2, argv, NULL);
    cr_assert_geq(edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK, job, WAIT_MS), 0);
    cr_assert(harness_log_contains(&AGENT, "job running", WAIT_MS));
    int64_t t0 = hodei_mono_ms();
    send_cancel(job, 2);
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    int64_t took = hodei_mono_ms() - t0;
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED);
    cr_assert_lt(took, 3000, "cancel took %lld ms", (long long)took);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, stream_dropped_mid_job_reconnects_and_result_is_resent_until_acked)
{
    char job[HODEI_ID_BUF];
    new_job(job);
    const char *env[] = {"HODEI_WORKER_RESULT_RESEND=1s", NULL};
    agent_start_env(OTP_GOOD, env);
    agent_ready();
    pthread_mutex_lock(&E.mu);
    E.auto_ack = false;
    pthread_mutex_unlock(&E.mu);
    send_sh(job, 5, "i=0; while [ $i -lt 30 ]; do i=$((i+1)); echo line-$i; sleep 0.1; done");
    cr_assert_geq(edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH, job, WAIT_MS), 0);
    edge_drop_stream();
    /* the second stream: Hello names the running job */
    int h2 = edge_hello_of(2);
    cr_assert_geq(h2, 0, "no Hello on a second stream");
    const Hodei__V1__Hello *h = edge_event_msg(h2, NULL)->hello;
    cr_assert_str_eq(h->session_token, SESSION_TOKEN);
    cr_assert_eq(h->n_running_job_ids, 1);
    cr_assert_str_eq(h->running_job_ids[0], job);
    cr_assert_eq(edge_int(&E.registers), 1, "registered again instead of resuming");
    /* the result arrives on the new stream; unacknowledged, it comes again */
    int r1;
    const Hodei__V1__JobResult *r = wait_result(job, h2, WAIT_MS, &r1);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error %s", r->error);
    int s1;
    edge_event_msg(r1, &s1);
    cr_assert_eq(s1, 2);
    int r2;
    wait_result(job, r1 + 1, 5000, &r2); /* worker.result_resend = 1s */
    /* a reconnect re-sends it too; acknowledged, it stops */
    edge_drop_stream();
    cr_assert(edge_wait_int(&E.streams, 3, WAIT_MS));
    int h3 = edge_hello_of(3);
    cr_assert_geq(h3, 0, "no Hello on a third stream");
    /* finished, result not acknowledged: Hello still names the job, so the
     * edge does not end it as "worker restarted" before the result lands */
    const Hodei__V1__Hello *h3m = edge_event_msg(h3, NULL)->hello;
    cr_assert_eq(h3m->n_running_job_ids, 1);
    cr_assert_str_eq(h3m->running_job_ids[0], job);
    int r3;
    wait_result(job, h3, WAIT_MS, &r3);
    int s3;
    edge_event_msg(r3, &s3);
    cr_assert_eq(s3, 3);
    send_ack(job, 5);
    cr_assert(harness_log_contains(&AGENT, "result acknowledged", WAIT_MS));
    int n = edge_count(HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT, job);
    hodei_sleep_ms(2500);
    cr_assert_eq(edge_count(HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT, job), n,
                 "sent again after the ack");
    /* every line arrived once, in order, across the three streams */
    static char out[4096], want[4096];
    size_t w = 0;
    for (int k = 1; k <= 30; k++)
        w += (size_t)snprintf(want + w, sizeof want - w, "line-%d\n", k);
    cr_assert_eq(job_output(job, out, sizeof out), 30, "output:\n%s", out);
    cr_assert_str_eq(out, want);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, output_beyond_the_buffer_while_disconnected_is_dropped_with_a_warning_line)
{
    char job[HODEI_ID_BUF];
    new_job(job);
    const char *env[] = {"HODEI_WORKER_BUFFER_MAX=65536", NULL};
    agent_start_env(OTP_GOOD, env);
    agent_ready();
    pthread_mutex_lock(&E.mu);
    E.refuse_streams = true;
    pthread_mutex_unlock(&E.mu);
    send_sh(job, 1, "sleep 0.5; seq 1 100000; echo last");
    cr_assert_geq(edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK, job, WAIT_MS), 0);
    edge_drop_stream();
    cr_assert(harness_log_contains(&AGENT, "job finished", WAIT_MS));
    cr_assert(harness_log_contains(&AGENT, "dropping the oldest output", 0));
    pthread_mutex_lock(&E.mu);
    E.refuse_streams = false;
    pthread_mutex_unlock(&E.mu);
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    static char out[256 * 1024];
    size_t lines = job_output(job, out, sizeof out); /* sequences still increase */
    cr_assert_lt(lines, 100001, "nothing was dropped");
    cr_assert_gt(lines, 100, "too little kept: %zu lines", lines);
    cr_assert(strstr(out, "lines of output (sequences 1..") != NULL, "no warning line:\n%.300s",
              out);
    cr_assert(strstr(out, "\n100000\nlast\n") != NULL, "the newest output is missing");
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, secrets_reach_stdin_and_are_redacted)
{
    char job[HODEI_ID_BUF], bad[HODEI_ID_BUF], nospec[HODEI_ID_BUF];
    new_job(job);
    new_job(bad);
    new_job(nospec);
    agent_start();
    agent_ready();
    const char *argv[] = {"sh", "-c",
                          "read -r line; case \"$line\" in *hunter2-secret*) echo SEEN;; esac; "
                          "echo \"stdin: $line\"; echo \"again hunter2-secret\"",
                          NULL};
    send_run(job, 1, argv, "{\"DB_PASSWORD\": \"hunter2-secret\", \"T\": \"a\\u00e9\\nb\"}");
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error %s", r->error);
    char out[4096];
    job_output(job, out, sizeof out);
    cr_assert(strstr(out, "SEEN\n") == out, "the job did not get the secret:\n%s", out);
    cr_assert(strstr(out, "stdin: {") && strstr(out, "[REDACTED]"), "output:\n%s", out);
    cr_assert(strstr(out, "again [REDACTED]\n"), "output:\n%s", out);
    cr_assert_null(strstr(out, "hunter2"), "a secret leaked:\n%s", out);
    /* bad secrets and a RunJob without a spec: FAILED naming the field, never run */
    const char *echo[] = {"echo", "never", NULL};
    send_run(bad, 1, echo, "{\"A\": \"hunter2-secret\", \"B\": 5}");
    r = wait_result(bad, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert(strstr(r->error, "RunJob.secrets_json") && strstr(r->error, "\"B\""), "error: %s",
              r->error);
    cr_assert_null(strstr(r->error, "hunter2"));
    const char *none[] = {"", NULL};
    send_run(nospec, 1, none, NULL);
    r = wait_result(nospec, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert(strstr(r->error, "RunJob.spec"), "error: %s", r->error);
    cr_assert_eq(edge_count(HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK, bad), 0);
    cr_assert_eq(edge_count(HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH, bad), 0);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
    cr_assert(!harness_log_contains(&AGENT, "hunter2", 0), "a secret reached the agent's log");
}

Test(worker_agent, refused_token_exits_1_with_a_clear_message)
{
    agent_start_env("otp-wrong-1", NULL);
    int status = harness_proc_wait(&AGENT, WAIT_MS);
    cr_assert_neq(status, -1, "the agent kept running with a refused token");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    cr_assert(harness_log_contains(&AGENT, "registration refused by", 0));
    cr_assert(harness_log_contains(&AGENT, "UNAUTHENTICATED: bootstrap token is not valid", 0));
    cr_assert(!harness_log_contains(&AGENT, "otp-wrong-1", 0), "the token reached the log");
    cr_assert_eq(edge_int(&E.registers), 1, "a refused token was tried again");
}

Test(worker_agent, sigterm_while_idle_unregisters_and_exits_0)
{
    agent_start();
    agent_ready();
    int64_t t0 = hodei_mono_ms();
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
    cr_assert_lt(hodei_mono_ms() - t0, 3000);
    cr_assert_eq(edge_int(&E.unregisters), 1);
    pthread_mutex_lock(&E.mu);
    cr_assert_str_eq(E.unregister_token, SESSION_TOKEN);
    pthread_mutex_unlock(&E.mu);
}

Test(worker_agent, sigterm_lets_the_running_job_finish_then_cancels_past_the_drain_timeout)
{
    char job[HODEI_ID_BUF], slow[HODEI_ID_BUF];
    new_job(job);
    new_job(slow);
    const char *env[] = {"HODEI_WORKER_DRAIN_TIMEOUT=1500ms", NULL};
    agent_start_env(OTP_GOOD, env);
    agent_ready();
    send_sh(job, 1, "sleep 0.7; echo finished");
    cr_assert(harness_log_contains(&AGENT, "job running", WAIT_MS));
    cr_assert_eq(kill(AGENT.pid, SIGTERM), 0);
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error %s", r->error);
    assert_clean_exit(agent_stop(0, WAIT_MS));
    cr_assert_eq(edge_int(&E.unregisters), 1);
    /* a job longer than the drain timeout is cancelled, and still reported */
    agent_start_env(OTP_GOOD, env);
    cr_assert(edge_wait_int(&E.streams, 2, WAIT_MS));
    const char *argv[] = {"sleep", "30", NULL};
    send_run(slow, 1, argv, NULL);
    cr_assert(harness_log_contains(&AGENT, "job running", WAIT_MS));
    cr_assert_eq(kill(AGENT.pid, SIGTERM), 0);
    r = wait_result(slow, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED);
    assert_clean_exit(agent_stop(0, WAIT_MS));
    cr_assert_eq(edge_int(&E.unregisters), 2);
}

Test(worker_agent, registration_is_retried_while_the_edge_is_unavailable)
{
    pthread_mutex_lock(&E.mu);
    E.register_unavailable = 3;
    pthread_mutex_unlock(&E.mu);
    agent_start();
    agent_ready();
    cr_assert_eq(edge_int(&E.registers), 4, "3 refusals then a success");
    cr_assert(harness_log_contains(&AGENT, "registration at 127.0.0.1:", 0));
    cr_assert(harness_log_contains(&AGENT,
                                   "UNAVAILABLE: fake edge: database unavailable; "
                                   "retrying in",
                                   0));
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, a_bad_register_response_exits_1_naming_the_field)
{
    pthread_mutex_lock(&E.mu);
    E.heartbeat_ms = 0;
    pthread_mutex_unlock(&E.mu);
    agent_start();
    int status = harness_proc_wait(&AGENT, WAIT_MS);
    cr_assert(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 1, "status %d", status);
    cr_assert(harness_log_contains(&AGENT,
                                   "RegisterResponse.heartbeat_interval_ms: 0 is outside "
                                   "[100, 3600000]",
                                   0));
}

Test(worker_agent, a_bad_server_message_is_reported_and_the_stream_goes_on)
{
    char job[HODEI_ID_BUF];
    new_job(job);
    agent_start();
    agent_ready();
    Hodei__V1__ServerMessage empty = HODEI__V1__SERVER_MESSAGE__INIT;
    edge_send(&empty);
    Hodei__V1__CancelJob cj = HODEI__V1__CANCEL_JOB__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    cj.job_id = "not-a-uuid";
    cj.epoch = 1;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB;
    m.cancel_job = &cj;
    edge_send(&m);
    send_sh(job, 0, "echo epoch zero");
    cr_assert(harness_log_contains(&AGENT, "ServerMessage.body: not set", WAIT_MS));
    cr_assert(harness_log_contains(&AGENT, "CancelJob.job_id: must be a UUID", WAIT_MS));
    cr_assert(harness_log_contains(&AGENT, "RunJob.epoch: must be >= 1, got 0", WAIT_MS));
    send_sh(job, 1, "echo fine");
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    cr_assert_eq(r->epoch, 1);
    cr_assert_eq(edge_int(&E.streams), 1, "the stream was not replaced");
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, drain_finishes_the_job_refuses_new_ones_then_unregisters_and_exits_0)
{
    char job[HODEI_ID_BUF], late[HODEI_ID_BUF];
    new_job(job);
    new_job(late);
    agent_start();
    agent_ready();
    send_sh(job, 1, "sleep 0.5; echo done");
    cr_assert(harness_log_contains(&AGENT, "job running", WAIT_MS));
    send_drain();
    send_sh(late, 1, "echo too late");
    const Hodei__V1__JobResult *r = wait_result(late, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert(strstr(r->error, "draining"), "error: %s", r->error);
    r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    int status = harness_proc_wait(&AGENT, WAIT_MS);
    cr_assert_neq(status, -1, "the agent did not leave after the drain");
    assert_clean_exit(status);
    cr_assert_eq(edge_int(&E.unregisters), 1);
}

Test(worker_agent, registers_and_runs_over_mutual_tls)
{
    char dir[600], cmd[1400], ca[700], cert[700], key[700], job[HODEI_ID_BUF];
    snprintf(dir, sizeof dir, "%s/certs", ST.state_dir);
    snprintf(cmd, sizeof cmd,
             "'%s/scripts/gen-certs' --out '%s' --server-san IP:127.0.0.1 --client %s "
             ">/dev/null 2>&1",
             ST.root, dir, WORKER_ID);
    cr_assert_eq(system(cmd), 0, "gen-certs failed");
    edge_stop();
    edge_start_on(dir, 0);
    snprintf(ca, sizeof ca, "HODEI_WORKER_TLS_CA=%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "HODEI_WORKER_TLS_CERT=%s/client-%s.pem", dir, WORKER_ID);
    snprintf(key, sizeof key, "HODEI_WORKER_TLS_KEY=%s/client-%s.key", dir, WORKER_ID);
    const char *env[] = {ca, cert, key, NULL};
    agent_start_env(OTP_GOOD, env);
    agent_ready();
    pthread_mutex_lock(&E.mu);
    cr_assert_str_eq(E.peer, WORKER_ID, "client certificate SAN seen by the edge");
    pthread_mutex_unlock(&E.mu);
    new_job(job);
    send_sh(job, 1, "echo over tls");
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, orphans_of_a_job_are_reaped_not_left_as_zombies)
{
    char job[HODEI_ID_BUF], script[900], pidfile[700];
    new_job(job);
    snprintf(pidfile, sizeof pidfile, "%s/orphan.pid", ST.state_dir);
    snprintf(script, sizeof script, "sleep 30 & echo $! > '%s'; exit 0", pidfile);
    agent_start();
    agent_ready();
    send_sh(job, 1, script);
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    cr_assert(f && fscanf(f, "%ld", &pid) == 1, "no pid file");
    fclose(f);
    /* killed with the job's group, then reaped by the agent (its subreaper) */
    int64_t deadline = hodei_mono_ms() + 3000;
    while (kill((pid_t)pid, 0) == 0 && hodei_mono_ms() < deadline)
        hodei_sleep_ms(20);
    cr_assert_neq(kill((pid_t)pid, 0), 0,
                  "the job's background process %ld is still there "
                  "(a zombie nobody reaps?)",
                  pid);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

/* A process of one job that left its process group (setsid) must not reach
 * a later job: it is killed when its job ends, before the result is
 * reported (so before any next job), and never sees the next job's
 * secrets through /proc/<pid>/fd/0. */
Test(worker_agent, a_leftover_of_one_job_is_killed_before_the_next_job)
{
    char job[HODEI_ID_BUF], next[HODEI_ID_BUF], script[2600], pidfile[700], stolen[700];
    new_job(job);
    new_job(next);
    snprintf(pidfile, sizeof pidfile, "%s/leftover.pid", ST.state_dir);
    snprintf(stolen, sizeof stolen, "%s/stolen", ST.state_dir);
    snprintf(script, sizeof script,
             "setsid sh -c 'echo $$ > \"%s\"; while :; do "
             "for f in /proc/[0-9]*/fd/0; do cat \"$f\" 2>/dev/null; done >> \"%s\"; "
             "sleep 0.02; done' </dev/null >/dev/null 2>&1 &\n"
             "while [ ! -s '%s' ]; do sleep 0.01; done; echo started",
             pidfile, stolen, pidfile);
    agent_start();
    agent_ready();
    send_sh(job, 1, script);
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error %s", r->error);
    FILE *f = fopen(pidfile, "r");
    long pid = 0;
    cr_assert(f && fscanf(f, "%ld", &pid) == 1, "no pid file");
    fclose(f);
    cr_assert_neq(kill((pid_t)pid, 0), 0,
                  "the job's setsid process %ld still runs after its job's result", pid);

    const char *argv[] = {"sh", "-c", "sleep 1; read -r line; echo got", NULL};
    send_run(next, 1, argv, "{\"K\": \"leftover-steal-zz\"}");
    r = wait_result(next, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error %s", r->error);
    char buf[65536] = "";
    f = fopen(stolen, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
    }
    cr_assert_null(strstr(buf, "leftover-steal-zz"), "the first job's leftover read the secret");
    cr_assert(harness_log_contains(&AGENT, "outside its process group", 0),
              "the agent says what it killed");
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

/* worker.job_uids: a uid's lock file says whether its last job left it
 * clean. A slot taken after an agent that died holding it (here: marked
 * 'd', and a process of that uid outside any agent) is swept of that
 * process before the job runs; a job that ends with nothing left marks it
 * 'c', so the next holder need not read /proc. */
#define SWEEP_UID 2100000 /* outside the range the stack and other tests use */
Test(worker_agent, a_job_uid_left_dirty_is_swept_and_a_clean_one_is_marked)
{
    if (geteuid() != 0 || !getpwnam("hodei-job"))
        cr_skip_test("needs root and the user hodei-job (scripts/hodei-stack up makes it)");
    char lock[128], job[HODEI_ID_BUF];
    snprintf(lock, sizeof lock, "/run/hodei-job-uids/%d", SWEEP_UID);
    (void)mkdir("/run/hodei-job-uids", 0700);
    int fd = open(lock, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert(fd >= 0 && write(fd, "d", 1) == 1, "cannot write %s", lock);
    close(fd);
    pid_t stray = fork();
    cr_assert(stray >= 0);
    if (stray == 0) {
        if (setresgid(SWEEP_UID, SWEEP_UID, SWEEP_UID) == 0 &&
            setresuid(SWEEP_UID, SWEEP_UID, SWEEP_UID) == 0)
            pause();
        _exit(1);
    }
    const char *env[] = {"HODEI_WORKER_JOB_USER=hodei-job",
                         "HODEI_WORKER_JOB_UIDS=" HODEI_STR(SWEEP_UID) "-" HODEI_STR(SWEEP_UID),
                         NULL};
    agent_start_env(OTP_GOOD, env);
    agent_ready();
    new_job(job);
    send_sh(job, 1, "id -u");
    const Hodei__V1__JobResult *r = wait_result(job, 0, WAIT_MS, NULL);
    cr_assert_eq(r->state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error %s", r->error);
    int status = 0;
    cr_assert_eq(waitpid(stray, &status, WNOHANG), stray,
                 "the process left under uid %d still runs after a job took that uid", SWEEP_UID);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char mark = 0;
    fd = open(lock, O_RDONLY | O_CLOEXEC);
    cr_assert(fd >= 0 && read(fd, &mark, 1) == 1);
    close(fd);
    cr_assert_eq(mark, 'c', "a job that left nothing marks its uid clean (got '%c')", mark);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, reconnects_promptly_when_the_edge_comes_back)
{
    agent_start();
    agent_ready();
    int port = E.port;
    edge_stop(); /* the edge goes away for 3 s */
    hodei_sleep_ms(3000);
    int64_t t0 = hodei_mono_ms();
    edge_start_on(NULL, port);
    int i = edge_wait(0, HODEI__V1__WORKER_MESSAGE__BODY_HELLO, NULL, WAIT_MS);
    int64_t took = hodei_mono_ms() - t0;
    cr_assert_geq(i, 0, "no Hello after the edge came back");
    cr_assert_lt(took, 1500, "back after %lld ms (worker.reconnect_max is 500ms)", (long long)took);
    cr_assert_eq(edge_int(&E.registers), 0, "registered again instead of resuming");
    cr_assert_str_eq(edge_event_msg(i, NULL)->hello->session_token, SESSION_TOKEN);
    assert_clean_exit(agent_stop(SIGTERM, WAIT_MS));
}

Test(worker_agent, sigterm_with_a_result_the_edge_never_acknowledges_gives_up_after_a_grace)
{
    char job[HODEI_ID_BUF];
    new_job(job);
    agent_start();
    agent_ready();
    pthread_mutex_lock(&E.mu);
    E.auto_ack = false;
    pthread_mutex_unlock(&E.mu);
    send_sh(job, 1, "echo hi");
    wait_result(job, 0, WAIT_MS, NULL);
    pthread_mutex_lock(&E.mu);
    E.refuse_streams = true; /* the edge is gone for good */
    pthread_mutex_unlock(&E.mu);
    edge_drop_stream();
    int64_t t0 = hodei_mono_ms();
    int status = agent_stop(SIGTERM, 20000);
    int64_t took = hodei_mono_ms() - t0;
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x", status);
    cr_assert(took >= 9000 && took < 15000, "gave up after %lld ms", (long long)took);
    cr_assert(harness_log_contains(&AGENT,
                                   "stopped before the server acknowledged every job "
                                   "result",
                                   0));
}
