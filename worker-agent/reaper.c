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
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "agent.h"
#include "hodei/log.h"

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
