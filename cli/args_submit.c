/* `hodei submit [FLAGS] [--] CMD [ARGS...]` and `hodei run` (the same flags
 * and two of its own): the flags build a QueueJobRequest; libs/domain
 * validates it before anything is sent. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "args_int.h"
#include "hodei/job_spec.h"

/* ------------------------------------------------------------ maps and lists */

/* Splits "K=V"; the key is copied into the arena, the value stays in argv. */
static hodei_status submit_kv(cli_args *a, const char *flag, const char *value, size_t n,
                              size_t max, char **key, const char **val, hodei_err *err)
{
    const char *k = NULL;
    size_t k_len = 0;
    if (!cli_parse_kv(value, &k, &k_len, val)) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be KEY=VALUE, got %s", flag,
                             args_quote(value, q));
    }
    if (n >= max)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given more than %zu times", flag, max);
    *key = hodei_arena_strndup(&a->arena, k, k_len);
    return *key ? HODEI_OK : args_nomem(err);
}

static hodei_status submit_env(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    Hodei__V1__JobSpec *s = &a->spec;
    char *key = NULL;
    const char *val = NULL;
    hodei_status st = submit_kv(a, flag, value, s->n_env, HODEI_JOB_ENV_MAX, &key, &val, err);
    if (st != HODEI_OK)
        return st;
    if (!s->env && !(s->env = hodei_arena_calloc(&a->arena, 1, HODEI_JOB_ENV_MAX * sizeof *s->env)))
        return args_nomem(err);
    Hodei__V1__JobSpec__EnvEntry *e = hodei_arena_calloc(&a->arena, 1, sizeof *e);
    if (!e)
        return args_nomem(err);
    hodei__v1__job_spec__env_entry__init(e);
    e->key = key;
    e->value = (char *)val;
    s->env[s->n_env++] = e;
    return HODEI_OK;
}

static hodei_status submit_label(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    Hodei__V1__JobSpec *s = &a->spec;
    char *key = NULL;
    const char *val = NULL;
    hodei_status st = submit_kv(a, flag, value, s->n_labels, HODEI_JOB_LABELS_MAX, &key, &val, err);
    if (st != HODEI_OK)
        return st;
    if (!s->labels &&
        !(s->labels = hodei_arena_calloc(&a->arena, 1, HODEI_JOB_LABELS_MAX * sizeof *s->labels)))
        return args_nomem(err);
    Hodei__V1__JobSpec__LabelsEntry *e = hodei_arena_calloc(&a->arena, 1, sizeof *e);
    if (!e)
        return args_nomem(err);
    hodei__v1__job_spec__labels_entry__init(e);
    e->key = key;
    e->value = (char *)val;
    s->labels[s->n_labels++] = e;
    return HODEI_OK;
}

static hodei_status submit_constraint(cli_args *a, const char *flag, const char *value,
                                      hodei_err *err)
{
    Hodei__V1__JobSpec *s = &a->spec;
    char *key = NULL;
    const char *val = NULL;
    hodei_status st =
        submit_kv(a, flag, value, s->n_constraints, HODEI_JOB_LABELS_MAX, &key, &val, err);
    if (st != HODEI_OK)
        return st;
    if (!s->constraints && !(s->constraints = hodei_arena_calloc(
                                 &a->arena, 1, HODEI_JOB_LABELS_MAX * sizeof *s->constraints)))
        return args_nomem(err);
    Hodei__V1__JobSpec__ConstraintsEntry *e = hodei_arena_calloc(&a->arena, 1, sizeof *e);
    if (!e)
        return args_nomem(err);
    hodei__v1__job_spec__constraints_entry__init(e);
    e->key = key;
    e->value = (char *)val;
    s->constraints[s->n_constraints++] = e;
    return HODEI_OK;
}

static hodei_status submit_secret(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    Hodei__V1__JobSpec *s = &a->spec;
    if (s->n_secret_refs >= HODEI_JOB_SECRET_REFS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given more than %d times", flag,
                             HODEI_JOB_SECRET_REFS_MAX);
    if (!s->secret_refs && !(s->secret_refs = hodei_arena_calloc(
                                 &a->arena, 1, HODEI_JOB_SECRET_REFS_MAX * sizeof *s->secret_refs)))
        return args_nomem(err);
    s->secret_refs[s->n_secret_refs++] = (char *)value;
    return HODEI_OK;
}

/* ------------------------------------------------------------ artifacts */

/* Appends an artifact to inputs or outputs; it becomes the one that
 * --checksum, --credentials and --when apply to. */
static hodei_status submit_artifact(cli_args *a, const char *flag, bool output, char *source,
                                    char *destination, hodei_err *err)
{
    Hodei__V1__JobSpec *s = &a->spec;
    size_t *n = output ? &s->n_outputs : &s->n_inputs;
    Hodei__V1__Artifact ***list = output ? &s->outputs : &s->inputs;
    if (*n >= HODEI_JOB_ARTIFACTS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given more than %d times", flag,
                             HODEI_JOB_ARTIFACTS_MAX);
    if (!*list &&
        !(*list = hodei_arena_calloc(&a->arena, 1, HODEI_JOB_ARTIFACTS_MAX * sizeof **list)))
        return args_nomem(err);
    Hodei__V1__Artifact *art = hodei_arena_calloc(&a->arena, 1, sizeof *art);
    if (!art)
        return args_nomem(err);
    hodei__v1__artifact__init(art);
    art->source = source;
    art->destination = destination;
    (*list)[(*n)++] = art;
    a->last_artifact = art;
    return HODEI_OK;
}

/* --input URL, or --input DEST=URL (a "=" before the URL's "://"). */
static hodei_status submit_input(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    const char *scheme = strstr(value, "://");
    const char *eq = strchr(value, '=');
    if (eq && scheme && eq < scheme) {
        char *dest = hodei_arena_strndup(&a->arena, value, (size_t)(eq - value));
        if (!dest)
            return args_nomem(err);
        return submit_artifact(a, flag, false, (char *)eq + 1, dest, err);
    }
    return submit_artifact(a, flag, false, (char *)value, "", err);
}

/* --output PATH=URL */
static hodei_status submit_output(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    const char *eq = strchr(value, '=');
    if (!eq || eq == value || !eq[1])
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: expected PATH=URL (e.g. out/*.csv=s3://bucket/run/), got \"%s\"",
                             flag, value);
    char *src = hodei_arena_strndup(&a->arena, value, (size_t)(eq - value));
    if (!src)
        return args_nomem(err);
    return submit_artifact(a, flag, true, src, (char *)eq + 1, err);
}

static hodei_status submit_last_artifact(cli_args *a, const char *flag, hodei_err *err)
{
    if (!a->last_artifact)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must follow an --input or --output",
                             flag);
    return HODEI_OK;
}

static hodei_status submit_checksum(cli_args *a, const char *flag, const char *value,
                                    hodei_err *err)
{
    hodei_status st = submit_last_artifact(a, flag, err);
    if (st == HODEI_OK)
        a->last_artifact->checksum = (char *)value;
    return st;
}

static hodei_status submit_credentials(cli_args *a, const char *flag, const char *value,
                                       hodei_err *err)
{
    hodei_status st = submit_last_artifact(a, flag, err);
    if (st == HODEI_OK)
        a->last_artifact->credentials = (char *)value;
    return st;
}

static hodei_status submit_when(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    hodei_status st = submit_last_artifact(a, flag, err);
    if (st != HODEI_OK)
        return st;
    if (strcmp(value, "success") == 0)
        a->last_artifact->when = HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ON_SUCCESS;
    else if (strcmp(value, "failure") == 0)
        a->last_artifact->when = HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ON_FAILURE;
    else if (strcmp(value, "always") == 0)
        a->last_artifact->when = HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ALWAYS;
    else
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be success, failure or always, got \"%s\"", flag, value);
    return HODEI_OK;
}

/* ------------------------------------------------------------ scalars */

static hodei_status submit_name(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.name = (char *)value;
    return HODEI_OK;
}

static hodei_status submit_priority(cli_args *a, const char *flag, const char *value,
                                    hodei_err *err)
{
    return args_int32(flag, value, &a->spec.priority, err);
}

static hodei_status submit_max_attempts(cli_args *a, const char *flag, const char *value,
                                        hodei_err *err)
{
    return args_int32(flag, value, &a->spec.max_attempts, err);
}

static hodei_status submit_timeout(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    if (!cli_parse_duration(value, &a->spec.timeout_ms)) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a duration like 30s, 5m, 2h or 1500ms, got %s", flag,
                             args_quote(value, q));
    }
    return HODEI_OK;
}

static hodei_status submit_cpu(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.resources = &a->resources;
    if (!cli_parse_decimal(value, &a->resources.cpu_cores)) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a number of cores like 2 or 0.5, got %s", flag,
                             args_quote(value, q));
    }
    return HODEI_OK;
}

static hodei_status submit_size(const char *flag, const char *value, int64_t *out, hodei_err *err)
{
    if (!cli_parse_size(value, out)) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a size like 512Mi, 2Gi, 1G or a number of bytes, "
                             "got %s",
                             flag, args_quote(value, q));
    }
    return HODEI_OK;
}

static hodei_status submit_memory(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.resources = &a->resources;
    return submit_size(flag, value, &a->resources.memory_bytes, err);
}

static hodei_status submit_storage(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.resources = &a->resources;
    return submit_size(flag, value, &a->resources.storage_bytes, err);
}

static hodei_status submit_gpus(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.resources = &a->resources;
    return args_int32(flag, value, &a->resources.gpu_count, err);
}

static hodei_status submit_arch(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.resources = &a->resources;
    a->resources.architecture = (char *)value;
    return HODEI_OK;
}

static hodei_status submit_provider(cli_args *a, const char *flag, const char *value,
                                    hodei_err *err)
{
    a->spec.provider = (char *)value;
    return HODEI_OK;
}

static hodei_status submit_image(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.image = (char *)value;
    return HODEI_OK;
}

static hodei_status submit_workdir(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->spec.working_dir = (char *)value;
    return HODEI_OK;
}

hodei_status args_submit_idempotency_key(cli_args *a, const char *flag, const char *value,
                                         hodei_err *err)
{
    a->queue.idempotency_key = (char *)value;
    return HODEI_OK;
}

static hodei_status submit_interpreter(cli_args *a, const char *flag, const char *value,
                                       hodei_err *err)
{
    a->script.interpreter = (char *)value;
    return HODEI_OK;
}

/* ------------------------------------------------------------ payload */

/* Reads up to HODEI_JOB_SCRIPT_MAX + 1 bytes of path ("-" = stdin) into buf. */
static bool submit_read_file(const char *path, char *buf, size_t *n, int *errno_out)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        *errno_out = errno;
        return false;
    }
    *n = fread(buf, 1, HODEI_JOB_SCRIPT_MAX + 1, f);
    bool ok = !ferror(f);
    *errno_out = errno;
    if (!is_stdin)
        fclose(f);
    return ok;
}

static hodei_status submit_script(cli_args *a, const char *flag, const char *path, hodei_err *err)
{
    char q[ARGS_QUOTE_BUF];
    if (a->spec.payload_case != HODEI__V1__JOB_SPEC__PAYLOAD__NOT_SET)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given twice", flag);
    char *buf = hodei_arena_calloc(&a->arena, 1, HODEI_JOB_SCRIPT_MAX + 2);
    if (!buf)
        return args_nomem(err);
    size_t n = 0;
    int read_errno = 0;
    if (!submit_read_file(path, buf, &n, &read_errno))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: cannot read %s: %s", flag,
                             args_quote(path, q), strerror(read_errno));
    if (n > HODEI_JOB_SCRIPT_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s is larger than %d bytes", flag,
                             args_quote(path, q), HODEI_JOB_SCRIPT_MAX);
    if (n == 0 || memchr(buf, '\0', n))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s is %s", flag, args_quote(path, q),
                             n == 0 ? "empty" : "not text (it holds a NUL byte)");
    a->script.content = buf;
    a->spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    a->spec.script = &a->script;
    return HODEI_OK;
}

/* The first word after the flags (or after "--"): the command; the rest are
 * its arguments, taken verbatim even when they look like flags. */
hodei_status args_submit_command(cli_args *a, int argc, char **argv, int *i, hodei_err *err)
{
    if (a->spec.payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "--script: cannot be combined with a command (got %s)",
                             args_quote(argv[*i], q));
    }
    a->shell.command = argv[*i];
    a->shell.args = argv + *i + 1;
    a->shell.n_args = (size_t)(argc - *i - 1);
    a->spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    a->spec.command = &a->shell;
    *i = argc - 1;
    return HODEI_OK;
}

hodei_status args_submit_no_job_exit_code(cli_args *a, const char *flag, const char *value,
                                          hodei_err *err)
{
    a->no_job_exit_code = true;
    return HODEI_OK;
}

hodei_status args_raw(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->raw = true;
    return HODEI_OK;
}

hodei_status args_submit_quiet(cli_args *a, const char *flag, const char *value, hodei_err *err)
{
    a->quiet = true;
    return HODEI_OK;
}

/* The flags of submit, which run takes too. */
#define SUBMIT_FLAGS                                                                               \
    {"--name", NULL, true, submit_name}, {"--env", "-e", true, submit_env},                        \
        {"--label", "-l", true, submit_label}, {"--constraint", NULL, true, submit_constraint},    \
        {"--priority", NULL, true, submit_priority}, {"--timeout", NULL, true, submit_timeout},    \
        {"--max-attempts", NULL, true, submit_max_attempts}, {"--cpu", NULL, true, submit_cpu},    \
        {"--memory", NULL, true, submit_memory}, {"--storage", NULL, true, submit_storage},        \
        {"--gpus", NULL, true, submit_gpus}, {"--arch", NULL, true, submit_arch},                  \
        {"--provider", NULL, true, submit_provider}, {"--image", NULL, true, submit_image},        \
        {"--idempotency-key", NULL, true, args_submit_idempotency_key},                            \
        {"--secret", NULL, true, submit_secret}, {"--workdir", NULL, true, submit_workdir},        \
        {"--script", NULL, true, submit_script},                                                   \
        {"--interpreter", NULL, true, submit_interpreter}, {"--input", NULL, true, submit_input},  \
        {"--output", NULL, true, submit_output}, {"--checksum", NULL, true, submit_checksum},      \
        {"--credentials", NULL, true, submit_credentials}, {"--when", NULL, true, submit_when},    \
    {                                                                                              \
        "--help", "-h", false, NULL                                                                \
    }

static const args_flag submit_flags[] = {
    SUBMIT_FLAGS,
    {NULL, NULL, false, NULL},
};

const args_flag args_template_create_flags[] = {
    SUBMIT_FLAGS,
    {"--param", NULL, true, args_template_param},
    {"--description", NULL, true, args_template_description},
    {NULL, NULL, false, NULL},
};

static const args_flag run_flags[] = {
    SUBMIT_FLAGS,
    {"--no-job-exit-code", NULL, false, args_submit_no_job_exit_code},
    {"--quiet", "-q", false, args_submit_quiet},
    {"--raw", NULL, false, args_raw},
    {NULL, NULL, false, NULL},
};

/* ------------------------------------------------------------ validation */

/* Which flag sets which field of the request, for messages from libs/domain. */
static const struct {
    const char *path;
    const char *flag;
} submit_field_flags[] = {
    {"idempotency_key", "--idempotency-key"},
    {"spec.name", "--name"},
    {"spec.command", "CMD"},
    {"spec.script.interpreter", "--interpreter"},
    {"spec.script.content", "--script"},
    {"spec.env", "--env"},
    {"spec.resources.cpu_cores", "--cpu"},
    {"spec.resources.memory_bytes", "--memory"},
    {"spec.resources.storage_bytes", "--storage"},
    {"spec.resources.gpu_count", "--gpus"},
    {"spec.resources.architecture", "--arch"},
    {"spec.timeout_ms", "--timeout"},
    {"spec.labels", "--label"},
    {"spec.constraints", "--constraint"},
    {"spec.priority", "--priority"},
    {"spec.max_attempts", "--max-attempts"},
    {"spec.provider", "--provider"},
    {"spec.image", "--image"},
    {"spec.secret_refs", "--secret"},
    {"spec.working_dir", "--workdir"},
    {"spec.inputs", "--input"},
    {"spec.outputs", "--output"},
    {"spec", NULL}, /* the command's name */
};

/* End of the field path at the start of msg: the ": " after it, stepping
 * over a quoted map key (which may hold ": " itself). */
static const char *submit_path_end(const char *msg, size_t prefix_len)
{
    const char *p = msg + prefix_len;
    if (p[0] == '[' && p[1] == '"') {
        for (p += 2; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1])
                p++;
        }
    }
    const char *colon = strstr(p, ": ");
    return colon ? colon : msg + strlen(msg);
}

/* "spec.priority: must be ..." -> "--priority (spec.priority): must be ...". */
static hodei_status submit_name_flag(const cli_args *a, const hodei_err *verr, hodei_err *err)
{
    const char *msg = verr->msg;
    for (size_t i = 0; i < sizeof submit_field_flags / sizeof submit_field_flags[0]; i++) {
        size_t n = strlen(submit_field_flags[i].path);
        if (strncmp(msg, submit_field_flags[i].path, n) != 0 || !msg[n] || !strchr(":[.", msg[n]))
            continue;
        const char *end = submit_path_end(msg, n);
        const char *flag = submit_field_flags[i].flag;
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s (%.*s)%s",
                             flag ? flag : cli_command_name(a->command), (int)(end - msg), msg,
                             end);
    }
    return hodei_err_set(err, HODEI_ERR_INVALID, "%s", msg);
}

hodei_status args_submit_finish(cli_args *a, hodei_err *err)
{
    Hodei__V1__JobSpec *s = &a->spec;
    if (s->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD__NOT_SET)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: a command is required: hodei %s [FLAGS] -- CMD [ARGS...], "
                             "or --script FILE",
                             cli_command_name(a->command), cli_command_name(a->command));
    bool has_interpreter = a->script.interpreter[0] != '\0';
    if (s->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND && has_interpreter)
        return hodei_err_set(err, HODEI_ERR_INVALID, "--interpreter: only with --script");
    if (!has_interpreter)
        a->script.interpreter = CLI_DEFAULT_INTERPRETER;
    a->queue.spec = s;
    hodei_err verr;
    hodei_err_clear(&verr);
    if (hodei_queue_request_validate(&a->queue, &verr) != HODEI_OK)
        return submit_name_flag(a, &verr, err);
    return HODEI_OK;
}

hodei_status args_parse_submit(cli_args *a, int argc, char **argv, int i, hodei_err *err)
{
    const args_flag *flags = a->command == CLI_CMD_RUN ? run_flags : submit_flags;
    hodei_status st = args_parse_flags(a, flags, argc, argv, i, args_submit_command, err);
    if (st != HODEI_OK || a->help)
        return st;
    return args_submit_finish(a, err);
}
