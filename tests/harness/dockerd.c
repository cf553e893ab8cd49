/* A private Docker engine per test (see dockerd.h). */
#include "dockerd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hodei/assert.h"
#include "hodei/util.h"

#define DOCKERD_CMD_MAX 8192
#define DOCKERD_WATCHDOG_POLL_MS 200

extern char **environ;

/* Runs cmd through sh, capturing stdout+stderr into out; the exit code. */
static int dockerd_sh(const char *cmd, char *out, size_t out_len)
{
    FILE *p = popen(cmd, "r");
    HODEI_ASSERT(p != NULL);
    size_t n = 0;
    char sink[4096];
    for (;;) {
        char *dst = out && n + 1 < out_len ? out + n : sink;
        size_t room = out && n + 1 < out_len ? out_len - n - 1 : sizeof sink;
        size_t got = fread(dst, 1, room, p);
        if (got == 0)
            break;
        if (dst != sink)
            n += got;
    }
    if (out && out_len)
        out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A process that stops the engine once this one is gone, however it went. */
static void dockerd_watchdog(harness_dockerd *d)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    HODEI_ASSERT(pid >= 0);
    if (pid == 0) {
        setsid();
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        close_range(3, ~0U, 0);
        struct timespec ts = {0, DOCKERD_WATCHDOG_POLL_MS * 1000000L};
        while (getppid() == parent)
            nanosleep(&ts, NULL);
        char *argv[] = {d->script, "down", d->dir, NULL};
        execve(d->script, argv, environ);
        _exit(127);
    }
    d->watchdog = pid;
}

bool harness_dockerd_start(harness_dockerd *d, const char *root, char *why, size_t why_len)
{
    char cmd[DOCKERD_CMD_MAX];
    memset(d, 0, sizeof *d);
    hodei_strlcpy(d->dir, "/tmp/hd-XXXXXX", sizeof d->dir);
    HODEI_ASSERT(mkdtemp(d->dir) != NULL);
    snprintf(d->sock, sizeof d->sock, "%s/d.sock", d->dir);
    snprintf(d->host, sizeof d->host, "unix://%s", d->sock);
    snprintf(d->script, sizeof d->script, "%s/tests/harness/private-dockerd", root);
    dockerd_watchdog(d);
    snprintf(cmd, sizeof cmd, "'%s' up '%s' 2>&1", d->script, d->dir);
    int rc = dockerd_sh(cmd, why, why_len);
    if (rc == 0) {
        d->up = true;
        return true;
    }
    if (rc != 3) /* anything else: the script itself is broken */
        fprintf(stderr, "private-dockerd up exited %d: %s\n", rc, why);
    HODEI_ASSERT(rc == 3);
    why[strcspn(why, "\n")] = '\0';
    harness_dockerd_stop(d);
    return false;
}

void harness_dockerd_stop(harness_dockerd *d)
{
    char cmd[DOCKERD_CMD_MAX], out[4096];
    if (!d->dir[0])
        return;
    snprintf(cmd, sizeof cmd, "'%s' down '%s' 2>&1", d->script, d->dir);
    if (dockerd_sh(cmd, out, sizeof out) != 0)
        fprintf(stderr, "private-dockerd down %s: %s\n", d->dir, out);
    if (d->watchdog > 0) {
        kill(d->watchdog, SIGKILL);
        while (waitpid(d->watchdog, NULL, 0) < 0 && errno == EINTR) {
        }
    }
    memset(d, 0, sizeof *d);
}

int harness_docker(harness_dockerd *d, char *out, size_t out_len, const char *fmt, ...)
{
    char args[DOCKERD_CMD_MAX / 2], cmd[DOCKERD_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' docker '%s' %s 2>&1", d->script, d->dir, args);
    return dockerd_sh(cmd, out, out_len);
}

void harness_dockerd_busybox(harness_dockerd *d, const char *name)
{
    char cmd[DOCKERD_CMD_MAX], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' busybox '%s' '%s' 2>&1", d->script, d->dir, name);
    int rc = dockerd_sh(cmd, out, sizeof out);
    HODEI_ASSERT(rc == 0 || !fprintf(stderr, "busybox image: %s\n", out));
}
