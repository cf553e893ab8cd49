#include "fleet.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "hodei/time.h"
#include "hodei/util.h"

#define FL_START_WAIT_MS 60000
#define FL_STOP_WAIT_MS 20000

static const char *const fl_bin[FL_KINDS] = {
    [FL_EDGE] = "hodei-job-api",
    [FL_SCHEDULER] = "hodei-scheduler",
    [FL_PROVISIONER] = "hodei-provisioner",
    [FL_RELAY] = "hodei-outbox-relay",
    [FL_SUPERVISOR] = "hodei-supervisor",
};
static const char *const fl_kind_name[FL_KINDS] = {
    [FL_EDGE] = "edge",   [FL_SCHEDULER] = "scheduler",   [FL_PROVISIONER] = "provisioner",
    [FL_RELAY] = "relay", [FL_SUPERVISOR] = "supervisor",
};

static void fl_env_add(fleet_member *m, int *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fl_env_add(fleet_member *m, int *n, const char *fmt, ...)
{
    cr_assert_lt(*n, FLEET_ENV_MAX, "too many environment entries");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->env_text[*n], sizeof m->env_text[*n], fmt, ap);
    va_end(ap);
    m->env[*n] = m->env_text[*n];
    (*n)++;
    m->env[*n] = NULL;
}

/* The environment of member (k, i), kept for its restarts. */
static void fl_env(fleet *f, fleet_kind k, int i)
{
    fleet_member *m = &f->m[k][i];
    int n = 0;
    m->env[0] = NULL;
    fl_env_add(m, &n, "HODEI_INSTANCE_ID=%s-%d", fl_kind_name[k], i);
    /* A replica restarted while the rest of the fleet is busy may wait
     * seconds for PostgreSQL on a loaded machine; the default 5 s start-up
     * check then ends it (exit 1) before the test can see it take over. */
    fl_env_add(m, &n, "HODEI_DATABASE_CONNECT_TIMEOUT=30s");
    if (k != FL_EDGE)
        fl_env_add(m, &n, "HODEI_HEALTH_LISTEN=127.0.0.1:%d", m->health_port);
    if (k == FL_PROVISIONER) {
        fl_env_add(m, &n, "HODEI_PROVISIONER_EDGE_ADDRESS=%s", f->edges);
        fl_env_add(m, &n, "HODEI_PROVISIONER_STATE_DIR=%s", f->host_dir[i]);
        fl_env_add(m, &n, "HODEI_PROVISIONER_WORKER_BINARY=%s/hodei-worker", f->stack.bin);
    }
    for (int j = 0; f->extra_env && f->extra_env[j]; j++)
        fl_env_add(m, &n, "%s", f->extra_env[j]);
}

/* The first child of pid (nsenter's and unshare's only one), or 0. */
static pid_t fl_child_of(pid_t pid, int64_t wait_ms)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/%d/task/%d/children", (int)pid, (int)pid);
    int64_t until = hodei_mono_ms() + wait_ms;
    do {
        FILE *fp = fopen(path, "r");
        long child = 0;
        if (fp) {
            if (fgets(buf, sizeof buf, fp))
                child = strtol(buf, NULL, 10);
            fclose(fp);
        }
        if (child > 1)
            return (pid_t)child;
        hodei_sleep_ms(20);
    } while (hodei_mono_ms() < until);
    return 0;
}

/* A pid namespace (with its own /proc) whose init only waits: the
 * provisioner of host i runs in it, and its workers outlive it there. */
static void fl_host_start(fleet *f, int i)
{
    const char *argv[] = {"/usr/bin/unshare",
                          "--pid",
                          "--fork",
                          "--mount-proc",
                          "--kill-child",
                          "/bin/sh",
                          "-c",
                          "while :; do sleep 1; done",
                          NULL};
    harness_proc_start(&f->stack, &f->host[i], argv, NULL);
    f->host_init_pid[i] = fl_child_of(f->host[i].pid, 5000);
    cr_assert(f->host_init_pid[i] > 0, "unshare did not start its namespace; see %s",
              f->host[i].log_path);
}

void fleet_launch(fleet *f, fleet_kind k, int i)
{
    fleet_member *m = &f->m[k][i];
    if (k == FL_EDGE) {
        edge_launch(&f->stack, &m->edge, m->env);
        m->proc = m->edge.proc;
    } else if (k == FL_PROVISIONER && f->pidns) {
        char pid[24], bin[700];
        snprintf(pid, sizeof pid, "%d", (int)f->host_init_pid[i]);
        snprintf(bin, sizeof bin, "%s/hodei-provisioner", f->stack.bin);
        const char *argv[] = {"/usr/bin/nsenter", "-t", pid, "-p", "-m", "--", bin, NULL};
        harness_proc_start(&f->stack, &m->proc, argv, m->env);
    } else {
        const char *argv[] = {fl_bin[k], NULL};
        harness_proc_start(&f->stack, &m->proc, argv, m->env);
    }
    m->running = true;
    if (k != FL_EDGE) {
        char body[2048];
        cr_assert(harness_http_wait(m->health_port, "/healthz", 200, "", FL_START_WAIT_MS, body,
                                    sizeof body),
                  "%s %d did not start; see %s", fl_kind_name[k], i, m->proc.log_path);
    }
}

void fleet_start(fleet *f, const int count[FL_KINDS], bool pidns, const char *const *extra_env)
{
    memset(f, 0, sizeof *f);
    f->pidns = pidns;
    f->extra_env = extra_env;
    hodei_rpc_global_init();
    harness_stack_start(&f->stack);
    for (int k = 0; k < FL_KINDS; k++) {
        cr_assert(count[k] >= 0 && count[k] <= FLEET_MAX);
        f->count[k] = count[k];
    }
    size_t used = 0;
    for (int i = 0; i < count[FL_EDGE]; i++) {
        fleet_member *m = &f->m[FL_EDGE][i];
        m->edge.port = harness_free_port();
        m->edge.health_port = m->health_port = harness_free_port();
        snprintf(m->edge.target, sizeof m->edge.target, "127.0.0.1:%d", m->edge.port);
        used += (size_t)snprintf(f->edges + used, sizeof f->edges - used, "%s%s", i ? "," : "",
                                 m->edge.target);
        hodei_rpc_channel_opts o = {.target = m->edge.target, .api_key = f->stack.api_key};
        hodei_err err;
        cr_assert_eq(hodei_rpc_channel_create(&o, &m->edge.ch, &err), HODEI_OK, "%s", err.msg);
    }
    for (int i = 0; i < count[FL_PROVISIONER]; i++) {
        snprintf(f->host_dir[i], sizeof f->host_dir[i], "%s/host-%d", f->stack.state_dir, i);
        cr_assert(mkdir(f->host_dir[i], 0755) == 0, "mkdir %s", f->host_dir[i]);
        if (pidns)
            fl_host_start(f, i);
    }
    for (int k = 0; k < FL_KINDS; k++)
        for (int i = 0; i < count[k]; i++) {
            if (k != FL_EDGE)
                f->m[k][i].health_port = harness_free_port();
            fl_env(f, (fleet_kind)k, i);
            fleet_launch(f, (fleet_kind)k, i);
        }
}

void fleet_kill(fleet *f, fleet_kind k, int i)
{
    fleet_member *m = &f->m[k][i];
    if (!m->running)
        return;
    if (k == FL_EDGE) {
        harness_proc_stop(&m->edge.proc, SIGKILL, 5000);
        m->edge.proc.pid = 0;
    } else {
        harness_proc_stop(&m->proc, SIGKILL, 5000); /* nsenter's group holds the daemon too */
    }
    m->proc.pid = 0;
    m->running = false;
}

void fleet_term(fleet *f, fleet_kind k, int i)
{
    fleet_member *m = &f->m[k][i];
    if (!m->running)
        return;
    harness_proc *p = k == FL_EDGE ? &m->edge.proc : &m->proc;
    int st;
    if (k == FL_PROVISIONER && f->pidns) {
        pid_t child = fl_child_of(p->pid, 1000); /* nsenter passes its child's exit on */
        if (child > 0)
            kill(child, SIGTERM);
        st = harness_proc_wait(p, FL_STOP_WAIT_MS);
        if (st == -1)
            harness_proc_stop(p, SIGKILL, 1000);
    } else {
        st = harness_proc_stop(p, SIGTERM, FL_STOP_WAIT_MS);
    }
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char tail[HARNESS_LOG_TAIL];
        harness_log_tail(p->log_path, tail, sizeof tail);
        cr_expect_fail("%s %d exited uncleanly (0x%x); the end of %s:\n%s", fl_kind_name[k], i, st,
                       p->log_path, tail);
    }
    p->pid = 0;
    m->running = false;
}

/* Without pid namespaces the workers outlive everything: end the ones the
 * pid files of host i name, with their sessions. */
static void fl_workers_kill(const fleet *f, int i)
{
    char dir[700];
    snprintf(dir, sizeof dir, "%s/workers", f->host_dir[i]);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n < 5 || strcmp(e->d_name + n - 4, ".pid") != 0)
            continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "r");
        long pid = 0;
        if (fp && fscanf(fp, "%ld", &pid) != 1)
            pid = 0;
        if (fp)
            fclose(fp);
        if (pid > 1) {
            kill((pid_t)-pid, SIGKILL);
            kill((pid_t)pid, SIGKILL);
        }
    }
    if (d)
        closedir(d);
}

void fleet_stop(fleet *f)
{
    static const fleet_kind order[] = {FL_SUPERVISOR, FL_SCHEDULER, FL_PROVISIONER, FL_RELAY,
                                       FL_EDGE};
    for (size_t o = 0; o < sizeof order / sizeof order[0]; o++)
        for (int i = 0; i < f->count[order[o]]; i++)
            fleet_term(f, order[o], i);
    for (int i = 0; i < f->count[FL_EDGE]; i++) {
        hodei_rpc_channel_destroy(f->m[FL_EDGE][i].edge.ch);
        f->m[FL_EDGE][i].edge.ch = NULL;
    }
    for (int i = 0; i < f->count[FL_PROVISIONER]; i++) {
        if (f->pidns)
            harness_proc_stop(&f->host[i], SIGTERM, 5000); /* the namespace and its workers */
        else
            fl_workers_kill(f, i);
    }
    harness_stack_stop(&f->stack);
    hodei_rpc_global_shutdown();
}

double fleet_metric(fleet *f, fleet_kind k, int i, const char *name)
{
    double v = -1;
    if (!f->m[k][i].running || !harness_metric_try(f->m[k][i].health_port, name, &v))
        return -1;
    return v;
}

int fleet_active(fleet *f, fleet_kind k, const char *name)
{
    for (int i = 0; i < f->count[k]; i++)
        if (fleet_metric(f, k, i, name) == 1)
            return i;
    return -1;
}

void fleet_provider(fleet *f, int max_workers, int64_t idle_ttl_ms, int warm_min)
{
    char out[256];
    int rc = harness_sh(&f->stack, out, sizeof out,
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

int64_t fleet_sql(fleet *f, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return harness_sql_i64(&f->stack, q);
}

bool fleet_wait_sql(fleet *f, int64_t want, int64_t timeout_ms, const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    int64_t until = hodei_mono_ms() + timeout_ms;
    while (hodei_mono_ms() < until) {
        if (harness_sql_i64(&f->stack, q) == want)
            return true;
        hodei_sleep_ms(100);
    }
    return harness_sql_i64(&f->stack, q) == want;
}

static bool fl_transient(hodei_grpc_code code)
{
    return code == HODEI_GRPC_UNAVAILABLE || code == HODEI_GRPC_DEADLINE_EXCEEDED ||
           code == HODEI_GRPC_UNKNOWN || code == HODEI_GRPC_INTERNAL ||
           code == HODEI_GRPC_CANCELLED;
}

static hodei_rpc_channel *fl_channel(const fleet *f, int i)
{
    hodei_rpc_channel_opts o = {.target = f->m[FL_EDGE][i].edge.target,
                                .api_key = f->stack.api_key};
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK, "%s", err.msg);
    return ch;
}

void fleet_client_init(fleet *f, fleet_client *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < f->count[FL_EDGE]; i++)
        c->ch[i] = fl_channel(f, i);
}

void fleet_client_fini(fleet *f, fleet_client *c)
{
    for (int i = 0; i < f->count[FL_EDGE]; i++)
        hodei_rpc_channel_destroy(c->ch[i]);
    memset(c, 0, sizeof *c);
}

bool fleet_queue(fleet *f, fleet_client *c, int at, const char *script, int max_attempts,
                 const char *key, char id_out[37], int64_t timeout_ms)
{
    edge_job j;
    edge_job_shell(&j, script);
    j.spec.max_attempts = max_attempts;
    j.req.idempotency_key = (char *)key;
    int64_t until = hodei_mono_ms() + timeout_ms;
    int n = f->count[FL_EDGE];
    for (int tries = 0; hodei_mono_ms() < until; tries++) {
        int i = (at + tries) % n;
        hodei_rpc_result res;
        hodei_err err;
        ProtobufCMessage *out = NULL;
        hodei_status st =
            hodei_rpc_unary(c->ch[i], "/hodei.v1.JobExecutionService/QueueJob", &j.req.base,
                            &hodei__v1__queue_job_response__descriptor, 5000, &out, &res, &err);
        if (st == HODEI_OK && res.code == HODEI_GRPC_OK && out) {
            hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)out)->job_id, 37);
            protobuf_c_message_free_unpacked(out, NULL);
            return true;
        }
        if (out)
            protobuf_c_message_free_unpacked(out, NULL);
        cr_assert(st != HODEI_OK || fl_transient(res.code), "QueueJob refused: %s: %s",
                  hodei_grpc_code_str(res.code), res.message);
        hodei_rpc_channel_destroy(c->ch[i]); /* a fresh one: no cached failure */
        c->ch[i] = fl_channel(f, i);
        if (tries % n == n - 1)
            hodei_sleep_ms(100);
    }
    return false;
}
