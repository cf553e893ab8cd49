/* Start-up check: can we open one PostgreSQL connection within
 * database.connect_timeout? The message names host, port, database and
 * user, never the password. */
#include "daemon_int.h"

#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/time.h"

static const char *check_db_opt(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val ? o->val : "";
    return "";
}

/* "user@host:port/dbname", with libpq's defaults where the URL is silent. */
static void check_db_describe(const PQconninfoOption *opts, char *out, size_t out_len)
{
    const char *host = check_db_opt(opts, "host");
    const char *port = check_db_opt(opts, "port");
    const char *user = check_db_opt(opts, "user");
    const char *dbname = check_db_opt(opts, "dbname");
    if (!*host)
        host = check_db_opt(opts, "hostaddr");
    snprintf(out, out_len, "%s%s%s:%s/%s", user, *user ? "@" : "", *host ? host : "localhost",
             *port ? port : "5432", *dbname ? dbname : (*user ? user : "(default)"));
}

/* Waits until the socket is ready as libpq asks, the deadline passes, or a
 * stop is requested. Returns the reason it could not go on, or NULL. */
static const char *check_db_wait(PGconn *conn, PostgresPollingStatusType want, hodei_daemon *d,
                                 int64_t deadline_ms)
{
    struct pollfd fds[2] = {
        {.fd = PQsocket(conn), .events = want == PGRES_POLLING_READING ? POLLIN : POLLOUT},
        {.fd = d->stop_fd, .events = POLLIN},
    };
    for (;;) {
        int64_t left_ms = deadline_ms - hodei_mono_ms();
        if (left_ms <= 0)
            return "timed out";
        int r = poll(fds, 2, (int)left_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return strerror(errno);
        if (fds[1].revents & POLLIN)
            return "stop requested";
        if (r > 0)
            return NULL;
    }
}

/* Runs libpq's non-blocking connect so the deadline and a stop request both
 * cut it short. Returns NULL when connected, else the reason. */
static const char *check_db_connect(PGconn *conn, hodei_daemon *d)
{
    int64_t deadline_ms = hodei_mono_ms() + d->common.database_connect_timeout_ms;
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    if (PQstatus(conn) == CONNECTION_BAD)
        return PQerrorMessage(conn);
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED)
            return PQerrorMessage(conn);
        const char *why = check_db_wait(conn, ps, d, deadline_ms);
        if (why)
            return why;
        ps = PQconnectPoll(conn);
    }
    return NULL;
}

static PGconn *check_db_start(const hodei_daemon *d)
{
    char timeout_s[32];
    snprintf(timeout_s, sizeof timeout_s, "%" PRId64,
             (d->common.database_connect_timeout_ms + 999) / 1000);
    const char *const keys[] = {"dbname", "connect_timeout", "fallback_application_name", NULL};
    const char *const vals[] = {d->common.database_url, timeout_s, d->svc->name, NULL};
    return PQconnectStartParams(keys, vals, 1);
}

static PQconninfoOption *check_db_parse(const hodei_daemon *d)
{
    char *parse_err = NULL;
    PQconninfoOption *opts = PQconninfoParse(d->common.database_url, &parse_err);
    if (!opts) {
        /* libpq's text may quote part of the URL, password included. */
        PQfreemem(parse_err);
        fprintf(stderr,
                "%s: configuration error: database.url is not a valid PostgreSQL URI "
                "or connection string\n",
                d->svc->name);
    }
    return opts;
}

int daemon_check_db_url(const hodei_daemon *d)
{
    PQconninfoOption *opts = check_db_parse(d);
    PQconninfoFree(opts);
    return opts ? DAEMON_EXIT_OK : DAEMON_EXIT_USAGE;
}

int daemon_check_db(hodei_daemon *d)
{
    PQconninfoOption *opts = check_db_parse(d);
    if (!opts)
        return DAEMON_EXIT_USAGE;
    int rc = DAEMON_EXIT_FAILURE;
    char where[DAEMON_DESCRIBE_MAX], reason[DAEMON_REASON_MAX];
    check_db_describe(opts, where, sizeof where);
    PGconn *conn = check_db_start(d);
    const char *why = conn ? check_db_connect(conn, d) : "out of memory";
    if (!why) {
        HLOG_INFO("database reachable at %s", where);
        rc = DAEMON_EXIT_OK;
    } else if (hodei_daemon_stopping(d)) {
        rc = DAEMON_EXIT_OK;
    } else if (strcmp(why, "timed out") == 0) {
        snprintf(reason, sizeof reason, "no connection within %" PRId64 "ms",
                 d->common.database_connect_timeout_ms);
        fprintf(stderr, "%s: cannot reach the database at %s (%s)\n", d->svc->name, where, reason);
    } else {
        daemon_redact(why, check_db_opt(opts, "password"), reason, sizeof reason);
        fprintf(stderr, "%s: cannot reach the database at %s (%s)\n", d->svc->name, where, reason);
    }
    PQfinish(conn);
    PQconninfoFree(opts);
    return rc;
}
