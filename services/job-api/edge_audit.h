/* The audit log as the edge writes it: one row per state-changing call and
 * per secret a job is given, always inside the transaction (or the one
 * statement) of the change itself, so a change without its row, or a row
 * without its change, cannot commit. A row names the actor (the key's name
 * and id, or the certificate), the peer, the namespace, the action, the
 * object and a JSON summary, never a secret value. */
#ifndef HODEI_JOB_API_EDGE_AUDIT_H
#define HODEI_JOB_API_EDGE_AUDIT_H

#include <libpq-fe.h>
#include <stddef.h>

#include "hodei/auth.h"
#include "hodei/status.h"

/* The columns every audit insert fills, in this order. */
#define EDGE_AUDIT_INSERT                                                                          \
    "INSERT INTO audit_log (actor, actor_id, peer, namespace, action, object_type, object_id,"     \
    " detail)"

/* The three actor values of a row (actor, actor_id, peer) of an identity. */
typedef struct {
    char actor[HODEI_CERT_SAN_BUF + 8];
    const char *actor_id;
    const char *peer;
} edge_actor;

void edge_actor_of(const hodei_identity *id, edge_actor *out);

/* One row, run on conn inside the caller's transaction. detail_json: a JSON
 * object ("{}" when NULL). */
hodei_status edge_audit(PGconn *conn, const hodei_identity *id, const char *action,
                        const char *object_type, const char *object_id, const char *ns,
                        const char *detail_json, hodei_err *err);

#define EDGE_NS_FILTER_BUF (HODEI_NS_PER_KEY_MAX * (HODEI_NS_BUF + 3) + 3)

/* The namespaces an identity may see as a PostgreSQL array literal for a
 * "namespace = ANY($n::text[])" filter, or NULL for admin (every one). */
const char *edge_ns_filter(const hodei_identity *id, char *buf, size_t buf_len);

#endif
