/* Reading stored log batches back (see logs_int.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_audit.h"
#include "hodei/bus.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/job_state.h"
#include "hodei/pb.h"
#include "logs_int.h"

Hodei__V1__LogBatch *logs_unpack(natsMsg *msg, hodei_arena *a, Hodei__V1__JobState *end_state)
{
    const char *end = NULL;
    *end_state = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    if (natsMsgHeader_Get(msg, HODEI_HDR_LOG_END, &end) == NATS_OK && end &&
        !hodei_job_state_parse(end, end_state))
        *end_state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED; /* unknown name: still the end */
    ProtobufCAllocator pa = hodei_pb_arena(a);
    return hodei__v1__log_batch__unpack(&pa, (size_t)natsMsg_GetDataLength(msg),
                                        (const uint8_t *)natsMsg_GetData(msg));
}

size_t logs_append(const Hodei__V1__LogBatch *b, hodei_log_filter *f, logs_lines *out, size_t room)
{
    for (size_t i = 0; i < b->n_lines; i++) {
        if (out->n >= room)
            return b->n_lines - i;
        Hodei__V1__LogLine *l = b->lines[i];
        if (!hodei_log_filter_pass(f, b->epoch, l->sequence))
            continue;
        l->epoch = b->epoch;
        out->lines[out->n++] = l;
        out->bytes += l->data.len + LOGS_LINE_OVERHEAD;
    }
    return 0;
}

hodei_status logs_job_check(edge *e, const hodei_identity *who, const char *job_id,
                            Hodei__V1__JobState *ended_state, hodei_err *err)
{
    char grace[32], nsbuf[EDGE_NS_FILTER_BUF];
    snprintf(grace, sizeof grace, "%d", LOGS_END_GRACE_MS);
    const char *params[3] = {job_id, grace, edge_ns_filter(who, nsbuf, sizeof nsbuf)};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    *ended_state = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    st = hodei_db_exec(conn,
                       "SELECT state, finished_at IS NOT NULL AND finished_at <"
                       " now() - $2::int * interval '1 millisecond'"
                       " FROM jobs WHERE id = $1::uuid"
                       " AND ($3::text[] IS NULL OR namespace = ANY($3::text[]))",
                       3, params, &res, err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "job %s not found", job_id);
    }
    Hodei__V1__JobState state;
    if (hodei_db_get_str(res, 0, 1)[0] == 't' &&
        hodei_job_state_parse(hodei_db_get_str(res, 0, 0), &state) &&
        hodei_job_state_terminal(state))
        *ended_state = state;
    PQclear(res);
    return HODEI_OK;
}

void logs_subject(const char *job_id, char out[LOGS_SUBJECT_MAX])
{
    snprintf(out, LOGS_SUBJECT_MAX, "%s%s", HODEI_SUBJ_LOGS_PREFIX, job_id);
}

hodei_status logs_check_request(const char *id, int64_t from_epoch, hodei_err *err)
{
    hodei_status st = hodei_id_check("job_id", id, "a job id", err);
    if (st == HODEI_OK && from_epoch < 0)
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "from_epoch: must be 0 (none) or an epoch from LogLine.epoch, got %lld",
                           (long long)from_epoch);
    return st;
}

/* Stream sequence of the subject's last message; 0 when it has none. */
hodei_status logs_last_seq(jsCtx *js, const char *subject, uint64_t *seq, hodei_err *err)
{
    natsMsg *last = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetLastMsg(&last, js, HODEI_STREAM_LOGS, subject, NULL, &jerr);
    *seq = 0;
    if (s == NATS_NOT_FOUND)
        return HODEI_OK;
    if (s != NATS_OK)
        return hodei_bus_err(s, "log store", err);
    *seq = natsMsg_GetSequence(last);
    natsMsg_Destroy(last);
    return HODEI_OK;
}
