/* Container image references (see image_ref.h). */
#include "hodei/image_ref.h"

#include <stdio.h>
#include <string.h>

#define IMAGE_DIGEST_HEX_MIN 32

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

static bool is_word(char c)
{
    return is_alnum(c) || c == '_';
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool fail(char *why, const char *msg)
{
    if (why)
        snprintf(why, HODEI_IMAGE_WHY_MAX, "%s", msg);
    return false;
}

/* [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static bool path_component_ok(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !is_lower_alnum(s[0]))
        return false;
    while (i < len) {
        while (i < len && is_lower_alnum(s[i]))
            i++;
        if (i == len)
            return true;
        size_t sep = i;
        if (s[i] == '.')
            i++;
        else if (s[i] == '_')
            i += (i + 1 < len && s[i + 1] == '_') ? 2 : 1;
        else
            while (i < len && s[i] == '-')
                i++;
        if (i == sep || i == len || !is_lower_alnum(s[i]))
            return false;
    }
    return true;
}

/* host components [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by '.', then :port */
static bool domain_ok(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    size_t host_len = colon ? (size_t)(colon - s) : len;
    if (colon) {
        size_t plen = len - host_len - 1;
        if (plen == 0 || plen > 5)
            return false;
        for (size_t i = 0; i < plen; i++)
            if (colon[1 + i] < '0' || colon[1 + i] > '9')
                return false;
    }
    size_t start = 0;
    for (size_t i = 0; i <= host_len; i++) {
        if (i < host_len && s[i] != '.') {
            if (!is_alnum(s[i]) && s[i] != '-')
                return false;
            continue;
        }
        if (i == start || s[start] == '-' || s[i - 1] == '-')
            return false;
        start = i + 1;
    }
    return true;
}

static bool looks_like_domain(const char *s, size_t len)
{
    if (len == strlen("localhost") && memcmp(s, "localhost", len) == 0)
        return true;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '.' || s[i] == ':' || (s[i] >= 'A' && s[i] <= 'Z'))
            return true;
    return false;
}

static bool name_ok(const char *s, size_t len, char *why)
{
    if (len == 0)
        return fail(why, "the repository name is empty");
    if (len > HODEI_IMAGE_NAME_MAX)
        return fail(why, "the repository name is longer than 255 bytes");
    const char *slash = memchr(s, '/', len);
    size_t off = 0;
    if (slash && looks_like_domain(s, (size_t)(slash - s))) {
        if (!domain_ok(s, (size_t)(slash - s)))
            return fail(why, "the registry host is not a valid host[:port]");
        off = (size_t)(slash - s) + 1;
    }
    while (off <= len) {
        const char *next = memchr(s + off, '/', len - off);
        size_t clen = next ? (size_t)(next - (s + off)) : len - off;
        if (!path_component_ok(s + off, clen))
            return fail(why, "each part of the repository name must be lower-case letters and "
                             "digits, joined by '.', '_', '__' or '-'");
        off += clen + 1;
    }
    return true;
}

static bool tag_ok(const char *s, size_t len)
{
    if (len == 0 || len > HODEI_IMAGE_TAG_MAX || !is_word(s[0]))
        return false;
    for (size_t i = 1; i < len; i++)
        if (!is_word(s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    return true;
}

/* algorithm ":" hex{32,}; algorithm [A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* */
static bool digest_ok(const char *s, size_t len)
{
    const char *colon = memchr(s, ':', len);
    if (!colon || colon == s)
        return false;
    size_t alen = (size_t)(colon - s), hlen = len - alen - 1;
    bool need_alpha = true;
    for (size_t i = 0; i < alen; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        if (need_alpha) {
            if (!alpha)
                return false;
            need_alpha = false;
        } else if (c == '-' || c == '_' || c == '+' || c == '.') {
            need_alpha = true;
        } else if (!is_alnum(c)) {
            return false;
        }
    }
    if (need_alpha || hlen < IMAGE_DIGEST_HEX_MIN)
        return false;
    for (size_t i = 0; i < hlen; i++)
        if (!is_hex(colon[1 + i]))
            return false;
    return true;
}

bool hodei_image_ref_parse(const char *ref, hodei_image_ref *out, char *why)
{
    hodei_image_ref r = {0};
    size_t len = ref ? strlen(ref) : 0;
    if (len == 0)
        return fail(why, "empty");
    const char *at = strchr(ref, '@');
    size_t rest = at ? (size_t)(at - ref) : len;
    if (at) {
        r.digest_off = rest + 1;
        r.digest_len = len - rest - 1;
        if (!digest_ok(ref + r.digest_off, r.digest_len))
            return fail(why, "the digest must be algorithm:hex (sha256: and at least 32 hex "
                             "digits)");
    }
    const char *colon = NULL;
    for (size_t i = rest; i > 0; i--) {
        if (ref[i - 1] == '/')
            break;
        if (ref[i - 1] == ':') {
            colon = ref + i - 1;
            break;
        }
    }
    r.name_len = colon ? (size_t)(colon - ref) : rest;
    if (colon) {
        r.tag_off = r.name_len + 1;
        r.tag_len = rest - r.tag_off;
        if (!tag_ok(ref + r.tag_off, r.tag_len))
            return fail(why, "the tag must be 1 to 128 characters of [A-Za-z0-9_.-], not "
                             "starting with '.' or '-'");
    }
    if (!name_ok(ref, r.name_len, why))
        return false;
    if (out)
        *out = r;
    return true;
}
