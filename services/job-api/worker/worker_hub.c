/* The worker streams this edge holds (worker id -> live call), their NATS
 * subscriptions, one ticker thread that re-sends from PostgreSQL, sends
 * keepalives and times out silent streams, and one beater thread that
 * writes heartbeats grouped: one UPDATE per interval for every worker that
 * beat. The heartbeat waits for a worker row a result holds; on its own
 * thread, that wait never delays a RunJob the ticker sends. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/buf.h"
#include "hodei/bus.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/sqlarr.h"
#include "hodei/sync.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/events.pb-c.h"
#include "worker_hub.h"

#define HUB_TICK_MS 100         /* the ticker's longest sleep */
#define HUB_SNAPSHOT_MAX 1024   /* sessions handled per tick; the rest next tick */
#define HUB_HELLO_WAIT_MS 10000 /* a stream must say Hello within this */
#define HUB_SILENCE_FACTOR 3    /* silent for 3 keepalive intervals: gone */
#define HUB_BEAT_SQL_MAX (4 * 1024 * 1024)
#define HUB_SUBJECT_MAX 128
#define HUB_SUBS_WAIT_MS 5000  /* destroy waits for subscriptions' last callbacks */
#define HUB_SESSIONS_MAX 10000 /* worker streams held at once */
#define HUB_PEER_BUCKETS 256   /* the table of addresses with streams before Hello */

/* The streams from one address that have not said Hello (hub->mu): in the
 * hub's table while pending > 0, freed when it falls to 0. */
typedef struct hub_peer {
    struct hub_peer *next; /* same bucket */
    size_t pending;
    char host[WORKER_PEER_HOST_BUF];
} hub_peer;

struct worker_hub {
    edge *e;
    log_pub *pub;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t beat_cv; /* the beater's wait (stopping) */
    worker_session *head;
    size_t n_sessions;
    hub_peer *peers[HUB_PEER_BUCKETS]; /* by peer_host: streams before Hello */
    bool stopping;
    bool kicked;
    pthread_t ticker, beater;
    bool ticker_started, beater_started;
    atomic_int subs_live;
    bool present;             /* this edge's row in edges was written */
    natsSubscription *hints;  /* HODEI_SUBJ_HINT_ASSIGNED_ALL, NULL when NATS was away */
    hodei_metric *m_sessions; /* GET /metrics: workers streaming to this edge */
    worker_resend_fn *resend; /* worker_run.c: the re-send from PostgreSQL */
};

edge *worker_hub_edge(worker_hub *h)
{
    return h->e;
}
log_pub *worker_hub_pub(worker_hub *h)
{
    return h->pub;
}

/* ---------------------------------------------------------------- sessions */

/* Where host's count of streams before Hello is, or would be linked (FNV-1a
 * of the address). Call with h->mu held. */
static hub_peer **hub_peer_find_locked(worker_hub *h, const char *host)
{
    uint32_t hash = 2166136261u;
    for (const unsigned char *c = (const unsigned char *)host; *c; c++)
        hash = (hash ^ *c) * 16777619u;
    hub_peer **pp = &h->peers[hash % HUB_PEER_BUCKETS];
    while (*pp && strcmp((*pp)->host, host) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* s no longer waits for Hello (it said it, or it is being unlisted): its
 * address counts one stream less, once. Call with h->mu held. */
static void hub_hello_done_locked(worker_hub *h, worker_session *s)
{
    if (!s->hello_pending)
        return;
    s->hello_pending = false;
    hub_peer **pp = hub_peer_find_locked(h, s->peer_host);
    hub_peer *p = *pp;
    HODEI_ASSERT(p && p->pending > 0);
    if (--p->pending == 0) {
        *pp = p->next;
        free(p);
    }
}

worker_session *worker_session_create(worker_hub *h, hodei_rpc_call *call, hodei_err *err)
{
    worker_session *s = calloc(1, sizeof *s);
    if (!s) {
        hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
        return NULL;
    }
    /* "ipv4:10.0.0.7:40000" -> "ipv4:10.0.0.7" */
    hodei_strlcpy(s->peer_host, hodei_rpc_call_peer_address(call), sizeof s->peer_host);
    char *port = strrchr(s->peer_host, ':');
    if (port && port != strchr(s->peer_host, ':'))
        *port = '\0';
    atomic_init(&s->refs, 2); /* the caller's and the list's */
    s->hub = h;
    s->call = call;
    pthread_mutex_init(&s->mu, NULL);
    s->opened_ms = s->last_send_ms = s->last_recv_ms = hodei_mono_ms();
    s->resend_due_ms = INT64_MAX;
    s->suspects_due_ms = INT64_MAX;
    /* counted and listed under one hold of h->mu: concurrent opens cannot
     * pass a limit together; the address's count drops when the stream
     * says Hello or is unlisted (hub_hello_done_locked) */
    pthread_mutex_lock(&h->mu);
    hub_peer **pp = hub_peer_find_locked(h, s->peer_host);
    bool full = h->n_sessions >= HUB_SESSIONS_MAX;
    bool crowded = !full && *pp && (*pp)->pending >= HUB_HELLO_PENDING_PER_PEER;
    bool nomem = false;
    if (!full && !crowded && !*pp) {
        *pp = calloc(1, sizeof **pp);
        nomem = !*pp;
        if (*pp)
            hodei_strlcpy((*pp)->host, s->peer_host, sizeof(*pp)->host);
    }
    bool refused = full || crowded || nomem;
    if (!refused) {
        (*pp)->pending++;
        s->hello_pending = true;
        s->next = h->head;
        h->head = s;
        h->n_sessions++;
        hodei_metric_set(h->m_sessions, (int64_t)h->n_sessions);
        s->listed = true;
    }
    pthread_mutex_unlock(&h->mu);
    if (refused) {
        if (full)
            hodei_err_set(err, HODEI_ERR_LIMIT, "too many worker streams on this edge (at most %d)",
                          HUB_SESSIONS_MAX);
        else if (crowded)
            hodei_err_set(err, HODEI_ERR_LIMIT,
                          "too many worker streams from %s that have not said hello (at most %d"
                          " at once, each for at most %d ms)",
                          s->peer_host, HUB_HELLO_PENDING_PER_PEER, HUB_HELLO_WAIT_MS);
        else
            hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
        pthread_mutex_destroy(&s->mu);
        free(s);
        return NULL;
    }
    hodei_rpc_call_ref(call);
    return s;
}

void worker_session_ref(worker_session *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void worker_session_unref(worker_session *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    hodei_rpc_call_unref(s->call);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Removes s from the list; true when it was listed (the list's ref is then
 * the caller's to drop). Call with h->mu held. */
static bool hub_unlist_locked(worker_hub *h, worker_session *s)
{
    if (!s->listed)
        return false;
    for (worker_session **pp = &h->head; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    }
    hub_hello_done_locked(h, s);
    s->listed = false;
    s->next = NULL;
    h->n_sessions--;
    hodei_metric_set(h->m_sessions, (int64_t)h->n_sessions);
    return true;
}

/* ------------------------------------------------------------ subscriptions */

/* true when msg (an event or a hint) names a JobAssigned whose RunJob this
 * edge already sent to the worker (a hand-off, or an earlier hint): nothing
 * to re-read. The payload only ever saves a re-read, so a forged one is
 * harmless. */
static bool hub_assigned_known(worker_hub *h, const char *worker_id, natsMsg *msg)
{
    Hodei__V1__Event *ev = hodei__v1__event__unpack(NULL, (size_t)natsMsg_GetDataLength(msg),
                                                    (const uint8_t *)natsMsg_GetData(msg));
    bool known = false;
    if (ev && ev->body_case == HODEI__V1__EVENT__BODY_JOB_ASSIGNED && ev->job_assigned->job_id) {
        worker_session *s = worker_hub_find(h, worker_id);
        if (s) {
            known = worker_session_was_sent(s, ev->job_assigned->job_id, ev->job_assigned->epoch);
            worker_session_unref(s);
        }
    }
    if (ev)
        hodei__v1__event__free_unpacked(ev, NULL);
    return known;
}

static void hub_on_event(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    worker_hub *h = closure;
    const char *subject = natsMsg_GetSubject(msg);
    const char *dot = subject ? strrchr(subject, '.') : NULL;
    bool hint = subject && strncmp(subject, HODEI_SUBJ_HINT_ASSIGNED_PREFIX,
                                   strlen(HODEI_SUBJ_HINT_ASSIGNED_PREFIX)) == 0;
    bool assigned = hint || (subject && strncmp(subject, HODEI_SUBJ_JOB_ASSIGNED_PREFIX,
                                                strlen(HODEI_SUBJ_JOB_ASSIGNED_PREFIX)) == 0);
    if (dot && hodei_id_valid(dot + 1) && !(assigned && hub_assigned_known(h, dot + 1, msg)) &&
        worker_hub_kick(h, dot + 1) && hint)
        hodei_metric_add(h->e->m.hints, 1);
    natsMsg_Destroy(msg);
}

static void hub_on_sub_done(void *closure)
{
    worker_hub *h = closure;
    atomic_fetch_sub(&h->subs_live, 1);
}

/* Subscribes to prefix + suffix ("" for a subject given whole), counted in
 * subs_live until its last callback. */
static natsSubscription *hub_subscribe(worker_hub *h, const char *prefix, const char *suffix,
                                       hodei_err *err)
{
    char subject[HUB_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "%s%s", prefix, suffix);
    natsSubscription *sub = NULL;
    natsStatus s =
        natsConnection_Subscribe(&sub, hodei_bus_conn(h->e->bus), subject, hub_on_event, h);
    if (s == NATS_OK) {
        atomic_fetch_add(&h->subs_live, 1);
        if (natsSubscription_SetOnCompleteCB(sub, hub_on_sub_done, h) != NATS_OK)
            atomic_fetch_sub(&h->subs_live, 1); /* closed already: no callback will come */
        return sub;
    }
    hodei_bus_err(s, subject, err);
    return NULL;
}

static void hub_unsubscribe(natsSubscription *sub)
{
    if (!sub)
        return;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
}

/* ------------------------------------------------------------ attach/detach */

/* Takes the older listed session of the same worker out of the list (the
 * caller ends it). Call with h->mu held. */
static worker_session *hub_take_older_locked(worker_hub *h, worker_session *s)
{
    for (worker_session *o = h->head; o; o = o->next) {
        if (o == s)
            continue;
        pthread_mutex_lock(&o->mu);
        bool same = o->authed && !o->ended && strcmp(o->worker_id, s->worker_id) == 0;
        pthread_mutex_unlock(&o->mu);
        if (same)
            return o;
    }
    return NULL;
}

hodei_status worker_hub_attach(worker_session *s, hodei_err *err)
{
    worker_hub *h = s->hub;
    natsSubscription *a = hub_subscribe(h, HODEI_SUBJ_JOB_ASSIGNED_PREFIX, s->worker_id, err);
    natsSubscription *c =
        a ? hub_subscribe(h, HODEI_SUBJ_JOB_CANCEL_PREFIX, s->worker_id, err) : NULL;
    if (!c) {
        hub_unsubscribe(a);
        return HODEI_ERR_UNAVAILABLE;
    }
    pthread_mutex_lock(&s->mu);
    s->sub_assigned = a;
    s->sub_cancel = c;
    s->authed = true;
    s->resend_due_ms = 0;
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&h->mu);
    hub_hello_done_locked(h, s);
    worker_session *older = hub_take_older_locked(h, s);
    if (older)
        worker_session_ref(older);
    h->kicked = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (older) {
        HLOG_INFO("worker %s: a newer stream replaces the older one", s->worker_id);
        worker_session_end(older, HODEI_GRPC_ABORTED, "replaced by a newer stream of this worker");
        worker_session_unref(older);
    }
    return HODEI_OK;
}

void worker_hub_detach(worker_session *s)
{
    worker_hub *h = s->hub;
    pthread_mutex_lock(&s->mu);
    s->ended = true;
    natsSubscription *a = s->sub_assigned, *c = s->sub_cancel;
    s->sub_assigned = s->sub_cancel = NULL;
    pthread_mutex_unlock(&s->mu);
    hub_unsubscribe(a);
    hub_unsubscribe(c);
    pthread_mutex_lock(&h->mu);
    bool was_listed = hub_unlist_locked(h, s);
    pthread_mutex_unlock(&h->mu);
    if (was_listed)
        worker_session_unref(s);
}

void worker_session_end(worker_session *s, hodei_grpc_code code, const char *why)
{
    pthread_mutex_lock(&s->mu);
    bool first = !s->ended;
    s->ended = true;
    pthread_mutex_unlock(&s->mu);
    if (first)
        hodei_rpc_call_finish(s->call, code, why);
    worker_hub_detach(s);
}

worker_session *worker_hub_find(worker_hub *h, const char *worker_id)
{
    worker_session *found = NULL;
    pthread_mutex_lock(&h->mu);
    for (worker_session *s = h->head; s && !found; s = s->next) {
        pthread_mutex_lock(&s->mu);
        if (s->authed && !s->ended && strcasecmp(s->worker_id, worker_id) == 0)
            found = s;
        pthread_mutex_unlock(&s->mu);
    }
    if (found)
        worker_session_ref(found);
    pthread_mutex_unlock(&h->mu);
    return found;
}

bool worker_hub_kick(worker_hub *h, const char *worker_id)
{
    worker_session *s = worker_hub_find(h, worker_id);
    if (!s)
        return false;
    pthread_mutex_lock(&s->mu);
    s->resend_due_ms = 0;
    pthread_mutex_unlock(&s->mu);
    worker_session_unref(s);
    pthread_mutex_lock(&h->mu);
    h->kicked = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return true;
}

void worker_hub_close_worker(worker_hub *h, const char *worker_id, hodei_grpc_code code,
                             const char *why)
{
    worker_session *s = worker_hub_find(h, worker_id);
    if (!s)
        return;
    worker_session_end(s, code, why);
    worker_session_unref(s);
}

size_t worker_hub_ids(worker_hub *h, char (*ids)[HODEI_ID_BUF], size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&h->mu);
    for (worker_session *s = h->head; s && n < max; s = s->next) {
        pthread_mutex_lock(&s->mu);
        if (s->authed && !s->ended && !s->drain_sent)
            hodei_strlcpy(ids[n++], s->worker_id, HODEI_ID_BUF);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* ------------------------------------------------------------------ sending */

bool worker_session_send(worker_session *s, const Hodei__V1__ServerMessage *m)
{
    hodei_status st = hodei_rpc_call_send(s->call, &m->base);
    if (st == HODEI_OK) {
        pthread_mutex_lock(&s->mu);
        s->last_send_ms = hodei_mono_ms();
        pthread_mutex_unlock(&s->mu);
        return true;
    }
    if (st == HODEI_ERR_LIMIT)
        worker_session_end(s, HODEI_GRPC_RESOURCE_EXHAUSTED,
                           "the worker does not read its stream (send queue full)");
    else if (st != HODEI_ERR_CANCELLED)
        HLOG_WARN("worker stream: cannot send a %d message: %s", (int)m->body_case,
                  hodei_status_str(st));
    return false;
}

void worker_session_send_cancel(worker_session *s, const char *job_id, int64_t epoch,
                                const char *reason)
{
    Hodei__V1__CancelJob c = HODEI__V1__CANCEL_JOB__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    c.job_id = (char *)job_id;
    c.epoch = epoch;
    c.reason = (char *)reason;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_CANCEL_JOB;
    m.cancel_job = &c;
    worker_session_send(s, &m);
}

void worker_session_worker_id(worker_session *s, char out[HODEI_ID_BUF])
{
    pthread_mutex_lock(&s->mu);
    hodei_strlcpy(out, s->worker_id, HODEI_ID_BUF);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------------- owning */

/* The jobs[] entry of (job_id, epoch), or NULL. s->mu held. */
static worker_job_ref *session_job_locked(worker_session *s, const char *job_id, int64_t epoch)
{
    for (size_t i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].epoch == epoch && strcasecmp(s->jobs[i].job_id, job_id) == 0)
            return &s->jobs[i];
    return NULL;
}

void worker_session_own(worker_session *s, const char *job_id, int64_t epoch)
{
    if (worker_session_owns(s, job_id, epoch))
        return;
    pthread_mutex_lock(&s->mu);
    worker_job_ref *r = &s->jobs[s->jobs_next];
    hodei_strlcpy(r->job_id, job_id, sizeof r->job_id);
    r->epoch = epoch;
    r->printed = false;
    s->jobs_next = (s->jobs_next + 1) % WORKER_SESSION_JOBS_MAX;
    if (s->n_jobs < WORKER_SESSION_JOBS_MAX)
        s->n_jobs++;
    pthread_mutex_unlock(&s->mu);
}

void worker_session_forget(worker_session *s, const char *job_id)
{
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_jobs; i++) {
        if (strcasecmp(s->jobs[i].job_id, job_id) == 0)
            s->jobs[i].epoch = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

bool worker_session_owns(worker_session *s, const char *job_id, int64_t epoch)
{
    pthread_mutex_lock(&s->mu);
    bool owns = session_job_locked(s, job_id, epoch) != NULL;
    pthread_mutex_unlock(&s->mu);
    return owns;
}

int64_t worker_session_owned_epoch(worker_session *s, const char *job_id)
{
    int64_t epoch = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n_jobs; i++)
        if (s->jobs[i].epoch > epoch && strcasecmp(s->jobs[i].job_id, job_id) == 0)
            epoch = s->jobs[i].epoch;
    pthread_mutex_unlock(&s->mu);
    return epoch;
}

bool worker_session_owns_mark(worker_session *s, const char *job_id, int64_t epoch, bool printed)
{
    pthread_mutex_lock(&s->mu);
    worker_job_ref *r = session_job_locked(s, job_id, epoch);
    if (r && printed)
        r->printed = true;
    pthread_mutex_unlock(&s->mu);
    return r != NULL;
}

bool worker_session_silent(worker_session *s, const char *job_id, int64_t epoch)
{
    pthread_mutex_lock(&s->mu);
    const worker_job_ref *r = session_job_locked(s, job_id, epoch);
    bool silent = r && !r->printed;
    pthread_mutex_unlock(&s->mu);
    return silent;
}

/* The ring slot of (job_id, epoch), or -1. s->mu held. */
static int session_sent_slot(const worker_session *s, const char *job_id, int64_t epoch)
{
    for (int i = 0; i < WORKER_SENT_MAX; i++)
        if (s->sent[i].epoch == epoch && strcasecmp(s->sent[i].job_id, job_id) == 0)
            return i;
    return -1;
}

void worker_session_note_sent(worker_session *s, const char *job_id, int64_t epoch, int64_t due_ns)
{
    pthread_mutex_lock(&s->mu);
    if (session_sent_slot(s, job_id, epoch) < 0) {
        worker_job_ref *r = &s->sent[s->sent_next];
        hodei_strlcpy(r->job_id, job_id, sizeof r->job_id);
        r->epoch = epoch;
        s->sent_due_ns[s->sent_next] = due_ns;
        s->sent_ms[s->sent_next] = hodei_mono_ms();
        s->sent_next = (s->sent_next + 1) % WORKER_SENT_MAX;
    }
    pthread_mutex_unlock(&s->mu);
}

int64_t worker_session_take_due(worker_session *s, const char *job_id, int64_t epoch)
{
    pthread_mutex_lock(&s->mu);
    int slot = session_sent_slot(s, job_id, epoch);
    int64_t due = slot < 0 ? INT64_MIN : s->sent_due_ns[slot];
    if (slot >= 0)
        s->sent_due_ns[slot] = INT64_MIN;
    pthread_mutex_unlock(&s->mu);
    return due;
}

bool worker_session_claim_send(worker_session *s, const char *job_id, int64_t epoch, int64_t due_ns,
                               int64_t within_ms)
{
    int64_t now = hodei_mono_ms();
    pthread_mutex_lock(&s->mu);
    int slot = session_sent_slot(s, job_id, epoch);
    bool claim = slot < 0 || now - s->sent_ms[slot] >= within_ms;
    if (slot >= 0 && claim) {
        s->sent_ms[slot] = now; /* sent again: the ack's due time stays */
    } else if (slot < 0) {
        worker_job_ref *r = &s->sent[s->sent_next];
        hodei_strlcpy(r->job_id, job_id, sizeof r->job_id);
        r->epoch = epoch;
        s->sent_due_ns[s->sent_next] = due_ns;
        s->sent_ms[s->sent_next] = now;
        s->sent_next = (s->sent_next + 1) % WORKER_SENT_MAX;
    }
    pthread_mutex_unlock(&s->mu);
    return claim;
}

bool worker_session_was_sent(worker_session *s, const char *job_id, int64_t epoch)
{
    pthread_mutex_lock(&s->mu);
    bool sent = session_sent_slot(s, job_id, epoch) >= 0;
    pthread_mutex_unlock(&s->mu);
    return sent;
}

/* --------------------------------------------------------------- heartbeats */

typedef struct {
    hodei_buf ids, cpu, mem, total, running;
    size_t n;
} hub_beats;

static void beats_init(hub_beats *b)
{
    hodei_buf *all[] = {&b->ids, &b->cpu, &b->mem, &b->total, &b->running};
    for (size_t i = 0; i < 5; i++) {
        hodei_buf_init(all[i], HUB_BEAT_SQL_MAX);
        hodei_sqlarr_begin(all[i]);
    }
    b->n = 0;
}

static void beats_fini(hub_beats *b)
{
    hodei_buf *all[] = {&b->ids, &b->cpu, &b->mem, &b->total, &b->running};
    for (size_t i = 0; i < 5; i++)
        hodei_buf_fini(all[i]);
}

/* Adds s when it beat since the last flush. Called with s->mu held. */
static void beats_add_locked(hub_beats *b, worker_session *s)
{
    if (!s->beat_pending || !s->authed)
        return;
    s->beat_pending = false;
    char cpu[64];
    snprintf(cpu, sizeof cpu, "%.3f", s->usage.cpu_cores_used);
    hodei_sqlarr_str(&b->ids, s->worker_id);
    hodei_sqlarr_str(&b->cpu, cpu);
    hodei_sqlarr_i64(&b->mem, s->usage.memory_bytes_used);
    hodei_sqlarr_i64(&b->total, s->usage.memory_bytes_total);
    hodei_sqlarr_i64(&b->running, s->usage.running_jobs);
    b->n++;
}

/* This edge's row in edges (migration 0017), written with the heartbeats:
 * seen now; up since now on its first write, or after a gap of more than
 * HUB_PRESENCE_GAP_BEATS heartbeat intervals without one (it was away). */
#define HUB_PRESENCE_SQL                                                                           \
    "INSERT INTO edges (instance) VALUES ($1)"                                                     \
    " ON CONFLICT (instance) DO UPDATE SET seen_at = now(),"                                       \
    "  up_since = CASE WHEN $2::bool"                                                              \
    "   OR edges.seen_at < now() - $3::bigint * interval '1 millisecond'"                          \
    "   THEN now() ELSE edges.up_since END"
#define HUB_PRESENCE_GAP_BEATS 3

/* The statement waits for a worker row locked by a write in flight (a
 * result, a hand-off) rather than skipping it: a worker that runs job after
 * job holds its row locked most of the time, and skipping its beat there
 * let its last heartbeat age past the supervisor's timeout while it was
 * busiest, so it was taken for lost. The rows are locked in id order, so
 * two statements that lock several workers never wait on each other in a
 * cycle. */
static const char beats_sql[] = "WITH presence AS (" HUB_PRESENCE_SQL "),"
                                " u AS (SELECT * FROM unnest($4::uuid[], $5::float8[],"
                                "  $6::bigint[], $7::bigint[], $8::int[])"
                                "  AS u(id, cpu, mem, total, running)),"
                                " locked AS (SELECT w.id FROM workers w JOIN u ON w.id = u.id"
                                "  ORDER BY w.id FOR UPDATE OF w)"
                                " UPDATE workers w SET last_heartbeat_at = now(),"
                                " usage_cpu_cores = u.cpu, usage_memory_bytes = u.mem,"
                                " usage_memory_total = u.total, usage_running_jobs = u.running"
                                " FROM u JOIN locked ON locked.id = u.id WHERE w.id = u.id";

/* Writes the heartbeats gathered since the last flush and this edge's
 * presence, in one statement; presence alone when no worker beat. */
static void beats_flush(worker_hub *h, hub_beats *b)
{
    hodei_buf *all[] = {&b->ids, &b->cpu, &b->mem, &b->total, &b->running};
    bool ok = true;
    for (size_t i = 0; i < 5; i++) {
        if (!hodei_sqlarr_end(all[i]))
            ok = false;
    }
    if (!ok) {
        HLOG_WARN("heartbeats of %zu workers not written: out of memory", b->n);
        b->n = 0;
    }
    char gap[24];
    snprintf(gap, sizeof gap, "%" PRId64, HUB_PRESENCE_GAP_BEATS * h->e->cfg->worker_heartbeat_ms);
    PGconn *conn = NULL;
    hodei_err err = {0};
    hodei_status st = edge_db_acquire(h->e, &conn, &err);
    if (st == HODEI_OK) {
        const char *params[8] = {h->e->instance, h->present ? "f" : "t", gap};
        for (size_t i = 0; b->n > 0 && i < 5; i++)
            params[3 + i] = all[i]->data;
        int tries = 0;
        do
            st = b->n > 0 ? hodei_db_exec(conn, beats_sql, 8, params, NULL, &err)
                          : hodei_db_exec(conn, HUB_PRESENCE_SQL, 3, params, NULL, &err);
        while (hodei_db_conflict_retry(st, &tries));
        edge_db_release(h->e, conn, st);
    }
    if (st == HODEI_OK)
        h->present = true;
    else
        HLOG_WARN("presence and heartbeats of %zu workers not written: %s", b->n, err.msg);
    /* This write runs every heartbeat interval: it is the edge's probe of
     * its dependencies for /readyz. */
    if (st == HODEI_OK || hodei_db_status_broken(st))
        hodei_daemon_report(h->e->d, "database", st == HODEI_OK, err.msg);
    bool nats_up = hodei_bus_connected(h->e->bus);
    hodei_daemon_report(h->e->d, "nats", nats_up, nats_up ? NULL : "not connected (reconnecting)");
}

/* ------------------------------------------------------------------- ticker */

typedef struct {
    worker_session *resend[HUB_SNAPSHOT_MAX], *keepalive[HUB_SNAPSHOT_MAX],
        *silent[HUB_SNAPSHOT_MAX];
    size_t n_resend, n_keepalive, n_silent;
} hub_snapshot;

/* false when the tick is full: the session waits for the next one. */
static bool snap_push(worker_session **arr, size_t *n, worker_session *s)
{
    if (*n >= HUB_SNAPSHOT_MAX)
        return false;
    worker_session_ref(s);
    arr[(*n)++] = s;
    return true;
}

/* Sorts one session into what the tick must do with it. s->mu held. */
static void snap_classify_locked(worker_hub *h, hub_snapshot *snap, worker_session *s, int64_t now)
{
    const edge_config *cfg = h->e->cfg;
    int64_t silence = HUB_SILENCE_FACTOR * (cfg->worker_keepalive_ms > cfg->worker_heartbeat_ms
                                                ? cfg->worker_keepalive_ms
                                                : cfg->worker_heartbeat_ms);
    if (s->ended)
        return;
    if ((!s->authed && now - s->opened_ms >= HUB_HELLO_WAIT_MS) ||
        (s->authed && now - s->last_recv_ms >= silence)) {
        snap_push(snap->silent, &snap->n_silent, s);
        return;
    }
    if (!s->authed)
        return;
    if (s->resend_due_ms <= now && snap_push(snap->resend, &snap->n_resend, s))
        s->resend_due_ms = now + cfg->worker_resend_ms;
    if (now - s->last_send_ms >= cfg->worker_keepalive_ms)
        snap_push(snap->keepalive, &snap->n_keepalive, s);
}

static void hub_snapshot_take(worker_hub *h, hub_snapshot *snap)
{
    int64_t now = hodei_mono_ms();
    memset(snap, 0, sizeof *snap);
    pthread_mutex_lock(&h->mu);
    for (worker_session *s = h->head; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        snap_classify_locked(h, snap, s, now);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&h->mu);
}

static void hub_send_keepalive(worker_session *s)
{
    Hodei__V1__Keepalive k = HODEI__V1__KEEPALIVE__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    pthread_mutex_lock(&s->mu);
    s->keepalive_nonce += 2; /* even: the agent's own nonces are odd */
    k.nonce = s->keepalive_nonce;
    pthread_mutex_unlock(&s->mu);
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE;
    m.keepalive = &k;
    worker_session_send(s, &m);
}

static void hub_tick(worker_hub *h, hub_snapshot *snap)
{
    hub_snapshot_take(h, snap);
    for (size_t i = 0; i < snap->n_silent; i++) {
        worker_session_end(snap->silent[i], HODEI_GRPC_UNAVAILABLE,
                           "no hello or no message from the worker for too long");
        worker_session_unref(snap->silent[i]);
    }
    for (size_t i = 0; i < snap->n_resend; i++) {
        h->resend(snap->resend[i]);
        worker_session_unref(snap->resend[i]);
    }
    for (size_t i = 0; i < snap->n_keepalive; i++) {
        hub_send_keepalive(snap->keepalive[i]);
        worker_session_unref(snap->keepalive[i]);
    }
}

static void *hub_ticker(void *arg)
{
    worker_hub *h = arg;
    hub_snapshot *snap = malloc(sizeof *snap);
    HODEI_ASSERT(snap != NULL);
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        if (!h->kicked)
            hodei_cond_wait_ms(&h->cv, &h->mu, HUB_TICK_MS);
        h->kicked = false;
        if (h->stopping)
            break;
        pthread_mutex_unlock(&h->mu);
        hub_tick(h, snap);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    free(snap);
    return NULL;
}

/* Every heartbeat interval: the beats gathered since the last, and this
 * edge's presence, in one statement. */
static void hub_beat(worker_hub *h)
{
    hub_beats beats;
    beats_init(&beats);
    pthread_mutex_lock(&h->mu);
    for (worker_session *s = h->head; s; s = s->next) {
        pthread_mutex_lock(&s->mu);
        if (!s->ended)
            beats_add_locked(&beats, s);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&h->mu);
    beats_flush(h, &beats);
    beats_fini(&beats);
}

static void *hub_beater(void *arg)
{
    worker_hub *h = arg;
    int64_t next_ms = 0;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        int64_t now = hodei_mono_ms();
        if (now < next_ms) {
            hodei_cond_wait_ms(&h->beat_cv, &h->mu, next_ms - now);
            continue;
        }
        next_ms = now + h->e->cfg->worker_heartbeat_ms;
        pthread_mutex_unlock(&h->mu);
        hub_beat(h);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* ---------------------------------------------------------------- lifecycle */

hodei_status worker_hub_create(edge *e, log_pub *pub, worker_resend_fn *resend, worker_hub **out,
                               hodei_err *err)
{
    worker_hub *h = calloc(1, sizeof *h);
    if (!h)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "worker hub: out of memory");
    h->e = e;
    h->m_sessions = hodei_daemon_gauge(e->d, "hodei_edge_worker_streams",
                                       "Workers holding a stream to this job-api.");
    h->pub = pub;
    h->resend = resend;
    atomic_init(&h->subs_live, 0);
    pthread_mutex_init(&h->mu, NULL);
    hodei_cond_init_monotonic(&h->cv);
    hodei_cond_init_monotonic(&h->beat_cv);
    if (pthread_create(&h->ticker, NULL, hub_ticker, h) != 0) {
        worker_hub_destroy(h);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "worker hub: cannot start its thread");
    }
    h->ticker_started = true;
    if (pthread_create(&h->beater, NULL, hub_beater, h) != 0) {
        worker_hub_destroy(h);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "worker hub: cannot start its thread");
    }
    h->beater_started = true;
    /* The schedulers' post-commit hints, for every worker (the hub keeps
     * those it holds). Best effort: without it, the JobAssigned event and
     * the periodic re-send still deliver. */
    hodei_err serr;
    h->hints = hub_subscribe(h, HODEI_SUBJ_HINT_ASSIGNED_ALL, "", &serr);
    if (!h->hints)
        HLOG_WARN("worker hub: no subscription to the schedulers' hints (%s); assignments"
                  " arrive through the relay",
                  serr.msg);
    *out = h;
    return HODEI_OK;
}

void worker_hub_stop(worker_hub *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_cond_signal(&h->beat_cv);
    pthread_mutex_unlock(&h->mu);
    if (h->ticker_started)
        pthread_join(h->ticker, NULL);
    h->ticker_started = false;
    if (h->beater_started)
        pthread_join(h->beater, NULL);
    h->beater_started = false;
}

void worker_hub_destroy(worker_hub *h)
{
    if (!h)
        return;
    worker_hub_stop(h);
    hub_unsubscribe(h->hints);
    h->hints = NULL;
    /* Sessions still listed were never closed by the server: end them. */
    for (;;) {
        pthread_mutex_lock(&h->mu);
        worker_session *s = h->head;
        if (s)
            worker_session_ref(s);
        pthread_mutex_unlock(&h->mu);
        if (!s)
            break;
        worker_hub_detach(s);
        worker_session_unref(s);
    }
    int64_t until = hodei_mono_ms() + HUB_SUBS_WAIT_MS;
    while (atomic_load(&h->subs_live) > 0 && hodei_mono_ms() < until)
        hodei_sleep_ms(5);
    if (atomic_load(&h->subs_live) > 0) {
        HLOG_ERROR("worker hub: NATS subscriptions still open; leaking the hub");
        return;
    }
    for (size_t i = 0; i < HUB_PEER_BUCKETS; i++)
        HODEI_ASSERT(!h->peers[i]); /* every session was unlisted: every count fell to 0 */
    pthread_cond_destroy(&h->cv);
    pthread_cond_destroy(&h->beat_cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
