/* Schema migrations embedded at build time (see ../CMakeLists.txt). Each runs
 * in its own transaction with its schema_migrations row, so a migration is
 * either fully applied and recorded, or not at all. A session advisory lock
 * serialises concurrent migrators: the second waits, then finds nothing to do. */
#include "db_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "hodei/db.h"
#include "hodei/log.h"

/* Advisory lock key: "hodeimig" as a big-endian int64. */
#define DB_MIGRATE_LOCK_KEY "7525343889082640743"

static const char db_migrations_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                              " version integer PRIMARY KEY,"
                                              " name text NOT NULL,"
                                              " applied_at timestamptz NOT NULL DEFAULT now())";

int hodei_db_schema_version(void)
{
    return hodei_db_migrations[hodei_db_migrations_len - 1].version;
}

static hodei_status db_migration_applied(PGconn *conn, int version, bool *applied, hodei_err *err)
{
    char v[16];
    snprintf(v, sizeof v, "%d", version);
    const char *params[] = {v};
    PGresult *r = NULL;
    hodei_status st = hodei_db_exec(conn, "SELECT 1 FROM schema_migrations WHERE version = $1", 1,
                                    params, &r, err);
    if (st != HODEI_OK)
        return st;
    *applied = PQntuples(r) > 0;
    PQclear(r);
    return HODEI_OK;
}

/* Runs one migration and records it, in one transaction. */
static hodei_status db_migration_apply(PGconn *conn, const hodei_db_migration *m, hodei_err *err)
{
    char v[16];
    snprintf(v, sizeof v, "%d", m->version);
    const char *params[] = {v, m->name};
    hodei_status st = hodei_db_begin(conn, err);
    if (st != HODEI_OK)
        return st;
    /* PQexec: a migration file holds several statements. */
    PGresult *r = PQexec(conn, m->sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        st = db_result_error(conn, r, err);
    PQclear(r);
    if (st == HODEI_OK)
        st = hodei_db_exec(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                           params, NULL, err);
    if (st == HODEI_OK)
        st = hodei_db_commit(conn, err);
    if (st != HODEI_OK) {
        hodei_db_rollback(conn);
        char detail[HODEI_ERR_MSG_MAX];
        snprintf(detail, sizeof detail, "%s", err ? err->msg : "");
        return hodei_err_set(err, st, "migration %04d_%s: %s", m->version, m->name, detail);
    }
    HLOG_INFO("migration applied version=%d name=%s", m->version, m->name);
    return HODEI_OK;
}

static hodei_status db_migrate_locked(PGconn *conn, int *applied_out, hodei_err *err)
{
    hodei_status st = hodei_db_exec(conn, db_migrations_table_sql, 0, NULL, NULL, err);
    for (int i = 0; st == HODEI_OK && i < hodei_db_migrations_len; i++) {
        bool applied = false;
        st = db_migration_applied(conn, hodei_db_migrations[i].version, &applied, err);
        if (st == HODEI_OK && !applied) {
            st = db_migration_apply(conn, &hodei_db_migrations[i], err);
            if (st == HODEI_OK)
                (*applied_out)++;
        }
    }
    return st;
}

hodei_status hodei_db_migrate(PGconn *conn, int *applied_out, hodei_err *err)
{
    int applied = 0;
    hodei_status st =
        hodei_db_exec(conn, "SELECT pg_advisory_lock(" DB_MIGRATE_LOCK_KEY ")", 0, NULL, NULL, err);
    if (st != HODEI_OK)
        goto out;
    st = db_migrate_locked(conn, &applied, err);
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "SELECT pg_advisory_unlock(" DB_MIGRATE_LOCK_KEY ")"));
out:
    if (applied_out)
        *applied_out = applied;
    return st;
}
