/* Pool size per provider:
 * - idle TTL: READY workers idle (idle_since) longer than their provider's
 *   idle_ttl_ms are drained (READY -> DRAINING -> TERMINATING) and
 *   destroy-requested, oldest idle first, while the provider keeps more
 *   than warm_pool_min live workers (CREATING, CONNECTING, READY, BUSY);
 *   idle_ttl_ms = 0 means "never drain";
 * - warm pool: an enabled provider with warm_pool_min > 0 and fewer live
 *   workers of its warm image (config.warm_image, "" = its default worker
 *   image) gets CREATING worker rows of that image (capacity from its
 *   worker_* columns) and one ProvisionRequested each, never above warm_pool_max, nor
 *   max_workers counting every worker not yet TERMINATED. After one of its
 *   workers ended without ever registering (a failed provision), the
 *   provider is left alone for supervisor.warm_pool_retry. The provider row
 *   is locked (SKIP LOCKED) while its workers are counted and inserted. */
#include <inttypes.h>
#include <stdio.h>

#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"
#include "sup_int.h"

#define SUP_IDS_TEXT_MAX ((size_t)SUP_WARM_FILL_MAX * (HODEI_ID_BUF + 3) + 8)

#define SUP_LIVE_STATES "('CREATING', 'CONNECTING', 'READY', 'BUSY')"

/* rank = position among the provider's expired idle workers, oldest first;
 * only the first (live - warm_pool_min) of them go. */
#define SUP_IDLE_SQL_(ONE, LOCK)                                                                   \
    "WITH live AS (SELECT provider, count(*) AS n FROM workers"                                    \
    "  WHERE state IN " SUP_LIVE_STATES " GROUP BY provider),"                                     \
    " idle AS (SELECT w.id, p.idle_ttl_ms, p.warm_pool_min, l.n AS live,"                          \
    "  row_number() OVER (PARTITION BY w.provider ORDER BY w.idle_since, w.id) AS rank"            \
    "  FROM workers w JOIN providers p ON p.name = w.provider"                                     \
    "  JOIN live l ON l.provider = w.provider"                                                     \
    "  WHERE w.state = 'READY' AND p.idle_ttl_ms > 0"                                              \
    "  AND w.idle_since < now() - p.idle_ttl_ms * interval '1 millisecond')"                       \
    " SELECT w.id::text, w.provider, (extract(epoch FROM now() - w.idle_since) * 1000)::int8,"     \
    " i.idle_ttl_ms, i.live, i.warm_pool_min"                                                      \
    " FROM workers w JOIN idle i ON i.id = w.id"                                                   \
    " WHERE w.state = 'READY' AND i.rank <= i.live - i.warm_pool_min" ONE                          \
    " ORDER BY w.idle_since LIMIT $1" LOCK
#define SUP_IDLE_SQL SUP_IDLE_SQL_("", "")
#define SUP_IDLE_ONE_SQL SUP_IDLE_SQL_(" AND w.id = $2::uuid", " FOR UPDATE OF w SKIP LOCKED")
enum {
    SUP_IDLE_ID = 0,
    SUP_IDLE_PROVIDER,
    SUP_IDLE_MS,
    SUP_IDLE_TTL_MS,
    SUP_IDLE_LIVE,
    SUP_IDLE_WARM_MIN
};

/* Candidates: providers that seem to lack workers and may have more. Their
 * rows are locked, then counted again in a new statement (a fresh snapshot
 * that sees what a previous holder of the lock, e.g. the scheduler adding
 * workers for unmet jobs, committed meanwhile). */
#define SUP_WARM_IMAGE "coalesce(p.config->>'warm_image', '')"
#define SUP_POOL_COUNTS                                                                            \
    "SELECT count(*) FILTER (WHERE w.state IN " SUP_LIVE_STATES "   AND w.image = " SUP_WARM_IMAGE \
    ") AS live,"                                                                                   \
    "  count(*) FILTER (WHERE w.state <> 'TERMINATED') AS existing"                                \
    "  FROM workers w WHERE w.provider = p.name"
#define SUP_POOL_FAILING                                                                           \
    "EXISTS (SELECT 1 FROM workers f WHERE f.provider = p.name"                                    \
    "  AND f.state IN ('TERMINATING', 'TERMINATED', 'LOST')"                                       \
    "  AND f.session_token_hash IS NULL AND f.last_heartbeat_at IS NULL"                           \
    "  AND f.updated_at > now() - $1::bigint * interval '1 millisecond')"
#define SUP_POOLS_SQL                                                                              \
    "SELECT p.name FROM providers p, LATERAL (" SUP_POOL_COUNTS ") c"                              \
    " WHERE p.enabled AND p.warm_pool_min > 0 AND c.live < p.warm_pool_min"                        \
    " AND (p.max_workers = 0 OR c.existing < p.max_workers)"                                       \
    " AND NOT " SUP_POOL_FAILING " ORDER BY p.name LIMIT $2 FOR UPDATE OF p SKIP LOCKED"
#define SUP_POOL_SQL                                                                               \
    "SELECT p.name, p.warm_pool_min, p.warm_pool_max, p.max_workers,"                              \
    " p.worker_cpu_millis, p.worker_memory_bytes, p.worker_storage_bytes,"                         \
    " p.worker_gpu_count, p.worker_architecture, c.live, c.existing, " SUP_POOL_FAILING            \
    " FROM providers p, LATERAL (" SUP_POOL_COUNTS ") c WHERE p.name = $2"
enum {
    SUP_POOL_NAME = 0,
    SUP_POOL_MIN,
    SUP_POOL_MAX,
    SUP_POOL_MAX_WORKERS,
    SUP_POOL_CPU,
    SUP_POOL_MEMORY,
    SUP_POOL_STORAGE,
    SUP_POOL_GPU,
    SUP_POOL_ARCH,
    SUP_POOL_LIVE,
    SUP_POOL_EXISTING,
    SUP_POOL_IS_FAILING
};

#define SUP_POOL_INSERT_SQL                                                                        \
    "INSERT INTO workers (id, provider, state, cpu_millis, memory_bytes, storage_bytes,"           \
    " gpu_count, architecture, image)"                                                             \
    " SELECT unnest($1::uuid[]), name, 'CREATING', worker_cpu_millis, worker_memory_bytes,"        \
    " worker_storage_bytes, worker_gpu_count, worker_architecture, " SUP_WARM_IMAGE                \
    " FROM providers p WHERE name = $2"

/* ---- idle TTL ---- */

static hodei_status sup_idle_one(sup *s, const PGresult *res, int row, hodei_err *err)
{
    const char *worker_id = hodei_db_get_str(res, row, SUP_IDLE_ID);
    const char *provider = hodei_db_get_str(res, row, SUP_IDLE_PROVIDER);

    hodei_status st = hodei_store_worker_transition(
        s->conn, worker_id, HODEI_WSET_READY, HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING, err);
    if (st == HODEI_OK)
        st = hodei_store_worker_retire(s->conn, worker_id, HODEI_WSET_DRAINING,
                                       HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING,
                                       "idle ttl", err);
    if (st == HODEI_OK)
        sup_note(s,
                 "idle ttl: worker=%s provider=%s idle_ms=%" PRId64 " idle_ttl_ms=%" PRId64
                 " live=%" PRId64 " warm_pool_min=%" PRId64
                 " -> DRAINING -> TERMINATING, destroy requested",
                 worker_id, provider, hodei_db_get_i64(res, row, SUP_IDLE_MS),
                 hodei_db_get_i64(res, row, SUP_IDLE_TTL_MS),
                 hodei_db_get_i64(res, row, SUP_IDLE_LIVE),
                 hodei_db_get_i64(res, row, SUP_IDLE_WARM_MIN));
    return st;
}

hodei_status sup_check_idle(sup *s, int *n_out, hodei_err *err)
{
    return sup_judge_each(s, "idle worker", SUP_IDLE_SQL, SUP_IDLE_ONE_SQL, NULL, sup_idle_one,
                          n_out, err);
}

/* ---- warm pool ---- */

static int64_t sup_min_i64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* How many workers the provider's pool lacks, within every bound. */
static int64_t sup_pool_need(const PGresult *res, int row)
{
    int64_t live = hodei_db_get_i64(res, row, SUP_POOL_LIVE);
    int64_t pool_max = hodei_db_get_i64(res, row, SUP_POOL_MAX);
    int64_t max_workers = hodei_db_get_i64(res, row, SUP_POOL_MAX_WORKERS);
    int64_t need = hodei_db_get_i64(res, row, SUP_POOL_MIN) - live;

    if (hodei_db_get_str(res, row, SUP_POOL_IS_FAILING)[0] == 't')
        return 0;
    if (pool_max > 0)
        need = sup_min_i64(need, pool_max - live);
    if (max_workers > 0)
        need = sup_min_i64(need, max_workers - hodei_db_get_i64(res, row, SUP_POOL_EXISTING));
    return need > 0 ? sup_min_i64(need, SUP_WARM_FILL_MAX) : 0;
}

static hodei_status sup_provision_request(sup *s, const PGresult *res, int row,
                                          const char *worker_id, hodei_err *err)
{
    const hodei_fit_resources tmpl = {
        .cpu_millis = hodei_db_get_i64(res, row, SUP_POOL_CPU),
        .memory_bytes = hodei_db_get_i64(res, row, SUP_POOL_MEMORY),
        .storage_bytes = hodei_db_get_i64(res, row, SUP_POOL_STORAGE),
        .gpu_count = hodei_db_get_i64(res, row, SUP_POOL_GPU),
        .architecture = hodei_db_get_str(res, row, SUP_POOL_ARCH),
    };
    return hodei_event_provision_requested(HODEI_OUTBOX_WRITE(s->conn), worker_id,
                                           hodei_db_get_str(res, row, SUP_POOL_NAME), &tmpl, err);
}

static hodei_status sup_pool_insert(sup *s, const char *provider, char ids[][HODEI_ID_BUF],
                                    int64_t n, hodei_err *err)
{
    hodei_buf arr;
    hodei_status st = HODEI_OK;

    hodei_buf_init(&arr, SUP_IDS_TEXT_MAX);
    hodei_sqlarr_begin(&arr);
    for (int64_t i = 0; i < n; i++) {
        hodei_id_new(ids[i]);
        hodei_sqlarr_str(&arr, ids[i]);
    }
    if (!hodei_sqlarr_end(&arr)) {
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "warm pool: ids longer than %zu bytes",
                           (size_t)SUP_IDS_TEXT_MAX);
        goto out_free;
    }
    const char *params[] = {arr.data, provider};
    st = hodei_db_exec(s->conn, SUP_POOL_INSERT_SQL, 2, params, NULL, err);
out_free:
    hodei_buf_fini(&arr);
    return st;
}

static hodei_status sup_pool_add(sup *s, const PGresult *res, hodei_err *err)
{
    char ids[SUP_WARM_FILL_MAX][HODEI_ID_BUF];
    const char *provider = hodei_db_get_str(res, 0, SUP_POOL_NAME);
    int64_t need = sup_pool_need(res, 0);

    if (need == 0)
        return HODEI_OK;
    hodei_status st = sup_pool_insert(s, provider, ids, need, err);
    for (int64_t i = 0; st == HODEI_OK && i < need; i++) {
        st = sup_provision_request(s, res, 0, ids[i], err);
        if (st == HODEI_OK)
            sup_note(s,
                     "warm pool: worker=%s provider=%s live=%" PRId64 " warm_pool_min=%" PRId64
                     " -> CREATING, provision requested",
                     ids[i], provider, hodei_db_get_i64(res, 0, SUP_POOL_LIVE) + i,
                     hodei_db_get_i64(res, 0, SUP_POOL_MIN));
    }
    return st;
}

/* One locked candidate: counted afresh, then filled. */
static hodei_status sup_pool_fill(sup *s, const PGresult *cands, int row, hodei_err *err)
{
    char retry[SUP_INT_TEXT_MAX];
    const char *params[] = {retry, hodei_db_get_str(cands, row, SUP_ROW_NAME)};
    PGresult *res = NULL;

    sup_i64_text(s->cfg->warm_pool_retry_ms, retry);
    hodei_status st = hodei_db_exec(s->conn, SUP_POOL_SQL, 2, params, &res, err);
    if (st == HODEI_OK && PQntuples(res) == 1)
        st = sup_pool_add(s, res, err);
    PQclear(res);
    return st;
}

hodei_status sup_check_warm_pool(sup *s, int *n_out, hodei_err *err)
{
    char setting[SUP_INT_TEXT_MAX];

    sup_i64_text(s->cfg->warm_pool_retry_ms, setting);
    return sup_select_each(s, "warm pool of", SUP_POOLS_SQL, setting, sup_pool_fill, n_out, err);
}
