/* Client streams: one pluck queue per stream and one tag per direction, so
 * one thread may send while another waits in recv. A recv that times out
 * leaves its RECV_MESSAGE pending; the next recv picks it up. */
#include <stdlib.h>
#include <string.h>

#include "rpc_client_int.h"

struct hodei_rpc_stream {
    grpc_call *call;
    grpc_completion_queue *cq;
    const ProtobufCMessageDescriptor *resp_desc;
    pthread_mutex_t send_mu; /* one send-side batch at a time */
    pthread_mutex_t recv_mu; /* one recv at a time */
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *recv_bb;
    grpc_status_code status;
    grpc_slice details;
    bool md_asked; /* RECV_INITIAL_METADATA went with a recv */
    bool recv_pending;
    bool ended; /* final status collected */
    char tag_send, tag_recv, tag_status;
};

static bool stream_pluck(hodei_rpc_stream *st, void *tag, int64_t timeout_ms, bool *ok)
{
    grpc_event ev =
        grpc_completion_queue_pluck(st->cq, tag, rpc_deadline_from_ms(timeout_ms), NULL);
    if (ev.type != GRPC_OP_COMPLETE)
        return false;
    *ok = ev.success != 0;
    return true;
}

/* Runs a send-side batch and waits for it. */
static hodei_status stream_send_ops(hodei_rpc_stream *st, const grpc_op *ops, size_t n,
                                    hodei_err *err)
{
    bool ok = false;
    pthread_mutex_lock(&st->send_mu);
    grpc_call_error e = grpc_call_start_batch(st->call, ops, n, &st->tag_send, NULL);
    if (e == GRPC_CALL_OK)
        stream_pluck(st, &st->tag_send, -1, &ok);
    pthread_mutex_unlock(&st->send_mu);
    if (e != GRPC_CALL_OK)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "rpc stream: start_batch: %s",
                             grpc_call_error_to_string(e));
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_CANCELLED, "rpc stream: the call has ended");
    return HODEI_OK;
}

static hodei_status stream_post_status(hodei_rpc_stream *st, hodei_err *err)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    op.data.recv_status_on_client.trailing_metadata = &st->trail_md;
    op.data.recv_status_on_client.status = &st->status;
    op.data.recv_status_on_client.status_details = &st->details;
    grpc_call_error e = grpc_call_start_batch(st->call, &op, 1, &st->tag_status, NULL);
    if (e != GRPC_CALL_OK)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "rpc stream: start_batch: %s",
                             grpc_call_error_to_string(e));
    return HODEI_OK;
}

/* Opening batch: metadata, and for SERVER_STREAM the request and half-close. */
static hodei_status stream_start(hodei_rpc_stream *st, hodei_rpc_channel *ch,
                                 const ProtobufCMessage *req, hodei_err *err)
{
    grpc_op ops[3];
    grpc_metadata auth;
    size_t n = 1;
    grpc_byte_buffer *bb = NULL;
    rpc_channel_initial_md(ch, &ops[0], &auth);
    if (req) {
        bb = rpc_msg_pack(req);
        if (!bb)
            return hodei_err_set(err, HODEI_ERR_INVALID, "rpc stream: request over %d bytes",
                                 HODEI_RPC_MESSAGE_MAX);
        memset(&ops[1], 0, 2 * sizeof ops[0]);
        ops[1].op = GRPC_OP_SEND_MESSAGE;
        ops[1].data.send_message.send_message = bb;
        ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
        n = 3;
    }
    hodei_status s = stream_send_ops(st, ops, n, err);
    if (bb)
        grpc_byte_buffer_destroy(bb);
    return s;
}

static void stream_free(hodei_rpc_stream *st)
{
    if (st->call)
        grpc_call_unref(st->call);
    grpc_completion_queue_shutdown(st->cq);
    grpc_completion_queue_destroy(st->cq);
    if (st->recv_bb)
        grpc_byte_buffer_destroy(st->recv_bb);
    grpc_slice_unref(st->details);
    grpc_metadata_array_destroy(&st->init_md);
    grpc_metadata_array_destroy(&st->trail_md);
    pthread_mutex_destroy(&st->send_mu);
    pthread_mutex_destroy(&st->recv_mu);
    free(st);
}

hodei_status hodei_rpc_stream_open(hodei_rpc_channel *ch, const char *path,
                                   const ProtobufCMessage *req,
                                   const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
                                   hodei_rpc_stream **out, hodei_err *err)
{
    hodei_rpc_stream *st = calloc(1, sizeof *st);
    if (!st)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "rpc stream: out of memory");
    pthread_mutex_init(&st->send_mu, NULL);
    pthread_mutex_init(&st->recv_mu, NULL);
    grpc_metadata_array_init(&st->init_md);
    grpc_metadata_array_init(&st->trail_md);
    st->details = grpc_empty_slice();
    st->status = GRPC_STATUS_UNKNOWN;
    st->resp_desc = resp_desc;
    st->cq = grpc_completion_queue_create_for_pluck(NULL);
    st->call = rpc_channel_call(ch, st->cq, path, timeout_ms);
    hodei_status s = stream_post_status(st, err);
    if (s != HODEI_OK) {
        stream_free(st);
        return s;
    }
    s = stream_start(st, ch, req, err);
    if (s != HODEI_OK && s != HODEI_ERR_CANCELLED) {
        hodei_rpc_stream_destroy(st);
        return s;
    }
    /* A refused open still yields a stream: recv reports the server's status. */
    *out = st;
    return HODEI_OK;
}

hodei_status hodei_rpc_stream_send(hodei_rpc_stream *st, const ProtobufCMessage *msg,
                                   hodei_err *err)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_MESSAGE;
    op.data.send_message.send_message = rpc_msg_pack(msg);
    if (!op.data.send_message.send_message)
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc stream: message over %d bytes",
                             HODEI_RPC_MESSAGE_MAX);
    hodei_status s = stream_send_ops(st, &op, 1, err);
    grpc_byte_buffer_destroy(op.data.send_message.send_message);
    return s;
}

hodei_status hodei_rpc_stream_close_send(hodei_rpc_stream *st, hodei_err *err)
{
    grpc_op op;
    memset(&op, 0, sizeof op);
    op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    return stream_send_ops(st, &op, 1, err);
}

static bool stream_post_recv(hodei_rpc_stream *st)
{
    grpc_op ops[2];
    size_t n = 0;
    memset(ops, 0, sizeof ops);
    if (!st->md_asked) {
        ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
        ops[n++].data.recv_initial_metadata.recv_initial_metadata = &st->init_md;
        st->md_asked = true;
    }
    ops[n].op = GRPC_OP_RECV_MESSAGE;
    ops[n++].data.recv_message.recv_message = &st->recv_bb;
    st->recv_pending = grpc_call_start_batch(st->call, ops, n, &st->tag_recv, NULL) == GRPC_CALL_OK;
    return st->recv_pending;
}

/* The stream is over: collect the final status. */
static void stream_end(hodei_rpc_stream *st, hodei_rpc_result *res)
{
    bool ok;
    if (!st->ended) {
        stream_pluck(st, &st->tag_status, -1, &ok);
        st->ended = true;
    }
    rpc_result_set(res, st->status, st->details);
}

hodei_status hodei_rpc_stream_recv(hodei_rpc_stream *st, int64_t timeout_ms,
                                   ProtobufCMessage **msg_out, hodei_rpc_result *res,
                                   hodei_err *err)
{
    hodei_status s = HODEI_OK;
    bool ok = false;
    *msg_out = NULL;
    pthread_mutex_lock(&st->recv_mu);
    if (st->ended || (!st->recv_pending && !stream_post_recv(st))) {
        stream_end(st, res);
        goto out;
    }
    if (!stream_pluck(st, &st->tag_recv, timeout_ms, &ok)) {
        s = hodei_err_set(err, HODEI_ERR_TIMEOUT, "rpc stream: nothing within %lld ms",
                          (long long)timeout_ms);
        goto out;
    }
    st->recv_pending = false;
    if (!ok || !st->recv_bb) {
        stream_end(st, res);
        goto out;
    }
    *msg_out = rpc_msg_unpack(st->resp_desc, st->recv_bb);
    grpc_byte_buffer_destroy(st->recv_bb);
    st->recv_bb = NULL;
    if (!*msg_out)
        s = hodei_err_set(err, HODEI_ERR_INVALID, "rpc stream: message is not a valid %s",
                          st->resp_desc->name);
out:
    pthread_mutex_unlock(&st->recv_mu);
    return s;
}

void hodei_rpc_stream_destroy(hodei_rpc_stream *st)
{
    bool ok;
    if (!st)
        return;
    if (!st->ended) {
        grpc_call_cancel(st->call, NULL);
        if (st->recv_pending)
            stream_pluck(st, &st->tag_recv, -1, &ok);
        stream_pluck(st, &st->tag_status, -1, &ok);
    }
    stream_free(st);
}
