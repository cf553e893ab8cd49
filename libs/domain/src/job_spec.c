#include "hodei/job_spec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hodei/artifact_ref.h"
#include "hodei/image_ref.h"
#include "hodei/util.h"

/* Keys and names quoted in messages: at most this many input bytes shown. */
#define SPEC_QUOTE_IN_MAX 48
#define SPEC_QUOTE_BUF (2 + SPEC_QUOTE_IN_MAX * 4 + 3 + 1)
#define SPEC_PATH_MAX 256

typedef hodei_status (*spec_check_fn)(const Hodei__V1__JobSpec *spec, hodei_err *err);

/* How one map field (env, labels, constraints) is checked. */
typedef struct {
    const char *path; /* "spec.env" */
    size_t count_max;
    const char *key_noun; /* "name", "key" */
    bool (*key_ok)(const char *key);
    const char *key_rule; /* shown when key_ok refuses */
    size_t value_max;
} spec_map_rule;

static const char *spec_str(const char *s)
{
    return s ? s : "";
}

/* Writes s as "..." into out, escaping quotes, backslashes and bytes outside
 * printable ASCII as \xNN, and cutting long input with "...". */
static void spec_quote(const char *s, char out[SPEC_QUOTE_BUF])
{
    size_t o = 0;
    out[o++] = '"';
    size_t i = 0;
    for (; s[i] && i < SPEC_QUOTE_IN_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, SPEC_QUOTE_BUF - o, "\\x%02x", c);
        }
    }
    if (s[i]) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o++] = '"';
    out[o] = '\0';
}

/* path + "[\"key\"]" into out. */
static void spec_path_key(const char *path, const char *key, char out[SPEC_PATH_MAX])
{
    char quoted[SPEC_QUOTE_BUF];
    spec_quote(key, quoted);
    if (snprintf(out, SPEC_PATH_MAX, "%s[%s]", path, quoted) >= SPEC_PATH_MAX)
        out[SPEC_PATH_MAX - 1] = '\0';
}

/* Length within [min_len, max_len] and valid UTF-8. */
static hodei_status spec_check_text(const char *path, const char *s, size_t min_len, size_t max_len,
                                    hodei_err *err)
{
    size_t n = strlen(spec_str(s));
    if (n < min_len)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: required", path);
    if (n > max_len)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be at most %zu bytes, got %zu", path,
                             max_len, n);
    if (!hodei_utf8_valid(spec_str(s), n))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be valid UTF-8", path);
    return HODEI_OK;
}

static hodei_status spec_check_count(const char *path, size_t n, size_t max, hodei_err *err)
{
    if (n > max)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: at most %zu entries, got %zu", path, max,
                             n);
    return HODEI_OK;
}

/* true when every byte of s is in the set `chars` or an ASCII letter/digit
 * as allowed by the flags, and its length is within [min_len, max_len]. */
static bool spec_charset_ok(const char *s, size_t min_len, size_t max_len, bool upper,
                            const char *extra)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (upper && c >= 'A' && c <= 'Z') || (c != 0 && strchr(extra, c));
        if (!ok)
            return false;
    }
    return n >= min_len && n <= max_len;
}

/* ------------------------------------------------------------- keys */

static bool spec_env_name_ok(const char *s)
{
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    return spec_charset_ok(s, 1, HODEI_JOB_ENV_NAME_MAX, true, "_");
}

static bool spec_label_key_ok(const char *s)
{
    return spec_charset_ok(s, 1, HODEI_JOB_LABEL_KEY_MAX, true, "._/-");
}

static bool spec_provider_ok(const char *s)
{
    return spec_charset_ok(s, 1, HODEI_JOB_PROVIDER_MAX, false, "-");
}

bool hodei_secret_ref_parse(const char *ref, const char *default_ns,
                            char ns[HODEI_SECRET_REF_NS_BUF], char name[HODEI_SECRET_REF_NAME_BUF])
{
    const char *slash = strchr(ref, '/');
    const char *name_part = slash ? slash + 1 : ref;
    size_t ns_len = slash ? (size_t)(slash - ref) : 0;
    if (slash) {
        if (ns_len == 0 || ns_len > HODEI_JOB_SECRET_NS_MAX || ref[0] == '-' || slash[-1] == '-')
            return false;
        for (size_t i = 0; i < ns_len; i++) {
            char c = ref[i];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                return false;
        }
    }
    if (!spec_charset_ok(name_part, 1, HODEI_JOB_SECRET_REF_MAX, true, "_.-"))
        return false;
    if (ns) {
        if (slash) {
            memcpy(ns, ref, ns_len);
            ns[ns_len] = '\0';
        } else if (!hodei_strlcpy(ns, default_ns ? default_ns : "", HODEI_SECRET_REF_NS_BUF)) {
            return false;
        }
    }
    if (name)
        memcpy(name, name_part, strlen(name_part) + 1);
    return true;
}

static bool spec_secret_ref_ok(const char *s)
{
    return hodei_secret_ref_parse(s, NULL, NULL, NULL);
}

bool hodei_job_arch_valid(const char *arch)
{
    static const char *const archs[] = {"", "amd64", "arm64", "x86_64", "aarch64"};
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
        if (strcmp(spec_str(arch), archs[i]) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------- maps */

static hodei_status spec_check_entry(const spec_map_rule *rule, size_t key_max, const char *key,
                                     const char *value, hodei_err *err)
{
    char path[SPEC_PATH_MAX];
    spec_path_key(rule->path, key, path);
    size_t key_len = strlen(key);
    if (key_len > key_max)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s must be at most %zu bytes, got %zu",
                             path, rule->key_noun, key_max, key_len);
    if (!rule->key_ok(key))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s must %s", path, rule->key_noun,
                             rule->key_rule);
    size_t value_len = strlen(value);
    if (value_len > rule->value_max)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: value must be at most %zu bytes, got %zu",
                             path, rule->value_max, value_len);
    if (!hodei_utf8_valid(value, value_len))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: value must be valid UTF-8", path);
    return HODEI_OK;
}

/* keys[i], values[i] for i < n, n already checked against rule->count_max. */
static hodei_status spec_check_map(const spec_map_rule *rule, size_t key_max, size_t n,
                                   const char *const *keys, const char *const *values,
                                   hodei_err *err)
{
    for (size_t i = 0; i < n; i++) {
        hodei_status st = spec_check_entry(rule, key_max, keys[i], values[i], err);
        if (st != HODEI_OK)
            return st;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(keys[i], keys[j]) == 0) {
                char path[SPEC_PATH_MAX];
                spec_path_key(rule->path, keys[i], path);
                return hodei_err_set(err, HODEI_ERR_INVALID, "%s: duplicate %s", path,
                                     rule->key_noun);
            }
        }
    }
    return HODEI_OK;
}

static hodei_status spec_missing_entry(const char *path, size_t i, hodei_err *err)
{
    return hodei_err_set(err, HODEI_ERR_INVALID, "%s: entry %zu is missing", path, i);
}

static const spec_map_rule spec_env_rule = {
    "spec.env",
    HODEI_JOB_ENV_MAX,
    "name",
    spec_env_name_ok,
    "match [A-Za-z_][A-Za-z0-9_]*",
    HODEI_JOB_ENV_VALUE_MAX,
};

static hodei_status spec_check_env(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    const spec_map_rule *rule = &spec_env_rule;
    hodei_status st = spec_check_count(rule->path, spec->n_env, rule->count_max, err);
    if (st != HODEI_OK)
        return st;
    const char *keys[HODEI_JOB_ENV_MAX], *values[HODEI_JOB_ENV_MAX];
    for (size_t i = 0; i < spec->n_env; i++) {
        if (!spec->env[i])
            return spec_missing_entry(rule->path, i, err);
        keys[i] = spec_str(spec->env[i]->key);
        values[i] = spec_str(spec->env[i]->value);
    }
    return spec_check_map(rule, HODEI_JOB_ENV_NAME_MAX, spec->n_env, keys, values, err);
}

#define SPEC_LABEL_RULE(p)                                                                         \
    {                                                                                              \
        p, HODEI_JOB_LABELS_MAX, "key", spec_label_key_ok,                                         \
            "be 1 to 63 characters of [a-zA-Z0-9._/-]", HODEI_JOB_LABEL_VALUE_MAX,                 \
    }
static const spec_map_rule spec_labels_rule = SPEC_LABEL_RULE("spec.labels");
static const spec_map_rule spec_constraints_rule = SPEC_LABEL_RULE("spec.constraints");
static const spec_map_rule spec_labels_filter_rule = SPEC_LABEL_RULE("labels");

static hodei_status spec_check_labels(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    const spec_map_rule *rule = &spec_labels_rule;
    hodei_status st = spec_check_count(rule->path, spec->n_labels, rule->count_max, err);
    if (st != HODEI_OK)
        return st;
    const char *keys[HODEI_JOB_LABELS_MAX], *values[HODEI_JOB_LABELS_MAX];
    for (size_t i = 0; i < spec->n_labels; i++) {
        if (!spec->labels[i])
            return spec_missing_entry(rule->path, i, err);
        keys[i] = spec_str(spec->labels[i]->key);
        values[i] = spec_str(spec->labels[i]->value);
    }
    return spec_check_map(rule, HODEI_JOB_LABEL_KEY_MAX, spec->n_labels, keys, values, err);
}

static hodei_status spec_check_constraints(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    const spec_map_rule *rule = &spec_constraints_rule;
    hodei_status st = spec_check_count(rule->path, spec->n_constraints, rule->count_max, err);
    if (st != HODEI_OK)
        return st;
    const char *keys[HODEI_JOB_LABELS_MAX], *values[HODEI_JOB_LABELS_MAX];
    for (size_t i = 0; i < spec->n_constraints; i++) {
        if (!spec->constraints[i])
            return spec_missing_entry(rule->path, i, err);
        keys[i] = spec_str(spec->constraints[i]->key);
        values[i] = spec_str(spec->constraints[i]->value);
    }
    return spec_check_map(rule, HODEI_JOB_LABEL_KEY_MAX, spec->n_constraints, keys, values, err);
}

/* ------------------------------------------------------------- payload */

static hodei_status spec_check_command(const Hodei__V1__ShellCommand *cmd, hodei_err *err)
{
    hodei_status st =
        spec_check_text("spec.command.command", cmd->command, 1, HODEI_JOB_COMMAND_MAX, err);
    if (st == HODEI_OK)
        st = spec_check_count("spec.command.args", cmd->n_args, HODEI_JOB_ARGS_MAX, err);
    for (size_t i = 0; st == HODEI_OK && i < cmd->n_args; i++) {
        char path[SPEC_PATH_MAX];
        snprintf(path, sizeof path, "spec.command.args[%zu]", i);
        st = spec_check_text(path, cmd->args[i], 0, HODEI_JOB_ARG_MAX, err);
    }
    return st;
}

static hodei_status spec_check_script(const Hodei__V1__Script *script, hodei_err *err)
{
    hodei_status st = spec_check_text("spec.script.interpreter", script->interpreter, 1,
                                      HODEI_JOB_INTERPRETER_MAX, err);
    if (st == HODEI_OK)
        st = spec_check_text("spec.script.content", script->content, 1, HODEI_JOB_SCRIPT_MAX, err);
    return st;
}

static hodei_status spec_check_payload(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    if (spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND && spec->command)
        return spec_check_command(spec->command, err);
    if (spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT && spec->script)
        return spec_check_script(spec->script, err);
    return hodei_err_set(err, HODEI_ERR_INVALID,
                         "spec.payload: either command or script is required");
}

/* ------------------------------------------------------------- resources */

static hodei_status spec_check_bytes(const char *path, int64_t v, int64_t max, hodei_err *err)
{
    if (v < 0 || v > max)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be between 0 and %lld (1 PiB), got %lld", path,
                             (long long)max, (long long)v);
    return HODEI_OK;
}

static hodei_status spec_check_resources(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    const Hodei__V1__ResourceRequirements *r = spec->resources;
    if (!r)
        return HODEI_OK;
    if (!isfinite(r->cpu_cores) || r->cpu_cores < 0 || r->cpu_cores > HODEI_JOB_CPU_CORES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "spec.resources.cpu_cores: must be a finite number between 0 "
                             "and %g, got %g",
                             HODEI_JOB_CPU_CORES_MAX, r->cpu_cores);
    hodei_status st = spec_check_bytes("spec.resources.memory_bytes", r->memory_bytes,
                                       HODEI_JOB_MEMORY_BYTES_MAX, err);
    if (st == HODEI_OK)
        st = spec_check_bytes("spec.resources.storage_bytes", r->storage_bytes,
                              HODEI_JOB_STORAGE_BYTES_MAX, err);
    if (st != HODEI_OK)
        return st;
    if (r->gpu_count < 0 || r->gpu_count > HODEI_JOB_GPU_COUNT_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "spec.resources.gpu_count: must be between 0 and %d, got %d",
                             HODEI_JOB_GPU_COUNT_MAX, (int)r->gpu_count);
    if (!hodei_job_arch_valid(r->architecture)) {
        char quoted[SPEC_QUOTE_BUF];
        spec_quote(spec_str(r->architecture), quoted);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "spec.resources.architecture: must be empty or one of amd64, "
                             "arm64, x86_64, aarch64, got %s",
                             quoted);
    }
    return HODEI_OK;
}

/* ------------------------------------------------------------- scalars */

static hodei_status spec_check_timeout(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    int64_t t = spec->timeout_ms;
    if (t == 0 || (t >= HODEI_JOB_TIMEOUT_MS_MIN && t <= HODEI_JOB_TIMEOUT_MS_MAX))
        return HODEI_OK;
    return hodei_err_set(err, HODEI_ERR_INVALID,
                         "spec.timeout_ms: must be 0 (server default) or between %lld and "
                         "%lld, got %lld",
                         (long long)HODEI_JOB_TIMEOUT_MS_MIN, (long long)HODEI_JOB_TIMEOUT_MS_MAX,
                         (long long)t);
}

static hodei_status spec_check_priority(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    if (spec->priority >= HODEI_JOB_PRIORITY_MIN && spec->priority <= HODEI_JOB_PRIORITY_MAX)
        return HODEI_OK;
    return hodei_err_set(err, HODEI_ERR_INVALID, "spec.priority: must be between %d and %d, got %d",
                         HODEI_JOB_PRIORITY_MIN, HODEI_JOB_PRIORITY_MAX, (int)spec->priority);
}

static hodei_status spec_check_max_attempts(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    if (spec->max_attempts >= 0 && spec->max_attempts <= HODEI_JOB_MAX_ATTEMPTS_MAX)
        return HODEI_OK;
    return hodei_err_set(err, HODEI_ERR_INVALID,
                         "spec.max_attempts: must be between 0 and %d, got %d",
                         HODEI_JOB_MAX_ATTEMPTS_MAX, (int)spec->max_attempts);
}

static hodei_status spec_check_name(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    return spec_check_text("spec.name", spec->name, 0, HODEI_JOB_NAME_MAX, err);
}

static hodei_status spec_check_image(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    char why[HODEI_IMAGE_WHY_MAX], quoted[SPEC_QUOTE_BUF];
    hodei_status st = spec_check_text("spec.image", spec->image, 0, HODEI_JOB_IMAGE_MAX, err);
    if (st != HODEI_OK || spec_str(spec->image)[0] == '\0' ||
        hodei_image_ref_parse(spec->image, NULL, why))
        return st;
    spec_quote(spec->image, quoted);
    return hodei_err_set(
        err, HODEI_ERR_INVALID,
        "spec.image: %s is not an image reference ([registry/]name[:tag][@digest]):"
        " %s",
        quoted, why);
}

static hodei_status spec_check_provider(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    const char *p = spec_str(spec->provider);
    if (p[0] == '\0' || spec_provider_ok(p))
        return HODEI_OK;
    char quoted[SPEC_QUOTE_BUF];
    spec_quote(p, quoted);
    return hodei_err_set(err, HODEI_ERR_INVALID,
                         "spec.provider: must be empty or 1 to %d characters of [a-z0-9-], "
                         "got %s",
                         HODEI_JOB_PROVIDER_MAX, quoted);
}

static hodei_status spec_check_working_dir(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    const char *d = spec_str(spec->working_dir);
    hodei_status st = spec_check_text("spec.working_dir", d, 0, HODEI_JOB_WORKING_DIR_MAX, err);
    if (st == HODEI_OK && d[0] != '\0' && d[0] != '/')
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "spec.working_dir: must be an absolute path (start with /)");
    return st;
}

/* ------------------------------------------------------------- lists */

/* An input: a URL to read, a workspace path to write. */
static hodei_status spec_check_input(const char *path, size_t i, const Hodei__V1__Artifact *a,
                                     hodei_err *err)
{
    char field[SPEC_PATH_MAX];
    hodei_artifact_url url;
    snprintf(field, sizeof field, "%s[%zu].source", path, i);
    hodei_status st = hodei_artifact_url_parse(a->source, false, field, &url, err);
    if (st != HODEI_OK)
        return st;
    bool many = url.scheme == HODEI_ARTIFACT_S3 && url.prefix;
    snprintf(field, sizeof field, "%s[%zu].destination", path, i);
    st = hodei_artifact_relpath_check(a->destination, true, true, field, err);
    if (st != HODEI_OK)
        return st;
    size_t base_len = 0;
    hodei_artifact_basename(a->source, &base_len);
    if (!many && spec_str(a->destination)[0] == '\0' && base_len == 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: required when the source names no file",
                             field);
    snprintf(field, sizeof field, "%s[%zu].checksum", path, i);
    const char *sum = spec_str(a->checksum);
    if (sum[0] && !hodei_artifact_checksum_ok(sum))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be \"sha256:\" and 64 hex digits",
                             field);
    if (sum[0] && many)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: a checksum needs a single object, not an s3 prefix", field);
    if (a->when != HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ON_SUCCESS)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s[%zu].when: only outputs take it", path, i);
    return HODEI_OK;
}

/* An output: a workspace path or glob to read, a URL to write. */
static hodei_status spec_check_output(const char *path, size_t i, const Hodei__V1__Artifact *a,
                                      hodei_err *err)
{
    char field[SPEC_PATH_MAX];
    hodei_artifact_url url;
    snprintf(field, sizeof field, "%s[%zu].source", path, i);
    hodei_status st = hodei_artifact_relpath_check(a->source, false, false, field, err);
    if (st != HODEI_OK)
        return st;
    snprintf(field, sizeof field, "%s[%zu].destination", path, i);
    st = hodei_artifact_url_parse(a->destination, true, field, &url, err);
    if (st != HODEI_OK)
        return st;
    if (spec_str(a->checksum)[0])
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s[%zu].checksum: only inputs take one (outputs' checksums are "
                             "computed and recorded)",
                             path, i);
    if (a->when != HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ON_SUCCESS &&
        a->when != HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ON_FAILURE &&
        a->when != HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ALWAYS)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s[%zu].when: must be ON_SUCCESS, ON_FAILURE or ALWAYS, got %d", path,
                             i, (int)a->when);
    return HODEI_OK;
}

static hodei_status spec_check_credentials(const char *path, size_t i, bool output,
                                           const Hodei__V1__Artifact *a, hodei_err *err)
{
    const char *cred = spec_str(a->credentials);
    if (!cred[0])
        return HODEI_OK;
    if (!spec_secret_ref_ok(cred))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s[%zu].credentials: must name a stored secret: 1 to %d characters "
                             "of [A-Za-z0-9_.-]",
                             path, i, HODEI_JOB_SECRET_REF_MAX);
    const char *url = output ? spec_str(a->destination) : spec_str(a->source);
    if (strncmp(url, "s3://", 5) != 0 && strncmp(url, "S3://", 5) != 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s[%zu].credentials: only s3:// %s take credentials", path, i,
                             output ? "destinations" : "sources");
    return HODEI_OK;
}

static hodei_status spec_check_artifacts(const char *path, bool output, size_t n,
                                         Hodei__V1__Artifact *const *items, hodei_err *err)
{
    hodei_status st = spec_check_count(path, n, HODEI_JOB_ARTIFACTS_MAX, err);
    for (size_t i = 0; st == HODEI_OK && i < n; i++) {
        if (!items[i])
            return spec_missing_entry(path, i, err);
        char field[SPEC_PATH_MAX];
        snprintf(field, sizeof field, "%s[%zu].source", path, i);
        st = spec_check_text(field, items[i]->source, 1, HODEI_JOB_ARTIFACT_PATH_MAX, err);
        if (st != HODEI_OK)
            break;
        snprintf(field, sizeof field, "%s[%zu].destination", path, i);
        st = spec_check_text(field, items[i]->destination, output ? 1 : 0,
                             HODEI_JOB_ARTIFACT_PATH_MAX, err);
        if (st == HODEI_OK)
            st = output ? spec_check_output(path, i, items[i], err)
                        : spec_check_input(path, i, items[i], err);
        if (st == HODEI_OK)
            st = spec_check_credentials(path, i, output, items[i], err);
    }
    return st;
}

static hodei_status spec_check_inputs(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    return spec_check_artifacts("spec.inputs", false, spec->n_inputs, spec->inputs, err);
}

static hodei_status spec_check_outputs(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    return spec_check_artifacts("spec.outputs", true, spec->n_outputs, spec->outputs, err);
}

static hodei_status spec_check_secret_refs(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    hodei_status st =
        spec_check_count("spec.secret_refs", spec->n_secret_refs, HODEI_JOB_SECRET_REFS_MAX, err);
    for (size_t i = 0; st == HODEI_OK && i < spec->n_secret_refs; i++) {
        const char *ref = spec_str(spec->secret_refs[i]);
        if (!spec_secret_ref_ok(ref))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "spec.secret_refs[%zu]: must be NAME or NAMESPACE/NAME, NAME 1 to "
                                 "%d characters of [A-Za-z0-9_.-], NAMESPACE 1 to %d of [a-z0-9-]",
                                 i, HODEI_JOB_SECRET_REF_MAX, HODEI_JOB_SECRET_NS_MAX);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ref, spec_str(spec->secret_refs[j])) == 0)
                return hodei_err_set(err, HODEI_ERR_INVALID,
                                     "spec.secret_refs[%zu]: duplicate of spec.secret_refs[%zu]", i,
                                     j);
        }
    }
    return st;
}

/* Last: every string is known non-NULL and bounded by now. */
static hodei_status spec_check_packed(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    size_t n = protobuf_c_message_get_packed_size(&spec->base);
    if (n > HODEI_JOB_SPEC_PACKED_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "spec: encoded size must be at most %d bytes, got %zu",
                             HODEI_JOB_SPEC_PACKED_MAX, n);
    return HODEI_OK;
}

/* ------------------------------------------------------------- public */

/* In the order a client reads the fields; the first error wins. */
static const spec_check_fn spec_checks[] = {
    spec_check_name,    spec_check_payload,     spec_check_env,          spec_check_resources,
    spec_check_timeout, spec_check_labels,      spec_check_constraints,  spec_check_inputs,
    spec_check_outputs, spec_check_priority,    spec_check_max_attempts, spec_check_provider,
    spec_check_image,   spec_check_secret_refs, spec_check_working_dir,  spec_check_packed,
};

hodei_status hodei_job_spec_validate(const Hodei__V1__JobSpec *spec, hodei_err *err)
{
    if (!spec)
        return hodei_err_set(err, HODEI_ERR_INVALID, "spec: required");
    for (size_t i = 0; i < sizeof spec_checks / sizeof spec_checks[0]; i++) {
        hodei_status st = spec_checks[i](spec, err);
        if (st != HODEI_OK)
            return st;
    }
    hodei_err_clear(err);
    return HODEI_OK;
}

static hodei_status spec_check_idempotency_key(const char *key, hodei_err *err)
{
    size_t n = strlen(key);
    if (n > HODEI_JOB_IDEMPOTENCY_KEY_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "idempotency_key: must be at most %d bytes, got %zu",
                             HODEI_JOB_IDEMPOTENCY_KEY_MAX, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c < 0x21 || c > 0x7e)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "idempotency_key: must be printable ASCII without spaces "
                                 "(0x21 to 0x7e), found 0x%02x at byte %zu",
                                 c, i);
    }
    return HODEI_OK;
}

hodei_status hodei_queue_request_validate(const Hodei__V1__QueueJobRequest *req, hodei_err *err)
{
    if (!req || !req->spec)
        return hodei_err_set(err, HODEI_ERR_INVALID, "spec: required");
    hodei_status st = spec_check_idempotency_key(spec_str(req->idempotency_key), err);
    if (st != HODEI_OK)
        return st;
    return hodei_job_spec_validate(req->spec, err);
}

int32_t hodei_job_spec_max_attempts(const Hodei__V1__JobSpec *spec)
{
    if (!spec || spec->max_attempts <= 0)
        return 1;
    return spec->max_attempts;
}

int64_t hodei_job_spec_timeout_ms(const Hodei__V1__JobSpec *spec)
{
    if (!spec || spec->timeout_ms <= 0)
        return HODEI_JOB_DEFAULT_TIMEOUT_MS;
    return spec->timeout_ms;
}

hodei_status hodei_job_labels_filter_validate(const Hodei__V1__ListJobsRequest *req, hodei_err *err)
{
    const spec_map_rule *rule = &spec_labels_filter_rule;
    hodei_status st = spec_check_count(rule->path, req->n_labels, rule->count_max, err);
    if (st != HODEI_OK)
        return st;
    const char *keys[HODEI_JOB_LABELS_MAX], *values[HODEI_JOB_LABELS_MAX];
    for (size_t i = 0; i < req->n_labels; i++) {
        if (!req->labels[i])
            return spec_missing_entry(rule->path, i, err);
        keys[i] = spec_str(req->labels[i]->key);
        values[i] = spec_str(req->labels[i]->value);
    }
    return spec_check_map(rule, HODEI_JOB_LABEL_KEY_MAX, req->n_labels, keys, values, err);
}
