/* The largest message a client may send to each method, checked before the
 * message is decoded (libs/rpc answers RESOURCE_EXHAUSTED naming the
 * maximum). Client calls are small; what carries a job spec is as large as
 * the largest spec (HODEI_JOB_SPEC_PACKED_MAX) and some room; a worker's
 * stream carries log batches as large as they need (HODEI_RPC_MESSAGE_MAX,
 * gRPC's own cap on this server). One table, so the limits are read in one
 * place (README, "Limits"). */
#include "edge.h"

#include "hodei/job_spec.h"

#define EDGE_REQUEST_SMALL_MAX (64 * 1024)
#define EDGE_REQUEST_SPEC_MAX (HODEI_JOB_SPEC_PACKED_MAX + 64 * 1024)
#define EDGE_REQUEST_RUN_TEMPLATE_MAX (512 * 1024) /* 64 parameters of 4 KiB */
#define EDGE_REQUEST_PROVIDER_MAX (256 * 1024)     /* a config may carry PEM files */

static const struct {
    const char *path;
    size_t max;
} edge_request_limits[] = {
    {"/hodei.v1.JobExecutionService/QueueJob", EDGE_REQUEST_SPEC_MAX},
    {"/hodei.v1.TemplateService/CreateTemplate", EDGE_REQUEST_SPEC_MAX},
    {"/hodei.v1.TemplateService/RunTemplate", EDGE_REQUEST_RUN_TEMPLATE_MAX},
    {"/hodei.v1.ProviderManagementService/RegisterProvider", EDGE_REQUEST_PROVIDER_MAX},
    {"/hodei.v1.WorkerAgentService/WorkerStream", HODEI_RPC_MESSAGE_MAX},
};

hodei_status edge_request_limits_apply(edge *e, hodei_err *err)
{
    size_t n = sizeof edge_request_limits / sizeof edge_request_limits[0];
    for (size_t i = 0; i < n; i++) {
        hodei_status st = hodei_rpc_server_request_max(e->server, edge_request_limits[i].path,
                                                       edge_request_limits[i].max, err);
        if (st != HODEI_OK)
            return st;
    }
    /* every other method: a small client call */
    return hodei_rpc_server_request_max(e->server, NULL, EDGE_REQUEST_SMALL_MAX, err);
}
