/* Lag histogram: log-linear buckets (16 exact, then 8 per power of two), so
 * p50/p99 cost no memory per sample and stay within ~12%. */
#include <string.h>

#include "relay_stats.h"

#define HIST_LINEAR 16 /* values below are their own bucket */
#define HIST_SUB 8     /* sub-buckets per power of two */
#define HIST_SUB_LOG 3

static int hist_bucket(int64_t us)
{
    int e, idx;

    if (us < HIST_LINEAR)
        return us < 0 ? 0 : (int)us;
    e = 63 - __builtin_clzll((unsigned long long)us);
    idx = HIST_LINEAR + (e - 4) * HIST_SUB + (int)((us >> (e - HIST_SUB_LOG)) & (HIST_SUB - 1));
    return idx < RELAY_LAG_BUCKETS ? idx : RELAY_LAG_BUCKETS - 1;
}

static int64_t hist_lower_bound(int idx)
{
    int e, sub;

    if (idx < HIST_LINEAR)
        return idx;
    e = 4 + (idx - HIST_LINEAR) / HIST_SUB;
    sub = (idx - HIST_LINEAR) % HIST_SUB;
    return (int64_t)(HIST_SUB + sub) << (e - HIST_SUB_LOG);
}

void relay_hist_reset(relay_hist *h)
{
    memset(h, 0, sizeof *h);
}

void relay_hist_add(relay_hist *h, int64_t us)
{
    h->counts[hist_bucket(us)]++;
    h->n++;
    h->sum_us += us > 0 ? us : 0;
    if (us > h->max_us)
        h->max_us = us;
}

int64_t relay_hist_quantile(const relay_hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->n == 0)
        return 0;
    rank = (uint64_t)(q * (double)h->n);
    if (rank >= h->n)
        rank = h->n - 1;
    for (int i = 0; i < RELAY_LAG_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen > rank)
            return hist_lower_bound(i);
    }
    return h->max_us;
}
