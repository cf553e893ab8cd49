/* The Kubernetes provider's parts (provider_k8s.c is the driver):
 *   k8s_config.c  where the API server is and who we are: in-cluster
 *                 (service account) or a kubeconfig file
 *   k8s_api.c     requests with the API's error handling (Status objects,
 *                 429 Retry-After, 5xx retries)
 *   k8s_pod.c     the worker Pod and its token Secret, as JSON (pure) */
#ifndef HODEI_PROVISIONER_K8S_INT_H
#define HODEI_PROVISIONER_K8S_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/status.h"
#include "prov_http.h"
#include "provider.h"

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define K8S_NAME_MAX 254 /* a DNS subdomain, with the NUL */
#define K8S_PATH_MAX 4096
#define K8S_POD_PREFIX "hodei-worker-"
#define K8S_LABEL_WORKER "hodei.worker-id"
#define K8S_LABEL_PROVIDER "hodei.provider"
#define K8S_LABEL_MANAGED "app.kubernetes.io/managed-by"
#define K8S_SECRET_KEY "otp"
#define K8S_AGENT_VOLUME "hodei-agent"

/* Where the API server is and the credentials to use (owned strings). */
typedef struct {
    char *server;    /* https://host:port */
    char *namespace; /* from the config, the kubeconfig context or the service account */
    char *ca_file, *ca_pem;
    char *cert_file, *key_file, *cert_pem, *key_pem;
    char *token;      /* SECRET; static (kubeconfig token) */
    char *token_file; /* re-read before each request (bound service account tokens rotate) */
    bool insecure;
    const char *source; /* "in-cluster" or "kubeconfig" (for messages) */
} k8s_conn;

/* The provider row's config, parsed and checked (owned strings). */
typedef struct {
    char *namespace;         /* "" = the credentials' own */
    char *kubeconfig;        /* a path; "" = in-cluster */
    char *context;           /* kubeconfig context; "" = current-context */
    char *sa_dir;            /* in-cluster service account folder */
    char *agent_image;       /* the init container that brings the agent in */
    char *agent_source;      /* the agent bundle's folder in agent_image */
    char *default_image;     /* a worker for a job that names no image */
    char *service_account;   /* the worker Pod's serviceAccountName; "" = none mounted */
    char *pull_policy;       /* imagePullPolicy */
    char *image_pull_secret; /* "" = none */
    json_t *node_selector;   /* object, merged under the worker's constraints */
    json_t *tolerations;     /* array */
    int64_t request_timeout_ms;
} k8s_settings;

/* ---- k8s_config.c ---- */
/* Parses the provider's config JSON; INVALID names the key. */
hodei_status k8s_settings_parse(const char *config_json, k8s_settings *out, hodei_err *err);
void k8s_settings_fini(k8s_settings *s);
/* Reads the kubeconfig (s->kubeconfig) or the in-cluster environment. */
hodei_status k8s_conn_load(const k8s_settings *s, k8s_conn *out, hodei_err *err);
void k8s_conn_fini(k8s_conn *c);

/* ---- k8s_api.c ---- */
typedef struct {
    const k8s_conn *conn;
    int64_t timeout_ms;
    int retries_max;            /* 429 and 5xx are retried this many times */
    const volatile int *cancel; /* ends a watch when set */
} k8s_api;

/* One API call. Statuses: 2xx -> OK (*out = parsed body, may be NULL
 * when none is wanted); 401 UNAUTHENTICATED, 403 PERMISSION, 404 NOT_FOUND,
 * 409 EXISTS, 410 PRECONDITION (expired resourceVersion), 422/400
 * INVALID, 429 and 5xx UNAVAILABLE once the retries are spent (a 429 waits
 * its Retry-After first). The message names the call and carries the
 * Status object's message. */
hodei_status k8s_call(const k8s_api *api, const char *method, const char *path, json_t *body,
                      const char *content_type, json_t **out, hodei_err *err);
/* GET /readyz with the credentials (anonymous access may be off). */
hodei_status k8s_readyz(const k8s_api *api, long *status_out, char *body, size_t body_len,
                        hodei_err *err);
/* A watch: streams newline-delimited events to on_event until the server
 * ends it, on_event returns false, or timeout_s passes. */
typedef bool (*k8s_event_fn)(const char *type, json_t *object, void *ctx);
hodei_status k8s_watch(const k8s_api *api, const char *path, k8s_event_fn on_event, void *ctx,
                       hodei_err *err);

/* ---- k8s_pod.c ---- */
typedef struct {
    const char *provider; /* providers.name */
    const char *namespace;
    const k8s_settings *s;
} k8s_pod_ctx;

void k8s_pod_name(const char *worker_id, char out[K8S_NAME_MAX]);
/* The worker's Pod. The token is NOT in it: HODEI_OTP comes from the
 * Secret k8s_pod_name(worker id), key "otp". INVALID when a worker label
 * cannot be a nodeSelector entry or a toleration. */
hodei_status k8s_pod_build(const k8s_pod_ctx *c, const prov_worker_env *env, json_t **out,
                           hodei_err *err);
/* The Secret holding the token (base64, as the API wants it). */
json_t *k8s_secret_build(const k8s_pod_ctx *c, const char *worker_id, const char *otp);
/* Quantity text: millicores as "500m"/"2", bytes as a plain integer. */
void k8s_quantity_cpu(int64_t millis, char out[32]);

#endif
