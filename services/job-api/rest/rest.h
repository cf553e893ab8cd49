/* The edge's REST/JSON door and its web dashboard (rest/README.md): the
 * client RPCs as HTTP resources on their own listen address, served by
 * libmicrohttpd in this process. A request is decoded by libs/pbjson into
 * the RPC's request message and handed to the very handler the gRPC door
 * runs (hodei_rpc_local_start), with the same metadata (the API key as
 * "authorization"); the handler's answer is encoded back. */
#ifndef HODEI_JOB_API_REST_H
#define HODEI_JOB_API_REST_H

#include "edge.h"

typedef struct rest_server rest_server;

/* Starts serving on listen ("127.0.0.1:8080"; port 0 = any free port)
 * with e->server's methods. The gRPC server must outlive it. */
hodei_status rest_start(edge *e, const char *listen, rest_server **out, hodei_err *err);
/* The port bound. */
int rest_port(const rest_server *rs);
/* Stops accepting, ends open calls and streams, frees. NULL is a no-op. */
void rest_stop(rest_server *rs);

#endif
