/* Secrets end to end on the whole product: a stored secret reaches the job
 * on its stdin, is redacted in its logs, and appears in no outbox payload
 * and no daemon log; a job naming a missing secret ends FAILED. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "hodei/id.h"
#include "hodei/util.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/secret.pb-c.h"

#define SECRET_VALUE "Zq7-s3cr3t-Value-42"
#define MSG_MAX 512
#define SQL_MAX 1024
#define OUT_MAX 4096
#define JOB_WAIT_MS 120000

static cluster cl;

static const char *const secret_env[] = {
    "HODEI_SECRETS_MASTER_KEY=8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677",
    "HODEI_LOG_LEVEL=debug",
    NULL,
};

static int64_t sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sqlf(const char *fmt, ...)
{
    char q[SQL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return harness_sql_i64(&cl.stack, q);
}

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

/* Queues `sh -c script` with one secret ref, one attempt. */
static void queue_with_secret(const char *script, const char *ref, char *id_out)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[] = {"-c", (char *)script};
    char *refs[] = {(char *)ref};
    char key[HODEI_ID_BUF], msg[MSG_MAX];
    ProtobufCMessage *resp = NULL;
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.max_attempts = 1;
    spec.n_secret_refs = 1;
    spec.secret_refs = refs;
    req.spec = &spec;
    hodei_id_new(key);
    req.idempotency_key = key;
    cr_assert_eq(call("/hodei.v1.JobExecutionService/QueueJob", &req.base,
                      &hodei__v1__queue_job_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "QueueJob: %s", msg);
    hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)resp)->job_id, HODEI_ID_BUF);
    protobuf_c_message_free_unpacked(resp, NULL);
}

/* All of the job's output lines, joined by '\n'. */
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
    for (size_t i = 0; i < r->n_lines && n + r->lines[i]->data.len + 2 < out_len; i++) {
        if (r->lines[i]->data.len > 0)
            memcpy(out + n, r->lines[i]->data.data, r->lines[i]->data.len);
        n += r->lines[i]->data.len;
        out[n++] = '\n';
        out[n] = 0;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
}

Test(e2e_secrets, value_reaches_the_job_and_nothing_else, .timeout = 600)
{
    char id[HODEI_ID_BUF], missing[HODEI_ID_BUF], state[32], out[OUT_MAX];
    cluster_start(&cl, secret_env);
    cluster_provider(&cl, 2, 3000, 0);
    set_secret("db-pass", SECRET_VALUE);

    queue_with_secret("cat; echo; echo done", "db-pass", id);
    cr_assert(cluster_wait_job(&cl, id, JOB_WAIT_MS, state, sizeof state), "job did not end");
    cr_assert_str_eq(state, "SUCCEEDED");
    job_output(id, out, sizeof out);
    cr_assert_not_null(strstr(out, "\"db-pass\":\"[REDACTED]\""), "output: %s", out);
    cr_assert_not_null(strstr(out, "done"), "output: %s", out);
    cr_assert_null(strstr(out, SECRET_VALUE), "the value leaked into the logs");

    queue_with_secret("echo should-not-run", "nosuch", missing);
    cr_assert(cluster_wait_job(&cl, missing, JOB_WAIT_MS, state, sizeof state), "job did not end");
    cr_assert_str_eq(state, "FAILED");
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s'"
                      " AND error = 'secret nosuch not found'",
                      missing),
                 1);

    cr_assert_eq(sqlf("SELECT count(*) FROM outbox"
                      " WHERE position(convert_to('%s', 'UTF8') IN payload) > 0",
                      SECRET_VALUE),
                 0, "the value is in an outbox payload");
    cr_assert_eq(sqlf("SELECT count(*) FROM secrets"
                      " WHERE position(convert_to('%s', 'UTF8') IN value) > 0",
                      SECRET_VALUE),
                 0, "the value is stored in clear");
    char grep_out[OUT_MAX] = "";
    harness_sh(&cl.stack, grep_out, sizeof grep_out,
               "grep -rlF --include='*.log' '%s' '%s' || true", SECRET_VALUE, cl.stack.state_dir);
    cr_assert_str_eq(grep_out, "", "daemon logs holding the value: %s", grep_out);
    cluster_stop(&cl);
}

/* Without secrets.master_key a job naming a secret fails at once, and the
 * error names the setting. */
Test(e2e_secrets, no_master_key_fails_the_job, .timeout = 600)
{
    static const char *const no_key_env[] = {"HODEI_LOG_LEVEL=info", NULL};
    char id[HODEI_ID_BUF], state[32];
    cluster_start(&cl, no_key_env);
    cluster_provider(&cl, 1, 3000, 0);
    queue_with_secret("echo should-not-run", "db-pass", id);
    cr_assert(cluster_wait_job(&cl, id, JOB_WAIT_MS, state, sizeof state), "job did not end");
    cr_assert_str_eq(state, "FAILED");
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE id = '%s'"
                      " AND error = 'secrets.master_key is not set'",
                      id),
                 1);
    cluster_stop(&cl);
}
