#include "run_view.h"

#include <inttypes.h>
#include <string.h>

#include "args.h"
#include "hodei/job_state.h"
#include "hodei/util.h"
#include "output_int.h"

#define RUN_VIEW_PREFIX "hodei: "
#define RUN_VIEW_WIPE "\r\033[K" /* carriage return, erase to end of line */
#define RUN_VIEW_TEXT_MAX 512    /* bytes of a status text before it is cut */
#define RUN_VIEW_EXIT_MAX 255

/* ------------------------------------------------------------ status line */

void cli_status_line_init(cli_status_line *s, FILE *err, bool tty)
{
    *s = (cli_status_line){.err = err, .tty = tty};
}

void cli_status_line_set(cli_status_line *s, const char *text)
{
    char line[CLI_STATUS_LINE_MAX + 1];
    snprintf(line, sizeof line, "%s%s", RUN_VIEW_PREFIX, text);
    if (strcmp(line, s->last) == 0)
        return;
    memcpy(s->last, line, sizeof line);
    if (s->tty) {
        fprintf(s->err, "%s%s", RUN_VIEW_WIPE, line);
        s->shown = true;
    } else {
        fprintf(s->err, "%s%s\n", RUN_VIEW_PREFIX, text);
    }
    fflush(s->err);
}

void cli_status_line_clear(cli_status_line *s)
{
    if (!s->tty || !s->shown)
        return;
    fputs(RUN_VIEW_WIPE, s->err);
    fflush(s->err);
    s->shown = false;
    s->last[0] = '\0';
}

/* ------------------------------------------------------------ waiting */

static void run_view_pending(const cli_wait_view *v, char *out, size_t out_len)
{
    char place[64] = "";
    const char *why = "";
    if (v->position > 0)
        snprintf(place, sizeof place, " (position %" PRId64 "%s)", v->position,
                 v->position_more ? " or later" : "");
    if (v->ready_workers == 0 && v->starting_workers > 0)
        why = ", provisioning a worker...";
    else if (v->ready_workers == 0)
        why = ", waiting for a worker...";
    if (v->attempt > 0)
        snprintf(out, out_len, "queued for attempt %d%s%s", (int)v->attempt + 1, place, why);
    else
        snprintf(out, out_len, "queued%s%s", place, why);
}

void cli_wait_text(const cli_wait_view *v, char *out, size_t out_len)
{
    char id[CLI_CELL_MAX];
    if (v->cancelling) {
        snprintf(out, out_len, "cancelling...");
        return;
    }
    switch (v->state) {
    case HODEI__V1__JOB_STATE__JOB_STATE_PENDING:
        run_view_pending(v, out, out_len);
        break;
    case HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED:
        output_sanitize(v->worker_id ? v->worker_id : "", CLI_TABLE_TEXT_MAX, id, sizeof id);
        snprintf(out, out_len, "starting on worker %s...", id[0] ? id : "?");
        break;
    case HODEI__V1__JOB_STATE__JOB_STATE_RUNNING:
        snprintf(out, out_len, "running");
        break;
    default:
        snprintf(out, out_len, "%s", hodei_job_state_name(v->state));
    }
}

static int32_t run_view_priority(const Hodei__V1__Job *j)
{
    return j->spec ? j->spec->priority : 0;
}

/* true when a runs before b. */
static bool run_view_before(const Hodei__V1__Job *a, const Hodei__V1__Job *b)
{
    int32_t pa = run_view_priority(a), pb = run_view_priority(b);
    if (pa != pb)
        return pa > pb;
    int64_t ta = output_time_us(a->created_at), tb = output_time_us(b->created_at);
    if (ta != tb)
        return ta < tb;
    return strcmp(a->id, b->id) < 0;
}

int64_t cli_queue_position(const Hodei__V1__Job *me, Hodei__V1__Job *const *pending, size_t n)
{
    int64_t ahead = 0;
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pending[i]->id, me->id) == 0)
            found = true;
        else if (run_view_before(pending[i], me))
            ahead++;
    }
    return found ? ahead + 1 : 0;
}

/* ------------------------------------------------------------ the end */

static int run_view_failed_code(const Hodei__V1__Job *job)
{
    if (job->exit_code >= 1 && job->exit_code <= RUN_VIEW_EXIT_MAX)
        return job->exit_code;
    return CLI_EXIT_ERROR;
}

int cli_run_exit_code(const Hodei__V1__Job *job, bool interrupted, bool no_job_exit_code)
{
    if (interrupted)
        return CLI_EXIT_INTERRUPTED;
    if (!job || !hodei_job_state_terminal(job->state))
        return CLI_EXIT_ERROR;
    if (no_job_exit_code)
        return CLI_EXIT_OK;
    switch (job->state) {
    case HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED:
        return CLI_EXIT_OK;
    case HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT:
        return CLI_EXIT_JOB_TIMEOUT;
    case HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED:
        return CLI_EXIT_INTERRUPTED;
    default:
        return run_view_failed_code(job);
    }
}

void cli_run_summary(const Hodei__V1__Job *job, FILE *err)
{
    char id[CLI_CELL_MAX], error[RUN_VIEW_TEXT_MAX], code[32] = "";
    bool has_error = job->error && job->error[0];
    if (job->state == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED && !has_error)
        return;
    output_sanitize(job->id, CLI_TABLE_TEXT_MAX, id, sizeof id);
    output_sanitize(has_error ? job->error : "", RUN_VIEW_TEXT_MAX, error, sizeof error);
    if (job->state == HODEI__V1__JOB_STATE__JOB_STATE_FAILED)
        snprintf(code, sizeof code, " (exit code %d)", (int)job->exit_code);
    fprintf(err, "%sjob %s %s%s%s%s\n", RUN_VIEW_PREFIX, id, hodei_job_state_name(job->state), code,
            has_error ? ": " : "", error);
}
