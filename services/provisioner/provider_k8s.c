/* The Kubernetes provider: each worker is a Pod "hodei-worker-<worker id>"
 * in the provider's namespace, labelled hodei.worker-id and hodei.provider,
 * with its one-time token in a Secret of the same name (k8s_pod.c).
 * provider_ref = "<namespace>/<pod name>".
 *
 * Status by watch: a thread lists the provider's pods (labelSelector
 * hodei.provider=<name>), then watches from the list's resourceVersion and
 * keeps each pod's phase in a table; a 410 Gone (the version expired) or a
 * dropped stream makes it list again. get_status answers from the table; a
 * pod the table does not hold yet (just created, the event on its way) is
 * asked for directly, so the saga never takes a new pod for a gone one.
 * Until the first list succeeded, every answer comes from the API.
 *
 * create_worker: Secret first (409: a stale one from an earlier attempt is
 * replaced: the token is new), then the Pod (409: our pod for this worker
 * already exists and runs: adopted), then the Secret is given the Pod as
 * owner, so Kubernetes removes it with the Pod whatever becomes of us.
 * destroy_worker deletes both (404 = already gone). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/id.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "k8s_int.h"

#define K8S_RETRIES 3
#define K8S_WATCH_TIMEOUT_S 60 /* the server ends a watch after this; we watch again */
#define K8S_RELIST_WAIT_MS 1000
#define K8S_PHASE_MAX 16
#define K8S_RV_MAX 64
/* An unknown field is an error, not a warning: a Pod is created as sent or not at all. */
#define K8S_STRICT "fieldValidation=Strict"

typedef struct {
    char worker_id[HODEI_ID_BUF];
    char phase[K8S_PHASE_MAX]; /* Pending, Running, Succeeded, Failed, Unknown */
    bool deleting;             /* deletionTimestamp set */
} k8s_entry;

typedef struct {
    prov_driver base; /* first: the provisioner sees only this */
    k8s_settings s;
    k8s_conn conn;
    k8s_api api;
    int64_t grace_ms;
    char pods_path[K8S_PATH_MAX];
    char secrets_path[K8S_PATH_MAX];
    char selector[256]; /* labelSelector=..., URL-encoded */
    pthread_t watcher;
    bool watcher_running;
    volatile int stop;
    pthread_mutex_t mu; /* guards the table */
    k8s_entry *pods;
    size_t n_pods;
    bool synced;
    char rv[K8S_RV_MAX];
} k8s_driver;

static k8s_driver *k8s_of(prov_driver *drv)
{
    return (k8s_driver *)drv;
}

static bool k8s_phase_live(const char *phase)
{
    return strcmp(phase, "Pending") == 0 || strcmp(phase, "Running") == 0 || phase[0] == '\0';
}

/* ------------------------------------------------------------ the pod table */

/* The worker id of a pod we made, or NULL. */
static const char *k8s_pod_worker(json_t *pod)
{
    json_t *labels = json_object_get(json_object_get(pod, "metadata"), "labels");
    const char *id = json_string_value(json_object_get(labels, K8S_LABEL_WORKER));
    return id && hodei_id_valid(id) ? id : NULL;
}

static void k8s_entry_fill(k8s_entry *e, json_t *pod)
{
    const char *phase = json_string_value(json_object_get(json_object_get(pod, "status"), "phase"));
    hodei_strlcpy(e->phase, phase ? phase : "", sizeof e->phase);
    e->deleting = json_object_get(json_object_get(pod, "metadata"), "deletionTimestamp") != NULL;
}

static k8s_entry *k8s_table_find(k8s_driver *kd, const char *worker_id)
{
    for (size_t i = 0; i < kd->n_pods; i++)
        if (strcmp(kd->pods[i].worker_id, worker_id) == 0)
            return &kd->pods[i];
    return NULL;
}

/* mu held. */
static void k8s_table_apply(k8s_driver *kd, const char *type, json_t *pod)
{
    const char *id = k8s_pod_worker(pod);
    if (!id)
        return;
    k8s_entry *e = k8s_table_find(kd, id);
    if (strcmp(type, "DELETED") == 0) {
        if (e)
            *e = kd->pods[--kd->n_pods];
        return;
    }
    if (!e && kd->n_pods < PROV_LIST_MAX) {
        e = &kd->pods[kd->n_pods++];
        hodei_strlcpy(e->worker_id, id, sizeof e->worker_id);
    }
    if (e)
        k8s_entry_fill(e, pod);
}

static void k8s_rv_from(k8s_driver *kd, json_t *obj)
{
    const char *rv =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
    if (rv)
        hodei_strlcpy(kd->rv, rv, sizeof kd->rv);
}

/* ------------------------------------------------------------ watcher */

static hodei_status k8s_list(k8s_driver *kd, json_t **out, hodei_err *err)
{
    char path[K8S_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s?%s", kd->pods_path, kd->selector);
    return k8s_call(&kd->api, "GET", path, NULL, NULL, out, err);
}

static hodei_status k8s_relist(k8s_driver *kd, hodei_err *err)
{
    json_t *list = NULL;
    hodei_status st = k8s_list(kd, &list, err);
    if (st != HODEI_OK)
        return st;
    pthread_mutex_lock(&kd->mu);
    kd->n_pods = 0;
    size_t i;
    json_t *pod;
    json_array_foreach(json_object_get(list, "items"), i, pod) k8s_table_apply(kd, "ADDED", pod);
    k8s_rv_from(kd, list);
    kd->synced = true;
    pthread_mutex_unlock(&kd->mu);
    json_decref(list);
    return HODEI_OK;
}

typedef struct {
    k8s_driver *kd;
    bool expired; /* 410: list again */
} k8s_watch_ctx;

static bool k8s_on_event(const char *type, json_t *obj, void *ctx)
{
    k8s_watch_ctx *w = ctx;
    k8s_driver *kd = w->kd;
    if (strcmp(type, "ERROR") == 0) {
        json_int_t code = json_integer_value(json_object_get(obj, "code"));
        const char *msg = json_string_value(json_object_get(obj, "message"));
        w->expired = code == 410;
        HLOG_INFO("kubernetes provider %s: watch ended by the server: %lld %s", kd->base.name,
                  (long long)code, msg ? msg : "");
        return false;
    }
    pthread_mutex_lock(&kd->mu);
    if (strcmp(type, "BOOKMARK") != 0)
        k8s_table_apply(kd, type, obj);
    k8s_rv_from(kd, obj);
    pthread_mutex_unlock(&kd->mu);
    return !kd->stop;
}

static void k8s_watch_once(k8s_driver *kd)
{
    char path[K8S_PATH_MAX + 400];
    hodei_err err = {0};
    k8s_watch_ctx w = {kd, false};
    pthread_mutex_lock(&kd->mu);
    snprintf(path, sizeof path,
             "%s?%s&watch=1&allowWatchBookmarks=true&timeoutSeconds=%d&resourceVersion=%s",
             kd->pods_path, kd->selector, K8S_WATCH_TIMEOUT_S, kd->rv);
    pthread_mutex_unlock(&kd->mu);
    hodei_status st = k8s_watch(&kd->api, path, k8s_on_event, &w, &err);
    if (kd->stop)
        return;
    if (st != HODEI_OK || w.expired) {
        if (st != HODEI_OK)
            HLOG_WARN("kubernetes provider %s: watch: %s", kd->base.name, err.msg);
        pthread_mutex_lock(&kd->mu);
        kd->synced = false;
        pthread_mutex_unlock(&kd->mu);
    }
}

static void *k8s_watcher(void *arg)
{
    k8s_driver *kd = arg;
    hodei_err err = {0};
    bool warned = false;
    while (!kd->stop) {
        pthread_mutex_lock(&kd->mu);
        bool synced = kd->synced;
        pthread_mutex_unlock(&kd->mu);
        if (!synced && k8s_relist(kd, &err) != HODEI_OK) {
            if (!warned)
                HLOG_WARN("kubernetes provider %s: listing pods: %s (retrying)", kd->base.name,
                          err.msg);
            warned = true;
            for (int i = 0; i < 10 && !kd->stop; i++)
                hodei_sleep_ms(K8S_RELIST_WAIT_MS / 10);
            continue;
        }
        warned = false;
        k8s_watch_once(kd);
    }
    return NULL;
}

/* ------------------------------------------------------------ create */

static void k8s_ref(const k8s_driver *kd, const char *worker_id, char ref[PROV_REF_MAX])
{
    char name[K8S_NAME_MAX];
    k8s_pod_name(worker_id, name);
    snprintf(ref, PROV_REF_MAX, "%.63s/%.63s", kd->conn.namespace, name);
}

static hodei_status k8s_secret_create(k8s_driver *kd, const k8s_pod_ctx *c,
                                      const prov_worker_env *env, hodei_err *err)
{
    char path[K8S_PATH_MAX + 300], name[K8S_NAME_MAX];
    json_t *secret = k8s_secret_build(c, env->worker_id, env->otp);
    if (!secret)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "worker %s: building the secret",
                             env->worker_id);
    char post[K8S_PATH_MAX + 64];
    snprintf(post, sizeof post, "%s?" K8S_STRICT, kd->secrets_path);
    hodei_status st = k8s_call(&kd->api, "POST", post, secret, NULL, NULL, err);
    if (st == HODEI_ERR_EXISTS) { /* left by an earlier attempt: its token is revoked */
        k8s_pod_name(env->worker_id, name);
        snprintf(path, sizeof path, "%s/%s", kd->secrets_path, name);
        st = k8s_call(&kd->api, "DELETE", path, NULL, NULL, NULL, err);
        if (st == HODEI_OK || st == HODEI_ERR_NOT_FOUND)
            st = k8s_call(&kd->api, "POST", post, secret, NULL, NULL, err);
    }
    json_decref(secret);
    return st;
}

/* Our pod for this worker already exists: adopt it while it lives. */
static hodei_status k8s_pod_adopt(k8s_driver *kd, const char *worker_id, const char *path,
                                  json_t **pod_out, hodei_err *err)
{
    hodei_err gerr = {0};
    json_t *pod = NULL;
    k8s_entry e = {0};
    if (k8s_call(&kd->api, "GET", path, NULL, NULL, &pod, &gerr) != HODEI_OK)
        return HODEI_ERR_EXISTS; /* keep the 409's message */
    const char *id = k8s_pod_worker(pod);
    k8s_entry_fill(&e, pod);
    if (!id || strcmp(id, worker_id) != 0 || e.deleting || !k8s_phase_live(e.phase)) {
        json_decref(pod);
        return hodei_err_set(err, HODEI_ERR_EXISTS,
                             "worker %s: pod %s exists and is not a live pod of this worker",
                             worker_id, path);
    }
    *pod_out = pod;
    return HODEI_OK;
}

/* The Secret is owned by the Pod: Kubernetes deletes it with the Pod. */
static void k8s_secret_own(k8s_driver *kd, const char *worker_id, json_t *pod)
{
    char path[K8S_PATH_MAX + 300], name[K8S_NAME_MAX];
    hodei_err err = {0};
    json_t *meta = json_object_get(pod, "metadata");
    const char *uid = json_string_value(json_object_get(meta, "uid"));
    if (!uid)
        return;
    k8s_pod_name(worker_id, name);
    snprintf(path, sizeof path, "%s/%s", kd->secrets_path, name);
    json_t *patch = json_pack("{s:{s:[{s:s, s:s, s:s, s:s}]}}", "metadata", "ownerReferences",
                              "apiVersion", "v1", "kind", "Pod", "name", name, "uid", uid);
    if (k8s_call(&kd->api, "PATCH", path, patch, "application/merge-patch+json", NULL, &err) !=
        HODEI_OK)
        HLOG_WARN("worker %s: giving its secret an owner: %s", worker_id, err.msg);
    json_decref(patch);
}

static void k8s_delete_quiet(k8s_driver *kd, const char *base, const char *worker_id)
{
    char path[K8S_PATH_MAX + 300], name[K8S_NAME_MAX];
    hodei_err err = {0};
    k8s_pod_name(worker_id, name);
    snprintf(path, sizeof path, "%s/%s", base, name);
    hodei_status st = k8s_call(&kd->api, "DELETE", path, NULL, NULL, NULL, &err);
    if (st != HODEI_OK && st != HODEI_ERR_NOT_FOUND)
        HLOG_WARN("worker %s: cleaning up: %s", worker_id, err.msg);
}

static hodei_status k8s_create_worker(prov_driver *drv, const prov_worker_env *env,
                                      char ref_out[PROV_REF_MAX], hodei_err *err)
{
    k8s_driver *kd = k8s_of(drv);
    k8s_pod_ctx c = {kd->base.name, kd->conn.namespace, &kd->s};
    char path[K8S_PATH_MAX + 300], name[K8S_NAME_MAX];
    json_t *pod = NULL, *created = NULL;
    hodei_status st = k8s_pod_build(&c, env, &pod, err);
    if (st != HODEI_OK)
        return st;
    if ((st = k8s_secret_create(kd, &c, env, err)) != HODEI_OK)
        goto out;
    snprintf(path, sizeof path, "%s?" K8S_STRICT, kd->pods_path);
    st = k8s_call(&kd->api, "POST", path, pod, NULL, &created, err);
    if (st == HODEI_ERR_EXISTS) {
        k8s_pod_name(env->worker_id, name);
        snprintf(path, sizeof path, "%s/%s", kd->pods_path, name);
        st = k8s_pod_adopt(kd, env->worker_id, path, &created, err);
    }
    if (st != HODEI_OK) {
        k8s_delete_quiet(kd, kd->secrets_path, env->worker_id);
        goto out;
    }
    k8s_secret_own(kd, env->worker_id, created);
    pthread_mutex_lock(&kd->mu);
    if (kd->synced)
        k8s_table_apply(kd, "ADDED", created);
    pthread_mutex_unlock(&kd->mu);
    k8s_ref(kd, env->worker_id, ref_out);
out:
    json_decref(created);
    json_decref(pod);
    return st;
}

/* ------------------------------------------------------------ status, list */

static hodei_status k8s_get_status(prov_driver *drv, const char *worker_id, const char *ref,
                                   prov_worker_status *out, char ref_out[PROV_REF_MAX],
                                   hodei_err *err)
{
    k8s_driver *kd = k8s_of(drv);
    char path[K8S_PATH_MAX + 300], name[K8S_NAME_MAX];
    k8s_entry e = {0};
    bool known = false;
    *out = PROV_WORKER_GONE;
    pthread_mutex_lock(&kd->mu);
    k8s_entry *found = kd->synced ? k8s_table_find(kd, worker_id) : NULL;
    if (found)
        e = *found, known = true;
    pthread_mutex_unlock(&kd->mu);
    if (!known) { /* not seen yet (or no watch): ask */
        json_t *pod = NULL;
        k8s_pod_name(worker_id, name);
        snprintf(path, sizeof path, "%s/%s", kd->pods_path, name);
        hodei_status st = k8s_call(&kd->api, "GET", path, NULL, NULL, &pod, err);
        if (st == HODEI_ERR_NOT_FOUND)
            return HODEI_OK;
        if (st != HODEI_OK)
            return st;
        k8s_entry_fill(&e, pod);
        json_decref(pod);
    }
    if (!e.deleting && k8s_phase_live(e.phase)) {
        *out = PROV_WORKER_RUNNING;
        if (ref_out)
            k8s_ref(kd, worker_id, ref_out);
    }
    return HODEI_OK;
}

static void k8s_list_add(k8s_driver *kd, const k8s_entry *e, prov_worker_ref *out, size_t cap,
                         size_t *n)
{
    if (*n >= cap || e->deleting || !k8s_phase_live(e->phase))
        return;
    hodei_strlcpy(out[*n].worker_id, e->worker_id, sizeof out[*n].worker_id);
    k8s_ref(kd, e->worker_id, out[*n].ref);
    (*n)++;
}

static hodei_status k8s_list_workers(prov_driver *drv, prov_worker_ref *out, size_t cap,
                                     size_t *n_out, hodei_err *err)
{
    k8s_driver *kd = k8s_of(drv);
    *n_out = 0;
    pthread_mutex_lock(&kd->mu);
    bool synced = kd->synced;
    for (size_t i = 0; synced && i < kd->n_pods; i++)
        k8s_list_add(kd, &kd->pods[i], out, cap, n_out);
    pthread_mutex_unlock(&kd->mu);
    if (synced)
        return HODEI_OK;
    json_t *list = NULL, *pod;
    size_t i;
    hodei_status st = k8s_list(kd, &list, err);
    if (st != HODEI_OK)
        return st;
    json_array_foreach(json_object_get(list, "items"), i, pod)
    {
        const char *id = k8s_pod_worker(pod);
        k8s_entry e = {0};
        if (!id)
            continue;
        hodei_strlcpy(e.worker_id, id, sizeof e.worker_id);
        k8s_entry_fill(&e, pod);
        k8s_list_add(kd, &e, out, cap, n_out);
    }
    json_decref(list);
    return HODEI_OK;
}

/* ------------------------------------------------------------ destroy */

static hodei_status k8s_destroy_worker(prov_driver *drv, const char *worker_id, const char *ref,
                                       hodei_err *err)
{
    k8s_driver *kd = k8s_of(drv);
    char path[K8S_PATH_MAX + 300], name[K8S_NAME_MAX];
    k8s_pod_name(worker_id, name);
    snprintf(path, sizeof path, "%s/%s", kd->pods_path, name);
    json_t *opts = json_pack("{s:s, s:s, s:I, s:s}", "kind", "DeleteOptions", "apiVersion", "v1",
                             "gracePeriodSeconds", (json_int_t)(kd->grace_ms / 1000),
                             "propagationPolicy", "Background");
    hodei_status st = k8s_call(&kd->api, "DELETE", path, opts, NULL, NULL, err);
    json_decref(opts);
    if (st != HODEI_OK && st != HODEI_ERR_NOT_FOUND)
        return st;
    snprintf(path, sizeof path, "%s/%s", kd->secrets_path, name);
    st = k8s_call(&kd->api, "DELETE", path, NULL, NULL, NULL, err);
    if (st != HODEI_OK && st != HODEI_ERR_NOT_FOUND)
        return st;
    pthread_mutex_lock(&kd->mu);
    k8s_entry *e = kd->synced ? k8s_table_find(kd, worker_id) : NULL;
    if (e)
        e->deleting = true;
    pthread_mutex_unlock(&kd->mu);
    return HODEI_OK;
}

/* ------------------------------------------------------------ instance */

static bool k8s_health(prov_driver *drv, char msg[PROV_HEALTH_MSG_MAX])
{
    k8s_driver *kd = k8s_of(drv);
    hodei_err err = {0};
    char body[96];
    long status = 0;
    hodei_status st = k8s_readyz(&kd->api, &status, body, sizeof body, &err);
    bool ok = st == HODEI_OK && status == 200;
    if (st != HODEI_OK)
        snprintf(msg, PROV_HEALTH_MSG_MAX, "API server %.100s: %.120s", kd->conn.server, err.msg);
    else if (!ok)
        snprintf(msg, PROV_HEALTH_MSG_MAX, "API server %.100s: /readyz answered %ld: %.80s",
                 kd->conn.server, status, body);
    else
        snprintf(msg, PROV_HEALTH_MSG_MAX, "ok: %.100s (%s), namespace %.60s", kd->conn.server,
                 kd->conn.source, kd->conn.namespace);
    return ok;
}

static void k8s_capabilities(const prov_driver *drv, prov_caps *out)
{
    const k8s_driver *kd = (const k8s_driver *)drv;
    out->isolation = "container";
    out->survives_restart = true;
    out->create_timeout_ms = kd->api.timeout_ms * (K8S_RETRIES + 1) * 3;
}

static void k8s_destroy(prov_driver *drv)
{
    if (!drv)
        return;
    k8s_driver *kd = k8s_of(drv);
    kd->stop = 1;
    if (kd->watcher_running)
        pthread_join(kd->watcher, NULL);
    k8s_conn_fini(&kd->conn);
    k8s_settings_fini(&kd->s);
    pthread_mutex_destroy(&kd->mu);
    free(kd->pods);
    free(kd);
}

static hodei_status k8s_paths(k8s_driver *kd, hodei_err *err)
{
    const char *ns = kd->conn.namespace;
    for (const char *p = ns; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "kubernetes provider %s: namespace \"%s\" is not a DNS label",
                                 kd->base.name, ns);
    snprintf(kd->pods_path, sizeof kd->pods_path, "/api/v1/namespaces/%s/pods", ns);
    snprintf(kd->secrets_path, sizeof kd->secrets_path, "/api/v1/namespaces/%s/secrets", ns);
    snprintf(kd->selector, sizeof kd->selector, "labelSelector=" K8S_LABEL_PROVIDER "%%3D%s",
             kd->base.name);
    return HODEI_OK;
}

static hodei_status k8s_create(const prov_driver_params *p, prov_driver **out, hodei_err *err)
{
    k8s_driver *kd = calloc(1, sizeof *kd);
    if (!kd || !(kd->pods = calloc(PROV_LIST_MAX, sizeof *kd->pods))) {
        free(kd);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "kubernetes provider: out of memory");
    }
    kd->base.ops = &prov_kubernetes_ops;
    hodei_strlcpy(kd->base.name, p->name, sizeof kd->base.name);
    kd->grace_ms = p->destroy_grace_ms;
    pthread_mutex_init(&kd->mu, NULL);
    hodei_status st = k8s_settings_parse(p->config_json, &kd->s, err);
    if (st == HODEI_OK)
        st = k8s_conn_load(&kd->s, &kd->conn, err);
    if (st == HODEI_OK)
        st = k8s_paths(kd, err);
    if (st != HODEI_OK) {
        k8s_destroy(&kd->base);
        return st;
    }
    kd->api = (k8s_api){&kd->conn, kd->s.request_timeout_ms, K8S_RETRIES, &kd->stop};
    if (pthread_create(&kd->watcher, NULL, k8s_watcher, kd) != 0) {
        k8s_destroy(&kd->base);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "kubernetes provider: no watch thread");
    }
    kd->watcher_running = true;
    HLOG_INFO("kubernetes provider %s: API server %s (%s), namespace %s", kd->base.name,
              kd->conn.server, kd->conn.source, kd->conn.namespace);
    *out = &kd->base;
    return HODEI_OK;
}

const prov_driver_ops prov_kubernetes_ops = {
    .type = "kubernetes",
    .create = k8s_create,
    .destroy = k8s_destroy,
    .create_worker = k8s_create_worker,
    .get_status = k8s_get_status,
    .destroy_worker = k8s_destroy_worker,
    .list_workers = k8s_list_workers,
    .health = k8s_health,
    .capabilities = k8s_capabilities,
};
