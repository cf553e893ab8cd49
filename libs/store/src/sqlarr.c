#include "hodei/sqlarr.h"

#include <inttypes.h>

static void hodei_sqlarr_sep(hodei_buf *b)
{
    if (b->len > 1)
        hodei_buf_putc(b, ',');
}

void hodei_sqlarr_begin(hodei_buf *b)
{
    hodei_buf_reset(b);
    hodei_buf_putc(b, '{');
}

void hodei_sqlarr_str(hodei_buf *b, const char *s)
{
    hodei_sqlarr_sep(b);
    if (!s)
        hodei_buf_puts(b, "NULL");
    else
        hodei_sqlarr_quote(b, s);
}

void hodei_sqlarr_quote(hodei_buf *b, const char *s)
{
    hodei_buf_putc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            hodei_buf_putc(b, '\\');
        hodei_buf_putc(b, *p);
    }
    hodei_buf_putc(b, '"');
}

void hodei_sqlarr_i64(hodei_buf *b, int64_t v)
{
    hodei_sqlarr_sep(b);
    hodei_buf_printf(b, "%" PRId64, v);
}

bool hodei_sqlarr_end(hodei_buf *b)
{
    hodei_buf_putc(b, '}');
    return !b->failed;
}
