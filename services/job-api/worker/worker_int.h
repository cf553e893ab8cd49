/* Private to the edge's worker side: one session per WorkerStream call, the
 * hub that holds the authenticated ones (worker id -> live call), and the
 * SQL the stream's messages turn into.
 *
 * Locking: hub->mu (the list) before session->mu; neither is held while a
 * database call runs. Sessions are reference counted: the call's user
 * pointer holds one until on_close, the hub's list one while listed, and the
 * hub's ticker one while it works on a session. */
#ifndef HODEI_JOB_API_WORKER_INT_H
#define HODEI_JOB_API_WORKER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "edge.h"
#include "hodei/id.h"
#include "hodei/v1/worker.pb-c.h"
#include "hodei/worker_msg.h"
#include "logs/logs_pub.h"

#define WORKER_SESSION_JOBS_MAX 64    /* (job, epoch) pairs a session remembers as its own */
#define WORKER_SUSPECTS_MAX 64        /* RUNNING jobs missing from a Hello, checked later */
#define WORKER_SENT_MAX 8             /* RunJobs a session remembers having sent */
#define WORKER_SESSION_TOKEN_BYTES 32 /* random bytes; sent as 64 hex characters */
#define WORKER_HASH_HEX_LEN 64        /* SHA-256 as hex, without the NUL */
#define WORKER_STALE_WHY "assignment no longer current"
#define WORKER_DB_TROUBLE "cannot reach the database; reconnect and re-send"

typedef struct {
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
} worker_job_ref;

/* An attempt the edge ended, and the state the job reached. */
typedef struct {
    worker_job_ref ref;
    Hodei__V1__JobState state;
} worker_job_end;

typedef struct worker_session worker_session;
typedef struct worker_acks worker_acks;

struct worker_session {
    atomic_int refs;
    worker_hub *hub;
    hodei_rpc_call *call; /* referenced until the session is freed */
    worker_session *next; /* hub list (guarded by hub->mu) */
    bool listed;          /* in the hub list (hub->mu) */

    pthread_mutex_t mu; /* guards everything below */
    bool authed;        /* Hello accepted */
    bool ended;         /* the stream was finished or closed */
    char worker_id[HODEI_ID_BUF];
    natsSubscription *sub_assigned, *sub_cancel;
    int64_t opened_ms, last_send_ms, last_recv_ms;
    int64_t resend_due_ms; /* INT64_MAX until Hello */
    bool beat_pending;
    Hodei__V1__ResourceUsage usage;               /* from the last heartbeat */
    worker_job_ref jobs[WORKER_SESSION_JOBS_MAX]; /* attempts this stream runs */
    size_t n_jobs, jobs_next;
    worker_job_ref sent[WORKER_SENT_MAX]; /* RunJobs sent lately (ring) */
    int64_t sent_due_ns[WORKER_SENT_MAX]; /* when each became due; INT64_MIN = taken */
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

/* ------------------------------------------------------------ worker_hub.c */

hodei_status worker_hub_create(edge *e, log_pub *pub, worker_hub **out, hodei_err *err);
/* Stops the ticker and waits for the NATS subscriptions' last callbacks.
 * Every session must have been detached (the gRPC server is gone). */
void worker_hub_destroy(worker_hub *h);
edge *worker_hub_edge(worker_hub *h);
log_pub *worker_hub_pub(worker_hub *h);
worker_acks *worker_hub_acks(worker_hub *h);

/* A session for a new WorkerStream call (refs = 1, the caller's). Listed at
 * once so a stream that never says Hello is timed out. */
/* With auth.worker_cert_check: the call's client certificate must name
 * worker_id (UNAUTHENTICATED otherwise). worker_register.c. */
hodei_status worker_cert_check(edge *e, hodei_rpc_call *call, const char *worker_id,
                               hodei_err *err);
worker_session *worker_session_create(worker_hub *h, hodei_rpc_call *call);
void worker_session_ref(worker_session *s);
void worker_session_unref(worker_session *s);

/* After an accepted Hello: subscribes to the worker's subjects, finishes an
 * older stream of the same worker, and schedules a re-send now. */
hodei_status worker_hub_attach(worker_session *s, hodei_err *err);
/* The stream is over: unlisted and unsubscribed. Idempotent. */
void worker_hub_detach(worker_session *s);
/* Re-send from PostgreSQL at the next tick (NATS said something changed). */
void worker_hub_kick(worker_hub *h, const char *worker_id);
/* Finishes the live stream of worker_id held here, if any. */
void worker_hub_close_worker(worker_hub *h, const char *worker_id, hodei_grpc_code code,
                             const char *why);

/* The workers streaming here (Hello accepted, not told to drain), at most
 * max, into ids; how many. */
size_t worker_hub_ids(worker_hub *h, char (*ids)[HODEI_ID_BUF], size_t max);
/* RunJob from run row `row` (hodei/assign.h) to worker_id's stream, when
 * this edge holds it. */
void worker_hub_send_run(worker_hub *h, const char *worker_id, const PGresult *run, int row);

/* Sends one message on the session's stream; a stream that cannot take it
 * is finished. false when the stream is gone. */
bool worker_session_send(worker_session *s, const Hodei__V1__ServerMessage *m);
/* Ends the stream with a status (once) and detaches it. */
void worker_session_end(worker_session *s, hodei_grpc_code code, const char *why);

/* Remembers (job, epoch) as run by this stream (log batches are accepted
 * for it without asking PostgreSQL); forget drops it. */
void worker_session_own(worker_session *s, const char *job_id, int64_t epoch);
void worker_session_forget(worker_session *s, const char *job_id);
bool worker_session_owns(worker_session *s, const char *job_id, int64_t epoch);
/* RunJob of job_id at epoch went out on this stream (remembered for the last
 * WORKER_SENT_MAX): an assignment event naming it needs no re-read. due_ns
 * (hodei_mono_ns terms; INT64_MIN = unknown) is when the job became due;
 * a repeated send keeps the first. */
void worker_session_note_sent(worker_session *s, const char *job_id, int64_t epoch, int64_t due_ns);
bool worker_session_was_sent(worker_session *s, const char *job_id, int64_t epoch);
/* The due time noted with the send of (job_id, epoch), once: the first ack
 * takes it (for the dispatch latency); INT64_MIN when unknown or taken. */
int64_t worker_session_take_due(worker_session *s, const char *job_id, int64_t epoch);

/* ----------------------------------------------------------- worker_jobs.c */

/* RunJob for the worker's ASSIGNED jobs, CancelJob for its jobs with a
 * cancel requested, Drain (once per stream) for a DRAINING, TERMINATING or
 * LOST worker, and the restarted-worker check when due. */
void worker_jobs_resend(worker_session *s);
/* RunJob from a run row (hodei/assign.h, HODEI_RUN_COL_*), with its
 * secrets; noted as sent. */
void worker_jobs_send_run(worker_session *s, const PGresult *res, int row);
/* Hello: RUNNING jobs named in running_job_ids become this stream's; the
 * others are suspects, failed at the check one re-send interval later
 * unless their result arrives first. */
hodei_status worker_jobs_hello(worker_session *s, const Hodei__V1__Hello *hello, hodei_err *err);
void worker_jobs_ack(worker_session *s, const Hodei__V1__RunJobAck *ack);
/* One ack written and judged on conn: true when the job went (or was)
 * RUNNING at this worker and epoch; an attempt the worker does not hold gets
 * a CancelJob, a database failure ends the stream (the worker reconnects and
 * acks the re-sent RunJob). */
bool worker_jobs_ack_write(PGconn *conn, worker_session *s, const char *worker_id,
                           const char *job_id, int64_t epoch);
/* CancelJob of (job_id, epoch) on the session's stream. */
void worker_jobs_send_cancel(worker_session *s, const char *job_id, int64_t epoch,
                             const char *reason);
void worker_jobs_result(worker_session *s, const Hodei__V1__JobResult *res);
/* worker_records.c: JobResult.artifacts into job_artifacts, in the
 * caller's transaction. */
hodei_status worker_records_insert(PGconn *conn, const Hodei__V1__JobResult *r, hodei_err *err);
/* worker_stream.c: after an attempt's result, one SYSTEM line saying how
 * much output logs.job_max dropped (nothing when none was). */
void worker_stream_log_drops(worker_session *s, const char *job_id, int64_t epoch);

/* true when (job, epoch) is this worker's current attempt (cached). */
bool worker_jobs_owned(worker_session *s, const char *job_id, int64_t epoch);
/* Ends one attempt FAILED with `why` and frees its worker, in its own
 * transaction; publishes the end-of-log marker when the job reached a
 * terminal state. Stale = OK. */
hodei_status worker_jobs_fail_attempt(edge *e, log_pub *pub, const char *job_id,
                                      const char *worker_id, int64_t epoch, const char *why,
                                      hodei_err *err);

/* Inside the caller's transaction: ends every ASSIGNED/RUNNING attempt of
 * the worker FAILED with `why` (re-queued when attempts remain). ends has
 * room for WORKER_SESSION_JOBS_MAX; more are ended but not reported. */
hodei_status worker_jobs_end_all(PGconn *conn, const char *worker_id, const char *why,
                                 worker_job_end *ends, size_t *n_ends, hodei_err *err);
/* End-of-log markers for the ends that reached a terminal state. */
void worker_jobs_publish_ends(log_pub *pub, const worker_job_end *ends, size_t n);

/* ---------------------------------------------------------- worker_acks.c */

/* RunJobAcks written grouped: each within worker.ack_delay, all pending ones
 * in one UPDATE by one writer thread. destroy writes what is pending. */
hodei_status worker_acks_create(edge *e, worker_acks **out, hodei_err *err);
void worker_acks_destroy(worker_acks *a);
/* Queues worker_id's ack of (job_id, epoch); false when the writer is
 * stopping or memory ran out (the caller writes it itself). */
bool worker_acks_add(worker_acks *a, worker_session *s, const char *worker_id, const char *job_id,
                     int64_t epoch);
/* The attempt's result came: its ack, still pending, is dropped (the
 * result's transaction counts the job as started). true when one was. */
bool worker_acks_drop(worker_acks *a, const char *worker_id, const char *job_id, int64_t epoch);

/* --------------------------------------------------------- worker_stream.c */

/* Fills the WorkerStream method entry (BIDI). */
void worker_stream_method(edge *e, hodei_rpc_method *out);

/* -------------------------------------------------------- worker_register.c */

/* SHA-256 of token as 64 lower-case hex characters. */
void worker_token_hash_hex(const char *token, char out[WORKER_HASH_HEX_LEN + 1]);
/* Checks a session token against workers.session_token_hash. Any failure
 * is HODEI_ERR_UNAUTHENTICATED with one message that names no check. */
hodei_status worker_session_auth(edge *e, const char *worker_id, const char *token, hodei_err *err);

#endif
