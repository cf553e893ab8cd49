/* Workers' log batches onto JetStream (see log_pub.h). */
#include "logs_pub.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/id.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define LOG_PUB_SUBJECT_MAX 128
#define LOG_PUB_MSG_ID_MAX 96
#define LOG_PUB_BATCH_OVERHEAD 128 /* job id, epoch and field tags around the lines */
#define LOG_PUB_LINE_OVERHEAD 16   /* tag and length prefix of one line */

/* The lines one attempt lost (log_pub_gap_take). */
typedef struct {
    bool used;
    uint64_t born; /* insertion order, for the eviction of the oldest */
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
    log_pub_gap gap;
} pub_gap_slot;

struct log_pub {
    natsConnection *nc;
    jsCtx *js;
    hodei_metric *lost;
    pthread_mutex_t mu; /* guards gaps and born */
    uint64_t born;
    pub_gap_slot gaps[LOG_PUB_GAPS_MAX];
};

/* ------------------------------------------------------------------ gaps */

static pub_gap_slot *gap_slot_locked(log_pub *p, const char *job_id, int64_t epoch)
{
    pub_gap_slot *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < LOG_PUB_GAPS_MAX; i++) {
        pub_gap_slot *g = &p->gaps[i];
        if (g->used && g->epoch == epoch && strcmp(g->job_id, job_id) == 0)
            return g;
        if (!g->used && !free_slot)
            free_slot = g;
        if (g->used && (!oldest || g->born < oldest->born))
            oldest = g;
    }
    pub_gap_slot *g = free_slot ? free_slot : oldest;
    if (!free_slot)
        HLOG_ERROR("job %s epoch %" PRId64 ": its %" PRIu64
                   " lost log lines will not be told to its readers (more than %d attempts"
                   " with lost lines at once)",
                   g->job_id, g->epoch, g->gap.lines, LOG_PUB_GAPS_MAX);
    memset(g, 0, sizeof *g);
    g->used = true;
    g->born = ++p->born;
    hodei_strlcpy(g->job_id, job_id, sizeof g->job_id);
    g->epoch = epoch;
    return g;
}

/* Adds the run first..last (n lines) to the attempt's gap. */
static void gap_run_add(log_pub_gap *gap, uint64_t first, uint64_t last)
{
    size_t n = gap->n_ranges;
    if (n > 0 && first == gap->last[n - 1] + 1) {
        gap->last[n - 1] = last;
    } else if (n < LOG_PUB_GAP_RANGES_MAX) {
        gap->first[n] = first;
        gap->last[n] = last;
        gap->n_ranges = n + 1;
    } else {
        gap->more = true;
        if (last > gap->last[n - 1])
            gap->last[n - 1] = last;
        if (first < gap->first[n - 1])
            gap->first[n - 1] = first;
    }
}

/* Lines of a batch lost for good: counted, logged, kept for the attempt's
 * readers. */
static void gap_add(log_pub *p, const char *job_id, int64_t epoch, Hodei__V1__LogLine *const *lines,
                    size_t n, const char *why)
{
    if (n == 0)
        return;
    hodei_metric_add(p->lost, n);
    HLOG_ERROR("job %s epoch %" PRId64 ": %zu log lines lost (sequences %" PRIu64 "-%" PRIu64
               "): %s",
               job_id, epoch, n, lines[0]->sequence, lines[n - 1]->sequence, why);
    pthread_mutex_lock(&p->mu);
    pub_gap_slot *g = gap_slot_locked(p, job_id, epoch);
    if (!g->gap.why[0])
        hodei_strlcpy(g->gap.why, why, sizeof g->gap.why);
    g->gap.lines += n;
    /* a batch's sequences increase: one run per stretch without a hole */
    uint64_t from = lines[0]->sequence;
    for (size_t i = 1; i <= n; i++) {
        if (i == n || lines[i]->sequence != lines[i - 1]->sequence + 1) {
            gap_run_add(&g->gap, from, lines[i - 1]->sequence);
            if (i < n)
                from = lines[i]->sequence;
        }
    }
    pthread_mutex_unlock(&p->mu);
}

bool log_pub_gap_take(log_pub *p, const char *job_id, int64_t epoch, log_pub_gap *out)
{
    bool found = false;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < LOG_PUB_GAPS_MAX && !found; i++) {
        pub_gap_slot *g = &p->gaps[i];
        if (g->used && g->epoch == epoch && strcmp(g->job_id, job_id) == 0) {
            *out = g->gap;
            g->used = false;
            found = true;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

/* JetStream refused a publish after taking it (its asynchronous answer):
 * the batch's lines are a gap; an end marker that did not make it is
 * logged (its followers end at the job's state instead). */
static void pub_on_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    log_pub *p = closure;
    char why[LOG_PUB_WHY_MAX];
    snprintf(why, sizeof why, "the log store refused them: %.120s",
             pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    natsMsg *m = pae->Msg;
    const char *subject = m ? natsMsg_GetSubject(m) : NULL;
    size_t prefix = strlen(HODEI_SUBJ_LOGS_PREFIX);
    if (!subject || strncmp(subject, HODEI_SUBJ_LOGS_PREFIX, prefix) != 0) {
        HLOG_ERROR("log publish failed on %s: %s", subject ? subject : "?", why);
        return;
    }
    const char *end = NULL, *expect = NULL;
    if (natsMsgHeader_Get(m, HODEI_HDR_LOG_END, &end) == NATS_OK) {
        /* published as the subject's only message, and lines were there
         * after all (the attempt printed on another stream): again, as an
         * end marker after them (the documented way to resend from here) */
        if (pae->ErrCode == JSStreamWrongLastSequenceErr &&
            natsMsgHeader_Get(m, HODEI_HDR_EXPECT_LAST_SUBJ_SEQ, &expect) == NATS_OK &&
            natsMsgHeader_Delete(m, HODEI_HDR_EXPECT_LAST_SUBJ_SEQ) == NATS_OK &&
            js_PublishMsgAsync(js, &pae->Msg, NULL) == NATS_OK)
            return;
        HLOG_ERROR("job %s: end-of-log marker not stored: %s", subject + prefix, why);
        return;
    }
    Hodei__V1__LogBatch *b = hodei__v1__log_batch__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                          (const uint8_t *)natsMsg_GetData(m));
    if (!b) {
        HLOG_ERROR("log publish failed on %s: %s", subject, why);
        return;
    }
    gap_add(p, subject + prefix, b->epoch, b->lines, b->n_lines, why);
    hodei__v1__log_batch__free_unpacked(b, NULL);
}

hodei_status log_pub_create(hodei_bus *bus, hodei_metric *lost, log_pub **out, hodei_err *err)
{
    log_pub *p = calloc(1, sizeof *p);
    if (!p)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "log publisher: out of memory");
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.MaxPending = LOG_PUB_PENDING_MAX;
    o.PublishAsync.StallWait = LOG_PUB_STALL_MS;
    o.PublishAsync.ErrHandler = pub_on_error;
    o.PublishAsync.ErrHandlerClosure = p;
    p->nc = hodei_bus_conn(bus);
    p->lost = lost;
    pthread_mutex_init(&p->mu, NULL);
    natsStatus s = natsConnection_JetStream(&p->js, p->nc, &o);
    if (s != NATS_OK) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return hodei_bus_err(s, "log publisher: jetstream context", err);
    }
    *out = p;
    return HODEI_OK;
}

void log_pub_destroy(log_pub *p)
{
    if (!p)
        return;
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = LOG_PUB_DRAIN_MS;
    if (js_PublishAsyncComplete(p->js, &po) != NATS_OK)
        HLOG_WARN("log publisher: acks still outstanding after %d ms", LOG_PUB_DRAIN_MS);
    jsCtx_Destroy(p->js);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Packs msg (len = its packed size, or 0 to compute it) and publishes it
 * asynchronously with the given headers. */
static hodei_status pub_send(log_pub *p, const char *job_id, const ProtobufCMessage *msg,
                             size_t len, const char *msg_id, const char *end_state, bool alone,
                             hodei_err *err)
{
    char subject[LOG_PUB_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "%s%s", HODEI_SUBJ_LOGS_PREFIX, job_id);
    if (len == 0)
        len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "log publish: out of memory");
    protobuf_c_message_pack(msg, buf);
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subject, NULL, (const char *)buf, (int)len);
    free(buf);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(m, HODEI_HDR_MSG_ID, msg_id);
    if (s == NATS_OK && end_state)
        s = natsMsgHeader_Set(m, HODEI_HDR_LOG_END, end_state);
    if (s == NATS_OK && alone)
        s = natsMsgHeader_Set(m, HODEI_HDR_EXPECT_LAST_SUBJ_SEQ, "0");
    if (s == NATS_OK)
        s = js_PublishMsgAsync(p->js, &m, NULL);
    natsMsg_Destroy(m); /* NULL when the library took it */
    if (s != NATS_OK)
        return hodei_bus_err(s, "log publish", err);
    return HODEI_OK;
}

/* lines from..from+n-1 of b as one message. A publish refused at once is
 * tried again, in order (the stream thread waits: the worker's output slows
 * down rather than losing lines), then its lines become a gap. */
static hodei_status pub_part(log_pub *p, const Hodei__V1__LogBatch *b, size_t from, size_t n,
                             size_t len, hodei_err *err)
{
    Hodei__V1__LogBatch part = *b;
    part.n_lines = n;
    part.lines = b->lines + from;
    char id[LOG_PUB_MSG_ID_MAX];
    snprintf(id, sizeof id, "%s:%" PRId64 ":%" PRIu64, b->job_id, b->epoch,
             b->lines[from]->sequence);
    int64_t t0 = hodei_mono_ms();
    hodei_status st = pub_send(p, b->job_id, &part.base, len, id, NULL, false, err);
    for (int tries = 0; st != HODEI_OK && st != HODEI_ERR_NOMEM && tries < LOG_PUB_RETRY_MAX;
         tries++) {
        int64_t wait_ms = (int64_t)LOG_PUB_RETRY_BASE_MS << tries;
        if (hodei_mono_ms() - t0 + wait_ms > LOG_PUB_RETRY_BUDGET_MS)
            break;
        hodei_sleep_ms(wait_ms);
        st = pub_send(p, b->job_id, &part.base, len, id, NULL, false, err);
    }
    if (st != HODEI_OK) {
        char why[LOG_PUB_WHY_MAX];
        snprintf(why, sizeof why, "the log store could not be reached: %.120s", err->msg);
        gap_add(p, b->job_id, b->epoch, part.lines, n, why);
    }
    return st;
}

hodei_status log_pub_batch(log_pub *p, const Hodei__V1__LogBatch *b, hodei_err *err)
{
    if (b->n_lines == 0)
        return HODEI_OK;
    int64_t max_payload = natsConnection_GetMaxPayload(p->nc);
    size_t limit = max_payload > 2 * LOG_PUB_BATCH_OVERHEAD
                       ? (size_t)max_payload - LOG_PUB_BATCH_OVERHEAD
                       : LOG_PUB_BATCH_OVERHEAD;
    size_t whole = protobuf_c_message_get_packed_size(&b->base);
    if (whole <= limit)
        return pub_part(p, b, 0, b->n_lines, whole, err); /* the common case */
    size_t from = 0, size = 0;
    hodei_status st = HODEI_OK;
    hodei_err part_err;
    for (size_t i = 0; i < b->n_lines; i++) {
        size_t one = protobuf_c_message_get_packed_size(&b->lines[i]->base) + LOG_PUB_LINE_OVERHEAD;
        if (i > from && size + one > limit) {
            /* a part that failed is a gap: the others still go */
            if (pub_part(p, b, from, i - from, 0, &part_err) != HODEI_OK && st == HODEI_OK)
                st = hodei_err_set(err, part_err.code, "%s", part_err.msg);
            from = i;
            size = 0;
        }
        size += one;
    }
    if (pub_part(p, b, from, b->n_lines - from, 0, &part_err) != HODEI_OK && st == HODEI_OK)
        st = hodei_err_set(err, part_err.code, "%s", part_err.msg);
    return st;
}

hodei_status log_pub_notice(log_pub *p, const char *job_id, int64_t epoch, uint64_t seq,
                            const char *text, hodei_err *err)
{
    Hodei__V1__LogLine line = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__LogLine *lines[1] = {&line};
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    line.sequence = seq;
    line.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM;
    line.data.data = (uint8_t *)text;
    line.data.len = strlen(text);
    b.job_id = (char *)job_id;
    b.epoch = epoch;
    b.lines = lines;
    b.n_lines = 1;
    char id[LOG_PUB_MSG_ID_MAX];
    snprintf(id, sizeof id, "%s:%" PRId64 ":note:%" PRIu64, job_id, epoch, seq);
    return pub_send(p, job_id, &b.base, 0, id, NULL, false, err);
}

hodei_status log_pub_end(log_pub *p, const char *job_id, int64_t epoch,
                         Hodei__V1__JobState final_state, bool alone, hodei_err *err)
{
    Hodei__V1__LogBatch marker = HODEI__V1__LOG_BATCH__INIT;
    marker.job_id = (char *)job_id;
    marker.epoch = epoch;
    char id[LOG_PUB_MSG_ID_MAX];
    snprintf(id, sizeof id, "%s:%" PRId64 ":end", job_id, epoch);
    return pub_send(p, job_id, &marker.base, 0, id, hodei_job_state_name(final_state), alone, err);
}
