/* WorkerAgentService.WorkerStream: one bidirectional call per connected
 * worker. The first message must be a Hello with a valid session token;
 * then heartbeats, acks, log batches and results. A bad message ends the
 * stream INVALID_ARGUMENT naming the field. Messages of one stream are
 * handled one at a time (libs/rpc posts one receive at a time). */
#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "worker_int.h"

#define STREAM_LOG_DROP_EVERY 1000 /* stale log batches: log the first, then every Nth */

/* Ids travel in subjects and are compared as text: keep the canonical
 * lower-case form. The message is the library's heap copy, ours to edit
 * until the handler returns. */
static void stream_lower(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static void stream_on_call(hodei_rpc_call *call, const ProtobufCMessage *req, void *ctx)
{
    edge *e = ctx;
    worker_session *s = worker_session_create(e->workers, call);
    if (!s) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "too many worker streams on this edge (or out of memory)");
        return;
    }
    hodei_rpc_call_set_user(call, s);
}

static hodei_status stream_hello(worker_session *s, const Hodei__V1__WorkerMessage *m,
                                 hodei_err *err)
{
    if (m->body_case != HODEI__V1__WORKER_MESSAGE__BODY_HELLO)
        return hodei_err_set(err, HODEI_ERR_UNAUTHENTICATED,
                             "the first message on a worker stream must be hello");
    Hodei__V1__Hello *hello = m->hello;
    hodei_status st = hodei_worker_check_hello(hello, err);
    if (st != HODEI_OK)
        return st;
    stream_lower(hello->worker_id);
    for (size_t i = 0; i < hello->n_running_job_ids; i++)
        stream_lower(hello->running_job_ids[i]);
    edge *e = worker_hub_edge(s->hub);
    if ((st = worker_cert_check(e, s->call, hello->worker_id, err)) != HODEI_OK)
        return st;
    if ((st = worker_session_auth(e, hello->worker_id, hello->session_token, err)) != HODEI_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    hodei_strlcpy(s->worker_id, hello->worker_id, sizeof s->worker_id);
    pthread_mutex_unlock(&s->mu);
    if ((st = worker_jobs_hello(s, hello, err)) != HODEI_OK)
        return st;
    if ((st = worker_hub_attach(s, err)) != HODEI_OK)
        return st;
    HLOG_INFO("worker %s connected (%zu running jobs reported)", hello->worker_id,
              hello->n_running_job_ids);
    return HODEI_OK;
}

static hodei_status stream_heartbeat(worker_session *s, const Hodei__V1__Heartbeat *hb,
                                     hodei_err *err)
{
    hodei_status st = hodei_worker_check_heartbeat(hb, err);
    if (st != HODEI_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    hodei__v1__resource_usage__init(&s->usage);
    if (hb->usage) {
        s->usage.cpu_cores_used = hb->usage->cpu_cores_used;
        s->usage.memory_bytes_used = hb->usage->memory_bytes_used;
        s->usage.memory_bytes_total = hb->usage->memory_bytes_total;
        s->usage.running_jobs = hb->usage->running_jobs;
    }
    s->beat_pending = true;
    pthread_mutex_unlock(&s->mu);
    return HODEI_OK;
}

/* logs.job_max: the lines of b past the attempt's byte limit are cut off
 * and counted; the count becomes one marker line. The kept lines are a
 * prefix of b (nothing is kept after the first drop): b->n_lines shrinks
 * to them, and the caller puts it back before b is freed. */
static void stream_log_limit(worker_session *s, Hodei__V1__LogBatch *b)
{
    int64_t max = worker_hub_edge(s->hub)->cfg->logs_job_max;
    if (strcmp(s->log.job_id, b->job_id) != 0 || s->log.epoch != b->epoch) {
        memset(&s->log, 0, sizeof s->log);
        hodei_strlcpy(s->log.job_id, b->job_id, sizeof s->log.job_id);
        s->log.epoch = b->epoch;
    }
    size_t keep = 0;
    for (size_t i = 0; i < b->n_lines; i++) {
        Hodei__V1__LogLine *l = b->lines[i];
        int64_t cost = (int64_t)l->data.len + 1;
        if (l->sequence > s->log.last_sequence)
            s->log.last_sequence = l->sequence;
        if (s->log.dropped == 0 && s->log.bytes + cost <= max) {
            s->log.bytes += cost;
            b->lines[keep++] = l;
        } else {
            s->log.dropped++;
            s->log.dropped_bytes += cost;
        }
    }
    b->n_lines = keep;
}

void worker_stream_log_drops(worker_session *s, const char *job_id, int64_t epoch)
{
    if (strcmp(s->log.job_id, job_id) != 0 || s->log.epoch != epoch || s->log.dropped == 0)
        return;
    char text[256];
    snprintf(text, sizeof text,
             "hodei: %llu lines (%lld bytes) of output were dropped: the job reached the log "
             "limit of %lld bytes (logs.job_max)",
             (unsigned long long)s->log.dropped, (long long)s->log.dropped_bytes,
             (long long)worker_hub_edge(s->hub)->cfg->logs_job_max);
    Hodei__V1__LogLine line = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__LogLine *lines[1] = {&line};
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    line.sequence = s->log.last_sequence; /* the last dropped: sequences keep increasing */
    line.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM;
    line.data.data = (uint8_t *)text;
    line.data.len = strlen(text);
    b.job_id = (char *)job_id;
    b.epoch = epoch;
    b.lines = lines;
    b.n_lines = 1;
    hodei_err err;
    if (log_pub_batch(worker_hub_pub(s->hub), &b, &err) != HODEI_OK)
        HLOG_WARN("job %s: log limit marker not published: %s", job_id, err.msg);
    s->log.dropped = 0;
}

static hodei_status stream_logs(worker_session *s, Hodei__V1__LogBatch *b, hodei_err *err)
{
    static atomic_long dropped;
    hodei_status st = hodei_worker_check_log_batch(b, err);
    if (st != HODEI_OK)
        return st;
    stream_lower(b->job_id);
    if (!worker_jobs_owned(s, b->job_id, b->epoch)) {
        long n = atomic_fetch_add(&dropped, 1);
        if (n % STREAM_LOG_DROP_EVERY == 0)
            HLOG_INFO("log batch of job %s epoch %" PRId64 " dropped: not this worker's"
                      " current attempt (%ld dropped so far)",
                      b->job_id, b->epoch, n + 1);
        return HODEI_OK;
    }
    size_t n_lines = b->n_lines;
    stream_log_limit(s, b);
    hodei_err perr;
    if (b->n_lines > 0 && log_pub_batch(worker_hub_pub(s->hub), b, &perr) != HODEI_OK)
        HLOG_WARN("job %s: log batch not published: %s", b->job_id, perr.msg);
    b->n_lines = n_lines; /* every line is freed with the message */
    return HODEI_OK;
}

/* A worker's Keepalive is answered with its nonce (the agent takes the
 * answer as proof that the edge read everything before it), unless it is
 * the echo of the edge's own: two peers that both answer never loop. */
static void stream_keepalive(worker_session *s, const Hodei__V1__Keepalive *k)
{
    pthread_mutex_lock(&s->mu);
    bool echo = k && k->nonce == s->keepalive_nonce;
    pthread_mutex_unlock(&s->mu);
    if (!k || echo)
        return;
    Hodei__V1__Keepalive answer = HODEI__V1__KEEPALIVE__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    answer.nonce = k->nonce;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE;
    m.keepalive = &answer;
    worker_session_send(s, &m);
}

static hodei_status stream_dispatch(worker_session *s, const Hodei__V1__WorkerMessage *m,
                                    hodei_err *err)
{
    hodei_status st = HODEI_OK;
    switch (m->body_case) {
    case HODEI__V1__WORKER_MESSAGE__BODY_HELLO:
        return hodei_err_set(err, HODEI_ERR_INVALID, "hello: sent twice on one stream");
    case HODEI__V1__WORKER_MESSAGE__BODY_HEARTBEAT:
        return stream_heartbeat(s, m->heartbeat, err);
    case HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK:
        if ((st = hodei_worker_check_ack(m->run_job_ack, err)) == HODEI_OK) {
            stream_lower(m->run_job_ack->job_id);
            worker_jobs_ack(s, m->run_job_ack);
        }
        return st;
    case HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH:
        return stream_logs(s, m->log_batch, err);
    case HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT:
        if ((st = hodei_worker_check_result(m->job_result, err)) == HODEI_OK) {
            stream_lower(m->job_result->job_id);
            worker_jobs_result(s, m->job_result);
        }
        return st;
    case HODEI__V1__WORKER_MESSAGE__BODY_KEEPALIVE:
        stream_keepalive(s, m->keepalive);
        return HODEI_OK;
    default:
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "body: empty or unknown worker message (field %d)", (int)m->body_case);
    }
}

static void stream_on_message(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    worker_session *s = hodei_rpc_call_user(call);
    if (!s)
        return;
    const Hodei__V1__WorkerMessage *m = (const Hodei__V1__WorkerMessage *)msg;
    pthread_mutex_lock(&s->mu);
    s->last_recv_ms = hodei_mono_ms();
    bool authed = s->authed, ended = s->ended;
    /* Any message proves the worker alive, not only a Heartbeat: a worker
     * streaming a large output has its Heartbeats queued behind its log
     * batches, and must not be called LOST while the edge reads them. */
    if (authed)
        s->beat_pending = true;
    pthread_mutex_unlock(&s->mu);
    if (ended)
        return;
    hodei_err err;
    hodei_status st = authed ? stream_dispatch(s, m, &err) : stream_hello(s, m, &err);
    if (st != HODEI_OK) {
        if (st != HODEI_ERR_UNAUTHENTICATED)
            HLOG_INFO("worker stream ended: %s", err.msg);
        worker_session_end(s, hodei_rpc_code_from_status(st), err.msg);
    }
}

static void stream_on_close(hodei_rpc_call *call, bool cancelled, void *ctx)
{
    worker_session *s = hodei_rpc_call_user(call);
    if (!s)
        return;
    hodei_rpc_call_set_user(call, NULL);
    pthread_mutex_lock(&s->mu);
    bool authed = s->authed;
    char worker_id[HODEI_ID_BUF];
    hodei_strlcpy(worker_id, s->worker_id, sizeof worker_id);
    pthread_mutex_unlock(&s->mu);
    /* A half-close from the worker: answer with OK so it sees a clean end. */
    worker_session_end(s, HODEI_GRPC_OK, "stream closed");
    if (authed)
        HLOG_INFO("worker %s disconnected%s", worker_id, cancelled ? " (cancelled)" : "");
    worker_session_unref(s);
}

void worker_stream_method(edge *e, hodei_rpc_method *out)
{
    *out = (hodei_rpc_method){"/hodei.v1.WorkerAgentService/WorkerStream",
                              HODEI_RPC_BIDI,
                              &hodei__v1__worker_message__descriptor,
                              stream_on_call,
                              stream_on_message,
                              stream_on_close,
                              e};
}
