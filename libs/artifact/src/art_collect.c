/* Outputs: each pattern is matched in the workspace (no symlink followed;
 * a matched symlink is recorded FAILED, never read), each file uploaded with
 * its SHA-256 computed on the way, and every file gets a record: UPLOADED
 * with its final location, size and checksum, or FAILED with the reason.
 * A failure never stops the other outputs. With a destination ending in
 * "/", a file's key is the destination followed by its path from the
 * pattern's first component holding a glob character (its name, for a
 * plain path): the pattern out/ then *.csv, to s3://b/run/, puts out/a.csv at
 * s3://b/run/a.csv. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "art_int.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define COLLECT_PATH_MAX 4096
#define COLLECT_URL_MAX HODEI_ARTIFACT_DESTINATION_MAX

typedef struct {
    char *rel;
    art_match_kind kind;
} collect_match;

typedef struct {
    collect_match *items;
    size_t len, cap;
    bool nomem;
} collect_matches;

typedef struct {
    hodei_artifact_job *j;
    const Hodei__V1__Artifact *a;
    char field[64];
    hodei_artifact_url url;
    art_s3 s3;
    bool s3_ready;
    hodei_status s3_st;
    char s3_err[HODEI_ERR_MSG_MAX];
    int64_t epoch;
    hodei_artifact_records *out;
} collect_ctx;

static void collect_on_match(void *user, const char *rel, art_match_kind kind)
{
    collect_matches *m = user;
    if (m->len == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        collect_match *items = realloc(m->items, cap * sizeof *items);
        if (!items) {
            m->nomem = true;
            return;
        }
        m->items = items;
        m->cap = cap;
    }
    char *copy = strdup(rel);
    if (!copy) {
        m->nomem = true;
        return;
    }
    m->items[m->len].rel = copy;
    m->items[m->len++].kind = kind;
}

static int collect_cmp(const void *a, const void *b)
{
    return strcmp(((const collect_match *)a)->rel, ((const collect_match *)b)->rel);
}

static void collect_matches_free(collect_matches *m)
{
    for (size_t i = 0; i < m->len; i++)
        free(m->items[i].rel);
    free(m->items);
}

/* ------------------------------------------------------------ records */

static Hodei__V1__ArtifactRecord *collect_record(collect_ctx *c, const char *rel, const char *dest)
{
    hodei_artifact_records *r = c->out;
    if (r->len >= HODEI_ARTIFACT_FILES_MAX)
        return NULL;
    Hodei__V1__ArtifactRecord **items = realloc(r->items, (r->len + 1) * sizeof *items);
    if (!items)
        return NULL;
    r->items = items;
    Hodei__V1__ArtifactRecord *rec = calloc(1, sizeof *rec);
    if (!rec)
        return NULL;
    hodei__v1__artifact_record__init(rec);
    rec->source = strdup(rel);
    rec->destination = strdup(dest);
    rec->checksum = strdup("");
    rec->error = strdup("");
    rec->epoch = c->epoch;
    rec->state = HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_FAILED;
    if (!rec->source || !rec->destination || !rec->checksum || !rec->error) {
        free(rec->source);
        free(rec->destination);
        free(rec->checksum);
        free(rec->error);
        free(rec);
        return NULL;
    }
    r->items[r->len++] = rec;
    return rec;
}

static void collect_fail(collect_ctx *c, Hodei__V1__ArtifactRecord *rec, const char *why)
{
    char *e = strndup(why, HODEI_ARTIFACT_ERROR_MAX);
    if (e) {
        free(rec->error);
        rec->error = e;
    }
    rec->state = HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_FAILED;
    art_note(c->j, "output %s %s -> %s: FAILED: %s", c->field, rec->source, rec->destination, why);
}

/* ------------------------------------------------------------ destination */

/* How many leading components of the pattern hold no glob character. */
static size_t collect_fixed_components(const char *pattern)
{
    size_t n = 0;
    const char *p = pattern;
    for (;;) {
        size_t len = strcspn(p, "/");
        if (strcspn(p, "*?[") < len || p[len] == '\0')
            return n;
        n++;
        p += len + 1;
    }
}

/* The part of rel a prefix destination keeps. */
static const char *collect_suffix(const char *pattern, const char *rel)
{
    size_t skip = collect_fixed_components(pattern);
    const char *s = rel;
    for (size_t i = 0; i < skip; i++) {
        const char *slash = strchr(s, '/');
        if (!slash)
            break;
        s = slash + 1;
    }
    return s;
}

/* The S3 key or URL of one file; show gets it as shown in records. */
static bool collect_dest(collect_ctx *c, const char *rel, char *key, size_t key_len, char *url,
                         size_t url_len, char *show, size_t show_len)
{
    const char *d = c->a->destination;
    const char *suffix = collect_suffix(c->a->source, rel);
    if (c->url.scheme == HODEI_ARTIFACT_S3) {
        int n = snprintf(key, key_len, "%s%s", c->url.key, c->url.prefix ? suffix : "");
        if (n <= 0 || (size_t)n >= key_len || (size_t)n > HODEI_ARTIFACT_KEY_MAX)
            return false;
        snprintf(show, show_len, "s3://%s/%s", c->url.bucket, key);
        return true;
    }
    size_t qpos = strcspn(d, "?#");
    bool prefix = qpos > 0 && d[qpos - 1] == '/';
    hodei_buf b;
    hodei_buf_init(&b, url_len - 1);
    hodei_buf_append(&b, d, qpos);
    if (prefix)
        art_uri_encode(&b, suffix, strlen(suffix), true);
    hodei_buf_puts(&b, d + qpos);
    bool ok = !b.failed && b.len < url_len;
    if (ok) {
        memcpy(url, b.data, b.len + 1);
        hodei_artifact_url_display(url, show, show_len);
    }
    hodei_buf_fini(&b);
    return ok;
}

/* ------------------------------------------------------------ upload */

typedef struct {
    const char *url;
    const char *show;
    int fd;
    int64_t size;
    EVP_MD_CTX *sha;
    int64_t hashed;
} collect_put;

static hodei_status collect_put_try(hodei_artifact_job *j, void *ctx, bool *retry, hodei_err *err)
{
    collect_put *p = ctx;
    art_http_resp resp;
    art_http_resp_init(&resp);
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    art_http_req req = {.method = ART_PUT,
                        .url = p->url,
                        .headers = h,
                        .in_fd = p->fd,
                        .in_len = p->size,
                        .in_sha = p->sha,
                        .in_hashed = &p->hashed,
                        .out_fd = -1,
                        .show = p->show};
    hodei_status st = art_http_do(j, &req, &resp, retry, err);
    if (st == HODEI_OK && (resp.status < 200 || resp.status >= 300)) {
        *retry = art_http_status_retry(resp.status);
        st = hodei_err_set(err, HODEI_ERR_IO, "HTTP %ld", resp.status);
    }
    curl_slist_free_all(h);
    art_http_resp_fini(&resp);
    return st;
}

static hodei_status collect_upload(collect_ctx *c, int fd, int64_t size, const char *key,
                                   const char *url, const char *show, EVP_MD_CTX *sha,
                                   hodei_err *err)
{
    if (c->url.scheme != HODEI_ARTIFACT_S3) {
        collect_put p = {.url = url, .show = show, .fd = fd, .size = size, .sha = sha};
        return art_retry(c->j, show, collect_put_try, &p, err);
    }
    if (!c->s3_ready) {
        hodei_err e;
        c->s3_st = art_s3_setup(c->j, c->a->credentials, c->field, &c->s3, &e);
        hodei_strlcpy(c->s3_err, e.msg, sizeof c->s3_err);
        c->s3_ready = true;
    }
    if (c->s3_st != HODEI_OK)
        return hodei_err_set(err, c->s3_st, "%s", c->s3_err);
    return art_s3_put(c->j, &c->s3, c->url.bucket, key, fd, size, sha, show, err);
}

static void collect_file(collect_ctx *c, const char *rel, art_match_kind kind)
{
    char key[HODEI_ARTIFACT_KEY_MAX + 1], url[COLLECT_URL_MAX], show[COLLECT_URL_MAX];
    hodei_err err;
    if (!collect_dest(c, rel, key, sizeof key, url, sizeof url, show, sizeof show))
        snprintf(show, sizeof show, "%s", "(destination too long)");
    Hodei__V1__ArtifactRecord *rec = collect_record(c, rel, show);
    if (!rec)
        return;
    if (strcmp(show, "(destination too long)") == 0) {
        collect_fail(c, rec, "the destination for this file is too long");
        return;
    }
    if (kind == ART_MATCH_SYMLINK) {
        collect_fail(c, rec, "a symbolic link: not followed, not uploaded");
        return;
    }
    if (kind != ART_MATCH_FILE) {
        collect_fail(c, rec, "not a regular file");
        return;
    }
    int fd = -1;
    int64_t size = 0, t0 = hodei_mono_ms();
    if (art_open_read(c->j->ws_fd, rel, &fd, &size, &err) != HODEI_OK) {
        collect_fail(c, rec, err.msg);
        return;
    }
    int64_t job_left = c->j->conf->job_bytes_max - c->j->bytes_out;
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    hodei_status st = HODEI_OK;
    if (size > c->j->conf->artifact_bytes_max || size > job_left)
        st =
            hodei_err_set(&err, HODEI_ERR_LIMIT, "%lld bytes is over the %s limit of %lld",
                          (long long)size, size > job_left ? "job's output" : "per-artifact",
                          (long long)(size > job_left ? job_left : c->j->conf->artifact_bytes_max));
    else if (!sha)
        st = hodei_err_set(&err, HODEI_ERR_NOMEM, "out of memory");
    if (st == HODEI_OK) {
        EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
        st = collect_upload(c, fd, size, key, url, show, sha, &err);
    }
    close(fd);
    if (st != HODEI_OK) {
        EVP_MD_CTX_free(sha);
        {
            collect_fail(c, rec, err.msg);
            return;
        }
    }
    char sum[72], human[32];
    art_sha_hex(sha, sum);
    EVP_MD_CTX_free(sha);
    char *s = strdup(sum);
    if (s) {
        free(rec->checksum);
        rec->checksum = s;
    }
    rec->size_bytes = size;
    rec->state = HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED;
    c->j->bytes_out += size;
    double secs = (double)(hodei_mono_ms() - t0) / 1000.0;
    art_human_bytes(size, human, sizeof human);
    art_note(c->j, "output %s %s -> %s: %s in %.2f s (%.1f MiB/s), %s", c->field, rel, show, human,
             secs, secs > 0 ? (double)size / (1024.0 * 1024.0) / secs : 0.0, sum);
}

/* ------------------------------------------------------------ all */

static bool collect_wanted(const Hodei__V1__Artifact *a, bool succeeded)
{
    switch (a->when) {
    case HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ALWAYS:
        return true;
    case HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ON_FAILURE:
        return !succeeded;
    default:
        return succeeded;
    }
}

static void collect_output(collect_ctx *c)
{
    hodei_err err;
    collect_matches m = {0};
    char fieldx[96];
    snprintf(fieldx, sizeof fieldx, "%s.destination", c->field);
    if (hodei_artifact_url_parse(c->a->destination, true, fieldx, &c->url, &err) != HODEI_OK) {
        Hodei__V1__ArtifactRecord *rec = collect_record(c, c->a->source, "");
        if (rec)
            collect_fail(c, rec, err.msg);
        return;
    }
    size_t room = HODEI_ARTIFACT_FILES_MAX - c->out->len, n = 0;
    hodei_status st = art_glob(c->j->ws_fd, c->a->source, room, collect_on_match, &m, &n, &err);
    bool prefix = c->url.scheme == HODEI_ARTIFACT_S3
                      ? c->url.prefix
                      : c->a->destination[strcspn(c->a->destination, "?#") - 1] == '/';
    Hodei__V1__ArtifactRecord *rec = NULL;
    if (st != HODEI_OK || m.nomem || m.len == 0 || (m.len > 1 && !prefix)) {
        char why[HODEI_ERR_MSG_MAX + 64];
        snprintf(why, sizeof why, "%s",
                 st != HODEI_OK ? err.msg
                 : m.nomem      ? "out of memory"
                 : m.len == 0   ? "nothing in the workspace matches"
                                : "several files match but the destination names one; end it "
                                  "with \"/\"");
        /* A plain path that matched nothing: say why it does not resolve
         * (a symlink on the way, not a file, missing). */
        int fd = -1;
        int64_t size = 0;
        if (st == HODEI_OK && m.len == 0 && !strpbrk(c->a->source, "*?[") &&
            art_open_read(c->j->ws_fd, c->a->source, &fd, &size, &err) != HODEI_OK)
            snprintf(why, sizeof why, "%s", err.msg);
        if (fd >= 0)
            close(fd);
        if ((rec = collect_record(c, c->a->source, c->a->destination)) != NULL) {
            char show[ART_SHOW_MAX];
            hodei_artifact_url_display(c->a->destination, show, sizeof show);
            free(rec->destination);
            rec->destination = strdup(show);
            if (!rec->destination)
                rec->destination = strdup("");
            collect_fail(c, rec, why);
        }
    } else {
        qsort(m.items, m.len, sizeof *m.items, collect_cmp);
        for (size_t i = 0; i < m.len; i++)
            collect_file(c, m.items[i].rel, m.items[i].kind);
    }
    collect_matches_free(&m);
}

void hodei_artifact_collect(hodei_artifact_job *j, Hodei__V1__Artifact *const *outputs, size_t n,
                            bool succeeded, int64_t epoch, hodei_artifact_records *out)
{
    out->items = NULL;
    out->len = 0;
    size_t wanted = 0;
    for (size_t i = 0; i < n; i++)
        wanted += collect_wanted(outputs[i], succeeded);
    if (wanted == 0)
        return;
    art_note(j, "collecting %zu output%s from the workspace", wanted, wanted == 1 ? "" : "s");
    collect_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return;
    for (size_t i = 0; i < n; i++) {
        if (!collect_wanted(outputs[i], succeeded))
            continue;
        memset(c, 0, sizeof *c);
        c->j = j;
        c->a = outputs[i];
        c->epoch = epoch;
        c->out = out;
        snprintf(c->field, sizeof c->field, "spec.outputs[%zu]", i);
        collect_output(c);
        art_s3_wipe(&c->s3);
    }
    free(c);
    size_t ok = 0;
    for (size_t i = 0; i < out->len; i++)
        ok += out->items[i]->state == HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED;
    char size[32];
    art_human_bytes(j->bytes_out, size, sizeof size);
    art_note(j, "outputs: %zu uploaded (%s), %zu failed", ok, size, out->len - ok);
}
