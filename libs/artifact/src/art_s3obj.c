/* hodei/s3.h: whole objects in memory over art_s3.c's requests. Each call
 * makes a short-lived job (its own CURL handle, the call's deadline, no
 * workspace) and moves the body through a memfd, so the file-based request
 * code (single PUT, multipart, GET with a limit) serves memory too. */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "art_int.h"
#include "hodei/s3.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define S3OBJ_CRED_NAME "credentials"
#define S3OBJ_FIELD_MAX 600

struct hodei_s3_client {
    hodei_artifact_conf conf;
    char endpoint[512], region[64], ca_file[4096];
    char *credentials; /* "" = anonymous; wiped on destroy */
    int64_t request_timeout_ms;
};

void hodei_s3_opts_default(hodei_s3_opts *o)
{
    memset(o, 0, sizeof *o);
    o->endpoint = "";
    o->region = "us-east-1";
    o->credentials = "";
    o->ca_file = "";
    o->request_timeout_ms = 60000;
    o->connect_timeout_ms = 10000;
    o->retry_max = 3;
}

static const char *s3obj_secret(void *user, const char *name)
{
    const hodei_s3_client *c = user;
    return strcmp(name, S3OBJ_CRED_NAME) == 0 ? c->credentials : NULL;
}

/* A job for one call; curl only when with_curl. */
static hodei_status s3obj_job(hodei_s3_client *c, bool with_curl, hodei_artifact_job *j,
                              hodei_err *err)
{
    memset(j, 0, sizeof *j);
    j->conf = &c->conf;
    j->hooks.secret = s3obj_secret;
    j->hooks.user = c;
    j->ws_fd = -1;
    j->deadline_ms = hodei_mono_ms() + c->request_timeout_ms;
    j->rand_state = (uint64_t)hodei_mono_ns() | 1;
    if (with_curl && !(j->curl = curl_easy_init()))
        return hodei_err_set(err, HODEI_ERR_NOMEM, "s3: curl_easy_init failed");
    return HODEI_OK;
}

static hodei_status s3obj_setup(hodei_s3_client *c, hodei_artifact_job *j, art_s3 *s3,
                                hodei_err *err)
{
    return art_s3_setup(j, c->credentials[0] ? S3OBJ_CRED_NAME : "", "s3", s3, err);
}

hodei_status hodei_s3_client_create(const hodei_s3_opts *o, hodei_s3_client **out, hodei_err *err)
{
    hodei_s3_client *c = calloc(1, sizeof *c);
    if (!c)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "s3: out of memory");
    hodei_artifact_conf_default(&c->conf);
    hodei_status st = HODEI_OK;
    if (!hodei_strlcpy(c->endpoint, o->endpoint ? o->endpoint : "", sizeof c->endpoint) ||
        !hodei_strlcpy(c->region, o->region ? o->region : "", sizeof c->region) ||
        !hodei_strlcpy(c->ca_file, o->ca_file ? o->ca_file : "", sizeof c->ca_file)) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "s3: endpoint, region or CA file too long");
        goto out_free;
    }
    c->credentials = strdup(o->credentials ? o->credentials : "");
    if (!c->credentials) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "s3: out of memory");
        goto out_free;
    }
    c->conf.s3_endpoint = c->endpoint;
    c->conf.s3_region = c->region;
    c->conf.s3_path_style = o->path_style;
    c->conf.ca_file = c->ca_file;
    c->conf.retry_max = o->retry_max;
    c->conf.connect_timeout_ms = o->connect_timeout_ms;
    c->request_timeout_ms = o->request_timeout_ms > 0 ? o->request_timeout_ms : 60000;
    /* endpoint and credentials checked now, not at the first call */
    hodei_artifact_job j;
    art_s3 s3;
    if ((st = s3obj_job(c, false, &j, err)) == HODEI_OK)
        st = s3obj_setup(c, &j, &s3, err);
    art_s3_wipe(&s3);
    if (st == HODEI_OK) {
        *out = c;
        return HODEI_OK;
    }
out_free:
    hodei_s3_client_destroy(c);
    return st;
}

void hodei_s3_client_destroy(hodei_s3_client *c)
{
    if (!c)
        return;
    if (c->credentials) {
        OPENSSL_cleanse(c->credentials, strlen(c->credentials));
        free(c->credentials);
    }
    free(c);
}

static void s3obj_show(const char *bucket, const char *key, char out[S3OBJ_FIELD_MAX])
{
    snprintf(out, S3OBJ_FIELD_MAX, "s3://%s/%s", bucket, key);
}

hodei_status hodei_s3_put(hodei_s3_client *c, const char *bucket, const char *key, const void *data,
                          size_t len, hodei_err *err)
{
    hodei_artifact_job j;
    art_s3 s3 = {0};
    char show[S3OBJ_FIELD_MAX];
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    int fd = memfd_create("hodei-s3-put", MFD_CLOEXEC);
    s3obj_show(bucket, key, show);
    hodei_status st = s3obj_job(c, true, &j, err);
    if (st == HODEI_OK && (fd < 0 || !sha))
        st = hodei_err_set(err, HODEI_ERR_IO, "%s: no memory file: %s", show, strerror(errno));
    for (size_t off = 0; st == HODEI_OK && off < len;) {
        ssize_t n = write(fd, (const uint8_t *)data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            st = hodei_err_set(err, HODEI_ERR_IO, "%s: %s", show, strerror(errno));
        else
            off += (size_t)n;
    }
    if (st == HODEI_OK)
        st = s3obj_setup(c, &j, &s3, err);
    if (st == HODEI_OK) {
        EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
        st = art_s3_put(&j, &s3, bucket, key, fd, (int64_t)len, sha, show, err);
    }
    art_s3_wipe(&s3);
    EVP_MD_CTX_free(sha);
    if (fd >= 0)
        close(fd);
    if (j.curl)
        curl_easy_cleanup(j.curl);
    return st;
}

/* The memfd's bytes into a fresh buffer. */
static hodei_status s3obj_read_back(int fd, int64_t n, const char *show, uint8_t **data,
                                    size_t *len, hodei_err *err)
{
    uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
    if (!b)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", show);
    size_t got = 0;
    while (got < (size_t)n) {
        ssize_t r = pread(fd, b + got, (size_t)n - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            return hodei_err_set(err, HODEI_ERR_IO, "%s: reading back: %s", show,
                                 r < 0 ? strerror(errno) : "short");
        }
        got += (size_t)r;
    }
    *data = b;
    *len = got;
    return HODEI_OK;
}

hodei_status hodei_s3_get(hodei_s3_client *c, const char *bucket, const char *key, size_t max,
                          uint8_t **data, size_t *len, hodei_err *err)
{
    hodei_artifact_job j;
    art_s3 s3 = {0};
    char show[S3OBJ_FIELD_MAX];
    int64_t written = 0;
    int fd = memfd_create("hodei-s3-get", MFD_CLOEXEC);
    *data = NULL;
    *len = 0;
    s3obj_show(bucket, key, show);
    hodei_status st = s3obj_job(c, true, &j, err);
    if (st == HODEI_OK && fd < 0)
        st = hodei_err_set(err, HODEI_ERR_IO, "%s: no memory file: %s", show, strerror(errno));
    if (st == HODEI_OK)
        st = s3obj_setup(c, &j, &s3, err);
    if (st == HODEI_OK)
        st = art_s3_get(&j, &s3, bucket, key, fd, NULL, (int64_t)max, &written, show, err);
    if (st == HODEI_OK)
        st = s3obj_read_back(fd, written, show, data, len, err);
    art_s3_wipe(&s3);
    if (fd >= 0)
        close(fd);
    if (j.curl)
        curl_easy_cleanup(j.curl);
    return st;
}

hodei_status hodei_s3_delete(hodei_s3_client *c, const char *bucket, const char *key,
                             hodei_err *err)
{
    hodei_artifact_job j;
    art_s3 s3 = {0};
    char show[S3OBJ_FIELD_MAX];
    s3obj_show(bucket, key, show);
    hodei_status st = s3obj_job(c, true, &j, err);
    if (st == HODEI_OK)
        st = s3obj_setup(c, &j, &s3, err);
    if (st == HODEI_OK)
        st = art_s3_delete(&j, &s3, bucket, key, show, err);
    art_s3_wipe(&s3);
    if (j.curl)
        curl_easy_cleanup(j.curl);
    return st;
}
