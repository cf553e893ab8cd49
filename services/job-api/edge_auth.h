/* The edge's one door check: the API key (or client certificate) of a call
 * against the method's rule in libs/auth (hodei_auth_rule_find). Every gRPC
 * call passes here before its request is read (the server's authorize hook,
 * edge_auth_authorize); the REST door calls edge_auth_check with the same
 * "authorization" header and the gRPC method its route stands for, so both
 * doors decide alike.
 *
 * Keys are looked up by the SHA-256 of their text and the answer (found,
 * unknown, revoked) is cached for auth.cache_ttl (at most 5 s): on the hot
 * path a check is a hash and a table probe, no database round trip. A key
 * revoked on another edge stops working within that bound; on the edge that
 * revoked it, at once. An expiry is checked on every call. */
#ifndef HODEI_JOB_API_EDGE_AUTH_H
#define HODEI_JOB_API_EDGE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "hodei/auth.h"
#include "hodei/db.h"
#include "hodei/rpc.h"

#define EDGE_AUTH_CACHE_TTL_MAX_MS 5000 /* the stated revocation bound */

typedef struct edge_auth edge_auth;

typedef struct {
    hodei_db *db;           /* pooled connections for lookups (not owned) */
    int64_t db_wait_ms;     /* how long a lookup waits for a connection */
    int64_t cache_ttl_ms;   /* 0..EDGE_AUTH_CACHE_TTL_MAX_MS; 0 = look up every call */
    bool worker_cert_check; /* a worker's certificate must name its worker id */
} edge_auth_opts;

hodei_status edge_auth_create(const edge_auth_opts *opts, edge_auth **out, hodei_err *err);
void edge_auth_destroy(edge_auth *a); /* NULL is a no-op */

/* THE check. path: the gRPC method path ("/hodei.v1.JobExecutionService/QueueJob");
 * authorization: the "authorization" header value ("Bearer <key>") or NULL;
 * cert_name: the verified client certificate's name (first SAN) or NULL;
 * peer: the caller's address, kept for the audit log (may be NULL).
 * Returns HODEI_GRPC_OK with *id filled (kind NONE for worker and public
 * methods), or UNAUTHENTICATED (no key, unknown, expired, revoked),
 * PERMISSION_DENIED (the key lacks the method's scope; a method with no
 * rule), UNAVAILABLE (the database could not be asked), with msg set.
 * Thread-safe; blocks only on a cache miss. */
hodei_grpc_code edge_auth_check(edge_auth *a, const char *path, const char *authorization,
                                const char *cert_name, const char *peer, hodei_identity *id,
                                char *msg, size_t msg_len);

/* The gRPC server's authorize hook (hodei_rpc_server_opts.authorize, ctx =
 * the edge_auth): edge_auth_check on the call's metadata, certificate and
 * peer; the identity becomes the call's principal (a malloc'd hodei_identity). */
hodei_grpc_code edge_auth_authorize(hodei_rpc_call *call, const char *path, void *ctx,
                                    void **principal, char *msg, size_t msg_len);

/* The identity a checked call carries (never NULL once authorized). */
const hodei_identity *edge_caller(hodei_rpc_call *call);

/* Drops every cached answer for a key id (after RevokeKey on this edge). */
void edge_auth_forget(edge_auth *a, const char *key_id);

/* Worker calls, with worker_cert_check on: true when the call's verified
 * certificate names worker_id; always true when the check is off. */
bool edge_auth_worker_cert_ok(edge_auth *a, hodei_rpc_call *call, const char *worker_id);

#endif
