/* The edge's worker side and logs against a real PostgreSQL and nats-server:
 * Register with one-time tokens, the WorkerStream protocol (the test plays
 * the worker agent through the product's gRPC client), GetLogs and
 * SubscribeLogs. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/v1/events.pb-c.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/worker.pb-c.h"

#define WSVC "/hodei.v1.WorkerAgentService/"
#define LSVC "/hodei.v1.LogStreamService/"
#define CALL_MS 10000
#define RECV_MS 5000
#define POLL_MS 10000
#define SESSION_HEX 64

static harness_stack stack;
static edge_handle edge;

static void start_with(const char *resend, const char *keepalive)
{
    char r[64], k[64];
    snprintf(r, sizeof r, "HODEI_WORKER_RESEND_INTERVAL=%s", resend);
    snprintf(k, sizeof k, "HODEI_WORKER_KEEPALIVE_INTERVAL=%s", keepalive);
    const char *env[] = {r, k, "HODEI_WORKER_HEARTBEAT_INTERVAL=200ms", NULL};
    hodei_rpc_global_init();
    harness_stack_start(&stack);
    edge_start(&stack, &edge, env);
}

/* Slow re-send: whatever reaches a worker came from Hello or NATS. */
static void setup(void)
{
    start_with("30s", "10s");
}
static void setup_fast(void)
{
    start_with("300ms", "1s");
}

static void teardown(void)
{
    edge_stop(&edge);
    harness_stack_stop(&stack);
    hodei_rpc_global_shutdown();
}

/* Every case starts its own edge on its own database and an emptied NATS of one stack. */
HARNESS_SHARED_SERVERS()

TestSuite(worker_edge, .init = setup, .fini = teardown, .timeout = 120);
TestSuite(worker_edge_fast, .init = setup_fast, .fini = teardown, .timeout = 120);

/* ------------------------------------------------------------------ helpers */

static int64_t sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sqlf(const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return harness_sql_i64(&stack, sql);
}

/* Polls until the SQL answers `want`. */
static bool sql_wait(int64_t want, const char *sql)
{
    int64_t until = hodei_mono_ms() + POLL_MS;
    while (hodei_mono_ms() < until) {
        if (harness_sql_i64(&stack, sql) == want)
            return true;
        hodei_sleep_ms(20);
    }
    return false;
}

static hodei_grpc_code unary(const char *path, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
                             char *msg, size_t msg_len)
{
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    cr_assert_eq(hodei_rpc_unary(edge.ch, path, req, desc, CALL_MS, &out, &res, &err), HODEI_OK,
                 "%s: %s", path, err.msg);
    if (msg)
        snprintf(msg, msg_len, "%s", res.message);
    if (resp)
        *resp = out;
    else if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return res.code;
}

/* A CREATING worker row and a bootstrap token for it. */
static void make_worker(char id[HODEI_ID_BUF], const char *token, const char *token_extra)
{
    hodei_id_new(id);
    cr_assert_eq(sqlf("INSERT INTO workers (id, provider, state) VALUES ('%s', 'process',"
                      " 'CREATING') RETURNING 1",
                      id),
                 1);
    cr_assert_eq(sqlf("INSERT INTO bootstrap_tokens (token_hash, worker_id, provider, expires_at%s)"
                      " VALUES (sha256('%s'::bytea), '%s', 'process', now() + interval '5 min'%s)"
                      " RETURNING 1",
                      token_extra ? ", revoked_at" : "", token, id, token_extra ? token_extra : ""),
                 1);
}

static hodei_grpc_code do_register(const char *token, const char *worker_id,
                                   char session[SESSION_HEX + 1], char *msg, size_t msg_len)
{
    Hodei__V1__RegisterRequest req = HODEI__V1__REGISTER_REQUEST__INIT;
    Hodei__V1__ResourceRequirements cap = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    Hodei__V1__RegisterRequest__LabelsEntry l = HODEI__V1__REGISTER_REQUEST__LABELS_ENTRY__INIT;
    Hodei__V1__RegisterRequest__LabelsEntry *labels[] = {&l};
    l.key = "zone";
    l.value = "eu-1";
    cap.cpu_cores = 2;
    cap.memory_bytes = 1 << 30;
    cap.architecture = "amd64";
    req.token = (char *)token;
    req.worker_id = (char *)worker_id;
    req.hostname = "host-1";
    req.capacity = &cap;
    req.n_labels = 1;
    req.labels = labels;
    req.agent_version = "0.1.0";
    ProtobufCMessage *resp = NULL;
    hodei_grpc_code code = unary(WSVC "Register", &req.base,
                                 &hodei__v1__register_response__descriptor, &resp, msg, msg_len);
    if (code == HODEI_GRPC_OK) {
        Hodei__V1__RegisterResponse *r = (Hodei__V1__RegisterResponse *)resp;
        cr_assert_str_eq(r->worker_id, worker_id);
        cr_assert_eq(strlen(r->session_token), SESSION_HEX);
        cr_assert_eq(r->heartbeat_interval_ms, 200);
        if (session)
            snprintf(session, SESSION_HEX + 1, "%s", r->session_token);
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return code;
}

/* A registered READY worker; its session token in session. */
static void ready_worker(char id[HODEI_ID_BUF], char session[SESSION_HEX + 1])
{
    make_worker(id, "boot-token", NULL);
    char msg[512];
    cr_assert_eq(do_register("boot-token", id, session, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
}

static void spec_hex(char *out, size_t out_len)
{
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    cmd.command = "echo";
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.timeout_ms = 60000;
    uint8_t buf[256];
    size_t n = hodei__v1__job_spec__pack(&spec, buf);
    cr_assert(2 * n + 1 <= out_len);
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", buf[i]);
}

/* A job in `state` on worker w at epoch/attempt; the worker made BUSY. */
static void make_job(char id[HODEI_ID_BUF], const char *w, const char *state, int epoch,
                     int attempt, int max_attempts)
{
    char hex[600];
    spec_hex(hex, sizeof hex);
    hodei_id_new(id);
    cr_assert_eq(sqlf("INSERT INTO jobs (id, state, spec, timeout_ms, worker_id, epoch, attempt,"
                      " max_attempts) VALUES ('%s', '%s', decode('%s', 'hex'), 60000, '%s', %d, %d,"
                      " %d) RETURNING 1",
                      id, state, hex, w, epoch, attempt, max_attempts),
                 1);
    cr_assert_eq(sqlf("UPDATE workers SET state = 'BUSY', current_job_id = '%s' WHERE id = '%s'"
                      " RETURNING 1",
                      id, w),
                 1);
}

/* ------------------------------------------------------------ worker stream */

static hodei_rpc_stream *ws_open(void)
{
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_open(edge.ch, WSVC "WorkerStream", NULL,
                                       &hodei__v1__server_message__descriptor, 60000, &st, &err),
                 HODEI_OK, "%s", err.msg);
    return st;
}

static void ws_send(hodei_rpc_stream *st, Hodei__V1__WorkerMessage *m)
{
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_send(st, &m->base, &err), HODEI_OK, "%s", err.msg);
}

static void ws_hello(hodei_rpc_stream *st, const char *w, const char *session, const char *running)
{
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__Hello h = HODEI__V1__HELLO__INIT;
    char *ids[] = {(char *)running};
    h.worker_id = (char *)w;
    h.session_token = (char *)session;
    h.n_running_job_ids = running ? 1 : 0;
    h.running_job_ids = ids;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_HELLO;
    m.hello = &h;
    ws_send(st, &m);
}

static void ws_ack(hodei_rpc_stream *st, const char *job, int64_t epoch)
{
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__RunJobAck a = HODEI__V1__RUN_JOB_ACK__INIT;
    a.job_id = (char *)job;
    a.epoch = epoch;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK;
    m.run_job_ack = &a;
    ws_send(st, &m);
}

/* The n lines as one LogBatch of (job, epoch). */
static void ws_batch(hodei_rpc_stream *st, const char *job, int64_t epoch,
                     Hodei__V1__LogLine *lines, size_t n)
{
    Hodei__V1__LogLine **ptrs = calloc(n, sizeof *ptrs);
    cr_assert(ptrs);
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &lines[i];
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    b.job_id = (char *)job;
    b.epoch = epoch;
    b.n_lines = n;
    b.lines = ptrs;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH;
    m.log_batch = &b;
    ws_send(st, &m);
    free(ptrs);
}

/* Lines first..last ("line <n>") in one batch. */
static void ws_logs(hodei_rpc_stream *st, const char *job, int64_t epoch, uint64_t first,
                    uint64_t last)
{
    size_t n = (size_t)(last - first + 1);
    Hodei__V1__LogLine *lines = calloc(n, sizeof *lines);
    char(*text)[32] = calloc(n, sizeof *text);
    cr_assert(lines && text);
    for (size_t i = 0; i < n; i++) {
        hodei__v1__log_line__init(&lines[i]);
        lines[i].sequence = first + i;
        lines[i].stream = HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT;
        int len = snprintf(text[i], sizeof text[i], "line %llu", (unsigned long long)(first + i));
        lines[i].data.data = (uint8_t *)text[i];
        lines[i].data.len = (size_t)len;
    }
    ws_batch(st, job, epoch, lines, n);
    free(lines);
    free(text);
}

#define SIZED_LINE_MAX 65536 /* the longest line ws_sized_logs sends */

/* Lines first..first+n-1 of (job, epoch) in one batch on stream, line seq
 * holding len(seq) bytes (at most SIZED_LINE_MAX). */
static void ws_sized_logs(hodei_rpc_stream *st, const char *job, int64_t epoch, uint64_t first,
                          size_t n, Hodei__V1__LogStream stream, size_t (*len)(uint64_t))
{
    static uint8_t text[SIZED_LINE_MAX];
    memset(text, 'y', sizeof text);
    Hodei__V1__LogLine *lines = calloc(n, sizeof *lines);
    cr_assert(lines);
    for (size_t i = 0; i < n; i++) {
        hodei__v1__log_line__init(&lines[i]);
        lines[i].sequence = first + i;
        lines[i].stream = stream;
        lines[i].data.data = text;
        lines[i].data.len = len(first + i);
        cr_assert_leq(lines[i].data.len, sizeof text);
    }
    ws_batch(st, job, epoch, lines, n);
    free(lines);
}

static void ws_result(hodei_rpc_stream *st, const char *job, int64_t epoch,
                      Hodei__V1__JobState state, int exit_code)
{
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__JobResult r = HODEI__V1__JOB_RESULT__INIT;
    r.job_id = (char *)job;
    r.epoch = epoch;
    r.state = state;
    r.exit_code = exit_code;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT;
    m.job_result = &r;
    ws_send(st, &m);
}

/* The next message that is not a keepalive (asserts one comes). */
static Hodei__V1__ServerMessage *ws_next(hodei_rpc_stream *st, int64_t timeout_ms)
{
    int64_t until = hodei_mono_ms() + timeout_ms;
    for (;;) {
        ProtobufCMessage *msg = NULL;
        hodei_rpc_result res;
        hodei_err err;
        int64_t left = until - hodei_mono_ms();
        hodei_status s = hodei_rpc_stream_recv(st, left > 0 ? left : 1, &msg, &res, &err);
        cr_assert_eq(s, HODEI_OK, "no server message in time: %s", err.msg);
        cr_assert_not_null(msg, "stream ended: %s %s", hodei_grpc_code_str(res.code), res.message);
        Hodei__V1__ServerMessage *m = (Hodei__V1__ServerMessage *)msg;
        if (m->body_case != HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE)
            return m;
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

/* The worker's Keepalive with nonce: the edge's very next message is a
 * Keepalive with the same nonce. */
static void ws_keepalive_round_trip(hodei_rpc_stream *st, int64_t nonce)
{
    Hodei__V1__WorkerMessage ka = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__Keepalive k = HODEI__V1__KEEPALIVE__INIT;
    k.nonce = nonce;
    ka.body_case = HODEI__V1__WORKER_MESSAGE__BODY_KEEPALIVE;
    ka.keepalive = &k;
    ws_send(st, &ka);
    ProtobufCMessage *reply = NULL;
    hodei_rpc_result res;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_recv(st, RECV_MS, &reply, &res, &err), HODEI_OK, "%s", err.msg);
    cr_assert_not_null(reply, "the stream ended: %s %s", hodei_grpc_code_str(res.code),
                       res.message);
    Hodei__V1__ServerMessage *sm = (Hodei__V1__ServerMessage *)reply;
    cr_assert_eq(sm->body_case, HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE,
                 "expected a keepalive, got server message %d", (int)sm->body_case);
    cr_assert_eq(sm->keepalive->nonce, nonce, "the keepalive's nonce");
    protobuf_c_message_free_unpacked(reply, NULL);
}

/* Reads until the stream ends; returns its status code. */
static hodei_grpc_code ws_end(hodei_rpc_stream *st, char *msg, size_t msg_len)
{
    for (;;) {
        ProtobufCMessage *m = NULL;
        hodei_rpc_result res;
        hodei_err err;
        cr_assert_eq(hodei_rpc_stream_recv(st, RECV_MS, &m, &res, &err), HODEI_OK,
                     "stream did not end: %s", err.msg);
        if (!m) {
            if (msg)
                snprintf(msg, msg_len, "%s", res.message);
            return res.code;
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

static Hodei__V1__ServerMessage *ws_expect(hodei_rpc_stream *st,
                                           Hodei__V1__ServerMessage__BodyCase body)
{
    Hodei__V1__ServerMessage *m = ws_next(st, RECV_MS);
    cr_assert_eq(m->body_case, body, "expected server message %d, got %d", (int)body,
                 (int)m->body_case);
    return m;
}

/* Connects as w and takes the RunJob of job (epoch). */
static hodei_rpc_stream *ws_connect_run(const char *w, const char *session, const char *job,
                                        int64_t epoch)
{
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, NULL);
    Hodei__V1__ServerMessage *m = ws_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB);
    cr_assert_str_eq(m->run_job->job_id, job);
    cr_assert_eq(m->run_job->epoch, epoch);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return st;
}

static bool ws_result_ack(hodei_rpc_stream *st, const char *job, char *reason, size_t reason_len)
{
    Hodei__V1__ServerMessage *m = ws_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK);
    cr_assert_str_eq(m->result_ack->job_id, job);
    bool accepted = m->result_ack->accepted;
    if (reason)
        snprintf(reason, reason_len, "%s", m->result_ack->reason);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    return accepted;
}

/* -------------------------------------------------------------------- logs */

static Hodei__V1__GetLogsResponse *get_logs(const char *job)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    req.job_id = (char *)job;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    cr_assert_eq(unary(LSVC "GetLogs", &req.base, &hodei__v1__get_logs_response__descriptor, &resp,
                       msg, sizeof msg),
                 HODEI_GRPC_OK, "GetLogs: %s", msg);
    return (Hodei__V1__GetLogsResponse *)resp;
}

/* Polls GetLogs until it holds n lines (and complete when asked). */
static void wait_logs(const char *job, size_t n, bool complete)
{
    int64_t until = hodei_mono_ms() + POLL_MS;
    for (;;) {
        Hodei__V1__GetLogsResponse *r = get_logs(job);
        bool ok = r->n_lines == n && (!complete || r->complete);
        for (size_t i = 0; ok && i < n; i++) {
            char want[32];
            snprintf(want, sizeof want, "line %zu", i + 1);
            cr_assert_eq(r->lines[i]->sequence, i + 1);
            cr_assert_eq(r->lines[i]->data.len, strlen(want));
            cr_assert(memcmp(r->lines[i]->data.data, want, strlen(want)) == 0);
        }
        size_t got = r->n_lines;
        bool got_complete = r->complete;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (ok)
            return;
        cr_assert(hodei_mono_ms() < until, "GetLogs: %zu lines (complete=%d), want %zu", got,
                  got_complete, n);
        hodei_sleep_ms(50);
    }
}

static hodei_rpc_stream *follow(const char *job)
{
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    req.job_id = (char *)job;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_open(edge.ch, LSVC "SubscribeLogs", &req.base,
                                       &hodei__v1__log_chunk__descriptor, 60000, &st, &err),
                 HODEI_OK, "%s", err.msg);
    return st;
}

/* Reads a follow to its end: n lines "line 1".."line n" once each, in
 * order, then end_of_stream with final_state and status OK. */
static void follow_check(hodei_rpc_stream *st, size_t n, Hodei__V1__JobState final_state)
{
    size_t seen = 0;
    bool ended = false;
    for (;;) {
        ProtobufCMessage *msg = NULL;
        hodei_rpc_result res;
        hodei_err err;
        cr_assert_eq(hodei_rpc_stream_recv(st, RECV_MS, &msg, &res, &err), HODEI_OK,
                     "follow stalled after %zu lines: %s", seen, err.msg);
        if (!msg) {
            cr_assert_eq(res.code, HODEI_GRPC_OK, "%s", res.message);
            break;
        }
        Hodei__V1__LogChunk *c = (Hodei__V1__LogChunk *)msg;
        cr_assert(!ended, "a chunk after end_of_stream");
        for (size_t i = 0; i < c->n_lines; i++) {
            seen++;
            cr_assert_eq(c->lines[i]->sequence, seen, "line %zu has sequence %llu", seen,
                         (unsigned long long)c->lines[i]->sequence);
        }
        if (c->end_of_stream) {
            ended = true;
            cr_assert_eq(c->final_state, final_state);
        }
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    cr_assert(ended, "no end_of_stream");
    cr_assert_eq(seen, n);
}

/* ------------------------------------------------------------------ tests */

Test(worker_edge, register_works_once_and_a_spent_token_changes_nothing)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], msg[512];
    make_worker(w, "tok-once", NULL);
    cr_assert_eq(do_register("tok-once", w, session, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'"
                      " AND hostname = 'host-1' AND agent_version = '0.1.0'"
                      " AND labels = '{\"zone\": \"eu-1\"}' AND cpu_millis = 2000"
                      " AND architecture = 'amd64' AND session_token_hash = sha256('%s'::bytea)",
                      w, session),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"
                      " AND aggregate_id = '%s'",
                      w),
                 1);
    int64_t updated = sqlf("SELECT (extract(epoch FROM updated_at) * 1e6)::bigint FROM workers"
                           " WHERE id = '%s'",
                           w);
    char again[512];
    cr_assert_eq(do_register("tok-once", w, NULL, again, sizeof again), HODEI_GRPC_UNAUTHENTICATED);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'"
                      " AND session_token_hash = sha256('%s'::bytea)"
                      " AND (extract(epoch FROM updated_at) * 1e6)::bigint = %lld",
                      w, session, (long long)updated),
                 1, "a refused Register changed the worker");
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE aggregate_id = '%s'", w), 1);
}

Test(worker_edge, expired_revoked_forged_and_foreign_tokens_are_refused_alike)
{
    char a[HODEI_ID_BUF], b[HODEI_ID_BUF], c[HODEI_ID_BUF], msg[4][512];
    make_worker(a, "tok-a", NULL);
    make_worker(b, "tok-revoked", ", now()");
    make_worker(c, "tok-expired", NULL);
    cr_assert_eq(sqlf("UPDATE bootstrap_tokens SET expires_at = now() - interval '1 s'"
                      " WHERE worker_id = '%s' RETURNING 1",
                      c),
                 1);
    cr_assert_eq(do_register("tok-expired", c, NULL, msg[0], 512), HODEI_GRPC_UNAUTHENTICATED);
    cr_assert_eq(do_register("tok-revoked", b, NULL, msg[1], 512), HODEI_GRPC_UNAUTHENTICATED);
    cr_assert_eq(do_register("never-issued", a, NULL, msg[2], 512), HODEI_GRPC_UNAUTHENTICATED);
    cr_assert_eq(do_register("tok-a", b, NULL, msg[3], 512), HODEI_GRPC_UNAUTHENTICATED);
    for (int i = 1; i < 4; i++)
        cr_assert_str_eq(msg[i], msg[0], "refusals differ: \"%s\" vs \"%s\"", msg[i], msg[0]);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE state = 'CREATING'"
                      " AND session_token_hash IS NULL"),
                 3);
    cr_assert_eq(sqlf("SELECT count(*) FROM bootstrap_tokens WHERE used_at IS NULL"), 3);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox"), 0);
    /* Bad input names the field. */
    char m2[512];
    cr_assert_eq(do_register("", a, NULL, m2, sizeof m2), HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(m2, "token") != NULL, "%s", m2);
    cr_assert_eq(do_register("tok-a", "not-a-uuid", NULL, m2, sizeof m2),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(m2, "worker_id") != NULL, "%s", m2);
    cr_assert_eq(do_register("tok-a", a, NULL, m2, sizeof m2), HODEI_GRPC_OK, "%s", m2);
}

Test(worker_edge, a_stream_needs_hello_with_a_valid_session)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], msg[512];
    ready_worker(w, session);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, "0000000000000000000000000000000000000000000000000000000000000000", NULL);
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_UNAUTHENTICATED, "%s", msg);
    hodei_rpc_stream_destroy(st);

    st = ws_open();
    ws_ack(st, w, 1); /* not a hello */
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_UNAUTHENTICATED, "%s", msg);
    hodei_rpc_stream_destroy(st);

    st = ws_open();
    ws_hello(st, "nope", session, NULL);
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_INVALID_ARGUMENT, "%s", msg);
    cr_assert(strstr(msg, "hello.worker_id") != NULL, "%s", msg);
    hodei_rpc_stream_destroy(st);

    /* A good session: the worker's Keepalive is answered with its nonce;
     * a malformed message then ends the stream naming the field. */
    st = ws_open();
    ws_hello(st, w, session, NULL);
    ws_keepalive_round_trip(st, 7);
    ws_logs(st, w, 0, 1, 1);
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_INVALID_ARGUMENT, "%s", msg);
    cr_assert(strstr(msg, "log_batch.epoch") != NULL, "%s", msg);
    hodei_rpc_stream_destroy(st);
}

/* The edge's gauge hodei_edge_worker_streams. */
static long long worker_streams(void)
{
    return (long long)harness_metric(edge.health_port, "hodei_edge_worker_streams");
}

static bool worker_streams_wait(long long want)
{
    for (int64_t until = hodei_mono_ms() + 20000; hodei_mono_ms() < until; hodei_sleep_ms(50))
        if (worker_streams() == want)
            return true;
    return false;
}

/* One address may hold HUB_HELLO_PENDING_PER_PEER (64) worker streams that
 * have not said Hello: the 65th is refused naming the limit, so one host
 * cannot fill the edge's table of streams before its silent ones time out;
 * once one of them goes, a worker from that address says Hello and is
 * served. */
Test(worker_edge, one_address_holds_at_most_64_streams_before_hello)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], msg[512];
    ready_worker(w, session);
    hodei_rpc_stream *silent[64];
    for (int i = 0; i < 64; i++)
        silent[i] = ws_open();
    cr_assert(worker_streams_wait(64), "the edge holds the 64 silent streams (%lld)",
              worker_streams());
    hodei_rpc_stream *st = ws_open();
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_RESOURCE_EXHAUSTED, "%s", msg);
    cr_assert(strstr(msg, "have not said hello (at most 64") != NULL, "%s", msg);
    hodei_rpc_stream_destroy(st);
    cr_assert_eq(worker_streams(), 64, "the refused stream was not kept");

    hodei_rpc_stream_destroy(silent[63]); /* cancelled: its slot goes */
    cr_assert(worker_streams_wait(63));
    st = ws_open();
    ws_hello(st, w, session, NULL);
    ws_keepalive_round_trip(st, 9); /* the worker is served */
    hodei_rpc_stream_destroy(st);
    for (int i = 0; i < 63; i++)
        hodei_rpc_stream_destroy(silent[i]);
}

/* The refused stream past an address's 64 before Hello: RESOURCE_EXHAUSTED
 * naming the limit, and not kept. */
static void ws_refused_past_64(long long held)
{
    char msg[512];
    hodei_rpc_stream *st = ws_open();
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_RESOURCE_EXHAUSTED, "%s", msg);
    cr_assert(strstr(msg, "have not said hello (at most 64") != NULL, "%s", msg);
    hodei_rpc_stream_destroy(st);
    cr_assert_eq(worker_streams(), held, "the refused stream was not kept");
}

/* An address's count of streams before Hello goes down by one when one of
 * them says Hello and when one ends, never further: with 64 silent, one
 * saying Hello lets one more in (and the next is refused); once all of them
 * ended, 64 new silent streams from that address are held again and the
 * 65th refused (the count came back to 0, not below). */
Test(worker_edge, an_address_whose_streams_said_hello_or_ended_holds_64_again)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1];
    ready_worker(w, session);
    hodei_rpc_stream *silent[64];
    for (int i = 0; i < 64; i++)
        silent[i] = ws_open();
    cr_assert(worker_streams_wait(64), "the edge holds the 64 silent streams (%lld)",
              worker_streams());
    ws_refused_past_64(64);

    /* one of them says Hello (answered: the edge took it) */
    ws_hello(silent[0], w, session, NULL);
    Hodei__V1__WorkerMessage ka = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__Keepalive k = HODEI__V1__KEEPALIVE__INIT;
    k.nonce = 9;
    ka.body_case = HODEI__V1__WORKER_MESSAGE__BODY_KEEPALIVE;
    ka.keepalive = &k;
    ws_send(silent[0], &ka);
    ProtobufCMessage *reply = NULL;
    hodei_rpc_result res;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_recv(silent[0], RECV_MS, &reply, &res, &err), HODEI_OK, "%s",
                 err.msg);
    cr_assert_not_null(reply, "the worker is served: %s", res.message);
    protobuf_c_message_free_unpacked(reply, NULL);
    hodei_rpc_stream *one_more = ws_open();
    cr_assert(worker_streams_wait(65), "63 silent, the worker and one more (%lld)",
              worker_streams());
    ws_refused_past_64(65);

    /* all of them end: the worker's stream and the 64 silent ones */
    for (int i = 0; i < 64; i++)
        hodei_rpc_stream_destroy(silent[i]);
    hodei_rpc_stream_destroy(one_more);
    cr_assert(worker_streams_wait(0), "every stream went (%lld)", worker_streams());
    for (int i = 0; i < 64; i++)
        silent[i] = ws_open();
    cr_assert(worker_streams_wait(64), "64 silent streams held again (%lld)", worker_streams());
    ws_refused_past_64(64);
    for (int i = 0; i < 64; i++)
        hodei_rpc_stream_destroy(silent[i]);
}

Test(worker_edge, a_job_runs_end_to_end_and_a_stale_result_is_refused)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 2, 2, 3);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, NULL);
    Hodei__V1__ServerMessage *m = ws_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB);
    cr_assert_str_eq(m->run_job->job_id, job);
    cr_assert_eq(m->run_job->epoch, 2);
    cr_assert_eq(m->run_job->attempt, 2);
    cr_assert_not_null(m->run_job->spec);
    cr_assert_str_eq(m->run_job->spec->command->command, "echo");
    cr_assert_eq(m->run_job->secrets_json.len, 2);
    protobuf_c_message_free_unpacked(&m->base, NULL);

    ws_ack(st, job, 2);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'"
             " AND started_at IS NOT NULL",
             job);
    cr_assert(sql_wait(1, q), "the ack did not make the job RUNNING");

    Hodei__V1__WorkerMessage hb = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__Heartbeat beat = HODEI__V1__HEARTBEAT__INIT;
    Hodei__V1__ResourceUsage use = HODEI__V1__RESOURCE_USAGE__INIT;
    use.memory_bytes_used = 12345;
    use.running_jobs = 1;
    beat.usage = &use;
    hb.body_case = HODEI__V1__WORKER_MESSAGE__BODY_HEARTBEAT;
    hb.heartbeat = &beat;
    cr_assert_eq(sqlf("UPDATE workers SET last_heartbeat_at = NULL WHERE id = '%s' RETURNING 1", w),
                 1);
    ws_send(st, &hb);
    snprintf(q, sizeof q,
             "SELECT count(*) FROM workers WHERE id = '%s' AND"
             " last_heartbeat_at IS NOT NULL AND usage_memory_bytes = 12345",
             w);
    cr_assert(sql_wait(1, q), "the heartbeat was not written");

    ws_logs(st, job, 2, 1, 2);
    ws_logs(st, job, 2, 3, 3);
    wait_logs(job, 3, false);

    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 9); /* an older attempt */
    cr_assert(!ws_result_ack(st, job, reason, sizeof reason), "a stale result was accepted");
    cr_assert(strstr(reason, "stale") != NULL, "%s", reason);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'"
                      " AND epoch = 2 AND exit_code IS NULL",
                      job),
                 1, "a stale result changed the job");

    ws_result(st, job, 2, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'SUCCEEDED'"
                      " AND exit_code = 0 AND finished_at IS NOT NULL",
                      job),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'"
                      " AND current_job_id IS NULL",
                      w),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"
                      " AND aggregate_id = '%s'",
                      job),
                 1);
    wait_logs(job, 3, true);

    /* The worker re-sends its result (lost ack): accepted, nothing changes. */
    ws_result(st, job, 2, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "repeat refused: %s", reason);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"
                      " AND aggregate_id = '%s'",
                      job),
                 1);
    cr_assert(hodei_rpc_stream_close_send(st, NULL) == HODEI_OK);
    cr_assert_eq(ws_end(st, NULL, 0), HODEI_GRPC_OK);
    hodei_rpc_stream_destroy(st);
}

/* A worker streaming a large output has its Heartbeats queued behind its log
 * batches: every message it sends proves it alive, so its heartbeat time
 * moves on while only log batches arrive. */
Test(worker_edge, log_batches_alone_keep_a_worker_alive)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    cr_assert_eq(sqlf("UPDATE workers SET last_heartbeat_at = NULL WHERE id = '%s' RETURNING 1", w),
                 1);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM workers WHERE id = '%s' AND last_heartbeat_at IS NOT NULL", w);
    bool seen = false;
    int64_t until = hodei_mono_ms() + 6000;                       /* heartbeat interval: 1 s */
    for (uint64_t i = 0; !seen && hodei_mono_ms() < until; i++) { /* batches, no Heartbeat */
        ws_logs(st, job, 1, 1 + 10 * i, 10 + 10 * i);
        hodei_sleep_ms(100);
        seen = sqlf("%s", q) == 1;
    }
    cr_assert(seen, "log batches alone did not count as the worker's heartbeat");
    hodei_rpc_stream_destroy(st);
}

Test(worker_edge, a_failed_attempt_with_attempts_left_goes_back_to_pending)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 2);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    ws_logs(st, job, 1, 1, 2);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 3);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);
    /* Held back from the re-queue's own time (its transaction's clock, so a
     * loaded machine cannot make the backoff look spent). */
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'PENDING'"
                      " AND worker_id IS NULL AND not_before > updated_at",
                      job),
                 1, "re-queued with a backoff");
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'JobQueued'"
                      " AND aggregate_id = '%s'",
                      job),
                 1);
    /* No end marker: followers keep following the next attempt. */
    wait_logs(job, 2, false);
    Hodei__V1__GetLogsResponse *r = get_logs(job);
    cr_assert(!r->complete);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    hodei_rpc_stream_destroy(st);
}

Test(worker_edge, followers_before_and_after_get_every_line_once_in_order)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *early = follow(job);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    ws_logs(st, job, 1, 1, 100);
    ws_logs(st, job, 1, 1, 100); /* the same batch again: dropped by Nats-Msg-Id */
    ws_logs(st, job, 1, 101, 400);
    ws_logs(st, job, 1, 350, 450); /* re-sent in other pieces: the repeats are dropped */
    ws_logs(st, job, 1, 451, 1000);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, NULL, 0));
    follow_check(early, 1000, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    hodei_rpc_stream *late = follow(job);
    follow_check(late, 1000, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    hodei_rpc_stream_destroy(early);
    hodei_rpc_stream_destroy(late);
    hodei_rpc_stream_destroy(st);

    /* GetLogs pages: max_lines cuts (not complete), from_sequence skips. */
    Hodei__V1__GetLogsRequest page = HODEI__V1__GET_LOGS_REQUEST__INIT;
    page.job_id = job;
    page.max_lines = 10;
    ProtobufCMessage *resp = NULL;
    char pmsg[512];
    cr_assert_eq(unary(LSVC "GetLogs", &page.base, &hodei__v1__get_logs_response__descriptor, &resp,
                       pmsg, sizeof pmsg),
                 HODEI_GRPC_OK, "%s", pmsg);
    Hodei__V1__GetLogsResponse *r = (Hodei__V1__GetLogsResponse *)resp;
    cr_assert_eq(r->n_lines, 10);
    cr_assert(!r->complete);
    protobuf_c_message_free_unpacked(resp, NULL);
    page.max_lines = 0;
    page.from_sequence = 991;
    cr_assert_eq(unary(LSVC "GetLogs", &page.base, &hodei__v1__get_logs_response__descriptor, &resp,
                       pmsg, sizeof pmsg),
                 HODEI_GRPC_OK, "%s", pmsg);
    r = (Hodei__V1__GetLogsResponse *)resp;
    cr_assert_eq(r->n_lines, 10);
    cr_assert_eq(r->lines[0]->sequence, 991);
    cr_assert(r->complete);
    protobuf_c_message_free_unpacked(resp, NULL);

    char msg[512];
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    char other[HODEI_ID_BUF];
    hodei_id_new(other);
    req.job_id = other;
    cr_assert_eq(unary(LSVC "GetLogs", &req.base, &hodei__v1__get_logs_response__descriptor, NULL,
                       msg, sizeof msg),
                 HODEI_GRPC_NOT_FOUND);
    req.job_id = "x";
    cr_assert_eq(unary(LSVC "GetLogs", &req.base, &hodei__v1__get_logs_response__descriptor, NULL,
                       msg, sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "job_id") != NULL, "%s", msg);
}

static void publish_assigned(const char *w, const char *job)
{
    natsConnection *nc = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobAssigned a = HODEI__V1__JOB_ASSIGNED__INIT;
    a.job_id = (char *)job;
    a.worker_id = (char *)w;
    a.epoch = 1;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_ASSIGNED;
    ev.job_assigned = &a;
    uint8_t buf[512];
    size_t n = hodei__v1__event__pack(&ev, buf);
    char subject[128];
    snprintf(subject, sizeof subject, "hodei.evt.job.assigned.%s", w);
    cr_assert_eq(natsConnection_Publish(nc, subject, buf, (int)n), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    natsConnection_Destroy(nc);
}

Test(worker_edge, a_job_assigned_event_reaches_the_worker_without_waiting_for_the_resend)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, NULL);
    hodei_sleep_ms(300); /* the Hello's own re-send has passed; the next is 30 s away */
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    int64_t t0 = hodei_mono_ms();
    publish_assigned(w, job);
    Hodei__V1__ServerMessage *m = ws_next(st, 3000);
    cr_assert_eq(m->body_case, HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB);
    cr_assert_str_eq(m->run_job->job_id, job);
    cr_log_info("RunJob %lld ms after the JobAssigned event", (long long)(hodei_mono_ms() - t0));
    protobuf_c_message_free_unpacked(&m->base, NULL);

    /* A newer stream of the same worker replaces this one. */
    hodei_rpc_stream *st2 = ws_open();
    ws_hello(st2, w, session, job);
    char msg[512];
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_ABORTED, "%s", msg);
    hodei_rpc_stream_destroy(st);
    hodei_rpc_stream_destroy(st2);
    nats_Close();
}

/* The supervisor's JobCancelRequested for (job, epoch 1) on the worker's subject. */
static void publish_cancel(const char *w, const char *job)
{
    natsConnection *nc = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobCancelRequested c = HODEI__V1__JOB_CANCEL_REQUESTED__INIT;
    c.job_id = (char *)job;
    c.worker_id = (char *)w;
    c.epoch = 1;
    c.reason = "timeout";
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_CANCEL_REQUESTED;
    ev.job_cancel_requested = &c;
    uint8_t buf[512];
    size_t n = hodei__v1__event__pack(&ev, buf);
    char subject[128];
    snprintf(subject, sizeof subject, "hodei.evt.job.cancel.%s", w);
    cr_assert_eq(natsConnection_Publish(nc, subject, buf, (int)n), NATS_OK);
    cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
    natsConnection_Destroy(nc);
}

/* As the supervisor ends a running attempt past its timeout and grace: the
 * job TIMEOUT, the worker left BUSY with it (it is still running it). */
static void server_ends_attempt(const char *job)
{
    cr_assert_eq(sqlf("UPDATE jobs SET state = 'TIMEOUT', finished_at = now(),"
                      " error = 'timed out after 60000 ms' WHERE id = '%s' RETURNING 1",
                      job),
                 1);
}

static void expect_cancel_of_ended(hodei_rpc_stream *st, const char *job)
{
    Hodei__V1__ServerMessage *m = ws_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB);
    cr_assert_str_eq(m->cancel_job->job_id, job);
    cr_assert_eq(m->cancel_job->epoch, 1);
    cr_assert_not_null(strstr(m->cancel_job->reason, "TIMEOUT"), "%s", m->cancel_job->reason);
    protobuf_c_message_free_unpacked(&m->base, NULL);
}

/* The worker's result for the ended attempt frees it and leaves the job as
 * the server ended it. */
static void result_frees_worker(hodei_rpc_stream *st, const char *w, const char *job)
{
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED, 137);
    (void)ws_result_ack(st, job, NULL, 0);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'TIMEOUT'", job), 1,
                 "the worker's late result changed the ended job");
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'"
                      " AND current_job_id IS NULL",
                      w),
                 1, "the result freed the worker");
}

/* The supervisor ended a running attempt on the server (a timeout past its
 * grace) and its JobCancelRequested reached the edge: the worker still
 * running it is told to kill it. */
Test(worker_edge, a_running_attempt_the_server_ended_gets_cancel_job)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "RUNNING", 1, 1, 1);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, job);
    hodei_sleep_ms(300); /* the Hello's own re-send has passed; the next is 30 s away */
    server_ends_attempt(job);
    publish_cancel(w, job);
    expect_cancel_of_ended(st, job);
    result_frees_worker(st, w, job);
    hodei_rpc_stream_destroy(st);
    nats_Close();
}

/* ... and told again at each re-send while it holds the attempt, whether
 * or not the event arrived. */
Test(worker_edge_fast, a_held_attempt_the_server_ended_gets_cancel_job_at_each_resend)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "RUNNING", 1, 1, 1);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, job);
    server_ends_attempt(job);
    for (int i = 0; i < 3; i++)
        expect_cancel_of_ended(st, job);
    result_frees_worker(st, w, job);
    hodei_rpc_stream_destroy(st);
}

Test(worker_edge_fast, a_restarted_worker_loses_its_running_job_and_idle_streams_get_keepalives)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "RUNNING", 1, 1, 1);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, NULL); /* the job is not among its running ones */
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'FAILED'"
             " AND error = 'worker restarted'",
             job);
    cr_assert(sql_wait(1, q), "the lost attempt did not end");
    wait_logs(job, 0, true); /* its end marker */
    Hodei__V1__ServerMessage *m = NULL;
    ProtobufCMessage *msg = NULL;
    hodei_rpc_result res;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_recv(st, 2000, &msg, &res, &err), HODEI_OK, "%s", err.msg);
    m = (Hodei__V1__ServerMessage *)msg;
    cr_assert_not_null(m);
    cr_assert_eq(m->body_case, HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE);
    protobuf_c_message_free_unpacked(msg, NULL);
    hodei_rpc_stream_destroy(st);
}

Test(worker_edge_fast, a_draining_worker_is_told_and_unregister_terminates_it)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], msg[512];
    ready_worker(w, session);
    hodei_rpc_stream *live = ws_open();
    ws_hello(live, w, session, NULL);
    hodei_sleep_ms(100);
    cr_assert_eq(sqlf("UPDATE workers SET state = 'DRAINING' WHERE id = '%s' RETURNING 1", w), 1);
    Hodei__V1__ServerMessage *dm = ws_next(live, 3000);
    cr_assert_eq(dm->body_case, HODEI__V1__SERVER_MESSAGE__BODY_DRAIN);
    protobuf_c_message_free_unpacked(&dm->base, NULL);
    Hodei__V1__UnregisterWorkerRequest req = HODEI__V1__UNREGISTER_WORKER_REQUEST__INIT;
    req.worker_id = w;
    req.session_token = "wrong";
    cr_assert_eq(unary(WSVC "UnregisterWorker", &req.base,
                       &hodei__v1__unregister_worker_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_UNAUTHENTICATED);
    req.session_token = session;
    cr_assert_eq(unary(WSVC "UnregisterWorker", &req.base,
                       &hodei__v1__unregister_worker_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'TERMINATING'", w),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'WorkerDestroyRequested'"
                      " AND aggregate_id = '%s'",
                      w),
                 1);
    cr_assert_eq(ws_end(live, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    hodei_rpc_stream_destroy(live);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, NULL);
    cr_assert_eq(ws_end(st, msg, sizeof msg), HODEI_GRPC_UNAUTHENTICATED, "%s", msg);
    hodei_rpc_stream_destroy(st);
}

#define SPLIT_LINES 40
#define SPLIT_LINE (60 * 1024)

static size_t split_len(uint64_t seq)
{
    (void)seq;
    return SPLIT_LINE;
}

/* 40 lines of 60 KiB in one batch: more than a NATS message holds. */
Test(worker_edge, a_batch_larger_than_a_nats_message_is_split_and_kept_whole)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    enum { N = SPLIT_LINES, LEN = SPLIT_LINE };
    ws_sized_logs(st, job, 1, 1, N, HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR, split_len);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, NULL, 0));
    int64_t until = hodei_mono_ms() + POLL_MS;
    for (;;) {
        Hodei__V1__GetLogsResponse *r = get_logs(job);
        bool done = r->complete;
        if (done) {
            cr_assert_eq(r->n_lines, N);
            for (size_t i = 0; i < N; i++) {
                cr_assert_eq(r->lines[i]->sequence, i + 1);
                cr_assert_eq(r->lines[i]->data.len, LEN);
                cr_assert_eq(r->lines[i]->stream, HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR);
            }
        }
        protobuf_c_message_free_unpacked(&r->base, NULL);
        if (done)
            break;
        cr_assert(hodei_mono_ms() < until, "the big batch did not arrive whole");
        hodei_sleep_ms(50);
    }
    hodei_rpc_stream_destroy(st);
}

Test(worker_edge, a_job_with_a_cancel_requested_gets_cancel_job_and_ends_cancelled)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "RUNNING", 1, 1, 3);
    cr_assert_eq(sqlf("UPDATE jobs SET cancel_requested = true, cancel_reason = 'user asked'"
                      " WHERE id = '%s' RETURNING 1",
                      job),
                 1);
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, job);
    Hodei__V1__ServerMessage *m = ws_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB);
    cr_assert_str_eq(m->cancel_job->job_id, job);
    cr_assert_eq(m->cancel_job->epoch, 1);
    cr_assert_str_eq(m->cancel_job->reason, "user asked");
    protobuf_c_message_free_unpacked(&m->base, NULL);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED, 143);
    cr_assert(ws_result_ack(st, job, NULL, 0));
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'CANCELLED'", job), 1,
                 "a cancelled attempt must not be retried");
    wait_logs(job, 0, true);
    hodei_rpc_stream_destroy(st);
}

/* The edge that got the RunJobAck died before recording it: the worker's
 * result on its next stream still ends the attempt. */
Test(worker_edge, a_result_whose_ack_was_lost_still_ends_the_attempt)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'SUCCEEDED'"
                      " AND started_at IS NOT NULL",
                      job),
                 1);
    hodei_rpc_stream_destroy(st);
}

/* Acks are written grouped (worker.ack_delay): one for an attempt the worker
 * does not hold still gets a CancelJob and changes nothing. */
Test(worker_edge, an_ack_of_an_attempt_the_worker_does_not_hold_gets_cancel_job)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 7);
    Hodei__V1__ServerMessage *m = ws_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB);
    cr_assert_str_eq(m->cancel_job->job_id, job);
    cr_assert_eq(m->cancel_job->epoch, 7);
    cr_assert(strstr(m->cancel_job->reason, "no longer current") != NULL, "%s",
              m->cancel_job->reason);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'ASSIGNED'"
                      " AND epoch = 1 AND started_at IS NULL",
                      job),
                 1, "a stale ack changed the job");
    hodei_rpc_stream_destroy(st);
}

/* A result right behind its ack (a short job): the ack still pending is
 * dropped, the result counts the job as started, and it ends once. */
Test(worker_edge, a_result_right_behind_its_ack_ends_the_job_once)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);
    hodei_sleep_ms(100); /* past worker.ack_delay */
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'SUCCEEDED'"
                      " AND started_at IS NOT NULL AND started_at <= finished_at",
                      job),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"
                      " AND aggregate_id = '%s'",
                      job),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'", w), 1);
    hodei_rpc_stream_destroy(st);
}

/* The supervisor ended the attempt (say, its ack came too late) before the
 * grouped ack was written: same worker, same epoch, but not RUNNING, so the
 * worker is told to stop. */
Test(worker_edge, an_ack_of_an_attempt_ended_meanwhile_gets_cancel_job)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    cr_assert_eq(sqlf("UPDATE jobs SET state = 'FAILED', finished_at = now(),"
                      " error = 'not acknowledged' WHERE id = '%s' RETURNING 1",
                      job),
                 1);
    ws_ack(st, job, 1);
    Hodei__V1__ServerMessage *m = ws_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB);
    cr_assert_str_eq(m->cancel_job->job_id, job);
    cr_assert_eq(m->cancel_job->epoch, 1);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'FAILED'", job), 1,
                 "a late ack revived an ended attempt");
    hodei_rpc_stream_destroy(st);
}

/* With a job waiting, a worker's SUCCEEDED result ends its attempt and hands
 * it the waiting job in the same transaction: the RunJob follows the result's
 * ack, the worker never shows READY, and the events say exactly that. With
 * nothing waiting, the next result frees the worker with its WorkerReady. */
Test(worker_edge, a_result_hands_the_worker_the_waiting_job_in_one_transaction)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], next[HODEI_ID_BUF];
    char hex[600];
    ready_worker(w, session);
    make_job(job, w, "RUNNING", 1, 1, 1);
    spec_hex(hex, sizeof hex);
    hodei_id_new(next);
    cr_assert_eq(sqlf("INSERT INTO jobs (id, state, spec, timeout_ms) VALUES ('%s', 'PENDING',"
                      " decode('%s', 'hex'), 60000) RETURNING 1",
                      next, hex),
                 1);
    int64_t readies = sqlf("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"
                           " AND aggregate_id = '%s'",
                           w); /* Register's */
    hodei_rpc_stream *st = ws_open();
    ws_hello(st, w, session, job);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    /* The result's ack and the RunJob, in either order: the re-send the
     * Hello scheduled may find the handed job first. */
    bool acked = false, run = false;
    while (!acked || !run) {
        Hodei__V1__ServerMessage *m = ws_next(st, RECV_MS);
        if (m->body_case == HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK) {
            cr_assert_str_eq(m->result_ack->job_id, job);
            cr_assert(m->result_ack->accepted, "refused: %s", m->result_ack->reason);
            acked = true;
        } else {
            cr_assert_eq(m->body_case, HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB, "got message %d",
                         (int)m->body_case);
            cr_assert_str_eq(m->run_job->job_id, next);
            cr_assert_eq(m->run_job->epoch, 1);
            cr_assert_eq(m->run_job->attempt, 1);
            run = true;
        }
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'SUCCEEDED'", job), 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'ASSIGNED'"
                      " AND worker_id = '%s' AND epoch = 1 AND attempt = 1",
                      next, w),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'BUSY'"
                      " AND current_job_id = '%s'",
                      w, next),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'JobAssigned'"
                      " AND aggregate_id = '%s' AND subject = 'hodei.evt.job.assigned.%s'",
                      next, w),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"
                      " AND aggregate_id = '%s'",
                      w),
                 readies, "the worker never was READY");

    ws_result(st, next, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0); /* its ack lost */
    Hodei__V1__ServerMessage *m = ws_next(st, RECV_MS);
    while (m->body_case == HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB) { /* a second re-send */
        protobuf_c_message_free_unpacked(&m->base, NULL);
        m = ws_next(st, RECV_MS);
    }
    cr_assert_eq(m->body_case, HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK);
    cr_assert_str_eq(m->result_ack->job_id, next);
    cr_assert(m->result_ack->accepted, "refused: %s", m->result_ack->reason);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'SUCCEEDED'"
                      " AND started_at IS NOT NULL",
                      next),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'"
                      " AND current_job_id IS NULL",
                      w),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"
                      " AND aggregate_id = '%s'",
                      w),
                 readies + 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"
                      " AND aggregate_id IN ('%s', '%s')",
                      job, next),
                 2);
    hodei_rpc_stream_destroy(st);
}

/* GetLogs from (from_epoch, from_sequence): the lines' "epoch:sequence". */
static void logs_from(const char *job, int64_t from_epoch, uint64_t from_sequence, char *out,
                      size_t len)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    size_t n = 0;
    req.job_id = (char *)job;
    req.from_epoch = from_epoch;
    req.from_sequence = from_sequence;
    cr_assert_eq(unary(LSVC "GetLogs", &req.base, &hodei__v1__get_logs_response__descriptor, &resp,
                       msg, sizeof msg),
                 HODEI_GRPC_OK, "GetLogs: %s", msg);
    const Hodei__V1__GetLogsResponse *r = (const Hodei__V1__GetLogsResponse *)resp;
    out[0] = '\0';
    for (size_t i = 0; i < r->n_lines && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%lld:%llu", i ? " " : "",
                              (long long)r->lines[i]->epoch,
                              (unsigned long long)r->lines[i]->sequence);
    protobuf_c_message_free_unpacked(resp, NULL);
}

/* SubscribeLogs from (from_epoch, from_sequence) to its end, as above. */
static void follow_from(const char *job, int64_t from_epoch, uint64_t from_sequence, char *out,
                        size_t len)
{
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    size_t n = 0;
    bool ended = false;
    req.job_id = (char *)job;
    req.from_epoch = from_epoch;
    req.from_sequence = from_sequence;
    cr_assert_eq(hodei_rpc_stream_open(edge.ch, LSVC "SubscribeLogs", &req.base,
                                       &hodei__v1__log_chunk__descriptor, 60000, &st, &err),
                 HODEI_OK, "%s", err.msg);
    out[0] = '\0';
    while (!ended) {
        ProtobufCMessage *msg = NULL;
        hodei_rpc_result res;
        cr_assert_eq(hodei_rpc_stream_recv(st, RECV_MS, &msg, &res, &err), HODEI_OK, "%s", err.msg);
        cr_assert_not_null(msg, "the stream closed before end_of_stream: %s", res.message);
        const Hodei__V1__LogChunk *c = (const Hodei__V1__LogChunk *)msg;
        for (size_t i = 0; i < c->n_lines && n < len; i++)
            n += (size_t)snprintf(out + n, len - n, "%s%lld:%llu", n ? " " : "",
                                  (long long)c->lines[i]->epoch,
                                  (unsigned long long)c->lines[i]->sequence);
        ended = c->end_of_stream;
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    hodei_rpc_stream_destroy(st);
}

Test(worker_edge, a_reader_resuming_inside_an_attempt_gets_no_earlier_attempt_and_no_gap)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], got[256];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 2);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    ws_logs(st, job, 1, 1, 5);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 1);
    cr_assert(ws_result_ack(st, job, NULL, 0));
    cr_assert(hodei_rpc_stream_close_send(st, NULL) == HODEI_OK);
    cr_assert_eq(ws_end(st, NULL, 0), HODEI_GRPC_OK);
    hodei_rpc_stream_destroy(st);
    /* the second attempt, as the scheduler would assign it */
    cr_assert_eq(sqlf("UPDATE jobs SET state = 'ASSIGNED', worker_id = '%s', epoch = 2,"
                      " attempt = 2 WHERE id = '%s' AND state = 'PENDING' RETURNING 1",
                      w, job),
                 1);
    cr_assert_eq(sqlf("UPDATE workers SET state = 'BUSY', current_job_id = '%s' WHERE id = '%s'"
                      " RETURNING 1",
                      job, w),
                 1);
    st = ws_connect_run(w, session, job, 2);
    ws_ack(st, job, 2);
    ws_logs(st, job, 2, 1, 3);
    ws_result(st, job, 2, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, NULL, 0));

    follow_from(job, 0, 0, got, sizeof got);
    cr_assert_str_eq(got, "1:1 1:2 1:3 1:4 1:5 2:1 2:2 2:3", "every line, with its epoch");
    logs_from(job, 1, 4, got, sizeof got);
    cr_expect_str_eq(got, "1:4 1:5 2:1 2:2 2:3", "the rest of attempt 1, all of attempt 2");
    logs_from(job, 2, 2, got, sizeof got);
    cr_expect_str_eq(got, "2:2 2:3", "nothing of attempt 1");
    follow_from(job, 2, 2, got, sizeof got);
    cr_expect_str_eq(got, "2:2 2:3", "nothing of attempt 1");
    follow_from(job, 1, 6, got, sizeof got);
    cr_expect_str_eq(got, "2:1 2:2 2:3", "attempt 1 read to its end: attempt 2 whole");
    logs_from(job, 0, 3, got, sizeof got);
    cr_expect_str_eq(got, "1:3 1:4 1:5 2:3", "without from_epoch, as older readers asked");

    Hodei__V1__GetLogsRequest bad = HODEI__V1__GET_LOGS_REQUEST__INIT;
    char msg[512];
    bad.job_id = job;
    bad.from_epoch = -1;
    cr_assert_eq(unary(LSVC "GetLogs", &bad.base, &hodei__v1__get_logs_response__descriptor, NULL,
                       msg, sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "from_epoch") != NULL, "%s", msg);
    hodei_rpc_stream_destroy(st);
}

/* ------------------------------------------------- conflicts in the database */

/* The test's own transaction, on a connection of its own. */
static PGconn *tx_open(void)
{
    PGconn *c = NULL;
    hodei_err err;
    cr_assert_eq(hodei_db_connect(stack.db_url, 5000, &c, &err), HODEI_OK, "%s", err.msg);
    return c;
}

static void tx_exec(PGconn *c, const char *sql)
{
    hodei_err err;
    cr_assert_eq(hodei_db_exec(c, sql, 0, NULL, NULL, &err), HODEI_OK, "%s: %s", sql, err.msg);
}

static int64_t deadlocks(void)
{
    return harness_sql_i64(&stack, "SELECT deadlocks FROM pg_stat_database"
                                   " WHERE datname = current_database()");
}

/* Waits until another backend waits for the transaction id xid (a row it
 * locked) to end. */
static void wait_for_waiter(const char *xid)
{
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted"
             " AND transactionid::text = '%s'",
             xid);
    cr_assert(sql_wait(1, q), "the edge never waited for the test's row lock");
}

/* A deadlock (SQLSTATE 40P01) is a conflict between two transactions, not a
 * judgement on the result: the edge runs its transaction again, and the
 * worker's result is accepted, never refused. The test's transaction locks
 * the worker row, the edge's result locks the job row and waits for the
 * worker row, then the test asks for the job row: PostgreSQL aborts the
 * edge's transaction (the test's session waits a minute before it looks for
 * deadlocks, the edge's five seconds: PostgreSQL looks once per wait, so
 * the test must ask for the job row before the edge's backend looks, even
 * on a loaded machine). Twice, so a single retry is not enough. */
Test(worker_edge, a_result_that_loses_a_deadlock_is_retried_not_refused)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512], q[512];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", job);
    cr_assert(sql_wait(1, q), "the ack did not make the job RUNNING");
    int64_t deadlocks_before = deadlocks();
    PGconn *a = tx_open();
    /* every session, the edge's open ones included (they read it at the
     * reload); put back below */
    tx_exec(a, "ALTER SYSTEM SET deadlock_timeout = '5s'");
    tx_exec(a, "SELECT pg_reload_conf()");
    tx_exec(a, "BEGIN");
    tx_exec(a, "SET LOCAL deadlock_timeout = '1min'");
    char lock_worker[256], lock_job[256], xid[32];
    snprintf(lock_worker, sizeof lock_worker, "SELECT 1 FROM workers WHERE id = '%s' FOR UPDATE",
             w);
    snprintf(lock_job, sizeof lock_job, "SELECT 1 FROM jobs WHERE id = '%s' FOR UPDATE", job);
    tx_exec(a, lock_worker);
    PGresult *r = NULL;
    hodei_err err;
    cr_assert_eq(hodei_db_exec(a, "SELECT pg_current_xact_id()::text", 0, NULL, &r, &err), HODEI_OK,
                 "%s", err.msg);
    snprintf(xid, sizeof xid, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);

    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    for (int round = 0; round < 2; round++) {
        if (round > 0)
            tx_exec(a, "ROLLBACK TO SAVEPOINT s"); /* lets the edge's retry take the job */
        wait_for_waiter(xid);                      /* it holds the job, waits for the worker */
        tx_exec(a, "SAVEPOINT s");
        tx_exec(a, lock_job); /* returns once the edge's transaction was aborted */
    }
    tx_exec(a, "COMMIT");
    tx_exec(a, "ALTER SYSTEM RESET deadlock_timeout");
    tx_exec(a, "SELECT pg_reload_conf()");
    PQfinish(a);

    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'SUCCEEDED'"
                      " AND exit_code = 0",
                      job),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'", w), 1);
    snprintf(q, sizeof q,
             "SELECT (deadlocks >= %" PRId64 ")::int FROM pg_stat_database"
             " WHERE datname = current_database()",
             deadlocks_before + 2);
    cr_assert(sql_wait(1, q), "PostgreSQL saw %" PRId64 " deadlocks, not 2",
              deadlocks() - deadlocks_before);
    cr_assert(hodei_rpc_stream_close_send(st, NULL) == HODEI_OK);
    cr_assert_eq(ws_end(st, NULL, 0), HODEI_GRPC_OK);
    hodei_rpc_stream_destroy(st);
}

/* ------------------------------------------------ logs across a NATS restart */

/* Lines first..last in batches of ten. */
static void ws_logs_tens(hodei_rpc_stream *st, const char *job, int64_t epoch, uint64_t first,
                         uint64_t last)
{
    for (uint64_t from = first; from <= last; from += 10)
        ws_logs(st, job, epoch, from, from + 9 <= last ? from + 9 : last);
}

/* A job's output goes on while nats-server is stopped and started again:
 * every line reaches the log, in order, once. */
Test(worker_edge, log_lines_sent_across_a_nats_restart_all_reach_the_log)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512], q[256];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", job);
    cr_assert(sql_wait(1, q), "the ack did not make the job RUNNING");
    ws_logs_tens(st, job, 1, 1, 100);
    wait_logs(job, 100, false);

    harness_nats_stop(&stack);
    ws_logs_tens(st, job, 1, 101, 200);
    hodei_sleep_ms(300);
    harness_nats_start(&stack);
    ws_logs_tens(st, job, 1, 201, 300);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);
    wait_logs(job, 300, true);
    cr_assert(hodei_rpc_stream_close_send(st, NULL) == HODEI_OK);
    hodei_rpc_stream_destroy(st);
}

/* The largest message HODEI_LOGS takes (-1: no limit of its own). */
static void logs_stream_max_msg_size(int32_t max)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL, *updated = NULL;
    jsErrCode jerr = 0;
    cr_assert_eq(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_GetStreamInfo(&si, js, "HODEI_LOGS", NULL, &jerr), NATS_OK, "%d", (int)jerr);
    si->Config->MaxMsgSize = max;
    cr_assert_eq(js_UpdateStream(&updated, js, si->Config, NULL, &jerr), NATS_OK, "%s (%d)",
                 nats_GetLastError(NULL), (int)jerr);
    jsStreamInfo_Destroy(updated);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

/* Lines JetStream refuses are not lost in silence: counted, logged, and
 * the attempt's readers get a SYSTEM line naming the lost sequences, after
 * the lines that did arrive. Here the stream refuses messages over 256
 * bytes while one batch (lines 6-45) goes by. */
Test(worker_edge, log_lines_the_log_store_refuses_are_named_to_the_reader)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512], q[256];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", job);
    cr_assert(sql_wait(1, q), "the ack did not make the job RUNNING");
    ws_logs(st, job, 1, 1, 5);
    wait_logs(job, 5, false);
    logs_stream_max_msg_size(256);
    ws_logs(st, job, 1, 6, 45); /* ~500 bytes: refused */
    cr_assert(harness_log_contains(&edge.proc, "40 log lines lost (sequences 6-45)", POLL_MS),
              "the edge did not report the lost lines (log %s)", edge.proc.log_path);
    logs_stream_max_msg_size(-1);
    ws_logs(st, job, 1, 46, 50);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);

    int64_t until = hodei_mono_ms() + POLL_MS;
    Hodei__V1__GetLogsResponse *r = NULL;
    for (;;) {
        r = get_logs(job);
        if (r->complete)
            break;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        cr_assert(hodei_mono_ms() < until, "the log never completed");
        hodei_sleep_ms(50);
    }
    cr_assert_eq(r->n_lines, 11, "%zu lines", r->n_lines);
    for (size_t i = 0; i < 10; i++) {
        uint64_t want = i < 5 ? i + 1 : i + 41;
        cr_assert_eq(r->lines[i]->sequence, want, "line %zu: sequence %llu", i,
                     (unsigned long long)r->lines[i]->sequence);
        cr_assert_eq(r->lines[i]->stream, HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT);
    }
    const Hodei__V1__LogLine *note = r->lines[10];
    cr_assert_eq(note->stream, HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM);
    cr_assert_eq(note->sequence, 51);
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)note->data.len, (const char *)note->data.data);
    cr_assert(strstr(text, "40 lines of output were lost (sequences 6-45)") != NULL, "%s", text);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cr_assert(hodei_rpc_stream_close_send(st, NULL) == HODEI_OK);
    hodei_rpc_stream_destroy(st);
}

/* "... lost (sequences 11-20, 31-40): ...": marks each run of a notice's
 * sequences in lost[] (index = sequence); returns how many it named. */
static size_t notice_runs(const char *text, bool *lost, size_t n)
{
    const char *p = strstr(text, "(sequences ");
    cr_assert_not_null(p, "%s", text);
    p += strlen("(sequences ");
    size_t named = 0;
    for (;;) {
        char *end = NULL;
        unsigned long long a = strtoull(p, &end, 10), b = a;
        if (*end == '-')
            b = strtoull(end + 1, &end, 10);
        cr_assert(a >= 1 && a <= b && b < n, "%s", text);
        for (unsigned long long s = a; s <= b; s++) {
            cr_assert(!lost[s], "sequence %llu named twice: %s", s, text);
            lost[s] = true;
            named++;
        }
        if (strncmp(end, ", ", 2) != 0)
            break;
        p = end + 2;
    }
    return named;
}

/* While nats-server is away the edge's publishes wait for their acks; past
 * 4096 of them a publish is refused at once (after a 2 s stall), tried
 * again, then its lines are a gap. Every line of the job is accounted for:
 * it reached the log, or the SYSTEM line at the end names it, never both. */
Test(worker_edge, lines_the_edge_cannot_hand_to_nats_are_named_to_the_reader, .timeout = 300)
{
    enum { BATCHES = 4104, TOTAL = 10 + BATCHES + 10 };
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF], reason[512], q[256];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", job);
    cr_assert(sql_wait(1, q), "the ack did not make the job RUNNING");
    ws_logs(st, job, 1, 1, 10);
    wait_logs(job, 10, false);
    harness_nats_stop(&stack);
    for (uint64_t s = 11; s < 11 + BATCHES; s++)
        ws_logs(st, job, 1, s, s); /* one line a batch: one publish each */
    cr_assert(harness_log_contains(&edge.proc, "log lines lost", 60000),
              "no publish was refused (log %s)", edge.proc.log_path);
    harness_nats_start(&stack);
    ws_logs(st, job, 1, 11 + BATCHES, TOTAL);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, reason, sizeof reason), "refused: %s", reason);

    int64_t until = hodei_mono_ms() + 60000;
    Hodei__V1__GetLogsResponse *r = NULL;
    for (;;) {
        r = get_logs(job);
        if (r->complete)
            break;
        protobuf_c_message_free_unpacked(&r->base, NULL);
        cr_assert(hodei_mono_ms() < until, "the log never completed");
        hodei_sleep_ms(200);
    }
    static bool seen[TOTAL + 2], lost[TOTAL + 2];
    memset(seen, 0, sizeof seen);
    memset(lost, 0, sizeof lost);
    size_t named = 0, notices = 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        const Hodei__V1__LogLine *l = r->lines[i];
        if (l->stream == HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM) {
            char text[1024];
            snprintf(text, sizeof text, "%.*s", (int)l->data.len, (const char *)l->data.data);
            named += notice_runs(text, lost, TOTAL + 1);
            notices++;
            continue;
        }
        cr_assert(l->sequence >= 1 && l->sequence <= TOTAL && !seen[l->sequence],
                  "line sequence %llu", (unsigned long long)l->sequence);
        seen[l->sequence] = true;
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cr_assert_eq(notices, 1, "one notice of lost lines");
    cr_assert(named > 0);
    for (size_t s = 1; s <= TOTAL; s++)
        cr_assert(seen[s] != lost[s], "sequence %zu: %s", s,
                  seen[s] ? "arrived and named lost" : "missing and not named");
    cr_assert(hodei_rpc_stream_close_send(st, NULL) == HODEI_OK);
    hodei_rpc_stream_destroy(st);
}

/* GetLogs pages by bytes at the edge (replies.logs_page_bytes, 8 MiB by
 * default): a reply ends before its packed size would pass the page, is
 * then not complete, and from_sequence = the last line's + 1 gives the
 * rest: every line once. */
#define BIG_LINE (64 * 1024)
#define BIG_LINES 160 /* 10 MiB */
#define BIG_BATCH 8   /* lines (512 KiB) per LogBatch */
#define GETLOGS_BYTES (8 * 1024 * 1024)

/* The bytes a line of the given packed size takes in a GetLogsResponse. */
static size_t line_field_bytes(size_t len)
{
    size_t varint = 1;
    for (size_t v = len; v >= 0x80; v >>= 7)
        varint++;
    return 1 + varint + len;
}

/* A page's packed size, with `complete` counted as set (the edge keeps
 * room for it). */
static size_t page_bytes(const Hodei__V1__GetLogsResponse *r)
{
    return hodei__v1__get_logs_response__get_packed_size(r) + (r->complete ? 0 : 2);
}

static size_t big_len(uint64_t seq)
{
    (void)seq;
    return BIG_LINE;
}

static Hodei__V1__GetLogsResponse *get_logs_from(const char *job, uint64_t from)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    req.job_id = (char *)job;
    req.from_sequence = from;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    cr_assert_eq(unary(LSVC "GetLogs", &req.base, &hodei__v1__get_logs_response__descriptor, &resp,
                       msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    return (Hodei__V1__GetLogsResponse *)resp;
}

Test(worker_edge, get_logs_pages_end_before_8_mib_and_resume_exactly, .timeout = 300)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    for (uint64_t s = 1; s <= BIG_LINES; s += BIG_BATCH)
        ws_sized_logs(st, job, 1, s, BIG_BATCH, HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT, big_len);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, NULL, 0));
    /* Page until a complete page: once everything is stored, the first
     * page holds 8 MiB and at most one batch more, the second the rest. */
    int64_t until = hodei_mono_ms() + POLL_MS;
    for (;;) {
        uint64_t from = 1;
        size_t pages = 0, first_bytes = 0, first_packed = 0, line_bytes = 0;
        bool complete = false;
        while (!complete && pages < 4) {
            Hodei__V1__GetLogsResponse *r = get_logs_from(job, from);
            size_t bytes = 0;
            for (size_t i = 0; i < r->n_lines; i++) {
                cr_assert_eq(r->lines[i]->sequence, from + i, "page %zu line %zu", pages, i);
                cr_assert_eq(r->lines[i]->data.len, BIG_LINE);
                bytes += r->lines[i]->data.len;
            }
            if (pages == 0) {
                first_bytes = bytes;
                first_packed = page_bytes(r);
                if (r->n_lines > 0)
                    line_bytes = line_field_bytes(
                        hodei__v1__log_line__get_packed_size(r->lines[r->n_lines - 1]));
            }
            complete = r->complete;
            bool empty = r->n_lines == 0;
            from += r->n_lines;
            pages++;
            protobuf_c_message_free_unpacked(&r->base, NULL);
            if (empty)
                break;
        }
        if (complete && from == BIG_LINES + 1) {
            cr_assert_eq(pages, 2, "10 MiB of output in %zu pages", pages);
            /* the page is a bound: it ends before the next line would pass it */
            cr_assert(first_packed <= GETLOGS_BYTES && first_packed + line_bytes > GETLOGS_BYTES,
                      "the first page is %zu bytes (%zu of output)", first_packed, first_bytes);
            break;
        }
        cr_assert(hodei_mono_ms() < until, "GetLogs: up to line %llu (complete=%d)",
                  (unsigned long long)from - 1, complete);
        hodei_sleep_ms(100);
    }
    hodei_rpc_stream_destroy(st);
}

/* replies.logs_page_bytes at its boundary: lines of varied sizes, read in
 * pages of at most 32 KiB; each page ends before the next line would pass
 * it, and a line larger than the page comes alone. Out-of-range values of
 * the setting (and of logs.readers) are refused at start-up. */
#define SMALL_PAGE 32768 /* below a line's 64 KiB maximum */

static void setup_small_page(void)
{
    const char *env[] = {"HODEI_WORKER_RESEND_INTERVAL=30s", "HODEI_WORKER_KEEPALIVE_INTERVAL=10s",
                         "HODEI_WORKER_HEARTBEAT_INTERVAL=200ms",
                         "HODEI_REPLIES_LOGS_PAGE_BYTES=32768", NULL};
    hodei_rpc_global_init();
    harness_stack_start(&stack);
    edge_start(&stack, &edge, env);
}

TestSuite(worker_edge_page, .init = setup_small_page, .fini = teardown, .timeout = 300);

#define SIZED_LINES 96
#define HUGE_LINE 40 /* this one is larger than the page */

static size_t sized_len(uint64_t seq)
{
    return seq == HUGE_LINE ? 65536 : 1000 + (size_t)(seq * 7919 % 9000);
}

Test(worker_edge_page, get_logs_pages_stop_before_the_page_and_a_huge_line_goes_alone)
{
    char w[HODEI_ID_BUF], session[SESSION_HEX + 1], job[HODEI_ID_BUF];
    ready_worker(w, session);
    make_job(job, w, "ASSIGNED", 1, 1, 1);
    hodei_rpc_stream *st = ws_connect_run(w, session, job, 1);
    ws_ack(st, job, 1);
    for (uint64_t s = 1; s <= SIZED_LINES; s += BIG_BATCH)
        ws_sized_logs(st, job, 1, s, BIG_BATCH, HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT,
                      sized_len);
    ws_result(st, job, 1, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0);
    cr_assert(ws_result_ack(st, job, NULL, 0));
    int64_t until = hodei_mono_ms() + POLL_MS;
    for (;;) {
        uint64_t from = 1;
        size_t pages = 0;
        bool complete = false, huge_alone = false;
        size_t prev_bytes = 0; /* the previous page's size, when it was not complete */
        while (!complete && pages < 64) {
            Hodei__V1__GetLogsResponse *r = get_logs_from(job, from);
            if (r->n_lines == 0) {
                protobuf_c_message_free_unpacked(&r->base, NULL);
                break;
            }
            size_t bytes = page_bytes(r);
            for (size_t i = 0; i < r->n_lines; i++) {
                cr_assert_eq(r->lines[i]->sequence, from + i, "page %zu line %zu", pages, i);
                cr_assert_eq(r->lines[i]->data.len, sized_len(from + i));
            }
            if (r->n_lines == 1 && r->lines[0]->sequence == HUGE_LINE) {
                huge_alone = true;
                cr_assert_gt(bytes, SMALL_PAGE);
            } else {
                cr_assert_leq(bytes, SMALL_PAGE, "page %zu is %zu bytes", pages, bytes);
                cr_assert(r->lines[0]->sequence != HUGE_LINE || r->n_lines == 1);
            }
            /* the previous page ended because this page's first line would
             * have passed it */
            if (prev_bytes > 0)
                cr_assert_gt(prev_bytes + line_field_bytes(
                                              hodei__v1__log_line__get_packed_size(r->lines[0])),
                             SMALL_PAGE, "page %zu ended early at %zu bytes", pages - 1,
                             prev_bytes);
            prev_bytes = r->complete ? 0 : bytes;
            complete = r->complete;
            from += r->n_lines;
            pages++;
            protobuf_c_message_free_unpacked(&r->base, NULL);
        }
        if (complete && from == SIZED_LINES + 1) {
            cr_assert(huge_alone, "the line larger than the page came alone");
            cr_assert_geq(pages, 6, "%zu pages", pages);
            break;
        }
        cr_assert(hodei_mono_ms() < until, "GetLogs: up to line %llu (complete=%d)",
                  (unsigned long long)from - 1, complete);
        hodei_sleep_ms(100);
    }
    hodei_rpc_stream_destroy(st);
    /* out-of-range settings are refused, naming them */
    char out[4096];
    const char *bad[] = {"HODEI_REPLIES_LOGS_PAGE_BYTES=1023",
                         "HODEI_REPLIES_LOGS_PAGE_BYTES=8388609", "HODEI_LOGS_READERS=0",
                         "HODEI_LOGS_READERS=65", "HODEI_LOGS_READERS_QUEUE_MAX=0"};
    const char *names[] = {"replies.logs_page_bytes", "replies.logs_page_bytes", "logs.readers",
                           "logs.readers", "logs.readers_queue_max"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = harness_sh(&stack, out, sizeof out, "%s '%s/hodei-job-api' --check-config 2>&1",
                            bad[i], stack.bin);
        cr_assert_neq(rc, 0, "%s was accepted", bad[i]);
        cr_assert(strstr(out, names[i]), "%s: %s", bad[i], out);
    }
}
