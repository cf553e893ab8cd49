/* hodei-bench-logs: log throughput through the edge to a live follower.
 *
 *   hodei-bench-logs --target HOST:PORT --db URL [--mb N] [--line-bytes N] [--batch-lines N]
 *
 * Plays one worker: makes a worker row, a bootstrap token and an ASSIGNED
 * job in PostgreSQL, registers, says Hello, acks the RunJob, then streams N
 * MiB of log lines while a SubscribeLogs follower (started before the first
 * line) reads them; ends the job SUCCEEDED. Prints one JSON object: bytes of
 * line data, seconds from the first line sent to the follower's
 * end_of_stream, and MB/s. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/id.h"
#include "hodei/rpc.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/worker.pb-c.h"

#define BL_SQL_MAX 1024
#define BL_LINE_MAX (64 * 1024)
#define BL_BATCH_MAX 10000
#define BL_TIMEOUT_MS 600000
#define BL_SPEC_HEX "12060a046563686f" /* JobSpec{command: {command: "echo"}} */

typedef struct {
    const char *target, *db;
    int64_t mb, line_bytes, batch_lines;
} bl_opts;

typedef struct {
    hodei_rpc_channel *ch;
    char job[HODEI_ID_BUF];
    int64_t lines;
    int64_t bytes;
    int64_t end_ns;
    bool ok;
} bl_follower;

static void bl_sql(PGconn *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bl_sql(PGconn *pg, const char *fmt, ...)
{
    char sql[BL_SQL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    PGresult *r = PQexec(pg, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench-logs: %s: %s", sql, PQerrorMessage(pg));
        exit(1);
    }
    PQclear(r);
}

/* A CREATING worker with a bootstrap token; the job id is chosen. */
static void bl_setup_db(const bl_opts *o, char w[HODEI_ID_BUF], char job[HODEI_ID_BUF])
{
    PGconn *pg = PQconnectdb(o->db);
    HODEI_ASSERT(PQstatus(pg) == CONNECTION_OK);
    hodei_id_new(w);
    hodei_id_new(job);
    bl_sql(pg, "INSERT INTO workers (id, provider, state) VALUES ('%s', 'bench', 'CREATING')", w);
    bl_sql(pg,
           "INSERT INTO bootstrap_tokens (token_hash, worker_id, provider, expires_at)"
           " VALUES (sha256('bench-%s'::bytea), '%s', 'bench', now() + interval '5 min')",
           w, w);
    PQfinish(pg);
}

/* The job, ASSIGNED to the (now registered) worker at epoch 1. */
static void bl_assign(const bl_opts *o, const char *w, const char *job)
{
    PGconn *pg = PQconnectdb(o->db);
    HODEI_ASSERT(PQstatus(pg) == CONNECTION_OK);
    bl_sql(pg,
           "INSERT INTO jobs (id, state, spec, timeout_ms, worker_id, epoch, attempt)"
           " VALUES ('%s', 'ASSIGNED', decode('%s', 'hex'), 60000, '%s', 1, 1)",
           job, BL_SPEC_HEX, w);
    bl_sql(pg, "UPDATE workers SET state = 'BUSY', current_job_id = '%s' WHERE id = '%s'", job, w);
    PQfinish(pg);
}

static void bl_register(hodei_rpc_channel *ch, const char *w, char *session, size_t len)
{
    char token[64];
    snprintf(token, sizeof token, "bench-%s", w);
    Hodei__V1__RegisterRequest req = HODEI__V1__REGISTER_REQUEST__INIT;
    req.token = token;
    req.worker_id = (char *)w;
    req.hostname = "bench";
    ProtobufCMessage *resp = NULL;
    hodei_rpc_result res;
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_unary(ch, "/hodei.v1.WorkerAgentService/Register", &req.base,
                                 &hodei__v1__register_response__descriptor, 10000, &resp, &res,
                                 &err) == HODEI_OK);
    if (res.code != HODEI_GRPC_OK) {
        fprintf(stderr, "bench-logs: Register: %s\n", res.message);
        exit(1);
    }
    hodei_strlcpy(session, ((Hodei__V1__RegisterResponse *)resp)->session_token, len);
    protobuf_c_message_free_unpacked(resp, NULL);
}

static void *bl_follow(void *arg)
{
    bl_follower *f = arg;
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    req.job_id = f->job;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_stream_open(f->ch, "/hodei.v1.LogStreamService/SubscribeLogs", &req.base,
                                       &hodei__v1__log_chunk__descriptor, BL_TIMEOUT_MS, &st,
                                       &err) == HODEI_OK);
    for (;;) {
        ProtobufCMessage *msg = NULL;
        hodei_rpc_result res;
        if (hodei_rpc_stream_recv(st, BL_TIMEOUT_MS, &msg, &res, &err) != HODEI_OK || !msg)
            break;
        Hodei__V1__LogChunk *c = (Hodei__V1__LogChunk *)msg;
        for (size_t i = 0; i < c->n_lines; i++) {
            f->lines++;
            f->bytes += (int64_t)c->lines[i]->data.len;
        }
        bool end = c->end_of_stream;
        protobuf_c_message_free_unpacked(msg, NULL);
        if (end) {
            f->end_ns = hodei_mono_ns();
            f->ok = true;
        }
    }
    hodei_rpc_stream_destroy(st);
    return NULL;
}

static void bl_send(hodei_rpc_stream *st, Hodei__V1__WorkerMessage *m)
{
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_stream_send(st, &m->base, &err) == HODEI_OK);
}

static hodei_rpc_stream *bl_connect(hodei_rpc_channel *ch, const char *w, const char *session)
{
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_stream_open(ch, "/hodei.v1.WorkerAgentService/WorkerStream", NULL,
                                       &hodei__v1__server_message__descriptor, BL_TIMEOUT_MS, &st,
                                       &err) == HODEI_OK);
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__Hello h = HODEI__V1__HELLO__INIT;
    h.worker_id = (char *)w;
    h.session_token = (char *)session;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_HELLO;
    m.hello = &h;
    bl_send(st, &m);
    return st;
}

/* Waits for a server message of the given kind (skips keepalives). */
static void bl_expect(hodei_rpc_stream *st, Hodei__V1__ServerMessage__BodyCase body)
{
    for (;;) {
        ProtobufCMessage *msg = NULL;
        hodei_rpc_result res;
        hodei_err err;
        HODEI_ASSERT(hodei_rpc_stream_recv(st, 30000, &msg, &res, &err) == HODEI_OK && msg);
        bool hit = ((Hodei__V1__ServerMessage *)msg)->body_case == body;
        protobuf_c_message_free_unpacked(msg, NULL);
        if (hit)
            return;
    }
}

static void bl_stream_lines(hodei_rpc_stream *st, const bl_opts *o, const char *job)
{
    int64_t total = o->mb * 1024 * 1024, sent = 0;
    uint64_t seq = 1;
    size_t n = (size_t)o->batch_lines;
    Hodei__V1__LogLine *lines = calloc(n, sizeof *lines);
    Hodei__V1__LogLine **ptrs = calloc(n, sizeof *ptrs);
    uint8_t *data = malloc((size_t)o->line_bytes);
    HODEI_ASSERT(lines && ptrs && data);
    memset(data, 'x', (size_t)o->line_bytes);
    for (size_t i = 0; i < n; i++) {
        hodei__v1__log_line__init(&lines[i]);
        lines[i].stream = HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT;
        lines[i].data.data = data;
        lines[i].data.len = (size_t)o->line_bytes;
        ptrs[i] = &lines[i];
    }
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    b.job_id = (char *)job;
    b.epoch = 1;
    b.n_lines = n;
    b.lines = ptrs;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH;
    m.log_batch = &b;
    while (sent < total) {
        for (size_t i = 0; i < n; i++)
            lines[i].sequence = seq++;
        bl_send(st, &m);
        sent += (int64_t)n * o->line_bytes;
    }
    free(lines);
    free(ptrs);
    free(data);
}

static void bl_finish(hodei_rpc_stream *st, const char *job)
{
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__JobResult r = HODEI__V1__JOB_RESULT__INIT;
    r.job_id = (char *)job;
    r.epoch = 1;
    r.state = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT;
    m.job_result = &r;
    bl_send(st, &m);
    bl_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK);
}

static int64_t bl_num(const char *s, int64_t min, int64_t max)
{
    int64_t v;
    if (!hodei_parse_i64(s, min, max, &v)) {
        fprintf(stderr, "bench-logs: %s: not a number in [%" PRId64 ", %" PRId64 "]\n", s, min,
                max);
        exit(2);
    }
    return v;
}

static void bl_args(int argc, char **argv, bl_opts *o)
{
    *o = (bl_opts){.mb = 256, .line_bytes = 1000, .batch_lines = 100};
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--target") == 0)
            o->target = argv[i + 1];
        else if (strcmp(argv[i], "--db") == 0)
            o->db = argv[i + 1];
        else if (strcmp(argv[i], "--mb") == 0)
            o->mb = bl_num(argv[i + 1], 1, 100000);
        else if (strcmp(argv[i], "--line-bytes") == 0)
            o->line_bytes = bl_num(argv[i + 1], 1, BL_LINE_MAX);
        else if (strcmp(argv[i], "--batch-lines") == 0)
            o->batch_lines = bl_num(argv[i + 1], 1, BL_BATCH_MAX);
        else {
            fprintf(stderr, "bench-logs: unknown option %s\n", argv[i]);
            exit(2);
        }
    }
    if (!o->target || !o->db) {
        fprintf(stderr, "usage: hodei-bench-logs --target HOST:PORT --db URL [--mb N]"
                        " [--line-bytes N] [--batch-lines N]\n");
        exit(2);
    }
}

int main(int argc, char **argv)
{
    bl_opts o;
    bl_args(argc, argv, &o);
    hodei_rpc_global_init();
    char w[HODEI_ID_BUF], session[128];
    bl_follower f = {0};
    bl_setup_db(&o, w, f.job);
    hodei_rpc_channel_opts co = {.target = o.target, .api_key = getenv("HODEI_API_KEY")};
    hodei_rpc_channel *wch = NULL;
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_channel_create(&co, &wch, &err) == HODEI_OK);
    HODEI_ASSERT(hodei_rpc_channel_create(&co, &f.ch, &err) == HODEI_OK);
    bl_register(wch, w, session, sizeof session);
    bl_assign(&o, w, f.job);
    hodei_rpc_stream *st = bl_connect(wch, w, session);
    bl_expect(st, HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB);
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    Hodei__V1__RunJobAck a = HODEI__V1__RUN_JOB_ACK__INIT;
    a.job_id = f.job;
    a.epoch = 1;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK;
    m.run_job_ack = &a;
    bl_send(st, &m);
    pthread_t t;
    HODEI_ASSERT(pthread_create(&t, NULL, bl_follow, &f) == 0);
    hodei_sleep_ms(200); /* the follower is subscribed before the first line */
    int64_t t0 = hodei_mono_ns();
    bl_stream_lines(st, &o, f.job);
    int64_t sent_ns = hodei_mono_ns();
    bl_finish(st, f.job);
    pthread_join(t, NULL);
    double secs = (double)(f.end_ns - t0) / 1e9;
    printf("{\"scenario\":\"log_follow\",\"ok\":%s,\"lines\":%" PRId64 ",\"bytes\":%" PRId64
           ",\"line_bytes\":%" PRId64 ",\"batch_lines\":%" PRId64 ",\"send_seconds\":%.3f"
           ",\"seconds\":%.3f,\"mb_per_s\":%.1f}\n",
           f.ok ? "true" : "false", f.lines, f.bytes, o.line_bytes, o.batch_lines,
           (double)(sent_ns - t0) / 1e9, secs, secs > 0 ? (double)f.bytes / 1048576.0 / secs : 0);
    hodei_rpc_stream_close_send(st, &err);
    hodei_rpc_stream_destroy(st);
    hodei_rpc_channel_destroy(wch);
    hodei_rpc_channel_destroy(f.ch);
    hodei_rpc_global_shutdown();
    return f.ok ? 0 : 1;
}
