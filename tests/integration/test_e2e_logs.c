/* Logs that outlive the stream, on the whole product: a finished job's
 * output reads back whole (GetLogs, SubscribeLogs through `hodei logs -f`)
 * after JetStream's HODEI_LOGS was purged, with the same (epoch, sequence)
 * numbers; a job printing past logs.job_max shows one marker line saying
 * how much was dropped, and another job's output running beside it is
 * whole. With logs.archive_store: s3 (against an S3-compatible server that
 * checks SigV4, tests/clients/artifact_servers.js), the archives are
 * objects in the bucket, read back the same way, with credentials from a
 * file and then from a stored secret, and removed from the bucket when
 * retention deletes their job. */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "hodei/bus.h"
#include "hodei/id.h"
#include "hodei/names.h"
#include "hodei/util.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/secret.pb-c.h"
#include "hodei/v1/worker.pb-c.h"

#define MSG_MAX 1024
#define JOB_WAIT_MS 180000
#define LIMIT 65536

static cluster cl;

static const char *const logs_env[] = {"HODEI_LOGS_JOB_MAX=65536", NULL};

static Hodei__V1__GetLogsResponse *get_logs(const char *id)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    req.job_id = (char *)id;
    cr_assert_eq(edge_call_path(&cl.edge, "/hodei.v1.LogStreamService/GetLogs", &req.base,
                                &hodei__v1__get_logs_response__descriptor, &resp, msg, MSG_MAX),
                 HODEI_GRPC_OK, "GetLogs: %s", msg);
    return (Hodei__V1__GetLogsResponse *)resp;
}

/* A connection to the stack's NATS and its JetStream context. */
static void js_open(natsConnection **nc, jsCtx **js)
{
    cr_assert_eq(natsConnection_ConnectTo(nc, cl.stack.nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(js, *nc, NULL), NATS_OK);
}

static void js_close(natsConnection *nc, jsCtx *js)
{
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void purge_logs(void)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    js_open(&nc, &js);
    cr_assert_eq(js_PurgeStream(js, HODEI_STREAM_LOGS, NULL, &jerr), NATS_OK, "purge: %d",
                 (int)jerr);
    jsStreamInfo *si = NULL;
    cr_assert_eq(js_GetStreamInfo(&si, js, HODEI_STREAM_LOGS, NULL, &jerr), NATS_OK);
    cr_assert_eq(si->State.Msgs, 0, "the stream holds nothing after the purge");
    jsStreamInfo_Destroy(si);
    js_close(nc, js);
}

static void wait_done(const char *id, const char *want)
{
    char state[32];
    cr_assert(cluster_wait_job(&cl, id, JOB_WAIT_MS, state, sizeof state), "job did not end");
    cr_assert_str_eq(state, want, "job %s", id);
}

Test(e2e_logs, archived_logs_read_back_after_a_purge_and_limits_hold, .timeout = 900)
{
    char a[HODEI_ID_BUF], big[HODEI_ID_BUF], small[HODEI_ID_BUF], sql[512], out[4096];
    cluster_start(&cl, logs_env);
    cluster_provider(&cl, 3, 5000, 0);

    /* 3,000 lines, then the stream is purged: the archive has them all. */
    cluster_queue(&cl, "i=1; while [ $i -le 3000 ]; do echo line-$i; i=$((i+1)); done", 1, 0, a);
    wait_done(a, "SUCCEEDED");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job_log_archives WHERE job_id = '%s'", a);
    cr_assert(cluster_wait_sql(&cl, sql, 1, 60000), "no archive row for job %s", a);
    purge_logs();
    Hodei__V1__GetLogsResponse *r = get_logs(a);
    cr_assert_eq(r->n_lines, 3000);
    cr_assert(r->complete);
    for (size_t i = 0; i < r->n_lines; i++) {
        char want[32];
        snprintf(want, sizeof want, "line-%zu", i + 1);
        cr_assert_eq(r->lines[i]->sequence, i + 1);
        cr_assert_eq(r->lines[i]->epoch, 1);
        cr_assert_eq(r->lines[i]->data.len, strlen(want));
        cr_assert(memcmp(r->lines[i]->data.data, want, strlen(want)) == 0);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* SubscribeLogs (hodei logs -f) reads the archive too, and resumes by
     * (epoch, sequence). */
    cr_assert_eq(harness_sh(&cl.stack, out, sizeof out,
                            "'%s/hodei' --server %s logs -f %s | wc -l | tr -d ' \\n'",
                            cl.stack.bin, cl.edge.target, a),
                 0);
    cr_assert_str_eq(out, "3000");
    cr_assert_eq(harness_sh(&cl.stack, out, sizeof out,
                            "'%s/hodei' --server %s logs --from 2991 %s | head -1", cl.stack.bin,
                            cl.edge.target, a),
                 0);
    cr_assert_str_eq(out, "line-2991\n");

    /* A job past logs.job_max beside one that prints a little. */
    cluster_queue(&cl, "sleep 1; for i in $(seq 1 40); do echo small-$i; sleep 0.05; done", 1, 0,
                  small);
    cluster_queue(&cl,
                  "i=0; while [ $i -lt 20000 ]; do"
                  " echo 0123456789012345678901234567890123456789012345678901234567890123456789;"
                  " i=$((i+1)); done",
                  1, 0, big);
    wait_done(big, "SUCCEEDED");
    wait_done(small, "SUCCEEDED");
    r = get_logs(big);
    cr_assert_gt(r->n_lines, 100);
    cr_assert_lt(r->n_lines, 20000);
    int64_t bytes = 0;
    for (size_t i = 0; i + 1 < r->n_lines; i++)
        bytes += (int64_t)r->lines[i]->data.len + 1;
    cr_assert_leq(bytes, LIMIT);
    const Hodei__V1__LogLine *last = r->lines[r->n_lines - 1];
    cr_assert_eq(last->stream, HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM);
    snprintf(out, sizeof out, "%.*s", (int)last->data.len, (const char *)last->data.data);
    cr_assert_not_null(strstr(out, "of output were dropped"), "%s", out);
    char want[64];
    snprintf(want, sizeof want, "hodei: %zu lines", 20000 - (r->n_lines - 1));
    cr_assert(strncmp(out, want, strlen(want)) == 0, "%s (want %s)", out, want);
    cr_assert_eq(last->sequence, 20000, "the marker takes the last dropped sequence");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = get_logs(small);
    cr_assert_eq(r->n_lines, 40, "the other job's output is whole");
    for (size_t i = 0; i < r->n_lines; i++)
        cr_assert_eq(r->lines[i]->sequence, i + 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cluster_stop(&cl);
}

/* ------------------------------------------------- silent jobs, cheaply */

/* The messages on the job's log subject, and its last one's headers. */
static uint64_t subject_state(const char *id, bool *last_is_end, bool *last_alone)
{
    char subject[128];
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsOptions o;
    jsStreamInfo *si = NULL;
    natsMsg *last = NULL;
    const char *v = NULL;
    snprintf(subject, sizeof subject, "%s%s", HODEI_SUBJ_LOGS_PREFIX, id);
    js_open(&nc, &js);
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = subject;
    cr_assert_eq(js_GetStreamInfo(&si, js, HODEI_STREAM_LOGS, &o, &jerr), NATS_OK);
    uint64_t n = 0;
    for (int i = 0; si->State.Subjects && i < si->State.Subjects->Count; i++)
        if (strcmp(si->State.Subjects->List[i].Subject, subject) == 0)
            n = si->State.Subjects->List[i].Msgs;
    jsStreamInfo_Destroy(si);
    cr_assert_eq(js_GetLastMsg(&last, js, HODEI_STREAM_LOGS, subject, NULL, &jerr), NATS_OK);
    *last_is_end = natsMsgHeader_Get(last, HODEI_HDR_LOG_END, &v) == NATS_OK;
    *last_alone = natsMsgHeader_Get(last, HODEI_HDR_EXPECT_LAST_SUBJ_SEQ, &v) == NATS_OK;
    natsMsg_Destroy(last);
    js_close(nc, js);
    return n;
}

/* One line of (id, epoch 1) published straight onto the job's subject, as
 * an earlier stream of the attempt would have. */
static void publish_line(const char *id, const char *text)
{
    char subject[128], msg_id[128];
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    jsPubAck *pa = NULL;
    Hodei__V1__LogLine line = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__LogLine *lines[1] = {&line};
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    uint8_t buf[512];
    line.sequence = 1; /* epoch: the batch's, as a worker sends it */
    line.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT;
    line.data.data = (uint8_t *)text;
    line.data.len = strlen(text);
    b.job_id = (char *)id;
    b.epoch = 1;
    b.lines = lines;
    b.n_lines = 1;
    size_t len = hodei__v1__log_batch__pack(&b, buf);
    cr_assert_lt(len, sizeof buf);
    snprintf(subject, sizeof subject, "%s%s", HODEI_SUBJ_LOGS_PREFIX, id);
    snprintf(msg_id, sizeof msg_id, "%s:1:1", id);
    natsMsg *m = NULL;
    js_open(&nc, &js);
    cr_assert_eq(natsMsg_Create(&m, subject, NULL, (const char *)buf, (int)len), NATS_OK);
    cr_assert_eq(natsMsgHeader_Set(m, HODEI_HDR_MSG_ID, msg_id), NATS_OK);
    cr_assert_eq(js_PublishMsg(&pa, js, m, NULL, &jerr), NATS_OK, "publish: %d", (int)jerr);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
    js_close(nc, js);
}

/* A job that printed nothing ends with a marker stored on the condition
 * that its subject was empty, and the log archive settles it from that
 * marker alone; when lines of the attempt reached the subject by another
 * way, the conditional marker is refused and stored again after them, and
 * the archive keeps them. */
Test(e2e_logs, a_silent_job_is_settled_by_its_end_marker_alone, .timeout = 600)
{
    char quiet[HODEI_ID_BUF], other[HODEI_ID_BUF], sql[512], out[4096];
    bool is_end = false, alone = false;
    cluster_start(&cl, NULL);
    cluster_provider(&cl, 2, 60000, 0);
    double silent0 =
        harness_metric(cl.edge.health_port, "hodei_logs_archive_silent_by_marker_total");
    cr_assert_eq(silent0, 0);

    cluster_queue(&cl, "true", 1, 0, quiet);
    wait_done(quiet, "SUCCEEDED");
    for (int i = 0; i < 600 && harness_metric(cl.edge.health_port,
                                              "hodei_logs_archive_silent_by_marker_total") < 1;
         i++)
        usleep(100000);
    cr_assert_eq(harness_metric(cl.edge.health_port, "hodei_logs_archive_silent_by_marker_total"),
                 1, "the archive settled the silent job from its marker");
    cr_assert_eq(subject_state(quiet, &is_end, &alone), 1, "only the end marker is stored");
    cr_assert(is_end && alone, "stored on the condition of an empty subject");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job_log_archives WHERE job_id = '%s'", quiet);
    cr_assert_eq(harness_sql_i64(&cl.stack, sql), 0, "nothing to archive");
    Hodei__V1__GetLogsResponse *r = get_logs(quiet);
    cr_assert_eq(r->n_lines, 0);
    cr_assert(r->complete, "the log of a silent job is complete");
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* Silent on its stream, but a line of the attempt is on the subject. */
    char go[128], script[256];
    snprintf(go, sizeof go, "/tmp/hodei-e2e-logs-go-%d", (int)getpid());
    unlink(go);
    snprintf(script, sizeof script, "while [ ! -e %s ]; do sleep 0.1; done", go);
    cluster_queue(&cl, script, 1, 0, other);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'",
             other);
    cr_assert(cluster_wait_sql(&cl, sql, 1, JOB_WAIT_MS), "job %s did not run", other);
    publish_line(other, "from-elsewhere");
    FILE *f = fopen(go, "w"); /* the job ends after the line is stored */
    cr_assert_not_null(f);
    fclose(f);
    wait_done(other, "SUCCEEDED");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job_log_archives WHERE job_id = '%s'", other);
    cr_assert(cluster_wait_sql(&cl, sql, 1, 60000), "no archive row for job %s", other);
    cr_assert_eq(subject_state(other, &is_end, &alone), 2, "the line, then the marker");
    cr_assert(is_end, "the end marker was stored after the line");
    cr_assert(!alone, "... without the condition");
    cr_assert_eq(harness_metric(cl.edge.health_port, "hodei_logs_archive_silent_by_marker_total"),
                 1);
    purge_logs();
    r = get_logs(other);
    cr_assert_eq(r->n_lines, 1, "the archive kept the line");
    cr_assert(r->complete);
    cr_assert_eq(r->lines[0]->data.len, strlen("from-elsewhere"));
    cr_assert(memcmp(r->lines[0]->data.data, "from-elsewhere", r->lines[0]->data.len) == 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    unlink(go);
    cr_assert_neq(harness_sh(&cl.stack, out, sizeof out, "grep -c 'marker not stored' '%s'",
                             cl.edge.proc.log_path),
                  0, "no end marker was lost: %s", out);
    cluster_stop(&cl);
}

/* ------------------------------------------------------------ S3 */

static char s3_dir[512];
static harness_proc s3_servers;
static char s3_env_text[12][700];
static const char *s3_env[13];

static void s3_env_set(size_t i, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s3_env_set(size_t i, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s3_env_text[i], sizeof s3_env_text[i], fmt, ap);
    va_end(ap);
    s3_env[i] = s3_env_text[i];
}

/* node's S3-compatible server (and its https/http siblings) with bucket logs. */
static void s3_servers_start(int port)
{
    char cmd[2048], ready[600], script[1024], node_path[700], ps[3][16], cert[600], key[600];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 1"
             " -subj /CN=127.0.0.1 >/dev/null 2>&1",
             s3_dir);
    cr_assert_eq(system(cmd), 0, "openssl failed");
    snprintf(ps[0], sizeof ps[0], "%d", harness_free_port());
    snprintf(ps[1], sizeof ps[1], "%d", harness_free_port());
    snprintf(ps[2], sizeof ps[2], "%d", port);
    snprintf(cert, sizeof cert, "%s/c.pem", s3_dir);
    snprintf(key, sizeof key, "%s/k.pem", s3_dir);
    snprintf(ready, sizeof ready, "%s/ready", s3_dir);
    snprintf(script, sizeof script, "%s/tests/clients/artifact_servers.js", cl.stack.root);
    snprintf(node_path, sizeof node_path, "NODE_PATH=%s/tests/clients/node_modules", cl.stack.root);
    const char *argv[] = {"/usr/bin/node", script, s3_dir, ps[0],  ps[1],
                          ps[2],           cert,   key,    "logs", NULL};
    const char *senv[] = {node_path, NULL};
    harness_proc_start(&cl.stack, &s3_servers, argv, senv);
    for (int i = 0; i < 600 && access(ready, F_OK) != 0 && harness_proc_alive(&s3_servers); i++)
        usleep(100000);
    cr_assert_eq(access(ready, F_OK), 0, "the S3 server did not start; see %s",
                 s3_servers.log_path);
}

/* 0 when the object is in the bucket (signed GET by curl), else curl's code. */
static int s3_object_status(int port, const char *location)
{
    char out[256];
    return harness_sh(&cl.stack, out, sizeof out,
                      "curl -sf -o /dev/null --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER"
                      " -H x-amz-content-sha256:UNSIGNED-PAYLOAD http://127.0.0.1:%d/%s",
                      port, location + strlen("s3://"));
}

static void s3_location(const char *id, char *out, size_t out_len)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "psql -qtA \"$HODEI_DATABASE_URL\" -c \"SELECT location FROM job_log_archives"
             " WHERE job_id = '%s' AND length(data) = 0\" | tr -d '\\n'",
             id);
    cr_assert_eq(harness_sh(&cl.stack, out, out_len, "%s", cmd), 0);
}

static void s3_check_job(int port, const char *prefix, char *loc, size_t loc_len, char *id)
{
    char sql[512], want[300];
    cluster_queue(&cl, "i=1; while [ $i -le 2000 ]; do echo s3-$i; i=$((i+1)); done", 1, 0, id);
    wait_done(id, "SUCCEEDED");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM job_log_archives WHERE job_id = '%s' AND location IS NOT NULL",
             id);
    cr_assert(cluster_wait_sql(&cl, sql, 1, 60000), "no S3 archive row for job %s", id);
    s3_location(id, loc, loc_len);
    snprintf(want, sizeof want, "s3://logs/%s%s/1.pb.zlib", prefix, id);
    cr_assert_str_eq(loc, want, "the row names its object, its data column is empty");
    cr_assert_eq(s3_object_status(port, loc), 0, "%s is not in the bucket", loc);
    purge_logs();
    Hodei__V1__GetLogsResponse *r = get_logs(id);
    cr_assert_eq(r->n_lines, 2000);
    cr_assert(r->complete);
    for (size_t i = 0; i < r->n_lines; i++) {
        char line[32];
        snprintf(line, sizeof line, "s3-%zu", i + 1);
        cr_assert_eq(r->lines[i]->sequence, i + 1);
        cr_assert_eq(r->lines[i]->data.len, strlen(line));
        cr_assert(memcmp(r->lines[i]->data.data, line, strlen(line)) == 0);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    char out[64];
    cr_assert_eq(harness_sh(&cl.stack, out, sizeof out,
                            "'%s/hodei' --server %s logs -f %s | wc -l | tr -d ' \\n'",
                            cl.stack.bin, cl.edge.target, id),
                 0);
    cr_assert_str_eq(out, "2000", "SubscribeLogs reads the S3 archive too");
}

static void set_secret(const char *name, const char *value)
{
    Hodei__V1__SetSecretRequest req = HODEI__V1__SET_SECRET_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    req.name = (char *)name;
    req.value.data = (uint8_t *)value;
    req.value.len = strlen(value);
    cr_assert_eq(edge_call_path(&cl.edge, "/hodei.v1.SecretService/SetSecret", &req.base,
                                &hodei__v1__set_secret_response__descriptor, &resp, msg, MSG_MAX),
                 HODEI_GRPC_OK, "SetSecret: %s", msg);
    protobuf_c_message_free_unpacked(resp, NULL);
}

Test(e2e_logs, archives_in_s3_read_back_and_go_with_their_job, .timeout = 900)
{
    char id1[HODEI_ID_BUF], id2[HODEI_ID_BUF], loc1[600], loc2[600], cmd[700];
    int port = harness_free_port();
    snprintf(s3_dir, sizeof s3_dir, "/tmp/hodei-e2e-logs3-XXXXXX");
    cr_assert_not_null(mkdtemp(s3_dir));
    snprintf(cmd, sizeof cmd, "printf 'S3RVER:S3RVER\\n' > %s/cred", s3_dir);
    cr_assert_eq(system(cmd), 0);
    s3_env_set(0, "HODEI_SECRETS_MASTER_KEY=%s",
               "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677");
    s3_env_set(1, "HODEI_LOGS_ARCHIVE_STORE=s3");
    s3_env_set(2, "HODEI_LOGS_ARCHIVE_S3_BUCKET=logs");
    s3_env_set(3, "HODEI_LOGS_ARCHIVE_S3_ENDPOINT=http://127.0.0.1:%d", port);
    s3_env_set(4, "HODEI_LOGS_ARCHIVE_S3_PATH_STYLE=true");
    s3_env_set(5, "HODEI_LOGS_ARCHIVE_S3_PREFIX=arch/");
    s3_env_set(6, "HODEI_LOGS_ARCHIVE_S3_CREDENTIALS_FILE=%s/cred", s3_dir);
    s3_env_set(7, "HODEI_RETENTION_INTERVAL=1s");
    cluster_start(&cl, s3_env); /* the edge reaches the store only when archiving */
    cluster_provider(&cl, 2, 5000, 0);
    s3_servers_start(port);

    /* credentials from a file */
    s3_check_job(port, "arch/", loc1, sizeof loc1, id1);

    /* credentials from a stored secret (read at start-up: the edge restarts) */
    set_secret("logs-s3", "{\"access_key_id\":\"S3RVER\",\"secret_access_key\":\"S3RVER\"}");
    s3_env_set(6, "HODEI_LOGS_ARCHIVE_S3_CREDENTIALS=logs-s3");
    s3_env_set(5, "HODEI_LOGS_ARCHIVE_S3_PREFIX=arch2/");
    cluster_kill_restart_edge(&cl);
    s3_check_job(port, "arch2/", loc2, sizeof loc2, id2);

    /* retention deletes the first job (made 31 days old): its row goes, and
     * the edge removes its object; the second stays whole */
    char sql[512];
    snprintf(sql, sizeof sql,
             "WITH u AS (UPDATE jobs SET created_at = now() - interval '31 days',"
             " finished_at = now() - interval '31 days' WHERE id = '%s' RETURNING 1)"
             " SELECT count(*) FROM u",
             id1);
    cr_assert_eq(harness_sql_i64(&cl.stack, sql), 1);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM jobs WHERE id = '%s'", id1);
    cr_assert(cluster_wait_sql(&cl, sql, 0, 60000), "retention did not delete job %s", id1);
    cr_assert(cluster_wait_sql(&cl, "SELECT count(*) FROM log_archive_deletions", 0, 60000),
              "the edge did not remove the deleted job's archive object");
    cr_assert_neq(s3_object_status(port, loc1), 0, "%s is still in the bucket", loc1);
    cr_assert_eq(s3_object_status(port, loc2), 0, "%s went too", loc2);
    Hodei__V1__GetLogsResponse *r = get_logs(id2);
    cr_assert_eq(r->n_lines, 2000);
    protobuf_c_message_free_unpacked(&r->base, NULL);

    harness_proc_stop(&s3_servers, SIGTERM, 5000);
    cluster_stop(&cl);
    snprintf(cmd, sizeof cmd, "rm -rf %s", s3_dir);
    (void)system(cmd);
}
