/* Who is active: the supervisor holding PostgreSQL session advisory lock
 * supervisor.lock_key on its own connection. Every check runs on that same
 * connection, so work is fenced by the lock: when the session dies, both
 * the lock and any open transaction go with it, and a standby (retrying
 * every SUP_LOCK_RETRY_MS) takes over. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/log.h"
#include "sup_int.h"

/* Session settings of the dedicated connection: no check waits long for a
 * row another service holds, and no statement runs away. */
#define SUP_SESSION_SQL                                                                            \
    "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)"

void sup_leader_backoff(sup *s)
{
    hodei_daemon_backoff(s->d, &s->backoff_ms, SUP_BACKOFF_MIN_MS, SUP_BACKOFF_MAX_MS);
}

static hodei_status sup_leader_open(sup *s, hodei_err *err)
{
    char lock_ms[SUP_INT_TEXT_MAX], stmt_ms[SUP_INT_TEXT_MAX];
    const char *params[] = {lock_ms, stmt_ms};
    hodei_status st = hodei_db_connect(s->common->database_url,
                                       s->common->database_connect_timeout_ms, &s->conn, err);
    if (st != HODEI_OK) {
        s->conn = NULL;
        return st;
    }
    sup_i64_text(SUP_LOCK_TIMEOUT_MS, lock_ms);
    sup_i64_text(SUP_STATEMENT_TIMEOUT_MS, stmt_ms);
    st = hodei_db_lock_session(s->conn, err); /* a vanished host frees the lock */
    return st == HODEI_OK ? hodei_db_exec(s->conn, SUP_SESSION_SQL, 2, params, NULL, err) : st;
}

void sup_leader_drop(sup *s, const char *why)
{
    if (s->role == SUP_ROLE_ACTIVE)
        HLOG_WARN("database connection lost, leadership given up, re-acquiring: %s", why);
    else
        HLOG_WARN("database unavailable, retrying: %s", why);
    hodei_daemon_report(s->d, "database", false, why);
    PQfinish(s->conn);
    s->conn = NULL;
    s->role = SUP_ROLE_NONE;
    hodei_metric_set(s->m_active, 0);
}

void sup_leader_close(sup *s)
{
    if (!s->conn)
        return;
    PQfinish(s->conn); /* a session advisory lock dies with its session */
    s->conn = NULL;
    if (s->role == SUP_ROLE_ACTIVE)
        HLOG_INFO("stopped: advisory lock %" PRId64 " released", s->cfg->lock_key);
    s->role = SUP_ROLE_NONE;
    hodei_metric_set(s->m_active, 0);
}

static hodei_status sup_leader_try_lock(sup *s, bool *got, hodei_err *err)
{
    char key[SUP_INT_TEXT_MAX];
    const char *params[] = {key};
    PGresult *res = NULL;

    sup_i64_text(s->cfg->lock_key, key);
    hodei_status st =
        hodei_db_exec(s->conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res, err);
    if (st == HODEI_OK)
        *got = strcmp(hodei_db_get_str(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}

static void sup_leader_standby(sup *s)
{
    if (s->role != SUP_ROLE_STANDBY)
        HLOG_INFO("standby: another supervisor holds advisory lock %" PRId64 " (instance=%s)",
                  s->cfg->lock_key, s->instance);
    s->role = SUP_ROLE_STANDBY;
    hodei_metric_set(s->m_active, 0);
    hodei_daemon_wait(s->d, SUP_LOCK_RETRY_MS);
}

void sup_leader_acquire(sup *s)
{
    hodei_err e = {0};
    bool got = false;

    if (!s->conn && sup_leader_open(s, &e) != HODEI_OK)
        goto out_drop;
    if (sup_leader_try_lock(s, &got, &e) != HODEI_OK)
        goto out_drop;
    s->backoff_ms = 0;
    hodei_daemon_report(s->d, "database", true, NULL);
    if (!got) {
        sup_leader_standby(s);
        return;
    }
    s->role = SUP_ROLE_ACTIVE;
    hodei_metric_set(s->m_active, 1);
    memset(s->last_err, 0, sizeof s->last_err);
    HLOG_INFO("active: holding advisory lock %" PRId64 " (instance=%s)", s->cfg->lock_key,
              s->instance);
    return;

out_drop:
    if (s->conn)
        sup_leader_drop(s, e.msg);
    else {
        HLOG_WARN("database unavailable, retrying: %s", e.msg);
        hodei_daemon_report(s->d, "database", false, e.msg);
    }
    sup_leader_backoff(s);
}
