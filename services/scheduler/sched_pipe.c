/* A few statements in one round trip (libpq pipeline mode): BEGIN with the
 * lock, the assignment with its COMMIT. The pass's latency is mostly round
 * trips to PostgreSQL. */
#include <string.h>

#include "hodei/util.h"
#include "sched_int.h"

/* The mapping of libs/db (hodei_db_exec), for results read here. */
static hodei_status pipe_error(PGconn *conn, const PGresult *res, hodei_err *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    hodei_status st = HODEI_ERR_INTERNAL;

    if (!msg)
        msg = PQerrorMessage(conn);
    if (res && PQresultStatus(res) == PGRES_PIPELINE_ABORTED)
        msg = "skipped after an earlier error in the pipeline";
    if (PQstatus(conn) != CONNECTION_OK || !res ||
        (state && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0)))
        st = HODEI_ERR_UNAVAILABLE;
    else if (state && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0))
        st = HODEI_ERR_PRECONDITION;
    return hodei_err_set(err, st, "%.*s", (int)strcspn(msg, "\n"), msg);
}

static bool pipe_send(PGconn *conn, const sched_pipe_cmd *c)
{
    if (c->stmt)
        return PQsendQueryPrepared(conn, c->stmt, c->n_params, c->params, NULL, NULL, 0) == 1;
    return PQsendQueryParams(conn, c->sql, 0, NULL, NULL, NULL, NULL, 0) == 1;
}

/* One command's result (kept or cleared) and the NULL that ends it. The
 * first failure is kept in st/err. */
static void pipe_take(PGconn *conn, const sched_pipe_cmd *c, hodei_status *st, hodei_err *err)
{
    PGresult *r = PQgetResult(conn);
    ExecStatusType t = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    bool ok = t == PGRES_COMMAND_OK || t == PGRES_TUPLES_OK;

    if (!ok && *st == HODEI_OK)
        *st = pipe_error(conn, r, err);
    if (ok && c->res && *st == HODEI_OK)
        *c->res = r;
    else
        PQclear(r);
    if (r)
        PQclear(PQgetResult(conn)); /* the NULL after each command */
}

hodei_status sched_pipe_run(PGconn *conn, const sched_pipe_cmd *cmds, size_t n, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    size_t sent = 0;

    if (PQenterPipelineMode(conn) != 1)
        return pipe_error(conn, NULL, err);
    while (sent < n && pipe_send(conn, &cmds[sent]))
        sent++;
    if (sent < n || PQpipelineSync(conn) != 1)
        return pipe_error(conn, NULL, err); /* UNAVAILABLE: the caller drops the link */
    for (size_t i = 0; i < n; i++)
        pipe_take(conn, &cmds[i], &st, err);
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
