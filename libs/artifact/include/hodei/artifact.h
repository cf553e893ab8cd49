/* Artifacts: the files that go into a job's workspace before it runs
 * (inputs) and out of it after (outputs). Used by the worker agent; knows
 * nothing of gRPC, NATS or PostgreSQL.
 *
 *     hodei_artifact_global_init();                  // once, before threads
 *     hodei_artifact_job *j;
 *     hodei_artifact_job_create(&conf, workspace, deadline_ms, &hooks, &j, &err);
 *     if (hodei_artifact_stage(j, spec->inputs, spec->n_inputs, &err) != HODEI_OK)
 *         fail the attempt with err.msg (it names the artifact);
 *     ... run the job in the workspace ...
 *     hodei_artifact_records recs;
 *     hodei_artifact_collect(j, spec->outputs, spec->n_outputs, succeeded, &recs);
 *     report recs.items in JobResult.artifacts; hodei_artifact_records_free(&recs);
 *     hodei_artifact_job_destroy(j);
 *
 * Inputs: https/http (libcurl, TLS verified, redirects bounded, the same
 * scheme or https only), s3 objects and prefixes (SigV4), file:// below the
 * allow-listed folders. Outputs: files and globs from the workspace to s3
 * (multipart above a threshold) or https/http PUT. Every transfer is
 * bounded by the attempt's deadline, retried with backoff when the failure
 * is transient, and counted against the per-artifact and per-job byte
 * limits. Workspace paths are resolved one component at a time with
 * O_NOFOLLOW, so no symlink is ever followed on either side. */
#ifndef HODEI_ARTIFACT_H
#define HODEI_ARTIFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hodei/artifact_ref.h"
#include "hodei/status.h"
#include "hodei/v1/job.pb-c.h"

#define HODEI_ARTIFACT_PART_MIN (5 * 1024 * 1024) /* S3's smallest multipart part */
#define HODEI_ARTIFACT_PARTS_MAX 10000            /* S3's most parts in one upload */

typedef struct {
    const char *s3_endpoint;      /* "" = https://s3.<region>.amazonaws.com */
    const char *s3_region;        /* "" = us-east-1 */
    bool s3_path_style;           /* https://endpoint/bucket/key instead of bucket.endpoint */
    const char *file_roots;       /* ':'-separated absolute folders file:// may read; "" = none */
    const char *ca_file;          /* extra CA bundle for https ("" = the system's) */
    int64_t artifact_bytes_max;   /* one input or output file */
    int64_t job_bytes_max;        /* all inputs of a job; all outputs of a job */
    int retry_max;                /* retries of a transient failure, after the first try */
    int64_t retry_backoff_ms;     /* first retry delay; doubles, with jitter */
    int64_t connect_timeout_ms;   /* per connection */
    int redirects_max;            /* https/http inputs */
    int64_t multipart_threshold;  /* s3 outputs at least this large go in parts */
    int64_t part_bytes;           /* size of each part */
    int64_t progress_interval_ms; /* a progress line at most this often per transfer */
} hodei_artifact_conf;

/* The defaults: 10 GiB per artifact, 50 GiB per job, 3 retries from 500 ms,
 * 10 s connect, 5 redirects, multipart from 16 MiB in 8 MiB parts, progress
 * every 5 s, us-east-1, no file roots. */
void hodei_artifact_conf_default(hodei_artifact_conf *c);

typedef struct {
    /* A line for the job's log (progress, sizes, checksums). Never holds a
     * credential or a URL's query. Optional. */
    void (*note)(void *user, const char *line);
    /* true once the attempt is cancelled: transfers stop. Optional. */
    bool (*cancelled)(void *user);
    /* The value of the stored secret an artifact names in `credentials`,
     * or NULL when the job was given none by that name. */
    const char *(*secret)(void *user, const char *name);
    void *user;
} hodei_artifact_hooks;

typedef struct hodei_artifact_job hodei_artifact_job;

/* Once per process, before any thread uses libcurl. */
hodei_status hodei_artifact_global_init(hodei_err *err);

/* A private workspace folder (0700) `<root>/<job id>-<epoch>` made anew
 * (an old one of the same name is removed first). out gets its path. */
hodei_status hodei_artifact_workspace_create(const char *root, const char *job_id, int64_t epoch,
                                             char *out, size_t out_len, hodei_err *err);
/* Removes the workspace and everything in it, following no symlink. */
void hodei_artifact_workspace_remove(const char *path);
/* When jobs run as another user: the workspace and everything in it become
 * uid:gid's (no symlink followed), and root becomes 0711 so that the user
 * may reach its folder without listing the others. Call before the job runs,
 * when the workspace holds only what staging wrote. */
hodei_status hodei_artifact_workspace_hand(const char *root, const char *workspace, uid_t uid,
                                           gid_t gid, hodei_err *err);

/* conf and hooks are borrowed for the job's life. deadline_ms is on the
 * monotonic clock (hodei_mono_ms); 0 = none. */
hodei_status hodei_artifact_job_create(const hodei_artifact_conf *conf, const char *workspace,
                                       int64_t deadline_ms, const hodei_artifact_hooks *hooks,
                                       hodei_artifact_job **out, hodei_err *err);
void hodei_artifact_job_destroy(hodei_artifact_job *j); /* NULL is a no-op */

/* Stages every input into the workspace, in order. The first failure stops
 * it: the error names the input ("spec.inputs[1] https://host/x: checksum
 * mismatch: ..."), HODEI_ERR_TIMEOUT when the deadline passed,
 * HODEI_ERR_CANCELLED when cancelled. */
hodei_status hodei_artifact_stage(hodei_artifact_job *j, Hodei__V1__Artifact *const *inputs,
                                  size_t n, hodei_err *err);

/* What hodei_artifact_collect produced: heap records (strings included),
 * freed by hodei_artifact_records_free. */
typedef struct {
    Hodei__V1__ArtifactRecord **items;
    size_t len;
} hodei_artifact_records;

/* Collects the outputs whose `when` fits `succeeded`, one record per file
 * (a pattern that matches nothing gets one FAILED record). A failure marks
 * its record FAILED with the reason and goes on with the others. */
void hodei_artifact_collect(hodei_artifact_job *j, Hodei__V1__Artifact *const *outputs, size_t n,
                            bool succeeded, int64_t epoch, hodei_artifact_records *out);
void hodei_artifact_records_free(hodei_artifact_records *r);

/* Bytes moved so far (inputs in, outputs out). */
int64_t hodei_artifact_bytes_in(const hodei_artifact_job *j);
int64_t hodei_artifact_bytes_out(const hodei_artifact_job *j);

#endif
