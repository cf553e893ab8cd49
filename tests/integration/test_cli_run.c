/* `hodei run`, `hodei logs`, `hodei workers` and `hodei providers` end to
 * end: the real binaries (job-api, outbox-relay, scheduler, provisioner with
 * the process provider, supervisor, hodei-worker; tests/integration/cluster.c)
 * on a private stack, and the CLI run as a user runs it, its stdout and
 * stderr captured apart. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster.h"
#include "hodei/time.h"

#define WAIT_MS 60000
#define CMD_MAX 4096
#define OUT_MAX (1024 * 1024)

static cluster C;

static void setup(void)
{
    cluster_start(&C, NULL);
}

static void teardown(void)
{
    cluster_stop(&C);
}

TestSuite(cli_run, .init = setup, .fini = teardown, .timeout = 300);

/* ------------------------------------------------------------ the CLI */

typedef struct {
    int rc;
    char *out; /* stdout, NUL-terminated; out_len bytes (may hold NULs) */
    size_t out_len;
    char *err; /* stderr, NUL-terminated */
} cli_result;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *buf = calloc(1, OUT_MAX + 1);
    cr_assert_not_null(buf);
    size_t n = fread(buf, 1, OUT_MAX, f);
    fclose(f);
    if (len)
        *len = n;
    return buf;
}

/* Runs `hodei --server <edge> <args>` through sh, stdout and stderr apart. */
static void hodei(cli_result *r, const char *args)
{
    char out_path[700], err_path[700];
    snprintf(out_path, sizeof out_path, "%s/cli.out", C.stack.state_dir);
    snprintf(err_path, sizeof err_path, "%s/cli.err", C.stack.state_dir);
    r->rc = harness_sh(&C.stack, NULL, 0, "%s/hodei --server %s %s >%s 2>%s", C.stack.bin,
                       C.edge.target, args, out_path, err_path);
    r->out = slurp(out_path, &r->out_len);
    r->err = slurp(err_path, NULL);
}

static void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
}

/* The job id from "hodei: job <id>" on stderr. */
static void job_id_of(const cli_result *r, char id[64])
{
    const char *p = strstr(r->err, "hodei: job ");
    cr_assert_not_null(p, "no job id on stderr: %s", r->err);
    snprintf(id, 64, "%.36s", p + strlen("hodei: job "));
}

/* ------------------------------------------------------------ tests */

Test(cli_run, exit_code_output_routing_and_logs)
{
    cli_result r;
    hodei(&r, "run -- sh -c 'echo hi; echo oops >&2; exit 7'");
    cr_expect_eq(r.rc, 7, "rc %d; stderr: %s", r.rc, r.err);
    cr_expect_str_eq(r.out, "hi\n");
    cr_expect(strstr(r.err, "\noops\n") != NULL, "stderr: %s", r.err);
    cr_expect(strstr(r.err, "FAILED (exit code 7)") != NULL, "stderr: %s", r.err);
    char id[64];
    job_id_of(&r, id);
    cli_result_free(&r);

    char args[CMD_MAX];
    snprintf(args, sizeof args, "logs %s", id);
    hodei(&r, args);
    cr_expect_eq(r.rc, 0, "logs: %s", r.err);
    cr_expect_str_eq(r.out, "hi\n");
    cr_expect_str_eq(r.err, "oops\n");
    cli_result_free(&r);
    snprintf(args, sizeof args, "logs -f %s", id);
    hodei(&r, args);
    cr_expect_eq(r.rc, 0, "logs -f: %s", r.err);
    cr_expect_str_eq(r.out, "hi\n");
    cli_result_free(&r);

    hodei(&r, "run --no-job-exit-code -q -- sh -c 'exit 3'");
    cr_expect_eq(r.rc, 0, "--no-job-exit-code: rc %d; %s", r.rc, r.err);
    cli_result_free(&r);
}

Test(cli_run, bytes_exactly_as_produced_with_raw_and_made_visible_without)
{
    cli_result r;
    hodei(&r, "run --raw -- printf 'a\\000b\\377\\r\\n\\nlast'");
    cr_expect_eq(r.rc, 0, "rc %d; %s", r.rc, r.err);
    static const char want[] = "a\0b\377\r\n\nlast\n";
    cr_expect_eq(r.out_len, sizeof want - 1, "%zu bytes", r.out_len);
    cr_expect_eq(memcmp(r.out, want, sizeof want - 1), 0);
    cli_result_free(&r);
    hodei(&r, "run -- printf 'a\\000b\\377\\r\\033[2J\\n\\nlast'");
    cr_expect_eq(r.rc, 0, "rc %d; %s", r.rc, r.err);
    static const char shown[] = "a^@b\\xff^M^[[2J\n\nlast\n";
    cr_expect_eq(r.out_len, sizeof shown - 1, "%zu bytes: %s", r.out_len, r.out);
    cr_expect_eq(memcmp(r.out, shown, sizeof shown - 1), 0, "%s", r.out);
    cli_result_free(&r);
}

Test(cli_run, timeout_not_started_and_json)
{
    cli_result r;
    hodei(&r, "run --timeout 1s -- sleep 30");
    cr_expect_eq(r.rc, 124, "timeout: rc %d; %s", r.rc, r.err);
    cli_result_free(&r);
    hodei(&r, "run -- /nonexistent/command");
    cr_expect_eq(r.rc, 127, "not started: rc %d; %s", r.rc, r.err);
    cr_expect(strstr(r.err, "FAILED (exit code 127): ") != NULL, "the reason: %s", r.err);
    cli_result_free(&r);
    hodei(&r, "-o json run -- echo hi");
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect(strncmp(r.out, "{\"sequence\":1,\"stream\":\"stdout\",", 32) == 0, "%s", r.out);
    cr_expect(strstr(r.out, "\"data\":\"hi\",\"epoch\":1}\n{\"job\":{") != NULL, "%s", r.out);
    cr_expect(strstr(r.out, "\"state\":\"SUCCEEDED\"") != NULL, "%s", r.out);
    cli_result_free(&r);
}

Test(cli_run, ctrl_c_cancels_the_job_and_exits_130)
{
    char cmd[CMD_MAX];
    snprintf(cmd, sizeof cmd, "%s/hodei", C.stack.bin);
    const char *argv[] = {
        cmd, "--server", C.edge.target, "run", "--", "sh", "-c", "echo started; sleep 60", NULL};
    harness_proc p;
    harness_proc_start(&C.stack, &p, argv, NULL);
    cr_assert(harness_log_contains(&p, "started", WAIT_MS), "the job never ran; see %s",
              p.log_path);
    kill(p.pid, SIGINT);
    int status = harness_proc_wait(&p, WAIT_MS);
    cr_assert(status != -1, "hodei run did not end after Ctrl-C");
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 130, "status 0x%x", status);
    cr_expect(harness_log_contains(&p, "hodei: cancelling job", 0));
    cr_expect(harness_log_contains(&p, "CANCELLED", 0), "see %s", p.log_path);
    cr_expect_eq(harness_sql_i64(&C.stack, "SELECT count(*) FROM jobs WHERE state = 'CANCELLED'"),
                 1);
}

/* 60 numbered lines over ~6 s while the edge is killed and restarted: each
 * line once, in order, none missing. */
Test(cli_run, edge_restart_resumes_without_repeating_a_line)
{
    char cmd[CMD_MAX];
    snprintf(cmd, sizeof cmd, "%s/hodei", C.stack.bin);
    const char *argv[] = {cmd,
                          "--server",
                          C.edge.target,
                          "run",
                          "-q",
                          "--",
                          "sh",
                          "-c",
                          "i=1; while [ $i -le 60 ]; do echo line $i; i=$((i+1)); sleep 0.1; "
                          "done",
                          NULL};
    harness_proc p;
    harness_proc_start(&C.stack, &p, argv, NULL);
    cr_assert(harness_log_contains(&p, "line 10\n", WAIT_MS), "the job never ran; see %s",
              p.log_path);
    cluster_kill_restart_edge(&C);
    int status = harness_proc_wait(&p, WAIT_MS);
    cr_assert(status != -1, "hodei run did not end; see %s", p.log_path);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
    char *out = slurp(p.log_path, NULL);
    char want[64];
    const char *at = out;
    for (int i = 1; i <= 60; i++) {
        snprintf(want, sizeof want, "line %d\n", i);
        at = strstr(at, want);
        cr_assert_not_null(at, "line %d missing or out of order:\n%s", i, out);
        at += strlen(want);
        snprintf(want, sizeof want, "\nline %d\n", i);
        cr_expect_null(strstr(at - 1, want), "line %d printed twice:\n%s", i, out);
    }
    cr_expect(strstr(out, "reconnecting") != NULL, "the break was said:\n%s", out);
    free(out);
}

Test(cli_run, workers_and_providers)
{
    cli_result r;
    hodei(&r, "run -q -- true");
    cr_assert_eq(r.rc, 0, "%s", r.err);
    cli_result_free(&r);
    hodei(&r, "workers --all");
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect(strncmp(r.out, "ID ", 3) == 0, "%s", r.out);
    cli_result_free(&r);
    hodei(&r, "-o json workers --provider process");
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect(strncmp(r.out, "{\"workers\":[", 12) == 0, "%s", r.out);
    cli_result_free(&r);
    hodei(&r, "providers");
    cr_expect_eq(r.rc, 0, "%s", r.err);
    cr_expect(strstr(r.out, "\nprocess ") != NULL, "%s", r.out);
    cli_result_free(&r);
    hodei(&r, "providers health process");
    cr_expect(strstr(r.out, "Provider:  process\n") != NULL, "%s", r.out);
    cli_result_free(&r);
    hodei(&r, "providers health no-such-provider");
    cr_expect_eq(r.rc, 4, "%s", r.err);
    cli_result_free(&r);
}

Test(cli_run, usage_and_unreachable_server_codes)
{
    cli_result r;
    hodei(&r, "run --timeout soon -- true");
    cr_expect_eq(r.rc, 2);
    cr_expect(strncmp(r.err, "hodei: --timeout: ", 18) == 0, "%s", r.err);
    cli_result_free(&r);
    char args[CMD_MAX];
    snprintf(args, sizeof args, "--server 127.0.0.1:%d run -- true", harness_free_port());
    r.rc = harness_sh(&C.stack, NULL, 0, "%s/hodei %s >/dev/null 2>&1", C.stack.bin, args);
    cr_expect_eq(r.rc, 5, "unreachable: rc %d", r.rc);
}

Test(cli_run, templates_create_list_get_and_run_with_its_output_live)
{
    cli_result r;
    hodei(&r, "templates create greet --param who --param code --description 'says hi'"
              " -- sh -c 'echo hi ${who} from ${HOME:-nowhere}; exit ${code}'");
    cr_assert_eq(r.rc, 0, "create: %s", r.err);
    cr_expect_str_eq(r.out, "template greet version 1\n");
    cli_result_free(&r);
    hodei(&r, "templates list");
    cr_assert_eq(r.rc, 0, "list: %s", r.err);
    cr_expect(strstr(r.out, "greet  1        who code  says hi\n") != NULL, "%s", r.out);
    cli_result_free(&r);
    hodei(&r, "-o json templates get greet");
    cr_assert_eq(r.rc, 0, "get: %s", r.err);
    cr_expect(strstr(r.out, "\"parameters\":[\"who\",\"code\"]") != NULL, "%s", r.out);
    cli_result_free(&r);

    hodei(&r, "templates run greet -p who=world -p code=3");
    cr_expect_eq(r.rc, 3, "the job's exit code; stderr: %s", r.err);
    cr_expect(strncmp(r.out, "hi world from ", 14) == 0, "%s", r.out);
    cr_expect(strstr(r.err, "hodei: job ") != NULL, "%s", r.err);
    cli_result_free(&r);

    hodei(&r, "templates run greet -p who=world");
    cr_expect_eq(r.rc, 3, "refused by the server: exit 3; %s", r.err);
    cr_expect(strstr(r.err, "'code' is required by template greet") != NULL, "%s", r.err);
    cli_result_free(&r);
    hodei(&r, "templates get nope");
    cr_expect_eq(r.rc, 4, "%s", r.err);
    cli_result_free(&r);
}
