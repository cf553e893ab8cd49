/* hodei-migrate: applies the schema migrations compiled into it, and makes
 * the first admin API key (the bootstrap: no key exists to ask the edge).
 *
 *   hodei-migrate [--database-url URL] [--status] [--help]
 *   hodei-migrate --create-admin-key NAME [--replace]
 *
 * Exit 0 when the schema is up to date (and the key made), 1 when the
 * database cannot be reached or a migration fails, 2 on bad usage, 3 when
 * the key cannot be made (e.g. an active key already has that name). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/auth.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/store_keys.h"

#define MIGRATE_DEFAULT_URL "postgresql://hodei@127.0.0.1:5432/hodei"
#define MIGRATE_CONNECT_TIMEOUT_MS 5000

typedef struct {
    const char *url;
    bool status;
    const char *admin_key; /* --create-admin-key NAME */
    bool replace;          /* --replace: revoke an active key of that name first */
} migrate_opts;

static void migrate_usage(FILE *f)
{
    fprintf(f,
            "usage: hodei-migrate [--database-url URL] [--status] [--help]\n"
            "       hodei-migrate [--database-url URL] --create-admin-key NAME [--replace]\n"
            "  Applies the schema migrations built into this binary (up to version %d).\n"
            "  --database-url URL      PostgreSQL URL (default: $HODEI_DATABASE_URL, else\n"
            "                          " MIGRATE_DEFAULT_URL ")\n"
            "  --status                show applied and pending migrations; change nothing\n"
            "  --create-admin-key NAME then make an API key with scope admin named NAME and\n"
            "                          print it alone on stdout: it is shown this once\n"
            "  --replace               with --create-admin-key: revoke an active key of that\n"
            "                          name first (else that is an error)\n"
            "exit: 0 done, 1 database unreachable or migration failed, 2 bad usage,\n"
            "      3 the key could not be made\n",
            hodei_db_schema_version());
}

/* Returns -1 to continue, else the exit code. */
static int migrate_parse_args(int argc, char **argv, migrate_opts *o)
{
    const char *env = getenv("HODEI_DATABASE_URL");
    o->url = env && *env ? env : MIGRATE_DEFAULT_URL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            migrate_usage(stdout);
            return 0;
        } else if (strcmp(a, "--status") == 0) {
            o->status = true;
        } else if (strcmp(a, "--replace") == 0) {
            o->replace = true;
        } else if (strcmp(a, "--create-admin-key") == 0 && i + 1 < argc) {
            o->admin_key = argv[++i];
            hodei_err err;
            if (hodei_key_name_check("--create-admin-key", o->admin_key, &err) != HODEI_OK) {
                fprintf(stderr, "hodei-migrate: %s\n", err.msg);
                return 2;
            }
        } else if (strcmp(a, "--database-url") == 0 && i + 1 < argc && argv[i + 1][0]) {
            o->url = argv[++i];
        } else if (strncmp(a, "--database-url=", 15) == 0 && a[15]) {
            o->url = a + 15;
        } else {
            fprintf(stderr, "hodei-migrate: %s: %s\n", a,
                    strncmp(a, "--database-url", 14) == 0  ? "needs a URL"
                    : strcmp(a, "--create-admin-key") == 0 ? "needs a NAME"
                                                           : "unknown argument");
            migrate_usage(stderr);
            return 2;
        }
    }
    if ((o->replace && !o->admin_key) || (o->admin_key && o->status)) {
        fprintf(stderr, "hodei-migrate: %s\n",
                o->status ? "--status and --create-admin-key do not go together"
                          : "--replace: only with --create-admin-key NAME");
        return 2;
    }
    return -1;
}

static int migrate_list_applied(PGconn *conn, const char *where, int *applied)
{
    hodei_err err;
    PGresult *r = NULL;
    hodei_status st =
        hodei_db_exec(conn,
                      "SELECT version, name, to_char(applied_at AT TIME ZONE 'UTC', "
                      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM schema_migrations ORDER BY version",
                      0, NULL, &r, &err);
    if (st != HODEI_OK) {
        fprintf(stderr, "hodei-migrate: reading schema_migrations at %s: %s\n", where, err.msg);
        return 1;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t v = hodei_db_get_i64(r, i, 0);
        printf("applied  %04lld_%s  %s\n", (long long)v, hodei_db_get_str(r, i, 1),
               hodei_db_get_str(r, i, 2));
        if (v <= hodei_db_schema_version())
            (*applied)++;
    }
    PQclear(r);
    return 0;
}

static int migrate_show_status(PGconn *conn, const char *where)
{
    hodei_err err;
    PGresult *r = NULL;
    if (hodei_db_exec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &r,
                      &err) != HODEI_OK) {
        fprintf(stderr, "hodei-migrate: %s: %s\n", where, err.msg);
        return 1;
    }
    bool exists = strcmp(hodei_db_get_str(r, 0, 0), "t") == 0;
    PQclear(r);
    int applied = 0;
    if (exists && migrate_list_applied(conn, where, &applied) != 0)
        return 1;
    printf("%s: %d applied, %d pending (this binary knows up to version %d)\n", where, applied,
           hodei_db_schema_version() - applied, hodei_db_schema_version());
    return 0;
}

static int migrate_apply(PGconn *conn, const char *where, bool quiet_stdout)
{
    FILE *out = quiet_stdout ? stderr : stdout;
    hodei_err err;
    int applied = 0;
    if (hodei_db_migrate(conn, &applied, &err) != HODEI_OK) {
        fprintf(stderr, "hodei-migrate: %s: %s\n", where, err.msg);
        if (applied > 0)
            fprintf(stderr, "hodei-migrate: %d migration(s) were applied before the failure\n",
                    applied);
        return 1;
    }
    if (applied > 0)
        fprintf(out, "hodei-migrate: applied %d migration(s); schema at version %d (%s)\n", applied,
                hodei_db_schema_version(), where);
    else
        fprintf(out, "hodei-migrate: schema up to date at version %d (%s)\n",
                hodei_db_schema_version(), where);
    return 0;
}

/* The first admin key, printed alone on stdout; everything else on stderr. */
static int migrate_admin_key(PGconn *conn, const migrate_opts *o)
{
    hodei_err err;
    char key[HODEI_APIKEY_BUF], id[HODEI_ID_BUF];
    hodei_key_spec k = {.name = o->admin_key,
                        .owner = "created by hodei-migrate --create-admin-key",
                        .scopes = HODEI_SCOPE_ADMIN};
    hodei_store_actor by = {.actor = "hodei-migrate", .actor_id = "", .peer = ""};
    hodei_status st = hodei_db_begin(conn, &err);
    if (st == HODEI_OK)
        st = hodei_store_key_create(conn, &k, o->replace, &by, key, id, &err);
    if (st == HODEI_OK)
        st = hodei_db_commit(conn, &err);
    else
        hodei_db_rollback(conn);
    if (st != HODEI_OK) {
        fprintf(stderr, "hodei-migrate: --create-admin-key: %s\n", err.msg);
        return 3;
    }
    printf("%s\n", key);
    fflush(stdout);
    fprintf(stderr,
            "hodei-migrate: admin key %s created (id %s); it is shown only this once: keep it\n"
            "  (hodei --api-key KEY, or HODEI_API_KEY=KEY; more keys: hodei keys create)\n",
            o->admin_key, id);
    return 0;
}

int main(int argc, char **argv)
{
    migrate_opts o = {0};
    int rc = migrate_parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    hodei_log_init("migrate", HODEI_LOG_INFO);
    char where[256];
    hodei_db_describe(o.url, where, sizeof where);
    hodei_err err;
    PGconn *conn = NULL;
    if (hodei_db_connect(o.url, MIGRATE_CONNECT_TIMEOUT_MS, &conn, &err) != HODEI_OK) {
        fprintf(stderr, "hodei-migrate: %s\n", err.msg);
        return 1;
    }
    rc = o.status ? migrate_show_status(conn, where)
                  : migrate_apply(conn, where, o.admin_key != NULL);
    if (rc == 0 && o.admin_key)
        rc = migrate_admin_key(conn, &o);
    PQfinish(conn);
    return rc;
}
