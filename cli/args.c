/* The command line: global options, the command, and the flags of status,
 * jobs and cancel (submit's are in args_submit.c). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "args_int.h"
#include "hodei/assert.h"
#include "hodei/id.h"
#include "hodei/job_spec.h"
#include "hodei/job_state.h"
#include "hodei/util.h"

static const char *const args_command_names[CLI_CMD_COUNT_] = {
    [CLI_CMD_NONE] = "",
    [CLI_CMD_SUBMIT] = "submit",
    [CLI_CMD_STATUS] = "status",
    [CLI_CMD_JOBS] = "jobs",
    [CLI_CMD_CANCEL] = "cancel",
    [CLI_CMD_RUN] = "run",
    [CLI_CMD_LOGS] = "logs",
    [CLI_CMD_WORKERS] = "workers",
    [CLI_CMD_PROVIDERS] = "providers",
    [CLI_CMD_SECRETS] = "secrets",
    [CLI_CMD_TEMPLATES] = "templates",
    [CLI_CMD_KEYS] = "keys",
    [CLI_CMD_WHOAMI] = "whoami",
    [CLI_CMD_AUDIT] = "audit",
    [CLI_CMD_TOP] = "top",
    [CLI_CMD_DEV] = "dev",
    [CLI_CMD_ARTIFACTS] = "artifacts",
};

const char *cli_command_name(cli_command cmd)
{
    if ((unsigned)cmd >= CLI_CMD_COUNT_)
        return "";
    return args_command_names[cmd];
}

static cli_command args_command_lookup(const char *name)
{
    for (int c = CLI_CMD_SUBMIT; c < CLI_CMD_COUNT_; c++) {
        if (strcmp(name, args_command_names[c]) == 0)
            return (cli_command)c;
    }
    return CLI_CMD_NONE;
}

/* ------------------------------------------------------------ global options */

/* `source` is the flag or the environment variable the value came from. */
static hodei_status args_check_server(const char *source, const char *value, hodei_err *err)
{
    size_t n = strlen(value);
    if (n == 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must not be empty", source);
    if (n > CLI_SERVER_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be at most %d bytes, got %zu",
                             source, CLI_SERVER_MAX, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c <= 0x20 || c >= 0x7f) {
            char q[ARGS_QUOTE_BUF];
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "%s: must be an address like host:port, got %s", source,
                                 args_quote(value, q));
        }
    }
    return HODEI_OK;
}

/* The key is a secret: never echoed. */
static hodei_status args_check_api_key(const char *source, const char *value, hodei_err *err)
{
    size_t n = strlen(value);
    if (n == 0 || n > CLI_API_KEY_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be 1 to %d bytes, got %zu", source,
                             CLI_API_KEY_MAX, n);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)value[i] < 0x21 || (unsigned char)value[i] > 0x7e)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "%s: must be printable ASCII without spaces", source);
    }
    return HODEI_OK;
}

static hodei_status args_server(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->server = value;
    return args_check_server(flag, value, err);
}

static hodei_status args_output(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    if (strcmp(value, "human") == 0) {
        a->output = CLI_OUTPUT_HUMAN;
    } else if (strcmp(value, "json") == 0) {
        a->output = CLI_OUTPUT_JSON;
    } else {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be human or json, got %s", flag,
                             args_quote(value, q));
    }
    return HODEI_OK;
}

static hodei_status args_call_timeout(cli_args *a, const char *flag, const char *value,
                                      hodei_err *err)
{
    int64_t ms = 0;
    if (!cli_parse_duration(value, &ms) || ms <= 0 || ms > CLI_CALL_TIMEOUT_MS_MAX) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a duration from 1ms to 24h like 10s, got %s", flag,
                             args_quote(value, q));
    }
    a->call_timeout_ms = ms;
    return HODEI_OK;
}

static hodei_status args_api_key(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->api_key = value;
    return args_check_api_key(flag, value, err);
}

static hodei_status args_tls_file(const char *flag, const char *value, const char **out,
                                  hodei_err *err)
{
    if (value[0] == '\0' || access(value, R_OK) != 0) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: cannot read %s: %s", flag,
                             args_quote(value, q), value[0] ? strerror(errno) : "empty path");
    }
    *out = value;
    return HODEI_OK;
}

static hodei_status args_tls_ca(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    return args_tls_file(flag, value, &a->tls_ca, err);
}

static hodei_status args_tls_cert(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    return args_tls_file(flag, value, &a->tls_cert, err);
}

static hodei_status args_tls_key(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    return args_tls_file(flag, value, &a->tls_key, err);
}

static hodei_status args_namespace(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->ns = value;
    return hodei_ns_check(flag, value, err);
}

static hodei_status args_version(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->version = true;
    return HODEI_OK;
}

static const args_flag args_global_flags[] = {
    {"--server", NULL, true, args_server},
    {"--output", "-o", true, args_output},
    {"--call-timeout", NULL, true, args_call_timeout},
    {"--api-key", NULL, true, args_api_key},
    {"--namespace", "-n", true, args_namespace},
    {"--tls-ca", NULL, true, args_tls_ca},
    {"--tls-cert", NULL, true, args_tls_cert},
    {"--tls-key", NULL, true, args_tls_key},
    {"--version", NULL, false, args_version},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

static hodei_status args_check_tls(const cli_args *a, hodei_err *err)
{
    if (a->tls_cert && !a->tls_key)
        return hodei_err_set(err, HODEI_ERR_INVALID, "--tls-cert: needs --tls-key");
    if (a->tls_key && !a->tls_cert)
        return hodei_err_set(err, HODEI_ERR_INVALID, "--tls-key: needs --tls-cert");
    if (a->tls_cert && !a->tls_ca)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "--tls-cert: needs --tls-ca (the CA that signed the server)");
    return HODEI_OK;
}

/* ------------------------------------------------------------ flag loop */

static const args_flag *args_match(const args_flag *flags, const char *arg, size_t len)
{
    for (const args_flag *f = flags; f->name; f++) {
        if ((strlen(f->name) == len && strncmp(f->name, arg, len) == 0) ||
            (f->short_name && strlen(f->short_name) == len &&
             strncmp(f->short_name, arg, len) == 0))
            return f;
    }
    return NULL;
}

static hodei_status args_unknown_flag(const cli_args *a, const char *arg, size_t len,
                                      hodei_err *err)
{
    char name[ARGS_QUOTE_BUF];
    hodei_strlcpy(name, arg, len + 1 < sizeof name ? len + 1 : sizeof name);
    if (a->command != CLI_CMD_NONE && args_match(args_global_flags, arg, len))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: global options go before the command (hodei %s ... %s ...)", name,
                             name, cli_command_name(a->command));
    if (a->command == CLI_CMD_NONE)
        return hodei_err_set(err, HODEI_ERR_INVALID, "unknown option %s", name);
    return hodei_err_set(err, HODEI_ERR_INVALID, "unknown flag %s for hodei %s", name,
                         cli_command_name(a->command));
}

/* One flag at argv[*i]; its value inline ("--x=v") or in the next word. */
static hodei_status args_one_flag(cli_args *a, const args_flag *flags, int argc, char **argv,
                                  int *i, hodei_err *err)
{
    const char *arg = argv[*i];
    const char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
    const args_flag *f = args_match(flags, arg, len);
    if (!f)
        return args_unknown_flag(a, arg, len, err);
    if (!f->fn) {
        a->help = true;
        return HODEI_OK;
    }
    const char *value = NULL;
    if (f->takes_value && eq) {
        value = eq + 1;
    } else if (f->takes_value) {
        if (*i + 1 >= argc)
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: needs a value", f->name);
        value = argv[++*i];
    } else if (eq) {
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: takes no value", f->name);
    }
    return f->fn(a, f->name, value, err);
}

hodei_status args_parse_flags(cli_args *a, const args_flag *flags, int argc, char **argv, int i,
                              args_positional_fn positional, hodei_err *err)
{
    for (; i < argc && !a->help; i++) {
        const char *arg = argv[i];
        hodei_status st;
        if (strcmp(arg, "--") == 0) {
            if (++i >= argc)
                break;
            st = positional(a, argc, argv, &i, err);
        } else if (arg[0] == '-' && arg[1] != '\0') {
            st = args_one_flag(a, flags, argc, argv, &i, err);
        } else {
            st = positional(a, argc, argv, &i, err);
        }
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}

/* ------------------------------------------------------------ status, cancel */

static char **args_job_id_slot(cli_args *a)
{
    switch (a->command) {
    case CLI_CMD_STATUS:
    case CLI_CMD_ARTIFACTS:
        return &a->status.job_id;
    case CLI_CMD_LOGS:
        return &a->logs.job_id;
    default:
        HODEI_ASSERT(a->command == CLI_CMD_CANCEL);
        return &a->cancel.job_id;
    }
}

hodei_status args_job_id(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    char **slot = args_job_id_slot(a);
    if ((*slot)[0] != '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "unexpected argument %s (hodei %s takes one JOB_ID)",
                             args_quote(argv[*i], q), cli_command_name(a->command));
    if (!hodei_id_valid(argv[*i]))
        return hodei_err_set(err, HODEI_ERR_INVALID, "JOB_ID: must be a job id (UUID), got %s",
                             args_quote(argv[*i], q));
    *slot = argv[*i];
    return HODEI_OK;
}

hodei_status args_job_id_required(cli_args *a, hodei_err *err)
{
    if ((*args_job_id_slot(a))[0] == '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID, "JOB_ID: required (hodei %s JOB_ID)",
                             cli_command_name(a->command));
    return HODEI_OK;
}

static hodei_status args_reason(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    size_t n = strlen(value);
    if (n > CLI_CANCEL_REASON_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be at most %d bytes, got %zu", flag,
                             CLI_CANCEL_REASON_MAX, n);
    if (!hodei_utf8_valid(value, n))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be valid UTF-8", flag);
    a->cancel.reason = (char *)value;
    return HODEI_OK;
}

static const args_flag args_status_flags[] = {
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

static hodei_status args_download(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    if (!value[0])
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: needs a folder", flag);
    a->download_dir = value;
    return HODEI_OK;
}

static const args_flag args_artifacts_flags[] = {
    {"--download", "-d", true, args_download},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

static const args_flag args_cancel_flags[] = {
    {"--reason", NULL, true, args_reason},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

/* ------------------------------------------------------------ jobs */

/* One state name from a comma-separated --state value. */
static hodei_status args_state_one(cli_args *a, const char *flag, const char *s, size_t n,
                                   hodei_err *err)
{
    char name[HODEI_JOB_STATE_NAME_MAX] = "";
    Hodei__V1__JobState st = 0;
    if (n > 0 && n < sizeof name)
        memcpy(name, s, n);
    if (name[0] == '\0' || !hodei_job_state_parse(name, &st)) {
        char q[ARGS_QUOTE_BUF], part[ARGS_QUOTE_BUF];
        hodei_strlcpy(part, s, n + 1 < sizeof part ? n + 1 : sizeof part);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: unknown job state %s (one of pending, assigned, running, "
                             "succeeded, failed, cancelled, timeout)",
                             flag, args_quote(part, q));
    }
    for (size_t i = 0; i < a->list.n_states; i++) {
        if (a->list.states[i] == st)
            return HODEI_OK;
    }
    HODEI_ASSERT(a->list.n_states < CLI_STATES_MAX);
    a->list.states[a->list.n_states++] = st;
    return HODEI_OK;
}

static hodei_status args_state(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        hodei_status st = args_state_one(a, flag, p, n, err);
        if (st != HODEI_OK || !comma)
            return st;
        p = comma + 1;
    }
}

static hodei_status args_limit(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    int32_t n = 0;
    hodei_status st = args_int32(flag, value, &n, err);
    if (st == HODEI_OK && (n < 1 || n > CLI_LIST_LIMIT_MAX))
        st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be between 1 and %d, got %d", flag,
                           CLI_LIST_LIMIT_MAX, (int)n);
    a->list.page_size = n;
    return st;
}

static hodei_status args_page_token(cli_args *a, const char *flag, const char *value,
                                    hodei_err *err)
{
    size_t n = strlen(value);
    bool printable = true;
    for (size_t i = 0; i < n; i++)
        printable = printable && value[i] >= 0x21 && value[i] <= 0x7e;
    if (n == 0 || n > CLI_PAGE_TOKEN_MAX || !printable) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a token printed by an earlier hodei jobs, got %s", flag,
                             args_quote(value, q));
    }
    a->list.page_token = (char *)value;
    return HODEI_OK;
}

hodei_status args_no_positional(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    return hodei_err_set(err, HODEI_ERR_INVALID, "unexpected argument %s for hodei %s",
                         args_quote(argv[*i], q), cli_command_name(a->command));
}

/* --older-than DUR: jobs that finished more than DUR ago (what retention
 * would delete); DUR as --timeout takes, or whole days "30d". */
static hodei_status args_older_than(cli_args *a, const char *flag, const char *value,
                                    hodei_err *err)
{
    int64_t ms = 0, days = 0;
    size_t n = strlen(value);
    bool ok;
    if (n > 1 && value[n - 1] == 'd') {
        char num[24];
        ok = n - 1 < sizeof num;
        if (ok) {
            memcpy(num, value, n - 1);
            num[n - 1] = '\0';
            ok = hodei_parse_i64(num, 1, 36500, &days);
        }
        ms = days * 86400000;
    } else {
        ok = cli_parse_duration(value, &ms) && ms > 0;
    }
    if (!ok)
        return hodei_err_set(
            err, HODEI_ERR_INVALID,
            "%s: must be a duration like 30d, 12h, 90m (1 day = 24h), got \"%.32s\"", flag, value);
    a->older_than_ms = ms;
    return HODEI_OK;
}

/* --label K=V (repeatable): only jobs carrying every one of these labels;
 * checked as the server checks them (libs/domain) before anything is sent. */
static hodei_status args_list_label(cli_args *a, const char *flag, const char *value,
                                    hodei_err *err)
{
    Hodei__V1__ListJobsRequest *l = &a->list;
    const char *k = NULL, *v = NULL;
    size_t k_len = 0;
    char q[ARGS_QUOTE_BUF];
    if (!cli_parse_kv(value, &k, &k_len, &v))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be KEY=VALUE, got %s", flag,
                             args_quote(value, q));
    if (l->n_labels >= HODEI_JOB_LABELS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given more than %d times", flag,
                             HODEI_JOB_LABELS_MAX);
    if (!l->labels &&
        !(l->labels = hodei_arena_calloc(&a->arena, 1, HODEI_JOB_LABELS_MAX * sizeof *l->labels)))
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    Hodei__V1__ListJobsRequest__LabelsEntry *e = hodei_arena_calloc(&a->arena, 1, sizeof *e);
    char *key = hodei_arena_strndup(&a->arena, k, k_len);
    if (!e || !key)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    hodei__v1__list_jobs_request__labels_entry__init(e);
    e->key = key;
    e->value = (char *)v;
    l->labels[l->n_labels++] = e;
    hodei_err why;
    if (hodei_job_labels_filter_validate(l, &why) != HODEI_OK) {
        /* "labels[\"k\"]: key must ..." -> "--label (labels[\"k\"]): key must ..." */
        const char *sep = strstr(why.msg, ": ");
        if (!sep)
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s", flag, why.msg);
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s (%.*s): %s", flag, (int)(sep - why.msg),
                             why.msg, sep + 2);
    }
    return HODEI_OK;
}

static const args_flag args_jobs_flags[] = {
    {"--state", NULL, true, args_state},
    {"--older-than", NULL, true, args_older_than},
    {"--label", "-l", true, args_list_label},
    {"--limit", NULL, true, args_limit},
    {"--page-token", NULL, true, args_page_token},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

/* ------------------------------------------------------------ commands */

/* `hodei help [COMMAND]`. */
static hodei_status args_help_topic(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    a->help = true;
    if (i >= argc)
        return HODEI_OK;
    a->command = args_command_lookup(argv[i]);
    if (a->command == CLI_CMD_NONE)
        return hodei_err_set(err, HODEI_ERR_INVALID, "help: unknown command %s",
                             args_quote(argv[i], q));
    if (i + 1 < argc)
        return hodei_err_set(err, HODEI_ERR_INVALID, "help: unexpected argument %s",
                             args_quote(argv[i + 1], q));
    return HODEI_OK;
}

static hodei_status args_parse_simple(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    hodei_status st;
    switch (a->command) {
    case CLI_CMD_STATUS:
        st = args_parse_flags(a, args_status_flags, argc, argv, i, args_job_id, err);
        break;
    case CLI_CMD_ARTIFACTS:
        st = args_parse_flags(a, args_artifacts_flags, argc, argv, i, args_job_id, err);
        break;
    case CLI_CMD_CANCEL:
        st = args_parse_flags(a, args_cancel_flags, argc, argv, i, args_job_id, err);
        break;
    default:
        return args_parse_flags(a, args_jobs_flags, argc, argv, i, args_no_positional, err);
    }
    if (st != HODEI_OK || a->help)
        return st;
    return args_job_id_required(a, err);
}

/* The first word that is not a global option: the command and all after it. */
static hodei_status args_command(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    const char *name = argv[*i];
    int next = *i + 1;
    *i = argc - 1;
    if (strcmp(name, "help") == 0)
        return args_help_topic(a, argc, argv, next, err);
    a->command = args_command_lookup(name);
    if (a->command == CLI_CMD_NONE) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID, "unknown command %s", args_quote(name, q));
    }
    switch (a->command) {
    case CLI_CMD_SUBMIT:
    case CLI_CMD_RUN:
        return args_parse_submit(a, argc, argv, next, err);
    case CLI_CMD_LOGS:
        return args_parse_logs(a, argc, argv, next, err);
    case CLI_CMD_WORKERS:
        return args_parse_workers(a, argc, argv, next, err);
    case CLI_CMD_PROVIDERS:
        return args_parse_providers(a, argc, argv, next, err);
    case CLI_CMD_SECRETS:
        return args_parse_secrets(a, argc, argv, next, err);
    case CLI_CMD_TEMPLATES:
        return args_parse_templates(a, argc, argv, next, err);
    case CLI_CMD_KEYS:
        return args_parse_keys(a, argc, argv, next, err);
    case CLI_CMD_WHOAMI:
        return args_parse_whoami(a, argc, argv, next, err);
    case CLI_CMD_AUDIT:
        return args_parse_audit(a, argc, argv, next, err);
    case CLI_CMD_TOP:
        return args_parse_top(a, argc, argv, next, err);
    case CLI_CMD_DEV:
        return args_parse_dev(a, argc, argv, next, err);
    default:
        return args_parse_simple(a, argc, argv, next, err);
    }
}

/* Environment under the flags, then the built-in defaults. */
static hodei_status args_apply_env(cli_args *a, cli_getenv_fn env, hodei_err *err)
{
    const char *server = env ? env("HODEI_SERVER") : NULL;
    const char *key = env ? env("HODEI_API_KEY") : NULL;
    const char *ns = env ? env("HODEI_NAMESPACE") : NULL;
    hodei_status st = HODEI_OK;
    if (!a->ns && ns && ns[0]) {
        a->ns = ns;
        st = hodei_ns_check("HODEI_NAMESPACE", ns, err);
    }
    if (!a->server && server && server[0]) {
        a->server = server;
        st = args_check_server("HODEI_SERVER", server, err);
    }
    if (st == HODEI_OK && !a->api_key && key && key[0]) {
        a->api_key = key;
        st = args_check_api_key("HODEI_API_KEY", key, err);
    }
    if (!a->server)
        a->server = CLI_DEFAULT_SERVER;
    return st;
}

static void args_init(cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->call_timeout_ms = CLI_DEFAULT_CALL_TIMEOUT_MS;
    hodei__v1__queue_job_request__init(&a->queue);
    hodei__v1__job_spec__init(&a->spec);
    hodei__v1__shell_command__init(&a->shell);
    hodei__v1__script__init(&a->script);
    hodei__v1__resource_requirements__init(&a->resources);
    hodei__v1__get_job_status_request__init(&a->status);
    hodei__v1__cancel_job_request__init(&a->cancel);
    hodei__v1__list_jobs_request__init(&a->list);
    a->list.states = a->list_states;
    hodei__v1__get_logs_request__init(&a->logs);
    hodei__v1__get_available_workers_request__init(&a->workers);
    hodei__v1__list_providers_request__init(&a->providers);
    hodei__v1__get_provider_health_request__init(&a->health);
    hodei__v1__set_secret_request__init(&a->secret_set);
    hodei__v1__list_secrets_request__init(&a->secret_list);
    hodei__v1__delete_secret_request__init(&a->secret_delete);
    hodei__v1__template__init(&a->template_);
    hodei__v1__create_template_request__init(&a->template_create);
    hodei__v1__get_template_request__init(&a->template_get);
    hodei__v1__list_templates_request__init(&a->template_list);
    hodei__v1__run_template_request__init(&a->template_run);
    hodei__v1__create_key_request__init(&a->key_create);
    hodei__v1__list_keys_request__init(&a->key_list);
    hodei__v1__revoke_key_request__init(&a->key_revoke);
    hodei__v1__who_am_irequest__init(&a->whoami);
    hodei__v1__query_audit_request__init(&a->audit);
    hodei__v1__stream_metrics_request__init(&a->top_stream);
    hodei__v1__get_aggregated_metrics_request__init(&a->top_window);
    hodei_arena_init(&a->arena, 0, CLI_ARENA_MAX);
}

/* --namespace goes into every request that names one ("" = the key's first). */
static void args_namespace_apply(cli_args *a)
{
    char *ns = (char *)(a->ns ? a->ns : "");
    a->queue.namespace_ = ns;
    a->list.namespace_ = ns;
    a->secret_set.namespace_ = ns;
    a->secret_list.namespace_ = ns;
    a->secret_delete.namespace_ = ns;
    a->template_.namespace_ = ns;
    a->template_get.namespace_ = ns;
    a->template_list.namespace_ = ns;
    a->template_run.namespace_ = ns;
    a->audit.namespace_ = ns;
}

hodei_status cli_args_parse(cli_args *a, int argc, char **argv, cli_getenv_fn env, hodei_err *err)
{
    args_init(a);
    hodei_status st = args_parse_flags(a, args_global_flags, argc, argv, 1, args_command, err);
    if (st != HODEI_OK)
        return st;
    if (a->help || a->version)
        return HODEI_OK;
    if (a->command == CLI_CMD_NONE)
        return hodei_err_set(err, HODEI_ERR_INVALID, "missing command");
    st = args_apply_env(a, env, err);
    if (st == HODEI_OK)
        st = args_check_tls(a, err);
    args_namespace_apply(a);
    return st;
}

void cli_args_fini(cli_args *a)
{
    if (a->secret_set.value.data)
        explicit_bzero(a->secret_set.value.data, a->secret_set.value.len);
    a->secret_set.value.data = NULL;
    hodei_arena_fini(&a->arena);
}
