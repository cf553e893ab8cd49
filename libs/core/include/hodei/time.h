/* Clocks. Wall time for records, monotonic time for intervals. */
#ifndef HODEI_TIME_H
#define HODEI_TIME_H

#include <stddef.h>
#include <stdint.h>

int64_t hodei_wall_us(void); /* microseconds since the Unix epoch */
int64_t hodei_wall_ms(void);
int64_t hodei_mono_ns(void); /* monotonic, arbitrary origin */
int64_t hodei_mono_ms(void);
void hodei_sleep_ms(int64_t ms);

/* Formats wall microseconds as RFC 3339 UTC with milliseconds
 * ("2026-11-28T12:00:00.123Z"). out_len >= 25. */
void hodei_time_format_us(int64_t wall_us, char *out, size_t out_len);

#endif
