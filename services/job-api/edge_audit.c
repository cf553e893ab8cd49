#include "edge_audit.h"

#include <string.h>

#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/sqlarr.h"
#include "hodei/util.h"

void edge_actor_of(const hodei_identity *id, edge_actor *out)
{
    hodei_identity_actor(id, out->actor, sizeof out->actor);
    out->actor_id = id ? id->key_id : "";
    out->peer = id ? id->peer : "";
}

hodei_status edge_audit(PGconn *conn, const hodei_identity *id, const char *action,
                        const char *object_type, const char *object_id, const char *ns,
                        const char *detail_json, hodei_err *err)
{
    edge_actor a;
    edge_actor_of(id, &a);
    const char *params[8] = {a.actor, a.actor_id,  a.peer,    ns ? ns : "",
                             action,  object_type, object_id, detail_json ? detail_json : "{}"};
    return hodei_db_exec(conn, EDGE_AUDIT_INSERT " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
                         8, params, NULL, err);
}

const char *edge_ns_filter(const hodei_identity *id, char *buf, size_t buf_len)
{
    if (hodei_identity_is_admin(id))
        return NULL;
    hodei_buf b;
    hodei_buf_init(&b, buf_len - 1);
    hodei_sqlarr_begin(&b);
    for (size_t i = 0; id && i < id->n_namespaces; i++)
        hodei_sqlarr_str(&b, id->namespaces[i]);
    if (!hodei_sqlarr_end(&b) || !b.data)
        hodei_strlcpy(buf, "{}", buf_len); /* cannot happen: 16 names of 63 bytes fit */
    else
        hodei_strlcpy(buf, b.data, buf_len);
    hodei_buf_fini(&b);
    return buf;
}
