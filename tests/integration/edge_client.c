#include "edge_client.h"

#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "hodei/time.h"
#include "hodei/util.h"

#define EDGE_START_WAIT_MS 60000 /* a restart under a loaded machine (sanitizers) */

void edge_launch(harness_stack *st, edge_handle *e, const char *const *extra_env)
{
    char listen[64], health[64];
    snprintf(listen, sizeof listen, "HODEI_GRPC_LISTEN=127.0.0.1:%d", e->port);
    snprintf(health, sizeof health, "HODEI_HEALTH_LISTEN=127.0.0.1:%d", e->health_port);
    const char *env[32] = {listen, health};
    size_t n = 2;
    for (size_t i = 0; extra_env && extra_env[i] && n < 31; i++)
        env[n++] = extra_env[i];
    env[n] = NULL;
    const char *argv[] = {"hodei-job-api", NULL};
    harness_proc_start(st, &e->proc, argv, env);
    if (!harness_log_contains(&e->proc, "listening on", EDGE_START_WAIT_MS)) {
        char tail[HARNESS_LOG_TAIL];
        harness_log_tail(e->proc.log_path, tail, sizeof tail);
        cr_assert_fail("job-api did not start (alive: %s); the end of %s:\n%s",
                       harness_proc_alive(&e->proc) ? "yes" : "no", e->proc.log_path, tail);
    }
}

void edge_start(harness_stack *st, edge_handle *e, const char *const *extra_env)
{
    memset(e, 0, sizeof *e);
    e->port = harness_free_port();
    e->health_port = harness_free_port();
    snprintf(e->target, sizeof e->target, "127.0.0.1:%d", e->port);
    edge_launch(st, e, extra_env);
    hodei_rpc_channel_opts o = {.target = e->target, .api_key = st->api_key};
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &e->ch, &err), HODEI_OK, "%s", err.msg);
}

void edge_stop(edge_handle *e)
{
    hodei_rpc_channel_destroy(e->ch);
    e->ch = NULL;
    if (e->proc.pid <= 0)
        return;
    int status = harness_proc_stop(&e->proc, SIGTERM, 10000);
    cr_assert(status != -1, "job-api did not stop on SIGTERM");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char tail[HARNESS_LOG_TAIL];
        harness_log_tail(e->proc.log_path, tail, sizeof tail);
        cr_assert_fail("job-api exited uncleanly (status 0x%x); the end of %s:\n%s", status,
                       e->proc.log_path, tail);
    }
    e->proc.pid = 0;
}

void edge_stack_start(harness_stack *st, edge_handle *e, const char *const *extra_env)
{
    hodei_rpc_global_init();
    harness_stack_start(st);
    edge_start(st, e, extra_env);
}

void edge_stack_stop(harness_stack *st, edge_handle *e)
{
    edge_stop(e);
    harness_stack_stop(st);
    hodei_rpc_global_shutdown();
}

hodei_grpc_code edge_call(edge_handle *e, const char *method, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                          char *msg, size_t msg_len)
{
    char path[128];
    snprintf(path, sizeof path, "/hodei.v1.JobExecutionService/%s", method);
    return edge_call_path(e, path, req, resp_desc, resp, msg, msg_len);
}

hodei_grpc_code edge_call_path(edge_handle *e, const char *path, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                               char *msg, size_t msg_len)
{
    return edge_call_on(e->ch, path, req, resp_desc, resp, msg, msg_len, 10000);
}

hodei_grpc_code edge_call_on(hodei_rpc_channel *ch, const char *path, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                             char *msg, size_t msg_len, int64_t timeout_ms)
{
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    hodei_status st = hodei_rpc_unary(ch, path, req, resp_desc, timeout_ms, &out, &res, &err);
    cr_assert_eq(st, HODEI_OK, "call %s could not be made: %s", path, err.msg);
    if (msg)
        hodei_strlcpy(msg, res.message, msg_len);
    if (resp)
        *resp = out;
    else if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return res.code;
}

static void edge_job_init(edge_job *j, const char *command)
{
    *j = (edge_job){.req = HODEI__V1__QUEUE_JOB_REQUEST__INIT,
                    .spec = HODEI__V1__JOB_SPEC__INIT,
                    .cmd = HODEI__V1__SHELL_COMMAND__INIT};
    j->cmd.command = (char *)command;
    j->spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    j->spec.command = &j->cmd;
    j->req.spec = &j->spec;
}

void edge_job_true(edge_job *j)
{
    edge_job_init(j, "true");
}

void edge_job_shell(edge_job *j, const char *script)
{
    edge_job_init(j, "sh");
    j->args[0] = "-c";
    j->args[1] = (char *)script;
    j->cmd.n_args = 2;
    j->cmd.args = j->args;
}

void edge_queue_shell(edge_handle *e, const char *script, const char *idem_key, char *id_out)
{
    edge_job j;
    edge_job_shell(&j, script);
    j.req.idempotency_key = (char *)(idem_key ? idem_key : "");
    ProtobufCMessage *resp = NULL;
    char msg[512];
    hodei_grpc_code code =
        edge_call(e, "QueueJob", &j.req.base, &hodei__v1__queue_job_response__descriptor, &resp,
                  msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "QueueJob failed: %s", msg);
    Hodei__V1__QueueJobResponse *r = (Hodei__V1__QueueJobResponse *)resp;
    hodei_strlcpy(id_out, r->job_id, 37);
    protobuf_c_message_free_unpacked(resp, NULL);
}

size_t edge_field_bytes(size_t len)
{
    size_t v = 1;
    for (size_t x = len; x >= 0x80; x >>= 7)
        v++;
    return 1 + v + len;
}

int edge_page_model(const size_t *sz, int n, int p, size_t tok, size_t budget)
{
    size_t used = 0;
    int i = p;
    for (; i < n; i++) {
        size_t t = i + 1 < n ? tok : 0;
        if (i > p && used + sz[i] + t > budget)
            break;
        used += sz[i];
    }
    return i - p;
}

void edge_restart_page_bytes(harness_stack *st, edge_handle *e, size_t budget)
{
    char env0[64];
    snprintf(env0, sizeof env0, "HODEI_REPLIES_PAGE_BYTES_MAX=%zu", budget);
    const char *env[] = {env0, NULL};
    edge_stop(e);
    edge_start(st, e, env);
}
