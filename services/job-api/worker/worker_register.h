/* WorkerAgentService.Register (one-time token -> READY, a session token)
 * and UnregisterWorker; and the checks a WorkerStream's Hello passes (the
 * session token, the client certificate). Tokens are stored only as
 * SHA-256 hashes. */
#ifndef HODEI_JOB_API_WORKER_REGISTER_H
#define HODEI_JOB_API_WORKER_REGISTER_H

#include "edge.h"

#define WORKER_SESSION_TOKEN_BYTES 32 /* random bytes; sent as 64 hex characters */
#define WORKER_HASH_HEX_LEN 64        /* SHA-256 as hex, without the NUL */

/* Method entries (UNARY) for worker_rpc.c's table. */
void worker_register_method(edge *e, hodei_rpc_method *out);
void worker_unregister_method(edge *e, hodei_rpc_method *out);

/* SHA-256 of token as 64 lower-case hex characters. */
void worker_token_hash_hex(const char *token, char out[WORKER_HASH_HEX_LEN + 1]);
/* Checks a session token against workers.session_token_hash. Any failure
 * is HODEI_ERR_UNAUTHENTICATED with one message that names no check. */
hodei_status worker_session_auth(edge *e, const char *worker_id, const char *token, hodei_err *err);
/* With auth.worker_cert_check: the call's client certificate must name
 * worker_id (UNAUTHENTICATED otherwise). */
hodei_status worker_cert_check(edge *e, hodei_rpc_call *call, const char *worker_id,
                               hodei_err *err);

#endif
