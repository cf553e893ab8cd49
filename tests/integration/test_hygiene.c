/* Process hygiene of the worker agent, a real hodei-worker process:
 * its one-time token leaves its environment once read, and it is not
 * dumpable (other processes of its user cannot read its memory, environment
 * or descriptors through /proc). The agent is pointed at an address where
 * nothing listens, so it stays up retrying its registration. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "hygiene-one-time-token-5e1f"
#define NOBODY 65534

static char tmp_dir[] = "/tmp/hodei-hygiene-XXXXXX";

/* A copy of hodei-worker in a folder anyone may enter (the clone may be
 * in a home folder closed to other users). */
static void copy_agent(char *bin, size_t cap)
{
    const char *dir = getenv("HODEI_BIN");
    cr_assert(dir, "HODEI_BIN is not set");
    cr_assert(mkdtemp(tmp_dir));
    cr_assert_eq(chmod(tmp_dir, 0755), 0);
    snprintf(bin, cap, "%s/hodei-worker", tmp_dir);
    char cmd[3 * 4096 + 64];
    snprintf(cmd, sizeof cmd, "cp '%s/hodei-worker' '%s' && chmod 0755 '%s'", dir, bin, bin);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void remove_agent_copy(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    cr_assert_eq(system(cmd), 0);
}

/* Starts hodei-worker, as uid/gid `as` unless it is -1. */
static pid_t start_agent(int as)
{
    char bin[4096];
    copy_agent(bin, sizeof bin);
    char *const argv[] = {bin, NULL};
    char *const envp[] = {
        "HODEI_SERVER=127.0.0.1:1", "HODEI_WORKER_ID=7d4c3a52-56a3-4b54-9c53-6f0d8e0e7a11",
        "HODEI_OTP=" TOKEN,         "HODEI_LOG_LEVEL=error",
        "PATH=/usr/bin:/bin",       NULL};
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        if (as >= 0 && (setgid((gid_t)as) != 0 || setuid((uid_t)as) != 0))
            _exit(126);
        execve(bin, argv, envp);
        _exit(127);
    }
    return pid;
}

static void stop_agent(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    remove_agent_copy();
}

/* /proc/<pid>/environ once the agent has read its configuration (the
 * token is scrubbed during start-up: poll for up to 10 s). */
static size_t read_environ(pid_t pid, char *buf, size_t cap, bool want_scrubbed)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    size_t n = 0;
    for (int i = 0; i < 200; i++) {
        FILE *f = fopen(path, "rb");
        cr_assert(f, "%s: %s", path, strerror(errno));
        n = fread(buf, 1, cap - 1, f);
        fclose(f);
        buf[n] = '\0';
        bool execed = memmem(buf, n, "HODEI_SERVER=", 13) != NULL; /* not the fork's copy */
        if (execed && (!want_scrubbed || !memmem(buf, n, TOKEN, strlen(TOKEN))))
            return n;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return n;
}

Test(hygiene, one_time_token_leaves_the_agents_environment, .timeout = 60)
{
    pid_t pid = start_agent(-1);
    char env[16384];
    size_t n = read_environ(pid, env, sizeof env, true);
    int status;
    cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "the agent exited (status %d)", status);
    cr_assert_null(memmem(env, n, TOKEN, strlen(TOKEN)),
                   "the token is still in /proc/<pid>/environ");
    cr_assert_not_null(memmem(env, n, "HODEI_SERVER=", 13), "the agent never started");
    stop_agent(pid);
}

Test(hygiene, agent_is_not_dumpable, .timeout = 60)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to start the agent as another user");
    pid_t pid = start_agent(NOBODY);
    char env[16384];
    read_environ(pid, env, sizeof env, true);
    /* A dumpable process's /proc files belong to its user; a non-dumpable
     * one's to root. */
    char path[64];
    struct stat st;
    snprintf(path, sizeof path, "/proc/%d/environ", (int)pid);
    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    int status;
    cr_assert_eq(waitpid(pid, &status, WNOHANG), 0, "the agent exited (status %d)", status);
    cr_assert_eq(st.st_uid, 0, "/proc/<agent>/environ belongs to uid %d: the agent is dumpable",
                 (int)st.st_uid);
    stop_agent(pid);
}
