#include "run.h"

#include <string.h>

#include "hodei/time.h"
#include "output.h"
#include "run_int.h"

/* ------------------------------------------------------------ calls */

bool run_unary(const run_ctx *c, const char *path, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, run_outcome *o)
{
    memset(o, 0, sizeof *o);
    hodei_err_clear(&o->e);
    *resp = NULL;
    o->st = hodei_rpc_unary(c->ch, path, req, desc, c->a->call_timeout_ms, resp, &o->res, &o->e);
    if (o->st == HODEI_OK && o->res.code == HODEI_GRPC_OK && *resp)
        return true;
    if (*resp)
        protobuf_c_message_free_unpacked(*resp, NULL);
    *resp = NULL;
    if (o->st == HODEI_OK && o->res.code == HODEI_GRPC_OK) {
        o->res.code = HODEI_GRPC_INTERNAL;
        snprintf(o->res.message, sizeof o->res.message, "empty answer");
    }
    return false;
}

int run_report(const run_ctx *c, const run_outcome *o)
{
    if (o->st != HODEI_OK) {
        fprintf(c->err, "hodei: %s: %s\n", c->a->server, o->e.msg);
        return cli_exit_from_status(o->st);
    }
    int rc = cli_exit_from_grpc(o->res.code);
    char msg[sizeof o->res.message + CLI_SERVER_MAX + 16];
    bool where = rc == CLI_EXIT_UNAVAILABLE;
    snprintf(msg, sizeof msg, "%s%s%s%s", o->res.message, where ? " (server " : "",
             where ? c->a->server : "", where ? ")" : "");
    cli_output_error(c->err, hodei_grpc_code_str(o->res.code), msg);
    return rc;
}

bool run_transient(const run_outcome *o)
{
    if (o->st != HODEI_OK)
        return o->st == HODEI_ERR_UNAVAILABLE || o->st == HODEI_ERR_TIMEOUT;
    switch (o->res.code) {
    case HODEI_GRPC_UNAVAILABLE:
    case HODEI_GRPC_DEADLINE_EXCEEDED:
    case HODEI_GRPC_CANCELLED:
    case HODEI_GRPC_ABORTED:
    case HODEI_GRPC_RESOURCE_EXHAUSTED:
        return true;
    default:
        return false;
    }
}

bool run_job_status(const run_ctx *c, const char *job_id,
                    Hodei__V1__GetJobStatusResponse **resp_out, run_outcome *o)
{
    Hodei__V1__GetJobStatusRequest req = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    req.job_id = (char *)job_id;
    bool ok = run_unary(c, RUN_JOB_SERVICE "GetJobStatus", &req.base,
                        &hodei__v1__get_job_status_response__descriptor, &resp, o);
    *resp_out = (Hodei__V1__GetJobStatusResponse *)resp;
    if (ok && !(*resp_out)->job) {
        protobuf_c_message_free_unpacked(resp, NULL);
        *resp_out = NULL;
        o->res.code = HODEI_GRPC_INTERNAL;
        snprintf(o->res.message, sizeof o->res.message, "GetJobStatus answered without a job");
        return false;
    }
    return ok;
}

/* ------------------------------------------------------------ one-call commands */

typedef struct {
    const char *path;
    const ProtobufCMessage *req;
    const ProtobufCMessageDescriptor *resp;
} run_call;

static run_call run_call_secrets(const cli_args *a)
{
    switch (a->secrets_action) {
    case CLI_SECRETS_SET:
        return (run_call){RUN_SECRET_SERVICE "SetSecret", &a->secret_set.base,
                          &hodei__v1__set_secret_response__descriptor};
    case CLI_SECRETS_DELETE:
        return (run_call){RUN_SECRET_SERVICE "DeleteSecret", &a->secret_delete.base,
                          &hodei__v1__delete_secret_response__descriptor};
    default:
        return (run_call){RUN_SECRET_SERVICE "ListSecrets", &a->secret_list.base,
                          &hodei__v1__list_secrets_response__descriptor};
    }
}

static run_call run_call_templates(const cli_args *a)
{
    switch (a->templates_action) {
    case CLI_TEMPLATES_CREATE:
        return (run_call){RUN_TEMPLATE_SERVICE "CreateTemplate", &a->template_create.base,
                          &hodei__v1__create_template_response__descriptor};
    case CLI_TEMPLATES_GET:
        return (run_call){RUN_TEMPLATE_SERVICE "GetTemplate", &a->template_get.base,
                          &hodei__v1__get_template_response__descriptor};
    default:
        return (run_call){RUN_TEMPLATE_SERVICE "ListTemplates", &a->template_list.base,
                          &hodei__v1__list_templates_response__descriptor};
    }
}

static run_call run_call_keys(const cli_args *a)
{
    switch (a->keys_action) {
    case CLI_KEYS_CREATE:
        return (run_call){RUN_KEY_SERVICE "CreateKey", &a->key_create.base,
                          &hodei__v1__create_key_response__descriptor};
    case CLI_KEYS_REVOKE:
        return (run_call){RUN_KEY_SERVICE "RevokeKey", &a->key_revoke.base,
                          &hodei__v1__revoke_key_response__descriptor};
    default:
        return (run_call){RUN_KEY_SERVICE "ListKeys", &a->key_list.base,
                          &hodei__v1__list_keys_response__descriptor};
    }
}

static run_call run_call_for(const cli_args *a)
{
    switch (a->command) {
    case CLI_CMD_SUBMIT:
        return (run_call){RUN_JOB_SERVICE "QueueJob", &a->queue.base,
                          &hodei__v1__queue_job_response__descriptor};
    case CLI_CMD_STATUS:
    case CLI_CMD_ARTIFACTS:
        return (run_call){RUN_JOB_SERVICE "GetJobStatus", &a->status.base,
                          &hodei__v1__get_job_status_response__descriptor};
    case CLI_CMD_CANCEL:
        return (run_call){RUN_JOB_SERVICE "CancelJob", &a->cancel.base,
                          &hodei__v1__cancel_job_response__descriptor};
    case CLI_CMD_WORKERS:
        return (run_call){RUN_SCHED_SERVICE "GetAvailableWorkers", &a->workers.base,
                          &hodei__v1__get_available_workers_response__descriptor};
    case CLI_CMD_PROVIDERS:
        if (a->provider_health)
            return (run_call){RUN_PROVIDER_SERVICE "GetProviderHealth", &a->health.base,
                              &hodei__v1__get_provider_health_response__descriptor};
        return (run_call){RUN_PROVIDER_SERVICE "ListProviders", &a->providers.base,
                          &hodei__v1__list_providers_response__descriptor};
    case CLI_CMD_SECRETS:
        return run_call_secrets(a);
    case CLI_CMD_TEMPLATES:
        return run_call_templates(a);
    case CLI_CMD_KEYS:
        return run_call_keys(a);
    case CLI_CMD_WHOAMI:
        return (run_call){RUN_KEY_SERVICE "WhoAmI", &a->whoami.base,
                          &hodei__v1__who_am_iresponse__descriptor};
    case CLI_CMD_AUDIT:
        return (run_call){"/hodei.v1.AuditService/QueryAudit", &a->audit.base,
                          &hodei__v1__query_audit_response__descriptor};
    default:
        return (run_call){RUN_JOB_SERVICE "ListJobs", &a->list.base,
                          &hodei__v1__list_jobs_response__descriptor};
    }
}

static int run_render_secrets(const cli_args *a, const ProtobufCMessage *resp, FILE *out, FILE *err)
{
    switch (a->secrets_action) {
    case CLI_SECRETS_SET:
        return cli_output_secret_set(a->output, (const Hodei__V1__SetSecretResponse *)resp, out);
    case CLI_SECRETS_DELETE:
        return cli_output_secret_deleted(a->output, a->secret_name, out);
    default:
        return cli_output_secrets(a->output, (const Hodei__V1__ListSecretsResponse *)resp, out,
                                  err);
    }
}

static int run_render_templates(const cli_args *a, const ProtobufCMessage *resp, FILE *out,
                                FILE *err)
{
    switch (a->templates_action) {
    case CLI_TEMPLATES_CREATE:
        return cli_output_template_created(
            a->output, ((const Hodei__V1__CreateTemplateResponse *)resp)->template_, out);
    case CLI_TEMPLATES_GET:
        return cli_output_template(a->output,
                                   ((const Hodei__V1__GetTemplateResponse *)resp)->template_, out);
    default:
        return cli_output_templates(a->output, (const Hodei__V1__ListTemplatesResponse *)resp, out,
                                    err);
    }
}

static int run_render_keys(const cli_args *a, const ProtobufCMessage *resp, FILE *out, FILE *err)
{
    switch (a->keys_action) {
    case CLI_KEYS_CREATE:
        return cli_output_key_created(a->output, (const Hodei__V1__CreateKeyResponse *)resp, out,
                                      err);
    case CLI_KEYS_REVOKE:
        return cli_output_key_revoked(a->output, (const Hodei__V1__RevokeKeyResponse *)resp, out);
    default:
        return cli_output_keys(a->output, (const Hodei__V1__ListKeysResponse *)resp, out, err);
    }
}

static int run_render(const cli_args *a, const ProtobufCMessage *resp, FILE *out, FILE *err)
{
    switch (a->command) {
    case CLI_CMD_SUBMIT:
        return cli_output_submit(a->output, (const Hodei__V1__QueueJobResponse *)resp, out, err);
    case CLI_CMD_STATUS:
        return cli_output_status(a->output, ((const Hodei__V1__GetJobStatusResponse *)resp)->job,
                                 out);
    case CLI_CMD_ARTIFACTS:
        return cli_output_artifacts(a->output, ((const Hodei__V1__GetJobStatusResponse *)resp)->job,
                                    out);
    case CLI_CMD_CANCEL:
        return cli_output_cancel(a->output, ((const Hodei__V1__CancelJobResponse *)resp)->job, out);
    case CLI_CMD_WORKERS:
        return cli_output_workers(a->output, (const Hodei__V1__GetAvailableWorkersResponse *)resp,
                                  a->all_workers, hodei_wall_us(), out, err);
    case CLI_CMD_PROVIDERS:
        if (a->provider_health)
            return cli_output_provider_health(
                a->output, (const Hodei__V1__GetProviderHealthResponse *)resp, out);
        return cli_output_providers(a->output, (const Hodei__V1__ListProvidersResponse *)resp, out,
                                    err);
    case CLI_CMD_SECRETS:
        return run_render_secrets(a, resp, out, err);
    case CLI_CMD_TEMPLATES:
        return run_render_templates(a, resp, out, err);
    case CLI_CMD_KEYS:
        return run_render_keys(a, resp, out, err);
    case CLI_CMD_WHOAMI:
        return cli_output_whoami(a->output, (const Hodei__V1__WhoAmIResponse *)resp, out);
    case CLI_CMD_AUDIT:
        return cli_output_audit(a->output, (const Hodei__V1__QueryAuditResponse *)resp, out, err);
    default:
        return cli_output_jobs(a->output, (const Hodei__V1__ListJobsResponse *)resp,
                               hodei_wall_us(), out, err);
    }
}

static int run_call_once(const run_ctx *c)
{
    run_call call = run_call_for(c->a);
    ProtobufCMessage *resp = NULL;
    run_outcome o;
    if (!run_unary(c, call.path, call.req, call.resp, &resp, &o))
        return run_report(c, &o);
    int rc = run_render(c->a, resp, c->out, c->err);
    if (rc == CLI_EXIT_OK && c->a->command == CLI_CMD_ARTIFACTS && c->a->download_dir &&
        c->a->download_dir[0])
        rc = run_artifacts_download(c, ((const Hodei__V1__GetJobStatusResponse *)resp)->job);
    protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
}

static int run_dispatch(const run_ctx *c)
{
    switch (c->a->command) {
    case CLI_CMD_RUN:
        return run_cmd_run(c);
    case CLI_CMD_TEMPLATES:
        if (c->a->templates_action == CLI_TEMPLATES_RUN)
            return run_cmd_run(c);
        return run_call_once(c);
    case CLI_CMD_LOGS:
        return run_cmd_logs(c);
    case CLI_CMD_TOP:
        return run_cmd_top(c);
    default:
        return run_call_once(c);
    }
}

int cli_run(const cli_args *a, FILE *out, FILE *err)
{
    hodei_rpc_channel_opts opts = {
        .target = a->server,
        .tls_ca_file = a->tls_ca,
        .tls_cert_file = a->tls_cert,
        .tls_key_file = a->tls_key,
        .api_key = a->api_key,
    };
    run_ctx c = {.a = a, .out = out, .err = err};
    hodei_err e;
    hodei_err_clear(&e);
    int rc;
    if (a->command == CLI_CMD_DEV)
        return run_cmd_dev(a, err);
    hodei_rpc_global_init();
    if (hodei_rpc_channel_create(&opts, &c.ch, &e) != HODEI_OK) {
        fprintf(err, "hodei: cannot open a channel to %s: %s\n", a->server, e.msg);
        rc = cli_exit_from_status(e.code);
    } else {
        rc = run_dispatch(&c);
        hodei_rpc_channel_destroy(c.ch);
    }
    hodei_rpc_global_shutdown();
    return rc;
}
