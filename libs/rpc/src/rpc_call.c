/* The life of one server call. Every batch on a call is started under the
 * call's mutex; completions arrive on the server threads (rpc_server.c).
 * The library holds one reference from accept until the call is over on the
 * wire, no batch is in flight, on_close has run and (UNARY) the handler has
 * answered; handlers add their own with hodei_rpc_call_ref. */
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/log.h"
#include "hodei/sync.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "rpc_int.h"

hodei_rpc_call *rpc_call_create(hodei_rpc_server *srv)
{
    hodei_rpc_call *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    call->srv = srv;
    if (srv)
        atomic_fetch_add(&srv->refs, 1); /* call_free gives it back */
    pthread_mutex_init(&call->mu, NULL);
    hodei_cond_init_monotonic(&call->taken_cv);
    call->refs = 1;
    grpc_call_details_init(&call->details);
    grpc_metadata_array_init(&call->md);
    call->tag_new = (rpc_tag){RPC_TAG_NEW, call};
    call->tag_recv = (rpc_tag){RPC_TAG_RECV, call};
    call->tag_send = (rpc_tag){RPC_TAG_SEND, call};
    call->tag_close = (rpc_tag){RPC_TAG_CLOSE, call};
    call->q_max = RPC_QUEUE_MAX_DEFAULT;
    return call;
}

/* ------------------------------------------------------ response bytes */

bool rpc_call_out_charge_locked(hodei_rpc_call *call, size_t len, bool stream_msg)
{
    hodei_rpc_server *srv = call->srv;
    size_t max = srv->reply_buffer_max;
    if (stream_msg) /* streams leave the last part to replies */
        max -= max / RPC_REPLY_RESERVE_DIV;
    size_t was = atomic_fetch_add(&srv->out_bytes, len);
    bool free_pass = stream_msg && call->out_bytes == 0;
    if (max && was + len > max && !free_pass) {
        atomic_fetch_sub(&srv->out_bytes, len);
        return false;
    }
    if (call->out_bytes == 0)
        call->out_progress_ms = hodei_mono_ms();
    call->out_bytes += len;
    return true;
}

void rpc_call_out_credit_locked(hodei_rpc_call *call, size_t len, bool taken)
{
    HODEI_ASSERT(len <= call->out_bytes);
    call->out_bytes -= len;
    atomic_fetch_sub(&call->srv->out_bytes, len);
    if (taken)
        call->out_progress_ms = hodei_mono_ms();
    pthread_cond_broadcast(&call->taken_cv); /* hodei_rpc_call_wait_pending */
}

void rpc_call_out_refusal(const hodei_rpc_call *call, size_t len, char *msg, size_t msg_len)
{
    snprintf(msg, msg_len,
             "the server holds too many replies not yet read by their clients: this one (%zu"
             " bytes) would pass %zu bytes (%s); retry later",
             len, call->srv->reply_buffer_max, call->srv->reply_buffer_name);
}

size_t hodei_rpc_server_reply_bytes(const hodei_rpc_server *srv)
{
    return atomic_load(&srv->out_bytes);
}

static void call_out_drop_locked(hodei_rpc_call *call, grpc_byte_buffer *bb, bool taken)
{
    rpc_call_out_credit_locked(call, grpc_byte_buffer_length(bb), taken);
    grpc_byte_buffer_destroy(bb);
}

int64_t hodei_rpc_call_stalled_ms(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    int64_t ms = call->out_bytes ? hodei_mono_ms() - call->out_progress_ms : 0;
    pthread_mutex_unlock(&call->mu);
    return ms;
}

void rpc_call_queue_clear_locked(hodei_rpc_call *call)
{
    while (call->q_head) {
        rpc_send_node *n = call->q_head;
        call->q_head = n->next;
        call_out_drop_locked(call, n->bb, false);
        free(n);
    }
    call->q_tail = NULL;
    call->q_len = 0;
}

static void call_free(hodei_rpc_call *call)
{
    if (call->md_values) {
        for (size_t i = 0; i < call->md.count; i++)
            free(call->md_values[i]);
        free(call->md_values);
    }
    grpc_metadata_array_destroy(&call->md);
    grpc_call_details_destroy(&call->details);
    if (call->gcall)
        grpc_call_unref(call->gcall);
    if (call->srv)
        rpc_call_queue_clear_locked(call);
    if (call->send_bb)
        grpc_byte_buffer_destroy(call->send_bb);
    if (call->srv && call->out_bytes)
        atomic_fetch_sub(&call->srv->out_bytes, call->out_bytes);
    if (call->recv_bb)
        grpc_byte_buffer_destroy(call->recv_bb);
    if (call->req)
        protobuf_c_message_free_unpacked(call->req, NULL);
    free(call->peer);
    free(call->peer_addr);
    if (call->principal)
        call->principal_free(call->principal);
    rpc_local_free(call->local);
    pthread_cond_destroy(&call->taken_cv);
    pthread_mutex_destroy(&call->mu);
    if (call->srv)
        rpc_server_unref(call->srv);
    free(call);
}

void rpc_call_discard(hodei_rpc_call *call)
{
    call_free(call);
}

void hodei_rpc_call_ref(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    call->refs++;
    pthread_mutex_unlock(&call->mu);
}

void hodei_rpc_call_unref(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    int left = --call->refs;
    pthread_mutex_unlock(&call->mu);
    if (left == 0)
        call_free(call);
}

bool rpc_call_start_locked(hodei_rpc_call *call, const grpc_op *ops, size_t n, rpc_tag *tag)
{
    atomic_fetch_add(&call->srv->outstanding, 1);
    grpc_call_error e = grpc_call_start_batch(call->gcall, ops, n, tag, NULL);
    if (e == GRPC_CALL_OK)
        return true;
    HLOG_ERROR("rpc: start_batch: %s", grpc_call_error_to_string(e));
    rpc_server_tag_done(call->srv);
    return false;
}

/* Adds SEND_INITIAL_METADATA to ops when it has not gone out yet. */
static size_t call_op_initial_md(hodei_rpc_call *call, grpc_op *op)
{
    if (call->md_sent)
        return 0;
    memset(op, 0, sizeof *op);
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    call->md_sent = true;
    return 1;
}

/* ------------------------------------------------------------ settling */

static bool call_release_due_locked(hodei_rpc_call *call)
{
    if (call->lib_ref_dropped || call->close_state != RPC_CLOSE_DONE || !call->close_seen ||
        call->recv_busy || call->send_busy)
        return false;
    if (call->method.kind == HODEI_RPC_UNARY && !call->finished)
        return false;
    call->lib_ref_dropped = true;
    return true;
}

/* Entered with call->mu held; leaves it unlocked. Fires on_close when due
 * (never while another handler callback of this call runs), then drops the
 * library's reference when everything is over. */
void rpc_call_settle(hodei_rpc_call *call)
{
    bool fire = false;
    if (call->close_state == RPC_CLOSE_PENDING && !call->recv_busy &&
        (call->half_closed || call->close_seen)) {
        call->close_state = RPC_CLOSE_FIRING;
        call->fire_cancelled = !call->half_closed && call->close_cancelled;
        fire = true;
    }
    bool release = call_release_due_locked(call);
    pthread_mutex_unlock(&call->mu);
    if (fire) {
        if (call->known && call->method.on_close)
            call->method.on_close(call, call->fire_cancelled, call->method.ctx);
        pthread_mutex_lock(&call->mu);
        call->close_state = RPC_CLOSE_DONE;
        release = call_release_due_locked(call);
        pthread_mutex_unlock(&call->mu);
    }
    if (release)
        hodei_rpc_call_unref(call);
}

/* ------------------------------------------------------------ sending */

void rpc_call_observe_locked(hodei_rpc_call *call, hodei_grpc_code code)
{
    hodei_rpc_server *srv = call->srv;
    if (call->observed || !srv || !srv->observe)
        return;
    call->observed = true;
    srv->observe(srv->observe_ctx, call->path, code, (hodei_mono_ns() - call->arrived_ns) / 1000);
}

static void call_start_status_locked(hodei_rpc_call *call)
{
    rpc_call_observe_locked(call, call->status_code);
    grpc_op ops[2];
    size_t n = call_op_initial_md(call, &ops[0]);
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = (grpc_status_code)call->status_code;
    call->status_slice = grpc_slice_from_copied_string(call->status_msg);
    ops[n].data.send_status_from_server.status_details = &call->status_slice;
    n++;
    call->status_pending = false;
    call->status_started = true;
    call->send_busy = rpc_call_start_locked(call, ops, n, &call->tag_send);
    if (!call->send_busy)
        grpc_slice_unref(call->status_slice);
}

static void call_start_message_locked(hodei_rpc_call *call, grpc_byte_buffer *bb)
{
    grpc_op ops[2];
    size_t n = call_op_initial_md(call, &ops[0]);
    memset(&ops[n], 0, sizeof ops[n]);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    n++;
    call->send_bb = bb;
    call->send_busy = rpc_call_start_locked(call, ops, n, &call->tag_send);
    if (!call->send_busy) {
        call_out_drop_locked(call, bb, false);
        call->send_bb = NULL;
    }
}

/* Starts the next send batch when none is in flight: a queued message, else
 * the status once every message is out. */
static void call_pump_locked(hodei_rpc_call *call)
{
    if (call->send_busy || call->close_seen || call->status_started)
        return;
    if (call->q_head) {
        rpc_send_node *n = call->q_head;
        call->q_head = n->next;
        if (!call->q_head)
            call->q_tail = NULL;
        call->q_len--;
        grpc_byte_buffer *bb = n->bb;
        free(n);
        call_start_message_locked(call, bb);
        return;
    }
    if (call->status_pending)
        call_start_status_locked(call);
}

static bool call_enqueue_locked(hodei_rpc_call *call, grpc_byte_buffer *bb)
{
    rpc_send_node *n = malloc(sizeof *n);
    if (!n)
        return false;
    n->next = NULL;
    n->bb = bb;
    if (call->q_tail)
        call->q_tail->next = n;
    else
        call->q_head = n;
    call->q_tail = n;
    call->q_len++;
    return true;
}

void rpc_call_start_status(hodei_rpc_call *call)
{
    call_pump_locked(call);
    rpc_call_settle(call);
}

void rpc_call_fire_taken_locked(hodei_rpc_call *call)
{
    hodei_rpc_taken_fn fn = call->on_taken;
    if (!fn)
        return;
    void *arg = call->on_taken_arg;
    call->on_taken_running++;
    pthread_mutex_unlock(&call->mu);
    fn(call, arg);
    pthread_mutex_lock(&call->mu);
    if (--call->on_taken_running == 0)
        pthread_cond_broadcast(&call->taken_cv); /* hodei_rpc_call_set_on_taken */
}

void hodei_rpc_call_set_on_taken(hodei_rpc_call *call, hodei_rpc_taken_fn fn, void *arg)
{
    pthread_mutex_lock(&call->mu);
    call->on_taken = fn;
    call->on_taken_arg = arg;
    while (!fn && call->on_taken_running > 0) /* rare and short: the old one returns */
        pthread_cond_wait(&call->taken_cv, &call->mu);
    pthread_mutex_unlock(&call->mu);
}

void rpc_call_on_send(hodei_rpc_call *call, bool ok)
{
    pthread_mutex_lock(&call->mu);
    bool taken = false;
    if (call->send_bb) {
        call_out_drop_locked(call, call->send_bb, ok);
        call->send_bb = NULL;
        taken = ok;
    }
    if (call->status_started)
        grpc_slice_unref(call->status_slice);
    call->send_busy = false;
    if (ok)
        call_pump_locked(call);
    else
        rpc_call_queue_clear_locked(call);
    bool fire = taken && call->on_taken;
    if (fire)
        call->refs++; /* kept across settle for the callback */
    rpc_call_settle(call);
    if (!fire)
        return;
    pthread_mutex_lock(&call->mu);
    rpc_call_fire_taken_locked(call);
    pthread_mutex_unlock(&call->mu);
    hodei_rpc_call_unref(call);
}

/* Ends the call with a status (after queued messages). */
static void call_end(hodei_rpc_call *call, hodei_grpc_code code, const char *msg)
{
    if (call->local) {
        rpc_local_status(call, code, msg);
        return;
    }
    pthread_mutex_lock(&call->mu);
    if (call->finished) {
        pthread_mutex_unlock(&call->mu);
        HLOG_DEBUG("rpc: call finished twice (second status %s ignored)",
                   hodei_grpc_code_str(code));
        return;
    }
    call->finished = true;
    if (!call->close_seen) {
        call->status_code = code;
        hodei_strlcpy(call->status_msg, msg ? msg : "", sizeof call->status_msg);
        call->status_pending = true;
        call_pump_locked(call);
    }
    rpc_call_settle(call);
}

void hodei_rpc_call_finish(hodei_rpc_call *call, hodei_grpc_code code, const char *msg)
{
    call_end(call, code, msg);
}

void hodei_rpc_call_fail(hodei_rpc_call *call, hodei_grpc_code code, const char *fmt, ...)
{
    char msg[RPC_STATUS_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    call_end(call, code, msg);
}

void hodei_rpc_call_fail_err(hodei_rpc_call *call, const hodei_err *err)
{
    call_end(call, hodei_rpc_code_from_status(err->code), err->msg);
}

static void call_start_reply_locked(hodei_rpc_call *call, grpc_byte_buffer *bb)
{
    grpc_op ops[3];
    size_t n = call_op_initial_md(call, &ops[0]);
    memset(&ops[n], 0, 2 * sizeof ops[0]);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = bb;
    ops[n + 1].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n + 1].data.send_status_from_server.status = GRPC_STATUS_OK;
    call->status_slice = grpc_empty_slice();
    rpc_call_observe_locked(call, HODEI_GRPC_OK);
    call->status_started = true;
    call->send_bb = bb;
    call->send_busy = rpc_call_start_locked(call, ops, n + 2, &call->tag_send);
    if (!call->send_busy) {
        call_out_drop_locked(call, bb, false);
        call->send_bb = NULL;
    }
}

void hodei_rpc_call_reply(hodei_rpc_call *call, const ProtobufCMessage *resp)
{
    if (call->local) {
        rpc_local_reply(call, resp);
        return;
    }
    grpc_byte_buffer *bb = rpc_msg_pack(resp);
    if (!bb) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "response is larger than %d bytes",
                            HODEI_RPC_MESSAGE_MAX);
        return;
    }
    pthread_mutex_lock(&call->mu);
    if (call->finished || call->close_seen) {
        bool twice = call->finished;
        call->finished = true;
        grpc_byte_buffer_destroy(bb);
        if (twice)
            HLOG_DEBUG("rpc: reply on a call already finished (ignored)");
        rpc_call_settle(call);
        return;
    }
    size_t len = grpc_byte_buffer_length(bb);
    if (!rpc_call_out_charge_locked(call, len, false)) {
        pthread_mutex_unlock(&call->mu);
        grpc_byte_buffer_destroy(bb);
        char msg[RPC_STATUS_MSG_MAX];
        rpc_call_out_refusal(call, len, msg, sizeof msg);
        call_end(call, HODEI_GRPC_RESOURCE_EXHAUSTED, msg);
        return;
    }
    call->finished = true;
    if (!call->send_busy && !call->q_head) {
        call_start_reply_locked(call, bb);
    } else if (call_enqueue_locked(call, bb)) {
        call->status_code = HODEI_GRPC_OK;
        call->status_msg[0] = '\0';
        call->status_pending = true;
    } else {
        call_out_drop_locked(call, bb, false);
        grpc_call_cancel(call->gcall, NULL);
    }
    rpc_call_settle(call);
}

hodei_status hodei_rpc_call_send(hodei_rpc_call *call, const ProtobufCMessage *msg)
{
    if (call->local)
        return rpc_local_send(call, msg);
    grpc_byte_buffer *bb = rpc_msg_pack(msg);
    if (!bb)
        return HODEI_ERR_INVALID;
    pthread_mutex_lock(&call->mu);
    hodei_status st = rpc_call_send_admit_locked(call);
    if (st == HODEI_OK && !rpc_call_out_charge_locked(call, grpc_byte_buffer_length(bb), true))
        st = HODEI_ERR_LIMIT;
    if (st == HODEI_OK && !call->send_busy) {
        call_start_message_locked(call, bb);
        bb = NULL;
        if (!call->send_busy)
            st = HODEI_ERR_CANCELLED;
    } else if (st == HODEI_OK) {
        if (call_enqueue_locked(call, bb)) {
            bb = NULL;
        } else {
            rpc_call_out_credit_locked(call, grpc_byte_buffer_length(bb), false);
            st = HODEI_ERR_NOMEM;
        }
    }
    pthread_mutex_unlock(&call->mu);
    if (bb)
        grpc_byte_buffer_destroy(bb);
    return st;
}

void hodei_rpc_call_set_queue_max(hodei_rpc_call *call, size_t queue_max)
{
    pthread_mutex_lock(&call->mu);
    call->q_max = queue_max;
    pthread_mutex_unlock(&call->mu);
}

size_t hodei_rpc_call_pending(hodei_rpc_call *call)
{
    pthread_mutex_lock(&call->mu);
    size_t n = call->q_len + (call->send_bb ? 1 : 0);
    pthread_mutex_unlock(&call->mu);
    return n;
}

size_t hodei_rpc_call_wait_pending(hodei_rpc_call *call, size_t pending_max, int64_t timeout_ms)
{
    int64_t until = hodei_mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&call->mu);
    size_t n;
    for (;;) {
        n = call->q_len + (call->send_bb ? 1 : 0);
        int64_t left = until - hodei_mono_ms();
        if (n <= pending_max || call->close_seen || left <= 0)
            break;
        hodei_cond_wait_ms(&call->taken_cv, &call->mu, left);
    }
    pthread_mutex_unlock(&call->mu);
    return n;
}

void hodei_rpc_call_abort(hodei_rpc_call *call, hodei_grpc_code code, const char *fmt, ...)
{
    char msg[RPC_STATUS_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (call->local) {
        rpc_local_abort(call, code, msg);
        return;
    }
    pthread_mutex_lock(&call->mu);
    if (!call->close_seen) {
        rpc_call_queue_clear_locked(call);
        call->finished = true;
        call->status_pending = false;
        rpc_call_observe_locked(call, code);
        grpc_call_cancel_with_status(call->gcall, (grpc_status_code)code, msg, NULL);
    }
    pthread_mutex_unlock(&call->mu);
}
