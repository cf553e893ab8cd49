/* LogStreamService.SubscribeLogs: follows hodei.logs.<job> from the start,
 * replaying what is stored and then the live lines, batched into chunks,
 * and ends with end_of_stream and the final state at the end marker.
 *
 * Each follower reads through its own pull consumer on the readers' NATS
 * connection, and asks JetStream for messages only when its client has room
 * for them: a pull request asks for at most as many messages as chunks the
 * client can still take (LOGS_SEND_QUEUE_MAX less those waiting), and the
 * next one goes out when the client took a chunk (the rpc layer's taken
 * signal) or the request ended. So a client that reads nothing holds at
 * most LOGS_SEND_QUEUE_MAX chunks at the edge and nothing in the
 * connection; the rest of the job's output waits in JetStream. Nothing
 * here waits: the consumer's create, pull and delete requests are
 * published with the follower's inbox as their reply subject, and the
 * answers come back to its subscription. A request that meets a
 * reconnecting connection is sent once it is back (nats.c keeps it); after
 * any reconnection, or a request unanswered past its expiry, the consumer
 * is made anew from the message after the last one taken (so no message
 * is lost or repeated, whatever the server forgot).
 *
 * A job that finished without a marker (an attempt ended by the supervisor,
 * an edge that died before publishing it) is ended by the hub's checker
 * once the job has been finished for LOGS_END_GRACE_MS, nothing came for
 * as long, and the follower has taken the subject's last stored message:
 * "nothing came" alone is also what a follower waiting for its client (or
 * for JetStream's delivery) looks like, and ending it then would end the
 * stream OK without the lines still on their way. The checker also ends a
 * follower whose client takes nothing (streams.idle_timeout) or is too far
 * behind the job (logs.follow_backlog_max), retries consumers that were
 * not made, and remakes them after a reconnection. */
#include <ctype.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "edge_auth.h"
#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/sqlarr.h"
#include "hodei/sync.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "logs_int.h"

#define LOGS_FOLLOWERS_MAX 1024  /* SubscribeLogs calls open at once */
#define LOGS_SEND_QUEUE_MAX 8    /* chunks queued for one client: what one pull may fill */
#define LOGS_CHECK_MS 1000       /* the checker's period */
#define LOGS_CHECK_BATCH_MAX 256 /* followers checked per period */
#define LOGS_SUBS_WAIT_MS 5000   /* destroy waits for the subscriptions' last callbacks */
#define LOGS_CHECK_SQL_MAX (64 * 1024)
#define LOGS_FOLLOW_ARENA_MAX (4 * LOGS_CHUNK_BYTES_MAX) /* unpacked batches held at once */
#define LOGS_ARCHIVE_WAIT_MS 2000 /* an archive's client takes nothing: ended (below) */
#define LOGS_PULL_EXPIRES_MS 5000 /* a pull request waits this long for live lines */
#define LOGS_PULL_LOST_MS (LOGS_PULL_EXPIRES_MS + 3000) /* unanswered: consumer made anew */
#define LOGS_CREATE_RETRY_MS 3000                       /* consumer create unanswered: again */
#define LOGS_OPEN_WAIT_MS 60000     /* no consumer made for this long: UNAVAILABLE */
#define LOGS_CONSUMER_IDLE_MS 60000 /* beyond streams.idle_timeout: a dead edge's consumers go */
#define LOGS_INBOX_MAX 128
#define LOGS_API_SUBJECT_MAX 256
#define LOGS_CREATE_JSON_MAX 1024

typedef struct log_follower log_follower;

/* Where a follower's consumer stands (f->mu). */
typedef enum {
    FOLLOW_CREATING = 0, /* create request sent, no answer yet */
    FOLLOW_READY,        /* consumer made: pulls may go */
} follow_phase;

struct log_follower {
    atomic_int refs; /* the hub list's, the subscription's */
    log_hub *hub;
    hodei_rpc_call *call;  /* referenced until freed */
    log_follower *next;    /* hub list (hub->mu) */
    natsSubscription *sub; /* the inbox's: consumer answers and delivered messages */
    char inbox[LOGS_INBOX_MAX];
    atomic_llong last_msg_ms;
    atomic_ullong last_seq; /* stream sequence of the last message taken (0: none) */
    pthread_mutex_t mu;     /* guards below */
    bool done;              /* the end was sent or the call is gone */
    bool sending; /* its subscription's thread waits (without mu) for the client: follow_send */
    follow_phase phase;
    char consumer[HODEI_ID_BUF];      /* this follower's consumer now ("" before the first) */
    uint64_t reconnects;              /* the connection's reconnections when it was made */
    int64_t creating_since_ms;        /* when it began to be made (0: made) */
    int64_t sent_ms;                  /* when the last create or pull request went */
    bool pull_open;                   /* a pull request is still owed messages */
    unsigned pull_gen;                /* its number: its reply subject is inbox ".p<n>" */
    int pull_left;                    /* messages it may still bring */
    uint64_t taken_msgs, taken_bytes; /* messages taken, their lines' bytes (backlog estimate) */
    char job_id[HODEI_ID_BUF];
    char key_id[HODEI_ID_BUF]; /* the key counted (edge_stream_key_take; "" for none) */
    hodei_log_filter filt;
    hodei_arena arena;
    logs_lines chunk;
};

struct log_hub {
    edge *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    log_follower *head;
    size_t n;
    bool stopping;
    pthread_t checker;
    bool started;
    atomic_int subs_live;
    natsStatistics *stats;    /* the checker's */
    atomic_ullong reconnects; /* of the readers' connection, as the checker last saw them */
    log_follower *all[LOGS_FOLLOWERS_MAX]; /* the checker's */
    hodei_metric *m_followers;             /* GET /metrics */
};

/* ---------------------------------------------------------------- follower */

static void follower_unref(log_follower *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    hodei_arena_fini(&f->arena);
    free(f->chunk.lines);
    hodei_rpc_call_unref(f->call);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static natsConnection *follow_conn(const log_follower *f)
{
    return hodei_bus_conn(f->hub->e->readers_bus);
}

/* Reconnections of the readers' connection so far. */
static uint64_t follow_reconnects(natsConnection *nc, natsStatistics *stats)
{
    uint64_t n = 0;
    if (stats && natsConnection_GetStats(nc, stats) == NATS_OK)
        natsStatistics_GetCounts(stats, NULL, NULL, NULL, NULL, &n);
    return n;
}

#define FOLLOW_WAIT_STEP_MS 1000 /* follow_send looks at streams.idle_timeout this often */

/* Sends m once the client has room. When replies.buffer_max is spent and
 * the client holds one or two chunks, waits for it to take one (up to
 * streams.idle_timeout, edge_stream_wait_taken) when may_wait — only on the
 * subscription's own thread, and without f->mu, so the taken signal, the
 * checker and the close never wait for a slow client; f->sending meanwhile
 * keeps the others off the chunk. Otherwise (the checker) HODEI_ERR_LIMIT:
 * not sent, try later. HODEI_ERR_CANCELLED once the call is gone or was
 * ended. f->mu held. */
static hodei_status follow_send(log_follower *f, const ProtobufCMessage *m, bool may_wait)
{
    edge *e = f->hub->e;
    for (;;) {
        if (hodei_rpc_call_pending(f->call) < 2 * LOGS_SEND_QUEUE_MAX) {
            hodei_status st = edge_stream_try_send(e, f->call, m);
            if (st != HODEI_ERR_LIMIT || !may_wait)
                return st;
        } else if (!may_wait) {
            return HODEI_ERR_LIMIT;
        }
        f->sending = true;
        pthread_mutex_unlock(&f->mu);
        bool alive = edge_stream_wait_taken(e, f->call, FOLLOW_WAIT_STEP_MS);
        pthread_mutex_lock(&f->mu);
        f->sending = false;
        if (!alive || f->done)
            return HODEI_ERR_CANCELLED;
    }
}

/* Sends the chunk collected so far. Room was asked for before the pull
 * (at most one chunk per message it brings, plus one when a message
 * overflows a chunk: within the call's queue of 2 * LOGS_SEND_QUEUE_MAX).
 * A chunk the checker could not send yet (!may_wait) stays, lines and
 * arena, for the next flush; false then. f->mu held. */
static bool follow_flush(log_follower *f, bool reset_arena, bool may_wait)
{
    if (f->chunk.n > 0 && !f->done) {
        Hodei__V1__LogChunk c = HODEI__V1__LOG_CHUNK__INIT;
        c.job_id = f->job_id;
        c.lines = f->chunk.lines;
        c.n_lines = f->chunk.n;
        hodei_status st = follow_send(f, &c.base, may_wait);
        if (st == HODEI_ERR_LIMIT)
            return false;
        if (st != HODEI_OK)
            f->done = true;
    }
    f->chunk.n = 0;
    f->chunk.bytes = 0;
    if (reset_arena)
        hodei_arena_reset(&f->arena);
    return true;
}

/* The last chunk: end_of_stream with the final state (not yet when the
 * checker could not send, !may_wait: a later period does). f->mu held. */
static void follow_finish(log_follower *f, Hodei__V1__JobState final_state, bool may_wait)
{
    if (!follow_flush(f, true, may_wait) || f->done)
        return;
    Hodei__V1__LogChunk c = HODEI__V1__LOG_CHUNK__INIT;
    c.job_id = f->job_id;
    c.end_of_stream = true;
    c.final_state = final_state;
    hodei_status st = follow_send(f, &c.base, may_wait);
    if (st == HODEI_ERR_LIMIT)
        return;
    hodei_rpc_call_finish(f->call, HODEI_GRPC_OK, ""); /* gone or ended: only releases it */
    f->done = true;
}

/* Asks for the consumer to be removed, without waiting (a consumer that
 * stays, e.g. while the connection is down, goes after
 * LOGS_CONSUMER_IDLE_MS). f->mu held. */
static void follow_delete_consumer(log_follower *f)
{
    if (!f->consumer[0])
        return;
    char subject[LOGS_API_SUBJECT_MAX];
    snprintf(subject, sizeof subject, "%s%s.%s", HODEI_JS_API_CONSUMER_DELETE, HODEI_STREAM_LOGS,
             f->consumer);
    natsConnection_Publish(follow_conn(f), subject, NULL, 0);
    f->consumer[0] = '\0';
}

/* Makes the follower's consumer (anew): from the message after the last one
 * taken, filtered on the job's subject, acknowledging nothing (the
 * follower keeps its place itself). The answer comes to inbox ".c".
 * f->mu held. */
static void follow_create(log_follower *f, uint64_t reconnects)
{
    follow_delete_consumer(f);
    hodei_id_new(f->consumer);
    if (f->phase != FOLLOW_CREATING || f->creating_since_ms == 0)
        f->creating_since_ms = hodei_mono_ms();
    f->phase = FOLLOW_CREATING;
    f->pull_open = false;
    f->pull_left = 0;
    f->reconnects = reconnects;
    f->sent_ms = hodei_mono_ms();
    char subject[LOGS_API_SUBJECT_MAX], reply[LOGS_INBOX_MAX + 4], body[LOGS_CREATE_JSON_MAX],
        from[64] = "\"deliver_policy\":\"all\"";
    uint64_t last = atomic_load(&f->last_seq);
    if (last > 0)
        snprintf(from, sizeof from,
                 "\"deliver_policy\":\"by_start_sequence\",\"opt_start_seq\":%" PRIu64, last + 1);
    int64_t idle_ms = f->hub->e->cfg->streams_idle_ms + LOGS_CONSUMER_IDLE_MS;
    snprintf(subject, sizeof subject, "%s%s.%s", HODEI_JS_API_CONSUMER_CREATE, HODEI_STREAM_LOGS,
             f->consumer);
    snprintf(reply, sizeof reply, "%s.c", f->inbox);
    snprintf(body, sizeof body,
             "{\"stream_name\":\"%s\",\"config\":{\"name\":\"%s\",%s,\"ack_policy\":\"none\","
             "\"filter_subject\":\"%s%s\",\"inactive_threshold\":%" PRId64
             ",\"mem_storage\":true,\"num_replicas\":1}}",
             HODEI_STREAM_LOGS, f->consumer, from, HODEI_SUBJ_LOGS_PREFIX, f->job_id,
             idle_ms * 1000000);
    natsStatus s =
        natsConnection_PublishRequest(follow_conn(f), subject, reply, body, (int)strlen(body));
    if (s != NATS_OK) /* retried by the checker */
        HLOG_WARN("log follower of job %s: consumer create not sent: %s", f->job_id,
                  natsStatus_GetText(s));
}

/* Asks for as many messages as the client has room for chunks, when no
 * pull is open. f->mu held. */
static void follow_pull(log_follower *f)
{
    if (f->done || f->sending || f->phase != FOLLOW_READY || f->pull_open)
        return;
    size_t pending = hodei_rpc_call_pending(f->call);
    if (pending >= LOGS_SEND_QUEUE_MAX)
        return; /* the taken signal (or the checker) pulls again */
    int batch = (int)(LOGS_SEND_QUEUE_MAX - pending);
    char subject[LOGS_API_SUBJECT_MAX], reply[LOGS_INBOX_MAX + 16], body[128];
    snprintf(subject, sizeof subject, "%s%s.%s", HODEI_JS_API_CONSUMER_NEXT, HODEI_STREAM_LOGS,
             f->consumer);
    snprintf(reply, sizeof reply, "%s.p%u", f->inbox, ++f->pull_gen);
    snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":%" PRId64 "}", batch,
             (int64_t)LOGS_PULL_EXPIRES_MS * 1000000);
    f->pull_open = true;
    f->pull_left = batch;
    f->sent_ms = hodei_mono_ms();
    natsStatus s =
        natsConnection_PublishRequest(follow_conn(f), subject, reply, body, (int)strlen(body));
    if (s != NATS_OK) /* unanswered: the checker makes the consumer anew */
        HLOG_WARN("log follower of job %s: pull not sent: %s", f->job_id, natsStatus_GetText(s));
}

/* The client took a chunk (the rpc layer's signal, on the thread that saw
 * it): pull when the last pull is over. */
static void follow_on_taken(hodei_rpc_call *call, void *arg)
{
    (void)call;
    log_follower *f = arg;
    pthread_mutex_lock(&f->mu);
    follow_pull(f);
    pthread_mutex_unlock(&f->mu);
}

/* One delivered message: its lines into the chunk, sent when the pull
 * brings nothing more at once (num_pending 0, or the pull is filled) or the
 * chunk is full. f->mu held. */
static void follow_take(log_follower *f, natsMsg *msg, uint64_t num_pending)
{
    Hodei__V1__JobState end;
    Hodei__V1__LogBatch *b = logs_unpack(msg, &f->arena, &end);
    if (!b) {
        HLOG_WARN("%s: a stored message is not a LogBatch; skipped", natsMsg_GetSubject(msg));
        return;
    }
    for (size_t i = 0; i < b->n_lines; i++)
        f->taken_bytes += b->lines[i]->data.len;
    bool overflow = f->chunk.n + b->n_lines > LOGS_CHUNK_LINES_MAX;
    if (overflow)
        follow_flush(f, false, true); /* b lives in the arena: keep it */
    logs_append(b, &f->filt, &f->chunk, LOGS_CHUNK_LINES_MAX);
    if (end) {
        follow_finish(f, end, true);
        return;
    }
    if (f->chunk.n == 0) {
        hodei_arena_reset(&f->arena); /* nothing kept (repeats, below from_sequence) */
        return;
    }
    if (overflow || num_pending == 0 || f->pull_left == 0 ||
        f->chunk.bytes >= LOGS_CHUNK_BYTES_MAX || f->arena.bytes >= LOGS_FOLLOW_ARENA_MAX)
        follow_flush(f, true, true);
}

/* A message the consumer delivered. f->mu held. */
static void follow_on_data(log_follower *f, natsMsg *msg)
{
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK)
        return;
    bool current = meta->Consumer && strcmp(meta->Consumer, f->consumer) == 0;
    uint64_t seq = meta->Sequence.Stream, num_pending = meta->NumPending;
    jsMsgMetaData_Destroy(meta);
    if (!current || f->phase != FOLLOW_READY)
        return; /* a consumer made before (its pull may still deliver) */
    if (f->pull_left > 0 && --f->pull_left == 0)
        f->pull_open = false;
    if (seq > atomic_load(&f->last_seq)) { /* else already taken */
        f->taken_msgs++;
        follow_take(f, msg, num_pending);
        atomic_store(&f->last_seq, seq);
        atomic_store(&f->last_msg_ms, hodei_mono_ms());
    }
    if (!f->pull_open) {
        follow_flush(f, true, true);
        follow_pull(f);
    }
}

/* A status JetStream sent for a pull (no data): 408, the request expired
 * (pull again); 100, a heartbeat; any other (409: the consumer was removed
 * or is full of requests), the consumer is made anew. f->mu held. */
static void follow_on_status(log_follower *f, const char *status, natsMsg *msg)
{
    char current[LOGS_INBOX_MAX + 16];
    snprintf(current, sizeof current, "%s.p%u", f->inbox, f->pull_gen);
    if (strcmp(status, "100") == 0 || f->phase != FOLLOW_READY || !f->pull_open ||
        strcmp(natsMsg_GetSubject(msg), current) != 0)
        return; /* a heartbeat, or about a pull that is over (an older consumer's) */
    if (strcmp(status, "408") == 0 || strcmp(status, "404") == 0) {
        f->pull_open = false;
        follow_flush(f, true, true);
        follow_pull(f);
        return;
    }
    const char *why = NULL;
    natsMsgHeader_Get(msg, "Description", &why);
    HLOG_INFO("log follower of job %s: pull ended %s %s; consumer made anew", f->job_id, status,
              why ? why : "");
    follow_flush(f, true, true);
    follow_create(f, f->reconnects);
}

/* The answer to a consumer create: an older consumer's is ignored; an
 * error ends the call. f->mu held. */
static void follow_on_created(log_follower *f, natsMsg *msg)
{
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    char name[HODEI_ID_BUF + 16];
    snprintf(name, sizeof name, "\"name\":\"%s\"", f->consumer);
    if (f->phase != FOLLOW_CREATING || !data || !memmem(data, (size_t)len, name, strlen(name)))
        return;
    if (memmem(data, (size_t)len, "\"error\"", 7)) {
        hodei_rpc_call_fail(f->call, HODEI_GRPC_UNAVAILABLE, "log store: consumer: %.*s",
                            len > 300 ? 300 : len, data);
        f->done = true;
        return;
    }
    f->phase = FOLLOW_READY;
    follow_pull(f);
}

static void follow_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    log_follower *f = closure;
    const char *reply = natsMsg_GetReply(msg), *status = NULL, *subject = natsMsg_GetSubject(msg);
    size_t sl = strlen(subject);
    pthread_mutex_lock(&f->mu);
    if (f->done)
        ;
    else if (reply && strncmp(reply, HODEI_JS_ACK_PREFIX, strlen(HODEI_JS_ACK_PREFIX)) == 0)
        follow_on_data(f, msg);
    else if (natsMsgHeader_Get(msg, "Status", &status) == NATS_OK && status)
        follow_on_status(f, status, msg);
    else if (sl >= 2 && strcmp(subject + sl - 2, ".c") == 0)
        follow_on_created(f, msg);
    pthread_mutex_unlock(&f->mu);
    natsMsg_Destroy(msg);
}

static void follow_on_sub_done(void *closure)
{
    log_follower *f = closure;
    log_hub *h = f->hub;
    follower_unref(f);
    atomic_fetch_sub(&h->subs_live, 1);
}

/* ----------------------------------------------------------------- the hub */

/* Adds f to the list: false when LOGS_FOLLOWERS_MAX follow already (or
 * the hub stops). */
static bool hub_add(log_hub *h, log_follower *f)
{
    pthread_mutex_lock(&h->mu);
    bool ok = !h->stopping && h->n < LOGS_FOLLOWERS_MAX;
    if (ok) {
        f->next = h->head;
        h->head = f;
        h->n++;
        hodei_metric_set(h->m_followers, (int64_t)h->n);
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static bool hub_remove(log_hub *h, log_follower *f)
{
    bool found = false;
    pthread_mutex_lock(&h->mu);
    for (log_follower **pp = &h->head; *pp; pp = &(*pp)->next) {
        if (*pp == f) {
            *pp = f->next;
            h->n--;
            hodei_metric_set(h->m_followers, (int64_t)h->n);
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&h->mu);
    return found;
}

/* Subscribes the follower's inbox and sends its consumer's create; the
 * rest happens in follow_on_msg. Nothing here waits for the server: on a
 * reconnecting connection both go out once it is back. */
static hodei_status follow_subscribe(log_hub *h, log_follower *f, hodei_err *err)
{
    natsConnection *nc = hodei_bus_conn(h->e->readers_bus);
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        snprintf(f->inbox, sizeof f->inbox, "%s", inbox);
        natsInbox_Destroy(inbox);
    }
    char pattern[LOGS_INBOX_MAX + 4];
    snprintf(pattern, sizeof pattern, "%s.*", f->inbox);
    atomic_fetch_add(&f->refs, 1); /* the subscription's */
    atomic_fetch_add(&h->subs_live, 1);
    if (s == NATS_OK)
        s = natsConnection_Subscribe(&f->sub, nc, pattern, follow_on_msg, f);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(f->sub, follow_on_sub_done, f);
    if (s == NATS_OK) {
        pthread_mutex_lock(&f->mu);
        follow_create(f, atomic_load(&h->reconnects));
        pthread_mutex_unlock(&f->mu);
        return HODEI_OK;
    }
    if (f->sub) {
        natsSubscription_Unsubscribe(f->sub);
        natsSubscription_Destroy(f->sub);
        f->sub = NULL;
    }
    atomic_fetch_sub(&h->subs_live, 1);
    atomic_fetch_sub(&f->refs, 1);
    return hodei_bus_err(s, "log store: subscribe", err);
}

static log_follower *follower_create(log_hub *h, hodei_rpc_call *call,
                                     const Hodei__V1__SubscribeLogsRequest *req)
{
    log_follower *f = calloc(1, sizeof *f);
    Hodei__V1__LogLine **lines = malloc(LOGS_CHUNK_LINES_MAX * sizeof *lines);
    if (!f || !lines) {
        free(f);
        free(lines);
        return NULL;
    }
    atomic_init(&f->refs, 1);
    atomic_init(&f->last_msg_ms, hodei_mono_ms());
    f->hub = h;
    f->call = call;
    hodei_rpc_call_ref(call);
    pthread_mutex_init(&f->mu, NULL);
    for (size_t i = 0; i <= HODEI_ID_LEN; i++)
        f->job_id[i] = (char)tolower((unsigned char)req->job_id[i]);
    hodei_log_filter_init(&f->filt, req->from_sequence, req->from_epoch);
    hodei_arena_init(&f->arena, LOGS_ARENA_BLOCK, SIZE_MAX);
    f->chunk.lines = lines;
    return f;
}

/* Sends one chunk of an archive. It is sent on the server thread that took
 * the call (one of grpc.threads, which also serve workers' streams): its
 * client may hold that thread at most LOGS_ARCHIVE_WAIT_MS without taking
 * a message (not streams.idle_timeout), then the stream ends
 * RESOURCE_EXHAUSTED and the client follows again from the last line it
 * got. A client that reads, however slowly, takes a chunk (up to 1 MiB)
 * at least that often. While the client has LOGS_SEND_QUEUE_MAX chunks,
 * the thread sleeps until it takes one. */
static hodei_status archive_send(edge *e, hodei_rpc_call *call, const ProtobufCMessage *m)
{
    while (hodei_rpc_call_pending(call) >= LOGS_SEND_QUEUE_MAX) {
        int64_t stalled = hodei_rpc_call_stalled_ms(call);
        if (stalled >= LOGS_ARCHIVE_WAIT_MS) {
            hodei_rpc_call_abort(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                                 "the client took nothing for %lld ms of a finished job's log"
                                 " (at most %d ms: it is sent on a server thread); follow again"
                                 " from the last line received (from_sequence)",
                                 (long long)stalled, LOGS_ARCHIVE_WAIT_MS);
            return HODEI_ERR_CANCELLED;
        }
        hodei_rpc_call_wait_pending(call, LOGS_SEND_QUEUE_MAX - 1, LOGS_ARCHIVE_WAIT_MS - stalled);
    }
    /* Room made (only this thread sends on call, so it stays). While the
     * streams' share of replies.buffer_max is spent the chunk waits for
     * this client to take one (edge_stream_try_send, edge_stream_wait_taken),
     * at most LOGS_ARCHIVE_WAIT_MS in all. */
    int64_t until = hodei_mono_ms() + LOGS_ARCHIVE_WAIT_MS;
    for (;;) {
        hodei_status st = edge_stream_try_send(e, call, m);
        if (st != HODEI_ERR_LIMIT)
            return st;
        int64_t left = until - hodei_mono_ms();
        if (left <= 0) {
            hodei_rpc_call_abort(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                                 "the edge holds too many replies not yet read by their clients"
                                 " (at most %lld bytes: replies.buffer_max) and this client took"
                                 " nothing for %d ms; retry later",
                                 (long long)e->cfg->reply_buffer_max, LOGS_ARCHIVE_WAIT_MS);
            return HODEI_ERR_CANCELLED;
        }
        if (!edge_stream_wait_taken(e, call, left))
            return HODEI_ERR_CANCELLED;
    }
}

/* Sends an open archive's lines in chunks (one LOGS_CHUNK_LINES_MAX table
 * and the lines of about one chunk in the arena at a time), then
 * end_of_stream; any error ends the call. */
static void archive_stream(edge *e, hodei_rpc_call *call, logs_archive_reader *r,
                           const char *job_id, hodei_log_filter *filt,
                           Hodei__V1__JobState final_state)
{
    hodei_arena arena;
    hodei_err err;
    logs_lines out = {0};
    bool eof = false;
    hodei_status st = HODEI_OK;
    hodei_arena_init(&arena, LOGS_ARENA_BLOCK, SIZE_MAX);
    out.lines = malloc(LOGS_CHUNK_LINES_MAX * sizeof *out.lines);
    if (!out.lines)
        st = hodei_err_set(&err, HODEI_ERR_NOMEM, "out of memory");
    while (st == HODEI_OK && !eof) {
        out.n = 0;
        out.bytes = 0;
        hodei_arena_reset(&arena);
        st = logs_archive_next(r, filt, &arena, &out, LOGS_CHUNK_LINES_MAX, &eof, &err);
        if (st == HODEI_OK && out.n > 0) {
            Hodei__V1__LogChunk c = HODEI__V1__LOG_CHUNK__INIT;
            c.job_id = (char *)job_id;
            c.lines = out.lines;
            c.n_lines = out.n;
            if (archive_send(e, call, &c.base) != HODEI_OK)
                break; /* the call is gone or was ended */
        }
    }
    if (st != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
    } else if (eof) {
        Hodei__V1__LogChunk end = HODEI__V1__LOG_CHUNK__INIT;
        end.job_id = (char *)job_id;
        end.end_of_stream = true;
        end.final_state = final_state;
        hodei_rpc_call_send(call, &end.base);
        hodei_rpc_call_finish(call, HODEI_GRPC_OK, "");
    } else {
        hodei_rpc_call_finish(call, HODEI_GRPC_OK, ""); /* gone or ended: only releases it */
    }
    free(out.lines);
    hodei_arena_fini(&arena);
}

/* A finished job with an archive is served from it: its lines in chunks,
 * then end_of_stream. false when it has none (follow the stream). */
static bool follow_archived(edge *e, hodei_rpc_call *call,
                            const Hodei__V1__SubscribeLogsRequest *req, Hodei__V1__JobState ended)
{
    hodei_log_filter filt;
    hodei_err err;
    char job_id[HODEI_ID_BUF];
    for (size_t i = 0; i <= HODEI_ID_LEN; i++)
        job_id[i] = (char)tolower((unsigned char)req->job_id[i]);
    hodei_log_filter_init(&filt, req->from_sequence, req->from_epoch);
    Hodei__V1__JobState final_state = ended;
    logs_archive_reader *r = NULL;
    if (logs_archive_open(e, job_id, &r, &final_state, &err) != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return true;
    }
    if (!r)
        return false;
    archive_stream(e, call, r, job_id, &filt, final_state);
    logs_archive_close(r);
    return true;
}

static void follow_on_call(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    log_hub *h = e->logs;
    const Hodei__V1__SubscribeLogsRequest *req = (const Hodei__V1__SubscribeLogsRequest *)msg;
    hodei_err err;
    Hodei__V1__JobState ended;
    hodei_status st = logs_check_request(req->job_id, req->from_epoch, &err);
    if (st == HODEI_OK)
        st = logs_job_check(e, edge_caller(call), req->job_id, &ended, &err);
    if (st != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return;
    }
    char key_id[HODEI_ID_BUF];
    if (!edge_stream_key_take(e, call, EDGE_STREAM_LOGS, key_id))
        return;
    if (follow_archived(e, call, req, ended)) { /* a finished job with an archive */
        edge_stream_key_give(e, EDGE_STREAM_LOGS, key_id);
        return;
    }
    log_follower *f = follower_create(h, call, req);
    if (!f || !hub_add(h, f)) {
        edge_stream_key_give(e, EDGE_STREAM_LOGS, key_id);
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "too many log followers on this edge (at most %d)", LOGS_FOLLOWERS_MAX);
        if (f)
            follower_unref(f);
        return;
    }
    hodei_strlcpy(f->key_id, key_id, sizeof f->key_id);
    hodei_rpc_call_set_queue_max(call, 2 * LOGS_SEND_QUEUE_MAX);
    hodei_rpc_call_set_user(call, f);
    hodei_rpc_call_set_on_taken(call, follow_on_taken, f);
    if (follow_subscribe(h, f, &err) != HODEI_OK) {
        hodei_rpc_call_set_on_taken(call, NULL, NULL);
        hodei_rpc_call_set_user(call, NULL);
        edge_stream_key_give(e, EDGE_STREAM_LOGS, key_id);
        hub_remove(h, f);
        follower_unref(f);
        hodei_rpc_call_fail_err(call, &err);
    }
}

static void follow_on_close(hodei_rpc_call *call, bool cancelled, void *ctx)
{
    log_follower *f = hodei_rpc_call_user(call);
    if (!f)
        return;
    hodei_rpc_call_set_user(call, NULL);
    hodei_rpc_call_set_on_taken(call, NULL, NULL); /* returns once a run in progress did */
    edge_stream_key_give(f->hub->e, EDGE_STREAM_LOGS, f->key_id);
    pthread_mutex_lock(&f->mu);
    f->done = true;
    follow_delete_consumer(f);
    pthread_mutex_unlock(&f->mu);
    natsSubscription_Unsubscribe(f->sub);
    natsSubscription_Destroy(f->sub);
    if (hub_remove(f->hub, f))
        follower_unref(f);
}

void logs_follow_method(edge *e, hodei_rpc_method *out)
{
    *out = (hodei_rpc_method){"/hodei.v1.LogStreamService/SubscribeLogs",
                              HODEI_RPC_SERVER_STREAM,
                              &hodei__v1__subscribe_logs_request__descriptor,
                              follow_on_call,
                              NULL,
                              follow_on_close,
                              e};
}

/* ------------------------------------------------------------- the checker */

/* Followers idle for the grace period, referenced. */
static size_t check_collect(log_hub *h, log_follower **out)
{
    size_t n = 0;
    int64_t now = hodei_mono_ms();
    pthread_mutex_lock(&h->mu);
    for (log_follower *f = h->head; f && n < LOGS_CHECK_BATCH_MAX; f = f->next) {
        if (now - atomic_load(&f->last_msg_ms) < LOGS_END_GRACE_MS)
            continue;
        atomic_fetch_add(&f->refs, 1);
        out[n++] = f;
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

static PGresult *check_query(log_hub *h, log_follower **fs, size_t n)
{
    hodei_buf ids;
    hodei_buf_init(&ids, LOGS_CHECK_SQL_MAX);
    hodei_sqlarr_begin(&ids);
    for (size_t i = 0; i < n; i++)
        hodei_sqlarr_str(&ids, fs[i]->job_id);
    PGresult *res = NULL;
    PGconn *conn = NULL;
    hodei_err err;
    hodei_status st = HODEI_ERR_LIMIT;
    char grace[32];
    snprintf(grace, sizeof grace, "%d", LOGS_END_GRACE_MS);
    if (hodei_sqlarr_end(&ids) && (st = edge_db_acquire(h->e, &conn, &err)) == HODEI_OK) {
        const char *params[2] = {ids.data, grace};
        st = hodei_db_exec(conn,
                           "SELECT id::text, state FROM jobs WHERE id = ANY($1::uuid[])"
                           " AND state IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMEOUT')"
                           " AND finished_at < now() - $2::int * interval '1 millisecond'",
                           2, params, &res, &err);
        edge_db_release(h->e, conn, st);
    }
    hodei_buf_fini(&ids);
    if (st != HODEI_OK && st != HODEI_ERR_LIMIT)
        HLOG_WARN("log followers: job check failed: %s", err.msg);
    return st == HODEI_OK ? res : NULL;
}

/* Whether f has taken every message stored on its job's subject: false
 * while some are still on their way to it (or the store cannot say). */
static bool check_caught_up(log_hub *h, log_follower *f)
{
    char subject[LOGS_SUBJECT_MAX];
    uint64_t stored = 0;
    hodei_err err;
    logs_subject(f->job_id, subject);
    if (logs_last_seq(hodei_bus_js(h->e->readers_bus), subject, &stored, &err) != HODEI_OK) {
        HLOG_WARN("log followers: job %s: %s", f->job_id, err.msg);
        return false;
    }
    return atomic_load(&f->last_seq) >= stored;
}

/* Ends the followers of jobs finished without a marker that have taken all
 * there is. One in a callback (f->mu taken: it waits for its client or
 * takes a message) is not idle: left for a later period. */
static void check_end(log_hub *h, log_follower **fs, size_t n, const PGresult *res)
{
    for (int r = 0; res && r < PQntuples(res); r++) {
        Hodei__V1__JobState state;
        if (!hodei_job_state_parse(hodei_db_get_str(res, r, 1), &state))
            continue;
        for (size_t i = 0; i < n; i++) {
            log_follower *f = fs[i];
            if (strcmp(f->job_id, hodei_db_get_str(res, r, 0)) != 0 || !check_caught_up(h, f))
                continue;
            if (pthread_mutex_trylock(&f->mu) != 0)
                continue;
            if (!f->done && !f->sending &&
                hodei_mono_ms() - atomic_load(&f->last_msg_ms) >= LOGS_END_GRACE_MS) {
                HLOG_INFO("job %s finished without an end-of-log marker; ending its follower",
                          f->job_id);
                follow_finish(f, state, false);
            }
            pthread_mutex_unlock(&f->mu);
        }
    }
}

/* Every follower, referenced (at most LOGS_FOLLOWERS_MAX). */
static size_t check_collect_all(log_hub *h, log_follower **out)
{
    size_t n = 0;
    pthread_mutex_lock(&h->mu);
    for (log_follower *f = h->head; f && n < LOGS_FOLLOWERS_MAX; f = f->next) {
        atomic_fetch_add(&f->refs, 1);
        out[n++] = f;
    }
    pthread_mutex_unlock(&h->mu);
    return n;
}

/* Bytes of the job's output (its lines' data) stored past what f took,
 * estimated from its consumer's pending messages and the mean output of
 * those it took (a JetStream API call: on the checker only, without
 * f->mu). */
static int64_t check_behind_bytes(log_hub *h, log_follower *f)
{
    char consumer[HODEI_ID_BUF];
    uint64_t msgs, bytes;
    pthread_mutex_lock(&f->mu);
    hodei_strlcpy(consumer, f->consumer, sizeof consumer);
    msgs = f->taken_msgs;
    bytes = f->taken_bytes;
    pthread_mutex_unlock(&f->mu);
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    if (msgs == 0 || !consumer[0] ||
        js_GetConsumerInfo(&ci, hodei_bus_js(h->e->readers_bus), HODEI_STREAM_LOGS, consumer, NULL,
                           &jerr) != NATS_OK)
        return 0;
    int64_t behind = (int64_t)(ci->NumPending * (bytes / msgs));
    jsConsumerInfo_Destroy(ci);
    return behind;
}

/* A follower waiting for its client: ended past streams.idle_timeout, or
 * when the job's output stored past what it took passes
 * logs.follow_backlog_max (the client may resume from the last line it
 * got). */
static void check_stalled(log_hub *h, log_follower *f)
{
    edge *e = h->e;
    if (hodei_rpc_call_pending(f->call) < LOGS_SEND_QUEUE_MAX || edge_stream_idle_end(e, f->call))
        return;
    int64_t behind = check_behind_bytes(h, f);
    if (behind <= e->cfg->logs_follow_backlog_max)
        return;
    hodei_rpc_call_abort(f->call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                         "the client reads this job's output slower than it is written: about"
                         " %lld bytes of it wait (at most %lld: logs.follow_backlog_max); follow"
                         " again from the last line received (from_sequence)",
                         (long long)behind, (long long)e->cfg->logs_follow_backlog_max);
}

/* Keeps each follower's consumer going: makes it anew after a
 * reconnection or when a request went unanswered, fails a call whose
 * consumer could not be made for LOGS_OPEN_WAIT_MS (the connection
 * down all along), pulls when a taken signal was missed, and ends
 * followers whose clients stall (check_stalled). */
static void check_pulls(log_hub *h, log_follower **fs, size_t n)
{
    uint64_t reconnects = follow_reconnects(hodei_bus_conn(h->e->readers_bus), h->stats);
    atomic_store(&h->reconnects, reconnects);
    bool up = hodei_bus_connected(h->e->readers_bus);
    for (size_t i = 0; i < n; i++) {
        log_follower *f = fs[i];
        int64_t now = hodei_mono_ms();
        bool stalled = false;
        pthread_mutex_lock(&f->mu);
        if (f->done || f->sending) { /* a sender waiting for its client: left to it */
        } else if (up && f->reconnects != reconnects) {
            follow_flush(f, true, false);
            follow_create(f, reconnects);
        } else if (f->phase == FOLLOW_CREATING && now - f->creating_since_ms >= LOGS_OPEN_WAIT_MS) {
            hodei_rpc_call_fail(f->call, HODEI_GRPC_UNAVAILABLE,
                                "log store: no consumer could be made for %d ms (NATS unreachable)",
                                LOGS_OPEN_WAIT_MS);
            f->done = true;
        } else if (up && f->phase == FOLLOW_CREATING && now - f->sent_ms >= LOGS_CREATE_RETRY_MS) {
            follow_create(f, reconnects);
        } else if (up && f->pull_open && now - f->sent_ms >= LOGS_PULL_LOST_MS) {
            follow_flush(f, true, false);
            follow_create(f, reconnects);
        } else if (f->phase == FOLLOW_READY && !f->pull_open) {
            follow_pull(f);
            stalled = !f->pull_open;
        }
        pthread_mutex_unlock(&f->mu);
        if (stalled)
            check_stalled(h, f);
    }
}

static void check_once(log_hub *h)
{
    log_follower **all = h->all;
    size_t n_all = check_collect_all(h, all);
    check_pulls(h, all, n_all);
    for (size_t i = 0; i < n_all; i++)
        follower_unref(all[i]);

    log_follower *fs[LOGS_CHECK_BATCH_MAX];
    size_t n = check_collect(h, fs);
    if (n == 0)
        return;
    PGresult *res = check_query(h, fs, n);
    check_end(h, fs, n, res);
    PQclear(res);
    for (size_t i = 0; i < n; i++)
        follower_unref(fs[i]);
}

static void *check_thread(void *arg)
{
    log_hub *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stopping) {
        hodei_cond_wait_ms(&h->cv, &h->mu, LOGS_CHECK_MS);
        if (h->stopping)
            break;
        pthread_mutex_unlock(&h->mu);
        check_once(h);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

hodei_status log_hub_create(edge *e, log_hub **out, hodei_err *err)
{
    log_hub *h = calloc(1, sizeof *h);
    if (!h)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "log followers: out of memory");
    h->e = e;
    h->m_followers = hodei_daemon_gauge(e->d, "hodei_edge_log_followers",
                                        "SubscribeLogs calls following a job on this job-api.");
    atomic_init(&h->subs_live, 0);
    if (natsStatistics_Create(&h->stats) != NATS_OK) {
        free(h);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "log followers: out of memory");
    }
    atomic_store(&h->reconnects, follow_reconnects(hodei_bus_conn(e->readers_bus), h->stats));
    pthread_mutex_init(&h->mu, NULL);
    hodei_cond_init_monotonic(&h->cv);
    if (pthread_create(&h->checker, NULL, check_thread, h) != 0) {
        log_hub_destroy(h);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "log followers: cannot start a thread");
    }
    h->started = true;
    *out = h;
    return HODEI_OK;
}

void log_hub_destroy(log_hub *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    if (h->started)
        pthread_join(h->checker, NULL);
    int64_t until = hodei_mono_ms() + LOGS_SUBS_WAIT_MS;
    while (atomic_load(&h->subs_live) > 0 && hodei_mono_ms() < until)
        hodei_sleep_ms(5);
    if (atomic_load(&h->subs_live) > 0 || h->head) {
        HLOG_ERROR("log followers still open at exit; leaking them");
        return;
    }
    natsStatistics_Destroy(h->stats);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
