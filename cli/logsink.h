/* Where a job's output lines go: each line's bytes exactly as the job wrote
 * them plus a newline, stdout lines to `out` and stderr lines to `err`; with
 * `--output json` one JSON object per line on `out` (JSON Lines).
 *
 * The sink remembers the sequence of the last line it wrote, so that a
 * follower that lost its stream can ask again from the next line and no
 * line is printed twice (cli_log_sink_resume). */
#ifndef HODEI_CLI_LOGSINK_H
#define HODEI_CLI_LOGSINK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "run_view.h"

typedef struct {
    FILE *out;
    FILE *err;
    cli_output_format fmt;
    cli_status_line *status; /* wiped before a line is written; may be NULL */
    uint64_t last_seq;       /* sequence of the last line written; 0 = none yet */
    int64_t last_epoch;      /* its attempt's epoch; 0 = unknown (an older edge) */
    bool resuming;           /* after a break: drop lines up to last_seq */
    uint64_t written;        /* lines written */
    uint64_t skipped;        /* lines dropped as already written */
    bool failed;             /* a write failed (closed pipe, full disk) */
    /* Human output: false (default) shows control bytes, C1 controls and
     * bytes that are not UTF-8 as visible text (^[, ^M, \x9b), so a job's
     * output cannot move the cursor, retitle or reprogram the terminal;
     * true (--raw) writes each line's bytes exactly. */
    bool raw;
} cli_log_sink;

void cli_log_sink_init(cli_log_sink *s, FILE *out, FILE *err, cli_output_format fmt,
                       cli_status_line *status);
/* Drop lines before sequence `from` (for `logs --from`), even if a server
 * sends them. from <= 1 drops nothing. */
void cli_log_sink_start_at(cli_log_sink *s, uint64_t from);
/* The stream broke: the lines that follow may repeat some already written.
 * Returns the from_sequence to ask for (last written + 1, or `from`); ask
 * with from_epoch = s->last_epoch too, so that a job's earlier attempts are
 * not sent again. */
uint64_t cli_log_sink_resume(cli_log_sink *s);

/* Writes one line unless it was already written: after a resume, a line of
 * an older epoch than the last written, or of the same epoch and not past
 * its sequence (lines without an epoch: not past the sequence). A line
 * whose sequence is lower than the last one outside a resume starts a new
 * attempt and is written. Returns false once a write has failed. */
bool cli_log_sink_line(cli_log_sink *s, const Hodei__V1__LogLine *line);
/* Every line of the chunk, then flushes both streams. Returns true when the
 * chunk ends the stream, with its final state in *final_state. */
bool cli_log_sink_chunk(cli_log_sink *s, const Hodei__V1__LogChunk *chunk,
                        Hodei__V1__JobState *final_state);
/* Lines of a GetLogs answer, then flushes. Returns how many were new. */
size_t cli_log_sink_lines(cli_log_sink *s, Hodei__V1__LogLine *const *lines, size_t n);

/* Base64 (RFC 4648, with padding) of data[0..len) into out; false when
 * out_len is too small (it needs 4 * ceil(len / 3) + 1). */
bool cli_base64(const uint8_t *data, size_t len, char *out, size_t out_len);

#endif
