/* Artifacts end to end on the whole product, against real servers started
 * here: node's https (with this test's own CA) and an S3-compatible server
 * that checks SigV4 signatures (tests/clients/artifact_servers.js).
 *   - an https input with its checksum is in the job's working folder; a
 *     wrong checksum fails the job before it runs, naming the input;
 *   - s3 in (an object, a prefix) and out (a small file, a 50 MiB file in
 *     multipart, a glob), with sizes and checksums; wrong credentials give
 *     a clear error;
 *   - no path leads out of the workspace: "..", absolute paths and unknown
 *     schemes are refused at the door, a symlink the job makes to /etc is
 *     never read, file:// reads only below worker.file_inputs. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster.h"
#include "hodei/id.h"
#include "hodei/util.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/secret.pb-c.h"

#define MSG_MAX 1024
#define OUT_MAX 65536
#define JOB_WAIT_MS 180000
#define ENV_MAX 16
#define BIG_BYTES (50 * 1024 * 1024)

static cluster cl;
static char dir[512]; /* the servers' folder */
static int https_port, http_port, s3_port;
static harness_proc servers;
static char env_text[ENV_MAX][700];
static const char *env[ENV_MAX + 1];

/* An artifact as the tests write it: positional, later fields 0/NULL. */
typedef struct {
    const char *source, *destination, *checksum, *credentials;
    int when;
} art;
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

static void sh(char *out, size_t out_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void sh(char *out, size_t out_len, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = harness_sh(&cl.stack, out, out_len, "%s", cmd);
    cr_assert_eq(rc, 0, "command failed (%d): %s -> %s", rc, cmd, out ? out : "");
}

/* A CA and a certificate for 127.0.0.1, made with openssl. */
static void make_certs(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem"
             " -days 2 -subj /CN=hodei-test-ca >/dev/null 2>&1 &&"
             " openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr"
             " -subj /CN=127.0.0.1 >/dev/null 2>&1 &&"
             " printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext &&"
             " openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
             " -out srv.pem -days 2 -extfile san.ext >/dev/null 2>&1",
             dir);
    cr_assert_eq(system(cmd), 0, "openssl failed");
}

static void env_add(size_t *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void env_add(size_t *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(env_text[*n], sizeof env_text[*n], fmt, ap);
    va_end(ap);
    env[*n] = env_text[*n];
    (*n)++;
    env[*n] = NULL;
}

static void servers_start(void)
{
    char ready[600], script[1024], node_path[700];
    snprintf(ready, sizeof ready, "%s/ready", dir);
    snprintf(script, sizeof script, "%s/tests/clients/artifact_servers.js", cl.stack.root);
    snprintf(node_path, sizeof node_path, "NODE_PATH=%s/tests/clients/node_modules", cl.stack.root);
    char ps[3][16], cert[600], key[600];
    snprintf(ps[0], sizeof ps[0], "%d", https_port);
    snprintf(ps[1], sizeof ps[1], "%d", http_port);
    snprintf(ps[2], sizeof ps[2], "%d", s3_port);
    snprintf(cert, sizeof cert, "%s/srv.pem", dir);
    snprintf(key, sizeof key, "%s/srv.key", dir);
    const char *argv[] = {"/usr/bin/node", script, dir, ps[0], ps[1],
                          ps[2],           cert,   key, "bkt", NULL};
    const char *senv[] = {node_path, NULL};
    harness_proc_start(&cl.stack, &servers, argv, senv);
    for (int i = 0; i < 300 && access(ready, F_OK) != 0; i++)
        usleep(100000);
    cr_assert_eq(access(ready, F_OK), 0, "artifact servers did not start; see %s",
                 servers.log_path);
}

static bool job_user_on; /* worker.job_user: hodei-job (the local stack's) */

static void setup(void)
{
    size_t n = 0;
    snprintf(dir, sizeof dir, "/tmp/hodei-e2e-art-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    make_certs();
    https_port = harness_free_port();
    http_port = harness_free_port();
    s3_port = harness_free_port();
    env_add(&n, "HODEI_SECRETS_MASTER_KEY=%s",
            "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677");
    env_add(&n, "HODEI_WORKER_ARTIFACTS_CA_FILE=%s/ca.pem", dir);
    env_add(&n, "HODEI_WORKER_S3_ENDPOINT=http://127.0.0.1:%d", s3_port);
    env_add(&n, "HODEI_WORKER_S3_PATH_STYLE=true");
    env_add(&n, "HODEI_WORKER_FILE_INPUTS=%s/allowed", dir);
    env_add(&n, "HODEI_WORKER_ARTIFACT_RETRIES=2");
    if (job_user_on) { /* as the local stack's workers */
        env_add(&n, "HODEI_WORKER_JOB_USER=hodei-job");
        env_add(&n, "HODEI_WORKER_JOB_UIDS=2000000-2099999");
    }
    cluster_start(&cl, env);
    cluster_provider(&cl, 2, 5000, 0);
    servers_start();
}

static void setup_job_user(void)
{
    job_user_on = true;
    setup();
}

static void teardown(void)
{
    if (servers.pid > 0)
        harness_proc_stop(&servers, SIGTERM, 5000);
    cluster_stop(&cl);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    (void)system(cmd);
}

/* ------------------------------------------------------------ the edge */

static hodei_grpc_code call(const char *path, const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
                            char *msg)
{
    return edge_call_path(&cl.edge, path, req, desc, resp, msg, MSG_MAX);
}

static void set_secret(const char *name, const char *value)
{
    Hodei__V1__SetSecretRequest req = HODEI__V1__SET_SECRET_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    req.name = (char *)name;
    req.value.data = (uint8_t *)value;
    req.value.len = strlen(value);
    cr_assert_eq(call("/hodei.v1.SecretService/SetSecret", &req.base,
                      &hodei__v1__set_secret_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "SetSecret: %s", msg);
    protobuf_c_message_free_unpacked(resp, NULL);
}

/* Queues `sh -c script` with inputs and outputs; returns the gRPC code and
 * fills id_out (or msg_out with the refusal). */
static hodei_grpc_code queue(const char *script, const art *in, size_t n_in, const art *out,
                             size_t n_out, char *id_out, char *msg_out)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    Hodei__V1__Artifact a[8], *ap[8];
    char *args[] = {"-c", (char *)script};
    char key[HODEI_ID_BUF];
    ProtobufCMessage *resp = NULL;
    cr_assert_leq(n_in + n_out, 8);
    for (size_t i = 0; i < n_in + n_out; i++) {
        const art *x = i < n_in ? &in[i] : &out[i - n_in];
        hodei__v1__artifact__init(&a[i]);
        a[i].source = (char *)x->source;
        a[i].destination = (char *)(x->destination ? x->destination : "");
        a[i].checksum = (char *)(x->checksum ? x->checksum : "");
        a[i].credentials = (char *)(x->credentials ? x->credentials : "");
        a[i].when = (Hodei__V1__ArtifactWhen)x->when;
        ap[i] = &a[i];
    }
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.max_attempts = 1;
    spec.timeout_ms = 120000;
    spec.n_inputs = n_in;
    spec.inputs = ap;
    spec.n_outputs = n_out;
    spec.outputs = ap + n_in;
    req.spec = &spec;
    hodei_id_new(key);
    req.idempotency_key = key;
    hodei_grpc_code code = call("/hodei.v1.JobExecutionService/QueueJob", &req.base,
                                &hodei__v1__queue_job_response__descriptor, &resp, msg_out);
    if (code == HODEI_GRPC_OK)
        hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)resp)->job_id, HODEI_ID_BUF);
    protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

static Hodei__V1__Job *job_get(const char *id)
{
    Hodei__V1__GetJobStatusRequest req = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    req.job_id = (char *)id;
    cr_assert_eq(call("/hodei.v1.JobExecutionService/GetJobStatus", &req.base,
                      &hodei__v1__get_job_status_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "GetJobStatus: %s", msg);
    Hodei__V1__GetJobStatusResponse *r = (Hodei__V1__GetJobStatusResponse *)resp;
    Hodei__V1__Job *j = r->job;
    r->job = NULL;
    protobuf_c_message_free_unpacked(resp, NULL);
    return j;
}

/* The job's output; system lines (artifacts) prefixed "sys: ". */
static void job_output(const char *id, char *out, size_t out_len)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    size_t n = 0;
    req.job_id = (char *)id;
    cr_assert_eq(call("/hodei.v1.LogStreamService/GetLogs", &req.base,
                      &hodei__v1__get_logs_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "GetLogs: %s", msg);
    Hodei__V1__GetLogsResponse *r = (Hodei__V1__GetLogsResponse *)resp;
    out[0] = 0;
    for (size_t i = 0; i < r->n_lines; i++) {
        Hodei__V1__LogLine *l = r->lines[i];
        cr_assert_eq(l->sequence, i + 1, "sequences from 1 without gaps");
        int w = snprintf(out + n, out_len - n, "%s%.*s\n",
                         l->stream == HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM ? "sys: " : "",
                         (int)l->data.len, (const char *)l->data.data);
        if (w < 0 || (size_t)w >= out_len - n)
            break;
        n += (size_t)w;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
}

/* Waits for the job's end; a state other than want fails with its error
 * and output. */
static void wait_state(const char *id, const char *want_state)
{
    char state[32], log[OUT_MAX];
    cr_assert(cluster_wait_job(&cl, id, JOB_WAIT_MS, state, sizeof state), "job did not end");
    if (strcmp(state, want_state) != 0) {
        Hodei__V1__Job *j = job_get(id);
        job_output(id, log, sizeof log);
        cr_assert_fail("job %s: %s, expected %s; error: %s; output:\n%s", id, state, want_state,
                       j->error, log);
    }
}

static void run_job(const char *script, const art *in, size_t n_in, const art *out, size_t n_out,
                    const char *want_state, char *id)
{
    char msg[MSG_MAX], state[32];
    cr_assert_eq(queue(script, in, n_in, out, n_out, id, msg), HODEI_GRPC_OK, "QueueJob: %s", msg);
    cr_assert(cluster_wait_job(&cl, id, JOB_WAIT_MS, state, sizeof state), "job did not end");
    if (strcmp(state, want_state) != 0) {
        char log[OUT_MAX];
        Hodei__V1__Job *j = job_get(id);
        job_output(id, log, sizeof log);
        cr_assert_fail("job %s: %s, expected %s; error: %s; output:\n%s", id, state, want_state,
                       j->error, log);
    }
}

#define S3CURL                                                                                     \
    "curl -sf --aws-sigv4 aws:amz:us-east-1:s3 --user S3RVER:S3RVER -H "                           \
    "x-amz-content-sha256:UNSIGNED-PAYLOAD"

static void s3_put_file(const char *path, const char *key)
{
    sh(NULL, 0, S3CURL " -T '%s' http://127.0.0.1:%d/bkt/%s", path, s3_port, key);
}

/* sha256 hex of an object in the S3 server, or of a file. */
static void s3_sha(const char *key, char *out, size_t out_len)
{
    sh(out, out_len, S3CURL " http://127.0.0.1:%d/bkt/%s | sha256sum | cut -c1-64 | tr -d '\\n'",
       s3_port, key);
}

static void file_sha(const char *path, char *out, size_t out_len)
{
    sh(out, out_len, "sha256sum '%s' | cut -c1-64 | tr -d '\\n'", path);
}

/* The job's record lists every output with its final location, size and
 * checksum (GetJobStatus, hodei status), and hodei artifacts --download
 * fetches them back, checksums verified. */
static void records_check(const char *id, const char *big_sha)
{
    Hodei__V1__Job *j = job_get(id);
    static const char *const want[][2] = {{"big.bin", "s3://bkt/run/big.bin"},
                                          {"out/x.csv", "s3://bkt/run/csv/x.csv"},
                                          {"out/y.csv", "s3://bkt/run/csv/y.csv"},
                                          {"small.txt", "s3://bkt/run/small.txt"}};
    cr_assert_eq(j->n_artifacts, 4, "records: %zu", j->n_artifacts);
    for (size_t i = 0; i < 4; i++) {
        const Hodei__V1__ArtifactRecord *r = NULL;
        for (size_t k = 0; k < j->n_artifacts; k++)
            if (strcmp(j->artifacts[k]->source, want[i][0]) == 0)
                r = j->artifacts[k];
        cr_assert_not_null(r, "no record for %s", want[i][0]);
        cr_assert_str_eq(r->destination, want[i][1]);
        cr_assert_eq(r->state, HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED);
        cr_assert_eq(strlen(r->checksum), 71);
        cr_assert_eq(r->epoch, j->epoch);
        if (i == 0) {
            cr_assert_eq(r->size_bytes, BIG_BYTES);
            cr_assert_str_eq(r->checksum + 7, big_sha);
        }
    }
    hodei__v1__job__free_unpacked(j, NULL);
    char out[OUT_MAX], got[80];
    sh(out, sizeof out, "'%s/hodei' --server %s status %s", cl.stack.bin, cl.edge.target, id);
    cr_assert_not_null(strstr(out, "UPLOADED"), "%s", out);
    cr_assert_not_null(strstr(out, "s3://bkt/run/big.bin"), "%s", out);
    sh(out, sizeof out,
       "AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER"
       " HODEI_S3_ENDPOINT=http://127.0.0.1:%d HODEI_S3_PATH_STYLE=true"
       " '%s/hodei' --server %s artifacts %s --download '%s/dl' 2>&1",
       s3_port, cl.stack.bin, cl.edge.target, id, dir);
    char path[700];
    snprintf(path, sizeof path, "%s/dl/big.bin", dir);
    file_sha(path, got, sizeof got);
    cr_assert_str_eq(got, big_sha, "%s", out);
    snprintf(path, sizeof path, "%s/dl/out/y.csv", dir);
    cr_assert_eq(access(path, F_OK), 0, "%s", out);
}

/* ------------------------------------------------------------ tests */

TestSuite(e2e_artifacts, .init = setup, .fini = teardown, .timeout = 900);

Test(e2e_artifacts, https_inputs_checksums_redirects_and_retries)
{
    char id[HODEI_ID_BUF], bad[HODEI_ID_BUF], sum[80], want[96], out[OUT_MAX], url[600], redir[600],
        flaky[600], down[600], marker[600];
    sh(NULL, 0, "head -c 300000 /dev/urandom > %s/files/data.bin", dir);
    char path[600];
    snprintf(path, sizeof path, "%s/files/data.bin", dir);
    file_sha(path, sum, sizeof sum);
    snprintf(want, sizeof want, "sha256:%s", sum);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/files/data.bin", https_port);
    snprintf(redir, sizeof redir, "https://127.0.0.1:%d/redirect/3/data.bin", https_port);
    snprintf(flaky, sizeof flaky, "https://127.0.0.1:%d/flaky/data.bin", https_port);
    art in[] = {{url, "", want}, {redir, "in/r.bin"}, {flaky, "in/f.bin"}};
    run_job("sha256sum data.bin in/r.bin in/f.bin; pwd", in, 3, NULL, 0, "SUCCEEDED", id);
    job_output(id, out, sizeof out);
    cr_assert_not_null(strstr(out, sum), "the file is in the working folder: %s", out);
    cr_assert_not_null(strstr(out, "sys: input spec.inputs[0] https://127.0.0.1"), "%s", out);
    cr_assert_not_null(strstr(out, "verified"), "%s", out);
    cr_assert_not_null(strstr(out, "trying again"), "the 503 was retried: %s", out);
    cr_assert_null(strstr(out, "No such file"), "%s", out);

    /* A wrong checksum: the job never runs, and the error names the input. */
    snprintf(marker, sizeof marker, "touch %s/ran", dir);
    art wrong[] = {
        {url, "", "sha256:0000000000000000000000000000000000000000000000000000000000000000"}};
    run_job(marker, wrong, 1, NULL, 0, "FAILED", bad);
    Hodei__V1__Job *j = job_get(bad);
    cr_assert_not_null(strstr(j->error, "spec.inputs[0]"), "%s", j->error);
    cr_assert_not_null(strstr(j->error, "checksum mismatch"), "%s", j->error);
    hodei__v1__job__free_unpacked(j, NULL);
    snprintf(path, sizeof path, "%s/ran", dir);
    cr_assert_neq(access(path, F_OK), 0, "the job ran despite the bad input");

    /* https may not be redirected to http; a missing file is a clear 404. */
    snprintf(down, sizeof down, "https://127.0.0.1:%d/to-http/data.bin", https_port);
    art downgrade[] = {{down, "x.bin"}};
    run_job("true", downgrade, 1, NULL, 0, "FAILED", bad);
    j = job_get(bad);
    cr_assert_not_null(strstr(j->error, "spec.inputs[0]"), "%s", j->error);
    hodei__v1__job__free_unpacked(j, NULL);
    snprintf(down, sizeof down, "https://127.0.0.1:%d/files/nosuch.bin", https_port);
    art missing[] = {{down, ""}};
    run_job("true", missing, 1, NULL, 0, "FAILED", bad);
    j = job_get(bad);
    cr_assert_not_null(strstr(j->error, "HTTP 404"), "%s", j->error);
    hodei__v1__job__free_unpacked(j, NULL);
}

Test(e2e_artifacts, s3_in_and_out_with_multipart_and_globs)
{
    char id[HODEI_ID_BUF], bad[HODEI_ID_BUF], out[OUT_MAX], path[600], a[80], b[80];
    set_secret("s3-cred", "S3RVER:S3RVER");
    set_secret("s3-wrong", "{\"access_key_id\":\"S3RVER\",\"secret_access_key\":\"WRONG\"}");
    sh(NULL, 0,
       "mkdir -p %s/src/sub && echo alpha > %s/src/a.txt && echo beta > %s/src/sub/b.txt"
       " && head -c 100000 /dev/urandom > %s/src/obj.bin",
       dir, dir, dir, dir);
    snprintf(path, sizeof path, "%s/src/a.txt", dir);
    s3_put_file(path, "in/tree/a.txt");
    snprintf(path, sizeof path, "%s/src/sub/b.txt", dir);
    s3_put_file(path, "in/tree/sub/b.txt");
    snprintf(path, sizeof path, "%s/src/obj.bin", dir);
    s3_put_file(path, "in/obj.bin");

    art in[] = {{"s3://bkt/in/obj.bin", "", NULL, "s3-cred"},
                {"s3://bkt/in/tree/", "tree", NULL, "s3-cred"}};
    art outs[] = {{"small.txt", "s3://bkt/run/small.txt", NULL, "s3-cred"},
                  {"big.bin", "s3://bkt/run/", NULL, "s3-cred"},
                  {"out/*.csv", "s3://bkt/run/csv/", NULL, "s3-cred"}};
    run_job("cat tree/a.txt tree/sub/b.txt && sha256sum obj.bin && echo small > small.txt &&"
            " head -c 52428800 /dev/urandom > big.bin && mkdir out && echo 1 > out/x.csv &&"
            " echo 2 > out/y.csv && echo 3 > out/z.txt",
            in, 2, outs, 3, "SUCCEEDED", id);
    job_output(id, out, sizeof out);
    cr_assert_not_null(strstr(out, "alpha\nbeta\n"), "%s", out);
    file_sha(path, a, sizeof a);
    cr_assert_not_null(strstr(out, a), "obj.bin staged whole: %s", out);
    cr_assert_not_null(strstr(out, "multipart upload, 7 parts"), "%s", out);
    cr_assert_not_null(strstr(out, "outputs: 4 uploaded"), "%s", out);
    s3_sha("run/small.txt", a, sizeof a);
    file_sha("/dev/null", b, sizeof b);
    cr_assert_str_neq(a, b);
    char n[64];
    sh(n, sizeof n, S3CURL " http://127.0.0.1:%d/bkt/run/big.bin | wc -c | tr -d ' \\n'", s3_port);
    cr_assert_str_eq(n, "52428800");
    s3_sha("run/big.bin", a, sizeof a);
    cr_assert_not_null(strstr(out, a), "the recorded checksum matches the object: %s", out);
    sh(n, sizeof n, S3CURL " http://127.0.0.1:%d/bkt/run/csv/x.csv", s3_port);
    cr_assert_str_eq(n, "1\n");
    sh(n, sizeof n, S3CURL " http://127.0.0.1:%d/bkt/run/csv/y.csv", s3_port);
    cr_assert_str_eq(n, "2\n");
    cr_assert_neq(
        harness_sh(&cl.stack, NULL, 0, S3CURL " http://127.0.0.1:%d/bkt/run/csv/z.txt", s3_port), 0,
        "z.txt does not match the glob");
    records_check(id, a);

    /* Wrong credentials: a clear error naming the input, the job not run. */
    art wrong[] = {{"s3://bkt/in/obj.bin", "", NULL, "s3-wrong"}};
    run_job("true", wrong, 1, NULL, 0, "FAILED", bad);
    Hodei__V1__Job *j = job_get(bad);
    cr_assert_not_null(strstr(j->error, "spec.inputs[0] s3://bkt/in/obj.bin"), "%s", j->error);
    cr_assert_not_null(strstr(j->error, "SignatureDoesNotMatch"), "%s", j->error);
    hodei__v1__job__free_unpacked(j, NULL);
    /* A credentials secret that does not exist ends the attempt at the edge. */
    art nosecret[] = {{"s3://bkt/in/obj.bin", "", NULL, "nosuch"}};
    run_job("true", nosecret, 1, NULL, 0, "FAILED", bad);
    j = job_get(bad);
    cr_assert_str_eq(j->error, "secret nosuch not found");
    hodei__v1__job__free_unpacked(j, NULL);
}

Test(e2e_artifacts, paths_never_lead_out_of_the_workspace)
{
    char id[HODEI_ID_BUF], msg[MSG_MAX], out[OUT_MAX], src[700];
    /* At the door. */
    static const struct {
        art in, out;
        bool output;
        const char *field;
    } refused[] = {
        {{"https://h/x", "../x"}, {0}, false, "spec.inputs[0].destination"},
        {{"https://h/x", "/etc/x"}, {0}, false, "spec.inputs[0].destination"},
        {{"ftp://h/x", "x"}, {0}, false, "spec.inputs[0].source"},
        {{0}, {"../../etc/passwd", "s3://bkt/x"}, true, "spec.outputs[0].source"},
        {{0}, {"/etc/passwd", "s3://bkt/x"}, true, "spec.outputs[0].source"},
        {{0}, {"x", "file:///tmp/x"}, true, "spec.outputs[0].destination"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        hodei_grpc_code code = refused[i].output
                                   ? queue("true", NULL, 0, &refused[i].out, 1, id, msg)
                                   : queue("true", &refused[i].in, 1, NULL, 0, id, msg);
        cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT, "case %zu", i);
        cr_assert(strncmp(msg, refused[i].field, strlen(refused[i].field)) == 0, "%s", msg);
    }

    /* A symlink the job makes to /etc is never read. */
    set_secret("s3-cred", "S3RVER:S3RVER");
    art outs[] = {{"leak.txt", "s3://bkt/leak/", NULL, "s3-cred", 2},
                  {"etcdir/passwd", "s3://bkt/leak/", NULL, "s3-cred", 2},
                  {"*.txt", "s3://bkt/leak/glob/", NULL, "s3-cred", 2}};
    run_job("ln -s /etc/passwd leak.txt && ln -s /etc etcdir && echo fine > ok.txt", NULL, 0, outs,
            3, "SUCCEEDED", id);
    job_output(id, out, sizeof out);
    cr_assert_not_null(strstr(out, "leak.txt -> s3://bkt/leak/leak.txt: FAILED: "), "%s", out);
    cr_assert_not_null(strstr(out, "etcdir/passwd"), "%s", out);
    cr_assert_null(strstr(out, "root:"), "%s", out);
    char listing[OUT_MAX];
    sh(listing, sizeof listing, S3CURL " 'http://127.0.0.1:%d/bkt?list-type=2&prefix=leak%%2F'",
       s3_port);
    cr_assert_null(strstr(listing, "<Key>leak/leak.txt</Key>"), "%s", listing);
    cr_assert_null(strstr(listing, "passwd"), "%s", listing);
    cr_assert_not_null(strstr(listing, "<Key>leak/glob/ok.txt</Key>"), "%s", listing);
    Hodei__V1__Job *rec = job_get(id);
    size_t failed = 0, uploaded = 0;
    for (size_t i = 0; i < rec->n_artifacts; i++) {
        const Hodei__V1__ArtifactRecord *r = rec->artifacts[i];
        if (r->state == HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED) {
            uploaded++;
            cr_assert_str_eq(r->source, "ok.txt");
        } else {
            failed++;
            cr_assert(strstr(r->error, "symbolic link") != NULL, "%s: %s", r->source, r->error);
        }
    }
    cr_assert_eq(uploaded, 1);
    cr_assert_eq(failed, 3, "leak.txt twice (by name, by glob), etcdir/passwd");
    hodei__v1__job__free_unpacked(rec, NULL);

    /* file:// only below worker.file_inputs, and no symlink out of it. */
    sh(NULL, 0,
       "mkdir -p %s/allowed && echo ref > %s/allowed/ref.txt &&"
       " ln -sf /etc/passwd %s/allowed/escape.txt",
       dir, dir, dir);
    snprintf(src, sizeof src, "file://%s/allowed/ref.txt", dir);
    art ok_in[] = {{src, "ref.txt"}};
    run_job("cat ref.txt", ok_in, 1, NULL, 0, "SUCCEEDED", id);
    art etc_in[] = {{"file:///etc/passwd", "p"}};
    run_job("cat p", etc_in, 1, NULL, 0, "FAILED", id);
    Hodei__V1__Job *j = job_get(id);
    cr_assert_not_null(strstr(j->error, "not below a folder of worker.file_inputs"), "%s",
                       j->error);
    hodei__v1__job__free_unpacked(j, NULL);
    snprintf(src, sizeof src, "file://%s/allowed/escape.txt", dir);
    art esc_in[] = {{src, "p"}};
    run_job("cat p", esc_in, 1, NULL, 0, "FAILED", id);
    j = job_get(id);
    cr_assert_not_null(strstr(j->error, "symbolic link"), "%s", j->error);
    hodei__v1__job__free_unpacked(j, NULL);
}

/* Jobs run as worker.job_user (hodei-job, not root): inputs staged by the
 * root agent are the job's to read, its outputs are collected, and a job
 * running beside it cannot reach its workspace, neither by path nor through
 * /proc/<pid>/cwd: each runs under a uid of its own (worker.job_uids). */
Test(e2e_artifacts, job_user_artifacts_and_no_reach_into_another_job, .init = setup_job_user)
{
    char a_id[HODEI_ID_BUF], b_id[HODEI_ID_BUF], msg[MSG_MAX], out[OUT_MAX], sum[80], want[96],
        url[600], path[600], script[4096], ws[600] = "";
    set_secret("s3-cred", "S3RVER:S3RVER");
    sh(NULL, 0,
       "head -c 200000 /dev/urandom > %s/files/data.bin && mkdir -m 1777 %s/shared &&"
       " chmod 711 %s",
       dir, dir, dir);
    snprintf(path, sizeof path, "%s/files/data.bin", dir);
    file_sha(path, sum, sizeof sum);
    snprintf(want, sizeof want, "sha256:%s", sum);
    s3_put_file(path, "ju/in.bin");
    snprintf(url, sizeof url, "https://127.0.0.1:%d/files/data.bin", https_port);

    /* A: reads its inputs, writes an output and a private file, then waits
     * until B has probed (or 60 s). */
    art in[] = {{url, "", want}, {"s3://bkt/ju/in.bin", "in/s3.bin", NULL, "s3-cred"}};
    art outs[] = {{"result.txt", "s3://bkt/ju/result.txt", NULL, "s3-cred"}};
    snprintf(script, sizeof script,
             "echo uid=$(id -u); echo ws=$(pwd); stat -c 'mode %%u:%%G %%a' .;"
             " stat -c 'root %%U:%%G %%a' ..; sha256sum data.bin in/s3.bin;"
             " echo private-$$ > secret.txt; chmod 600 secret.txt; echo made-by-$(id -u) >"
             " result.txt; i=0; while [ ! -e %s/shared/b-done ] && [ $i -lt 600 ]; do"
             " sleep 0.1; i=$((i+1)); done",
             dir);
    cr_assert_eq(queue(script, in, 2, outs, 1, a_id, msg), HODEI_GRPC_OK, "QueueJob: %s", msg);
    for (int i = 0; i < 1200 && !ws[0]; i++) {
        usleep(100000);
        job_output(a_id, out, sizeof out);
        const char *w = strstr(out, "ws=");
        if (w && strchr(w, '\n'))
            snprintf(ws, sizeof ws, "%.*s", (int)(strchr(w, '\n') - w - 3), w + 3);
    }
    cr_assert(ws[0], "job A did not start: %s", out);

    /* B: the same user, on another worker, while A runs. */
    snprintf(script, sizeof script,
             "echo uid=$(id -u); cat %s/secret.txt 2>&1; ls %s 2>&1; ls %s/.. 2>&1;"
             " for p in /proc/[0-9]*; do cat $p/cwd/secret.txt 2>/dev/null; done;"
             " echo probed; touch %s/shared/b-done",
             ws, ws, ws, dir);
    cr_assert_eq(queue(script, NULL, 0, NULL, 0, b_id, msg), HODEI_GRPC_OK, "QueueJob: %s", msg);
    wait_state(b_id, "SUCCEEDED");
    wait_state(a_id, "SUCCEEDED");

    job_output(a_id, out, sizeof out);
    cr_log_info("job A (workspace %s):\n%s", ws, out);
    /* A runs as a uid of worker.job_uids, with hodei-job's group; its
     * workspace is 0700 and its own */
    const char *u = strstr(out, "uid=");
    cr_assert_not_null(u, "%s", out);
    long a_uid = strtol(u + 4, NULL, 10);
    cr_assert(a_uid >= 2000000 && a_uid <= 2099999, "job A's uid %ld", a_uid);
    char want_mode[64];
    snprintf(want_mode, sizeof want_mode, "mode %ld:hodei-job 700", a_uid);
    cr_assert_not_null(strstr(out, want_mode), "%s", out);
    cr_assert_not_null(strstr(out, "root root:root 711"), "%s", out);
    char line[200];
    snprintf(line, sizeof line, "%s  data.bin\n%s  in/s3.bin", sum, sum);
    cr_assert_not_null(strstr(out, line), "both inputs readable by the job: %s", out);
    cr_assert_not_null(strstr(out, "outputs: 1 uploaded"), "%s", out);
    char got[64];
    sh(got, sizeof got, S3CURL " http://127.0.0.1:%d/bkt/ju/result.txt", s3_port);
    char want_got[64];
    snprintf(want_got, sizeof want_got, "made-by-%ld\n", a_uid);
    cr_assert_str_eq(got, want_got);

    job_output(b_id, out, sizeof out);
    cr_log_info("job B:\n%s", out);
    cr_assert_not_null(strstr(out, "probed"), "%s", out);
    u = strstr(out, "uid=");
    cr_assert_not_null(u, "%s", out);
    cr_assert_neq(strtol(u + 4, NULL, 10), a_uid, "job B runs under a uid of its own");
    cr_assert_null(strstr(out, "private-"), "job B read job A's workspace:\n%s", out);
    cr_assert_null(strstr(out, "result.txt"), "job B listed job A's workspace:\n%s", out);
}
