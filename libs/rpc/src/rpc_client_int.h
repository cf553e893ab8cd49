/* Private to libs/rpc: the client channel, shared by unary and streams. */
#ifndef HODEI_RPC_CLIENT_INT_H
#define HODEI_RPC_CLIENT_INT_H

#include "rpc_int.h"

struct hodei_rpc_channel {
    grpc_channel *channel;
    bool has_auth;
    char auth_value[300]; /* "Bearer <api key>" */
};

void rpc_channel_initial_md(hodei_rpc_channel *ch, grpc_op *op, grpc_metadata *md);
grpc_call *rpc_channel_call(hodei_rpc_channel *ch, grpc_completion_queue *cq, const char *path,
                            int64_t timeout_ms);

#endif
