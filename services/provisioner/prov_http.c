/* libcurl behind prov_http.h. A fresh easy handle per request: drivers are
 * called from several threads and a request costs a network round trip, so
 * sharing handles (and their locks) buys nothing worth the risk. */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hodei/util.h"
#include "prov_http.h"

static pthread_once_t http_once = PTHREAD_ONCE_INIT;

static void http_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

void prov_http_global_init(void)
{
    pthread_once(&http_once, http_init_once);
}

void prov_http_resp_init(prov_http_resp *r)
{
    memset(r, 0, sizeof *r);
    hodei_buf_init(&r->body, PROV_HTTP_BODY_MAX);
    r->retry_after_s = -1;
}

void prov_http_resp_fini(prov_http_resp *r)
{
    if (r)
        hodei_buf_fini(&r->body);
}

typedef struct {
    prov_http_resp *resp;
    prov_http_chunk_fn on_chunk;
    void *ctx;
} http_sink;

static size_t http_write(char *data, size_t size, size_t n, void *userp)
{
    http_sink *s = userp;
    size_t len = size * n;
    if (s->on_chunk)
        return s->on_chunk(data, len, s->ctx) ? len : 0;
    return hodei_buf_append(&s->resp->body, data, len) ? len : 0;
}

static bool http_header_is(const char *line, size_t len, const char *name, const char **val)
{
    size_t nlen = strlen(name);
    if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return false;
    *val = line + nlen + 1;
    while (**val == ' ' || **val == '\t')
        (*val)++;
    return true;
}

static size_t http_header(char *line, size_t size, size_t n, void *userp)
{
    prov_http_resp *r = userp;
    size_t len = size * n;
    const char *v;
    char text[128];
    size_t vlen;
    if (http_header_is(line, len, "Retry-After", &v)) {
        vlen = strcspn(v, "\r\n");
        if (vlen < sizeof text) {
            memcpy(text, v, vlen);
            text[vlen] = '\0';
            int64_t secs;
            if (hodei_parse_i64(text, 0, 3600, &secs))
                r->retry_after_s = secs;
        }
    } else if (http_header_is(line, len, "Content-Type", &v)) {
        vlen = strcspn(v, "\r\n");
        if (vlen >= sizeof r->content_type)
            vlen = sizeof r->content_type - 1;
        memcpy(r->content_type, v, vlen);
        r->content_type[vlen] = '\0';
    }
    return len;
}

static bool http_blob(CURL *c, CURLoption opt, const char *pem)
{
    struct curl_blob blob = {.data = (void *)pem, .len = strlen(pem), .flags = CURL_BLOB_COPY};
    return curl_easy_setopt(c, opt, &blob) == CURLE_OK;
}

static bool set(const char *s)
{
    return s && s[0];
}

/* TLS material and authentication. */
static bool http_setup_tls(CURL *c, const prov_http_target *t)
{
    bool ok = true;
    if (set(t->ca_file))
        ok = ok && curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file) == CURLE_OK;
    if (set(t->ca_pem))
        ok = ok && http_blob(c, CURLOPT_CAINFO_BLOB, t->ca_pem);
    if (set(t->cert_file))
        ok = ok && curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert_file) == CURLE_OK;
    if (set(t->cert_pem))
        ok = ok && curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM") == CURLE_OK &&
             http_blob(c, CURLOPT_SSLCERT_BLOB, t->cert_pem);
    if (set(t->key_file))
        ok = ok && curl_easy_setopt(c, CURLOPT_SSLKEY, t->key_file) == CURLE_OK;
    if (set(t->key_pem))
        ok = ok && curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM") == CURLE_OK &&
             http_blob(c, CURLOPT_SSLKEY_BLOB, t->key_pem);
    if (t->insecure)
        ok = ok && curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
    return ok;
}

static struct curl_slist *http_headers(const prov_http_target *t, const char *body,
                                       const char *content_type, bool *ok)
{
    struct curl_slist *h = NULL, *n;
    char line[4096 + 32];
    *ok = true;
    if ((n = curl_slist_append(h, "Accept: application/json")) == NULL)
        goto fail;
    h = n;
    if (body) {
        snprintf(line, sizeof line, "Content-Type: %s",
                 set(content_type) ? content_type : "application/json");
        if ((n = curl_slist_append(h, line)) == NULL)
            goto fail;
        h = n;
    }
    if (set(t->bearer_token)) {
        int len = snprintf(line, sizeof line, "Authorization: Bearer %s", t->bearer_token);
        n = len > 0 && (size_t)len < sizeof line ? curl_slist_append(h, line) : NULL;
        explicit_bzero(line, sizeof line);
        if (!n)
            goto fail;
        h = n;
    }
    return h;
fail:
    *ok = false;
    return h;
}

static hodei_status http_curl_error(CURLcode rc, const char *method, const char *path,
                                    const char *detail, hodei_err *err)
{
    const char *why = detail[0] ? detail : curl_easy_strerror(rc);
    hodei_status st = rc == CURLE_OPERATION_TIMEDOUT ? HODEI_ERR_TIMEOUT : HODEI_ERR_UNAVAILABLE;
    return hodei_err_set(err, st, "%s %s: %s", method, path, why);
}

static int http_progress(void *p, curl_off_t dlt, curl_off_t dl, curl_off_t ult, curl_off_t ul)
{
    const volatile int *cancel = p;
    return *cancel ? 1 : 0;
}

static bool http_setup(CURL *c, const prov_http_target *t, const char *method, const char *url,
                       const char *body, http_sink *sink, char *errbuf)
{
    bool ok = curl_easy_setopt(c, CURLOPT_URL, url) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http_write) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_WRITEDATA, sink) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, http_header) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_HEADERDATA, sink->resp) == CURLE_OK &&
              curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
    if (body)
        ok = ok && curl_easy_setopt(c, CURLOPT_POSTFIELDS, body) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body)) == CURLE_OK;
    if (t->cancel)
        ok = ok && curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, http_progress) == CURLE_OK &&
             curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)t->cancel) == CURLE_OK;
    if (set(t->unix_socket))
        ok = ok && curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, t->unix_socket) == CURLE_OK;
    if (t->timeout_ms > 0)
        ok = ok && curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms) == CURLE_OK;
    if (t->connect_timeout_ms > 0)
        ok = ok && curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)t->connect_timeout_ms) ==
                       CURLE_OK;
    return ok && http_setup_tls(c, t);
}

hodei_status prov_http_do(const prov_http_target *t, const char *method, const char *path,
                          const char *body, const char *content_type, prov_http_resp *resp,
                          prov_http_chunk_fn on_chunk, void *chunk_ctx, hodei_err *err)
{
    char url[PROV_HTTP_URL_MAX], errbuf[CURL_ERROR_SIZE] = "";
    hodei_status st = HODEI_ERR_INTERNAL;
    bool ok;
    prov_http_global_init();
    int n = snprintf(url, sizeof url, "%s%s", t->base_url, path);
    if (n < 0 || (size_t)n >= sizeof url)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "%s %s: URL longer than %d bytes", method, path,
                             PROV_HTTP_URL_MAX);
    CURL *c = curl_easy_init();
    if (!c)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s %s: curl_easy_init failed", method, path);
    struct curl_slist *hdrs = http_headers(t, body, content_type, &ok);
    http_sink sink = {resp, on_chunk, chunk_ctx};
    resp->status = 0;
    resp->retry_after_s = -1;
    hodei_buf_reset(&resp->body);
    if (!ok || !http_setup(c, t, method, url, body, &sink, errbuf) ||
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK) {
        st = hodei_err_set(err, HODEI_ERR_INTERNAL, "%s %s: setting up the request failed", method,
                           path);
        goto out;
    }
    CURLcode rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if ((rc == CURLE_WRITE_ERROR && on_chunk) || (rc == CURLE_ABORTED_BY_CALLBACK && t->cancel))
        st = HODEI_OK; /* the stream's reader stopped it */
    else if (rc == CURLE_WRITE_ERROR)
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "%s %s: response larger than %u bytes", method,
                           path, PROV_HTTP_BODY_MAX);
    else if (rc != CURLE_OK)
        st = http_curl_error(rc, method, path, errbuf, err);
    else
        st = HODEI_OK;
out:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return st;
}
