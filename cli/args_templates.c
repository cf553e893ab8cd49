/* `hodei templates create NAME [--param P]... [--description TEXT] [submit's
 * flags] -- CMD [ARGS...]` (or --script FILE), `hodei templates get NAME`,
 * `hodei templates list`, `hodei templates run NAME [-p K=V]...
 * [--idempotency-key K] [--quiet] [--no-job-exit-code]`. The spec of create
 * is checked as submit's is; ${P} in its strings is filled in by run. */
#include <string.h>

#include "args_int.h"

#define TEMPLATES_QUOTE "hodei templates create NAME ... -- CMD | get NAME | list | run NAME"

static hodei_status templates_name(const char *value, hodei_err *err)
{
    if (!hodei_template_name_valid(value)) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "NAME: must be 1 to %d of a-z, 0-9, _, ., - starting with a letter"
                             " or digit, got %s",
                             HODEI_TEMPLATE_NAME_MAX, args_quote(value, q));
    }
    return HODEI_OK;
}

hodei_status args_template_param(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    if (!hodei_template_param_valid(value, strlen(value)))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: a parameter name is [A-Za-z_][A-Za-z0-9_]*, got %s", flag,
                             args_quote(value, q));
    if (a->template_.n_parameters >= HODEI_TEMPLATE_PARAMS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given more than %d times", flag,
                             HODEI_TEMPLATE_PARAMS_MAX);
    a->template_params[a->template_.n_parameters++] = (char *)value;
    a->template_.parameters = a->template_params;
    return HODEI_OK;
}

hodei_status args_template_description(cli_args *a, const char *flag, const char *value,
                                       hodei_err *err)
{
    if (strlen(value) > HODEI_TEMPLATE_DESCRIPTION_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: at most %d bytes", flag,
                             HODEI_TEMPLATE_DESCRIPTION_MAX);
    a->template_.description = (char *)value;
    return HODEI_OK;
}

/* run -p K=V */
static hodei_status templates_value(cli_args *a, const char *flag, const char *value,
                                    hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    const char *k = NULL, *v = NULL;
    size_t k_len = 0;
    Hodei__V1__RunTemplateRequest *r = &a->template_run;
    if (!cli_parse_kv(value, &k, &k_len, &v) || !hodei_template_param_valid(k, k_len))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be NAME=VALUE with NAME a parameter name, got %s", flag,
                             args_quote(value, q));
    if (r->n_parameters >= HODEI_TEMPLATE_PARAMS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given more than %d times", flag,
                             HODEI_TEMPLATE_PARAMS_MAX);
    Hodei__V1__RunTemplateRequest__ParametersEntry *e = hodei_arena_calloc(&a->arena, 1, sizeof *e);
    char *key = hodei_arena_strndup(&a->arena, k, k_len);
    if (!e || !key)
        return args_nomem(err);
    for (size_t i = 0; i < r->n_parameters; i++)
        if (strcmp(r->parameters[i]->key, key) == 0)
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s given twice", flag, key);
    hodei__v1__run_template_request__parameters_entry__init(e);
    e->key = key;
    e->value = (char *)v;
    a->template_values[r->n_parameters++] = e;
    r->parameters = a->template_values;
    return HODEI_OK;
}

static const args_flag templates_run_flags[] = {
    {"--param", "-p", true, templates_value},
    {"--idempotency-key", NULL, true, args_submit_idempotency_key},
    {"--no-job-exit-code", NULL, false, args_submit_no_job_exit_code},
    {"--quiet", "-q", false, args_submit_quiet},
    {"--raw", NULL, false, args_raw},
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

static const args_flag templates_plain_flags[] = {
    {"--help", "-h", false, NULL},
    {NULL, NULL, false, NULL},
};

/* NAME after the action word; then, for create, the command. */
static hodei_status templates_word(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    if (!a->template_name && a->templates_action != CLI_TEMPLATES_LIST) {
        a->template_name = argv[*i];
        a->template_.name = argv[*i];
        return templates_name(argv[*i], err);
    }
    if (a->templates_action == CLI_TEMPLATES_CREATE)
        return args_submit_command(a, argc, argv, i, err);
    return hodei_err_set(err, HODEI_ERR_INVALID, "unexpected argument %s (" TEMPLATES_QUOTE ")",
                         args_quote(argv[*i], q));
}

static cli_templates_action templates_action(const char *word)
{
    static const struct {
        const char *word;
        cli_templates_action action;
    } words[] = {{"create", CLI_TEMPLATES_CREATE},
                 {"get", CLI_TEMPLATES_GET},
                 {"list", CLI_TEMPLATES_LIST},
                 {"run", CLI_TEMPLATES_RUN}};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (strcmp(word, words[k].word) == 0)
            return words[k].action;
    return CLI_TEMPLATES_NONE;
}

static hodei_status templates_finish(cli_args *a, hodei_err *err)
{
    const char *name = a->template_name;
    if (a->templates_action != CLI_TEMPLATES_LIST && !name)
        return hodei_err_set(err, HODEI_ERR_INVALID, "NAME: required (hodei templates %s NAME)",
                             a->templates_action == CLI_TEMPLATES_CREATE ? "create"
                             : a->templates_action == CLI_TEMPLATES_GET  ? "get"
                                                                         : "run");
    switch (a->templates_action) {
    case CLI_TEMPLATES_CREATE:
        if (a->spec.payload_case == HODEI__V1__JOB_SPEC__PAYLOAD__NOT_SET)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "templates create: a command is required: hodei templates create"
                                 " NAME [FLAGS] -- CMD [ARGS...], or --script FILE");
        if (a->queue.idempotency_key && a->queue.idempotency_key[0])
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "--idempotency-key: belongs to templates run, not create");
        a->template_.spec = &a->spec;
        a->template_create.template_ = &a->template_;
        return args_submit_finish(a, err);
    case CLI_TEMPLATES_GET:
        a->template_get.name = (char *)name;
        return HODEI_OK;
    case CLI_TEMPLATES_RUN:
        a->template_run.name = (char *)name;
        a->template_run.idempotency_key = a->queue.idempotency_key;
        return HODEI_OK;
    default:
        a->template_list.page_size = CLI_LIST_LIMIT_MAX;
        return HODEI_OK;
    }
}

hodei_status args_parse_templates(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    if (i < argc && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
        a->help = true;
        return HODEI_OK;
    }
    if (i >= argc)
        return hodei_err_set(err, HODEI_ERR_INVALID, "missing action (" TEMPLATES_QUOTE ")");
    a->templates_action = templates_action(argv[i]);
    if (a->templates_action == CLI_TEMPLATES_NONE)
        return hodei_err_set(err, HODEI_ERR_INVALID, "unknown action %s (" TEMPLATES_QUOTE ")",
                             args_quote(argv[i], q));
    const args_flag *flags = templates_plain_flags;
    if (a->templates_action == CLI_TEMPLATES_CREATE)
        flags = args_template_create_flags;
    else if (a->templates_action == CLI_TEMPLATES_RUN)
        flags = templates_run_flags;
    hodei_status st = args_parse_flags(a, flags, argc, argv, i + 1, templates_word, err);
    if (st != HODEI_OK || a->help)
        return st;
    return templates_finish(a, err);
}
