/* Orphans of jobs. A job's background processes outlive its shell when the
 * executor kills the job's process group or the shell exits first; they
 * are re-parented to the nearest child subreaper, else to PID 1. The agent
 * makes itself a subreaper (and is PID 1 in many containers), so it reaps
 * them: otherwise they stay zombies for as long as the agent lives.
 *
 * libs/exec reaps its own child (the job's main process) by pid and must
 * keep its exit status: the reaper only peeks (WNOWAIT) and reaps by pid a
 * zombie that is not that child, and does nothing while a job's child may
 * exist but its pid is not known yet. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "hodei/log.h"
#include "hodei/time.h"

#define REAPER_ROUND_MAX 64 /* zombies reaped per call */

void agent_reaper_init(void)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0)
        HLOG_WARN("cannot become a child subreaper (%s): orphans of jobs go to PID 1",
                  strerror(errno));
}

/* The pid the reaper must leave alone: 0 = none, -1 = unknown (skip). */
static pid_t reaper_keep(agent *a)
{
    pthread_mutex_lock(&a->mu);
    pid_t keep = !a->job ? 0 : a->job->pid > 0 ? a->job->pid : -1;
    pthread_mutex_unlock(&a->mu);
    return keep;
}

void agent_reap_orphans(agent *a)
{
    pid_t keep = reaper_keep(a);
    if (keep < 0)
        return;
    for (int i = 0; i < REAPER_ROUND_MAX; i++) {
        siginfo_t info = {0};
        if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0 ||
            info.si_pid == keep)
            return;
        if (waitpid(info.si_pid, NULL, WNOHANG) == info.si_pid)
            HLOG_DEBUG("reaped orphan pid=%d", (int)info.si_pid);
    }
}

/* ------------------------------------------------------------ leftovers
 *
 * A job's background process that left its process group (setsid, a
 * double fork) survives the group kill, and as the same user it could
 * read the next job's stdin (its secrets) or signal it through /proc. At
 * the end of every job, before its result is reported and so before the
 * next job can come, every process still below the agent is SIGKILLed:
 * as a subreaper the agent is the parent of every orphan of the job, and
 * the job's own main process is already reaped, so each child of the
 * agent is a leftover of that job. Their own children come to the agent
 * when they die, hence rounds until none is left. A pid read here cannot
 * be reused before it is reaped (by us): killing it hits no stranger. */

#define REAPER_STAT_MAX 512
#define REAPER_KILL_ROUNDS_MAX 200
#define REAPER_KILL_WAIT_MS 5
#define REAPER_CHILDREN_BUF 4096

/* Parent pid of pid from /proc/<pid>/stat ("pid (comm) S ppid ..."; comm
 * may hold spaces and parentheses: the last ')' ends it). -1 = unknown. */
static pid_t reaper_ppid_of(const char *pid_name)
{
    char path[64], buf[REAPER_STAT_MAX];
    snprintf(path, sizeof path, "/proc/%s/stat", pid_name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *close_paren = strrchr(buf, ')');
    char state = 0;
    int ppid = -1;
    if (!close_paren || sscanf(close_paren + 1, " %c %d", &state, &ppid) != 2)
        return -1;
    return (pid_t)ppid;
}

/* SIGKILLs and reaps (when already dead) one child. */
static void reaper_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    (void)waitpid(pid, NULL, WNOHANG);
}

/* The children of this process from /proc/self/task/<tid>/children (one
 * file per thread: an orphan goes to any thread of its subreaper): a few
 * reads, where a scan of /proc reads one file per process of the host
 * (milliseconds per job). -1 when the kernel has no such files
 * (CONFIG_PROC_CHILDREN). An empty answer is exact: every process a job
 * starts stays below the agent, so none below it means none is left. */
static int reaper_kill_children(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int found = 0;
    bool have = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        char path[sizeof "/proc/self/task//children" + 256], buf[REAPER_CHILDREN_BUF];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue; /* a thread that just ended */
        have = true;
        ssize_t n;
        size_t len = 0;
        while (len < sizeof buf - 1 && (n = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
            len += (size_t)n;
        close(fd);
        buf[len] = '\0';
        /* A list cut at the buffer's end loses its last pid: the next round
         * reads it again. */
        char *end = len == sizeof buf - 1 ? strrchr(buf, ' ') : NULL;
        if (end)
            *end = '\0';
        for (char *p = buf, *next; *p; p = next) {
            long pid = strtol(p, &next, 10);
            if (next == p)
                break;
            if (pid > 0) {
                reaper_kill((pid_t)pid);
                found++;
            }
        }
    }
    closedir(d);
    return have ? found : -1;
}

/* The same by a scan of /proc (kernels without the children files). */
static int reaper_kill_scan(pid_t self)
{
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        if (reaper_ppid_of(e->d_name) != self)
            continue;
        reaper_kill((pid_t)strtol(e->d_name, NULL, 10));
        found++;
    }
    closedir(d);
    return found;
}

/* SIGKILLs every child of this process and reaps those already dead;
 * returns how many children there were. */
static int reaper_kill_round(pid_t self)
{
    int found = reaper_kill_children();
    return found >= 0 ? found : reaper_kill_scan(self);
}

int agent_kill_leftovers(const char *job_id)
{
    pid_t self = getpid();
    int killed = 0, rounds = 0, n;
    while ((n = reaper_kill_round(self)) > 0 && rounds < REAPER_KILL_ROUNDS_MAX) {
        killed += n;
        rounds++;
        hodei_sleep_ms(REAPER_KILL_WAIT_MS);
    }
    if (n > 0)
        HLOG_WARN("job=%s left processes that keep forking; %d still there after %d rounds", job_id,
                  n, rounds);
    else if (killed > 0)
        HLOG_INFO("killed what job=%s left running (%d process%s, outside its process group)",
                  job_id, killed, killed == 1 ? "" : "es");
    return n;
}
