/* LogBatch (worker_logs.h): the attempt's owner checked, logs.job_max
 * applied, the lines published. */
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

void worker_logs_drops(worker_session *s, const char *job_id, int64_t epoch)
{
    if (strcmp(s->log.job_id, job_id) != 0 || s->log.epoch != epoch || s->log.dropped == 0)
        return;
    char text[256];
    snprintf(text, sizeof text,
             "hodei: %llu lines (%lld bytes) of output were dropped: the job reached the log "
             "limit of %lld bytes (logs.job_max)",
             (unsigned long long)s->log.dropped, (long long)s->log.dropped_bytes,
             (long long)worker_hub_edge(s->hub)->cfg->logs_job_max);
    Hodei__V1__LogLine line = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__LogLine *lines[1] = {&line};
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    line.sequence = s->log.last_sequence; /* the last dropped: sequences keep increasing */
    line.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM;
    line.data.data = (uint8_t *)text;
    line.data.len = strlen(text);
    b.job_id = (char *)job_id;
    b.epoch = epoch;
    b.lines = lines;
    b.n_lines = 1;
    hodei_err err;
    if (log_pub_batch(worker_hub_pub(s->hub), &b, &err) != HODEI_OK)
        HLOG_WARN("job %s: log limit marker not published: %s", job_id, err.msg);
    s->log.dropped = 0;
}

void worker_logs_on_batch(worker_session *s, Hodei__V1__LogBatch *b)
{
    static atomic_long dropped;
    if (!worker_run_owned(s, b->job_id, b->epoch)) {
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
    if (b->n_lines > 0 && log_pub_batch(worker_hub_pub(s->hub), b, &perr) != HODEI_OK)
        HLOG_WARN("job %s: log batch not published: %s", b->job_id, perr.msg);
    b->n_lines = n_lines; /* every line is freed with the message */
}
