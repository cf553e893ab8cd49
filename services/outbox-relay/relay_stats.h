/* The relay's lag histogram: log-linear buckets, no memory per sample. */
#ifndef HODEI_RELAY_STATS_H
#define HODEI_RELAY_STATS_H

#include <stdint.h>

#define RELAY_LAG_BUCKETS 352 /* 16 exact, then 8 per power of two */

/* A histogram of microsecond values with ~12% resolution. */
typedef struct {
    uint64_t counts[RELAY_LAG_BUCKETS];
    uint64_t n;
    int64_t max_us;
    int64_t sum_us;
} relay_hist;

void relay_hist_reset(relay_hist *h);
void relay_hist_add(relay_hist *h, int64_t us);
/* The value at quantile q (0..1), as the lower bound of its bucket; 0 when empty. */
int64_t relay_hist_quantile(const relay_hist *h, double q);

#endif
