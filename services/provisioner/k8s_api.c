/* Calls to the Kubernetes API with its error handling. A failed call is
 * answered with a Status object ({"kind":"Status","status":"Failure",
 * "message":...,"reason":...,"code":...}); its message is what an operator
 * needs, so every error carries it. 429 (the API's priority and fairness
 * or a webhook's throttling) waits its Retry-After, 5xx backs off; both are
 * retried a bounded number of times. A watch streams newline-delimited
 * events, {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "k8s_int.h"

#define K8S_RETRY_AFTER_MAX_S 10 /* a Retry-After longer than this is cut to it */
#define K8S_BACKOFF_MS 200       /* first wait after a 5xx; doubles */
#define K8S_LINE_MAX (4u << 20)  /* one watch event */
#define K8S_TOKEN_MAX 16384

/* The bearer token for this request (a token file is re-read: bound
 * service account tokens rotate). Caller frees with explicit_bzero. */
static char *k8s_token(const k8s_conn *c)
{
    if (c->token)
        return strdup(c->token);
    if (!c->token_file)
        return NULL;
    FILE *f = fopen(c->token_file, "r");
    if (!f)
        return NULL;
    char *buf = calloc(1, K8S_TOKEN_MAX);
    size_t n = buf ? fread(buf, 1, K8S_TOKEN_MAX - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[n] = '\0', buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static void k8s_token_free(char *t)
{
    if (t) {
        explicit_bzero(t, strlen(t));
        free(t);
    }
}

static void k8s_target(const k8s_api *api, const char *token, int64_t timeout_ms,
                       prov_http_target *t)
{
    const k8s_conn *c = api->conn;
    *t = (prov_http_target){
        .base_url = c->server,
        .ca_file = c->ca_file,
        .ca_pem = c->ca_pem,
        .cert_file = c->cert_file,
        .key_file = c->key_file,
        .cert_pem = c->cert_pem,
        .key_pem = c->key_pem,
        .bearer_token = token,
        .insecure = c->insecure,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = api->timeout_ms,
        .cancel = api->cancel,
    };
}

static hodei_status k8s_status_code(long code)
{
    switch (code) {
    case 401:
        return HODEI_ERR_UNAUTHENTICATED;
    case 403:
        return HODEI_ERR_PERMISSION;
    case 404:
        return HODEI_ERR_NOT_FOUND;
    case 409:
        return HODEI_ERR_EXISTS;
    case 410:
        return HODEI_ERR_PRECONDITION;
    case 400:
    case 422:
        return HODEI_ERR_INVALID;
    default:
        return HODEI_ERR_UNAVAILABLE; /* 429, 5xx, anything unexpected */
    }
}

/* "<method> <path>: <code> <reason>: <Status.message>[: causes]". */
static hodei_status k8s_error(const char *method, const char *path, const prov_http_resp *r,
                              hodei_err *err)
{
    json_error_t jerr;
    json_t *status = json_loads(r->body.data ? r->body.data : "", 0, &jerr);
    const char *msg = json_string_value(json_object_get(status, "message"));
    const char *reason = json_string_value(json_object_get(status, "reason"));
    char causes[256] = "";
    size_t i, used = 0;
    json_t *cause;
    json_array_foreach(json_object_get(json_object_get(status, "details"), "causes"), i, cause)
    {
        const char *field = json_string_value(json_object_get(cause, "field"));
        const char *cmsg = json_string_value(json_object_get(cause, "message"));
        int n = snprintf(causes + used, sizeof causes - used, "%s%s: %s", used ? "; " : " (",
                         field ? field : "?", cmsg ? cmsg : "?");
        if (n < 0 || (size_t)n >= sizeof causes - used)
            break;
        used += (size_t)n;
    }
    if (used && used + 1 < sizeof causes)
        causes[used] = ')', causes[used + 1] = '\0';
    hodei_status st = hodei_err_set(err, k8s_status_code(r->status), "%s %s: %ld %s: %s%s", method,
                                    path, r->status, reason ? reason : "error",
                                    msg ? msg : "(no Status message)", causes);
    json_decref(status);
    return st;
}

static bool k8s_retryable(long code)
{
    return code == 429 || code >= 500;
}

hodei_status k8s_call(const k8s_api *api, const char *method, const char *path, json_t *body,
                      const char *content_type, json_t **out, hodei_err *err)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    prov_http_resp r;
    prov_http_target t;
    hodei_status st = HODEI_ERR_INTERNAL;
    int64_t backoff_ms = K8S_BACKOFF_MS;
    if (out)
        *out = NULL;
    if (body && !text)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s %s: out of memory", method, path);
    prov_http_resp_init(&r);
    for (int attempt = 0;; attempt++) {
        char *token = k8s_token(api->conn);
        k8s_target(api, token, api->timeout_ms, &t);
        st = prov_http_do(&t, method, path, text, content_type, &r, NULL, NULL, err);
        k8s_token_free(token);
        if (st != HODEI_OK)
            break;
        if (r.status >= 200 && r.status < 300) {
            json_error_t jerr;
            if (out && !(*out = json_loads(r.body.data, 0, &jerr)))
                st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "%s %s: answer is not JSON: %s",
                                   method, path, jerr.text);
            break;
        }
        if (!k8s_retryable(r.status) || attempt >= api->retries_max) {
            st = k8s_error(method, path, &r, err);
            break;
        }
        int64_t wait_ms = backoff_ms;
        if (r.status == 429 && r.retry_after_s >= 0)
            wait_ms = (r.retry_after_s > K8S_RETRY_AFTER_MAX_S ? K8S_RETRY_AFTER_MAX_S
                                                               : r.retry_after_s) *
                      1000;
        HLOG_WARN("kubernetes: %s %s: %ld; retrying in %lld ms", method, path, r.status,
                  (long long)wait_ms);
        hodei_sleep_ms(wait_ms);
        backoff_ms *= 2;
    }
    prov_http_resp_fini(&r);
    free(text);
    return st;
}

/* ------------------------------------------------------------ watch */

typedef struct {
    hodei_buf line;
    k8s_event_fn fn;
    void *ctx;
    bool stopped;
    bool bad;
    char *status_text; /* a Status object answered instead of a stream */
} k8s_stream;

static bool k8s_stream_line(k8s_stream *s, const char *text)
{
    json_error_t jerr;
    json_t *ev = json_loads(text, 0, &jerr);
    const char *type = json_string_value(json_object_get(ev, "type"));
    json_t *obj = json_object_get(ev, "object");
    const char *kind = json_string_value(json_object_get(ev, "kind"));
    bool go_on = true;
    if (!type && kind && strcmp(kind, "Status") == 0)
        s->status_text = strdup(text), go_on = false;
    else if (!type || !json_is_object(obj))
        s->bad = true, go_on = false;
    else
        go_on = s->fn(type, obj, s->ctx);
    json_decref(ev);
    return go_on;
}

static bool k8s_stream_chunk(const char *data, size_t len, void *ctx)
{
    k8s_stream *s = ctx;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (!hodei_buf_putc(&s->line, data[i]))
                return s->bad = true, false;
            continue;
        }
        if (s->line.len && !k8s_stream_line(s, s->line.data)) {
            s->stopped = true;
            return false;
        }
        hodei_buf_reset(&s->line);
    }
    return true;
}

hodei_status k8s_watch(const k8s_api *api, const char *path, k8s_event_fn on_event, void *ctx,
                       hodei_err *err)
{
    prov_http_resp r;
    prov_http_target t;
    k8s_stream s = {.fn = on_event, .ctx = ctx};
    hodei_buf_init(&s.line, K8S_LINE_MAX);
    prov_http_resp_init(&r);
    char *token = k8s_token(api->conn);
    k8s_target(api, token, 0, &t);
    hodei_status st = prov_http_do(&t, "GET", path, NULL, NULL, &r, k8s_stream_chunk, &s, err);
    k8s_token_free(token);
    if (st == HODEI_OK && (r.status < 200 || r.status >= 300)) {
        /* the error's Status object came instead of events */
        const char *text = s.status_text ? s.status_text : s.line.data ? s.line.data : "";
        hodei_buf_reset(&r.body);
        hodei_buf_puts(&r.body, text);
        st = k8s_error("GET", path, &r, err);
    } else if (st == HODEI_OK && s.bad)
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "GET %s: a watch event is not JSON", path);
    free(s.status_text);
    hodei_buf_fini(&s.line);
    prov_http_resp_fini(&r);
    return st;
}

hodei_status k8s_readyz(const k8s_api *api, long *status_out, char *body, size_t body_len,
                        hodei_err *err)
{
    prov_http_resp r;
    prov_http_target t;
    prov_http_resp_init(&r);
    char *token = k8s_token(api->conn);
    k8s_target(api, token, api->timeout_ms, &t);
    hodei_status st = prov_http_do(&t, "GET", "/readyz", NULL, NULL, &r, NULL, NULL, err);
    k8s_token_free(token);
    *status_out = r.status;
    snprintf(body, body_len, "%s", r.body.data ? r.body.data : "");
    prov_http_resp_fini(&r);
    return st;
}
