/* Test harness: private stacks through scripts/hodei-stack and product
 * daemons as child processes. See harness.h.
 *
 * Nothing may outlive a test binary, even one that crashes:
 * - each stack gets a watchdog process that runs `hodei-stack down --purge`
 *   when the process that started the stack is gone;
 * - each product process gets PR_SET_PDEATHSIG(SIGKILL) and its own process
 *   group, and an atexit handler kills what is left on a normal exit.
 * Criterion runs each test in a forked child: registries remember the pid
 * that owns each entry, so a child never tears down its parent's things. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hodei/assert.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define HARNESS_STACKS_MAX 16
#define HARNESS_CHILDREN_MAX 256
#define HARNESS_ENV_MAX 512         /* entries in a child's environment */
#define HARNESS_ENV_STORE_MAX 16384 /* bytes of the entries we add */
#define HARNESS_ARGV_MAX 64
#define HARNESS_CMD_MAX 8192
#define HARNESS_OUT_MAX 65536           /* captured output of hodei-stack */
#define HARNESS_LOG_READ_MAX (64 << 20) /* largest log harness_log_contains reads */
#define HARNESS_POLL_MS 20
#define HARNESS_WATCHDOG_POLL_MS 100
#define HARNESS_PG_INSTALL "/usr/lib/postgresql" /* Debian: <major>/bin per server */

extern char **environ;

#define HARNESS_CHECK(cond, ...)                                                                   \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "harness: " __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                                   \
            hodei_assert_fail(#cond, __FILE__, __LINE__);                                          \
        }                                                                                          \
    } while (0)

/* A stack this process started and has not stopped yet. */
typedef struct {
    bool in_use;
    pid_t owner;
    pid_t watchdog;
    char dir[512];
    char root[512];
    char bin[512];
} harness_live;

/* A product process this process started. */
typedef struct {
    bool in_use;
    pid_t owner;
    pid_t pid;
    bool reaped;
    int status;
    char dir[512]; /* state dir of its stack */
} harness_child;

static harness_live harness_lives[HARNESS_STACKS_MAX];
static harness_child harness_children[HARNESS_CHILDREN_MAX];
static pid_t harness_atexit_owner;
static int harness_proc_seq;

/* ---------------------------------------------------------------- env */

typedef struct {
    char *ptrs[HARNESS_ENV_MAX + 1];
    int len;
    char store[HARNESS_ENV_STORE_MAX];
    size_t used;
} harness_env;

static void harness_env_init(harness_env *e)
{
    e->len = 0;
    e->used = 0;
    for (char **p = environ; *p; p++) {
        HARNESS_CHECK(e->len < HARNESS_ENV_MAX, "environment has more than %d entries",
                      HARNESS_ENV_MAX);
        e->ptrs[e->len++] = *p;
    }
    e->ptrs[e->len] = NULL;
}

/* Sets "K=V", replacing an entry with the same key. */
static void harness_env_set(harness_env *e, const char *kv)
{
    const char *eq = strchr(kv, '=');
    HARNESS_CHECK(eq && eq != kv, "environment entry without KEY=: %s", kv);
    size_t klen = (size_t)(eq - kv) + 1;
    size_t n = strlen(kv) + 1;
    HARNESS_CHECK(e->used + n <= sizeof e->store, "environment store full (%d bytes)",
                  HARNESS_ENV_STORE_MAX);
    char *copy = e->store + e->used;
    memcpy(copy, kv, n);
    e->used += n;
    for (int i = 0; i < e->len; i++) {
        if (strncmp(e->ptrs[i], kv, klen) == 0) {
            e->ptrs[i] = copy;
            return;
        }
    }
    HARNESS_CHECK(e->len < HARNESS_ENV_MAX, "environment has more than %d entries",
                  HARNESS_ENV_MAX);
    e->ptrs[e->len++] = copy;
    e->ptrs[e->len] = NULL;
}

static void harness_env_setf(harness_env *e, const char *key, const char *val)
{
    char kv[2048];
    int n = snprintf(kv, sizeof kv, "%s=%s", key, val);
    HARNESS_CHECK(n > 0 && (size_t)n < sizeof kv, "environment value too long for %s", key);
    harness_env_set(e, kv);
}

static void harness_env_stack(harness_env *e, const harness_stack *st)
{
    char num[16];
    harness_env_setf(e, "HODEI_DATABASE_URL", st->db_url);
    harness_env_setf(e, "HODEI_NATS_URL", st->nats_server_url);
    harness_env_setf(e, "HODEI_NATS_USER", st->nats_user);
    harness_env_setf(e, "HODEI_NATS_PASSWORD_FILE", st->nats_password_file);
    if (st->api_key[0])
        harness_env_setf(e, "HODEI_API_KEY", st->api_key);
    harness_env_setf(e, "HODEI_STATE_DIR", st->state_dir);
    harness_env_setf(e, "HODEI_PG_DATA", st->pg_data);
    harness_env_setf(e, "HODEI_ROOT", st->root);
    harness_env_setf(e, "HODEI_BIN", st->bin);
    snprintf(num, sizeof num, "%d", st->pg_port);
    harness_env_setf(e, "HODEI_PG_PORT", num);
    snprintf(num, sizeof num, "%d", st->nats_port);
    harness_env_setf(e, "HODEI_NATS_PORT", num);
}

/* ---------------------------------------------------------------- running */

typedef struct {
    const char *path; /* searched in PATH when it has no '/' */
    char *const *argv;
    char *const *envp;
    char *out; /* captured stdout (may be NULL) */
    size_t out_len;
    bool merge_stderr; /* capture stderr too */
} harness_run_req;

/* Reads fd to EOF into out (truncating, always NUL-terminated). */
static void harness_read_all(int fd, char *out, size_t out_len)
{
    size_t used = 0;
    char sink[4096];
    for (;;) {
        char *dst = out && used + 1 < out_len ? out + used : sink;
        size_t room = dst == sink ? sizeof sink : out_len - 1 - used;
        ssize_t n = read(fd, dst, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (dst != sink)
            used += (size_t)n;
    }
    if (out && out_len > 0)
        out[used] = '\0';
}

static int harness_wait_status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Runs a program to completion; returns its exit code (128+sig if killed). */
static int harness_run(const harness_run_req *r)
{
    int fds[2] = {-1, -1};
    bool capture = r->out != NULL;
    HARNESS_CHECK(!capture || pipe2(fds, O_CLOEXEC) == 0, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    HARNESS_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        if (capture) {
            dup2(fds[1], 1);
            if (r->merge_stderr)
                dup2(fds[1], 2);
        }
        close_range(3, ~0U, 0); /* nothing of the test leaks into servers */
        execvpe(r->path, r->argv, r->envp);
        _exit(127);
    }
    if (capture) {
        close(fds[1]);
        harness_read_all(fds[0], r->out, r->out_len);
        close(fds[0]);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return harness_wait_status_code(status);
}

/* Runs scripts/hodei-stack CMD --state-dir DIR --bin BIN [extra]; output in out. */
static int harness_stack_script(const char *root, const char *bin, const char *dir, const char *cmd,
                                const char *extra, char *out, size_t out_len)
{
    char script[600];
    snprintf(script, sizeof script, "%s/scripts/hodei-stack", root);
    char *argv[] = {script,  (char *)cmd, "--state-dir", (char *)dir,
                    "--bin", (char *)bin, (char *)extra, NULL};
    harness_env env;
    harness_env_init(&env);
    harness_run_req req = {.path = script,
                           .argv = argv,
                           .envp = env.ptrs,
                           .out = out,
                           .out_len = out_len,
                           .merge_stderr = true};
    return harness_run(&req);
}

/* ---------------------------------------------------------------- teardown */

static void harness_child_reap(harness_child *c, bool block)
{
    if (c->reaped)
        return;
    int status = 0;
    pid_t r;
    do {
        r = waitpid(c->pid, &status, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == c->pid || (r < 0 && errno == ECHILD)) {
        c->reaped = true;
        c->status = r == c->pid ? status : -1;
    }
}

/* SIGKILLs every live child of this process started for stack dir (all when
 * dir is NULL), with the process group it leads. */
static void harness_children_kill(const char *dir)
{
    pid_t self = getpid();
    for (int i = 0; i < HARNESS_CHILDREN_MAX; i++) {
        harness_child *c = &harness_children[i];
        if (!c->in_use || c->owner != self || (dir && strcmp(c->dir, dir) != 0))
            continue;
        kill(-c->pid, SIGKILL);
        if (!c->reaped)
            kill(c->pid, SIGKILL);
        harness_child_reap(c, true);
    }
}

static void harness_live_teardown(harness_live *l)
{
    char out[HARNESS_OUT_MAX];
    harness_children_kill(l->dir);
    if (l->watchdog > 0) {
        kill(l->watchdog, SIGKILL);
        while (waitpid(l->watchdog, NULL, 0) < 0 && errno == EINTR) {
        }
        l->watchdog = 0;
    }
    /* HODEI_TEST_KEEP=1 keeps the state folder (daemon logs, data) to read
     * after a failure; the servers are stopped either way. */
    const char *keep_env = getenv("HODEI_TEST_KEEP");
    bool keep = keep_env && keep_env[0] && strcmp(keep_env, "0") != 0;
    int rc = harness_stack_script(l->root, l->bin, l->dir, "down", keep ? NULL : "--purge", out,
                                  sizeof out);
    if (rc != 0)
        fprintf(stderr, "harness: hodei-stack down %s exited %d:\n%s\n", l->dir, rc, out);
    struct stat sb;
    if (keep)
        fprintf(stderr, "harness: kept %s (HODEI_TEST_KEEP)\n", l->dir);
    else if (stat(l->dir, &sb) == 0) {
        char *argv[] = {"rm", "-rf", "--", l->dir, NULL};
        harness_run_req req = {.path = "rm", .argv = argv, .envp = environ};
        harness_run(&req);
    }
    l->in_use = false;
}

static void harness_atexit(void)
{
    pid_t self = getpid();
    if (harness_atexit_owner != self)
        return; /* a fork inherited the handler */
    harness_children_kill(NULL);
    for (int i = 0; i < HARNESS_STACKS_MAX; i++)
        if (harness_lives[i].in_use && harness_lives[i].owner == self)
            harness_live_teardown(&harness_lives[i]);
}

static void harness_atexit_arm(void)
{
    if (harness_atexit_owner == getpid())
        return;
    /* A fork copies the registries: forget what belongs to the parent. */
    memset(harness_lives, 0, sizeof harness_lives);
    memset(harness_children, 0, sizeof harness_children);
    harness_atexit_owner = getpid();
    atexit(harness_atexit);
}

/* ---------------------------------------------------------------- stacks */

static harness_live *harness_live_find(const char *dir)
{
    pid_t self = getpid();
    for (int i = 0; i < HARNESS_STACKS_MAX; i++)
        if (harness_lives[i].in_use && harness_lives[i].owner == self &&
            strcmp(harness_lives[i].dir, dir) == 0)
            return &harness_lives[i];
    return NULL;
}

static harness_live *harness_live_add(const harness_stack *st)
{
    harness_atexit_arm();
    for (int i = 0; i < HARNESS_STACKS_MAX; i++) {
        harness_live *l = &harness_lives[i];
        if (l->in_use)
            continue;
        memset(l, 0, sizeof *l);
        l->in_use = true;
        l->owner = getpid();
        hodei_strlcpy(l->dir, st->state_dir, sizeof l->dir);
        hodei_strlcpy(l->root, st->root, sizeof l->root);
        hodei_strlcpy(l->bin, st->bin, sizeof l->bin);
        return l;
    }
    HARNESS_CHECK(false, "more than %d stacks at once", HARNESS_STACKS_MAX);
    return NULL;
}

/* A process that tears the stack down once its parent (this process) is
 * gone, however it went. Only async-signal-safe calls after fork. */
static void harness_watchdog_start(harness_live *l)
{
    char script[600];
    snprintf(script, sizeof script, "%s/scripts/hodei-stack", l->root);
    char *argv[] = {script, "down", "--purge", "--state-dir", l->dir, "--bin", l->bin, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    HARNESS_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        setsid(); /* out of the test's process group */
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
        }
        close_range(3, ~0U, 0); /* e.g. the test's database sockets */
        struct timespec poll_ts = {0, HARNESS_WATCHDOG_POLL_MS * 1000000L};
        while (getppid() == parent)
            nanosleep(&poll_ts, NULL);
        execve(script, argv, environ);
        _exit(127);
    }
    l->watchdog = pid;
}

static void harness_paths_from_env(harness_stack *st)
{
    const char *root = getenv("HODEI_ROOT");
    const char *bin = getenv("HODEI_BIN");
    HARNESS_CHECK(root && *root, "HODEI_ROOT is not set (run the test through ctest)");
    HARNESS_CHECK(bin && *bin, "HODEI_BIN is not set (run the test through ctest)");
    HARNESS_CHECK(hodei_strlcpy(st->root, root, sizeof st->root), "HODEI_ROOT too long");
    HARNESS_CHECK(hodei_strlcpy(st->bin, bin, sizeof st->bin), "HODEI_BIN too long");
}

/* nats://user:password@127.0.0.1:port for the test's own clients (the
 * stack's password is hex: nothing to escape). */
static void harness_nats_client_url(harness_stack *st)
{
    char pw[256] = "";
    FILE *f = fopen(st->nats_password_file, "r");
    HARNESS_CHECK(f != NULL, "%s: %s", st->nats_password_file, strerror(errno));
    HARNESS_CHECK(fgets(pw, sizeof pw, f) != NULL, "%s is empty", st->nats_password_file);
    fclose(f);
    pw[strcspn(pw, "\r\n")] = '\0';
    int n = snprintf(st->nats_url, sizeof st->nats_url, "nats://%s:%s@127.0.0.1:%d", st->nats_user,
                     pw, st->nats_port);
    HARNESS_CHECK(n > 0 && (size_t)n < sizeof st->nats_url, "NATS client URL too long");
}

static void harness_env_file_read(harness_stack *st)
{
    char path[600];
    snprintf(path, sizeof path, "%s/env", st->state_dir);
    FILE *f = fopen(path, "r");
    HARNESS_CHECK(f != NULL, "%s: %s", path, strerror(errno));
    char line[1024];
    int64_t v = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *val = eq + 1;
        if (strcmp(line, "HODEI_DATABASE_URL") == 0)
            hodei_strlcpy(st->db_url, val, sizeof st->db_url);
        else if (strcmp(line, "HODEI_NATS_URL") == 0)
            hodei_strlcpy(st->nats_server_url, val, sizeof st->nats_server_url);
        else if (strcmp(line, "HODEI_NATS_USER") == 0)
            hodei_strlcpy(st->nats_user, val, sizeof st->nats_user);
        else if (strcmp(line, "HODEI_NATS_PASSWORD_FILE") == 0)
            hodei_strlcpy(st->nats_password_file, val, sizeof st->nats_password_file);
        else if (strcmp(line, "HODEI_PG_DATA") == 0)
            hodei_strlcpy(st->pg_data, val, sizeof st->pg_data);
        else if (strcmp(line, "HODEI_PG_PORT") == 0 && hodei_parse_i64(val, 1, 65535, &v))
            st->pg_port = (int)v;
        else if (strcmp(line, "HODEI_NATS_PORT") == 0 && hodei_parse_i64(val, 1, 65535, &v))
            st->nats_port = (int)v;
        else if (strcmp(line, "HODEI_API_KEY") == 0)
            hodei_strlcpy(st->api_key, val, sizeof st->api_key);
    }
    fclose(f);
    HARNESS_CHECK(st->db_url[0] && st->nats_server_url[0] && st->nats_user[0] &&
                      st->nats_password_file[0] && st->pg_data[0] && st->pg_port > 0 &&
                      st->nats_port > 0 && st->api_key[0],
                  "%s is incomplete", path);
    harness_nats_client_url(st);
}

/* Points hodei-stack up at the build's template cluster (HODEI_STACK_PG_TEMPLATE, made once by
 * tests/harness/pg-template): a copy instead of initdb and every migration per test case.
 * HODEI_TEST_PG_TEMPLATE=0 turns it off; without a template, stacks start the ordinary way. */
static void harness_pg_template_use(const harness_stack *st)
{
    const char *off = getenv("HODEI_TEST_PG_TEMPLATE");
    if ((off && strcmp(off, "0") == 0) || getenv("HODEI_STACK_PG_TEMPLATE"))
        return;
    char script[600];
    char out[1024];
    snprintf(script, sizeof script, "%s/tests/harness/pg-template", st->root);
    char *argv[] = {"bash", script, (char *)st->bin, NULL};
    harness_run_req req = {
        .path = "bash", .argv = argv, .envp = environ, .out = out, .out_len = sizeof out};
    int rc = harness_run(&req);
    out[strcspn(out, "\n")] = '\0';
    if (rc != 0 || out[0] != '/') {
        fprintf(stderr, "harness: pg-template exited %d; each stack runs initdb\n", rc);
        return;
    }
    setenv("HODEI_STACK_PG_TEMPLATE", out, 1);
}

/* The environment variable naming the shared servers' state folder (set by the runner
 * process, inherited by each case's process). */
#define HARNESS_SHARED_ENV "HODEI_TEST_SHARED_SERVERS"

static int harness_psql_admin(const harness_stack *st, const char *sql, char *out, size_t out_len)
{
    /* the role is a superuser; the maintenance database, not the one being copied */
    char url[sizeof st->db_url + 16];
    const char *db = strstr(st->db_url, "/hodei?");
    HARNESS_CHECK(db != NULL, "unexpected database URL %s", st->db_url);
    snprintf(url, sizeof url, "%.*s/postgres?%s", (int)(db - st->db_url), st->db_url,
             db + strlen("/hodei?"));
    char *argv[] = {"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", (char *)sql, NULL};
    harness_run_req req = {.path = "psql",
                           .argv = argv,
                           .envp = environ,
                           .out = out,
                           .out_len = out_len,
                           .merge_stderr = true};
    return harness_run(&req);
}

/* A case on the shared servers: its own folder in theirs, its own copy of the migrated
 * database (CREATE DATABASE ... TEMPLATE: nobody else connects to that one), and NATS
 * restarted on an empty store on the same ports. */
static void harness_case_start(harness_stack *st, const char *servers)
{
    hodei_strlcpy(st->state_dir, servers, sizeof st->state_dir);
    harness_env_file_read(st);
    hodei_strlcpy(st->servers_dir, servers, sizeof st->servers_dir);
    st->shared = true;
    int n = snprintf(st->state_dir, sizeof st->state_dir, "%s/case-XXXXXX", servers);
    HARNESS_CHECK(n > 0 && (size_t)n < sizeof st->state_dir, "state folder path too long");
    HARNESS_CHECK(mkdtemp(st->state_dir) != NULL, "mkdtemp: %s", strerror(errno));
    char db[64], sql[160], out[1024];
    snprintf(db, sizeof db, "hodei_case_%d", (int)getpid());
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", db);
    if (harness_psql_admin(st, sql, out, sizeof out) != 0) {
        /* an earlier case that failed between harness_pg_stop and harness_pg_start */
        harness_pg_start(st);
        int rc = harness_psql_admin(st, sql, out, sizeof out);
        HARNESS_CHECK(rc == 0, "psql %s: exit %d: %s", sql, rc, out);
    }
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE hodei", db);
    int rc = harness_psql_admin(st, sql, out, sizeof out);
    HARNESS_CHECK(rc == 0, "psql %s: exit %d: %s", sql, rc, out);
    char *at = strstr(st->db_url, "/hodei?");
    char url[sizeof st->db_url];
    n = snprintf(url, sizeof url, "%.*s/%s?%s", (int)(at - st->db_url), st->db_url, db,
                 at + strlen("/hodei?"));
    HARNESS_CHECK(n > 0 && (size_t)n < sizeof url, "database URL too long");
    memcpy(st->db_url, url, sizeof url);
    harness_nats_stop(st);
    char store[600];
    snprintf(store, sizeof store, "%s/nats", servers);
    char *argv[] = {"rm", "-rf", "--", store, NULL};
    harness_run_req req = {.path = "rm", .argv = argv, .envp = environ};
    HARNESS_CHECK(harness_run(&req) == 0, "rm -rf %s failed", store);
    harness_nats_start(st);
}

static void harness_case_stop(harness_stack *st)
{
    harness_children_kill(st->state_dir);
    const char *keep_env = getenv("HODEI_TEST_KEEP");
    if (keep_env && keep_env[0] && strcmp(keep_env, "0") != 0) {
        fprintf(stderr, "harness: kept %s (HODEI_TEST_KEEP)\n", st->state_dir);
    } else {
        char *argv[] = {"rm", "-rf", "--", st->state_dir, NULL};
        harness_run_req req = {.path = "rm", .argv = argv, .envp = environ};
        harness_run(&req);
    }
    st->state_dir[0] = '\0';
}

static harness_stack harness_shared;

/* In the runner process; its atexit handler (or the stack's watchdog) stops the servers. */
void harness_servers_share(void)
{
    harness_stack_start(&harness_shared);
    setenv(HARNESS_SHARED_ENV, harness_shared.state_dir, 1);
}

void harness_stack_start(harness_stack *st)
{
    char out[HARNESS_OUT_MAX];
    memset(st, 0, sizeof *st);
    const char *servers = getenv(HARNESS_SHARED_ENV);
    if (servers && servers[0]) {
        harness_paths_from_env(st);
        harness_case_start(st, servers);
        return;
    }
    harness_paths_from_env(st);
    hodei_strlcpy(st->state_dir, "/tmp/hodei-test-XXXXXX", sizeof st->state_dir);
    HARNESS_CHECK(mkdtemp(st->state_dir) != NULL, "mkdtemp: %s", strerror(errno));
    harness_live *l = harness_live_add(st);
    harness_watchdog_start(l);
    harness_pg_template_use(st);
    int rc = harness_stack_script(st->root, st->bin, st->state_dir, "up", NULL, out, sizeof out);
    HARNESS_CHECK(rc == 0, "hodei-stack up --state-dir %s exited %d:\n%s", st->state_dir, rc, out);
    harness_env_file_read(st);
    hodei_strlcpy(st->servers_dir, st->state_dir, sizeof st->servers_dir);
}

void harness_stack_stop(harness_stack *st)
{
    if (!st || !st->state_dir[0])
        return;
    if (st->shared) {
        harness_case_stop(st);
        return;
    }
    harness_live *l = harness_live_find(st->state_dir);
    if (l)
        harness_live_teardown(l);
    st->state_dir[0] = '\0';
}

static void harness_stack_sub(harness_stack *st, const char *cmd)
{
    char out[HARNESS_OUT_MAX];
    HARNESS_CHECK(st->state_dir[0], "%s on a stack that is not running", cmd);
    int rc = harness_stack_script(st->root, st->bin, st->servers_dir, cmd, NULL, out, sizeof out);
    HARNESS_CHECK(rc == 0, "hodei-stack %s --state-dir %s exited %d:\n%s", cmd, st->servers_dir, rc,
                  out);
}

void harness_nats_stop(harness_stack *st)
{
    harness_stack_sub(st, "nats-stop");
}
void harness_nats_start(harness_stack *st)
{
    harness_stack_sub(st, "nats-start");
}
void harness_pg_stop(harness_stack *st)
{
    harness_stack_sub(st, "pg-stop");
}
void harness_pg_start(harness_stack *st)
{
    harness_stack_sub(st, "pg-start");
}

/* ---------------------------------------------------------------- procs */

static harness_child *harness_child_find(pid_t pid)
{
    pid_t self = getpid();
    for (int i = 0; i < HARNESS_CHILDREN_MAX; i++)
        if (harness_children[i].in_use && harness_children[i].owner == self &&
            harness_children[i].pid == pid)
            return &harness_children[i];
    return NULL;
}

static harness_child *harness_child_add(pid_t pid, const char *dir)
{
    for (int i = 0; i < HARNESS_CHILDREN_MAX; i++) {
        harness_child *c = &harness_children[i];
        if (c->in_use)
            continue;
        memset(c, 0, sizeof *c);
        c->in_use = true;
        c->owner = getpid();
        c->pid = pid;
        hodei_strlcpy(c->dir, dir, sizeof c->dir);
        return c;
    }
    HARNESS_CHECK(false, "more than %d processes started", HARNESS_CHILDREN_MAX);
    return NULL;
}

static void harness_proc_paths(harness_stack *st, harness_proc *p, const char *arg0, char *path,
                               size_t path_len)
{
    const char *slash = strrchr(arg0, '/');
    hodei_strlcpy(p->name, slash ? slash + 1 : arg0, sizeof p->name);
    if (slash)
        hodei_strlcpy(path, arg0, path_len);
    else
        snprintf(path, path_len, "%s/%s", st->bin, arg0);
    HARNESS_CHECK(access(path, X_OK) == 0, "%s: not found or not executable (built?)", path);
    snprintf(p->log_path, sizeof p->log_path, "%s/%s-%d.log", st->state_dir, p->name,
             ++harness_proc_seq);
}

/* In the child after fork: only async-signal-safe calls. */
static _Noreturn void harness_proc_exec(const char *path, char *const *argv, char *const *envp,
                                        const char *log_path, pid_t parent)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(126);
    int devnull = open("/dev/null", O_RDONLY);
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (devnull < 0 || log < 0)
        _exit(126);
    dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    close_range(3, ~0U, 0); /* the test's sockets stay the test's */
    execve(path, argv, envp);
    static const char msg[] = "harness: execve failed\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(127);
}

void harness_proc_start(harness_stack *st, harness_proc *p, const char *const *argv,
                        const char *const *extra_env)
{
    char path[1024];
    char *args[HARNESS_ARGV_MAX + 1];
    harness_env env;
    HARNESS_CHECK(st->state_dir[0] && argv && argv[0], "proc_start needs a running stack and argv");
    memset(p, 0, sizeof *p);
    harness_proc_paths(st, p, argv[0], path, sizeof path);
    int argc = 0;
    for (; argv[argc]; argc++) {
        HARNESS_CHECK(argc < HARNESS_ARGV_MAX, "more than %d arguments", HARNESS_ARGV_MAX);
        args[argc] = (char *)argv[argc];
    }
    args[argc] = NULL;
    harness_env_init(&env);
    harness_env_stack(&env, st);
    for (int i = 0; extra_env && extra_env[i]; i++)
        harness_env_set(&env, extra_env[i]);
    harness_atexit_arm();
    pid_t parent = getpid();
    pid_t pid = fork();
    HARNESS_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        harness_proc_exec(path, args, env.ptrs, p->log_path, parent);
    setpgid(pid, pid); /* also here: no race with kill(-pid) */
    harness_child_add(pid, st->state_dir);
    p->pid = pid;
}

int harness_proc_wait(harness_proc *p, int64_t timeout_ms)
{
    harness_child *c = p ? harness_child_find(p->pid) : NULL;
    if (!c)
        return -1;
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    for (;;) {
        harness_child_reap(c, false);
        if (c->reaped)
            return c->status;
        if (hodei_mono_ms() >= deadline)
            return -1;
        hodei_sleep_ms(HARNESS_POLL_MS / 2);
    }
}

bool harness_proc_alive(harness_proc *p)
{
    harness_child *c = p ? harness_child_find(p->pid) : NULL;
    if (!c)
        return false;
    harness_child_reap(c, false);
    return !c->reaped;
}

int harness_proc_stop(harness_proc *p, int sig, int64_t timeout_ms)
{
    harness_child *c = p ? harness_child_find(p->pid) : NULL;
    if (!c)
        return -1;
    harness_child_reap(c, false);
    if (!c->reaped)
        kill(c->pid, sig);
    int status = harness_proc_wait(p, timeout_ms);
    if (status == -1) {
        kill(-c->pid, SIGKILL);
        kill(c->pid, SIGKILL);
        harness_child_reap(c, true);
        return -1;
    }
    kill(-c->pid, SIGKILL); /* whatever it left in its group */
    return status;
}

static bool harness_file_contains(const char *path, const char *needle)
{
    bool found = false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char *buf = malloc(HARNESS_LOG_READ_MAX + 1);
    HARNESS_CHECK(buf != NULL, "out of memory");
    size_t n = fread(buf, 1, HARNESS_LOG_READ_MAX, f);
    buf[n] = '\0';
    found = memmem(buf, n, needle, strlen(needle)) != NULL;
    free(buf);
    fclose(f);
    return found;
}

bool harness_log_contains(harness_proc *p, const char *needle, int64_t timeout_ms)
{
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    for (;;) {
        if (harness_file_contains(p->log_path, needle))
            return true;
        if (hodei_mono_ms() >= deadline)
            return false;
        hodei_sleep_ms(HARNESS_POLL_MS);
    }
}

/* ---------------------------------------------------------------- shell, sql */

int harness_sh(harness_stack *st, char *out, size_t out_len, const char *fmt, ...)
{
    char cmd[HARNESS_CMD_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    HARNESS_CHECK(n >= 0 && (size_t)n < sizeof cmd, "shell command longer than %d bytes",
                  HARNESS_CMD_MAX);
    harness_env env;
    harness_env_init(&env);
    harness_env_stack(&env, st);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    harness_run_req req = {.path = "/bin/sh",
                           .argv = argv,
                           .envp = env.ptrs,
                           .out = out_len > 0 ? out : NULL,
                           .out_len = out_len};
    return harness_run(&req);
}

int64_t harness_sql_i64(harness_stack *st, const char *sql)
{
    char out[4096];
    harness_env env;
    harness_env_init(&env);
    char *argv[] = {"psql", "-X",       "-q", "-tA",       "-v", "ON_ERROR_STOP=1",
                    "-d",   st->db_url, "-c", (char *)sql, NULL};
    harness_run_req req = {
        .path = "psql", .argv = argv, .envp = env.ptrs, .out = out, .out_len = sizeof out};
    if (harness_run(&req) != 0)
        return -1;
    out[strcspn(out, "\n")] = '\0';
    int64_t v = -1;
    if (!hodei_parse_i64(out, INT64_MIN, INT64_MAX, &v))
        return -1;
    return v;
}

void harness_pg_bin(char *out, size_t out_len)
{
    const char *env = getenv("HODEI_STACK_PG_BIN");
    if (env && *env) {
        HARNESS_CHECK(hodei_strlcpy(out, env, out_len), "HODEI_STACK_PG_BIN too long");
        return;
    }
    glob_t g;
    int64_t best = -1;
    HARNESS_CHECK(glob(HARNESS_PG_INSTALL "/*/bin/initdb", 0, NULL, &g) == 0,
                  "no PostgreSQL server under " HARNESS_PG_INSTALL);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        char major[32];
        int64_t v = 0;
        const char *p = g.gl_pathv[i] + sizeof HARNESS_PG_INSTALL; /* after the '/' */
        size_t n = strcspn(p, "/");
        if (n == 0 || n >= sizeof major)
            continue;
        memcpy(major, p, n);
        major[n] = '\0';
        if (hodei_parse_i64(major, 1, 1000, &v) && v > best)
            best = v;
    }
    globfree(&g);
    HARNESS_CHECK(best > 0, "no PostgreSQL server under " HARNESS_PG_INSTALL);
    int n = snprintf(out, out_len, HARNESS_PG_INSTALL "/%lld/bin", (long long)best);
    HARNESS_CHECK(n > 0 && (size_t)n < out_len, "PostgreSQL path too long");
}

long harness_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    size_t n = strlen(field);
    long kb = -1;
    FILE *f = fopen(path, "r");
    while (f && kb < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    HARNESS_CHECK(kb >= 0, "no %s in %s", field, path);
    return kb;
}

long harness_rss_kb(pid_t pid)
{
    return harness_status_kb(pid, "VmRSS");
}

int harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    HARNESS_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    HARNESS_CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0, "bind: %s", strerror(errno));
    HARNESS_CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0, "getsockname: %s",
                  strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

int harness_http(int port, const char *method, const char *path, char *body, size_t body_len)
{
    /* the whole answer: a daemon's /metrics (histograms per method) is tens of KB */
    char req[256];
    size_t n = 0, cap = body_len + 4096;
    char *resp = malloc(cap);
    if (!resp)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    body[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        free(resp);
        return -1;
    }
    int len = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    if (len < 0 || (size_t)len >= sizeof req || write(fd, req, (size_t)len) != len) {
        close(fd);
        free(resp);
        return -1;
    }
    for (ssize_t r; n + 1 < cap && (r = read(fd, resp + n, cap - 1 - n)) > 0;)
        n += (size_t)r;
    close(fd);
    resp[n] = '\0';
    int code = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1) {
        free(resp);
        return -1;
    }
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, body_len, "%s", b ? b + 4 : "");
    free(resp);
    return code;
}

bool harness_http_wait(int port, const char *path, int want, const char *text, int64_t timeout_ms,
                       char *body, size_t body_len)
{
    int64_t until = hodei_mono_ms() + timeout_ms;
    for (;;) {
        if (harness_http(port, "GET", path, body, body_len) == want && strstr(body, text))
            return true;
        if (hodei_mono_ms() > until)
            return false;
        hodei_sleep_ms(50);
    }
}

/* The value of sample name in a /metrics answer; fails the test when there is
 * none or it is not a number. */
static double harness_metric_parse(int port, const char *body, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = body; (p = strstr(p, name)) != NULL; p += n) {
        if ((p != body && p[-1] != '\n') || p[n] != ' ')
            continue;
        char *end = NULL;
        double v = strtod(p + n + 1, &end);
        HARNESS_CHECK(end != p + n + 1 && (*end == '\n' || *end == ' ' || *end == '\0'),
                      "GET /metrics on port %d: %s has no number: %.*s", port, name,
                      (int)strcspn(p, "\n"), p);
        return v;
    }
    HARNESS_CHECK(false, "GET /metrics on port %d: no sample %s", port, name);
    return -1;
}

bool harness_metric_try(int port, const char *name, double *value)
{
    char *body = malloc(HARNESS_METRICS_MAX);
    HARNESS_CHECK(body, "out of memory");
    int code = harness_http(port, "GET", "/metrics", body, HARNESS_METRICS_MAX);
    bool ok = code == 200;
    if (ok) {
        HARNESS_CHECK(strlen(body) < HARNESS_METRICS_MAX - 1,
                      "GET /metrics on port %d: more than %d bytes (HARNESS_METRICS_MAX)", port,
                      HARNESS_METRICS_MAX);
        *value = harness_metric_parse(port, body, name);
    }
    free(body);
    return ok;
}

double harness_metric(int port, const char *name)
{
    double v = -1;
    HARNESS_CHECK(harness_metric_try(port, name, &v),
                  "GET /metrics on port %d did not answer 200 (reading %s)", port, name);
    return v;
}

void harness_log_tail(const char *path, char *out, size_t len)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        long from = size > (long)len - 1 ? size - ((long)len - 1) : 0;
        if (fseek(f, from, SEEK_SET) == 0) {
            size_t n = fread(out, 1, len - 1, f);
            out[n] = '\0';
        }
    }
    fclose(f);
}

int harness_file_count_lines(const char *path, const char *line)
{
    FILE *f = fopen(path, "r");
    char buf[128];
    int n = 0;
    if (!f)
        return 0;
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = '\0';
        n += strcmp(buf, line) == 0;
    }
    fclose(f);
    return n;
}
