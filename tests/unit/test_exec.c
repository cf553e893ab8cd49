/* libs/exec: runs real processes (sh, bash, cat, seq, sleep). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hodei/buf.h"
#include "hodei/exec.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define T_TEXT_MAX (16 * 1024 * 1024)
#define T_LINES_KEPT 16
#define T_ENV_MAX 8
#define T_ARGS_MAX 8
#define T_JOB_ID "0190b1c2-0000-7000-8000-000000000001"

/* ------------------------------------------------------------ capture */

typedef struct {
    hodei_buf text[2];         /* stdout, stderr: lines joined by '\n' */
    char *first[T_LINES_KEPT]; /* the first lines, any stream */
    uint64_t next_seq;
    bool seq_ok;
    size_t lines;
    size_t batches;
    size_t batch_max_seen;
    size_t multi_batch_bytes_max_seen; /* line bytes, batches of 2+ lines */
    int64_t first_batch_ms;            /* monotonic */
    size_t long_piece_max;
    pid_t pid;
} capture;

static void cap_init(capture *c)
{
    memset(c, 0, sizeof *c);
    hodei_buf_init(&c->text[0], T_TEXT_MAX);
    hodei_buf_init(&c->text[1], T_TEXT_MAX);
    c->next_seq = 1;
    c->seq_ok = true;
    c->first_batch_ms = -1;
}

static void cap_fini(capture *c)
{
    hodei_buf_fini(&c->text[0]);
    hodei_buf_fini(&c->text[1]);
    for (size_t i = 0; i < T_LINES_KEPT; i++)
        free(c->first[i]);
}

static const char *cap_out(capture *c)
{
    return c->text[0].data ? c->text[0].data : "";
}
static const char *cap_err(capture *c)
{
    return c->text[1].data ? c->text[1].data : "";
}

static void cap_line(capture *c, const Hodei__V1__LogLine *l)
{
    if (l->sequence != c->next_seq)
        c->seq_ok = false;
    c->next_seq = l->sequence + 1;
    int s = l->stream == HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR ? 1 : 0;
    hodei_buf_append(&c->text[s], l->data.data, l->data.len);
    hodei_buf_putc(&c->text[s], '\n');
    if (c->lines < T_LINES_KEPT) {
        c->first[c->lines] = calloc(1, l->data.len + 1);
        memcpy(c->first[c->lines], l->data.data, l->data.len);
    }
    if (l->data.len > c->long_piece_max)
        c->long_piece_max = l->data.len;
    cr_assert(l->time && l->time->seconds > 0);
    c->lines++;
}

static void cap_batch(void *user, Hodei__V1__LogLine **lines, size_t n)
{
    capture *c = user;
    cr_assert(n > 0);
    if (c->first_batch_ms < 0)
        c->first_batch_ms = hodei_mono_ms();
    if (n > c->batch_max_seen)
        c->batch_max_seen = n;
    c->batches++;
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        cap_line(c, lines[i]);
        bytes += lines[i]->data.len;
    }
    if (n > 1 && bytes > c->multi_batch_bytes_max_seen)
        c->multi_batch_bytes_max_seen = bytes;
}

static void cap_start(void *user, pid_t pid)
{
    ((capture *)user)->pid = pid;
}

/* ------------------------------------------------------------ specs */

typedef struct {
    Hodei__V1__JobSpec spec;
    Hodei__V1__ShellCommand cmd;
    Hodei__V1__Script script;
    char *args[T_ARGS_MAX];
    Hodei__V1__JobSpec__EnvEntry env[T_ENV_MAX];
    Hodei__V1__JobSpec__EnvEntry *envp[T_ENV_MAX];
} tspec;

static void ts_command(tspec *t, const char *cmd, const char *const *args, size_t n)
{
    memset(t, 0, sizeof *t);
    hodei__v1__job_spec__init(&t->spec);
    hodei__v1__shell_command__init(&t->cmd);
    cr_assert(n <= T_ARGS_MAX);
    t->cmd.command = (char *)cmd;
    for (size_t i = 0; i < n; i++)
        t->args[i] = (char *)args[i];
    t->cmd.args = t->args;
    t->cmd.n_args = n;
    t->spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    t->spec.command = &t->cmd;
    t->spec.env = t->envp;
}

/* sh -c SCRIPT */
static void ts_sh(tspec *t, const char *script)
{
    const char *args[] = {"-c", script};
    ts_command(t, "sh", args, 2);
}

static void ts_script(tspec *t, const char *interpreter, const char *content)
{
    memset(t, 0, sizeof *t);
    hodei__v1__job_spec__init(&t->spec);
    hodei__v1__script__init(&t->script);
    t->script.interpreter = (char *)interpreter;
    t->script.content = (char *)content;
    t->spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    t->spec.script = &t->script;
    t->spec.env = t->envp;
}

static void ts_env(tspec *t, const char *key, const char *value)
{
    size_t i = t->spec.n_env++;
    cr_assert(i < T_ENV_MAX);
    hodei__v1__job_spec__env_entry__init(&t->env[i]);
    t->env[i].key = (char *)key;
    t->env[i].value = (char *)value;
    t->envp[i] = &t->env[i];
}

static hodei_status run_full(tspec *t, const hodei_exec_opts *opts,
                             const hodei_exec_secret *secrets, size_t n_secrets,
                             hodei_exec_handle *h, capture *cap, hodei_exec_result *res)
{
    hodei_exec_callbacks cb = {.on_start = cap_start, .on_batch = cap_batch, .user = cap};
    hodei_err err;
    hodei_status st =
        hodei_exec_run(opts, &t->spec, T_JOB_ID, 2, secrets, n_secrets, &cb, h, res, &err);
    if (st != HODEI_OK)
        cr_log_info("exec: %s: %s", hodei_status_str(st), err.msg);
    return st;
}

static hodei_status run_simple(tspec *t, capture *cap, hodei_exec_result *res)
{
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    return run_full(t, &opts, NULL, 0, NULL, cap, res);
}

/* ------------------------------------------------------------ processes */

/* Alive and not a zombie (PID 1 here may not reap orphans). */
static bool pid_alive(pid_t pid)
{
    if (kill(pid, 0) != 0)
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

static bool pid_gone_within(pid_t pid, int64_t ms)
{
    int64_t until = hodei_mono_ms() + ms;
    while (pid_alive(pid)) {
        if (hodei_mono_ms() > until)
            return false;
        hodei_sleep_ms(10);
    }
    return true;
}

static pid_t first_line_pid(capture *c)
{
    int64_t v = 0;
    cr_assert(c->first[0] && hodei_parse_i64(c->first[0], 1, INT32_MAX, &v),
              "first line should be a pid: %s", c->first[0] ? c->first[0] : "(none)");
    return (pid_t)v;
}

/* ------------------------------------------------------------ tests */

TestSuite(exec, .timeout = 60);

Test(exec, command_with_args_gives_numbered_stdout_line)
{
    tspec t;
    const char *args[] = {"hello", "two words"};
    ts_command(&t, "echo", args, 2);
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error: %s", r.error);
    cr_assert_eq(r.exit_code, 0);
    cr_assert_str_empty(r.error);
    cr_assert_str_eq(cap_out(&c), "hello two words\n");
    cr_assert_eq(c.lines, 1);
    cr_assert_eq(r.lines, 1);
    cr_assert(c.seq_ok);
    cr_assert_gt(c.pid, 0);
    cr_assert(r.started_us > 0 && r.finished_us >= r.started_us);
    cap_fini(&c);
}

Test(exec, nonzero_exit_is_failed_with_the_code)
{
    tspec t;
    ts_sh(&t, "echo bye; exit 7");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r.exit_code, 7);
    cr_assert_str_eq(cap_out(&c), "bye\n");
    cap_fini(&c);
}

Test(exec, killed_by_signal_is_128_plus_signal)
{
    tspec t;
    ts_sh(&t, "kill -9 $$");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r.exit_code, 128 + SIGKILL);
    cr_assert(strstr(r.error, "signal 9"), "%s", r.error);
    cap_fini(&c);
}

Test(exec, missing_command_fails_127_with_reason)
{
    tspec t;
    ts_command(&t, "nosuchcmd-hodei", NULL, 0);
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r.exit_code, 127);
    cr_assert_str_eq(r.error, "cannot start 'nosuchcmd-hodei': No such file or directory");
    cr_assert_eq(c.lines, 0);
    cr_assert_eq(c.pid, 0, "on_start must not be called");
    cap_fini(&c);
}

Test(exec, missing_working_dir_is_a_start_error)
{
    tspec t;
    ts_command(&t, "true", NULL, 0);
    t.spec.working_dir = "/nonexistent/hodei";
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r.exit_code, 127);
    cr_assert(strstr(r.error, "cannot enter working_dir '/nonexistent/hodei'"), "%s", r.error);
    cap_fini(&c);
}

Test(exec, spec_without_payload_is_invalid_and_still_a_result)
{
    tspec t;
    ts_command(&t, "true", NULL, 0);
    t.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD__NOT_SET;
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_ERR_INVALID);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r.exit_code, HODEI_EXEC_EXIT_NONE);
    cr_assert(strstr(r.error, "spec.payload"), "%s", r.error);
    cap_fini(&c);
}

Test(exec, bash_script_stops_at_first_failure)
{
    tspec t;
    ts_script(&t, "/bin/bash", "echo before\nfalse\necho after\n");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r.exit_code, 1);
    cr_assert_str_eq(cap_out(&c), "before\n");
    cap_fini(&c);
}

Test(exec, bash_script_has_pipefail_and_nounset)
{
    tspec t;
    ts_script(&t, "bash", "false | true\necho after\n");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_str_eq(cap_out(&c), "");
    cap_fini(&c);

    ts_script(&t, "bash", "echo \"$NOT_SET_ANYWHERE\"\necho after\n");
    cap_init(&c);
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_str_eq(cap_out(&c), "");
    cap_fini(&c);
}

Test(exec, sh_script_gets_eu_without_pipefail)
{
    tspec t;
    ts_script(&t, "/bin/sh", "false | true\necho piped\nfalse\necho after\n");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_str_eq(cap_out(&c), "piped\n");
    cap_fini(&c);
}

Test(exec, other_interpreter_gets_the_content_unchanged)
{
    tspec t;
    ts_script(&t, "cat", "line one\nline two\n");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_str_eq(cap_out(&c), "line one\nline two\n");
    cap_fini(&c);
}

static size_t dir_entries(const char *path)
{
    DIR *d = opendir(path);
    cr_assert(d, "opendir %s", path);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

Test(exec, script_dir_is_private_and_removed)
{
    char tmp[] = "/tmp/hodei-exec-test-XXXXXX";
    cr_assert(mkdtemp(tmp));
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    opts.tmp_dir = tmp;
    tspec t;
    ts_script(&t, "bash",
              "echo \"$0\"\nstat -c %a \"$(dirname \"$0\")\" \"$0\"\n"
              "touch \"$(dirname \"$0\")/left-behind\"\n");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, NULL, 0, NULL, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_eq(c.lines, 3);
    cr_assert(strncmp(c.first[0], tmp, strlen(tmp)) == 0, "%s", c.first[0]);
    cr_assert_str_eq(c.first[1], "700");
    cr_assert_str_eq(c.first[2], "700");
    struct stat sb;
    cr_assert_neq(stat(c.first[0], &sb), 0, "script still there");
    cr_assert_eq(dir_entries(tmp), 0, "temp dir not removed");
    cr_assert_eq(rmdir(tmp), 0);
    cap_fini(&c);
}

Test(exec, env_is_clean_plus_spec_and_working_dir_is_used)
{
    setenv("HODEI_TEST_LEAK", "leaked", 1);
    tspec t;
    ts_sh(&t, "echo \"$FOO|$HODEI_JOB_ID|$HODEI_ATTEMPT|$LANG\"; pwd; "
              "echo \"leak=${HODEI_TEST_LEAK:-none}\"; env | wc -l");
    ts_env(&t, "FOO", "bar baz");
    ts_env(&t, "HODEI_ATTEMPT", "99"); /* reserved: the executor's value wins */
    t.spec.working_dir = "/usr";
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_str_eq(c.first[0], "bar baz|" T_JOB_ID "|2|C.UTF-8");
    cr_assert_str_eq(c.first[1], "/usr");
    cr_assert_str_eq(c.first[2], "leak=none");
    int64_t n_env = 0;
    cr_assert(hodei_parse_i64(c.first[3], 0, 100, &n_env));
    /* PATH HOME LANG HODEI_JOB_ID HODEI_ATTEMPT FOO, plus what sh adds (PWD, ...) */
    cr_assert_leq(n_env, 10, "environment not minimal: %lld", (long long)n_env);
    cap_fini(&c);
}

Test(exec, stdout_and_stderr_are_separate_streams)
{
    tspec t;
    ts_sh(&t, "echo out1; echo err1 >&2; echo out2; echo err2 >&2");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_str_eq(cap_out(&c), "out1\nout2\n");
    cr_assert_str_eq(cap_err(&c), "err1\nerr2\n");
    cr_assert_eq(c.lines, 4);
    cr_assert(c.seq_ok);
    cap_fini(&c);
}

Test(exec, secrets_arrive_as_json_on_stdin_and_are_redacted)
{
    hodei_exec_secret s[] = {
        {"db-pass", "s3cret-value"},
        {"quoted", "tok\"en\\42"},
        {"short", "abc"},
    };
    tspec t;
    ts_sh(&t, "cat; echo \"inline s3cret-value and abc\"; "
              "echo 's3cret-value' >&2; env; echo \"args: $*\"");
    capture c;
    cap_init(&c);
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, s, 3, NULL, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_str_eq(c.first[0], "{\"db-pass\":\"[REDACTED]\",\"quoted\":\"[REDACTED]\","
                                 "\"short\":\"abc\"}");
    cr_assert_str_eq(c.first[1], "inline [REDACTED] and abc");
    cr_assert_str_eq(cap_err(&c), "[REDACTED]\n");
    cr_assert_null(strstr(cap_out(&c), "s3cret"));
    cr_assert_null(strstr(cap_out(&c), "tok"));
    /* Not in the environment or argv: it would show up redacted below. */
    const char *rest = strstr(cap_out(&c), "and abc\n");
    cr_assert_not_null(rest);
    cr_assert_null(strstr(rest, "[REDACTED]"), "secret reached env or argv:\n%s", rest);
    cap_fini(&c);
}

Test(exec, secret_read_by_shell_and_multiline_secret_redacted_per_piece)
{
    hodei_exec_secret s[] = {{"key", "first-line\nsecond-line"}};
    tspec t;
    ts_script(&t, "bash",
              "read -r json\necho \"got: $json\"\n"
              "printf 'first-line\\nsecond-line\\n'\n");
    capture c;
    cap_init(&c);
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, s, 1, NULL, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_str_eq(cap_out(&c), "got: {\"key\":\"[REDACTED]\"}\n[REDACTED]\n[REDACTED]\n");
    cap_fini(&c);
}

Test(exec, without_secrets_stdin_is_empty)
{
    tspec t;
    ts_sh(&t, "cat; echo done");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_str_eq(cap_out(&c), "done\n");
    cap_fini(&c);
}

Test(exec, long_line_is_cut_and_secret_on_the_cut_still_redacted)
{
    hodei_exec_secret s[] = {{"pw", "s3cret-value"}};
    tspec t;
    /* 65530 x then the secret: it straddles the 64 KiB cut. */
    ts_sh(&t, "head -c 65530 /dev/zero | tr '\\0' x; echo s3cret-value-tail; "
              "head -c 150000 /dev/zero | tr '\\0' y; echo");
    capture c;
    cap_init(&c);
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, s, 1, NULL, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_eq(c.long_piece_max, HODEI_EXEC_LINE_LEN_MAX);
    cr_assert_eq(c.lines, 2 + 3, "lines %zu", c.lines);
    cr_assert_eq(strlen(c.first[0]), 65530, "cut before the secret's start");
    cr_assert_str_eq(c.first[1], "[REDACTED]-tail");
    cr_assert_eq(strlen(c.first[2]), HODEI_EXEC_LINE_LEN_MAX);
    cr_assert_eq(strlen(c.first[3]), HODEI_EXEC_LINE_LEN_MAX);
    cr_assert_eq(strlen(c.first[4]), 150000 - 2 * HODEI_EXEC_LINE_LEN_MAX);
    cap_fini(&c);
}

Test(exec, many_lines_arrive_once_in_order_in_bounded_batches)
{
    enum { N = 200000 };
    tspec t;
    ts_sh(&t, "seq 1 200000; echo tail >&2");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_eq(c.lines, N + 1);
    cr_assert_eq(r.lines, N + 1);
    cr_assert(c.seq_ok, "sequence numbers have a gap or repeat");
    cr_assert_leq(c.batch_max_seen, 100);
    cr_assert_geq(c.batches, (N + 1) / 100);
    cr_assert_eq(r.batches, c.batches);
    const char *p = cap_out(&c);
    for (int i = 1; i <= N; i++) {
        char want[16];
        int len = snprintf(want, sizeof want, "%d\n", i);
        cr_assert(strncmp(p, want, (size_t)len) == 0, "line %d out of order", i);
        p += len;
    }
    cr_assert_str_eq(p, "");
    cr_assert_str_eq(cap_err(&c), "tail\n");
    cap_fini(&c);
}

Test(exec, batches_stay_within_the_byte_maximum)
{
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    opts.batch_bytes_max = 1000;
    tspec t;
    /* 50 lines of 99 bytes, then one of 5000 bytes */
    ts_sh(&t, "yes \"$(printf '%099d' 0)\" | head -n 50; "
              "head -c 5000 /dev/zero | tr '\\0' b; echo");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, NULL, 0, NULL, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_eq(c.lines, 51);
    cr_assert(c.seq_ok);
    cr_assert_leq(c.multi_batch_bytes_max_seen, 1000);
    cr_assert_eq(c.batch_max_seen, 10);
    cr_assert_eq(c.batches, 6, "batches %zu", c.batches);
    cr_assert_eq(c.long_piece_max, 5000);
    cap_fini(&c);
}

Test(exec, a_batch_is_delivered_after_the_interval_not_at_the_end)
{
    tspec t;
    ts_sh(&t, "echo early; sleep 1; echo late");
    capture c;
    cap_init(&c);
    int64_t start = hodei_mono_ms();
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(c.batches, 2);
    cr_assert_lt(c.first_batch_ms - start, 700, "first batch after %lld ms",
                 (long long)(c.first_batch_ms - start));
    cap_fini(&c);
}

Test(exec, timeout_terminates_the_whole_group)
{
    tspec t;
    ts_sh(&t, "sleep 100 & echo $!; sleep 30");
    t.spec.timeout_ms = 1000;
    capture c;
    cap_init(&c);
    int64_t start = hodei_mono_ms();
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    int64_t took = hodei_mono_ms() - start;
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT);
    cr_assert(strstr(r.error, "timed out after 1000 ms"), "%s", r.error);
    cr_assert_eq(r.exit_code, 128 + SIGTERM);
    cr_assert(took >= 900 && took < 3000, "took %lld ms", (long long)took);
    cr_assert(pid_gone_within(first_line_pid(&c), 1000), "grandchild survived");
    cr_assert(!pid_alive(c.pid));
    cap_fini(&c);
}

Test(exec, default_timeout_from_options_and_sigkill_after_grace)
{
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    opts.default_timeout_ms = 500;
    opts.kill_grace_ms = 500;
    tspec t;
    ts_sh(&t, "trap '' TERM; sleep 100 & echo $!; sleep 30");
    capture c;
    cap_init(&c);
    int64_t start = hodei_mono_ms();
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, NULL, 0, NULL, &c, &r), HODEI_OK);
    int64_t took = hodei_mono_ms() - start;
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT);
    cr_assert_eq(r.exit_code, 128 + SIGKILL);
    cr_assert(took >= 900 && took < 3000, "took %lld ms", (long long)took);
    cr_assert(pid_gone_within(first_line_pid(&c), 1000), "grandchild survived");
    cap_fini(&c);
}

Test(exec, group_is_killed_when_the_main_process_exits)
{
    tspec t;
    ts_sh(&t, "sleep 100 & echo $!");
    capture c;
    cap_init(&c);
    int64_t start = hodei_mono_ms();
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    cr_assert_lt(hodei_mono_ms() - start, 2000);
    cr_assert(pid_gone_within(first_line_pid(&c), 1000), "orphan survived");
    cap_fini(&c);
}

typedef struct {
    hodei_exec_handle *h;
    int64_t after_ms;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *k = arg;
    hodei_sleep_ms(k->after_ms);
    hodei_exec_cancel(k->h);
    return NULL;
}

Test(exec, cancel_from_another_thread)
{
    hodei_exec_handle *h = NULL;
    cr_assert_eq(hodei_exec_handle_create(&h, NULL), HODEI_OK);
    canceller k = {h, 500};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, cancel_later, &k), 0);
    tspec t;
    ts_sh(&t, "sleep 100 & echo $!; sleep 30");
    capture c;
    cap_init(&c);
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    int64_t start = hodei_mono_ms();
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, NULL, 0, h, &c, &r), HODEI_OK);
    int64_t took = hodei_mono_ms() - start;
    pthread_join(th, NULL);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED);
    cr_assert_str_eq(r.error, "cancelled");
    cr_assert(took >= 400 && took < 3000, "took %lld ms", (long long)took);
    cr_assert(pid_gone_within(first_line_pid(&c), 1000), "grandchild survived");
    cr_assert(hodei_exec_cancelled(h));
    hodei_exec_handle_destroy(h);
    cap_fini(&c);
}

Test(exec, cancel_before_start_runs_nothing)
{
    hodei_exec_handle *h = NULL;
    cr_assert_eq(hodei_exec_handle_create(&h, NULL), HODEI_OK);
    hodei_exec_cancel(h);
    tspec t;
    ts_command(&t, "true", NULL, 0);
    capture c;
    cap_init(&c);
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, NULL, 0, h, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED);
    cr_assert_eq(r.exit_code, HODEI_EXEC_EXIT_NONE);
    cr_assert_eq(c.pid, 0);
    hodei_exec_handle_destroy(h);
    cap_fini(&c);
}

Test(exec, no_descriptor_is_left_open)
{
    size_t before = dir_entries("/proc/self/fd");
    hodei_exec_secret s[] = {{"k", "value-1234"}};
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    hodei_exec_handle *h = NULL;
    cr_assert_eq(hodei_exec_handle_create(&h, NULL), HODEI_OK);
    for (int i = 0; i < 3; i++) {
        tspec t;
        capture c;
        hodei_exec_result r;
        if (i == 0)
            ts_script(&t, "bash", "cat\n");
        else if (i == 1)
            ts_command(&t, "nosuchcmd-hodei", NULL, 0);
        else
            ts_sh(&t, "ls -1 /proc/self/fd");
        cap_init(&c);
        cr_assert_eq(run_full(&t, &opts, s, 1, h, &c, &r), HODEI_OK);
        if (i == 2) /* the job itself sees only 0, 1, 2 and ls's own directory fd */
            cr_assert_leq(c.lines, 4, "job inherited descriptors:\n%s", cap_out(&c));
        cap_fini(&c);
    }
    hodei_exec_handle_destroy(h);
    cr_assert_eq(dir_entries("/proc/self/fd"), before);
}

/* ------------------------------------------------------------ job user */

Test(exec, job_runs_as_the_job_user_with_its_home_and_groups)
{
    if (geteuid() != 0)
        cr_skip_test("switching users needs root");
    hodei_exec_user u;
    hodei_err err;
    cr_assert_eq(hodei_exec_user_lookup("nobody", &u, &err), HODEI_OK, "%s", err.msg);
    cr_assert_neq(u.uid, 0);
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    opts.user = &u;
    opts.home = u.home;
    tspec t;
    ts_sh(&t, "id -u; id -g; id -G; test -w /root && echo root-writable; echo $HOME");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, NULL, 0, NULL, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error: %s", r.error);
    char want[HODEI_EXEC_HOME_MAX + 64];
    snprintf(want, sizeof want, "%d\n%d\n%d\n%s\n", (int)u.uid, (int)u.gid, (int)u.gid, u.home);
    cr_assert_str_eq(cap_out(&c), want);
    cap_fini(&c);
}

Test(exec, script_is_handed_to_the_job_user_and_runs_as_it)
{
    if (geteuid() != 0)
        cr_skip_test("switching users needs root");
    hodei_exec_user u;
    hodei_err err;
    cr_assert_eq(hodei_exec_user_lookup("nobody", &u, &err), HODEI_OK, "%s", err.msg);
    hodei_exec_opts opts;
    hodei_exec_opts_default(&opts);
    opts.user = &u;
    opts.home = u.home;
    tspec t;
    ts_script(&t, "/bin/sh", "id -un\n");
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_full(&t, &opts, NULL, 0, NULL, &c, &r), HODEI_OK);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "error: %s", r.error);
    cr_assert_str_eq(cap_out(&c), "nobody\n");
    cap_fini(&c);
}

Test(exec, unknown_job_user_is_named)
{
    hodei_exec_user u;
    hodei_err err;
    cr_assert_eq(hodei_exec_user_lookup("no-such-user-hodei", &u, &err), HODEI_ERR_NOT_FOUND);
    cr_assert(strstr(err.msg, "no-such-user-hodei"), "%s", err.msg);
}

/* ------------------------------------------------------------ cgroups */

static void ts_resources(tspec *t, Hodei__V1__ResourceRequirements *r, double cores, int64_t mem)
{
    hodei__v1__resource_requirements__init(r);
    r->cpu_cores = cores;
    r->memory_bytes = mem;
    t->spec.resources = r;
}

/* Where the job's limits are not its own (no writable cgroup here), the
 * first line says so: such a host cannot run these two tests. */
static bool cg_unavailable(capture *c)
{
    return c->first[0] && strstr(c->first[0], "are not enforced here");
}

Test(exec, memory_limit_kills_the_job_and_says_out_of_memory)
{
    tspec t;
    Hodei__V1__ResourceRequirements res;
    /* dd allocates its whole block: 256 MiB against a 64 MiB limit */
    ts_sh(&t, "echo start; dd if=/dev/zero of=/dev/null bs=256M count=1 && echo survived");
    ts_resources(&t, &res, 0, 64 << 20);
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    if (cg_unavailable(&c))
        cr_skip_test("no writable cgroup for jobs on this host: %s", c.first[0]);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED, "%d %s; output: %s", r.exit_code,
                 r.error, cap_out(&c));
    cr_assert(strstr(r.error, "out of memory") && strstr(r.error, "64.0 MiB"), "error: %s",
              r.error);
    cr_assert(r.exit_code == 137, "exit code %d", r.exit_code);
    cr_assert(!strstr(cap_out(&c), "survived"), "output: %s", cap_out(&c));
    cap_fini(&c);
}

Test(exec, cpu_and_memory_asked_are_the_jobs_own_cgroup_limits_and_it_is_removed)
{
    tspec t;
    Hodei__V1__ResourceRequirements res;
    /* v1: a path per hierarchy in /proc/self/cgroup; v2: one "0::" path */
    ts_sh(&t, "for l in $(cat /proc/self/cgroup); do p=${l#*:}; c=${p%%:*}; p=${p#*:};"
              " case $c in *memory*) cat /sys/fs/cgroup/memory$p/memory.limit_in_bytes;"
              " echo dir=/sys/fs/cgroup/memory$p;;"
              " *cpu*) for d in /sys/fs/cgroup/cpu /sys/fs/cgroup/cpu,cpuacct; do"
              " [ -f $d$p/cpu.cfs_quota_us ] && cat $d$p/cpu.cfs_quota_us; done;;"
              " '') if [ -f /sys/fs/cgroup$p/memory.max ]; then cat /sys/fs/cgroup$p/memory.max"
              " /sys/fs/cgroup$p/cpu.max; echo dir=/sys/fs/cgroup$p; fi;; esac; done");
    ts_resources(&t, &res, 0.25, 32 << 20);
    capture c;
    cap_init(&c);
    hodei_exec_result r;
    cr_assert_eq(run_simple(&t, &c, &r), HODEI_OK);
    if (cg_unavailable(&c))
        cr_skip_test("no writable cgroup for jobs on this host: %s", c.first[0]);
    cr_assert_eq(r.state, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, "%s", r.error);
    const char *out = cap_out(&c);
    cr_assert(strstr(out, "33554432\n"), "memory limit: %s", out);
    cr_assert(strstr(out, "25000\n") || strstr(out, "25000 100000\n"), "cpu quota: %s", out);
    const char *dir = strstr(out, "dir=");
    cr_assert(dir && strstr(dir, "hodei-job-" T_JOB_ID "-2"), "the job's own cgroup: %s", out);
    char path[512];
    snprintf(path, sizeof path, "%.*s", (int)strcspn(dir + 4, "\n"), dir + 4);
    struct stat sb;
    cr_assert(stat(path, &sb) != 0, "%s is still there after the run", path);
    cap_fini(&c);
}
