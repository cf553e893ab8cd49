/* Validation of what a client asks to run, and the defaults the edge applies.
 *
 * Every limit is a named constant below. An error is HODEI_ERR_INVALID with a
 * message that starts with the field's path as a client sees it, e.g.
 *   "spec.priority: must be between -1000 and 1000, got 5000"
 *   "spec.env[\"1BAD\"]: name must match [A-Za-z_][A-Za-z0-9_]*"
 * Values of env entries are never echoed in messages (they may be secret);
 * keys and names are quoted with unprintable bytes escaped.
 * Pure functions, no I/O; a NULL string pointer is taken as "". */
#ifndef HODEI_JOB_SPEC_H
#define HODEI_JOB_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "hodei/limits.h"
#include "hodei/status.h"
#include "hodei/v1/job.pb-c.h"

/* Sizes are in bytes. */
#define HODEI_JOB_NAME_MAX 256
#define HODEI_JOB_COMMAND_MAX 4096
#define HODEI_JOB_ARGS_MAX 1024 /* entries */
#define HODEI_JOB_ARG_MAX 65536
#define HODEI_JOB_INTERPRETER_MAX 256
#define HODEI_JOB_SCRIPT_MAX (1024 * 1024)
#define HODEI_JOB_ENV_MAX 256 /* entries */
#define HODEI_JOB_ENV_NAME_MAX 256
#define HODEI_JOB_ENV_VALUE_MAX 65536
#define HODEI_JOB_CPU_CORES_MAX ((double)HODEI_CPU_CORES_MAX)
#define HODEI_JOB_MEMORY_BYTES_MAX HODEI_RESOURCE_BYTES_MAX
#define HODEI_JOB_STORAGE_BYTES_MAX HODEI_RESOURCE_BYTES_MAX
#define HODEI_JOB_GPU_COUNT_MAX HODEI_GPU_COUNT_MAX
#define HODEI_JOB_TIMEOUT_MS_MIN INT64_C(1000)
#define HODEI_JOB_TIMEOUT_MS_MAX INT64_C(604800000)   /* 7 days */
#define HODEI_JOB_DEFAULT_TIMEOUT_MS INT64_C(3600000) /* applied when 0 */
#define HODEI_JOB_LABELS_MAX HODEI_LABELS_MAX         /* entries, also constraints */
#define HODEI_JOB_LABEL_KEY_MAX 63
#define HODEI_JOB_LABEL_VALUE_MAX 256
#define HODEI_JOB_ARTIFACTS_MAX 64       /* inputs, and outputs */
#define HODEI_JOB_ARTIFACT_PATH_MAX 2048 /* source, destination */
#define HODEI_JOB_PRIORITY_MIN (-1000)
#define HODEI_JOB_PRIORITY_MAX 1000
#define HODEI_JOB_MAX_ATTEMPTS_MAX 100
#define HODEI_JOB_PROVIDER_MAX HODEI_PROVIDER_NAME_MAX
#define HODEI_JOB_IMAGE_MAX 512
#define HODEI_JOB_SECRET_REFS_MAX 64
#define HODEI_JOB_SECRET_REF_MAX HODEI_SECRET_NAME_MAX /* the NAME part of a reference */
#define HODEI_JOB_SECRET_NS_MAX 63                     /* the NAMESPACE part of NAMESPACE/NAME */
#define HODEI_JOB_WORKING_DIR_MAX 4096
#define HODEI_JOB_IDEMPOTENCY_KEY_MAX 128
/* The whole encoded spec. It binds before the script limit: a script of
 * exactly HODEI_JOB_SCRIPT_MAX bytes plus any other field is over it. */
#define HODEI_JOB_SPEC_PACKED_MAX (1024 * 1024)

/* A secret reference, NAME or NAMESPACE/NAME (a secret another namespace
 * shares): true when it is well formed, and then ns is its namespace
 * (default_ns when it names none; may be NULL when only the check is
 * wanted) and name its name. */
#define HODEI_SECRET_REF_NS_BUF (HODEI_JOB_SECRET_NS_MAX + 1)
#define HODEI_SECRET_REF_NAME_BUF (HODEI_JOB_SECRET_REF_MAX + 1)
bool hodei_secret_ref_parse(const char *ref, const char *default_ns,
                            char ns[HODEI_SECRET_REF_NS_BUF], char name[HODEI_SECRET_REF_NAME_BUF]);

/* Architectures a job may ask for ("" = any): amd64, arm64, x86_64, aarch64. */
bool hodei_job_arch_valid(const char *arch);

/* Checks the whole request: spec present, idempotency_key ("" or 1..128
 * printable ASCII 0x21..0x7e), then hodei_job_spec_validate. */
hodei_status hodei_queue_request_validate(const Hodei__V1__QueueJobRequest *req, hodei_err *err);

/* Checks every field of spec against the limits above; the first error wins.
 * A NULL spec is "spec: required". */
hodei_status hodei_job_spec_validate(const Hodei__V1__JobSpec *spec, hodei_err *err);

/* Checks ListJobsRequest.labels (the filter) as spec.labels is checked:
 * at most HODEI_JOB_LABELS_MAX entries, each key and value as a label's
 * ("labels[...]: key must be ..."). */
hodei_status hodei_job_labels_filter_validate(const Hodei__V1__ListJobsRequest *req,
                                              hodei_err *err);

/* Attempts the job may start: max_attempts, with 0 (unset) meaning 1. */
int32_t hodei_job_spec_max_attempts(const Hodei__V1__JobSpec *spec);

/* Timeout the job runs under: timeout_ms, with 0 (unset) meaning
 * HODEI_JOB_DEFAULT_TIMEOUT_MS. */
int64_t hodei_job_spec_timeout_ms(const Hodei__V1__JobSpec *spec);

#endif
