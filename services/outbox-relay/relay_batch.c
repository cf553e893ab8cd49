/* One round of publishing: every row of the round goes out with
 * js_PublishMsgAsync, then we wait for JetStream's acks. The ack handler runs
 * on a nats.c thread and records, per row, acknowledged or failed; the round's
 * result is the acknowledged prefix. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/buf.h"
#include "hodei/bus.h"
#include "hodei/time.h"
#include "relay_int.h"

static const char batch_bytea_prefix[] = "\\x";

/* Finds the pending slot sent as msg; acks mostly arrive in order, so the
 * search starts where the last one ended. Caller holds b->mu. */
static int batch_find(relay_batch *b, const natsMsg *msg)
{
    for (int k = 0; k < b->len; k++) {
        int i = (b->hint + k) % b->len;
        if (b->slots[i].sent == msg && b->slots[i].state == RELAY_SLOT_PENDING) {
            b->hint = i + 1;
            return i;
        }
    }
    return -1;
}

static void batch_note_failure(relay_batch *b, const jsPubAckErr *pae)
{
    if (b->fail_msg[0])
        return;
    if (pae && pae->ErrText && pae->ErrText[0])
        snprintf(b->fail_msg, sizeof b->fail_msg, "%s", pae->ErrText);
    else
        snprintf(b->fail_msg, sizeof b->fail_msg, "%s",
                 pae ? natsStatus_GetText(pae->Err) : "negative ack");
}

/* nats.c hands us msg to destroy; a slot of the open round keeps it until
 * the round closes (so no new message can reuse its address meanwhile). */
static void batch_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    relay_batch *b = closure;
    int64_t now_us = hodei_wall_us();

    pthread_mutex_lock(&b->mu);
    int i = b->open ? batch_find(b, msg) : -1;
    if (i >= 0) {
        relay_slot *sl = &b->slots[i];
        sl->owned = msg;
        sl->ack_us = now_us;
        sl->state = pa ? RELAY_SLOT_ACKED : RELAY_SLOT_FAILED;
        if (!pa)
            batch_note_failure(b, pae);
        msg = NULL;
    }
    pthread_mutex_unlock(&b->mu);
    natsMsg_Destroy(msg);
}

hodei_status relay_batch_init(relay_batch *b, int cap, hodei_err *err)
{
    HODEI_ASSERT(cap > 0 && cap <= RELAY_BATCH_MAX);
    memset(b, 0, sizeof *b);
    b->slots = calloc((size_t)cap, sizeof *b->slots);
    if (!b->slots)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "relay: no memory for %d batch slots", cap);
    b->cap = cap;
    pthread_mutex_init(&b->mu, NULL);
    return HODEI_OK;
}

hodei_status relay_batch_attach(relay_batch *b, natsConnection *nc, hodei_err *err)
{
    jsOptions o;

    jsOptions_Init(&o);
    o.PublishAsync.AckHandler = batch_on_ack;
    o.PublishAsync.AckHandlerClosure = b;
    o.PublishAsync.MaxPending = b->cap;
    b->nc = nc;
    return hodei_bus_err(natsConnection_JetStream(&b->js, nc, &o), "jetstream context", err);
}

void relay_batch_fini(relay_batch *b)
{
    if (!b->slots)
        return;
    jsCtx_Destroy(b->js);
    b->js = NULL;
    for (int i = 0; i < b->cap; i++)
        natsMsg_Destroy(b->slots[i].owned);
    free(b->slots);
    free(b->payload);
    pthread_mutex_destroy(&b->mu);
    memset(b, 0, sizeof *b);
}

/* Decodes bytea hex output ("\x0a1b...") into b->payload. */
static hodei_status batch_decode_payload(relay_batch *b, const char *text, size_t text_len,
                                         long *len_out, hodei_err *err)
{
    const size_t plen = sizeof batch_bytea_prefix - 1;
    size_t need;

    if (text_len < plen || memcmp(text, batch_bytea_prefix, plen) != 0)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "outbox.payload: not bytea hex output");
    need = (text_len - plen) / 2;
    if (need > RELAY_PAYLOAD_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "outbox.payload: %zu bytes exceeds %d", need,
                             RELAY_PAYLOAD_MAX);
    if (need > b->payload_cap) {
        char *p = realloc(b->payload, need);
        if (!p)
            return hodei_err_set(err, HODEI_ERR_NOMEM, "outbox.payload: no memory");
        b->payload = p;
        b->payload_cap = need;
    }
    *len_out = hodei_hex_decode(text + plen, text_len - plen, b->payload, b->payload_cap);
    if (*len_out < 0)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "outbox.payload: bad hex");
    return HODEI_OK;
}

/* A literal subject inside HODEI_EVENTS: "hodei.evt." then dot-separated,
 * non-empty tokens of visible ASCII without wildcards. Anything else would
 * be refused by JetStream or, with a space, break the NATS protocol. */
static bool batch_subject_valid(const char *subj)
{
    const size_t plen = sizeof HODEI_SUBJ_EVENTS_ALL - 2; /* "hodei.evt." */
    size_t len = strlen(subj);

    if (len <= plen || len > RELAY_SUBJECT_MAX || strncmp(subj, HODEI_SUBJ_EVENTS_ALL, plen) != 0)
        return false;
    for (size_t i = plen; i < len; i++) {
        unsigned char c = (unsigned char)subj[i];
        if (c <= ' ' || c >= 0x7f || c == '*' || c == '>')
            return false;
        if (c == '.' && (subj[i - 1] == '.' || i == len - 1))
            return false;
    }
    return true;
}

static natsStatus batch_build_msg(relay_batch *b, const PGresult *res, int row,
                                  const char *publisher, long plen, natsMsg **out)
{
    natsStatus s = natsMsg_Create(out, PQgetvalue(res, row, RELAY_COL_SUBJECT), NULL,
                                  plen > 0 ? b->payload : NULL, (int)plen);
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, HODEI_HDR_MSG_ID, PQgetvalue(res, row, RELAY_COL_EVENT_ID));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, HODEI_HDR_AGGREGATE_ID,
                              PQgetvalue(res, row, RELAY_COL_AGGREGATE_ID));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, HODEI_HDR_EVENT_TYPE,
                              PQgetvalue(res, row, RELAY_COL_EVENT_TYPE));
    if (s == NATS_OK)
        s = natsMsgHeader_Set(*out, HODEI_HDR_PUBLISHER, publisher);
    return s;
}

static void batch_slot_register(relay_batch *b, const PGresult *res, int row, const natsMsg *m)
{
    relay_slot *sl = &b->slots[row];

    pthread_mutex_lock(&b->mu);
    sl->id = strtoll(PQgetvalue(res, row, RELAY_COL_ID), NULL, 10);
    sl->created_us = strtoll(PQgetvalue(res, row, RELAY_COL_CREATED_US), NULL, 10);
    sl->ack_us = 0;
    sl->sent = m;
    sl->state = RELAY_SLOT_PENDING;
    b->len = row + 1;
    pthread_mutex_unlock(&b->mu);
}

static void batch_slot_unsent(relay_batch *b, int row)
{
    pthread_mutex_lock(&b->mu);
    b->slots[row].sent = NULL;
    b->slots[row].state = RELAY_SLOT_FAILED;
    pthread_mutex_unlock(&b->mu);
}

static hodei_status batch_publish_row(relay_batch *b, const PGresult *res, int row,
                                      const char *publisher, hodei_err *err)
{
    natsMsg *m = NULL;
    long plen = 0;
    natsStatus s;
    hodei_status st =
        batch_decode_payload(b, PQgetvalue(res, row, RELAY_COL_PAYLOAD),
                             (size_t)PQgetlength(res, row, RELAY_COL_PAYLOAD), &plen, err);
    if (st != HODEI_OK)
        return st;
    if (!batch_subject_valid(PQgetvalue(res, row, RELAY_COL_SUBJECT)))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "subject \"%.100s\" is not a literal %s subject",
                             PQgetvalue(res, row, RELAY_COL_SUBJECT), HODEI_SUBJ_EVENTS_ALL);
    s = batch_build_msg(b, res, row, publisher, plen, &m);
    if (s == NATS_OK) {
        batch_slot_register(b, res, row, m);
        s = js_PublishMsgAsync(b->js, &m, NULL);
        if (s != NATS_OK)
            batch_slot_unsent(b, row);
    }
    natsMsg_Destroy(m); /* NULL when nats.c took it */
    return hodei_bus_err(s, "jetstream publish", err);
}

/* As batch_publish_row; a failure names the outbox row. */
static hodei_status batch_publish_row_named(relay_batch *b, const PGresult *res, int row,
                                            const char *publisher, hodei_err *err)
{
    hodei_err e = {0};
    hodei_status st = batch_publish_row(b, res, row, publisher, &e);

    if (st != HODEI_OK)
        hodei_err_set(err, st, "outbox id %s: %s", PQgetvalue(res, row, RELAY_COL_ID), e.msg);
    return st;
}

static void batch_open(relay_batch *b)
{
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->len; i++) {
        natsMsg_Destroy(b->slots[i].owned);
        b->slots[i].owned = NULL;
        b->slots[i].sent = NULL;
    }
    b->len = 0;
    b->hint = 0;
    b->fail_msg[0] = '\0';
    b->open = true;
    pthread_mutex_unlock(&b->mu);
}

/* Waits for the acks, in slices so that a lost connection ends the wait
 * early; what is still unanswered then is taken back from nats.c (late acks
 * are dropped) and counts as failed: the next round publishes it again. */
static void batch_wait_acks(relay_batch *b, int64_t deadline_ms)
{
    int64_t left_ms;
    bool connected = true;
    jsPubOptions po;
    natsMsgList pending = {0};

    jsPubOptions_Init(&po);
    do {
        left_ms = deadline_ms - hodei_mono_ms();
        po.MaxWait = left_ms < 1 ? 1 : left_ms < RELAY_ACK_SLICE_MS ? left_ms : RELAY_ACK_SLICE_MS;
        if (js_PublishAsyncComplete(b->js, &po) == NATS_OK)
            return;
        connected = natsConnection_Status(b->nc) == NATS_CONN_STATUS_CONNECTED;
    } while (connected && hodei_mono_ms() < deadline_ms);
    if (js_PublishAsyncGetPendingList(&pending, b->js) == NATS_OK)
        natsMsgList_Destroy(&pending);
    pthread_mutex_lock(&b->mu);
    if (!b->fail_msg[0] && connected)
        snprintf(b->fail_msg, sizeof b->fail_msg, "no ack within relay.publish_timeout");
    else if (!b->fail_msg[0])
        snprintf(b->fail_msg, sizeof b->fail_msg, "connection lost while waiting for acks");
    pthread_mutex_unlock(&b->mu);
}

/* Closes the round to late acks; returns the acknowledged prefix. */
static int batch_close(relay_batch *b)
{
    int prefix = 0;

    pthread_mutex_lock(&b->mu);
    b->open = false;
    while (prefix < b->len && b->slots[prefix].state == RELAY_SLOT_ACKED)
        prefix++;
    pthread_mutex_unlock(&b->mu);
    return prefix;
}

hodei_status relay_batch_publish(relay_batch *b, const PGresult *res, const char *publisher,
                                 int64_t timeout_ms, int *prefix_out, hodei_err *err)
{
    int n = PQntuples(res);
    hodei_status st = HODEI_OK;

    HODEI_ASSERT(b->js && n <= b->cap && PQnfields(res) == RELAY_COLS);
    int64_t deadline_ms = hodei_mono_ms() + timeout_ms;

    batch_open(b);
    for (int row = 0; row < n && st == HODEI_OK; row++)
        st = batch_publish_row_named(b, res, row, publisher, err);
    /* nats.c's flusher thread waits 1 ms to gather writes; the batch is
     * complete, so write it now (PING/PONG, concurrent with the acks). */
    if (b->len > 0)
        natsConnection_FlushTimeout(b->nc, timeout_ms);
    batch_wait_acks(b, deadline_ms);
    *prefix_out = batch_close(b);
    if (st != HODEI_OK || *prefix_out == n)
        return st;
    return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "jetstream acknowledged %d of %d: %s",
                         *prefix_out, n, b->fail_msg);
}

void relay_batch_lags(const relay_batch *b, int n, relay_hist *h)
{
    for (int i = 0; i < n && i < b->len; i++)
        relay_hist_add(h, b->slots[i].ack_us - b->slots[i].created_us);
}
