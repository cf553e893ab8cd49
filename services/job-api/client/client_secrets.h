/* SecretService on the edge (SetSecret, ListSecrets, DeleteSecret) and the
 * delivery side: a job's secret_refs loaded, decrypted and written as the
 * RunJob's secrets_json. Values never reach a log line, an error or an event. */
#ifndef HODEI_JOB_API_SECRET_RPC_H
#define HODEI_JOB_API_SECRET_RPC_H

#include <stddef.h>

#include "edge.h"

hodei_status secret_rpc_register(edge *e, hodei_err *err);

/* Builds {"name":"value",...} for names[0..n). On success *json (caller
 * frees with secret_json_free, which wipes it) and *len are set. Errors:
 * HODEI_ERR_NOT_FOUND "secret <name> not found", HODEI_ERR_PRECONDITION when
 * secrets.master_key is not set, HODEI_ERR_PERMISSION when a value does not
 * decrypt, HODEI_ERR_UNAVAILABLE (and the like) from the database. */
hodei_status secret_json_load(edge *e, char *const *names, size_t n, char **json, size_t *len,
                              hodei_err *err);
void secret_json_free(char *json, size_t len);

#endif
