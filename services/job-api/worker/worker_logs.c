/* LogBatch (worker_logs.h): the attempt's owner checked, logs.job_max
 * applied, the lines published; at the attempt's end, what was dropped or
 * lost is told in SYSTEM lines. */
#include "worker_logs.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/util.h"
#include "worker_run.h"

#define LOGS_DROP_EVERY 1000 /* stale log batches: log the first, then every Nth */

/* logs.job_max: the lines of b past the attempt's byte limit are cut off
 * and counted; the count becomes one marker line. The kept lines are a
 * prefix of b (nothing is kept after the first drop): b->n_lines shrinks
 * to them, and the caller puts it back before b is freed. */
static void logs_limit(worker_session *s, Hodei__V1__LogBatch *b)
{
    int64_t max = worker_hub_edge(s->hub)->cfg->logs_job_max;
    if (strcmp(s->log.job_id, b->job_id) != 0 || s->log.epoch != b->epoch) {
        memset(&s->log, 0, sizeof s->log);
        hodei_strlcpy(s->log.job_id, b->job_id, sizeof s->log.job_id);
        s->log.epoch = b->epoch;
    }
    size_t keep = 0;
    for (size_t i = 0; i < b->n_lines; i++) {
        Hodei__V1__LogLine *l = b->lines[i];
        int64_t cost = (int64_t)l->data.len + 1;
        if (l->sequence > s->log.last_sequence)
            s->log.last_sequence = l->sequence;
        if (s->log.dropped == 0 && s->log.bytes + cost <= max) {
            s->log.bytes += cost;
            b->lines[keep++] = l;
        } else {
            s->log.dropped++;
            s->log.dropped_bytes += cost;
        }
    }
    b->n_lines = keep;
}

/* "sequences 11-20, 31-40": the runs of a gap. */
static void logs_gap_runs(const log_pub_gap *g, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t i = 0; i < g->n_ranges && len < cap; i++) {
        int n = g->first[i] == g->last[i]
                    ? snprintf(out + len, cap - len, "%s%" PRIu64, i ? ", " : "", g->first[i])
                    : snprintf(out + len, cap - len, "%s%" PRIu64 "-%" PRIu64, i ? ", " : "",
                               g->first[i], g->last[i]);
        len += n > 0 ? (size_t)n : 0;
    }
}

void worker_logs_drops(worker_session *s, const char *job_id, int64_t epoch)
{
    log_pub *pub = worker_hub_pub(s->hub);
    bool mine = strcmp(s->log.job_id, job_id) == 0 && s->log.epoch == epoch;
    uint64_t next = mine ? s->log.last_sequence + 1 : 1; /* after every line of the attempt */
    char text[512];
    hodei_err err;
    if (mine && s->log.dropped > 0) {
        snprintf(text, sizeof text,
                 "hodei: %llu lines (%lld bytes) of output were dropped: the job reached the log "
                 "limit of %lld bytes (logs.job_max)",
                 (unsigned long long)s->log.dropped, (long long)s->log.dropped_bytes,
                 (long long)worker_hub_edge(s->hub)->cfg->logs_job_max);
        /* the last dropped line's sequence: sequences keep increasing */
        if (log_pub_notice(pub, job_id, epoch, s->log.last_sequence, text, &err) != HODEI_OK)
            HLOG_WARN("job %s: log limit marker not published: %s", job_id, err.msg);
        s->log.dropped = 0;
    }
    log_pub_gap gap;
    if (!log_pub_gap_take(pub, job_id, epoch, &gap))
        return;
    char runs[256];
    logs_gap_runs(&gap, runs, sizeof runs);
    if (gap.n_ranges > 0 && gap.last[gap.n_ranges - 1] >= next)
        next = gap.last[gap.n_ranges - 1] + 1;
    snprintf(text, sizeof text, "hodei: %llu lines of output were lost (sequences %s%s): %s",
             (unsigned long long)gap.lines, runs, gap.more ? ", with holes between" : "", gap.why);
    if (log_pub_notice(pub, job_id, epoch, next, text, &err) != HODEI_OK)
        HLOG_ERROR("job %s epoch %" PRId64 ": the notice of %llu lost log lines was not"
                   " published either: %s",
                   job_id, epoch, (unsigned long long)gap.lines, err.msg);
}

void worker_logs_on_batch(worker_session *s, Hodei__V1__LogBatch *b)
{
    static atomic_long dropped;
    bool printed = b->n_lines > 0;
    /* owned and marked in one look; the database is asked only on a miss */
    bool owned = worker_session_owns_mark(s, b->job_id, b->epoch, printed);
    if (!owned && worker_run_owned(s, b->job_id, b->epoch)) {
        owned = true;
        (void)worker_session_owns_mark(s, b->job_id, b->epoch, printed); /* the entry it added */
    }
    if (!owned) {
        long n = atomic_fetch_add(&dropped, 1);
        if (n % LOGS_DROP_EVERY == 0)
            HLOG_INFO("log batch of job %s epoch %" PRId64 " dropped: not this worker's"
                      " current attempt (%ld dropped so far)",
                      b->job_id, b->epoch, n + 1);
        return;
    }
    size_t n_lines = b->n_lines;
    logs_limit(s, b);
    hodei_err perr;
    if (b->n_lines > 0)
        (void)log_pub_batch(worker_hub_pub(s->hub), b, &perr); /* a failure is a gap, logged */
    b->n_lines = n_lines; /* every line is freed with the message */
}
