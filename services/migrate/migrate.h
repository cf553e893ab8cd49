/* hodei-migrate: applies the schema migrations compiled into it (libs/db)
 * or shows which are applied and pending, and makes the first admin API
 * key (the bootstrap: no key exists to ask the edge). */
#ifndef HODEI_MIGRATE_H
#define HODEI_MIGRATE_H

#include <stdbool.h>

#define MIGRATE_DEFAULT_URL "postgresql://hodei@127.0.0.1:5432/hodei"

extern const char *migrate_url;        /* --database-url, $HODEI_DATABASE_URL, the default */
extern bool migrate_status;            /* --status: show, change nothing */
extern const char *migrate_admin_name; /* --create-admin-key NAME; NULL = none */
extern bool migrate_replace;           /* --replace: revoke an active key of that name first */

/* The tool's work; returns the exit code: 0 done, 1 database unreachable
 * or a migration failed, 2 flags that do not go together, 3 the key could
 * not be made (e.g. an active key already has that name). */
int migrate_run(void);

#endif
