/* Every parameter of the edge (edge_params.h), declared once: name, type,
 * default, bounds, the field of edge_conf it fills, and its help line. */
#include "edge_params.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "client/client_submit.h"
#include "edge_auth.h"

edge_config edge_conf;

static const char *const log_store_choices[] = {"database", "s3", NULL};

#define P(field) offsetof(edge_config, field)
const hodei_cfg_param edge_params[] = {
    {"grpc.listen", HODEI_CFG_STRING, "127.0.0.1:50051", 1, 256, P(grpc_listen),
     "address:port the gRPC edge listens on", true, false, NULL},
    {"http.listen", HODEI_CFG_STRING, "", 0, 256, P(http_listen),
     "address:port of the REST/JSON API and the web dashboard; empty = off", false, false, NULL},
    {"grpc.threads", HODEI_CFG_INT, "4", 1, 64, P(grpc_threads),
     "completion-queue threads serving calls", false, false, NULL},
    {"grpc.tls_cert", HODEI_CFG_STRING, "", 0, 4096, P(tls_cert),
     "server certificate (PEM); empty = no TLS", false, false, NULL},
    {"grpc.tls_key", HODEI_CFG_STRING, "", 0, 4096, P(tls_key), "server private key (PEM)", false,
     false, NULL},
    {"grpc.tls_client_ca", HODEI_CFG_STRING, "", 0, 4096, P(tls_client_ca),
     "CA for client certificates; set = mutual TLS required", false, false, NULL},
    {"submit.batch_max", HODEI_CFG_INT, "512", 1, 10000, P(submit_batch_max),
     "most jobs written in one group commit", false, false, NULL},
    {"submit.queue_max", HODEI_CFG_INT, "20000", 1, 1000000, P(submit_queue_max),
     "jobs waiting for a commit before QueueJob answers RESOURCE_EXHAUSTED", false, false, NULL},
    {"submit.queue_bytes_max", HODEI_CFG_INT, "536870912", SUBMIT_BYTES_MIN, INT64_C(1) << 36,
     P(submit_queue_bytes_max),
     "bytes of jobs waiting for a commit before QueueJob answers RESOURCE_EXHAUSTED", false, false,
     NULL},
    {"submit.queue_bytes_per_key", HODEI_CFG_INT, "134217728", SUBMIT_BYTES_MIN, INT64_C(1) << 36,
     P(submit_queue_bytes_per_key),
     "bytes of one caller's jobs (an API key's, a certificate's, or those of calls with"
     " neither) waiting for a commit before that caller's QueueJob answers"
     " RESOURCE_EXHAUSTED; at most submit.queue_bytes_max; unset = a quarter of it (at"
     " least 8 MiB)",
     false, false, NULL},
    {"submit.batch_bytes_max", HODEI_CFG_INT, "67108864", SUBMIT_BYTES_MIN, SUBMIT_BATCH_BYTES_MAX,
     P(submit_batch_bytes_max),
     "bytes of jobs written in one group commit (a group ends at submit.batch_max jobs or"
     " at this, whichever comes first)",
     false, false, NULL},
    {"submit.writers", HODEI_CFG_INT, "1", 1, 16, P(submit_writers),
     "writer threads (database connections) for group commits; more pay off only when"
     " commit latency, not CPU, is the bound",
     false, false, NULL},
    {"jobs.default_timeout", HODEI_CFG_DURATION_MS, "1h", 1000, 604800000, P(default_timeout_ms),
     "timeout of a job that names none", false, false, NULL},
    {"worker.heartbeat_interval", HODEI_CFG_DURATION_MS, "1s", 100, 60000, P(worker_heartbeat_ms),
     "heartbeat interval given to workers at Register", false, false, NULL},
    {"worker.keepalive_interval", HODEI_CFG_DURATION_MS, "10s", 100, 300000, P(worker_keepalive_ms),
     "a worker stream idle this long gets a Keepalive", false, false, NULL},
    {"worker.resend_interval", HODEI_CFG_DURATION_MS, "2s", 100, 60000, P(worker_resend_ms),
     "RunJob/CancelJob re-sent from PostgreSQL to each connected worker", false, false, NULL},
    {"worker.handoff", HODEI_CFG_BOOL, "true", 0, 0, P(worker_handoff),
     "a worker's result hands it the next pending job in the same transaction", false, false, NULL},
    {"submit.assign", HODEI_CFG_BOOL, "true", 0, 0, P(submit_assign),
     "a queued job goes to an idle worker streaming to this job-api in its submit"
     " transaction, without waiting for a scheduler",
     false, false, NULL},
    {"worker.ack_delay", HODEI_CFG_DURATION_MS, "10ms", 0, 1000, P(worker_ack_delay_ms),
     "RunJobAcks are written grouped within this (a result that comes first makes its"
     " ack unneeded); 0 = each at once",
     false, false, NULL},
    {"database.wait", HODEI_CFG_DURATION_MS, "5s", 10, 60000, P(db_wait_ms),
     "how long a read waits for a pooled connection", false, false, NULL},
    {"auth.cache_ttl", HODEI_CFG_DURATION_MS, "2s", 0, EDGE_AUTH_CACHE_TTL_MAX_MS,
     P(auth_cache_ttl_ms),
     "API key lookups are cached this long: the longest a key revoked on another edge"
     " keeps working (0 = look up on every call)",
     false, false, NULL},
    {"auth.worker_cert_check", HODEI_CFG_BOOL, "false", 0, 0, P(auth_worker_cert_check),
     "with mutual TLS: a worker's certificate must name its worker id (a SAN)", false, false, NULL},
    {"secrets.master_key", HODEI_CFG_STRING, "", 0, SECRETS_KEY_HEX_LEN, P(secrets_master_key),
     "64 hex digits (AES-256) sealing stored secrets; empty = secrets off", false, true, NULL},
    {"secrets.old_master_keys", HODEI_CFG_STRING, "", 0,
     SECRETS_OLD_KEYS_MAX *(SECRETS_KEY_HEX_LEN + 1), P(secrets_old_keys),
     "retiring master keys, comma-separated: values sealed with them still open and are"
     " re-sealed with secrets.master_key in the background",
     false, true, NULL},
    {"secrets.rekey_interval", HODEI_CFG_DURATION_MS, "5s", 0, 3600000, P(secrets_rekey_ms),
     "how often values sealed with an older key are re-sealed (a batch each time); 0 = never",
     false, false, NULL},
    {"logs.job_max", HODEI_CFG_INT, "67108864", 1024, INT64_C(1) << 40, P(logs_job_max),
     "bytes of output kept per job attempt; past it lines are dropped and one line says how many",
     false, false, NULL},
    {"logs.follows_per_key", HODEI_CFG_INT, "64", 1, 1024, P(logs_follows_per_key),
     "SubscribeLogs streams one API key may hold open on this edge; past it RESOURCE_EXHAUSTED",
     false, false, NULL},
    {"logs.follow_backlog_max", HODEI_CFG_INT, "16777216", 1048576, INT64_C(1) << 30,
     P(logs_follow_backlog_max),
     "bytes of a job's output one SubscribeLogs stream may fall behind (stored, not yet taken by"
     " its client) while its client reads slower than the job writes; past it the stream is"
     " ended RESOURCE_EXHAUSTED",
     false, false, NULL},
    {"logs.readers", HODEI_CFG_INT, "4", 1, EDGE_LOG_READERS_MAX, P(logs_readers),
     "threads that read stored logs for GetLogs (the job's row, JetStream, a finished job's"
     " archive), off the gRPC threads that serve workers; a reply that waits for the log store"
     " holds one",
     false, false, NULL},
    {"logs.readers_queue_max", HODEI_CFG_INT, "64", 1, 100000, P(logs_readers_queue_max),
     "GetLogs calls waiting for a free log reader (logs.readers); past it RESOURCE_EXHAUSTED",
     false, false, NULL},
    {"metrics.streams_per_key", HODEI_CFG_INT, "16", 1, 256, P(metrics_streams_per_key),
     "StreamMetrics streams one API key may hold open on this edge; past it RESOURCE_EXHAUSTED",
     false, false, NULL},
    {"streams.idle_timeout", HODEI_CFG_DURATION_MS, "60s", 1000, 3600000, P(streams_idle_ms),
     "a log or metrics stream (gRPC or Server-Sent Events) whose client reads nothing this long"
     " while messages wait for it is ended RESOURCE_EXHAUSTED",
     false, false, NULL},
    {"replies.buffer_max", HODEI_CFG_INT, "268435456", EDGE_REPLY_BUFFER_MIN, INT64_C(1) << 36,
     P(reply_buffer_max),
     "bytes of replies and stream messages the edge holds for clients that have not read them;"
     " past it a reply is answered RESOURCE_EXHAUSTED",
     false, false, NULL},
    {"replies.page_bytes_max", HODEI_CFG_INT, "4194304", EDGE_PAGE_BYTES_MIN, EDGE_PAGE_BYTES_MAX,
     P(reply_page_bytes_max),
     "bytes of one ListJobs or ListTemplates reply (its items and page token): a page ends"
     " before it would pass this, and holds at least one item however large",
     false, false, NULL},
    {"replies.logs_page_bytes", HODEI_CFG_INT, "8388608", EDGE_PAGE_BYTES_MIN, EDGE_PAGE_BYTES_MAX,
     P(reply_logs_page_bytes),
     "bytes of one GetLogs reply: it ends before it would pass this (complete = false; ask again"
     " from the next line), and holds at least one line however large",
     false, false, NULL},
    {"logs.archive_store", HODEI_CFG_STRING, "database", 1, 16, P(logs_archive_store),
     "where finished jobs' log archives are kept: database (PostgreSQL) or s3", false, false,
     log_store_choices},
    {"logs.archive_s3_bucket", HODEI_CFG_STRING, "", 0, 63, P(logs_s3_bucket),
     "bucket of the log archives (logs.archive_store: s3)", false, false, NULL},
    {"logs.archive_s3_prefix", HODEI_CFG_STRING, "hodei-logs/", 0, 512, P(logs_s3_prefix),
     "key prefix of the log archives; each is <prefix><job id>/<epoch>.pb.zlib", false, false,
     NULL},
    {"logs.archive_s3_endpoint", HODEI_CFG_STRING, "", 0, 500, P(logs_s3_endpoint),
     "S3 endpoint (https://host[:port] or http://); empty = AWS's for the region", false, false,
     NULL},
    {"logs.archive_s3_region", HODEI_CFG_STRING, "us-east-1", 1, 63, P(logs_s3_region),
     "S3 region (signs the requests)", false, false, NULL},
    {"logs.archive_s3_path_style", HODEI_CFG_BOOL, "false", 0, 0, P(logs_s3_path_style),
     "address the bucket in the path (endpoint/bucket/key), as most S3-compatible stores want",
     false, false, NULL},
    {"logs.archive_s3_credentials", HODEI_CFG_STRING, "", 0, 200, P(logs_s3_credentials),
     "stored secret (NAME or NAMESPACE/NAME) holding ACCESS_KEY_ID:SECRET_ACCESS_KEY or the"
     " JSON form; read at start-up; empty = logs.archive_s3_credentials_file or anonymous",
     false, false, NULL},
    {"logs.archive_s3_credentials_file", HODEI_CFG_STRING, "", 0, 4096, P(logs_s3_credentials_file),
     "file holding the credentials (same forms), read at start-up", false, false, NULL},
    {"logs.archive_s3_ca_file", HODEI_CFG_STRING, "", 0, 4096, P(logs_s3_ca_file),
     "extra CA bundle for an https endpoint; empty = the system's", false, false, NULL},
};
#undef P

const size_t edge_params_len = sizeof edge_params / sizeof edge_params[0];

/* The checks between parameters, and the defaults made from others. */
hodei_status edge_params_check(const hodei_cfg_section *sec, hodei_err *err)
{
    edge_config *c = sec->base;
    char source[64];
    hodei_config_source(sec, "submit.queue_bytes_per_key", source, sizeof source);
    if (strcmp(source, "default") == 0) {
        int64_t quarter = c->submit_queue_bytes_max / 4;
        c->submit_queue_bytes_per_key = quarter < SUBMIT_BYTES_MIN ? SUBMIT_BYTES_MIN : quarter;
    }
    if (c->submit_queue_bytes_per_key > c->submit_queue_bytes_max)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "submit.queue_bytes_per_key: %lld is above submit.queue_bytes_max"
                             " (%lld): one caller's share cannot exceed the whole queue (from %s)",
                             (long long)c->submit_queue_bytes_per_key,
                             (long long)c->submit_queue_bytes_max, source);
    return HODEI_OK;
}
