/* The job-api's shared state: configuration, the database pool, the submit
 * path, and the gRPC server. Owned by main.c's init/fini. */
#ifndef HODEI_JOB_API_EDGE_H
#define HODEI_JOB_API_EDGE_H

#include <pthread.h>
#include <stdint.h>

#include "edge_metrics.h"
#include "edge_seal.h"
#include "hodei/arena.h"
#include "hodei/bus.h"
#include "hodei/daemon.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/rpc.h"

/* One client reply's memory (its arrays, rows, unpacked specs) comes from
 * one arena, freed once the reply is sent. A reply cannot pass gRPC's
 * message cap; unpacked, it takes at most a few times its packed size. */
#define EDGE_REPLY_ARENA_MAX ((size_t)4 * HODEI_RPC_MESSAGE_MAX)

typedef struct submitter submitter;

/* replies.page_bytes_max's bounds: a page always fits one reply. */
#define EDGE_PAGE_BYTES_MIN 1024
#define EDGE_PAGE_BYTES_MAX (HODEI_RPC_MESSAGE_MAX / 2)

/* The least replies.buffer_max may be: two replies of the largest size. */
#define EDGE_REPLY_BUFFER_MIN (2 * HODEI_RPC_MESSAGE_MAX)
typedef struct edge_auth edge_auth;       /* edge_auth.c: the door check */
typedef struct secret_rekey secret_rekey; /* client_secrets.c: re-seal after a rotation */
typedef struct worker_hub worker_hub;     /* worker/worker_hub.c: live worker streams */
typedef struct worker_acks worker_acks;   /* worker/worker_acks.c: RunJobAcks being written */
typedef struct worker_results
    worker_results;                       /* worker/worker_results.c: JobResults being written */
typedef struct log_hub log_hub;           /* logs_follow.c: SubscribeLogs followers */
typedef struct metrics_hub metrics_hub;   /* metrics/metrics_hub.c: MetricsService */
typedef struct log_store log_store;       /* logs/logs_store.c: where archives are kept */
typedef struct logs_readers logs_readers; /* logs/logs_get.c: GetLogs' reader threads */
#define EDGE_LOG_READERS_MAX 64           /* logs.readers' bound */

typedef struct {
    char *grpc_listen;
    char *http_listen; /* http.listen: REST/JSON and dashboard; "" = off */
    int64_t grpc_threads;
    int64_t submit_batch_max;
    int64_t submit_queue_max;
    int64_t submit_writers;
    int64_t default_timeout_ms;
    int64_t db_wait_ms; /* how long a read waits for a pooled connection */
    char *tls_cert;
    char *tls_key;
    char *tls_client_ca;
    int64_t worker_heartbeat_ms;     /* worker.heartbeat_interval: told to workers at Register */
    int64_t worker_keepalive_ms;     /* worker.keepalive_interval: idle stream gets a Keepalive */
    int64_t worker_resend_ms;        /* worker.resend_interval: RunJob/CancelJob re-sent from SQL */
    bool worker_handoff;             /* worker.handoff: a result takes the next pending job */
    bool submit_assign;              /* submit.assign: a new job goes to an idle worker here */
    int64_t worker_ack_delay_ms;     /* worker.ack_delay: RunJobAcks written grouped; 0 = at once */
    char *secrets_master_key;        /* secrets.master_key: 64 hex digits; empty = secrets off */
    char *secrets_old_keys;          /* secrets.old_master_keys: retiring keys, comma-separated */
    int64_t secrets_rekey_ms;        /* secrets.rekey_interval: re-seal pass period; 0 = off */
    int64_t auth_cache_ttl_ms;       /* auth.cache_ttl: API key answers kept this long (<= 5 s) */
    bool auth_worker_cert_check;     /* auth.worker_cert_check: a worker's certificate names it */
    int64_t logs_job_max;            /* logs.job_max: bytes of output kept per attempt */
    int64_t logs_follows_per_key;    /* logs.follows_per_key: SubscribeLogs streams of one key */
    int64_t logs_follow_backlog_max; /* logs.follow_backlog_max: bytes a follower may lag */
    int64_t logs_readers;            /* logs.readers: GetLogs' reader threads */
    int64_t logs_readers_queue_max;  /* logs.readers_queue_max: GetLogs calls waiting for one */
    int64_t metrics_streams_per_key; /* metrics.streams_per_key: StreamMetrics streams of one key */
    int64_t streams_idle_ms;         /* streams.idle_timeout: a stream whose client reads nothing */
    int64_t reply_buffer_max;        /* replies.buffer_max: reply bytes held for clients */
    int64_t reply_page_bytes_max;    /* replies.page_bytes_max: bytes of one list page */
    int64_t reply_logs_page_bytes;   /* replies.logs_page_bytes: bytes of one GetLogs reply */
    int64_t submit_queue_bytes_max;  /* submit.queue_bytes_max: bytes of jobs waiting to commit */
    int64_t submit_batch_bytes_max;  /* submit.batch_bytes_max: bytes of one group commit */
    int64_t submit_queue_bytes_per_key; /* submit.queue_bytes_per_key: one caller's share */
    char *logs_archive_store;           /* logs.archive_store: database | s3 */
    char *logs_s3_bucket;               /* logs.archive_s3_*: the store of archives when s3 */
    char *logs_s3_prefix;
    char *logs_s3_endpoint;
    char *logs_s3_region;
    bool logs_s3_path_style;
    char *logs_s3_credentials;      /* a stored secret: NAME or NAMESPACE/NAME */
    char *logs_s3_credentials_file; /* or a file holding the same value */
    char *logs_s3_ca_file;
} edge_config;

/* Server streams open per API key (edge_limits.c), one count per kind,
 * whichever door opened them (gRPC, or the REST door's Server-Sent Events
 * through the same handlers): SubscribeLogs (live followers and reads of a
 * finished job's archive alike, logs.follows_per_key) and StreamMetrics
 * (metrics.streams_per_key). Calls without a key are not counted. */
typedef enum { EDGE_STREAM_LOGS = 0, EDGE_STREAM_METRICS, EDGE_STREAM_KINDS } edge_stream_kind;
#define EDGE_STREAM_KEYS_MAX 1024 /* API keys holding streams at once */
typedef struct {
    char key_id[HODEI_ID_BUF]; /* "" = a free slot */
    int64_t open[EDGE_STREAM_KINDS];
} edge_key_streams_slot;
typedef struct {
    pthread_mutex_t mu; /* guards slots; held for a scan, never across a call out */
    edge_key_streams_slot slots[EDGE_STREAM_KEYS_MAX];
} edge_key_streams;

typedef struct {
    hodei_daemon *d; /* for hodei_daemon_report (/readyz) */
    const edge_config *cfg;
    const hodei_common_config *common;
    const char *instance; /* this process's name (its row in edges) */
    hodei_db *db;
    submitter *submit;
    edge_auth *auth;
    hodei_rpc_server *server;
    hodei_bus *bus; /* worker commands, log streams (edge_workers.c) */
    /* Readers of stored logs (SubscribeLogs, GetLogs) on a connection of
     * their own: what clients read slowly piles up on it, and a server that
     * drops it as a slow consumer must not take workers' output with it. */
    hodei_bus *readers_bus;
    worker_hub *workers;
    worker_acks *acks;
    worker_results *results;
    log_hub *logs;
    log_store *log_store;      /* logs.archive_store */
    logs_readers *log_readers; /* GetLogs' reading, off the gRPC threads */
    secrets_keyring keys;      /* secrets.master_key (+ old_master_keys); keys.on = secrets on */
    secret_rekey *rekey;
    metrics_hub *metrics;
    edge_key_streams key_streams; /* edge_stream_key_take / _give */
    edge_metrics m;               /* GET /metrics (edge_metrics.c) */
} edge;

/* A pooled connection for one RPC's work (waits up to database.wait), and
 * its return: dropped when st says the connection broke. */
static inline hodei_status edge_db_acquire(edge *e, PGconn **conn, hodei_err *err)
{
    return hodei_db_acquire(e->db, e->cfg->db_wait_ms, conn, err);
}

static inline void edge_db_release(edge *e, PGconn *conn, hodei_status st)
{
    hodei_db_release(e->db, conn, hodei_db_status_broken(st));
}

/* Registers the JobExecutionService methods (jobs_rpc.c). */
/* edge_limits.c: each method's largest request, set after every method
 * is registered and before the server starts. */
hodei_status edge_request_limits_apply(edge *e, hodei_err *err);
/* edge_limits.c, for the server-streaming calls (SubscribeLogs,
 * StreamMetrics, over gRPC or the REST door's Server-Sent Events): true when
 * call's client has taken nothing for streams.idle_timeout while messages
 * wait for it; the call is then ended RESOURCE_EXHAUSTED naming the
 * setting (its on_close follows). */
bool edge_stream_idle_end(edge *e, hodei_rpc_call *call);
/* Waits until call's client takes one of its messages, at most max_ms
 * (blocked, not polling: the rpc layer wakes it); false when the call was
 * ended for idleness meanwhile (edge_stream_idle_end). */
bool edge_stream_wait_taken(edge *e, hodei_rpc_call *call, int64_t max_ms);
/* Sends msg on a server stream without waiting (the caller made room).
 * HODEI_OK; HODEI_ERR_LIMIT when replies.buffer_max is spent and the stream
 * holds at most two messages: not sent, the call intact: wait for its
 * client (edge_stream_wait_taken, up to streams.idle_timeout) and try
 * again; HODEI_ERR_CANCELLED when the call is gone or was ended (the
 * budget is spent and the stream holds more: RESOURCE_EXHAUSTED naming
 * replies.buffer_max). */
hodei_status edge_stream_try_send(edge *e, hodei_rpc_call *call, const ProtobufCMessage *msg);
/* One more stream of kind for call's API key: true, with key_out set to
 * the key counted ("" when the call has none: not counted), or false with
 * the call failed RESOURCE_EXHAUSTED naming the setting (the key holds its
 * maximum) or the table's size. Give it back once with
 * edge_stream_key_give when the stream ends. */
bool edge_stream_key_take(edge *e, hodei_rpc_call *call, edge_stream_kind kind,
                          char key_out[HODEI_ID_BUF]);
void edge_stream_key_give(edge *e, edge_stream_kind kind, const char *key_id); /* "": no-op */
/* edge_limits.c, for list replies paged by bytes (ListJobs, ListTemplates):
 * the bytes a field of number 1..15 holding len bytes (a message or a
 * string) takes in its reply; 0 for an empty string field (len 0, !always). */
size_t edge_page_field_bytes(size_t len, bool always);
hodei_status jobs_rpc_register(edge *e, hodei_err *err);

#endif
