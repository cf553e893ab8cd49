/* The connection pool: at most `size` connections, opened lazily, handed out
 * one caller at a time. Idle connections wait in a stack; a caller finding
 * none free opens a new one while under the limit, else waits on a condvar.
 * Connecting happens outside the lock (a slot is reserved first). */
#include "db_int.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hodei/assert.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/sync.h"
#include "hodei/time.h"

#define DB_POOL_SIZE_MAX 256

struct hodei_db {
    char *url;
    int size;
    int64_t connect_timeout_ms;
    pthread_mutex_t mu;
    pthread_cond_t freed;
    int open; /* idle + handed out + being opened */
    int idle_len;
    PGconn *idle[DB_POOL_SIZE_MAX];
};

hodei_status hodei_db_create(const char *url, int size, int64_t connect_timeout_ms, hodei_db **out,
                             hodei_err *err)
{
    hodei_status st = HODEI_ERR_NOMEM;
    *out = NULL;
    if (size < 1 || size > DB_POOL_SIZE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "database pool size: %d not in 1..%d", size,
                             DB_POOL_SIZE_MAX);
    PQconninfoOption *check = url ? PQconninfoParse(url, NULL) : NULL;
    if (!check)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "database url: not a valid libpq connection string or URI");
    PQconninfoFree(check);
    hodei_db *db = calloc(1, sizeof *db);
    if (!db)
        goto out_nomem;
    db->url = strdup(url);
    if (!db->url)
        goto out_free_db;
    db->size = size;
    db->connect_timeout_ms =
        connect_timeout_ms > 0 ? connect_timeout_ms : DB_CONNECT_TIMEOUT_DEFAULT_MS;
    pthread_mutex_init(&db->mu, NULL);
    hodei_cond_init_monotonic(&db->freed);
    *out = db;
    return HODEI_OK;

out_free_db:
    free(db);
out_nomem:
    return hodei_err_set(err, st, "database pool: out of memory");
}

void hodei_db_destroy(hodei_db *db)
{
    if (!db)
        return;
    pthread_mutex_lock(&db->mu);
    /* Every connection must be released before the pool goes. */
    HODEI_ASSERT(db->open == db->idle_len);
    for (int i = 0; i < db->idle_len; i++)
        PQfinish(db->idle[i]);
    pthread_mutex_unlock(&db->mu);
    pthread_cond_destroy(&db->freed);
    pthread_mutex_destroy(&db->mu);
    free(db->url);
    free(db);
}

/* An idle pooled connection should have nothing to say. Anything readable
 * (most often PostgreSQL's "terminating connection" before it closes the
 * socket) means it is better replaced than trusted. */
static bool db_idle_usable(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)
        return false;
    struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
    return poll(&pfd, 1, 0) == 0;
}

static void db_deadline(struct timespec *ts, int64_t timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(timeout_ms / 1000);
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Under db->mu: takes an idle connection (*conn set), reserves a slot to open
 * one (*conn NULL, returns HODEI_OK), or waits; HODEI_ERR_TIMEOUT at deadline. */
static hodei_status db_pool_take(hodei_db *db, const struct timespec *deadline, PGconn **conn)
{
    *conn = NULL;
    for (;;) {
        if (db->idle_len > 0) {
            *conn = db->idle[--db->idle_len];
            return HODEI_OK;
        }
        if (db->open < db->size) {
            db->open++;
            return HODEI_OK;
        }
        int rc = pthread_cond_timedwait(&db->freed, &db->mu, deadline);
        if (rc == ETIMEDOUT && db->idle_len == 0 && db->open >= db->size)
            return HODEI_ERR_TIMEOUT;
    }
}

/* Under db->mu: gives back a slot whose connection is gone. */
static void db_pool_drop_slot(hodei_db *db)
{
    HODEI_ASSERT(db->open > 0);
    db->open--;
    pthread_cond_signal(&db->freed);
}

hodei_status hodei_db_acquire(hodei_db *db, int64_t timeout_ms, PGconn **out, hodei_err *err)
{
    struct timespec deadline;
    PGconn *conn = NULL;
    *out = NULL;
    db_deadline(&deadline, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&db->mu);
    hodei_status st = db_pool_take(db, &deadline, &conn);
    pthread_mutex_unlock(&db->mu);
    if (st != HODEI_OK)
        return hodei_err_set(err, HODEI_ERR_TIMEOUT,
                             "database pool: all %d connections busy for %lld ms", db->size,
                             (long long)timeout_ms);
    if (conn && db_idle_usable(conn)) {
        *out = conn;
        return HODEI_OK;
    }
    if (conn) { /* stale: replace it, keeping its slot */
        HLOG_INFO("database connection lost while idle; reconnecting");
        PQfinish(conn);
    }
    st = db_conn_open(db->url, db->connect_timeout_ms, &conn, err);
    if (st != HODEI_OK) {
        pthread_mutex_lock(&db->mu);
        db_pool_drop_slot(db);
        pthread_mutex_unlock(&db->mu);
        return st;
    }
    *out = conn;
    return HODEI_OK;
}

void hodei_db_release(hodei_db *db, PGconn *conn, bool broken)
{
    if (!conn)
        return;
    if (!broken && (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) != PQTRANS_IDLE)) {
        HLOG_WARN("database connection released inside a transaction or broken; closing it");
        broken = true;
    }
    pthread_mutex_lock(&db->mu);
    if (broken) {
        PQfinish(conn);
        db_pool_drop_slot(db);
    } else {
        HODEI_ASSERT(db->idle_len < db->size);
        db->idle[db->idle_len++] = conn;
        pthread_cond_signal(&db->freed);
    }
    pthread_mutex_unlock(&db->mu);
}
