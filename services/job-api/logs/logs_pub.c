/* Workers' log batches onto JetStream (see log_pub.h). */
#include "logs_pub.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "hodei/job_state.h"
#include "hodei/log.h"

#define LOG_PUB_SUBJECT_MAX 128
#define LOG_PUB_MSG_ID_MAX 96
#define LOG_PUB_BATCH_OVERHEAD 128 /* job id, epoch and field tags around the lines */
#define LOG_PUB_LINE_OVERHEAD 16   /* tag and length prefix of one line */
#define LOG_PUB_ERR_LOG_EVERY 1000 /* failed publishes: log the first, then every Nth */

struct log_pub {
    natsConnection *nc;
    jsCtx *js;
    atomic_long failures;
};

static void pub_on_error(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    log_pub *p = closure;
    long n = atomic_fetch_add(&p->failures, 1);
    if (n % LOG_PUB_ERR_LOG_EVERY == 0)
        HLOG_WARN("log publish failed on %s: %s (%ld failures so far)",
                  pae->Msg ? natsMsg_GetSubject(pae->Msg) : "?",
                  pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err), n + 1);
}

hodei_status log_pub_create(hodei_bus *bus, log_pub **out, hodei_err *err)
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
    natsStatus s = natsConnection_JetStream(&p->js, p->nc, &o);
    if (s != NATS_OK) {
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
    free(p);
}

/* Packs msg (len = its packed size, or 0 to compute it) and publishes it
 * asynchronously with the given headers. */
static hodei_status pub_send(log_pub *p, const char *job_id, const ProtobufCMessage *msg,
                             size_t len, const char *msg_id, const char *end_state, hodei_err *err)
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
    if (s == NATS_OK)
        s = js_PublishMsgAsync(p->js, &m, NULL);
    natsMsg_Destroy(m); /* NULL when the library took it */
    if (s != NATS_OK)
        return hodei_bus_err(s, "log publish", err);
    return HODEI_OK;
}

static hodei_status pub_part(log_pub *p, const Hodei__V1__LogBatch *b, size_t from, size_t n,
                             size_t len, hodei_err *err)
{
    Hodei__V1__LogBatch part = *b;
    part.n_lines = n;
    part.lines = b->lines + from;
    char id[LOG_PUB_MSG_ID_MAX];
    snprintf(id, sizeof id, "%s:%" PRId64 ":%" PRIu64, b->job_id, b->epoch,
             b->lines[from]->sequence);
    return pub_send(p, b->job_id, &part.base, len, id, NULL, err);
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
    for (size_t i = 0; i < b->n_lines; i++) {
        size_t one = protobuf_c_message_get_packed_size(&b->lines[i]->base) + LOG_PUB_LINE_OVERHEAD;
        if (i > from && size + one > limit) {
            hodei_status st = pub_part(p, b, from, i - from, 0, err);
            if (st != HODEI_OK)
                return st;
            from = i;
            size = 0;
        }
        size += one;
    }
    return pub_part(p, b, from, b->n_lines - from, 0, err);
}

hodei_status log_pub_end(log_pub *p, const char *job_id, int64_t epoch,
                         Hodei__V1__JobState final_state, hodei_err *err)
{
    Hodei__V1__LogBatch marker = HODEI__V1__LOG_BATCH__INIT;
    marker.job_id = (char *)job_id;
    marker.epoch = epoch;
    char id[LOG_PUB_MSG_ID_MAX];
    snprintf(id, sizeof id, "%s:%" PRId64 ":end", job_id, epoch);
    return pub_send(p, job_id, &marker.base, 0, id, hodei_job_state_name(final_state), err);
}
