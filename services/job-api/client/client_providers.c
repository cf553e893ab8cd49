/* ProviderManagementService: RegisterProvider, ListProviders, GetProviderHealth. */
#include "client_providers.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_audit.h"
#include "edge_auth.h"
#include "hodei/buf.h"
#include "hodei/job_spec.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/provider_config.h"
#include "hodei/util.h"

#define SVC "/hodei.v1.ProviderManagementService/"
#define PROVIDER_CONFIG_JSON_MAX                                                                   \
    ((size_t)PROVIDER_CONFIG_MAX * (PROVIDER_CONFIG_KEY_MAX + 6 * PROVIDER_CONFIG_VALUE_MAX + 8) + \
     8)
#define PROVIDER_NUM_TEXT_MAX 40
#define PROVIDER_HEALTH_MSG_MAX 1024

/* ------------------------------------------------------------------ types */

static const char *const provider_type_names[] = {
    [HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_PROCESS] = "process",
    [HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_DOCKER] = "docker",
    [HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_KUBERNETES] = "kubernetes",
    [HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_FIRECRACKER] = "firecracker",
};
#define PROVIDER_TYPES_LEN (sizeof provider_type_names / sizeof provider_type_names[0])

static const char *provider_type_name(Hodei__V1__ProviderType t)
{
    return (size_t)t < PROVIDER_TYPES_LEN ? provider_type_names[t] : NULL;
}

static Hodei__V1__ProviderType provider_type_parse(const char *s)
{
    for (size_t i = 1; i < PROVIDER_TYPES_LEN; i++)
        if (provider_type_names[i] && strcmp(provider_type_names[i], s) == 0)
            return (Hodei__V1__ProviderType)i;
    return HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_UNSPECIFIED;
}

/* ------------------------------------------------------------- validation */

static bool provider_name_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > PROVIDER_NAME_MAX || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static bool provider_key_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > PROVIDER_CONFIG_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Values may be secret: errors name the entry, never echo the value. */
static hodei_status provider_check_config(const Hodei__V1__Provider *p, hodei_err *err)
{
    if (p->n_config > PROVIDER_CONFIG_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "provider.config: at most %d entries, got %zu",
                             PROVIDER_CONFIG_MAX, p->n_config);
    for (size_t i = 0; i < p->n_config; i++) {
        const char *k = nz(p->config[i]->key), *v = nz(p->config[i]->value);
        if (!provider_key_ok(k))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "provider.config[%zu]: key must match [A-Za-z0-9_.-]{1,%d}", i,
                                 PROVIDER_CONFIG_KEY_MAX);
        if (strlen(v) > PROVIDER_CONFIG_VALUE_MAX || !hodei_utf8_valid(v, strlen(v)))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "provider.config[\"%s\"]: value must be UTF-8 of at most %d bytes",
                                 k, PROVIDER_CONFIG_VALUE_MAX);
        hodei_status st = hodei_provider_config_check(provider_type_name(p->type), k, v, err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}

static hodei_status provider_check_count(const char *field, int64_t v, int64_t max, hodei_err *err)
{
    if (v < 0 || v > max)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider.%s: must be between 0 and %" PRId64 ", got %" PRId64, field,
                             max, v);
    return HODEI_OK;
}

static hodei_status provider_check_pool(const Hodei__V1__Provider *p, hodei_err *err)
{
    hodei_status st =
        provider_check_count("max_workers", p->max_workers, PROVIDER_WORKERS_MAX, err);
    if (st == HODEI_OK)
        st = provider_check_count("warm_pool_min", p->warm_pool_min, PROVIDER_WORKERS_MAX, err);
    if (st == HODEI_OK)
        st = provider_check_count("warm_pool_max", p->warm_pool_max, PROVIDER_WORKERS_MAX, err);
    if (st == HODEI_OK)
        st = provider_check_count("idle_ttl_ms", p->idle_ttl_ms, PROVIDER_IDLE_TTL_MS_MAX, err);
    if (st != HODEI_OK)
        return st;
    if (p->warm_pool_min > p->warm_pool_max)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider.warm_pool_min: must not exceed warm_pool_max (%d > %d)",
                             p->warm_pool_min, p->warm_pool_max);
    if (p->max_workers > 0 && p->warm_pool_max > p->max_workers)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider.warm_pool_max: must not exceed max_workers (%d > %d)",
                             p->warm_pool_max, p->max_workers);
    if (!isfinite(p->cost_per_hour) || p->cost_per_hour < 0 || p->cost_per_hour > PROVIDER_COST_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider.cost_per_hour: must be between 0 and %.0f",
                             PROVIDER_COST_MAX);
    return HODEI_OK;
}

static hodei_status provider_check_capacity(const Hodei__V1__ResourceRequirements *r,
                                            hodei_err *err)
{
    if (!r)
        return HODEI_OK;
    if (!isfinite(r->cpu_cores) || r->cpu_cores < 0 || r->cpu_cores > PROVIDER_CPU_CORES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider.worker_capacity.cpu_cores: must be between 0 and %.0f",
                             PROVIDER_CPU_CORES_MAX);
    hodei_status st = provider_check_count("worker_capacity.memory_bytes", r->memory_bytes,
                                           PROVIDER_BYTES_MAX, err);
    if (st == HODEI_OK)
        st = provider_check_count("worker_capacity.storage_bytes", r->storage_bytes,
                                  PROVIDER_BYTES_MAX, err);
    if (st == HODEI_OK)
        st = provider_check_count("worker_capacity.gpu_count", r->gpu_count, PROVIDER_GPU_MAX, err);
    if (st == HODEI_OK && !hodei_job_arch_valid(nz(r->architecture)))
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "provider.worker_capacity.architecture: must be empty or one of amd64,"
                           " arm64, x86_64, aarch64");
    return st;
}

hodei_status provider_validate(const Hodei__V1__Provider *p, hodei_err *err)
{
    if (!p)
        return hodei_err_set(err, HODEI_ERR_INVALID, "provider: required");
    if (!provider_name_ok(nz(p->name)))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider.name: must match [a-z0-9][a-z0-9-]{0,62}");
    if (p->type == HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_UNSPECIFIED)
        return hodei_err_set(
            err, HODEI_ERR_INVALID,
            "provider.type: required (PROCESS, DOCKER, KUBERNETES or FIRECRACKER)");
    if (!provider_type_name(p->type))
        return hodei_err_set(err, HODEI_ERR_INVALID, "provider.type: unknown value %d", p->type);
    hodei_status st = provider_check_config(p, err);
    if (st == HODEI_OK)
        st = provider_check_pool(p, err);
    if (st == HODEI_OK)
        st = provider_check_capacity(p->worker_capacity, err);
    return st;
}

/* ------------------------------------------------------------- helpers */

/* ------------------------------------------------------------- RegisterProvider */

static bool provider_config_json(const Hodei__V1__Provider *p, hodei_buf *b)
{
    hodei_buf_putc(b, '{');
    for (size_t i = 0; i < p->n_config; i++) {
        if (i)
            hodei_buf_putc(b, ',');
        hodei_buf_json_string(b, nz(p->config[i]->key));
        hodei_buf_putc(b, ':');
        hodei_buf_json_string(b, nz(p->config[i]->value));
    }
    return hodei_buf_putc(b, '}');
}

#define PROVIDER_UPSERT_SQL                                                                        \
    "INSERT INTO providers (name, type, config, max_workers, warm_pool_min, warm_pool_max,"        \
    " idle_ttl_ms, cost_per_hour, enabled, worker_cpu_millis, worker_memory_bytes,"                \
    " worker_storage_bytes, worker_gpu_count, worker_architecture)"                                \
    " VALUES ($1, $2, $3::jsonb, $4::int, $5::int, $6::int, $7::bigint, $8::float8, $9::bool,"     \
    " $10::int, $11::bigint, $12::bigint, $13::int, $14)"                                          \
    " ON CONFLICT (name) DO UPDATE SET type = EXCLUDED.type, config = EXCLUDED.config,"            \
    " max_workers = EXCLUDED.max_workers, warm_pool_min = EXCLUDED.warm_pool_min,"                 \
    " warm_pool_max = EXCLUDED.warm_pool_max, idle_ttl_ms = EXCLUDED.idle_ttl_ms,"                 \
    " cost_per_hour = EXCLUDED.cost_per_hour, enabled = EXCLUDED.enabled,"                         \
    " worker_cpu_millis = EXCLUDED.worker_cpu_millis,"                                             \
    " worker_memory_bytes = EXCLUDED.worker_memory_bytes,"                                         \
    " worker_storage_bytes = EXCLUDED.worker_storage_bytes,"                                       \
    " worker_gpu_count = EXCLUDED.worker_gpu_count,"                                               \
    " worker_architecture = EXCLUDED.worker_architecture, updated_at = now()"                      \
    " WHERE providers.type = EXCLUDED.type OR NOT EXISTS (SELECT 1 FROM workers w"                 \
    " WHERE w.provider = EXCLUDED.name AND w.state <> 'TERMINATED')"

typedef struct {
    char num[9][PROVIDER_NUM_TEXT_MAX];
} provider_nums;

static void provider_nums_fill(const Hodei__V1__Provider *p, provider_nums *n)
{
    const Hodei__V1__ResourceRequirements *r = p->worker_capacity;
    snprintf(n->num[0], PROVIDER_NUM_TEXT_MAX, "%d", p->max_workers);
    snprintf(n->num[1], PROVIDER_NUM_TEXT_MAX, "%d", p->warm_pool_min);
    snprintf(n->num[2], PROVIDER_NUM_TEXT_MAX, "%d", p->warm_pool_max);
    snprintf(n->num[3], PROVIDER_NUM_TEXT_MAX, "%" PRId64, p->idle_ttl_ms);
    snprintf(n->num[4], PROVIDER_NUM_TEXT_MAX, "%.17g", p->cost_per_hour);
    snprintf(n->num[5], PROVIDER_NUM_TEXT_MAX, "%lld", r ? llround(r->cpu_cores * 1000.0) : 0LL);
    snprintf(n->num[6], PROVIDER_NUM_TEXT_MAX, "%" PRId64, r ? r->memory_bytes : 0);
    snprintf(n->num[7], PROVIDER_NUM_TEXT_MAX, "%" PRId64, r ? r->storage_bytes : 0);
    snprintf(n->num[8], PROVIDER_NUM_TEXT_MAX, "%d", r ? r->gpu_count : 0);
}

/* The audit row's summary: the limits, never the config's values (they may
 * hold credentials of the provider's API). */
static hodei_status provider_audit(PGconn *conn, hodei_rpc_call *call, const Hodei__V1__Provider *p,
                                   const provider_nums *n, hodei_err *err)
{
    char detail[512];
    snprintf(detail, sizeof detail,
             "{\"type\":\"%s\",\"max_workers\":%s,\"warm_pool_min\":%s,\"warm_pool_max\":%s,"
             "\"idle_ttl_ms\":%s,\"enabled\":%s,\"config_keys\":%zu}",
             provider_type_name(p->type), n->num[0], n->num[1], n->num[2], n->num[3],
             p->enabled ? "true" : "false", p->n_config);
    return edge_audit(conn, edge_caller(call), "provider.register", "provider", p->name, "", detail,
                      err);
}

static hodei_status provider_upsert_tx(PGconn *conn, hodei_rpc_call *call,
                                       const Hodei__V1__Provider *p, const provider_nums *n,
                                       const char *const *params, hodei_err *err)
{
    PGresult *res = NULL;
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    st = hodei_db_exec(conn, PROVIDER_UPSERT_SQL, 14, params, &res, err);
    if (st == HODEI_OK && strcmp(PQcmdTuples(res), "1") != 0)
        st = hodei_err_set(err, HODEI_ERR_PRECONDITION,
                           "provider.type: provider %s has live workers of another type;"
                           " it cannot change type until they are gone",
                           p->name);
    PQclear(res);
    if (st == HODEI_OK)
        st = provider_audit(conn, call, p, n, err);
    if (st == HODEI_OK)
        return hodei_db_commit(conn, err);
    hodei_db_rollback(conn);
    return st;
}

static hodei_status provider_upsert(edge *e, hodei_rpc_call *call, const Hodei__V1__Provider *p,
                                    hodei_err *err)
{
    hodei_buf json;
    provider_nums n;
    PGconn *conn = NULL;
    hodei_buf_init(&json, PROVIDER_CONFIG_JSON_MAX);
    provider_nums_fill(p, &n);
    hodei_status st = HODEI_ERR_LIMIT;
    if (!provider_config_json(p, &json)) {
        hodei_err_set(err, st, "provider.config: too large");
        goto out;
    }
    const char *arch = p->worker_capacity ? nz(p->worker_capacity->architecture) : "";
    const char *params[14] = {
        p->name,  provider_type_name(p->type), json.data, n.num[0], n.num[1], n.num[2], n.num[3],
        n.num[4], p->enabled ? "t" : "f",      n.num[5],  n.num[6], n.num[7], n.num[8], arch};
    if ((st = edge_db_acquire(e, &conn, err)) != HODEI_OK)
        goto out;
    st = provider_upsert_tx(conn, call, p, &n, params, err);
    edge_db_release(e, conn, st);
out:
    hodei_buf_fini(&json);
    return st;
}

static void rpc_register_provider(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__RegisterProviderRequest *req = (const Hodei__V1__RegisterProviderRequest *)msg;
    hodei_err err = {0};
    hodei_status st = provider_validate(req->provider, &err);
    if (st == HODEI_OK)
        st = provider_upsert(e, call, req->provider, &err);
    if (st != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return;
    }
    HLOG_INFO("provider %s registered (type %s, max_workers %d, enabled %s)", req->provider->name,
              provider_type_name(req->provider->type), req->provider->max_workers,
              req->provider->enabled ? "true" : "false");
    Hodei__V1__RegisterProviderResponse resp = HODEI__V1__REGISTER_PROVIDER_RESPONSE__INIT;
    resp.provider = req->provider;
    hodei_rpc_call_reply(call, &resp.base);
}

/* ------------------------------------------------------------- ListProviders */

/* One row per (provider, config entry); a provider without config has one
 * row with NULL key. */
#define PROVIDER_LIST_SQL                                                                          \
    "SELECT p.name, p.type, p.max_workers, p.warm_pool_min, p.warm_pool_max, p.idle_ttl_ms,"       \
    " p.cost_per_hour, p.enabled, p.worker_cpu_millis, p.worker_memory_bytes,"                     \
    " p.worker_storage_bytes, p.worker_gpu_count, p.worker_architecture, e.key, e.value"           \
    " FROM (SELECT * FROM providers ORDER BY name LIMIT 256) p"                                    \
    " LEFT JOIN LATERAL jsonb_each_text(p.config) e ON true ORDER BY p.name, e.key"

enum {
    PL_NAME = 0,
    PL_TYPE,
    PL_MAX,
    PL_WMIN,
    PL_WMAX,
    PL_TTL,
    PL_COST,
    PL_ENABLED,
    PL_CPU,
    PL_MEM,
    PL_STORAGE,
    PL_GPU,
    PL_ARCH,
    PL_KEY,
    PL_VALUE
};

/* Everything the response points into; strings point into the PGresult. */
typedef struct {
    Hodei__V1__Provider *providers;
    Hodei__V1__Provider **provider_ptrs;
    Hodei__V1__ResourceRequirements *caps;
    Hodei__V1__Provider__ConfigEntry *entries;
    Hodei__V1__Provider__ConfigEntry **entry_ptrs;
    size_t n_providers;
    hodei_arena arena; /* everything above; zeroed = empty */
} provider_list;

static void provider_list_fini(provider_list *l)
{
    hodei_arena_fini(&l->arena);
}

static void provider_row_fill(const PGresult *res, int row, Hodei__V1__Provider *p,
                              Hodei__V1__ResourceRequirements *cap)
{
    hodei__v1__provider__init(p);
    hodei__v1__resource_requirements__init(cap);
    p->name = (char *)hodei_db_get_str(res, row, PL_NAME);
    p->type = provider_type_parse(hodei_db_get_str(res, row, PL_TYPE));
    p->max_workers = (int32_t)hodei_db_get_i64(res, row, PL_MAX);
    p->warm_pool_min = (int32_t)hodei_db_get_i64(res, row, PL_WMIN);
    p->warm_pool_max = (int32_t)hodei_db_get_i64(res, row, PL_WMAX);
    p->idle_ttl_ms = hodei_db_get_i64(res, row, PL_TTL);
    p->cost_per_hour = strtod(hodei_db_get_str(res, row, PL_COST), NULL);
    p->enabled = hodei_db_get_str(res, row, PL_ENABLED)[0] == 't';
    cap->cpu_cores = (double)hodei_db_get_i64(res, row, PL_CPU) / 1000.0;
    cap->memory_bytes = hodei_db_get_i64(res, row, PL_MEM);
    cap->storage_bytes = hodei_db_get_i64(res, row, PL_STORAGE);
    cap->gpu_count = (int32_t)hodei_db_get_i64(res, row, PL_GPU);
    cap->architecture = (char *)hodei_db_get_str(res, row, PL_ARCH);
    p->worker_capacity = cap;
}

static hodei_status provider_list_build(const PGresult *res, provider_list *l, hodei_err *err)
{
    size_t rows = (size_t)PQntuples(res), np = 0, ne = 0;
    hodei_arena_init(&l->arena, 0, EDGE_REPLY_ARENA_MAX);
    l->providers = hodei_arena_calloc(&l->arena, rows + 1, sizeof *l->providers);
    l->provider_ptrs = hodei_arena_calloc(&l->arena, rows + 1, sizeof *l->provider_ptrs);
    l->caps = hodei_arena_calloc(&l->arena, rows + 1, sizeof *l->caps);
    l->entries = hodei_arena_calloc(&l->arena, rows + 1, sizeof *l->entries);
    l->entry_ptrs = hodei_arena_calloc(&l->arena, rows + 1, sizeof *l->entry_ptrs);
    if (!l->providers || !l->provider_ptrs || !l->caps || !l->entries || !l->entry_ptrs)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    for (size_t r = 0; r < rows; r++) {
        const char *name = hodei_db_get_str(res, (int)r, PL_NAME);
        if (np == 0 || strcmp(l->providers[np - 1].name, name) != 0) {
            provider_row_fill(res, (int)r, &l->providers[np], &l->caps[np]);
            l->providers[np].config = &l->entry_ptrs[ne];
            l->provider_ptrs[np] = &l->providers[np];
            np++;
        }
        if (hodei_db_is_null(res, (int)r, PL_KEY))
            continue;
        Hodei__V1__Provider__ConfigEntry *en = &l->entries[ne];
        hodei__v1__provider__config_entry__init(en);
        en->key = (char *)hodei_db_get_str(res, (int)r, PL_KEY);
        en->value = (char *)hodei_db_get_str(res, (int)r, PL_VALUE);
        l->entry_ptrs[ne++] = en;
        l->providers[np - 1].n_config++;
    }
    l->n_providers = np;
    return HODEI_OK;
}

static void rpc_list_providers(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    hodei_err err = {0};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    provider_list l = {0};
    hodei_status st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK)
        goto out;
    st = hodei_db_exec(conn, PROVIDER_LIST_SQL, 0, NULL, &res, &err);
    edge_db_release(e, conn, st);
    if (st == HODEI_OK)
        st = provider_list_build(res, &l, &err);
    if (st == HODEI_OK) {
        Hodei__V1__ListProvidersResponse resp = HODEI__V1__LIST_PROVIDERS_RESPONSE__INIT;
        resp.n_providers = l.n_providers;
        resp.providers = l.provider_ptrs;
        hodei_rpc_call_reply(call, &resp.base);
    }
out:
    if (st != HODEI_OK)
        hodei_rpc_call_fail_err(call, &err);
    provider_list_fini(&l);
    PQclear(res);
}

/* ------------------------------------------------------------- GetProviderHealth */

#define PROVIDER_HEALTH_SQL                                                                        \
    "SELECT p.enabled, h.provider IS NOT NULL, coalesce(h.healthy, false),"                        \
    " coalesce(h.message, ''),"                                                                    \
    " (SELECT count(*) FROM workers w WHERE w.provider = p.name AND w.state <> 'TERMINATED'),"     \
    " coalesce((extract(epoch FROM h.checked_at) * 1000000)::int8, 0)"                             \
    " FROM providers p LEFT JOIN provider_health h ON h.provider = p.name WHERE p.name = $1"

static void provider_health_reply(hodei_rpc_call *call, const char *name, const PGresult *res)
{
    Hodei__V1__GetProviderHealthResponse resp = HODEI__V1__GET_PROVIDER_HEALTH_RESPONSE__INIT;
    Hodei__V1__Timestamp ts;
    char message[PROVIDER_HEALTH_MSG_MAX];
    bool enabled = hodei_db_get_str(res, 0, 0)[0] == 't';
    bool checked = hodei_db_get_str(res, 0, 1)[0] == 't';
    int64_t us = hodei_db_get_i64(res, 0, 5);
    snprintf(message, sizeof message, "%s%s", enabled ? "" : "disabled; ",
             checked ? hodei_db_get_str(res, 0, 3)
                     : "not checked yet: no provisioner has reconciled this provider");
    resp.name = (char *)name;
    resp.healthy = enabled && checked && hodei_db_get_str(res, 0, 2)[0] == 't';
    resp.message = message;
    resp.workers = (int32_t)hodei_db_get_i64(res, 0, 4);
    hodei_pb_time(&ts, us);
    resp.checked_at = checked ? &ts : NULL;
    hodei_rpc_call_reply(call, &resp.base);
}

static void rpc_provider_health(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__GetProviderHealthRequest *req =
        (const Hodei__V1__GetProviderHealthRequest *)msg;
    hodei_err err = {0};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    if (!provider_name_ok(nz(req->name))) {
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT,
                            "name: must match [a-z0-9][a-z0-9-]{0,62}");
        return;
    }
    const char *params[1] = {req->name};
    hodei_status st = edge_db_acquire(e, &conn, &err);
    if (st == HODEI_OK) {
        st = hodei_db_exec(conn, PROVIDER_HEALTH_SQL, 1, params, &res, &err);
        edge_db_release(e, conn, st);
    }
    if (st != HODEI_OK)
        hodei_rpc_call_fail_err(call, &err);
    else if (PQntuples(res) == 0)
        hodei_rpc_call_fail(call, HODEI_GRPC_NOT_FOUND, "provider %s not found", req->name);
    else
        provider_health_reply(call, req->name, res);
    PQclear(res);
}

/* ------------------------------------------------------------- registration */

hodei_status provider_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method methods[] = {
        {SVC "RegisterProvider", HODEI_RPC_UNARY, &hodei__v1__register_provider_request__descriptor,
         rpc_register_provider, NULL, NULL, e},
        {SVC "ListProviders", HODEI_RPC_UNARY, &hodei__v1__list_providers_request__descriptor,
         rpc_list_providers, NULL, NULL, e},
        {SVC "GetProviderHealth", HODEI_RPC_UNARY,
         &hodei__v1__get_provider_health_request__descriptor, rpc_provider_health, NULL, NULL, e},
    };
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}
