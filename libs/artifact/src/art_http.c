/* One HTTP request with libcurl. TLS peers and host names are verified
 * (curl's defaults, set explicitly); only http and https are spoken, and a
 * redirect from https may only lead to https. The transfer is bounded by
 * the job's deadline and byte limits, and a cancel stops it. A 2xx body
 * goes to the sink file (hashed on the way); any other body is kept in
 * memory (bounded) for the error message. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "art_int.h"
#include "hodei/time.h"
#include "hodei/util.h"

typedef struct {
    hodei_artifact_job *j;
    const art_http_req *req;
    art_http_resp *resp;
    int64_t in_pos; /* bytes of the body range read so far */
    int64_t last_note_ms;
    bool write_failed;
    int write_errno;
    char errbuf[CURL_ERROR_SIZE];
} art_xfer;

void art_http_resp_init(art_http_resp *r)
{
    memset(r, 0, sizeof *r);
    hodei_buf_init(&r->body, ART_BODY_MAX);
}

void art_http_resp_fini(art_http_resp *r)
{
    hodei_buf_fini(&r->body);
}

bool art_http_status_retry(long status)
{
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

bool art_uri_encode(hodei_buf *b, const char *s, size_t len, bool keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if (plain) {
            hodei_buf_putc(b, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            hodei_buf_append(b, e, 3);
        }
    }
    return !b->failed;
}

static long art_status(art_xfer *x)
{
    long code = 0;
    curl_easy_getinfo(x->j->curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
}

static size_t art_on_write(char *data, size_t size, size_t nmemb, void *user)
{
    art_xfer *x = user;
    size_t n = size * nmemb;
    long code = art_status(x);
    if (x->req->out_fd < 0 || code < 200 || code >= 300) {
        size_t room = x->req->out_fd < 0 ? ART_BODY_MAX : ART_ERRBODY_MAX;
        if (x->resp->body.len + n > room)
            n = room > x->resp->body.len ? room - x->resp->body.len : 0;
        hodei_buf_append(&x->resp->body, data, n);
        return size * nmemb;
    }
    if (x->resp->written + (int64_t)n > x->req->out_limit) {
        x->resp->over_limit = true;
        return 0; /* aborts the transfer */
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(x->req->out_fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            x->write_failed = true;
            x->write_errno = errno;
            return 0;
        }
        done += (size_t)w;
    }
    if (x->req->out_sha)
        EVP_DigestUpdate(x->req->out_sha, data, n);
    x->resp->written += (int64_t)n;
    return n;
}

/* The body from a file range; bytes past the hashed mark are hashed once. */
static size_t art_on_read(char *buf, size_t size, size_t nmemb, void *user)
{
    art_xfer *x = user;
    const art_http_req *r = x->req;
    int64_t left = r->in_len - x->in_pos;
    size_t want = size * nmemb;
    if (left <= 0)
        return 0;
    if ((int64_t)want > left)
        want = (size_t)left;
    int64_t off = r->in_off + x->in_pos;
    ssize_t got = pread(r->in_fd, buf, want, (off_t)off);
    if (got < 0 && errno == EINTR)
        got = 0;
    if (got < 0) {
        x->write_failed = true;
        x->write_errno = errno;
        return CURL_READFUNC_ABORT;
    }
    if (got == 0)
        return CURL_READFUNC_ABORT; /* the file shrank under us */
    if (r->in_sha && r->in_hashed && off + got > *r->in_hashed && off <= *r->in_hashed) {
        int64_t skip = *r->in_hashed - off;
        EVP_DigestUpdate(r->in_sha, buf + skip, (size_t)(got - skip));
        *r->in_hashed = off + got;
    }
    x->in_pos += got;
    return (size_t)got;
}

static size_t art_on_header(char *data, size_t size, size_t nmemb, void *user)
{
    art_xfer *x = user;
    size_t n = size * nmemb;
    if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        size_t i = 5;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        size_t e = n;
        while (e > i && (data[e - 1] == '\r' || data[e - 1] == '\n' || data[e - 1] == ' '))
            e--;
        size_t len = e - i < sizeof x->resp->etag - 1 ? e - i : sizeof x->resp->etag - 1;
        memcpy(x->resp->etag, data + i, len);
        x->resp->etag[len] = '\0';
    }
    return n;
}

static int art_on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    art_xfer *x = user;
    if (art_cancelled(x->j))
        return 1;
    int64_t now = hodei_mono_ms();
    int64_t every = x->j->conf->progress_interval_ms;
    if (every > 0 && now - x->last_note_ms >= every) {
        x->last_note_ms = now;
        char done[32], total[32];
        bool up = x->req->method == ART_PUT || x->req->method == ART_POST;
        art_human_bytes(up ? ulnow : dlnow, done, sizeof done);
        art_human_bytes(up ? ultotal : dltotal, total, sizeof total);
        if ((up ? ultotal : dltotal) > 0)
            art_note(x->j, "%s: %s of %s", x->req->show, done, total);
        else
            art_note(x->j, "%s: %s", x->req->show, done);
    }
    return 0;
}

static void art_set_method(CURL *c, const art_http_req *req)
{
    switch (req->method) {
    case ART_GET:
        break;
    case ART_HEAD:
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        break;
    case ART_DELETE:
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        break;
    case ART_POST:
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        break;
    case ART_PUT:
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)req->in_len);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, art_on_read);
        break;
    }
}

static void art_set_options(hodei_artifact_job *j, const art_http_req *req, art_xfer *x)
{
    CURL *c = j->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (j->conf->ca_file && j->conf->ca_file[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, j->conf->ca_file);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)j->conf->connect_timeout_ms);
    int64_t left = art_left_ms(j);
    if (left != INT64_MAX)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(left > 1 ? left : 1));
    if (req->follow) {
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)j->conf->redirects_max);
        curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR,
                         req->https_only_redirects ? "https" : "http,https");
    }
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hodei-worker");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, x->errbuf);
    if (req->headers)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, req->headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, art_on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(c, CURLOPT_READDATA, x);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, art_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, art_on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
    if (req->out_fd >= 0 && req->out_limit > 0)
        curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->out_limit);
    art_set_method(c, req);
}

static bool art_curl_retry(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

hodei_status art_http_do(hodei_artifact_job *j, const art_http_req *req, art_http_resp *resp,
                         bool *retry, hodei_err *err)
{
    art_xfer x = {.j = j, .req = req, .resp = resp, .last_note_ms = hodei_mono_ms()};
    resp->status = 0;
    resp->written = 0;
    resp->etag[0] = '\0';
    resp->over_limit = false;
    hodei_buf_reset(&resp->body);
    art_set_options(j, req, &x);
    CURLcode rc = curl_easy_perform(j->curl);
    resp->status = art_status(&x);
    curl_easy_setopt(j->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(j->curl, CURLOPT_ERRORBUFFER, NULL);
    *retry = false;
    if (rc == CURLE_OK)
        return HODEI_OK;
    if (resp->over_limit || rc == CURLE_FILESIZE_EXCEEDED)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "larger than its limit of %lld bytes",
                             (long long)req->out_limit);
    if (x.write_failed)
        return hodei_err_set(err, HODEI_ERR_IO, "%s the file: %s",
                             req->method == ART_PUT ? "reading" : "writing",
                             strerror(x.write_errno));
    if (rc == CURLE_ABORTED_BY_CALLBACK && art_cancelled(j))
        return hodei_err_set(err, HODEI_ERR_CANCELLED, "cancelled");
    if (rc == CURLE_OPERATION_TIMEDOUT && art_left_ms(j) <= 0)
        return hodei_err_set(err, HODEI_ERR_TIMEOUT,
                             "the job's timeout passed during the transfer");
    if (rc == CURLE_TOO_MANY_REDIRECTS)
        return hodei_err_set(err, HODEI_ERR_INVALID, "more than %d redirects",
                             j->conf->redirects_max);
    if (rc == CURLE_UNSUPPORTED_PROTOCOL)
        return hodei_err_set(err, HODEI_ERR_PERMISSION,
                             "redirected to a scheme that is not allowed (https stays https)");
    *retry = art_curl_retry(rc);
    return hodei_err_set(err, *retry ? HODEI_ERR_UNAVAILABLE : HODEI_ERR_IO, "%s",
                         x.errbuf[0] ? x.errbuf : curl_easy_strerror(rc));
}
