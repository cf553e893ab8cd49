/* A cgroup of the job's own, so that the memory and CPU a job asks for are
 * hard limits, and an out-of-memory kill is known as such.
 *
 * Where (found from /proc/self/mountinfo and /proc/self/cgroup):
 *   cgroup v2 with the memory controller: under the agent's own cgroup. The
 *     "no internal processes" rule means the agent first moves itself into
 *     <own>/agent (only when nothing else lives in <own>); then +memory +cpu
 *     are enabled in <own> and the job gets <own>/job-<id>-<attempt>. An
 *     agent in the root cgroup uses /hodei-jobs instead.
 *   cgroup v1 (a hybrid host): hodei-job-<id>-<attempt> under the agent's
 *     own cgroup in the memory and cpu hierarchies.
 * Limits: memory.max / memory.limit_in_bytes (and no swap), cpu.max /
 * cpu.cfs_quota_us over a 100 ms period. The child joins by writing "0" to
 * each cgroup.procs (opened here, written between fork and exec).
 *
 * When no cgroup can be made (a read-only cgroup file system in a
 * container, a cgroup shared with other processes) the job runs under its
 * worker's limits: the OOM counter of the enclosing memory cgroup is read
 * before and after, and when that cgroup has no limit either, the job's
 * first output line says its limits are not enforced. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec_int.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define CG_READ_MAX 8192
#define CG_MOUNTINFO_MAX (64 * 1024)
#define CG_CPU_PERIOD_US 100000
#define CG_RMDIR_TRIES 50
#define CG_RMDIR_WAIT_MS 10
#define CG_CONTROLLERS "+memory +cpu"

typedef enum { CG_NONE = 0, CG_V1, CG_V2 } cg_kind;

/* Where a hierarchy is mounted and the agent's own cgroup in it. */
typedef struct {
    char mount[EXEC_CG_PATH_MAX];
    char own[EXEC_CG_PATH_MAX]; /* mount + the agent's path, "" = unknown */
} cg_place;

static pthread_mutex_t cg_mu = PTHREAD_MUTEX_INITIALIZER;
static char cg_v2_parent[EXEC_CG_PATH_MAX]; /* under cg_mu: made once per process */

/* ------------------------------------------------------------ reading */

static ssize_t cg_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static bool cg_write(const char *dir, const char *file, const char *text)
{
    char path[EXEC_CG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%.3900s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text);
}

/* "key N" at a line start in text. */
static int64_t cg_field(const char *text, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ' ')
            return strtoll(p + klen + 1, NULL, 10);
    }
    return -1;
}

/* true when the comma-separated list holds name. */
static bool cg_list_has(const char *list, size_t len, const char *name)
{
    size_t nlen = strlen(name);
    for (size_t i = 0; i < len;) {
        size_t n = strcspn(list + i, ",");
        if (n > len - i)
            n = len - i;
        if (n == nlen && memcmp(list + i, name, n) == 0)
            return true;
        i += n + 1;
    }
    return false;
}

/* Calls fn on each line of text (NUL-terminated, modified in place). */
typedef bool (*cg_line_fn)(char *line, void *ctx);
static bool cg_lines(char *text, cg_line_fn fn, void *ctx)
{
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (fn(line, ctx))
            return true;
        line = nl ? nl + 1 : NULL;
    }
    return false;
}

typedef struct {
    const char *controller; /* NULL = the v2 line */
    char *out;
    size_t out_len;
} cg_self_ctx;

/* "N:controllers:/path" (v1) or "0::/path" (v2) */
static bool cg_self_line(char *line, void *ctx)
{
    cg_self_ctx *c = ctx;
    char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (!c2)
        return false;
    bool v2 = c2 == c1 + 1 && line[0] == '0';
    bool match =
        c->controller ? !v2 && cg_list_has(c1 + 1, (size_t)(c2 - c1 - 1), c->controller) : v2;
    return match && hodei_strlcpy(c->out, c2 + 1, c->out_len);
}

/* The agent's path in the v1 hierarchy holding controller (or the v2 one
 * when controller is NULL), from /proc/self/cgroup. */
static bool cg_self_path(const char *controller, char *out, size_t out_len)
{
    char buf[CG_READ_MAX];
    cg_self_ctx c = {controller, out, out_len};
    return cg_read("/proc/self/cgroup", buf, sizeof buf) > 0 && cg_lines(buf, cg_self_line, &c);
}

typedef struct {
    const char *fstype;     /* "cgroup" or "cgroup2" */
    const char *controller; /* v1: a super option to look for */
    char root[EXEC_CG_PATH_MAX];
    char mount[EXEC_CG_PATH_MAX];
} cg_mount_ctx;

/* "id parent maj:min root mountpoint opts ... - fstype source superopts" */
static bool cg_mount_line(char *line, void *ctx)
{
    cg_mount_ctx *c = ctx;
    char root[EXEC_CG_PATH_MAX], mnt[EXEC_CG_PATH_MAX], fstype[32], super[512];
    const char *dash = strstr(line, " - ");
    if (!dash || sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
        sscanf(dash + 3, "%31s %*s %511s", fstype, super) != 2 || strcmp(fstype, c->fstype) != 0)
        return false;
    if (c->controller && !cg_list_has(super, strlen(super), c->controller))
        return false;
    return hodei_strlcpy(c->root, root, sizeof c->root) &&
           hodei_strlcpy(c->mount, mnt, sizeof c->mount);
}

/* Where the hierarchy (v1 with controller, or v2) is mounted, and the
 * agent's own cgroup in it (its path with the mount's root taken off, as
 * in a container whose cgroup is mounted as the root). */
static bool cg_find(const char *controller, bool v2, cg_place *out)
{
    static char buf[CG_MOUNTINFO_MAX];
    char self[EXEC_CG_PATH_MAX];
    cg_mount_ctx c = {.fstype = v2 ? "cgroup2" : "cgroup", .controller = v2 ? NULL : controller};
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&cg_mu);
    bool found =
        cg_read("/proc/self/mountinfo", buf, sizeof buf) > 0 && cg_lines(buf, cg_mount_line, &c);
    pthread_mutex_unlock(&cg_mu);
    if (!found || !cg_self_path(v2 ? NULL : controller, self, sizeof self))
        return false;
    size_t rlen = strcmp(c.root, "/") == 0 ? 0 : strlen(c.root);
    const char *rel = strncmp(self, c.root, rlen) == 0 ? self + rlen : self;
    hodei_strlcpy(out->mount, c.mount, sizeof out->mount);
    snprintf(out->own, sizeof out->own, "%.2047s%.2047s", c.mount,
             strcmp(rel, "/") == 0 ? "" : rel);
    return true;
}

/* v2 is used when its hierarchy has the memory controller. */
static bool cg_v2_usable(const cg_place *pl)
{
    char path[EXEC_CG_PATH_MAX + 32], buf[512];
    snprintf(path, sizeof path, "%.3900s/cgroup.controllers", pl->mount);
    return cg_read(path, buf, sizeof buf) > 0 && cg_list_has(buf, strcspn(buf, "\n"), "memory");
}

/* ------------------------------------------------------------ making it */

static void cg_note(exec_cg *cg, const char *what, const char *dir, int e)
{
    snprintf(cg->note, sizeof cg->note, "%s %.300s: %s", what, dir, strerror(e));
}

/* cgroup.procs of dir, open for the child to write "0" to. */
static bool cg_add(exec_cg *cg, const char *dir)
{
    char path[EXEC_CG_PATH_MAX + 32];
    if (cg->n == EXEC_CG_MAX)
        return false;
    snprintf(path, sizeof path, "%.3900s/cgroup.procs", dir);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        cg_note(cg, "opening", path, errno);
        return false;
    }
    hodei_strlcpy(cg->dir[cg->n], dir, sizeof cg->dir[cg->n]);
    cg->procs_fd[cg->n++] = fd;
    return true;
}

static bool cg_mkdir(exec_cg *cg, const char *dir)
{
    if (mkdir(dir, 0755) == 0 || errno == EEXIST)
        return true;
    cg_note(cg, "mkdir", dir, errno);
    return false;
}

/* Only this process lives in dir (its cgroup.procs lists our pid alone). */
static bool cg_alone(const char *dir)
{
    char path[EXEC_CG_PATH_MAX + 32], buf[CG_READ_MAX];
    snprintf(path, sizeof path, "%.3900s/cgroup.procs", dir);
    return cg_read(path, buf, sizeof buf) > 0 && strtoll(buf, NULL, 10) == (long long)getpid() &&
           buf[strcspn(buf, "\n")] == '\n' && buf[strcspn(buf, "\n") + 1] == '\0';
}

/* The v2 parent of job cgroups, made once: <own> after moving the agent
 * into <own>/agent, or /hodei-jobs when the agent is in the root. */
static bool cg_v2_prepare(exec_cg *cg, const cg_place *pl, char *parent, size_t parent_len)
{
    char leaf[EXEC_CG_PATH_MAX + 16], pid[24];
    bool ok = true;
    pthread_mutex_lock(&cg_mu);
    if (!cg_v2_parent[0]) {
        bool root = strcmp(pl->own, pl->mount) == 0;
        if (root) {
            snprintf(leaf, sizeof leaf, "%.3900s/hodei-jobs", pl->mount);
            cg_write(pl->mount, "cgroup.subtree_control", CG_CONTROLLERS); /* usually on already */
            ok = cg_mkdir(cg, leaf) && cg_write(leaf, "cgroup.subtree_control", CG_CONTROLLERS);
            if (ok)
                hodei_strlcpy(cg_v2_parent, leaf, sizeof cg_v2_parent);
        } else if (cg_alone(pl->own)) {
            snprintf(leaf, sizeof leaf, "%.3900s/agent", pl->own);
            snprintf(pid, sizeof pid, "%d", (int)getpid());
            ok = cg_mkdir(cg, leaf) && cg_write(leaf, "cgroup.procs", pid) &&
                 cg_write(pl->own, "cgroup.subtree_control", CG_CONTROLLERS);
            if (ok)
                hodei_strlcpy(cg_v2_parent, pl->own, sizeof cg_v2_parent);
        } else {
            snprintf(cg->note, sizeof cg->note,
                     "cgroup %.300s holds other processes than this agent", pl->own);
            ok = false;
        }
        if (!ok && !cg->note[0])
            cg_note(cg, "enabling controllers under", pl->own, errno);
    }
    hodei_strlcpy(parent, cg_v2_parent, parent_len);
    pthread_mutex_unlock(&cg_mu);
    return ok && parent[0];
}

static bool cg_v2_make(exec_cg *cg, const cg_place *pl, const char *name, int64_t cpu_millis,
                       int64_t mem)
{
    char parent[EXEC_CG_PATH_MAX], dir[EXEC_CG_PATH_MAX + 80], num[64];
    if (!cg_v2_prepare(cg, pl, parent, sizeof parent))
        return false;
    snprintf(dir, sizeof dir, "%.3900s/%s", parent, name);
    if (!cg_mkdir(cg, dir) || !cg_add(cg, dir))
        return false;
    bool ok = true;
    if (mem > 0) {
        snprintf(num, sizeof num, "%" PRId64, mem);
        ok = cg_write(dir, "memory.max", num);
        cg_write(dir, "memory.swap.max", "0"); /* absent without swap accounting */
    }
    if (ok && cpu_millis > 0) {
        snprintf(num, sizeof num, "%" PRId64 " %d", cpu_millis * CG_CPU_PERIOD_US / 1000,
                 CG_CPU_PERIOD_US);
        ok = cg_write(dir, "cpu.max", num);
    }
    if (!ok)
        cg_note(cg, "setting the limits of", dir, errno);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/memory.events");
    cg->oom_fd = open(dir, O_RDONLY | O_CLOEXEC);
    cg->v2 = true;
    return ok;
}

/* v1: one cgroup per hierarchy (memory, cpu) under the agent's own. */
static bool cg_v1_one(exec_cg *cg, const char *controller, const char *name, char *dir,
                      size_t dir_len)
{
    cg_place pl;
    if (!cg_find(controller, false, &pl)) {
        snprintf(cg->note, sizeof cg->note, "no cgroup v1 %s hierarchy is mounted", controller);
        return false;
    }
    snprintf(dir, dir_len, "%.3900s/%.90s", pl.own, name);
    return cg_mkdir(cg, dir) && cg_add(cg, dir);
}

static bool cg_v1_make(exec_cg *cg, const char *name, int64_t cpu_millis, int64_t mem)
{
    char dir[EXEC_CG_PATH_MAX + 80], num[64], path[EXEC_CG_PATH_MAX + 96];
    if (mem > 0) {
        if (!cg_v1_one(cg, "memory", name, dir, sizeof dir))
            return false;
        snprintf(num, sizeof num, "%" PRId64, mem);
        if (!cg_write(dir, "memory.limit_in_bytes", num)) {
            cg_note(cg, "setting memory.limit_in_bytes of", dir, errno);
            return false;
        }
        cg_write(dir, "memory.memsw.limit_in_bytes", num); /* no swap, where accounted */
        snprintf(path, sizeof path, "%.3900s/memory.oom_control", dir);
        cg->oom_fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (cpu_millis > 0) {
        if (!cg_v1_one(cg, "cpu", name, dir, sizeof dir))
            return false;
        snprintf(num, sizeof num, "%" PRId64, cpu_millis * CG_CPU_PERIOD_US / 1000);
        if (!cg_write(dir, "cpu.cfs_period_us", HODEI_STR(CG_CPU_PERIOD_US)) ||
            !cg_write(dir, "cpu.cfs_quota_us", num)) {
            cg_note(cg, "setting cpu.cfs_quota_us of", dir, errno);
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------ OOM counts */

static int64_t cg_oom_count(const exec_cg *cg)
{
    char buf[CG_READ_MAX];
    if (cg->oom_fd < 0)
        return -1;
    ssize_t n = pread(cg->oom_fd, buf, sizeof buf - 1, 0);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    return cg_field(buf, "oom_kill");
}

/* The enclosing memory cgroup (the worker's): its OOM counter, and its
 * limit (-1 = none). */
static void cg_enclosing(exec_cg *cg, int64_t *limit)
{
    cg_place pl;
    char path[EXEC_CG_PATH_MAX + 32], buf[64];
    *limit = -1;
    bool v2 = cg_find(NULL, true, &pl) && cg_v2_usable(&pl);
    if (!v2 && !cg_find("memory", false, &pl))
        return;
    snprintf(path, sizeof path, "%.3900s/%s", pl.own, v2 ? "memory.events" : "memory.oom_control");
    cg->oom_fd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(path, sizeof path, "%.3900s/%s", pl.own, v2 ? "memory.max" : "memory.limit_in_bytes");
    int64_t v;
    if (cg_read(path, buf, sizeof buf) > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        /* v1 says "no limit" with a huge number (PAGE_COUNTER_MAX pages) */
        if (hodei_parse_i64(buf, 1, INT64_C(1) << 50, &v))
            *limit = v;
    }
}

/* ------------------------------------------------------------ API */

/* Kills whatever is left in dir (a process that left the job's process
 * group), then removes it. */
static void cg_remove(const char *dir)
{
    char path[EXEC_CG_PATH_MAX + 32], buf[CG_READ_MAX];
    snprintf(path, sizeof path, "%.3900s/cgroup.procs", dir);
    for (int i = 0; i < CG_RMDIR_TRIES; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            break;
        if (cg_read(path, buf, sizeof buf) > 0)
            for (char *p = buf; *p;) {
                long pid = strtol(p, &p, 10);
                if (pid > 1)
                    kill((pid_t)pid, SIGKILL);
                while (*p == '\n')
                    p++;
            }
        hodei_sleep_ms(CG_RMDIR_WAIT_MS);
    }
    HLOG_WARN("job cgroup %s: not removed: %s", dir, strerror(errno));
}

/* Closes and removes what cg holds. */
static void cg_undo(exec_cg *cg)
{
    for (int i = 0; i < cg->n; i++) {
        if (cg->procs_fd[i] >= 0)
            close(cg->procs_fd[i]);
        cg->procs_fd[i] = -1;
        cg_remove(cg->dir[i]);
    }
    cg->n = 0;
    if (cg->oom_fd >= 0)
        close(cg->oom_fd);
    cg->oom_fd = -1;
}

void exec_cg_open(exec_cg *cg, const hodei_exec_opts *opts, const Hodei__V1__JobSpec *spec,
                  const char *job_id, int attempt)
{
    const Hodei__V1__ResourceRequirements *r = spec->resources;
    int64_t cpu = r && r->cpu_cores > 0 ? (int64_t)(r->cpu_cores * 1000.0 + 0.5) : 0;
    int64_t mem = r && r->memory_bytes > 0 ? r->memory_bytes : 0;
    char name[EXEC_CG_NAME_MAX];
    cg_place pl;
    memset(cg, 0, sizeof *cg);
    cg->oom_fd = -1;
    for (int i = 0; i < EXEC_CG_MAX; i++)
        cg->procs_fd[i] = -1;
    cg->enforced = true;
    if (cpu == 0 && mem == 0)
        return;
    if (opts->job_cgroups) {
        snprintf(name, sizeof name, "hodei-job-%.40s-%d", job_id, attempt);
        bool v2 = cg_find(NULL, true, &pl) && cg_v2_usable(&pl);
        cg->own = v2 ? cg_v2_make(cg, &pl, name, cpu, mem) : cg_v1_make(cg, name, cpu, mem);
    } else {
        snprintf(cg->note, sizeof cg->note, "job cgroups are off (worker.job_cgroups)");
    }
    cg->mem_limit = mem;
    if (!cg->own) {
        int64_t limit = -1;
        cg_undo(cg);
        cg_enclosing(cg, &limit);
        cg->enforced = mem == 0 || limit > 0;
        cg->mem_limit = limit > 0 ? limit : 0;
    }
    cg->oom_base = cg_oom_count(cg);
}

bool exec_cg_oom(const exec_cg *cg)
{
    int64_t now = cg_oom_count(cg);
    return now > 0 && now > (cg->oom_base > 0 ? cg->oom_base : 0);
}

void exec_cg_fini(exec_cg *cg)
{
    cg_undo(cg);
}
