/* LogStreamService.GetLogs: the lines stored so far on hodei.logs.<job>,
 * read with an ephemeral ordered consumer up to the subject's last message
 * at the time of the call, or a finished job's archive. `complete` when the
 * end marker is among them (or the job finished over LOGS_END_GRACE_MS ago
 * and no marker came) and nothing was left out.
 *
 * The reading (the job's row, the archive in PostgreSQL or S3, JetStream)
 * blocks, so it never runs on the gRPC threads, which also carry workers'
 * heartbeats and results: the handler checks the request and hands the
 * call (a reference held) to a small pool of reader threads (logs.readers)
 * through a bounded queue (logs.readers_queue_max; full = RESOURCE_EXHAUSTED
 * naming it). A reply ends before it would pass replies.logs_page_bytes
 * (its packed size, lines whole; a single line larger than the page goes
 * alone). */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "edge_auth.h"
#include "hodei/bus.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "logs_int.h"

#define LOGS_GET_LINES_MAX 100000             /* max_lines ceiling, and 0 = this */
#define LOGS_GET_WAIT_MS 5000                 /* for the next stored message */
#define LOGS_GET_ARENA_MAX (64 * 1024 * 1024) /* unpacked batches held for one response */
#define LOGS_GET_COMPLETE_BYTES 2             /* `complete = true` in the reply */

typedef struct {
    hodei_arena arena;
    hodei_log_filter filt;
    logs_lines out;
    size_t room;
    size_t page;    /* replies.logs_page_bytes */
    size_t bytes;   /* the reply's packed size so far */
    bool ended;     /* the end marker was read */
    bool truncated; /* lines were left out (max_lines, page) */
} logs_get_state;

/* Adds l to the reply unless that would pass max_lines or the page (a
 * first line always goes); false when it did not. */
static bool get_add(logs_get_state *g, Hodei__V1__LogLine *l)
{
    if (g->out.n >= g->room)
        return false;
    size_t b = edge_page_field_bytes(hodei__v1__log_line__get_packed_size(l), true);
    if (g->out.n > 0 && g->bytes + b > g->page)
        return false;
    g->out.lines[g->out.n++] = l;
    g->bytes += b;
    return true;
}

/* Takes one message; true when reading must stop. */
static bool get_take(logs_get_state *g, natsMsg *m)
{
    Hodei__V1__JobState end;
    hodei_arena_mark mark = hodei_arena_mark_get(&g->arena);
    size_t before = g->out.n;
    Hodei__V1__LogBatch *b = logs_unpack(m, &g->arena, &end);
    if (!b) {
        HLOG_WARN("%s: a stored message is not a LogBatch; skipped", natsMsg_GetSubject(m));
        hodei_arena_rollback(&g->arena, mark);
        return false;
    }
    if (end) {
        g->ended = true;
        return true;
    }
    bool cut = false;
    for (size_t i = 0; i < b->n_lines && !cut; i++) {
        Hodei__V1__LogLine *l = b->lines[i];
        if (!hodei_log_filter_pass(&g->filt, b->epoch, l->sequence))
            continue;
        l->epoch = b->epoch;
        cut = !get_add(g, l);
    }
    if (g->out.n == before)
        hodei_arena_rollback(&g->arena, mark); /* nothing of it is kept */
    if (cut || g->arena.bytes >= LOGS_GET_ARENA_MAX) {
        g->truncated = true;
        return true;
    }
    return false;
}

static hodei_status get_read(jsCtx *js, const char *subject, uint64_t last_seq, logs_get_state *g,
                             hodei_err *err)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_LOGS;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr);
    if (s != NATS_OK)
        return hodei_bus_err(s, "log store: subscribe", err);
    hodei_status st = HODEI_OK;
    for (bool stop = false; !stop;) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, LOGS_GET_WAIT_MS);
        if (s != NATS_OK) {
            st = hodei_bus_err(s, "log store: read", err);
            break;
        }
        jsMsgMetaData *meta = NULL;
        uint64_t seq = natsMsg_GetMetaData(&meta, m) == NATS_OK ? meta->Sequence.Stream : last_seq;
        jsMsgMetaData_Destroy(meta);
        stop = get_take(g, m) || seq >= last_seq;
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return st;
}

/* A finished job's archive, a line at a time, up to max_lines or the page;
 * *found when the job has one (then it is the whole log). */
static hodei_status get_archive(edge *e, const char *job_id, logs_get_state *g, bool *found,
                                hodei_err *err)
{
    logs_archive_reader *r = NULL;
    bool eof = false;
    hodei_status st = logs_archive_open(e, job_id, &r, NULL, err);
    *found = r != NULL;
    while (st == HODEI_OK && r && !eof) {
        if (g->out.n >= g->room) {
            g->truncated = true;
            break;
        }
        size_t before = g->out.n;
        /* room: one more line, so each is weighed before the next */
        st = logs_archive_next(r, &g->filt, &g->arena, &g->out, before + 1, &eof, err);
        if (st != HODEI_OK || g->out.n == before)
            continue;
        Hodei__V1__LogLine *l = g->out.lines[--g->out.n];
        if (!get_add(g, l) || g->arena.bytes >= LOGS_GET_ARENA_MAX) {
            g->truncated = true;
            break;
        }
    }
    logs_archive_close(r);
    return st;
}

static hodei_status get_check(const Hodei__V1__GetLogsRequest *req, hodei_err *err)
{
    hodei_status st = logs_check_request(req->job_id, req->from_epoch, err);
    if (st != HODEI_OK)
        return st;
    if (req->max_lines < 0 || req->max_lines > LOGS_GET_LINES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "max_lines: must be between 0 (all) and %d, got %d",
                             LOGS_GET_LINES_MAX, req->max_lines);
    return HODEI_OK;
}

/* The reading and the answer, on a reader thread (req already checked). */
static void get_serve(edge *e, hodei_rpc_call *call, const Hodei__V1__GetLogsRequest *req)
{
    hodei_err err;
    char job_id[HODEI_ID_BUF], subject[LOGS_SUBJECT_MAX];
    Hodei__V1__JobState ended_state;
    uint64_t last_seq = 0;
    logs_get_state g = {0};
    hodei_arena_init(&g.arena, LOGS_ARENA_BLOCK, SIZE_MAX);
    hodei_log_filter_init(&g.filt, req->from_sequence, req->from_epoch);
    g.page = (size_t)e->cfg->reply_logs_page_bytes;
    g.bytes = LOGS_GET_COMPLETE_BYTES;
    hodei_status st = HODEI_OK;
    for (size_t i = 0; i <= HODEI_ID_LEN; i++)
        job_id[i] = (char)tolower((unsigned char)req->job_id[i]);
    logs_subject(job_id, subject);
    if ((st = logs_job_check(e, edge_caller(call), job_id, &ended_state, &err)) != HODEI_OK)
        goto fail;
    g.room = req->max_lines > 0 ? (size_t)req->max_lines : LOGS_GET_LINES_MAX;
    g.out.lines = malloc(g.room * sizeof *g.out.lines);
    if (!g.out.lines) {
        st = hodei_err_set(&err, HODEI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    bool archived = false;
    /* A finished job's archive whenever it has one, even within the end
     * grace: the stream may be gone already. */
    if ((st = get_archive(e, job_id, &g, &archived, &err)) != HODEI_OK)
        goto fail;
    if (archived) /* the whole log of a finished job */
        g.ended = true;
    else if ((st = logs_last_seq(hodei_bus_js(e->readers_bus), subject, &last_seq, &err)) !=
             HODEI_OK)
        goto fail;
    if (!archived && last_seq > 0 &&
        (st = get_read(hodei_bus_js(e->readers_bus), subject, last_seq, &g, &err)) != HODEI_OK)
        goto fail;
    Hodei__V1__GetLogsResponse resp = HODEI__V1__GET_LOGS_RESPONSE__INIT;
    resp.lines = g.out.lines;
    resp.n_lines = g.out.n;
    resp.complete = !g.truncated && (g.ended || ended_state != 0);
    hodei_rpc_call_reply(call, &resp.base);
    goto out;
fail:
    hodei_rpc_call_fail_err(call, &err);
out:
    free(g.out.lines);
    hodei_arena_fini(&g.arena);
}

/* ------------------------------------------------------------ readers */

typedef struct get_item {
    struct get_item *next;
    hodei_rpc_call *call; /* a reference held */
    Hodei__V1__GetLogsRequest *req;
} get_item;

struct logs_readers {
    edge *e;
    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cv;  /* an item queued, or stopping */
    get_item *head, *tail;
    size_t queued, queue_max;
    bool stopping;
    pthread_t threads[EDGE_LOG_READERS_MAX];
    int n_threads;
    hodei_metric *waiting, *refused;
};

static void item_free(get_item *it)
{
    hodei_rpc_call_unref(it->call);
    protobuf_c_message_free_unpacked(&it->req->base, NULL);
    free(it);
}

static get_item *readers_take(logs_readers *r)
{
    pthread_mutex_lock(&r->mu);
    while (!r->head && !r->stopping)
        pthread_cond_wait(&r->cv, &r->mu);
    get_item *it = r->head;
    if (it) {
        r->head = it->next;
        if (!r->head)
            r->tail = NULL;
        r->queued--;
        hodei_metric_set(r->waiting, (int64_t)r->queued);
    }
    pthread_mutex_unlock(&r->mu);
    return it;
}

static void *readers_main(void *arg)
{
    logs_readers *r = arg;
    get_item *it;
    while ((it = readers_take(r)) != NULL) {
        if (hodei_rpc_call_deadline_ms(it->call) <= hodei_mono_ms())
            hodei_rpc_call_fail(it->call, HODEI_GRPC_DEADLINE_EXCEEDED,
                                "the deadline passed while the call waited for a log reader");
        else
            get_serve(r->e, it->call, it->req);
        item_free(it);
    }
    return NULL;
}

hodei_status logs_readers_create(edge *e, logs_readers **out, hodei_err *err)
{
    logs_readers *r = calloc(1, sizeof *r);
    *out = NULL;
    if (!r)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    r->e = e;
    r->queue_max = (size_t)e->cfg->logs_readers_queue_max;
    r->waiting = hodei_daemon_gauge(e->d, "hodei_edge_log_reads_waiting",
                                    "GetLogs calls waiting for a log reader (at most"
                                    " logs.readers_queue_max).");
    r->refused = hodei_daemon_counter(e->d, "hodei_edge_log_reads_refused_total",
                                      "GetLogs calls answered RESOURCE_EXHAUSTED as"
                                      " logs.readers_queue_max calls waited.");
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    *out = r;
    for (int i = 0; i < (int)e->cfg->logs_readers && i < EDGE_LOG_READERS_MAX; i++) {
        if (pthread_create(&r->threads[i], NULL, readers_main, r) != 0)
            return hodei_err_set(err, HODEI_ERR_INTERNAL, "logs.readers: cannot start thread %d",
                                 i + 1);
        r->n_threads++;
    }
    return HODEI_OK;
}

void logs_readers_stop(logs_readers *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    get_item *it = r->head;
    r->head = r->tail = NULL;
    r->queued = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (get_item *next; it; it = next) {
        next = it->next;
        hodei_rpc_call_fail(it->call, HODEI_GRPC_UNAVAILABLE, "the server is shutting down");
        item_free(it);
    }
    for (int i = 0; i < r->n_threads; i++)
        pthread_join(r->threads[i], NULL);
    r->n_threads = 0;
}

void logs_readers_destroy(logs_readers *r)
{
    if (!r)
        return;
    logs_readers_stop(r);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* On a gRPC thread: checks the request, then queues the call for a reader. */
static void logs_get(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    logs_readers *r = e->log_readers;
    hodei_err err;
    if (get_check((const Hodei__V1__GetLogsRequest *)msg, &err) != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return;
    }
    get_item *it = malloc(sizeof *it);
    if (!it) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        return;
    }
    it->next = NULL;
    it->call = call;
    it->req = (Hodei__V1__GetLogsRequest *)hodei_rpc_call_take_request(call);
    if (!it->req) { /* only inside on_call: it is there */
        free(it);
        hodei_rpc_call_fail(call, HODEI_GRPC_INTERNAL, "GetLogs: the request went away");
        return;
    }
    hodei_rpc_call_ref(call);
    pthread_mutex_lock(&r->mu);
    bool stopping = r->stopping, full = r->queued >= r->queue_max;
    if (!stopping && !full) {
        if (r->tail)
            r->tail->next = it;
        else
            r->head = it;
        r->tail = it;
        r->queued++;
        hodei_metric_set(r->waiting, (int64_t)r->queued);
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (stopping)
        hodei_rpc_call_fail(call, HODEI_GRPC_UNAVAILABLE, "the server is shutting down");
    else if (full) {
        hodei_metric_add(r->refused, 1);
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "logs.readers_queue_max: %zu GetLogs calls already wait for a log"
                            " reader (logs.readers: %d busy); try again later",
                            r->queue_max, r->n_threads);
    }
    if (stopping || full)
        item_free(it);
}

void logs_get_method(edge *e, hodei_rpc_method *out)
{
    *out = (hodei_rpc_method){"/hodei.v1.LogStreamService/GetLogs",
                              HODEI_RPC_UNARY,
                              &hodei__v1__get_logs_request__descriptor,
                              logs_get,
                              NULL,
                              NULL,
                              e};
}
