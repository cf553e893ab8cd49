/* PostgreSQL array literals ('{"a","b",NULL}') for passing a whole group of
 * rows as a handful of parameters to one unnest() statement. Values stay
 * parameters: they are quoted and escaped as array elements, never spliced
 * into SQL text. */
#ifndef HODEI_SQLARR_H
#define HODEI_SQLARR_H

#include <stdbool.h>
#include <stdint.h>

#include "hodei/buf.h"

void hodei_sqlarr_begin(hodei_buf *b);
/* s NULL appends SQL NULL. */
void hodei_sqlarr_str(hodei_buf *b, const char *s);
void hodei_sqlarr_i64(hodei_buf *b, int64_t v);
/* s quoted and escaped as one element, without a separator (for nested
 * arrays built by hand). */
void hodei_sqlarr_quote(hodei_buf *b, const char *s);
/* Closes the literal; false when the buffer hit its maximum. */
bool hodei_sqlarr_end(hodei_buf *b);

#endif
