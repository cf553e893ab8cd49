/* Private to the calling side of the tool (run.c, run_follow.c, run_job.c):
 * the channel, unary calls with their outcome, and following a job's logs. */
#ifndef HODEI_CLI_RUN_INT_H
#define HODEI_CLI_RUN_INT_H

#include <stdbool.h>

#include "args.h"
#include "hodei/rpc.h"
#include "logsink.h"

#define RUN_JOB_SERVICE "/hodei.v1.JobExecutionService/"
#define RUN_LOG_SERVICE "/hodei.v1.LogStreamService/"
#define RUN_SCHED_SERVICE "/hodei.v1.SchedulerService/"
#define RUN_PROVIDER_SERVICE "/hodei.v1.ProviderManagementService/"
#define RUN_SECRET_SERVICE "/hodei.v1.SecretService/"
#define RUN_TEMPLATE_SERVICE "/hodei.v1.TemplateService/"
#define RUN_KEY_SERVICE "/hodei.v1.KeyService/"

#define RUN_JOB_ID_MAX 128             /* bytes of a job id kept by the tool */
#define RUN_FOLLOW_TICK_MS 200         /* longest wait for a line before looking around */
#define RUN_FOLLOW_CHECK_MS 2000       /* a silent stream: ask the job's state this often */
#define RUN_FOLLOW_END_GRACE_MS 3000   /* job ended, no end marker yet: read the rest */
#define RUN_FOLLOW_BACKOFF_MIN_MS 250  /* first wait before reconnecting, doubled... */
#define RUN_FOLLOW_BACKOFF_MAX_MS 2000 /* ...up to this */
#define RUN_FOLLOW_DOWN_MAX_MS 300000  /* edge unreachable this long: give up (exit 5) */
#define RUN_LOGS_PAGE_LINES 5000       /* max_lines of one GetLogs */
#define RUN_LOGS_PAGES_MAX 100000      /* GetLogs calls for one read, at most */

typedef struct {
    const cli_args *a;
    hodei_rpc_channel *ch;
    FILE *out;
    FILE *err;
} run_ctx;

/* How a unary call went: not made at all (st), or made and answered (res). */
typedef struct {
    hodei_status st;
    hodei_rpc_result res;
    hodei_err e;
} run_outcome;

/* One unary call with the tool's call timeout. true when it completed with
 * OK and *resp holds the answer (free with protobuf_c_message_free_unpacked). */
bool run_unary(const run_ctx *c, const char *path, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp, run_outcome *o);
/* Prints why the call failed ("hodei: <CODE>: <message>") and returns its
 * exit code. */
int run_report(const run_ctx *c, const run_outcome *o);
/* run_artifacts.c: hodei artifacts --download. */
int run_artifacts_download(const run_ctx *c, const Hodei__V1__Job *job);
/* true when trying again later may work (edge unreachable, restarting). */
bool run_transient(const run_outcome *o);

/* GetJobStatus; *job_out owns the response (free its message). */
bool run_job_status(const run_ctx *c, const char *job_id,
                    Hodei__V1__GetJobStatusResponse **resp_out, run_outcome *o);

/* Called by the follower at least every RUN_FOLLOW_TICK_MS (hodei run sends
 * the cancel of a Ctrl-C from here). */
typedef struct {
    void (*tick)(void *ctx);
    void *ctx;
} run_follow_hooks;

/* Follows job_id's logs into sink (from its position) until the job has
 * ended: the end marker of SubscribeLogs, or the job seen finished and the
 * rest read with GetLogs. Reconnects on a broken stream, from the last line
 * written. Returns CLI_EXIT_OK with *final_state set, or the exit code of a
 * failure it has reported. hooks may be NULL. */
int run_follow_logs(const run_ctx *c, const char *job_id, cli_log_sink *sink,
                    const run_follow_hooks *hooks, Hodei__V1__JobState *final_state);
/* GetLogs from the sink's position until no new line comes. *complete: the
 * server said the job has ended and every line is there. */
int run_read_logs(const run_ctx *c, const char *job_id, cli_log_sink *sink, bool *complete);

/* The commands that are more than one call. */
int run_cmd_logs(const run_ctx *c);
int run_cmd_run(const run_ctx *c);
/* hodei top (run_top.c): until Ctrl-C, or one view with --once. */
int run_cmd_top(const run_ctx *c);
/* hodei dev (run_top.c): replaces this process with hodei-dev; returns
 * only when that could not be done (reported). */
int run_cmd_dev(const cli_args *a, FILE *err);

#endif
