/* The process provider (embedded default): each worker is a `hodei-worker`
 * child process in its own session, found again after a restart through
 * <state dir>/workers/<worker id>.pid ("<pid> <start time> <provider>\n";
 * the start time is field 22 of /proc/<pid>/stat, so a recycled pid is never
 * mistaken for the worker). Output goes to <state dir>/workers/<id>.log.
 *
 * provider_ref = "<pid>:<start time>".
 *
 * Scope (provider.h): <state dir>/workers/scope holds a UUID made the first
 * time the folder is used. Provisioners sharing the folder (one host) share
 * the scope; a provisioner with another folder (another host) has another
 * one, and never judges this folder's workers. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hodei/id.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "provider.h"

#define PROC_PATH_MAX 4096
#define PROC_CHILDREN_MAX 4096 /* children of ours not yet reaped */
#define PROC_ENV_MAX 48        /* entries handed to a worker */
#define PROC_ENV_TEXT_MAX 8192 /* their text */
#define PROC_STAT_MAX 1024     /* /proc/<pid>/stat we read */
#define PROC_CMDLINE_MAX 4096
#define PROC_POLL_MS 20        /* while waiting for a worker to go */
#define PROC_KILL_WAIT_MS 3000 /* after SIGKILL */
#define PROC_PIDFILE_MAX 256

extern char **environ;

/* Passed through from the provisioner's environment, with every
 * HODEI_WORKER_* variable (the agent's own settings: TLS files, labels);
 * nothing else is (the database URL stays here). */
#define PROC_ENV_WORKER_PREFIX "HODEI_WORKER_"
static const char *const proc_env_keep[] = {
    "PATH", "HOME", "TMPDIR", "LANG", "TZ", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", NULL};

typedef struct {
    prov_driver base;        /* first: the provisioner sees only this */
    char dir[PROC_PATH_MAX]; /* <state dir>/workers */
    char binary[PROC_PATH_MAX];
    char binary_base[256]; /* what /proc/<pid>/cmdline must show */
    int64_t grace_ms;
    pthread_mutex_t mu; /* guards children */
    pid_t children[PROC_CHILDREN_MAX];
    size_t n_children;
} proc_driver;

/* A worker as its pid file describes it. */
typedef struct {
    pid_t pid;
    uint64_t start; /* 0 = unknown: not checked */
} proc_ident;

static proc_driver *proc_of(prov_driver *drv)
{
    return (proc_driver *)drv;
}

/* ------------------------------------------------------------ /proc reading */

static bool proc_read_file(const char *path, char *buf, size_t cap, size_t *len_out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    *len_out = (size_t)n;
    return true;
}

/* State letter and start time (field 22) of pid; false when it does not exist. */
static bool proc_stat(pid_t pid, char *state, uint64_t *start, pid_t *session)
{
    char path[64], buf[PROC_STAT_MAX];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!proc_read_file(path, buf, sizeof buf, &len))
        return false;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p || p[1] != ' ')
        return false;
    *state = p[2];
    /* fields after ")": 3 state, 4 ppid, 5 pgrp, 6 session, ... 22 starttime */
    long long sid = 0;
    unsigned long long st = 0;
    int n = sscanf(p + 2,
                   "%*c %*d %*d %lld %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d"
                   " %*d %*d %*d %llu",
                   &sid, &st);
    if (n != 2)
        return false;
    *session = (pid_t)sid;
    *start = st;
    return true;
}

static bool proc_cmdline_ok(const proc_driver *pd, pid_t pid)
{
    char path[64], buf[PROC_CMDLINE_MAX];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    if (!proc_read_file(path, buf, sizeof buf, &len))
        return false;
    /* argv[0], or argv[1] when an interpreter runs a script */
    for (size_t off = 0, i = 0; off < len && i < 2; i++) {
        const char *arg = buf + off;
        const char *slash = strrchr(arg, '/');
        if (strcmp(slash ? slash + 1 : arg, pd->binary_base) == 0)
            return true;
        off += strlen(arg) + 1;
    }
    return false;
}

/* true when id names a live (not zombie) worker process of ours. */
static bool proc_alive(const proc_driver *pd, const proc_ident *id)
{
    char state;
    uint64_t start;
    pid_t sid;
    if (id->pid <= 1 || !proc_stat(id->pid, &state, &start, &sid))
        return false;
    if (state == 'Z' || state == 'X' || (id->start && start != id->start))
        return false;
    return proc_cmdline_ok(pd, id->pid);
}

/* ------------------------------------------------------------ children */

/* Reaps our children that have exited (a restarted provisioner has none:
 * its workers were adopted by init). */
static void proc_reap(proc_driver *pd)
{
    pthread_mutex_lock(&pd->mu);
    for (size_t i = 0; i < pd->n_children;) {
        pid_t r = waitpid(pd->children[i], NULL, WNOHANG);
        if (r == pd->children[i] || (r < 0 && errno == ECHILD))
            pd->children[i] = pd->children[--pd->n_children];
        else
            i++;
    }
    pthread_mutex_unlock(&pd->mu);
}

static bool proc_child_add(proc_driver *pd, pid_t pid)
{
    bool ok = false;
    pthread_mutex_lock(&pd->mu);
    if (pd->n_children < PROC_CHILDREN_MAX) {
        pd->children[pd->n_children++] = pid;
        ok = true;
    }
    pthread_mutex_unlock(&pd->mu);
    return ok;
}

/* ------------------------------------------------------------ pid files */

static void proc_path(const proc_driver *pd, const char *worker_id, const char *ext, char *out,
                      size_t out_len)
{
    snprintf(out, out_len, "%s/%s.%s", pd->dir, worker_id, ext);
}

static bool proc_pidfile_read(const proc_driver *pd, const char *worker_id, proc_ident *id)
{
    char path[PROC_PATH_MAX + 64], buf[PROC_PIDFILE_MAX], provider[PROV_NAME_MAX];
    size_t len;
    proc_path(pd, worker_id, "pid", path, sizeof path);
    if (!proc_read_file(path, buf, sizeof buf, &len))
        return false;
    long long pid = 0;
    unsigned long long start = 0;
    provider[0] = '\0';
    int n = sscanf(buf, "%lld %llu %63s", &pid, &start, provider);
    if (n < 1 || pid <= 1 || pid > INT32_MAX)
        return false;
    if (n == 3 && strcmp(provider, pd->base.name) != 0)
        return false; /* another process-type provider's worker */
    id->pid = (pid_t)pid;
    id->start = n >= 2 ? start : 0;
    return true;
}

static hodei_status proc_pidfile_write(const proc_driver *pd, const char *worker_id,
                                       const proc_ident *id, hodei_err *err)
{
    char path[PROC_PATH_MAX + 64], tmp[PROC_PATH_MAX + 64], text[PROC_PIDFILE_MAX];
    proc_path(pd, worker_id, "pid", path, sizeof path);
    proc_path(pd, worker_id, "pid.tmp", tmp, sizeof tmp);
    int n =
        snprintf(text, sizeof text, "%d %" PRIu64 " %s\n", (int)id->pid, id->start, pd->base.name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "worker %s: %s: %s", worker_id, tmp,
                             strerror(errno));
    bool ok = write(fd, text, (size_t)n) == n && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return hodei_err_set(err, HODEI_ERR_IO, "worker %s: writing %s: %s", worker_id, path,
                             strerror(e));
    }
    return HODEI_OK;
}

static void proc_pidfile_remove(const proc_driver *pd, const char *worker_id)
{
    char path[PROC_PATH_MAX + 64];
    proc_path(pd, worker_id, "pid", path, sizeof path);
    if (unlink(path) != 0 && errno != ENOENT)
        HLOG_WARN("worker %s: removing %s: %s", worker_id, path, strerror(errno));
}

static void proc_ref_format(const proc_ident *id, char ref[PROV_REF_MAX])
{
    snprintf(ref, PROV_REF_MAX, "%d:%" PRIu64, (int)id->pid, id->start);
}

static bool proc_ref_parse(const char *ref, proc_ident *id)
{
    long long pid = 0;
    unsigned long long start = 0;
    if (!ref || sscanf(ref, "%lld:%llu", &pid, &start) != 2 || pid <= 1 || pid > INT32_MAX)
        return false;
    id->pid = (pid_t)pid;
    id->start = start;
    return true;
}

/* The worker's identity: its pid file, else the ref the registry holds. */
static bool proc_find(const proc_driver *pd, const char *worker_id, const char *ref, proc_ident *id)
{
    return proc_pidfile_read(pd, worker_id, id) || proc_ref_parse(ref, id);
}

/* ------------------------------------------------------------ spawning */

typedef struct {
    char *ptrs[PROC_ENV_MAX + 1];
    int len;
    char text[PROC_ENV_TEXT_MAX];
    size_t used;
} proc_env;

static bool proc_env_add(proc_env *e, const char *key, const char *val)
{
    size_t room = sizeof e->text - e->used;
    int n = snprintf(e->text + e->used, room, "%s=%s", key, val);
    if (n < 0 || (size_t)n >= room || e->len >= PROC_ENV_MAX)
        return false;
    e->ptrs[e->len++] = e->text + e->used;
    e->ptrs[e->len] = NULL;
    e->used += (size_t)n + 1;
    return true;
}

static bool proc_env_passthrough(proc_env *e)
{
    size_t plen = strlen(PROC_ENV_WORKER_PREFIX);
    for (char **v = environ; *v; v++) {
        if (strncmp(*v, PROC_ENV_WORKER_PREFIX, plen) != 0 ||
            strncmp(*v, "HODEI_WORKER_ID=", strlen("HODEI_WORKER_ID=")) == 0)
            continue;
        const char *eq = strchr(*v, '=');
        char key[128];
        if (!eq || (size_t)(eq - *v) >= sizeof key)
            continue;
        memcpy(key, *v, (size_t)(eq - *v));
        key[eq - *v] = '\0';
        if (!proc_env_add(e, key, eq + 1))
            return false;
    }
    for (int i = 0; proc_env_keep[i]; i++) {
        const char *v = getenv(proc_env_keep[i]);
        if (v && !proc_env_add(e, proc_env_keep[i], v))
            return false;
    }
    return true;
}

static bool proc_env_build(proc_env *e, const prov_worker_env *w)
{
    e->len = 0;
    e->used = 0;
    e->ptrs[0] = NULL;
    return proc_env_passthrough(e) && proc_env_add(e, "HODEI_SERVER", w->server) &&
           proc_env_add(e, "HODEI_WORKER_ID", w->worker_id) &&
           proc_env_add(e, "HODEI_LOG_LEVEL", w->log_level) && proc_env_add(e, "HODEI_OTP", w->otp);
}

/* Own session, default signal mask and dispositions (the provisioner blocks
 * SIGTERM and ignores SIGPIPE; a worker must not inherit that). */
static int proc_spawn_attr(posix_spawnattr_t *attr)
{
    sigset_t none, defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    int rc = posix_spawnattr_init(attr);
    if (rc == 0)
        rc = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(attr, &defaults);
    return rc;
}

/* stdin /dev/null, stdout+stderr the log, nothing else inherited. */
static int proc_spawn_files(posix_spawn_file_actions_t *fa, int log_fd)
{
    int rc = posix_spawn_file_actions_init(fa);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(fa, log_fd, 1);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(fa, log_fd, 2);
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, 3);
    return rc;
}

static hodei_status proc_spawn(proc_driver *pd, const prov_worker_env *w, pid_t *pid_out,
                               hodei_err *err)
{
    char log_path[PROC_PATH_MAX + 64];
    char *argv[] = {pd->binary, NULL};
    proc_env *env = calloc(1, sizeof *env);
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    hodei_status st = HODEI_ERR_INTERNAL;
    if (!env)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "worker %s: out of memory", w->worker_id);
    proc_path(pd, w->worker_id, "log", log_path, sizeof log_path);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (log_fd < 0) {
        st = hodei_err_set(err, HODEI_ERR_IO, "worker %s: %s: %s", w->worker_id, log_path,
                           strerror(errno));
        goto out_env;
    }
    if (!proc_env_build(env, w)) {
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "worker %s: environment larger than %d bytes",
                           w->worker_id, PROC_ENV_TEXT_MAX);
        goto out_log;
    }
    int rc = proc_spawn_attr(&attr);
    if (rc == 0 && (rc = proc_spawn_files(&fa, log_fd)) == 0) {
        rc = posix_spawn(pid_out, pd->binary, &fa, &attr, argv, env->ptrs);
        posix_spawn_file_actions_destroy(&fa);
    }
    posix_spawnattr_destroy(&attr);
    st = rc == 0
             ? HODEI_OK
             : hodei_err_set(err, rc == ENOENT ? HODEI_ERR_NOT_FOUND : HODEI_ERR_IO,
                             "worker %s: starting %s: %s", w->worker_id, pd->binary, strerror(rc));
out_log:
    close(log_fd);
out_env:
    explicit_bzero(env, sizeof *env); /* it held the token */
    free(env);
    return st;
}

static hodei_status proc_create_worker(prov_driver *drv, const prov_worker_env *w,
                                       char ref_out[PROV_REF_MAX], hodei_err *err)
{
    proc_driver *pd = proc_of(drv);
    proc_ident id = {0};
    char state;
    pid_t sid;
    proc_reap(pd);
    if (proc_pidfile_read(pd, w->worker_id, &id) && proc_alive(pd, &id))
        return hodei_err_set(err, HODEI_ERR_EXISTS, "worker %s: already running as pid %d",
                             w->worker_id, (int)id.pid);
    hodei_status st = proc_spawn(pd, w, &id.pid, err);
    if (st != HODEI_OK)
        return st;
    if (!proc_child_add(pd, id.pid))
        HLOG_WARN("worker %s: more than %d children; pid %d will not be reaped by us", w->worker_id,
                  PROC_CHILDREN_MAX, (int)id.pid);
    if (!proc_stat(id.pid, &state, &id.start, &sid))
        id.start = 0;
    if ((st = proc_pidfile_write(pd, w->worker_id, &id, err)) != HODEI_OK)
        return st; /* the saga compensates: destroy by ref */
    proc_ref_format(&id, ref_out);
    return HODEI_OK;
}

/* ------------------------------------------------------------ status, list */

static hodei_status proc_get_status(prov_driver *drv, const char *worker_id, const char *ref,
                                    prov_worker_status *out, char ref_out[PROV_REF_MAX],
                                    hodei_err *err)
{
    proc_driver *pd = proc_of(drv);
    proc_ident id = {0};
    proc_reap(pd);
    *out = PROV_WORKER_GONE;
    if (proc_find(pd, worker_id, ref, &id) && proc_alive(pd, &id)) {
        *out = PROV_WORKER_RUNNING;
        if (ref_out)
            proc_ref_format(&id, ref_out);
    }
    return HODEI_OK;
}

/* The worker id in "<uuid>.pid", or false. */
static bool proc_pidfile_name(const char *name, char id_out[HODEI_ID_BUF])
{
    size_t len = strlen(name);
    if (len != HODEI_ID_LEN + 4 || strcmp(name + HODEI_ID_LEN, ".pid") != 0)
        return false;
    memcpy(id_out, name, HODEI_ID_LEN);
    id_out[HODEI_ID_LEN] = '\0';
    return hodei_id_valid(id_out);
}

static hodei_status proc_list_workers(prov_driver *drv, prov_worker_ref *out, size_t cap,
                                      size_t *n_out, hodei_err *err)
{
    proc_driver *pd = proc_of(drv);
    *n_out = 0;
    proc_reap(pd);
    DIR *dir = opendir(pd->dir);
    if (!dir)
        return hodei_err_set(err, HODEI_ERR_IO, "list workers: %s: %s", pd->dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && *n_out < cap) {
        prov_worker_ref *r = &out[*n_out];
        proc_ident id = {0};
        if (!proc_pidfile_name(de->d_name, r->worker_id) ||
            !proc_pidfile_read(pd, r->worker_id, &id))
            continue;
        if (!proc_alive(pd, &id)) {
            proc_pidfile_remove(pd, r->worker_id); /* it exited: forget it */
            continue;
        }
        proc_ref_format(&id, r->ref);
        (*n_out)++;
    }
    closedir(dir);
    return HODEI_OK;
}

/* ------------------------------------------------------------ destroying */

/* Signals every process of session sid (the worker and whatever it started,
 * in any process group); returns how many live ones there were. */
static int proc_session_signal(pid_t sid, int sig)
{
    int live = 0;
    DIR *dir = opendir("/proc");
    if (!dir)
        return kill(-sid, sig) == 0 ? 1 : 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        int64_t pid;
        char state;
        uint64_t start;
        pid_t s;
        if (!hodei_parse_i64(de->d_name, 2, INT32_MAX, &pid) ||
            !proc_stat((pid_t)pid, &state, &start, &s) || s != sid || state == 'Z' || state == 'X')
            continue;
        live++;
        if (sig)
            kill((pid_t)pid, sig);
    }
    closedir(dir);
    return live;
}

/* The processes to stop: the worker's whole session when it leads one (it
 * always does when we started it), else only the worker itself. */
typedef struct {
    proc_ident id;
    bool session;
} proc_target;

static int proc_target_signal(const proc_driver *pd, const proc_target *t, int sig)
{
    if (t->session)
        return proc_session_signal(t->id.pid, sig);
    if (!proc_alive(pd, &t->id))
        return 0;
    if (sig)
        kill(t->id.pid, sig);
    return 1;
}

/* Waits up to timeout_ms until nothing of the target is left alive. */
static bool proc_target_wait(proc_driver *pd, const proc_target *t, int64_t timeout_ms)
{
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    for (;;) {
        proc_reap(pd);
        if (proc_target_signal(pd, t, 0) == 0)
            return true;
        if (hodei_mono_ms() >= deadline)
            return false;
        hodei_sleep_ms(PROC_POLL_MS);
    }
}

static hodei_status proc_destroy_worker(prov_driver *drv, const char *worker_id, const char *ref,
                                        hodei_err *err)
{
    proc_driver *pd = proc_of(drv);
    proc_target t = {0};
    char state;
    uint64_t start;
    pid_t sid = 0;
    proc_reap(pd);
    if (!proc_find(pd, worker_id, ref, &t.id) || !proc_alive(pd, &t.id) ||
        !proc_stat(t.id.pid, &state, &start, &sid)) {
        proc_pidfile_remove(pd, worker_id);
        return HODEI_OK;
    }
    t.session = sid == t.id.pid;
    proc_target_signal(pd, &t, SIGTERM);
    if (!proc_target_wait(pd, &t, pd->grace_ms)) {
        HLOG_WARN("worker %s: pid %d still running %" PRId64 " ms after SIGTERM; SIGKILL",
                  worker_id, (int)t.id.pid, pd->grace_ms);
        proc_target_signal(pd, &t, SIGKILL);
        if (!proc_target_wait(pd, &t, PROC_KILL_WAIT_MS))
            return hodei_err_set(err, HODEI_ERR_TIMEOUT,
                                 "worker %s: pid %d survived SIGKILL for %d ms", worker_id,
                                 (int)t.id.pid, PROC_KILL_WAIT_MS);
    }
    proc_pidfile_remove(pd, worker_id);
    return HODEI_OK;
}

/* ------------------------------------------------------------ instance */

static bool proc_health(prov_driver *drv, char msg[PROV_HEALTH_MSG_MAX])
{
    proc_driver *pd = proc_of(drv);
    if (access(pd->binary, X_OK) != 0) {
        snprintf(msg, PROV_HEALTH_MSG_MAX, "worker binary %.160s: %s", pd->binary, strerror(errno));
        return false;
    }
    if (access(pd->dir, W_OK) != 0) {
        snprintf(msg, PROV_HEALTH_MSG_MAX, "state folder %.160s: %s", pd->dir, strerror(errno));
        return false;
    }
    snprintf(msg, PROV_HEALTH_MSG_MAX, "ok: %.200s", pd->binary);
    return true;
}

static void proc_capabilities(const prov_driver *drv, prov_caps *out)
{
    out->isolation = "none";
    out->survives_restart = true;
    out->create_timeout_ms = 1000;
}

static hodei_status proc_mkdirs(const char *state_dir, char *dir, size_t dir_len, hodei_err *err)
{
    if (mkdir(state_dir, 0755) != 0 && errno != EEXIST)
        return hodei_err_set(err, HODEI_ERR_IO, "provisioner.state_dir: %s: %s", state_dir,
                             strerror(errno));
    int n = snprintf(dir, dir_len, "%s/workers", state_dir);
    if (n < 0 || (size_t)n >= dir_len)
        return hodei_err_set(err, HODEI_ERR_INVALID, "provisioner.state_dir: too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return hodei_err_set(err, HODEI_ERR_IO, "provisioner.state_dir: %s: %s", dir,
                             strerror(errno));
    return HODEI_OK;
}

/* Reads <dir>/scope into out: a UUID, nothing else. */
static bool proc_scope_read(const char *path, char out[PROV_SCOPE_MAX])
{
    char buf[PROV_SCOPE_MAX];
    size_t len;
    if (!proc_read_file(path, buf, sizeof buf, &len))
        return false;
    buf[strcspn(buf, "\n")] = '\0';
    if (!hodei_id_valid(buf))
        return false;
    hodei_strlcpy(out, buf, PROV_SCOPE_MAX);
    return true;
}

/* The folder's scope, made once: written to a file of our own, then linked
 * into place (link fails when another provisioner sharing the folder was
 * first, and then its scope is read). */
static hodei_status proc_scope_load(const char *dir, char out[PROV_SCOPE_MAX], hodei_err *err)
{
    char path[PROC_PATH_MAX + 16], tmp[PROC_PATH_MAX + 48], id[HODEI_ID_BUF];
    snprintf(path, sizeof path, "%s/scope", dir);
    if (proc_scope_read(path, out))
        return HODEI_OK;
    hodei_id_new(id);
    snprintf(tmp, sizeof tmp, "%s/scope.%d.tmp", dir, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "provisioner.state_dir: %s: %s", tmp,
                             strerror(errno));
    size_t n = strlen(id);
    id[n] = '\n';
    bool ok = write(fd, id, n + 1) == (ssize_t)(n + 1) && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    int e = ok ? 0 : errno;
    if (ok && link(tmp, path) != 0 && errno != EEXIST) {
        ok = false;
        e = errno;
    }
    unlink(tmp);
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_IO, "provisioner.state_dir: %s: %s", path, strerror(e));
    if (!proc_scope_read(path, out))
        return hodei_err_set(
            err, HODEI_ERR_INVALID,
            "provisioner.state_dir: %s does not hold a scope id (a UUID); remove it"
            " only if no worker of this folder runs",
            path);
    return HODEI_OK;
}

static hodei_status proc_create(const prov_driver_params *p, prov_driver **out, hodei_err *err)
{
    proc_driver *pd = calloc(1, sizeof *pd);
    if (!pd)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "process provider: out of memory");
    pd->base.ops = &prov_process_ops;
    hodei_strlcpy(pd->base.name, p->name, sizeof pd->base.name);
    pd->grace_ms = p->destroy_grace_ms;
    hodei_status st = proc_mkdirs(p->state_dir, pd->dir, sizeof pd->dir, err);
    if (st == HODEI_OK)
        st = proc_scope_load(pd->dir, pd->base.scope, err);
    if (st == HODEI_OK && !hodei_strlcpy(pd->binary, p->worker_binary, sizeof pd->binary))
        st = hodei_err_set(err, HODEI_ERR_INVALID, "provisioner.worker_binary: too long");
    if (st != HODEI_OK) {
        free(pd);
        return st;
    }
    const char *slash = strrchr(pd->binary, '/');
    hodei_strlcpy(pd->binary_base, slash ? slash + 1 : pd->binary, sizeof pd->binary_base);
    pthread_mutex_init(&pd->mu, NULL);
    *out = &pd->base;
    return HODEI_OK;
}

static void proc_destroy(prov_driver *drv)
{
    if (!drv)
        return;
    proc_driver *pd = proc_of(drv);
    proc_reap(pd);
    pthread_mutex_destroy(&pd->mu);
    free(pd);
}

const prov_driver_ops prov_process_ops = {
    .type = "process",
    .create = proc_create,
    .destroy = proc_destroy,
    .create_worker = proc_create_worker,
    .get_status = proc_get_status,
    .destroy_worker = proc_destroy_worker,
    .list_workers = proc_list_workers,
    .health = proc_health,
    .capabilities = proc_capabilities,
};
