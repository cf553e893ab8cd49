/* JobResults recorded grouped (worker_results.h): a writer takes every
 * result waiting, from all the edge's workers, and records them in one
 * transaction, one commit, each with its artifact records and, with
 * worker.handoff, the freed worker's next job. Each result runs under a
 * savepoint of its own: one the store refuses (stale, already ended) or
 * that fails (a deadlock with another writer) is rolled back to it, and
 * judged alone after the group's commit, as an ungrouped result would be,
 * so it never fails the others. The acks, the RunJobs of the hand-offs and
 * the ends of the jobs' logs go out after the commit. */
#include "worker_results.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/assign.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/store.h"
#include "hodei/sync.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "worker_acks.h"
#include "worker_logs.h"
#include "worker_records.h"
#include "worker_run.h"

/* Results of one group: each holds a subtransaction, and PostgreSQL keeps
 * up to 64 subtransaction ids of a transaction in shared memory before
 * every other snapshot gets slower. */
#define RESULTS_GROUP_MAX 32
/* Threads that write groups at once: a stream thread that brings a result
 * while fewer are writing writes the group itself (no hand-over to another
 * thread on an idle edge), and goes on while results wait; otherwise it
 * leaves its result for one of them. */
#define RESULTS_WRITERS_MAX 2

typedef struct result_item {
    struct result_item *next;
    worker_session *s; /* referenced while queued */
    char worker_id[HODEI_ID_BUF];
    Hodei__V1__JobResult *r; /* the writer's copy */
    /* after the group's transaction */
    hodei_status st; /* HODEI_OK: recorded in the group */
    Hodei__V1__JobState final;
    PGresult *next_run; /* the job handed to the worker, sent after the ack */
} result_item;

struct worker_results {
    edge *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    result_item *head, *tail;
    bool stopping;
    int writing; /* threads writing groups now, at most RESULTS_WRITERS_MAX */
};

static void item_free(result_item *it)
{
    worker_session_unref(it->s);
    hodei__v1__job_result__free_unpacked(it->r, NULL);
    PQclear(it->next_run);
    free(it);
}

static void item_attempt(const result_item *it, hodei_attempt *a)
{
    const Hodei__V1__JobResult *r = it->r;
    *a = (hodei_attempt){.job_id = r->job_id,
                         .worker_id = it->worker_id,
                         .epoch = r->epoch,
                         .state = r->state,
                         .exit_code = r->exit_code,
                         .error = r->error ? r->error : ""};
}

/* ------------------------------------------------- one result's statements */

/* The result's statements, inside the caller's transaction. With
 * worker.handoff, the worker freed by it takes its next pending job in the
 * same transaction (libs/store, hodei_handoff_result), so a busy queue does
 * not wait for a scheduling pass and the relay before each job; *next gets
 * that job's run row. A result implies the ack: when the RunJobAck was lost
 * (the edge that got it died before recording it), the job is still
 * ASSIGNED to this worker at this epoch, and the end counts it as started.
 * Anything else (stale, already ended) is for the store to judge. The
 * result's artifact records (res) are written in the same transaction. */
static hodei_status result_writes(PGconn *conn, const char *const *first, size_t n_first,
                                  const hodei_attempt *a, const Hodei__V1__JobResult *res,
                                  bool handoff, Hodei__V1__JobState *final, PGresult **next,
                                  hodei_err *err)
{
    hodei_handoff h = {0};
    *next = NULL;
    hodei_status st = HODEI_OK;
    if (handoff) {
        st = hodei_handoff_result_after(conn, first, n_first, a, &h, err);
    } else {
        for (size_t i = 0; i < n_first && st == HODEI_OK; i++)
            st = hodei_db_exec(conn, first[i], 0, NULL, NULL, err);
        if (st == HODEI_OK)
            st = hodei_store_attempt_result(conn, a, &h.final, err);
        else if (!hodei_db_status_broken(st))
            st = HODEI_ERR_UNAVAILABLE; /* as hodei_handoff_result_after */
    }
    if (st == HODEI_OK)
        st = worker_records_insert(conn, res, err);
    if (st != HODEI_OK) {
        PQclear(h.run);
        return st;
    }
    *final = h.final;
    *next = h.run;
    return HODEI_OK;
}

/* The result alone in a transaction of its own. */
static hodei_status result_tx_once(PGconn *conn, const hodei_attempt *a,
                                   const Hodei__V1__JobResult *res, bool handoff,
                                   Hodei__V1__JobState *final, PGresult **next, hodei_err *err)
{
    *next = NULL;
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    st = result_writes(conn, NULL, 0, a, res, handoff, final, next, err);
    if (st == HODEI_OK)
        st = hodei_db_commit(conn, err);
    else
        hodei_db_rollback(conn);
    if (st != HODEI_OK) {
        PQclear(*next);
        *next = NULL;
    }
    return st;
}

/* As result_tx_once, run again while it loses a conflict (a deadlock with
 * another writer of the same rows): such a result was not refused, it was
 * not judged at all. */
static hodei_status result_tx(PGconn *conn, const hodei_attempt *a, const Hodei__V1__JobResult *res,
                              bool handoff, Hodei__V1__JobState *final, PGresult **next,
                              hodei_err *err)
{
    hodei_status st;
    int tries = 0;
    do
        st = result_tx_once(conn, a, res, handoff, final, next, err);
    while (hodei_db_conflict_retry(st, &tries));
    return st;
}

/* A refused result may be a repeat of one already recorded (the worker
 * re-sends until acked): the job ended at this worker's epoch. */
static bool result_already_recorded(PGconn *conn, const hodei_attempt *end,
                                    Hodei__V1__JobState *final)
{
    hodei_job_view v;
    hodei_err err;
    if (hodei_store_job_read(conn, end->job_id, false, &v, &err) != HODEI_OK)
        return false;
    *final = v.state;
    return hodei_job_state_terminal(v.state) && strcmp(v.worker_id, end->worker_id) == 0 &&
           v.epoch == end->epoch;
}

/* A success refused as stale may be late rather than stale: its worker was
 * taken for lost (its heartbeats stopped reaching the database) while it
 * ran the job, and the job waits for its retry. Until the retry is handed
 * out, this success ends the job (libs/store late.c), with the result's
 * artifact records, so the job does not run twice. */
static bool result_late(PGconn *conn, const hodei_attempt *end, const Hodei__V1__JobResult *res)
{
    hodei_err err;
    bool ended = false;
    hodei_status st;
    int tries = 0;
    do {
        ended = false;
        if ((st = hodei_db_begin(conn, &err)) != HODEI_OK)
            return false;
        st = hodei_store_attempt_late_success(conn, end, &ended, &err);
        if (st == HODEI_OK && ended)
            st = worker_records_insert(conn, res, &err);
        if (st == HODEI_OK && ended)
            st = hodei_db_commit(conn, &err);
        else
            hodei_db_rollback(conn);
    } while (hodei_db_conflict_retry(st, &tries));
    if (st != HODEI_OK) {
        HLOG_WARN("worker %s: late result of job %s not recorded: %s", end->worker_id, end->job_id,
                  err.msg);
        return false;
    }
    if (ended)
        HLOG_INFO("worker %s: result of job %s epoch %" PRId64
                  " recorded late: the worker was taken for lost while it ran the job, and the"
                  " job had not been handed out again",
                  end->worker_id, end->job_id, end->epoch);
    return ended;
}

/* A result that ended nothing (stale, or the supervisor ended the attempt
 * first) still means the worker is done with that job: free it, or it would
 * stay BUSY for good while it keeps beating. */
static hodei_status result_release_worker(PGconn *conn, const hodei_attempt *end)
{
    hodei_err err;
    bool released = false;
    hodei_status st;
    int tries = 0;
    do {
        released = false;
        st = hodei_db_begin(conn, &err);
        if (st == HODEI_OK)
            st = hodei_store_worker_release(conn, end->worker_id, end->job_id, &released, &err);
        if (st == HODEI_OK)
            st = hodei_db_commit(conn, &err);
        else
            hodei_db_rollback(conn);
    } while (hodei_db_conflict_retry(st, &tries));
    if (st != HODEI_OK)
        HLOG_WARN("worker %s: not freed after result of job %s: %s", end->worker_id, end->job_id,
                  err.msg);
    else if (released)
        HLOG_INFO("worker %s: free again after its result of job %s", end->worker_id, end->job_id);
    return st;
}

static void result_ack(worker_session *s, const Hodei__V1__JobResult *r, bool accepted,
                       const char *reason)
{
    Hodei__V1__JobResultAck a = HODEI__V1__JOB_RESULT_ACK__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    a.job_id = r->job_id;
    a.epoch = r->epoch;
    a.accepted = accepted;
    a.reason = (char *)reason;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_RESULT_ACK;
    m.result_ack = &a;
    worker_session_send(s, &m);
}

/* What follows a judged result: the ack, the metrics, the end of the job's
 * log, the hand-off's RunJob. st is how the result's writes went; next is
 * taken. */
static void result_answer(worker_session *s, const Hodei__V1__JobResult *r, hodei_status st,
                          bool accepted, Hodei__V1__JobState final, const hodei_err *err,
                          PGresult *next)
{
    char worker_id[HODEI_ID_BUF];
    worker_session_worker_id(s, worker_id);
    edge *e = worker_hub_edge(s->hub);
    /* every line of the attempt came before its result, on this stream:
     * none on it, and none before (its job's first), its end marker is the
     * subject's only message (the log archive then reads nothing more) */
    bool alone = r->epoch == 1 && worker_session_silent(s, r->job_id, r->epoch);
    worker_session_forget(s, r->job_id);
    result_ack(s, r, accepted, accepted ? "" : err->msg);
    if (st == HODEI_OK)
        edge_metrics_result(&e->m, r, final);
    if (!accepted)
        HLOG_INFO("worker %s: result of job %s epoch %" PRId64 " refused: %s", worker_id, r->job_id,
                  r->epoch, err->msg);
    if (accepted)
        worker_logs_drops(s, r->job_id, r->epoch);
    hodei_err pub_err;
    if (accepted && hodei_job_state_terminal(final) &&
        log_pub_end(worker_hub_pub(s->hub), r->job_id, r->epoch, final, alone, &pub_err) !=
            HODEI_OK)
        HLOG_WARN("job %s: end-of-log marker not published: %s", r->job_id, pub_err.msg);
    if (next) {
        hodei_metric_add(e->m.handoffs, 1);
        if (!PQgetisnull(next, 0, HODEI_RUN_COL_DUE_AGE_US))
            hodei_metric_observe_micro(e->m.queue_wait_seconds,
                                       hodei_db_get_i64(next, 0, HODEI_RUN_COL_DUE_AGE_US));
        worker_run_send(s, next, 0);
    }
    PQclear(next);
}

static bool result_judged(hodei_status st)
{
    return st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND || st == HODEI_ERR_INVALID;
}

/* One result alone, as every result was before grouping: its own
 * transaction; refused, it is judged (a repeat?) and the worker freed. */
static void result_alone(worker_session *s, const char *worker_id, const Hodei__V1__JobResult *r)
{
    edge *e = worker_hub_edge(s->hub);
    hodei_attempt end;
    result_item tmp = {.r = (Hodei__V1__JobResult *)r};
    hodei_strlcpy(tmp.worker_id, worker_id, sizeof tmp.worker_id);
    item_attempt(&tmp, &end);
    Hodei__V1__JobState final = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
    PGconn *conn = NULL;
    PGresult *next = NULL;
    hodei_err err;
    bool accepted = false;
    hodei_status st = edge_db_acquire(e, &conn, &err);
    if (st == HODEI_OK) {
        st = result_tx(conn, &end, r, e->cfg->worker_handoff, &final, &next, &err);
        accepted = st == HODEI_OK ||
                   (st == HODEI_ERR_PRECONDITION && result_already_recorded(conn, &end, &final));
        if (!accepted && st == HODEI_ERR_PRECONDITION && result_late(conn, &end, r)) {
            accepted = true;
            st = HODEI_OK;
            final = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
        }
        /* Refused, or a repeat: the worker is done with that job either way
         * (on the same connection). */
        hodei_status rel = HODEI_OK;
        if (result_judged(st))
            rel = result_release_worker(conn, &end);
        edge_db_release(e, conn, hodei_db_status_broken(rel) ? rel : st);
    }
    if (!accepted && !result_judged(st)) {
        HLOG_WARN("worker %s: result of job %s not recorded: %s", worker_id, r->job_id, err.msg);
        worker_session_end(s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
        PQclear(next);
        return;
    }
    result_answer(s, r, st, accepted, final, &err, next);
}

/* ---------------------------------------------------------------- a group */

static hodei_status group_exec(PGconn *conn, const char *sql, hodei_err *err)
{
    return hodei_db_exec(conn, sql, 0, NULL, NULL, err);
}

/* The group's transaction: each item under a savepoint of its own, taken
 * before it and never released (the savepoints nest, each the latest of
 * its name: a rollback to it undoes that item's writes only, and a
 * released one would keep its subtransaction id all the same); it->st says
 * how each went (HODEI_OK: recorded). The BEGIN and each SAVEPOINT go in
 * the same round trip as the item's first statements; when one of them
 * fails, so does the whole group. Returns the transaction's own status (not
 * OK: nothing was recorded; the connection's trouble, or the commit's). */
static hodei_status group_tx(PGconn *conn, result_item *list, bool handoff, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    for (result_item *it = list; it && st == HODEI_OK; it = it->next) {
        hodei_attempt a;
        hodei_err item_err;
        item_attempt(it, &a);
        bool alone = it == list && !it->next;
        const char *first[2];
        size_t n_first = 0;
        if (it == list)
            first[n_first++] = "BEGIN";
        if (!alone)
            first[n_first++] = "SAVEPOINT r";
        it->st = result_writes(conn, first, n_first, &a, it->r, handoff, &it->final, &it->next_run,
                               &item_err);
        if (hodei_db_status_broken(it->st) || (alone && it->st == HODEI_ERR_CONFLICT))
            st = hodei_err_set(err, it->st, "%s", item_err.msg);
        else if (it->st != HODEI_OK && !alone)
            st = group_exec(conn, "ROLLBACK TO SAVEPOINT r", err);
    }
    if (st == HODEI_OK)
        st = hodei_db_commit(conn, err);
    else
        hodei_db_rollback(conn);
    return st;
}

/* Writes the list and frees it. */
static void group_flush(worker_results *w, result_item *list)
{
    PGconn *conn = NULL;
    hodei_err err;
    for (result_item *it = list; it; it = it->next)
        it->st = HODEI_ERR_INTERNAL;
    hodei_status st = edge_db_acquire(w->e, &conn, &err);
    if (st == HODEI_OK) {
        st = group_tx(conn, list, w->e->cfg->worker_handoff, &err);
        edge_db_release(w->e, conn, st);
    }
    if (st != HODEI_OK)
        HLOG_WARN("results not recorded together: %s", err.msg);
    while (list) {
        result_item *it = list;
        list = it->next;
        if (st == HODEI_OK && it->st == HODEI_OK) {
            result_answer(it->s, it->r, HODEI_OK, true, it->final, &err, it->next_run);
            it->next_run = NULL;
        } else if (hodei_db_status_broken(st)) {
            worker_session_end(it->s, HODEI_GRPC_UNAVAILABLE, WORKER_DB_TROUBLE);
        } else {
            /* Refused or failed in the group (or the group's commit
             * failed): judged alone, as an ungrouped result is. */
            PQclear(it->next_run);
            it->next_run = NULL;
            result_alone(it->s, it->worker_id, it->r);
        }
        item_free(it);
    }
}

/* Takes up to RESULTS_GROUP_MAX items, in worker id order (the order the
 * heartbeat writer locks worker rows in). w->mu held. */
static result_item *group_take_locked(worker_results *w)
{
    result_item *sorted = NULL;
    for (size_t n = 0; w->head && n < RESULTS_GROUP_MAX; n++) {
        result_item *it = w->head;
        w->head = it->next;
        result_item **p = &sorted;
        while (*p && strcmp((*p)->worker_id, it->worker_id) <= 0)
            p = &(*p)->next;
        it->next = *p;
        *p = it;
    }
    if (!w->head)
        w->tail = NULL;
    return sorted;
}

/* ------------------------------------------------------------------ API */

hodei_status worker_results_create(edge *e, worker_results **out, hodei_err *err)
{
    worker_results *w = calloc(1, sizeof *w);
    if (!w)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "results: out of memory");
    w->e = e;
    pthread_mutex_init(&w->mu, NULL);
    hodei_cond_init_monotonic(&w->cv);
    *out = w;
    return HODEI_OK;
}

void worker_results_destroy(worker_results *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    while (w->writing > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    HODEI_ASSERT(w->head == NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

/* The writer's copy of r; NULL when memory ran out. */
static Hodei__V1__JobResult *result_copy(const Hodei__V1__JobResult *r)
{
    size_t len = hodei__v1__job_result__get_packed_size(r);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return NULL;
    hodei__v1__job_result__pack(r, buf);
    Hodei__V1__JobResult *copy = hodei__v1__job_result__unpack(NULL, len, buf);
    free(buf);
    return copy;
}

/* Queues the result; false when stopping or memory ran out (the caller
 * records it itself). Then, when fewer than RESULTS_WRITERS_MAX threads
 * write, this one writes groups until none waits. */
static bool results_add(worker_results *w, worker_session *s, const char *worker_id,
                        const Hodei__V1__JobResult *r)
{
    result_item *it = calloc(1, sizeof *it);
    if (!it)
        return false;
    if (!(it->r = result_copy(r))) {
        free(it);
        return false;
    }
    worker_session_ref(s);
    it->s = s;
    hodei_strlcpy(it->worker_id, worker_id, sizeof it->worker_id);
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        item_free(it);
        return false;
    }
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    if (w->writing >= RESULTS_WRITERS_MAX) {
        pthread_mutex_unlock(&w->mu);
        return true;
    }
    w->writing++;
    while (w->head) {
        result_item *list = group_take_locked(w);
        pthread_mutex_unlock(&w->mu);
        group_flush(w, list);
        pthread_mutex_lock(&w->mu);
    }
    w->writing--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return true;
}

void worker_results_on_result(worker_session *s, const Hodei__V1__JobResult *r)
{
    char worker_id[HODEI_ID_BUF];
    worker_session_worker_id(s, worker_id);
    edge *e = worker_hub_edge(s->hub);
    /* An ack still waiting to be written is implied by this result. */
    worker_acks_drop(e->acks, worker_id, r->job_id, r->epoch);
    if (e->results && results_add(e->results, s, worker_id, r))
        return;
    result_alone(s, worker_id, r);
}
