/* Whole S3 objects in memory, for processes that keep their own data in an
 * S3-compatible store (the edge's log archives). The same requests as the
 * artifacts' (SigV4, any endpoint, path style, retries with backoff), with
 * the body in memory instead of a workspace file.
 *
 *     hodei_s3_opts o; hodei_s3_opts_default(&o);
 *     o.endpoint = "http://127.0.0.1:9000"; o.path_style = true;
 *     o.credentials = "ACCESS_KEY_ID:SECRET_ACCESS_KEY";   // or JSON, "" = anonymous
 *     hodei_s3_client *c; hodei_s3_client_create(&o, &c, &err);
 *     hodei_s3_put(c, "bucket", "key", data, len, &err);
 *     hodei_s3_get(c, "bucket", "key", max, &buf, &len, &err);  // free(buf)
 *     hodei_s3_delete(c, "bucket", "key", &err);
 *     hodei_s3_client_destroy(c);
 *
 * A client is safe to use from several threads at once (each call has its
 * own connection). Call hodei_artifact_global_init once before. */
#ifndef HODEI_S3_H
#define HODEI_S3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/status.h"

typedef struct {
    const char *endpoint;       /* "" = https://s3.<region>.amazonaws.com */
    const char *region;         /* "" = us-east-1 */
    bool path_style;            /* https://endpoint/bucket/key instead of bucket.endpoint */
    const char *credentials;    /* ACCESS_KEY_ID:SECRET_ACCESS_KEY or JSON; "" = anonymous */
    const char *ca_file;        /* extra CA bundle ("" = the system's) */
    int64_t request_timeout_ms; /* one call, retries included */
    int64_t connect_timeout_ms;
    int retry_max;
} hodei_s3_opts;

/* us-east-1, AWS's endpoint, anonymous, 60 s per call, 10 s connect, 3 retries. */
void hodei_s3_opts_default(hodei_s3_opts *o);

typedef struct hodei_s3_client hodei_s3_client;

/* Copies what it needs from o (credentials included; wiped on destroy).
 * HODEI_ERR_INVALID naming the setting for a bad endpoint or credentials. */
hodei_status hodei_s3_client_create(const hodei_s3_opts *o, hodei_s3_client **out, hodei_err *err);
void hodei_s3_client_destroy(hodei_s3_client *c); /* NULL is a no-op */

/* PUT one object (multipart past 16 MiB). */
hodei_status hodei_s3_put(hodei_s3_client *c, const char *bucket, const char *key, const void *data,
                          size_t len, hodei_err *err);
/* GET one object whole: *data (malloc'd, caller frees) and *len.
 * HODEI_ERR_NOT_FOUND when there is none, HODEI_ERR_LIMIT past max bytes. */
hodei_status hodei_s3_get(hodei_s3_client *c, const char *bucket, const char *key, size_t max,
                          uint8_t **data, size_t *len, hodei_err *err);
/* DELETE one object; one that is not there counts as deleted. */
hodei_status hodei_s3_delete(hodei_s3_client *c, const char *bucket, const char *key,
                             hodei_err *err);

#endif
