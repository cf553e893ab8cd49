/* JobExecutionService: QueueJob, GetJobStatus, CancelJob, ListJobs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_job_row.h"
#include "client_secrets.h"
#include "client_submit.h"
#include "edge.h"
#include "edge_audit.h"
#include "edge_auth.h"
#include "hodei/buf.h"
#include "hodei/bus.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/job_spec.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/page_token.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"
#include "hodei/util.h"
#include "hodei/v1/events.pb-c.h"
#include "hodei/v1/job.pb-c.h"

#define LIST_PAGE_DEFAULT 50
#define LIST_PAGE_MAX 1000
#define CANCEL_REASON_MAX 1024
#define LIST_LABELS_SQL_MAX (64 * 1024) /* the label filter's keys (or values) as an array */

#define SVC "/hodei.v1.JobExecutionService/"

/* ------------------------------------------------------------------ helpers */

/* Runs a one-row job query and answers with the Job wrapped by `wrap`. */
typedef void (*jobs_wrap_fn)(hodei_rpc_call *call, Hodei__V1__Job *job);

static void jobs_reply_row(hodei_rpc_call *call, const PGresult *res, jobs_wrap_fn wrap)
{
    job_row row;
    hodei_err err;
    hodei_arena a;
    hodei_arena_init(&a, 0, EDGE_REPLY_ARENA_MAX);
    if (job_row_fill(&row, res, 0, &a, &err) == HODEI_OK)
        wrap(call, &row.job);
    else
        hodei_rpc_call_fail_err(call, &err);
    hodei_arena_fini(&a);
}

/* ----------------------------------------------------------------- QueueJob */

static void jobs_queue(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__QueueJobRequest *req = (const Hodei__V1__QueueJobRequest *)msg;
    hodei_err err;
    const char *ns = NULL;
    if (hodei_queue_request_validate(req, &err) != HODEI_OK ||
        hodei_identity_pick_namespace(edge_caller(call), "namespace", req->namespace_, &ns, &err) !=
            HODEI_OK ||
        secret_refs_check(e, ns, req->spec, &err) != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return;
    }
    submitter_enqueue(e->submit, call, req, ns);
}

/* ------------------------------------------------------------- GetJobStatus */

static void jobs_wrap_status(hodei_rpc_call *call, Hodei__V1__Job *job)
{
    Hodei__V1__GetJobStatusResponse resp = HODEI__V1__GET_JOB_STATUS_RESPONSE__INIT;
    resp.job = job;
    hodei_rpc_call_reply(call, &resp.base);
}

static void jobs_get(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__GetJobStatusRequest *req = (const Hodei__V1__GetJobStatusRequest *)msg;
    hodei_err err;
    PGconn *conn = NULL;
    PGresult *res = NULL, *arts = NULL;
    job_row row = {0};
    hodei_arena a;
    hodei_arena_init(&a, 0, EDGE_REPLY_ARENA_MAX);
    hodei_status st = hodei_id_check("job_id", req->job_id, "a job id", &err);
    if (st != HODEI_OK)
        goto fail;
    if ((st = edge_db_acquire(e, &conn, &err)) != HODEI_OK)
        goto fail;
    char nsbuf[EDGE_NS_FILTER_BUF];
    const char *params[2] = {req->job_id, edge_ns_filter(edge_caller(call), nsbuf, sizeof nsbuf)};
    st = hodei_db_exec(conn,
                       "SELECT " JOB_ROW_COLUMNS " FROM jobs WHERE id = $1"
                       " AND ($2::text[] IS NULL OR namespace = ANY($2::text[]))",
                       2, params, &res, &err);
    if (st == HODEI_OK && PQntuples(res) == 1)
        st = hodei_db_exec(conn, JOB_ROW_ARTIFACTS_SQL, 1, params, &arts, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    if (PQntuples(res) == 0) {
        PQclear(res);
        hodei_rpc_call_fail(call, HODEI_GRPC_NOT_FOUND, "job %s not found", req->job_id);
        return;
    }
    st = job_row_fill(&row, res, 0, &a, &err);
    if (st == HODEI_OK)
        st = job_row_artifacts(&row, arts, &a, &err);
    if (st == HODEI_OK)
        jobs_wrap_status(call, &row.job);
    hodei_arena_fini(&a);
    if (st == HODEI_OK) {
        PQclear(arts);
        PQclear(res);
        return;
    }
fail:
    PQclear(arts);
    PQclear(res);
    hodei_rpc_call_fail_err(call, &err);
}

/* ---------------------------------------------------------------- CancelJob */

/* PENDING: cancelled at once, and JobFinished tells whoever waits. */
static hodei_status cancel_pending(PGconn *conn, const char *id, const char *reason, hodei_err *err)
{
    hodei_status st = hodei_job_transition_check(HODEI__V1__JOB_STATE__JOB_STATE_PENDING,
                                                 HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED, err);
    if (st != HODEI_OK)
        return st;
    const char *params[2] = {id, reason};
    st = hodei_db_exec(conn,
                       "UPDATE jobs SET state = 'CANCELLED', cancel_requested = true,"
                       " cancel_reason = $2, finished_at = now(), updated_at = now()"
                       " WHERE id = $1",
                       2, params, NULL, err);
    if (st != HODEI_OK)
        return st;
    return hodei_event_job_finished(HODEI_OUTBOX_WRITE(conn), id,
                                    HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED, 0, "", 0, err);
}

/* ASSIGNED or RUNNING: marked, and the worker holding it is told through
 * its own subject. A repeated cancel changes nothing. */
static hodei_status cancel_running(PGconn *conn, const char *id, const hodei_job_view *v,
                                   const char *reason, hodei_err *err)
{
    if (v->cancel_requested)
        return HODEI_OK;
    const char *params[2] = {id, reason};
    hodei_status st = hodei_db_exec(conn,
                                    "UPDATE jobs SET cancel_requested = true, cancel_reason = $2,"
                                    " updated_at = now() WHERE id = $1",
                                    2, params, NULL, err);
    if (st != HODEI_OK)
        return st;
    return hodei_event_job_cancel_requested(HODEI_OUTBOX_WRITE(conn), id, v->worker_id, v->epoch,
                                            reason, err);
}

/* The job's namespace, if the caller may see it; else NOT_FOUND, exactly as
 * for a job that does not exist. */
static hodei_status cancel_visible(PGconn *conn, const hodei_identity *who, const char *id,
                                   char ns[HODEI_NS_BUF], hodei_err *err)
{
    char nsbuf[EDGE_NS_FILTER_BUF];
    const char *params[2] = {id, edge_ns_filter(who, nsbuf, sizeof nsbuf)};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT namespace FROM jobs WHERE id = $1"
                                    " AND ($2::text[] IS NULL OR namespace = ANY($2::text[]))",
                                    2, params, &res, err);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0)
        st = hodei_err_set(err, HODEI_ERR_NOT_FOUND, "job %s not found", id);
    else
        hodei_strlcpy(ns, hodei_db_get_str(res, 0, 0), HODEI_NS_BUF);
    PQclear(res);
    return st;
}

static hodei_status cancel_audit(PGconn *conn, const hodei_identity *who, const char *id,
                                 const char *ns, const hodei_job_view *v, const char *reason,
                                 hodei_err *err)
{
    hodei_buf d;
    hodei_buf_init(&d, 4 * CANCEL_REASON_MAX + 256);
    hodei_buf_puts(&d, "{\"reason\":");
    hodei_buf_json_string(&d, reason);
    hodei_buf_printf(&d, ",\"state\":\"%s\"}", hodei_job_state_name(v->state));
    hodei_status st = edge_audit(conn, who, "job.cancel", "job", id, ns, d.data, err);
    hodei_buf_fini(&d);
    return st;
}

static hodei_status cancel_tx(PGconn *conn, const hodei_identity *who, const char *id,
                              const char *reason, PGresult **out, hodei_err *err)
{
    hodei_job_view v;
    char ns[HODEI_NS_BUF];
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    if ((st = cancel_visible(conn, who, id, ns, err)) != HODEI_OK)
        goto rollback;
    if ((st = hodei_store_job_read(conn, id, true, &v, err)) != HODEI_OK)
        goto rollback;
    if (hodei_job_state_terminal(v.state)) {
        st = hodei_err_set(err, HODEI_ERR_PRECONDITION, "job %s has already finished (%s)", id,
                           hodei_job_state_name(v.state));
        goto rollback;
    }
    if (v.state == HODEI__V1__JOB_STATE__JOB_STATE_PENDING)
        st = cancel_pending(conn, id, reason, err);
    else
        st = cancel_running(conn, id, &v, reason, err);
    if (st == HODEI_OK &&
        !(v.state != HODEI__V1__JOB_STATE__JOB_STATE_PENDING && v.cancel_requested))
        st = cancel_audit(conn, who, id, ns, &v, reason, err);
    if (st != HODEI_OK)
        goto rollback;
    const char *params[1] = {id};
    if ((st = hodei_db_exec(conn, "SELECT " JOB_ROW_COLUMNS " FROM jobs WHERE id = $1", 1, params,
                            out, err)) != HODEI_OK)
        goto rollback;
    if ((st = hodei_db_commit(conn, err)) != HODEI_OK) {
        PQclear(*out);
        *out = NULL;
    }
    return st;
rollback:
    hodei_db_rollback(conn);
    return st;
}

static void jobs_wrap_cancel(hodei_rpc_call *call, Hodei__V1__Job *job)
{
    Hodei__V1__CancelJobResponse resp = HODEI__V1__CANCEL_JOB_RESPONSE__INIT;
    resp.job = job;
    hodei_rpc_call_reply(call, &resp.base);
}

static void jobs_cancel(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__CancelJobRequest *req = (const Hodei__V1__CancelJobRequest *)msg;
    hodei_err err;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    const char *reason = req->reason ? req->reason : "";
    hodei_status st = hodei_id_check("job_id", req->job_id, "a job id", &err);
    if (st != HODEI_OK)
        goto fail;
    if (strlen(reason) > CANCEL_REASON_MAX || !hodei_utf8_valid(reason, strlen(reason))) {
        st = hodei_err_set(&err, HODEI_ERR_INVALID,
                           "reason: must be valid UTF-8 of at most %d bytes", CANCEL_REASON_MAX);
        goto fail;
    }
    if ((st = edge_db_acquire(e, &conn, &err)) != HODEI_OK)
        goto fail;
    st = cancel_tx(conn, edge_caller(call), req->job_id, reason, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    jobs_reply_row(call, res, jobs_wrap_cancel);
    PQclear(res);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ----------------------------------------------------------------- ListJobs */

/* Page tokens (hodei/page_token.h) are the position of the last job
 * returned: keyset paging, stable while new jobs arrive. */
static hodei_status list_parse_token(const char *tok, char *us_out, size_t us_len, char *id_out,
                                     hodei_err *err)
{
    int64_t us;
    if (!hodei_page_token_decode(tok, &us, id_out))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "page_token: not a token this server returned");
    snprintf(us_out, us_len, "%" PRId64, us);
    return HODEI_OK;
}

typedef struct {
    char namespaces[EDGE_NS_FILTER_BUF]; /* array literal, or "" for all */
    char states[256];                    /* array literal, or "" for all */
    char after_us[32];
    char after_id[HODEI_ID_BUF];
    char limit[16];
    char finished_before_us[32]; /* "" = any */
    hodei_buf label_keys;        /* array literals, len 0 = no label filter */
    hodei_buf label_values;
    int page_size;
} list_query;

static void list_query_fini(list_query *q)
{
    hodei_buf_fini(&q->label_keys);
    hodei_buf_fini(&q->label_values);
}

/* labels (validated as spec.labels are) as two arrays for jsonb_object(). */
static hodei_status list_labels(const Hodei__V1__ListJobsRequest *req, list_query *q,
                                hodei_err *err)
{
    hodei_status st = hodei_job_labels_filter_validate(req, err);
    if (st != HODEI_OK || req->n_labels == 0)
        return st;
    hodei_sqlarr_begin(&q->label_keys);
    hodei_sqlarr_begin(&q->label_values);
    for (size_t i = 0; i < req->n_labels; i++) {
        hodei_sqlarr_str(&q->label_keys, req->labels[i]->key);
        hodei_sqlarr_str(&q->label_values, req->labels[i]->value);
    }
    if (!hodei_sqlarr_end(&q->label_keys) || !hodei_sqlarr_end(&q->label_values))
        return hodei_err_set(err, HODEI_ERR_INVALID, "labels: too long");
    return HODEI_OK;
}

/* A namespace asked for must be one the caller may see; none = all it may. */
static hodei_status list_namespaces(const Hodei__V1__ListJobsRequest *req,
                                    const hodei_identity *who, list_query *q, hodei_err *err)
{
    const char *ns = NULL;
    if (req->namespace_ && req->namespace_[0]) {
        hodei_status st =
            hodei_identity_pick_namespace(who, "namespace", req->namespace_, &ns, err);
        if (st != HODEI_OK)
            return st;
        snprintf(q->namespaces, sizeof q->namespaces, "{\"%s\"}", ns); /* [a-z0-9-] only */
        return HODEI_OK;
    }
    const char *all = edge_ns_filter(who, q->namespaces, sizeof q->namespaces);
    if (!all)
        q->namespaces[0] = '\0';
    return HODEI_OK;
}

static hodei_status list_parse(const Hodei__V1__ListJobsRequest *req, const hodei_identity *who,
                               list_query *q, hodei_err *err)
{
    memset(q, 0, sizeof *q);
    hodei_buf_init(&q->label_keys, LIST_LABELS_SQL_MAX);
    hodei_buf_init(&q->label_values, LIST_LABELS_SQL_MAX);
    hodei_status nst = list_namespaces(req, who, q, err);
    if (nst != HODEI_OK)
        return nst;
    if (req->page_size < 0 || req->page_size > LIST_PAGE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "page_size: must be between 0 and %d, got %d",
                             LIST_PAGE_MAX, req->page_size);
    q->page_size = req->page_size ? req->page_size : LIST_PAGE_DEFAULT;
    snprintf(q->limit, sizeof q->limit, "%d", q->page_size + 1);
    hodei_buf b;
    hodei_buf_init(&b, sizeof q->states - 1);
    hodei_sqlarr_begin(&b);
    for (size_t i = 0; i < req->n_states; i++) {
        Hodei__V1__JobState s = req->states[i];
        if (s <= HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED ||
            s > HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT) {
            hodei_buf_fini(&b);
            return hodei_err_set(err, HODEI_ERR_INVALID, "states[%zu]: unknown job state %d", i,
                                 (int)s);
        }
        hodei_sqlarr_str(&b, hodei_job_state_name(s));
    }
    bool ok = hodei_sqlarr_end(&b);
    if (ok && req->n_states > 0)
        hodei_strlcpy(q->states, b.data, sizeof q->states);
    hodei_buf_fini(&b);
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_INVALID, "states: too many entries");
    const Hodei__V1__Timestamp *fb = req->finished_before;
    if (fb && (fb->seconds != 0 || fb->nanos != 0)) {
        if (fb->seconds < 0 || fb->nanos < 0 || fb->nanos >= 1000000000)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "finished_before: must be a time after 1970 (nanos below 1e9)");
        snprintf(q->finished_before_us, sizeof q->finished_before_us, "%" PRId64,
                 fb->seconds * 1000000 + fb->nanos / 1000);
    }
    hodei_status lst = list_labels(req, q, err);
    if (lst != HODEI_OK)
        return lst;
    if (req->page_token && req->page_token[0])
        return list_parse_token(req->page_token, q->after_us, sizeof q->after_us, q->after_id, err);
    return HODEI_OK;
}

/* Column of the query's row count before the byte cut (page_total_). */
#define LIST_COL_TOTAL 18

/* The page: at most page_size jobs, ending before the reply (its jobs and
 * its page token) would pass replies.page_bytes_max, and at least one job.
 * res holds the query's first rows, up to one past the page_size, cut
 * where their stored bytes pass the budget (see jobs_list); its
 * LIST_COL_TOTAL says how many rows there were before that cut, so a job
 * left out by either cut makes a next page. */
static void list_reply(hodei_rpc_call *call, const PGresult *res, int page_size, size_t budget)
{
    int rows = PQntuples(res);
    int64_t total = rows > 0 ? hodei_db_get_i64(res, 0, LIST_COL_TOTAL) : 0;
    int max = rows > page_size ? page_size : rows;
    hodei_arena a;
    hodei_arena_init(&a, 0, EDGE_REPLY_ARENA_MAX);
    job_row *jrows = hodei_arena_calloc(&a, (size_t)max + 1, sizeof *jrows);
    Hodei__V1__Job **jobs = hodei_arena_calloc(&a, (size_t)max + 1, sizeof *jobs);
    char token[HODEI_PAGE_TOKEN_BUF] = "";
    hodei_err err;
    if (!jrows || !jobs) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    int n = 0;
    size_t used = 0;
    for (; n < max; n++) {
        if (job_row_fill(&jrows[n], res, n, &a, &err) != HODEI_OK) {
            hodei_rpc_call_fail_err(call, &err);
            goto out;
        }
        size_t item =
            edge_page_field_bytes(protobuf_c_message_get_packed_size(&jrows[n].job.base), true);
        size_t tok = 0;
        if (n + 1 < total) { /* a token follows a page that ends here */
            hodei_page_token_encode(hodei_db_get_i64(res, n, 11), hodei_db_get_str(res, n, 0),
                                    token);
            tok = edge_page_field_bytes(strlen(token), false);
        }
        if (n > 0 && used + item + tok > budget)
            break;
        used += item;
        jobs[n] = &jrows[n].job;
    }
    token[0] = '\0';
    if (n < total && n > 0)
        hodei_page_token_encode(hodei_db_get_i64(res, n - 1, 11), hodei_db_get_str(res, n - 1, 0),
                                token);
    Hodei__V1__ListJobsResponse resp = HODEI__V1__LIST_JOBS_RESPONSE__INIT;
    resp.n_jobs = (size_t)n;
    resp.jobs = jobs;
    resp.next_page_token = token;
    hodei_rpc_call_reply(call, &resp.base);
out:
    hodei_arena_fini(&a);
}

static void jobs_list(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__ListJobsRequest *req = (const Hodei__V1__ListJobsRequest *)msg;
    hodei_err err;
    list_query q;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = list_parse(req, edge_caller(call), &q, &err);
    if (st != HODEI_OK)
        goto fail;
    if ((st = edge_db_acquire(e, &conn, &err)) != HODEI_OK)
        goto fail;
    bool by_label = q.label_keys.len > 0;
    char budget[32];
    snprintf(budget, sizeof budget, "%" PRId64, e->cfg->reply_page_bytes_max);
    const char *params[9] = {q.states[0] ? q.states : NULL,
                             q.after_us[0] ? q.after_us : NULL,
                             q.after_id[0] ? q.after_id : NULL,
                             q.limit,
                             q.namespaces[0] ? q.namespaces : NULL,
                             q.finished_before_us[0] ? q.finished_before_us : NULL,
                             by_label ? q.label_keys.data : NULL,
                             by_label ? q.label_values.data : NULL,
                             budget};
    /* The database's answer is bounded as the reply is: of the first
     * page_size + 1 rows (their specs not yet read: TOAST pointers), only
     * those starting within the byte budget by their stored bytes (which a
     * Job's reply bytes never fall below) are read out; page_total_ counts
     * them all, so list_reply knows a next page exists. */
    st = hodei_db_exec(
        conn,
        "SELECT " JOB_ROW_COLUMNS ", page_total_ FROM ("
        " SELECT *, count(*) OVER () AS page_total_,"
        "  sum(est_) OVER (ORDER BY created_at DESC, id DESC ROWS UNBOUNDED PRECEDING)"
        "   - est_ AS page_start_"
        " FROM (SELECT jobs.*,"
        "  octet_length(spec)::bigint + coalesce(octet_length(error), 0) AS est_ FROM jobs"
        " WHERE ($1::text[] IS NULL OR state = ANY($1::text[]))"
        "   AND ($5::text[] IS NULL OR namespace = ANY($5::text[]))"
        "   AND ($2::bigint IS NULL OR (created_at, id) <"
        "        ('epoch'::timestamptz + $2::bigint * interval '1 microsecond',"
        "         $3::uuid))"
        "   AND ($6::bigint IS NULL OR finished_at <"
        "        'epoch'::timestamptz + $6::bigint * interval '1 microsecond')"
        "   AND ($7::text[] IS NULL OR labels @> jsonb_object($7::text[], $8::text[]))"
        " ORDER BY created_at DESC, id DESC LIMIT $4::int) s) p"
        " WHERE page_start_ <= $9::bigint ORDER BY created_at DESC, id DESC",
        9, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    list_reply(call, res, q.page_size, (size_t)e->cfg->reply_page_bytes_max);
    PQclear(res);
    list_query_fini(&q);
    return;
fail:
    list_query_fini(&q);
    hodei_rpc_call_fail_err(call, &err);
}

/* ------------------------------------------------------------- registration */

hodei_status jobs_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method methods[] = {
        {SVC "QueueJob", HODEI_RPC_UNARY, &hodei__v1__queue_job_request__descriptor, jobs_queue,
         NULL, NULL, e},
        {SVC "GetJobStatus", HODEI_RPC_UNARY, &hodei__v1__get_job_status_request__descriptor,
         jobs_get, NULL, NULL, e},
        {SVC "CancelJob", HODEI_RPC_UNARY, &hodei__v1__cancel_job_request__descriptor, jobs_cancel,
         NULL, NULL, e},
        {SVC "ListJobs", HODEI_RPC_UNARY, &hodei__v1__list_jobs_request__descriptor, jobs_list,
         NULL, NULL, e},
    };
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}
