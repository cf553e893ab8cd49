/* hodei-bench-ceiling: what this machine allows, measured in the same run
 * as the figures it bounds. One JSON object on stdout.
 *
 *   hodei-bench-ceiling --db URL --nats URL [--spawns N] [--commits N]
 *
 *   spawn: `true` started, waited for and reported the way the worker agent
 *     runs a job (hodei_exec_run: vfork + exec, pipes for its output, its
 *     own process group), one after another (per-spawn percentiles), then
 *     from 8 threads at once (8 in flight, like 8 workers): spawns/s.
 *   pg_commit: one durable commit round trip (an INSERT in its own
 *     transaction, synchronous_commit as the server says) on a private
 *     table that is dropped afterwards.
 *   js_publish: one JetStream publish round trip (published, stored, acked)
 *     to a private file-backed stream that is deleted afterwards.
 *   nats_hop: one core NATS message, publish -> delivered to a subscriber
 *     on another connection, from a connection with nats.c's default
 *     buffering (a flusher thread that waits 1 ms for more) and from one that
 *     sends at once (natsOptions_SetSendAsap). */
#include <inttypes.h>
#include <libpq-fe.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/exec.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define BC_N_MAX 100000
#define BC_WAYS 8
#define BC_STREAM "HODEI_BENCH_CEILING"
#define BC_SUBJECT "hodei.bench.ceiling"
#define BC_HOP_SUBJECT "hodei.bench.hop"
#define BC_HOP_WAIT_MS 5000

typedef struct {
    const char *db;
    const char *nats;
    int64_t spawns;
    int64_t commits;
} bc_opts;

static int bc_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* p-th percentile of v[0..n) in ms (v sorted here, in µs). */
static double bc_pct_ms(int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, bc_cmp);
    return (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0;
}

static void bc_on_batch(void *user, Hodei__V1__LogLine **lines, size_t n_lines)
{
    (void)user;
    (void)lines;
    (void)n_lines;
}

/* One `true`, run as the agent runs a job. */
static bool bc_spawn_one(void)
{
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    cmd.command = "true";
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    hodei_exec_callbacks cb = {.on_batch = bc_on_batch};
    hodei_exec_result res;
    hodei_err err;
    hodei_status st = hodei_exec_run(&opts, &spec, "00000000-0000-7000-8000-000000000000", 1, NULL,
                                     0, &cb, NULL, &res, &err);
    return st == HODEI_OK && res.state == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
}

typedef struct {
    atomic_long *left;
    atomic_long *failed;
} bc_way;

static void *bc_way_main(void *arg)
{
    bc_way *w = arg;
    while (atomic_fetch_sub(w->left, 1) > 0)
        if (!bc_spawn_one())
            atomic_fetch_add(w->failed, 1);
    return NULL;
}

static bool bc_spawn(const bc_opts *o, char *out, size_t out_len)
{
    size_t n = (size_t)o->spawns;
    int64_t *lat = calloc(n, sizeof *lat);
    if (!lat)
        return false;
    bool ok = true;
    int64_t t0 = hodei_mono_ns();
    for (size_t i = 0; i < n && ok; i++) {
        int64_t s = hodei_mono_ns();
        ok = bc_spawn_one();
        lat[i] = (hodei_mono_ns() - s) / 1000;
    }
    double seq_s = (double)(hodei_mono_ns() - t0) / 1e9;
    atomic_long left = (long)n * 2, failed = 0;
    bc_way w = {&left, &failed};
    pthread_t th[BC_WAYS];
    t0 = hodei_mono_ns();
    for (int i = 0; i < BC_WAYS; i++)
        pthread_create(&th[i], NULL, bc_way_main, &w);
    for (int i = 0; i < BC_WAYS; i++)
        pthread_join(th[i], NULL);
    double par_s = (double)(hodei_mono_ns() - t0) / 1e9;
    snprintf(out, out_len,
             "\"spawn_seq_p50_ms\":%.3f,\"spawn_seq_p99_ms\":%.3f,\"spawn_seq_per_s\":%.0f,"
             "\"spawn_8way_per_s\":%.0f",
             bc_pct_ms(lat, n, 0.5), bc_pct_ms(lat, n, 0.99), (double)n / seq_s,
             (double)n * 2 / par_s);
    free(lat);
    return ok && atomic_load(&failed) == 0;
}

static bool bc_exec(PGconn *pg, const char *q)
{
    PGresult *r = PQexec(pg, q);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "hodei-bench-ceiling: %s: %s", q, PQerrorMessage(pg));
    PQclear(r);
    return ok;
}

static bool bc_commit(const bc_opts *o, char *out, size_t out_len)
{
    PGconn *pg = PQconnectdb(o->db);
    size_t n = (size_t)o->commits;
    int64_t *lat = calloc(n, sizeof *lat);
    bool ok = lat && PQstatus(pg) == CONNECTION_OK &&
              bc_exec(pg, "CREATE TABLE IF NOT EXISTS bench_ceiling (id bigserial PRIMARY KEY,"
                          " at timestamptz NOT NULL DEFAULT now())");
    for (size_t i = 0; i < n && ok; i++) {
        int64_t s = hodei_mono_ns();
        ok = bc_exec(pg, "INSERT INTO bench_ceiling DEFAULT VALUES");
        lat[i] = (hodei_mono_ns() - s) / 1000;
    }
    if (ok)
        ok = bc_exec(pg, "DROP TABLE bench_ceiling");
    if (ok)
        snprintf(out, out_len, "\"pg_commit_p50_ms\":%.3f,\"pg_commit_p99_ms\":%.3f",
                 bc_pct_ms(lat, n, 0.5), bc_pct_ms(lat, n, 0.99));
    else
        fprintf(stderr, "hodei-bench-ceiling: PostgreSQL: %s", PQerrorMessage(pg));
    free(lat);
    PQfinish(pg);
    return ok;
}

static bool bc_publish(const bc_opts *o, char *out, size_t out_len)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamConfig cfg;
    jsErrCode jerr = 0;
    size_t n = (size_t)o->commits;
    int64_t *lat = calloc(n, sizeof *lat);
    const char *subjects[] = {BC_SUBJECT};
    bool ok = lat && natsConnection_ConnectTo(&nc, o->nats) == NATS_OK &&
              natsConnection_JetStream(&js, nc, NULL) == NATS_OK;
    if (ok) {
        jsStreamConfig_Init(&cfg);
        cfg.Name = BC_STREAM;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        ok = js_AddStream(NULL, js, &cfg, NULL, &jerr) == NATS_OK;
    }
    for (size_t i = 0; i < n && ok; i++) {
        char body[64];
        int len = snprintf(body, sizeof body, "ceiling %zu", i);
        int64_t s = hodei_mono_ns();
        jsPubAck *ack = NULL;
        ok = js_Publish(&ack, js, BC_SUBJECT, body, len, NULL, &jerr) == NATS_OK;
        lat[i] = (hodei_mono_ns() - s) / 1000;
        jsPubAck_Destroy(ack);
    }
    if (js)
        js_DeleteStream(js, BC_STREAM, NULL, NULL);
    if (ok)
        snprintf(out, out_len, "\"js_publish_p50_ms\":%.3f,\"js_publish_p99_ms\":%.3f",
                 bc_pct_ms(lat, n, 0.5), bc_pct_ms(lat, n, 0.99));
    else
        fprintf(stderr, "hodei-bench-ceiling: JetStream: %s\n", nats_GetLastError(NULL));
    free(lat);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return ok;
}

/* p50 of n publish -> delivery hops from a connection with send_asap as
 * given, in ms; < 0 on failure. */
static double bc_hop(const char *url, bool send_asap, size_t n)
{
    natsConnection *pub = NULL, *sub_conn = NULL;
    natsSubscription *sub = NULL;
    natsOptions *opts = NULL;
    int64_t *lat = calloc(n, sizeof *lat);
    double p50 = -1;
    bool ok = lat && natsOptions_Create(&opts) == NATS_OK &&
              natsOptions_SetURL(opts, url) == NATS_OK &&
              natsOptions_SetSendAsap(opts, send_asap) == NATS_OK &&
              natsConnection_Connect(&pub, opts) == NATS_OK &&
              natsConnection_ConnectTo(&sub_conn, url) == NATS_OK &&
              natsConnection_SubscribeSync(&sub, sub_conn, BC_HOP_SUBJECT) == NATS_OK &&
              natsConnection_Flush(sub_conn) == NATS_OK;
    for (size_t i = 0; i < n && ok; i++) {
        natsMsg *m = NULL;
        hodei_sleep_ms(2); /* idle between hops, as between dispatches */
        int64_t s = hodei_mono_ns();
        ok = natsConnection_Publish(pub, BC_HOP_SUBJECT, "h", 1) == NATS_OK &&
             natsSubscription_NextMsg(&m, sub, BC_HOP_WAIT_MS) == NATS_OK;
        lat[i] = (hodei_mono_ns() - s) / 1000;
        natsMsg_Destroy(m);
    }
    if (ok)
        p50 = bc_pct_ms(lat, n, 0.5);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(sub_conn);
    natsConnection_Destroy(pub);
    natsOptions_Destroy(opts);
    free(lat);
    return p50;
}

int main(int argc, char **argv)
{
    bc_opts o = {.spawns = 200, .commits = 300};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--db") == 0)
            o.db = v;
        else if (strcmp(k, "--nats") == 0)
            o.nats = v;
        else if (strcmp(k, "--spawns") == 0 && hodei_parse_i64(v, 1, BC_N_MAX, &o.spawns))
            continue;
        else if (strcmp(k, "--commits") == 0 && hodei_parse_i64(v, 1, BC_N_MAX, &o.commits))
            continue;
        else {
            fprintf(stderr, "hodei-bench-ceiling: bad argument %s\n", k);
            return 2;
        }
    }
    if (!o.db || !o.nats) {
        fprintf(stderr, "usage: hodei-bench-ceiling --db URL --nats URL [--spawns N]"
                        " [--commits N]\n");
        return 2;
    }
    char spawn[256] = "", commit[128] = "", publish[128] = "";
    bool ok = bc_spawn(&o, spawn, sizeof spawn);
    ok = bc_commit(&o, commit, sizeof commit) && ok;
    ok = bc_publish(&o, publish, sizeof publish) && ok;
    double hop_buffered = bc_hop(o.nats, false, 200), hop_asap = bc_hop(o.nats, true, 200);
    ok = ok && hop_buffered >= 0 && hop_asap >= 0;
    printf("{\"scenario\":\"ceilings\",%s,%s,%s,\"nats_hop_buffered_p50_ms\":%.3f,"
           "\"nats_hop_asap_p50_ms\":%.3f}\n",
           spawn, commit, publish, hop_buffered, hop_asap);
    nats_Close();
    return ok ? 0 : 1;
}
