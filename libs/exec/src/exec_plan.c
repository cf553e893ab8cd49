/* The plan: argv, environment, script file and stdin of the child, all
 * prepared before fork. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec_int.h"
#include "hodei/assert.h"
#include "hodei/log.h"

#define PLAN_ENV_TEXT_MAX (8 * 1024 * 1024)
#define PLAN_PATH_MAX 4096
#define PLAN_SCRIPT_DIR_TEMPLATE "hodei-job-XXXXXX"
#define PLAN_SCRIPT_NAME "script"
#define PLAN_NFTW_FDS 16
#define PLAN_ATTEMPT_TEXT_MAX 16

/* Safety headers by interpreter basename. dash (Debian's sh) has no
 * pipefail, so POSIX sh gets only -eu. */
static const struct {
    const char *name;
    const char *header;
} plan_shells[] = {
    {"bash", "set -euo pipefail\n"}, {"zsh", "set -euo pipefail\n"},
    {"ksh", "set -euo pipefail\n"},  {"sh", "set -eu\n"},
    {"dash", "set -eu\n"},
};

/* Environment entries the platform sets and a spec cannot override. */
static const char *const plan_env_reserved[] = {"HODEI_JOB_ID", "HODEI_ATTEMPT", "HODEI_WORKSPACE"};

static const char *plan_str(const char *s)
{
    return s ? s : "";
}

static const char *plan_shell_header(const char *interpreter)
{
    const char *slash = strrchr(interpreter, '/');
    const char *base = slash ? slash + 1 : interpreter;
    for (size_t i = 0; i < sizeof plan_shells / sizeof plan_shells[0]; i++) {
        if (strcmp(base, plan_shells[i].name) == 0)
            return plan_shells[i].header;
    }
    return NULL;
}

static hodei_status plan_write_all(int fd, const char *data, size_t len, const char *what,
                                   hodei_err *err)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return hodei_err_set(err, HODEI_ERR_IO, "exec: writing %s: %s", what, strerror(errno));
        data += n;
        len -= (size_t)n;
    }
    return HODEI_OK;
}

/* ------------------------------------------------------------ argv */

static hodei_status plan_command(exec_plan *p, const Hodei__V1__ShellCommand *cmd, hodei_err *err)
{
    const char *command = plan_str(cmd->command);
    if (command[0] == '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID, "spec.command.command: required");
    if (cmd->n_args + 1 > EXEC_ARGV_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "spec.command.args: at most %d, got %zu",
                             EXEC_ARGV_MAX - 1, cmd->n_args);
    p->argv = calloc(cmd->n_args + 2, sizeof *p->argv);
    if (!p->argv)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "exec: out of memory for argv");
    p->argv[0] = (char *)command;
    for (size_t i = 0; i < cmd->n_args; i++)
        p->argv[i + 1] = (char *)plan_str(cmd->args[i]);
    p->what = command;
    return HODEI_OK;
}

static hodei_status plan_script_file(exec_plan *p, const Hodei__V1__Script *script, hodei_err *err)
{
    int fd = open(p->script_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0700);
    if (fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "exec: creating %s: %s", p->script_path,
                             strerror(errno));
    hodei_status st = HODEI_OK;
    if (fchmod(fd, 0700) != 0)
        st =
            hodei_err_set(err, HODEI_ERR_IO, "exec: chmod %s: %s", p->script_path, strerror(errno));
    /* The job's user reads its script; its private folder is the user's. */
    if (st == HODEI_OK && p->user &&
        (fchown(fd, p->user->uid, p->user->gid) != 0 ||
         chown(p->script_dir, p->user->uid, p->user->gid) != 0))
        st = hodei_err_set(err, HODEI_ERR_IO, "exec: handing %s to user %s: %s", p->script_path,
                           p->user->name, strerror(errno));
    const char *header = plan_shell_header(script->interpreter);
    if (st == HODEI_OK && header)
        st = plan_write_all(fd, header, strlen(header), p->script_path, err);
    const char *content = plan_str(script->content);
    if (st == HODEI_OK)
        st = plan_write_all(fd, content, strlen(content), p->script_path, err);
    if (close(fd) != 0 && st == HODEI_OK)
        st = hodei_err_set(err, HODEI_ERR_IO, "exec: closing %s: %s", p->script_path,
                           strerror(errno));
    return st;
}

static hodei_status plan_script(exec_plan *p, const hodei_exec_opts *opts,
                                const Hodei__V1__Script *script, hodei_err *err)
{
    const char *interpreter = plan_str(script->interpreter);
    if (interpreter[0] == '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID, "spec.script.interpreter: required");
    char dir[PLAN_PATH_MAX];
    int n = snprintf(dir, sizeof dir, "%s/" PLAN_SCRIPT_DIR_TEMPLATE, opts->tmp_dir);
    if (n < 0 || (size_t)n >= sizeof dir)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "opts.tmp_dir: longer than %d bytes",
                             PLAN_PATH_MAX - 32);
    if (!mkdtemp(dir))
        return hodei_err_set(err, HODEI_ERR_IO, "exec: mkdtemp in %s: %s", opts->tmp_dir,
                             strerror(errno));
    p->script_dir = strdup(dir);
    size_t path_len = strlen(dir) + sizeof "/" PLAN_SCRIPT_NAME;
    p->script_path = malloc(path_len);
    p->argv = calloc(3, sizeof *p->argv);
    if (!p->script_dir || !p->script_path || !p->argv) {
        if (!p->script_dir)
            rmdir(dir);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "exec: out of memory for the script");
    }
    snprintf(p->script_path, path_len, "%s/" PLAN_SCRIPT_NAME, dir);
    p->argv[0] = (char *)interpreter;
    p->argv[1] = p->script_path;
    p->what = interpreter;
    return plan_script_file(p, script, err);
}

/* ------------------------------------------------------------ env */

static bool plan_env_name_ok(const char *name)
{
    return name[0] != '\0' && strchr(name, '=') == NULL;
}

static bool plan_env_is_reserved(const char *name)
{
    for (size_t i = 0; i < sizeof plan_env_reserved / sizeof plan_env_reserved[0]; i++) {
        if (strcmp(name, plan_env_reserved[i]) == 0)
            return true;
    }
    return false;
}

static bool plan_spec_has_env(const Hodei__V1__JobSpec *spec, const char *name)
{
    for (size_t i = 0; i < spec->n_env; i++) {
        if (strcmp(plan_str(spec->env[i]->key), name) == 0)
            return true;
    }
    return false;
}

/* Appends "name=value\0". */
static void plan_env_put(exec_plan *p, const char *name, const char *value)
{
    hodei_buf_puts(&p->env_text, name);
    hodei_buf_putc(&p->env_text, '=');
    hodei_buf_append(&p->env_text, value, strlen(value) + 1);
}

static void plan_env_base(exec_plan *p, const hodei_exec_opts *opts, const Hodei__V1__JobSpec *spec,
                          const char *job_id, int attempt)
{
    const char *base[][2] = {{"PATH", opts->path}, {"HOME", opts->home}, {"LANG", "C.UTF-8"}};
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        if (!plan_spec_has_env(spec, base[i][0]))
            plan_env_put(p, base[i][0], base[i][1]);
    }
    char attempt_text[PLAN_ATTEMPT_TEXT_MAX];
    snprintf(attempt_text, sizeof attempt_text, "%d", attempt);
    plan_env_put(p, "HODEI_JOB_ID", job_id);
    plan_env_put(p, "HODEI_ATTEMPT", attempt_text);
    if (opts->workspace)
        plan_env_put(p, "HODEI_WORKSPACE", opts->workspace);
}

/* envp from the NUL-separated entries of env_text. */
static hodei_status plan_env_index(exec_plan *p, size_t count, hodei_err *err)
{
    p->envp = calloc(count + 1, sizeof *p->envp);
    if (!p->envp)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "exec: out of memory for the environment");
    char *s = p->env_text.data;
    for (size_t i = 0; i < count; i++) {
        p->envp[i] = s;
        s += strlen(s) + 1;
    }
    HODEI_ASSERT(s == p->env_text.data + p->env_text.len);
    return HODEI_OK;
}

static hodei_status plan_env(exec_plan *p, const hodei_exec_opts *opts,
                             const Hodei__V1__JobSpec *spec, const char *job_id, int attempt,
                             hodei_err *err)
{
    if (spec->n_env > EXEC_ENV_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "spec.env: at most %d entries, got %zu",
                             EXEC_ENV_MAX, spec->n_env);
    plan_env_base(p, opts, spec, job_id, attempt);
    for (size_t i = 0; i < spec->n_env; i++) {
        const char *name = plan_str(spec->env[i]->key);
        if (!plan_env_name_ok(name))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "spec.env[%zu]: name must be non-empty without '='", i);
        if (!plan_env_is_reserved(name))
            plan_env_put(p, name, plan_str(spec->env[i]->value));
    }
    if (p->env_text.failed)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "spec.env: more than %d bytes in all",
                             PLAN_ENV_TEXT_MAX);
    size_t count = 0;
    for (size_t i = 0; i < p->env_text.len; i++)
        count += p->env_text.data[i] == '\0';
    return plan_env_index(p, count, err);
}

/* ------------------------------------------------------------ stdin */

/* {"name":"value",...} plus a newline, so that a shell's `read` under
 * set -e succeeds. */
static bool plan_secrets_json(hodei_buf *b, const hodei_exec_secret *secrets, size_t n)
{
    hodei_buf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            hodei_buf_putc(b, ',');
        hodei_buf_json_string(b, secrets[i].name);
        hodei_buf_putc(b, ':');
        hodei_buf_json_string(b, secrets[i].value);
    }
    return hodei_buf_puts(b, "}\n");
}

/* The secrets go into a sealed memfd rather than a pipe: the child reads
 * them at its pace (or never) without the parent blocking or meeting
 * SIGPIPE, and they never touch a disk. */
static hodei_status plan_stdin_secrets(exec_plan *p, const hodei_exec_secret *secrets, size_t n,
                                       hodei_err *err)
{
    hodei_status st = HODEI_OK;
    hodei_buf json;
    hodei_buf_init(&json, EXEC_SECRETS_JSON_MAX);
    if (!plan_secrets_json(&json, secrets, n)) {
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "secrets: JSON larger than %d bytes",
                           EXEC_SECRETS_JSON_MAX);
        goto out_wipe;
    }
    p->stdin_fd = memfd_create("hodei-secrets", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (p->stdin_fd < 0) {
        st = hodei_err_set(err, HODEI_ERR_IO, "exec: memfd_create: %s", strerror(errno));
        goto out_wipe;
    }
    st = plan_write_all(p->stdin_fd, json.data, json.len, "the secrets", err);
    if (st == HODEI_OK && lseek(p->stdin_fd, 0, SEEK_SET) != 0)
        st = hodei_err_set(err, HODEI_ERR_IO, "exec: rewinding the secrets: %s", strerror(errno));
    if (st == HODEI_OK)
        (void)fcntl(p->stdin_fd, F_ADD_SEALS,
                    F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
out_wipe:
    if (json.data)
        explicit_bzero(json.data, json.cap);
    hodei_buf_fini(&json);
    return st;
}

static hodei_status plan_stdin(exec_plan *p, const hodei_exec_secret *secrets, size_t n,
                               hodei_err *err)
{
    if (n > 0)
        return plan_stdin_secrets(p, secrets, n, err);
    p->stdin_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (p->stdin_fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "exec: open /dev/null: %s", strerror(errno));
    return HODEI_OK;
}

/* ------------------------------------------------------------ plan */

hodei_status exec_plan_build(exec_plan *p, const hodei_exec_opts *opts,
                             const Hodei__V1__JobSpec *spec, const char *job_id, int attempt,
                             const hodei_exec_secret *secrets, size_t n_secrets, hodei_err *err)
{
    memset(p, 0, sizeof *p);
    p->stdin_fd = -1;
    p->user = opts->user;
    hodei_buf_init(&p->env_text, PLAN_ENV_TEXT_MAX);
    hodei_status st;
    if (spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND && spec->command)
        st = plan_command(p, spec->command, err);
    else if (spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT && spec->script)
        st = plan_script(p, opts, spec->script, err);
    else
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "spec.payload: either command or script is required");
    if (st == HODEI_OK)
        st = plan_env(p, opts, spec, job_id, attempt, err);
    if (st == HODEI_OK)
        st = plan_stdin(p, secrets, n_secrets, err);
    const char *wd = plan_str(spec->working_dir);
    p->working_dir = wd[0] ? wd : opts->workspace;
    return st;
}

static int plan_remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (remove(path) != 0 && errno != ENOENT)
        HLOG_WARN("exec: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

void exec_plan_fini(exec_plan *p)
{
    if (p->stdin_fd >= 0)
        close(p->stdin_fd);
    if (p->script_dir &&
        nftw(p->script_dir, plan_remove_entry, PLAN_NFTW_FDS, FTW_DEPTH | FTW_PHYS) != 0)
        HLOG_WARN("exec: cannot walk %s: %s", p->script_dir, strerror(errno));
    free(p->script_dir);
    free(p->script_path);
    free(p->argv);
    free(p->envp);
    hodei_buf_fini(&p->env_text);
    memset(p, 0, sizeof *p);
    p->stdin_fd = -1;
}
