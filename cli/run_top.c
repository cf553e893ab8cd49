/* hodei top: StreamMetrics, redrawn at each snapshot, and every
 * TOP_WINDOW_EVERY_MS the window's figures (GetAggregatedMetrics). A broken
 * stream is opened again with a growing backoff while the view says so;
 * an answer that will not change by retrying (a bad flag value, a missing
 * permission, an edge without MetricsService) ends it with its exit code.
 * hodei dev: hands the words after `dev` to hodei-dev, found next to this
 * binary (the build writes it there). */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hodei/time.h"
#include "output.h"
#include "run_int.h"
#include "top.h"

#define TOP_WINDOW_EVERY_MS 5000
#define TOP_BACKOFF_MIN_MS 250
#define TOP_BACKOFF_MAX_MS 5000
#define TOP_NOTE_MAX 600
#define TOP_CLEAR "\033[H\033[2J"

typedef struct {
    const run_ctx *c;
    bool tty;
    hodei_rpc_stream *st;
    Hodei__V1__MetricsSnapshot *snap;
    Hodei__V1__GetAggregatedMetricsResponse *win;
    int64_t next_window_ms;
    int64_t backoff_ms;
    char note[TOP_NOTE_MAX];
} top_state;

static bool top_tty(const run_ctx *c)
{
    const char *term = getenv("TERM");
    return c->a->output == CLI_OUTPUT_HUMAN && isatty(fileno(c->out)) && term &&
           strcmp(term, "dumb") != 0;
}

static int top_draw(top_state *t)
{
    cli_top_view v = {.snap = t->snap,
                      .window = t->win,
                      .server = t->c->a->server,
                      .interval_ms = t->c->a->top_stream.interval_ms,
                      .show_workers = !t->c->a->top_no_workers,
                      .note = t->note[0] ? t->note : NULL};
    if (t->tty)
        fputs(TOP_CLEAR, t->c->out);
    int rc = cli_top_render(t->c->a->output, &v, t->c->out);
    if (!t->tty && t->c->a->output == CLI_OUTPUT_HUMAN)
        fputc('\n', t->c->out);
    fflush(t->c->out);
    return rc;
}

/* A failure retrying cannot mend: reported, its exit code; 0 otherwise. */
static int top_fatal(const top_state *t, const run_outcome *o)
{
    if (run_transient(o) && !t->c->a->top_once)
        return 0;
    return run_report(t->c, o);
}

static int top_window(top_state *t)
{
    int64_t now = hodei_mono_ms();
    if (now < t->next_window_ms)
        return 0;
    t->next_window_ms = now + TOP_WINDOW_EVERY_MS;
    ProtobufCMessage *resp = NULL;
    run_outcome o;
    if (!run_unary(t->c, "/hodei.v1.MetricsService/GetAggregatedMetrics", &t->c->a->top_window.base,
                   &hodei__v1__get_aggregated_metrics_response__descriptor, &resp, &o))
        return top_fatal(t, &o);
    if (t->win)
        protobuf_c_message_free_unpacked(&t->win->base, NULL);
    t->win = (Hodei__V1__GetAggregatedMetricsResponse *)resp;
    return 0;
}

static void top_close(top_state *t)
{
    hodei_rpc_stream_destroy(t->st);
    t->st = NULL;
}

/* Opens the stream (or waits the backoff); 0 or a fatal exit code. */
static int top_open(top_state *t)
{
    run_outcome o = {0};
    if (hodei_rpc_stream_open(t->c->ch, "/hodei.v1.MetricsService/StreamMetrics",
                              &t->c->a->top_stream.base, &hodei__v1__metrics_snapshot__descriptor,
                              0, &t->st, &o.e) == HODEI_OK)
        return 0;
    o.st = o.e.code;
    int rc = top_fatal(t, &o);
    if (rc)
        return rc;
    snprintf(t->note, sizeof t->note, "(cannot reach %s: %s; retrying)", t->c->a->server, o.e.msg);
    hodei_sleep_ms(t->backoff_ms);
    t->backoff_ms = t->backoff_ms * 2 > TOP_BACKOFF_MAX_MS ? TOP_BACKOFF_MAX_MS : t->backoff_ms * 2;
    return 0;
}

/* One receive: a snapshot, a timeout, or the end of the stream. */
static int top_recv(top_state *t, bool *got)
{
    ProtobufCMessage *msg = NULL;
    run_outcome o = {0};
    *got = false;
    o.st = hodei_rpc_stream_recv(t->st, t->c->a->top_stream.interval_ms + TOP_WINDOW_EVERY_MS, &msg,
                                 &o.res, &o.e);
    if (o.st == HODEI_ERR_TIMEOUT)
        return 0;
    if (o.st == HODEI_OK && msg) {
        if (t->snap)
            protobuf_c_message_free_unpacked(&t->snap->base, NULL);
        t->snap = (Hodei__V1__MetricsSnapshot *)msg;
        t->note[0] = '\0';
        t->backoff_ms = TOP_BACKOFF_MIN_MS;
        *got = true;
        return 0;
    }
    top_close(t);
    if (o.st == HODEI_OK && o.res.code == HODEI_GRPC_OK) {
        o.res.code = HODEI_GRPC_UNAVAILABLE;
        snprintf(o.res.message, sizeof o.res.message, "the stream ended");
    }
    int rc = top_fatal(t, &o);
    if (!rc)
        snprintf(t->note, sizeof t->note, "(stream from %s broken: %s; reconnecting)",
                 t->c->a->server, o.st == HODEI_OK ? o.res.message : o.e.msg);
    return rc;
}

int run_cmd_top(const run_ctx *c)
{
    top_state t = {.c = c, .tty = top_tty(c), .backoff_ms = TOP_BACKOFF_MIN_MS};
    int rc = 0;
    while (rc == 0) {
        bool got = false;
        if (!t.st && (rc = top_open(&t)) != 0)
            break;
        if (t.st && (rc = top_recv(&t, &got)) != 0)
            break;
        if ((rc = top_window(&t)) != 0)
            break;
        if (!got && !t.note[0])
            continue;
        if ((rc = top_draw(&t)) != CLI_EXIT_OK)
            break;
        if (c->a->top_once && t.snap && t.win)
            break;
    }
    top_close(&t);
    if (t.snap)
        protobuf_c_message_free_unpacked(&t.snap->base, NULL);
    if (t.win)
        protobuf_c_message_free_unpacked(&t.win->base, NULL);
    return rc;
}

/* ------------------------------------------------------------ dev */

int run_cmd_dev(const cli_args *a, FILE *err)
{
    char self[PATH_MAX], path[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        fprintf(err, "hodei: dev: cannot find this program's folder: %s\n", strerror(errno));
        return CLI_EXIT_ERROR;
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(path, sizeof path, "%s/hodei-dev", self);
    if (access(path, X_OK) != 0) {
        fprintf(err,
                "hodei: dev: %s: %s (the build writes it next to hodei; from the source tree,"
                " run scripts/hodei-dev or make dev)\n",
                path, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    char **argv = calloc((size_t)a->dev_argc + 2, sizeof *argv);
    if (!argv) {
        fprintf(err, "hodei: dev: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    argv[0] = "hodei-dev";
    for (int i = 0; i < a->dev_argc; i++)
        argv[i + 1] = a->dev_argv[i];
    fflush(NULL);
    execv(path, argv);
    fprintf(err, "hodei: dev: cannot run %s: %s\n", path, strerror(errno));
    free(argv);
    return CLI_EXIT_ERROR;
}
