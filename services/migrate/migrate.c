/* hodei-migrate's work (migrate.h): one connection, then the status, or
 * the migrations libs/db embeds and the first admin key. */
#include "migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/auth.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/store_keys.h"

#define MIGRATE_CONNECT_TIMEOUT_MS 5000

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
static int migrate_admin_key(PGconn *conn)
{
    hodei_err err;
    char key[HODEI_APIKEY_BUF], id[HODEI_ID_BUF];
    hodei_key_spec k = {.name = migrate_admin_name,
                        .owner = "created by hodei-migrate --create-admin-key",
                        .scopes = HODEI_SCOPE_ADMIN};
    hodei_store_actor by = {.actor = "hodei-migrate", .actor_id = "", .peer = ""};
    hodei_status st = hodei_db_begin(conn, &err);
    if (st == HODEI_OK)
        st = hodei_store_key_create(conn, &k, migrate_replace, &by, key, id, &err);
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
            migrate_admin_name, id);
    return 0;
}

/* The flags that do not go together, and the key's name: exit 2 with a
 * message, as any other bad usage. */
static int migrate_check_usage(void)
{
    hodei_err err;
    if (migrate_replace && !migrate_admin_name) {
        fprintf(stderr, "hodei-migrate: --replace: only with --create-admin-key NAME\n");
        return 2;
    }
    if (migrate_admin_name && migrate_status) {
        fprintf(stderr, "hodei-migrate: --status and --create-admin-key do not go together\n");
        return 2;
    }
    if (migrate_admin_name &&
        hodei_key_name_check("--create-admin-key", migrate_admin_name, &err) != HODEI_OK) {
        fprintf(stderr, "hodei-migrate: %s\n", err.msg);
        return 2;
    }
    return 0;
}

int migrate_run(void)
{
    int rc = migrate_check_usage();
    if (rc != 0)
        return rc;
    char where[256];
    hodei_db_describe(migrate_url, where, sizeof where);
    hodei_err err;
    PGconn *conn = NULL;
    if (hodei_db_connect(migrate_url, MIGRATE_CONNECT_TIMEOUT_MS, &conn, &err) != HODEI_OK) {
        fprintf(stderr, "hodei-migrate: %s\n", err.msg);
        return 1;
    }
    rc = migrate_status ? migrate_show_status(conn, where)
                        : migrate_apply(conn, where, migrate_admin_name != NULL);
    if (rc == 0 && migrate_admin_name)
        rc = migrate_admin_key(conn);
    PQfinish(conn);
    return rc;
}
