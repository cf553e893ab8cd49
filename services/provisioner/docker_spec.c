/* The Docker driver's settings (docker_int.h) and the container it makes
 * for a worker: the user's image (or the default worker image), the agent
 * brought in read-only from the bundle, the contract's environment, the
 * worker's hard limits and its labels. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker_int.h"
#include "hodei/provider_config.h"
#include "hodei/util.h"

#define SPEC_ENV_TEXT_MAX 640
#define SPEC_GRACE_S_MAX 3600
#define SPEC_DEFAULT_IMAGE "hodei-worker:latest"
#define SPEC_DEFAULT_NETWORK "host"
#define SPEC_DEFAULT_PULL_TIMEOUT "5m"
#define SPEC_DEFAULT_EXITED_TTL "60s"
#define SPEC_DEFAULT_PIDS "1024"
#define SPEC_DEFAULT_AGENT_MEMORY "32Mi"
#define MS_PER_S 1000
#define NS_PER_MILLICORE 1000000

typedef struct {
    const docker_config *c;
    const prov_driver_params *p;
} spec_ctx;

static void spec_text(char *out, size_t out_len, const char *val)
{
    hodei_strlcpy(out, val, out_len); /* lengths checked by spec_one */
}

/* One entry, checked by the rules the edge applies (libs/domain), then
 * kept. */
static hodei_status spec_one(const prov_driver_params *p, const char *key, const char *val,
                             docker_config *c, hodei_err *err)
{
    hodei_err e = {0};
    if (hodei_provider_config_check("docker", key, val, &e) != HODEI_OK)
        return hodei_err_set(err, HODEI_ERR_INVALID, "provider %s: %s", p->name, e.msg);
    if (strlen(val) >= DOCKER_API_HOST_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "provider %s: config.%.64s: too long", p->name,
                             key);
    if (strcmp(key, "host") == 0)
        spec_text(c->host, sizeof c->host, val);
    else if (strcmp(key, "tls_ca") == 0)
        spec_text(c->tls_ca, sizeof c->tls_ca, val);
    else if (strcmp(key, "tls_cert") == 0)
        spec_text(c->tls_cert, sizeof c->tls_cert, val);
    else if (strcmp(key, "tls_key") == 0)
        spec_text(c->tls_key, sizeof c->tls_key, val);
    else if (strcmp(key, "worker_image") == 0)
        spec_text(c->worker_image, sizeof c->worker_image, val);
    else if (strcmp(key, "network") == 0)
        spec_text(c->network, sizeof c->network, val);
    else if (strcmp(key, "agent_bundle") == 0)
        spec_text(c->agent_bundle, sizeof c->agent_bundle, val);
    else if (strcmp(key, "agent_volume") == 0)
        spec_text(c->agent_volume, sizeof c->agent_volume, val);
    else if (strcmp(key, "labels") == 0)
        spec_text(c->labels, sizeof c->labels, val);
    else if (strcmp(key, "pull") == 0)
        c->pull = strcmp(val, "always") == 0  ? DOCKER_PULL_ALWAYS
                  : strcmp(val, "never") == 0 ? DOCKER_PULL_NEVER
                                              : DOCKER_PULL_MISSING;
    else if (strcmp(key, "pull_timeout") == 0)
        hodei_parse_duration_ms(val, &c->pull_timeout_ms);
    else if (strcmp(key, "exited_ttl") == 0)
        hodei_parse_duration_ms(val, &c->exited_ttl_ms);
    else if (strcmp(key, "pids_limit") == 0)
        hodei_parse_i64(val, 0, HODEI_DOCKER_PIDS_MAX, &c->pids_limit);
    else if (strcmp(key, "agent_memory") == 0)
        hodei_bytes_parse(val, &c->agent_memory_bytes);
    return HODEI_OK;
}

/* <dir of the worker binary>/../agent-bundle */
static void spec_default_bundle(const prov_driver_params *p, docker_config *c)
{
    char dir[DOCKER_API_HOST_MAX];
    hodei_strlcpy(dir, p->worker_binary ? p->worker_binary : "", sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        hodei_strlcpy(dir, ".", sizeof dir);
    snprintf(c->agent_bundle, sizeof c->agent_bundle, "%.400s/../agent-bundle", dir);
    char real[DOCKER_API_HOST_MAX];
    if (realpath(c->agent_bundle, real))
        hodei_strlcpy(c->agent_bundle, real, sizeof c->agent_bundle);
}

static hodei_status spec_defaults(const prov_driver_params *p, docker_config *c, hodei_err *err)
{
    memset(c, 0, sizeof *c);
    hodei_strlcpy(c->host, "unix:///var/run/docker.sock", sizeof c->host);
    hodei_strlcpy(c->worker_image, SPEC_DEFAULT_IMAGE, sizeof c->worker_image);
    hodei_strlcpy(c->network, SPEC_DEFAULT_NETWORK, sizeof c->network);
    c->pull = DOCKER_PULL_MISSING;
    hodei_parse_duration_ms(SPEC_DEFAULT_PULL_TIMEOUT, &c->pull_timeout_ms);
    hodei_parse_duration_ms(SPEC_DEFAULT_EXITED_TTL, &c->exited_ttl_ms);
    hodei_parse_i64(SPEC_DEFAULT_PIDS, 0, HODEI_DOCKER_PIDS_MAX, &c->pids_limit);
    hodei_bytes_parse(SPEC_DEFAULT_AGENT_MEMORY, &c->agent_memory_bytes);
    c->stop_grace_ms = p->destroy_grace_ms;
    return HODEI_OK;
}

hodei_status docker_config_parse(const prov_driver_params *p, docker_config *c, hodei_err *err)
{
    json_error_t jerr;
    hodei_status st = spec_defaults(p, c, err);
    json_t *root =
        json_loads(p->config_json && p->config_json[0] ? p->config_json : "{}", 0, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return hodei_err_set(err, HODEI_ERR_INVALID, "provider %s: config: not a JSON object",
                             p->name);
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        if (st != HODEI_OK)
            break;
        if (!json_is_string(v))
            st = hodei_err_set(err, HODEI_ERR_INVALID,
                               "provider %s: config.%.64s: must be a string", p->name, key);
        else
            st = spec_one(p, key, json_string_value(v), c, err);
    }
    json_decref(root);
    if (st == HODEI_OK && !c->agent_bundle[0] && !c->agent_volume[0])
        spec_default_bundle(p, c);
    if (st == HODEI_OK && c->agent_bundle[0] && c->agent_volume[0])
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "provider %s: config: agent_bundle and agent_volume exclude each other",
                           p->name);
    return st;
}

/* ------------------------------------------------------------ the container */

static void spec_env_add(json_t *env, const char *key, const char *val)
{
    char text[SPEC_ENV_TEXT_MAX];
    snprintf(text, sizeof text, "%s=%s", key, val);
    json_array_append_new(env, json_string(text));
    explicit_bzero(text, sizeof text); /* it may have held the token */
}

/* The contract's environment, and the worker's size for the agent to
 * report as its capacity (the container's limits, not the host's). */
static json_t *spec_env(const prov_worker_env *w)
{
    char num[32];
    json_t *env = json_array();
    spec_env_add(env, "HODEI_SERVER", w->server);
    spec_env_add(env, "HODEI_WORKER_ID", w->worker_id);
    spec_env_add(env, "HODEI_OTP", w->otp);
    spec_env_add(env, "HODEI_LOG_LEVEL", w->log_level);
    spec_env_add(env, "HODEI_WORKER_TMP_DIR", DOCKER_AGENT_TMP);
    if (w->spec.cpu_millis > 0) {
        snprintf(num, sizeof num, "%" PRId64, w->spec.cpu_millis);
        spec_env_add(env, "HODEI_WORKER_CPU_MILLIS", num);
    }
    if (w->spec.memory_bytes > 0) {
        snprintf(num, sizeof num, "%" PRId64, w->spec.memory_bytes);
        spec_env_add(env, "HODEI_WORKER_MEMORY_BYTES", num);
    }
    return env;
}

static json_t *spec_labels(const docker_config *c, const prov_worker_env *w, const char *image,
                           const char *provider)
{
    char key[DOCKER_LABELS_TEXT_MAX];
    json_t *labels = json_object();
    for (const char *e = c->labels; *e;) { /* checked at parse */
        size_t len = strcspn(e, ","), klen = strcspn(e, "=");
        snprintf(key, sizeof key, "%.*s", (int)klen, e);
        json_object_set_new(labels, key, json_stringn(e + klen + 1, len - klen - 1));
        e += len;
        if (*e == ',')
            e++;
    }
    json_object_set_new(labels, DOCKER_LABEL_WORKER, json_string(w->worker_id));
    json_object_set_new(labels, DOCKER_LABEL_PROVIDER, json_string(provider));
    json_object_set_new(labels, DOCKER_LABEL_IMAGE, json_string(image));
    return labels;
}

/* The agent bundle, read-only: a host folder or a named volume. */
static void spec_agent_mount(const docker_config *c, json_t *host)
{
    json_t *mounts = json_array();
    if (c->agent_volume[0])
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:b}", "Type", "volume", "Source",
                                                c->agent_volume, "Target", DOCKER_AGENT_DIR,
                                                "ReadOnly", 1));
    else
        json_array_append_new(mounts, json_pack("{s:s, s:s, s:s, s:b}", "Type", "bind", "Source",
                                                c->agent_bundle, "Target", DOCKER_AGENT_DIR,
                                                "ReadOnly", 1));
    json_object_set_new(host, "Mounts", mounts);
    json_object_set_new(host, "Tmpfs", json_pack("{s:s}", DOCKER_AGENT_TMP, "mode=1777"));
}

/* Hard limits: memory (the worker's plus the agent's own share, no swap),
 * CPU quota, processes, GPUs through a device request. */
static void spec_limits(const docker_config *c, const prov_worker_spec *s, json_t *host)
{
    if (s->memory_bytes > 0) {
        json_int_t mem = (json_int_t)(s->memory_bytes + c->agent_memory_bytes);
        json_object_set_new(host, "Memory", json_integer(mem));
        json_object_set_new(host, "MemorySwap", json_integer(mem));
    }
    if (s->cpu_millis > 0)
        json_object_set_new(host, "NanoCpus",
                            json_integer((json_int_t)s->cpu_millis * NS_PER_MILLICORE));
    if (c->pids_limit > 0)
        json_object_set_new(host, "PidsLimit", json_integer((json_int_t)c->pids_limit));
    if (s->gpu_count > 0)
        json_object_set_new(host, "DeviceRequests",
                            json_pack("[{s:s, s:I, s:[[s]]}]", "Driver", "", "Count",
                                      (json_int_t)s->gpu_count, "Capabilities", "gpu"));
}

json_t *docker_create_body(const docker_config *c, const prov_worker_env *env, const char *image,
                           const char *provider)
{
    int64_t grace_s = c->stop_grace_ms / MS_PER_S;
    json_t *host =
        json_pack("{s:s, s:{s:s}}", "NetworkMode", c->network, "RestartPolicy", "Name", "no");
    spec_agent_mount(c, host);
    spec_limits(c, &env->spec, host);
    return json_pack(
        "{s:s, s:[s,s,s,s], s:[], s:o, s:o, s:s, s:I, s:o}", "Image", image, "Entrypoint",
        DOCKER_AGENT_DIR "/lib/ld.so", "--library-path", DOCKER_AGENT_DIR "/lib",
        DOCKER_AGENT_DIR "/bin/hodei-worker", "Cmd", "Env", spec_env(env), "Labels",
        spec_labels(c, env, image, provider), "WorkingDir", "/", "StopTimeout",
        (json_int_t)(grace_s > SPEC_GRACE_S_MAX ? SPEC_GRACE_S_MAX : (grace_s < 1 ? 1 : grace_s)),
        "HostConfig", host);
}
