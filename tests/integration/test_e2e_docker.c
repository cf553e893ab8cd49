/* The Docker provider end to end: every daemon a real process
 * (tests/integration/cluster.c), a private dockerd per test
 * (tests/harness/private-dockerd: its own data root, exec root and socket,
 * vfs storage; never the machine's engine), a provider row of type docker,
 * and images without a registry (busybox imported from a tar). Jobs with an
 * image go to the docker provider (scheduler.default_image_provider), jobs
 * without one to the process provider. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "dockerd.h"
#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define BB "bb:1" /* an image holding only busybox */
#define WAIT_MS 120000
#define OUT_MAX 65536

static cluster cl;
static harness_dockerd dk;

static const char *const fast_env[] = {
    "HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=3s",
    "HODEI_SUPERVISOR_TICK_INTERVAL=200ms",
    "HODEI_PROVISIONER_RECONCILE_INTERVAL=1s",
    "HODEI_WORKER_RECONNECT_MAX=1s",
    NULL,
};

static int64_t sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sqlf(const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return harness_sql_i64(&cl.stack, q);
}

static void sql_text(const char *query, char *out, size_t out_len)
{
    harness_sh(&cl.stack, out, out_len, "psql -qtA \"$HODEI_DATABASE_URL\" -c \"%s\"", query);
    out[strcspn(out, "\n")] = '\0';
}

/* A private engine (or a skip saying why none can run here), the busybox
 * image, every daemon, and the docker provider on that engine. */
static void up(int max_workers, int64_t idle_ttl_ms)
{
    char why[1024];
    if (!harness_dockerd_start(&dk, getenv("HODEI_ROOT"), why, sizeof why))
        cr_skip_test("no Docker engine can run on this machine: %s", why);
    harness_dockerd_busybox(&dk, BB);
    cluster_start(&cl, fast_env);
    char out[512];
    int rc = harness_sh(&cl.stack, out, sizeof out,
                        "psql -qtA \"$HODEI_DATABASE_URL\" -c \"INSERT INTO providers (name, type,"
                        " config, max_workers, idle_ttl_ms) VALUES ('docker', 'docker',"
                        " '{\\\"host\\\": \\\"%s\\\", \\\"worker_image\\\": \\\"" BB "\\\","
                        " \\\"network\\\": \\\"host\\\"}', %d, %lld)\"",
                        dk.host, max_workers, (long long)idle_ttl_ms);
    cr_assert_eq(rc, 0, "provider row: %s", out);
}

static void down(void)
{
    cluster_stop(&cl);
    harness_dockerd_stop(&dk);
}

/* Containers of the docker provider (any state). */
static int containers(const char *extra_filter)
{
    char out[OUT_MAX];
    int rc = harness_docker(&dk, out, sizeof out,
                            "ps -aq --filter label=hodei.provider=docker %s | wc -l",
                            extra_filter ? extra_filter : "");
    cr_assert_eq(rc, 0, "docker ps: %s", out);
    return (int)strtol(out, NULL, 10);
}

/* ------------------------------------------------------------ jobs */

typedef struct {
    const char *image;
    const char *provider;
    const char *script;
    int max_attempts;
    int64_t memory_bytes;
    int gpus;
} job_req;

static void queue(const job_req *j, char id_out[HODEI_ID_BUF])
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    Hodei__V1__ResourceRequirements res = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    char *args[] = {"-c", (char *)j->script};
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.image = (char *)(j->image ? j->image : "");
    spec.provider = (char *)(j->provider ? j->provider : "");
    spec.max_attempts = j->max_attempts;
    res.memory_bytes = j->memory_bytes;
    res.gpu_count = j->gpus;
    spec.resources = &res;
    req.spec = &spec;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    hodei_grpc_code code =
        edge_call(&cl.edge, "QueueJob", &req.base, &hodei__v1__queue_job_response__descriptor,
                  &resp, msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "QueueJob: %s", msg);
    hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)resp)->job_id, HODEI_ID_BUF);
    protobuf_c_message_free_unpacked(resp, NULL);
}

/* Waits for the job's end; asserts its state, returns its error text. */
static void expect_end(const char *id, const char *state, char *error, size_t error_len)
{
    char got[32], q[256];
    cr_assert(cluster_wait_job(&cl, id, WAIT_MS, got, sizeof got), "job %s did not end", id);
    snprintf(q, sizeof q, "SELECT coalesce(error, '') FROM jobs WHERE id = '%s'", id);
    sql_text(q, error, error_len);
    cr_assert_str_eq(got, state, "job %s: %s (%s)", id, got, error);
}

/* ------------------------------------------------------------ the CLI */

static int hodei_cli(char *out, size_t out_len, const char *args)
{
    return harness_sh(&cl.stack, out, out_len, "%s/hodei --server %s %s 2>&1", cl.stack.bin,
                      cl.edge.target, args);
}

TestSuite(e2e_docker, .timeout = 600);

Test(e2e_docker, busybox_job_runs_in_its_image_then_its_container_goes_after_the_idle_ttl)
{
    /* No idle TTL until the test has looked at the container: on a loaded
     * machine a short one removed it before the inspection. */
    up(4, 3600000);
    static char out[OUT_MAX];
    int rc =
        hodei_cli(out, sizeof out,
                  "run --image " BB " -- sh -c 'cat /etc/os-release; echo hi from $(hostname)'");
    cr_assert_eq(rc, 0, "hodei run exited %d:\n%s", rc, out);
    cr_assert(strstr(out, "ID=busybox"), "the job did not run in the image:\n%s", out);
    cr_assert(strstr(out, "hi from"), "%s", out);

    /* its worker: a container of that image, labelled, limits and token kept off argv */
    char worker[64], q[256];
    sql_text("SELECT id FROM workers WHERE provider = 'docker' ORDER BY created_at LIMIT 1", worker,
             sizeof worker);
    snprintf(q, sizeof q, "SELECT count(*) FROM workers WHERE id = '%s' AND image = '" BB "'",
             worker);
    cr_assert_eq(sqlf("%s", q), 1, "worker row %s carries the image", worker);
    rc = harness_docker(&dk, out, sizeof out,
                        "inspect -f '{{.Config.Image}} {{index .Config.Labels \"hodei.worker-id\"}}"
                        " {{json .Args}} {{json .Config.Cmd}}' hodei-%s",
                        worker);
    cr_assert_eq(rc, 0, "inspect: %s", out);
    cr_assert(strstr(out, BB " ") && strstr(out, worker), "%s", out);
    cr_assert(
        strstr(out, "[\"--library-path\",\"/opt/hodei/lib\",\"/opt/hodei/bin/hodei-worker\"]") &&
            (strstr(out, " null") || strstr(out, " []")),
        "the agent's command line is the bundle's and nothing else: %s", out);

    /* idle TTL 2 s from now on (the supervisor reads it every tick):
     * drained, destroyed, no container left */
    cr_assert_eq(sqlf("UPDATE providers SET idle_ttl_ms = 2000 WHERE name = 'docker' RETURNING 1"),
                 1);
    snprintf(q, sizeof q, "SELECT count(*) FROM workers WHERE id = '%s' AND state = 'TERMINATED'",
             worker);
    cr_assert(cluster_wait_sql(&cl, q, 1, 60000), "worker %s not TERMINATED after its idle TTL",
              worker);
    int64_t until = hodei_mono_ms() + 30000;
    while (containers(NULL) != 0 && hodei_mono_ms() < until)
        hodei_sleep_ms(200);
    cr_assert_eq(containers(NULL), 0, "a worker container outlived its idle TTL");
    down();
}

Test(e2e_docker, a_missing_image_or_gpus_fail_the_job_saying_why_and_leave_nothing)
{
    up(4, 60000);
    char id[HODEI_ID_BUF], err[1024];
    job_req missing = {.image = "hodei-test/no-such-image:1", .script = "true", .max_attempts = 3};
    queue(&missing, id);
    expect_end(id, "FAILED", err, sizeof err);
    cr_assert(strstr(err, "hodei-test/no-such-image:1"), "the error names the image: %s", err);

    job_req gpu = {.image = BB, .script = "true", .gpus = 1};
    queue(&gpu, id);
    expect_end(id, "FAILED", err, sizeof err);
    cr_assert(strstr(err, "GPU"), "the error says GPUs: %s", err);

    job_req gpu_process = {.script = "true", .gpus = 1};
    queue(&gpu_process, id);
    expect_end(id, "FAILED", err, sizeof err);
    cr_assert(strstr(err, "process") && strstr(err, "GPU"), "%s", err);

    job_req image_process = {.image = BB, .provider = "process", .script = "true"};
    queue(&image_process, id);
    expect_end(id, "FAILED", err, sizeof err);
    cr_assert(strstr(err, "cannot run image " BB), "%s", err);

    /* nothing left behind: no live worker row of docker, no container */
    cr_assert(cluster_wait_sql(&cl,
                               "SELECT count(*) FROM workers WHERE provider = 'docker' AND state"
                               " IN ('CREATING','CONNECTING')",
                               0, 30000));
    cr_assert_eq(sqlf("SELECT count(*) FROM sagas WHERE state IN ('RUNNING','COMPENSATING')"), 0);
    cr_assert_eq(containers("--filter status=created --filter status=exited"), 0,
                 "a failed worker's container was left");
    down();
}

static const char *const oom_script = "echo before; dd if=/dev/zero of=/dev/null bs=256M count=1";

Test(e2e_docker, a_job_over_its_memory_limit_fails_out_of_memory_in_docker)
{
    up(4, 60000);
    char id[HODEI_ID_BUF], err[1024];
    job_req j = {.image = BB, .script = oom_script, .memory_bytes = 64 << 20};
    queue(&j, id);
    expect_end(id, "FAILED", err, sizeof err);
    cr_assert(strstr(err, "out of memory"), "%s", err);
    cr_assert_eq(sqlf("SELECT exit_code FROM jobs WHERE id = '%s'", id), 137);
    /* the container was sized for the job: 64 MiB + the agent's share */
    char worker[64], out[512], q[256];
    snprintf(q, sizeof q, "SELECT worker_id FROM jobs WHERE id = '%s'", id);
    sql_text(q, worker, sizeof worker);
    cr_assert_eq(harness_docker(&dk, out, sizeof out,
                                "inspect -f '{{.HostConfig.Memory}}' hodei-%s", worker),
                 0, "%s", out);
    cr_assert_eq(strtoll(out, NULL, 10), (64 << 20) + (32 << 20), "container memory: %s", out);
    /* the worker survived its job and takes the next one of that size */
    j.script = "echo fine";
    queue(&j, id);
    expect_end(id, "SUCCEEDED", err, sizeof err);
    down();
}

Test(e2e_docker, a_job_over_its_memory_limit_fails_out_of_memory_with_the_process_provider)
{
    char id[HODEI_ID_BUF], err[1024];
    cluster_start(&cl, fast_env);
    job_req j = {.script = oom_script, .memory_bytes = 64 << 20};
    queue(&j, id);
    char got[32];
    cr_assert(cluster_wait_job(&cl, id, WAIT_MS, got, sizeof got));
    sql_text("SELECT coalesce(error, '') FROM jobs ORDER BY created_at DESC LIMIT 1", err,
             sizeof err);
    cr_assert_str_eq(got, "FAILED", "%s", err);
    cr_assert(strstr(err, "out of memory") && strstr(err, "64.0 MiB"), "%s", err);
    cluster_stop(&cl);
}

/* ------------------------------------------------------------ failures */

static void worker_of(const char *job, char *out, size_t len)
{
    char q[256];
    snprintf(q, sizeof q, "SELECT coalesce(worker_id::text, '') FROM jobs WHERE id = '%s'", job);
    sql_text(q, out, len);
}

Test(e2e_docker, a_killed_container_requeues_its_job_and_a_restarted_provisioner_adopts_its_own)
{
    up(4, 120000);
    char id[HODEI_ID_BUF], err[1024], first[64], second[64], q[256], out[1024];
    job_req j = {.image = BB, .script = "echo attempt; sleep 5; echo done", .max_attempts = 2};
    queue(&j, id);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'RUNNING'", id);
    cr_assert(cluster_wait_sql(&cl, q, 1, WAIT_MS), "job never ran");
    worker_of(id, first, sizeof first);
    cr_assert_eq(harness_docker(&dk, out, sizeof out, "kill hodei-%s", first), 0, "%s", out);
    expect_end(id, "SUCCEEDED", err, sizeof err);
    worker_of(id, second, sizeof second);
    cr_assert_neq(strcmp(first, second), 0, "attempt 2 ran on another worker");
    cr_assert_eq(sqlf("SELECT attempt FROM jobs WHERE id = '%s'", id), 2);

    /* the provisioner is SIGKILLed while it provisions a worker for a new
     * image, and again while workers are idle; each restart finds its
     * containers by label: none orphaned, none started twice */
    harness_docker(&dk, out, sizeof out, "tag " BB " bb:2");
    job_req j2 = {.image = "bb:2", .script = "echo two"};
    queue(&j2, id);
    cr_assert(cluster_wait_sql(&cl,
                               "SELECT count(*) FROM workers WHERE image = 'bb:2' AND state IN"
                               " ('CREATING','CONNECTING','READY','BUSY')",
                               1, WAIT_MS));
    cluster_kill_restart(&cl, CL_PROVISIONER);
    expect_end(id, "SUCCEEDED", err, sizeof err);
    cluster_kill_restart(&cl, CL_PROVISIONER);
    hodei_sleep_ms(3000); /* a few reconcile rounds (1 s) */
    int64_t live = sqlf("SELECT count(*) FROM workers WHERE provider = 'docker' AND state IN"
                        " ('CONNECTING','READY','BUSY','DRAINING')");
    cr_assert_eq(containers("--filter status=running"), live,
                 "running containers = live worker rows (%lld)", (long long)live);
    cr_assert_eq(
        sqlf("SELECT count(*) FROM workers WHERE image = 'bb:2' AND state <> 'TERMINATED'"), 1,
        "one worker for bb:2");
    cr_assert_eq(containers("--filter label=hodei.image=bb:2"), 1, "one container for bb:2");
    snprintf(q, sizeof q,
             "SELECT count(*) FROM provider_health WHERE provider = 'docker' AND healthy AND"
             " live_workers = %lld AND orphans_destroyed = 0",
             (long long)live);
    cr_assert(cluster_wait_sql(&cl, q, 1, 10000), "provider_health after the restart");
    /* the idle workers are reused: a job of each image starts no container */
    int before = containers(NULL);
    queue(&j2, id);
    expect_end(id, "SUCCEEDED", err, sizeof err);
    cr_assert_eq(containers(NULL), before, "a warm worker of the image was reused");
    down();
}

Test(e2e_docker, a_warm_pool_of_an_image_stays_ready_and_takes_that_images_jobs)
{
    up(4, 600000);
    cr_assert_eq(harness_sh(&cl.stack, NULL, 0,
                            "psql -qtA \"$HODEI_DATABASE_URL\" -c \"UPDATE providers SET"
                            " warm_pool_min = 1, warm_pool_max = 1, config = config ||"
                            " '{\\\"warm_image\\\": \\\"" BB "\\\"}' WHERE name = 'docker'\""),
                 0);
    cr_assert(cluster_wait_sql(&cl,
                               "SELECT count(*) FROM workers WHERE provider = 'docker' AND image ="
                               " '" BB "' AND state = 'READY'",
                               1, WAIT_MS),
              "no warm worker of " BB);
    char warm[64], id[HODEI_ID_BUF], err[1024];
    sql_text("SELECT id FROM workers WHERE state = 'READY' AND image = '" BB "'", warm,
             sizeof warm);
    job_req j = {.image = BB, .script = "echo warm"};
    queue(&j, id);
    expect_end(id, "SUCCEEDED", err, sizeof err);
    char ran_on[64];
    worker_of(id, ran_on, sizeof ran_on);
    cr_assert_str_eq(ran_on, warm, "the job ran on the warm worker of its image");
    cr_assert_eq(containers(NULL), 1, "no other container was started");
    down();
}
