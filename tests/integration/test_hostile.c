/* Hostile clients against the whole product (real workers, real streams):
 * - a slow reader that never reads its SubscribeLogs streams: each is
 *   ended RESOURCE_EXHAUSTED naming streams.idle_timeout (it reads over the
 *   REST door's Server-Sent Events: see sse_open), while a client
 *   that reads gets the whole output, other calls answer, the worker stays
 *   READY, and the edge's RSS stays under a generous ceiling above its idle
 *   RSS (the exact figure is `make bench`'s, bench/hostile);
 * - many streams of one key: past metrics.streams_per_key a StreamMetrics
 *   stream is RESOURCE_EXHAUSTED naming it, over gRPC and as HTTP 429 on
 *   the REST door's Server-Sent Events (the same count); a closed stream
 *   makes room;
 * - a message past its method's maximum: RESOURCE_EXHAUSTED, and the next
 *   call of the same client answers;
 * - a follower that waits for its client past the job's end (longer than
 *   the grace after which a job with no end marker is ended) still gets
 *   every line, then the end; a reader of the finished job's archive that
 *   takes nothing is ended after 2 s (it holds a server thread);
 * - streams whose clients read nothing fill replies.buffer_max (their
 *   three quarters of it) and are ended RESOURCE_EXHAUSTED naming it or
 *   streams.idle_timeout or logs.follow_backlog_max, while a client that
 *   reads gets every line (it is not cut off), other clients' calls
 *   answer, the edge's RSS stays bounded and the worker's heartbeats keep
 *   it READY. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cluster.h"
#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/metrics.pb-c.h"

#define MSG_MAX 1024
#define JOB_WAIT_MS 300000
#define IDLE_MS 10000
#define ROUNDS 30 /* the big job writes ROUNDS times ROUND_LINES lines */
#define ROUND_LINES                                                                                \
    10000 /* of 100 bytes: 1 MB, then the job waits for the reading client to have them */
#define LINES (ROUNDS * ROUND_LINES)
#define SLOW_STREAMS 6
/* Generous: an ASan build's RSS moves with its quarantine; what is checked is
 * that six blocked streams of 10 MB each do not make the edge hold them. */
#define RSS_CEILING_KB (384 * 1024)

static cluster cl;
static int http_port;
static char http_env[64];
static char asan_env[1024];

static void setup_env3(const char *extra, const char *extra2, const char *extra3)
{
    http_port = harness_free_port();
    snprintf(http_env, sizeof http_env, "HODEI_HTTP_LISTEN=127.0.0.1:%d", http_port);
    /* ASan keeps up to 256 MB of freed memory by default: a small
     * quarantine, so that RSS shows what the edge holds */
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(asan_env, sizeof asan_env, "ASAN_OPTIONS=%s%squarantine_size_mb=4", asan ? asan : "",
             asan && *asan ? ":" : "");
    static const char *env[8];
    int n = 0;
    env[n++] = "HODEI_STREAMS_IDLE_TIMEOUT=10s";
    env[n++] = "HODEI_METRICS_STREAMS_PER_KEY=2";
    env[n++] = http_env;
    env[n++] = asan_env;
    env[n++] = extra;
    env[n++] = extra2;
    env[n++] = extra3;
    env[n] = NULL;
    cluster_start(&cl, env);
}

static void setup_env(const char *extra, const char *extra2)
{
    setup_env3(extra, extra2, NULL);
}

static void setup(void)
{
    setup_env(NULL, NULL);
}

/* logs.follow_backlog_max at 8 MiB; streams.idle_timeout long enough that
 * the backlog comes first however slowly a loaded machine runs the job. */
static void setup_backlog(void)
{
    setup_env("HODEI_LOGS_FOLLOW_BACKLOG_MAX=8388608", "HODEI_STREAMS_IDLE_TIMEOUT=600s");
}

/* streams.idle_timeout far longer than the pauses of a reader below. */
static void setup_patient(void)
{
    setup_env("HODEI_STREAMS_IDLE_TIMEOUT=300s", NULL);
}

static void teardown(void)
{
    cluster_stop(&cl);
}

/* A client of the REST door that asks for a job's logs as Server-Sent
 * Events and then reads nothing: a small receive buffer, so the kernel
 * cannot take much of it in its stead. (A gRPC client is no good here: its
 * transport's flow-control window grows with what the connection carries
 * and it buffers a whole job's output for the stream it does not read.) */
static int sse_open(const char *job)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 16 * 1024;
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /v1/jobs/%s/logs:follow HTTP/1.1\r\nHost: x\r\n"
                     "Authorization: Bearer %s\r\nConnection: close\r\n\r\n",
                     job, cl.stack.api_key);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    return fd;
}

/* Reads an SSE answer to its end; tail gets its last bytes (NUL-ended). */
static size_t sse_drain(int fd, char *tail, size_t tail_len)
{
    struct timeval tv = {.tv_sec = 60};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t total = 0, used = 0;
    char buf[65536];
    for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got <= 0)
            break;
        total += (size_t)got;
        size_t g = (size_t)got;
        if (g >= tail_len - 1) {
            memcpy(tail, buf + g - (tail_len - 1), tail_len - 1);
            used = tail_len - 1;
        } else {
            if (used + g > tail_len - 1) {
                size_t drop = used + g - (tail_len - 1);
                memmove(tail, tail + drop, used - drop);
                used -= drop;
            }
            memcpy(tail + used, buf, g);
            used += g;
        }
    }
    tail[used] = '\0';
    close(fd);
    return total;
}

static hodei_rpc_channel *chan(void)
{
    hodei_rpc_channel_opts o = {.target = cl.edge.target, .api_key = cl.stack.api_key};
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK, "%s", err.msg);
    return ch;
}

static hodei_rpc_stream *stream_open(hodei_rpc_channel *ch, const char *path,
                                     const ProtobufCMessage *req,
                                     const ProtobufCMessageDescriptor *desc)
{
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_open(ch, path, req, desc, 600000, &st, &err), HODEI_OK, "%s",
                 err.msg);
    return st;
}

static hodei_rpc_stream *follow(hodei_rpc_channel *ch, const char *job)
{
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    req.job_id = (char *)job;
    return stream_open(ch, "/hodei.v1.LogStreamService/SubscribeLogs", &req.base,
                       &hodei__v1__log_chunk__descriptor);
}

static void list_jobs_ok(void)
{
    Hodei__V1__ListJobsRequest req = HODEI__V1__LIST_JOBS_REQUEST__INIT;
    char msg[MSG_MAX];
    req.page_size = 5;
    cr_assert_eq(edge_call(&cl.edge, "ListJobs", &req.base,
                           &hodei__v1__list_jobs_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_OK, "another client's call: %s", msg);
}

/* Reads a stream to its end; returns the lines received, the status in res.
 * Each time ROUND_LINES more lines have arrived, creates gate.<round> (1, 2,
 * ...), the file the big job waits for before it writes its next round. */
static size_t drain(hodei_rpc_stream *st, hodei_rpc_result *res, long *rss_max, const char *gate)
{
    size_t lines = 0, round = 1;
    for (;;) {
        ProtobufCMessage *m = NULL;
        hodei_err err;
        hodei_status s = hodei_rpc_stream_recv(st, 120000, &m, res, &err);
        cr_assert_eq(s, HODEI_OK, "%s", err.msg);
        if (!m)
            return lines;
        lines += ((Hodei__V1__LogChunk *)m)->n_lines;
        protobuf_c_message_free_unpacked(m, NULL);
        for (; gate && lines >= round * ROUND_LINES; round++) {
            char path[800];
            snprintf(path, sizeof path, "%s.%zu", gate, round);
            FILE *f = fopen(path, "w");
            cr_assert_not_null(f, "%s", path);
            fclose(f);
        }
        if (rss_max && (lines % 1000) == 0) {
            long kb = harness_rss_kb(cl.edge.proc.pid);
            if (kb > *rss_max)
                *rss_max = kb;
        }
    }
}

/* Queues the big job with SLOW_STREAMS streams that do not read and one that
 * reads it all (asserted); returns the edge's largest RSS meanwhile. The job
 * writes a round only once the reading client has every line of the one
 * before (it waits for drain's gate file, at most 2 minutes): that client
 * keeps up with the job however loaded the machine, which is what a client
 * that reads relies on (it is never ended for being behind), while the
 * streams that read nothing fall behind by the whole job. */
static long big_job_with_blocked_readers(int *blocked, long idle_kb, int rounds, int pause_s)
{
    char big[HODEI_ID_BUF], state[32], script[1536], gate[700];
    snprintf(gate, sizeof gate, "%s/read-round", cl.stack.state_dir);
    snprintf(script, sizeof script,
             "sleep 2; for r in $(seq %d); do yes %099d | head -n %d; i=0;"
             " while [ ! -e '%s.'$r ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done; done;"
             " sleep %d; echo last-line",
             rounds, 0, ROUND_LINES, gate, pause_s);
    cluster_queue(&cl, script, 1, 0, big);
    for (int i = 0; i < SLOW_STREAMS; i++)
        blocked[i] = sse_open(big); /* never read while the job runs */
    hodei_rpc_channel *good = chan();
    hodei_rpc_stream *reader = follow(good, big);
    hodei_rpc_result res;
    long rss_max = idle_kb;
    size_t got = drain(reader, &res, &rss_max, gate);
    cr_assert_eq(res.code, HODEI_GRPC_OK, "the reading client: %s", res.message);
    cr_assert_eq(got, (size_t)rounds * ROUND_LINES + 1, "the reading client gets every line");
    hodei_rpc_stream_destroy(reader);
    hodei_rpc_channel_destroy(good);
    cr_assert(cluster_wait_job(&cl, big, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    return rss_max;
}

Test(hostile, a_reader_that_never_reads_is_cut_off_and_the_edge_stays_bounded, .init = setup,
     .fini = teardown, .timeout = 900)
{
    cluster_provider(&cl, 1, 600000, 0);
    char warm[HODEI_ID_BUF], state[32];
    cluster_queue(&cl, "echo warm", 1, 0, warm);
    cr_assert(cluster_wait_job(&cl, warm, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    hodei_sleep_ms(1000);
    long idle_kb = harness_rss_kb(cl.edge.proc.pid);
    cr_assert_gt(idle_kb, 0);

    int blocked[SLOW_STREAMS];
    /* 12 MB (more than the sockets take), then quiet for longer than
     * streams.idle_timeout: the streams are idle, under any backlog cap */
    long rss_max = big_job_with_blocked_readers(blocked, idle_kb, 12, 14);
    list_jobs_ok();

    hodei_sleep_ms(IDLE_MS + 2000); /* past streams.idle_timeout for every blocked stream */
    long kb = harness_rss_kb(cl.edge.proc.pid);
    if (kb > rss_max)
        rss_max = kb;
    for (int i = 0; i < SLOW_STREAMS; i++) {
        char tail[2048];
        size_t bytes = sse_drain(blocked[i], tail, sizeof tail);
        cr_assert(strstr(tail, "event: end"), "stream %d ends: ...%s", i, tail);
        cr_assert(strstr(tail, "RESOURCE_EXHAUSTED") && strstr(tail, "streams.idle_timeout"),
                  "stream %d: ...%s", i, tail);
        cr_assert_lt(bytes, (size_t)12 * ROUND_LINES * 100, "stream %d was cut off", i);
    }
    cr_log_info("edge RSS: idle %ld kB, most %ld kB with %d blocked readers", idle_kb, rss_max,
                SLOW_STREAMS);
    cr_assert_lt(rss_max - idle_kb, RSS_CEILING_KB, "edge RSS grew from %ld kB to %ld kB", idle_kb,
                 rss_max);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM workers WHERE state IN ('READY', 'BUSY')");
    cr_assert(cluster_wait_sql(&cl, sql, 1, 30000), "the worker stays READY");
    list_jobs_ok();
}

/* logs.follow_backlog_max: a follower whose client reads nothing (or less
 * than the job writes) is ended once that much of the job's output waits
 * for it, before streams.idle_timeout; the client that reads gets every
 * line; the edge's RSS stays under the ceiling. */
Test(hostile, a_reader_slower_than_the_job_is_ended_past_logs_follow_backlog_max,
     .init = setup_backlog, .fini = teardown, .timeout = 900)
{
    cluster_provider(&cl, 1, 600000, 0);
    char warm[HODEI_ID_BUF], state[32];
    cluster_queue(&cl, "echo warm", 1, 0, warm);
    cr_assert(cluster_wait_job(&cl, warm, JOB_WAIT_MS, state, sizeof state));
    hodei_sleep_ms(1000);
    long idle_kb = harness_rss_kb(cl.edge.proc.pid);
    int blocked[SLOW_STREAMS];
    long rss_max = big_job_with_blocked_readers(blocked, idle_kb, ROUNDS, 0);
    list_jobs_ok();
    for (int i = 0; i < SLOW_STREAMS; i++) {
        char tail[2048];
        sse_drain(blocked[i], tail, sizeof tail);
        cr_assert(strstr(tail, "RESOURCE_EXHAUSTED") && strstr(tail, "logs.follow_backlog_max"),
                  "stream %d: ...%s", i, tail);
    }
    cr_log_info("edge RSS: idle %ld kB, most %ld kB with %d readers %d MB behind", idle_kb, rss_max,
                SLOW_STREAMS, ROUNDS);
    cr_assert_lt(rss_max - idle_kb, RSS_CEILING_KB, "edge RSS grew from %ld kB to %ld kB", idle_kb,
                 rss_max);
}

/* One HTTP/1.1 GET with the key; returns the status code. */
static int http_get_status(const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char req[512], buf[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Connection: close\r\n\r\n",
                     path, cl.stack.api_key);
    cr_assert_eq(write(fd, req, (size_t)n), n);
    ssize_t got = read(fd, buf, sizeof buf - 1);
    close(fd);
    cr_assert_gt(got, 12, "an answer");
    buf[got] = '\0';
    return (int)strtol(buf + 9, NULL, 10);
}

static void expect_exhausted(hodei_rpc_stream *st, const char *text)
{
    ProtobufCMessage *m = NULL;
    hodei_rpc_result res;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_recv(st, 20000, &m, &res, &err), HODEI_OK, "%s", err.msg);
    cr_assert_null(m, "no snapshot for a stream past the limit");
    cr_assert_eq(res.code, HODEI_GRPC_RESOURCE_EXHAUSTED, "%s", res.message);
    cr_assert(strstr(res.message, text), "%s", res.message);
}

static void expect_snapshot(hodei_rpc_stream *st)
{
    ProtobufCMessage *m = NULL;
    hodei_rpc_result res;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_recv(st, 20000, &m, &res, &err), HODEI_OK, "%s", err.msg);
    cr_assert_not_null(m, "a snapshot: %s", res.message);
    protobuf_c_message_free_unpacked(m, NULL);
}

Test(hostile, one_key_holds_at_most_metrics_streams_per_key_on_both_doors, .init = setup,
     .fini = teardown, .timeout = 600)
{
    hodei_rpc_channel *ch = chan();
    Hodei__V1__StreamMetricsRequest req = HODEI__V1__STREAM_METRICS_REQUEST__INIT;
    const char *path = "/hodei.v1.MetricsService/StreamMetrics";
    const ProtobufCMessageDescriptor *d = &hodei__v1__metrics_snapshot__descriptor;
    hodei_rpc_stream *open[2] = {stream_open(ch, path, &req.base, d),
                                 stream_open(ch, path, &req.base, d)};
    expect_snapshot(open[0]);
    expect_snapshot(open[1]);
    hodei_rpc_stream *third = stream_open(ch, path, &req.base, d);
    expect_exhausted(third, "at most 2: metrics.streams_per_key");
    hodei_rpc_stream_destroy(third);
    cr_assert_eq(http_get_status("/v1/metrics:stream"), 429, "the REST door counts the same");
    list_jobs_ok();

    hodei_rpc_stream_destroy(open[0]);
    hodei_sleep_ms(1000); /* the edge saw it close */
    hodei_rpc_stream *again = stream_open(ch, path, &req.base, d);
    expect_snapshot(again);
    hodei_rpc_stream_destroy(again);
    hodei_rpc_stream_destroy(open[1]);

    /* A message past its method's maximum (64 KiB for ListJobs). */
    Hodei__V1__ListJobsRequest big = HODEI__V1__LIST_JOBS_REQUEST__INIT;
    char *token = malloc(200 * 1024);
    memset(token, 'a', 200 * 1024 - 1);
    token[200 * 1024 - 1] = '\0';
    big.page_token = token;
    char msg[MSG_MAX];
    cr_assert_eq(edge_call(&cl.edge, "ListJobs", &big.base,
                           &hodei__v1__list_jobs_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_RESOURCE_EXHAUSTED, "%s", msg);
    cr_assert(strstr(msg, "above this method's maximum"), "%s", msg);
    free(token);
    list_jobs_ok();
    hodei_rpc_channel_destroy(ch);
}

#define SSE_ANSWER_MAX (64u << 20)

/* Reads a whole HTTP answer (at most SSE_ANSWER_MAX bytes); returns its
 * body, de-chunked when it came with chunked transfer encoding (the REST
 * door's streams do over HTTP/1.1), NUL-ended; free() it. */
static char *http_read_body(int fd, size_t *len_out)
{
    struct timeval tv = {.tv_sec = 120};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char *raw = malloc(SSE_ANSWER_MAX + 1);
    cr_assert_not_null(raw);
    size_t len = 0;
    for (ssize_t got;
         len < SSE_ANSWER_MAX && (got = read(fd, raw + len, SSE_ANSWER_MAX - len)) > 0;)
        len += (size_t)got;
    close(fd);
    raw[len] = '\0';
    char *body = strstr(raw, "\r\n\r\n");
    cr_assert_not_null(body, "an HTTP answer: %.200s", raw);
    *body = '\0';
    bool chunked = strstr(raw, "Transfer-Encoding: chunked") != NULL;
    body += 4;
    size_t n = len - (size_t)(body - raw), out = 0;
    if (!chunked) {
        memmove(raw, body, n);
        out = n;
    } else {
        for (size_t i = 0; i < n;) { /* size line, data, CRLF */
            char *end = NULL;
            size_t size = strtoul(body + i, &end, 16);
            /* memmem, not strstr: ASan's strstr measures the whole rest */
            char *eol = memmem(end, n - (size_t)(end - body), "\r\n", 2);
            if (!eol || size == 0)
                break;
            i = (size_t)(eol + 2 - body);
            cr_assert_leq(i + size, n, "a chunk past the answer's end");
            memmove(raw + out, body + i, size);
            out += size;
            i += size + 2;
        }
    }
    raw[out] = '\0';
    *len_out = out;
    return raw;
}

/* Reads an SSE answer of LogChunks to its end: returns the lines
 * ("sequence":"N") counted; *gaps says how many times a line's sequence
 * was not the one after the last (*first_gap the line expected then); tail
 * gets the answer's last bytes (NUL-ended). */
static size_t sse_count_lines(int fd, size_t *gaps, uint64_t *first_gap, char *tail,
                              size_t tail_len)
{
    static const char needle[] = "\"sequence\":\"";
    size_t len = 0, count = 0;
    uint64_t last = 0;
    char *body = http_read_body(fd, &len);
    *gaps = 0;
    *first_gap = 0;
    const size_t k = sizeof needle - 1;
    for (const char *q = body; (q = memmem(q, len - (size_t)(q - body), needle, k)) != NULL;
         q += k) {
        uint64_t seq = strtoull(q + k, NULL, 10);
        if (seq != last + 1 && (*gaps)++ == 0)
            *first_gap = last + 1;
        last = seq;
        count++;
    }
    size_t t = len < tail_len - 1 ? len : tail_len - 1;
    memcpy(tail, body + len - t, t);
    tail[t] = '\0';
    free(body);
    return count;
}

/* The follower of a job waits for its client (8 chunks queued) while the
 * job ends; the client reads nothing until well past LOGS_END_GRACE_MS
 * (3 s) after the job's end, with lines still waiting at the edge. The
 * hub's checker, which ends the follower of a job finished without an end
 * marker, must not take that wait for the end: the client gets every
 * line, then the end with OK. (It used to end such a follower OK without
 * the lines still waiting in its subscription.) */
Test(hostile, a_follower_waiting_for_its_client_past_the_jobs_end_gets_every_line,
     .init = setup_patient, .fini = teardown, .timeout = 900)
{
    cluster_provider(&cl, 1, 600000, 0);
    char warm[HODEI_ID_BUF], big[HODEI_ID_BUF], state[32], script[256];
    cluster_queue(&cl, "echo warm", 1, 0, warm);
    cr_assert(cluster_wait_job(&cl, warm, JOB_WAIT_MS, state, sizeof state));
    /* 16 MB: more than the edge queues for one client and the sockets
     * take, less than logs.follow_backlog_max beyond that */
    const int lines = 160000;
    snprintf(script, sizeof script, "sleep 2; yes %099d | head -n %d", 0, lines);
    cluster_queue(&cl, script, 1, 0, big);
    int fd = sse_open(big);
    cr_assert(cluster_wait_job(&cl, big, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    hodei_sleep_ms(3000 + 1000 + 3000); /* the grace, the checker's period, and more */
    char tail[512];
    size_t gaps = 0;
    uint64_t first_gap = 0;
    size_t got = sse_count_lines(fd, &gaps, &first_gap, tail, sizeof tail);
    cr_assert(strstr(tail, "event: end") && strstr(tail, "\"code\":\"OK\""), "the end: ...%s",
              tail);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM job_log_archives WHERE job_id = '%s' AND lines = %d", big,
             lines);
    cr_assert(cluster_wait_sql(&cl, sql, 1, 60000), "the stored log holds every line");
    cr_assert_eq(got, (size_t)lines,
                 "every line reaches the client that waited: %zu of %d (%zu gaps, the first"
                 " at line %llu)",
                 got, lines, gaps, (unsigned long long)first_gap);
    cr_assert_eq(gaps, 0, "in order, with no gap");

    /* Now served from its archive, on a server thread: a client that takes
     * nothing holds it for at most 2 s, then the stream ends naming how to
     * resume; calls of others answer meanwhile. */
    fd = sse_open(big);
    hodei_sleep_ms(6000);
    list_jobs_ok();
    got = sse_count_lines(fd, &gaps, &first_gap, tail, sizeof tail);
    cr_assert(strstr(tail, "RESOURCE_EXHAUSTED") && strstr(tail, "from_sequence"),
              "an archive's reader that takes nothing is ended: ...%s", tail);
    cr_assert_lt(got, (size_t)lines);
    list_jobs_ok();
}

/* Reads a stream to its end, asserting each line follows the one before
 * (sequence + 1, from 1) and carries its own number (`seq` output); returns
 * the lines, the status in res. */
static size_t drain_in_order(hodei_rpc_stream *st, hodei_rpc_result *res)
{
    uint64_t next = 1;
    for (;;) {
        ProtobufCMessage *m = NULL;
        hodei_err err;
        cr_assert_eq(hodei_rpc_stream_recv(st, 120000, &m, res, &err), HODEI_OK, "%s", err.msg);
        if (!m)
            return (size_t)(next - 1);
        const Hodei__V1__LogChunk *c = (const Hodei__V1__LogChunk *)m;
        for (size_t i = 0; i < c->n_lines; i++, next++) {
            char want[32];
            int len = snprintf(want, sizeof want, "%llu", (unsigned long long)next);
            cr_assert_eq(c->lines[i]->sequence, next, "line %llu comes after %llu",
                         (unsigned long long)c->lines[i]->sequence, (unsigned long long)next - 1);
            cr_assert(c->lines[i]->data.len == (size_t)len &&
                          memcmp(c->lines[i]->data.data, want, (size_t)len) == 0,
                      "line %llu holds its number", (unsigned long long)next);
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

/* A SubscribeLogs that opens while the edge's NATS connection is down (the
 * server restarting) waits for it instead of failing, then gets every line
 * in order and the end; one already following when the server goes away
 * goes on from where it was (its consumer is made anew). */
Test(hostile, a_follower_opened_while_nats_restarts_gets_every_line, .init = setup_patient,
     .fini = teardown, .timeout = 900)
{
    cluster_provider(&cl, 1, 600000, 0);
    char warm[HODEI_ID_BUF], job[HODEI_ID_BUF], state[32], sql[256];
    cluster_queue(&cl, "echo warm", 1, 0, warm);
    cr_assert(cluster_wait_job(&cl, warm, JOB_WAIT_MS, state, sizeof state));
    const int lines = 20000;
    char script[256];
    /* lines before and after the restart, none while the server is down */
    snprintf(script, sizeof script, "seq 1 %d; sleep 20; seq %d %d", lines / 2, lines / 2 + 1,
             lines);
    cluster_queue(&cl, script, 1, 0, job);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'",
             job);
    cr_assert(cluster_wait_sql(&cl, sql, 1, JOB_WAIT_MS), "the job runs");
    hodei_rpc_channel *ch = chan();
    hodei_rpc_stream *before = follow(ch, job);
    hodei_sleep_ms(2000); /* it has the first half */
    harness_nats_stop(&cl.stack);
    hodei_sleep_ms(500);
    hodei_rpc_stream *during = follow(ch, job);
    hodei_sleep_ms(7000); /* longer than a JetStream API request waits (5 s) */
    harness_nats_start(&cl.stack);
    hodei_rpc_result res;
    size_t got = drain_in_order(during, &res);
    cr_assert_eq(res.code, HODEI_GRPC_OK, "the follower opened while NATS was down: %s",
                 res.message);
    cr_assert_eq(got, (size_t)lines, "it gets every line: %zu of %d", got, lines);
    got = drain_in_order(before, &res);
    cr_assert_eq(res.code, HODEI_GRPC_OK, "the follower already open: %s", res.message);
    cr_assert_eq(got, (size_t)lines, "it gets every line: %zu of %d", got, lines);
    hodei_rpc_stream_destroy(during);
    hodei_rpc_stream_destroy(before);
    hodei_rpc_channel_destroy(ch);
    cr_assert(cluster_wait_job(&cl, job, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
}

/* logs.follows_per_key at 2. */
static void setup_two_follows(void)
{
    setup_env("HODEI_LOGS_FOLLOWS_PER_KEY=2", "HODEI_STREAMS_IDLE_TIMEOUT=300s");
}

/* The first chunk of a live follower (so the edge holds it). */
static hodei_rpc_stream *follow_live(hodei_rpc_channel *ch, const char *job)
{
    hodei_rpc_stream *st = follow(ch, job);
    expect_snapshot(st);
    return st;
}

/* logs.follows_per_key counts every SubscribeLogs stream of a key, live
 * followers and reads of a finished job's archive alike, on both doors: at
 * the cap (one live, one archive) both are served; past it (two live) an
 * archive read is RESOURCE_EXHAUSTED naming the setting (HTTP 429 on the
 * REST door); a closed follower makes room, and an archive read gives its
 * place back when it ends. */
Test(hostile, logs_follows_per_key_counts_archive_reads_at_its_boundary, .init = setup_two_follows,
     .fini = teardown, .timeout = 600)
{
    cluster_provider(&cl, 2, 600000, 0);
    char done[HODEI_ID_BUF], live[HODEI_ID_BUF], state[32], sql[256], path[128];
    cluster_queue(&cl, "seq 1 3000", 1, 0, done);
    cr_assert(cluster_wait_job(&cl, done, JOB_WAIT_MS, state, sizeof state));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job_log_archives WHERE job_id = '%s'", done);
    cr_assert(cluster_wait_sql(&cl, sql, 1, 60000), "the finished job is archived");
    hodei_sleep_ms(4000); /* past the grace after which a finished job is read from its archive */
    cluster_queue(&cl, "echo start; sleep 300", 1, 0, live);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'",
             live);
    cr_assert(cluster_wait_sql(&cl, sql, 1, JOB_WAIT_MS), "the live job runs");

    hodei_rpc_channel *ch = chan();
    hodei_rpc_result res;
    hodei_rpc_stream *l1 = follow_live(ch, live);
    hodei_rpc_stream *a = follow(ch, done); /* the second: at the cap */
    cr_assert_eq(drain_in_order(a, &res), 3000);
    cr_assert_eq(res.code, HODEI_GRPC_OK, "%s", res.message);
    hodei_rpc_stream_destroy(a);
    hodei_rpc_stream *l2 = follow_live(ch, live); /* the archive read gave its place back */
    a = follow(ch, done);                         /* the third */
    expect_exhausted(a, "logs.follows_per_key");
    hodei_rpc_stream_destroy(a);
    snprintf(path, sizeof path, "/v1/jobs/%s/logs:follow", done);
    cr_assert_eq(http_get_status(path), 429, "the REST door counts the same");

    hodei_rpc_stream_destroy(l2); /* makes room, once the edge sees it closed */
    int64_t until = hodei_mono_ms() + 20000;
    size_t got = 0;
    do {
        hodei_sleep_ms(200);
        a = follow(ch, done);
        got = drain_in_order(a, &res);
        hodei_rpc_stream_destroy(a);
    } while (res.code == HODEI_GRPC_RESOURCE_EXHAUSTED && hodei_mono_ms() < until);
    cr_assert_eq(res.code, HODEI_GRPC_OK, "room after a follower closed: %s", res.message);
    cr_assert_eq(got, 3000);
    hodei_rpc_stream_destroy(l1);
    hodei_rpc_channel_destroy(ch);
}

/* replies.buffer_max at its least (32 MiB, of which streams may fill 24);
 * an unread stream is ended by it, streams.idle_timeout or
 * logs.follow_backlog_max (its default, 16 MiB), whichever comes first. */
static void setup_reply_budget(void)
{
    setup_env3("HODEI_REPLIES_BUFFER_MAX=33554432", "HODEI_STREAMS_IDLE_TIMEOUT=20s", NULL);
}

#define REPLY_BUDGET (32 << 20)
#define REPLY_STREAM_SHARE (REPLY_BUDGET - REPLY_BUDGET / 4)
#define BUDGET_ROUNDS 20 /* MB the job writes before its quiet time */
#define BUDGET_STREAMS 6 /* unread followers: 8 MB each they would hold */

/* The edge's gauge hodei_edge_reply_bytes. */
static long long reply_bytes(void)
{
    return (long long)harness_metric(cl.edge.health_port, "hodei_edge_reply_bytes");
}

/* While the unread streams hold what they may: another client's calls are
 * answered, the worker's last heartbeat is recent. */
static void budget_checks(const char *big, hodei_rpc_channel *other)
{
    list_jobs_ok();
    Hodei__V1__GetJobStatusRequest gs = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    gs.job_id = (char *)big;
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    cr_assert_eq(hodei_rpc_unary(other, "/hodei.v1.JobExecutionService/GetJobStatus", &gs.base,
                                 &hodei__v1__get_job_status_response__descriptor, 20000, &out, &res,
                                 &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(res.code, HODEI_GRPC_OK, "another client's GetJobStatus: %s", res.message);
    protobuf_c_message_free_unpacked(out, NULL);
    char id[HODEI_ID_BUF];
    cluster_queue(&cl, "echo other-client", 1, 0, id);
    cr_assert(cluster_wait_sql(&cl,
                               "SELECT count(*) FROM workers WHERE state IN ('READY', 'BUSY') AND"
                               " last_heartbeat_at > now() - interval '8 seconds'",
                               1, 5000),
              "the worker's heartbeats arrive");
}

Test(hostile, unread_streams_fill_replies_buffer_max_and_other_clients_are_still_answered,
     .init = setup_reply_budget, .fini = teardown, .timeout = 900)
{
    cluster_provider(&cl, 1, 600000, 0);
    char warm[HODEI_ID_BUF], big[HODEI_ID_BUF], state[32], script[512];
    cluster_queue(&cl, "echo warm", 1, 0, warm);
    cr_assert(cluster_wait_job(&cl, warm, JOB_WAIT_MS, state, sizeof state));
    hodei_sleep_ms(1000);
    long idle_kb = harness_rss_kb(cl.edge.proc.pid);
    /* BUDGET_ROUNDS MB, then quiet for longer than streams.idle_timeout */
    snprintf(script, sizeof script,
             "sleep 2; for r in $(seq %d); do yes %099d | head -n %d; sleep 0.5; done;"
             " sleep 30; echo last-line",
             BUDGET_ROUNDS, 0, ROUND_LINES);
    cluster_queue(&cl, script, 1, 0, big);
    int blocked[BUDGET_STREAMS];
    for (int i = 0; i < BUDGET_STREAMS; i++)
        blocked[i] = sse_open(big); /* never read while the job runs */
    hodei_rpc_channel *good = chan();
    hodei_rpc_channel *other = chan();
    hodei_rpc_stream *reader = follow(good, big);
    size_t lines = 0;
    long rss_max = idle_kb;
    long long held_max = 0;
    int64_t sampled_ms = 0;
    bool checked = false;
    hodei_rpc_result res;
    for (;;) {
        ProtobufCMessage *m = NULL;
        hodei_err err;
        cr_assert_eq(hodei_rpc_stream_recv(reader, 120000, &m, &res, &err), HODEI_OK, "%s",
                     err.msg);
        if (!m)
            break;
        lines += ((Hodei__V1__LogChunk *)m)->n_lines;
        protobuf_c_message_free_unpacked(m, NULL);
        if (hodei_mono_ms() < sampled_ms + 250)
            continue; /* sampling is slow: it must not make this reader slow */
        sampled_ms = hodei_mono_ms();
        long kb = harness_rss_kb(cl.edge.proc.pid);
        if (kb > rss_max)
            rss_max = kb;
        long long held = reply_bytes();
        if (held > held_max)
            held_max = held;
        /* the streams' share is spent (less one chunk): the others' turn */
        if (!checked && held >= REPLY_STREAM_SHARE - (1 << 20)) {
            checked = true;
            budget_checks(big, other);
            /* a reader that pauses while the budget is spent (here for 3 s
             * more) waits like any stream, for streams.idle_timeout: it is
             * not cut off */
            hodei_sleep_ms(3000);
        }
    }
    cr_assert_eq(res.code, HODEI_GRPC_OK, "the reading client, after %zu lines: %s", lines,
                 res.message);
    cr_assert_eq(lines, (size_t)BUDGET_ROUNDS * ROUND_LINES + 1,
                 "the reading client gets every line");
    cr_assert(checked, "the unread streams filled the budget (at most %lld bytes held)", held_max);
    hodei_rpc_stream_destroy(reader);
    for (int i = 0; i < BUDGET_STREAMS; i++) {
        char tail[2048];
        size_t bytes = sse_drain(blocked[i], tail, sizeof tail);
        cr_assert(strstr(tail, "RESOURCE_EXHAUSTED") && (strstr(tail, "streams.idle_timeout") ||
                                                         strstr(tail, "logs.follow_backlog_max") ||
                                                         strstr(tail, "replies.buffer_max")),
                  "stream %d: ...%s", i, tail);
        cr_assert_lt(bytes, (size_t)BUDGET_ROUNDS * ROUND_LINES * 100, "stream %d", i);
    }
    cr_log_info("edge RSS: idle %ld kB, most %ld kB; replies held for clients: at most %lld"
                " bytes (replies.buffer_max %d)",
                idle_kb, rss_max, held_max, REPLY_BUDGET);
    /* at most the streams' share, plus one message for each stream holding
     * nothing (a reading stream always gets its next), plus replies */
    cr_assert_leq(held_max, (long long)REPLY_BUDGET + (BUDGET_STREAMS + 1) * (2 << 20));
    cr_assert_lt(rss_max - idle_kb, RSS_CEILING_KB, "edge RSS grew from %ld kB to %ld kB", idle_kb,
                 rss_max);
    cr_assert(cluster_wait_job(&cl, big, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    cr_assert_eq(harness_sql_i64(&cl.stack, "SELECT count(*) FROM workers WHERE state = 'LOST'"), 0,
                 "the worker was never LOST");
    list_jobs_ok();
    hodei_rpc_channel_destroy(other);
    hodei_rpc_channel_destroy(good);
}
