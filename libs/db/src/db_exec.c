/* Parameterized queries, transactions, SQLSTATE mapping, result helpers. */
#include "db_int.h"

#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/db.h"
#include "hodei/time.h"
#include "hodei/util.h"

/* SQLSTATE (five characters) to suite status, as documented in db.h. */
static hodei_status db_sqlstate_map(const char *s)
{
    if (!s || strlen(s) != 5)
        return HODEI_ERR_INTERNAL;
    if (strcmp(s, "23505") == 0)
        return HODEI_ERR_EXISTS;
    if (strncmp(s, "22", 2) == 0 || strncmp(s, "23", 2) == 0)
        return HODEI_ERR_INVALID;
    if (strncmp(s, "08", 2) == 0 || strncmp(s, "57P0", 4) == 0)
        return HODEI_ERR_UNAVAILABLE;
    if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
        return HODEI_ERR_CONFLICT;
    return HODEI_ERR_INTERNAL;
}

static void db_msg_trim(char *msg)
{
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
}

hodei_status db_result_error(PGconn *conn, const PGresult *res, hodei_err *err)
{
    char msg[HODEI_ERR_MSG_MAX];
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    hodei_strlcpy(msg, primary ? primary : PQerrorMessage(conn), sizeof msg);
    db_msg_trim(msg);
    if (!msg[0])
        hodei_strlcpy(msg, "unknown database error", sizeof msg);
    hodei_status st;
    if (PQstatus(conn) != CONNECTION_OK)
        st = HODEI_ERR_UNAVAILABLE; /* whatever the SQLSTATE, the link is gone */
    else if (!res)
        st = HODEI_ERR_NOMEM;
    else
        st = db_sqlstate_map(PQresultErrorField(res, PG_DIAG_SQLSTATE));
    return hodei_err_set(err, st, "%s", msg);
}

static hodei_status db_result_take(PGconn *conn, PGresult *r, PGresult **res, hodei_err *err)
{
    ExecStatusType es = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
        hodei_status st = db_result_error(conn, r, err);
        PQclear(r);
        return st;
    }
    if (res)
        *res = r;
    else
        PQclear(r);
    return HODEI_OK;
}

hodei_status hodei_db_exec(PGconn *conn, const char *sql, int n_params, const char *const *params,
                           PGresult **res, hodei_err *err)
{
    return hodei_db_exec_bin(conn, sql, n_params, params, NULL, NULL, res, err);
}

hodei_status hodei_db_exec_bin(PGconn *conn, const char *sql, int n_params,
                               const char *const *params, const int *lengths, const int *formats,
                               PGresult **res, hodei_err *err)
{
    HODEI_ASSERT(conn && sql && n_params >= 0 && (n_params == 0 || params));
    if (res)
        *res = NULL;
    PGresult *failed = NULL;
    const char *name = db_stmt_name(conn, sql, n_params, &failed);
    if (failed)
        return db_result_take(conn, failed, res, err);
    PGresult *r = name ? PQexecPrepared(conn, name, n_params, params, lengths, formats, 0)
                       : PQexecParams(conn, sql, n_params, NULL, params, lengths, formats, 0);
    if (name && r && PQresultStatus(r) == PGRES_FATAL_ERROR) {
        /* The schema changed under the prepared statement (0A000) or the
         * server forgot it: prepare afresh next time. */
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && (strcmp(state, "0A000") == 0 || strcmp(state, "26000") == 0))
            db_stmt_forget(conn, sql);
    }
    return db_result_take(conn, r, res, err);
}

hodei_status hodei_db_begin(PGconn *conn, hodei_err *err)
{
    return hodei_db_exec(conn, "BEGIN", 0, NULL, NULL, err);
}

hodei_status hodei_db_commit(PGconn *conn, hodei_err *err)
{
    PGresult *r = NULL;
    hodei_status st = hodei_db_exec(conn, "COMMIT", 0, NULL, &r, err);
    if (st != HODEI_OK)
        return st;
    /* COMMIT of a transaction that already failed answers ROLLBACK. */
    bool rolled_back = strcmp(PQcmdStatus(r), "ROLLBACK") == 0;
    PQclear(r);
    if (rolled_back)
        return hodei_err_set(err, HODEI_ERR_INTERNAL,
                             "commit: the transaction had failed and was rolled back");
    return HODEI_OK;
}

void hodei_db_rollback(PGconn *conn)
{
    if (PQstatus(conn) != CONNECTION_OK || PQtransactionStatus(conn) == PQTRANS_IDLE)
        return;
    PQclear(PQexec(conn, "ROLLBACK"));
}

/* Jitter for the conflict retries: xorshift per thread, seeded from the
 * clock and the thread's own address (two losers of one deadlock must not
 * come back in step). */
static uint32_t db_jitter(uint32_t bound)
{
    static _Thread_local uint32_t x;
    if (x == 0) {
        x = (uint32_t)hodei_mono_ns() ^ (uint32_t)(uintptr_t)&x;
        if (x == 0)
            x = 0x9e3779b9u;
    }
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return bound ? x % bound : 0;
}

bool hodei_db_conflict_retry(hodei_status st, int *tries)
{
    HODEI_ASSERT(tries && *tries >= 0);
    if (st != HODEI_ERR_CONFLICT || *tries >= HODEI_DB_CONFLICT_RETRY_MAX)
        return false;
    int64_t base_ms = (int64_t)2 << *tries; /* 2, 4, 8, 16, 32 */
    (*tries)++;
    hodei_sleep_ms(base_ms + db_jitter((uint32_t)base_ms + 1));
    return true;
}

bool hodei_db_status_broken(hodei_status st)
{
    return st == HODEI_ERR_UNAVAILABLE;
}

hodei_status hodei_db_conn_status(PGconn *conn)
{
    return PQstatus(conn) == CONNECTION_OK ? HODEI_OK : HODEI_ERR_UNAVAILABLE;
}

static void db_cell_check(const PGresult *res, int row, int col)
{
    HODEI_ASSERT(res && row >= 0 && row < PQntuples(res) && col >= 0 && col < PQnfields(res));
}

int64_t hodei_db_get_i64(const PGresult *res, int row, int col)
{
    db_cell_check(res, row, col);
    if (PQgetisnull(res, row, col))
        return 0;
    int64_t v = 0;
    if (!hodei_parse_i64(PQgetvalue(res, row, col), INT64_MIN, INT64_MAX, &v))
        return 0;
    return v;
}

const char *hodei_db_get_str(const PGresult *res, int row, int col)
{
    db_cell_check(res, row, col);
    if (PQgetisnull(res, row, col))
        return "";
    return PQgetvalue(res, row, col);
}

bool hodei_db_is_null(const PGresult *res, int row, int col)
{
    db_cell_check(res, row, col);
    return PQgetisnull(res, row, col) != 0;
}

hodei_status hodei_db_prepare(PGconn *conn, const char *name, const char *sql, int n_params,
                              hodei_err *err)
{
    HODEI_ASSERT(conn && name && sql && n_params >= 0);
    PGresult *r = PQprepare(conn, name, sql, n_params, NULL);
    return db_result_take(conn, r, NULL, err);
}

hodei_status hodei_db_exec_prepared(PGconn *conn, const char *name, int n_params,
                                    const char *const *params, PGresult **res, hodei_err *err)
{
    HODEI_ASSERT(conn && name && n_params >= 0 && (n_params == 0 || params));
    if (res)
        *res = NULL;
    PGresult *r = PQexecPrepared(conn, name, n_params, params, NULL, NULL, 0);
    return db_result_take(conn, r, res, err);
}
