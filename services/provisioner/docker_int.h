/* Private to the Docker driver (provider_docker.c, docker_spec.c): its
 * settings, read from the provider row's config (a JSON object of
 * strings), and the container it makes for a worker.
 *
 *   host          engine: unix:///var/run/docker.sock (default) or tcp://host:port
 *   tls_ca, tls_cert, tls_key   TLS files for tcp:// (PEM)
 *   worker_image  image of workers for jobs that name none (hodei-worker:latest)
 *   network       NetworkMode of worker containers: host (default), bridge, none,
 *                 or a network's name (e.g. the compose project's)
 *   agent_bundle  host folder with the self-contained agent (bin/, lib/), mounted
 *                 read-only at /opt/hodei; default <provisioner's bin>/../agent-bundle
 *   agent_volume  a named volume holding the bundle instead (compose)
 *   pull          missing (default) | always | never
 *   pull_timeout  longest pull (5m)
 *   pids_limit    processes per container (1024; 0 = no limit)
 *   agent_memory  bytes added to a worker's memory limit for the agent itself (32Mi)
 *   exited_ttl    how long an exited worker container is kept for its logs (60s)
 *   warm_image    the image of the provider's warm pool (read by the supervisor;
 *                 "" = worker_image): warm_pool_min workers of it stay ready
 *   labels        more labels on worker containers: k=v,k2=v2 (e.g. compose's
 *                 project labels, so `docker-compose down` removes them too)
 *
 * Unknown keys and bad values are refused, naming the key. */
#ifndef HODEI_PROVISIONER_DOCKER_INT_H
#define HODEI_PROVISIONER_DOCKER_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "docker_api.h"
#include "provider.h"

#define DOCKER_IMAGE_MAX 512
#define DOCKER_NETWORK_MAX 256
#define DOCKER_LABELS_TEXT_MAX 1024
#define DOCKER_AGENT_DIR "/opt/hodei" /* where the agent bundle is mounted */
#define DOCKER_AGENT_TMP "/run/hodei" /* tmpfs for the agent's script files */
#define DOCKER_NAME_PREFIX "hodei-"   /* container name: hodei-<worker id> */
#define DOCKER_LABEL_WORKER "hodei.worker-id"
#define DOCKER_LABEL_PROVIDER "hodei.provider"
#define DOCKER_LABEL_IMAGE "hodei.image"
#define DOCKER_NAME_MAX (sizeof DOCKER_NAME_PREFIX + HODEI_ID_BUF)

typedef enum { DOCKER_PULL_MISSING = 0, DOCKER_PULL_ALWAYS, DOCKER_PULL_NEVER } docker_pull;

typedef struct {
    char host[DOCKER_API_HOST_MAX];
    char tls_ca[DOCKER_API_HOST_MAX], tls_cert[DOCKER_API_HOST_MAX], tls_key[DOCKER_API_HOST_MAX];
    char worker_image[DOCKER_IMAGE_MAX];
    char network[DOCKER_NETWORK_MAX];
    char agent_bundle[DOCKER_API_HOST_MAX];
    char agent_volume[DOCKER_NETWORK_MAX];
    docker_pull pull;
    int64_t pull_timeout_ms;
    int64_t pids_limit;
    int64_t agent_memory_bytes;
    int64_t exited_ttl_ms;
    char labels[DOCKER_LABELS_TEXT_MAX]; /* k=v,k2=v2 */
    int64_t stop_grace_ms;               /* provisioner.destroy_grace */
} docker_config;

/* Fills c from the provider row (p->config_json) and the provisioner's
 * settings; errors name the provider and the key. */
hodei_status docker_config_parse(const prov_driver_params *p, docker_config *c, hodei_err *err);

/* The body of POST /containers/create for a worker (a new reference; the
 * caller json_decref's it). image is the one to run (never ""). */
json_t *docker_create_body(const docker_config *c, const prov_worker_env *env, const char *image,
                           const char *provider);

#endif
