/* The daemon skeleton, driven through hodei-test-daemon as a real child
 * process: flags, configuration errors, signals, start-up checks against a
 * closed port and against real nats-server and PostgreSQL. The child runs
 * under ASan: a leak at exit makes its status non-zero, so "exit 0" also
 * proves a clean shutdown. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "hodei/time.h"

#define T_DIR_MAX 128 /* the private folder under /tmp */
#define T_PATH_MAX 512
#define T_OUT_MAX 65536
#define T_ENV_MAX 256
#define T_CMD_MAX 2048
#define T_START_WAIT_MS 30000 /* start-up under ASan on a busy machine */
#define T_STOP_WAIT_MS 5000   /* a stop request must end the process promptly */
#define T_EXIT_WAIT_MS 60000

extern char **environ;

typedef struct {
    pid_t pid;
    char out_path[T_PATH_MAX];
    char err_path[T_PATH_MAX];
    char out[T_OUT_MAX]; /* stdout then stderr, after child_read */
} child;

static char tmp_dir[T_DIR_MAX];
static pid_t nats_pid;   /* a nats-server this test started, or 0 */
static bool pg_running;  /* a PostgreSQL this test started under tmp_dir/pg */
static pid_t daemon_pid; /* the last daemon started, killed at teardown if alive */

static void dir_setup(void)
{
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/hodei-test-daemon-XXXXXX");
    cr_assert_not_null(mkdtemp(tmp_dir));
}

static void nats_stop(void);
static void pg_stop(void);

/* Also stops what a failed test left running. */
static void dir_teardown(void)
{
    char cmd[T_CMD_MAX];
    if (daemon_pid > 0 && kill(daemon_pid, SIGKILL) == 0)
        waitpid(daemon_pid, NULL, 0);
    nats_stop();
    pg_stop();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
}

TestSuite(daemon, .init = dir_setup, .fini = dir_teardown, .timeout = 120);

static void path_in_tmp(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", tmp_dir, name);
}

static void file_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* The parent's environment without HODEI_* / TEST_DAEMON_* settings (so a
 * developer's shell cannot change the outcome), plus extra "K=V" entries.
 * A sanitizer report exits with 86, so it is never mistaken for the
 * daemon's own exit codes 1 and 2. */
static void env_build(char **envp, const char *const *extra)
{
    static char asan[T_PATH_MAX];
    const char *parent = getenv("ASAN_OPTIONS");
    size_t n = 0;
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sexitcode=86", parent ? parent : "",
             parent && *parent ? ":" : "");
    envp[n++] = asan;
    for (char **e = environ; *e && n + 1 < T_ENV_MAX; e++)
        if (strncmp(*e, "HODEI_", 6) != 0 && strncmp(*e, "TEST_DAEMON_", 12) != 0 &&
            strncmp(*e, "ASAN_OPTIONS=", 13) != 0)
            envp[n++] = *e;
    for (size_t i = 0; extra && extra[i] && n + 1 < T_ENV_MAX; i++)
        envp[n++] = (char *)extra[i];
    envp[n] = NULL;
}

static void child_start(child *c, const char *const *args, const char *const *extra_env)
{
    static int seq;
    char bin[T_PATH_MAX];
    char *argv[32] = {bin};
    char *envp[T_ENV_MAX];
    const char *dir = getenv("HODEI_BIN");
    cr_assert_not_null(dir, "HODEI_BIN is not set (run through ctest)");
    snprintf(bin, sizeof bin, "%s/hodei-test-daemon", dir);
    for (size_t i = 0; args && args[i] && i + 2 < 32; i++)
        argv[i + 1] = (char *)args[i];
    env_build(envp, extra_env);
    seq++;
    snprintf(c->out_path, sizeof c->out_path, "%s/out-%d.log", tmp_dir, seq);
    snprintf(c->err_path, sizeof c->err_path, "%s/err-%d.log", tmp_dir, seq);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int rc = posix_spawn(&c->pid, bin, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "spawn %s: %s", bin, strerror(rc));
    daemon_pid = c->pid;
}

static size_t file_read(const char *path, char *out, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
    return n;
}

/* c->out = stdout followed by stderr. */
static void child_read(child *c)
{
    size_t n = file_read(c->out_path, c->out, sizeof c->out);
    file_read(c->err_path, c->out + n, sizeof c->out - n);
}

/* Waits for the exit; returns the wait status, or -1 after SIGKILL when it
 * did not exit in time. */
static int child_wait(child *c, int64_t timeout_ms)
{
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid) {
            daemon_pid = 0;
            break;
        }
        if (hodei_mono_ms() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            daemon_pid = 0;
            status = -1;
            break;
        }
        hodei_sleep_ms(10);
    }
    child_read(c);
    return status;
}

static bool child_wait_text(child *c, const char *text, int64_t timeout_ms)
{
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    while (hodei_mono_ms() < deadline) {
        child_read(c);
        if (strstr(c->out, text))
            return true;
        if (waitpid(c->pid, NULL, WNOHANG) == c->pid)
            return false;
        hodei_sleep_ms(10);
    }
    return false;
}

/* Runs the daemon to its exit and returns its exit code. */
static int run_daemon(child *c, const char *const *args, const char *const *extra_env)
{
    child_start(c, args, extra_env);
    int status = child_wait(c, T_EXIT_WAIT_MS);
    cr_assert(status != -1, "did not exit; output:\n%s", c->out);
    cr_assert(WIFEXITED(status), "killed by signal %d; output:\n%s", WTERMSIG(status), c->out);
    return WEXITSTATUS(status);
}

static bool port_accepts(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

Test(daemon, check_config_prints_effective_values_and_masks_the_url)
{
    child c;
    char cfg_path[T_PATH_MAX], want[T_PATH_MAX + 64];
    path_in_tmp(cfg_path, sizeof cfg_path, "config.yaml");
    file_write(cfg_path, "test:\n  greeting: hi\nlog:\n  level: warn\n");
    const char *args[] = {"--config", cfg_path, "--check-config", NULL};
    const char *env[] = {"HODEI_DATABASE_URL=postgresql://hodei:s3cr3t-pw@127.0.0.1:5432/hodei",
                         NULL};
    cr_assert_eq(run_daemon(&c, args, env), 0, "%s", c.out);
    cr_assert(strstr(c.out, "database.url = ***  # HODEI_DATABASE_URL\n"), "%s", c.out);
    cr_assert_null(strstr(c.out, "s3cr3t-pw"), "%s", c.out);
    snprintf(want, sizeof want, "test.greeting = hi  # %s:2\n", cfg_path);
    cr_assert(strstr(c.out, want), "%s", c.out);
    snprintf(want, sizeof want, "log.level = warn  # %s:4\n", cfg_path);
    cr_assert(strstr(c.out, want), "%s", c.out);
    cr_assert(strstr(c.out, "test.workers = 2  # default\n"), "%s", c.out);
}

Test(daemon, bad_value_in_yaml_exits_2_naming_the_field)
{
    child c;
    char cfg_path[T_PATH_MAX], want[T_PATH_MAX + 128];
    path_in_tmp(cfg_path, sizeof cfg_path, "config.yaml");
    file_write(cfg_path, "test:\n  greeting: hi\n  workers: 99\n");
    const char *args[] = {"--config", cfg_path, NULL};
    cr_assert_eq(run_daemon(&c, args, NULL), 2, "%s", c.out);
    snprintf(want, sizeof want,
             "test-daemon: configuration error: test.workers: 99 is above the maximum 16 "
             "(from %s:3)\n",
             cfg_path);
    cr_assert(strstr(c.out, want), "%s", c.out);
    cr_assert_null(strstr(c.out, "starting"), "%s", c.out);
}

Test(daemon, config_file_from_hodei_config_env)
{
    child c;
    char cfg_path[T_PATH_MAX], env_cfg[T_PATH_MAX + 16], want[T_PATH_MAX + 64];
    path_in_tmp(cfg_path, sizeof cfg_path, "config.yaml");
    file_write(cfg_path, "test:\n  workers: 0\n");
    snprintf(env_cfg, sizeof env_cfg, "HODEI_CONFIG=%s", cfg_path);
    const char *args[] = {"--check-config", NULL};
    const char *env[] = {env_cfg, NULL};
    cr_assert_eq(run_daemon(&c, args, env), 2, "%s", c.out);
    snprintf(want, sizeof want, "test.workers: 0 is below the minimum 1 (from %s:2)", cfg_path);
    cr_assert(strstr(c.out, want), "%s", c.out);
}

Test(daemon, unknown_key_exits_2)
{
    child c;
    char cfg_path[T_PATH_MAX], want[T_PATH_MAX + 64];
    path_in_tmp(cfg_path, sizeof cfg_path, "config.yaml");
    file_write(cfg_path, "test:\n  wrokers: 3\n");
    const char *args[] = {"--config", cfg_path, "--check-config", NULL};
    cr_assert_eq(run_daemon(&c, args, NULL), 2, "%s", c.out);
    snprintf(want, sizeof want, "unknown configuration key 'test.wrokers' in %s:2", cfg_path);
    cr_assert(strstr(c.out, want), "%s", c.out);
}

Test(daemon, missing_config_file_exits_2)
{
    child c;
    const char *args[] = {"--config", "/nonexistent/hodei.yaml", NULL};
    cr_assert_eq(run_daemon(&c, args, NULL), 2, "%s", c.out);
    cr_assert(strstr(c.out, "test-daemon: configuration error: cannot open configuration file "
                            "/nonexistent/hodei.yaml"),
              "%s", c.out);
}

Test(daemon, bad_env_value_exits_2_naming_the_variable)
{
    child c;
    const char *env[] = {"HODEI_TEST_WORKERS=lots", NULL};
    cr_assert_eq(run_daemon(&c, NULL, env), 2, "%s", c.out);
    cr_assert(strstr(c.out, "test-daemon: configuration error: test.workers: 'lots' is not an "
                            "integer (from HODEI_TEST_WORKERS)\n"),
              "%s", c.out);
}

/* Starts the daemon with extra env and waits until run() is entered. */
static void start_running(child *c, const char *const *env)
{
    child_start(c, NULL, env);
    bool up = child_wait_text(c, "msg=\"running instance=", T_START_WAIT_MS);
    if (!up)
        kill(c->pid, SIGKILL);
    cr_assert(up, "daemon did not reach run(); output:\n%s", c->out);
}

static void stop_with(child *c, int sig)
{
    kill(c->pid, sig);
    int status = child_wait(c, T_STOP_WAIT_MS);
    cr_assert(status != -1, "no exit within %dms of signal %d; output:\n%s", T_STOP_WAIT_MS, sig,
              c->out);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x; output:\n%s", status,
              c->out);
    cr_assert(strstr(c->out, "msg=\"fini\""), "%s", c->out);
    cr_assert(strstr(c->out, "msg=\"stopped\""), "%s", c->out);
}

Test(daemon, sigterm_stops_cleanly_with_exit_0)
{
    child c;
    const char *env[] = {"HODEI_TEST_GREETING=bonjour", NULL};
    start_running(&c, env);
    cr_assert(strstr(c.out, "init greeting=bonjour workers=2"), "%s", c.out);
    stop_with(&c, SIGTERM);
    cr_assert(strstr(c.out, "received SIGTERM, stopping"), "%s", c.out);
}

Test(daemon, sigint_stops_and_sighup_does_not)
{
    child c;
    start_running(&c, NULL);
    kill(c.pid, SIGHUP);
    cr_assert(child_wait_text(&c, "SIGHUP ignored", T_START_WAIT_MS), "%s", c.out);
    cr_assert_eq(waitpid(c.pid, NULL, WNOHANG), 0, "SIGHUP ended the daemon:\n%s", c.out);
    stop_with(&c, SIGINT);
}

Test(daemon, instance_is_configured_id_or_hostname_pid)
{
    child c;
    char host[256], want[512];
    const char *env[] = {"HODEI_INSTANCE_ID=replica-7", NULL};
    start_running(&c, env);
    cr_assert(strstr(c.out, "running instance=replica-7\""), "%s", c.out);
    stop_with(&c, SIGTERM);
    start_running(&c, NULL);
    cr_assert_eq(gethostname(host, sizeof host), 0);
    snprintf(want, sizeof want, "running instance=%s-%d\"", host, (int)c.pid);
    cr_assert(strstr(c.out, want), "want %s in:\n%s", want, c.out);
    stop_with(&c, SIGTERM);
}

Test(daemon, run_error_exits_1_after_fini)
{
    child c;
    const char *env[] = {"HODEI_TEST_FAIL_RUN=yes", NULL};
    cr_assert_eq(run_daemon(&c, NULL, env), 1, "%s", c.out);
    cr_assert(strstr(c.out, "told to fail by test.fail_run"), "%s", c.out);
    cr_assert(strstr(c.out, "msg=\"fini\""), "%s", c.out);
}

Test(daemon, unreachable_database_exits_1_without_the_password)
{
    child c;
    char url[128], want[256];
    int port = harness_free_port();
    snprintf(url, sizeof url,
             "HODEI_DATABASE_URL=postgresql://hodei:pw-zz-secret@127.0.0.1:%d/jobs", port);
    const char *env[] = {"TEST_DAEMON_NEEDS_DB=1", url, NULL};
    cr_assert_eq(run_daemon(&c, NULL, env), 1, "%s", c.out);
    snprintf(want, sizeof want,
             "test-daemon: cannot reach the database at hodei@127.0.0.1:%d/jobs (", port);
    cr_assert(strstr(c.out, want), "%s", c.out);
    cr_assert_null(strstr(c.out, "pw-zz-secret"), "%s", c.out);
    cr_assert_null(strstr(c.out, "starting"), "init must not run:\n%s", c.out);
}

Test(daemon, malformed_database_url_is_a_configuration_error)
{
    child c;
    const char *env[] = {"TEST_DAEMON_NEEDS_DB=1",
                         "HODEI_DATABASE_URL=postgresql://u:pw-zz%zzsecret@h/d", NULL};
    cr_assert_eq(run_daemon(&c, NULL, env), 2, "%s", c.out);
    cr_assert(strstr(c.out, "test-daemon: configuration error: database.url is not a valid"), "%s",
              c.out);
    cr_assert_null(strstr(c.out, "secret"), "%s", c.out);
    const char *check[] = {"--check-config", NULL};
    cr_assert_eq(run_daemon(&c, check, env), 2, "%s", c.out);
    cr_assert(strstr(c.out, "database.url is not a valid"), "%s", c.out);
}

Test(daemon, unreachable_nats_exits_1_without_credentials)
{
    child c;
    char url[128], want[256];
    int port = harness_free_port();
    snprintf(url, sizeof url, "HODEI_NATS_URL=nats://bob:nats-zz-pw@127.0.0.1:%d", port);
    const char *env[] = {"TEST_DAEMON_NEEDS_NATS=1", url, NULL};
    cr_assert_eq(run_daemon(&c, NULL, env), 1, "%s", c.out);
    snprintf(want, sizeof want,
             "test-daemon: cannot reach NATS at nats://***@127.0.0.1:%d: ", port);
    cr_assert(strstr(c.out, want), "%s", c.out);
    cr_assert_null(strstr(c.out, "nats-zz-pw"), "%s", c.out);
}

Test(daemon, help_and_version_exit_0)
{
    child c;
    const char *help[] = {"--help", NULL};
    cr_assert_eq(run_daemon(&c, help, NULL), 0, "%s", c.out);
    cr_assert(strstr(c.out, "usage: hodei-test-daemon [--config FILE] [--check-config]"), "%s",
              c.out);
    cr_assert(strstr(c.out, "HODEI_TEST_WORKERS"), "%s", c.out);
    cr_assert(strstr(c.out, "HODEI_DATABASE_URL"), "%s", c.out);
    const char *version[] = {"--version", NULL};
    cr_assert_eq(run_daemon(&c, version, NULL), 0, "%s", c.out);
    cr_assert(strstr(c.out, "test-daemon "), "%s", c.out);
}

Test(daemon, unknown_flag_prints_usage_to_stderr_and_exits_2)
{
    child c;
    char err[4096];
    const char *args[] = {"--bogus", NULL};
    cr_assert_eq(run_daemon(&c, args, NULL), 2, "%s", c.out);
    file_read(c.err_path, err, sizeof err);
    cr_assert(strstr(err, "test-daemon: unknown option '--bogus'"), "%s", err);
    cr_assert(strstr(err, "usage: hodei-test-daemon"), "%s", err);
    const char *missing[] = {"--config", NULL};
    cr_assert_eq(run_daemon(&c, missing, NULL), 2, "%s", c.out);
    cr_assert(strstr(c.out, "--config needs a FILE"), "%s", c.out);
}

/* Real servers: nats-server and a private PostgreSQL cluster. */

#define T_NATS_USER "hodei"
#define T_NATS_PASSWORD "nats-daemon-test-pw"

/* A file holding text (mode 0600) in the test's folder; its path in out. */
static void file_in_tmp(char *out, size_t out_len, const char *name, const char *text)
{
    path_in_tmp(out, out_len, name);
    FILE *f = fopen(out, "w");
    cr_assert(f != NULL, "%s: %s", out, strerror(errno));
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    chmod(out, 0600);
}

static void nats_start(int port)
{
    char port_s[16], log_path[T_PATH_MAX];
    /* authentication on, as in every stack */
    char *argv[] = {"nats-server", "-a",     "127.0.0.1",     "-p", port_s, "--user",
                    T_NATS_USER,   "--pass", T_NATS_PASSWORD, NULL};
    snprintf(port_s, sizeof port_s, "%d", port);
    path_in_tmp(log_path, sizeof log_path, "nats.log");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawnp(&nats_pid, "nats-server", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "spawn nats-server: %s", strerror(rc));
    int64_t deadline = hodei_mono_ms() + T_START_WAIT_MS;
    while (!port_accepts(port) && hodei_mono_ms() < deadline)
        hodei_sleep_ms(10);
    cr_assert(port_accepts(port), "nats-server did not listen on %d", port);
}

static void nats_stop(void)
{
    if (nats_pid > 0) {
        kill(nats_pid, SIGTERM);
        waitpid(nats_pid, NULL, 0);
        nats_pid = 0;
    }
}

static char pg_bin[512]; /* set by pg_start */

/* initdb refuses root: as root, the cluster is made and run as postgres. */
static const char *pg_as_user(void)
{
    return getuid() == 0 ? "runuser -u postgres -- " : "";
}

static void pg_start(int port)
{
    char dir[T_DIR_MAX + 8], cmd[T_CMD_MAX], log[T_OUT_MAX];
    harness_pg_bin(pg_bin, sizeof pg_bin);
    path_in_tmp(dir, sizeof dir, "pg");
    cr_assert_eq(mkdir(dir, 0700), 0);
    cr_assert_eq(chmod(tmp_dir, 0755), 0);
    if (getuid() == 0) {
        snprintf(cmd, sizeof cmd, "chown postgres: '%s'", dir);
        cr_assert_eq(system(cmd), 0);
    }
    int n =
        snprintf(cmd, sizeof cmd,
                 "%s%s/initdb -D '%s/data' -U hodei --auth=trust --no-locale -E UTF8 "
                 "--no-sync >'%s/setup.log' 2>&1 && %s%s/pg_ctl -D '%s/data' -l '%s/pg.log' "
                 "-w -o '-p %d -k %s -h 127.0.0.1' start >>'%s/setup.log' 2>&1",
                 pg_as_user(), pg_bin, dir, dir, pg_as_user(), pg_bin, dir, dir, port, dir, dir);
    cr_assert(n > 0 && (size_t)n < sizeof cmd, "initdb command too long");
    int rc = system(cmd);
    pg_running = true;
    snprintf(cmd, sizeof cmd, "%s/setup.log", dir);
    file_read(cmd, log, sizeof log);
    cr_assert_eq(rc, 0, "PostgreSQL did not start:\n%s", log);
}

static void pg_stop(void)
{
    char cmd[T_CMD_MAX];
    if (!pg_running)
        return;
    int n = snprintf(cmd, sizeof cmd,
                     "%s%s/pg_ctl -D '%s/pg/data' -m immediate -w stop >/dev/null 2>&1",
                     pg_as_user(), pg_bin, tmp_dir);
    if (n < 0 || (size_t)n >= sizeof cmd || system(cmd) != 0)
        fprintf(stderr, "pg_ctl stop failed for %s/pg\n", tmp_dir);
    pg_running = false;
}

Test(daemon, reachable_nats_starts_and_stops_cleanly)
{
    child c;
    char url[128], want[128];
    int port = harness_free_port();
    nats_start(port);
    snprintf(url, sizeof url, "HODEI_NATS_URL=nats://127.0.0.1:%d", port);
    char pw_file[T_PATH_MAX], pw_env[T_PATH_MAX + 32];
    file_in_tmp(pw_file, sizeof pw_file, "nats-password", T_NATS_PASSWORD "\n");
    snprintf(pw_env, sizeof pw_env, "HODEI_NATS_PASSWORD_FILE=%s", pw_file);
    const char *env[] = {"TEST_DAEMON_NEEDS_NATS=1", url, "HODEI_NATS_USER=" T_NATS_USER, pw_env,
                         NULL};
    start_running(&c, env);
    snprintf(want, sizeof want, "NATS reachable at nats://127.0.0.1:%d", port);
    cr_assert(strstr(c.out, want), "%s", c.out);
    stop_with(&c, SIGTERM);

    /* No credentials, or a wrong password: refused, and said so. */
    const char *env_none[] = {"TEST_DAEMON_NEEDS_NATS=1", url, NULL};
    cr_assert_eq(run_daemon(&c, NULL, env_none), 1, "%s", c.out);
    cr_assert(strstr(c.out, "refused the credentials"), "%s", c.out);
    const char *env_bad[] = {"TEST_DAEMON_NEEDS_NATS=1", url, "HODEI_NATS_USER=" T_NATS_USER,
                             "HODEI_NATS_PASSWORD=wrong-zz-pw", NULL};
    cr_assert_eq(run_daemon(&c, NULL, env_bad), 1, "%s", c.out);
    cr_assert(strstr(c.out, "refused the credentials"), "%s", c.out);
    cr_assert_null(strstr(c.out, "wrong-zz-pw"), "%s", c.out);

    /* The password both in the environment and as a file: refused, naming both. */
    const char *env_both[] = {
        "TEST_DAEMON_NEEDS_NATS=1",       url,    "HODEI_NATS_USER=" T_NATS_USER,
        "HODEI_NATS_PASSWORD=also-zz-pw", pw_env, NULL};
    cr_assert_eq(run_daemon(&c, NULL, env_both), 2, "%s", c.out);
    cr_assert(strstr(c.out, "nats.password and nats.password_file are both set"), "%s", c.out);
    cr_assert_null(strstr(c.out, "also-zz-pw"), "%s", c.out);
    cr_assert_null(strstr(c.out, T_NATS_PASSWORD), "%s", c.out);
}

Test(daemon, reachable_database_starts_and_stops_cleanly, .timeout = 180)
{
    child c;
    char db_url[160], nats_url[128], want[160];
    int pg_port = harness_free_port();
    pg_start(pg_port);
    int nats_port = harness_free_port();
    nats_start(nats_port);
    snprintf(db_url, sizeof db_url,
             "HODEI_DATABASE_URL=postgresql://hodei:unused-pw@127.0.0.1:%d/postgres", pg_port);
    snprintf(nats_url, sizeof nats_url, "HODEI_NATS_URL=nats://127.0.0.1:%d", nats_port);
    const char *env[] = {"TEST_DAEMON_NEEDS_DB=1",
                         "TEST_DAEMON_NEEDS_NATS=1",
                         db_url,
                         nats_url,
                         "HODEI_NATS_USER=" T_NATS_USER,
                         "HODEI_NATS_PASSWORD=" T_NATS_PASSWORD,
                         NULL};
    start_running(&c, env);
    snprintf(want, sizeof want, "database reachable at hodei@127.0.0.1:%d/postgres", pg_port);
    cr_assert(strstr(c.out, want), "%s", c.out);
    stop_with(&c, SIGTERM);

    /* The server answers but refuses: libpq's reason is shown, on one line. */
    snprintf(db_url, sizeof db_url, "HODEI_DATABASE_URL=postgresql://hodei@127.0.0.1:%d/nope",
             pg_port);
    const char *env_bad[] = {"TEST_DAEMON_NEEDS_DB=1", db_url, NULL};
    cr_assert_eq(run_daemon(&c, NULL, env_bad), 1, "%s", c.out);
    cr_assert(strstr(c.out, "cannot reach the database at hodei@127.0.0.1:"), "%s", c.out);
    cr_assert(strstr(c.out, "database \"nope\" does not exist)\n"), "%s", c.out);
}

Test(daemon, health_endpoints_answer_liveness_and_readiness)
{
    child c;
    char listen_env[64], ready_path[T_PATH_MAX], ready_env[T_PATH_MAX + 32], body[16384];
    int port = harness_free_port();
    snprintf(listen_env, sizeof listen_env, "HODEI_HEALTH_LISTEN=127.0.0.1:%d", port);
    path_in_tmp(ready_path, sizeof ready_path, "ready");
    snprintf(ready_env, sizeof ready_env, "HODEI_TEST_READY_FILE=%s", ready_path);
    const char *env[] = {listen_env, ready_env, NULL};
    start_running(&c, env);

    cr_assert_eq(harness_http(port, "GET", "/healthz", body, sizeof body), 200, "%s", body);
    cr_assert_str_eq(body, "ok\n");
    /* run() started, but a dependency it reported is down */
    int code = 0;
    int64_t until = hodei_mono_ms() + T_START_WAIT_MS;
    while ((code = harness_http(port, "GET", "/readyz", body, sizeof body)) == 503 &&
           strstr(body, "starting") && hodei_mono_ms() < until)
        hodei_sleep_ms(10);
    cr_assert_eq(code, 503, "%s", body);
    cr_assert_str_eq(body, "not ready\nwidget: down (waiting for the ready file)\n");

    cr_assert_eq(harness_http(port, "GET", "/metrics", body, sizeof body), 200, "%s", body);
    cr_assert(strstr(body, "hodei_ready 0\n") &&
                  strstr(body, "hodei_dependency_up{dependency=\"widget\"} 0\n") &&
                  strstr(body, "test_widgets_up_total 0\n"),
              "%s", body);

    file_write(ready_path, "");
    cr_assert(child_wait_text(&c, "widget up", T_START_WAIT_MS), "%s", c.out);
    cr_assert_eq(harness_http(port, "GET", "/metrics", body, sizeof body), 200, "%s", body);
    static const char *const want[] = {
        "# HELP hodei_build_info ",
        "hodei_build_info{service=\"test-daemon\",version=\"",
        "\nhodei_ready 1\n",
        "\nhodei_dependency_up{dependency=\"widget\"} 1\n",
        "# HELP test_widgets_up_total times \\\\ the widget came up\n"
        "# TYPE test_widgets_up_total counter\ntest_widgets_up_total 3\n",
        "# HELP test_widgets widgets\\nin use\n# TYPE test_widgets gauge\ntest_widgets -7\n",
        "# TYPE test_work_seconds_total counter\ntest_work_seconds_total 1.500002\n",
        "# TYPE test_turns_total counter\n"
        "test_turns_total{side=\"left\",kind=\"a\\\"b\\\\c\\nd\"} 3\n"
        "test_turns_total{side=\"right\",kind=\"x\"} 1\n",
        "# TYPE test_wait_seconds histogram\n"
        "test_wait_seconds_bucket{le=\"0.001\"} 1\n"
        "test_wait_seconds_bucket{le=\"0.5\"} 2\n"
        "test_wait_seconds_bucket{le=\"2\"} 2\n"
        "test_wait_seconds_bucket{le=\"+Inf\"} 3\n"
        "test_wait_seconds_sum 9.401000\n"
        "test_wait_seconds_count 3\n",
        "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ",
        "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ",
        "# TYPE process_open_fds gauge\nprocess_open_fds ",
        "# TYPE process_max_fds gauge\nprocess_max_fds ",
        "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(body, want[i]), "want %s in:\n%s", want[i], body);
    cr_assert_eq(harness_http(port, "GET", "/readyz", body, sizeof body), 200, "%s", body);
    cr_assert_str_eq(body, "ready\nwidget: up\n");
    cr_assert_eq(harness_http(port, "HEAD", "/readyz", body, sizeof body), 200);
    cr_assert_str_eq(body, "", "HEAD has no body");
    cr_assert_eq(harness_http(port, "POST", "/readyz", body, sizeof body), 405, "%s", body);
    cr_assert_eq(harness_http(port, "GET", "/nope", body, sizeof body), 404, "%s", body);
    stop_with(&c, SIGTERM);
    cr_assert_not(port_accepts(port), "the health port is closed after the stop");
}

Test(daemon, bad_health_listen_exits_2_naming_the_field)
{
    child c;
    const char *bad[] = {"localhost:9090", "127.0.0.1:99999", "127.0.0.1", "[::1:80", "::1:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char env_v[96], want[160];
        snprintf(env_v, sizeof env_v, "HODEI_HEALTH_LISTEN=%s", bad[i]);
        const char *env[] = {env_v, NULL};
        const char *check[] = {"--check-config", NULL};
        snprintf(want, sizeof want,
                 "test-daemon: configuration error: health.listen: '%s' is not an address:port",
                 bad[i]);
        cr_assert_eq(run_daemon(&c, NULL, env), 2, "%s", c.out);
        cr_assert(strstr(c.out, want), "%s", c.out);
        cr_assert_null(strstr(c.out, "starting"), "%s", c.out);
        cr_assert_eq(run_daemon(&c, check, env), 2, "%s", c.out);
        cr_assert(strstr(c.out, want), "%s", c.out);
    }
}

Test(daemon, health_port_in_use_exits_1_naming_it)
{
    child c;
    char env_v[64], want[160];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(fd >= 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 1), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    snprintf(env_v, sizeof env_v, "HODEI_HEALTH_LISTEN=127.0.0.1:%d", ntohs(a.sin_port));
    const char *env[] = {env_v, NULL};
    cr_assert_eq(run_daemon(&c, NULL, env), 1, "%s", c.out);
    snprintf(want, sizeof want,
             "test-daemon: health.listen 127.0.0.1:%d: cannot listen: Address already in use",
             ntohs(a.sin_port));
    cr_assert(strstr(c.out, want), "%s", c.out);
    cr_assert_null(strstr(c.out, "starting"), "%s", c.out);
    close(fd);
}
