/* Everything the agent says on the stream goes through one sender thread,
 * in this order of preference:
 *   1. control messages (RunJobAck, Heartbeat, Keepalive): per stream,
 *      dropped on a disconnect;
 *   2. the warning line that replaces output dropped while disconnected;
 *   3. results that are due (after their output, or again after a
 *      reconnect, or when unacknowledged for worker.result_resend);
 *   4. output batches and the result marks between them, in order.
 * Output is kept across disconnections up to worker.buffer_max bytes; while
 * connected a full buffer holds the job back (the executor blocks in its
 * batch callback), while disconnected the oldest output is dropped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define SENDER_DROP_TEXT_MAX 256

/* ------------------------------------------------------------ queues */

void agent_queue_push(agent_queue *q, agent_item *it)
{
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->count++;
    q->bytes += it->len;
}

void agent_queue_push_front(agent_queue *q, agent_item *it)
{
    it->next = q->head;
    q->head = it;
    if (!q->tail)
        q->tail = it;
    q->count++;
    q->bytes += it->len;
}

agent_item *agent_queue_pop(agent_queue *q)
{
    agent_item *it = q->head;
    if (!it)
        return NULL;
    q->head = it->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    q->bytes -= it->len;
    it->next = NULL;
    return it;
}

void agent_queue_clear(agent_queue *q)
{
    agent_item *it;
    while ((it = agent_queue_pop(q)))
        agent_item_free(it);
}

void agent_item_free(agent_item *it)
{
    if (!it)
        return;
    free(it->data);
    free(it);
}

agent_item *agent_item_pack(agent_item_kind kind, const Hodei__V1__WorkerMessage *m)
{
    agent_item *it = calloc(1, sizeof *it);
    if (!it)
        return NULL;
    it->kind = kind;
    if (!m)
        return it;
    it->len = protobuf_c_message_get_packed_size(&m->base);
    it->data = malloc(it->len ? it->len : 1);
    if (!it->data) {
        free(it);
        return NULL;
    }
    protobuf_c_message_pack(&m->base, it->data);
    return it;
}

/* ------------------------------------------------------------ producers */

void agent_send_control(agent *a, const Hodei__V1__WorkerMessage *m)
{
    if (!a->stream || a->stream_broken)
        return; /* per stream: a new stream starts with Hello */
    if (a->control.count >= AGENT_CONTROL_MAX) {
        HLOG_WARN("control queue full (%d messages); dropping one", AGENT_CONTROL_MAX);
        return;
    }
    agent_item *it = agent_item_pack(ITEM_CONTROL, m);
    if (!it) {
        HLOG_ERROR("out of memory for a control message; dropped");
        return;
    }
    agent_queue_push(&a->control, it);
    pthread_cond_broadcast(&a->cv);
}

static agent_drop *sender_drop_slot(agent *a, const agent_item *it)
{
    agent_drop *free_slot = NULL;
    for (size_t i = 0; i < AGENT_DROPS_MAX; i++) {
        agent_drop *d = &a->drops[i];
        if (d->in_use && d->epoch == it->epoch && strcmp(d->job_id, it->job_id) == 0)
            return d;
        if (!d->in_use && !free_slot)
            free_slot = d;
    }
    if (free_slot) {
        HLOG_WARN("disconnected and the output buffer is full (%lld bytes): dropping the "
                  "oldest output of job=%s epoch=%lld",
                  (long long)a->cfg->buffer_bytes_max, it->job_id, (long long)it->epoch);
        memset(free_slot, 0, sizeof *free_slot);
        free_slot->in_use = true;
        hodei_strlcpy(free_slot->job_id, it->job_id, sizeof free_slot->job_id);
        free_slot->epoch = it->epoch;
        free_slot->first_seq = it->first_seq;
    }
    return free_slot;
}

/* Drops the oldest output batch; false when there is none to drop. */
static bool sender_drop_oldest(agent *a)
{
    agent_item *prev = NULL, *it = a->data.head;
    while (it && it->kind != ITEM_LOG) {
        prev = it;
        it = it->next;
    }
    if (!it)
        return false;
    if (prev)
        prev->next = it->next;
    else
        a->data.head = it->next;
    if (a->data.tail == it)
        a->data.tail = prev;
    a->data.count--;
    a->data.bytes -= it->len;
    agent_drop *d = sender_drop_slot(a, it);
    if (d)
        d->last_seq = it->last_seq;
    a->dropped_total += it->last_seq - it->first_seq + 1;
    agent_item_free(it);
    return true;
}

void agent_send_log(agent *a, agent_job *job, Hodei__V1__LogLine **lines, size_t n)
{
    Hodei__V1__LogBatch lb = HODEI__V1__LOG_BATCH__INIT;
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    lb.job_id = job->job_id;
    lb.epoch = job->epoch;
    lb.n_lines = n;
    lb.lines = lines;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH;
    m.log_batch = &lb;
    agent_item *it = agent_item_pack(ITEM_LOG, &m);
    if (!it) {
        HLOG_ERROR("out of memory for an output batch of job=%s; dropped", job->job_id);
        return;
    }
    hodei_strlcpy(it->job_id, job->job_id, sizeof it->job_id);
    it->epoch = job->epoch;
    it->first_seq = lines[0]->sequence;
    it->last_seq = lines[n - 1]->sequence;
    size_t max = (size_t)a->cfg->buffer_bytes_max;
    pthread_mutex_lock(&a->mu);
    while (!a->quit && a->data.count > 0 && a->data.bytes + it->len > max) {
        if (a->stream && !a->stream_broken) {
            pthread_cond_wait(&a->cv, &a->mu); /* back-pressure while connected */
            continue;
        }
        if (!sender_drop_oldest(a))
            break;
    }
    agent_queue_push(&a->data, it);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* ------------------------------------------------------------ the sender */

/* The warning line that stands for dropped output: it takes the sequence
 * number of the last line dropped, so sequences stay increasing. */
static agent_item *sender_drop_item(agent_drop *d)
{
    char text[SENDER_DROP_TEXT_MAX];
    uint64_t n = d->last_seq - d->first_seq + 1;
    int len = snprintf(text, sizeof text,
                       "hodei-worker: %llu lines of output (sequences %llu..%llu) were dropped "
                       "while disconnected from the server",
                       (unsigned long long)n, (unsigned long long)d->first_seq,
                       (unsigned long long)d->last_seq);
    int64_t now = hodei_wall_us();
    Hodei__V1__Timestamp ts = HODEI__V1__TIMESTAMP__INIT;
    ts.seconds = now / 1000000;
    ts.nanos = (int32_t)(now % 1000000) * 1000;
    Hodei__V1__LogLine line = HODEI__V1__LOG_LINE__INIT, *lp = &line;
    line.sequence = d->last_seq;
    line.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR;
    line.time = &ts;
    line.data.data = (uint8_t *)text;
    line.data.len = (size_t)len < sizeof text ? (size_t)len : sizeof text - 1;
    Hodei__V1__LogBatch lb = HODEI__V1__LOG_BATCH__INIT;
    lb.job_id = d->job_id;
    lb.epoch = d->epoch;
    lb.n_lines = 1;
    lb.lines = &lp;
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH;
    m.log_batch = &lb;
    agent_item *it = agent_item_pack(ITEM_LOG, &m);
    if (it) {
        hodei_strlcpy(it->job_id, d->job_id, sizeof it->job_id);
        it->epoch = d->epoch;
        it->first_seq = it->last_seq = d->last_seq;
        HLOG_WARN("output dropped while disconnected job=%s epoch=%lld lines=%llu", d->job_id,
                  (long long)d->epoch, (unsigned long long)n);
    }
    return it;
}

static void sender_timestamp(Hodei__V1__Timestamp *ts, int64_t us)
{
    ts->seconds = us / 1000000;
    ts->nanos = (int32_t)(us % 1000000) * 1000;
}

static agent_item *sender_result_item(agent_result *r)
{
    Hodei__V1__Timestamp started = HODEI__V1__TIMESTAMP__INIT;
    Hodei__V1__Timestamp finished = HODEI__V1__TIMESTAMP__INIT;
    Hodei__V1__JobResult jr = HODEI__V1__JOB_RESULT__INIT;
    Hodei__V1__WorkerMessage m = HODEI__V1__WORKER_MESSAGE__INIT;
    sender_timestamp(&started, r->started_us);
    sender_timestamp(&finished, r->finished_us);
    jr.job_id = r->job_id;
    jr.epoch = r->epoch;
    jr.state = r->state;
    jr.exit_code = r->exit_code;
    jr.error = r->error;
    jr.started_at = r->started_us ? &started : NULL;
    jr.finished_at = &finished;
    jr.n_artifacts = r->artifacts.len;
    jr.artifacts = r->artifacts.items;
    m.body_case = HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT;
    m.job_result = &jr;
    agent_item *it = agent_item_pack(ITEM_CONTROL, &m);
    if (it) {
        hodei_strlcpy(it->job_id, r->job_id, sizeof it->job_id);
        it->epoch = r->epoch;
    }
    return it;
}

static agent_item *sender_next_result(agent *a, agent_result **res_out)
{
    for (size_t i = 0; i < AGENT_RESULTS_MAX; i++) {
        agent_result *r = &a->results[i];
        if (!r->in_use || !r->due || r->queued)
            continue;
        agent_item *it = sender_result_item(r);
        if (!it)
            return NULL;
        r->due = false;
        *res_out = r;
        return it;
    }
    return NULL;
}

static agent_item *sender_next_drop(agent *a)
{
    for (size_t i = 0; i < AGENT_DROPS_MAX; i++) {
        agent_drop *d = &a->drops[i];
        if (!d->in_use)
            continue;
        agent_item *it = sender_drop_item(d);
        if (it)
            d->in_use = false;
        return it;
    }
    return NULL;
}

/* The next message to write, or NULL. Called with mu held and a stream up. */
static agent_item *sender_next(agent *a, agent_result **res_out)
{
    agent_item *it = agent_queue_pop(&a->control);
    if (it || !a->stream_ready)
        return it;
    if ((it = sender_next_drop(a)) || (it = sender_next_result(a, res_out)))
        return it;
    while ((it = agent_queue_pop(&a->data)) && it->kind == ITEM_RESULT_MARK) {
        agent_result *r = agent_result_find(a, it->job_id, it->epoch);
        if (r) {
            r->queued = false;
            r->due = true;
        }
        agent_item_free(it);
        if (r)
            return sender_next_result(a, res_out);
    }
    return it;
}

/* Output written lately stays on the sent queue, within a time and a byte
 * bound, in case the stream breaks before the edge read it. */
static void sender_keep_sent(agent *a, agent_item *it, int64_t now)
{
    it->sent_ms = now;
    agent_queue_push(&a->sent, it);
    size_t max = (size_t)a->cfg->buffer_bytes_max / 2;
    while (a->sent.head &&
           (now - a->sent.head->sent_ms > AGENT_UNCONFIRMED_MS || a->sent.bytes > max))
        agent_item_free(agent_queue_pop(&a->sent));
}

/* After a send (mu held): bookkeeping, or putting the message back. */
static void sender_after(agent *a, agent_item *it, agent_result *r, bool ok)
{
    int64_t now = hodei_mono_ms();
    if (ok) {
        a->last_send_ms = now;
        if (r) {
            r->sends++;
            r->last_sent_ms = now;
        }
        if (it->kind == ITEM_LOG)
            sender_keep_sent(a, it, now);
        else
            agent_item_free(it);
        return;
    }
    a->stream_broken = true;
    agent_queue_clear(&a->control);
    if (r)
        r->due = true;
    if (it->kind == ITEM_LOG) {
        agent_queue_push_front(&a->data, it); /* again on the next stream */
        return;
    }
    agent_item_free(it);
}

static bool sender_write(hodei_rpc_stream *st, const agent_item *it)
{
    hodei_err err;
    ProtobufCMessage *m =
        protobuf_c_message_unpack(&hodei__v1__worker_message__descriptor, NULL, it->len, it->data);
    if (!m) {
        HLOG_ERROR("cannot re-read a queued message (%zu bytes); dropped", it->len);
        return true;
    }
    hodei_status s = hodei_rpc_stream_send(st, m, &err);
    protobuf_c_message_free_unpacked(m, NULL);
    if (s != HODEI_OK)
        HLOG_INFO("stream send failed: %s", err.msg);
    return s == HODEI_OK;
}

void *agent_sender_main(void *arg)
{
    agent *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->quit) {
        agent_result *r = NULL;
        agent_item *it = NULL;
        if (a->stream && !a->stream_broken)
            it = sender_next(a, &r);
        if (!it) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        hodei_rpc_stream *st = a->stream;
        a->sending = true;
        pthread_mutex_unlock(&a->mu);
        bool ok = sender_write(st, it);
        pthread_mutex_lock(&a->mu);
        a->sending = false;
        sender_after(a, it, r, ok);
        pthread_cond_broadcast(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ------------------------------------------------------------ streams */

void agent_stream_publish(agent *a, hodei_rpc_stream *st)
{
    pthread_mutex_lock(&a->mu);
    a->stream = st;
    a->stream_broken = false;
    a->stream_ready = false;
    a->last_send_ms = hodei_mono_ms();
    /* Results sent on an earlier stream and not acknowledged: again now. */
    for (size_t i = 0; i < AGENT_RESULTS_MAX; i++)
        if (a->results[i].in_use && a->results[i].sends > 0)
            a->results[i].due = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void agent_sent_confirm(agent *a, const char *job_id, int64_t epoch, int64_t before_ms)
{
    agent_queue keep = {0};
    agent_item *it;
    while ((it = agent_queue_pop(&a->sent))) {
        bool done = job_id ? it->epoch == epoch && strcmp(it->job_id, job_id) == 0
                           : it->sent_ms <= before_ms;
        if (done)
            agent_item_free(it);
        else
            agent_queue_push(&keep, it);
    }
    a->sent = keep;
}

/* A finished job's result goes out again only after its output written
 * again, so the edge never sees output after the result. */
static void sender_requeue_marks(agent *a, agent_queue *q)
{
    for (size_t i = 0; i < AGENT_RESULTS_MAX; i++) {
        agent_result *r = &a->results[i];
        bool has_output = false;
        for (agent_item *it = q->head; it && !has_output; it = it->next)
            has_output = it->epoch == r->epoch && strcmp(it->job_id, r->job_id) == 0;
        if (!r->in_use || r->queued || !has_output)
            continue;
        agent_item *mark = agent_item_pack(ITEM_RESULT_MARK, NULL);
        if (!mark)
            continue; /* the result then simply goes first */
        hodei_strlcpy(mark->job_id, r->job_id, sizeof mark->job_id);
        mark->epoch = r->epoch;
        r->queued = true;
        r->due = false;
        agent_queue_push(q, mark);
    }
}

/* The stream broke: output written to it lately goes to the front of the
 * queue, to be written again on the next stream. */
static void sender_requeue_sent(agent *a)
{
    agent_queue q = a->sent;
    memset(&a->sent, 0, sizeof a->sent);
    if (!q.head)
        return;
    HLOG_INFO("writing %zu recent output batches again on the next stream", q.count);
    sender_requeue_marks(a, &q);
    q.tail->next = a->data.head;
    if (!a->data.tail)
        a->data.tail = q.tail;
    a->data.head = q.head;
    a->data.count += q.count;
    a->data.bytes += q.bytes;
}

void agent_stream_ready(agent *a)
{
    pthread_mutex_lock(&a->mu);
    a->stream_ready = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

void agent_stream_unpublish(agent *a, bool broken)
{
    pthread_mutex_lock(&a->mu);
    a->stream = NULL;
    while (a->sending)
        pthread_cond_wait(&a->cv, &a->mu);
    if (broken)
        sender_requeue_sent(a);
    agent_queue_clear(&a->sent);
    agent_queue_clear(&a->control);
    pthread_cond_broadcast(&a->cv); /* a job held back by a full buffer may now drop */
    pthread_mutex_unlock(&a->mu);
}
