/* The Kubernetes provider driver against a fake API server
 * (tests/clients/kube-apiserver.mjs: the real API's paths, Status objects,
 * watch framing and resourceVersions, every Pod checked against the
 * io.k8s.api.core.v1.Pod schema). No Kubernetes API server can run on the
 * test machines; what a real cluster adds (scheduling, image pulls, the
 * kubelet) is not exercised here.
 *
 * The fake plays the kubelet with a stand-in worker (a shell script that
 * records its environment and sleeps), so the token's way through the
 * Secret (env valueFrom.secretKeyRef) is checked for real. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "hodei/time.h"
#include "k8s_int.h"
#include "kube_fake.h"
#include "prov_http.h"
#include "provider.h"

#define T_WAIT_MS 20000
#define T_OTP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define T_WORKER "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

static kube_fake g_kf;
#define g_dir g_kf.dir
#define g_port g_kf.port
#define T_TOKEN KF_TOKEN
#define T_NS KF_NS

static void t_setup_dir(void)
{
    kf_setup(&g_kf);
}

static void t_teardown(void)
{
    kf_stop(&g_kf);
}

static void t_fake_start(bool client_certs)
{
    kf_start(&g_kf, "", client_certs);
}

static json_t *t_ctl(const char *method, const char *path, const char *body)
{
    return kf_ctl(&g_kf, method, path, body);
}

#define t_find kf_find
#define t_write kf_write
#define t_sh kf_sh
#define t_kubeconfig(p, c, i) kf_kubeconfig(&g_kf, p, c, i)

static prov_driver *t_driver(const char *config_json)
{
    prov_driver *drv = NULL;
    hodei_err err = {0};
    prov_driver_params p = {.name = "kube",
                            .config_json = config_json,
                            .state_dir = g_dir,
                            .worker_binary = "",
                            .destroy_grace_ms = 2000};
    hodei_status st = prov_kubernetes_ops.create(&p, &drv, &err);
    cr_assert_eq(st, HODEI_OK, "create: %s", err.msg);
    return drv;
}

static prov_driver *t_driver_kubeconfig(void)
{
    char kc[400], cfg[1024];
    snprintf(kc, sizeof kc, "%s/kubeconfig", g_dir);
    t_kubeconfig(kc, false, false);
    snprintf(cfg, sizeof cfg,
             "{\"kubeconfig\":\"%s\",\"agent_image\":\"registry.local/hodei-agent:1\","
             "\"node_selector\":\"{\\\"pool\\\":\\\"batch\\\"}\","
             "\"tolerations\":\"[{\\\"key\\\":\\\"dedicated\\\",\\\"operator\\\":\\\"Equal\\\","
             "\\\"value\\\":\\\"hodei\\\",\\\"effect\\\":\\\"NoSchedule\\\"}]\"}",
             kc);
    return t_driver(cfg);
}

/* ------------------------------------------------------------ the fake's state */

static size_t t_count_requests(json_t *state, const char *method, const char *path_prefix,
                               const char *query_part)
{
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(state, "requests"), i, r)
    {
        const char *m = json_string_value(json_object_get(r, "method"));
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *q = json_string_value(json_object_get(r, "query"));
        if (strcmp(m, method) == 0 && strncmp(p, path_prefix, strlen(path_prefix)) == 0 &&
            (!query_part || strstr(q, query_part)))
            n++;
    }
    return n;
}

/* LISTs of the pods (not watches, not single pods). */
static size_t t_count_lists(json_t *state)
{
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(json_object_get(state, "requests"), i, r)
    {
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *q = json_string_value(json_object_get(r, "query"));
        if (strcmp(json_string_value(json_object_get(r, "method")), "GET") == 0 &&
            strcmp(p, "/api/v1/namespaces/" T_NS "/pods") == 0 && !strstr(q, "watch=1"))
            n++;
    }
    return n;
}

static void t_inject(const char *method, const char *path, int code, int times, int retry_after,
                     const char *reason, const char *message)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"method\":\"%s\",\"path\":\"%s\",\"code\":%d,\"times\":%d,%s%d%s"
             "\"reason\":\"%s\",\"message\":\"%s\"}",
             method, path, code, times,
             retry_after >= 0 ? "\"retryAfter\":" : "\"_\":", retry_after, ",", reason, message);
    json_decref(t_ctl("POST", "/inject", body));
}

static prov_worker_env t_env(const char *worker_id)
{
    prov_worker_env env = {
        .worker_id = worker_id,
        .server = "edge.hodei.svc:50051",
        .otp = T_OTP,
        .log_level = "info",
        .spec = {.image = "python:3.12-slim",
                 .cpu_millis = 1500,
                 .memory_bytes = 536870912,
                 .storage_bytes = 1073741824,
                 .gpu_count = 1,
                 .architecture = "amd64",
                 .labels_json = "{\"disktype\":\"ssd\","
                                "\"toleration:nvidia.com/gpu\":\":NoSchedule\"}"},
    };
    return env;
}

static void t_wait_status(prov_driver *drv, const char *id, prov_worker_status want)
{
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    for (;;) {
        prov_worker_status ws;
        hodei_err err = {0};
        cr_assert_eq(drv->ops->get_status(drv, id, "", &ws, NULL, &err), HODEI_OK, "status: %s",
                     err.msg);
        if (ws == want)
            return;
        cr_assert(hodei_mono_ms() < deadline, "worker %s never became %s", id,
                  want == PROV_WORKER_RUNNING ? "running" : "gone");
        hodei_sleep_ms(50);
    }
}

/* The fake's kubelet marks a new pod Running ~50 ms after it is made; a
 * phase the test sets before that would be overwritten. */
static void t_wait_pod_started(const char *name)
{
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    for (;;) {
        json_t *state = t_ctl("GET", "/state", NULL);
        json_t *pod = t_find(state, "pods", name);
        const char *phase =
            json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
        bool started = phase && strcmp(phase, "Running") == 0;
        json_decref(state);
        if (started)
            return;
        cr_assert(hodei_mono_ms() < deadline, "the fake never started pod %s", name);
        hodei_sleep_ms(20);
    }
}

static bool t_file_has(const char *path, const char *needle)
{
    char buf[16384];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

/* ------------------------------------------------------------ tests */

TestSuite(k8s, .init = t_setup_dir, .fini = t_teardown, .timeout = 240);

Test(k8s, pod_and_secret_as_specified_token_only_in_the_secret)
{
    t_fake_start(false);
    prov_driver *drv = t_driver_kubeconfig();
    prov_worker_env env = t_env(T_WORKER);
    char ref[PROV_REF_MAX] = "";
    hodei_err err = {0};
    cr_assert_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK, "create: %s", err.msg);
    cr_expect_str_eq(ref, T_NS "/hodei-worker-" T_WORKER);

    json_t *state = t_ctl("GET", "/state", NULL);
    json_t *pod = t_find(state, "pods", "hodei-worker-" T_WORKER);
    json_t *secret = t_find(state, "secrets", "hodei-worker-" T_WORKER);
    cr_assert(pod && secret, "pod and secret exist");
    cr_expect_eq(json_array_size(json_object_get(state, "schemaFailures")), 0,
                 "every pod fits the Pod schema: %s",
                 json_dumps(json_object_get(state, "schemaFailures"), 0));
    /* labels, restart policy, placement */
    json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
    cr_expect_str_eq(json_string_value(json_object_get(labels, "hodei.worker-id")), T_WORKER);
    cr_expect_str_eq(json_string_value(json_object_get(labels, "hodei.provider")), "kube");
    json_t *spec = json_object_get(pod, "spec");
    cr_expect_str_eq(json_string_value(json_object_get(spec, "restartPolicy")), "Never");
    json_t *sel = json_object_get(spec, "nodeSelector");
    cr_expect_str_eq(json_string_value(json_object_get(sel, "disktype")), "ssd");
    cr_expect_str_eq(json_string_value(json_object_get(sel, "pool")), "batch");
    char *tol = json_dumps(json_object_get(spec, "tolerations"), JSON_SORT_KEYS | JSON_COMPACT);
    cr_expect(strstr(tol, "{\"effect\":\"NoSchedule\",\"key\":\"dedicated\",\"operator\":"
                          "\"Equal\",\"value\":\"hodei\"}") &&
                  strstr(tol, "{\"effect\":\"NoSchedule\",\"key\":\"nvidia.com/gpu\","
                              "\"operator\":\"Exists\"}"),
              "tolerations: %s", tol);
    free(tol);
    /* the job's image, the agent from the init container through an emptyDir */
    json_t *c = json_array_get(json_object_get(spec, "containers"), 0);
    json_t *init = json_array_get(json_object_get(spec, "initContainers"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(c, "image")), "python:3.12-slim");
    cr_expect_str_eq(json_string_value(json_object_get(init, "image")),
                     "registry.local/hodei-agent:1");
    cr_expect_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(spec, "volumes"), 0), "name")),
                     "hodei-agent");
    cr_expect(json_object_get(json_array_get(json_object_get(spec, "volumes"), 0), "emptyDir"));
    /* resources */
    json_t *lim = json_object_get(json_object_get(c, "resources"), "limits");
    json_t *req = json_object_get(json_object_get(c, "resources"), "requests");
    cr_expect_str_eq(json_string_value(json_object_get(lim, "cpu")), "1500m");
    cr_expect_str_eq(json_string_value(json_object_get(lim, "memory")), "536870912");
    cr_expect_str_eq(json_string_value(json_object_get(lim, "ephemeral-storage")), "1073741824");
    cr_expect_str_eq(json_string_value(json_object_get(lim, "nvidia.com/gpu")), "1");
    cr_expect_str_eq(json_string_value(json_object_get(req, "cpu")), "1500m");
    /* the token: only in the Secret, reached through secretKeyRef */
    char *pod_text = json_dumps(pod, 0);
    cr_expect_null(strstr(pod_text, T_OTP), "the token is not in the pod spec");
    cr_expect(strstr(pod_text, "\"secretKeyRef\""), "HODEI_OTP comes from the secret");
    free(pod_text);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(secret, "data"), "otp")),
                     "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1"
                     "Njc4OWFiY2RlZg==");
    json_t *owner =
        json_array_get(json_object_get(json_object_get(secret, "metadata"), "ownerReferences"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(owner, "uid")),
                     json_string_value(json_object_get(json_object_get(pod, "metadata"), "uid")),
                     "the secret is owned by the pod (garbage-collected with it)");
    json_decref(state);

    /* the "kubelet" started the worker with the token from the Secret */
    char envfile[400];
    snprintf(envfile, sizeof envfile, "%s/env-" T_WORKER, g_dir);
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    while (!t_file_has(envfile, "HODEI_OTP=" T_OTP))
        cr_assert(hodei_mono_ms() < deadline, "the worker got its token from the secret");
    cr_expect(t_file_has(envfile, "HODEI_SERVER=edge.hodei.svc:50051"));
    t_wait_status(drv, T_WORKER, PROV_WORKER_RUNNING);
    prov_worker_ref list[8];
    size_t n = 0;
    cr_assert_eq(drv->ops->list_workers(drv, list, 8, &n, &err), HODEI_OK, "list: %s", err.msg);
    cr_expect_eq(n, 1);
    cr_expect_str_eq(list[0].worker_id, T_WORKER);

    /* destroy: pod and secret deleted; idempotent */
    cr_assert_eq(drv->ops->destroy_worker(drv, T_WORKER, ref, &err), HODEI_OK, "%s", err.msg);
    t_wait_status(drv, T_WORKER, PROV_WORKER_GONE);
    deadline = hodei_mono_ms() + T_WAIT_MS;
    for (;;) {
        state = t_ctl("GET", "/state", NULL);
        bool gone = !t_find(state, "pods", "hodei-worker-" T_WORKER) &&
                    !t_find(state, "secrets", "hodei-worker-" T_WORKER);
        json_decref(state);
        if (gone)
            break;
        cr_assert(hodei_mono_ms() < deadline, "pod and secret deleted");
        hodei_sleep_ms(50);
    }
    cr_expect_eq(drv->ops->destroy_worker(drv, T_WORKER, ref, &err), HODEI_OK,
                 "a second destroy is fine: %s", err.msg);
    char msg[PROV_HEALTH_MSG_MAX];
    cr_expect(drv->ops->health(drv, msg), "health: %s", msg);
    drv->ops->destroy(drv);

    /* the fake's schema check is live: a Pod with a wrong type or an
     * unknown field is refused and recorded */
    k8s_conn conn = {.server = NULL};
    char base[64], cafile[400];
    snprintf(base, sizeof base, "https://127.0.0.1:%d", g_port);
    snprintf(cafile, sizeof cafile, "%s/ca.crt", g_dir);
    conn.server = base;
    conn.ca_file = cafile;
    conn.token = T_TOKEN;
    k8s_api api = {.conn = &conn, .timeout_ms = 10000};
    json_t *bad = json_loads("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                             "\"bad\"},\"spec\":{\"restartPolicy\":\"Never\",\"containers\":[{"
                             "\"name\":\"w\",\"image\":\"x\",\"resources\":{\"limits\":{"
                             "\"cpu\":\"lots\"}}}]}}",
                             0, NULL);
    cr_expect_eq(k8s_call(&api, "POST", "/api/v1/namespaces/" T_NS "/pods", bad, NULL, NULL, &err),
                 HODEI_ERR_INVALID, "a bad quantity is refused");
    json_decref(bad);
    bad = json_loads("{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":"
                     "\"bad2\"},\"spec\":{\"containers\":[{\"name\":\"w\",\"image\":\"x\","
                     "\"envFrm\":[]}]}}",
                     0, NULL);
    cr_expect_eq(k8s_call(&api, "POST", "/api/v1/namespaces/" T_NS "/pods?fieldValidation=Strict",
                          bad, NULL, NULL, &err),
                 HODEI_ERR_INVALID, "an unknown field is refused under Strict");
    cr_expect(strstr(err.msg, "envFrm"), "%s", err.msg);
    json_decref(bad);
    state = t_ctl("GET", "/state", NULL);
    cr_expect_eq(json_array_size(json_object_get(state, "schemaFailures")), 2);
    json_decref(state);
}

Test(k8s, status_followed_by_watch_and_relist_after_410)
{
    t_fake_start(false);
    prov_driver *drv = t_driver_kubeconfig();
    prov_worker_env env = t_env(T_WORKER);
    env.spec.labels_json = "{}";
    char ref[PROV_REF_MAX];
    hodei_err err = {0};
    cr_assert_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK, "%s", err.msg);
    t_wait_status(drv, T_WORKER, PROV_WORKER_RUNNING);
    t_wait_pod_started("hodei-worker-" T_WORKER);
    json_t *state = t_ctl("GET", "/state", NULL);
    size_t gets_before = t_count_requests(state, "GET", "/api/v1/namespaces/" T_NS "/pods/", NULL);
    cr_expect_geq(t_count_requests(state, "GET", "/api/v1/namespaces/" T_NS "/pods", "watch=1"), 1,
                  "the driver watches");
    json_decref(state);
    /* the pod fails: the watch tells, no GET needed */
    json_decref(t_ctl("POST", "/phase",
                      "{\"namespace\":\"" T_NS "\",\"name\":\"hodei-worker-" T_WORKER
                      "\",\"phase\":\"Failed\"}"));
    t_wait_status(drv, T_WORKER, PROV_WORKER_GONE);
    state = t_ctl("GET", "/state", NULL);
    cr_expect_eq(t_count_requests(state, "GET", "/api/v1/namespaces/" T_NS "/pods/", NULL),
                 gets_before, "status came from the watch, not from polling");
    json_decref(state);
    size_t n = 9;
    prov_worker_ref list[4];
    cr_assert_eq(drv->ops->list_workers(drv, list, 4, &n, &err), HODEI_OK);
    cr_expect_eq(n, 0, "a failed pod is not a live worker");

    /* the history is compacted and the watch dropped: the driver's version
     * is too old (410 Expired), so it lists again and keeps following */
    state = t_ctl("GET", "/state", NULL);
    size_t lists_before = t_count_lists(state);
    json_decref(state);
    json_decref(t_ctl("POST", "/compact", "{}"));
    json_decref(t_ctl("POST", "/drop-watches", "{}"));
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    for (;;) {
        state = t_ctl("GET", "/state", NULL);
        size_t lists = t_count_lists(state);
        json_decref(state);
        if (lists > lists_before)
            break;
        cr_assert(hodei_mono_ms() < deadline, "the driver listed again after 410");
        hodei_sleep_ms(50);
    }
    const char *id2 = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60";
    prov_worker_env env2 = t_env(id2);
    env2.spec.labels_json = "{}";
    cr_assert_eq(drv->ops->create_worker(drv, &env2, ref, &err), HODEI_OK, "%s", err.msg);
    t_wait_status(drv, id2, PROV_WORKER_RUNNING);
    t_wait_pod_started("hodei-worker-0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a60");
    json_decref(t_ctl("POST", "/phase",
                      "{\"namespace\":\"" T_NS "\",\"name\":\"hodei-worker-0190a1b2-c3d4-7e5f-"
                      "8a9b-0c1d2e3f4a60\",\"phase\":\"Succeeded\"}"));
    t_wait_status(drv, id2, PROV_WORKER_GONE);
    drv->ops->destroy(drv);
}

Test(k8s, api_errors_each_handled_and_shown)
{
    t_fake_start(false);
    prov_driver *drv = t_driver_kubeconfig();
    prov_worker_env env = t_env(T_WORKER);
    env.spec.labels_json = "{}";
    char ref[PROV_REF_MAX];
    hodei_err err = {0};
    const char *pods = "/api/v1/namespaces/" T_NS "/pods";

    /* 403: refused, with the Status message; the secret made first is removed */
    t_inject("POST", pods, 403, 1, -1, "Forbidden",
             "pods is forbidden: User cannot create resource pods in the namespace");
    cr_expect_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_ERR_PERMISSION);
    cr_expect(strstr(err.msg, "403 Forbidden: pods is forbidden: User cannot create"), "%s",
              err.msg);
    json_t *state = t_ctl("GET", "/state", NULL);
    cr_expect_null(t_find(state, "secrets", "hodei-worker-" T_WORKER), "no secret left behind");
    json_decref(state);

    /* 422: invalid, with the causes */
    t_inject("POST", pods, 422, 1, -1, "Invalid", "Pod is invalid");
    cr_expect_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "422 Invalid: Pod is invalid"), "%s", err.msg);

    /* 429 with Retry-After: waited for, then it works */
    t_inject("POST", pods, 429, 1, 1, "TooManyRequests", "Too many requests, please try again");
    int64_t t0 = hodei_mono_ms();
    cr_expect_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK, "%s", err.msg);
    cr_expect_geq(hodei_mono_ms() - t0, 1000, "Retry-After was honoured");

    /* 409: the pod exists already and is ours: adopted */
    cr_expect_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK,
                 "an existing live pod of this worker is adopted: %s", err.msg);

    /* 5xx: retried; a lasting one is UNAVAILABLE with the message */
    t_inject("GET", pods, 503, 1, -1, "ServiceUnavailable", "etcd is busy");
    prov_worker_status ws;
    cr_expect_eq(
        drv->ops->get_status(drv, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "", &ws, NULL, &err),
        HODEI_OK, "one 503 is retried: %s", err.msg);
    t_inject("GET", pods, 500, 10, -1, "InternalError", "etcdserver: request timed out");
    cr_expect_eq(
        drv->ops->get_status(drv, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "", &ws, NULL, &err),
        HODEI_ERR_UNAVAILABLE);
    cr_expect(strstr(err.msg, "500 InternalError: etcdserver: request timed out"), "%s", err.msg);
    json_decref(
        t_ctl("POST", "/inject", "{\"method\":\"GET\",\"path\":\"/\",\"code\":200,\"times\":0}"));

    /* 404 on delete: already gone is fine */
    cr_expect_eq(drv->ops->destroy_worker(drv, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", "", &err),
                 HODEI_OK, "%s", err.msg);
    /* 401: the wrong token */
    drv->ops->destroy(drv);
    char kc[400], cfg[600];
    snprintf(kc, sizeof kc, "%s/kubeconfig-bad", g_dir);
    t_write(kc, "", 0600);
    FILE *f = fopen(kc, "w");
    fprintf(f,
            "apiVersion: v1\ncurrent-context: x\nclusters: [{name: c, cluster: {server: "
            "\"https://127.0.0.1:%d\", certificate-authority: ca.crt}}]\n"
            "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
            "users: [{name: u, user: {token: wrong}}]\n",
            g_port);
    fclose(f);
    snprintf(cfg, sizeof cfg, "{\"kubeconfig\":\"%s\"}", kc);
    drv = t_driver(cfg);
    cr_expect_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_ERR_UNAUTHENTICATED);
    cr_expect(strstr(err.msg, "401"), "%s", err.msg);
    cr_expect_null(strstr(err.msg, "wrong"), "the token is never shown");
    drv->ops->destroy(drv);
}

Test(k8s, in_cluster_service_account)
{
    t_fake_start(false);
    char sa[400], cfg[600], path[500];
    snprintf(sa, sizeof sa, "%s/sa", g_dir);
    mkdir(sa, 0700);
    snprintf(path, sizeof path, "%s/token", sa);
    t_write(path, T_TOKEN "\n", 0600);
    snprintf(path, sizeof path, "%s/namespace", sa);
    t_write(path, "from-sa", 0600);
    t_sh("cp %s/ca.crt %s/ca.crt", g_dir, sa);
    char port[16];
    snprintf(port, sizeof port, "%d", g_port);
    setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", port, 1);
    snprintf(cfg, sizeof cfg, "{\"service_account_dir\":\"%s\"}", sa);
    prov_driver *drv = t_driver(cfg);
    prov_worker_env env = t_env(T_WORKER);
    env.spec.labels_json = "{}";
    char ref[PROV_REF_MAX];
    hodei_err err = {0};
    cr_assert_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK, "%s", err.msg);
    cr_expect_str_eq(ref, "from-sa/hodei-worker-" T_WORKER, "the service account's namespace");
    /* a rotated token is read again */
    snprintf(path, sizeof path, "%s/token", sa);
    t_write(path, "rotated\n", 0600);
    cr_expect_eq(drv->ops->destroy_worker(drv, T_WORKER, ref, &err), HODEI_ERR_UNAUTHENTICATED,
                 "the new token is used (the fake knows only the old one)");
    drv->ops->destroy(drv);
}

Test(k8s, kubeconfig_client_certificate_and_inline_data)
{
    t_fake_start(true);
    char kc[400], cfg[600];
    snprintf(kc, sizeof kc, "%s/kubeconfig-cert", g_dir);
    t_kubeconfig(kc, true, true);
    snprintf(cfg, sizeof cfg, "{\"kubeconfig\":\"%s\"}", kc);
    prov_driver *drv = t_driver(cfg);
    prov_worker_env env = t_env(T_WORKER);
    env.spec.labels_json = "{}";
    char ref[PROV_REF_MAX];
    hodei_err err = {0};
    cr_assert_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK, "%s", err.msg);
    json_t *state = t_ctl("GET", "/state", NULL);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(state, "requests"), i, r)
    {
        if (strcmp(json_string_value(json_object_get(r, "path")), "/readyz") == 0)
            continue;
        cr_expect(json_is_true(json_object_get(r, "clientCert")),
                  "every call is authenticated by the client certificate");
    }
    json_decref(state);
    drv->ops->destroy(drv);
}

Test(k8s, bad_config_names_the_key)
{
    prov_driver *drv = NULL;
    hodei_err err = {0};
    prov_driver_params p = {.name = "kube", .config_json = "{\"namspace\":\"x\"}"};
    cr_expect_eq(prov_kubernetes_ops.create(&p, &drv, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "unknown key \"namspace\""), "%s", err.msg);
    p.config_json = "{\"kubeconfig\":\"/nonexistent/kubeconfig\"}";
    cr_expect_eq(prov_kubernetes_ops.create(&p, &drv, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "/nonexistent/kubeconfig"), "%s", err.msg);
    p.config_json = "{\"tolerations\":\"{}\"}";
    cr_expect_eq(prov_kubernetes_ops.create(&p, &drv, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "tolerations"), "%s", err.msg);
    unsetenv("KUBERNETES_SERVICE_HOST");
    p.config_json = "{}";
    cr_expect_eq(prov_kubernetes_ops.create(&p, &drv, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "KUBERNETES_SERVICE_HOST"), "%s", err.msg);
}
