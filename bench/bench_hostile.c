/* hodei-bench-hostile: the edge's memory under clients that never read.
 * Queues one job printing --mb MB (100-byte lines), opens --streams
 * streams of its logs that never read (Server-Sent Events on the REST door,
 * --http, with a small receive buffer: a gRPC client's transport would
 * buffer the output itself), and one gRPC SubscribeLogs that reads to the
 * end; samples the edge's RSS (--pid) every 50 ms from before the job (its
 * idle RSS: the ceiling the figure is read against) until 2 s after the
 * reader's end. With --archive, the same again once the job finished
 * (its log then read back from its archive: hostile_archive_rss_kib).
 * Prints one JSON line each: idle and largest RSS, their ratio,
 * what the reader got and how fast (lines/s from its first line to its
 * last; bench/run prints the JetStream publish ceiling of the same run).
 * Needs workers (run after the jobs scenarios). */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hodei/assert.h"
#include "hodei/rpc.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/logs.pb-c.h"

#define BH_STREAMS_MAX 64
#define BH_SAMPLE_MS 50
#define BH_AFTER_MS 2000
#define BH_TIMEOUT_MS 600000
#define BH_ARCHIVE_WAIT_MS 15000 /* the job's end to its archive, with room */

static atomic_bool sampling = true;
static atomic_long rss_max_kib;
static int edge_pid;

static long rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", edge_pid);
    FILE *f = fopen(path, "r");
    long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

static void *sampler(void *arg)
{
    (void)arg;
    while (atomic_load(&sampling)) {
        long kib = rss_kib();
        if (kib > atomic_load(&rss_max_kib))
            atomic_store(&rss_max_kib, kib);
        hodei_sleep_ms(BH_SAMPLE_MS);
    }
    return NULL;
}

static void queue_job(hodei_rpc_channel *ch, int64_t mb, char *id, size_t id_len)
{
    char script[256];
    snprintf(script, sizeof script, "sleep 1; yes %099d | head -n %" PRId64, 0, mb * 10000);
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[] = {"-c", script};
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.name = "bench-hostile";
    req.spec = &spec;
    ProtobufCMessage *resp = NULL;
    hodei_rpc_result res;
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_unary(ch, "/hodei.v1.JobExecutionService/QueueJob", &req.base,
                                 &hodei__v1__queue_job_response__descriptor, 30000, &resp, &res,
                                 &err) == HODEI_OK);
    if (res.code != HODEI_GRPC_OK) {
        fprintf(stderr, "bench-hostile: QueueJob: %s\n", res.message);
        exit(1);
    }
    hodei_strlcpy(id, ((Hodei__V1__QueueJobResponse *)resp)->job_id, id_len);
    protobuf_c_message_free_unpacked(resp, NULL);
}

static hodei_rpc_stream *follow(hodei_rpc_channel *ch, const char *job)
{
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    req.job_id = (char *)job;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_stream_open(ch, "/hodei.v1.LogStreamService/SubscribeLogs", &req.base,
                                       &hodei__v1__log_chunk__descriptor, BH_TIMEOUT_MS, &st,
                                       &err) == HODEI_OK);
    return st;
}

static int sse_open(int port, const char *job)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 16 * 1024;
    HODEI_ASSERT(fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small) == 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    HODEI_ASSERT(connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    const char *key = getenv("HODEI_API_KEY");
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /v1/jobs/%s/logs:follow HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
                     job, key ? key : "");
    HODEI_ASSERT(write(fd, req, (size_t)n) == n);
    return fd;
}

static hodei_rpc_channel *channel(const char *target)
{
    hodei_rpc_channel_opts o = {.target = target, .api_key = getenv("HODEI_API_KEY")};
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    HODEI_ASSERT(hodei_rpc_channel_create(&o, &ch, &err) == HODEI_OK);
    return ch;
}

/* n SSE streams of job that read nothing and one gRPC reader that reads
 * it all, the edge's RSS sampled from idle_kib on; one JSON line. */
static void bh_phase(hodei_rpc_channel *good, int http, const char *job, int64_t n, int64_t mb,
                     long idle_kib, const char *scenario)
{
    pthread_t t;
    atomic_store(&sampling, true);
    HODEI_ASSERT(pthread_create(&t, NULL, sampler, NULL) == 0);
    int blocked[BH_STREAMS_MAX];
    for (int64_t i = 0; i < n; i++)
        blocked[i] = sse_open(http, job);
    hodei_rpc_stream *reader = follow(good, job);
    int64_t lines = 0, first_us = 0, last_us = 0;
    hodei_rpc_result res = {0};
    for (;;) {
        ProtobufCMessage *m = NULL;
        hodei_err err;
        if (hodei_rpc_stream_recv(reader, BH_TIMEOUT_MS, &m, &res, &err) != HODEI_OK || !m)
            break;
        size_t got = ((Hodei__V1__LogChunk *)m)->n_lines;
        protobuf_c_message_free_unpacked(m, NULL);
        if (got > 0 && lines == 0)
            first_us = (hodei_mono_ns() / 1000);
        if (got > 0)
            last_us = (hodei_mono_ns() / 1000);
        lines += (int64_t)got;
    }
    hodei_sleep_ms(BH_AFTER_MS);
    atomic_store(&sampling, false);
    pthread_join(t, NULL);
    long max_kib = atomic_load(&rss_max_kib);
    printf("{\"scenario\":\"%s\",\"blocked_streams\":%" PRId64 ",\"job_output_mb\":%" PRId64
           ",\"reader_lines\":%" PRId64
           ",\"reader_status\":\"%s\",\"idle_kib\":%ld,\"max_kib\":%ld,\"growth_kib\":%ld,"
           "\"max_to_idle_ratio\":%.2f,\"reader_lines_per_s\":%.0f}\n",
           scenario, n, mb, lines, hodei_grpc_code_str(res.code), idle_kib, max_kib,
           max_kib - idle_kib, idle_kib > 0 ? (double)max_kib / (double)idle_kib : 0.0,
           last_us > first_us ? (double)lines * 1e6 / (double)(last_us - first_us) : 0.0);
    fflush(stdout);
    hodei_rpc_stream_destroy(reader);
    for (int64_t i = 0; i < n; i++)
        close(blocked[i]);
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    int64_t mb = 30, n = 16, pid = 0, http = 0;
    bool archive = false;
    for (int i = 1; i < argc; i += 2) {
        if (strcmp(argv[i], "--archive") == 0) {
            archive = true;
            i--;
        } else if (i + 1 == argc) {
            fprintf(stderr, "hodei-bench-hostile: %s needs a value\n", argv[i]);
            return 2;
        } else if (strcmp(argv[i], "--target") == 0)
            target = argv[i + 1];
        else if (strcmp(argv[i], "--pid") == 0 && hodei_parse_i64(argv[i + 1], 1, INT32_MAX, &pid))
            ;
        else if (strcmp(argv[i], "--http") == 0 && hodei_parse_i64(argv[i + 1], 1, 65535, &http))
            ;
        else if (strcmp(argv[i], "--mb") == 0 && hodei_parse_i64(argv[i + 1], 1, 1024, &mb))
            ;
        else if (strcmp(argv[i], "--streams") == 0 &&
                 hodei_parse_i64(argv[i + 1], 1, BH_STREAMS_MAX, &n))
            ;
        else {
            fprintf(stderr, "hodei-bench-hostile: bad argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!target || pid == 0 || http == 0) {
        fprintf(stderr, "usage: hodei-bench-hostile --target HOST:PORT --http PORT --pid EDGE_PID"
                        " [--mb 30] [--streams 16] [--archive]\n");
        return 2;
    }
    edge_pid = (int)pid;
    hodei_rpc_global_init();
    hodei_rpc_channel *good = channel(target);
    char job[64];
    long idle_kib = rss_kib();
    atomic_store(&rss_max_kib, idle_kib);
    queue_job(good, mb, job, sizeof job);
    bh_phase(good, (int)http, job, n, mb, idle_kib, "hostile_rss_kib");
    if (archive) { /* the same job again, finished: read from its archive */
        hodei_sleep_ms(BH_ARCHIVE_WAIT_MS);
        idle_kib = rss_kib();
        atomic_store(&rss_max_kib, idle_kib);
        bh_phase(good, (int)http, job, n, mb, idle_kib, "hostile_archive_rss_kib");
    }
    hodei_rpc_channel_destroy(good);
    hodei_rpc_global_shutdown();
    return 0;
}
