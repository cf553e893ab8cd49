#include "run.h"

#include "hodei/rpc.h"
#include "hodei/time.h"
#include "output.h"

#define RUN_SERVICE "/hodei.v1.JobExecutionService/"

typedef struct {
    const char *path;
    const ProtobufCMessage *req;
    const ProtobufCMessageDescriptor *resp;
} run_call;

static run_call run_call_for(const cli_args *a)
{
    switch (a->command) {
    case CLI_CMD_SUBMIT:
        return (run_call){RUN_SERVICE "QueueJob", &a->queue.base,
                          &hodei__v1__queue_job_response__descriptor};
    case CLI_CMD_STATUS:
        return (run_call){RUN_SERVICE "GetJobStatus", &a->status.base,
                          &hodei__v1__get_job_status_response__descriptor};
    case CLI_CMD_CANCEL:
        return (run_call){RUN_SERVICE "CancelJob", &a->cancel.base,
                          &hodei__v1__cancel_job_response__descriptor};
    default:
        return (run_call){RUN_SERVICE "ListJobs", &a->list.base,
                          &hodei__v1__list_jobs_response__descriptor};
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
    case CLI_CMD_CANCEL:
        return cli_output_cancel(a->output, ((const Hodei__V1__CancelJobResponse *)resp)->job,
                                 out);
    default:
        return cli_output_jobs(a->output, (const Hodei__V1__ListJobsResponse *)resp,
                               hodei_wall_us(), out, err);
    }
}

/* One call on an open channel. */
static int run_call_once(const cli_args *a, hodei_rpc_channel *ch, FILE *out, FILE *err)
{
    run_call c = run_call_for(a);
    ProtobufCMessage *resp = NULL;
    hodei_rpc_result res = {0};
    hodei_err e;
    hodei_err_clear(&e);
    hodei_status st =
        hodei_rpc_unary(ch, c.path, c.req, c.resp, a->call_timeout_ms, &resp, &res, &e);
    if (st != HODEI_OK) {
        fprintf(err, "hodei: %s: %s\n", a->server, e.msg);
        return cli_exit_from_status(st);
    }
    if (res.code != HODEI_GRPC_OK) {
        int rc = cli_exit_from_grpc(res.code);
        char msg[sizeof res.message + CLI_SERVER_MAX + 16];
        snprintf(msg, sizeof msg, "%s%s%s%s", res.message,
                 rc == CLI_EXIT_UNAVAILABLE ? " (server " : "",
                 rc == CLI_EXIT_UNAVAILABLE ? a->server : "", rc == CLI_EXIT_UNAVAILABLE ? ")" : "");
        cli_output_error(err, hodei_grpc_code_str(res.code), msg);
        if (resp)
            protobuf_c_message_free_unpacked(resp, NULL);
        return rc;
    }
    int rc = resp ? run_render(a, resp, out, err) : CLI_EXIT_ERROR;
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return rc;
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
    hodei_rpc_channel *ch = NULL;
    hodei_err e;
    hodei_err_clear(&e);
    int rc;
    hodei_rpc_global_init();
    if (hodei_rpc_channel_create(&opts, &ch, &e) != HODEI_OK) {
        fprintf(err, "hodei: cannot open a channel to %s: %s\n", a->server, e.msg);
        rc = cli_exit_from_status(e.code);
    } else {
        rc = run_call_once(a, ch, out, err);
        hodei_rpc_channel_destroy(ch);
    }
    hodei_rpc_global_shutdown();
    return rc;
}
