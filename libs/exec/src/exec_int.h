/* Private to libs/exec: the redactor, the output batcher and the spawner. */
#ifndef HODEI_EXEC_INT_H
#define HODEI_EXEC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hodei/buf.h"
#include "hodei/exec.h"

/* Safety nets; the edge validates specs against tighter limits first. */
#define EXEC_ARGV_MAX 4096 /* command + args */
#define EXEC_ENV_MAX 1024  /* base + spec entries */
/* The secrets' JSON object on stdin: every value and name at its maximum,
 * each byte escaped (\u00XX), with quotes, colon and comma. */
#define EXEC_SECRETS_JSON_MAX                                                                      \
    (HODEI_EXEC_SECRETS_MAX *                                                                      \
         (6 * (HODEI_EXEC_SECRET_VALUE_MAX + HODEI_EXEC_SECRET_NAME_MAX) + 6) +                    \
     2)
/* Longest redaction pattern: a value JSON-escaped (\u00XX is 6 bytes per
 * byte). Must stay below the line maximum so that a cut always progresses. */
#define EXEC_PATTERN_LEN_MAX (6 * HODEI_EXEC_SECRET_VALUE_MAX)
_Static_assert(EXEC_PATTERN_LEN_MAX < HODEI_EXEC_LINE_LEN_MAX, "a cut must progress");
/* Output bytes of redacting len input bytes: each match is >= 4 bytes and
 * becomes 10. */
#define EXEC_REDACT_OUT_MAX(len)                                                                   \
    ((len) / HODEI_EXEC_SECRET_REDACT_MIN * (sizeof HODEI_EXEC_REDACTED - 1) +                     \
     HODEI_EXEC_SECRET_REDACT_MIN)

/* ------------------------------------------------------------ redaction */

typedef struct {
    char *text;
    size_t len;
} exec_pattern;

/* Patterns derived from the secret values, longest first: each piece between
 * newlines of a value (output is split into lines before redaction), and the
 * value as JSON-escaped on stdin when that differs. */
typedef struct {
    exec_pattern *items;
    size_t n;
} exec_redactor;

hodei_status exec_redactor_init(exec_redactor *r, const hodei_exec_secret *secrets,
                                size_t n_secrets, hodei_err *err);
void exec_redactor_fini(exec_redactor *r);

/* Copies in[0..len) to out with every pattern replaced by "[REDACTED]",
 * scanning left to right, longest pattern first at each position. out must
 * hold EXEC_REDACT_OUT_MAX(len) bytes. When stop_at_partial, the scan stops
 * where the rest of the input is a proper prefix of a pattern (a secret that
 * may continue in the next piece). Returns the input bytes consumed; *out_len
 * gets the bytes written. */
size_t exec_redact(const exec_redactor *r, const char *in, size_t len, bool stop_at_partial,
                   char *out, size_t *out_len);

/* ------------------------------------------------------------ output */

enum { EXEC_STREAM_OUT = 0, EXEC_STREAM_ERR = 1, EXEC_STREAM_COUNT = 2 };

/* Splits both streams into lines, redacts them and hands them out in batches. */
typedef struct {
    const exec_redactor *red;
    const hodei_exec_callbacks *cb;
    size_t lines_max;
    size_t bytes_max;
    int64_t interval_ms;
    Hodei__V1__LogLine *lines; /* lines_max of each */
    Hodei__V1__LogLine **ptrs;
    Hodei__V1__Timestamp *times;
    size_t *offs; /* line i's data at arena + offs[i] */
    char *arena;
    size_t arena_len;
    size_t arena_cap;
    size_t arena_high; /* bytes of the arena ever written (wiped at fini) */
    size_t n;          /* lines in the current batch */
    int64_t first_ms;  /* monotonic time of its first line */
    uint64_t seq;      /* last sequence number given */
    uint64_t batches;
    char *part[EXEC_STREAM_COUNT]; /* unfinished line, HODEI_EXEC_LINE_LEN_MAX */
    size_t part_len[EXEC_STREAM_COUNT];
    size_t part_high[EXEC_STREAM_COUNT]; /* bytes of part[] ever written */
} exec_output;

hodei_status exec_output_init(exec_output *o, const hodei_exec_opts *opts, const exec_redactor *red,
                              const hodei_exec_callbacks *cb, hodei_err *err);
void exec_output_fini(exec_output *o);
/* Bytes read from a stream; complete lines go into the batch. */
void exec_output_feed(exec_output *o, int stream, const char *data, size_t len);
/* End of a stream: its unfinished line, if any, becomes a line. */
void exec_output_eof(exec_output *o, int stream);
/* Delivers the current batch, if it holds a line. */
void exec_output_flush(exec_output *o);
/* Monotonic ms at which the current batch is due, or -1 when empty. */
int64_t exec_output_due_ms(const exec_output *o);

/* ------------------------------------------------------------ cgroups */

#define EXEC_CG_MAX 2 /* hierarchies a job joins: v2 one; v1 memory and cpu */
#define EXEC_CG_PATH_MAX 4096
#define EXEC_CG_NAME_MAX 96
#define EXEC_CG_NOTE_MAX 400

/* The job's own cgroup (exec_cgroup.c), or the enclosing one it runs under. */
typedef struct {
    int procs_fd[EXEC_CG_MAX]; /* cgroup.procs the child writes "0" to; -1 = unused */
    char dir[EXEC_CG_MAX][EXEC_CG_PATH_MAX];
    int n;
    int oom_fd;       /* memory.events (v2) / memory.oom_control (v1); -1 = none */
    int64_t oom_base; /* its oom_kill count before the job */
    bool own;         /* the limits are the job's own */
    bool v2;
    bool enforced;     /* own, or the enclosing cgroup has a memory limit, or none asked */
    int64_t mem_limit; /* bytes the job runs under (own or enclosing); 0 = none */
    char note[EXEC_CG_NOTE_MAX]; /* why the job has no cgroup of its own */
} exec_cg;

/* Makes the job's cgroup when it asks for cpu or memory (and
 * opts->job_cgroups); else finds the enclosing one's OOM counter. Never
 * fails: what could not be done is in cg->note. */
void exec_cg_open(exec_cg *cg, const hodei_exec_opts *opts, const Hodei__V1__JobSpec *spec,
                  const char *job_id, int attempt);
/* An OOM kill happened in the cgroup since exec_cg_open. */
bool exec_cg_oom(const exec_cg *cg);
/* Kills what is left in the job's cgroup, removes it, closes everything. */
void exec_cg_fini(exec_cg *cg);

/* ------------------------------------------------------------ spawn */

/* Everything the child needs, prepared before fork (the child may only make
 * async-signal-safe calls). */
typedef struct {
    char **argv;                 /* NULL-terminated; strings borrowed */
    hodei_buf env_text;          /* "K=V\0K=V\0..." */
    char **envp;                 /* NULL-terminated, into env_text */
    const char *what;            /* program named in start errors */
    const char *working_dir;     /* NULL = inherit (or the user's home, with a user) */
    const hodei_exec_user *user; /* NULL = the caller's */
    char *script_dir;            /* private temp dir, NULL for commands */
    char *script_path;
    int stdin_fd;     /* memfd with the secrets, or /dev/null */
    const int *cg_fd; /* cgroup.procs files the child joins (n_cg of them) */
    int n_cg;
} exec_plan;

hodei_status exec_plan_build(exec_plan *p, const hodei_exec_opts *opts,
                             const Hodei__V1__JobSpec *spec, const char *job_id, int attempt,
                             const hodei_exec_secret *secrets, size_t n_secrets, hodei_err *err);
/* Closes stdin_fd, removes the script dir and everything in it. */
void exec_plan_fini(exec_plan *p);

typedef struct {
    pid_t pid;                 /* also the process group id; 0 = not started */
    int pidfd;                 /* -1 when pidfd_open is unavailable */
    int fd[EXEC_STREAM_COUNT]; /* read ends, non-blocking */
} exec_child;

/* Forks and execs. HODEI_OK with c->pid > 0: running. HODEI_OK with
 * c->pid == 0: the program could not start (chdir or exec failed in the
 * child, which is already reaped) and why is in start_error. An error
 * status: no child (pipes, fork). */
hodei_status exec_child_start(const exec_plan *p, exec_child *c, char *start_error,
                              size_t start_error_len, hodei_err *err);
void exec_child_close(exec_child *c);

#endif
