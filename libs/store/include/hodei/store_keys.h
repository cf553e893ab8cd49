/* API keys in the database: creating one (with its audit row), shared by
 * hodei-migrate's bootstrap and the edge's KeyService. Runs inside the
 * caller's transaction. */
#ifndef HODEI_STORE_KEYS_H
#define HODEI_STORE_KEYS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "hodei/auth.h"
#include "hodei/id.h"
#include "hodei/status.h"

/* Who does it, for the audit row. */
typedef struct {
    const char *actor;    /* a key's name, "hodei-migrate", ... */
    const char *actor_id; /* the key's id, or "" */
    const char *peer;     /* the caller's address, or "" */
} hodei_store_actor;

/* Checks k (hodei_key_spec_check), makes a key, stores its SHA-256 with k
 * and writes a key.create audit row. replace: an active key of the same name
 * is revoked first (with its key.revoke row); otherwise an active key with
 * that name, or that cert_name, is HODEI_ERR_EXISTS. key_out: the key, to be
 * shown once; id_out: its id. */
hodei_status hodei_store_key_create(PGconn *conn, const hodei_key_spec *k, bool replace,
                                    const hodei_store_actor *by, char key_out[HODEI_APIKEY_BUF],
                                    char id_out[HODEI_ID_BUF], hodei_err *err);

#endif
