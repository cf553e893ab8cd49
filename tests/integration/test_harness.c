/* The test harness itself: what every integration test relies on — a stack
 * and the processes started on it are gone after stop, and after a test that
 * crashed midway. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define TEST_GONE_WAIT_MS 30000

TestSuite(harness, .timeout = 120);

/* true when pid no longer runs (absent, or a zombie nobody reaped yet) */
static bool pid_gone(pid_t pid)
{
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *rp = strrchr(stat, ')');
    return rp && rp[1] == ' ' && rp[2] == 'Z';
}

/* The pid on the first line of path (a shell word: may name the stack's
 * HODEI_STATE_DIR or HODEI_PG_DATA). */
static pid_t pid_from_file(harness_stack *st, const char *path)
{
    char out[64];
    cr_assert_eq(harness_sh(st, out, sizeof out, "head -n 1 \"%s\"", path), 0);
    out[strcspn(out, "\n")] = '\0';
    int64_t v = 0;
    cr_assert(hodei_parse_i64(out, 1, INT32_MAX, &v), "pid in %s: '%s'", path, out);
    return (pid_t)v;
}

static bool dir_exists(const char *dir)
{
    struct stat sb;
    return stat(dir, &sb) == 0;
}

typedef struct {
    char dir[512];     /* the state folder */
    char pg_home[512]; /* PostgreSQL's folder: the state folder, or its own as root */
    pid_t pids[3];     /* nats, postgres, product process */
} stack_seen;

/* Waits until both folders and every pid are gone. */
static bool all_gone(const stack_seen *seen)
{
    int64_t deadline = hodei_mono_ms() + TEST_GONE_WAIT_MS;
    for (;;) {
        bool gone = !dir_exists(seen->dir) && !dir_exists(seen->pg_home);
        for (size_t i = 0; i < sizeof seen->pids / sizeof seen->pids[0]; i++)
            gone = gone && pid_gone(seen->pids[i]);
        if (gone)
            return true;
        if (hodei_mono_ms() >= deadline)
            return false;
        hodei_sleep_ms(50);
    }
}

static void stack_observe(harness_stack *st, harness_proc *p, stack_seen *seen)
{
    const char *argv[] = {"/bin/sh", "-c", "echo started; exec sleep 300", NULL};
    harness_proc_start(st, p, argv, NULL);
    cr_assert(harness_log_contains(p, "started", 10000));
    hodei_strlcpy(seen->dir, st->state_dir, sizeof seen->dir);
    hodei_strlcpy(seen->pg_home, st->pg_data, sizeof seen->pg_home);
    char *slash = strrchr(seen->pg_home, '/');
    cr_assert(slash && slash != seen->pg_home, "pg_data %s", st->pg_data);
    *slash = '\0';
    seen->pids[0] = pid_from_file(st, "$HODEI_STATE_DIR/nats.pid");
    seen->pids[1] = pid_from_file(st, "$HODEI_PG_DATA/postmaster.pid");
    seen->pids[2] = p->pid;
}

Test(harness, stop_leaves_nothing_and_is_idempotent)
{
    harness_stack st;
    harness_proc p;
    stack_seen seen;
    harness_stack_start(&st);
    stack_observe(&st, &p, &seen);
    cr_assert_eq(harness_sql_i64(&st, "SELECT 40 + 2"), 42);
    harness_stack_stop(&st);
    cr_assert(all_gone(&seen), "something of %s survived stop", seen.dir);
    harness_stack_stop(&st); /* second stop: harmless */
    cr_assert_not(harness_proc_alive(&p));
}

Test(harness, proc_env_wait_and_stop)
{
    harness_stack st;
    harness_stack_start(&st);
    harness_proc p;
    const char *argv[] = {"/bin/sh", "-c", "echo \"db=$HODEI_DATABASE_URL x=$X\"; exit 7", NULL};
    const char *env[] = {"X=forty two", NULL};
    harness_proc_start(&st, &p, argv, env);
    int status = harness_proc_wait(&p, 10000);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status %d", status);
    cr_assert_not(harness_proc_alive(&p));
    char needle[600];
    snprintf(needle, sizeof needle, "db=%s x=forty two", st.db_url);
    cr_assert(harness_log_contains(&p, needle, 1000), "log %s lacks '%s'", p.log_path, needle);

    harness_proc q;
    const char *sleeper[] = {"/bin/sh", "-c", "trap '' TERM; echo ready; sleep 300", NULL};
    harness_proc_start(&st, &q, sleeper, NULL);
    cr_assert(harness_log_contains(&q, "ready", 10000));
    cr_assert(harness_proc_alive(&q));
    cr_assert_eq(harness_proc_stop(&q, SIGTERM, 300), -1, "ignored TERM: killed, -1");
    cr_assert_not(harness_proc_alive(&q));
    harness_stack_stop(&st);
}

Test(harness, crashed_test_leaves_nothing)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t child = fork();
    cr_assert_geq(child, 0);
    if (child == 0) { /* a test that dies midway */
        close(fds[0]);
        harness_stack st;
        harness_proc p;
        stack_seen seen;
        harness_stack_start(&st);
        stack_observe(&st, &p, &seen);
        if (write(fds[1], &seen, sizeof seen) != (ssize_t)sizeof seen)
            _exit(3);
        abort();
    }
    close(fds[1]);
    stack_seen seen;
    ssize_t n = read(fds[0], &seen, sizeof seen);
    close(fds[0]);
    int status = 0;
    waitpid(child, &status, 0);
    cr_assert_eq(n, (ssize_t)sizeof seen, "the crashing child did not start its stack");
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    cr_assert(all_gone(&seen), "something of %s survived a crash", seen.dir);
}
