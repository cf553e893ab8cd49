/* In-process calls (hodei/rpc.h, "in-process calls"): a hodei_rpc_call with
 * no gRPC call behind it. The handler's replies, messages and status go to
 * a queue the caller reads with hodei_rpc_local_next.
 *
 * The call's fields keep their gRPC meaning where they apply: mu guards
 * everything; refs counts the caller's reference, the library's and the
 * handlers'; finished = the handler gave its status; close_seen = the
 * caller ended; recv_busy = on_call is running; q_len/q_max count and bound
 * the messages queued (so hodei_rpc_call_pending works unchanged). The
 * library's reference goes once on_close has run and, for a unary call,
 * the handler has answered (a late answer after the caller left must still
 * find the call alive). */
#include <stdlib.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/sync.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "rpc_int.h"

typedef struct rpc_local rpc_local;

typedef struct rpc_local_msg {
    struct rpc_local_msg *next;
    uint8_t *data;
    size_t len;
} rpc_local_msg;

struct rpc_local {
    pthread_cond_t cond; /* a message or the status arrived (with call->mu) */
    rpc_local_msg *head, *tail;
    bool status_set;  /* status_code/status_msg hold the handler's status */
    bool close_fired; /* on_close ran or is running */
    size_t n_md;
    char **md_keys, **md_values;
    char *peer;
};

static void local_queue_clear(hodei_rpc_call *call)
{
    rpc_local *l = call->local;
    while (l->head) {
        rpc_local_msg *m = l->head;
        l->head = m->next;
        rpc_call_out_credit_locked(call, m->len, false);
        free(m->data);
        free(m);
    }
    l->tail = NULL;
    call->q_len = 0;
}

void rpc_local_free(rpc_local *l)
{
    if (!l)
        return;
    while (l->head) {
        rpc_local_msg *m = l->head;
        l->head = m->next;
        free(m->data);
        free(m);
    }
    for (size_t i = 0; i < l->n_md; i++) {
        free(l->md_keys[i]);
        free(l->md_values[i]);
    }
    free(l->md_keys);
    free(l->md_values);
    free(l->peer);
    pthread_cond_destroy(&l->cond);
    free(l);
}

/* Under call->mu: whether the library's reference is to be dropped now. */
static bool local_release_due(hodei_rpc_call *call)
{
    if (call->lib_ref_dropped || !call->local->close_fired || call->recv_busy)
        return false;
    if (call->method.kind == HODEI_RPC_UNARY && !call->finished)
        return false;
    call->lib_ref_dropped = true;
    return true;
}

static void local_unlock_settle(hodei_rpc_call *call)
{
    bool release = local_release_due(call);
    pthread_mutex_unlock(&call->mu);
    if (release)
        hodei_rpc_call_unref(call);
}

static rpc_local_msg *local_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > HODEI_RPC_MESSAGE_MAX)
        return NULL;
    rpc_local_msg *m = malloc(sizeof *m);
    uint8_t *data = malloc(len ? len : 1);
    if (!m || !data) {
        free(m);
        free(data);
        return NULL;
    }
    protobuf_c_message_pack(msg, data);
    *m = (rpc_local_msg){NULL, data, len};
    return m;
}

/* Under call->mu; m's bytes already charged. */
static void local_enqueue(hodei_rpc_call *call, rpc_local_msg *m)
{
    rpc_local *l = call->local;
    if (l->tail)
        l->tail->next = m;
    else
        l->head = m;
    l->tail = m;
    call->q_len++;
}

/* Under call->mu: the status the caller will read (once). */
static void local_set_status(hodei_rpc_call *call, hodei_grpc_code code, const char *msg)
{
    call->finished = true;
    call->status_code = code;
    rpc_call_observe_locked(call, code); /* the same method metrics as over gRPC */
    hodei_strlcpy(call->status_msg, msg ? msg : "", sizeof call->status_msg);
    call->local->status_set = true;
    pthread_cond_broadcast(&call->local->cond);
}

void rpc_local_reply(hodei_rpc_call *call, const ProtobufCMessage *resp)
{
    rpc_local_msg *m = local_pack(resp);
    pthread_mutex_lock(&call->mu);
    if (call->finished || call->close_seen) {
        if (call->finished)
            HLOG_DEBUG("rpc: reply on a call already finished (ignored)");
        call->finished = true;
        if (m)
            free(m->data);
        free(m);
    } else if (!m) {
        local_set_status(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "response is too large");
    } else if (!rpc_call_out_charge_locked(call, m->len, false)) {
        char msg[RPC_STATUS_MSG_MAX];
        rpc_call_out_refusal(call, m->len, msg, sizeof msg);
        local_set_status(call, HODEI_GRPC_RESOURCE_EXHAUSTED, msg);
        free(m->data);
        free(m);
    } else {
        local_enqueue(call, m);
        local_set_status(call, HODEI_GRPC_OK, "");
    }
    local_unlock_settle(call);
}

hodei_status rpc_local_send(hodei_rpc_call *call, const ProtobufCMessage *msg)
{
    rpc_local_msg *m = local_pack(msg);
    if (!m)
        return HODEI_ERR_INVALID;
    pthread_mutex_lock(&call->mu);
    hodei_status st = rpc_call_send_admit_locked(call);
    if (st == HODEI_OK && !rpc_call_out_charge_locked(call, m->len, true))
        st = HODEI_ERR_LIMIT;
    if (st == HODEI_OK) {
        local_enqueue(call, m);
        pthread_cond_broadcast(&call->local->cond);
        m = NULL;
    }
    pthread_mutex_unlock(&call->mu);
    if (m) {
        free(m->data);
        free(m);
    }
    return st;
}

void rpc_local_status(hodei_rpc_call *call, hodei_grpc_code code, const char *msg)
{
    pthread_mutex_lock(&call->mu);
    if (call->finished) {
        pthread_mutex_unlock(&call->mu);
        HLOG_DEBUG("rpc: call finished twice (second status %s ignored)",
                   hodei_grpc_code_str(code));
        return;
    }
    if (call->close_seen)
        call->finished = true;
    else
        local_set_status(call, code, msg);
    local_unlock_settle(call);
}

void rpc_local_abort(hodei_rpc_call *call, hodei_grpc_code code, const char *msg)
{
    pthread_mutex_lock(&call->mu);
    if (!call->close_seen) {
        local_queue_clear(call);
        local_set_status(call, code, msg);
    }
    local_unlock_settle(call);
}

const char *rpc_local_metadata(hodei_rpc_call *call, const char *key)
{
    rpc_local *l = call->local;
    for (size_t i = 0; i < l->n_md; i++)
        if (strcmp(l->md_keys[i], key) == 0)
            return l->md_values[i];
    return NULL;
}

/* ------------------------------------------------------------------ caller */

static rpc_local *local_create(const hodei_rpc_metadata *md, size_t n_md, const char *peer)
{
    rpc_local *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    hodei_cond_init_monotonic(&l->cond);
    l->md_keys = calloc(n_md ? n_md : 1, sizeof *l->md_keys);
    l->md_values = calloc(n_md ? n_md : 1, sizeof *l->md_values);
    l->peer = strdup(peer ? peer : "");
    bool ok = l->md_keys && l->md_values && l->peer;
    for (size_t i = 0; ok && i < n_md; i++) {
        l->md_keys[i] = strdup(md[i].key);
        l->md_values[i] = strdup(md[i].value ? md[i].value : "");
        l->n_md = i + 1;
        ok = l->md_keys[i] && l->md_values[i];
    }
    if (!ok) {
        rpc_local_free(l);
        return NULL;
    }
    return l;
}

/* Runs the handler with req (taken back and freed unless it took it). */
static void local_dispatch(hodei_rpc_call *call, ProtobufCMessage *req)
{
    pthread_mutex_lock(&call->mu);
    call->recv_busy = true;
    call->req = req;
    pthread_mutex_unlock(&call->mu);
    call->method.on_call(call, req, call->method.ctx);
    pthread_mutex_lock(&call->mu);
    call->recv_busy = false;
    req = call->req;
    call->req = NULL;
    local_unlock_settle(call);
    if (req)
        protobuf_c_message_free_unpacked(req, NULL);
}

/* The method's request type with every field at its default. */
static ProtobufCMessage *local_empty(const ProtobufCMessageDescriptor *desc)
{
    static const uint8_t none[1];
    return protobuf_c_message_unpack(desc, NULL, 0, none);
}

hodei_status hodei_rpc_local_start(hodei_rpc_server *srv, const char *path, ProtobufCMessage *req,
                                   const hodei_rpc_metadata *md, size_t n_md, const char *peer,
                                   hodei_rpc_call **out, hodei_err *err)
{
    hodei_rpc_call *call = rpc_call_create(srv);
    rpc_local *l = call ? local_create(md, n_md, peer) : NULL;
    if (!l) {
        if (call)
            rpc_call_discard(call);
        if (req)
            protobuf_c_message_free_unpacked(req, NULL);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "rpc: out of memory for a local call");
    }
    call->local = l;
    call->refs = 2;                    /* the caller's, the library's */
    call->peer_addr = strdup(l->peer); /* hodei_rpc_call_peer_address; NULL reads as "" */
    const hodei_rpc_method *m = rpc_server_find_str(srv, path);
    *out = call;
    pthread_mutex_lock(&call->mu);
    if (!m || m->kind == HODEI_RPC_BIDI || atomic_load(&srv->shutting_down)) {
        call->method.kind = HODEI_RPC_UNARY;
        local_set_status(
            call,
            !m || m->kind == HODEI_RPC_BIDI ? HODEI_GRPC_UNIMPLEMENTED : HODEI_GRPC_UNAVAILABLE,
            !m                          ? "unknown method"
            : m->kind == HODEI_RPC_BIDI ? "a bidirectional method cannot be called here"
                                        : "server is shutting down");
        pthread_mutex_unlock(&call->mu);
        if (req)
            protobuf_c_message_free_unpacked(req, NULL);
        return HODEI_OK;
    }
    pthread_mutex_unlock(&call->mu);
    char msg[RPC_STATUS_MSG_MAX];
    hodei_grpc_code denied = rpc_call_authorize(call, m, msg, sizeof msg);
    pthread_mutex_lock(&call->mu);
    if (denied != HODEI_GRPC_OK) {
        call->method.kind = HODEI_RPC_UNARY;
        local_set_status(call, denied, msg);
        pthread_mutex_unlock(&call->mu);
        if (req)
            protobuf_c_message_free_unpacked(req, NULL);
        return HODEI_OK;
    }
    call->method = *m;
    call->method.path = NULL;
    call->known = true;
    call->path = m->path;
    call->arrived_ns = hodei_mono_ns();
    if (!req)
        req = local_empty(m->request);
    if (!req || req->descriptor != m->request) {
        local_set_status(call, HODEI_GRPC_INVALID_ARGUMENT, "request is not a valid message");
        pthread_mutex_unlock(&call->mu);
        if (req)
            protobuf_c_message_free_unpacked(req, NULL);
        return HODEI_OK;
    }
    pthread_mutex_unlock(&call->mu);
    local_dispatch(call, req);
    return HODEI_OK;
}

/* Under call->mu: runs on_close once (unlocking around it). */
static void local_fire_close(hodei_rpc_call *call, bool cancelled)
{
    rpc_local *l = call->local;
    if (l->close_fired)
        return;
    l->close_fired = true;
    if (!call->known || !call->method.on_close)
        return;
    pthread_mutex_unlock(&call->mu);
    call->method.on_close(call, cancelled, call->method.ctx);
    pthread_mutex_lock(&call->mu);
}

hodei_status hodei_rpc_local_next(hodei_rpc_call *call, int64_t timeout_ms, uint8_t **data,
                                  size_t *len, hodei_grpc_code *code, char *msg, size_t msg_len)
{
    rpc_local *l = call->local;
    int64_t until = timeout_ms < 0 ? INT64_MAX : hodei_mono_ms() + timeout_ms;
    *data = NULL;
    *len = 0;
    pthread_mutex_lock(&call->mu);
    for (;;) {
        if (l->head) {
            rpc_local_msg *m = l->head;
            l->head = m->next;
            if (!l->head)
                l->tail = NULL;
            call->q_len--;
            rpc_call_out_credit_locked(call, m->len, true);
            rpc_call_fire_taken_locked(call); /* the caller holds a reference */
            pthread_mutex_unlock(&call->mu);
            *data = m->data;
            *len = m->len;
            free(m);
            return HODEI_OK;
        }
        if (l->status_set) {
            *code = call->status_code;
            hodei_strlcpy(msg, call->status_msg, msg_len);
            local_fire_close(call, false);
            local_unlock_settle(call);
            return HODEI_OK;
        }
        int64_t left = until - hodei_mono_ms();
        if (left <= 0) {
            pthread_mutex_unlock(&call->mu);
            return HODEI_ERR_TIMEOUT;
        }
        hodei_cond_wait_ms(&l->cond, &call->mu, left > 60000 ? 60000 : left);
    }
}

void hodei_rpc_local_end(hodei_rpc_call *call)
{
    if (!call)
        return;
    pthread_mutex_lock(&call->mu);
    call->close_seen = true;
    pthread_cond_broadcast(&call->taken_cv);
    local_queue_clear(call);
    local_fire_close(call, !call->local->status_set);
    local_unlock_settle(call);
    hodei_rpc_call_unref(call);
}

hodei_grpc_code hodei_rpc_local_authorize(hodei_rpc_server *srv, const char *path,
                                          const hodei_rpc_metadata *md, size_t n_md,
                                          const char *peer, char *msg, size_t msg_len)
{
    const hodei_rpc_method *m = rpc_server_find_str(srv, path);
    if (!m) {
        hodei_strlcpy(msg, "unknown method", msg_len);
        return HODEI_GRPC_UNIMPLEMENTED;
    }
    hodei_rpc_call *call = rpc_call_create(srv);
    rpc_local *l = call ? local_create(md, n_md, peer) : NULL;
    if (!l) {
        if (call)
            rpc_call_discard(call);
        hodei_strlcpy(msg, "out of memory", msg_len);
        return HODEI_GRPC_RESOURCE_EXHAUSTED;
    }
    call->local = l;
    call->peer_addr = strdup(l->peer);
    char text[RPC_STATUS_MSG_MAX];
    hodei_grpc_code code = rpc_call_authorize(call, m, text, sizeof text);
    hodei_strlcpy(msg, code == HODEI_GRPC_OK ? "" : text, msg_len);
    rpc_call_discard(call);
    return code;
}
