/* The artifact job: configuration, the workspace, the deadline, notes for
 * the job's log, and the retry loop every transfer goes through. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "art_int.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define ART_SLEEP_SLICE_MS 50
#define ART_NFTW_FDS 16

void hodei_artifact_conf_default(hodei_artifact_conf *c)
{
    memset(c, 0, sizeof *c);
    c->s3_endpoint = "";
    c->s3_region = "us-east-1";
    c->file_roots = "";
    c->ca_file = "";
    c->artifact_bytes_max = INT64_C(10) << 30;
    c->job_bytes_max = INT64_C(50) << 30;
    c->retry_max = 3;
    c->retry_backoff_ms = 500;
    c->connect_timeout_ms = 10000;
    c->redirects_max = 5;
    c->multipart_threshold = 16 << 20;
    c->part_bytes = 8 << 20;
    c->progress_interval_ms = 5000;
}

hodei_status hodei_artifact_global_init(hodei_err *err)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "libcurl: %s", curl_easy_strerror(rc));
    return HODEI_OK;
}

/* ------------------------------------------------------------ workspace */

static int art_remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    if (remove(path) != 0 && errno != ENOENT)
        HLOG_WARN("artifact: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

void hodei_artifact_workspace_remove(const char *path)
{
    if (!path || !path[0])
        return;
    if (nftw(path, art_remove_entry, ART_NFTW_FDS, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        HLOG_WARN("artifact: cannot walk %s: %s", path, strerror(errno));
}

static _Thread_local uid_t art_hand_uid;
static _Thread_local gid_t art_hand_gid;
static _Thread_local int art_hand_errno;

static int art_hand_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (lchown(path, art_hand_uid, art_hand_gid) != 0) {
        art_hand_errno = errno;
        return 1;
    }
    return 0;
}

hodei_status hodei_artifact_workspace_hand(const char *root, const char *workspace, uid_t uid,
                                           gid_t gid, hodei_err *err)
{
    if (chmod(root, 0711) != 0)
        return hodei_err_set(err, HODEI_ERR_IO, "workspace root %s: %s", root, strerror(errno));
    art_hand_uid = uid;
    art_hand_gid = gid;
    art_hand_errno = 0;
    if (nftw(workspace, art_hand_entry, ART_NFTW_FDS, FTW_PHYS | FTW_MOUNT) != 0)
        return hodei_err_set(err, HODEI_ERR_IO, "workspace %s: cannot hand it to uid %d: %s",
                             workspace, (int)uid,
                             strerror(art_hand_errno ? art_hand_errno : errno));
    return HODEI_OK;
}

hodei_status hodei_artifact_workspace_create(const char *root, const char *job_id, int64_t epoch,
                                             char *out, size_t out_len, hodei_err *err)
{
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        return hodei_err_set(err, HODEI_ERR_IO, "workspace root %s: %s", root, strerror(errno));
    int n = snprintf(out, out_len, "%s/%s-%lld", root, job_id, (long long)epoch);
    if (n < 0 || (size_t)n >= out_len)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "workspace path too long under %s", root);
    hodei_artifact_workspace_remove(out); /* a leftover of a crashed agent */
    if (mkdir(out, 0700) != 0)
        return hodei_err_set(err, HODEI_ERR_IO, "workspace %s: %s", out, strerror(errno));
    return HODEI_OK;
}

/* ------------------------------------------------------------ job */

hodei_status hodei_artifact_job_create(const hodei_artifact_conf *conf, const char *workspace,
                                       int64_t deadline_ms, const hodei_artifact_hooks *hooks,
                                       hodei_artifact_job **out, hodei_err *err)
{
    hodei_status st = HODEI_ERR_NOMEM;
    hodei_artifact_job *j = calloc(1, sizeof *j);
    if (!j)
        return hodei_err_set(err, st, "artifact: out of memory");
    j->conf = conf;
    if (hooks)
        j->hooks = *hooks;
    j->deadline_ms = deadline_ms;
    j->rand_state = (uint64_t)hodei_mono_ns() | 1;
    j->ws_fd = open(workspace, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (j->ws_fd < 0) {
        st = hodei_err_set(err, HODEI_ERR_IO, "workspace %s: %s", workspace, strerror(errno));
        goto out_free;
    }
    j->curl = curl_easy_init();
    if (!j->curl) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "artifact: curl_easy_init failed");
        goto out_close;
    }
    *out = j;
    return HODEI_OK;
out_close:
    close(j->ws_fd);
out_free:
    free(j);
    return st;
}

void hodei_artifact_job_destroy(hodei_artifact_job *j)
{
    if (!j)
        return;
    curl_easy_cleanup(j->curl);
    close(j->ws_fd);
    free(j);
}

int64_t hodei_artifact_bytes_in(const hodei_artifact_job *j)
{
    return j->bytes_in;
}

int64_t hodei_artifact_bytes_out(const hodei_artifact_job *j)
{
    return j->bytes_out;
}

void art_note(hodei_artifact_job *j, const char *fmt, ...)
{
    if (!j->hooks.note)
        return;
    char line[ART_NOTE_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    j->hooks.note(j->hooks.user, line);
}

bool art_cancelled(hodei_artifact_job *j)
{
    return j->hooks.cancelled && j->hooks.cancelled(j->hooks.user);
}

int64_t art_left_ms(const hodei_artifact_job *j)
{
    if (j->deadline_ms <= 0)
        return INT64_MAX;
    return j->deadline_ms - hodei_mono_ms();
}

void art_human_bytes(int64_t n, char *out, size_t out_len)
{
    if (n < 1024)
        snprintf(out, out_len, "%lld B", (long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, out_len, "%.1f KiB", (double)n / 1024);
    else if (n < (INT64_C(1) << 30))
        snprintf(out, out_len, "%.1f MiB", (double)n / (1024 * 1024));
    else
        snprintf(out, out_len, "%.2f GiB", (double)n / (double)(INT64_C(1) << 30));
}

void art_sha_hex(EVP_MD_CTX *sha, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(sha, md, &n);
    memcpy(out, "sha256:", 7);
    for (unsigned int i = 0; i < n && i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* ------------------------------------------------------------ retries */

static uint64_t art_rand(hodei_artifact_job *j)
{
    uint64_t x = j->rand_state; /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    j->rand_state = x;
    return x;
}

/* Sleeps ms in slices, waking for a cancel. false when cancelled. */
static bool art_sleep(hodei_artifact_job *j, int64_t ms)
{
    int64_t until = hodei_mono_ms() + ms;
    for (;;) {
        if (art_cancelled(j))
            return false;
        int64_t left = until - hodei_mono_ms();
        if (left <= 0)
            return true;
        hodei_sleep_ms(left < ART_SLEEP_SLICE_MS ? left : ART_SLEEP_SLICE_MS);
    }
}

hodei_status art_retry(hodei_artifact_job *j, const char *what, art_try_fn fn, void *ctx,
                       hodei_err *err)
{
    int64_t backoff = j->conf->retry_backoff_ms > 0 ? j->conf->retry_backoff_ms : 1;
    for (int attempt = 0;; attempt++) {
        if (art_cancelled(j))
            return hodei_err_set(err, HODEI_ERR_CANCELLED, "cancelled");
        if (art_left_ms(j) <= 0)
            return hodei_err_set(err, HODEI_ERR_TIMEOUT, "the job's timeout passed");
        bool retry = false;
        hodei_status st = fn(j, ctx, &retry, err);
        if (st == HODEI_OK || !retry || attempt >= j->conf->retry_max)
            return st;
        /* jitter: half to the whole of the backoff */
        int64_t delay = backoff / 2 + (int64_t)(art_rand(j) % (uint64_t)(backoff / 2 + 1));
        if (delay >= art_left_ms(j))
            return st;
        art_note(j, "%s: %s; trying again in %.1f s (retry %d of %d)", what, err->msg,
                 (double)delay / 1000.0, attempt + 1, j->conf->retry_max);
        if (!art_sleep(j, delay))
            return hodei_err_set(err, HODEI_ERR_CANCELLED, "cancelled");
        backoff *= 2;
    }
}

void hodei_artifact_records_free(hodei_artifact_records *r)
{
    for (size_t i = 0; i < r->len; i++) {
        Hodei__V1__ArtifactRecord *a = r->items[i];
        free(a->source);
        free(a->destination);
        free(a->checksum);
        free(a->error);
        free(a);
    }
    free(r->items);
    r->items = NULL;
    r->len = 0;
}
