#include "client_job_row.h"

#include <stdlib.h>
#include <string.h>

#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/pb.h"

static void job_row_time(Hodei__V1__Timestamp *ts, int64_t us, Hodei__V1__Timestamp **slot)
{
    hodei_pb_time(ts, us);
    *slot = us == 0 ? NULL : ts;
}

static hodei_status job_row_spec(job_row *r, const char *hex, hodei_arena *a, hodei_err *err)
{
    r->job.spec =
        (Hodei__V1__JobSpec *)hodei_pb_unpack_hex_arena(&hodei__v1__job_spec__descriptor, hex, a);
    if (!r->job.spec)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "stored spec of job %s does not unpack",
                             r->job.id);
    return HODEI_OK;
}

hodei_status job_row_fill(job_row *r, const PGresult *res, int row, hodei_arena *a, hodei_err *err)
{
    memset(r, 0, sizeof *r);
    hodei__v1__job__init(&r->job);
    r->job.id = (char *)hodei_db_get_str(res, row, 0);
    Hodei__V1__JobState state;
    if (!hodei_job_state_parse(hodei_db_get_str(res, row, 2), &state))
        state = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    r->job.state = state;
    r->job.attempt = (int32_t)hodei_db_get_i64(res, row, 3);
    r->job.max_attempts = (int32_t)hodei_db_get_i64(res, row, 4);
    r->job.worker_id = (char *)hodei_db_get_str(res, row, 5);
    r->job.epoch = hodei_db_get_i64(res, row, 6);
    r->job.cancel_requested = hodei_db_get_str(res, row, 7)[0] == 't';
    r->job.exit_code = (int32_t)hodei_db_get_i64(res, row, 8);
    r->job.error = (char *)hodei_db_get_str(res, row, 9);
    r->job.idempotency_key = (char *)hodei_db_get_str(res, row, 10);
    job_row_time(&r->created_at, hodei_db_get_i64(res, row, 11), &r->job.created_at);
    job_row_time(&r->updated_at, hodei_db_get_i64(res, row, 12), &r->job.updated_at);
    job_row_time(&r->started_at, hodei_db_get_i64(res, row, 13), &r->job.started_at);
    job_row_time(&r->finished_at, hodei_db_get_i64(res, row, 14), &r->job.finished_at);
    r->job.namespace_ = (char *)hodei_db_get_str(res, row, 15);
    r->job.owner = (char *)hodei_db_get_str(res, row, 16);
    r->job.owner_key_id = (char *)hodei_db_get_str(res, row, 17);
    return job_row_spec(r, hodei_db_get_str(res, row, 1), a, err);
}

hodei_status job_row_artifacts(job_row *r, const PGresult *res, hodei_arena *arena, hodei_err *err)
{
    int n = PQntuples(res);
    if (n == 0)
        return HODEI_OK;
    r->recs = hodei_arena_calloc(arena, (size_t)n, sizeof *r->recs);
    r->rec_ptrs = hodei_arena_calloc(arena, (size_t)n, sizeof *r->rec_ptrs);
    if (!r->recs || !r->rec_ptrs)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory for %d artifact records", n);
    for (int i = 0; i < n; i++) {
        Hodei__V1__ArtifactRecord *a = &r->recs[i];
        hodei__v1__artifact_record__init(a);
        a->epoch = hodei_db_get_i64(res, i, 0);
        a->source = (char *)hodei_db_get_str(res, i, 1);
        a->destination = (char *)hodei_db_get_str(res, i, 2);
        a->size_bytes = hodei_db_get_i64(res, i, 3);
        a->checksum = (char *)hodei_db_get_str(res, i, 4);
        a->state = strcmp(hodei_db_get_str(res, i, 5), "UPLOADED") == 0
                       ? HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED
                       : HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_FAILED;
        a->error = (char *)hodei_db_get_str(res, i, 6);
        r->rec_ptrs[i] = a;
    }
    r->job.n_artifacts = (size_t)n;
    r->job.artifacts = r->rec_ptrs;
    return HODEI_OK;
}
