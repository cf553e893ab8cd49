/* Where finished jobs' log archives are kept (logs.archive_store):
 * "database" keeps the compressed bytes in job_log_archives.data; "s3"
 * keeps them as one object per attempt in an S3-compatible store,
 * <prefix><job id>/<epoch>.pb.zlib, the row holding its location
 * ("s3://bucket/key"). Credentials come from a stored secret or a file,
 * read once at start-up; they never reach a log line. Objects of rows that
 * were deleted (retention) are queued by a trigger in
 * log_archive_deletions and removed here (log_store_drain). */
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_secrets.h"
#include "hodei/artifact.h"
#include "hodei/config.h"
#include "hodei/log.h"
#include "hodei/s3.h"
#include "hodei/util.h"
#include "logs_int.h"

#define STORE_CRED_FILE_MAX 8192
#define STORE_DRAIN_BATCH "100"

struct log_store {
    edge *e;
    hodei_s3_client *s3; /* NULL = database */
    char bucket[64];
    char prefix[513];
};

static void store_wipe(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static hodei_status store_check(const edge_config *c, hodei_err *err)
{
    if (!c->logs_s3_bucket[0])
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "logs.archive_s3_bucket: required when logs.archive_store is s3");
    for (const char *p = c->logs_s3_bucket; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "logs.archive_s3_bucket: %s is not a bucket name (a-z 0-9 . -)",
                                 c->logs_s3_bucket);
    if (c->logs_s3_prefix[0] == '/' || strstr(c->logs_s3_prefix, ".."))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "logs.archive_s3_prefix: must not start with / or hold ..");
    if (c->logs_s3_credentials[0] && c->logs_s3_credentials_file[0])
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "logs.archive_s3_credentials and logs.archive_s3_credentials_file: "
                             "set one, not both");
    return HODEI_OK;
}

hodei_status log_store_create(edge *e, log_store **out, hodei_err *err)
{
    const edge_config *c = e->cfg;
    log_store *ls = calloc(1, sizeof *ls);
    char *cred = NULL;
    if (!ls)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    ls->e = e;
    *out = ls;
    if (strcmp(c->logs_archive_store, "s3") != 0)
        return HODEI_OK;
    hodei_status st = store_check(c, err);
    if (st == HODEI_OK)
        st = hodei_artifact_global_init(err);
    if (st == HODEI_OK && c->logs_s3_credentials_file[0])
        st = hodei_config_read_file("logs.archive_s3_credentials_file", c->logs_s3_credentials_file,
                                    STORE_CRED_FILE_MAX, &cred, err);
    if (st == HODEI_OK && c->logs_s3_credentials[0] &&
        (st = secret_value_load(e, c->logs_s3_credentials, &cred, err)) != HODEI_OK)
        hodei_err_set(err, st, "logs.archive_s3_credentials: %s", err->msg);
    if (st == HODEI_OK) {
        hodei_s3_opts o;
        hodei_s3_opts_default(&o);
        o.endpoint = c->logs_s3_endpoint;
        o.region = c->logs_s3_region;
        o.path_style = c->logs_s3_path_style;
        o.ca_file = c->logs_s3_ca_file;
        o.credentials = cred ? cred : "";
        if ((st = hodei_s3_client_create(&o, &ls->s3, err)) != HODEI_OK)
            hodei_err_set(err, st, "logs.archive_s3: %s", err->msg);
    }
    store_wipe(cred);
    if (st != HODEI_OK) {
        log_store_destroy(ls);
        *out = NULL;
        return st;
    }
    hodei_strlcpy(ls->bucket, c->logs_s3_bucket, sizeof ls->bucket);
    hodei_strlcpy(ls->prefix, c->logs_s3_prefix, sizeof ls->prefix);
    HLOG_INFO("log archives go to s3://%s/%s (endpoint %s)", ls->bucket, ls->prefix,
              c->logs_s3_endpoint[0] ? c->logs_s3_endpoint : "AWS");
    return HODEI_OK;
}

void log_store_destroy(log_store *ls)
{
    if (!ls)
        return;
    hodei_s3_client_destroy(ls->s3);
    free(ls);
}

bool log_store_is_s3(const log_store *ls)
{
    return ls && ls->s3;
}

/* "s3://bucket/key" -> bucket, key. */
static hodei_status store_parse(const char *location, char *bucket, size_t bucket_len,
                                const char **key, hodei_err *err)
{
    const char *b = strncmp(location, "s3://", 5) == 0 ? location + 5 : NULL;
    const char *slash = b ? strchr(b, '/') : NULL;
    if (!slash || slash == b || (size_t)(slash - b) >= bucket_len || !slash[1])
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive location %s is malformed",
                             location);
    memcpy(bucket, b, (size_t)(slash - b));
    bucket[slash - b] = '\0';
    *key = slash + 1;
    return HODEI_OK;
}

hodei_status log_store_put(log_store *ls, const char *job_id, int64_t epoch, const uint8_t *data,
                           size_t len, char location[LOGS_LOCATION_MAX], hodei_err *err)
{
    char key[LOGS_LOCATION_MAX];
    int n = snprintf(key, sizeof key, "%s%s/%" PRId64 ".pb.zlib", ls->prefix, job_id, epoch);
    if (n < 0 || (size_t)n >= sizeof key)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "log archive key too long");
    n = snprintf(location, LOGS_LOCATION_MAX, "s3://%s/%s", ls->bucket, key);
    if (n < 0 || n >= LOGS_LOCATION_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "log archive location too long");
    return hodei_s3_put(ls->s3, ls->bucket, key, data, len, err);
}

hodei_status log_store_get(log_store *ls, const char *location, size_t max, uint8_t **data,
                           size_t *len, hodei_err *err)
{
    char bucket[64];
    const char *key = NULL;
    if (!log_store_is_s3(ls))
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                             "the log archive is in %s but logs.archive_store is not s3", location);
    hodei_status st = store_parse(location, bucket, sizeof bucket, &key, err);
    if (st == HODEI_OK)
        st = hodei_s3_get(ls->s3, bucket, key, max, data, len, err);
    return st;
}

hodei_status log_store_delete(log_store *ls, const char *location, hodei_err *err)
{
    char bucket[64];
    const char *key = NULL;
    hodei_status st = store_parse(location, bucket, sizeof bucket, &key, err);
    if (st == HODEI_OK)
        st = hodei_s3_delete(ls->s3, bucket, key, err);
    return st;
}

hodei_status log_store_drain(log_store *ls, int *deleted, hodei_err *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    *deleted = 0;
    if (!log_store_is_s3(ls))
        return HODEI_OK;
    hodei_status st = edge_db_acquire(ls->e, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[1] = {STORE_DRAIN_BATCH};
    st = hodei_db_exec(conn,
                       "SELECT location FROM log_archive_deletions ORDER BY queued_at"
                       " LIMIT $1::int",
                       1, params, &res, err);
    for (int i = 0; st == HODEI_OK && i < PQntuples(res); i++) {
        const char *loc = hodei_db_get_str(res, i, 0);
        hodei_err derr;
        if (log_store_delete(ls, loc, &derr) != HODEI_OK) {
            HLOG_WARN("log archive %s not deleted yet: %s", loc, derr.msg);
            continue;
        }
        const char *p[1] = {loc};
        PGresult *r2 = NULL;
        st = hodei_db_exec(conn, "DELETE FROM log_archive_deletions WHERE location = $1", 1, p, &r2,
                           err);
        PQclear(r2);
        if (st == HODEI_OK)
            (*deleted)++;
    }
    PQclear(res);
    edge_db_release(ls->e, conn, st);
    return st;
}
