/* Reading jobs rows into hodei.v1.Job messages. */
#ifndef HODEI_JOB_API_JOB_ROW_H
#define HODEI_JOB_API_JOB_ROW_H

#include <libpq-fe.h>

#include "hodei/arena.h"
#include "hodei/status.h"
#include "hodei/v1/job.pb-c.h"

/* The select list every job query uses, in the order job_row_fill reads. */
#define JOB_ROW_COLUMNS                                                                            \
    "id::text, encode(spec, 'hex'), state, attempt, max_attempts,"                                 \
    " coalesce(worker_id::text, ''), epoch, cancel_requested, coalesce(exit_code, 0),"             \
    " coalesce(error, ''), coalesce(idempotency_key, ''),"                                         \
    " (extract(epoch FROM created_at) * 1000000)::bigint,"                                         \
    " (extract(epoch FROM updated_at) * 1000000)::bigint,"                                         \
    " coalesce((extract(epoch FROM started_at) * 1000000)::bigint, 0),"                            \
    " coalesce((extract(epoch FROM finished_at) * 1000000)::bigint, 0),"                           \
    " namespace, owner, coalesce(owner_key_id::text, '')"

/* A Job message and the memory behind it. Strings point into the PGresult
 * the row came from: keep it until the message has been sent; the spec and
 * the artifact records live in the reply's arena. */
typedef struct {
    Hodei__V1__Job job;
    Hodei__V1__Timestamp created_at, updated_at, started_at, finished_at;
    Hodei__V1__ArtifactRecord *recs; /* job.artifacts point here */
    Hodei__V1__ArtifactRecord **rec_ptrs;
} job_row;

/* The output records of the job's latest attempt that has any, in the
 * columns job_row_artifacts reads; $1 = the job id. */
#define JOB_ROW_ARTIFACTS_SQL                                                                      \
    "SELECT epoch, source, destination, size_bytes, checksum, state, error FROM job_artifacts"     \
    " WHERE job_id = $1 AND epoch = (SELECT max(epoch) FROM job_artifacts WHERE job_id = $1)"      \
    " ORDER BY idx LIMIT 1000"

/* Fills r from row `row` of res. Unpacks the stored spec into a. */
hodei_status job_row_fill(job_row *r, const PGresult *res, int row, hodei_arena *a, hodei_err *err);
/* Sets r->job.artifacts from the rows of JOB_ROW_ARTIFACTS_SQL (strings
 * point into res: keep it until the message has been sent; the records
 * come from a). */
hodei_status job_row_artifacts(job_row *r, const PGresult *res, hodei_arena *a, hodei_err *err);

#endif
