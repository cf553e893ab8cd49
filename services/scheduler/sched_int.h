/* The scheduler's private state, shared by its files:
 *   sched.c            parameters, lifecycle, the main loop
 *   sched_bus.c        the durable JetStream consumer (wake-ups)
 *   sched_pass.c       one pass: lock, match, assign (one transaction)
 *   sched_provision.c  unmet needs: CREATING workers + ProvisionRequested
 *   sched_seen.c       "log once per job" memory
 *   match.c            the pure fit rules and strategies */
#ifndef HODEI_SCHED_INT_H
#define HODEI_SCHED_INT_H

#include <libpq-fe.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/assign.h"
#include "hodei/buf.h"
#include "hodei/bus.h"
#include "hodei/daemon.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/limits.h"
#include "hodei/v1/events.pb-c.h"
#include "match.h"
#include "sched.h"

#define SCHED_BATCH_MAX 4096             /* scheduler.batch_max upper bound */
#define SCHED_WORKERS_MAX 16384          /* scheduler.workers_max upper bound */
#define SCHED_EVENTS_MAX 4096            /* scheduler.events_max upper bound */
#define SCHED_PROVISION_MAX 1024         /* scheduler.provision_max upper bound */
#define SCHED_PROVIDERS_MAX 64           /* providers with unmet jobs handled per pass */
#define SCHED_ARRAY_TEXT_MAX (16u << 20) /* one array-literal parameter */
#define SCHED_ARRAYS 6                   /* array parameters of the provisioning insert */
#define SCHED_SEEN_MAX 4096              /* job ids remembered per generation (log once) */
#define SCHED_SEEN_SLOTS (2 * SCHED_SEEN_MAX)
#define SCHED_PROVIDER_NAME_MAX HODEI_PROVIDER_NAME_MAX /* as providers.name allows */
/* Every outbox insert notifies this channel (migration 0002's trigger, the
 * relay's wake-up): the scheduler's fastest wake-up, ahead of the events. */
#define SCHED_OUTBOX_CHANNEL "hodei_outbox"
#define SCHED_FULL_MAX 16          /* providers remembered as at max_workers */
#define SCHED_LISTEN_RETRY_MS 1000 /* a replica not listening tries the listener lock */

/* A provider found at its max_workers: not counted again until until_ms
 * (one pass interval), so a saturated pool costs a pass no extra queries. */
typedef struct {
    char name[SCHED_PROVIDER_NAME_MAX + 1];
    int64_t until_ms;
} sched_full;

/* Two generations of hashed ids: lookups check both; when the current one is
 * full the older is dropped, so memory stays bounded. */
typedef struct {
    uint64_t slot[2][SCHED_SEEN_SLOTS];
    size_t count;
    int cur;
} sched_seen;

/* true the first time id is seen (within the memory's bound). */
bool sched_seen_first(sched_seen *seen, const char *id);

/* Events fetched for one pass: a long-poll fetch of one message, then
 * whatever else is waiting, without waiting. */
typedef struct {
    natsMsgList first;
    natsMsgList rest;
    size_t n;
    bool trigger; /* at least one subject that calls for a pass */
} sched_events;

/* The feed thread fetches from the consumer and hands one batch at a time
 * to the main loop (slot + eventfd); the next fetch waits until the main
 * loop settled it. bus and sub belong to the thread. */
typedef struct {
    pthread_t thread;
    bool started;
    int event_fd; /* readable when a batch waits in the slot */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    sched_events slot; /* guarded by mu */
    bool slot_full;    /* guarded by mu */
    bool quit;         /* guarded by mu */
    hodei_bus *bus;
    natsSubscription *sub;
    int64_t backoff_ms;
    hodei_bus *hint_bus; /* bus, once connected, for the main loop (mu) */
} sched_feed;

typedef struct {
    bool skipped;   /* another replica was about to run a pass: none run here */
    size_t jobs;    /* pending jobs locked */
    size_t workers; /* ready workers locked */
    size_t assigned;
    size_t provisioned; /* CREATING workers inserted */
} sched_pass_stats;

typedef struct {
    hodei_daemon *d;
    const sched_config *cfg;
    const hodei_common_config *common;
    const char *instance;
    Hodei__V1__SchedulingStrategy default_strategy;
    Hodei__V1__SchedulingStrategy strategy; /* of the last pass (to log changes) */

    PGconn *conn; /* dedicated; synchronous commit */
    int64_t db_backoff_ms;

    sched_feed feed; /* the JetStream wake-ups (sched_bus.c) */
    int listen_pid;  /* backend of conn: its own NOTIFYs are ignored */
    /* This replica LISTENs (it holds the listener lock, lock_key + 2): one
     * replica is woken by commits, the others by events and their timers;
     * they try the lock every SCHED_LISTEN_RETRY_MS. */
    bool listening;
    int64_t next_listen_try_ms;

    int64_t next_pass_ms; /* fallback timer */

    /* the pass's tables, sized at init */
    match_job *jobs;
    int64_t *job_epoch;
    int64_t *job_due_ns; /* when each locked job became due (hodei_mono_ns terms) */
    match_worker *workers;
    bool *taken;
    int *assign;
    char rr_after[HODEI_ID_BUF];        /* round-robin cursor, kept across passes */
    hodei_assign_set assign_set;        /* the pass's assignments */
    hodei_buf arr[SCHED_ARRAYS];        /* array-literal parameters */
    hodei_outbox_rows provision_events; /* the pass's ProvisionRequested events */

    sched_seen *seen;
    sched_full full[SCHED_FULL_MAX];
    /* Until then, passes look ahead at no jobs beyond what READY workers can
     * take: the last pass had no READY worker and every provider its jobs
     * asked for was full, so locking jobs for provisioning would find
     * nothing to do (set by sched_provision, one pass_interval at most). */
    int64_t lookahead_off_until_ms;

    struct { /* GET /metrics */
        hodei_metric *passes, *skipped, *assigned, *provisioned, *events, *pass_seconds;
        hodei_metric *queue_wait, *pass_duration;
    } m;
    /* counters since the last stats line */
    uint64_t passes, skipped, assigned, provisioned, events;
    int64_t pass_us_sum, pass_us_max;
    int64_t next_stats_ms;
} sched;

/* sched_pass.c: one pass in one transaction. On error the transaction is
 * rolled back; a status for which hodei_db_status_broken() holds means the
 * connection must be dropped. */
hodei_status sched_pass_run(sched *s, sched_pass_stats *out, hodei_err *err);

/* sched_provision.c: inside the pass's transaction, for the n_jobs locked
 * jobs whose s->assign[i] < 0, with the n_workers locked ready workers
 * (s->taken[w] = given a job in this pass). */
hodei_status sched_provision(sched *s, size_t n_jobs, size_t n_workers, size_t *created,
                             hodei_err *err);

/* sched_bus.c: after an assignment committed, tells the edge holding the
 * worker at once (core NATS, best effort: the JobAssigned event follows
 * through the outbox whatever happens here). */
void sched_feed_hint(sched *s, const char *job_id, const char *worker_id, int64_t epoch);

/* sched_bus.c: the feed thread. */
hodei_status sched_feed_start(sched *s, hodei_err *err);
/* Readable when a batch waits (poll it with POLLIN). */
int sched_feed_fd(const sched *s);
/* Takes the waiting batch, if any (the slot stays busy until done). */
bool sched_feed_take(sched *s, sched_events *ev);
/* Acks every message of a taken batch (ok) or asks for a later
 * redelivery, frees them, and lets the thread fetch the next batch. */
void sched_feed_done(sched *s, sched_events *ev, bool ok);
/* Stops and joins the thread, naks a batch still waiting, closes NATS. */
void sched_feed_stop(sched *s);

#endif
