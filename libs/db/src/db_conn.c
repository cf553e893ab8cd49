/* Opening connections: libpq's non-blocking connect with our own deadline,
 * and descriptions of a server that never show the password. */
#include "db_int.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

static void db_notice_log(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
        n--;
    HLOG_DEBUG("postgres notice: %.*s", (int)n, message);
}

/* Appends " key=value" to out when the option is set. */
static void db_describe_add(char *out, size_t out_len, const char *key, const char *val)
{
    if (!val || !*val)
        return;
    size_t used = strlen(out);
    if (used >= out_len - 1)
        return;
    snprintf(out + used, out_len - used, "%s%s=%s", used ? " " : "", key, val);
}

void hodei_db_describe(const char *url, char *out, size_t out_len)
{
    if (!out || out_len == 0)
        return;
    out[0] = '\0';
    char *errmsg = NULL;
    PQconninfoOption *opts = url ? PQconninfoParse(url, &errmsg) : NULL;
    if (!opts) {
        hodei_strlcpy(out, "(invalid database url)", out_len);
        PQfreemem(errmsg);
        return;
    }
    const char *host = NULL, *hostaddr = NULL, *port = NULL, *dbname = NULL, *user = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    db_describe_add(out, out_len, "host", host ? host : hostaddr);
    db_describe_add(out, out_len, "port", port);
    db_describe_add(out, out_len, "dbname", dbname);
    db_describe_add(out, out_len, "user", user);
    if (!out[0])
        hodei_strlcpy(out, "(libpq defaults)", out_len);
    PQconninfoFree(opts);
}

/* libpq's multi-line messages ("...\n\tIs the server running...\n") as one
 * line: each newline and the blanks after it become "; ", trailing ones go. */
static void db_msg_flatten(const char *in, char *out, size_t out_len)
{
    size_t o = 0;
    for (const char *p = in; *p && o + 3 < out_len; p++) {
        if (*p != '\n') {
            out[o++] = *p == '\t' ? ' ' : *p;
            continue;
        }
        while (p[1] == '\t' || p[1] == ' ' || p[1] == '\n')
            p++;
        if (p[1]) {
            out[o++] = ';';
            out[o++] = ' ';
        }
    }
    out[o] = '\0';
}

/* Copies libpq's message into err, replacing any occurrence of the url's
 * password by "****" and dropping the trailing newline. */
static void db_msg_scrub(const char *url, const char *msg, char *out, size_t out_len)
{
    db_msg_flatten(msg ? msg : "", out, out_len);
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (!opts)
        return;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "password") != 0 || !o->val || !*o->val)
            continue;
        size_t plen = strlen(o->val);
        for (char *hit = strstr(out, o->val); hit; hit = strstr(hit, o->val)) {
            size_t stars = plen < 4 ? plen : 4;
            memset(hit, '*', stars);
            memmove(hit + stars, hit + plen, strlen(hit + plen) + 1);
            hit += stars;
        }
    }
    PQconninfoFree(opts);
}

/* Drives PQconnectPoll until done or the deadline passes. */
static hodei_status db_conn_poll(PGconn *conn, int64_t deadline_ms)
{
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED)
            return HODEI_ERR_UNAVAILABLE;
        int64_t left_ms = deadline_ms - hodei_mono_ms();
        if (left_ms <= 0)
            return HODEI_ERR_TIMEOUT;
        struct pollfd pfd = {
            .fd = PQsocket(conn),
            .events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT,
        };
        int n = poll(&pfd, 1, left_ms > 1000 ? 1000 : (int)left_ms);
        if (n < 0 && errno != EINTR)
            return HODEI_ERR_UNAVAILABLE;
        if (n > 0)
            ps = PQconnectPoll(conn);
    }
    return HODEI_OK;
}

hodei_status db_conn_open(const char *url, int64_t timeout_ms, PGconn **out, hodei_err *err)
{
    char where[DB_DESCRIBE_MAX];
    char msg[HODEI_ERR_MSG_MAX];
    hodei_status st = HODEI_ERR_UNAVAILABLE;
    *out = NULL;
    PQconninfoOption *check = url ? PQconninfoParse(url, NULL) : NULL;
    if (!check)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "database url: not a valid libpq connection string or URI");
    PQconninfoFree(check);
    hodei_db_describe(url, where, sizeof where);
    if (timeout_ms <= 0)
        timeout_ms = DB_CONNECT_TIMEOUT_DEFAULT_MS;

    /* Keepalives before dbname: the URL's own settings win. A peer that
     * vanished is found in ~25 s idle, 10 s with data unacknowledged. */
    const char *const keys[] = {"keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "dbname",
                                "fallback_application_name",
                                NULL};
    const char *const vals[] = {"10", "5", "3", "10000", url, program_invocation_short_name, NULL};
    PGconn *conn = PQconnectStartParams(keys, vals, 1);
    if (!conn)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "connect to %s: out of memory", where);
    if (PQstatus(conn) != CONNECTION_BAD)
        st = db_conn_poll(conn, hodei_mono_ms() + timeout_ms);
    if (st != HODEI_OK)
        goto out_finish;
    PQsetNoticeProcessor(conn, db_notice_log, NULL);
    *out = conn;
    return HODEI_OK;

out_finish:
    if (st == HODEI_ERR_TIMEOUT)
        hodei_strlcpy(msg, "no answer in time", sizeof msg);
    else
        db_msg_scrub(url, PQerrorMessage(conn), msg, sizeof msg);
    PQfinish(conn);
    return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "cannot connect to PostgreSQL at %s: %s",
                         where, msg);
}

hodei_status hodei_db_connect(const char *url, int64_t connect_timeout_ms, PGconn **out,
                              hodei_err *err)
{
    return db_conn_open(url, connect_timeout_ms, out, err);
}

/* 5 s idle, then a probe every 2 s, 3 unanswered: ~11 s; 12 s for data
 * sent and never acknowledged. Within HODEI_DB_LOCK_DEAD_S. */
hodei_status hodei_db_lock_session(PGconn *conn, hodei_err *err)
{
    return hodei_db_exec(conn,
                         "SELECT set_config('tcp_keepalives_idle', '5', false),"
                         " set_config('tcp_keepalives_interval', '2', false),"
                         " set_config('tcp_keepalives_count', '3', false),"
                         " set_config('tcp_user_timeout', '12000', false)",
                         0, NULL, NULL, err);
}
