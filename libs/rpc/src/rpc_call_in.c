/* Incoming side of a server call: accept and dispatch, request messages,
 * the end of the call on the wire, and what handlers may ask of a call
 * (metadata, deadline, peer identity, user pointer). */
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "rpc_int.h"

static void call_post_close_locked(hodei_rpc_call *call)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    op.data.recv_close_on_server.cancelled = &call->close_cancelled;
    if (!rpc_call_start_locked(call, &op, 1, &call->tag_close)) {
        call->close_seen = true;
        call->close_cancelled = 1;
    }
}

/* One RECV_MESSAGE; streaming kinds also open with their initial metadata. */
static void call_post_recv_locked(hodei_rpc_call *call)
{
    grpc_op ops[2];
    size_t n = 0;
    if (call->method.kind != HODEI_RPC_UNARY && !call->md_sent) {
        memset(&ops[n], 0, sizeof ops[n]);
        ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
        call->md_sent = true;
    }
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &call->recv_bb;
    call->recv_busy = rpc_call_start_locked(call, ops, n, &call->tag_recv);
}

/* A call nobody will handle: status right away. */
static void call_refuse_locked(hodei_rpc_call *call, hodei_grpc_code code, const char *msg)
{
    call->method.kind = HODEI_RPC_UNARY;
    call->finished = true;
    call->status_code = code;
    snprintf(call->status_msg, sizeof call->status_msg, "%s", msg);
    call->status_pending = true;
    call->recv_busy = false;
}

/* The server's authorize hook, before anything of the call is read. */
hodei_grpc_code rpc_call_authorize(hodei_rpc_call *call, const hodei_rpc_method *m, char *msg,
                                   size_t msg_len)
{
    hodei_rpc_server *srv = call->srv;
    if (!srv->authorize)
        return HODEI_GRPC_OK;
    void *principal = NULL;
    msg[0] = '\0';
    hodei_grpc_code code =
        srv->authorize(call, m->path, srv->authorize_ctx, &principal, msg, msg_len);
    if (principal && code != HODEI_GRPC_OK) {
        srv->principal_free(principal);
        principal = NULL;
    }
    call->principal = principal;
    call->principal_free = srv->principal_free;
    if (code != HODEI_GRPC_OK && !msg[0])
        snprintf(msg, msg_len, "%s", hodei_grpc_code_str(code));
    return code;
}

/* A call matched: keep another request outstanding, authorize it, post
 * RECV_CLOSE (so a cancel is observed), then dispatch by path. */
void rpc_call_on_new(hodei_rpc_call *call)
{
    hodei_rpc_server *srv = call->srv;
    int64_t arrived_ns = hodei_mono_ns(); /* the authorize hook's time counts */
    rpc_server_request_next(srv);
    const hodei_rpc_method *m = rpc_server_find(srv, call->details.method);
    char msg[RPC_STATUS_MSG_MAX];
    hodei_grpc_code denied = HODEI_GRPC_OK;
    if (m && !atomic_load(&srv->shutting_down))
        denied = rpc_call_authorize(call, m, msg, sizeof msg);
    pthread_mutex_lock(&call->mu);
    call->arrived_ns = arrived_ns;
    call->path = m ? m->path : NULL;
    call_post_close_locked(call);
    if (!m || atomic_load(&srv->shutting_down) || denied != HODEI_GRPC_OK) {
        int len = (int)GRPC_SLICE_LENGTH(call->details.method);
        hodei_grpc_code code = denied;
        if (!m) {
            code = HODEI_GRPC_UNIMPLEMENTED;
            snprintf(msg, sizeof msg, "unknown method %.*s", len,
                     (const char *)GRPC_SLICE_START_PTR(call->details.method));
        } else if (denied == HODEI_GRPC_OK) {
            code = HODEI_GRPC_UNAVAILABLE;
            snprintf(msg, sizeof msg, "server is shutting down");
        }
        call_refuse_locked(call, code, msg);
        rpc_call_start_status(call);
        return;
    }
    call->method = *m;
    call->method.path = NULL;
    call->request_max = srv->request_max[m - srv->methods];
    call->known = true;
    if (m->kind != HODEI_RPC_BIDI) {
        call_post_recv_locked(call);
        rpc_call_settle(call);
        return;
    }
    call->recv_busy = true; /* on_call runs before any on_message or on_close */
    pthread_mutex_unlock(&call->mu);
    call->method.on_call(call, NULL, call->method.ctx);
    pthread_mutex_lock(&call->mu);
    call->recv_busy = false;
    if (!call->close_seen && !call->finished)
        call_post_recv_locked(call);
    rpc_call_settle(call);
}

static ProtobufCMessage *call_unpack_or_fail(hodei_rpc_call *call, grpc_byte_buffer *bb)
{
    const ProtobufCMessageDescriptor *d = call->method.request;
    size_t max = call->request_max ? call->request_max : HODEI_RPC_MESSAGE_MAX;
    size_t len = grpc_byte_buffer_length(bb);
    if (len > max) {
        grpc_byte_buffer_destroy(bb);
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "request message is %zu bytes, above this method's maximum of %zu"
                            " bytes (%s)",
                            len, max, d->name);
        return NULL;
    }
    ProtobufCMessage *msg = rpc_msg_unpack(d, bb);
    grpc_byte_buffer_destroy(bb);
    if (!msg)
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT, "request is not a valid %s",
                            d->name);
    return msg;
}

/* UNARY and SERVER_STREAM: the one request message. */
static void call_handle_first(hodei_rpc_call *call, bool ok, grpc_byte_buffer *bb)
{
    if (!ok) {
        pthread_mutex_lock(&call->mu);
        call->finished = true; /* gone before the handler saw it */
        pthread_mutex_unlock(&call->mu);
    } else if (!bb) {
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT, "request message is missing");
    } else {
        ProtobufCMessage *msg = call_unpack_or_fail(call, bb);
        if (msg) {
            call->req = msg;
            call->method.on_call(call, msg, call->method.ctx);
            pthread_mutex_lock(&call->mu);
            msg = call->req;
            call->req = NULL;
            pthread_mutex_unlock(&call->mu);
            if (msg)
                protobuf_c_message_free_unpacked(msg, NULL);
        }
    }
    pthread_mutex_lock(&call->mu);
    call->recv_busy = false;
    rpc_call_settle(call);
}

/* BIDI: one client message, or the client's half-close (NULL buffer). */
static void call_handle_bidi(hodei_rpc_call *call, bool ok, grpc_byte_buffer *bb)
{
    bool more = false;
    if (ok && bb) {
        ProtobufCMessage *msg = call_unpack_or_fail(call, bb);
        if (msg) {
            call->method.on_message(call, msg, call->method.ctx);
            protobuf_c_message_free_unpacked(msg, NULL);
            more = true;
        }
    } else if (bb) {
        grpc_byte_buffer_destroy(bb);
    }
    pthread_mutex_lock(&call->mu);
    call->recv_busy = false;
    if (more && !call->close_seen && !call->finished)
        call_post_recv_locked(call);
    else if (ok && !bb && !call->close_seen && !atomic_load(&call->srv->shutting_down))
        call->half_closed = true; /* else wait for RECV_CLOSE: cancelled */
    rpc_call_settle(call);
}

void rpc_call_on_recv(hodei_rpc_call *call, bool ok)
{
    pthread_mutex_lock(&call->mu);
    grpc_byte_buffer *bb = call->recv_bb;
    call->recv_bb = NULL;
    pthread_mutex_unlock(&call->mu);
    if (call->method.kind == HODEI_RPC_BIDI)
        call_handle_bidi(call, ok, bb);
    else
        call_handle_first(call, ok, bb);
}

void rpc_call_on_close(hodei_rpc_call *call, bool ok)
{
    pthread_mutex_lock(&call->mu);
    call->close_seen = true;
    pthread_cond_broadcast(&call->taken_cv);
    if (!ok)
        call->close_cancelled = 1;
    if (!call->status_started)
        rpc_call_observe_locked(call, HODEI_GRPC_CANCELLED);
    rpc_call_queue_clear_locked(call);
    rpc_call_settle(call);
}

ProtobufCMessage *hodei_rpc_call_take_request(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    ProtobufCMessage *msg = call->req;
    call->req = NULL;
    pthread_mutex_unlock(&call->mu);
    return msg;
}

const char *hodei_rpc_call_metadata(hodei_rpc_call *call, const char *key)
{
    if (call->local)
        return rpc_local_metadata(call, key);
    const char *value = NULL;
    size_t key_len = strlen(key);
    pthread_mutex_lock(&call->mu);
    if (!call->md_values && call->md.count)
        call->md_values = calloc(call->md.count, sizeof *call->md_values);
    for (size_t i = 0; call->md_values && i < call->md.count; i++) {
        const grpc_metadata *m = &call->md.metadata[i];
        if (GRPC_SLICE_LENGTH(m->key) != key_len ||
            memcmp(GRPC_SLICE_START_PTR(m->key), key, key_len) != 0)
            continue;
        if (!call->md_values[i])
            call->md_values[i] =
                strndup((const char *)GRPC_SLICE_START_PTR(m->value), GRPC_SLICE_LENGTH(m->value));
        value = call->md_values[i];
        break;
    }
    pthread_mutex_unlock(&call->mu);
    return value;
}

int64_t hodei_rpc_call_deadline_ms(hodei_rpc_call *call)
{
    if (call->local)
        return INT64_MAX;
    gpr_timespec d = call->details.deadline;
    if (d.tv_sec == INT64_MAX || d.clock_type == GPR_TIMESPAN)
        return INT64_MAX;
    gpr_timespec now = gpr_now(d.clock_type);
    int64_t left_ms = (d.tv_sec - now.tv_sec) * 1000 + (d.tv_nsec - now.tv_nsec) / 1000000;
    if (left_ms > INT64_MAX / 4)
        return INT64_MAX;
    return hodei_mono_ms() + left_ms;
}

const char *hodei_rpc_call_peer_identity(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    if (!call->peer_checked && call->gcall) {
        call->peer_checked = true;
        grpc_auth_context *ctx = grpc_call_auth_context(call->gcall);
        if (ctx && grpc_auth_context_peer_is_authenticated(ctx)) {
            grpc_auth_property_iterator it = grpc_auth_context_peer_identity(ctx);
            const grpc_auth_property *p = grpc_auth_property_iterator_next(&it);
            if (p && p->value)
                call->peer = strndup(p->value, p->value_length);
        }
        if (ctx)
            grpc_auth_context_release(ctx);
    }
    const char *peer = call->peer;
    pthread_mutex_unlock(&call->mu);
    return peer;
}

/* Every identity of the verified peer certificate (all SANs, or the CN). */
bool hodei_rpc_call_peer_has_identity(hodei_rpc_call *call, const char *name)
{
    bool found = false;
    size_t n = strlen(name);
    if (!call->gcall)
        return false;
    grpc_auth_context *ctx = grpc_call_auth_context(call->gcall);
    if (!ctx)
        return false;
    if (grpc_auth_context_peer_is_authenticated(ctx)) {
        grpc_auth_property_iterator it = grpc_auth_context_peer_identity(ctx);
        const grpc_auth_property *p;
        while (!found && (p = grpc_auth_property_iterator_next(&it)) != NULL)
            found = p->value && p->value_length == n && memcmp(p->value, name, n) == 0;
    }
    grpc_auth_context_release(ctx);
    return found;
}

const char *hodei_rpc_call_peer_address(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    if (!call->peer_addr && call->gcall) {
        char *p = grpc_call_get_peer(call->gcall);
        call->peer_addr = strdup(p ? p : "");
        gpr_free(p);
    }
    const char *addr = call->peer_addr ? call->peer_addr : "";
    pthread_mutex_unlock(&call->mu);
    return addr;
}

void *hodei_rpc_call_principal(hodei_rpc_call *call)
{
    return call->principal; /* set before the handler first runs, then constant */
}

void hodei_rpc_call_set_user(hodei_rpc_call *call, void *user)
{
    pthread_mutex_lock(&call->mu);
    call->user = user;
    pthread_mutex_unlock(&call->mu);
}

void *hodei_rpc_call_user(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    void *user = call->user;
    pthread_mutex_unlock(&call->mu);
    return user;
}
