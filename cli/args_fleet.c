/* The flags of logs, workers and providers: the commands that look at a
 * job's output and at the places jobs run. */
#include <string.h>

#include "args_int.h"
#include "hodei/util.h"

/* ------------------------------------------------------------ logs */

static hodei_status fleet_follow(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->follow = true;
    return HODEI_OK;
}

static hodei_status fleet_from(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    int64_t seq = 0;
    bool digits = value[0] >= '0' && value[0] <= '9';
    if (!digits || !hodei_parse_i64(value, 1, INT64_MAX, &seq)) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a line sequence number (1 = the first line), got %s",
                             flag, args_quote(value, q));
    }
    a->logs.from_sequence = (uint64_t)seq;
    return HODEI_OK;
}

static const args_flag fleet_logs_flags[] = {
    {"--follow", "-f", false, fleet_follow},
    {"--from", NULL, true, fleet_from},
    {"--raw", NULL, false, args_raw},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

hodei_status args_parse_logs(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    hodei_status st = args_parse_flags(a, fleet_logs_flags, argc, argv, i, args_job_id, err);
    if (st != HODEI_OK || a->help)
        return st;
    return args_job_id_required(a, err);
}

/* ------------------------------------------------------------ provider names */

/* A provider name as the server stores it: 1..63 bytes of [a-z0-9-]. */
static hodei_status fleet_provider_name(const char *what, const char *value, hodei_err *err)
{
    size_t n = strlen(value);
    bool ok = n > 0 && n <= CLI_PROVIDER_NAME_MAX;
    for (size_t k = 0; ok && k < n; k++)
        ok = (value[k] >= 'a' && value[k] <= 'z') || (value[k] >= '0' && value[k] <= '9') ||
             value[k] == '-';
    if (!ok) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a provider name (1 to %d of a-z, 0-9, -), got %s", what,
                             CLI_PROVIDER_NAME_MAX, args_quote(value, q));
    }
    return HODEI_OK;
}

/* ------------------------------------------------------------ workers */

static hodei_status fleet_provider(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->workers.provider = (char *)value;
    return fleet_provider_name(flag, value, err);
}

static hodei_status fleet_all(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->all_workers = true;
    return HODEI_OK;
}

static const args_flag fleet_workers_flags[] = {
    {"--provider", NULL, true, fleet_provider},
    {"--all", NULL, false, fleet_all},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

hodei_status args_parse_workers(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    return args_parse_flags(a, fleet_workers_flags, argc, argv, i, args_no_positional, err);
}

/* ------------------------------------------------------------ providers */

/* `providers` alone, or `providers health NAME`. */
static hodei_status fleet_providers_word(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    const char *word = argv[*i];
    if (!a->provider_health) {
        if (strcmp(word, "health") != 0)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "unexpected argument %s for hodei providers (did you mean "
                                 "hodei providers health NAME?)",
                                 args_quote(word, q));
        a->provider_health = true;
        return HODEI_OK;
    }
    if (a->health.name[0] != '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "unexpected argument %s (hodei providers health takes one NAME)",
                             args_quote(word, q));
    a->health.name = argv[*i];
    return fleet_provider_name("NAME", word, err);
}

static const args_flag fleet_providers_flags[] = {
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

hodei_status args_parse_providers(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    hodei_status st =
        args_parse_flags(a, fleet_providers_flags, argc, argv, i, fleet_providers_word, err);
    if (st != HODEI_OK || a->help)
        return st;
    if (a->provider_health && a->health.name[0] == '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "NAME: required (hodei providers health NAME)");
    return HODEI_OK;
}
