/* Shared by the tests that drive a running job-api: starting it on the
 * harness stack, and calling it through the product's own gRPC client. */
#ifndef HODEI_TEST_EDGE_CLIENT_H
#define HODEI_TEST_EDGE_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "hodei/rpc.h"
#include "hodei/v1/job.pb-c.h"

typedef struct {
    harness_proc proc;
    int port;
    int health_port; /* its health.listen (GET /readyz) */
    char target[64];
    hodei_rpc_channel *ch;
} edge_handle;

/* Starts hodei-job-api on a free port with extra env (NULL-ended, may be
 * NULL), waits until it answers, and opens a channel. */
void edge_start(harness_stack *st, edge_handle *e, const char *const *extra_env);
/* Starts the job-api process again on e's ports (a restart) and waits until
 * it listens; the channel is kept. */
void edge_launch(harness_stack *st, edge_handle *e, const char *const *extra_env);
/* SIGTERM, and asserts a clean exit (0: no leak under ASan). */
void edge_stop(edge_handle *e);
/* A suite's set-up and tear-down: gRPC, a private stack, a job-api. */
void edge_stack_start(harness_stack *st, edge_handle *e, const char *const *extra_env);
void edge_stack_stop(harness_stack *st, edge_handle *e);

/* Unary call of a full method path on channel ch (another key's, another edge's) with
 * timeout_ms; asserts the call could be made. Returns the gRPC code; the response (on
 * OK) in *resp (caller frees; NULL: freed here), the status text in msg (may be NULL). */
hodei_grpc_code edge_call_on(hodei_rpc_channel *ch, const char *path, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                             char *msg, size_t msg_len, int64_t timeout_ms);
/* Unary call of JobExecutionService/method on e's channel; asserts the call could be made.
 * Returns the gRPC code; the response (on OK) in *resp (caller frees; NULL:
 * freed here), the status text in msg (may be NULL). */
hodei_grpc_code edge_call(edge_handle *e, const char *method, const ProtobufCMessage *req,
                          const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                          char *msg, size_t msg_len);
/* The same for a full method path ("/hodei.v1.TemplateService/GetTemplate"). */
hodei_grpc_code edge_call_path(edge_handle *e, const char *path, const ProtobufCMessage *req,
                               const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                               char *msg, size_t msg_len);

/* A QueueJob request with the spec and command it points at: j->req is the message
 * to send (j must not move once made); fields of j->req and j->spec may be set after. */
typedef struct {
    Hodei__V1__QueueJobRequest req;
    Hodei__V1__JobSpec spec;
    Hodei__V1__ShellCommand cmd;
    char *args[2];
} edge_job;
/* `true`: a job that runs nothing and succeeds. */
void edge_job_true(edge_job *j);
/* `sh -c script` (script is not copied). */
void edge_job_shell(edge_job *j, const char *script);

/* Queues `sh -c script` and returns the job id (asserts OK). */
void edge_queue_shell(edge_handle *e, const char *script, const char *idem_key, char *id_out);

/* Paging by bytes (replies.page_bytes_max), as the List calls do it. */
/* Bytes a message or string of len bytes takes as field 1 or 2 of a reply. */
size_t edge_field_bytes(size_t len);
/* How many items from position p a page of budget bytes holds, item i taking sz[i]
 * bytes of the reply and the next page's token tok bytes (when an item follows): it
 * ends before its items and its token would pass the budget, and holds at least one. */
int edge_page_model(const size_t *sz, int n, int p, size_t tok, size_t budget);
/* Restarts e's job-api with HODEI_REPLIES_PAGE_BYTES_MAX=budget. */
void edge_restart_page_bytes(harness_stack *st, edge_handle *e, size_t budget);

#endif
