/* S3: GetObject, ListObjectsV2, PutObject and multipart uploads over the
 * plain REST API, signed with SigV4 (UNSIGNED-PAYLOAD for file bodies, so a
 * file is read once). Endpoint, region and path style come from the
 * worker's configuration, and may be overridden by the credentials secret,
 * so any S3-compatible store works. Every request is re-signed on each
 * retry (the date is part of the signature). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "art_int.h"
#include "hodei/util.h"

#define S3_EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_UNSIGNED "UNSIGNED-PAYLOAD"
#define S3_URL_MAX 4096
#define S3_QUERY_MAX 3072
#define S3_LIST_PAGES_MAX 10000
#define S3_ETAG_MAX 128

typedef struct {
    const art_s3 *s3;
    art_method method;
    const char *bucket, *key;
    const char *query; /* canonical: sorted, encoded; "" = none */
    const char *body;  /* POST */
    size_t body_len;
    int in_fd; /* PUT */
    int64_t in_off, in_len;
    EVP_MD_CTX *in_sha;
    int64_t *in_hashed;
    int out_fd; /* GET to a file, or -1 */
    EVP_MD_CTX *out_sha;
    int64_t out_limit;
    const char *show;
    art_http_resp *resp;
} s3_req;

void art_s3_wipe(art_s3 *s3)
{
    OPENSSL_cleanse(s3, sizeof *s3);
}

/* ------------------------------------------------------------ setup */

static hodei_status s3_cred_json(const char *value, art_s3 *s3, const char *field, hodei_err *err)
{
    json_error_t jerr;
    json_t *o = json_loads(value, 0, &jerr);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: the credentials secret is not a JSON object (line %d)", field,
                             jerr.line);
    }
    static const char *const keys[] = {"access_key_id", "secret_access_key", "session_token",
                                       "region", "endpoint"};
    char *dst[] = {s3->access_key, s3->secret_key, s3->session_token, s3->region, s3->endpoint};
    size_t caps[] = {sizeof s3->access_key, sizeof s3->secret_key, sizeof s3->session_token,
                     sizeof s3->region, sizeof s3->endpoint};
    hodei_status st = HODEI_OK;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0] && st == HODEI_OK; i++) {
        json_t *v = json_object_get(o, keys[i]);
        if (!v)
            continue;
        if (!json_is_string(v) || json_string_length(v) >= caps[i])
            st = hodei_err_set(err, HODEI_ERR_INVALID,
                               "%s: the credentials secret's \"%s\" must be a string of at most "
                               "%zu bytes",
                               field, keys[i], caps[i] - 1);
        else
            hodei_strlcpy(dst[i], json_string_value(v), caps[i]);
    }
    json_decref(o);
    if (st == HODEI_OK && (!s3->access_key[0] || !s3->secret_key[0]))
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "%s: the credentials secret needs access_key_id and secret_access_key",
                           field);
    return st;
}

static hodei_status s3_cred_parse(const char *value, art_s3 *s3, const char *field, hodei_err *err)
{
    if (value[0] == '{')
        return s3_cred_json(value, s3, field, err);
    const char *colon = strchr(value, ':');
    size_t ak = colon ? (size_t)(colon - value) : 0;
    if (!colon || ak == 0 || ak >= sizeof s3->access_key || !colon[1] ||
        strlen(colon + 1) >= sizeof s3->secret_key)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: the credentials secret must be ACCESS_KEY_ID:SECRET_ACCESS_KEY "
                             "or a JSON object",
                             field);
    memcpy(s3->access_key, value, ak);
    s3->access_key[ak] = '\0';
    hodei_strlcpy(s3->secret_key, colon + 1, sizeof s3->secret_key);
    size_t n = strlen(s3->secret_key);
    while (n > 0 && (s3->secret_key[n - 1] == '\n' || s3->secret_key[n - 1] == '\r'))
        s3->secret_key[--n] = '\0';
    return HODEI_OK;
}

hodei_status art_s3_setup(hodei_artifact_job *j, const char *cred_name, const char *field,
                          art_s3 *s3, hodei_err *err)
{
    const hodei_artifact_conf *c = j->conf;
    memset(s3, 0, sizeof *s3);
    hodei_strlcpy(s3->region, c->s3_region && c->s3_region[0] ? c->s3_region : "us-east-1",
                  sizeof s3->region);
    hodei_strlcpy(s3->endpoint, c->s3_endpoint ? c->s3_endpoint : "", sizeof s3->endpoint);
    s3->path_style = c->s3_path_style;
    s3->anonymous = !cred_name || !cred_name[0];
    if (!s3->anonymous) {
        const char *value = j->hooks.secret ? j->hooks.secret(j->hooks.user, cred_name) : NULL;
        if (!value)
            return hodei_err_set(err, HODEI_ERR_NOT_FOUND,
                                 "%s: credentials secret %s was not given to the worker", field,
                                 cred_name);
        hodei_status st = s3_cred_parse(value, s3, field, err);
        if (st != HODEI_OK) {
            art_s3_wipe(s3);
            return st;
        }
    }
    if (!s3->endpoint[0])
        snprintf(s3->endpoint, sizeof s3->endpoint, "https://s3.%s.amazonaws.com", s3->region);
    size_t n = strlen(s3->endpoint);
    while (n > 0 && s3->endpoint[n - 1] == '/')
        s3->endpoint[--n] = '\0';
    if (strncmp(s3->endpoint, "https://", 8) != 0 && strncmp(s3->endpoint, "http://", 7) != 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: the S3 endpoint must start with https:// or http://", field);
    return HODEI_OK;
}

/* ------------------------------------------------------------ requests */

static void s3_amz_date(char out[17])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* URL, Host value and canonical URI of a request. */
static bool s3_target(const s3_req *r, char *url, char *host, hodei_buf *uri)
{
    const char *ep = r->s3->endpoint;
    const char *auth = strstr(ep, "://") + 3;
    size_t scheme_len = (size_t)(auth - ep);
    size_t auth_len = strcspn(auth, "/");
    hodei_buf_putc(uri, '/');
    if (r->s3->path_style) {
        hodei_buf_puts(uri, r->bucket); /* "/bucket" for the bucket itself */
        if (r->key[0])
            hodei_buf_putc(uri, '/');
        snprintf(host, ART_HOST_MAX, "%.*s", (int)auth_len, auth);
    } else {
        snprintf(host, ART_HOST_MAX, "%s.%.*s", r->bucket, (int)auth_len, auth);
    }
    art_uri_encode(uri, r->key, strlen(r->key), true);
    int n = snprintf(url, S3_URL_MAX, "%.*s%s%s%s%s", (int)scheme_len, ep, host, uri->data,
                     r->query[0] ? "?" : "", r->query);
    return !uri->failed && n > 0 && n < S3_URL_MAX;
}

static hodei_status s3_headers(const s3_req *r, const char *host, const char *uri,
                               struct curl_slist **out, hodei_err *err)
{
    char date[17], body_hash[65], auth[1024], line[2200];
    const char *payload = S3_EMPTY_SHA;
    if (r->method == ART_PUT) {
        payload = S3_UNSIGNED;
    } else if (r->method == ART_POST && r->body_len > 0) {
        unsigned char md[32];
        unsigned int n = 0;
        EVP_Digest(r->body, r->body_len, md, &n, EVP_sha256(), NULL);
        for (unsigned i = 0; i < 32; i++)
            snprintf(body_hash + 2 * i, 3, "%02x", md[i]);
        payload = body_hash;
    }
    s3_amz_date(date);
    struct curl_slist *h = NULL;
    snprintf(line, sizeof line, "Host: %s", host);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-amz-content-sha256: %s", payload);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-amz-date: %s", date);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Expect:"); /* no 100-continue round trip */
    if (!r->s3->anonymous) {
        art_sigv4_header hs[4] = {{"host", host},
                                  {"x-amz-content-sha256", payload},
                                  {"x-amz-date", date},
                                  {"x-amz-security-token", r->s3->session_token}};
        size_t nh = r->s3->session_token[0] ? 4 : 3;
        if (nh == 4) {
            snprintf(line, sizeof line, "x-amz-security-token: %s", r->s3->session_token);
            h = curl_slist_append(h, line);
        }
        static const char *const methods[] = {"GET", "PUT", "POST", "DELETE", "HEAD"};
        art_sigv4_cred cred = {r->s3->access_key, r->s3->secret_key, r->s3->session_token,
                               r->s3->region, "s3"};
        hodei_status st = art_sigv4_authorization(methods[r->method], uri, r->query, hs, nh,
                                                  payload, date, &cred, auth, sizeof auth, err);
        if (st != HODEI_OK) {
            curl_slist_free_all(h);
            return st;
        }
        snprintf(line, sizeof line, "Authorization: %s", auth);
        h = curl_slist_append(h, line);
        OPENSSL_cleanse(line, sizeof line);
    }
    if (!h)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory for headers");
    *out = h;
    return HODEI_OK;
}

/* "HTTP 403 SignatureDoesNotMatch: The request signature ..." */
static hodei_status s3_error(const art_http_resp *resp, hodei_err *err)
{
    char code[128] = "", msg[300] = "";
    size_t pos = 0;
    const char *b = resp->body.data ? resp->body.data : "";
    art_xml_next(b, resp->body.len, &pos, "Code", code, sizeof code);
    pos = 0;
    art_xml_next(b, resp->body.len, &pos, "Message", msg, sizeof msg);
    hodei_status st = resp->status == 403 || resp->status == 401 ? HODEI_ERR_PERMISSION
                      : resp->status == 404                      ? HODEI_ERR_NOT_FOUND
                                                                 : HODEI_ERR_IO;
    if (code[0])
        return hodei_err_set(err, st, "HTTP %ld %s: %s", resp->status, code, msg);
    return hodei_err_set(err, st, "HTTP %ld from the S3 endpoint", resp->status);
}

static hodei_status s3_try(hodei_artifact_job *j, void *ctx, bool *retry, hodei_err *err)
{
    s3_req *r = ctx;
    char url[S3_URL_MAX], host[ART_HOST_MAX];
    hodei_buf uri;
    struct curl_slist *headers = NULL;
    hodei_buf_init(&uri, S3_URL_MAX);
    hodei_status st = HODEI_OK;
    if (!s3_target(r, url, host, &uri)) {
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "the S3 URL is too long");
        goto out;
    }
    if ((st = s3_headers(r, host, uri.data, &headers, err)) != HODEI_OK)
        goto out;
    if (r->out_fd >= 0) { /* a retry starts the file again */
        if (ftruncate(r->out_fd, 0) != 0 || lseek(r->out_fd, 0, SEEK_SET) != 0) {
            st = hodei_err_set(err, HODEI_ERR_IO, "cannot rewind the file: %s", strerror(errno));
            goto out;
        }
        if (r->out_sha)
            EVP_DigestInit_ex(r->out_sha, EVP_sha256(), NULL);
    }
    art_http_req req = {.method = r->method,
                        .url = url,
                        .headers = headers,
                        .body = r->body,
                        .body_len = r->body_len,
                        .in_fd = r->in_fd,
                        .in_off = r->in_off,
                        .in_len = r->in_len,
                        .in_sha = r->in_sha,
                        .in_hashed = r->in_hashed,
                        .out_fd = r->out_fd,
                        .out_sha = r->out_sha,
                        .out_limit = r->out_limit,
                        .show = r->show};
    st = art_http_do(j, &req, r->resp, retry, err);
    if (st == HODEI_OK && (r->resp->status < 200 || r->resp->status >= 300)) {
        *retry = art_http_status_retry(r->resp->status);
        st = s3_error(r->resp, err);
    }
out:
    curl_slist_free_all(headers);
    hodei_buf_fini(&uri);
    return st;
}

static void s3_req_init(s3_req *r, const art_s3 *s3, art_method m, const char *bucket,
                        const char *key, const char *show, art_http_resp *resp)
{
    memset(r, 0, sizeof *r);
    r->s3 = s3;
    r->method = m;
    r->bucket = bucket;
    r->key = key;
    r->query = "";
    r->in_fd = -1;
    r->out_fd = -1;
    r->show = show;
    r->resp = resp;
}

/* ------------------------------------------------------------ get, list */

hodei_status art_s3_get(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                        const char *key, int out_fd, EVP_MD_CTX *sha, int64_t limit,
                        int64_t *written, const char *show, hodei_err *err)
{
    art_http_resp resp;
    s3_req r;
    art_http_resp_init(&resp);
    s3_req_init(&r, s3, ART_GET, bucket, key, show, &resp);
    r.out_fd = out_fd;
    r.out_sha = sha;
    r.out_limit = limit;
    hodei_status st = art_retry(j, show, s3_try, &r, err);
    *written = resp.written;
    art_http_resp_fini(&resp);
    return st;
}

static bool s3_query_param(hodei_buf *q, const char *name, const char *value)
{
    if (q->len > 0)
        hodei_buf_putc(q, '&');
    hodei_buf_puts(q, name);
    hodei_buf_putc(q, '=');
    return art_uri_encode(q, value, strlen(value), false);
}

/* One page of keys; *token gets the next page's token ("" = last page). */
static hodei_status s3_list_page(const art_http_resp *resp, art_s3_list_fn fn, void *user,
                                 char *token, size_t token_len, hodei_err *err)
{
    const char *x = resp->body.data ? resp->body.data : "";
    char key[HODEI_ARTIFACT_KEY_MAX + 1], size[32], truncated[16] = "";
    size_t pos = 0, a = 0, b = 0;
    while (art_xml_span(x, resp->body.len, &pos, "Contents", &a, &b)) {
        size_t kpos = 0, spos = 0;
        size[0] = '\0';
        if (!art_xml_next(x + a, b - a, &kpos, "Key", key, sizeof key))
            continue;
        art_xml_next(x + a, b - a, &spos, "Size", size, sizeof size);
        hodei_status st = fn(user, key, strtoll(size, NULL, 10), err);
        if (st != HODEI_OK)
            return st;
    }
    size_t tpos = 0;
    art_xml_next(x, resp->body.len, &tpos, "IsTruncated", truncated, sizeof truncated);
    token[0] = '\0';
    tpos = 0;
    if (strcmp(truncated, "true") == 0 &&
        !art_xml_next(x, resp->body.len, &tpos, "NextContinuationToken", token, token_len))
        return hodei_err_set(err, HODEI_ERR_IO, "listing is truncated without a token");
    return HODEI_OK;
}

hodei_status art_s3_list(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                         const char *prefix, art_s3_list_fn fn, void *user, const char *show,
                         hodei_err *err)
{
    art_http_resp resp;
    hodei_buf q;
    char token[1024] = "";
    hodei_status st = HODEI_OK;
    art_http_resp_init(&resp);
    hodei_buf_init(&q, S3_QUERY_MAX);
    for (int page = 0; page < S3_LIST_PAGES_MAX && st == HODEI_OK; page++) {
        s3_req r;
        s3_req_init(&r, s3, ART_GET, bucket, "", show, &resp);
        hodei_buf_reset(&q);
        if (token[0])
            s3_query_param(&q, "continuation-token", token);
        s3_query_param(&q, "list-type", "2");
        if (!s3_query_param(&q, "prefix", prefix)) {
            st = hodei_err_set(err, HODEI_ERR_LIMIT, "the listing query is too long");
            break;
        }
        r.query = q.data;
        st = art_retry(j, show, s3_try, &r, err);
        if (st == HODEI_OK)
            st = s3_list_page(&resp, fn, user, token, sizeof token, err);
        if (!token[0])
            break;
    }
    hodei_buf_fini(&q);
    art_http_resp_fini(&resp);
    return st;
}

/* ------------------------------------------------------------ delete */

hodei_status art_s3_delete(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                           const char *key, const char *show, hodei_err *err)
{
    art_http_resp resp;
    s3_req r;
    art_http_resp_init(&resp);
    s3_req_init(&r, s3, ART_DELETE, bucket, key, show, &resp);
    hodei_status st = art_retry(j, show, s3_try, &r, err);
    if (st == HODEI_ERR_NOT_FOUND) /* gone already: what was asked */
        st = HODEI_OK;
    art_http_resp_fini(&resp);
    return st;
}

/* ------------------------------------------------------------ put */

static hodei_status s3_put_single(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                                  const char *key, int in_fd, int64_t size, EVP_MD_CTX *sha,
                                  const char *show, hodei_err *err)
{
    art_http_resp resp;
    s3_req r;
    int64_t hashed = 0;
    art_http_resp_init(&resp);
    s3_req_init(&r, s3, ART_PUT, bucket, key, show, &resp);
    r.in_fd = in_fd;
    r.in_len = size;
    r.in_sha = sha;
    r.in_hashed = &hashed;
    hodei_status st = art_retry(j, show, s3_try, &r, err);
    art_http_resp_fini(&resp);
    return st;
}

typedef struct {
    char upload_id[1024];
    char (*etags)[S3_ETAG_MAX];
    int64_t parts;
} s3_multipart;

static hodei_status s3_mp_call(hodei_artifact_job *j, const art_s3 *s3, art_method m,
                               const char *bucket, const char *key, const char *query,
                               const char *body, size_t body_len, art_http_resp *resp,
                               const char *show, hodei_err *err)
{
    s3_req r;
    s3_req_init(&r, s3, m, bucket, key, show, resp);
    r.query = query;
    r.body = body;
    r.body_len = body_len;
    return art_retry(j, show, s3_try, &r, err);
}

static hodei_status s3_mp_create(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                                 const char *key, s3_multipart *mp, const char *show,
                                 hodei_err *err)
{
    art_http_resp resp;
    art_http_resp_init(&resp);
    hodei_status st =
        s3_mp_call(j, s3, ART_POST, bucket, key, "uploads=", NULL, 0, &resp, show, err);
    size_t pos = 0;
    if (st == HODEI_OK && !art_xml_next(resp.body.data ? resp.body.data : "", resp.body.len, &pos,
                                        "UploadId", mp->upload_id, sizeof mp->upload_id))
        st = hodei_err_set(err, HODEI_ERR_IO, "CreateMultipartUpload answered no UploadId");
    art_http_resp_fini(&resp);
    return st;
}

static hodei_status s3_mp_parts(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                                const char *key, int in_fd, int64_t size, EVP_MD_CTX *sha,
                                s3_multipart *mp, int64_t part, const char *show, hodei_err *err)
{
    art_http_resp resp;
    hodei_buf q;
    int64_t hashed = 0;
    hodei_status st = HODEI_OK;
    art_http_resp_init(&resp);
    hodei_buf_init(&q, S3_QUERY_MAX);
    for (int64_t i = 0; i < mp->parts && st == HODEI_OK; i++) {
        char num[24];
        s3_req r;
        snprintf(num, sizeof num, "%lld", (long long)(i + 1));
        hodei_buf_reset(&q);
        s3_query_param(&q, "partNumber", num);
        s3_query_param(&q, "uploadId", mp->upload_id);
        s3_req_init(&r, s3, ART_PUT, bucket, key, show, &resp);
        r.query = q.data;
        r.in_fd = in_fd;
        r.in_off = i * part;
        r.in_len = size - r.in_off < part ? size - r.in_off : part;
        r.in_sha = sha;
        r.in_hashed = &hashed;
        st = art_retry(j, show, s3_try, &r, err);
        if (st == HODEI_OK && !resp.etag[0])
            st = hodei_err_set(err, HODEI_ERR_IO, "UploadPart %lld answered no ETag",
                               (long long)(i + 1));
        if (st == HODEI_OK)
            hodei_strlcpy(mp->etags[i], resp.etag, S3_ETAG_MAX);
    }
    hodei_buf_fini(&q);
    art_http_resp_fini(&resp);
    return st;
}

static hodei_status s3_mp_complete(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                                   const char *key, const s3_multipart *mp, const char *show,
                                   hodei_err *err)
{
    hodei_buf body, q;
    art_http_resp resp;
    hodei_buf_init(&body, (size_t)mp->parts * (S3_ETAG_MAX + 64) + 128);
    hodei_buf_init(&q, S3_QUERY_MAX);
    art_http_resp_init(&resp);
    hodei_buf_puts(&body, "<CompleteMultipartUpload>");
    for (int64_t i = 0; i < mp->parts; i++)
        hodei_buf_printf(&body, "<Part><PartNumber>%lld</PartNumber><ETag>%s</ETag></Part>",
                         (long long)(i + 1), mp->etags[i]);
    hodei_buf_puts(&body, "</CompleteMultipartUpload>");
    s3_query_param(&q, "uploadId", mp->upload_id);
    hodei_status st =
        s3_mp_call(j, s3, ART_POST, bucket, key, q.data, body.data, body.len, &resp, show, err);
    /* S3 may answer 200 and an error in the body. */
    char code[128] = "", msg[300] = "";
    size_t pos = 0;
    if (st == HODEI_OK && art_xml_next(resp.body.data ? resp.body.data : "", resp.body.len, &pos,
                                       "Code", code, sizeof code)) {
        pos = 0;
        art_xml_next(resp.body.data, resp.body.len, &pos, "Message", msg, sizeof msg);
        st = hodei_err_set(err, HODEI_ERR_IO, "CompleteMultipartUpload: %s: %s", code, msg);
    }
    art_http_resp_fini(&resp);
    hodei_buf_fini(&q);
    hodei_buf_fini(&body);
    return st;
}

static void s3_mp_abort(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                        const char *key, const s3_multipart *mp, const char *show)
{
    hodei_buf q;
    art_http_resp resp;
    hodei_err err;
    hodei_buf_init(&q, S3_QUERY_MAX);
    art_http_resp_init(&resp);
    s3_query_param(&q, "uploadId", mp->upload_id);
    s3_req r;
    s3_req_init(&r, s3, ART_DELETE, bucket, key, show, &resp);
    r.query = q.data;
    bool retry = false;
    if (s3_try(j, &r, &retry, &err) != HODEI_OK)
        art_note(j, "%s: aborting the multipart upload failed: %s", show, err.msg);
    art_http_resp_fini(&resp);
    hodei_buf_fini(&q);
}

hodei_status art_s3_put(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                        const char *key, int in_fd, int64_t size, EVP_MD_CTX *sha, const char *show,
                        hodei_err *err)
{
    int64_t part = j->conf->part_bytes;
    if (size < j->conf->multipart_threshold || size <= part)
        return s3_put_single(j, s3, bucket, key, in_fd, size, sha, show, err);
    if ((size + part - 1) / part > HODEI_ARTIFACT_PARTS_MAX)
        part = (size + HODEI_ARTIFACT_PARTS_MAX - 1) / HODEI_ARTIFACT_PARTS_MAX;
    s3_multipart mp = {.parts = (size + part - 1) / part};
    mp.etags = calloc((size_t)mp.parts, S3_ETAG_MAX);
    if (!mp.etags)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory for %lld parts",
                             (long long)mp.parts);
    hodei_status st = s3_mp_create(j, s3, bucket, key, &mp, show, err);
    if (st == HODEI_OK) {
        art_note(j, "%s: multipart upload, %lld parts", show, (long long)mp.parts);
        st = s3_mp_parts(j, s3, bucket, key, in_fd, size, sha, &mp, part, show, err);
        if (st == HODEI_OK)
            st = s3_mp_complete(j, s3, bucket, key, &mp, show, err);
        if (st != HODEI_OK)
            s3_mp_abort(j, s3, bucket, key, &mp, show);
    }
    free(mp.etags);
    return st;
}

/* ------------------------------------------------------------ XML */

static size_t xml_entity(const char *s, size_t n, char *out)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
        size_t len = strlen(ents[i].name);
        if (n >= len && memcmp(s, ents[i].name, len) == 0) {
            *out = ents[i].c;
            return len;
        }
    }
    if (n > 3 && s[1] == '#') {
        char *end = NULL;
        long v = s[2] == 'x' ? strtol(s + 3, &end, 16) : strtol(s + 2, &end, 10);
        if (end && *end == ';' && v > 0 && v < 0x80) {
            *out = (char)v;
            return (size_t)(end - s) + 1;
        }
    }
    *out = '&';
    return 1;
}

bool art_xml_span(const char *xml, size_t len, size_t *pos, const char *tag, size_t *start,
                  size_t *end)
{
    char open[80], close[80];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    if (*pos >= len)
        return false;
    const char *a = memmem(xml + *pos, len - *pos, open, strlen(open));
    if (!a)
        return false;
    a += strlen(open);
    const char *b = memmem(a, len - (size_t)(a - xml), close, strlen(close));
    if (!b)
        return false;
    *start = (size_t)(a - xml);
    *end = (size_t)(b - xml);
    *pos = *end + strlen(close);
    return true;
}

bool art_xml_next(const char *xml, size_t len, size_t *pos, const char *tag, char *out,
                  size_t out_len)
{
    size_t a = 0, b = 0;
    if (!art_xml_span(xml, len, pos, tag, &a, &b))
        return false;
    size_t o = 0;
    for (const char *p = xml + a; p < xml + b && o + 1 < out_len;) {
        if (*p == '&')
            p += xml_entity(p, (size_t)(xml + b - p), &out[o++]);
        else
            out[o++] = *p++;
    }
    if (out_len > 0)
        out[o] = '\0';
    return true;
}
