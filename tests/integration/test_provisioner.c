/* hodei-provisioner as a real child process, with hodei-outbox-relay, a
 * private PostgreSQL and nats-server (tests/harness), and a stand-in
 * worker: a shell script named hodei-worker that records its environment
 * and its pid, then sleeps (with a grandchild in its session) until the
 * test's state folder disappears.
 *
 * Events are written as the scheduler and supervisor write them: a row
 * change and its outbox row in one transaction (libs/store). */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/names.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/provider.pb-c.h"

#define T_WAIT_MS 20000 /* generous: ASan build, 2 cores */
#define T_POLL_MS 50
#define T_PROCS_MAX 4
#define T_TEXT_MAX 4096
#define T_EDGE_ADDR "127.0.0.1:59999"

static harness_stack g_st;
static harness_proc g_relay;
static harness_proc g_provs[T_PROCS_MAX];
static int g_n_provs;
static PGconn *g_db;
static char g_fake[700];   /* the stand-in's folder */
static char g_script[800]; /* <fake>/hodei-worker */

/* ------------------------------------------------------------ stand-in */

static const char t_script_text[] =
    "#!/bin/sh\n"
    "d=\"$(dirname \"$0\")\"\n"
    "echo \"$$\" >> \"$d/starts\"\n"
    "env | sort > \"$d/env-$HODEI_WORKER_ID.tmp\"\n"
    "echo \"PID=$$\" >> \"$d/env-$HODEI_WORKER_ID.tmp\"\n"
    "if [ -e \"$d/ignore-term\" ]; then trap '' TERM; fi\n"
    "sleep 60 &\n"
    "echo \"CHILD=$!\" >> \"$d/env-$HODEI_WORKER_ID.tmp\"\n"
    "mv \"$d/env-$HODEI_WORKER_ID.tmp\" \"$d/env-$HODEI_WORKER_ID\"\n"
    "if [ -e \"$d/kill-parent\" ]; then rm -f \"$d/kill-parent\"; kill -9 $PPID; fi\n"
    "while [ -d \"$d\" ]; do sleep 0.1; done\n";

static void t_write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void t_marker(const char *name)
{
    char path[900];
    snprintf(path, sizeof path, "%s/%s", g_fake, name);
    t_write_file(path, "", 0644);
}

/* Reads the stand-in's recorded environment of worker id into out. */
static bool t_env_read(const char *id, char *out, size_t out_len)
{
    char path[900];
    snprintf(path, sizeof path, "%s/env-%s", g_fake, id);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    fclose(f);
    return true;
}

static void t_env_wait(const char *id, char *out, size_t out_len)
{
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    while (!t_env_read(id, out, out_len)) {
        cr_assert(hodei_mono_ms() < deadline, "worker %s was not started", id);
        hodei_sleep_ms(10);
    }
}

/* The value of "KEY=" in an env dump ("" when absent). */
static void t_env_get(const char *env, const char *key, char *out, size_t out_len)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s=", key);
    char *buf = malloc(strlen(env) + 2);
    buf[0] = '\n';
    memcpy(buf + 1, env, strlen(env) + 1);
    const char *p = strstr(buf, pat);
    out[0] = '\0';
    if (p) {
        p += strlen(pat);
        size_t len = strcspn(p, "\n");
        if (len >= out_len)
            len = out_len - 1;
        memcpy(out, p, len);
        out[len] = '\0';
    }
    free(buf);
}

static pid_t t_env_pid(const char *env, const char *key)
{
    char v[32];
    int64_t pid = 0;
    t_env_get(env, key, v, sizeof v);
    cr_assert(hodei_parse_i64(v, 2, INT32_MAX, &pid), "%s in the worker's env: '%s'", key, v);
    return (pid_t)pid;
}

static int t_starts(void)
{
    char path[900], line[64];
    int n = 0;
    snprintf(path, sizeof path, "%s/starts", g_fake);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        n++;
    fclose(f);
    return n;
}

/* Alive = exists and is not a zombie. */
static bool t_pid_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static bool t_pid_gone_within(pid_t pid, int64_t ms)
{
    int64_t deadline = hodei_mono_ms() + ms;
    while (t_pid_alive(pid)) {
        if (hodei_mono_ms() >= deadline)
            return false;
        hodei_sleep_ms(T_POLL_MS);
    }
    return true;
}

static bool t_file_gone_within(const char *path, int64_t ms)
{
    int64_t deadline = hodei_mono_ms() + ms;
    while (access(path, F_OK) == 0) {
        if (hodei_mono_ms() >= deadline)
            return false;
        hodei_sleep_ms(T_POLL_MS);
    }
    return true;
}

/* Kills every stand-in the test started (each leads its own session). */
static void t_kill_standins(void)
{
    char path[900], line[64];
    snprintf(path, sizeof path, "%s/starts", g_fake);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        int64_t pid;
        line[strcspn(line, "\n")] = '\0';
        if (hodei_parse_i64(line, 2, INT32_MAX, &pid))
            kill(-(pid_t)pid, SIGKILL);
    }
    fclose(f);
}

/* Kills what the provisioner's pid files name (real agents included). */
static void t_kill_pidfiles(void)
{
    char dir[700], path[1200], text[128];
    snprintf(dir, sizeof dir, "%s/workers", g_st.state_dir);
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        long long pid = 0;
        if (!strstr(de->d_name, ".pid"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r");
        if (f && fgets(text, sizeof text, f) && sscanf(text, "%lld", &pid) == 1 && pid > 1)
            kill(-(pid_t)pid, SIGKILL);
        if (f)
            fclose(f);
    }
    if (d)
        closedir(d);
}

/* ------------------------------------------------------------ database */

static void t_exec(const char *sql, int n, const char *const *params, PGresult **res)
{
    hodei_err err = {0};
    hodei_status st = hodei_db_exec(g_db, sql, n, params, res, &err);
    cr_assert_eq(st, HODEI_OK, "%s: %s", sql, err.msg);
}

/* First column of the first row as text ("" when no row), one parameter. */
static void t_str(const char *sql, const char *param, char *out, size_t out_len)
{
    PGresult *res = NULL;
    const char *params[1] = {param};
    t_exec(sql, param ? 1 : 0, params, &res);
    hodei_strlcpy(out, PQntuples(res) ? hodei_db_get_str(res, 0, 0) : "", out_len);
    PQclear(res);
}

static int64_t t_i64(const char *sql, const char *param)
{
    char v[64];
    int64_t out = -1;
    t_str(sql, param, v, sizeof v);
    cr_assert(hodei_parse_i64(v, INT64_MIN, INT64_MAX, &out), "%s gave '%s'", sql, v);
    return out;
}

/* Polls until sql (one parameter) returns want; asserts it does in time. */
static void t_wait_str(const char *sql, const char *param, const char *want, const char *what)
{
    char got[T_TEXT_MAX] = "";
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    for (;;) {
        t_str(sql, param, got, sizeof got);
        if (strcmp(got, want) == 0)
            return;
        cr_assert(hodei_mono_ms() < deadline, "%s: still '%s', want '%s'", what, got, want);
        hodei_sleep_ms(T_POLL_MS);
    }
}

static void t_worker_state_wait(const char *id, const char *state)
{
    t_wait_str("SELECT state FROM workers WHERE id = $1", id, state, "worker state");
}

static void t_saga_wait(const char *id, const char *state_step)
{
    t_wait_str("SELECT state || '/' || step FROM sagas WHERE type = 'provision'"
               " AND correlation_key = $1 ORDER BY created_at DESC LIMIT 1",
               id, state_step, "saga");
}

static void t_tx_begin(void)
{
    hodei_err err = {0};
    cr_assert_eq(hodei_db_begin(g_db, &err), HODEI_OK, "%s", err.msg);
}

static void t_tx_commit(void)
{
    hodei_err err = {0};
    cr_assert_eq(hodei_db_commit(g_db, &err), HODEI_OK, "%s", err.msg);
}

static void t_provision_event(const char *id)
{
    hodei_err err = {0};
    cr_assert_eq(
        hodei_event_provision_requested(HODEI_OUTBOX_WRITE(g_db), id, "process", NULL, &err),
        HODEI_OK, "%s", err.msg);
}

/* As the scheduler does: a CREATING worker row and ProvisionRequested. */
static void t_provision(char id[HODEI_ID_BUF])
{
    hodei_id_new(id);
    const char *params[1] = {id};
    t_tx_begin();
    t_exec("INSERT INTO workers (id, provider, state) VALUES ($1, 'process', 'CREATING')", 1,
           params, NULL);
    t_provision_event(id);
    t_tx_commit();
}

/* As the edge's Register does: token used, worker READY. */
static void t_register(const char *id)
{
    const char *params[1] = {id};
    t_exec("UPDATE bootstrap_tokens SET used_at = now() WHERE worker_id = $1"
           " AND used_at IS NULL AND revoked_at IS NULL",
           1, params, NULL);
    t_exec("UPDATE workers SET state = 'READY', idle_since = now() WHERE id = $1", 1, params, NULL);
}

/* ------------------------------------------------------------ processes */

/* binary NULL: the default, hodei-worker next to hodei-provisioner. */
static harness_proc *t_prov_start_with(const char *instance, const char *ttl, const char *binary,
                                       const char *edge)
{
    char env_bin[900], env_inst[128], env_ttl[64], env_edge[128];
    snprintf(env_bin, sizeof env_bin, "HODEI_PROVISIONER_WORKER_BINARY=%s", binary ? binary : "");
    snprintf(env_inst, sizeof env_inst, "HODEI_INSTANCE_ID=%s", instance);
    snprintf(env_ttl, sizeof env_ttl, "HODEI_PROVISIONER_TOKEN_TTL=%s", ttl);
    snprintf(env_edge, sizeof env_edge, "HODEI_PROVISIONER_EDGE_ADDRESS=%s", edge);
    const char *env[] = {env_bin,
                         env_inst,
                         env_ttl,
                         env_edge,
                         "HODEI_PROVISIONER_RECONCILE_INTERVAL=500ms",
                         "HODEI_PROVISIONER_SAGA_LEASE=2s",
                         "HODEI_PROVISIONER_DESTROY_GRACE=1s",
                         "HODEI_WORKER_LABELS=zone=test",
                         NULL};
    const char *argv[] = {"hodei-provisioner", NULL};
    cr_assert(g_n_provs < T_PROCS_MAX);
    harness_proc *p = &g_provs[g_n_provs++];
    harness_proc_start(&g_st, p, argv, env);
    cr_assert(harness_log_contains(p, "consuming HODEI_EVENTS", T_WAIT_MS),
              "provisioner did not start consuming; see %s", p->log_path);
    return p;
}

static harness_proc *t_prov_start(const char *instance, const char *ttl)
{
    return t_prov_start_with(instance, ttl, g_script, T_EDGE_ADDR);
}

/* SIGTERM; a clean (leak-free under ASan) exit is status 0. */
static void t_prov_stop(harness_proc *p)
{
    int status = harness_proc_stop(p, SIGTERM, 15000);
    cr_assert(status != -1, "provisioner did not stop on SIGTERM; see %s", p->log_path);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "provisioner exited uncleanly (status 0x%x); see %s", status, p->log_path);
}

static void setup(void)
{
    harness_stack_start(&g_st);
    const char *argv[] = {"hodei-outbox-relay", NULL};
    const char *env[] = {"HODEI_RELAY_POLL_INTERVAL=100ms", NULL};
    harness_proc_start(&g_st, &g_relay, argv, env);
    cr_assert(harness_log_contains(&g_relay, "active:", T_WAIT_MS), "relay did not start");
    snprintf(g_fake, sizeof g_fake, "%s/fake", g_st.state_dir);
    cr_assert(mkdir(g_fake, 0755) == 0, "%s: %s", g_fake, strerror(errno));
    snprintf(g_script, sizeof g_script, "%s/hodei-worker", g_fake);
    t_write_file(g_script, t_script_text, 0755);
    hodei_err err = {0};
    cr_assert_eq(hodei_db_connect(g_st.db_url, 5000, &g_db, &err), HODEI_OK, "%s", err.msg);
    g_n_provs = 0;
    hodei_rpc_global_init();
}

static void teardown(void)
{
    for (int i = 0; i < g_n_provs; i++)
        if (harness_proc_alive(&g_provs[i]))
            harness_proc_stop(&g_provs[i], SIGKILL, 5000);
    t_kill_standins();
    t_kill_pidfiles();
    PQfinish(g_db);
    g_db = NULL;
    harness_stack_stop(&g_st);
    hodei_rpc_global_shutdown();
}

/* Each case its own database and an emptied NATS of one stack (tests/harness). */
HARNESS_SHARED_SERVERS()

TestSuite(provisioner, .init = setup, .fini = teardown, .timeout = 300);

/* ------------------------------------------------------------ tests */

static void t_check_env(const char *id, const char *env, char otp[80])
{
    char v[256];
    t_env_get(env, "HODEI_SERVER", v, sizeof v);
    cr_assert_str_eq(v, T_EDGE_ADDR);
    t_env_get(env, "HODEI_WORKER_ID", v, sizeof v);
    cr_assert_str_eq(v, id);
    t_env_get(env, "HODEI_LOG_LEVEL", v, sizeof v);
    cr_assert_str_eq(v, "info");
    t_env_get(env, "HODEI_WORKER_LABELS", v, sizeof v);
    cr_assert_str_eq(v, "zone=test", "HODEI_WORKER_* settings are passed to the agent");
    t_env_get(env, "HODEI_DATABASE_URL", v, sizeof v);
    cr_assert_str_eq(v, "", "the provisioner's database URL leaked into the worker");
    t_env_get(env, "HODEI_OTP", otp, 80);
    cr_assert_eq(strlen(otp), 64, "HODEI_OTP: 64 hex characters, got '%s'", otp);
    cr_assert_eq(strspn(otp, "0123456789abcdef"), 64);
}

Test(provisioner, provisions_then_compensates_when_registration_never_comes)
{
    harness_proc *p = t_prov_start("prov-a", "3s");
    char id[HODEI_ID_BUF], env[T_TEXT_MAX], otp[80], sql[512], pidfile[900];
    int64_t t0 = hodei_mono_ms();
    t_provision(id);
    t_env_wait(id, env, sizeof env);
    fprintf(stderr,
            "cold start: ProvisionRequested committed -> worker process running: %" PRId64 " ms\n",
            hodei_mono_ms() - t0);
    t_check_env(id, env, otp);
    pid_t pid = t_env_pid(env, "PID");

    /* the token's hash is stored, bound to the worker and provider, unexpired */
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM bootstrap_tokens WHERE worker_id = $1 AND provider = 'process'"
             " AND token_hash = sha256(convert_to('%s', 'UTF8')) AND revoked_at IS NULL"
             " AND used_at IS NULL AND expires_at > now()"
             " AND expires_at < now() + interval '4 seconds'",
             otp);
    cr_assert_eq(t_i64(sql, id), 1, "the token's SHA-256 is stored with a 3 s expiry");
    t_worker_state_wait(id, "CONNECTING");
    char ref[128], want[64];
    t_str("SELECT provider_ref FROM workers WHERE id = $1", id, ref, sizeof ref);
    snprintf(want, sizeof want, "%d:", (int)pid);
    cr_assert(strncmp(ref, want, strlen(want)) == 0, "provider_ref '%s' names pid %d", ref,
              (int)pid);
    t_saga_wait(id, "RUNNING/wait");
    snprintf(pidfile, sizeof pidfile, "%s/workers/%s.pid", g_st.state_dir, id);
    cr_assert(access(pidfile, F_OK) == 0, "%s exists", pidfile);

    /* no registration within the TTL: compensated */
    t_saga_wait(id, "COMPENSATED/done");
    cr_assert_eq(t_i64("SELECT count(*) FROM bootstrap_tokens WHERE worker_id = $1"
                       " AND revoked_at IS NULL",
                       id),
                 0, "every token revoked");
    t_worker_state_wait(id, "TERMINATED");
    cr_assert_eq(t_i64("SELECT count(*) FROM outbox WHERE aggregate_id = $1"
                       " AND event_type = 'ProvisionFailed'",
                       id),
                 1);
    cr_assert(t_pid_gone_within(pid, 5000), "worker process %d is gone", (int)pid);
    cr_assert(t_file_gone_within(pidfile, 5000), "%s removed", pidfile);
    cr_assert(!harness_log_contains(p, otp, 0), "the token appears in the provisioner's log");
    t_prov_stop(p);
}

Test(provisioner, redelivered_request_starts_nothing_twice_and_registration_succeeds)
{
    harness_proc *p = t_prov_start("prov-a", "30s");
    char id[HODEI_ID_BUF], env[T_TEXT_MAX], needle[128];
    t_provision(id);
    t_env_wait(id, env, sizeof env);
    pid_t pid = t_env_pid(env, "PID");
    t_saga_wait(id, "RUNNING/wait");

    /* the same request again (a redelivery, as JetStream would) */
    t_tx_begin();
    t_provision_event(id);
    t_tx_commit();
    snprintf(needle, sizeof needle, "provision requested: worker %s: a saga exists", id);
    cr_assert(harness_log_contains(p, needle, T_WAIT_MS), "second request seen; see %s",
              p->log_path);
    hodei_sleep_ms(300);
    cr_assert_eq(t_starts(), 1, "one worker process, not two");
    cr_assert_eq(t_i64("SELECT count(*) FROM sagas WHERE correlation_key = $1", id), 1);

    int64_t t0 = hodei_mono_ms();
    t_register(id);
    t_saga_wait(id, "SUCCEEDED/done");
    fprintf(stderr, "registration seen -> saga SUCCEEDED: %" PRId64 " ms\n", hodei_mono_ms() - t0);
    t_prov_stop(p);
    cr_assert(t_pid_alive(pid), "workers outlive a provisioner's clean stop");
}

Test(provisioner, killed_after_starting_a_worker_restarts_and_adopts_it)
{
    t_marker("kill-parent"); /* the stand-in SIGKILLs the provisioner */
    harness_proc *a = t_prov_start("prov-a", "30s");
    char id[HODEI_ID_BUF], env[T_TEXT_MAX], want[64], ref[128];
    t_provision(id);
    t_env_wait(id, env, sizeof env);
    pid_t pid = t_env_pid(env, "PID");
    int status = harness_proc_wait(a, T_WAIT_MS);
    cr_assert(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "provisioner SIGKILLed (status 0x%x)", status);

    harness_proc *b = t_prov_start("prov-b", "30s");
    t_saga_wait(id, "RUNNING/wait");
    cr_assert(harness_log_contains(b, "taken over", T_WAIT_MS), "prov-b took the saga over");
    t_worker_state_wait(id, "CONNECTING");
    t_str("SELECT provider_ref FROM workers WHERE id = $1", id, ref, sizeof ref);
    snprintf(want, sizeof want, "%d:", (int)pid);
    cr_assert(strncmp(ref, want, strlen(want)) == 0, "provider_ref '%s' is the first worker %d",
              ref, (int)pid);
    hodei_sleep_ms(1000); /* two reconcile rounds too */
    cr_assert_eq(t_starts(), 1, "the restarted provisioner started no second worker");
    cr_assert(t_pid_alive(pid));
    t_register(id);
    t_saga_wait(id, "SUCCEEDED/done");
    t_prov_stop(b);
}

/* A BUSY worker running a job, as the scheduler leaves it. */
static void t_make_busy(const char *id, char job_id[HODEI_ID_BUF])
{
    hodei_id_new(job_id);
    const char *params[2] = {job_id, id};
    t_exec("INSERT INTO jobs (id, state, spec, timeout_ms, attempt, max_attempts, worker_id,"
           " epoch, started_at) VALUES ($1, 'RUNNING', '\\x0a00'::bytea, 60000, 1, 1, $2, 1,"
           " now())",
           2, params, NULL);
    t_exec("UPDATE workers SET state = 'BUSY', current_job_id = $1, idle_since = NULL"
           " WHERE id = $2",
           2, params, NULL);
}

Test(provisioner, destroy_request_kills_the_session_and_terminates_a_busy_worker)
{
    t_marker("ignore-term"); /* SIGTERM is ignored: SIGKILL after the grace */
    harness_proc *p = t_prov_start("prov-a", "30s");
    char id[HODEI_ID_BUF], job[HODEI_ID_BUF], env[T_TEXT_MAX], pidfile[900];
    t_provision(id);
    t_env_wait(id, env, sizeof env);
    pid_t pid = t_env_pid(env, "PID"), child = t_env_pid(env, "CHILD");
    t_register(id);
    t_saga_wait(id, "SUCCEEDED/done");
    t_make_busy(id, job);

    hodei_err err = {0};
    t_tx_begin();
    cr_assert_eq(
        hodei_event_worker_destroy_requested(HODEI_OUTBOX_WRITE(g_db), id, "process", "test", &err),
        HODEI_OK, "%s", err.msg);
    t_tx_commit();
    t_worker_state_wait(id, "TERMINATED");
    cr_assert(!t_pid_alive(pid), "worker %d killed", (int)pid);
    cr_assert(t_pid_gone_within(child, 5000), "its session's other process %d killed", (int)child);
    cr_assert(harness_log_contains(p, "after SIGTERM; SIGKILL", 0), "escalated to SIGKILL");
    snprintf(pidfile, sizeof pidfile, "%s/workers/%s.pid", g_st.state_dir, id);
    cr_assert(access(pidfile, F_OK) != 0, "%s removed", pidfile);
    t_wait_str("SELECT state || ' ' || error FROM jobs WHERE id = $1", job,
               "FAILED worker destroyed", "the job on the destroyed worker");

    /* a second request (redelivery) changes nothing */
    t_tx_begin();
    cr_assert_eq(hodei_event_worker_destroy_requested(HODEI_OUTBOX_WRITE(g_db), id, "process",
                                                      "again", &err),
                 HODEI_OK, "%s", err.msg);
    t_tx_commit();
    char needle[128];
    snprintf(needle, sizeof needle, "worker %s destroyed (provider process, was TERMINATED)", id);
    cr_assert(harness_log_contains(p, needle, T_WAIT_MS), "second request handled");
    t_worker_state_wait(id, "TERMINATED");
    t_prov_stop(p);
}

/* Starts the stand-in outside the provisioner (its own session), as a
 * worker left behind with no registry row. */
static pid_t t_orphan_start(const char *id)
{
    char env_id[128];
    snprintf(env_id, sizeof env_id, "HODEI_WORKER_ID=%s", id);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        char *argv[] = {g_script, NULL};
        char *envp[] = {"PATH=/usr/bin:/bin", env_id, NULL};
        setsid();
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close_range(3, ~0U, 0);
        execve(g_script, argv, envp);
        _exit(127);
    }
    return pid;
}

Test(provisioner, reconcile_destroys_orphans_and_marks_vanished_workers_lost)
{
    harness_proc *p = t_prov_start("prov-a", "30s");
    char orphan[HODEI_ID_BUF], env[T_TEXT_MAX], pidfile[900], text[64];
    hodei_id_new(orphan);
    pid_t opid = t_orphan_start(orphan);
    t_env_wait(orphan, env, sizeof env);
    snprintf(pidfile, sizeof pidfile, "%s/workers/%s.pid", g_st.state_dir, orphan);
    snprintf(text, sizeof text, "%d\n", (int)opid);
    t_write_file(pidfile, text, 0644);
    cr_assert(t_pid_gone_within(opid, T_WAIT_MS), "orphan %d destroyed", (int)opid);
    waitpid(opid, NULL, 0);
    cr_assert(t_file_gone_within(pidfile, T_WAIT_MS), "orphan's pid file removed");

    cr_assert(harness_log_contains(p, "destroying the orphan", 0));

    /* a READY worker whose process dies behind our back */
    char id[HODEI_ID_BUF];
    t_provision(id);
    t_env_wait(id, env, sizeof env);
    pid_t pid = t_env_pid(env, "PID");
    t_register(id);
    t_saga_wait(id, "SUCCEEDED/done");
    kill(-pid, SIGKILL);
    t_worker_state_wait(id, "LOST");
    t_wait_str("SELECT healthy::text FROM provider_health WHERE provider = $1", "process", "true",
               "provider health");
    t_prov_stop(p);
}

/* ------------------------------------------------------------ ProviderManagementService */

static hodei_grpc_code t_rpc(edge_handle *e, const char *method, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp,
                             char *msg, size_t msg_len)
{
    char path[128];
    hodei_rpc_result res;
    hodei_err err = {0};
    ProtobufCMessage *out = NULL;
    snprintf(path, sizeof path, "/hodei.v1.ProviderManagementService/%s", method);
    cr_assert_eq(hodei_rpc_unary(e->ch, path, req, desc, 10000, &out, &res, &err), HODEI_OK,
                 "%s: %s", method, err.msg);
    hodei_strlcpy(msg, res.message, msg_len);
    if (resp)
        *resp = out;
    else if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return res.code;
}

/* A valid provider the bad cases below each break in one field. */
typedef struct {
    Hodei__V1__Provider p;
    Hodei__V1__ResourceRequirements cap;
    Hodei__V1__Provider__ConfigEntry entry;
    Hodei__V1__Provider__ConfigEntry host;
    Hodei__V1__Provider__ConfigEntry *entries[2];
} t_provider;

static void t_provider_init(t_provider *t)
{
    hodei__v1__provider__init(&t->p);
    hodei__v1__resource_requirements__init(&t->cap);
    hodei__v1__provider__config_entry__init(&t->entry);
    t->p.name = "docker-local";
    t->p.type = HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_DOCKER;
    t->p.max_workers = 4;
    t->p.warm_pool_min = 1;
    t->p.warm_pool_max = 2;
    t->p.idle_ttl_ms = 60000;
    t->p.cost_per_hour = 0.5;
    t->p.enabled = true;
    t->cap.cpu_cores = 2;
    t->cap.memory_bytes = INT64_C(1) << 30;
    t->cap.architecture = "amd64";
    t->p.worker_capacity = &t->cap;
    t->entry.key = "worker_image";
    t->entry.value = "hodei-worker:latest";
    hodei__v1__provider__config_entry__init(&t->host);
    t->host.key = "host"; /* no engine answers there */
    t->host.value = "unix:///nonexistent/docker.sock";
    t->entries[0] = &t->entry;
    t->entries[1] = &t->host;
    t->p.n_config = 2;
    t->p.config = t->entries;
}

static hodei_grpc_code t_register_provider(edge_handle *e, Hodei__V1__Provider *p, char *msg,
                                           size_t msg_len)
{
    Hodei__V1__RegisterProviderRequest req = HODEI__V1__REGISTER_PROVIDER_REQUEST__INIT;
    req.provider = p;
    return t_rpc(e, "RegisterProvider", &req.base,
                 &hodei__v1__register_provider_response__descriptor, NULL, msg, msg_len);
}

static void t_bad_provider(edge_handle *e, int which, const char *field)
{
    t_provider t;
    char msg[512];
    t_provider_init(&t);
    switch (which) {
    case 0:
        t.p.name = "Bad_Name";
        break;
    case 1:
        t.p.type = HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_UNSPECIFIED;
        break;
    case 2:
        t.p.warm_pool_min = 3;
        break;
    case 3:
        t.p.max_workers = 1;
        break;
    case 4:
        t.p.max_workers = -1;
        break;
    case 5:
        t.p.idle_ttl_ms = INT64_MAX;
        break;
    case 6:
        t.p.cost_per_hour = NAN;
        break;
    case 7:
        t.cap.gpu_count = 65;
        break;
    case 8:
        t.entry.key = "bad key";
        break;
    case 9:
        t.cap.architecture = "sparc";
        break;
    case 10:
        t.p.name = "";
        break;
    case 11:
        t.entry.key = "image"; /* not a key the docker driver reads */
        break;
    case 12:
        t.host.value = "docker.sock"; /* not unix:///path or tcp://host:port */
        break;
    default:
        cr_assert(false);
    }
    hodei_grpc_code code = t_register_provider(e, &t.p, msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT, "case %d: code %d (%s)", which, code, msg);
    cr_assert(strstr(msg, field) != NULL, "case %d: '%s' names %s", which, msg, field);
}

static void t_list_check(edge_handle *e)
{
    Hodei__V1__ListProvidersRequest req = HODEI__V1__LIST_PROVIDERS_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    char msg[512];
    cr_assert_eq(t_rpc(e, "ListProviders", &req.base,
                       &hodei__v1__list_providers_response__descriptor, &out, msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__ListProvidersResponse *r = (Hodei__V1__ListProvidersResponse *)out;
    cr_assert_eq(r->n_providers, 2);
    Hodei__V1__Provider *d = r->providers[0], *pr = r->providers[1];
    cr_assert_str_eq(pr->name, "process");
    cr_assert_eq(pr->type, HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_PROCESS);
    cr_assert_eq(pr->max_workers, 8);
    cr_assert_eq(pr->idle_ttl_ms, 30000);
    cr_assert(pr->enabled);
    cr_assert_str_eq(d->name, "docker-local");
    cr_assert_eq(d->type, HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_DOCKER);
    cr_assert_eq(d->n_config, 2);
    cr_assert_str_eq(d->config[0]->key, "host");
    cr_assert_str_eq(d->config[1]->key, "worker_image");
    cr_assert_str_eq(d->config[1]->value, "hodei-worker:latest");
    cr_assert_eq(d->warm_pool_max, 2);
    cr_assert(fabs(d->worker_capacity->cpu_cores - 2.0) < 1e-9);
    cr_assert_str_eq(d->worker_capacity->architecture, "amd64");
    protobuf_c_message_free_unpacked(out, NULL);
}

static Hodei__V1__GetProviderHealthResponse *t_health(edge_handle *e, const char *name,
                                                      hodei_grpc_code *code)
{
    Hodei__V1__GetProviderHealthRequest req = HODEI__V1__GET_PROVIDER_HEALTH_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    char msg[512];
    req.name = (char *)name;
    *code = t_rpc(e, "GetProviderHealth", &req.base,
                  &hodei__v1__get_provider_health_response__descriptor, &out, msg, sizeof msg);
    return (Hodei__V1__GetProviderHealthResponse *)out;
}

Test(provisioner, provider_management_validates_lists_and_reports_health)
{
    edge_handle e;
    edge_start(&g_st, &e, NULL);
    static const char *const fields[] = {"provider.name",
                                         "provider.type",
                                         "provider.warm_pool_min",
                                         "provider.warm_pool_max",
                                         "provider.max_workers",
                                         "provider.idle_ttl_ms",
                                         "provider.cost_per_hour",
                                         "provider.worker_capacity.gpu_count",
                                         "provider.config[0]",
                                         "provider.worker_capacity.architecture",
                                         "provider.name",
                                         "provider.config[\"image\"]: unknown key for type docker",
                                         "provider.config[\"host\"]: must be unix:///path"};
    for (int i = 0; i < (int)(sizeof fields / sizeof fields[0]); i++)
        t_bad_provider(&e, i, fields[i]);
    char msg[512];
    Hodei__V1__RegisterProviderRequest empty = HODEI__V1__REGISTER_PROVIDER_REQUEST__INIT;
    cr_assert_eq(t_rpc(&e, "RegisterProvider", &empty.base,
                       &hodei__v1__register_provider_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "provider: required"), "%s", msg);
    cr_assert_eq(t_i64("SELECT count(*) FROM providers", NULL), 1, "nothing written");

    t_provider t;
    t_provider_init(&t);
    cr_assert_eq(t_register_provider(&e, &t.p, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    t.p.max_workers = 6; /* again: an update */
    cr_assert_eq(t_register_provider(&e, &t.p, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(t_i64("SELECT max_workers FROM providers WHERE name = $1", "docker-local"), 6);
    t.p.max_workers = 4;
    cr_assert_eq(t_register_provider(&e, &t.p, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    t_list_check(&e);

    hodei_grpc_code code;
    Hodei__V1__GetProviderHealthResponse *h = t_health(&e, "process", &code);
    cr_assert_eq(code, HODEI_GRPC_OK);
    cr_assert(!h->healthy && strstr(h->message, "not checked yet"), "%s", h->message);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    cr_assert_null(t_health(&e, "nope", &code));
    cr_assert_eq(code, HODEI_GRPC_NOT_FOUND);

    harness_proc *p = t_prov_start("prov-a", "30s");
    t_wait_str("SELECT healthy::text FROM provider_health WHERE provider = $1", "process", "true",
               "process provider health");
    h = t_health(&e, "process", &code);
    cr_assert_eq(code, HODEI_GRPC_OK);
    cr_assert(h->healthy, "%s", h->message);
    cr_assert_eq(h->workers, 0);
    cr_assert(h->checked_at && h->checked_at->seconds > 0);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    t_wait_str("SELECT healthy::text FROM provider_health WHERE provider = $1", "docker-local",
               "false", "docker provider health");
    h = t_health(&e, "docker-local", &code);
    cr_assert(!h->healthy && strstr(h->message, "docker engine at unix:///nonexistent/docker.sock"),
              "%s", h->message);
    protobuf_c_message_free_unpacked(&h->base, NULL);
    t_prov_stop(p);
    edge_stop(&e);
}

/* ------------------------------------------------------------ the real hodei-worker */

/* The real agent: started by the default path (next to the provisioner),
 * registers at the edge with its token, and stops on the destroy's SIGTERM. */
Test(provisioner, real_worker_registers_and_is_destroyed)
{
    edge_handle e;
    char path[700], id[HODEI_ID_BUF], pidfile[900], ref[128];
    snprintf(path, sizeof path, "%s/hodei-worker", g_st.bin);
    if (access(path, X_OK) != 0)
        cr_skip_test("%s not built", path);
    edge_start(&g_st, &e, NULL);
    harness_proc *p = t_prov_start_with("prov-a", "30s", NULL, e.target);
    int64_t t0 = hodei_mono_ms();
    t_provision(id);
    t_saga_wait(id, "SUCCEEDED/done");
    fprintf(stderr,
            "cold start with the real agent: ProvisionRequested committed -> saga"
            " SUCCEEDED (worker registered, READY): %" PRId64 " ms\n",
            hodei_mono_ms() - t0);
    t_worker_state_wait(id, "READY");
    cr_assert_eq(t_i64("SELECT count(*) FROM bootstrap_tokens WHERE worker_id = $1"
                       " AND used_at IS NOT NULL",
                       id),
                 1, "the token was consumed once");
    t_str("SELECT provider_ref FROM workers WHERE id = $1", id, ref, sizeof ref);
    int64_t pid = 0;
    cr_assert(sscanf(ref, "%" SCNd64, &pid) == 1 && t_pid_alive((pid_t)pid), "ref %s", ref);
    hodei_sleep_ms(1200); /* reconcile rounds see it alive: still READY */
    t_worker_state_wait(id, "READY");

    hodei_err err = {0};
    t_tx_begin();
    cr_assert_eq(
        hodei_event_worker_destroy_requested(HODEI_OUTBOX_WRITE(g_db), id, "process", "test", &err),
        HODEI_OK, "%s", err.msg);
    t_tx_commit();
    t_worker_state_wait(id, "TERMINATED");
    cr_assert(!t_pid_alive((pid_t)pid), "hodei-worker %d stopped", (int)pid);
    snprintf(pidfile, sizeof pidfile, "%s/workers/%s.pid", g_st.state_dir, id);
    cr_assert(access(pidfile, F_OK) != 0);
    cr_assert(!harness_log_contains(p, "SIGKILL", 0), "the agent stopped on SIGTERM");
    t_prov_stop(p);
    edge_stop(&e);
}

/* ------------------------------------------------------------ replicas, unknown driver */

Test(provisioner, two_replicas_share_the_consumer_and_start_each_worker_once)
{
    enum { N = 6 };
    harness_proc *a = t_prov_start("prov-a", "30s");
    harness_proc *b = t_prov_start("prov-b", "30s");
    char ids[N][HODEI_ID_BUF], env[T_TEXT_MAX];
    int64_t t0 = hodei_mono_ms();
    for (int i = 0; i < N; i++)
        t_provision(ids[i]);
    for (int i = 0; i < N; i++) {
        t_env_wait(ids[i], env, sizeof env);
        t_saga_wait(ids[i], "RUNNING/wait");
    }
    fprintf(stderr, "%d ProvisionRequested -> %d sagas waiting for registration: %" PRId64 " ms\n",
            N, N, hodei_mono_ms() - t0);
    hodei_sleep_ms(500);
    cr_assert_eq(t_starts(), N, "each worker started exactly once");
    cr_assert_eq(t_i64("SELECT count(*) FROM sagas WHERE type = $1", "provision"), N);
    t_prov_stop(a);
    t_prov_stop(b);
}

Test(provisioner, provider_whose_driver_cannot_start_is_compensated_at_once)
{
    harness_proc *p = t_prov_start("prov-a", "30s");
    char id[HODEI_ID_BUF], err[512];
    hodei_id_new(id);
    const char *params[1] = {id};
    /* every type has a driver here; this one's config cannot make it (a row
     * written by hand: RegisterProvider refuses it) */
    t_exec("INSERT INTO providers (name, type) VALUES ('fc-x', 'firecracker')", 0, NULL, NULL);
    t_tx_begin();
    t_exec("INSERT INTO workers (id, provider, state) VALUES ($1, 'fc-x', 'CREATING')", 1, params,
           NULL);
    t_provision_event(id);
    t_tx_commit();
    t_saga_wait(id, "COMPENSATED/done");
    t_worker_state_wait(id, "TERMINATED");
    t_str("SELECT error FROM sagas WHERE correlation_key = $1", id, err, sizeof err);
    cr_assert(strstr(err, "\"kernel_image\" and \"rootfs\""), "saga error: %s", err);
    cr_assert_eq(t_i64("SELECT count(*) FROM outbox WHERE aggregate_id = $1"
                       " AND event_type = 'ProvisionFailed'",
                       id),
                 1);
    cr_assert_eq(t_starts(), 0);
    t_prov_stop(p);
}

/* ------------------------------------------------------------ dependencies restart */

Test(provisioner, keeps_working_after_nats_and_postgresql_restart)
{
    harness_proc *p = t_prov_start("prov-a", "30s");
    char id[HODEI_ID_BUF], env[T_TEXT_MAX];
    harness_nats_stop(&g_st);
    hodei_sleep_ms(1500);
    harness_nats_start(&g_st);
    PQfinish(g_db);
    g_db = NULL;
    harness_pg_stop(&g_st);
    hodei_sleep_ms(1500);
    harness_pg_start(&g_st);
    hodei_err err = {0};
    cr_assert_eq(hodei_db_connect(g_st.db_url, 5000, &g_db, &err), HODEI_OK, "%s", err.msg);
    t_provision(id);
    t_env_wait(id, env, sizeof env);
    t_saga_wait(id, "RUNNING/wait");
    cr_assert(harness_proc_alive(p), "the provisioner rode out both restarts");
    t_prov_stop(p);
}
