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
#include "hodei/v1/keys.pb-c.h"
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

/* ------------------------------------------------------- secrets by namespace */

typedef struct {
    char key[128];
    hodei_rpc_channel *ch;
} ns_user;

/* A key of namespace ns with the scopes a team uses, and a channel with it. */
static ns_user ns_user_make(const char *name, const char *ns)
{
    char *scopes[] = {"jobs:submit", "jobs:read", "logs:read", "secrets:write"};
    char *nss[] = {(char *)ns};
    Hodei__V1__CreateKeyRequest req = HODEI__V1__CREATE_KEY_REQUEST__INIT;
    req.name = (char *)name;
    req.n_scopes = 4;
    req.scopes = scopes;
    req.n_namespaces = 1;
    req.namespaces = nss;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    cr_assert_eq(call("/hodei.v1.KeyService/CreateKey", &req.base,
                      &hodei__v1__create_key_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "CreateKey: %s", msg);
    ns_user u;
    hodei_strlcpy(u.key, ((Hodei__V1__CreateKeyResponse *)resp)->secret, sizeof u.key);
    protobuf_c_message_free_unpacked(resp, NULL);
    hodei_rpc_channel_opts o = {.target = cl.edge.target, .api_key = u.key};
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &u.ch, &err), HODEI_OK, "%s", err.msg);
    return u;
}

static hodei_grpc_code call_as(const ns_user *u, const char *path, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
                               char *msg)
{
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    cr_assert_eq(hodei_rpc_unary(u->ch, path, req, desc, 20000, &out, &res, &err), HODEI_OK, "%s",
                 err.msg);
    hodei_strlcpy(msg, res.message, MSG_MAX);
    if (resp)
        *resp = out;
    else if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return res.code;
}

static hodei_grpc_code queue_as(const ns_user *u, const char *script, const char *ref, char *id_out,
                                char *msg)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[] = {"-c", (char *)script};
    char *refs[] = {(char *)ref};
    ProtobufCMessage *resp = NULL;
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.n_secret_refs = 1;
    spec.secret_refs = refs;
    req.spec = &spec;
    hodei_grpc_code c = call_as(u, "/hodei.v1.JobExecutionService/QueueJob", &req.base,
                                &hodei__v1__queue_job_response__descriptor, &resp, msg);
    if (c == HODEI_GRPC_OK)
        hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)resp)->job_id, HODEI_ID_BUF);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return c;
}

static void set_secret_as(const ns_user *u, const char *name, const char *value, const char *share)
{
    Hodei__V1__SetSecretRequest req = HODEI__V1__SET_SECRET_REQUEST__INIT;
    char *shares[] = {(char *)share};
    char msg[MSG_MAX];
    req.name = (char *)name;
    req.value.data = (uint8_t *)value;
    req.value.len = strlen(value);
    req.n_shared_with = share ? 1 : 0;
    req.shared_with = shares;
    cr_assert_eq(call_as(u, "/hodei.v1.SecretService/SetSecret", &req.base,
                         &hodei__v1__set_secret_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "SetSecret: %s", msg);
}

/* The value in no table of the database and no daemon log, in clear, hex
 * or base64. */
static void value_nowhere(const char *value)
{
    static const char *const encodings[] = {"convert_to('%s', 'UTF8')",
                                            "convert_to(encode(convert_to('%s', 'UTF8'), 'hex'),"
                                            " 'UTF8')",
                                            "convert_to(encode(convert_to('%s', 'UTF8'),"
                                            " 'base64'), 'UTF8')"};
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++) {
        char needle[256], q[SQL_MAX + 4 * sizeof needle];
        snprintf(needle, sizeof needle, encodings[i], value);
        snprintf(q, sizeof q,
                 "SELECT (SELECT count(*) FROM outbox WHERE position(%s IN payload) > 0)"
                 " + (SELECT count(*) FROM audit_log WHERE position(%s IN convert_to(detail::text"
                 ", 'UTF8')) > 0) + (SELECT count(*) FROM jobs WHERE position(%s IN spec) > 0)"
                 " + (SELECT count(*) FROM secrets WHERE position(%s IN value) > 0)",
                 needle, needle, needle, needle);
        cr_assert_eq(harness_sql_i64(&cl.stack, q), 0, "the value is stored (encoding %zu)", i);
    }
    char out[OUT_MAX] = "";
    harness_sh(&cl.stack, out, sizeof out,
               "v='%s'; for n in \"$v\" \"$(printf %%s \"$v\" | base64)\""
               " \"$(printf %%s \"$v\" | od -An -tx1 | tr -d ' \\n')\"; do"
               " grep -rlF --include='*.log' \"$n\" '%s'; done || true",
               value, cl.stack.state_dir);
    cr_assert_str_eq(out, "", "daemon logs holding the value: %s", out);
}

Test(e2e_secrets, another_namespace_can_neither_use_nor_read_back_a_secret, .timeout = 900)
{
    static const char value[] = "Kp9-team-a-only-Value";
    char id_a[HODEI_ID_BUF], id_b[HODEI_ID_BUF], id[HODEI_ID_BUF], state[32], msg[MSG_MAX];
    char out[OUT_MAX];
    cluster_start(&cl, secret_env);
    cluster_provider(&cl, 2, 3000, 0);
    ns_user a = ns_user_make("alice", "team-a"), b = ns_user_make("bob", "team-b");
    set_secret_as(&a, "tok", value, NULL);

    /* alice's job prints the value base64-encoded: the redactor cannot know it. */
    cr_assert_eq(queue_as(&a, "base64; echo done", "tok", id_a, msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert(cluster_wait_job(&cl, id_a, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    job_output(id_a, out, sizeof out);
    cr_assert_not_null(strstr(out, "done"), "%s", out);

    /* bob: no use by reference, no read of alice's job, her logs or her namespace. */
    int64_t jobs_before = sqlf("SELECT count(*) FROM jobs%s", "");
    cr_assert_eq(queue_as(&b, "cat", "team-a/tok", id, msg), HODEI_GRPC_PERMISSION_DENIED, "%s",
                 msg);
    cr_assert_not_null(strstr(msg, "team-a/tok is not shared with namespace team-b"), "%s", msg);
    char missing_msg[MSG_MAX];
    cr_assert_eq(queue_as(&b, "cat", "team-a/nosuch", id, missing_msg),
                 HODEI_GRPC_PERMISSION_DENIED, "%s", missing_msg);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs%s", ""), jobs_before, "nothing queued");
    Hodei__V1__GetLogsRequest logs = HODEI__V1__GET_LOGS_REQUEST__INIT;
    logs.job_id = id_a;
    cr_assert_eq(call_as(&b, "/hodei.v1.LogStreamService/GetLogs", &logs.base,
                         &hodei__v1__get_logs_response__descriptor, NULL, msg),
                 HODEI_GRPC_NOT_FOUND, "%s", msg);
    Hodei__V1__ListSecretsRequest list = HODEI__V1__LIST_SECRETS_REQUEST__INIT;
    list.namespace_ = "team-a";
    cr_assert_eq(call_as(&b, "/hodei.v1.SecretService/ListSecrets", &list.base,
                         &hodei__v1__list_secrets_response__descriptor, NULL, msg),
                 HODEI_GRPC_PERMISSION_DENIED, "%s", msg);
    /* "tok" alone is bob's own namespace's: there is none, the job fails. */
    cr_assert_eq(queue_as(&b, "cat", "tok", id, msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert(cluster_wait_job(&cl, id, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "FAILED");
    cr_assert_eq(
        sqlf("SELECT count(*) FROM jobs WHERE id = '%s' AND error = 'secret tok not found'", id),
        1);

    /* Shared with team-b, bob's jobs may use it by its full name. */
    set_secret_as(&a, "tok", value, "team-b");
    cr_assert_eq(queue_as(&b, "cat; echo; echo done", "team-a/tok", id_b, msg), HODEI_GRPC_OK, "%s",
                 msg);
    cr_assert(cluster_wait_job(&cl, id_b, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    job_output(id_b, out, sizeof out);
    cr_assert_not_null(strstr(out, "\"team-a/tok\":\"[REDACTED]\""), "%s", out);

    /* Every use is in the audit log, once per attempt, with who queued the job. */
    cr_assert_eq(sqlf("SELECT count(*) FROM audit_log WHERE action = 'secret.use'"
                      " AND object_id = 'team-a/tok' AND detail->>'job_id' = '%s'"
                      " AND actor = 'alice' AND namespace = 'team-a' AND peer LIKE 'worker:%%'",
                      id_a),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM audit_log WHERE action = 'secret.use'"
                      " AND object_id = 'team-a/tok' AND detail->>'job_id' = '%s'"
                      " AND actor = 'bob' AND namespace = 'team-b'",
                      id_b),
                 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM audit_log WHERE action = 'secret.use'%s", ""), 2,
                 "no use by a job that was refused or failed to find it");
    value_nowhere(value);
    hodei_rpc_channel_destroy(a.ch);
    hodei_rpc_channel_destroy(b.ch);
    cluster_stop(&cl);
}
