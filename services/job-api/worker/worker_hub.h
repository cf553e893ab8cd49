/* The edge's worker side, at its base: one session per WorkerStream call,
 * and the hub that holds the authenticated ones (worker id -> live call),
 * their NATS subscriptions, one ticker thread (keepalives, silent streams,
 * and the periodic re-send, which it hands to the function given at
 * create) and one beater thread (heartbeats written grouped, this edge's
 * presence). Every other file of worker/ builds on this one; it calls none
 * of them.
 *
 * Locking: hub->mu (the list) before session->mu; neither is held while a
 * database call runs. Sessions are reference counted: the call's user
 * pointer holds one until on_close, the hub's list one while listed, and the
 * hub's ticker one while it works on a session. */
#ifndef HODEI_JOB_API_WORKER_HUB_H
#define HODEI_JOB_API_WORKER_HUB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "edge.h"
#include "hodei/buf.h"
#include "hodei/id.h"
#include "hodei/v1/worker.pb-c.h"
#include "logs/logs_pub.h"

#define WORKER_SESSION_JOBS_MAX 64 /* (job, epoch) pairs a session remembers as its own */
#define WORKER_SUSPECTS_MAX 64     /* RUNNING jobs missing from a Hello, checked later */
#define WORKER_SENT_MAX 8          /* RunJobs a session remembers having sent */
#define WORKER_PEER_HOST_BUF 96    /* a peer's address without its port, and its NUL */
#define WORKER_STALE_WHY "assignment no longer current"
#define WORKER_DB_TROUBLE "cannot reach the database; reconnect and re-send"

typedef struct {
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
    bool printed; /* in a session's jobs[]: a line of it came on this stream */
} worker_job_ref;

typedef struct worker_session worker_session;

struct worker_session {
    atomic_int refs;
    worker_hub *hub;
    hodei_rpc_call *call; /* referenced until the session is freed */
    worker_session *next; /* hub list (guarded by hub->mu) */
    bool listed;          /* in the hub list (hub->mu) */
    bool hello_pending;   /* counted among its address's streams before Hello (hub->mu) */

    pthread_mutex_t mu; /* guards everything below */
    bool authed;        /* Hello accepted */
    bool ended;         /* the stream was finished or closed */
    char worker_id[HODEI_ID_BUF];
    char peer_host[WORKER_PEER_HOST_BUF]; /* the call's address without its port (set once) */
    natsSubscription *sub_assigned, *sub_cancel;
    int64_t opened_ms, last_send_ms, last_recv_ms;
    int64_t resend_due_ms; /* INT64_MAX until Hello */
    bool beat_pending;
    Hodei__V1__ResourceUsage usage;               /* from the last heartbeat */
    worker_job_ref jobs[WORKER_SESSION_JOBS_MAX]; /* attempts this stream runs */
    size_t n_jobs, jobs_next;
    worker_job_ref sent[WORKER_SENT_MAX]; /* RunJobs sent lately (ring) */
    int64_t sent_due_ns[WORKER_SENT_MAX]; /* when each became due; INT64_MIN = taken */
    int64_t sent_ms[WORKER_SENT_MAX];     /* when each was last sent (hodei_mono_ms) */
    size_t sent_next;
    worker_job_ref suspects[WORKER_SUSPECTS_MAX];
    size_t n_suspects;
    int64_t suspects_due_ms; /* INT64_MAX = none */
    bool drain_sent;         /* Drain went out on this stream */
    int64_t keepalive_nonce; /* the edge's last Keepalive (even numbers) */
    /* logs.job_max: output of the attempt this stream publishes lines of
     * (stream thread only; a reconnect to another edge counts afresh) */
    struct {
        char job_id[HODEI_ID_BUF];
        int64_t epoch;
        int64_t bytes;    /* published */
        uint64_t dropped; /* lines past the limit */
        int64_t dropped_bytes;
        uint64_t last_sequence; /* the highest sequence seen */
    } log;
};

/* What the ticker does for a session whose re-send is due (worker_run.c's
 * worker_run_resend): called from the ticker thread, no lock held. */
typedef void worker_resend_fn(worker_session *s);

/* pub: where the worker side publishes log lines and end markers (the
 * caller's; it outlives the hub). */
hodei_status worker_hub_create(edge *e, log_pub *pub, worker_resend_fn *resend, worker_hub **out,
                               hodei_err *err);
/* Stops the ticker (no re-send, keepalive or heartbeat write after it
 * returns). Idempotent; NULL is a no-op. */
void worker_hub_stop(worker_hub *h);
/* Stops the ticker and waits for the NATS subscriptions' last callbacks.
 * Every session must have been detached (the gRPC server is gone). */
void worker_hub_destroy(worker_hub *h);
edge *worker_hub_edge(worker_hub *h);
log_pub *worker_hub_pub(worker_hub *h);

/* A session for a new WorkerStream call (refs = 1, the caller's). Listed at
 * once so a stream that never says Hello is timed out. NULL with err set
 * (RESOURCE_EXHAUSTED) when the edge holds HUB_SESSIONS_MAX streams, or the
 * call's address already has HUB_HELLO_PENDING_PER_PEER streams that have
 * not said Hello yet (so one host cannot fill the table before its streams
 * time out), or memory runs out. */
#define HUB_HELLO_PENDING_PER_PEER 64
worker_session *worker_session_create(worker_hub *h, hodei_rpc_call *call, hodei_err *err);
void worker_session_ref(worker_session *s);
void worker_session_unref(worker_session *s);

/* After an accepted Hello: subscribes to the worker's subjects, finishes an
 * older stream of the same worker, and schedules a re-send now. */
hodei_status worker_hub_attach(worker_session *s, hodei_err *err);
/* The stream is over: unlisted and unsubscribed. Idempotent. */
void worker_hub_detach(worker_session *s);
/* Re-send from PostgreSQL at the next tick (NATS said something changed);
 * false when this edge holds no stream of worker_id (nothing to do). */
bool worker_hub_kick(worker_hub *h, const char *worker_id);
/* The live (authenticated, not ended) session of worker_id, with a
 * reference the caller drops (worker_session_unref); NULL when this edge
 * holds none. */
worker_session *worker_hub_find(worker_hub *h, const char *worker_id);
/* The workers streaming here (Hello accepted, not told to drain), at most
 * max, into ids; how many. */
size_t worker_hub_ids(worker_hub *h, char (*ids)[HODEI_ID_BUF], size_t max);
/* Finishes the live stream of worker_id held here, if any. */
void worker_hub_close_worker(worker_hub *h, const char *worker_id, hodei_grpc_code code,
                             const char *why);

/* Sends one message on the session's stream; a stream that cannot take it
 * is finished. false when the stream is gone. */
bool worker_session_send(worker_session *s, const Hodei__V1__ServerMessage *m);
/* CancelJob of (job_id, epoch) on the session's stream. */
void worker_session_send_cancel(worker_session *s, const char *job_id, int64_t epoch,
                                const char *reason);
/* Ends the stream with a status (once) and detaches it. */
void worker_session_end(worker_session *s, hodei_grpc_code code, const char *why);

/* The worker's id (empty before Hello), copied under the session's lock. */
void worker_session_worker_id(worker_session *s, char out[HODEI_ID_BUF]);

/* Remembers (job, epoch) as run by this stream (log batches are accepted
 * for it without asking PostgreSQL); forget drops it. */
void worker_session_own(worker_session *s, const char *job_id, int64_t epoch);
void worker_session_forget(worker_session *s, const char *job_id);
bool worker_session_owns(worker_session *s, const char *job_id, int64_t epoch);
/* The highest epoch of job_id this stream owns; 0 when none. */
int64_t worker_session_owned_epoch(worker_session *s, const char *job_id);
/* worker_session_owns, and when it does and printed, notes that a line of
 * (job, epoch) came on this stream: one hold of the lock per log batch. */
bool worker_session_owns_mark(worker_session *s, const char *job_id, int64_t epoch, bool printed);
/* (job, epoch) is owned by this stream and no line of it came on it. */
bool worker_session_silent(worker_session *s, const char *job_id, int64_t epoch);
/* RunJob of job_id at epoch went out on this stream (remembered for the last
 * WORKER_SENT_MAX): an assignment event naming it needs no re-read. due_ns
 * (hodei_mono_ns terms; INT64_MIN = unknown) is when the job became due;
 * a repeated send keeps the first. */
void worker_session_note_sent(worker_session *s, const char *job_id, int64_t epoch, int64_t due_ns);
bool worker_session_was_sent(worker_session *s, const char *job_id, int64_t epoch);
/* Notes the RunJob as sent, as worker_session_note_sent, unless this stream
 * was sent it less than within_ms ago: then false, and it is not sent
 * again (each path that may send one claims it first). */
bool worker_session_claim_send(worker_session *s, const char *job_id, int64_t epoch, int64_t due_ns,
                               int64_t within_ms);
/* The due time noted with the send of (job_id, epoch), once: the first ack
 * takes it (for the dispatch latency); INT64_MIN when unknown or taken. */
int64_t worker_session_take_due(worker_session *s, const char *job_id, int64_t epoch);

#endif
