/* Which stored log lines a reader delivers (GetLogs, SubscribeLogs). A
 * job's log holds the LogBatches of every attempt, each attempt's lines
 * numbered from 1 by LogLine.sequence, in the order they were stored:
 *
 * - a line of an older epoch than one already seen is dropped (a late batch
 *   of an attempt that was replaced);
 * - a line whose sequence is not above the last one delivered for its
 *   epoch is dropped (a batch re-sent in other pieces after a reconnect);
 * - with from_epoch > 0: lines of older epochs are skipped, lines of
 *   from_epoch below from_sequence are skipped, later epochs come whole;
 * - with from_epoch 0: lines below from_sequence are skipped in every
 *   attempt.
 *
 * Pure: feed it (epoch, sequence) pairs in stored order. */
#ifndef HODEI_LOG_FILTER_H
#define HODEI_LOG_FILTER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t from_sequence;
    int64_t from_epoch; /* 0 = from_sequence in every attempt */
    int64_t epoch;      /* the newest epoch seen */
    uint64_t last_sequence;
} hodei_log_filter;

void hodei_log_filter_init(hodei_log_filter *f, uint64_t from_sequence, int64_t from_epoch);
/* true when the line must be delivered; updates what f has seen. */
bool hodei_log_filter_pass(hodei_log_filter *f, int64_t epoch, uint64_t sequence);

#endif
