/* The output records of a worker's JobResult (JobResult.artifacts) into
 * job_artifacts, inside the result's own transaction, so a job's end and
 * the list of what it produced commit together. A repeated result writes
 * nothing twice (primary key job, epoch, index). */
#include "worker_records.h"

#include <stdio.h>

#include "hodei/sqlarr.h"

#define RECORDS_COL_MAX (8u << 20) /* one array literal */

static const char records_sql[] =
    "INSERT INTO job_artifacts (job_id, epoch, idx, source, destination, size_bytes, checksum,"
    " state, error)"
    " SELECT $1::uuid, $2::bigint, r.idx, r.source, r.destination, r.size_bytes, r.checksum,"
    " r.state, r.error"
    " FROM unnest($3::int[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[],"
    " $9::text[]) AS r(idx, source, destination, size_bytes, checksum, state, error)"
    " ON CONFLICT DO NOTHING";

enum { REC_IDX = 0, REC_SOURCE, REC_DEST, REC_SIZE, REC_SUM, REC_STATE, REC_ERROR, REC_COLS };

hodei_status worker_records_insert(PGconn *conn, const Hodei__V1__JobResult *r, hodei_err *err)
{
    if (r->n_artifacts == 0)
        return HODEI_OK;
    hodei_buf cols[REC_COLS];
    for (int c = 0; c < REC_COLS; c++) {
        hodei_buf_init(&cols[c], RECORDS_COL_MAX);
        hodei_sqlarr_begin(&cols[c]);
    }
    for (size_t i = 0; i < r->n_artifacts; i++) {
        const Hodei__V1__ArtifactRecord *a = r->artifacts[i];
        bool up = a->state == HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED;
        hodei_sqlarr_i64(&cols[REC_IDX], (int64_t)i);
        hodei_sqlarr_str(&cols[REC_SOURCE], a->source ? a->source : "");
        hodei_sqlarr_str(&cols[REC_DEST], a->destination ? a->destination : "");
        hodei_sqlarr_i64(&cols[REC_SIZE], a->size_bytes);
        hodei_sqlarr_str(&cols[REC_SUM], a->checksum ? a->checksum : "");
        hodei_sqlarr_str(&cols[REC_STATE], up ? "UPLOADED" : "FAILED");
        hodei_sqlarr_str(&cols[REC_ERROR], a->error ? a->error : "");
    }
    bool ok = true;
    for (int c = 0; c < REC_COLS; c++)
        ok = hodei_sqlarr_end(&cols[c]) && ok;
    hodei_status st;
    if (!ok) {
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "job_result.artifacts: too large to record");
    } else {
        char epoch[24];
        snprintf(epoch, sizeof epoch, "%lld", (long long)r->epoch);
        const char *params[] = {r->job_id,           epoch,
                                cols[REC_IDX].data,  cols[REC_SOURCE].data,
                                cols[REC_DEST].data, cols[REC_SIZE].data,
                                cols[REC_SUM].data,  cols[REC_STATE].data,
                                cols[REC_ERROR].data};
        st = hodei_db_exec(conn, records_sql, 9, params, NULL, err);
    }
    for (int c = 0; c < REC_COLS; c++)
        hodei_buf_fini(&cols[c]);
    return st;
}
