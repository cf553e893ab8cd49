/* Caps on a provider's settings (hodei/limits.h), against the whole product:
 * - RegisterProvider, over gRPC and over the REST door (POST /v1/providers):
 *   each cap at exactly its value is stored; one past it is refused
 *   INVALID_ARGUMENT (HTTP 400) naming the field and the maximum, and
 *   nothing changes in the database (the row as it was, absent for a new
 *   name, no audit row);
 * - the providers table's CHECKs (migration 0026) agree: a row written by
 *   hand at each cap is stored, one past it is refused;
 * - a process provider whose warm pool is at its maximum
 *   (warm_pool_min = warm_pool_max = max_workers) gets exactly that many
 *   workers, READY, and never more, counted as rows and as live processes
 *   over many supervisor ticks, also with max_workers and warm_pool_max at
 *   their caps, and with more jobs queued than it may have workers;
 * - meanwhile refused calls leave the workers READY, another client's jobs
 *   run, and the edge's RSS stays bounded. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cluster.h"
#include "hodei/limits.h"
#include "hodei/pbjson.h"
#include "hodei/time.h"
#include "hodei/v1/provider.pb-c.h"

#define MSG_MAX 1024
#define HTTP_MAX 8192
#define ROW_MAX 16384
#define CONFIG_ENTRIES_PAST (PROVIDER_T_CONFIG_MAX + 1)
#define PROVIDER_T_CONFIG_MAX 64 /* the edge's PROVIDER_CONFIG_MAX */
#define CONFIG_KEY_MAX 128       /* PROVIDER_CONFIG_KEY_MAX */
#define CONFIG_VALUE_MAX 4096    /* PROVIDER_CONFIG_VALUE_MAX */
#define POOL 3
#define WATCH_MS 6000 /* a dozen supervisor ticks */
#define JOB_WAIT_MS 180000
#define RSS_CALLS 200
/* Generous, for an ASan build: what is checked is that 200 refused calls
 * of about 250 KB each (50 MB) are not kept. */
#define RSS_GROWTH_KB (48 * 1024)

static cluster cl;
static int http_port;
static char http_env[64];
static char asan_env[1024];

static void setup(void)
{
    http_port = harness_free_port();
    snprintf(http_env, sizeof http_env, "HODEI_HTTP_LISTEN=127.0.0.1:%d", http_port);
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(asan_env, sizeof asan_env, "ASAN_OPTIONS=%s%squarantine_size_mb=4", asan ? asan : "",
             asan && *asan ? ":" : "");
    static const char *env[4];
    env[0] = http_env;
    env[1] = asan_env;
    env[2] = "HODEI_SUPERVISOR_TICK_INTERVAL=500ms";
    env[3] = NULL;
    cluster_start(&cl, env);
}

static void teardown(void)
{
    cluster_stop(&cl);
}

/* ------------------------------------------------------------ a provider */

typedef struct {
    Hodei__V1__Provider p;
    Hodei__V1__ResourceRequirements cap;
    Hodei__V1__Provider__ConfigEntry entries[CONFIG_ENTRIES_PAST];
    Hodei__V1__Provider__ConfigEntry *ptrs[CONFIG_ENTRIES_PAST];
    char keys[CONFIG_ENTRIES_PAST][CONFIG_KEY_MAX + 2];
    char value[CONFIG_VALUE_MAX + 2];
    char name[HODEI_PROVIDER_NAME_MAX + 2];
} t_prov;

/* A disabled process provider (the supervisor keeps no pool of it). */
static void t_prov_init(t_prov *t, const char *name)
{
    memset(t, 0, sizeof *t);
    hodei__v1__provider__init(&t->p);
    hodei__v1__resource_requirements__init(&t->cap);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->p.name = t->name;
    t->p.type = HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_PROCESS;
    t->p.idle_ttl_ms = 60000;
    t->p.enabled = false;
    t->p.worker_capacity = &t->cap;
}

static void t_prov_config(t_prov *t, size_t n, size_t key_len, size_t value_len)
{
    memset(t->value, 'v', value_len);
    t->value[value_len] = '\0';
    for (size_t i = 0; i < n; i++) {
        hodei__v1__provider__config_entry__init(&t->entries[i]);
        if (key_len > 0) {
            memset(t->keys[i], 'k', key_len);
            t->keys[i][key_len] = '\0';
        } else {
            snprintf(t->keys[i], sizeof t->keys[i], "key%03zu", i);
        }
        t->entries[i].key = t->keys[i];
        t->entries[i].value = t->value;
        t->ptrs[i] = &t->entries[i];
    }
    t->p.n_config = n;
    t->p.config = t->ptrs;
}

/* One cap: the field as errors name it, the maximum as they print it, and
 * how to set the provider at it (past = false) or one past it. */
typedef struct {
    const char *field;
    const char *max_text;
    int which;
} t_cap;

static const t_cap caps[] = {
    {"provider.max_workers", "10000", 0},
    {"provider.warm_pool_min", "10000", 1},
    {"provider.warm_pool_max", "10000", 2},
    {"provider.idle_ttl_ms", "604800000", 3},
    {"provider.cost_per_hour", "1000000", 4},
    {"provider.worker_capacity.cpu_cores", "1024", 5},
    {"provider.worker_capacity.memory_bytes", "1125899906842624", 6},
    {"provider.worker_capacity.storage_bytes", "1125899906842624", 7},
    {"provider.worker_capacity.gpu_count", "64", 8},
    {"provider.name", "{0,62}", 9},
    {"provider.config", "at most 64 entries", 10},
    {"provider.config[0]", "{1,128}", 11},
    {"provider.config[\"key000\"]", "at most 4096 bytes", 12},
};
#define CAPS_LEN (sizeof caps / sizeof caps[0])

static void t_cap_set(t_prov *t, int which, bool past)
{
    int64_t d = past ? 1 : 0;
    switch (which) {
    case 0:
        t->p.max_workers = (int32_t)(HODEI_PROVIDER_WORKERS_MAX + d);
        break;
    case 1: /* the pool's maximum and max_workers (0: no limit) allow it */
        t->p.warm_pool_min = (int32_t)(HODEI_PROVIDER_WORKERS_MAX + d);
        t->p.warm_pool_max = t->p.warm_pool_min;
        break;
    case 2:
        t->p.warm_pool_max = (int32_t)(HODEI_PROVIDER_WORKERS_MAX + d);
        break;
    case 3:
        t->p.idle_ttl_ms = HODEI_PROVIDER_IDLE_TTL_MS_MAX + d;
        break;
    case 4:
        t->p.cost_per_hour = past ? nextafter((double)HODEI_PROVIDER_COST_MAX, INFINITY)
                                  : (double)HODEI_PROVIDER_COST_MAX;
        break;
    case 5:
        t->cap.cpu_cores =
            past ? nextafter((double)HODEI_CPU_CORES_MAX, INFINITY) : (double)HODEI_CPU_CORES_MAX;
        break;
    case 6:
        t->cap.memory_bytes = HODEI_RESOURCE_BYTES_MAX + d;
        break;
    case 7:
        t->cap.storage_bytes = HODEI_RESOURCE_BYTES_MAX + d;
        break;
    case 8:
        t->cap.gpu_count = (int32_t)(HODEI_GPU_COUNT_MAX + d);
        break;
    case 9: { /* keeps the prefix "cap": the rows are found by it */
        size_t len = (size_t)(HODEI_PROVIDER_NAME_MAX + d);
        memset(t->name + 3, 'n', len - 3);
        t->name[len] = '\0';
        break;
    }
    case 10:
        t_prov_config(t, (size_t)(PROVIDER_T_CONFIG_MAX + d), 0, 1);
        break;
    case 11:
        t_prov_config(t, 1, (size_t)(CONFIG_KEY_MAX + d), 1);
        break;
    case 12:
        t_prov_config(t, 1, 0, (size_t)(CONFIG_VALUE_MAX + d));
        break;
    default:
        cr_assert(false, "no cap %d", which);
    }
}

/* ------------------------------------------------------------ the doors */

static hodei_grpc_code t_register(const Hodei__V1__Provider *p, char *msg, size_t msg_len)
{
    Hodei__V1__RegisterProviderRequest req = HODEI__V1__REGISTER_PROVIDER_REQUEST__INIT;
    req.provider = (Hodei__V1__Provider *)p;
    return edge_call_path(&cl.edge, "/hodei.v1.ProviderManagementService/RegisterProvider",
                          &req.base, &hodei__v1__register_provider_response__descriptor, NULL, msg,
                          msg_len);
}

/* POST path with a JSON body and the stack's admin key; the status, the
 * body in out. */
static int t_rest_post(const char *path, const char *body, char *out, size_t out_len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "REST door on %d", http_port);
    char head[512];
    size_t len = strlen(body);
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     path, cl.stack.api_key, len);
    cr_assert_eq(write(fd, head, (size_t)n), n);
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, body + off, len - off);
        cr_assert(w > 0, "request body written");
        off += (size_t)w;
    }
    char *resp = malloc(HTTP_MAX);
    size_t got = 0;
    for (ssize_t r; got + 1 < HTTP_MAX && (r = read(fd, resp + got, HTTP_MAX - 1 - got)) > 0;)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    int code = -1;
    cr_assert_eq(sscanf(resp, "HTTP/1.%*d %d", &code), 1, "an HTTP answer: %s", resp);
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(out, out_len, "%s", b ? b + 4 : "");
    free(resp);
    return code;
}

static int t_rest_register(const Hodei__V1__Provider *p, char *out, size_t out_len)
{
    Hodei__V1__RegisterProviderRequest req = HODEI__V1__REGISTER_PROVIDER_REQUEST__INIT;
    req.provider = (Hodei__V1__Provider *)p;
    char *json = hodei_pbjson_encode_text(&req.base);
    cr_assert_not_null(json);
    int code = t_rest_post("/v1/providers", json, out, out_len);
    free(json);
    return code;
}

/* ------------------------------------------------------------ the database */

static PGconn *g_db;

static void t_db_open(void)
{
    g_db = PQconnectdb(cl.stack.db_url);
    cr_assert_eq(PQstatus(g_db), CONNECTION_OK, "%s", PQerrorMessage(g_db));
}

/* The row of every provider whose name starts with "cap", as text (with
 * updated_at: an upsert changes it), and the audit rows of registrations. */
static void t_snapshot(char *out, size_t out_len)
{
    PGresult *r = PQexec(g_db, "SELECT coalesce(string_agg(p::text, '|' ORDER BY name), '')"
                               " || '#' || (SELECT count(*) FROM audit_log"
                               " WHERE action = 'provider.register')"
                               " FROM providers p WHERE name LIKE 'cap%'");
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s", PQerrorMessage(g_db));
    snprintf(out, out_len, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
}

static int64_t t_i64(const char *sql)
{
    PGresult *r = PQexec(g_db, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(g_db));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* ------------------------------------------------------------ the test: every cap, both doors */

static void t_cap_at(const t_cap *c, bool rest)
{
    t_prov t;
    char msg[MSG_MAX], before[ROW_MAX], after[ROW_MAX];
    t_prov_init(&t, "cap");
    t_cap_set(&t, c->which, false);
    t_snapshot(before, sizeof before);
    if (rest) {
        int code = t_rest_register(&t.p, msg, sizeof msg);
        cr_assert_eq(code, 200, "%s at its cap over REST: %d %s", c->field, code, msg);
    } else {
        hodei_grpc_code code = t_register(&t.p, msg, sizeof msg);
        cr_assert_eq(code, HODEI_GRPC_OK, "%s at its cap: %d %s", c->field, code, msg);
    }
    t_snapshot(after, sizeof after);
    cr_assert(strcmp(before, after) != 0, "%s at its cap: stored", c->field);
}

static const char *t_json_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static void t_cap_past(const t_cap *c, const char *name, bool rest)
{
    t_prov t;
    char msg[MSG_MAX], before[ROW_MAX], after[ROW_MAX];
    t_prov_init(&t, name);
    t_cap_set(&t, c->which, true);
    t_snapshot(before, sizeof before);
    if (rest) {
        char body[MSG_MAX];
        int code = t_rest_register(&t.p, body, sizeof body);
        cr_assert_eq(code, 400, "%s past its cap over REST: %d %s", c->field, code, body);
        json_t *o = json_loads(body, 0, NULL);
        cr_assert_not_null(o, "a JSON error: %s", body);
        cr_assert_str_eq(t_json_str(o, "code"), "INVALID_ARGUMENT", "%s", body);
        cr_assert_str_eq(t_json_str(o, "field"), c->field, "%s", body);
        snprintf(msg, sizeof msg, "%s", t_json_str(o, "message"));
        json_decref(o);
    } else {
        hodei_grpc_code code = t_register(&t.p, msg, sizeof msg);
        cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT, "%s past its cap: %d %s", c->field, code,
                     msg);
    }
    cr_assert(strstr(msg, c->field), "'%s' names %s", msg, c->field);
    cr_assert(strstr(msg, c->max_text), "'%s' names the maximum %s", msg, c->max_text);
    t_snapshot(after, sizeof after);
    cr_assert_str_eq(after, before, "%s past its cap changed nothing", c->field);
}

/* The providers table: each column at its cap by hand is stored, one past
 * it refused (check_violation naming the cap). */
static void t_db_caps(void)
{
    static const struct {
        const char *column;
        int64_t at;
    } cols[] = {
        {"max_workers", HODEI_PROVIDER_WORKERS_MAX},
        {"warm_pool_max", HODEI_PROVIDER_WORKERS_MAX},
        {"idle_ttl_ms", HODEI_PROVIDER_IDLE_TTL_MS_MAX},
        {"cost_per_hour", HODEI_PROVIDER_COST_MAX},
        {"worker_cpu_millis", HODEI_CPU_MILLIS_MAX},
        {"worker_memory_bytes", HODEI_RESOURCE_BYTES_MAX},
        {"worker_storage_bytes", HODEI_RESOURCE_BYTES_MAX},
        {"worker_gpu_count", HODEI_GPU_COUNT_MAX},
        {"warm_pool_min", HODEI_PROVIDER_WORKERS_MAX}, /* warm_pool_max is at its cap */
    };
    char sql[512], value[32];
    PQclear(PQexec(g_db, "INSERT INTO providers (name, type, enabled) VALUES ('cap-db', 'process',"
                         " false)"));
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        snprintf(sql, sizeof sql, "UPDATE providers SET %s = $1 WHERE name = 'cap-db'",
                 cols[i].column);
        for (int past = 0; past <= 1; past++) {
            snprintf(value, sizeof value, "%lld", (long long)(cols[i].at + past));
            const char *params[] = {value};
            PGresult *r = PQexecParams(g_db, sql, 1, NULL, params, NULL, NULL, 0);
            if (!past) {
                cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s = %s by hand: %s",
                             cols[i].column, value, PQerrorMessage(g_db));
            } else {
                cr_assert_eq(PQresultStatus(r), PGRES_FATAL_ERROR, "%s = %s by hand: refused",
                             cols[i].column, value);
                const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
                const char *constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
                char want[96];
                snprintf(want, sizeof want, "providers_%s_cap", cols[i].column);
                cr_assert_str_eq(state ? state : "", "23514", "%s: check_violation",
                                 cols[i].column);
                /* warm_pool_min past its cap is past warm_pool_max too (0003's
                 * providers_check), which PostgreSQL may name first */
                bool named = constraint && (strcmp(constraint, want) == 0 ||
                                            (strcmp(cols[i].column, "warm_pool_min") == 0 &&
                                             strcmp(constraint, "providers_check") == 0));
                cr_assert(named, "%s: %s", cols[i].column, PQerrorMessage(g_db));
            }
            PQclear(r);
        }
    }
    PQclear(PQexec(g_db, "DELETE FROM providers WHERE name = 'cap-db'"));
}

Test(provider_limits, every_cap_holds_at_its_boundary_on_both_doors_and_in_the_table, .init = setup,
     .fini = teardown, .timeout = 600)
{
    t_db_open();
    for (size_t i = 0; i < CAPS_LEN; i++) {
        for (int rest = 0; rest <= 1; rest++) {
            /* a new name: nothing written; the row at the cap: unchanged */
            t_cap_past(&caps[i], "cap-new", rest);
            t_cap_at(&caps[i], rest);
            t_cap_past(&caps[i], "cap", rest);
            PQclear(PQexec(g_db, "DELETE FROM providers WHERE name LIKE 'cap%'"));
        }
    }
    cr_assert_eq(t_i64("SELECT count(*) FROM providers WHERE name LIKE 'cap%'"), 0);
    t_db_caps();
    PQfinish(g_db);
}

/* ------------------------------------------------------------ the test: the pool */

/* Worker processes alive, from the process provider's pid files. */
static int t_live_processes(void)
{
    DIR *d = opendir(cl.workers_dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".pid") != 0)
            continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", cl.workers_dir, e->d_name);
        FILE *f = fopen(path, "r");
        long pid = 0;
        if (f && fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        if (f)
            fclose(f);
        if (pid > 1 && kill((pid_t)pid, 0) == 0)
            n++;
    }
    if (d)
        closedir(d);
    return n;
}

#define T_NOT_ENDED                                                                                \
    "SELECT count(*) FROM workers WHERE provider = 'process' AND state <> 'TERMINATED'"
#define T_READY "SELECT count(*) FROM workers WHERE provider = 'process' AND state = 'READY'"

/* For WATCH_MS: never more than `most` workers rows not TERMINATED nor
 * live processes; the most seen of each. */
static void t_watch(int most, const char *what)
{
    int64_t until = hodei_mono_ms() + WATCH_MS, rows_seen = 0;
    int procs_seen = 0;
    while (hodei_mono_ms() < until) {
        int64_t rows = t_i64(T_NOT_ENDED);
        int procs = t_live_processes();
        rows_seen = rows > rows_seen ? rows : rows_seen;
        procs_seen = procs > procs_seen ? procs : procs_seen;
        cr_assert_leq(rows, most, "%s: %lld workers not TERMINATED", what, (long long)rows);
        cr_assert_leq(procs, most, "%s: %d worker processes", what, procs);
        hodei_sleep_ms(100);
    }
    fprintf(stderr, "%s: at most %lld worker rows and %d processes (bound %d)\n", what,
            (long long)rows_seen, procs_seen, most);
}

static void t_pool_register(int max_workers, int warm_min, int warm_max)
{
    t_prov t;
    char msg[MSG_MAX];
    t_prov_init(&t, "process");
    t.p.enabled = true;
    t.p.idle_ttl_ms = 0; /* never drained: the pool is what the test counts */
    t.p.max_workers = max_workers;
    t.p.warm_pool_min = warm_min;
    t.p.warm_pool_max = warm_max;
    t.p.worker_capacity = NULL;
    cr_assert_eq(t_register(&t.p, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
}

/* Refused registrations of the pool's provider, past the caps of its warm
 * pool and of its config values, about 240 KB each (under the method's
 * maximum): the edge holds none of it. */
static void t_refused_calls(long *growth_kb)
{
    t_prov t;
    char msg[MSG_MAX];
    long rss0 = harness_rss_kb(cl.edge.proc.pid);
    for (int i = 0; i < RSS_CALLS; i++) {
        t_prov_init(&t, "process");
        t.p.enabled = true;
        t.p.worker_capacity = NULL;
        t.p.warm_pool_min = t.p.warm_pool_max = HODEI_PROVIDER_WORKERS_MAX + 1;
        t_prov_config(&t, 58, 0, CONFIG_VALUE_MAX);
        t.value[CONFIG_VALUE_MAX] = 'v'; /* every entry one byte past: the first is named */
        t.value[CONFIG_VALUE_MAX + 1] = '\0';
        hodei_grpc_code code = t_register(&t.p, msg, sizeof msg);
        cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT, "call %d: %d %s", i, code, msg);
        cr_assert(strstr(msg, "provider.config[\"key000\"]") && strstr(msg, "4096"), "%s", msg);
    }
    *growth_kb = harness_rss_kb(cl.edge.proc.pid) - rss0;
}

Test(provider_limits, a_pool_at_its_maximum_gets_that_many_workers_and_no_more, .init = setup,
     .fini = teardown, .timeout = 900)
{
    char state[32], ids[5][40];
    t_db_open();
    /* the pool at its maximum: min = max = max_workers */
    t_pool_register(POOL, POOL, POOL);
    cr_assert(cluster_wait_sql(&cl, T_READY, POOL, 120000), "%d READY workers", POOL);
    t_watch(POOL, "warm_pool_min = warm_pool_max = max_workers = 3");

    /* max_workers and warm_pool_max at their caps: the pool stays at its min */
    t_pool_register(HODEI_PROVIDER_WORKERS_MAX, POOL, HODEI_PROVIDER_WORKERS_MAX);
    t_watch(POOL, "max_workers = warm_pool_max = 10000, warm_pool_min = 3");
    cr_assert_eq(t_i64(T_READY), POOL);

    /* refused calls past the caps: nothing changes, workers stay READY */
    long growth_kb = 0;
    t_refused_calls(&growth_kb);
    fprintf(stderr,
            "edge RSS after %d refused RegisterProvider calls of ~250 KB: %+ld KB (bound %d KB)\n",
            RSS_CALLS, growth_kb, RSS_GROWTH_KB);
    cr_assert_leq(growth_kb, RSS_GROWTH_KB, "the edge keeps nothing of refused calls");
    cr_assert_eq(t_i64("SELECT max_workers FROM providers WHERE name = 'process'"),
                 HODEI_PROVIDER_WORKERS_MAX, "the refused calls changed nothing");
    cr_assert_eq(t_i64(T_READY), POOL, "the workers stayed READY");

    /* more jobs than workers with max_workers back at the pool: the queue
     * waits for the three, none is started beyond them */
    t_pool_register(POOL, POOL, POOL);
    for (int i = 0; i < 5; i++)
        cluster_queue(&cl, "sleep 1; echo done", 1, 0, ids[i]);
    t_watch(POOL, "5 jobs queued, max_workers = 3");
    for (int i = 0; i < 5; i++) {
        cr_assert(cluster_wait_job(&cl, ids[i], JOB_WAIT_MS, state, sizeof state), "job %d ends",
                  i);
        cr_assert_str_eq(state, "SUCCEEDED", "job %d", i);
    }
    cr_assert_leq(t_i64(T_NOT_ENDED), POOL);
    cr_assert(cluster_wait_sql(&cl, T_READY, POOL, 60000), "the pool is READY again");
    PQfinish(g_db);
}
