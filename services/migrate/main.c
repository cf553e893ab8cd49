/* hodei-migrate: applies the schema migrations compiled into it and makes
 * the first admin API key (the work: migrate.c), on the one-shot tool
 * skeleton (libs/daemon hodei/tool.h). */
#include <stdio.h>

#include "hodei/db.h"
#include "hodei/tool.h"
#include "migrate.h"

const char *migrate_url = MIGRATE_DEFAULT_URL;
bool migrate_status, migrate_replace;
const char *migrate_admin_name;

int main(int argc, char **argv)
{
    const hodei_tool_flag flags[] = {
        {"--database-url", "URL", "HODEI_DATABASE_URL", "PostgreSQL URL", &migrate_url, NULL},
        {"--status", NULL, NULL, "show applied and pending migrations; change nothing", NULL,
         &migrate_status},
        {"--create-admin-key", "NAME", NULL,
         "then make an API key with scope admin named NAME and print it alone on stdout: it is"
         " shown this once",
         &migrate_admin_name, NULL},
        {"--replace", NULL, NULL,
         "with --create-admin-key: revoke an active key of that name first (else an error)", NULL,
         &migrate_replace},
    };
    char summary[128];
    snprintf(summary, sizeof summary,
             "applies the schema migrations built into this binary (up to version %d)",
             hodei_db_schema_version());
    const hodei_tool migrate_tool = {
        .name = "migrate",
        .summary = summary,
        .flags = flags,
        .n_flags = sizeof flags / sizeof flags[0],
        .exit_codes = "0 done, 1 database unreachable or migration failed, 2 bad usage,"
                      " 3 the key could not be made",
        .run = migrate_run,
    };
    return hodei_tool_main(argc, argv, &migrate_tool);
}
