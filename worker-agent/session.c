/* The session: after Register, hold one WorkerStream at a time. Each
 * stream starts with Hello{worker_id, session_token, running_job_ids};
 * then this thread receives ServerMessages and runs the timers (heartbeat,
 * keepalive, result re-send) while the sender thread writes. A stream that
 * ends or fails is replaced after a capped, jittered backoff; the running
 * job goes on meanwhile. A stop (SIGTERM) or a Drain ends the session once
 * the job has finished and its result is acknowledged. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

typedef enum { END_RECONNECT = 0, END_DONE, END_FATAL } session_end;

typedef struct {
    int64_t stop_at_ms; /* when the stop or drain began; -1 = running */
    int64_t idle_at_ms; /* stopping, when no job was left; -1 = not yet */
    bool job_cancelled; /* the drain timeout cancelled the job */
    bool gave_up;       /* stopped with results unacknowledged */
    int64_t next_heartbeat_ms;
} session;

/* ------------------------------------------------------------ stopping */

static void session_stop_begin(agent *a, session *s, bool stopping)
{
    s->stop_at_ms = hodei_mono_ms();
    pthread_mutex_lock(&a->mu);
    a->accepting = false;
    bool busy = a->job != NULL;
    pthread_mutex_unlock(&a->mu);
    if (stopping)
        HLOG_INFO("stop requested: taking no new jobs%s",
                  busy ? "; the running job may finish within worker.drain_timeout" : "");
}

/* true when the session should end now. */
static bool session_done(agent *a, session *s)
{
    bool stopping = hodei_daemon_stopping(a->d);
    pthread_mutex_lock(&a->mu);
    bool draining = a->draining;
    bool busy = a->job != NULL, pending = agent_results_pending(a);
    pthread_mutex_unlock(&a->mu);
    if (!stopping && !draining)
        return false;
    if (s->stop_at_ms < 0)
        session_stop_begin(a, s, stopping);
    if (!busy && !pending)
        return true;
    if (!stopping)
        return false; /* a drain waits for the job however long it takes */
    int64_t now = hodei_mono_ms(), waited = now - s->stop_at_ms;
    if (busy && !s->job_cancelled && waited >= a->cfg->drain_timeout_ms) {
        agent_cancel_current(a, "worker.drain_timeout passed after the stop request");
        s->job_cancelled = true;
    }
    if (!busy && s->idle_at_ms < 0)
        s->idle_at_ms = now; /* only results left to deliver: a short grace */
    bool late = busy ? waited >= a->cfg->drain_timeout_ms + a->cfg->kill_grace_ms +
                                     AGENT_STOP_RESULT_GRACE_MS
                     : now - s->idle_at_ms >= AGENT_STOP_RESULT_GRACE_MS;
    if (!late)
        return false;
    HLOG_ERROR("stopping with %s", busy ? "a job still running" : "results never acknowledged");
    s->gave_up = true;
    return true;
}

/* Waits ms; a stop cuts the wait short, and during the stop the wait is in
 * ticks so that the session can end as soon as it may. */
static void session_sleep(agent *a, session *s, int64_t ms)
{
    int64_t until = hodei_mono_ms() + ms;
    for (int64_t now = hodei_mono_ms(); now < until; now = hodei_mono_ms()) {
        if (!hodei_daemon_stopping(a->d)) {
            hodei_daemon_wait(a->d, until - now);
            continue;
        }
        if (session_done(a, s))
            return;
        hodei_sleep_ms(until - now < AGENT_TICK_MS ? until - now : AGENT_TICK_MS);
    }
}

/* ------------------------------------------------------------ timers */

static void session_heartbeat(agent *a)
{
    Hodei__V1__ResourceUsage u = HODEI__V1__RESOURCE_USAGE__INIT;
    Hodei__V1__Timestamp ts = HODEI__V1__TIMESTAMP__INIT;
    Hodei__V1__Heartbeat hb = HODEI__V1__HEARTBEAT__INIT;
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    agent_usage_sample(&a->usage, &u);
    int64_t now = hodei_wall_us();
    ts.seconds = now / 1000000;
    ts.nanos = (int32_t)(now % 1000000) * 1000;
    hb.usage = &u;
    hb.time = &ts;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_HEARTBEAT;
    m.heartbeat = &hb;
    pthread_mutex_lock(&a->mu);
    u.running_jobs = a->job ? 1 : 0;
    agent_send_control(a, &m);
    pthread_mutex_unlock(&a->mu);
}

static void session_keepalive(agent *a, int64_t nonce)
{
    Hodei__V1__Keepalive k = HODEI__V1__KEEPALIVE__INIT;
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    k.nonce = nonce;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_KEEPALIVE;
    m.keepalive = &k;
    agent_send_control(a, &m);
}

static void session_timers(agent *a, session *s)
{
    int64_t now = hodei_mono_ms();
    if (now >= s->next_heartbeat_ms) {
        session_heartbeat(a);
        s->next_heartbeat_ms = now + a->heartbeat_ms;
    }
    pthread_mutex_lock(&a->mu);
    if (now - a->last_send_ms >= a->cfg->keepalive_ms && a->control.count == 0) {
        a->ka_sent_nonce = agent_jitter(a, INT64_MAX / 2) | 1;
        a->ka_sent_at_ms = now;
        a->last_send_ms = now; /* one keepalive per idle interval */
        session_keepalive(a, a->ka_sent_nonce);
    }
    pthread_mutex_unlock(&a->mu);
    agent_result_resend_due(a, now);
    agent_reap_orphans(a);
}

/* A Keepalive right after Hello: an answer ends the stream's probation. */
static void session_probe(agent *a)
{
    pthread_mutex_lock(&a->mu);
    a->ka_sent_nonce = agent_jitter(a, INT64_MAX / 2) | 1;
    a->ka_sent_at_ms = hodei_mono_ms();
    session_keepalive(a, a->ka_sent_nonce);
    pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------------ messages */

/* The edge's Keepalive is answered with its nonce, except our own echo or
 * a nonce already answered, so two peers that both answer never loop. */
static void session_on_keepalive(agent *a, const Hodei__V1__Keepalive *k)
{
    pthread_mutex_lock(&a->mu);
    if (k->nonce == a->ka_sent_nonce) {
        /* our echo: the edge reads in order, so it has what came before */
        agent_sent_confirm(a, NULL, 0, a->ka_sent_at_ms);
    } else if (k->nonce != a->ka_answered_nonce) {
        a->ka_answered_nonce = k->nonce;
        session_keepalive(a, k->nonce);
    }
    pthread_mutex_unlock(&a->mu);
}

static void session_on_drain(agent *a, const Hodei__V1__Drain *dr)
{
    pthread_mutex_lock(&a->mu);
    bool first = !a->draining;
    a->draining = true;
    a->accepting = false;
    pthread_mutex_unlock(&a->mu);
    if (first)
        HLOG_INFO("drain requested by the server reason=\"%s\": finishing the current job, "
                  "then leaving",
                  dr && dr->reason ? dr->reason : "");
}

static void session_dispatch(agent *a, Hodei__V1__ServerMessage *m)
{
    switch (m->body_case) {
    case HODEI__V1__SERVER_MESSAGE__BODY_RUN_JOB: {
        Hodei__V1__RunJob *rj = m->run_job; /* taken: the job keeps its spec */
        m->run_job = NULL;
        m->body_case = HODEI__V1__SERVER_MESSAGE__BODY__NOT_SET;
        if (rj)
            agent_run_job(a, rj);
        break;
    }
    case HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB:
        if (m->cancel_job)
            agent_cancel_job(a, m->cancel_job);
        break;
    case HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE:
        if (m->keepalive)
            session_on_keepalive(a, m->keepalive);
        break;
    case HODEI__V1__SERVER_MESSAGE__BODY_DRAIN:
        session_on_drain(a, m->drain);
        break;
    case HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK:
        if (m->result_ack)
            agent_result_ack(a, m->result_ack);
        break;
    default:
        HLOG_ERROR("bad message from the server, ignored: ServerMessage.body: not set or "
                   "unknown (%d)",
                   (int)m->body_case);
    }
}

/* ------------------------------------------------------------ one stream */

/* Hello lists the jobs this worker still answers for: the one running and
 * those finished while disconnected whose results wait for an ack. The
 * edge ends as "worker restarted" any RUNNING job of this worker that is
 * missing here, so a finished job must not be missing. */
static hodei_status session_hello(agent *a, hodei_rpc_stream *st, hodei_err *err)
{
    Hodei__V1__Hello h = HODEI__V1__HELLO__INIT;
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    char held[1 + AGENT_RESULTS_MAX][HODEI_ID_BUF];
    char *ids[1 + AGENT_RESULTS_MAX];
    size_t n = 0;
    h.worker_id = a->cfg->worker_id;
    h.session_token = a->session_token;
    pthread_mutex_lock(&a->mu);
    if (a->job)
        hodei_strlcpy(held[n++], a->job->job_id, HODEI_ID_BUF);
    for (int i = 0; i < AGENT_RESULTS_MAX; i++) {
        const agent_result *r = &a->results[i];
        if (r->in_use && !(a->job && strcmp(r->job_id, a->job->job_id) == 0))
            hodei_strlcpy(held[n++], r->job_id, HODEI_ID_BUF);
    }
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < n; i++)
        ids[i] = held[i];
    h.n_running_job_ids = n;
    h.running_job_ids = n ? ids : NULL;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_HELLO;
    m.hello = &h;
    return hodei_rpc_stream_send(st, &m.base, err);
}

/* The stream is over: fatal when the edge refuses this worker's session. */
static session_end session_ended(const hodei_rpc_result *res, hodei_err *err)
{
    if (res->code == HODEI_GRPC_UNAUTHENTICATED || res->code == HODEI_GRPC_PERMISSION_DENIED) {
        hodei_err_set(err, HODEI_ERR_UNAUTHENTICATED,
                      "the server refused this worker's session: %s: %s",
                      hodei_grpc_code_str(res->code), res->message);
        return END_FATAL;
    }
    HLOG_WARN("stream ended: %s: %s", hodei_grpc_code_str(res->code), res->message);
    return END_RECONNECT;
}

static session_end session_receive(agent *a, session *s, hodei_rpc_stream *st, hodei_err *err)
{
    int64_t opened = hodei_mono_ms();
    bool ready = false;
    for (;;) {
        if (session_done(a, s))
            return END_DONE;
        if (!ready && hodei_mono_ms() - opened >= AGENT_STREAM_PROBATION_MS) {
            agent_stream_ready(a);
            ready = true;
        }
        session_timers(a, s);
        ProtobufCMessage *msg = NULL;
        hodei_rpc_result res;
        hodei_err e;
        hodei_status rs = hodei_rpc_stream_recv(st, AGENT_TICK_MS, &msg, &res, &e);
        if (rs == HODEI_ERR_TIMEOUT)
            continue;
        if (rs != HODEI_OK) {
            HLOG_ERROR("bad message from the server, ignored: %s", e.msg);
            continue;
        }
        if (!msg)
            return session_ended(&res, err);
        if (!ready) {
            agent_stream_ready(a);
            ready = true;
        }
        session_dispatch(a, (Hodei__V1__ServerMessage *)msg);
        protobuf_c_message_free_unpacked(msg, NULL);
    }
}

static session_end session_stream_once(agent *a, session *s, hodei_err *err)
{
    hodei_rpc_stream *st = NULL;
    hodei_err e;
    session_end end = END_RECONNECT;
    if (hodei_rpc_stream_open(a->ch, AGENT_PATH_STREAM, NULL,
                              &hodei__v1__server_message__descriptor, -1, &st, &e) != HODEI_OK) {
        HLOG_WARN("cannot open the stream: %s", e.msg);
        return END_RECONNECT;
    }
    if (session_hello(a, st, &e) != HODEI_OK) {
        ProtobufCMessage *msg = NULL;
        hodei_rpc_result res = {.code = HODEI_GRPC_UNAVAILABLE};
        hodei_rpc_stream_recv(st, AGENT_RPC_TIMEOUT_MS, &msg, &res, &e);
        if (msg)
            protobuf_c_message_free_unpacked(msg, NULL);
        end = session_ended(&res, err);
        goto out_destroy;
    }
    HLOG_INFO("stream open; Hello sent");
    s->next_heartbeat_ms = hodei_mono_ms();
    agent_stream_publish(a, st);
    session_probe(a);
    end = session_receive(a, s, st, err);
    agent_stream_unpublish(a, end != END_DONE);
    if (end == END_DONE)
        hodei_rpc_stream_close_send(st, &e);
out_destroy:
    hodei_rpc_stream_destroy(st);
    return end;
}

static hodei_status session_streams(agent *a, session *s, hodei_err *err)
{
    int64_t backoff = a->cfg->reconnect_min_ms;
    for (;;) {
        if (session_done(a, s))
            return HODEI_OK;
        int64_t opened = hodei_mono_ms();
        session_end end = session_stream_once(a, s, err);
        if (end == END_FATAL)
            return err->code;
        if (end == END_DONE)
            return HODEI_OK;
        if (hodei_mono_ms() - opened >= AGENT_STREAM_HEALTHY_MS)
            backoff = a->cfg->reconnect_min_ms;
        int64_t delay = agent_jitter(a, backoff);
        HLOG_INFO("reconnecting in %lld ms", (long long)delay);
        session_sleep(a, s, delay);
        backoff = agent_backoff_next(a, backoff);
        hodei_err e;
        if (agent_channel_open(a, &e) != HODEI_OK)
            HLOG_WARN("cannot renew the channel to %s: %s", agent_server(a), e.msg);
    }
}

hodei_status agent_session_run(agent *a, hodei_err *err)
{
    session s = {.stop_at_ms = -1, .idle_at_ms = -1};
    bool registered = false;
    hodei_status st = agent_register(a, &registered, err);
    if (st != HODEI_OK || !registered)
        return st;
    st = session_streams(a, &s, err);
    if (st != HODEI_OK) {
        agent_cancel_current(a, "the session ended with an error");
        return st;
    }
    agent_unregister(a);
    if (s.gave_up)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                             "stopped before the server acknowledged every job result");
    return HODEI_OK;
}

/* ------------------------------------------------------------- the channel */

const char *agent_server(const agent *a)
{
    return a->servers[a->server_at];
}

/* A new channel for every retry after a failure: gRPC's own reconnect
 * backoff (1 s growing to 2 min, per channel) would otherwise answer our
 * retries with the cached failure long after the edge is back. The new
 * channel replaces the old one only when it could be made. With several
 * edges, each new channel after the first goes to the next one: a worker
 * whose edge died is back on another within its reconnect backoff. */
hodei_status agent_channel_open(agent *a, hodei_err *err)
{
    const agent_config *c = a->cfg;
    if (a->ch && a->n_servers > 1) {
        a->server_at = (a->server_at + 1) % a->n_servers;
        HLOG_INFO("next edge: %s", agent_server(a));
    }
    hodei_rpc_channel_opts o = {
        .target = agent_server(a),
        .tls_ca_file = c->tls_ca[0] ? c->tls_ca : NULL,
        .tls_cert_file = c->tls_cert[0] ? c->tls_cert : NULL,
        .tls_key_file = c->tls_key[0] ? c->tls_key : NULL,
    };
    hodei_rpc_channel *ch = NULL;
    hodei_status st = hodei_rpc_channel_create(&o, &ch, err);
    if (st != HODEI_OK)
        return st;
    hodei_rpc_channel_destroy(a->ch);
    a->ch = ch;
    return HODEI_OK;
}
