/* Private to the output modules (output.c, output_fleet.c, logsink.c,
 * run_view.c): the sanitizer, times and JSON pieces they share. */
#ifndef HODEI_CLI_OUTPUT_INT_H
#define HODEI_CLI_OUTPUT_INT_H

#include "hodei/buf.h"
#include "json.h"
#include "output.h"

#define OUTPUT_TIME_BUF 32
#define OUTPUT_LINE_MAX 4096 /* bytes of one human value (command line, error) */

/* Copies s into out with control characters as '?' and invalid UTF-8 as
 * U+FFFD, at most max_chars characters (then "..."). Returns the characters
 * written, for column widths. */
size_t output_sanitize(const char *s, size_t max_chars, char *out, size_t out_len);
/* RFC 3339 text of ts, "-" when unset. */
void output_time(const Hodei__V1__Timestamp *ts, char *out, size_t out_len);
/* ts in wall microseconds, 0 when unset. */
int64_t output_time_us(const Hodei__V1__Timestamp *ts);
/* "Label:     value" with the value sanitized, "-" when empty. */
void output_line(FILE *out, const char *label, const char *value);

/* JSON pieces: key then RFC 3339 text or null; key then resources or null;
 * one job object (status's). */
void output_json_time(cli_json *j, const char *key, const Hodei__V1__Timestamp *ts);
void output_json_resources(cli_json *j, const char *key, const Hodei__V1__ResourceRequirements *r);
void output_json_job(cli_json *j, const Hodei__V1__Job *job);
/* "spec" then the job spec object (or null). */
void output_json_spec(cli_json *j, const Hodei__V1__JobSpec *s);
void output_json_records(cli_json *j, const char *key, size_t n,
                         Hodei__V1__ArtifactRecord *const *items);
/* Writes the finished document and a newline; frees b. CLI_EXIT_OK or
 * CLI_EXIT_ERROR. */
int output_json_flush(cli_json *j, hodei_buf *b, FILE *out);

#endif
