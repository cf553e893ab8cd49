/* Starting the child: fork, then in the child only async-signal-safe calls
 * (the caller may be multi-threaded) up to execvp. A close-on-exec pipe
 * carries the stage and errno of a failure back; end-of-file on it means
 * the exec succeeded. */
#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_int.h"
#include "hodei/util.h"

#define CHILD_FIRST_FREE_FD 3
#define CHILD_STRERROR_MAX 128

enum {
    CHILD_STAGE_SETUP = 1,
    CHILD_STAGE_CGROUP,
    CHILD_STAGE_USER,
    CHILD_STAGE_CHDIR,
    CHILD_STAGE_EXEC
};

typedef struct {
    int stage;
    int error;
} child_report;

static _Noreturn void child_fail(int report_fd, int stage, int error)
{
    child_report r = {stage, error};
    ssize_t n = write(report_fd, &r, sizeof r);
    (void)n;
    _exit(HODEI_EXEC_EXIT_START_FAILED);
}

/* Signals the caller ignores stay ignored across exec; a job must start
 * with default dispositions and nothing blocked. */
static void child_reset_signals(void)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Takes the job user's groups, then its gid, then its uid (real, effective
 * and saved, so there is no way back). Raw system calls: in a vfork child
 * glibc's setuid would also signal the parent's threads (it applies a
 * change to every thread of the process it thinks it is). */
static void child_become(const hodei_exec_user *u, int report_fd)
{
    if (syscall(SYS_setgroups, (size_t)u->n_groups, u->groups) != 0 ||
        syscall(SYS_setresgid, u->gid, u->gid, u->gid) != 0 ||
        syscall(SYS_setresuid, u->uid, u->uid, u->uid) != 0)
        child_fail(report_fd, CHILD_STAGE_USER, errno);
}

/* The job, not the agent, is what the kernel kills first when memory runs
 * out (raising one's own oom_score_adj needs no privilege). */
static void child_oom_first(void)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = write(fd, "1000", 4);
        (void)n;
        close(fd);
    }
}

/* fds[0..2] become the child's stdin, stdout, stderr. Each is first moved
 * above 2 so that no dup2 overwrites a source still needed. */
static _Noreturn void child_exec(const exec_plan *p, const char *prog, const int fds[3],
                                 int report_fd, pid_t parent)
{
    report_fd = fcntl(report_fd, F_DUPFD_CLOEXEC, CHILD_FIRST_FREE_FD);
    if (report_fd < 0)
        _exit(HODEI_EXEC_EXIT_START_FAILED);
    if (setpgid(0, 0) != 0)
        child_fail(report_fd, CHILD_STAGE_SETUP, errno);
    for (int i = 0; i < p->n_cg; i++) { /* the job's own cgroup: its limits */
        if (write(p->cg_fd[i], "0", 1) != 1)
            child_fail(report_fd, CHILD_STAGE_CGROUP, errno);
    }
    child_oom_first(); /* before the switch: /proc/self is then no longer ours */
    if (p->user)
        child_become(p->user, report_fd);
    /* After the switch: changing credentials clears the parent-death
     * signal. If the agent dies (SIGKILL, crash), the job dies with it instead of
     * running on unsupervised while its attempt is retried elsewhere. */
    /* (compared with the parent's pid, not with 1: in a container the agent
     * itself is often pid 1) */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        child_fail(report_fd, CHILD_STAGE_SETUP, errno);
    if (getppid() != parent)
        child_fail(report_fd, CHILD_STAGE_SETUP, ESRCH);
    int high[3];
    for (int i = 0; i < 3; i++) {
        high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, CHILD_FIRST_FREE_FD);
        if (high[i] < 0)
            child_fail(report_fd, CHILD_STAGE_SETUP, errno);
    }
    for (int i = 0; i < 3; i++) {
        if (dup2(high[i], i) < 0)
            child_fail(report_fd, CHILD_STAGE_SETUP, errno);
    }
    child_reset_signals();
    if (p->working_dir && chdir(p->working_dir) != 0)
        child_fail(report_fd, CHILD_STAGE_CHDIR, errno);
    /* The caller's folder may be closed to the job's user. */
    if (!p->working_dir && p->user && chdir(p->user->home) != 0 && chdir("/") != 0)
        child_fail(report_fd, CHILD_STAGE_CHDIR, errno);
    /* Descriptors the caller opened without O_CLOEXEC do not leak. */
    (void)close_range(CHILD_FIRST_FREE_FD, ~0U, CLOSE_RANGE_CLOEXEC);
    execve(prog, p->argv, p->envp);
    child_fail(report_fd, CHILD_STAGE_EXEC, errno);
}

#define CHILD_PROG_MAX 4096

/* The job's PATH (from its own environment), or the usual default. */
static const char *child_path_of(char *const *envp)
{
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], "PATH=", 5) == 0)
            return envp[i] + 5;
    return "/usr/local/bin:/usr/bin:/bin";
}

/* Resolves argv[0] as execvp would, but with the job's PATH and in the
 * parent: the child (a vfork child, sharing our memory) only calls execve.
 * Not found: the name itself, so execve fails with ENOENT in the child and
 * the usual start error is reported. */
static void child_resolve(const exec_plan *p, char *out, size_t out_len)
{
    const char *name = p->argv[0];
    hodei_strlcpy(out, name, out_len);
    if (!name[0] || strchr(name, '/'))
        return;
    const char *dirs = child_path_of(p->envp);
    while (*dirs) {
        size_t n = strcspn(dirs, ":");
        char cand[CHILD_PROG_MAX];
        int w = snprintf(cand, sizeof cand, "%.*s/%s", (int)n, n ? dirs : ".", name);
        if (w > 0 && (size_t)w < sizeof cand && access(cand, X_OK) == 0) {
            hodei_strlcpy(out, cand, out_len);
            return;
        }
        dirs += n;
        if (*dirs == ':')
            dirs++;
    }
}

static void child_close(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static ssize_t child_read_report(int fd, child_report *r)
{
    ssize_t n;
    do
        n = read(fd, r, sizeof *r);
    while (n < 0 && errno == EINTR);
    return n;
}

static void child_reap(pid_t pid)
{
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

static void child_describe(const exec_plan *p, const child_report *r, char *out, size_t len)
{
    char buf[CHILD_STRERROR_MAX];
    const char *why = strerror_r(r->error, buf, sizeof buf);
    if (r->stage == CHILD_STAGE_EXEC)
        snprintf(out, len, "cannot start '%s': %s", p->what, why);
    else if (r->stage == CHILD_STAGE_CGROUP)
        snprintf(out, len, "cannot put '%s' into its cgroup: %s", p->what, why);
    else if (r->stage == CHILD_STAGE_CHDIR)
        snprintf(out, len, "cannot enter working_dir '%s': %s",
                 p->working_dir ? p->working_dir
                 : p->user      ? p->user->home
                                : "",
                 why);
    else if (r->stage == CHILD_STAGE_USER)
        snprintf(out, len, "cannot run '%s' as user %s: %s", p->what, p->user->name, why);
    else
        snprintf(out, len, "cannot set up the process for '%s': %s", p->what, why);
}

static hodei_status child_pipes(int out[2], int errp[2], int rep[2], hodei_err *err)
{
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0)
        return hodei_err_set(err, HODEI_ERR_IO, "exec: pipe2: %s", strerror(errno));
    return HODEI_OK;
}

/* The child runs: keep the read ends, non-blocking, and a pidfd if the
 * kernel has them. */
static void child_adopt(exec_child *c, pid_t pid, int *out_rd, int *err_rd)
{
    c->pid = pid;
    c->fd[EXEC_STREAM_OUT] = *out_rd;
    c->fd[EXEC_STREAM_ERR] = *err_rd;
    *out_rd = *err_rd = -1;
    for (int s = 0; s < EXEC_STREAM_COUNT; s++)
        (void)fcntl(c->fd[s], F_SETFL, fcntl(c->fd[s], F_GETFL) | O_NONBLOCK);
    c->pidfd = pidfd_open(pid, 0);
}

hodei_status exec_child_start(const exec_plan *p, exec_child *c, char *start_error,
                              size_t start_error_len, hodei_err *err)
{
    int out[2] = {-1, -1}, errp[2] = {-1, -1}, rep[2] = {-1, -1};
    c->pid = 0;
    c->pidfd = -1;
    c->fd[EXEC_STREAM_OUT] = c->fd[EXEC_STREAM_ERR] = -1;
    char prog[CHILD_PROG_MAX];
    hodei_status st = child_pipes(out, errp, rep, err);
    if (st != HODEI_OK)
        goto out_close;
    child_resolve(p, prog, sizeof prog);
    const int child_fds[3] = {p->stdin_fd, out[1], errp[1]};
    /* vfork: no copy of this (large, multi-threaded) address space per job;
     * the child only makes system calls, then execve or _exit. */
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(p, prog, child_fds, rep[1], parent);
    if (pid < 0) {
        st = hodei_err_set(err, HODEI_ERR_IO, "exec: vfork: %s", strerror(errno));
        goto out_close;
    }
    (void)setpgid(pid, pid); /* also here: no window where the group is missing */
    child_close(&out[1]);
    child_close(&errp[1]);
    child_close(&rep[1]);
    child_report r;
    if (child_read_report(rep[0], &r) == (ssize_t)sizeof r) {
        child_reap(pid);
        child_describe(p, &r, start_error, start_error_len);
        goto out_close;
    }
    child_adopt(c, pid, &out[0], &errp[0]);
out_close:
    child_close(&out[0]);
    child_close(&out[1]);
    child_close(&errp[0]);
    child_close(&errp[1]);
    child_close(&rep[0]);
    child_close(&rep[1]);
    return st;
}

void exec_child_close(exec_child *c)
{
    child_close(&c->fd[EXEC_STREAM_OUT]);
    child_close(&c->fd[EXEC_STREAM_ERR]);
    child_close(&c->pidfd);
}
