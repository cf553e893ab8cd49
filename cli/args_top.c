/* The flags of top (a live view of MetricsService) and dev (the local
 * stack in the foreground, handed to hodei-dev). */
#include <string.h>

#include "args_int.h"

/* ------------------------------------------------------------ top */

static hodei_status top_duration(const char *flag, const char *value, int64_t min_ms,
                                 int64_t max_ms, const char *range, int64_t *out, hodei_err *err)
{
    int64_t ms = 0;
    if (!cli_parse_duration(value, &ms) || ms < min_ms || ms > max_ms) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be a duration from %s, got %s", flag,
                             range, args_quote(value, q));
    }
    *out = ms;
    return HODEI_OK;
}

static hodei_status top_interval(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    return top_duration(flag, value, CLI_TOP_INTERVAL_MIN_MS, CLI_TOP_INTERVAL_MAX_MS,
                        "100ms to 60s like 2s", &a->top_stream.interval_ms, err);
}

static hodei_status top_window(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    return top_duration(flag, value, CLI_TOP_WINDOW_MIN_MS, CLI_TOP_WINDOW_MAX_MS,
                        "1s to 7 days like 15m", &a->top_window.window_ms, err);
}

static hodei_status top_workers(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    int32_t n = 0;
    hodei_status st = args_int32(flag, value, &n, err);
    if (st == HODEI_OK && (n < 0 || n > CLI_TOP_WORKERS_MAX))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be 0 to %d, got %d", flag,
                             CLI_TOP_WORKERS_MAX, (int)n);
    a->top_stream.workers_max = n;
    a->top_no_workers = st == HODEI_OK && n == 0;
    return st;
}

static hodei_status top_once(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->top_once = true;
    return HODEI_OK;
}

static const args_flag top_flags[] = {
    {"--interval", "-n", true, top_interval},
    {"--window", "-w", true, top_window},
    {"--workers", NULL, true, top_workers},
    {"--once", "-1", false, top_once},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

hodei_status args_parse_top(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    a->top_stream.interval_ms = CLI_TOP_INTERVAL_DEFAULT_MS;
    a->top_stream.workers_max = CLI_TOP_WORKERS_DEFAULT;
    a->top_window.window_ms = CLI_TOP_WINDOW_DEFAULT_MS;
    return args_parse_flags(a, top_flags, argc, argv, i, args_no_positional, err);
}

/* ------------------------------------------------------------ dev */

/* Everything after `dev` is hodei-dev's to judge (hodei-dev --help). */
hodei_status args_parse_dev(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    (void)err;
    if (i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
        a->help = true;
        return HODEI_OK;
    }
    a->dev_argc = i < argc ? argc - i : 0;
    a->dev_argv = i < argc ? argv + i : NULL;
    return HODEI_OK;
}
