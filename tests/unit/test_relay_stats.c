/* The relay's lag histogram: the p50/p99 it logs are what operators read. */
#include <criterion/criterion.h>

#include "relay_stats.h"

static relay_hist h;

/* Bucket lower bounds are within 1/8 below the true value. */
static void expect_close(int64_t got, int64_t want)
{
    cr_expect(got <= want && got * 8 >= want * 7, "got %lld, want about %lld", (long long)got,
              (long long)want);
}

Test(relay_hist, empty_is_zero)
{
    relay_hist_reset(&h);
    cr_expect_eq(relay_hist_quantile(&h, 0.5), 0);
    cr_expect_eq(relay_hist_quantile(&h, 0.99), 0);
}

Test(relay_hist, small_values_are_exact)
{
    relay_hist_reset(&h);
    for (int v = 0; v < 10; v++)
        relay_hist_add(&h, v);
    cr_expect_eq(relay_hist_quantile(&h, 0.0), 0);
    cr_expect_eq(relay_hist_quantile(&h, 0.5), 5);
    cr_expect_eq(relay_hist_quantile(&h, 0.99), 9);
}

Test(relay_hist, uniform_quantiles_within_an_eighth)
{
    relay_hist_reset(&h);
    for (int v = 1; v <= 10000; v++)
        relay_hist_add(&h, v);
    expect_close(relay_hist_quantile(&h, 0.50), 5000);
    expect_close(relay_hist_quantile(&h, 0.99), 9900);
    cr_expect_eq(h.max_us, 10000);
}

Test(relay_hist, tail_shows_in_p99_not_p50)
{
    relay_hist_reset(&h);
    for (int i = 0; i < 980; i++)
        relay_hist_add(&h, 1000);
    for (int i = 0; i < 20; i++)
        relay_hist_add(&h, 250000);
    expect_close(relay_hist_quantile(&h, 0.50), 1000);
    expect_close(relay_hist_quantile(&h, 0.99), 250000);
}

Test(relay_hist, out_of_range_values_are_clamped)
{
    relay_hist_reset(&h);
    relay_hist_add(&h, -5); /* clocks may step back */
    relay_hist_add(&h, INT64_MAX);
    cr_expect_eq(relay_hist_quantile(&h, 0.0), 0);
    cr_expect_gt(relay_hist_quantile(&h, 1.0), 0);
    cr_expect_eq(h.n, 2);
}
