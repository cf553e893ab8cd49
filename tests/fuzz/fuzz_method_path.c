/* The edge's dispatch by gRPC method path (rpc_server_find), over the
 * method table of a server with the edge's paths registered. The path is
 * the peer's bytes (HTTP/2 :path), not a C string: it may hold NUL bytes
 * and be longer or shorter than any method. Property: a method is found
 * exactly when the bytes equal its path. */
#include <grpc/grpc.h>
#include <grpc/slice.h>
#include <string.h>

#include "fuzz.h"
#include "hodei/v1/job.pb-c.h"
#include "rpc_int.h"

static const char *const paths[] = {
    "/hodei.v1.JobExecutionService/QueueJob",
    "/hodei.v1.JobExecutionService/GetJobStatus",
    "/hodei.v1.JobExecutionService/CancelJob",
    "/hodei.v1.JobExecutionService/ListJobs",
    "/hodei.v1.WorkerAgentService/Register",
    "/hodei.v1.WorkerAgentService/WorkerStream",
    "/hodei.v1.WorkerAgentService/UnregisterWorker",
    "/hodei.v1.LogStreamService/GetLogs",
    "/hodei.v1.LogStreamService/SubscribeLogs",
    "/hodei.v1.TemplateService/CreateTemplate",
    "/hodei.v1.TemplateService/RunTemplate",
    "/hodei.v1.SecretService/SetSecret",
    "/a",
};
#define N_PATHS (sizeof paths / sizeof paths[0])

static hodei_rpc_server *srv;

static void on_call(hodei_rpc_call *call, const ProtobufCMessage *req, void *ctx)
{
    (void)call;
    (void)req;
    (void)ctx;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    grpc_init();
    hodei_rpc_server_opts opts = {.listen_addr = "127.0.0.1:0", .threads = 1};
    hodei_err err = {0};
    if (hodei_rpc_server_create(&opts, &srv, &err) != HODEI_OK)
        abort();
    for (size_t i = 0; i < N_PATHS; i++) {
        hodei_rpc_method m = {.path = paths[i],
                              .kind = HODEI_RPC_UNARY,
                              .request = &hodei__v1__queue_job_request__descriptor,
                              .on_call = on_call};
        if (hodei_rpc_server_add(srv, &m, &err) != HODEI_OK)
            abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly size bytes on the heap, as a peer's path arrives. */
    grpc_slice path = grpc_slice_malloc_large(size);
    if (size)
        memcpy(GRPC_SLICE_START_PTR(path), data, size);
    const hodei_rpc_method *m = rpc_server_find(srv, path);
    const char *want = NULL;
    for (size_t i = 0; i < N_PATHS; i++)
        if (strlen(paths[i]) == size && memcmp(paths[i], data, size) == 0)
            want = paths[i];
    FUZZ_CHECK((m == NULL) == (want == NULL), "found %s, want %s", m ? m->path : "nothing",
               want ? want : "nothing");
    FUZZ_CHECK(!m || strcmp(m->path, want) == 0, "found %s, want %s", m->path, want);
    grpc_slice_unref(path);
    return 0;
}
