/* Inputs: each reference is fetched into a new file of the workspace
 * (never over an existing one, never through a symlink), its SHA-256
 * computed on the way and compared with the checksum the spec gives; a
 * failed input is removed and stops the staging with an error naming it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "art_int.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define STAGE_PATH_MAX 4096
#define STAGE_COPY_BUF (256 * 1024)

typedef struct {
    hodei_artifact_job *j;
    const Hodei__V1__Artifact *a;
    char field[64]; /* spec.inputs[3] */
    char show[ART_SHOW_MAX];
    hodei_artifact_url url;
    art_s3 s3;
    int64_t files, bytes;
    char dest_dir[STAGE_PATH_MAX]; /* s3 prefix: destination folder ("" or ending in "/") */
} stage_ctx;

static int64_t stage_limit(const hodei_artifact_job *j)
{
    int64_t left = j->conf->job_bytes_max - j->bytes_in;
    return left < j->conf->artifact_bytes_max ? left : j->conf->artifact_bytes_max;
}

/* destination, or the source's last name; "dir/" + the last name. */
static hodei_status stage_dest(const stage_ctx *c, char *out, size_t out_len, hodei_err *err)
{
    const char *d = c->a->destination ? c->a->destination : "";
    size_t base_len = 0;
    const char *base = hodei_artifact_basename(c->a->source, &base_len);
    size_t dl = strlen(d);
    int n;
    if (dl == 0 || d[dl - 1] == '/')
        n = snprintf(out, out_len, "%s%.*s", d, (int)base_len, base);
    else
        n = snprintf(out, out_len, "%s", d);
    if (n <= 0 || (size_t)n >= out_len)
        return hodei_err_set(err, HODEI_ERR_INVALID, "the destination path is too long");
    char field[96];
    snprintf(field, sizeof field, "%s.destination", c->field);
    return hodei_artifact_relpath_check(out, false, false, field, err);
}

static hodei_status stage_checksum(const stage_ctx *c, const char *got, hodei_err *err)
{
    const char *want = c->a->checksum ? c->a->checksum : "";
    if (!want[0] || strcasecmp(want, got) == 0)
        return HODEI_OK;
    return hodei_err_set(err, HODEI_ERR_INVALID, "checksum mismatch: expected %s, got %s", want,
                         got);
}

/* ------------------------------------------------------------ http */

typedef struct {
    stage_ctx *c;
    int fd;
    EVP_MD_CTX *sha;
    int64_t limit;
    int64_t written;
} stage_http;

static hodei_status stage_http_try(hodei_artifact_job *j, void *ctx, bool *retry, hodei_err *err)
{
    stage_http *h = ctx;
    art_http_resp resp;
    if (ftruncate(h->fd, 0) != 0 || lseek(h->fd, 0, SEEK_SET) != 0)
        return hodei_err_set(err, HODEI_ERR_IO, "cannot rewind the file: %s", strerror(errno));
    EVP_DigestInit_ex(h->sha, EVP_sha256(), NULL);
    art_http_resp_init(&resp);
    art_http_req req = {.method = ART_GET,
                        .url = h->c->a->source,
                        .follow = true,
                        .https_only_redirects = h->c->url.scheme == HODEI_ARTIFACT_HTTPS,
                        .in_fd = -1,
                        .out_fd = h->fd,
                        .out_sha = h->sha,
                        .out_limit = h->limit,
                        .show = h->c->show};
    hodei_status st = art_http_do(j, &req, &resp, retry, err);
    if (st == HODEI_OK && (resp.status < 200 || resp.status >= 300)) {
        *retry = art_http_status_retry(resp.status);
        st = hodei_err_set(err,
                           resp.status == 404   ? HODEI_ERR_NOT_FOUND
                           : resp.status == 401 ? HODEI_ERR_PERMISSION
                           : resp.status == 403 ? HODEI_ERR_PERMISSION
                                                : HODEI_ERR_IO,
                           "HTTP %ld", resp.status);
    }
    h->written = resp.written;
    art_http_resp_fini(&resp);
    return st;
}

/* ------------------------------------------------------------ one file */

/* Fetches into rel (a new file): by HTTP, one S3 key, or a local file. */
static hodei_status stage_fetch(stage_ctx *c, const char *rel, const char *key, int64_t *bytes,
                                char sum[72], hodei_err *err)
{
    int fd = -1, src = -1;
    hodei_status st = art_create_write(c->j->ws_fd, rel, &fd, err);
    if (st != HODEI_OK)
        return st;
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (!sha) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
        goto out_close;
    }
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    int64_t limit = stage_limit(c->j);
    if (c->url.scheme == HODEI_ARTIFACT_HTTPS || c->url.scheme == HODEI_ARTIFACT_HTTP) {
        stage_http h = {.c = c, .fd = fd, .sha = sha, .limit = limit};
        st = art_retry(c->j, c->show, stage_http_try, &h, err);
        *bytes = h.written;
    } else if (c->url.scheme == HODEI_ARTIFACT_S3) {
        st = art_s3_get(c->j, &c->s3, c->url.bucket, key, fd, sha, limit, bytes, c->show, err);
    } else {
        int64_t size = 0;
        st = art_open_file_url(c->j->conf->file_roots, c->url.path, &src, &size, err);
        if (st == HODEI_OK && size > limit)
            st = hodei_err_set(err, HODEI_ERR_LIMIT, "larger than its limit of %lld bytes",
                               (long long)limit);
        char *buf = st == HODEI_OK ? malloc(STAGE_COPY_BUF) : NULL;
        *bytes = 0;
        while (buf && st == HODEI_OK) {
            ssize_t n = read(src, buf, STAGE_COPY_BUF);
            if (n == 0)
                break;
            if (n < 0 || write(fd, buf, (size_t)n) != n) {
                st = hodei_err_set(err, HODEI_ERR_IO, "copying: %s", strerror(errno));
            } else {
                EVP_DigestUpdate(sha, buf, (size_t)n);
                *bytes += n;
            }
        }
        free(buf);
    }
    if (st == HODEI_OK) {
        art_sha_hex(sha, sum);
        c->j->bytes_in += *bytes;
    }
    EVP_MD_CTX_free(sha);
out_close:
    if (src >= 0)
        close(src);
    if (close(fd) != 0 && st == HODEI_OK)
        st = hodei_err_set(err, HODEI_ERR_IO, "writing %s: %s", rel, strerror(errno));
    if (st != HODEI_OK)
        art_unlink(c->j->ws_fd, rel);
    return st;
}

static void stage_note_done(stage_ctx *c, const char *rel, int64_t bytes, int64_t t0_ms,
                            const char *sum, bool verified)
{
    char size[32];
    double secs = (double)(hodei_mono_ms() - t0_ms) / 1000.0;
    art_human_bytes(bytes, size, sizeof size);
    art_note(c->j, "input %s %s -> %s: %s in %.2f s (%.1f MiB/s), %s%s", c->field, c->show, rel,
             size, secs, secs > 0 ? (double)bytes / (1024.0 * 1024.0) / secs : 0.0, sum,
             verified ? " verified" : "");
}

static hodei_status stage_one_file(stage_ctx *c, const char *rel, const char *key, hodei_err *err)
{
    char sum[72];
    int64_t bytes = 0, t0 = hodei_mono_ms();
    hodei_status st = stage_fetch(c, rel, key, &bytes, sum, err);
    if (st == HODEI_OK && (st = stage_checksum(c, sum, err)) != HODEI_OK)
        art_unlink(c->j->ws_fd, rel);
    if (st == HODEI_OK) {
        c->files++;
        c->bytes += bytes;
        stage_note_done(c, rel, bytes, t0, sum, c->a->checksum && c->a->checksum[0]);
    }
    return st;
}

/* ------------------------------------------------------------ s3 prefix */

static hodei_status stage_prefix_key(void *user, const char *key, int64_t size, hodei_err *err)
{
    stage_ctx *c = user;
    size_t plen = strlen(c->url.key);
    const char *rel_key = key + plen;
    char rel[STAGE_PATH_MAX], field[320];
    if (strncmp(key, c->url.key, plen) != 0 || !rel_key[0] || key[strlen(key) - 1] == '/')
        return HODEI_OK; /* a folder marker, or not below the prefix */
    snprintf(field, sizeof field, "%s key \"%.200s\"", c->field, key);
    hodei_status st = hodei_artifact_relpath_check(rel_key, false, false, field, err);
    if (st != HODEI_OK)
        return st;
    int n = snprintf(rel, sizeof rel, "%s%s", c->dest_dir, rel_key);
    if (n <= 0 || (size_t)n >= sizeof rel)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: path too long", field);
    if (size > stage_limit(c->j))
        return hodei_err_set(err, HODEI_ERR_LIMIT, "%s: %lld bytes is over the limit of %lld",
                             field, (long long)size, (long long)stage_limit(c->j));
    return stage_one_file(c, rel, key, err);
}

static hodei_status stage_prefix(stage_ctx *c, hodei_err *err)
{
    const char *d = c->a->destination ? c->a->destination : "";
    size_t dl = strlen(d);
    int n = snprintf(c->dest_dir, sizeof c->dest_dir, "%s%s", d, dl && d[dl - 1] != '/' ? "/" : "");
    if (n < 0 || (size_t)n >= sizeof c->dest_dir)
        return hodei_err_set(err, HODEI_ERR_INVALID, "the destination path is too long");
    hodei_status st =
        art_s3_list(c->j, &c->s3, c->url.bucket, c->url.key, stage_prefix_key, c, c->show, err);
    if (st == HODEI_OK && c->files == 0)
        st = hodei_err_set(err, HODEI_ERR_NOT_FOUND, "no object below the prefix");
    return st;
}

/* ------------------------------------------------------------ all */

static hodei_status stage_input(hodei_artifact_job *j, size_t i, const Hodei__V1__Artifact *a,
                                hodei_err *err)
{
    stage_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    c->j = j;
    c->a = a;
    snprintf(c->field, sizeof c->field, "spec.inputs[%zu]", i);
    hodei_artifact_url_display(a->source, c->show, sizeof c->show);
    char field[96], rel[STAGE_PATH_MAX];
    snprintf(field, sizeof field, "%s.source", c->field);
    hodei_status st = hodei_artifact_url_parse(a->source, false, field, &c->url, err);
    if (st == HODEI_OK && c->url.scheme == HODEI_ARTIFACT_S3)
        st = art_s3_setup(j, a->credentials, c->field, &c->s3, err);
    if (st == HODEI_OK && c->url.scheme == HODEI_ARTIFACT_S3 && c->url.prefix) {
        st = stage_prefix(c, err);
    } else if (st == HODEI_OK) {
        st = stage_dest(c, rel, sizeof rel, err);
        if (st == HODEI_OK)
            st = stage_one_file(c, rel, c->url.key, err);
    }
    art_s3_wipe(&c->s3);
    free(c);
    return st;
}

hodei_status hodei_artifact_stage(hodei_artifact_job *j, Hodei__V1__Artifact *const *inputs,
                                  size_t n, hodei_err *err)
{
    if (n == 0)
        return HODEI_OK;
    int64_t t0 = hodei_mono_ms(), before = j->bytes_in;
    art_note(j, "staging %zu input%s into the workspace", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        hodei_err e;
        hodei_err_clear(&e);
        hodei_status st = stage_input(j, i, inputs[i], &e);
        if (st != HODEI_OK) {
            char show[ART_SHOW_MAX];
            hodei_artifact_url_display(inputs[i]->source, show, sizeof show);
            hodei_err_set(err, st, "input spec.inputs[%zu] %s: %s", i, show, e.msg);
            art_note(j, "%s", err->msg);
            return st;
        }
    }
    char size[32];
    art_human_bytes(j->bytes_in - before, size, sizeof size);
    art_note(j, "inputs staged: %s in %.2f s", size, (double)(hodei_mono_ms() - t0) / 1000.0);
    return HODEI_OK;
}
