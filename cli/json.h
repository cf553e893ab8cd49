/* A small JSON writer for the CLI's `--output json`, on a bounded hodei_buf.
 * Strings are escaped so the output is always valid JSON: `"` and `\` with a
 * backslash, control characters (and DEL) as \u00XX, and every byte that is
 * not part of valid UTF-8 replaced by U+FFFD. Commas are placed by the
 * writer; callers only open, name and close. */
#ifndef HODEI_CLI_JSON_H
#define HODEI_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/buf.h"

#define CLI_JSON_DEPTH_MAX 16

typedef struct {
    hodei_buf *out;
    int depth;
    bool has_items[CLI_JSON_DEPTH_MAX + 1]; /* per open level: a comma is due */
    bool after_key;
    bool failed; /* nesting misuse; the buffer's own failure is out->failed */
} cli_json;

void cli_json_init(cli_json *j, hodei_buf *out);
/* true when everything fit, nesting is balanced and the buffer did not fail. */
bool cli_json_done(const cli_json *j);

void cli_json_object_begin(cli_json *j);
void cli_json_object_end(cli_json *j);
void cli_json_array_begin(cli_json *j);
void cli_json_array_end(cli_json *j);
void cli_json_key(cli_json *j, const char *key);

void cli_json_string(cli_json *j, const char *s); /* NULL -> null */
void cli_json_string_len(cli_json *j, const char *s, size_t len);
void cli_json_int(cli_json *j, int64_t v);
void cli_json_double(cli_json *j, double v); /* NaN, inf -> null */
void cli_json_bool(cli_json *j, bool v);
void cli_json_null(cli_json *j);

/* Shorthands: key then value. */
void cli_json_kv_string(cli_json *j, const char *key, const char *s);
void cli_json_kv_int(cli_json *j, const char *key, int64_t v);
void cli_json_kv_bool(cli_json *j, const char *key, bool v);

/* Length of the valid UTF-8 sequence at s (avail bytes), or 0 when the
 * bytes there are not valid UTF-8 (bad lead, truncated, overlong, surrogate,
 * past U+10FFFF). */
size_t cli_utf8_seq_len(const char *s, size_t avail);

/* Appends s[0..len) as a quoted, escaped JSON string. */
bool cli_json_escape(hodei_buf *b, const char *s, size_t len);

#endif
