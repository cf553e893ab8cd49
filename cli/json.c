#include "json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest number text: "%.17g" of a double, or an int64. */
#define JSON_NUMBER_MAX 32

static const char json_replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

size_t cli_utf8_seq_len(const char *s, size_t avail)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n;
    uint32_t cp, min;
    if (avail == 0)
        return 0;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0)
        n = 2, cp = p[0] & 0x1f, min = 0x80;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3, cp = p[0] & 0x0f, min = 0x800;
    else if ((p[0] & 0xf8) == 0xf0)
        n = 4, cp = p[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((p[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* Bytes that go out as they are: printable ASCII but " and \, and valid
 * multi-byte UTF-8 sequences. */
static size_t json_plain_run(const unsigned char *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '"' || c == '\\')
                break;
            i++;
            continue;
        }
        size_t n = cli_utf8_seq_len((const char *)p + i, len - i);
        if (n == 0)
            break;
        i += n;
    }
    return i;
}

bool cli_json_escape(hodei_buf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    hodei_buf_putc(b, '"');
    size_t i = 0;
    while (i < len) {
        size_t run = json_plain_run(p + i, len - i);
        hodei_buf_append(b, p + i, run);
        i += run;
        if (i >= len)
            break;
        unsigned char c = p[i++];
        if (c == '"' || c == '\\') {
            hodei_buf_putc(b, '\\');
            hodei_buf_putc(b, (char)c);
        } else if (c < 0x20 || c == 0x7f) {
            hodei_buf_printf(b, "\\u%04x", c);
        } else {
            hodei_buf_puts(b, json_replacement);
        }
    }
    return hodei_buf_putc(b, '"');
}

/* ------------------------------------------------------------ writer */

void cli_json_init(cli_json *j, hodei_buf *out)
{
    *j = (cli_json){.out = out};
}

bool cli_json_done(const cli_json *j)
{
    return !j->failed && !j->out->failed && j->depth == 0 && !j->after_key;
}

/* Comma before the next item of the open object or array. */
static void json_separate(cli_json *j)
{
    if (j->has_items[j->depth])
        hodei_buf_putc(j->out, ',');
    j->has_items[j->depth] = true;
}

static void json_before_value(cli_json *j)
{
    if (j->after_key)
        j->after_key = false;
    else
        json_separate(j);
}

static void json_open(cli_json *j, char c)
{
    json_before_value(j);
    if (j->depth >= CLI_JSON_DEPTH_MAX) {
        j->failed = true;
        return;
    }
    hodei_buf_putc(j->out, c);
    j->has_items[++j->depth] = false;
}

static void json_close(cli_json *j, char c)
{
    if (j->depth == 0 || j->after_key) {
        j->failed = true;
        return;
    }
    hodei_buf_putc(j->out, c);
    j->depth--;
}

void cli_json_object_begin(cli_json *j)
{
    json_open(j, '{');
}
void cli_json_object_end(cli_json *j)
{
    json_close(j, '}');
}
void cli_json_array_begin(cli_json *j)
{
    json_open(j, '[');
}
void cli_json_array_end(cli_json *j)
{
    json_close(j, ']');
}

void cli_json_key(cli_json *j, const char *key)
{
    if (j->depth == 0 || j->after_key)
        j->failed = true;
    json_separate(j);
    cli_json_escape(j->out, key, strlen(key));
    hodei_buf_putc(j->out, ':');
    j->after_key = true;
}

void cli_json_string_len(cli_json *j, const char *s, size_t len)
{
    json_before_value(j);
    cli_json_escape(j->out, s, len);
}

void cli_json_string(cli_json *j, const char *s)
{
    if (!s) {
        cli_json_null(j);
        return;
    }
    cli_json_string_len(j, s, strlen(s));
}

void cli_json_int(cli_json *j, int64_t v)
{
    json_before_value(j);
    hodei_buf_printf(j->out, "%" PRId64, v);
}

void cli_json_double(cli_json *j, double v)
{
    if (!isfinite(v)) {
        cli_json_null(j);
        return;
    }
    char text[JSON_NUMBER_MAX];
    snprintf(text, sizeof text, "%.15g", v);
    if (strtod(text, NULL) != v)
        snprintf(text, sizeof text, "%.17g", v);
    json_before_value(j);
    hodei_buf_puts(j->out, text);
}

void cli_json_bool(cli_json *j, bool v)
{
    json_before_value(j);
    hodei_buf_puts(j->out, v ? "true" : "false");
}

void cli_json_null(cli_json *j)
{
    json_before_value(j);
    hodei_buf_puts(j->out, "null");
}

void cli_json_kv_string(cli_json *j, const char *key, const char *s)
{
    cli_json_key(j, key);
    cli_json_string(j, s);
}

void cli_json_kv_int(cli_json *j, const char *key, int64_t v)
{
    cli_json_key(j, key);
    cli_json_int(j, v);
}

void cli_json_kv_bool(cli_json *j, const char *key, bool v)
{
    cli_json_key(j, key);
    cli_json_bool(j, v);
}
