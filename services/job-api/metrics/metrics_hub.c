/* MetricsService's calls and the one thread that reads PostgreSQL for them.
 *
 * GetAggregatedMetrics is validated on the gRPC thread, then queued (at most
 * HUB_QUEUE_MAX; beyond: RESOURCE_EXHAUSTED) for the hub's thread, which
 * reads the window and answers. An answer for the same window and bucket
 * less than HUB_CACHE_MS old is given again instead of read again, so a
 * room of dashboards costs one reading per second.
 *
 * StreamMetrics subscribes the call: the thread reads one snapshot for all
 * subscribers due at the same moment and sends each its own (its number of
 * workers); a subscriber whose client has not taken the last
 * HUB_PENDING_MAX snapshots is skipped, never queued for without bound.
 *
 * Locking: hub->mu guards the queue, the subscriber list and stopping;
 * no database call or send runs under it. A subscriber is referenced by
 * the list, by its call (until on_close) and by the thread while it sends;
 * the call by the subscriber. */
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "edge_auth.h"
#include "hodei/log.h"
#include "hodei/sync.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "metrics.h"
#include "metrics_int.h"

#define SVC "/hodei.v1.MetricsService/"
#define HUB_QUEUE_MAX 32  /* GetAggregatedMetrics calls waiting for the thread */
#define HUB_SUBS_MAX 256  /* StreamMetrics calls open on this edge */
#define HUB_PENDING_MAX 2 /* snapshots a slow subscriber may have unsent */
#define HUB_CACHE_MS 1000 /* an aggregate answer is given again this long */
#define HUB_IDLE_WAIT_MS 60000

typedef struct agg_req {
    struct agg_req *next;
    hodei_rpc_call *call; /* referenced */
    int64_t window_ms, bucket_ms;
} agg_req;

typedef struct metrics_sub {
    struct metrics_sub *next;
    int refs; /* hub->mu: the list's while listed, the call's until on_close, the thread's */
    hodei_rpc_call *call;
    int64_t interval_ms;
    int workers_max;
    bool job_ids; /* the caller spans every namespace (admin): workers' current jobs shown */
    int64_t due_ms;
    bool listed;
    char key_id[HODEI_ID_BUF]; /* the key counted (edge_stream_key_take; "" for none) */
} metrics_sub;

typedef struct {
    int64_t window_ms, bucket_ms, at_ms; /* at_ms 0 = none */
    metrics_arena *arena;
    Hodei__V1__GetAggregatedMetricsResponse *resp;
} agg_cache;

struct metrics_hub {
    edge *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    pthread_t thread;
    bool started;
    agg_req *head, *tail;
    size_t n_queued;
    metrics_sub *subs;
    size_t n_subs;
    agg_cache cache; /* the thread's own */
};

/* ------------------------------------------------------------- subscribers */

static void sub_unref_locked(metrics_sub *s, hodei_rpc_call **call_out)
{
    *call_out = NULL;
    if (--s->refs > 0)
        return;
    *call_out = s->call;
    free(s);
}

static void sub_unref(metrics_hub *h, metrics_sub *s)
{
    hodei_rpc_call *call;
    pthread_mutex_lock(&h->mu);
    sub_unref_locked(s, &call);
    pthread_mutex_unlock(&h->mu);
    if (call)
        hodei_rpc_call_unref(call);
}

/* Unlists s; true when it was listed (the list's reference is the caller's). */
static bool sub_unlist_locked(metrics_hub *h, metrics_sub *s)
{
    for (metrics_sub **pp = &h->subs; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            s->listed = false;
            h->n_subs--;
            return true;
        }
    }
    return false;
}

/* ------------------------------------------------------------- the thread */

/* Subscribers due now, referenced; *workers_max the most any asks for;
 * *next_ms when the next is due. */
static size_t hub_due_locked(metrics_hub *h, metrics_sub **out, int *workers_max, int64_t *next_ms)
{
    size_t n = 0;
    int64_t now = hodei_mono_ms();
    *workers_max = 0;
    *next_ms = now + HUB_IDLE_WAIT_MS;
    for (metrics_sub *s = h->subs; s; s = s->next) {
        if (s->due_ms > now) {
            if (s->due_ms < *next_ms)
                *next_ms = s->due_ms;
            continue;
        }
        s->due_ms = now + s->interval_ms;
        if (s->due_ms < *next_ms)
            *next_ms = s->due_ms;
        s->refs++;
        out[n++] = s;
        if (s->workers_max > *workers_max)
            *workers_max = s->workers_max;
    }
    return n;
}

static void hub_send_one(metrics_hub *h, metrics_sub *s, Hodei__V1__MetricsSnapshot *snap,
                         size_t n_workers)
{
    if (hodei_rpc_call_pending(s->call) >= HUB_PENDING_MAX) {
        edge_stream_idle_end(h->e, s->call); /* reads nothing: ended (on_close unlists) */
        return;                              /* a slow reader: this snapshot is skipped */
    }
    size_t keep = snap->n_workers;
    snap->n_workers = n_workers < keep ? n_workers : keep;
    /* A job id is another namespace's to see: only a caller spanning every
     * namespace gets the workers' current jobs (the rest of the snapshot is
     * fleet-wide counts). */
    char *job_ids[METRICS_WORKERS_MAX];
    if (!s->job_ids)
        for (size_t i = 0; i < snap->n_workers; i++) {
            job_ids[i] = snap->workers[i]->current_job_id;
            snap->workers[i]->current_job_id = "";
        }
    /* room was checked above; replies.buffer_max spent (HODEI_ERR_LIMIT):
     * this snapshot is skipped, the hub's thread does not wait */
    hodei_status st = edge_stream_try_send(h->e, s->call, &snap->base);
    if (!s->job_ids)
        for (size_t i = 0; i < snap->n_workers; i++)
            snap->workers[i]->current_job_id = job_ids[i];
    snap->n_workers = keep;
    if (st == HODEI_ERR_CANCELLED) {
        pthread_mutex_lock(&h->mu);
        bool listed = sub_unlist_locked(h, s);
        pthread_mutex_unlock(&h->mu);
        if (listed)
            sub_unref(h, s);
    }
}

static void hub_stream(metrics_hub *h, metrics_sub **due, size_t n, int workers_max)
{
    metrics_arena *a = calloc(1, sizeof *a);
    Hodei__V1__MetricsSnapshot snap = HODEI__V1__METRICS_SNAPSHOT__INIT;
    PGconn *conn = NULL;
    hodei_err err;
    hodei_status st = a ? edge_db_acquire(h->e, &conn, &err) : HODEI_ERR_NOMEM;
    if (st == HODEI_OK) {
        st = metrics_read_snapshot(conn, a, workers_max, &snap, &err);
        edge_db_release(h->e, conn, st);
    }
    for (size_t i = 0; i < n; i++) {
        if (st == HODEI_OK)
            hub_send_one(h, due[i], &snap, (size_t)due[i]->workers_max);
        sub_unref(h, due[i]);
    }
    if (st != HODEI_OK)
        HLOG_WARN("metrics snapshot not read (%s); streams skip it", a ? err.msg : "no memory");
    if (a)
        metrics_arena_free(a);
    free(a);
}

static void cache_drop(agg_cache *c)
{
    if (c->arena) {
        metrics_arena_free(c->arena);
        free(c->arena);
    }
    memset(c, 0, sizeof *c);
}

/* Reads one window into the cache; HODEI_OK with c->resp set. */
static hodei_status hub_read_window(metrics_hub *h, int64_t window_ms, int64_t bucket_ms,
                                    hodei_err *err)
{
    agg_cache *c = &h->cache;
    cache_drop(c);
    if (!(c->arena = calloc(1, sizeof *c->arena)) ||
        !(c->resp = metrics_alloc(c->arena, sizeof *c->resp)))
        return hodei_err_set(err, HODEI_ERR_NOMEM, "metrics: out of memory");
    hodei__v1__get_aggregated_metrics_response__init(c->resp);
    c->resp->current = metrics_alloc(c->arena, sizeof *c->resp->current);
    if (!c->resp->current)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "metrics: out of memory");
    hodei__v1__metrics_snapshot__init(c->resp->current);
    PGconn *conn = NULL;
    hodei_status st = edge_db_acquire(h->e, &conn, err);
    if (st != HODEI_OK)
        return st;
    st = metrics_read_snapshot(conn, c->arena, 0, c->resp->current, err);
    if (st == HODEI_OK)
        st = metrics_read_window(conn, c->arena, window_ms, bucket_ms, c->resp, err);
    edge_db_release(h->e, conn, st);
    if (st == HODEI_OK) {
        c->window_ms = window_ms;
        c->bucket_ms = bucket_ms;
        c->at_ms = hodei_mono_ms();
    }
    return st;
}

static void hub_aggregate(metrics_hub *h, agg_req *q)
{
    agg_cache *c = &h->cache;
    hodei_err err;
    hodei_status st = HODEI_OK;
    bool fresh = c->at_ms > 0 && c->window_ms == q->window_ms && c->bucket_ms == q->bucket_ms &&
                 hodei_mono_ms() - c->at_ms < HUB_CACHE_MS;
    if (!fresh)
        st = hub_read_window(h, q->window_ms, q->bucket_ms, &err);
    if (st == HODEI_OK) {
        hodei_rpc_call_reply(q->call, &c->resp->base);
    } else {
        cache_drop(c);
        HLOG_WARN("GetAggregatedMetrics not answered: %s", err.msg);
        hodei_rpc_call_fail_err(q->call, &err);
    }
    hodei_rpc_call_unref(q->call);
    free(q);
}

static void *hub_main(void *arg)
{
    metrics_hub *h = arg;
    metrics_sub **due = calloc(HUB_SUBS_MAX, sizeof *due);
    pthread_mutex_lock(&h->mu);
    while (!h->stopping && due) {
        agg_req *q = h->head;
        if (q) {
            h->head = q->next;
            if (!h->head)
                h->tail = NULL;
            h->n_queued--;
            pthread_mutex_unlock(&h->mu);
            hub_aggregate(h, q);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        int workers_max;
        int64_t next_ms;
        size_t n = hub_due_locked(h, due, &workers_max, &next_ms);
        if (n > 0) {
            pthread_mutex_unlock(&h->mu);
            hub_stream(h, due, n, workers_max);
            pthread_mutex_lock(&h->mu);
            continue;
        }
        hodei_cond_wait_ms(&h->cv, &h->mu, next_ms - hodei_mono_ms());
    }
    pthread_mutex_unlock(&h->mu);
    free(due);
    cache_drop(&h->cache);
    return NULL;
}

/* ------------------------------------------------------------- the calls */

static void aggregate_on_call(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    metrics_hub *h = e->metrics;
    const Hodei__V1__GetAggregatedMetricsRequest *r = (const void *)msg;
    int64_t window = r->window_ms ? r->window_ms : METRICS_WINDOW_DEFAULT_MS;
    if (window < METRICS_WINDOW_MIN_MS || window > METRICS_WINDOW_MAX_MS) {
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT,
                            "window_ms: must be 0 (the last hour) or between %lld (1 s) and %lld"
                            " (7 days), got %" PRId64,
                            (long long)METRICS_WINDOW_MIN_MS, (long long)METRICS_WINDOW_MAX_MS,
                            r->window_ms);
        return;
    }
    int64_t least = (window + METRICS_BUCKETS_MAX - 1) / METRICS_BUCKETS_MAX;
    int64_t bucket = r->bucket_ms
                         ? r->bucket_ms
                         : (window + METRICS_BUCKETS_DEFAULT - 1) / METRICS_BUCKETS_DEFAULT;
    if (r->bucket_ms && (r->bucket_ms < least || r->bucket_ms > window)) {
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT,
                            "bucket_ms: must be 0 (window / %d) or between %" PRId64
                            " (at most %d buckets) and the window (%" PRId64 "), got %" PRId64,
                            METRICS_BUCKETS_DEFAULT, least, METRICS_BUCKETS_MAX, window,
                            r->bucket_ms);
        return;
    }
    agg_req *q = calloc(1, sizeof *q);
    if (!q) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "metrics: out of memory");
        return;
    }
    q->call = call;
    q->window_ms = window;
    q->bucket_ms = bucket;
    pthread_mutex_lock(&h->mu);
    bool ok = !h->stopping && h->n_queued < HUB_QUEUE_MAX;
    if (ok) {
        hodei_rpc_call_ref(call);
        if (h->tail)
            h->tail->next = q;
        else
            h->head = q;
        h->tail = q;
        h->n_queued++;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    if (!ok) {
        free(q);
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "metrics: %d GetAggregatedMetrics calls already wait; retry",
                            HUB_QUEUE_MAX);
    }
}

static void stream_on_call(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    metrics_hub *h = e->metrics;
    const Hodei__V1__StreamMetricsRequest *r = (const void *)msg;
    if (r->interval_ms != 0 &&
        (r->interval_ms < METRICS_INTERVAL_MIN_MS || r->interval_ms > METRICS_INTERVAL_MAX_MS)) {
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT,
                            "interval_ms: must be 0 (%d) or between %d and %d, got %" PRId64,
                            METRICS_INTERVAL_DEFAULT_MS, METRICS_INTERVAL_MIN_MS,
                            METRICS_INTERVAL_MAX_MS, r->interval_ms);
        return;
    }
    if (r->workers_max < 0 || r->workers_max > METRICS_WORKERS_MAX) {
        hodei_rpc_call_fail(call, HODEI_GRPC_INVALID_ARGUMENT,
                            "workers_max: must be 0 (%d) or between 1 and %d, got %d",
                            METRICS_WORKERS_DEFAULT, METRICS_WORKERS_MAX, (int)r->workers_max);
        return;
    }
    metrics_sub *s = calloc(1, sizeof *s);
    if (!s) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "metrics: out of memory");
        return;
    }
    s->call = call;
    s->interval_ms = r->interval_ms ? r->interval_ms : METRICS_INTERVAL_DEFAULT_MS;
    s->workers_max = r->workers_max ? r->workers_max : METRICS_WORKERS_DEFAULT;
    const hodei_identity *who = edge_caller(call);
    s->job_ids = hodei_identity_is_admin(who);
    if (!edge_stream_key_take(e, call, EDGE_STREAM_METRICS, s->key_id)) {
        free(s);
        return;
    }
    s->refs = 2; /* the list's and the call's */
    pthread_mutex_lock(&h->mu);
    bool ok = !h->stopping && h->n_subs < HUB_SUBS_MAX;
    if (ok) {
        hodei_rpc_call_ref(call);
        hodei_rpc_call_set_user(call, s);
        s->due_ms = hodei_mono_ms(); /* the first snapshot at once */
        s->next = h->subs;
        s->listed = true;
        h->subs = s;
        h->n_subs++;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    if (!ok) {
        edge_stream_key_give(e, EDGE_STREAM_METRICS, s->key_id);
        free(s);
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "metrics: %d StreamMetrics calls already open on this edge",
                            HUB_SUBS_MAX);
    }
}

static void stream_on_close(hodei_rpc_call *call, bool cancelled, void *ctx)
{
    edge *e = ctx;
    metrics_hub *h = e->metrics;
    metrics_sub *s = hodei_rpc_call_user(call);
    (void)cancelled;
    if (!s)
        return;
    hodei_rpc_call_set_user(call, NULL);
    edge_stream_key_give(e, EDGE_STREAM_METRICS, s->key_id);
    pthread_mutex_lock(&h->mu);
    bool listed = sub_unlist_locked(h, s);
    pthread_mutex_unlock(&h->mu);
    if (listed)
        sub_unref(h, s);
    sub_unref(h, s); /* the call's */
}

hodei_status metrics_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method methods[] = {
        {SVC "GetAggregatedMetrics", HODEI_RPC_UNARY,
         &hodei__v1__get_aggregated_metrics_request__descriptor, aggregate_on_call, NULL, NULL, e},
        {SVC "StreamMetrics", HODEI_RPC_SERVER_STREAM,
         &hodei__v1__stream_metrics_request__descriptor, stream_on_call, NULL, stream_on_close, e},
    };
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}

/* ------------------------------------------------------------- life */

hodei_status metrics_hub_create(edge *e, hodei_err *err)
{
    metrics_hub *h = calloc(1, sizeof *h);
    if (!h)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "metrics: out of memory");
    h->e = e;
    pthread_mutex_init(&h->mu, NULL);
    hodei_cond_init_monotonic(&h->cv);
    e->metrics = h;
    if (pthread_create(&h->thread, NULL, hub_main, h) != 0)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "metrics: cannot start its thread");
    h->started = true;
    return HODEI_OK;
}

void metrics_hub_destroy(edge *e)
{
    metrics_hub *h = e->metrics;
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->started)
        pthread_join(h->thread, NULL);
    while (h->head) { /* their calls are over (the server is gone) */
        agg_req *q = h->head;
        h->head = q->next;
        hodei_rpc_call_fail(q->call, HODEI_GRPC_UNAVAILABLE, "the edge is stopping");
        hodei_rpc_call_unref(q->call);
        free(q);
    }
    while (h->subs) {
        metrics_sub *s = h->subs;
        sub_unlist_locked(h, s);
        sub_unref(h, s);
    }
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
    e->metrics = NULL;
}
