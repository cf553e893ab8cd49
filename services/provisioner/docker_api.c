/* The Docker Engine API over libcurl (see docker_api.h). */
#include "docker_api.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/util.h"

#define DOCKER_API_URL_MAX (DOCKER_API_HOST_MAX + DOCKER_API_PATH_MAX + 32)
#define DOCKER_API_VERSION_TIMEOUT_MS 5000
#define DOCKER_API_CONNECT_TIMEOUT_MS 3000
#define DOCKER_FRAME_HEADER 8

struct docker_api {
    char socket_path[DOCKER_API_HOST_MAX]; /* unix: the socket; "" for tcp */
    char base[DOCKER_API_HOST_MAX];        /* http://docker or https://host:port */
    char tls_ca[DOCKER_API_HOST_MAX], tls_cert[DOCKER_API_HOST_MAX], tls_key[DOCKER_API_HOST_MAX];
    pthread_mutex_t mu; /* guards the two below */
    char version[DOCKER_API_VERSION_TEXT_MAX];
    char engine[DOCKER_API_VERSION_TEXT_MAX * 2];
};

static pthread_once_t api_curl_once = PTHREAD_ONCE_INIT;

static void api_curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

hodei_status docker_api_create(const docker_api_opts *o, docker_api **out, hodei_err *err)
{
    const char *host = o->host && o->host[0] ? o->host : "unix:///var/run/docker.sock";
    docker_api *a = calloc(1, sizeof *a);
    if (!a)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "docker: out of memory");
    bool ok = true;
    if (strncmp(host, "unix://", 7) == 0) {
        ok = host[7] == '/' && hodei_strlcpy(a->socket_path, host + 7, sizeof a->socket_path);
        hodei_strlcpy(a->base, "http://docker", sizeof a->base);
    } else if (strncmp(host, "tcp://", 6) == 0) {
        bool tls = o->tls_ca && o->tls_ca[0];
        ok = host[6] != '\0' && snprintf(a->base, sizeof a->base, "%s://%s", tls ? "https" : "http",
                                         host + 6) < (int)sizeof a->base;
        ok = ok && hodei_strlcpy(a->tls_ca, o->tls_ca ? o->tls_ca : "", sizeof a->tls_ca) &&
             hodei_strlcpy(a->tls_cert, o->tls_cert ? o->tls_cert : "", sizeof a->tls_cert) &&
             hodei_strlcpy(a->tls_key, o->tls_key ? o->tls_key : "", sizeof a->tls_key);
    } else {
        ok = false;
    }
    if (!ok) {
        free(a);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "docker: host: '%.200s' is not unix:///path or tcp://host:port", host);
    }
    pthread_mutex_init(&a->mu, NULL);
    pthread_once(&api_curl_once, api_curl_init);
    *out = a;
    return HODEI_OK;
}

void docker_api_destroy(docker_api *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static size_t api_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    hodei_buf *b = user;
    size_t n = size * nmemb;
    hodei_buf_append(b, ptr, n); /* past its max: kept failed, the rest dropped */
    return n;
}

static struct curl_slist *api_headers(const docker_api_req *req)
{
    struct curl_slist *h = NULL;
    if (req->body)
        h = curl_slist_append(h, "Content-Type: application/json");
    return curl_slist_append(h, "Expect:");
}

static void api_tls(const docker_api *a, CURL *c)
{
    if (!a->tls_ca[0])
        return;
    curl_easy_setopt(c, CURLOPT_CAINFO, a->tls_ca);
    if (a->tls_cert[0]) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, a->tls_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY, a->tls_key);
    }
}

/* One request to url (version prefix included). */
static hodei_status api_perform(docker_api *a, const docker_api_req *req, const char *url,
                                long *status_out, hodei_buf *resp, hodei_err *err)
{
    CURL *c = curl_easy_init();
    if (!c)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "docker: curl_easy_init failed");
    struct curl_slist *headers = api_headers(req);
    char curl_err[CURL_ERROR_SIZE] = "";
    hodei_buf_reset(resp);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (a->socket_path[0])
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, a->socket_path);
    api_tls(a, c);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(req->body));
    } else if (strcmp(req->method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
    }
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, api_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_err);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)DOCKER_API_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)req->timeout_ms);
    CURLcode rc = curl_easy_perform(c);
    hodei_status st = HODEI_OK;
    if (rc != CURLE_OK)
        st = hodei_err_set(
            err, rc == CURLE_OPERATION_TIMEDOUT ? HODEI_ERR_TIMEOUT : HODEI_ERR_UNAVAILABLE,
            "docker engine at %s%s: %s %s: %s", a->socket_path[0] ? "unix://" : "",
            a->socket_path[0] ? a->socket_path : a->base, req->method, req->path,
            curl_err[0] ? curl_err : curl_easy_strerror(rc));
    else
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status_out);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    return st;
}

/* Keeps the engine's version, and ours: its API version capped at ours. */
static hodei_status api_version_parse(docker_api *a, const hodei_buf *resp, hodei_err *err)
{
    json_t *root = json_loadb(resp->data, resp->len, 0, NULL);
    const char *api = json_string_value(json_object_get(root, "ApiVersion"));
    const char *engine = json_string_value(json_object_get(root, "Version"));
    hodei_status st = HODEI_OK;
    int maj = 0, min = 0, max_min = 0, min_min = 0;
    sscanf(DOCKER_API_VERSION_MAX, "1.%d", &max_min);
    sscanf(DOCKER_API_VERSION_MIN, "1.%d", &min_min);
    if (!api || sscanf(api, "%d.%d", &maj, &min) != 2 || maj != 1)
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                           "docker: GET /version: no ApiVersion in the engine's answer");
    else if (min < min_min)
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                           "docker: the engine speaks API %s; at least " DOCKER_API_VERSION_MIN
                           " is needed (Docker 19.03 or later)",
                           api);
    if (st == HODEI_OK) {
        pthread_mutex_lock(&a->mu);
        snprintf(a->version, sizeof a->version, "1.%d", min < max_min ? min : max_min);
        snprintf(a->engine, sizeof a->engine, "%.20s", engine ? engine : "");
        pthread_mutex_unlock(&a->mu);
    }
    json_decref(root);
    return st;
}

hodei_status docker_api_version(docker_api *a, char out[DOCKER_API_VERSION_TEXT_MAX],
                                hodei_err *err)
{
    pthread_mutex_lock(&a->mu);
    hodei_strlcpy(out, a->version, DOCKER_API_VERSION_TEXT_MAX);
    pthread_mutex_unlock(&a->mu);
    if (out[0])
        return HODEI_OK;
    char url[DOCKER_API_URL_MAX];
    long status = 0;
    hodei_buf resp;
    docker_api_req req = {
        .method = "GET", .path = "/version", .timeout_ms = DOCKER_API_VERSION_TIMEOUT_MS};
    hodei_buf_init(&resp, DOCKER_API_RESPONSE_MAX);
    snprintf(url, sizeof url, "%s/version", a->base);
    hodei_status st = api_perform(a, &req, url, &status, &resp, err);
    if (st == HODEI_OK && status != 200)
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "docker: GET /version answered %ld", status);
    if (st == HODEI_OK)
        st = api_version_parse(a, &resp, err);
    hodei_buf_fini(&resp);
    if (st == HODEI_OK) {
        pthread_mutex_lock(&a->mu);
        hodei_strlcpy(out, a->version, DOCKER_API_VERSION_TEXT_MAX);
        pthread_mutex_unlock(&a->mu);
    }
    return st;
}

void docker_api_engine_version(docker_api *a, char *out, size_t out_len)
{
    pthread_mutex_lock(&a->mu);
    hodei_strlcpy(out, a->engine, out_len);
    pthread_mutex_unlock(&a->mu);
}

hodei_status docker_api_call(docker_api *a, const docker_api_req *req, long *status_out,
                             hodei_buf *resp, hodei_err *err)
{
    char version[DOCKER_API_VERSION_TEXT_MAX], url[DOCKER_API_URL_MAX];
    hodei_status st = docker_api_version(a, version, err);
    if (st != HODEI_OK)
        return st;
    if (snprintf(url, sizeof url, "%s/v%s%s", a->base, version, req->path) >= (int)sizeof url)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "docker: request path too long");
    *status_out = 0;
    st = api_perform(a, req, url, status_out, resp, err);
    if (st == HODEI_ERR_UNAVAILABLE) { /* an engine restarted: negotiate again next time */
        pthread_mutex_lock(&a->mu);
        a->version[0] = '\0';
        pthread_mutex_unlock(&a->mu);
    }
    return st;
}

void docker_api_message(const hodei_buf *resp, char *out, size_t out_len)
{
    json_t *root = resp->len ? json_loadb(resp->data, resp->len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(root, "message"));
    snprintf(out, out_len, "%s", msg ? msg : (resp->data ? resp->data : ""));
    out[strcspn(out, "\n")] = '\0';
    json_decref(root);
}

void docker_api_demux(const char *raw, size_t len, hodei_buf *out)
{
    size_t off = 0;
    while (off + DOCKER_FRAME_HEADER <= len) {
        const unsigned char *h = (const unsigned char *)raw + off;
        size_t n = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) | ((size_t)h[6] << 8) | h[7];
        if (h[0] > 2 || h[1] || h[2] || h[3]) { /* not multiplexed (a TTY): as it is */
            hodei_buf_append(out, raw + off, len - off);
            return;
        }
        off += DOCKER_FRAME_HEADER;
        if (n > len - off)
            n = len - off;
        hodei_buf_append(out, raw + off, n);
        off += n;
    }
}
