/* hodei-bench-jobs: jobs end to end on a running stack (edge, relay,
 * scheduler, provisioner, supervisor, process provider). One JSON object
 * per scenario on stdout.
 *
 *   hodei-bench-jobs dispatch --target H:P --db URL --stamp FILE [--jobs N]
 *     QueueJob answered -> the job's process running, one job at a time on
 *     warm workers. The job is `hodei-bench-stamp FILE` (beside this
 *     program), which appends "<job id> <wall µs>" as its first act.
 *   hodei-bench-jobs throughput --target H:P[,H:P...] --db URL [--jobs N] [--clients C]
 *     N trivial jobs (`true`) queued by C clients (spread over the edges
 *     given); time until all SUCCEEDED.
 *   ... throughput --in-flight K [--marks M]
 *     closed loop instead of a burst: no more than K jobs queued or running
 *     at once, so every stretch of the run does the same work (submit,
 *     assign, run, finish) at the same queue depth. With --marks, a line
 *     {"mark":F,"seconds":S} at the start and each time the
 *     finished count F passes a multiple of M (for CPU samples between
 *     marks: the cost per job at 1,000 jobs and at 10,000 in one run).
 *   hodei-bench-jobs coldstart --target H:P --db URL --stamp FILE [--jobs N]
 *     as dispatch, but each job waits until no worker is alive first, so a
 *     worker is provisioned for it.
 *   ... dispatch|coldstart --image IMAGE [--prefix NAME]
 *     the same in a container provider: the job is `sh -c 'echo go'` in
 *     IMAGE, and "running" is the wall time the agent read its first output
 *     line (LogLine.time, through GetLogs); coldstart waits for no worker of
 *     that image. The scenario is called NAME_dispatch / NAME_cold_start. */
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hodei/rpc.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/logs.pb-c.h"

#define BJ_JOBS_MAX 100000
#define BJ_CLIENTS_MAX 64
#define BJ_WAIT_MS 120000
#define BJ_POLL_MS 25 /* unfinished jobs counted (closed loop, the end) */

typedef struct {
    const char *target;
    const char *db;
    const char *stamp;
    const char *self;   /* the stamp program */
    const char *image;  /* container jobs: "" = process jobs with the stamp program */
    const char *prefix; /* of the scenario's name with an image */
    int64_t jobs;
    int64_t clients;
    int64_t in_flight; /* 0 = burst */
    int64_t marks;     /* 0 = none */
} bj_opts;

static bool bj_queue(hodei_rpc_channel *ch, const char *image, char *const *argv, int argc,
                     char *id_out)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    cmd.command = argv[0];
    cmd.n_args = (size_t)(argc - 1);
    cmd.args = (char **)argv + 1;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.image = (char *)(image ? image : "");
    req.spec = &spec;
    ProtobufCMessage *resp = NULL;
    hodei_rpc_result res;
    hodei_err err;
    hodei_status st =
        hodei_rpc_unary(ch, "/hodei.v1.JobExecutionService/QueueJob", &req.base,
                        &hodei__v1__queue_job_response__descriptor, 10000, &resp, &res, &err);
    if (st != HODEI_OK || res.code != HODEI_GRPC_OK) {
        fprintf(stderr, "QueueJob: %s %s\n", err.msg, res.message);
        return false;
    }
    if (id_out)
        hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)resp)->job_id, 37);
    protobuf_c_message_free_unpacked(resp, NULL);
    return true;
}

static int64_t bj_sql(PGconn *pg, const char *q)
{
    PGresult *r = PQexec(pg, q);
    int64_t v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

/* The stamp line of job `id`, or 0 when it is not there yet. */
static int64_t bj_stamp_of(const char *file, const char *id)
{
    FILE *f = fopen(file, "r");
    char line[128];
    int64_t at = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, id, 36) == 0)
            at = strtoll(line + 37, NULL, 10);
    }
    if (f)
        fclose(f);
    return at;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct(int64_t *v, size_t n, double p)
{
    return n ? (double)v[(size_t)(p * (double)(n - 1) + 0.5)] / 1000.0 : 0;
}

/* The wall time (µs) of the job's first output line, 0 when none yet. */
static int64_t bj_first_line_us(hodei_rpc_channel *ch, const char *id)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    hodei_rpc_result res;
    hodei_err err;
    int64_t at = 0;
    req.job_id = (char *)id;
    req.max_lines = 1;
    if (hodei_rpc_unary(ch, "/hodei.v1.LogStreamService/GetLogs", &req.base,
                        &hodei__v1__get_logs_response__descriptor, 10000, &resp, &res,
                        &err) == HODEI_OK &&
        res.code == HODEI_GRPC_OK) {
        Hodei__V1__GetLogsResponse *r = (Hodei__V1__GetLogsResponse *)resp;
        if (r->n_lines > 0 && r->lines[0]->time)
            at = r->lines[0]->time->seconds * 1000000 + r->lines[0]->time->nanos / 1000;
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return at;
}

/* Waits until no worker (of the image, with one) is alive. */
static void bj_wait_no_worker(const bj_opts *o, PGconn *pg, int64_t until)
{
    char q[512];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM workers WHERE state NOT IN ('TERMINATED','LOST')%s%s%s",
             o->image ? " AND image = '" : "", o->image ? o->image : "", o->image ? "'" : "");
    while (hodei_mono_ms() < until && bj_sql(pg, q) != 0)
        hodei_sleep_ms(50);
}

static void bj_wait_done(PGconn *pg, const char *id, int64_t until)
{
    char q[200];
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'SUCCEEDED'", id);
    while (hodei_mono_ms() < until && bj_sql(pg, q) != 1)
        hodei_sleep_ms(2);
}

static void bj_report(const bj_opts *o, bool cold, int64_t *lat, size_t n)
{
    char name[128];
    qsort(lat, n, sizeof *lat, cmp_i64);
    snprintf(name, sizeof name, "%s%s%s", o->image ? o->prefix : "", o->image ? "_" : "",
             cold ? "cold_start" : "dispatch");
    printf("{\"scenario\":\"%s\",\"jobs\":%zu,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,"
           "%s%s%s\"method\":\"QueueJob answered -> %s\"}\n",
           name, n, pct(lat, n, 0.5), pct(lat, n, 0.99), pct(lat, n, 1.0),
           o->image ? "\"image\":\"" : "", o->image ? o->image : "", o->image ? "\"," : "",
           o->image ? "the job's first output line read by the agent in its container"
                    : "job process running (its first write)");
}

/* One job at a time: ack -> running. cold: wait for no live worker first. */
static int bj_latency(const bj_opts *o, PGconn *pg, hodei_rpc_channel *ch, bool cold)
{
    int64_t *lat = calloc((size_t)o->jobs, sizeof *lat);
    char *argv_stamp[] = {(char *)o->self, (char *)o->stamp};
    char *argv_echo[] = {"sh", "-c", "echo go"};
    size_t n = 0;
    for (int64_t i = 0; i < o->jobs; i++) {
        char id[37];
        int64_t until = hodei_mono_ms() + BJ_WAIT_MS;
        if (cold)
            bj_wait_no_worker(o, pg, until);
        if (!(o->image ? bj_queue(ch, o->image, argv_echo, 3, id)
                       : bj_queue(ch, NULL, argv_stamp, 2, id)))
            break;
        int64_t acked = hodei_wall_us(), at = 0;
        while (hodei_mono_ms() < until &&
               (at = o->image ? bj_first_line_us(ch, id) : bj_stamp_of(o->stamp, id)) == 0)
            hodei_sleep_ms(o->image ? 5 : 1);
        if (at)
            lat[n++] = at - acked;
        /* The next job goes to a warm worker only once this one is done. */
        bj_wait_done(pg, id, until);
    }
    bj_report(o, cold, lat, n);
    free(lat);
    return n == (size_t)o->jobs ? 0 : 1;
}

/* The closed loop's shared count: a client takes a slot (issued) only
 * while issued - finished < in_flight; the poller raises finished. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t issued;   /* guarded by mu */
    int64_t finished; /* guarded by mu */
    int64_t total;
    int64_t in_flight;
} bj_loop;

typedef struct {
    const bj_opts *o;
    int64_t count;
    atomic_int *failed;
    int index;     /* client i uses the (i mod n)-th of --target a,b,... */
    bj_loop *loop; /* NULL: a burst of count jobs */
    atomic_llong *answered;
} bj_client;

/* Waits for a free slot in the closed loop; false when every job is issued. */
static bool bj_loop_take(bj_loop *l)
{
    bool ok = false;
    pthread_mutex_lock(&l->mu);
    while (l->issued < l->total && l->issued - l->finished >= l->in_flight)
        pthread_cond_wait(&l->cv, &l->mu);
    if (l->issued < l->total) {
        l->issued++;
        ok = true;
    }
    pthread_mutex_unlock(&l->mu);
    return ok;
}

/* The n-th address of a comma-separated list (wrapping around). */
static void bj_target_nth(const char *list, int n, char *out, size_t out_len)
{
    int count = 1;
    for (const char *p = list; *p; p++)
        count += *p == ',';
    const char *p = list;
    for (int i = 0; i < n % count; i++)
        p = strchr(p, ',') + 1;
    size_t len = strcspn(p, ",");
    if (len >= out_len)
        len = out_len - 1;
    memcpy(out, p, len);
    out[len] = '\0';
}

static void *bj_client_main(void *arg)
{
    bj_client *c = arg;
    hodei_rpc_channel *ch = NULL;
    char target[256];
    bj_target_nth(c->o->target, c->index, target, sizeof target);
    hodei_rpc_channel_opts co = {.target = target, .api_key = getenv("HODEI_API_KEY")};
    hodei_err err;
    char *argv[] = {"true"};
    if (hodei_rpc_channel_create(&co, &ch, &err) != HODEI_OK)
        return NULL;
    for (int64_t i = 0; c->loop ? bj_loop_take(c->loop) : i < c->count; i++) {
        if (bj_queue(ch, NULL, argv, 1, NULL))
            atomic_fetch_add(c->answered, 1);
        else
            atomic_fetch_add(c->failed, 1);
    }
    hodei_rpc_channel_destroy(ch);
    return NULL;
}

/* Closed loop: every BJ_POLL_MS, finished = answered - open (answered read
 * first, so a job answered meanwhile is not counted finished too early);
 * frees slots and prints the marks passed. */
static void bj_loop_poll(const bj_opts *o, PGconn *pg, bj_loop *l, atomic_llong *answered,
                         const char *open_q, int64_t t0)
{
    int64_t next_mark = 0;
    for (;;) {
        int64_t a = atomic_load(answered), open = bj_sql(pg, open_q);
        pthread_mutex_lock(&l->mu);
        if (open >= 0 && a - open > l->finished)
            l->finished = a - open;
        int64_t f = l->finished, issued = l->issued;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        if (o->marks && f >= next_mark) {
            printf("{\"mark\":%" PRId64 ",\"seconds\":%.3f}\n", f,
                   (double)(hodei_mono_ns() - t0) / 1e9);
            fflush(stdout);
            next_mark = (f / o->marks + 1) * o->marks;
        }
        if (issued >= l->total && f >= issued)
            return;
        hodei_sleep_ms(BJ_POLL_MS);
    }
}

static int bj_throughput(const bj_opts *o, PGconn *pg)
{
    pthread_t th[BJ_CLIENTS_MAX];
    bj_client cs[BJ_CLIENTS_MAX];
    atomic_int failed = 0;
    atomic_llong answered = 0;
    bj_loop loop = {.total = o->jobs, .in_flight = o->in_flight};
    pthread_mutex_init(&loop.mu, NULL);
    pthread_cond_init(&loop.cv, NULL);
    /* Only unfinished jobs are counted while waiting (through the partial
     * indexes of waiting and running jobs), every 25 ms: a count of SUCCEEDED
     * rows would walk an index that grows with every job and load the
     * database the benchmark measures. */
    const char *open_q = "SELECT (SELECT count(*) FROM jobs WHERE state = 'PENDING')"
                         " + (SELECT count(*) FROM jobs WHERE state IN ('ASSIGNED','RUNNING'))";
    int64_t before = bj_sql(pg, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'");
    int64_t t0 = hodei_mono_ns();
    for (int i = 0; i < o->clients; i++) {
        cs[i] = (bj_client){o, o->jobs / o->clients,        &failed,
                            i, o->in_flight ? &loop : NULL, &answered};
        pthread_create(&th[i], NULL, bj_client_main, &cs[i]);
    }
    if (o->in_flight)
        bj_loop_poll(o, pg, &loop, &answered, open_q, t0);
    for (int i = 0; i < o->clients; i++)
        pthread_join(th[i], NULL);
    int64_t total = atomic_load(&answered);
    int64_t until = hodei_mono_ms() + BJ_WAIT_MS, done = 0;
    while (hodei_mono_ms() < until && bj_sql(pg, open_q) != 0)
        hodei_sleep_ms(BJ_POLL_MS);
    done = bj_sql(pg, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'") - before;
    double secs = (double)(hodei_mono_ns() - t0) / 1e9;
    printf("{\"scenario\":\"throughput\",\"jobs\":%" PRId64 ",\"succeeded\":%" PRId64
           ",\"clients\":%" PRId64 ",\"in_flight\":%" PRId64 ",\"seconds\":%.2f,"
           "\"jobs_per_s\":%.0f,\"workers\":%" PRId64 "}\n",
           total, done, o->clients, o->in_flight, secs, (double)done / secs,
           bj_sql(pg, "SELECT count(*) FROM workers WHERE state IN ('READY','BUSY')"));
    pthread_mutex_destroy(&loop.mu);
    pthread_cond_destroy(&loop.cv);
    return done == total && atomic_load(&failed) == 0 ? 0 : 1;
}

static bool bj_parse(int argc, char **argv, bj_opts *o)
{
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (strcmp(k, "--target") == 0)
            o->target = v;
        else if (strcmp(k, "--db") == 0)
            o->db = v;
        else if (strcmp(k, "--stamp") == 0)
            o->stamp = v;
        else if (strcmp(k, "--image") == 0)
            o->image = v;
        else if (strcmp(k, "--prefix") == 0)
            o->prefix = v;
        else if (strcmp(k, "--jobs") == 0 && hodei_parse_i64(v, 1, BJ_JOBS_MAX, &o->jobs))
            continue;
        else if (strcmp(k, "--clients") == 0 && hodei_parse_i64(v, 1, BJ_CLIENTS_MAX, &o->clients))
            continue;
        else if (strcmp(k, "--in-flight") == 0 && hodei_parse_i64(v, 1, BJ_JOBS_MAX, &o->in_flight))
            continue;
        else if (strcmp(k, "--marks") == 0 && hodei_parse_i64(v, 1, BJ_JOBS_MAX, &o->marks))
            continue;
        else {
            fprintf(stderr, "hodei-bench-jobs: bad argument %s\n", k);
            return false;
        }
    }
    return o->target && o->db;
}

int main(int argc, char **argv)
{
    bj_opts o = {.jobs = 200, .clients = 16, .self = argv[0], .prefix = "container"};
    if (argc < 2 || !bj_parse(argc, argv, &o)) {
        fprintf(stderr,
                "usage: hodei-bench-jobs dispatch|coldstart|throughput --target H:P"
                " --db URL [--stamp FILE] [--jobs N] [--clients C] [--in-flight K [--marks M]]\n");
        return 2;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash && (size_t)(slash - self) + sizeof "/hodei-bench-stamp" <= sizeof self)
            memcpy(slash, "/hodei-bench-stamp", sizeof "/hodei-bench-stamp");
        o.self = self;
    }
    PGconn *pg = PQconnectdb(o.db);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "hodei-bench-jobs: %s", PQerrorMessage(pg));
        return 1;
    }
    hodei_rpc_global_init();
    hodei_rpc_channel *ch = NULL;
    hodei_rpc_channel_opts co = {.target = o.target, .api_key = getenv("HODEI_API_KEY")};
    hodei_err err;
    int rc = 2;
    if (hodei_rpc_channel_create(&co, &ch, &err) != HODEI_OK) {
        fprintf(stderr, "hodei-bench-jobs: %s\n", err.msg);
    } else if (strcmp(argv[1], "dispatch") == 0 && (o.stamp || o.image)) {
        rc = bj_latency(&o, pg, ch, false);
    } else if (strcmp(argv[1], "coldstart") == 0 && (o.stamp || o.image)) {
        rc = bj_latency(&o, pg, ch, true);
    } else if (strcmp(argv[1], "throughput") == 0) {
        rc = bj_throughput(&o, pg);
    } else {
        fprintf(stderr, "hodei-bench-jobs: unknown scenario %s (or --stamp missing)\n", argv[1]);
    }
    hodei_rpc_channel_destroy(ch);
    hodei_rpc_global_shutdown();
    PQfinish(pg);
    return rc;
}
