/* Appending workers' log batches to JetStream: subject hodei.logs.<job>,
 * payload a packed hodei.v1.LogBatch, Nats-Msg-Id "<job>:<epoch>:<first
 * sequence>" so a batch re-sent after a reconnect is dropped. Publishes are
 * asynchronous on one JetStream context; their order on the connection is
 * the order of the calls, so an end marker published after a job's batches
 * lands after them.
 *
 * Lines are never lost in silence. While NATS is away, nats.c buffers the
 * publishes (reconnect buffer) and sends them on reconnection; a publish
 * refused at once (buffer full, too many awaiting their ack) is tried again,
 * in order, a few times within LOG_PUB_RETRY_BUDGET_MS. Lines that still did
 * not make it, or that JetStream refused later (its asynchronous error), are
 * a gap: counted in hodei_log_lines_lost_total, logged as an error naming
 * the job, the attempt and the sequences, and kept per attempt
 * (log_pub_gap_take) so the attempt's end tells its readers which lines are
 * missing. */
#ifndef HODEI_JOB_API_LOG_PUB_H
#define HODEI_JOB_API_LOG_PUB_H

#include <stdbool.h>
#include <stdint.h>

#include "hodei/bus.h"
#include "hodei/daemon.h"
#include "hodei/v1/worker.pb-c.h"

#define LOG_PUB_PENDING_MAX 4096     /* async publishes awaiting JetStream's ack */
#define LOG_PUB_STALL_MS 2000        /* a publish waits this long for room */
#define LOG_PUB_DRAIN_MS 5000        /* destroy waits this long for the acks */
#define LOG_PUB_RETRY_MAX 4          /* a refused publish is tried again up to this often */
#define LOG_PUB_RETRY_BASE_MS 50     /* ... after 50, 100, 200, 400 ms */
#define LOG_PUB_RETRY_BUDGET_MS 2000 /* ... while the batch's tries took less than this */
#define LOG_PUB_GAPS_MAX 256         /* attempts with lost lines remembered at once */
#define LOG_PUB_GAP_RANGES_MAX 8     /* runs of lost sequences told per attempt */
#define LOG_PUB_WHY_MAX 160

typedef struct log_pub log_pub;

/* lost: counter of the lines lost for good (hodei_log_lines_lost_total;
 * NULL: not counted). */
hodei_status log_pub_create(hodei_bus *bus, hodei_metric *lost, log_pub **out, hodei_err *err);
/* Waits (bounded) for outstanding acks, then frees. NULL is a no-op. */
void log_pub_destroy(log_pub *p);

/* Publishes a validated batch, split into several messages when it does not
 * fit the server's maximum payload. Not HODEI_OK: some lines were lost
 * (recorded as a gap of their attempt, see above). */
hodei_status log_pub_batch(log_pub *p, const Hodei__V1__LogBatch *b, hodei_err *err);
/* The lines an attempt lost so far: runs of sequences, their count and the
 * first reason; taken (forgotten) by the call. false: none. */
typedef struct {
    uint64_t lines;
    size_t n_ranges;
    uint64_t first[LOG_PUB_GAP_RANGES_MAX], last[LOG_PUB_GAP_RANGES_MAX];
    bool more; /* more runs than LOG_PUB_GAP_RANGES_MAX: the last one spans them */
    char why[LOG_PUB_WHY_MAX];
} log_pub_gap;
bool log_pub_gap_take(log_pub *p, const char *job_id, int64_t epoch, log_pub_gap *out);
/* One SYSTEM line of the platform's own (a limit reached, lines lost) at
 * sequence seq, published as it is (no gap recorded when it fails). */
hodei_status log_pub_notice(log_pub *p, const char *job_id, int64_t epoch, uint64_t seq,
                            const char *text, hodei_err *err);
/* The end-of-log marker: an empty LogBatch with header Hodei-Log-End set to
 * the job's final state name ("SUCCEEDED", ...). alone: the caller saw no
 * line of the job (its first attempt, from its first line on), so the
 * marker should be the subject's only message: it is published on that
 * condition (HODEI_HDR_EXPECT_LAST_SUBJ_SEQ "0"), and when the subject
 * holds lines after all, JetStream refuses it and it is published again
 * without the condition. */
hodei_status log_pub_end(log_pub *p, const char *job_id, int64_t epoch,
                         Hodei__V1__JobState final_state, bool alone, hodei_err *err);

#endif
