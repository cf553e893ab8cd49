/* hodei-bench: load generators for `make bench`. Each scenario prints one
 * JSON object on stdout.
 *
 *   hodei-bench queue --target HOST:PORT --nats URL [--clients N] [--jobs N]
 *     queue_job: N concurrent clients (one channel each) call QueueJob as
 *     fast as answers come; throughput and latency percentiles.
 *     relay_lag: for the same jobs, QueueJob answered (the commit happened
 *     before) -> JobQueued delivered from JetStream to a subscriber.
 *
 *   hodei-bench idle --target HOST:PORT [--jobs N] [--pause-ms MS]
 *     queue_job_idle: one client of gRPC core's C API (beside bench/user.js's
 *     grpc-js one, to tell the server's share from the client's) calls
 *     QueueJob of `true` N times, each after a random pause of 0..MS ms (an
 *     idle system: thread and process wake-ups dominate); the round trip's
 *     percentiles. */
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/bus.h"
#include "hodei/rpc.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/events.pb-c.h"
#include "hodei/v1/job.pb-c.h"

#define BENCH_CLIENTS_MAX 256
#define BENCH_JOBS_MAX 1000000
#define BENCH_WAIT_EVENTS_MS 30000

typedef struct {
    char id[37];
    int64_t acked_ns; /* QueueJob answered */
    int64_t event_ns; /* JobQueued delivered */
} bench_job;

typedef struct {
    const char *target;
    int jobs_per_client;
    int index;
    bench_job *jobs; /* this client's slice */
    int64_t *lat_ns;
    int failed;
} bench_client;

/* Open-addressing map job id -> bench_job, filled before events arrive. */
static bench_job **idx;
static size_t idx_cap;
static atomic_long events_seen;

static uint64_t bench_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static pthread_mutex_t idx_mu = PTHREAD_MUTEX_INITIALIZER;

static bench_job *bench_index(const char *id, bench_job *insert)
{
    pthread_mutex_lock(&idx_mu);
    size_t i = bench_hash(id) & (idx_cap - 1);
    bench_job *found = NULL;
    while (idx[i]) {
        if (strcmp(idx[i]->id, id) == 0) {
            found = idx[i];
            break;
        }
        i = (i + 1) & (idx_cap - 1);
    }
    if (!found && insert) {
        idx[i] = insert;
        found = insert;
    }
    pthread_mutex_unlock(&idx_mu);
    return found;
}

/* Events can beat the client's own answer: park them by id. */
typedef struct {
    char id[37];
    int64_t ns;
} early_event;
static early_event *early;
static atomic_long early_len;

static void bench_on_event(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *c)
{
    int64_t now = hodei_mono_ns();
    Hodei__V1__Event *ev = hodei__v1__event__unpack(NULL, (size_t)natsMsg_GetDataLength(msg),
                                                    (const uint8_t *)natsMsg_GetData(msg));
    if (ev && ev->body_case == HODEI__V1__EVENT__BODY_JOB_QUEUED) {
        bench_job *j = bench_index(ev->job_queued->job_id, NULL);
        if (j) {
            j->event_ns = now;
        } else {
            long k = atomic_fetch_add(&early_len, 1);
            if (k < BENCH_JOBS_MAX) {
                hodei_strlcpy(early[k].id, ev->job_queued->job_id, sizeof early[k].id);
                early[k].ns = now;
            }
        }
        atomic_fetch_add(&events_seen, 1);
    }
    if (ev)
        hodei__v1__event__free_unpacked(ev, NULL);
    natsMsg_Destroy(msg);
}

/* One QueueJob of req on ch, timed: true when the job was queued, with the
 * answer in *resp (caller frees), when it came in *at_ns and the round trip in
 * *lat_ns; otherwise counts the failure in *failed and prints the first few. */
static bool bench_queue_one(hodei_rpc_channel *ch, const Hodei__V1__QueueJobRequest *req,
                            ProtobufCMessage **resp, int64_t *at_ns, int64_t *lat_ns, int *failed)
{
    hodei_rpc_result res;
    hodei_err err;
    int64_t t0 = hodei_mono_ns();
    hodei_status st =
        hodei_rpc_unary(ch, "/hodei.v1.JobExecutionService/QueueJob", &req->base,
                        &hodei__v1__queue_job_response__descriptor, 10000, resp, &res, &err);
    *at_ns = hodei_mono_ns();
    *lat_ns = *at_ns - t0;
    if (st == HODEI_OK && res.code == HODEI_GRPC_OK)
        return true;
    if ((*failed)++ < 5)
        fprintf(stderr, "QueueJob failed: %s %s\n", st == HODEI_OK ? "" : err.msg, res.message);
    return false;
}

static void *bench_client_main(void *arg)
{
    bench_client *c = arg;
    hodei_rpc_channel *ch = NULL;
    hodei_rpc_channel_opts o = {.target = c->target, .api_key = getenv("HODEI_API_KEY")};
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_channel_create(&o, &ch, &err) == HODEI_OK);
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[] = {"-c", "echo bench"};
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.name = "bench";
    req.spec = &spec;
    for (int i = 0; i < c->jobs_per_client; i++) {
        ProtobufCMessage *resp = NULL;
        bench_job *j = &c->jobs[i];
        if (!bench_queue_one(ch, &req, &resp, &j->acked_ns, &c->lat_ns[i], &c->failed))
            continue;
        hodei_strlcpy(j->id, ((Hodei__V1__QueueJobResponse *)resp)->job_id, sizeof j->id);
        bench_index(j->id, j);
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    hodei_rpc_channel_destroy(ch);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_ms(int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[k] / 1e6;
}

static void bench_report_relay(bench_job *jobs, size_t n)
{
    for (long k = 0; k < atomic_load(&early_len) && k < BENCH_JOBS_MAX; k++) {
        bench_job *j = bench_index(early[k].id, NULL);
        if (j && !j->event_ns)
            j->event_ns = early[k].ns;
    }
    int64_t *lag = calloc(n ? n : 1, sizeof *lag);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (!jobs[i].acked_ns || !jobs[i].event_ns)
            continue;
        int64_t d = jobs[i].event_ns - jobs[i].acked_ns;
        lag[m++] = d > 0 ? d : 0;
    }
    qsort(lag, m, sizeof *lag, cmp_i64);
    printf(
        "{\"scenario\":\"relay_lag\",\"events\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
        "\"max_ms\":%.3f,\"method\":\"QueueJob answered -> JobQueued delivered by JetStream\"}\n",
        m, pct_ms(lag, m, 0.50), pct_ms(lag, m, 0.99), pct_ms(lag, m, 1.0));
    free(lag);
}

static int bench_queue(const char *target, const char *nats_url, int clients, int jobs)
{
    size_t total = (size_t)clients * (size_t)(jobs / clients);
    bench_job *all = calloc(total, sizeof *all);
    int64_t *lat = calloc(total, sizeof *lat);
    idx_cap = 1;
    while (idx_cap < total * 2)
        idx_cap <<= 1;
    idx = calloc(idx_cap, sizeof *idx);
    early = calloc(BENCH_JOBS_MAX, sizeof *early);
    HODEI_ASSERT(all && lat && idx && early);

    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    if (natsConnection_ConnectTo(&nc, nats_url) != NATS_OK ||
        natsConnection_Subscribe(&sub, nc, HODEI_SUBJ_JOB_QUEUED, bench_on_event, NULL) !=
            NATS_OK) {
        fprintf(stderr, "bench: cannot subscribe at %s\n", nats_url);
        return 1;
    }
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(nc);

    bench_client cs[BENCH_CLIENTS_MAX];
    pthread_t th[BENCH_CLIENTS_MAX];
    int per = jobs / clients;
    int64_t t0 = hodei_mono_ns();
    for (int i = 0; i < clients; i++) {
        cs[i] = (bench_client){.target = target,
                               .jobs_per_client = per,
                               .index = i,
                               .jobs = all + (size_t)i * per,
                               .lat_ns = lat + (size_t)i * per};
        pthread_create(&th[i], NULL, bench_client_main, &cs[i]);
    }
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i], NULL);
        failed += cs[i].failed;
    }
    double secs = (double)(hodei_mono_ns() - t0) / 1e9;
    size_t ok = total - (size_t)failed;
    qsort(lat, total, sizeof *lat, cmp_i64);
    int64_t *okl = lat + failed; /* failed slots hold 0 and sort first */
    printf("{\"scenario\":\"queue_job\",\"clients\":%d,\"jobs\":%zu,\"failed\":%d,"
           "\"seconds\":%.2f,\"jobs_per_s\":%.0f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f}\n",
           clients, ok, failed, secs, (double)ok / secs, pct_ms(okl, ok, 0.5),
           pct_ms(okl, ok, 0.99), pct_ms(okl, ok, 1.0));
    fflush(stdout);
    int64_t until = hodei_mono_ms() + BENCH_WAIT_EVENTS_MS;
    while ((size_t)atomic_load(&events_seen) < ok && hodei_mono_ms() < until)
        hodei_sleep_ms(20);
    bench_report_relay(all, total);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    nats_Close();
    free(all);
    free(lat);
    free(idx);
    free(early);
    return failed ? 1 : 0;
}

static int bench_idle(const char *target, int jobs, int pause_ms)
{
    hodei_rpc_channel *ch = NULL;
    hodei_rpc_channel_opts o = {.target = target, .api_key = getenv("HODEI_API_KEY")};
    hodei_err err;
    if (hodei_rpc_channel_create(&o, &ch, &err) != HODEI_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    cmd.command = "true";
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.name = "bench-idle";
    req.spec = &spec;
    int64_t *lat = calloc((size_t)jobs, sizeof *lat);
    HODEI_ASSERT(lat);
    size_t ok = 0;
    int failed = 0;
    srand((unsigned)hodei_mono_ns());
    for (int i = -3; i < jobs; i++) { /* 3 warm-up calls */
        hodei_sleep_ms(pause_ms ? rand() % (pause_ms + 1) : 0);
        ProtobufCMessage *resp = NULL;
        int64_t at_ns, lat_ns;
        if (!bench_queue_one(ch, &req, &resp, &at_ns, &lat_ns, &failed))
            continue;
        protobuf_c_message_free_unpacked(resp, NULL);
        if (i >= 0)
            lat[ok++] = lat_ns;
    }
    qsort(lat, ok, sizeof *lat, cmp_i64);
    /* BENCH_PG_COMMIT_MS: the same run's durable commit ceiling (bench/run) */
    const char *commit = getenv("BENCH_PG_COMMIT_MS");
    double commit_ms = commit ? strtod(commit, NULL) : 0;
    printf("{\"scenario\":\"queue_job_idle\",\"client\":\"grpc-core-c\",\"jobs\":%zu,"
           "\"failed\":%d,\"pause_ms\":%d,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"max_ms\":%.3f",
           ok, failed, pause_ms, pct_ms(lat, ok, 0.5), pct_ms(lat, ok, 0.9), pct_ms(lat, ok, 0.99),
           pct_ms(lat, ok, 1.0));
    if (commit_ms > 0)
        printf(",\"pg_commit_p50_ms\":%.3f,\"p50_in_pg_commits\":%.2f", commit_ms,
               pct_ms(lat, ok, 0.5) / commit_ms);
    printf("}\n");
    free(lat);
    hodei_rpc_channel_destroy(ch);
    return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
    const char *target = NULL, *nats_url = NULL;
    int64_t clients = 16, jobs = 20000, pause_ms = 1000;
    bool idle = argc >= 2 && strcmp(argv[1], "idle") == 0;
    if (argc < 2 || (strcmp(argv[1], "queue") != 0 && !idle)) {
        fprintf(stderr, "usage: hodei-bench queue --target HOST:PORT --nats URL"
                        " [--clients N] [--jobs N]\n"
                        "       hodei-bench idle --target HOST:PORT [--jobs N] [--pause-ms MS]\n");
        return 2;
    }
    if (idle)
        jobs = 100;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--target") == 0)
            target = argv[i + 1];
        else if (strcmp(argv[i], "--nats") == 0)
            nats_url = argv[i + 1];
        else if (strcmp(argv[i], "--clients") == 0 &&
                 hodei_parse_i64(argv[i + 1], 1, BENCH_CLIENTS_MAX, &clients))
            continue;
        else if (strcmp(argv[i], "--jobs") == 0 &&
                 hodei_parse_i64(argv[i + 1], 1, BENCH_JOBS_MAX, &jobs))
            continue;
        else if (idle && strcmp(argv[i], "--pause-ms") == 0 &&
                 hodei_parse_i64(argv[i + 1], 0, 60000, &pause_ms))
            continue;
        else {
            fprintf(stderr, "hodei-bench: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!target || (!nats_url && !idle)) {
        fprintf(stderr, "hodei-bench: --target%s required\n", idle ? " is" : " and --nats are");
        return 2;
    }
    hodei_rpc_global_init();
    int rc = idle ? bench_idle(target, (int)jobs, (int)pause_ms)
                  : bench_queue(target, nats_url, (int)clients, (int)jobs);
    hodei_rpc_global_shutdown();
    return rc;
}
