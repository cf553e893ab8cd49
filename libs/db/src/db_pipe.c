/* Several statements in one round trip (libpq pipeline mode). Each text is
 * prepared through the statement cache before the pipeline starts (PREPARE
 * cannot run inside one), so a hot statement is parsed and planned once per
 * connection, as with hodei_db_exec. */
#include "db_int.h"

#include <string.h>

#include "hodei/assert.h"
#include "hodei/db.h"

/* Prepares each text (or learns it runs unprepared); NULL names[i] = run
 * cmds[i] as text. A failed PREPARE is the answer. */
static hodei_status db_pipe_prepare(PGconn *conn, const hodei_db_cmd *cmds, size_t n,
                                    const char **names, hodei_err *err)
{
    for (size_t i = 0; i < n; i++) {
        PGresult *failed = NULL;
        names[i] = db_stmt_name(conn, cmds[i].sql, cmds[i].n_params, &failed);
        if (failed) {
            hodei_status st = db_result_error(conn, failed, err);
            PQclear(failed);
            return st;
        }
    }
    return HODEI_OK;
}

static bool db_pipe_send(PGconn *conn, const hodei_db_cmd *c, const char *name)
{
    if (name)
        return PQsendQueryPrepared(conn, name, c->n_params, c->params, NULL, NULL, 0) == 1;
    return PQsendQueryParams(conn, c->sql, c->n_params, NULL, c->params, NULL, NULL, 0) == 1;
}

/* One command's result (kept or cleared) and the NULL that ends it. The
 * first failure is kept in st/err; a command skipped after it answers
 * PGRES_PIPELINE_ABORTED and adds nothing. */
static void db_pipe_take(PGconn *conn, const hodei_db_cmd *c, const char *name, hodei_status *st,
                         hodei_err *err)
{
    PGresult *r = PQgetResult(conn);
    ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    bool ok = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;

    if (!ok && *st == HODEI_OK) {
        *st = db_result_error(conn, r, err);
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (name && state && (strcmp(state, "0A000") == 0 || strcmp(state, "26000") == 0))
            db_stmt_forget(conn, c->sql); /* stale after a schema change: prepare afresh */
    }
    if (c->ran)
        *c->ran = ok && *st == HODEI_OK;
    if (ok && c->res && *st == HODEI_OK)
        *c->res = r;
    else
        PQclear(r);
    if (r)
        PQclear(PQgetResult(conn)); /* the NULL after each command */
}

hodei_status hodei_db_pipeline(PGconn *conn, const hodei_db_cmd *cmds, size_t n, hodei_err *err)
{
    const char *names[HODEI_DB_PIPELINE_MAX];
    hodei_status st = HODEI_OK;
    size_t sent = 0;

    HODEI_ASSERT(conn && cmds && n > 0 && n <= HODEI_DB_PIPELINE_MAX);
    for (size_t i = 0; i < n; i++) {
        if (cmds[i].res)
            *cmds[i].res = NULL;
        if (cmds[i].ran)
            *cmds[i].ran = false;
    }
    if ((st = db_pipe_prepare(conn, cmds, n, names, err)) != HODEI_OK)
        return st;
    if (PQenterPipelineMode(conn) != 1)
        return db_result_error(conn, NULL, err);
    while (sent < n && db_pipe_send(conn, &cmds[sent], names[sent]))
        sent++;
    if (sent < n || PQpipelineSync(conn) != 1)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "pipeline: %s", PQerrorMessage(conn));
    for (size_t i = 0; i < n; i++)
        db_pipe_take(conn, &cmds[i], names[i], &st, err);
    PGresult *sync = PQgetResult(conn);
    if ((!sync || PQresultStatus(sync) != PGRES_PIPELINE_SYNC) && st == HODEI_OK)
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "pipeline: no sync from the server");
    PQclear(sync);
    if (PQexitPipelineMode(conn) != 1 && st == HODEI_OK)
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "pipeline: cannot leave pipeline mode");
    for (size_t i = 0; st != HODEI_OK && i < n; i++) {
        if (cmds[i].res) {
            PQclear(*cmds[i].res);
            *cmds[i].res = NULL;
        }
    }
    return st;
}
