/* Growable byte buffer with a named maximum (curl's dynbuf). The content is
 * always NUL-terminated. Once an append would pass `max`, the buffer is
 * marked failed and every later append is refused, so a caller can append a
 * whole record and check once. */
#ifndef HODEI_BUF_H
#define HODEI_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool failed;
} hodei_buf;

void hodei_buf_init(hodei_buf *b, size_t max);
void hodei_buf_fini(hodei_buf *b);
void hodei_buf_reset(hodei_buf *b); /* len = 0, keeps memory, clears failed */
bool hodei_buf_append(hodei_buf *b, const void *data, size_t len);
bool hodei_buf_puts(hodei_buf *b, const char *s);
bool hodei_buf_putc(hodei_buf *b, char c);
bool hodei_buf_printf(hodei_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends len bytes as lower-case hex. */
bool hodei_buf_hex(hodei_buf *b, const void *data, size_t len);
/* Moves the content out (caller frees); the buffer is left empty. */
char *hodei_buf_take(hodei_buf *b, size_t *len_out);

/* Decodes hex text into out (out_cap >= len/2). Returns bytes written or -1. */
long hodei_hex_decode(const char *hex, size_t len, void *out, size_t out_cap);

#endif

#ifndef HODEI_BUF_JSON_H
#define HODEI_BUF_JSON_H
/* Appends s as a JSON string literal (quotes included; control characters
 * as \u00XX). s must be valid UTF-8 (validated at the door). */
bool hodei_buf_json_string(hodei_buf *b, const char *s);
#endif
