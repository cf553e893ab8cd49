/* The outbox relay's decisions: who is active (advisory lock), when to wake
 * (LISTEN/NOTIFY, fallback poll), what to publish (unpublished rows in id
 * order), what to mark (the acknowledged prefix), and housekeeping (prune,
 * counters). Publishing itself is in relay_batch.c. */
#include "relay.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/buf.h"
#include "hodei/bus.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "relay_int.h"

#define RELAY_LOCK_RETRY_MS 500 /* standby: how often to try the lock */
#define RELAY_BACKOFF_MIN_MS 50
#define RELAY_BACKOFF_MAX_MS 2000
#define RELAY_NATS_CONNECT_MS 2000
#define RELAY_CONNECTED_POLL_MS 20 /* waiting for nats.c to reconnect */
#define RELAY_PRUNE_CHUNK 1000     /* rows per DELETE */
#define RELAY_PRUNE_CHUNKS_MAX 10  /* DELETEs per prune round */
#define RELAY_IDS_TEXT_MAX ((size_t)RELAY_BATCH_MAX * 21 + 8)
#define RELAY_CHANNEL "hodei_outbox"
#define RELAY_INT_TEXT_MAX 24

#define RELAY_PRUNE_SQL                                                                            \
    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE published_at < now()"             \
    " - $1::bigint * interval '1 millisecond' LIMIT $2)"

relay_config relay_conf;

const hodei_cfg_param relay_params[RELAY_PARAMS_LEN] = {
    {.name = "relay.batch_max",
     .type = HODEI_CFG_INT,
     .default_value = "1000",
     .min = 1,
     .max = RELAY_BATCH_MAX,
     .offset = offsetof(relay_config, batch_max),
     .help = "outbox rows published per round"},
    {.name = "relay.poll_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "1s",
     .min = 10,
     .max = 60000,
     .offset = offsetof(relay_config, poll_interval_ms),
     .help = "fallback poll of the outbox when no NOTIFY arrives"},
    {.name = "relay.lock_key",
     .type = HODEI_CFG_INT,
     .default_value = "4848484848",
     .min = INT64_MIN,
     .max = INT64_MAX,
     .offset = offsetof(relay_config, lock_key),
     .help = "PostgreSQL advisory lock key; relays sharing it elect one active"},
    {.name = "relay.retention",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "24h",
     .min = 0,
     .max = 365LL * 24 * 3600 * 1000,
     .offset = offsetof(relay_config, retention_ms),
     .help = "how long published outbox rows are kept before pruning"},
    {.name = "relay.prune_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "60s",
     .min = 100,
     .max = 24LL * 3600 * 1000,
     .offset = offsetof(relay_config, prune_interval_ms),
     .help = "how often the active relay deletes expired published rows"},
    {.name = "relay.publish_timeout",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "5s",
     .min = 100,
     .max = 60000,
     .offset = offsetof(relay_config, publish_timeout_ms),
     .help = "how long to wait for JetStream's acks of one round"},
    {.name = "relay.stats_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "10s",
     .min = 100,
     .max = 3600000,
     .offset = offsetof(relay_config, stats_interval_ms),
     .help = "how often the counters line (published, lag p50/p99) is logged"},
};

typedef enum { RELAY_ROLE_NONE = 0, RELAY_ROLE_STANDBY, RELAY_ROLE_ACTIVE } relay_role;
typedef enum { RELAY_ROUND_OK = 0, RELAY_ROUND_DB_FAILED, RELAY_ROUND_NATS_FAILED } relay_round;

typedef struct {
    hodei_daemon *d;
    const relay_config *cfg;
    const hodei_common_config *common;
    const char *instance;
    hodei_bus *bus;
    bool attached; /* batch has its JetStream context */
    bool streams_ok;
    relay_batch batch;
    PGconn *conn; /* dedicated: lock, LISTEN, queries */
    relay_role role;
    int64_t db_backoff_ms, nats_backoff_ms;
    int nats_reported; /* for /readyz: 0 never, 1 up, 2 down */
    int64_t next_prune_ms, next_stats_ms;
    char batch_max_text[RELAY_INT_TEXT_MAX];
    hodei_buf ids; /* "{1,2,3}" for the mark UPDATE */
    relay_hist lag;
    uint64_t published, published_total, rounds;
    PGresult *next;   /* rows fetched with the last mark, or NULL */
    int64_t floor_id; /* see RELAY_SELECT_SQL; 0 = scan everything */
    int64_t next_full_scan_ms;
    char floor_text[RELAY_INT_TEXT_MAX];
    int64_t db_us, publish_us; /* time spent per phase, this interval */
    struct {                   /* GET /metrics */
        hodei_metric *published, *lag, *failures, *active;
    } m;
} relay;

static void relay_backoff(relay *r, int64_t *backoff_ms)
{
    hodei_daemon_backoff(r->d, backoff_ms, RELAY_BACKOFF_MIN_MS, RELAY_BACKOFF_MAX_MS);
}

/* PQerrorMessage without its trailing newline. */
static hodei_status relay_pq_err(PGconn *conn, const char *what, hodei_err *err)
{
    const char *m = PQerrorMessage(conn);
    int len = (int)strcspn(m, "\n");
    return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "%s: %.*s", what, len, m);
}

/* ---- NATS side ---- */

static hodei_status relay_bus_prepare(relay *r, hodei_err *err)
{
    char client[160];
    hodei_status st;

    if (!r->bus) {
        snprintf(client, sizeof client, "outbox-relay/%s", r->instance);
        st = hodei_bus_connect(r->common->nats_url,
                               &(hodei_bus_auth){r->common->nats_user, r->common->nats_password},
                               client, RELAY_NATS_CONNECT_MS, &r->bus, err);
        if (st != HODEI_OK)
            return st;
    }
    if (!r->attached) {
        st = relay_batch_attach(&r->batch, hodei_bus_conn(r->bus), err);
        if (st != HODEI_OK)
            return st;
        r->attached = true;
    }
    if (!r->streams_ok) {
        st = hodei_bus_ensure_streams(r->bus, err);
        if (st != HODEI_OK)
            return st;
        r->streams_ok = true;
    }
    return HODEI_OK;
}

/* true when connected to NATS with the streams in place. */
static bool relay_bus_ready(relay *r)
{
    hodei_err e = {0};

    if (r->streams_ok)
        return true;
    if (relay_bus_prepare(r, &e) != HODEI_OK) {
        HLOG_WARN("nats not ready, retrying: %s", e.msg);
        hodei_daemon_report(r->d, "nats", false, e.msg);
        r->nats_reported = 2;
        relay_backoff(r, &r->nats_backoff_ms);
        return false;
    }
    r->nats_backoff_ms = 0;
    HLOG_INFO("nats ready: streams %s and %s in place", HODEI_STREAM_EVENTS, HODEI_STREAM_LOGS);
    return true;
}

/* NATS for /readyz: the connection's state, told on each change (nats.c
 * reconnects on its own; a publish meanwhile fails and is retried). */
static void relay_nats_report(relay *r)
{
    bool up = hodei_bus_connected(r->bus);
    if (r->nats_reported == (up ? 1 : 2))
        return;
    r->nats_reported = up ? 1 : 2;
    hodei_daemon_report(r->d, "nats", up, "not connected (reconnecting)");
}

/* After a failed publish: while disconnected, retry as soon as nats.c has
 * reconnected (bounded by the backoff cap); otherwise back off. */
static void relay_nats_backoff(relay *r)
{
    int64_t deadline_ms = hodei_mono_ms() + RELAY_BACKOFF_MAX_MS;

    if (hodei_bus_connected(r->bus)) {
        relay_backoff(r, &r->nats_backoff_ms);
        return;
    }
    while (!hodei_bus_connected(r->bus) && hodei_mono_ms() < deadline_ms &&
           !hodei_daemon_wait(r->d, RELAY_CONNECTED_POLL_MS))
        ;
}

/* ---- PostgreSQL connection and the lock ---- */

static hodei_status relay_db_open(relay *r, hodei_err *err)
{
    hodei_status st = hodei_db_connect(r->common->database_url,
                                       r->common->database_connect_timeout_ms, &r->conn, err);
    if (st == HODEI_OK)
        st = hodei_db_lock_session(r->conn, err); /* a vanished host frees the lock */
    if (st != HODEI_OK)
        return st;
    /* A lost "published" mark only means one more (deduplicated) publish. */
    return hodei_db_exec(r->conn, "SET synchronous_commit TO off", 0, NULL, NULL, err);
}

static void relay_db_drop(relay *r, const char *why)
{
    if (r->role == RELAY_ROLE_ACTIVE)
        HLOG_WARN("database connection lost, lock given up, re-acquiring: %s", why);
    else
        HLOG_WARN("database unavailable, retrying: %s", why);
    hodei_daemon_report(r->d, "database", false, why);
    hodei_metric_set(r->m.active, 0);
    PQclear(r->next);
    r->next = NULL;
    PQfinish(r->conn);
    r->conn = NULL;
    r->role = RELAY_ROLE_NONE;
}

static hodei_status relay_try_lock(relay *r, bool *got, hodei_err *err)
{
    char key[RELAY_INT_TEXT_MAX];
    const char *params[] = {key};
    PGresult *res = NULL;
    hodei_status st;

    snprintf(key, sizeof key, "%" PRId64, r->cfg->lock_key);
    st = hodei_db_exec(r->conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res, err);
    if (st == HODEI_OK)
        *got = strcmp(hodei_db_get_str(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}

static void relay_become_active(relay *r)
{
    int64_t now = hodei_mono_ms();

    r->role = RELAY_ROLE_ACTIVE;
    hodei_metric_set(r->m.active, 1);
    r->floor_id = 0; /* a new leader knows nothing yet */
    r->next_full_scan_ms = 0;
    r->next_prune_ms = now;
    r->next_stats_ms = now + r->cfg->stats_interval_ms;
    HLOG_INFO("active: holding advisory lock %" PRId64 " (instance=%s)", r->cfg->lock_key,
              r->instance);
}

/* One attempt to become the active relay. */
static void relay_acquire(relay *r)
{
    hodei_err e = {0};
    bool got = false;

    if (!r->conn && relay_db_open(r, &e) != HODEI_OK)
        goto out_drop;
    if (relay_try_lock(r, &got, &e) != HODEI_OK)
        goto out_drop;
    r->db_backoff_ms = 0;
    hodei_daemon_report(r->d, "database", true, NULL);
    if (!got) {
        if (r->role != RELAY_ROLE_STANDBY)
            HLOG_INFO("standby: another relay holds advisory lock %" PRId64 " (instance=%s)",
                      r->cfg->lock_key, r->instance);
        r->role = RELAY_ROLE_STANDBY;
        hodei_daemon_wait(r->d, RELAY_LOCK_RETRY_MS);
        return;
    }
    if (hodei_db_exec(r->conn, "LISTEN " RELAY_CHANNEL, 0, NULL, NULL, &e) != HODEI_OK)
        goto out_drop;
    relay_become_active(r);
    return;

out_drop:
    if (r->conn)
        relay_db_drop(r, e.msg);
    else
        HLOG_WARN("database unavailable, retrying: %s", e.msg);
    relay_backoff(r, &r->db_backoff_ms);
}

/* ---- one round: fetch, publish, mark ---- */

static void relay_ids_text(relay *r, int n)
{
    hodei_buf_reset(&r->ids);
    hodei_buf_putc(&r->ids, '{');
    for (int i = 0; i < n; i++)
        hodei_buf_printf(&r->ids, i ? ",%" PRId64 : "%" PRId64, r->batch.slots[i].id);
    hodei_buf_putc(&r->ids, '}');
    HODEI_ASSERT(!r->ids.failed);
}

/* Marks the first n rows of the batch published. With next != NULL the same
 * statement also fetches the following rows: one round trip per round. */
/* The floor for this round's select: 0 once per RELAY_FULL_SCAN_MS. */
static const char *relay_floor(relay *r)
{
    int64_t now = hodei_mono_ms();
    int64_t floor_id = r->floor_id > RELAY_FLOOR_LAG_IDS ? r->floor_id - RELAY_FLOOR_LAG_IDS : 0;
    if (now >= r->next_full_scan_ms) {
        r->next_full_scan_ms = now + RELAY_FULL_SCAN_MS;
        floor_id = 0;
    }
    snprintf(r->floor_text, sizeof r->floor_text, "%" PRId64, floor_id);
    return r->floor_text;
}

static hodei_status relay_mark(relay *r, int n, PGresult **next, hodei_err *err)
{
    const char *params[] = {NULL, r->batch_max_text, relay_floor(r)};
    int64_t t0 = hodei_mono_ns();
    hodei_status st;

    relay_ids_text(r, n);
    params[0] = r->ids.data;
    if (next)
        st = hodei_db_exec(r->conn, RELAY_MARK_FETCH_SQL, 3, params, next, err);
    else
        st = hodei_db_exec(r->conn, RELAY_MARK_SQL, 1, params, NULL, err);
    r->db_us += (hodei_mono_ns() - t0) / 1000;
    /* Rows go out in id order, so the last one marked is the highest. */
    if (st == HODEI_OK && n > 0 && r->batch.slots[n - 1].id > r->floor_id)
        r->floor_id = r->batch.slots[n - 1].id;
    return st;
}

static void relay_count(relay *r, int n)
{
    relay_batch_lags(&r->batch, n, &r->lag);
    for (int i = 0; i < n && i < r->batch.len; i++)
        hodei_metric_observe_micro(r->m.lag,
                                   r->batch.slots[i].ack_us - r->batch.slots[i].created_us);
    hodei_metric_add(r->m.published, (uint64_t)n);
    r->published += (uint64_t)n;
    r->published_total += (uint64_t)n;
}

static relay_round relay_publish_rows(relay *r, const PGresult *res, hodei_err *err)
{
    int prefix = 0;
    hodei_err merr = {0};
    hodei_status pub;
    int64_t t0 = hodei_mono_ns();

    if (!hodei_bus_connected(r->bus)) {
        hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "nats: not connected");
        return RELAY_ROUND_NATS_FAILED;
    }
    pub =
        relay_batch_publish(&r->batch, res, r->instance, r->cfg->publish_timeout_ms, &prefix, err);
    r->publish_us += (hodei_mono_ns() - t0) / 1000;
    r->rounds++;
    if (prefix == 0)
        return RELAY_ROUND_NATS_FAILED;
    if (relay_mark(r, prefix, pub == HODEI_OK ? &r->next : NULL, &merr) != HODEI_OK) {
        *err = merr;
        return RELAY_ROUND_DB_FAILED;
    }
    relay_count(r, prefix);
    return pub == HODEI_OK ? RELAY_ROUND_OK : RELAY_ROUND_NATS_FAILED;
}

/* Publishes the rows the last mark fetched, or selects them now. */
static relay_round relay_round_run(relay *r, int *n_out, hodei_err *err)
{
    const char *params[] = {r->batch_max_text, relay_floor(r)};
    PGresult *res = r->next;
    relay_round rc = RELAY_ROUND_OK;
    int64_t t0 = hodei_mono_ns();

    r->next = NULL;
    if (!res && hodei_db_exec(r->conn, RELAY_SELECT_SQL, 2, params, &res, err) != HODEI_OK)
        return RELAY_ROUND_DB_FAILED;
    r->db_us += (hodei_mono_ns() - t0) / 1000;
    *n_out = PQntuples(res);
    if (*n_out > 0)
        rc = relay_publish_rows(r, res, err);
    PQclear(res);
    return rc;
}

/* true when the last mark already brought the next rows. */
static bool relay_has_next(relay *r)
{
    if (r->next && PQntuples(r->next) > 0)
        return true;
    PQclear(r->next);
    r->next = NULL;
    return false;
}

/* ---- housekeeping ---- */

static hodei_status relay_prune_chunk(relay *r, int64_t *deleted, hodei_err *err)
{
    char retention[RELAY_INT_TEXT_MAX], chunk[RELAY_INT_TEXT_MAX];
    const char *params[] = {retention, chunk};
    PGresult *res = NULL;
    hodei_status st;

    snprintf(retention, sizeof retention, "%" PRId64, r->cfg->retention_ms);
    snprintf(chunk, sizeof chunk, "%d", RELAY_PRUNE_CHUNK);
    st = hodei_db_exec(r->conn, RELAY_PRUNE_SQL, 2, params, &res, err);
    if (st == HODEI_OK && !hodei_parse_i64(PQcmdTuples(res), 0, INT64_MAX, deleted))
        *deleted = 0;
    PQclear(res);
    return st;
}

/* Deletes expired published rows in bounded chunks; when more remain, the
 * next prune is due at once, so publishing interleaves with pruning. */
static hodei_status relay_prune(relay *r, hodei_err *err)
{
    int64_t total = 0, deleted = RELAY_PRUNE_CHUNK;
    int chunks = 0;
    hodei_status st = HODEI_OK;

    while (chunks < RELAY_PRUNE_CHUNKS_MAX && deleted == RELAY_PRUNE_CHUNK && st == HODEI_OK) {
        st = relay_prune_chunk(r, &deleted, err);
        total += deleted;
        chunks++;
    }
    if (st != HODEI_OK)
        return st;
    r->next_prune_ms =
        hodei_mono_ms() + (deleted == RELAY_PRUNE_CHUNK ? 0 : r->cfg->prune_interval_ms);
    if (total > 0)
        HLOG_INFO("pruned %" PRId64 " published outbox rows older than %" PRId64 " ms", total,
                  r->cfg->retention_ms);
    return HODEI_OK;
}

static void relay_log_stats(relay *r)
{
    double rounds = r->rounds ? (double)r->rounds : 1.0;

    if (r->published > 0)
        HLOG_INFO("published=%" PRIu64 " total=%" PRIu64 " rounds=%" PRIu64
                  " lag_p50_ms=%.3f lag_p99_ms=%.3f lag_max_ms=%.3f"
                  " round_db_ms=%.3f round_publish_ms=%.3f",
                  r->published, r->published_total, r->rounds,
                  (double)relay_hist_quantile(&r->lag, 0.50) / 1000.0,
                  (double)relay_hist_quantile(&r->lag, 0.99) / 1000.0,
                  (double)r->lag.max_us / 1000.0, (double)r->db_us / 1000.0 / rounds,
                  (double)r->publish_us / 1000.0 / rounds);
    r->published = 0;
    r->rounds = 0;
    r->db_us = r->publish_us = 0;
    relay_hist_reset(&r->lag);
}

static hodei_status relay_housekeeping(relay *r, hodei_err *err)
{
    int64_t now = hodei_mono_ms();

    if (now >= r->next_stats_ms) {
        relay_log_stats(r);
        r->next_stats_ms = now + r->cfg->stats_interval_ms;
    }
    if (now >= r->next_prune_ms)
        return relay_prune(r, err);
    return HODEI_OK;
}

/* ---- waiting for work ---- */

/* Reads what the server sent; *got = a NOTIFY arrived since the last call. */
static hodei_status relay_drain_notifies(relay *r, bool *got, hodei_err *err)
{
    PGnotify *n;

    if (!PQconsumeInput(r->conn))
        return relay_pq_err(r->conn, "postgresql", err);
    while ((n = PQnotifies(r->conn)) != NULL) {
        PQfreemem(n);
        *got = true;
    }
    return HODEI_OK;
}

static int relay_wait_budget_ms(const relay *r)
{
    int64_t now = hodei_mono_ms();
    int64_t t = r->cfg->poll_interval_ms;

    if (r->next_prune_ms - now < t)
        t = r->next_prune_ms - now;
    if (r->next_stats_ms - now < t)
        t = r->next_stats_ms - now;
    return t < 0 ? 0 : (int)t;
}

/* Sleeps until a NOTIFY, a stop request, or the poll interval. A NOTIFY
 * already consumed while the last round ran means: go again at once. */
static hodei_status relay_wait_work(relay *r, hodei_err *err)
{
    bool got = false;
    struct pollfd fds[2];
    hodei_status st = relay_drain_notifies(r, &got, err);

    if (st != HODEI_OK || got)
        return st;
    fds[0] = (struct pollfd){.fd = PQsocket(r->conn), .events = POLLIN};
    fds[1] = (struct pollfd){.fd = hodei_daemon_stop_fd(r->d), .events = POLLIN};
    if (poll(fds, 2, relay_wait_budget_ms(r)) < 0 && errno != EINTR)
        HLOG_WARN("poll: %s", strerror(errno));
    if (fds[0].revents)
        return relay_drain_notifies(r, &got, err);
    return HODEI_OK;
}

/* ---- the active loop ---- */

static void relay_active_step(relay *r)
{
    hodei_err e = {0};
    int n = 0;
    relay_round rc = relay_round_run(r, &n, &e);

    if (rc == RELAY_ROUND_NATS_FAILED) {
        HLOG_WARN("publish failed, retrying the batch: %s", e.msg);
        hodei_metric_add(r->m.failures, 1);
        if (hodei_bus_connected(r->bus))
            r->streams_ok = false; /* connected yet refused: re-check the streams first */
        relay_nats_backoff(r);
        if (relay_housekeeping(r, &e) != HODEI_OK)
            relay_db_drop(r, e.msg);
        return;
    }
    if (rc == RELAY_ROUND_OK) {
        r->nats_backoff_ms = 0;
        if (relay_housekeeping(r, &e) == HODEI_OK &&
            (relay_has_next(r) || n >= r->cfg->batch_max || relay_wait_work(r, &e) == HODEI_OK))
            return;
    }
    relay_db_drop(r, e.msg);
    relay_backoff(r, &r->db_backoff_ms);
}

hodei_status relay_run(hodei_daemon *d, hodei_err *err)
{
    relay *r = hodei_daemon_state(d);

    while (!hodei_daemon_stopping(d)) {
        if (!relay_bus_ready(r))
            continue;
        relay_nats_report(r);
        if (r->role != RELAY_ROLE_ACTIVE)
            relay_acquire(r);
        else
            relay_active_step(r);
    }
    return HODEI_OK;
}

hodei_status relay_init(hodei_daemon *d, hodei_err *err)
{
    relay *r = calloc(1, sizeof *r);

    if (!r)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "relay: out of memory");
    r->d = d;
    r->cfg = &relay_conf;
    r->common = hodei_daemon_common(d);
    hodei_db_statement_cache(r->common->database_prepare);
    r->instance = hodei_daemon_instance(d);
    snprintf(r->batch_max_text, sizeof r->batch_max_text, "%" PRId64, relay_conf.batch_max);
    hodei_buf_init(&r->ids, RELAY_IDS_TEXT_MAX);
    relay_hist_reset(&r->lag);
    if (relay_batch_init(&r->batch, (int)relay_conf.batch_max, err) != HODEI_OK) {
        hodei_buf_fini(&r->ids);
        free(r);
        return HODEI_ERR_NOMEM;
    }
    r->m.published = hodei_daemon_counter(d, "hodei_outbox_published_total",
                                          "Outbox events published to JetStream and marked.");
    static const double fast[] = {HODEI_BUCKETS_FAST};
    r->m.lag = hodei_daemon_histogram(
        d, "hodei_outbox_relay_lag_seconds",
        "Published events' time from their commit to JetStream's acknowledgement.", fast,
        sizeof fast / sizeof fast[0]);
    r->m.failures = hodei_daemon_counter(d, "hodei_outbox_publish_failures_total",
                                         "Batches whose publish failed and was retried.");
    r->m.active = hodei_daemon_gauge(d, "hodei_relay_active",
                                     "1 while this relay holds the lock and publishes.");
    hodei_daemon_set_state(d, r);
    HLOG_INFO("starting: instance=%s batch_max=%" PRId64 " poll_interval_ms=%" PRId64
              " retention_ms=%" PRId64 " lock_key=%" PRId64,
              r->instance, relay_conf.batch_max, relay_conf.poll_interval_ms,
              relay_conf.retention_ms, relay_conf.lock_key);
    return HODEI_OK;
}

void relay_fini(hodei_daemon *d)
{
    relay *r = hodei_daemon_state(d);

    if (!r)
        return;
    relay_log_stats(r);
    PQclear(r->next);
    if (r->conn) {
        PQfinish(r->conn); /* a session advisory lock dies with its session */
        if (r->role == RELAY_ROLE_ACTIVE)
            HLOG_INFO("stopped: advisory lock %" PRId64 " released", r->cfg->lock_key);
    }
    relay_batch_fini(&r->batch);
    hodei_bus_destroy(r->bus);
    hodei_bus_global_shutdown();
    hodei_buf_fini(&r->ids);
    free(r);
    hodei_daemon_set_state(d, NULL);
}
