/* RunJobAcks written grouped (worker_acks.h). A short job's result often
 * comes before its ack is written: the ack is then dropped, the result's
 * transaction counts the job as started, and the job costs one commit less.
 * Every other ack is written within worker.ack_delay, all pending ones (up
 * to ACKS_PENDING_MAX) in one UPDATE. An ack that UPDATE did not take is
 * judged alone, as an ungrouped ack would be: a CancelJob when the worker
 * does not hold that attempt, and a database failure ends only that
 * worker's stream. */
#include "worker_acks.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hodei/assert.h"
#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/sqlarr.h"
#include "hodei/store.h"
#include "hodei/sync.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define ACKS_PENDING_MAX 4096      /* more pending: written at once */
#define ACKS_SQL_MAX (1024 * 1024) /* one flush's array literals */

typedef struct ack_item {
    struct ack_item *next;
    worker_session *s; /* referenced while queued */
    char worker_id[HODEI_ID_BUF];
    worker_job_ref ref;
    int64_t due_ms;
} ack_item;

struct worker_acks {
    edge *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ack_item *head, *tail;
    size_t n;
    bool stopping;
    pthread_t writer;
    bool writer_started;
};

static const char acks_sql[] =
    "UPDATE jobs j SET state = 'RUNNING', started_at = now(), updated_at = now()"
    " FROM unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS a(id, worker_id, epoch)"
    " WHERE j.id = a.id AND j.state = 'ASSIGNED' AND j.worker_id = a.worker_id"
    "  AND j.epoch = a.epoch"
    " RETURNING j.id::text, j.epoch";
enum { ACKS_COL_ID, ACKS_COL_EPOCH };

static bool acks_taken(const PGresult *res, const ack_item *it)
{
    for (int r = 0; res && r < PQntuples(res); r++) {
        if (hodei_db_get_i64(res, r, ACKS_COL_EPOCH) == it->ref.epoch &&
            strcasecmp(hodei_db_get_str(res, r, ACKS_COL_ID), it->ref.job_id) == 0)
            return true;
    }
    return false;
}

/* The grouped UPDATE; *res NULL when it could not be written (each ack is
 * then tried alone). */
static void acks_update(PGconn *conn, ack_item *list, PGresult **res)
{
    hodei_buf ids, workers, epochs;
    hodei_buf *all[] = {&ids, &workers, &epochs};
    hodei_err err;
    *res = NULL;
    for (size_t i = 0; i < 3; i++) {
        hodei_buf_init(all[i], ACKS_SQL_MAX);
        hodei_sqlarr_begin(all[i]);
    }
    size_t n = 0;
    for (ack_item *it = list; it; it = it->next, n++) {
        hodei_sqlarr_str(&ids, it->ref.job_id);
        hodei_sqlarr_str(&workers, it->worker_id);
        hodei_sqlarr_i64(&epochs, it->ref.epoch);
    }
    bool built = true;
    for (size_t i = 0; i < 3; i++)
        built = hodei_sqlarr_end(all[i]) && built;
    if (built) {
        const char *params[3] = {ids.data, workers.data, epochs.data};
        if (hodei_db_exec(conn, acks_sql, 3, params, res, &err) != HODEI_OK)
            HLOG_WARN("%zu acks not written together (%s); writing each alone", n, err.msg);
    }
    for (size_t i = 0; i < 3; i++)
        hodei_buf_fini(all[i]);
}

/* One ack written and judged on conn: true when the job went (or was)
 * RUNNING at this worker and epoch; an attempt the worker does not hold gets
 * a CancelJob, a database failure ends the stream (the worker reconnects and
 * acks the re-sent RunJob). */
static bool acks_write_one(PGconn *conn, worker_session *s, const char *worker_id,
                           const char *job_id, int64_t epoch)
{
    hodei_err err;
    hodei_status st;
    int tries = 0;
    do
        st = hodei_store_job_started(conn, job_id, worker_id, epoch, &err);
    while (hodei_db_conflict_retry(st, &tries));
    if (st == HODEI_OK)
        return true;
    if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND || st == HODEI_ERR_INVALID) {
        HLOG_INFO("worker %s acked job %s epoch %" PRId64 " it does not hold (%s); cancelling",
                  worker_id, job_id, epoch, err.msg);
        worker_session_send_cancel(s, job_id, epoch, WORKER_STALE_WHY);
        return false;
    }
    HLOG_WARN("worker %s: ack of job %s not recorded: %s", worker_id, job_id, err.msg);
    worker_session_end(s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
    return false;
}

/* Writes the list and frees it. */
static void acks_flush(worker_acks *a, ack_item *list)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    hodei_status st = edge_db_acquire(a->e, &conn, &err);
    if (st == HODEI_OK)
        acks_update(conn, list, &res);
    else
        HLOG_WARN("acks not recorded: %s", err.msg);
    while (list) {
        ack_item *next = list->next;
        if (st != HODEI_OK)
            worker_session_end(list->s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
        else if (!acks_taken(res, list))
            acks_write_one(conn, list->s, list->worker_id, list->ref.job_id, list->ref.epoch);
        worker_session_unref(list->s);
        free(list);
        list = next;
    }
    PQclear(res);
    if (conn)
        edge_db_release(a->e, conn, hodei_db_conn_status(conn));
}

/* Takes at most ACKS_PENDING_MAX items off the queue. a->mu held. */
static ack_item *acks_take_locked(worker_acks *a)
{
    ack_item *list = a->head, *last = a->head;
    size_t n = 1;
    while (last->next && n < ACKS_PENDING_MAX) {
        last = last->next;
        n++;
    }
    a->head = last->next;
    if (!a->head)
        a->tail = NULL;
    last->next = NULL;
    a->n -= n;
    return list;
}

static void *acks_writer(void *arg)
{
    worker_acks *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        if (!a->head && a->stopping)
            break;
        if (!a->head) {
            pthread_cond_wait(&a->cv, &a->mu);
            continue;
        }
        int64_t left = a->head->due_ms - hodei_mono_ms();
        if (left > 0 && !a->stopping && a->n < ACKS_PENDING_MAX) {
            hodei_cond_wait_ms(&a->cv, &a->mu, left);
            continue;
        }
        ack_item *list = acks_take_locked(a);
        pthread_mutex_unlock(&a->mu);
        acks_flush(a, list);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

hodei_status worker_acks_create(edge *e, worker_acks **out, hodei_err *err)
{
    worker_acks *a = calloc(1, sizeof *a);
    if (!a)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "acks: out of memory");
    a->e = e;
    pthread_mutex_init(&a->mu, NULL);
    hodei_cond_init_monotonic(&a->cv);
    if (pthread_create(&a->writer, NULL, acks_writer, a) != 0) {
        worker_acks_destroy(a);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "acks: cannot start the writer thread");
    }
    a->writer_started = true;
    *out = a;
    return HODEI_OK;
}

void worker_acks_destroy(worker_acks *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->writer_started)
        pthread_join(a->writer, NULL);
    HODEI_ASSERT(a->head == NULL);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* Queues worker_id's ack of (job_id, epoch); false when the writer is
 * stopping or memory ran out (the caller writes it itself). */
static bool acks_add(worker_acks *a, worker_session *s, const char *worker_id, const char *job_id,
                     int64_t epoch)
{
    ack_item *it = calloc(1, sizeof *it);
    if (!it)
        return false;
    worker_session_ref(s);
    it->s = s;
    hodei_strlcpy(it->worker_id, worker_id, sizeof it->worker_id);
    hodei_strlcpy(it->ref.job_id, job_id, sizeof it->ref.job_id);
    it->ref.epoch = epoch;
    it->due_ms = hodei_mono_ms() + a->e->cfg->worker_ack_delay_ms;
    pthread_mutex_lock(&a->mu);
    bool stopping = a->stopping;
    if (!stopping) {
        if (a->tail)
            a->tail->next = it;
        else
            a->head = it;
        a->tail = it;
        if (++a->n == 1 || a->n >= ACKS_PENDING_MAX)
            pthread_cond_signal(&a->cv);
    }
    pthread_mutex_unlock(&a->mu);
    if (stopping) {
        worker_session_unref(s);
        free(it);
    }
    return !stopping;
}

bool worker_acks_drop(worker_acks *a, const char *worker_id, const char *job_id, int64_t epoch)
{
    ack_item *found = NULL;
    pthread_mutex_lock(&a->mu);
    for (ack_item **p = &a->head, *prev = NULL; *p; prev = *p, p = &(*p)->next) {
        ack_item *it = *p;
        if (it->ref.epoch != epoch || strcasecmp(it->ref.job_id, job_id) != 0 ||
            strcasecmp(it->worker_id, worker_id) != 0)
            continue;
        *p = it->next;
        if (a->tail == it)
            a->tail = prev;
        a->n--;
        found = it;
        break;
    }
    pthread_mutex_unlock(&a->mu);
    if (found) {
        worker_session_unref(found->s);
        free(found);
    }
    return found != NULL;
}

void worker_acks_on_ack(worker_session *s, const Hodei__V1__RunJobAck *ack)
{
    char worker_id[HODEI_ID_BUF];
    worker_session_worker_id(s, worker_id);
    int64_t due_ns = worker_session_take_due(s, ack->job_id, ack->epoch);
    if (due_ns != INT64_MIN)
        hodei_metric_observe_micro(worker_hub_edge(s->hub)->m.dispatch_seconds,
                                   (hodei_mono_ns() - due_ns) / 1000);
    /* Grouped (worker.ack_delay): an attempt this stream was sent is its own
     * at once, so its log batches need no lookup meanwhile. */
    if (worker_hub_edge(s->hub)->cfg->worker_ack_delay_ms > 0 &&
        acks_add(worker_hub_edge(s->hub)->acks, s, worker_id, ack->job_id, ack->epoch)) {
        if (worker_session_was_sent(s, ack->job_id, ack->epoch))
            worker_session_own(s, ack->job_id, ack->epoch);
        return;
    }
    PGconn *conn = NULL;
    hodei_err err;
    if (edge_db_acquire(worker_hub_edge(s->hub), &conn, &err) != HODEI_OK) {
        HLOG_WARN("worker %s: ack of job %s not recorded: %s", worker_id, ack->job_id, err.msg);
        worker_session_end(s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
        return;
    }
    bool recorded = acks_write_one(conn, s, worker_id, ack->job_id, ack->epoch);
    edge_db_release(worker_hub_edge(s->hub), conn, hodei_db_conn_status(conn));
    if (recorded)
        worker_session_own(s, ack->job_id, ack->epoch);
}
