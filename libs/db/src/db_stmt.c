/* Per-connection cache of prepared statements behind hodei_db_exec.
 *
 * The hot statements of the suite run thousands of times a second with the
 * same text; parsing and planning each one again cost about a quarter of the
 * server's CPU under `make bench`. The first run of a text on a connection
 * prepares it under a generated name; later runs execute the prepared
 * statement. The cache lives with the connection (libpq event procedure) and
 * dies with it, so a reconnect starts empty.
 *
 * Texts holding ';' are never prepared (a prepared statement is one command),
 * and a connection caches at most DB_STMT_MAX texts; others run unprepared.
 * A PREPARE that fails is the statement's answer: its error goes to the
 * caller as PQexecParams would have given it (inside a transaction, running
 * the text again would only report the aborted transaction), and nothing is
 * cached, so a later run tries again. A statement forgotten after a schema
 * change stays on the server until the connection closes (one per change). */
#include "db_int.h"

#include <libpq-events.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/db.h"

#define DB_STMT_MAX 96
#define DB_STMT_NAME_MAX 16

typedef struct {
    uint64_t hash;
    char *sql;
    char name[DB_STMT_NAME_MAX];
} db_stmt;

typedef struct {
    db_stmt s[DB_STMT_MAX];
    int n;
    unsigned next_id;
} db_stmt_cache;

static bool db_stmt_enabled = true;

void hodei_db_statement_cache(bool on)
{
    db_stmt_enabled = on;
}

static void db_stmt_cache_clear(db_stmt_cache *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->s[i].sql);
    c->n = 0;
}

static int db_stmt_event(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_CONNDESTROY) {
        PGconn *conn = ((PGEventConnDestroy *)info)->conn;
        db_stmt_cache *c = PQinstanceData(conn, db_stmt_event);
        if (c) {
            db_stmt_cache_clear(c);
            free(c);
        }
    } else if (id == PGEVT_CONNRESET) {
        PGconn *conn = ((PGEventConnReset *)info)->conn;
        db_stmt_cache *c = PQinstanceData(conn, db_stmt_event);
        if (c)
            db_stmt_cache_clear(c);
    }
    return 1;
}

static db_stmt_cache *db_stmt_cache_of(PGconn *conn)
{
    db_stmt_cache *c = PQinstanceData(conn, db_stmt_event);
    if (c)
        return c;
    if (!PQregisterEventProc(conn, db_stmt_event, "hodei_db_stmt", NULL))
        return NULL;
    c = calloc(1, sizeof *c);
    if (c && !PQsetInstanceData(conn, db_stmt_event, c)) {
        free(c);
        c = NULL;
    }
    return c;
}

static uint64_t db_stmt_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

const char *db_stmt_name(PGconn *conn, const char *sql, int n_params, PGresult **failed)
{
    *failed = NULL;
    if (!db_stmt_enabled || strchr(sql, ';'))
        return NULL;
    db_stmt_cache *c = db_stmt_cache_of(conn);
    if (!c)
        return NULL;
    uint64_t h = db_stmt_hash(sql);
    for (int i = 0; i < c->n; i++) {
        if (c->s[i].hash == h && strcmp(c->s[i].sql, sql) == 0)
            return c->s[i].name;
    }
    if (c->n == DB_STMT_MAX || PQtransactionStatus(conn) == PQTRANS_INERROR)
        return NULL;
    db_stmt *s = &c->s[c->n];
    s->sql = strdup(sql);
    if (!s->sql)
        return NULL;
    s->hash = h;
    snprintf(s->name, sizeof s->name, "hodei_%u", c->next_id++);
    PGresult *r = PQprepare(conn, s->name, sql, n_params, NULL);
    if (!r || PQresultStatus(r) != PGRES_COMMAND_OK) {
        free(s->sql);
        *failed = r;
        return NULL;
    }
    PQclear(r);
    c->n++;
    return s->name;
}

void db_stmt_forget(PGconn *conn, const char *sql)
{
    db_stmt_cache *c = PQinstanceData(conn, db_stmt_event);
    if (!c)
        return;
    uint64_t h = db_stmt_hash(sql);
    for (int i = 0; i < c->n; i++) {
        if (c->s[i].hash == h && strcmp(c->s[i].sql, sql) == 0) {
            free(c->s[i].sql);
            c->s[i] = c->s[--c->n];
            return;
        }
    }
}
