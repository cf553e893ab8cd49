/* WorkerAgentService.WorkerStream: one bidirectional call per connected
 * worker. The first message must be a Hello with a valid session token;
 * then heartbeats, acks, log batches and results. A bad message ends the
 * stream INVALID_ARGUMENT naming the field. Messages of one stream are
 * handled one at a time (libs/rpc posts one receive at a time). Each is
 * checked and its ids put in lower case here, then handed to its owner
 * (worker_stream.h). */
#include "worker_stream.h"

#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/worker_msg.h"
#include "worker_acks.h"
#include "worker_heartbeat.h"
#include "worker_hello.h"
#include "worker_hub.h"
#include "worker_logs.h"
#include "worker_results.h"

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
    hodei_err err;
    worker_session *s = worker_session_create(e->workers, call, &err);
    if (!s) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "%s", err.msg);
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
    return worker_hello_on(s, hello, err);
}

static hodei_status stream_dispatch(worker_session *s, const Hodei__V1__WorkerMessage *m,
                                    hodei_err *err)
{
    hodei_status st = HODEI_OK;
    switch (m->body_case) {
    case HODEI__V1__WORKER_MESSAGE__BODY_HELLO:
        return hodei_err_set(err, HODEI_ERR_INVALID, "hello: sent twice on one stream");
    case HODEI__V1__WORKER_MESSAGE__BODY_HEARTBEAT:
        if ((st = hodei_worker_check_heartbeat(m->heartbeat, err)) == HODEI_OK)
            worker_heartbeat_on(s, m->heartbeat);
        return st;
    case HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK:
        if ((st = hodei_worker_check_ack(m->run_job_ack, err)) == HODEI_OK) {
            stream_lower(m->run_job_ack->job_id);
            worker_acks_on_ack(s, m->run_job_ack);
        }
        return st;
    case HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH:
        if ((st = hodei_worker_check_log_batch(m->log_batch, err)) == HODEI_OK) {
            stream_lower(m->log_batch->job_id);
            worker_logs_on_batch(s, m->log_batch);
        }
        return st;
    case HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT:
        if ((st = hodei_worker_check_result(m->job_result, err)) == HODEI_OK) {
            stream_lower(m->job_result->job_id);
            worker_results_on_result(s, m->job_result);
        }
        return st;
    case HODEI__V1__WORKER_MESSAGE__BODY_KEEPALIVE:
        worker_keepalive_on(s, m->keepalive);
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
