/* hodei top's view: the latest snapshot (StreamMetrics) and window figures
 * (GetAggregatedMetrics), drawn for people or as one JSON object (one line,
 * for JSON Lines). Pure: no calls, no terminal control. */
#ifndef HODEI_CLI_TOP_H
#define HODEI_CLI_TOP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "hodei/v1/metrics.pb-c.h"

typedef struct {
    const Hodei__V1__MetricsSnapshot *snap;                /* NULL: none yet */
    const Hodei__V1__GetAggregatedMetricsResponse *window; /* NULL: none yet */
    const char *server;
    int64_t interval_ms;
    bool show_workers;
    const char *note; /* a line about the connection ("reconnecting..."), or NULL */
} cli_top_view;

/* CLI_EXIT_OK, or CLI_EXIT_ERROR when the output could not be written. */
int cli_top_render(cli_output_format fmt, const cli_top_view *v, FILE *out);

/* "850us", "12.3ms", "4.20s", "3m12s", "2h05m"; "-" below 0. */
void cli_format_ms(double ms, char *out, size_t out_len);

#endif
