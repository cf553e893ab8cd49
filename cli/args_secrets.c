/* `hodei secrets set NAME [--from-file PATH]`, `hodei secrets list`,
 * `hodei secrets delete NAME`. The value of `set` comes from stdin (one
 * trailing newline dropped) or from the file as it is; it is never echoed. */
#include <errno.h>
#include <string.h>

#include "args_int.h"

#define SECRETS_QUOTE "hodei secrets set NAME | list | delete NAME"

/* A secret name as the server stores it: 1..128 of [A-Za-z0-9_.-]. */
static hodei_status secrets_name(const char *value, hodei_err *err)
{
    size_t n = strlen(value);
    bool ok = n > 0 && n <= CLI_SECRET_NAME_MAX;
    for (size_t k = 0; ok && k < n; k++) {
        char c = value[k];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    if (!ok) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "NAME: must be 1 to %d of A-Z, a-z, 0-9, _, ., -, got %s",
                             CLI_SECRET_NAME_MAX, args_quote(value, q));
    }
    return HODEI_OK;
}

static hodei_status secrets_from_file(cli_args *a, const char *flag, const char *value,
                                      hodei_err *err)
{
    if (value[0] == '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: needs a file path", flag);
    a->secret_from_file = value;
    return HODEI_OK;
}

/* The action word, then NAME for set and delete. */
static hodei_status secrets_word(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    const char *word = argv[*i];
    (void)argc;
    if (a->secrets_action == CLI_SECRETS_NONE) {
        if (strcmp(word, "set") == 0)
            a->secrets_action = CLI_SECRETS_SET;
        else if (strcmp(word, "list") == 0)
            a->secrets_action = CLI_SECRETS_LIST;
        else if (strcmp(word, "delete") == 0)
            a->secrets_action = CLI_SECRETS_DELETE;
        else
            return hodei_err_set(err, HODEI_ERR_INVALID, "unknown action %s (" SECRETS_QUOTE ")",
                                 args_quote(word, q));
        return HODEI_OK;
    }
    if (a->secrets_action == CLI_SECRETS_LIST || a->secret_name)
        return hodei_err_set(err, HODEI_ERR_INVALID, "unexpected argument %s (" SECRETS_QUOTE ")",
                             args_quote(word, q));
    a->secret_name = word;
    return secrets_name(word, err);
}

static hodei_status secrets_share(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    hodei_status st = hodei_ns_check(flag, value, err);
    if (st != HODEI_OK)
        return st;
    if (a->secret_set.n_shared_with == CLI_SHARE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: at most %d namespaces", flag,
                             CLI_SHARE_MAX);
    a->secret_set.shared_with = a->secret_share;
    a->secret_set.shared_with[a->secret_set.n_shared_with++] = (char *)value;
    return HODEI_OK;
}

static const args_flag secrets_flags[] = {
    {"--from-file", NULL, true, secrets_from_file},
    {"--share-with", NULL, true, secrets_share},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

static hodei_status secrets_check(cli_args *a, hodei_err *err)
{
    if (a->secrets_action == CLI_SECRETS_NONE)
        return hodei_err_set(err, HODEI_ERR_INVALID, "missing action (" SECRETS_QUOTE ")");
    if (a->secrets_action != CLI_SECRETS_LIST && !a->secret_name)
        return hodei_err_set(err, HODEI_ERR_INVALID, "NAME: required (hodei secrets %s NAME)",
                             a->secrets_action == CLI_SECRETS_SET ? "set" : "delete");
    if (a->secrets_action != CLI_SECRETS_SET && a->secret_from_file)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "--from-file: only with hodei secrets set NAME");
    if (a->secrets_action != CLI_SECRETS_SET && a->secret_set.n_shared_with)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "--share-with: only with hodei secrets set NAME");
    a->secret_set.name = (char *)a->secret_name;
    a->secret_delete.name = (char *)a->secret_name;
    return HODEI_OK;
}

hodei_status args_parse_secrets(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    hodei_status st = args_parse_flags(a, secrets_flags, argc, argv, i, secrets_word, err);
    if (st != HODEI_OK || a->help)
        return st;
    st = secrets_check(a, err);
    if (st != HODEI_OK || a->secrets_action != CLI_SECRETS_SET)
        return st;
    if (a->secret_from_file)
        return cli_secret_value_read(a, NULL, err);
    return cli_secret_value_read(a, stdin, err);
}

/* Reads at most CLI_SECRET_VALUE_MAX + 1 bytes of f into the arena. */
static hodei_status secrets_read(cli_args *a, FILE *f, const char *what, size_t *len,
                                 hodei_err *err)
{
    char *buf = hodei_arena_calloc(&a->arena, 1, CLI_SECRET_VALUE_MAX + 2);
    if (!buf)
        return args_nomem(err);
    *len = fread(buf, 1, CLI_SECRET_VALUE_MAX + 1, f);
    if (ferror(f))
        return hodei_err_set(err, HODEI_ERR_IO, "%s: cannot read: %s", what, strerror(errno));
    a->secret_set.value.data = (uint8_t *)buf;
    return HODEI_OK;
}

static hodei_status secrets_value_ok(const char *what, size_t len, hodei_err *err)
{
    if (len == 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: the secret value is empty", what);
    if (len > CLI_SECRET_VALUE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: the secret value is over %d bytes", what,
                             CLI_SECRET_VALUE_MAX);
    return HODEI_OK;
}

hodei_status cli_secret_value_read(cli_args *a, FILE *in, hodei_err *err)
{
    const char *what = in ? "stdin" : "--from-file";
    FILE *f = in ? in : fopen(a->secret_from_file, "rb");
    size_t len = 0;
    if (!f)
        return hodei_err_set(err, HODEI_ERR_INVALID, "--from-file: cannot open %s: %s",
                             a->secret_from_file, strerror(errno));
    hodei_status st = secrets_read(a, f, what, &len, err);
    if (!in)
        fclose(f);
    if (st != HODEI_OK)
        return st;
    if (in && len > 0 && len <= CLI_SECRET_VALUE_MAX + 1 &&
        a->secret_set.value.data[len - 1] == '\n')
        len--;
    a->secret_set.value.len = len;
    return secrets_value_ok(what, len, err);
}
