#include "cluster.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define CL_ENV_MAX 32

static const char *const cl_names[CL_DAEMON_COUNT] = {
    [CL_RELAY] = "hodei-outbox-relay",
    [CL_SCHEDULER] = "hodei-scheduler",
    [CL_PROVISIONER] = "hodei-provisioner",
    [CL_SUPERVISOR] = "hodei-supervisor",
};

static char cl_edge_env[128];
static char cl_dir_env[700];
static char cl_bin_env[700];
static char cl_health_env[CL_DAEMON_COUNT][64];

static void cl_env(cluster *c, cluster_daemon d, const char **env)
{
    size_t n = 0;
    snprintf(cl_health_env[d], sizeof cl_health_env[d], "HODEI_HEALTH_LISTEN=127.0.0.1:%d",
             c->health_port[d]);
    env[n++] = cl_health_env[d];
    snprintf(cl_edge_env, sizeof cl_edge_env, "HODEI_PROVISIONER_EDGE_ADDRESS=%s", c->edge.target);
    snprintf(cl_dir_env, sizeof cl_dir_env, "HODEI_PROVISIONER_STATE_DIR=%s", c->stack.state_dir);
    snprintf(cl_bin_env, sizeof cl_bin_env, "HODEI_PROVISIONER_WORKER_BINARY=%s/hodei-worker",
             c->stack.bin);
    env[n++] = cl_edge_env;
    env[n++] = cl_dir_env;
    env[n++] = cl_bin_env;
    for (size_t i = 0; c->extra_env && c->extra_env[i] && n < CL_ENV_MAX - 1; i++)
        env[n++] = c->extra_env[i];
    env[n] = NULL;
}

static void cl_start_one(cluster *c, cluster_daemon d)
{
    const char *env[CL_ENV_MAX];
    const char *argv[] = {cl_names[d], NULL};
    cl_env(c, d, env);
    harness_proc_start(&c->stack, &c->procs[d], argv, env);
}

void cluster_start(cluster *c, const char *const *extra_env)
{
    memset(c, 0, sizeof *c);
    c->extra_env = extra_env;
    hodei_rpc_global_init();
    harness_stack_start(&c->stack);
    snprintf(c->workers_dir, sizeof c->workers_dir, "%s/workers", c->stack.state_dir);
    edge_start(&c->stack, &c->edge, extra_env);
    for (int d = 0; d < CL_DAEMON_COUNT; d++) {
        c->health_port[d] = harness_free_port();
        cl_start_one(c, (cluster_daemon)d);
    }
}

/* The process provider's workers outlive the daemons by design (a
 * restarted provisioner finds them again): end the ones whose pid files
 * are in the provider's folder, with their sessions (jobs included). */
static void cl_workers_kill(const cluster *c)
{
    DIR *d = opendir(c->workers_dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pid") != 0)
            continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", c->workers_dir, e->d_name);
        FILE *f = fopen(path, "r");
        long pid = 0;
        if (f && fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        if (f)
            fclose(f);
        if (pid > 1) {
            kill((pid_t)-pid, SIGKILL);
            kill((pid_t)pid, SIGKILL);
        }
    }
    if (d)
        closedir(d);
}

void cluster_stop(cluster *c)
{
    for (int d = CL_DAEMON_COUNT - 1; d >= 0; d--) {
        if (c->procs[d].pid <= 0)
            continue;
        /* A SIGTERM that lands before the daemon's main has blocked it
         * kills the process outright: wait until it says it is starting. */
        harness_log_contains(&c->procs[d], "starting version=", 15000);
        int st = harness_proc_stop(&c->procs[d], SIGTERM, 15000);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char tail[HARNESS_LOG_TAIL];
            harness_log_tail(c->procs[d].log_path, tail, sizeof tail);
            cr_expect_fail("%s exited uncleanly (0x%x); the end of %s:\n%s", cl_names[d], st,
                           c->procs[d].log_path, tail);
        }
        c->procs[d].pid = 0;
    }
    edge_stop(&c->edge);
    cl_workers_kill(c);
    harness_stack_stop(&c->stack);
    hodei_rpc_global_shutdown();
}

void cluster_kill_restart(cluster *c, cluster_daemon d)
{
    harness_proc_stop(&c->procs[d], SIGKILL, 5000);
    cl_start_one(c, d);
}

void cluster_kill_edge(cluster *c)
{
    harness_proc_stop(&c->edge.proc, SIGKILL, 5000);
    c->edge.proc.pid = 0;
}

void cluster_kill_restart_edge(cluster *c)
{
    cluster_kill_edge(c);
    cluster_start_edge(c);
}

void cluster_start_edge(cluster *c)
{
    edge_launch(&c->stack, &c->edge, c->extra_env);
}

void cluster_provider(cluster *c, int max_workers, int64_t idle_ttl_ms, int warm_min)
{
    char out[256];
    int rc = harness_sh(&c->stack, out, sizeof out,
                        "psql -qtA \"$HODEI_DATABASE_URL\" -c \"INSERT INTO providers (name, type,"
                        " max_workers, idle_ttl_ms, warm_pool_min, warm_pool_max) VALUES"
                        " ('process', 'process', %d, %lld, %d, %d) ON CONFLICT (name) DO UPDATE"
                        " SET max_workers = EXCLUDED.max_workers, idle_ttl_ms ="
                        " EXCLUDED.idle_ttl_ms, warm_pool_min = EXCLUDED.warm_pool_min,"
                        " warm_pool_max = EXCLUDED.warm_pool_max\"",
                        max_workers, (long long)idle_ttl_ms, warm_min,
                        warm_min > max_workers ? warm_min : max_workers);
    cr_assert_eq(rc, 0, "provider update failed: %s", out);
}

/* What a dropped connection looks like to a unary call; safe to retry
 * with an idempotency key. */
static bool cl_transient(hodei_grpc_code code)
{
    return code == HODEI_GRPC_UNAVAILABLE || code == HODEI_GRPC_DEADLINE_EXCEEDED ||
           code == HODEI_GRPC_UNKNOWN || code == HODEI_GRPC_INTERNAL ||
           code == HODEI_GRPC_CANCELLED;
}

void cluster_queue(cluster *c, const char *script, int max_attempts, int64_t timeout_ms,
                   char *id_out)
{
    edge_job j;
    edge_job_shell(&j, script);
    j.spec.max_attempts = max_attempts;
    j.spec.timeout_ms = timeout_ms;
    /* As a careful client does: an idempotency key, and retries while the
     * edge is unreachable (it may be restarting). */
    char key[HODEI_ID_BUF];
    hodei_id_new(key);
    j.req.idempotency_key = key;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    hodei_grpc_code code;
    int64_t until = hodei_mono_ms() + 60000;
    do {
        code = edge_call(&c->edge, "QueueJob", &j.req.base,
                         &hodei__v1__queue_job_response__descriptor, &resp, msg, sizeof msg);
        if (cl_transient(code))
            hodei_sleep_ms(100);
    } while (cl_transient(code) && hodei_mono_ms() < until);
    cr_assert_eq(code, HODEI_GRPC_OK, "QueueJob: %s", msg);
    hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)resp)->job_id, 37);
    protobuf_c_message_free_unpacked(resp, NULL);
}

bool cluster_wait_job(cluster *c, const char *id, int64_t timeout_ms, char *state_out,
                      size_t state_len)
{
    char q[256];
    int64_t until = hodei_mono_ms() + timeout_ms;
    snprintf(q, sizeof q,
             "SELECT count(*) FROM jobs WHERE id = '%s' AND state IN"
             " ('SUCCEEDED','FAILED','CANCELLED','TIMEOUT')",
             id);
    while (hodei_mono_ms() < until && harness_sql_i64(&c->stack, q) != 1)
        hodei_sleep_ms(50);
    char out[64] = "";
    harness_sh(&c->stack, out, sizeof out,
               "psql -qtA \"$HODEI_DATABASE_URL\" -c \"SELECT state FROM jobs WHERE id = '%s'\"",
               id);
    out[strcspn(out, "\n")] = '\0';
    hodei_strlcpy(state_out, out, state_len);
    return harness_sql_i64(&c->stack, q) == 1;
}

bool cluster_wait_sql(cluster *c, const char *sql, int64_t want, int64_t timeout_ms)
{
    int64_t until = hodei_mono_ms() + timeout_ms;
    while (hodei_mono_ms() < until) {
        if (harness_sql_i64(&c->stack, sql) == want)
            return true;
        hodei_sleep_ms(100);
    }
    return harness_sql_i64(&c->stack, sql) == want;
}
