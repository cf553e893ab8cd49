/* The Docker provider: each worker is a container named hodei-<worker id>,
 * labelled hodei.worker-id, hodei.provider and hodei.image, running the
 * job's image (or the provider's worker image) with the agent brought in
 * read-only from the agent bundle (docker_spec.c). Talks to the engine
 * through the Engine API (docker_api.c); provider_ref = the container id.
 *
 *   create_worker  POST /containers/create (a missing image is pulled first
 *                  unless pull = never), then /start; a container left by an
 *                  earlier try under the same name is removed first
 *   get_status     GET /containers/<id>/json: running, paused or restarting
 *                  = RUNNING; created, exited, dead or missing = GONE
 *   destroy_worker POST /stop (destroy_grace), DELETE ?force&v; 404 = gone
 *   list_workers   GET /containers/json?all, label hodei.provider=<name>;
 *                  exited ones older than exited_ttl are removed on the way
 *   health         GET /_ping and the negotiated API version
 *   describe_exit  exit code, OOM flag and the last log lines */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "docker_int.h"
#include "hodei/image_ref.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define DK_CALL_TIMEOUT_MS 30000
#define DK_STOP_EXTRA_MS 15000 /* beyond the stop timeout, for the engine's own work */
#define DK_SMALL_MAX (256u << 10)
#define DK_MSG_MAX 384
#define DK_LOG_TAIL "20"
#define DK_LOG_MAX (64u << 10)
#define DK_ESCAPED_MAX 2048

typedef struct {
    prov_driver base; /* first: the provisioner sees only this */
    docker_config cfg;
    docker_api *api;
    pthread_mutex_t mu; /* guards the two below */
    int64_t ncpu;       /* from GET /info, 0 = not read yet */
    int64_t mem_total;
} dk_driver;

static dk_driver *dk_of(prov_driver *drv)
{
    return (dk_driver *)drv;
}

/* One call with a small answer; resp must be fini'd by the caller. */
static hodei_status dk_call(dk_driver *d, const char *method, const char *path, const char *body,
                            int64_t timeout_ms, long *status, hodei_buf *resp, hodei_err *err)
{
    docker_api_req req = {.method = method, .path = path, .body = body, .timeout_ms = timeout_ms};
    hodei_buf_init(resp, DOCKER_API_RESPONSE_MAX);
    return docker_api_call(d->api, &req, status, resp, err);
}

static void dk_name(const char *worker_id, char out[DOCKER_NAME_MAX])
{
    snprintf(out, DOCKER_NAME_MAX, DOCKER_NAME_PREFIX "%s", worker_id);
}

/* Percent-encodes s for a query string. */
static bool dk_escape(const char *s, char *out, size_t out_len)
{
    char *e = curl_easy_escape(NULL, s, 0);
    bool ok = e && hodei_strlcpy(out, e, out_len);
    curl_free(e);
    return ok;
}

/* ------------------------------------------------------------ engine facts */

/* CPUs and memory of the engine's host, read once. */
static void dk_info(dk_driver *d, int64_t *ncpu, int64_t *mem)
{
    pthread_mutex_lock(&d->mu);
    *ncpu = d->ncpu;
    *mem = d->mem_total;
    pthread_mutex_unlock(&d->mu);
    if (*ncpu > 0)
        return;
    long status = 0;
    hodei_buf resp;
    hodei_err err = {0};
    if (dk_call(d, "GET", "/info", NULL, DK_CALL_TIMEOUT_MS, &status, &resp, &err) == HODEI_OK &&
        status == 200) {
        json_t *root = json_loadb(resp.data, resp.len, 0, NULL);
        *ncpu = json_integer_value(json_object_get(root, "NCPU"));
        *mem = json_integer_value(json_object_get(root, "MemTotal"));
        json_decref(root);
        pthread_mutex_lock(&d->mu);
        d->ncpu = *ncpu;
        d->mem_total = *mem;
        pthread_mutex_unlock(&d->mu);
    }
    hodei_buf_fini(&resp);
}

/* A worker larger than the engine's host can never be made. */
static hodei_status dk_check_size(dk_driver *d, const prov_worker_env *w, hodei_err *err)
{
    int64_t ncpu = 0, mem = 0;
    dk_info(d, &ncpu, &mem);
    if (ncpu > 0 && w->spec.cpu_millis > ncpu * 1000)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker %s: %.3f CPUs asked, but the engine's host has %" PRId64,
                             w->worker_id, (double)w->spec.cpu_millis / 1000.0, ncpu);
    if (mem > 0 && w->spec.memory_bytes > mem)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker %s: %" PRId64 " bytes of memory asked, but the engine's host"
                             " has %" PRId64,
                             w->worker_id, w->spec.memory_bytes, mem);
    return HODEI_OK;
}

/* ------------------------------------------------------------ images */

/* The "error" of the pull's progress stream, if a line has one. */
static bool dk_pull_error(const hodei_buf *resp, char *msg, size_t msg_len)
{
    const char *line = resp->data ? resp->data : "";
    bool found = false;
    while (*line) {
        size_t n = strcspn(line, "\n");
        json_t *j = json_loadb(line, n, 0, NULL);
        const char *e = json_string_value(json_object_get(j, "error"));
        if (e) {
            snprintf(msg, msg_len, "%s", e);
            found = true;
        }
        json_decref(j);
        line += n;
        while (*line == '\n')
            line++;
    }
    return found;
}

/* POST /images/create?fromImage=<ref>. The engine answers 200 and then
 * streams progress; a failure mid-way is an "error" member in the stream. */
static hodei_status dk_pull(dk_driver *d, const char *image, hodei_err *err)
{
    char esc[DK_ESCAPED_MAX], path[DOCKER_API_PATH_MAX + DK_ESCAPED_MAX], msg[DK_MSG_MAX];
    long status = 0;
    hodei_buf resp;
    if (!dk_escape(image, esc, sizeof esc))
        return hodei_err_set(err, HODEI_ERR_INVALID, "image %.200s: name too long", image);
    snprintf(path, sizeof path, "/images/create?fromImage=%s", esc);
    int64_t t0 = hodei_mono_ms();
    hodei_status st = dk_call(d, "POST", path, NULL, d->cfg.pull_timeout_ms, &status, &resp, err);
    if (st == HODEI_OK && (status != 200 || dk_pull_error(&resp, msg, sizeof msg))) {
        if (status != 200)
            docker_api_message(&resp, msg, sizeof msg);
        st = hodei_err_set(err, HODEI_ERR_NOT_FOUND,
                           "image %.200s does not exist on the engine and could not be pulled: %s",
                           image, msg);
    } else if (st == HODEI_OK) {
        HLOG_INFO("image %s pulled in %" PRId64 " ms", image, hodei_mono_ms() - t0);
    } else if (st == HODEI_ERR_TIMEOUT) {
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                           "image %.200s: pull took over %" PRId64 " ms (config.pull_timeout)",
                           image, d->cfg.pull_timeout_ms);
    }
    hodei_buf_fini(&resp);
    return st;
}

static bool dk_image_present(dk_driver *d, const char *image)
{
    char esc[DK_ESCAPED_MAX], path[DOCKER_API_PATH_MAX + DK_ESCAPED_MAX];
    long status = 0;
    hodei_buf resp;
    hodei_err err = {0};
    if (!dk_escape(image, esc, sizeof esc))
        return false;
    snprintf(path, sizeof path, "/images/%s/json", esc);
    bool ok = dk_call(d, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &status, &resp, &err) == HODEI_OK &&
              status == 200;
    hodei_buf_fini(&resp);
    return ok;
}

/* ------------------------------------------------------------ containers */

/* Stop (graceful, then killed by the engine), then remove; a container
 * that is gone already is fine. */
static hodei_status dk_remove(dk_driver *d, const char *target, hodei_err *err)
{
    char path[DOCKER_API_PATH_MAX], msg[DK_MSG_MAX];
    long status = 0;
    hodei_buf resp;
    int64_t grace_s = d->cfg.stop_grace_ms / 1000;
    snprintf(path, sizeof path, "/containers/%s/stop?t=%" PRId64, target, grace_s);
    hodei_status st = dk_call(d, "POST", path, NULL, d->cfg.stop_grace_ms + DK_STOP_EXTRA_MS,
                              &status, &resp, err);
    hodei_buf_fini(&resp);
    if (st != HODEI_OK)
        return st;
    if (status == 404)
        return HODEI_OK;
    snprintf(path, sizeof path, "/containers/%s?force=true&v=true", target);
    st = dk_call(d, "DELETE", path, NULL, DK_CALL_TIMEOUT_MS, &status, &resp, err);
    if (st == HODEI_OK && status != 204 && status != 404 && status != 409) {
        docker_api_message(&resp, msg, sizeof msg);
        st = hodei_err_set(err, HODEI_ERR_IO, "container %s: remove answered %ld: %s", target,
                           status, msg);
    }
    hodei_buf_fini(&resp);
    return st;
}

/* POST /containers/create; *status_out 201 with the id, 404 no such image,
 * 409 the name is taken; other answers are errors. */
static hodei_status dk_create(dk_driver *d, const prov_worker_env *w, const char *image,
                              long *status_out, char id_out[PROV_REF_MAX], hodei_err *err)
{
    char name[DOCKER_NAME_MAX], path[DOCKER_API_PATH_MAX], msg[DK_MSG_MAX];
    hodei_buf resp;
    json_t *body = docker_create_body(&d->cfg, w, image, d->base.name);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "worker %s: container spec", w->worker_id);
    dk_name(w->worker_id, name);
    snprintf(path, sizeof path, "/containers/create?name=%s", name);
    hodei_status st = dk_call(d, "POST", path, text, DK_CALL_TIMEOUT_MS, status_out, &resp, err);
    explicit_bzero(text, strlen(text)); /* it held the token */
    free(text);
    if (st != HODEI_OK)
        goto out;
    docker_api_message(&resp, msg, sizeof msg);
    if (*status_out == 201) {
        json_t *root = json_loadb(resp.data, resp.len, 0, NULL);
        const char *id = json_string_value(json_object_get(root, "Id"));
        if (!id || !hodei_strlcpy(id_out, id, PROV_REF_MAX))
            st = hodei_err_set(err, HODEI_ERR_IO, "worker %s: create answered no Id", w->worker_id);
        json_decref(root);
    } else if (*status_out == 404 && strstr(msg, "No such image")) {
        /* the caller pulls */
    } else if (*status_out != 409) {
        st = hodei_err_set(err, *status_out == 400 ? HODEI_ERR_INVALID : HODEI_ERR_IO,
                           "worker %s: creating a container of %.200s: engine answered %ld: %s",
                           w->worker_id, image, *status_out, msg);
    }
out:
    hodei_buf_fini(&resp);
    return st;
}

/* GPUs asked of an engine without a device driver for them fail at start. */
static hodei_status dk_start(dk_driver *d, const prov_worker_env *w, const char *id, hodei_err *err)
{
    char path[DOCKER_API_PATH_MAX], msg[DK_MSG_MAX];
    long status = 0;
    hodei_buf resp;
    snprintf(path, sizeof path, "/containers/%s/start", id);
    hodei_status st = dk_call(d, "POST", path, NULL, DK_CALL_TIMEOUT_MS, &status, &resp, err);
    if (st == HODEI_OK && status != 204 && status != 304) {
        docker_api_message(&resp, msg, sizeof msg);
        if (w->spec.gpu_count > 0 && strstr(msg, "device driver"))
            st = hodei_err_set(err, HODEI_ERR_INVALID,
                               "worker %s: %" PRId64 " GPU(s) asked, but this engine cannot give"
                               " containers GPUs (%s; install the NVIDIA container toolkit)",
                               w->worker_id, w->spec.gpu_count, msg);
        else
            st = hodei_err_set(err, HODEI_ERR_IO, "worker %s: starting its container: %ld: %s",
                               w->worker_id, status, msg);
    }
    hodei_buf_fini(&resp);
    return st;
}

/* Creates, pulling a missing image (or every time with pull = always) and
 * clearing a container an earlier try left under the same name. */
static hodei_status dk_create_pulling(dk_driver *d, const prov_worker_env *w, const char *image,
                                      char id[PROV_REF_MAX], hodei_err *err)
{
    char name[DOCKER_NAME_MAX];
    long status = 0;
    hodei_status st = HODEI_OK;
    bool pulled = false, cleared = false;
    /* pull = missing: no look-up first (one engine round trip less per cold
     * start); a create answered 404 (no such image) pulls, then creates */
    if (d->cfg.pull == DOCKER_PULL_ALWAYS) {
        if ((st = dk_pull(d, image, err)) != HODEI_OK)
            return st;
        pulled = true;
    }
    for (;;) {
        if ((st = dk_create(d, w, image, &status, id, err)) != HODEI_OK || status == 201)
            return st;
        if (status == 409 && !cleared) {
            dk_name(w->worker_id, name);
            HLOG_WARN("worker %s: container %s left by an earlier try: removing it", w->worker_id,
                      name);
            if ((st = dk_remove(d, name, err)) != HODEI_OK)
                return st;
            cleared = true;
        } else if (status == 404 && !pulled && d->cfg.pull != DOCKER_PULL_NEVER) {
            if ((st = dk_pull(d, image, err)) != HODEI_OK)
                return st;
            pulled = true;
        } else if (status == 404) {
            return hodei_err_set(err, HODEI_ERR_NOT_FOUND,
                                 "image %.200s does not exist on the engine%s", image,
                                 d->cfg.pull == DOCKER_PULL_NEVER ? " (config.pull = never)" : "");
        } else {
            return hodei_err_set(err, HODEI_ERR_IO, "worker %s: container name %s stays taken",
                                 w->worker_id, name);
        }
    }
}

static hodei_status dk_create_worker(prov_driver *drv, const prov_worker_env *w,
                                     char ref_out[PROV_REF_MAX], hodei_err *err)
{
    dk_driver *d = dk_of(drv);
    const char *image = w->spec.image && w->spec.image[0] ? w->spec.image : d->cfg.worker_image;
    char id[PROV_REF_MAX] = "";
    hodei_err rm_err = {0};
    if (!hodei_image_ref_parse(image, NULL, NULL))
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "image %.200s is not a valid reference",
                             image);
    int64_t t0 = (hodei_mono_ns() / 1000);
    hodei_status st = dk_check_size(d, w, err);
    if (st == HODEI_OK)
        st = dk_create_pulling(d, w, image, id, err);
    if (st != HODEI_OK)
        return st;
    int64_t t1 = (hodei_mono_ns() / 1000);
    if ((st = dk_start(d, w, id, err)) != HODEI_OK) {
        if (dk_remove(d, id, &rm_err) != HODEI_OK)
            HLOG_WARN("worker %s: removing the container that did not start: %s", w->worker_id,
                      rm_err.msg);
        return st;
    }
    HLOG_INFO("worker %s: container %.12s of %s created in %.1f ms, started in %.1f ms",
              w->worker_id, id, image, (double)(t1 - t0) / 1000.0,
              (double)((hodei_mono_ns() / 1000) - t1) / 1000.0);
    hodei_strlcpy(ref_out, id, PROV_REF_MAX);
    return HODEI_OK;
}

/* ------------------------------------------------------------ status */

static bool dk_state_live(const char *state)
{
    return state && (strcmp(state, "running") == 0 || strcmp(state, "paused") == 0 ||
                     strcmp(state, "restarting") == 0);
}

/* GET /containers/<target>/json; *root_out NULL when it does not exist. */
static hodei_status dk_inspect(dk_driver *d, const char *target, json_t **root_out, hodei_err *err)
{
    char path[DOCKER_API_PATH_MAX], msg[DK_MSG_MAX];
    long status = 0;
    hodei_buf resp;
    *root_out = NULL;
    snprintf(path, sizeof path, "/containers/%s/json", target);
    hodei_status st = dk_call(d, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &status, &resp, err);
    if (st == HODEI_OK && status == 200)
        *root_out = json_loadb(resp.data, resp.len, 0, NULL);
    else if (st == HODEI_OK && status != 404) {
        docker_api_message(&resp, msg, sizeof msg);
        st = hodei_err_set(err, HODEI_ERR_IO, "container %s: inspect answered %ld: %s", target,
                           status, msg);
    }
    hodei_buf_fini(&resp);
    return st;
}

/* The worker's container: by its ref when known, else by name; only one
 * labelled with this worker id and provider counts. */
static hodei_status dk_find(dk_driver *d, const char *worker_id, const char *ref, json_t **root,
                            hodei_err *err)
{
    char name[DOCKER_NAME_MAX];
    dk_name(worker_id, name);
    hodei_status st = dk_inspect(d, ref && ref[0] ? ref : name, root, err);
    if (st == HODEI_OK && !*root && ref && ref[0])
        st = dk_inspect(d, name, root, err);
    if (st != HODEI_OK || !*root)
        return st;
    json_t *labels = json_object_get(json_object_get(*root, "Config"), "Labels");
    const char *w = json_string_value(json_object_get(labels, DOCKER_LABEL_WORKER));
    const char *p = json_string_value(json_object_get(labels, DOCKER_LABEL_PROVIDER));
    if (!w || strcmp(w, worker_id) != 0 || !p || strcmp(p, d->base.name) != 0) {
        json_decref(*root);
        *root = NULL;
    }
    return HODEI_OK;
}

static hodei_status dk_get_status(prov_driver *drv, const char *worker_id, const char *ref,
                                  prov_worker_status *out, char ref_out[PROV_REF_MAX],
                                  hodei_err *err)
{
    json_t *root = NULL;
    *out = PROV_WORKER_GONE;
    hodei_status st = dk_find(dk_of(drv), worker_id, ref, &root, err);
    if (st != HODEI_OK || !root)
        return st;
    const char *state =
        json_string_value(json_object_get(json_object_get(root, "State"), "Status"));
    if (dk_state_live(state)) {
        *out = PROV_WORKER_RUNNING;
        if (ref_out)
            hodei_strlcpy(ref_out, json_string_value(json_object_get(root, "Id")), PROV_REF_MAX);
    }
    json_decref(root);
    return HODEI_OK;
}

static hodei_status dk_destroy_worker(prov_driver *drv, const char *worker_id, const char *ref,
                                      hodei_err *err)
{
    dk_driver *d = dk_of(drv);
    char name[DOCKER_NAME_MAX];
    dk_name(worker_id, name);
    hodei_status st = dk_remove(d, name, err);
    if (st == HODEI_OK && ref && ref[0])
        st = dk_remove(d, ref, err); /* a container of ours under another name: none normally */
    return st;
}

/* ------------------------------------------------------------ listing */

/* RFC 3339 time of the engine ("2026-12-07T05:03:38.758494858Z") in ms. */
static int64_t dk_time_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    if (!s || !strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
        return 0;
    return (int64_t)timegm(&tm) * 1000;
}

/* An exited (or never started) worker container: removed once exited_ttl
 * passed since it ended (its logs are kept that long for the saga). */
static void dk_collect(dk_driver *d, const char *id, const char *worker_id)
{
    json_t *root = NULL;
    hodei_err err = {0};
    if (dk_inspect(d, id, &root, &err) != HODEI_OK || !root)
        return;
    json_t *state = json_object_get(root, "State");
    const char *s = json_string_value(json_object_get(state, "Status"));
    int64_t ended = dk_time_ms(json_string_value(json_object_get(state, "FinishedAt")));
    if (ended <= 0 || (s && strcmp(s, "created") == 0))
        ended = dk_time_ms(json_string_value(json_object_get(root, "Created")));
    json_decref(root);
    if (ended <= 0 || hodei_wall_us() / 1000 - ended < d->cfg.exited_ttl_ms)
        return;
    if (dk_remove(d, id, &err) == HODEI_OK)
        HLOG_INFO("worker %s: its exited container %.12s removed", worker_id, id);
    else
        HLOG_WARN("worker %s: removing its exited container: %s", worker_id, err.msg);
}

static hodei_status dk_list_parse(dk_driver *d, const hodei_buf *resp, prov_worker_ref *out,
                                  size_t cap, size_t *n_out, hodei_err *err)
{
    json_t *root = json_loadb(resp->data, resp->len, 0, NULL);
    if (!json_is_array(root)) {
        json_decref(root);
        return hodei_err_set(err, HODEI_ERR_IO, "list workers: the engine's answer is not a list");
    }
    size_t i;
    json_t *c;
    json_array_foreach(root, i, c)
    {
        const char *id = json_string_value(json_object_get(c, "Id"));
        const char *state = json_string_value(json_object_get(c, "State"));
        const char *wid =
            json_string_value(json_object_get(json_object_get(c, "Labels"), DOCKER_LABEL_WORKER));
        if (!id || !wid || !hodei_id_valid(wid))
            continue;
        if (!dk_state_live(state)) {
            dk_collect(d, id, wid);
            continue;
        }
        if (*n_out < cap) {
            hodei_strlcpy(out[*n_out].worker_id, wid, sizeof out[*n_out].worker_id);
            hodei_strlcpy(out[*n_out].ref, id, sizeof out[*n_out].ref);
            (*n_out)++;
        }
    }
    json_decref(root);
    return HODEI_OK;
}

static hodei_status dk_list_workers(prov_driver *drv, prov_worker_ref *out, size_t cap,
                                    size_t *n_out, hodei_err *err)
{
    dk_driver *d = dk_of(drv);
    char filter[DK_ESCAPED_MAX], esc[DK_ESCAPED_MAX], path[DOCKER_API_PATH_MAX + DK_ESCAPED_MAX];
    long status = 0;
    hodei_buf resp;
    *n_out = 0;
    snprintf(filter, sizeof filter, "{\"label\":[\"" DOCKER_LABEL_PROVIDER "=%s\"]}", d->base.name);
    if (!dk_escape(filter, esc, sizeof esc))
        return hodei_err_set(err, HODEI_ERR_LIMIT, "list workers: filter too long");
    snprintf(path, sizeof path, "/containers/json?all=true&filters=%s", esc);
    hodei_status st = dk_call(d, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &status, &resp, err);
    if (st == HODEI_OK && status != 200)
        st = hodei_err_set(err, HODEI_ERR_IO, "list workers: engine answered %ld", status);
    if (st == HODEI_OK)
        st = dk_list_parse(d, &resp, out, cap, n_out, err);
    hodei_buf_fini(&resp);
    return st;
}

/* ------------------------------------------------------------ health, exit */

static bool dk_health(prov_driver *drv, char msg[PROV_HEALTH_MSG_MAX])
{
    dk_driver *d = dk_of(drv);
    char version[DOCKER_API_VERSION_TEXT_MAX], engine[DOCKER_API_VERSION_TEXT_MAX * 2];
    long status = 0;
    hodei_buf resp;
    hodei_err err = {0};
    hodei_status st = dk_call(d, "GET", "/_ping", NULL, DK_CALL_TIMEOUT_MS, &status, &resp, &err);
    hodei_buf_fini(&resp);
    if (st == HODEI_OK && status != 200)
        st = hodei_err_set(&err, HODEI_ERR_UNAVAILABLE, "GET /_ping answered %ld", status);
    if (st == HODEI_OK)
        st = docker_api_version(d->api, version, &err);
    if (st != HODEI_OK) {
        snprintf(msg, PROV_HEALTH_MSG_MAX, "%.250s", err.msg);
        return false;
    }
    docker_api_engine_version(d->api, engine, sizeof engine);
    bool image = dk_image_present(d, d->cfg.worker_image);
    snprintf(msg, PROV_HEALTH_MSG_MAX, "ok: docker %.20s (API %s) at %.100s; worker image %.60s%s",
             engine, version, d->cfg.host, d->cfg.worker_image,
             image ? "" : " not on the engine yet");
    return true;
}

/* The last lines of the container's output, joined with " | ". */
static void dk_last_lines(dk_driver *d, const char *target, char *out, size_t out_len)
{
    char path[DOCKER_API_PATH_MAX];
    long status = 0;
    hodei_buf resp, text;
    hodei_err err = {0};
    out[0] = '\0';
    snprintf(path, sizeof path, "/containers/%s/logs?stdout=1&stderr=1&tail=" DK_LOG_TAIL, target);
    if (dk_call(d, "GET", path, NULL, DK_CALL_TIMEOUT_MS, &status, &resp, &err) != HODEI_OK ||
        status != 200) {
        hodei_buf_fini(&resp);
        return;
    }
    hodei_buf_init(&text, DK_LOG_MAX);
    docker_api_demux(resp.data, resp.len, &text);
    hodei_buf_fini(&resp);
    /* keep the end: it says why */
    const char *s = text.data ? text.data : "";
    size_t len = text.len, room = out_len > 1 ? out_len - 1 : 0;
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
        len--;
    size_t start = len > room ? len - room : 0;
    size_t o = 0;
    for (size_t i = start; i < len && o < room; i++)
        out[o++] = s[i] == '\n' ? '|' : (s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
    out[o] = '\0';
    hodei_buf_fini(&text);
}

static void dk_describe_exit(prov_driver *drv, const char *worker_id, const char *ref, char *out,
                             size_t out_len)
{
    dk_driver *d = dk_of(drv);
    json_t *root = NULL;
    hodei_err err = {0};
    char lines[PROV_HEALTH_MSG_MAX * 4];
    out[0] = '\0';
    if (dk_find(d, worker_id, ref, &root, &err) != HODEI_OK || !root) {
        snprintf(out, out_len, "its container is gone");
        return;
    }
    json_t *state = json_object_get(root, "State");
    const char *id = json_string_value(json_object_get(root, "Id"));
    dk_last_lines(d, id ? id : "", lines, sizeof lines);
    const char *e = json_string_value(json_object_get(state, "Error"));
    snprintf(out, out_len,
             "container exited with code %" JSON_INTEGER_FORMAT "%s%s%s; last output: %s",
             json_integer_value(json_object_get(state, "ExitCode")),
             json_is_true(json_object_get(state, "OOMKilled")) ? " (killed: out of memory)" : "",
             e && e[0] ? "; engine: " : "", e ? e : "", lines[0] ? lines : "(none)");
    json_decref(root);
}

/* ------------------------------------------------------------ instance */

static void dk_capabilities(const prov_driver *drv, prov_caps *out)
{
    const dk_driver *d = (const dk_driver *)drv;
    out->isolation = "container";
    out->survives_restart = true;
    out->create_timeout_ms = d->cfg.pull_timeout_ms + 2 * DK_CALL_TIMEOUT_MS;
}

static hodei_status dk_create_driver(const prov_driver_params *p, prov_driver **out, hodei_err *err)
{
    dk_driver *d = calloc(1, sizeof *d);
    if (!d)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "docker provider: out of memory");
    d->base.ops = &prov_docker_ops;
    hodei_strlcpy(d->base.name, p->name, sizeof d->base.name);
    hodei_status st = docker_config_parse(p, &d->cfg, err);
    docker_api_opts o = {d->cfg.host, d->cfg.tls_ca, d->cfg.tls_cert, d->cfg.tls_key};
    if (st == HODEI_OK)
        st = docker_api_create(&o, &d->api, err);
    if (st != HODEI_OK) {
        free(d);
        return st;
    }
    pthread_mutex_init(&d->mu, NULL);
    HLOG_INFO("provider %s: docker at %s, worker image %s, network %s, agent %s%s", p->name,
              d->cfg.host, d->cfg.worker_image, d->cfg.network,
              d->cfg.agent_volume[0] ? "volume " : "",
              d->cfg.agent_volume[0] ? d->cfg.agent_volume : d->cfg.agent_bundle);
    *out = &d->base;
    return HODEI_OK;
}

static void dk_destroy_driver(prov_driver *drv)
{
    if (!drv)
        return;
    dk_driver *d = dk_of(drv);
    docker_api_destroy(d->api);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const prov_driver_ops prov_docker_ops = {
    .type = "docker",
    .create = dk_create_driver,
    .destroy = dk_destroy_driver,
    .create_worker = dk_create_worker,
    .get_status = dk_get_status,
    .destroy_worker = dk_destroy_worker,
    .list_workers = dk_list_workers,
    .health = dk_health,
    .capabilities = dk_capabilities,
    .describe_exit = dk_describe_exit,
};
