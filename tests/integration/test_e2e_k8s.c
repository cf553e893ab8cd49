/* A job through the whole product on the Kubernetes provider, against the
 * fake API server (tests/clients/kube-apiserver.mjs), whose "kubelet" runs
 * each Pod as a real hodei-worker process with the Pod's environment (the
 * token read from the Secret): the job really runs. Checked: the Pod as
 * sent (labels, the job's image, restartPolicy Never, the agent's init
 * container, the token only through secretKeyRef, the Pod schema), the
 * Secret made and deleted, the status followed, and the Pod deleted after
 * the provider's idle TTL. No real cluster is involved. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "kube_fake.h"

#define T_WAIT_MS 90000
#define T_IMAGE "docker.io/library/alpine:3.20"

static void t_queue(cluster *c, char *id_out)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[] = {"-c", "echo hello from a pod; exit 3"};
    cmd.command = "sh";
    cmd.n_args = 2;
    cmd.args = args;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.provider = "kube";
    spec.image = T_IMAGE;
    req.spec = &spec;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    hodei_grpc_code code =
        edge_call(&c->edge, "QueueJob", &req.base, &hodei__v1__queue_job_response__descriptor,
                  &resp, msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "QueueJob: %s", msg);
    hodei_strlcpy(id_out, ((Hodei__V1__QueueJobResponse *)resp)->job_id, HODEI_ID_BUF);
    protobuf_c_message_free_unpacked(resp, NULL);
}

/* Waits until the fake holds n pods and m secrets. */
static void t_wait_objects(const kube_fake *kf, size_t pods, size_t secrets, const char *why)
{
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    for (;;) {
        json_t *st = kf_ctl(kf, "GET", "/state", NULL);
        size_t np = json_array_size(json_object_get(st, "pods"));
        size_t ns = json_array_size(json_object_get(st, "secrets"));
        json_decref(st);
        if (np == pods && ns == secrets)
            return;
        cr_assert(hodei_mono_ms() < deadline, "%s: %zu pods, %zu secrets", why, np, ns);
        hodei_sleep_ms(100);
    }
}

Test(e2e_k8s, a_job_runs_in_a_pod_and_the_pod_goes_after_the_idle_ttl, .timeout = 600)
{
    cluster c;
    kube_fake kf;
    char kubeconfig[400], worker_bin[700], sql[2048], job[HODEI_ID_BUF], state[32];
    cluster_start(&c, NULL);
    kf_setup(&kf);
    snprintf(worker_bin, sizeof worker_bin, "%s/hodei-worker", c.stack.bin);
    kf_start(&kf, worker_bin, false);
    snprintf(kubeconfig, sizeof kubeconfig, "%s/kubeconfig", kf.dir);
    kf_kubeconfig(&kf, kubeconfig, false, false);
    snprintf(sql, sizeof sql,
             "psql -q '%s' -c \"INSERT INTO providers (name, type, config, max_workers, "
             "idle_ttl_ms) VALUES ('kube', 'kubernetes', '{\\\"kubeconfig\\\": \\\"%s\\\", "
             "\\\"agent_image\\\": \\\"registry.local/hodei-agent:1\\\"}', 2, 3000)\"",
             c.stack.db_url, kubeconfig);
    cr_assert_eq(harness_sh(&c.stack, NULL, 0, "%s", sql), 0, "provider row");

    t_queue(&c, job);
    cr_assert(cluster_wait_job(&c, job, T_WAIT_MS, state, sizeof state), "job %s finished", job);
    cr_expect_str_eq(state, "FAILED", "the job ran (exit 3)");
    char q[256];
    snprintf(q, sizeof q, "SELECT exit_code FROM jobs WHERE id = '%s'", job);
    cr_expect_eq(harness_sql_i64(&c.stack, q), 3, "its exit code came back from the pod");

    /* the Pod and its Secret as they were sent */
    json_t *st = kf_ctl(&kf, "GET", "/state", NULL);
    json_t *pod = json_array_get(json_object_get(st, "pods"), 0);
    cr_assert(pod, "a pod exists while the worker idles");
    cr_expect_eq(json_array_size(json_object_get(st, "secrets")), 1, "its token secret exists");
    cr_expect_eq(json_array_size(json_object_get(st, "schemaFailures")), 0,
                 "every pod fits the Pod schema");
    json_t *meta = json_object_get(pod, "metadata");
    const char *label =
        json_string_value(json_object_get(json_object_get(meta, "labels"), "hodei.worker-id"));
    cr_assert(label && hodei_id_valid(label), "the pod is labelled with its worker id");
    char wid[HODEI_ID_BUF];
    hodei_strlcpy(wid, label, sizeof wid);
    snprintf(q, sizeof q, "SELECT count(*) FROM workers WHERE id = '%s' AND provider = 'kube'",
             wid);
    cr_expect_eq(harness_sql_i64(&c.stack, q), 1, "the label names the worker that ran the job");
    json_t *spec = json_object_get(pod, "spec");
    cr_expect_str_eq(json_string_value(json_object_get(spec, "restartPolicy")), "Never");
    json_t *ctr = json_array_get(json_object_get(spec, "containers"), 0);
    /* the job's image where the scheduler provisions per image (workers.image),
     * else the provider's default image */
    bool per_image = harness_sql_i64(&c.stack, "SELECT count(*) FROM information_schema.columns"
                                               " WHERE table_name = 'workers'"
                                               " AND column_name = 'image'") == 1;
    cr_expect_str_eq(json_string_value(json_object_get(ctr, "image")),
                     per_image ? T_IMAGE : "debian:bookworm-slim");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(spec, "initContainers"), 0), "image")),
                     "registry.local/hodei-agent:1");
    char *text = json_dumps(pod, 0);
    cr_expect(strstr(text, "\"secretKeyRef\""), "HODEI_OTP from the secret");
    free(text);
    json_decref(st);

    /* idle past the provider's TTL: drained, destroyed, pod and secret deleted */
    t_wait_objects(&kf, 0, 0, "pod and secret deleted after the idle TTL");
    snprintf(q, sizeof q, "SELECT count(*) FROM workers WHERE id = '%s' AND state = 'TERMINATED'",
             wid);
    cr_expect(cluster_wait_sql(&c, q, 1, T_WAIT_MS), "the worker is TERMINATED");
    kf_stop(&kf);
    cluster_stop(&c);
}
