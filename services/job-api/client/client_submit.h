/* The submit path: QueueJob requests are validated on the gRPC threads, then
 * handed to a few writer threads that group whatever is waiting into one
 * transaction (job rows + JobQueued outbox rows, one INSERT each via
 * unnest), commit once, and answer every call of the group. Durable commits
 * stay on; grouping is what makes thousands of submits per second cheap. */
#ifndef HODEI_JOB_API_SUBMIT_H
#define HODEI_JOB_API_SUBMIT_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "hodei/daemon.h"
#include "hodei/id.h"
#include "hodei/rpc.h"
#include "hodei/status.h"
#include "hodei/v1/job.pb-c.h"

typedef struct submitter submitter;

/* The hand-off at submit (hodei/assign.h, "at submit"): a group's new jobs
 * go to idle workers whose streams this edge holds, in the group's
 * transaction, and their RunJobs go out right after the commit. */
typedef struct {
    void *ctx;
    /* The workers streaming to this edge, at most max, into ids; how many. */
    size_t (*workers)(void *ctx, char (*ids)[HODEI_ID_BUF], size_t max);
    /* After the commit: RunJob from run row `row` (hodei/assign.h,
     * HODEI_RUN_COL_*) to worker_id's stream, if this edge still holds it
     * (otherwise the worker's re-send on reconnect delivers it). */
    void (*run)(void *ctx, const char *worker_id, const PGresult *run, int row);
} submit_dispatch;

/* The least either byte budget may be: one job of the largest spec
 * (HODEI_JOB_SPEC_PACKED_MAX, written out in hex) and all it carries. */
#define SUBMIT_BYTES_MIN (8 * 1024 * 1024)
/* The most one group may carry: each of its statement's parameters is built
 * in a buffer of at most 256 MiB, and quoting may double a string. */
#define SUBMIT_BATCH_BYTES_MAX (100 * 1024 * 1024)

typedef struct {
    const char *db_url; /* each writer holds its own connection */
    int64_t connect_timeout_ms;
    size_t batch_max;       /* jobs per transaction */
    size_t queue_max;       /* jobs waiting before QueueJob answers RESOURCE_EXHAUSTED */
    size_t queue_bytes_max; /* bytes of jobs waiting, likewise (>= SUBMIT_BYTES_MIN) */
    size_t batch_bytes_max; /* bytes of one group (SUBMIT_BYTES_MIN..SUBMIT_BATCH_BYTES_MAX) */
    /* Bytes of one caller's jobs waiting (SUBMIT_BYTES_MIN..queue_bytes_max):
     * past it that caller's QueueJob answers RESOURCE_EXHAUSTED while the
     * others' still fit up to queue_bytes_max. A caller is an API key, a
     * certificate subject, or the calls without either (client_shares.h). */
    size_t queue_bytes_per_key;
    int writers; /* writer threads, each with its own connection */
    int64_t default_timeout_ms;
    int64_t db_wait_ms;
    hodei_metric *queued;            /* new jobs committed (GET /metrics); may be NULL */
    hodei_metric *refused;           /* QueueJobs answered RESOURCE_EXHAUSTED; may be NULL */
    hodei_metric *waiting_jobs;      /* gauge: jobs waiting for a writer; may be NULL */
    hodei_metric *waiting_bytes;     /* gauge: their bytes (submit.queue_bytes_max); may be NULL */
    hodei_metric *waiting_keys;      /* gauge: callers with jobs waiting; may be NULL */
    const submit_dispatch *dispatch; /* NULL = every job waits for a scheduler */
} submitter_opts;

hodei_status submitter_create(const submitter_opts *opts, submitter **out, hodei_err *err);
/* Stops the writers after the queue is drained (or failed), joins them. */
void submitter_destroy(submitter *s);

/* Takes a validated request and owns the call from here: the call is
 * answered once the group holding it commits (or fails), with a
 * QueueJobResponse. ns: the job's namespace, already checked against the
 * caller; the job records the caller's key (edge_caller) as its owner, and
 * its job.queue audit row commits with it, in the group's one statement. */
void submitter_enqueue(submitter *s, hodei_rpc_call *call, const Hodei__V1__QueueJobRequest *req,
                       const char *ns);

/* Answers a call whose job was queued (or found by its idempotency key). */
typedef void (*submit_reply_fn)(hodei_rpc_call *call, const Hodei__V1__QueueJobResponse *queued);
/* As submitter_enqueue, with reply answering the call once the job is
 * committed (errors are answered as for QueueJob); template_name: the
 * audit row says template.run with it (NULL = job.queue). */
void submitter_enqueue_reply(submitter *s, hodei_rpc_call *call,
                             const Hodei__V1__QueueJobRequest *req, const char *ns,
                             submit_reply_fn reply, const char *template_name);

#endif
