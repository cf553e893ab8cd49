#include "hodei/artifact_ref.h"

#include <stdio.h>
#include <string.h>

#include "hodei/util.h"

static bool ref_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool ref_alnum_lower(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Scheme and the rest after "://"; NULL when there is no "://". */
static const char *ref_scheme(const char *url, char *scheme, size_t scheme_len)
{
    const char *sep = strstr(url, "://");
    if (!sep)
        return NULL;
    size_t n = (size_t)(sep - url);
    if (n >= scheme_len)
        n = scheme_len - 1;
    for (size_t i = 0; i < n; i++) {
        char c = url[i];
        scheme[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    scheme[n] = '\0';
    return sep + 3;
}

static hodei_status ref_check_chars(const char *url, const char *field, hodei_err *err)
{
    for (size_t i = 0; url[i]; i++) {
        unsigned char c = (unsigned char)url[i];
        if (ref_ctl(c) || c == ' ')
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "%s: must not hold spaces or control characters (byte %zu)", field,
                                 i);
    }
    return HODEI_OK;
}

/* host[:port] then "/" or "?" or the end; no userinfo. */
static hodei_status ref_parse_http(const char *rest, const char *field, hodei_err *err)
{
    size_t host_len = strcspn(rest, "/?#");
    if (host_len == 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: the URL has no host", field);
    if (memchr(rest, '@', host_len))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: user or password in the URL is not allowed (credentials are "
                             "never given in clear)",
                             field);
    return HODEI_OK;
}

static bool ref_bucket_ok(const char *b, size_t n)
{
    if (n < 3 || n > HODEI_ARTIFACT_BUCKET_MAX)
        return false;
    if (!ref_alnum_lower((unsigned char)b[0]) || !ref_alnum_lower((unsigned char)b[n - 1]))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)b[i];
        if (!ref_alnum_lower(c) && c != '.' && c != '-')
            return false;
        if (c == '.' && i + 1 < n && b[i + 1] == '.')
            return false;
    }
    return true;
}

static hodei_status ref_parse_s3(const char *rest, const char *field, hodei_artifact_url *out,
                                 hodei_err *err)
{
    const char *slash = strchr(rest, '/');
    size_t blen = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!ref_bucket_ok(rest, blen))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: the bucket must be 3 to 63 characters of [a-z0-9.-], starting "
                             "and ending with a letter or digit",
                             field);
    memcpy(out->bucket, rest, blen);
    out->bucket[blen] = '\0';
    const char *key = slash ? slash + 1 : "";
    size_t klen = strlen(key);
    if (klen > HODEI_ARTIFACT_KEY_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: the key must be at most %d bytes, got %zu", field,
                             HODEI_ARTIFACT_KEY_MAX, klen);
    if (key[0] == '/')
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: the key must not start with \"/\"",
                             field);
    memcpy(out->key, key, klen + 1);
    out->prefix = klen == 0 || key[klen - 1] == '/';
    return HODEI_OK;
}

static hodei_status ref_parse_file(const char *rest, const char *field, hodei_artifact_url *out,
                                   hodei_err *err)
{
    if (rest[0] != '/')
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: file URLs must be file:///absolute/path (no host)", field);
    if (strchr(rest, '?') || strchr(rest, '#'))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: file URLs take no query or fragment",
                             field);
    hodei_status st = hodei_artifact_relpath_check(rest + 1, false, false, field, err);
    if (st != HODEI_OK)
        return st;
    out->path = rest;
    return HODEI_OK;
}

hodei_status hodei_artifact_url_parse(const char *url, bool for_output, const char *field,
                                      hodei_artifact_url *out, hodei_err *err)
{
    char scheme[16];
    memset(out, 0, sizeof *out);
    url = url ? url : "";
    if (url[0] == '\0')
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: required", field);
    hodei_status st = ref_check_chars(url, field, err);
    if (st != HODEI_OK)
        return st;
    const char *rest = ref_scheme(url, scheme, sizeof scheme);
    const char *allowed =
        for_output ? "https, http or s3 (e.g. s3://bucket/key)" : "https, http, s3 or file";
    if (!rest)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be a URL with a scheme: %s", field,
                             allowed);
    if (strcmp(scheme, "https") == 0 || strcmp(scheme, "http") == 0) {
        out->scheme = scheme[4] == 's' ? HODEI_ARTIFACT_HTTPS : HODEI_ARTIFACT_HTTP;
        return ref_parse_http(rest, field, err);
    }
    if (strcmp(scheme, "s3") == 0) {
        out->scheme = HODEI_ARTIFACT_S3;
        return ref_parse_s3(rest, field, out, err);
    }
    if (strcmp(scheme, "file") == 0 && !for_output) {
        out->scheme = HODEI_ARTIFACT_FILE;
        return ref_parse_file(rest, field, out, err);
    }
    char shown[24];
    size_t n = (size_t)(rest - 3 - url);
    if (n > 16)
        n = 16;
    for (size_t i = 0; i < n; i++)
        shown[i] = (url[i] >= 0x21 && url[i] < 0x7f && url[i] != '"') ? url[i] : '?';
    shown[n] = '\0';
    return hodei_err_set(err, HODEI_ERR_INVALID, "%s: scheme \"%s\" is not supported; use %s",
                         field, shown, allowed);
}

static hodei_status ref_component_check(const char *c, size_t n, const char *field, hodei_err *err)
{
    if (n == 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: empty path component (\"//\")", field);
    if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: \".\" and \"..\" are not allowed in paths", field);
    if (n > HODEI_ARTIFACT_COMPONENT_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: a path component is longer than %d bytes",
                             field, HODEI_ARTIFACT_COMPONENT_MAX);
    /* Glob characters are literal in plain paths; a backslash would be an
     * escape in a glob and is refused everywhere, so one rule fits both. */
    if (memchr(c, '\\', n))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: \"\\\" is not allowed in paths", field);
    return HODEI_OK;
}

hodei_status hodei_artifact_relpath_check(const char *path, bool dir_ok, bool empty_ok,
                                          const char *field, hodei_err *err)
{
    path = path ? path : "";
    size_t len = strlen(path);
    if (len == 0)
        return empty_ok ? HODEI_OK : hodei_err_set(err, HODEI_ERR_INVALID, "%s: required", field);
    if (path[0] == '/')
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be a path relative to the job's workspace (no leading "
                             "\"/\")",
                             field);
    if (!hodei_utf8_valid(path, len))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be valid UTF-8", field);
    for (size_t i = 0; i < len; i++)
        if (ref_ctl((unsigned char)path[i]))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "%s: must not hold control characters (byte %zu)", field, i);
    if (path[len - 1] == '/') {
        if (!dir_ok)
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must name a file (no trailing \"/\")",
                                 field);
        len--;
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        hodei_status st = ref_component_check(path + start, i - start, field, err);
        if (st != HODEI_OK)
            return st;
        start = i + 1;
    }
    return HODEI_OK;
}

bool hodei_artifact_checksum_ok(const char *checksum)
{
    if (!checksum || strncmp(checksum, "sha256:", 7) != 0)
        return false;
    const char *h = checksum + 7;
    size_t n = 0;
    for (; h[n]; n++) {
        char c = h[n];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return n == 64;
}

void hodei_artifact_url_display(const char *url, char *out, size_t out_len)
{
    url = url ? url : "";
    size_t n = strcspn(url, "?#");
    if (n >= out_len)
        n = out_len - 1;
    memcpy(out, url, n);
    out[n] = '\0';
    if (url[n] == '?' && n + 4 < out_len) /* show that there was one */
        memcpy(out + n, "?...", 5);
}

const char *hodei_artifact_basename(const char *s, size_t *len)
{
    s = s ? s : "";
    size_t end = strcspn(s, "?#");
    const char *scheme_end = strstr(s, "://");
    size_t from = scheme_end && (size_t)(scheme_end - s) < end ? (size_t)(scheme_end - s) + 3 : 0;
    if (from > 0) { /* skip the host (or bucket) */
        const char *slash = memchr(s + from, '/', end - from);
        from = slash ? (size_t)(slash - s) + 1 : end;
    }
    size_t b = from;
    for (size_t i = from; i < end; i++)
        if (s[i] == '/')
            b = i + 1;
    *len = end - b;
    return s + b;
}
