/* The worker Pod and its token Secret, as the API wants them (pure: no I/O).
 *
 * The Pod runs the job's image; the user's image knows nothing of Hodei.
 * An init container (the agent image) copies the agent bundle into an
 * emptyDir volume, which the worker container mounts read-only and runs
 * from. The one-time token reaches the worker only through the Secret
 * (env valueFrom.secretKeyRef), never in the Pod spec.
 *
 * Worker labels become placement: a label "toleration:<taint key>" with
 * value "[<value>]:<effect>" (or "" = tolerate any effect of that key)
 * becomes a toleration; every other label becomes a nodeSelector entry (a job's constraints are
 * labels its worker must have, so the Pod must land on a node that has them). */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_int.h"

#define K8S_TOLERATION_PREFIX "toleration:"
#define K8S_AGENT_MOUNT "/hodei-agent"

void k8s_pod_name(const char *worker_id, char out[K8S_NAME_MAX])
{
    snprintf(out, K8S_NAME_MAX, "%s%s", K8S_POD_PREFIX, worker_id);
}

void k8s_quantity_cpu(int64_t millis, char out[32])
{
    if (millis % 1000 == 0)
        snprintf(out, 32, "%lld", (long long)(millis / 1000));
    else
        snprintf(out, 32, "%lldm", (long long)millis);
}

static json_t *k8s_labels(const k8s_pod_ctx *c, const char *worker_id)
{
    return json_pack("{s:s, s:s, s:s}", K8S_LABEL_WORKER, worker_id, K8S_LABEL_PROVIDER,
                     c->provider, K8S_LABEL_MANAGED, "hodei");
}

static json_t *k8s_env_value(const char *name, const char *value)
{
    return json_pack("{s:s, s:s}", "name", name, "value", value);
}

static json_t *k8s_env(const prov_worker_env *env, const char *secret)
{
    json_t *otp = json_pack("{s:s, s:{s:{s:s, s:s}}}", "name", "HODEI_OTP", "valueFrom",
                            "secretKeyRef", "name", secret, "key", K8S_SECRET_KEY);
    return json_pack("[o, o, o, o]", k8s_env_value("HODEI_SERVER", env->server),
                     k8s_env_value("HODEI_WORKER_ID", env->worker_id),
                     k8s_env_value("HODEI_LOG_LEVEL", env->log_level), otp);
}

/* requests = limits: the scheduler counted the worker at this size. */
static json_t *k8s_resources(const prov_worker_spec *spec)
{
    json_t *lim = json_object();
    char q[32];
    if (spec->cpu_millis > 0) {
        k8s_quantity_cpu(spec->cpu_millis, q);
        json_object_set_new(lim, "cpu", json_string(q));
    }
    if (spec->memory_bytes > 0) {
        snprintf(q, sizeof q, "%lld", (long long)spec->memory_bytes);
        json_object_set_new(lim, "memory", json_string(q));
    }
    if (spec->storage_bytes > 0) {
        snprintf(q, sizeof q, "%lld", (long long)spec->storage_bytes);
        json_object_set_new(lim, "ephemeral-storage", json_string(q));
    }
    if (spec->gpu_count > 0) {
        snprintf(q, sizeof q, "%lld", (long long)spec->gpu_count);
        json_object_set_new(lim, "nvidia.com/gpu", json_string(q));
    }
    json_t *res = json_object();
    if (json_object_size(lim) > 0)
        json_object_set_new(res, "requests", json_deep_copy(lim));
    json_object_set_new(res, "limits", lim);
    return res;
}

/* "toleration:<key>" = "[<value>]:<effect>" | "". */
static hodei_status k8s_toleration(const char *key, const char *val, json_t *out, hodei_err *err)
{
    const char *colon = strrchr(val, ':');
    json_t *t = json_pack("{s:s}", "key", key);
    if (val[0] == '\0') {
        json_object_set_new(t, "operator", json_string("Exists"));
        json_array_append_new(out, t);
        return HODEI_OK;
    }
    const char *effect = colon ? colon + 1 : "";
    if (!colon || (strcmp(effect, "NoSchedule") != 0 && strcmp(effect, "PreferNoSchedule") != 0 &&
                   strcmp(effect, "NoExecute") != 0 && effect[0] != '\0')) {
        json_decref(t);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker label \"%s%s\": value must be [<value>]:<effect> with "
                             "effect NoSchedule, PreferNoSchedule or NoExecute",
                             K8S_TOLERATION_PREFIX, key);
    }
    if (colon == val)
        json_object_set_new(t, "operator", json_string("Exists"));
    else {
        json_object_set_new(t, "operator", json_string("Equal"));
        json_object_set_new(t, "value", json_stringn(val, (size_t)(colon - val)));
    }
    if (effect[0])
        json_object_set_new(t, "effect", json_string(effect));
    json_array_append_new(out, t);
    return HODEI_OK;
}

/* nodeSelector and tolerations: the provider's, then the worker's labels. */
static hodei_status k8s_placement(const k8s_pod_ctx *c, const prov_worker_spec *spec,
                                  json_t *pod_spec, hodei_err *err)
{
    json_error_t jerr;
    json_t *labels =
        json_loads(spec->labels_json && spec->labels_json[0] ? spec->labels_json : "{}", 0, &jerr);
    json_t *sel = json_deep_copy(c->s->node_selector);
    json_t *tol = json_deep_copy(c->s->tolerations);
    hodei_status st = HODEI_OK;
    const char *key;
    json_t *val;
    size_t plen = strlen(K8S_TOLERATION_PREFIX);
    json_object_foreach(labels, key, val)
    {
        const char *v = json_string_value(val);
        if (!v)
            continue;
        if (strncmp(key, K8S_TOLERATION_PREFIX, plen) == 0)
            st = k8s_toleration(key + plen, v, tol, err);
        else
            json_object_set_new(sel, key, json_string(v));
        if (st != HODEI_OK)
            break;
    }
    json_decref(labels);
    if (st == HODEI_OK && json_object_size(sel) > 0)
        json_object_set(pod_spec, "nodeSelector", sel);
    if (st == HODEI_OK && json_array_size(tol) > 0)
        json_object_set(pod_spec, "tolerations", tol);
    json_decref(sel);
    json_decref(tol);
    return st;
}

static json_t *k8s_init_container(const k8s_settings *s)
{
    char copy[K8S_PATH_MAX + 64];
    snprintf(copy, sizeof copy, "cp -a '%s'/. " K8S_AGENT_MOUNT "/", s->agent_source);
    return json_pack("{s:s, s:s, s:s, s:[s, s, s], s:[{s:s, s:s}]}", "name", "hodei-agent", "image",
                     s->agent_image, "imagePullPolicy", s->pull_policy, "command", "/bin/sh", "-c",
                     copy, "volumeMounts", "name", K8S_AGENT_VOLUME, "mountPath", K8S_AGENT_MOUNT);
}

static json_t *k8s_worker_container(const k8s_pod_ctx *c, const prov_worker_env *env,
                                    const char *secret)
{
    const char *image =
        env->spec.image && env->spec.image[0] ? env->spec.image : c->s->default_image;
    return json_pack("{s:s, s:s, s:s, s:[s], s:o, s:o, s:[{s:s, s:s, s:b}]}", "name", "worker",
                     "image", image, "imagePullPolicy", c->s->pull_policy, "command",
                     K8S_AGENT_MOUNT "/bin/hodei-worker", "env", k8s_env(env, secret), "resources",
                     k8s_resources(&env->spec), "volumeMounts", "name", K8S_AGENT_VOLUME,
                     "mountPath", K8S_AGENT_MOUNT, "readOnly", 1);
}

hodei_status k8s_pod_build(const k8s_pod_ctx *c, const prov_worker_env *env, json_t **out,
                           hodei_err *err)
{
    char name[K8S_NAME_MAX];
    k8s_pod_name(env->worker_id, name);
    json_t *spec =
        json_pack("{s:s, s:b, s:i, s:[{s:s, s:{}}], s:[o], s:[o]}", "restartPolicy", "Never",
                  "automountServiceAccountToken", c->s->service_account[0] ? 1 : 0,
                  "terminationGracePeriodSeconds", 30, "volumes", "name", K8S_AGENT_VOLUME,
                  "emptyDir", "initContainers", k8s_init_container(c->s), "containers",
                  k8s_worker_container(c, env, name));
    if (!spec)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "worker %s: building the pod", env->worker_id);
    if (c->s->service_account[0])
        json_object_set_new(spec, "serviceAccountName", json_string(c->s->service_account));
    if (c->s->image_pull_secret[0])
        json_object_set_new(spec, "imagePullSecrets",
                            json_pack("[{s:s}]", "name", c->s->image_pull_secret));
    hodei_status st = k8s_placement(c, &env->spec, spec, err);
    if (st != HODEI_OK) {
        json_decref(spec);
        return st;
    }
    *out = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:o}", "apiVersion", "v1", "kind", "Pod",
                     "metadata", "name", name, "namespace", c->namespace, "labels",
                     k8s_labels(c, env->worker_id), "spec", spec);
    return *out
               ? HODEI_OK
               : hodei_err_set(err, HODEI_ERR_NOMEM, "worker %s: building the pod", env->worker_id);
}

json_t *k8s_secret_build(const k8s_pod_ctx *c, const char *worker_id, const char *otp)
{
    char name[K8S_NAME_MAX];
    size_t len = strlen(otp);
    unsigned char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    if (!b64)
        return NULL;
    EVP_EncodeBlock(b64, (const unsigned char *)otp, (int)len);
    k8s_pod_name(worker_id, name);
    json_t *s = json_pack("{s:s, s:s, s:{s:s, s:s, s:o}, s:s, s:b, s:{s:s}}", "apiVersion", "v1",
                          "kind", "Secret", "metadata", "name", name, "namespace", c->namespace,
                          "labels", k8s_labels(c, worker_id), "type", "Opaque", "immutable", 1,
                          "data", K8S_SECRET_KEY, (const char *)b64);
    explicit_bzero(b64, strlen((const char *)b64));
    free(b64);
    return s;
}
