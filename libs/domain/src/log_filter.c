#include "hodei/log_filter.h"

void hodei_log_filter_init(hodei_log_filter *f, uint64_t from_sequence, int64_t from_epoch)
{
    f->from_sequence = from_sequence;
    f->from_epoch = from_epoch;
    f->epoch = 0;
    f->last_sequence = 0;
}

bool hodei_log_filter_pass(hodei_log_filter *f, int64_t epoch, uint64_t sequence)
{
    if (epoch < f->epoch)
        return false; /* a late batch of an attempt that has been replaced */
    if (epoch > f->epoch) {
        f->epoch = epoch;
        f->last_sequence = 0;
    }
    if (sequence <= f->last_sequence)
        return false; /* a batch re-sent in other pieces after a reconnect */
    f->last_sequence = sequence;
    if (f->from_epoch > 0 && epoch != f->from_epoch)
        return epoch > f->from_epoch; /* an older attempt: skipped; a later one: whole */
    return sequence >= f->from_sequence;
}
