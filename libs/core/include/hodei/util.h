/* Small string and number helpers shared by every program. */
#ifndef HODEI_UTIL_H
#define HODEI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A macro's value as a string literal, e.g. " LIMIT " HODEI_STR(ROWS_MAX). */
#define HODEI_STR_(x) #x
#define HODEI_STR(x) HODEI_STR_(x)

/* Bounded copy; always NUL-terminates when dst_len > 0. Returns false when
 * src did not fit (dst then holds the truncated prefix). */
bool hodei_strlcpy(char *dst, const char *src, size_t dst_len);

/* Strict integer parse: the whole string, base 10, within [min, max]. */
bool hodei_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Parses a duration: "250ms", "5s", "2m", "1h" or a bare number of ms. */
bool hodei_parse_duration_ms(const char *s, int64_t *out_ms);

/* true when s (length len) is valid UTF-8. */
bool hodei_utf8_valid(const char *s, size_t len);

#endif
