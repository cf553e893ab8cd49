/* libs/artifact private parts:
 *   art_job.c      the job (conf, workspace fd, deadline, byte counts), notes, retries
 *   art_path.c     workspace paths resolved with O_NOFOLLOW, one component at a time
 *   art_http.c     one HTTP request with libcurl (sink: file with SHA-256, or memory)
 *   art_sigv4.c    AWS Signature Version 4 (pure)
 *   art_s3.c       S3 object get/list/put and multipart uploads
 *   art_stage.c    inputs
 *   art_collect.c  outputs
 * One job is used by one thread; it owns one CURL handle, reused so that
 * connections stay open between requests. */
#ifndef HODEI_ART_INT_H
#define HODEI_ART_INT_H

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/artifact.h"
#include "hodei/artifact_ref.h"
#include "hodei/buf.h"

#define ART_NOTE_MAX 600
#define ART_BODY_MAX (1024 * 1024) /* XML answers and error bodies kept in memory */
#define ART_ERRBODY_MAX 4096
#define ART_HOST_MAX 300
#define ART_SHOW_MAX 320 /* a URL as shown in lines and errors */

struct hodei_artifact_job {
    const hodei_artifact_conf *conf;
    hodei_artifact_hooks hooks;
    int ws_fd; /* the workspace, O_DIRECTORY */
    int64_t deadline_ms;
    int64_t bytes_in, bytes_out;
    CURL *curl;
    uint64_t rand_state;
};

/* art_job.c */
void art_note(hodei_artifact_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool art_cancelled(hodei_artifact_job *j);
/* ms left before the deadline (INT64_MAX without one); <= 0 = passed. */
int64_t art_left_ms(const hodei_artifact_job *j);
/* One try of something; *retry says whether a failure is worth another. */
typedef hodei_status (*art_try_fn)(hodei_artifact_job *j, void *ctx, bool *retry, hodei_err *err);
/* Tries fn up to 1 + retry_max times with backoff, within the deadline. */
hodei_status art_retry(hodei_artifact_job *j, const char *what, art_try_fn fn, void *ctx,
                       hodei_err *err);
void art_human_bytes(int64_t n, char *out, size_t out_len);
void art_sha_hex(EVP_MD_CTX *sha, char out[72]); /* "sha256:<64 hex>" */

/* art_path.c: every path is relative to dir_fd and checked by
 * hodei_artifact_relpath_check first. */
/* Opens (O_RDONLY) a regular file; a symlink anywhere on the way, or a
 * non-regular file, is refused. */
hodei_status art_open_read(int dir_fd, const char *rel, int *fd_out, int64_t *size_out,
                           hodei_err *err);
/* Creates a new file (O_EXCL), making missing folders on the way. */
hodei_status art_create_write(int dir_fd, const char *rel, int *fd_out, hodei_err *err);
void art_unlink(int dir_fd, const char *rel);
/* file://path below one of the ':'-separated roots, opened as above. */
hodei_status art_open_file_url(const char *roots, const char *path, int *fd_out, int64_t *size_out,
                               hodei_err *err);
/* The files matching a pattern of workspace paths (fnmatch per component,
 * FNM_PERIOD): calls fn with each match's relative path and its type.
 * Symlinks are reported, never followed. Stops at max matches. */
typedef enum { ART_MATCH_FILE = 0, ART_MATCH_SYMLINK, ART_MATCH_OTHER } art_match_kind;
typedef void (*art_match_fn)(void *user, const char *rel, art_match_kind kind);
hodei_status art_glob(int dir_fd, const char *pattern, size_t max, art_match_fn fn, void *user,
                      size_t *n_out, hodei_err *err);

/* art_http.c */
typedef enum { ART_GET = 0, ART_PUT, ART_POST, ART_DELETE, ART_HEAD } art_method;
typedef struct {
    art_method method;
    const char *url;
    struct curl_slist *headers; /* borrowed */
    bool follow;                /* redirects (https/http inputs only) */
    bool https_only_redirects;
    /* body: memory or a file range */
    const char *body;
    size_t body_len;
    int in_fd;
    int64_t in_off, in_len;
    EVP_MD_CTX *in_sha; /* hashes the file range once, across retries */
    int64_t *in_hashed; /* absolute offset hashed up to */
    /* sink: a file (2xx only) or memory */
    int out_fd;          /* -1 = memory */
    EVP_MD_CTX *out_sha; /* hash of what goes to out_fd */
    int64_t out_limit;   /* bytes accepted into out_fd */
    const char *show;    /* the URL as shown */
} art_http_req;

typedef struct {
    long status;
    hodei_buf body; /* non-2xx bodies, and 2xx when out_fd < 0 */
    int64_t written;
    char etag[128];
    bool over_limit;
} art_http_resp;

void art_http_resp_init(art_http_resp *r);
void art_http_resp_fini(art_http_resp *r);
/* One request. HODEI_OK whenever an HTTP answer came (look at status);
 * an error for transport failures, with *retry set when worth another. */
hodei_status art_http_do(hodei_artifact_job *j, const art_http_req *req, art_http_resp *resp,
                         bool *retry, hodei_err *err);
bool art_http_status_retry(long status);
/* Appends s percent-encoded (RFC 3986 unreserved kept; '/' kept when
 * keep_slash). */
bool art_uri_encode(hodei_buf *b, const char *s, size_t len, bool keep_slash);

/* art_sigv4.c */
typedef struct {
    const char *access_key, *secret_key, *session_token; /* session_token may be "" */
    const char *region;
    const char *service; /* "s3" */
} art_sigv4_cred;

typedef struct {
    const char *name; /* lower case */
    const char *value;
} art_sigv4_header;

/* The Authorization header value for a request: headers sorted by name,
 * every one of them signed; amz_date "YYYYMMDDTHHMMSSZ". */
hodei_status art_sigv4_authorization(const char *method, const char *canonical_uri,
                                     const char *canonical_query, const art_sigv4_header *headers,
                                     size_t n_headers, const char *payload_hash,
                                     const char *amz_date, const art_sigv4_cred *cred, char *out,
                                     size_t out_len, hodei_err *err);

/* art_s3.c */
typedef struct {
    char endpoint[512]; /* scheme://host[:port] */
    char region[64];
    bool path_style;
    char access_key[256];
    char secret_key[256];
    char session_token[2048];
    bool anonymous;
} art_s3;

/* Resolves endpoint, region and credentials for an artifact naming the
 * secret `cred_name` ("" = anonymous). */
hodei_status art_s3_setup(hodei_artifact_job *j, const char *cred_name, const char *field,
                          art_s3 *s3, hodei_err *err);
void art_s3_wipe(art_s3 *s3);
/* GET an object into out_fd with its hash; limit bytes. */
hodei_status art_s3_get(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                        const char *key, int out_fd, EVP_MD_CTX *sha, int64_t limit,
                        int64_t *written, const char *show, hodei_err *err);
/* Lists the keys below a prefix: fn(user, key, size) for each. */
typedef hodei_status (*art_s3_list_fn)(void *user, const char *key, int64_t size, hodei_err *err);
hodei_status art_s3_list(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                         const char *prefix, art_s3_list_fn fn, void *user, const char *show,
                         hodei_err *err);
/* PUT a file (multipart when large); sha gets its SHA-256. */
hodei_status art_s3_put(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                        const char *key, int in_fd, int64_t size, EVP_MD_CTX *sha, const char *show,
                        hodei_err *err);

/* DELETE an object; one that is not there counts as deleted. */
hodei_status art_s3_delete(hodei_artifact_job *j, const art_s3 *s3, const char *bucket,
                           const char *key, const char *show, hodei_err *err);

/* XML: the text of the first <tag> at or after *pos (entities decoded);
 * *pos moves past it. false when there is none. */
bool art_xml_next(const char *xml, size_t len, size_t *pos, const char *tag, char *out,
                  size_t out_len);
/* The raw text between <tag> and </tag>: [*start, *end). */
bool art_xml_span(const char *xml, size_t len, size_t *pos, const char *tag, size_t *start,
                  size_t *end);

#endif
