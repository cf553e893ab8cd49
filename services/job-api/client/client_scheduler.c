/* SchedulerService: ScheduleJob, GetAvailableWorkers, ConfigureScheduler.
 * The edge decides nothing here: it wakes the schedulers through the outbox,
 * reads the registry, and stores the strategy they read on every pass. */
#include "client_scheduler.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_audit.h"
#include "edge_auth.h"
#include "hodei/bus.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/sched_strategy.h"
#include "hodei/store.h"
#include "hodei/util.h"
#include "hodei/v1/events.pb-c.h"
#include "hodei/v1/scheduler.pb-c.h"

#define SVC "/hodei.v1.SchedulerService/"
#define SCHED_RPC_WORKERS_MAX 10000 /* GetAvailableWorkers answers at most this many */
#define SCHED_RPC_PROVIDER_MAX 63   /* as providers.name allows */
#define SCHED_RPC_INT_TEXT_MAX 24
#define MILLIS_PER_CORE 1000.0

/* -------------------------------------------------------------- ScheduleJob */

/* A pending job gets a JobQueued event: the schedulers' wake-up. */
static hodei_status srpc_schedule_tx(PGconn *conn, const hodei_identity *who, const char *id,
                                     hodei_job_view *j, hodei_err *err)
{
    char nsbuf[EDGE_NS_FILTER_BUF];
    const char *params[2] = {id, edge_ns_filter(who, nsbuf, sizeof nsbuf)};
    PGresult *res = NULL;
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    st = hodei_db_exec(conn,
                       "SELECT 1 FROM jobs WHERE id = $1"
                       " AND ($2::text[] IS NULL OR namespace = ANY($2::text[]))",
                       2, params, &res, err);
    if (st == HODEI_OK && PQntuples(res) == 0) /* as for a job that does not exist */
        st = hodei_err_set(err, HODEI_ERR_NOT_FOUND, "job %s not found", id);
    PQclear(res);
    if (st != HODEI_OK)
        goto out_rollback;
    if ((st = hodei_store_job_read(conn, id, false, j, err)) != HODEI_OK)
        goto out_rollback;
    if (j->state == HODEI__V1__JOB_STATE__JOB_STATE_PENDING &&
        (st = hodei_event_job_queued(HODEI_OUTBOX_WRITE(conn), id, j->priority, j->provider,
                                     err)) != HODEI_OK)
        goto out_rollback;
    return hodei_db_commit(conn, err);
out_rollback:
    hodei_db_rollback(conn);
    return st;
}

static void srpc_schedule(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__ScheduleJobRequest *req = (const Hodei__V1__ScheduleJobRequest *)msg;
    Hodei__V1__ScheduleJobResponse resp = HODEI__V1__SCHEDULE_JOB_RESPONSE__INIT;
    hodei_err err;
    PGconn *conn = NULL;
    hodei_job_view j;
    hodei_status st;

    if ((st = hodei_id_check("job_id", req->job_id, "a job id", &err)) != HODEI_OK ||
        (st = edge_db_acquire(e, &conn, &err)) != HODEI_OK)
        goto fail;
    st = srpc_schedule_tx(conn, edge_caller(call), req->job_id, &j, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    resp.job_id = req->job_id;
    resp.state = j.state;
    resp.worker_id = j.worker_id;
    hodei_rpc_call_reply(call, &resp.base);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ------------------------------------------------------ GetAvailableWorkers */

static const char workers_sql[] =
    "SELECT w.id::text, w.provider, w.cpu_millis, w.memory_bytes, w.storage_bytes, w.gpu_count,"
    "       w.architecture, coalesce(w.current_job_id::text, ''),"
    "       coalesce((extract(epoch FROM w.last_heartbeat_at) * 1000000)::bigint, 0),"
    "       (extract(epoch FROM w.created_at) * 1000000)::bigint, w.hostname, l.key, l.value"
    "  FROM (SELECT * FROM workers WHERE state = 'READY'"
    "          AND ($1::text IS NULL OR provider = $1) ORDER BY id LIMIT $2::int) w"
    "  LEFT JOIN LATERAL jsonb_each_text(CASE WHEN jsonb_typeof(w.labels) = 'object'"
    "                                    THEN w.labels ELSE '{}' END) l ON true"
    " ORDER BY w.id, l.key";

enum {
    C_ID,
    C_PROVIDER,
    C_CPU,
    C_MEM,
    C_STORAGE,
    C_GPU,
    C_ARCH,
    C_JOB,
    C_HEARTBEAT,
    C_CREATED,
    C_HOST,
    C_KEY,
    C_VALUE
};

/* The response's memory: one slot per result row is always enough. */
typedef struct {
    Hodei__V1__Worker *workers;
    Hodei__V1__Worker **worker_ptrs;
    Hodei__V1__ResourceRequirements *caps;
    Hodei__V1__Timestamp *times; /* 2 per worker */
    Hodei__V1__Worker__LabelsEntry *labels;
    Hodei__V1__Worker__LabelsEntry **label_ptrs;
    size_t n_workers, n_labels;
    hodei_arena arena; /* everything above */
} srpc_workers;

static bool srpc_workers_alloc(srpc_workers *w, size_t rows)
{
    size_t n = rows ? rows : 1;
    memset(w, 0, sizeof *w);
    hodei_arena_init(&w->arena, 0, EDGE_REPLY_ARENA_MAX);
    w->workers = hodei_arena_calloc(&w->arena, n, sizeof *w->workers);
    w->worker_ptrs = hodei_arena_calloc(&w->arena, n, sizeof *w->worker_ptrs);
    w->caps = hodei_arena_calloc(&w->arena, n, sizeof *w->caps);
    w->times = hodei_arena_calloc(&w->arena, 2 * n, sizeof *w->times);
    w->labels = hodei_arena_calloc(&w->arena, n, sizeof *w->labels);
    w->label_ptrs = hodei_arena_calloc(&w->arena, n, sizeof *w->label_ptrs);
    return w->workers && w->worker_ptrs && w->caps && w->times && w->labels && w->label_ptrs;
}

static void srpc_workers_free(srpc_workers *w)
{
    hodei_arena_fini(&w->arena);
}

static Hodei__V1__Worker *srpc_worker_start(srpc_workers *w, const PGresult *res, int r)
{
    size_t i = w->n_workers++;
    Hodei__V1__Worker *wk = &w->workers[i];
    Hodei__V1__ResourceRequirements *cap = &w->caps[i];

    *wk = (Hodei__V1__Worker)HODEI__V1__WORKER__INIT;
    *cap = (Hodei__V1__ResourceRequirements)HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    cap->cpu_cores = (double)hodei_db_get_i64(res, r, C_CPU) / MILLIS_PER_CORE;
    cap->memory_bytes = hodei_db_get_i64(res, r, C_MEM);
    cap->storage_bytes = hodei_db_get_i64(res, r, C_STORAGE);
    cap->gpu_count = (int32_t)hodei_db_get_i64(res, r, C_GPU);
    cap->architecture = (char *)hodei_db_get_str(res, r, C_ARCH);
    wk->id = (char *)hodei_db_get_str(res, r, C_ID);
    wk->provider = (char *)hodei_db_get_str(res, r, C_PROVIDER);
    wk->state = HODEI__V1__WORKER_STATE__WORKER_STATE_READY;
    wk->capacity = cap;
    wk->current_job_id = (char *)hodei_db_get_str(res, r, C_JOB);
    wk->hostname = (char *)hodei_db_get_str(res, r, C_HOST);
    hodei_pb_time(&w->times[2 * i], hodei_db_get_i64(res, r, C_HEARTBEAT));
    hodei_pb_time(&w->times[2 * i + 1], hodei_db_get_i64(res, r, C_CREATED));
    wk->last_heartbeat = &w->times[2 * i];
    wk->created_at = &w->times[2 * i + 1];
    wk->labels = &w->label_ptrs[w->n_labels];
    w->worker_ptrs[i] = wk;
    return wk;
}

/* Rows come ordered by worker: one per label, or one with NULL label. */
static void srpc_workers_fill(srpc_workers *w, const PGresult *res)
{
    Hodei__V1__Worker *cur = NULL;
    for (int r = 0; r < PQntuples(res); r++) {
        if (!cur || strcmp(cur->id, hodei_db_get_str(res, r, C_ID)) != 0)
            cur = srpc_worker_start(w, res, r);
        if (hodei_db_is_null(res, r, C_KEY))
            continue;
        Hodei__V1__Worker__LabelsEntry *l = &w->labels[w->n_labels];
        *l = (Hodei__V1__Worker__LabelsEntry)HODEI__V1__WORKER__LABELS_ENTRY__INIT;
        l->key = (char *)hodei_db_get_str(res, r, C_KEY);
        l->value = (char *)hodei_db_get_str(res, r, C_VALUE);
        w->label_ptrs[w->n_labels++] = l;
        cur->n_labels++;
    }
}

static hodei_status srpc_check_provider(const char *p, hodei_err *err)
{
    size_t n = strlen(p);
    bool ok = n > 0 && n <= SCHED_RPC_PROVIDER_MAX && p[0] != '-';
    for (size_t i = 0; ok && i < n; i++)
        ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '-';
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider: must be a provider name (lower-case letters, digits and"
                             " '-', not starting with '-', at most %d bytes), or empty for all",
                             SCHED_RPC_PROVIDER_MAX);
    return HODEI_OK;
}

static void srpc_workers_reply(hodei_rpc_call *call, const PGresult *res)
{
    srpc_workers w;
    Hodei__V1__GetAvailableWorkersResponse resp = HODEI__V1__GET_AVAILABLE_WORKERS_RESPONSE__INIT;

    if (!srpc_workers_alloc(&w, (size_t)PQntuples(res))) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    srpc_workers_fill(&w, res);
    resp.n_workers = w.n_workers;
    resp.workers = w.worker_ptrs;
    hodei_rpc_call_reply(call, &resp.base);
out:
    srpc_workers_free(&w);
}

static void srpc_workers_get(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__GetAvailableWorkersRequest *req =
        (const Hodei__V1__GetAvailableWorkersRequest *)msg;
    const char *provider = req->provider && req->provider[0] ? req->provider : NULL;
    char limit[SCHED_RPC_INT_TEXT_MAX];
    hodei_err err;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = provider ? srpc_check_provider(provider, &err) : HODEI_OK;

    if (st != HODEI_OK)
        goto fail;
    if ((st = edge_db_acquire(e, &conn, &err)) != HODEI_OK)
        goto fail;
    snprintf(limit, sizeof limit, "%d", SCHED_RPC_WORKERS_MAX);
    const char *params[2] = {provider, limit};
    st = hodei_db_exec(conn, workers_sql, 2, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    srpc_workers_reply(call, res);
    PQclear(res);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

/* ------------------------------------------------------- ConfigureScheduler */

static void srpc_configure(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__ConfigureSchedulerRequest *req =
        (const Hodei__V1__ConfigureSchedulerRequest *)msg;
    Hodei__V1__ConfigureSchedulerResponse resp = HODEI__V1__CONFIGURE_SCHEDULER_RESPONSE__INIT;
    const char *name = hodei_sched_strategy_name(req->strategy);
    hodei_err err;
    PGconn *conn = NULL;
    hodei_status st;

    if (!name) {
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT,
                            "strategy: must be ROUND_ROBIN, LEAST_LOADED, PRIORITY, RESOURCE_AWARE"
                            " or COST_OPTIMIZED (got %d)",
                            (int)req->strategy);
        return;
    }
    if ((st = edge_db_acquire(e, &conn, &err)) != HODEI_OK)
        goto fail;
    edge_actor a;
    edge_actor_of(edge_caller(call), &a);
    const char *params[4] = {name, a.actor, a.actor_id, a.peer};
    st = hodei_db_exec(conn,
                       "WITH s AS (INSERT INTO scheduler_settings (id, strategy) VALUES (true, $1)"
                       " ON CONFLICT (id) DO UPDATE SET strategy = EXCLUDED.strategy,"
                       " updated_at = now() RETURNING strategy)"
                       " " EDGE_AUDIT_INSERT " SELECT $2, $3, $4, '', 'scheduler.configure',"
                       " 'scheduler', 'strategy', jsonb_build_object('strategy', strategy) FROM s",
                       4, params, NULL, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        goto fail;
    HLOG_INFO("scheduling strategy set to %s", name);
    resp.strategy = req->strategy;
    hodei_rpc_call_reply(call, &resp.base);
    return;
fail:
    hodei_rpc_call_fail_err(call, &err);
}

hodei_status scheduler_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method methods[] = {
        {SVC "ScheduleJob", HODEI_RPC_UNARY, &hodei__v1__schedule_job_request__descriptor,
         srpc_schedule, NULL, NULL, e},
        {SVC "GetAvailableWorkers", HODEI_RPC_UNARY,
         &hodei__v1__get_available_workers_request__descriptor, srpc_workers_get, NULL, NULL, e},
        {SVC "ConfigureScheduler", HODEI_RPC_UNARY,
         &hodei__v1__configure_scheduler_request__descriptor, srpc_configure, NULL, NULL, e},
    };
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}
