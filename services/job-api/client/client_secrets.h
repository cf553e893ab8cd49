/* SecretService on the edge (SetSecret, ListSecrets, DeleteSecret) and the
 * delivery side: a job's secret_refs loaded, decrypted and written as the
 * RunJob's secrets_json, each use audited. Values never reach a log line,
 * an error, an event or the audit log. */
#ifndef HODEI_JOB_API_SECRET_RPC_H
#define HODEI_JOB_API_SECRET_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "edge.h"
#include "hodei/v1/job.pb-c.h"

hodei_status secret_rpc_register(edge *e, hodei_err *err);

/* At submit: every reference to another namespace's secret ("ns/name")
 * must name a secret shared with ns, the job's namespace; else
 * HODEI_ERR_PERMISSION naming the reference (the same words whether that
 * secret exists or not). References in ns itself are looked up when the job
 * runs. */
hodei_status secret_refs_check(edge *e, const char *ns, const Hodei__V1__JobSpec *spec,
                               hodei_err *err);

/* One delivery: a job's attempt on a worker and the references it names. */
typedef struct {
    const char *job_id;
    int64_t epoch;
    const char *worker_id;
    char *const *refs;
    size_t n;
} secret_use;

/* Builds {"ref":"value",...} for the references, and writes one secret.use
 * audit row per secret and attempt in the same statement. On success *json
 * (caller frees with secret_json_free, which wipes it) and *len are set.
 * Errors: HODEI_ERR_NOT_FOUND "secret <ref> not found", HODEI_ERR_PRECONDITION
 * when secrets.master_key is not set, HODEI_ERR_PERMISSION when a value does
 * not decrypt, HODEI_ERR_UNAVAILABLE (and the like) from the database. */
hodei_status secret_json_load(edge *e, const secret_use *use, char **json, size_t *len,
                              hodei_err *err);
void secret_json_free(char *json, size_t len);

/* One stored secret's value for the edge's own use (the log archive
 * store's credentials): ref is NAME (namespace default) or NAMESPACE/NAME.
 * *value is malloc'd; the caller wipes and frees it. */
hodei_status secret_value_load(edge *e, const char *ref, char **value, hodei_err *err);

/* After a master key rotation: every value sealed with another key this
 * edge holds (secrets.old_master_keys, or from before key ids) is opened and
 * sealed again with the current key, in batches of one transaction each,
 * with a secret.rekey audit row apiece. *moved: values re-sealed; *left:
 * values still under another key (0 = the old keys can be retired). */
hodei_status secret_rekey_run(edge *e, int *moved, int64_t *left, hodei_err *err);

/* A thread running secret_rekey_run every secrets.rekey_interval (none when
 * secrets are off or the interval is 0: *out NULL). */
typedef struct secret_rekey secret_rekey;
hodei_status secret_rekey_start(edge *e, secret_rekey **out, hodei_err *err);
void secret_rekey_stop(secret_rekey *k); /* NULL is a no-op */

#endif
