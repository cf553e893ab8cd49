/* libs/db private declarations shared by its source files. */
#ifndef HODEI_DB_INT_H
#define HODEI_DB_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/status.h"

/* One embedded migration (generated from migrations/NNNN_name.sql). */
typedef struct {
    int version;
    const char *name;
    const char *sql;
} hodei_db_migration;

extern const hodei_db_migration hodei_db_migrations[];
extern const int hodei_db_migrations_len;

#define DB_CONNECT_TIMEOUT_DEFAULT_MS 5000
#define DB_DESCRIBE_MAX 256

/* Opens one connection, waiting at most timeout_ms; installs the notice
 * processor. HODEI_ERR_INVALID for a malformed url, HODEI_ERR_UNAVAILABLE
 * when the server cannot be reached. Messages never hold the password. */
hodei_status db_conn_open(const char *url, int64_t timeout_ms, PGconn **out, hodei_err *err);

/* Maps a failed result (or NULL result) on conn to a status and message. */
hodei_status db_result_error(PGconn *conn, const PGresult *res, hodei_err *err);

/* The prepared statement for sql on conn, preparing it on first use (see
 * db_stmt.c). NULL: run it unprepared, unless *failed is set: the PREPARE
 * failed (NULL result too: the connection failed, *failed stays NULL but
 * the caller's own run reports it) and *failed is the answer to return. */
const char *db_stmt_name(PGconn *conn, const char *sql, int n_params, PGresult **failed);
/* Drops sql from conn's cache (its prepared statement went stale). */
void db_stmt_forget(PGconn *conn, const char *sql);

#endif
