/* Artifact references: the URLs and workspace paths of JobSpec.inputs and
 * JobSpec.outputs, parsed and checked the same way at the door (the edge's
 * spec validation) and on the worker (before anything is read or written).
 *
 *   https://host[:port]/path[?query]   http://...   (no user:password@)
 *   s3://bucket/key        s3://bucket/prefix/  (a key ending in "/" or
 *                          empty is a prefix: every object below it)
 *   file:///absolute/path  (inputs only; the worker reads it only below
 *                          one of its worker.file_inputs folders)
 *
 * Workspace paths are relative: components separated by "/", none empty,
 * "." or "..", no leading "/", no control characters or backslashes; a
 * trailing "/" marks a folder. Output sources may hold glob characters
 * (* ? [ ]) within a component. Pure functions, no I/O. */
#ifndef HODEI_ARTIFACT_REF_H
#define HODEI_ARTIFACT_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "hodei/status.h"

#define HODEI_ARTIFACT_URL_MAX 2048  /* = HODEI_JOB_ARTIFACT_PATH_MAX */
#define HODEI_ARTIFACT_BUCKET_MAX 63 /* S3 bucket names: 3..63 */
#define HODEI_ARTIFACT_KEY_MAX 1024  /* S3 object keys, bytes */
#define HODEI_ARTIFACT_COMPONENT_MAX 255
/* ArtifactRecords (JobResult.artifacts, Job.artifacts): the contract's limits. */
#define HODEI_ARTIFACT_FILES_MAX 1000 /* output files per attempt, every pattern together */
#define HODEI_ARTIFACT_ERROR_MAX 400  /* ArtifactRecord.error bytes */
#define HODEI_ARTIFACT_SOURCE_MAX 4096
#define HODEI_ARTIFACT_DESTINATION_MAX 6144

typedef enum {
    HODEI_ARTIFACT_HTTPS = 0,
    HODEI_ARTIFACT_HTTP,
    HODEI_ARTIFACT_S3,
    HODEI_ARTIFACT_FILE,
} hodei_artifact_scheme;

typedef struct {
    hodei_artifact_scheme scheme;
    char bucket[HODEI_ARTIFACT_BUCKET_MAX + 1]; /* s3 */
    char key[HODEI_ARTIFACT_KEY_MAX + 1];       /* s3: the key or prefix, without "/" first */
    bool prefix;                                /* s3: key "" or ending in "/" */
    const char *path;                           /* file: the absolute path (into the input) */
} hodei_artifact_url;

/* Parses url. for_output refuses file://. On error the message starts with
 * `field` ("spec.inputs[0].source: ..."), quotes at most the scheme or a
 * short piece, and never echoes a query string. */
hodei_status hodei_artifact_url_parse(const char *url, bool for_output, const char *field,
                                      hodei_artifact_url *out, hodei_err *err);

/* Checks a workspace path (see above): dir_ok allows a trailing "/",
 * empty_ok allows "". Glob characters are ordinary characters here; a
 * backslash is refused. */
hodei_status hodei_artifact_relpath_check(const char *path, bool dir_ok, bool empty_ok,
                                          const char *field, hodei_err *err);

/* "sha256:" followed by 64 hex digits (either case). */
bool hodei_artifact_checksum_ok(const char *checksum);

/* The URL as it may be shown in logs and records: without the query string
 * and fragment (a pre-signed URL's query is a credential). */
void hodei_artifact_url_display(const char *url, char *out, size_t out_len);

/* The last path component of a URL or path ("" when it ends in "/"). */
const char *hodei_artifact_basename(const char *url_or_path, size_t *len);

#endif
