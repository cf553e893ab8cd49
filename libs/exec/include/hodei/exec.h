/* Job executor: runs one attempt of a JobSpec as a child process and reports
 * its output lines and result through callbacks. Synchronous: the calling
 * thread runs the attempt to its end; another thread may cancel it through a
 * handle. Knows nothing of gRPC, NATS or PostgreSQL.
 *
 * Usage (one attempt):
 *
 *     hodei_exec_opts opts;
 *     hodei_exec_opts_default(&opts);
 *     hodei_exec_handle *h = NULL;
 *     hodei_exec_handle_create(&h, &err);          // cancel: hodei_exec_cancel(h)
 *     hodei_exec_callbacks cb = {.on_batch = send_batch, .user = ctx};
 *     hodei_exec_result res;
 *     hodei_exec_run(&opts, spec, job_id, attempt, secrets, n, &cb, h, &res, &err);
 *     report(res.state, res.exit_code, res.error, res.started_us, res.finished_us);
 *     hodei_exec_handle_destroy(h);
 *
 * Process rules the caller must keep: do not reap children it did not start
 * (no waitpid(-1), SIGCHLD not set to SIG_IGN), or the executor cannot learn
 * the exit status. */
#ifndef HODEI_EXEC_H
#define HODEI_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hodei/limits.h"
#include "hodei/status.h"
#include "hodei/v1/common.pb-c.h"
#include "hodei/v1/job.pb-c.h"

/* A line of output longer than this is cut into pieces of at most this many
 * bytes (a piece may be shorter, so that no secret straddles a cut). */
#define HODEI_EXEC_LINE_LEN_MAX (64 * 1024)
/* Secret values shorter than this are not redacted: redacting "a" or "yes"
 * would blank out ordinary output, and the pattern of blanks would reveal the
 * value anyway. Such secrets are still delivered on stdin. */
#define HODEI_EXEC_SECRET_REDACT_MIN 4
#define HODEI_EXEC_SECRETS_MAX 64
#define HODEI_EXEC_SECRET_NAME_MAX 256
#define HODEI_EXEC_SECRET_VALUE_MAX HODEI_SECRET_VALUE_MAX /* hodei/limits.h */
/* Upper bounds for the options below. */
#define HODEI_EXEC_BATCH_LINES_LIMIT 10000
#define HODEI_EXEC_BATCH_BYTES_LIMIT (16 * 1024 * 1024)
/* Exit code reported when the process could not be started (as a shell does). */
#define HODEI_EXEC_EXIT_START_FAILED 127
/* Exit code reported when no process ran (cancelled before start, bad input). */
#define HODEI_EXEC_EXIT_NONE (-1)
#define HODEI_EXEC_ERROR_MAX 512
#define HODEI_EXEC_REDACTED "[REDACTED]"

#define HODEI_EXEC_GROUPS_MAX 64
#define HODEI_EXEC_USER_NAME_MAX 64
#define HODEI_EXEC_HOME_MAX 1024

/* A user to run jobs as, other than the caller's. Switching needs root (or
 * CAP_SETUID and CAP_SETGID); the switch happens in the child before
 * anything of the job runs, so a job never holds the caller's identity. */
typedef struct {
    char name[HODEI_EXEC_USER_NAME_MAX + 1];
    uid_t uid;
    gid_t gid;
    gid_t groups[HODEI_EXEC_GROUPS_MAX]; /* supplementary groups */
    int n_groups;
    char home[HODEI_EXEC_HOME_MAX]; /* HOME, and the working directory when the spec has none */
} hodei_exec_user;

/* Fills out from the user database (getpwnam_r, getgrouplist). Errors name
 * the user: no such user, too many groups. */
hodei_status hodei_exec_user_lookup(const char *name, hodei_exec_user *out, hodei_err *err);

typedef struct {
    /* The user jobs run as; NULL = the caller's own. With a user, opts.home
     * is usually its home, and script files are handed to it. */
    const hodei_exec_user *user;
    int64_t default_timeout_ms; /* when spec.timeout_ms is 0; 0 = no timeout */
    int64_t kill_grace_ms;      /* SIGTERM .. SIGKILL; default 5000 */
    size_t batch_lines_max;     /* default 100, 1..HODEI_EXEC_BATCH_LINES_LIMIT */
    /* Line bytes per batch, default 1 MiB; exceeded only by a batch of one
     * line longer than this. */
    size_t batch_bytes_max;
    int64_t batch_interval_ms; /* first line .. delivery; default 100 */
    /* After the job's process group is gone, how long to wait for the pipes
     * to reach end-of-file (a process that left the group with setsid may
     * hold them); default 2000. The pipes are then closed unread. */
    int64_t drain_timeout_ms;
    const char *tmp_dir; /* for script files; default $TMPDIR or /tmp */
    const char *path;    /* child's PATH; default the usual system dirs */
    const char *home;    /* child's HOME; default $HOME or "/" */
    /* The job's workspace (artifacts): given to the child as
     * HODEI_WORKSPACE and, when spec.working_dir is empty, its working
     * folder. NULL = none (the child runs where the caller runs). */
    const char *workspace;
    /* Sequence numbers continue after this one (lines the caller wrote
     * before the run, e.g. artifact staging); default 0. */
    uint64_t first_sequence;
    /* A job asking for cpu or memory runs in a cgroup of its own with
     * those hard limits (v2, or v1 on a hybrid host) when this process may
     * make one; default true. Otherwise, or when false, it runs under the
     * enclosing cgroup's limits (a container's). */
    bool job_cgroups;
} hodei_exec_opts;

/* Fills o with the defaults above. The strings point into the environment or
 * static storage. */
void hodei_exec_opts_default(hodei_exec_opts *o);

/* One secret handed to the job. name and value are NUL-terminated UTF-8;
 * both are borrowed for the duration of hodei_exec_run. */
typedef struct {
    const char *name;
    const char *value;
} hodei_exec_secret;

typedef struct {
    /* Optional. Called once the process runs (exec succeeded), with its pid,
     * which is also its process group id. */
    void (*on_start)(void *user, pid_t pid);
    /* Required. A batch of 1..batch_lines_max lines, sequence numbers
     * consecutive and continuing the previous batch. The lines and their
     * data are borrowed: valid only during the call, never freed by the
     * callee. The array can be set as LogBatch.lines directly. The call
     * blocks the executor (and so, through the pipes, the job): that is the
     * back-pressure. */
    void (*on_batch)(void *user, Hodei__V1__LogLine **lines, size_t n_lines);
    void *user;
} hodei_exec_callbacks;

typedef struct {
    Hodei__V1__JobState state; /* SUCCEEDED, FAILED, TIMEOUT or CANCELLED */
    /* 0..255 on exit, 128 + signal when killed by one,
     * HODEI_EXEC_EXIT_START_FAILED when it could not start,
     * HODEI_EXEC_EXIT_NONE when no process ran. */
    int exit_code;
    char error[HODEI_EXEC_ERROR_MAX]; /* "" on success; never holds a secret */
    int64_t started_us;               /* wall clock, microseconds since the epoch */
    int64_t finished_us;
    uint64_t lines; /* lines delivered (last sequence number) */
    uint64_t batches;
} hodei_exec_result;

/* Cancel token for one attempt. Create before hodei_exec_run, destroy after
 * it has returned. A cancel is sticky: a cancel before the run makes the run
 * end CANCELLED without starting anything. */
typedef struct hodei_exec_handle hodei_exec_handle;

hodei_status hodei_exec_handle_create(hodei_exec_handle **out, hodei_err *err);
void hodei_exec_handle_destroy(hodei_exec_handle *h); /* NULL is a no-op */
/* Thread-safe and async-signal-safe; any number of times. */
void hodei_exec_cancel(hodei_exec_handle *h);
bool hodei_exec_cancelled(const hodei_exec_handle *h);

/* Runs one attempt. spec is borrowed. job_id and attempt reach the child as
 * HODEI_JOB_ID and HODEI_ATTEMPT (and opts->workspace as HODEI_WORKSPACE). secrets (n_secrets <=
 * HODEI_EXEC_SECRETS_MAX) reach the child as one JSON object on stdin and their values are redacted
 * from every line. h may be NULL (no cancel).
 *
 * Returns HODEI_OK when *out holds the attempt's result, whatever its state
 * (a command that cannot start is FAILED with exit code 127 and the reason).
 * Returns an error when the executor could not try at all: bad arguments
 * (HODEI_ERR_INVALID naming the field), a named maximum (HODEI_ERR_LIMIT), or
 * a system resource (HODEI_ERR_IO, HODEI_ERR_NOMEM). Even then *out is filled
 * (FAILED, exit code HODEI_EXEC_EXIT_NONE, error text), so the caller can
 * always report it. Returns only when the process group is gone and the
 * output is delivered. */
hodei_status hodei_exec_run(const hodei_exec_opts *opts, const Hodei__V1__JobSpec *spec,
                            const char *job_id, int attempt, const hodei_exec_secret *secrets,
                            size_t n_secrets, const hodei_exec_callbacks *cb, hodei_exec_handle *h,
                            hodei_exec_result *out, hodei_err *err);

#endif
