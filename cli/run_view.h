/* What `hodei run` shows while it waits and how it ends, without any call:
 * the status line on stderr (rewritten in place on a terminal, one line per
 * change otherwise), the text of that line for a waiting job, the job's
 * place in the queue, and the exit code of a finished job. */
#ifndef HODEI_CLI_RUN_VIEW_H
#define HODEI_CLI_RUN_VIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hodei/v1/job.pb-c.h"

#define CLI_STATUS_LINE_MAX 80 /* bytes of a status line, "hodei: " included */

/* Exit codes of a job's end (besides its own exit code). */
enum {
    CLI_EXIT_JOB_NOT_STARTED = 127, /* the command could not be started */
    CLI_EXIT_JOB_TIMEOUT = 124,     /* like timeout(1) */
    CLI_EXIT_INTERRUPTED = 130,     /* cancelled, or Ctrl-C (128 + SIGINT) */
};

/* ------------------------------------------------------------ status line */

typedef struct {
    FILE *err;
    bool tty;                           /* rewrite in place; else one line per change */
    bool shown;                         /* a line is on the terminal without its newline */
    char last[CLI_STATUS_LINE_MAX + 1]; /* the text last shown */
} cli_status_line;

void cli_status_line_init(cli_status_line *s, FILE *err, bool tty);
/* Shows "hodei: <text>" when text differs from the last text shown: on a
 * terminal as "\r\033[K" + the line cut to CLI_STATUS_LINE_MAX bytes, no
 * newline; otherwise as a whole line. */
void cli_status_line_set(cli_status_line *s, const char *text);
/* Before any other output: wipes a line left on the terminal ("\r\033[K"),
 * after which the next set shows its text again. Nothing when not a terminal. */
void cli_status_line_clear(cli_status_line *s);

/* ------------------------------------------------------------ waiting */

typedef struct {
    Hodei__V1__JobState state;
    int32_t attempt;          /* attempts started so far */
    const char *worker_id;    /* ASSIGNED: the worker */
    int64_t position;         /* PENDING: 1-based place in the queue; 0 = unknown */
    bool position_more;       /* the queue was longer than what was read: "N or later" */
    int32_t ready_workers;    /* READY workers; -1 = unknown */
    int32_t starting_workers; /* CREATING/CONNECTING workers; -1 = unknown */
    bool cancelling;          /* Ctrl-C: a cancel was sent */
} cli_wait_view;

/* The status text for v, e.g. "queued (position 3), waiting for a worker...",
 * "queued, provisioning a worker...", "starting on worker <id>...". */
void cli_wait_text(const cli_wait_view *v, char *out, size_t out_len);

/* The 1-based place of job `me` in the queue, given the pending jobs the
 * server listed: jobs of higher priority first, then older ones (equal
 * times: smaller id). 0 when `me` is not among them. */
int64_t cli_queue_position(const Hodei__V1__Job *me, Hodei__V1__Job *const *pending, size_t n);

/* ------------------------------------------------------------ the end */

/* The exit code of `hodei run` for a job in its final state:
 *   SUCCEEDED 0; FAILED its exit code (1..255; 1 when 0 or out of range),
 *   127 when it could not start; TIMEOUT 124; CANCELLED 130.
 * interrupted (Ctrl-C) always gives 130. no_job_exit_code: 0 for any final
 * state (130 still after Ctrl-C). A job not in a final state: 1. */
int cli_run_exit_code(const Hodei__V1__Job *job, bool interrupted, bool no_job_exit_code);

/* One line on err for a job that did not succeed, so that its exit code can
 * be told from the CLI's own: "hodei: job ID FAILED (exit code 7)", with
 * ": <error>" when the job has one. Nothing for a success without error. */
void cli_run_summary(const Hodei__V1__Job *job, FILE *err);

#endif
