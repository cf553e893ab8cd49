/* libs/domain log_filter.c: which stored log lines a reader delivers. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "hodei/log_filter.h"

/* Feeds (epoch, sequence) pairs; returns the delivered ones as "e:s,". */
static const char *run(uint64_t from_sequence, int64_t from_epoch, const int64_t (*in)[2], size_t n)
{
    static char out[512];
    size_t len = 0;
    hodei_log_filter f;
    hodei_log_filter_init(&f, from_sequence, from_epoch);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (hodei_log_filter_pass(&f, in[i][0], (uint64_t)in[i][1]))
            len += (size_t)snprintf(out + len, sizeof out - len, "%lld:%lld,", (long long)in[i][0],
                                    (long long)in[i][1]);
    }
    return out;
}

#define RUN(fs, fe, ...)                                                                           \
    run(fs, fe, (const int64_t[][2]){__VA_ARGS__},                                                 \
        sizeof((const int64_t[][2]){__VA_ARGS__}) / sizeof(int64_t[2]))

Test(log_filter, everything_once_in_order)
{
    cr_assert_str_eq(RUN(0, 0, {1, 1}, {1, 2}, {1, 3}), "1:1,1:2,1:3,");
}

Test(log_filter, repeats_of_a_resent_batch_are_dropped)
{
    cr_assert_str_eq(RUN(0, 0, {1, 1}, {1, 2}, {1, 2}, {1, 1}, {1, 3}), "1:1,1:2,1:3,");
}

Test(log_filter, a_late_batch_of_a_replaced_attempt_is_dropped)
{
    cr_assert_str_eq(RUN(0, 0, {1, 1}, {2, 1}, {1, 2}, {2, 2}), "1:1,2:1,2:2,");
}

Test(log_filter, each_attempt_numbers_from_one)
{
    cr_assert_str_eq(RUN(0, 0, {1, 1}, {1, 2}, {2, 1}, {2, 2}), "1:1,1:2,2:1,2:2,");
}

Test(log_filter, from_sequence_without_epoch_applies_to_every_attempt)
{
    cr_assert_str_eq(RUN(2, 0, {1, 1}, {1, 2}, {1, 3}, {2, 1}, {2, 2}), "1:2,1:3,2:2,");
}

Test(log_filter, from_epoch_skips_older_attempts_and_takes_later_ones_whole)
{
    cr_assert_str_eq(RUN(2, 2, {1, 1}, {1, 5}, {2, 1}, {2, 2}, {3, 1}, {3, 2}), "2:2,3:1,3:2,");
}

Test(log_filter, from_epoch_beyond_every_attempt_delivers_nothing)
{
    cr_assert_str_eq(RUN(0, 9, {1, 1}, {2, 1}), "");
}

Test(log_filter, a_skipped_line_still_counts_as_seen)
{
    /* below from_sequence: not delivered, and a repeat of it neither */
    cr_assert_str_eq(RUN(3, 0, {1, 1}, {1, 2}, {1, 2}, {1, 3}), "1:3,");
}
