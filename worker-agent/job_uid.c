/* worker.job_uids: a uid of its own for each running job (agent.h). All
 * jobs under worker.job_user alone share one uid, and a process may read
 * the files and /proc/<pid>/cwd of any other process of its uid: one job
 * could read another's workspace. With a range, each job's processes and
 * workspace belong to a uid no other running job has. The slot is a lock
 * file per uid in a root-only folder (flock: released when its holder
 * dies), shared by every agent of the host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "hodei/log.h"
#include "hodei/time.h"

#define JOB_UID_MIN 1000
#define JOB_UID_MAX 2147483646
#define JOB_UID_COUNT_MAX 1000000
#define JOB_UID_SWEEP_ROUNDS 3
#define JOB_UID_CLEAN 'c' /* the lock file's first byte (agent.h) */
#define JOB_UID_DIRTY 'd'

static hodei_status job_uids_parse(const char *text, uid_t *first, uid_t *last, hodei_err *err)
{
    char *end = NULL;
    errno = 0;
    long long a = strtoll(text, &end, 10), b = -1;
    if (end && *end == '-')
        b = strtoll(end + 1, &end, 10);
    if (errno || !end || *end || a < JOB_UID_MIN || b < a || b > JOB_UID_MAX ||
        b - a + 1 > JOB_UID_COUNT_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.job_uids: must be FIRST-LAST with %d <= FIRST <= LAST <= %d "
                             "and at most %d uids (got \"%s\")",
                             JOB_UID_MIN, JOB_UID_MAX, JOB_UID_COUNT_MAX, text);
    *first = (uid_t)a;
    *last = (uid_t)b;
    return HODEI_OK;
}

/* The lock folder: made root-only; refused when someone else could write it. */
static hodei_status job_uids_dir(hodei_err *err)
{
    struct stat st;
    if (mkdir(AGENT_JOB_UID_DIR, 0700) != 0 && errno != EEXIST)
        return hodei_err_set(err, HODEI_ERR_IO, "worker.job_uids: %s: %s", AGENT_JOB_UID_DIR,
                             strerror(errno));
    if (lstat(AGENT_JOB_UID_DIR, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != 0 ||
        (st.st_mode & 022) != 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.job_uids: %s must be a folder of root that only root may "
                             "write",
                             AGENT_JOB_UID_DIR);
    return HODEI_OK;
}

hodei_status agent_job_uids_config(agent *a, hodei_err *err)
{
    const char *text = a->cfg->job_uids;
    a->has_job_uids = false;
    if (!text || !text[0])
        return HODEI_OK;
    if (!a->has_job_user)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.job_uids: needs worker.job_user and an agent running as "
                             "root");
    hodei_status st = job_uids_parse(text, &a->job_uid_first, &a->job_uid_last, err);
    if (st == HODEI_OK)
        st = job_uids_dir(err);
    if (st == HODEI_OK && a->job_user.uid >= a->job_uid_first && a->job_user.uid <= a->job_uid_last)
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "worker.job_uids: the range holds worker.job_user's own uid %d",
                           (int)a->job_user.uid);
    a->has_job_uids = st == HODEI_OK;
    return st;
}

/* true when /proc/<name> is a process whose real uid is uid. */
static bool job_uid_owns(const char *name, uid_t uid)
{
    char path[sizeof "/proc//status" + 256], line[128];
    snprintf(path, sizeof path, "/proc/%s/status", name);
    FILE *f = fopen(path, "re");
    bool owns = false;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "Uid:", 4) == 0) {
            owns = strtoul(line + 4, NULL, 10) == uid;
            break;
        }
    if (f)
        fclose(f);
    return owns;
}

/* Kills what a slot's earlier job left running (a daemonised child that
 * escaped its process group). Returns how many were signalled. */
static int job_uid_sweep(uid_t uid)
{
    int killed = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9' || !job_uid_owns(e->d_name, uid))
            continue;
        if (kill((pid_t)strtol(e->d_name, NULL, 10), SIGKILL) == 0)
            killed++;
    }
    if (d)
        closedir(d);
    return killed;
}

/* Takes uid's slot: its lock file, held with a non-blocking flock.
 * *fresh: this call made the file, so no job of any agent has run under
 * that uid since the folder was made (each makes it before its job). */
static int job_uid_try(uid_t uid, bool *fresh)
{
    char path[sizeof AGENT_JOB_UID_DIR + 16];
    snprintf(path, sizeof path, AGENT_JOB_UID_DIR "/%u", (unsigned)uid);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    *fresh = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

hodei_status agent_job_uid_acquire(agent *a, agent_job_uid *out, hodei_err *err)
{
    out->lock_fd = -1;
    out->user = a->job_user;
    if (!a->has_job_uids)
        return HODEI_OK;
    uint64_t n = (uint64_t)(a->job_uid_last - a->job_uid_first) + 1;
    uint64_t start = (uint64_t)hodei_mono_ns() % n; /* agents spread over the range */
    for (uint64_t i = 0; i < n; i++) {
        uid_t uid = a->job_uid_first + (uid_t)((start + i) % n);
        bool fresh = false;
        int fd = job_uid_try(uid, &fresh);
        if (fd < 0)
            continue;
        /* A new slot, or one released clean (every process of its earlier
         * job stayed below its agent, a child subreaper, which killed them
         * before): nothing of that uid can be left. Else (an agent that
         * died holding it, a job that left something, an agent of an older
         * version) sweep /proc, which costs milliseconds. */
        char mark = 0;
        bool clean = fresh || (pread(fd, &mark, 1, 0) == 1 && mark == JOB_UID_CLEAN);
        for (int r = 0; !clean && r < JOB_UID_SWEEP_ROUNDS && job_uid_sweep(uid) > 0; r++)
            hodei_sleep_ms(10);
        mark = JOB_UID_DIRTY;
        if (pwrite(fd, &mark, 1, 0) != 1)
            HLOG_WARN("worker.job_uids: cannot mark uid %u taken: %s", (unsigned)uid,
                      strerror(errno));
        out->lock_fd = fd;
        out->user.uid = uid;
        return HODEI_OK;
    }
    return hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                         "worker.job_uids: all %llu uids of %s are held by running jobs",
                         (unsigned long long)n, a->cfg->job_uids);
}

void agent_job_uid_release(agent_job_uid *u, bool clean)
{
    char mark = JOB_UID_CLEAN;
    if (u->lock_fd >= 0 && clean && pwrite(u->lock_fd, &mark, 1, 0) != 1)
        HLOG_WARN("worker.job_uids: cannot mark uid %u clean: %s", (unsigned)u->user.uid,
                  strerror(errno));
    if (u->lock_fd >= 0)
        close(u->lock_fd);
    u->lock_fd = -1;
}
