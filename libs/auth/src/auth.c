/* Scopes, names, keys and identities: see hodei/auth.h. */
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hodei/auth.h"
#include "hodei/util.h"

static const char *const scope_names[HODEI_SCOPE_COUNT] = {
    "jobs:submit",     "jobs:read",     "jobs:cancel", "logs:read",
    "templates:write", "secrets:write", "admin",
};

const char *hodei_scope_name(uint32_t bit)
{
    for (int i = 0; i < HODEI_SCOPE_COUNT; i++)
        if (bit == (1u << i))
            return scope_names[i];
    return NULL;
}

bool hodei_scope_parse(const char *name, uint32_t *bit)
{
    for (int i = 0; name && i < HODEI_SCOPE_COUNT; i++) {
        if (strcmp(name, scope_names[i]) == 0) {
            *bit = 1u << i;
            return true;
        }
    }
    return false;
}

uint32_t hodei_scope_at(int i)
{
    return i >= 0 && i < HODEI_SCOPE_COUNT ? 1u << i : 0;
}

/* ------------------------------------------------------------------ names */

bool hodei_ns_valid(const char *ns)
{
    size_t n = ns ? strlen(ns) : 0;
    if (n == 0 || n > HODEI_NS_NAME_MAX || ns[0] == '-' || ns[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = ns[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

hodei_status hodei_ns_check(const char *field, const char *ns, hodei_err *err)
{
    if (!ns || !ns[0])
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: required", field);
    if (!hodei_ns_valid(ns))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: a namespace is 1 to %d of a-z, 0-9 and '-' (not first or last)",
                             field, HODEI_NS_NAME_MAX);
    return HODEI_OK;
}

hodei_status hodei_key_name_check(const char *field, const char *name, hodei_err *err)
{
    size_t n = name ? strlen(name) : 0;
    bool ok = n > 0 && n <= HODEI_KEY_NAME_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = name[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-' || c == '@';
    }
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be 1 to %d of A-Z a-z 0-9 _ . - @",
                             field, HODEI_KEY_NAME_MAX);
    return HODEI_OK;
}

/* UTF-8 without control characters, at most max bytes. */
static bool text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max || !hodei_utf8_valid(s, n))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

hodei_status hodei_key_owner_check(const char *field, const char *owner, hodei_err *err)
{
    if (owner && !text_ok(owner, HODEI_KEY_OWNER_MAX))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: at most %d bytes of UTF-8 without control characters", field,
                             HODEI_KEY_OWNER_MAX);
    return HODEI_OK;
}

hodei_status hodei_cert_san_check(const char *field, const char *san, hodei_err *err)
{
    size_t n = san ? strlen(san) : 0;
    bool ok = n <= HODEI_CERT_SAN_MAX;
    for (size_t i = 0; ok && i < n; i++)
        ok = san[i] > 0x20 && san[i] < 0x7f;
    if (!ok)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: at most %d printable ASCII characters without spaces", field,
                             HODEI_CERT_SAN_MAX);
    return HODEI_OK;
}

/* ------------------------------------------------------------------- keys */

bool hodei_apikey_new(char out[HODEI_APIKEY_BUF])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[HODEI_APIKEY_RANDOM_LEN];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return false;
    size_t p = sizeof HODEI_APIKEY_PREFIX - 1;
    memcpy(out, HODEI_APIKEY_PREFIX, p);
    for (size_t i = 0; i < sizeof raw; i++) {
        out[p++] = hex[raw[i] >> 4];
        out[p++] = hex[raw[i] & 15];
    }
    out[p] = '\0';
    memset(raw, 0, sizeof raw);
    return true;
}

bool hodei_apikey_well_formed(const char *key, size_t len)
{
    size_t pre = sizeof HODEI_APIKEY_PREFIX - 1;
    if (len != HODEI_APIKEY_LEN || memcmp(key, HODEI_APIKEY_PREFIX, pre) != 0)
        return false;
    for (size_t i = pre; i < len; i++) {
        char c = key[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return true;
}

void hodei_apikey_hash(const char *key, size_t len, uint8_t out[HODEI_APIKEY_HASH_LEN])
{
    SHA256((const unsigned char *)key, len, out);
}

bool hodei_auth_bearer(const char *header, const char **token, size_t *len)
{
    if (!header || strncasecmp(header, "bearer", 6) != 0 || header[6] != ' ')
        return false;
    const char *t = header + 6;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ')
        n--;
    if (n == 0)
        return false;
    *token = t;
    *len = n;
    return true;
}

hodei_status hodei_key_spec_check(const hodei_key_spec *k, int64_t now_us, hodei_err *err)
{
    hodei_status st = hodei_key_name_check("name", k->name, err);
    if (st == HODEI_OK)
        st = hodei_key_owner_check("owner", k->owner, err);
    if (st == HODEI_OK && k->n_namespaces > HODEI_NS_PER_KEY_MAX)
        st = hodei_err_set(err, HODEI_ERR_INVALID, "namespaces: at most %d, got %zu",
                           HODEI_NS_PER_KEY_MAX, k->n_namespaces);
    for (size_t i = 0; st == HODEI_OK && i < k->n_namespaces; i++) {
        char field[48];
        snprintf(field, sizeof field, "namespaces[%zu]", i % 1000);
        st = hodei_ns_check(field, k->namespaces[i], err);
        for (size_t j = 0; st == HODEI_OK && j < i; j++)
            if (strcmp(k->namespaces[i], k->namespaces[j]) == 0)
                st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s named twice", field,
                                   k->namespaces[i]);
    }
    if (st == HODEI_OK && (k->scopes == 0 || (k->scopes & ~HODEI_SCOPE_ALL)))
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "scopes: at least one of jobs:submit, jobs:read, jobs:cancel, "
                           "logs:read, templates:write, secrets:write, admin");
    if (st == HODEI_OK && k->expires_at_us != 0 && k->expires_at_us <= now_us)
        st = hodei_err_set(err, HODEI_ERR_INVALID, "expires_at: must be in the future");
    if (st == HODEI_OK && k->cert_name)
        st = hodei_cert_san_check("cert_name", k->cert_name, err);
    return st;
}

/* --------------------------------------------------------------- identity */

bool hodei_identity_is_admin(const hodei_identity *id)
{
    return id && id->kind != HODEI_PRINCIPAL_NONE && (id->scopes & HODEI_SCOPE_ADMIN);
}

bool hodei_identity_has_scope(const hodei_identity *id, uint32_t scope)
{
    if (!id || id->kind == HODEI_PRINCIPAL_NONE)
        return false;
    return hodei_identity_is_admin(id) || (id->scopes & scope) == scope;
}

bool hodei_identity_in_namespace(const hodei_identity *id, const char *ns)
{
    if (hodei_identity_is_admin(id))
        return true;
    for (size_t i = 0; id && ns && i < id->n_namespaces; i++)
        if (strcmp(id->namespaces[i], ns) == 0)
            return true;
    return false;
}

const char *hodei_identity_home(const hodei_identity *id)
{
    return id && id->n_namespaces > 0 ? id->namespaces[0] : HODEI_NS_DEFAULT;
}

hodei_status hodei_identity_pick_namespace(const hodei_identity *id, const char *field,
                                           const char *asked, const char **ns, hodei_err *err)
{
    if (!asked || !asked[0]) {
        *ns = hodei_identity_home(id);
        return HODEI_OK;
    }
    hodei_status st = hodei_ns_check(field, asked, err);
    if (st != HODEI_OK)
        return st;
    if (!hodei_identity_in_namespace(id, asked))
        return hodei_err_set(err, HODEI_ERR_PERMISSION, "%s: this key may not use namespace %s",
                             field, asked);
    *ns = asked;
    return HODEI_OK;
}

void hodei_identity_actor(const hodei_identity *id, char *out, size_t out_len)
{
    if (!id || id->kind == HODEI_PRINCIPAL_NONE)
        snprintf(out, out_len, "anonymous");
    else if (id->kind == HODEI_PRINCIPAL_CERT)
        snprintf(out, out_len, "cert:%s", id->subject);
    else
        snprintf(out, out_len, "%s", id->name);
}
