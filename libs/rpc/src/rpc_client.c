/* Client channel and unary calls: one pluck queue per call, every op in one
 * batch. A channel is shared freely between threads. */
#include <grpc/grpc_security.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/util.h"
#include "rpc_client_int.h"

#define RPC_API_KEY_MAX 256

static hodei_status channel_creds_make(const hodei_rpc_channel_opts *o,
                                       grpc_channel_credentials **out, hodei_err *err)
{
    char *ca = NULL, *cert = NULL, *key = NULL;
    hodei_status st = HODEI_OK;
    if (!o->tls_ca_file) {
        if (o->tls_cert_file || o->tls_key_file)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "rpc channel: tls_cert_file/tls_key_file need tls_ca_file");
        *out = grpc_insecure_credentials_create();
        return HODEI_OK;
    }
    if (!o->tls_cert_file != !o->tls_key_file)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "rpc channel: tls_cert_file and tls_key_file go together");
    st = rpc_file_read(o->tls_ca_file, &ca, err);
    if (st == HODEI_OK && o->tls_cert_file)
        st = rpc_file_read(o->tls_cert_file, &cert, err);
    if (st == HODEI_OK && o->tls_key_file)
        st = rpc_file_read(o->tls_key_file, &key, err);
    if (st == HODEI_OK) {
        grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
        *out = grpc_ssl_credentials_create(ca, cert ? &pair : NULL, NULL, NULL);
        if (!*out)
            st = hodei_err_set(err, HODEI_ERR_INVALID, "rpc channel: bad TLS files");
    }
    free(ca);
    free(cert);
    free(key);
    return st;
}

hodei_status hodei_rpc_channel_create(const hodei_rpc_channel_opts *opts, hodei_rpc_channel **out,
                                      hodei_err *err)
{
    if (!opts || !opts->target || !opts->target[0])
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc channel: target is required");
    if (opts->api_key && strlen(opts->api_key) >= RPC_API_KEY_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc channel: api_key is too long");
    hodei_rpc_channel *ch = calloc(1, sizeof *ch);
    if (!ch)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "rpc channel: out of memory");
    grpc_channel_credentials *creds = NULL;
    hodei_status st = channel_creds_make(opts, &creds, err);
    if (st != HODEI_OK) {
        free(ch);
        return st;
    }
    if (opts->api_key) {
        snprintf(ch->auth_value, sizeof ch->auth_value, "Bearer %s", opts->api_key);
        ch->has_auth = true;
    }
    grpc_arg arg_storage[RPC_ARGS_MAX];
    grpc_channel_args args;
    rpc_channel_args_init(&args, arg_storage, false);
    ch->channel = grpc_channel_create(opts->target, creds, &args);
    grpc_channel_credentials_release(creds);
    *out = ch;
    return HODEI_OK;
}

void hodei_rpc_channel_destroy(hodei_rpc_channel *ch)
{
    if (!ch)
        return;
    grpc_channel_destroy(ch->channel);
    free(ch);
}

/* Fills op (SEND_INITIAL_METADATA) with the channel's authorization, if any. */
void rpc_channel_initial_md(hodei_rpc_channel *ch, grpc_op *op, grpc_metadata *md)
{
    memset(op, 0, sizeof *op);
    op->op = GRPC_OP_SEND_INITIAL_METADATA;
    if (!ch->has_auth)
        return;
    memset(md, 0, sizeof *md);
    md->key = grpc_slice_from_static_string("authorization");
    md->value = grpc_slice_from_static_string(ch->auth_value);
    op->data.send_initial_metadata.count = 1;
    op->data.send_initial_metadata.metadata = md;
}

grpc_call *rpc_channel_call(hodei_rpc_channel *ch, grpc_completion_queue *cq, const char *path,
                            int64_t timeout_ms)
{
    gpr_timespec deadline = rpc_deadline_from_ms(timeout_ms > 0 ? timeout_ms : -1);
    return grpc_channel_create_call(ch->channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                    grpc_slice_from_static_string(path), NULL, deadline, NULL);
}

/* The six ops of a unary call. */
typedef struct {
    grpc_metadata auth;
    grpc_metadata_array init_md, trail_md;
    grpc_byte_buffer *req_bb, *resp_bb;
    grpc_status_code status;
    grpc_slice details;
} unary_state;

static size_t unary_ops_fill(hodei_rpc_channel *ch, unary_state *u, grpc_op ops[6])
{
    rpc_channel_initial_md(ch, &ops[0], &u->auth);
    memset(&ops[1], 0, 5 * sizeof ops[0]);
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = u->req_bb;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &u->init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &u->resp_bb;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &u->trail_md;
    ops[5].data.recv_status_on_client.status = &u->status;
    ops[5].data.recv_status_on_client.status_details = &u->details;
    return 6;
}

static void unary_result(unary_state *u, const ProtobufCMessageDescriptor *resp_desc,
                         ProtobufCMessage **resp_out, hodei_rpc_result *res)
{
    rpc_result_set(res, u->status, u->details);
    if (u->status != GRPC_STATUS_OK)
        return;
    if (u->resp_bb)
        *resp_out = rpc_msg_unpack(resp_desc, u->resp_bb);
    if (!*resp_out && res) {
        res->code = HODEI_GRPC_INTERNAL;
        snprintf(res->message, sizeof res->message, "response is not a valid %s", resp_desc->name);
    }
}

hodei_status hodei_rpc_unary(hodei_rpc_channel *ch, const char *path, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
                             ProtobufCMessage **resp_out, hodei_rpc_result *res, hodei_err *err)
{
    hodei_status st = HODEI_ERR_INTERNAL;
    unary_state u = {.status = GRPC_STATUS_UNKNOWN, .details = grpc_empty_slice()};
    grpc_op ops[6];
    *resp_out = NULL;
    u.req_bb = rpc_msg_pack(req);
    if (!u.req_bb)
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc %s: request over %d bytes", path,
                             HODEI_RPC_MESSAGE_MAX);
    grpc_metadata_array_init(&u.init_md);
    grpc_metadata_array_init(&u.trail_md);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call = rpc_channel_call(ch, cq, path, timeout_ms);
    grpc_call_error e = grpc_call_start_batch(call, ops, unary_ops_fill(ch, &u, ops), &u, NULL);
    if (e != GRPC_CALL_OK) {
        st = hodei_err_set(err, HODEI_ERR_INTERNAL, "rpc %s: start_batch: %s", path,
                           grpc_call_error_to_string(e));
        goto out_free;
    }
    grpc_completion_queue_pluck(cq, &u, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    unary_result(&u, resp_desc, resp_out, res);
    st = HODEI_OK;
out_free:
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    grpc_byte_buffer_destroy(u.req_bb);
    if (u.resp_bb)
        grpc_byte_buffer_destroy(u.resp_bb);
    grpc_slice_unref(u.details);
    grpc_metadata_array_destroy(&u.init_md);
    grpc_metadata_array_destroy(&u.trail_md);
    return st;
}
