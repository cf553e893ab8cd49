/* `hodei keys create NAME --scope S... | list [--all] | revoke ID|NAME`,
 * `hodei whoami`, `hodei audit [--actor A] [--action X] [--since WHEN]
 * [--limit N] [--page-token T]`, and the parsing of times they share. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "args_int.h"
#include "hodei/id.h"
#include "hodei/util.h"

#define KEYS_QUOTE "hodei keys create NAME --scope S | list | revoke ID|NAME"
#define WHEN_DAY_MS INT64_C(86400000)
#define WHEN_MAX_MS (WHEN_DAY_MS * 366 * 100) /* a hundred years */
#define CLI_AUDIT_FILTER_MAX 256

/* ------------------------------------------------------------------- times */

static bool when_absolute(const char *s, int64_t *out_us)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end || strcmp(end, "Z") != 0)
        return false;
    time_t t = timegm(&tm);
    if (t < 0)
        return false;
    *out_us = (int64_t)t * 1000000;
    return true;
}

bool cli_parse_when(const char *s, int64_t now_us, bool ahead, int64_t *out_us)
{
    int64_t ms = 0;
    size_t n = strlen(s);
    if (when_absolute(s, out_us))
        return true;
    if (n >= 2 && s[n - 1] == 'd') {
        char days[24];
        int64_t d = 0;
        if (n - 1 >= sizeof days)
            return false;
        memcpy(days, s, n - 1);
        days[n - 1] = '\0';
        if (!hodei_parse_i64(days, 1, WHEN_MAX_MS / WHEN_DAY_MS, &d))
            return false;
        ms = d * WHEN_DAY_MS;
    } else if (!cli_parse_duration(s, &ms) || ms <= 0 || ms > WHEN_MAX_MS) {
        return false;
    }
    *out_us = ahead ? now_us + ms * 1000 : now_us - ms * 1000;
    return true;
}

static void when_set(Hodei__V1__Timestamp *ts, int64_t us)
{
    hodei__v1__timestamp__init(ts);
    ts->seconds = us / 1000000;
    ts->nanos = (int32_t)(us % 1000000) * 1000;
}

/* -------------------------------------------------------------------- keys */

static hodei_status keys_scope(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    uint32_t bit;
    char q[ARGS_QUOTE_BUF];
    if (!hodei_scope_parse(value, &bit))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: unknown scope %s (jobs:submit, jobs:read, jobs:cancel, "
                             "logs:read, templates:write, secrets:write, admin)",
                             flag, args_quote(value, q));
    for (size_t i = 0; i < a->key_create.n_scopes; i++)
        if (strcmp(a->key_create.scopes[i], value) == 0)
            return HODEI_OK;
    a->key_create.scopes[a->key_create.n_scopes++] = (char *)value; /* 7 scopes: room for all */
    return HODEI_OK;
}

static hodei_status keys_namespace(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    hodei_status st = hodei_ns_check(flag, value, err);
    if (st != HODEI_OK)
        return st;
    if (a->key_create.n_namespaces == HODEI_NS_PER_KEY_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: at most %d", flag, HODEI_NS_PER_KEY_MAX);
    a->key_create.namespaces[a->key_create.n_namespaces++] = (char *)value;
    return HODEI_OK;
}

static hodei_status keys_owner(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->key_create.owner = (char *)value;
    return hodei_key_owner_check(flag, value, err);
}

static hodei_status keys_cert_name(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->key_create.cert_name = (char *)value;
    return hodei_cert_san_check(flag, value, err);
}

static hodei_status keys_expires(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    int64_t us = 0;
    char q[ARGS_QUOTE_BUF];
    if (!cli_parse_when(value, (int64_t)time(NULL) * 1000000, true, &us))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a duration from now (90d, 12h) or a UTC time "
                             "(2027-01-31T00:00:00Z), got %s",
                             flag, args_quote(value, q));
    when_set(&a->key_expires, us);
    a->key_create.expires_at = &a->key_expires;
    return HODEI_OK;
}

static hodei_status keys_all(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->key_list.include_revoked = true;
    return HODEI_OK;
}

static const args_flag keys_flags[] = {
    {"--scope", NULL, true, keys_scope},
    {"--namespace", NULL, true, keys_namespace},
    {"--owner", NULL, true, keys_owner},
    {"--expires", NULL, true, keys_expires},
    {"--cert-name", NULL, true, keys_cert_name},
    {"--all", NULL, false, keys_all},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

static hodei_status keys_word(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    const char *word = argv[*i];
    (void)argc;
    if (a->keys_action == CLI_KEYS_NONE) {
        if (strcmp(word, "create") == 0)
            a->keys_action = CLI_KEYS_CREATE;
        else if (strcmp(word, "list") == 0)
            a->keys_action = CLI_KEYS_LIST;
        else if (strcmp(word, "revoke") == 0)
            a->keys_action = CLI_KEYS_REVOKE;
        else
            return hodei_err_set(err, HODEI_ERR_INVALID, "unknown action %s (" KEYS_QUOTE ")",
                                 args_quote(word, q));
        return HODEI_OK;
    }
    if (a->keys_action == CLI_KEYS_LIST || a->key_create.name[0] || a->key_revoke.id[0] ||
        a->key_revoke.name[0])
        return hodei_err_set(err, HODEI_ERR_INVALID, "unexpected argument %s (" KEYS_QUOTE ")",
                             args_quote(word, q));
    if (a->keys_action == CLI_KEYS_REVOKE && hodei_id_valid(word)) {
        a->key_revoke.id = (char *)word;
        return HODEI_OK;
    }
    if (a->keys_action == CLI_KEYS_REVOKE)
        a->key_revoke.name = (char *)word;
    else
        a->key_create.name = (char *)word;
    return hodei_key_name_check(a->keys_action == CLI_KEYS_REVOKE ? "ID|NAME" : "NAME", word, err);
}

static hodei_status keys_check(cli_args *a, hodei_err *err)
{
    const Hodei__V1__CreateKeyRequest *k = &a->key_create;
    bool create_flags =
        k->n_scopes || k->n_namespaces || k->owner[0] || k->expires_at || k->cert_name[0];
    switch (a->keys_action) {
    case CLI_KEYS_NONE:
        return hodei_err_set(err, HODEI_ERR_INVALID, "missing action (" KEYS_QUOTE ")");
    case CLI_KEYS_CREATE:
        if (!k->name[0])
            return hodei_err_set(err, HODEI_ERR_INVALID, "NAME: required (hodei keys create NAME)");
        if (k->n_scopes == 0)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "--scope: at least one (e.g. --scope jobs:submit --scope "
                                 "jobs:read)");
        break;
    case CLI_KEYS_REVOKE:
        if (!a->key_revoke.id[0] && !a->key_revoke.name[0])
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "ID|NAME: required (hodei keys revoke ID|NAME)");
        /* fall through */
    case CLI_KEYS_LIST:
        if (create_flags)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "--scope, --namespace, --owner, --expires, --cert-name: only with "
                                 "hodei keys create");
        break;
    }
    if (a->key_list.include_revoked && a->keys_action != CLI_KEYS_LIST)
        return hodei_err_set(err, HODEI_ERR_INVALID, "--all: only with hodei keys list");
    return HODEI_OK;
}

hodei_status args_parse_keys(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    a->key_create.scopes = a->key_scopes;
    a->key_create.namespaces = a->key_namespaces;
    hodei_status st = args_parse_flags(a, keys_flags, argc, argv, i, keys_word, err);
    if (st != HODEI_OK || a->help)
        return st;
    return keys_check(a, err);
}

/* ------------------------------------------------------------------ whoami */

static const args_flag whoami_flags[] = {
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

hodei_status args_parse_whoami(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    return args_parse_flags(a, whoami_flags, argc, argv, i, args_no_positional, err);
}

/* ------------------------------------------------------------------- audit */

static hodei_status audit_text(const char *flag, const char *value, hodei_err *err)
{
    size_t n = strlen(value);
    if (n == 0 || n > CLI_AUDIT_FILTER_MAX || !hodei_utf8_valid(value, n))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: 1 to %d bytes of UTF-8", flag,
                             CLI_AUDIT_FILTER_MAX);
    return HODEI_OK;
}

static hodei_status audit_actor(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->audit.actor = (char *)value;
    return audit_text(flag, value, err);
}

static hodei_status audit_action(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->audit.action = (char *)value;
    return audit_text(flag, value, err);
}

static hodei_status audit_object(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->audit.object_id = (char *)value;
    return audit_text(flag, value, err);
}

static hodei_status audit_since(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    int64_t us = 0;
    char q[ARGS_QUOTE_BUF];
    if (!cli_parse_when(value, (int64_t)time(NULL) * 1000000, false, &us))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a duration back from now (30m, 2h, 7d) or a UTC time "
                             "(2026-12-07T10:00:00Z), got %s",
                             flag, args_quote(value, q));
    when_set(&a->audit_since, us);
    a->audit.since = &a->audit_since;
    return HODEI_OK;
}

static hodei_status audit_limit(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    int32_t n = 0;
    hodei_status st = args_int32(flag, value, &n, err);
    if (st == HODEI_OK && (n < 1 || n > CLI_LIST_LIMIT_MAX))
        st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be between 1 and %d, got %d", flag,
                           CLI_LIST_LIMIT_MAX, (int)n);
    a->audit.page_size = n;
    return st;
}

static hodei_status audit_token(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    int64_t v = 0;
    char q[ARGS_QUOTE_BUF];
    if (!hodei_parse_i64(value, 1, INT64_MAX, &v))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a token printed by an earlier hodei audit, got %s", flag,
                             args_quote(value, q));
    a->audit.page_token = (char *)value;
    return HODEI_OK;
}

static const args_flag audit_flags[] = {
    {"--actor", NULL, true, audit_actor},   {"--action", NULL, true, audit_action},
    {"--object", NULL, true, audit_object}, {"--since", NULL, true, audit_since},
    {"--limit", NULL, true, audit_limit},   {"--page-token", NULL, true, audit_token},
    {"--help", "-h", false, NULL},          {NULL, NULL, false, NULL},
};

hodei_status args_parse_audit(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    return args_parse_flags(a, audit_flags, argc, argv, i, args_no_positional, err);
}
