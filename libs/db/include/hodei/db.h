/* PostgreSQL access: a small pool of libpq connections, parameterized
 * queries only (PQexecParams, never string-built SQL with user values),
 * transactions, SQLSTATE mapped to suite statuses, and the schema migrations
 * (embedded in the binary at build time from migrations/NNNN_name.sql).
 *
 * A connection that failed at the socket level is dropped by release(broken)
 * and replaced on the next acquire, so a PostgreSQL restart heals by itself. */
#ifndef HODEI_DB_H
#define HODEI_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/status.h"

typedef struct hodei_db hodei_db;

/* url: libpq conninfo or URI. size: 1..256 connections, opened lazily. */
hodei_status hodei_db_create(const char *url, int size, int64_t connect_timeout_ms, hodei_db **out,
                             hodei_err *err);
void hodei_db_destroy(hodei_db *db);

/* Waits up to timeout_ms for a free connection (connecting if needed).
 * HODEI_ERR_UNAVAILABLE when the server cannot be reached, HODEI_ERR_TIMEOUT
 * when all connections stay busy. */
hodei_status hodei_db_acquire(hodei_db *db, int64_t timeout_ms, PGconn **out, hodei_err *err);
/* broken = true closes the connection instead of returning it (set it when a
 * call on it reported HODEI_ERR_UNAVAILABLE, or a transaction is left open). */
void hodei_db_release(hodei_db *db, PGconn *conn, bool broken);

/* One open connection outside any pool (for LISTEN, advisory locks, tools). */
hodei_status hodei_db_connect(const char *url, int64_t connect_timeout_ms, PGconn **out,
                              hodei_err *err);
/* Makes conn fit to hold a session advisory lock that elects a leader (the
 * relay, the supervisor): the server probes an idle client every few
 * seconds (tcp_keepalives_*) and drops one that does not acknowledge what
 * it sent (tcp_user_timeout), so when the leader's host vanishes (power,
 * network) its session, and with it the lock, is gone in about
 * HODEI_DB_LOCK_DEAD_S seconds instead of the kernel's two hours; a standby
 * then takes over. Over a Unix socket the settings do nothing (a local
 * peer's death closes the socket at once). */
#define HODEI_DB_LOCK_DEAD_S 15
hodei_status hodei_db_lock_session(PGconn *conn, hodei_err *err);

/* Runs sql with text parameters (NULL entry = SQL NULL). On success *res
 * holds the result (PQclear it); res may be NULL when no rows are wanted.
 * Errors: HODEI_ERR_EXISTS (23505 unique violation), HODEI_ERR_INVALID (22xxx,
 * 23xxx other), HODEI_ERR_UNAVAILABLE (connection lost, 08xxx, 57P0x),
 * HODEI_ERR_CONFLICT (40001/40P01 serialization failure, deadlock: the
 * server rolled the transaction back; see hodei_db_conflict_retry),
 * HODEI_ERR_INTERNAL otherwise; err->msg holds PostgreSQL's primary message. */
hodei_status hodei_db_exec(PGconn *conn, const char *sql, int n_params, const char *const *params,
                           PGresult **res, hodei_err *err);
/* hodei_db_exec and hodei_db_exec_bin prepare each statement text on its
 * first run on a connection and execute the prepared statement afterwards
 * (up to 96 texts per connection; texts holding ';' always run unprepared).
 * Off switch, for poolers that cannot keep prepared statements (PgBouncer in
 * transaction mode): call before any query. */
void hodei_db_statement_cache(bool on);
/* As hodei_db_exec with per-parameter lengths and formats (1 = binary), for
 * bytea payloads. */
hodei_status hodei_db_exec_bin(PGconn *conn, const char *sql, int n_params,
                               const char *const *params, const int *lengths, const int *formats,
                               PGresult **res, hodei_err *err);

/* Prepared statements, for a hot statement on a connection the caller owns
 * (prepare once after connecting; a prepared statement lives as long as its
 * connection). Errors as hodei_db_exec. */
hodei_status hodei_db_prepare(PGconn *conn, const char *name, const char *sql, int n_params,
                              hodei_err *err);
hodei_status hodei_db_exec_prepared(PGconn *conn, const char *name, int n_params,
                                    const char *const *params, PGresult **res, hodei_err *err);

/* Statements sent together and answered in one round trip (libpq pipeline
 * mode), run in order; each text goes through the statement cache as with
 * hodei_db_exec. Its rows go to *res when res is set (NULL on failure);
 * *ran, when set, says whether that statement ran and succeeded (so a
 * caller can tell which one failed).
 * Returns the first failure (statuses as hodei_db_exec); the statements
 * after it are skipped. Inside an explicit transaction a failure leaves it
 * aborted: roll back. A pipeline holds at most HODEI_DB_PIPELINE_MAX. */
#define HODEI_DB_PIPELINE_MAX 8
typedef struct {
    const char *sql;
    int n_params;
    const char *const *params;
    PGresult **res;
    bool *ran;
} hodei_db_cmd;
hodei_status hodei_db_pipeline(PGconn *conn, const hodei_db_cmd *cmds, size_t n, hodei_err *err);

hodei_status hodei_db_begin(PGconn *conn, hodei_err *err);
hodei_status hodei_db_commit(PGconn *conn, hodei_err *err);
void hodei_db_rollback(PGconn *conn);

/* A transaction that lost a conflict (HODEI_ERR_CONFLICT: a deadlock or a
 * serialization failure) wrote nothing and is run again from BEGIN, never
 * judged as refused:
 *
 *     int tries = 0;
 *     do
 *         st = my_transaction(conn, ..., err); // rolled back on failure
 *     while (hodei_db_conflict_retry(st, &tries));
 *
 * true (after a jittered wait of 2-4 ms, doubling with each try) while st is
 * HODEI_ERR_CONFLICT and fewer than HODEI_DB_CONFLICT_RETRY_MAX retries were
 * made; the caller's status after the last try stays HODEI_ERR_CONFLICT, a
 * transient error (gRPC ABORTED) its own caller retries later. */
#define HODEI_DB_CONFLICT_RETRY_MAX 5
bool hodei_db_conflict_retry(hodei_status st, int *tries);

/* true when the status means "the connection is gone; release(broken)". */
bool hodei_db_status_broken(hodei_status st);
/* The connection's own state as a status, for releasing it after several
 * calls whose statuses were handled one by one: HODEI_OK while it is open,
 * HODEI_ERR_UNAVAILABLE once it broke. */
hodei_status hodei_db_conn_status(PGconn *conn);

/* Applies every migration not yet applied, in order, each in its own
 * transaction, under an advisory lock (concurrent callers wait, then find
 * nothing to do). Records them in schema_migrations. *applied_out (may be
 * NULL) gets how many ran now. */
hodei_status hodei_db_migrate(PGconn *conn, int *applied_out, hodei_err *err);
/* The highest migration version compiled into this binary. */
int hodei_db_schema_version(void);

/* Helpers for reading results. */
int64_t hodei_db_get_i64(const PGresult *res, int row, int col);     /* NULL -> 0 */
const char *hodei_db_get_str(const PGresult *res, int row, int col); /* NULL -> "" */
bool hodei_db_is_null(const PGresult *res, int row, int col);

/* A description of the server in url safe to log: host, port, database, user;
 * never the password. */
void hodei_db_describe(const char *url, char *out, size_t out_len);

#endif
