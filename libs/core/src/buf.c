#include "hodei/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hodei_buf_init(hodei_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}

void hodei_buf_fini(hodei_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void hodei_buf_reset(hodei_buf *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data)
        b->data[0] = '\0';
}

static bool buf_reserve(hodei_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > b->max || b->len + extra > b->max) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool hodei_buf_append(hodei_buf *b, const void *data, size_t len)
{
    if (!buf_reserve(b, len))
        return false;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return true;
}

bool hodei_buf_puts(hodei_buf *b, const char *s)
{
    return hodei_buf_append(b, s, strlen(s));
}

bool hodei_buf_putc(hodei_buf *b, char c)
{
    return hodei_buf_append(b, &c, 1);
}

bool hodei_buf_printf(hodei_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

bool hodei_buf_hex(hodei_buf *b, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    if (len > b->max / 2 || !buf_reserve(b, len * 2))
        return false;
    const unsigned char *p = data;
    char *o = b->data + b->len;
    for (size_t i = 0; i < len; i++) {
        *o++ = digits[p[i] >> 4];
        *o++ = digits[p[i] & 15];
    }
    b->len += len * 2;
    b->data[b->len] = '\0';
    return true;
}

char *hodei_buf_take(hodei_buf *b, size_t *len_out)
{
    char *p = b->data;
    if (len_out)
        *len_out = b->len;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long hodei_hex_decode(const char *hex, size_t len, void *out, size_t out_cap)
{
    if (len % 2 != 0 || len / 2 > out_cap)
        return -1;
    unsigned char *o = out;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_val(hex[i]), lo = hex_val(hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        o[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return (long)(len / 2);
}

bool hodei_buf_json_string(hodei_buf *b, const char *s)
{
    hodei_buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            hodei_buf_puts(b, "\\\"");
            break;
        case '\\':
            hodei_buf_puts(b, "\\\\");
            break;
        case '\n':
            hodei_buf_puts(b, "\\n");
            break;
        case '\r':
            hodei_buf_puts(b, "\\r");
            break;
        case '\t':
            hodei_buf_puts(b, "\\t");
            break;
        default:
            if (*p < 0x20)
                hodei_buf_printf(b, "\\u%04x", *p);
            else
                hodei_buf_putc(b, (char)*p);
        }
    }
    return hodei_buf_putc(b, '"');
}
