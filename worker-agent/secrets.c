/* RunJob.secrets_json: one flat JSON object whose values are strings,
 *   {"DB_PASSWORD":"s3cret","TOKEN":"x\ny"}
 * parsed strictly (RFC 8259 strings: escapes, \u with surrogate pairs, no
 * raw control characters, valid UTF-8; no duplicate names; nothing after
 * the object but whitespace). Error messages name the position or the
 * secret's name, never a value. */
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "hodei/util.h"

#define SECRETS_FIELD "RunJob.secrets_json"

typedef struct {
    const uint8_t *s;
    size_t len;
    size_t pos;
} json_in;

static void json_ws(json_in *in)
{
    while (in->pos < in->len) {
        uint8_t c = in->s[in->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        in->pos++;
    }
}

static bool json_peek(json_in *in, uint8_t c)
{
    json_ws(in);
    return in->pos < in->len && in->s[in->pos] == c;
}

static int json_hex4(json_in *in)
{
    if (in->len - in->pos < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        uint8_t c = in->s[in->pos++];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* \uXXXX (after the 'u'), with a following low surrogate when needed. */
static long json_unicode(json_in *in)
{
    int hi = json_hex4(in);
    if (hi < 0 || (hi >= 0xdc00 && hi <= 0xdfff))
        return -1;
    if (hi < 0xd800 || hi > 0xdbff)
        return hi;
    if (in->len - in->pos < 2 || in->s[in->pos] != '\\' || in->s[in->pos + 1] != 'u')
        return -1;
    in->pos += 2;
    int lo = json_hex4(in);
    if (lo < 0xdc00 || lo > 0xdfff)
        return -1;
    return 0x10000 + (((long)hi - 0xd800) << 10) + (lo - 0xdc00);
}

/* A fixed scratch buffer: secret text is never moved by a realloc. */
typedef struct {
    char *p;
    size_t len;
    size_t cap; /* usable bytes, plus one for the NUL */
} json_out;

static bool json_put(json_out *o, const char *bytes, size_t n)
{
    if (o->len + n >= o->cap)
        return false;
    memcpy(o->p + o->len, bytes, n);
    o->len += n;
    o->p[o->len] = '\0';
    return true;
}

static bool json_put_utf8(json_out *o, long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return json_put(o, u, n);
}

static bool json_escape(json_in *in, json_out *o)
{
    if (in->pos >= in->len)
        return false;
    uint8_t c = in->s[in->pos++];
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    const char *p = c ? strchr(from, c) : NULL;
    if (p)
        return json_put(o, &to[p - from], 1);
    if (c != 'u')
        return false;
    long cp = json_unicode(in);
    return cp > 0 && json_put_utf8(o, cp); /* \u0000 cannot live in a C string */
}

/* A string literal into o (NUL-terminated). false: malformed or too long. */
static bool json_string(json_in *in, json_out *o)
{
    o->len = 0;
    o->p[0] = '\0';
    if (!json_peek(in, '"'))
        return false;
    in->pos++;
    while (in->pos < in->len) {
        uint8_t c = in->s[in->pos];
        if (c == '"') {
            in->pos++;
            return hodei_utf8_valid(o->p, o->len);
        }
        if (c < 0x20)
            return false;
        in->pos++;
        char ch = (char)c;
        bool ok = c == '\\' ? json_escape(in, o) : json_put(o, &ch, 1);
        if (!ok)
            return false;
    }
    return false;
}

static char *secrets_dup(const json_out *o)
{
    char *p = malloc(o->len + 1);
    if (p)
        memcpy(p, o->p, o->len + 1);
    return p;
}

static hodei_status secrets_add(agent_secrets *out, const json_out *name, const json_out *value,
                                hodei_err *err)
{
    for (size_t i = 0; i < out->len; i++)
        if (strcmp(out->items[i].name, name->p) == 0)
            return hodei_err_set(err, HODEI_ERR_INVALID, SECRETS_FIELD ": name \"%s\" twice",
                                 name->p);
    if (out->len == HODEI_EXEC_SECRETS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, SECRETS_FIELD ": more than %d secrets",
                             HODEI_EXEC_SECRETS_MAX);
    char *nm = secrets_dup(name);
    char *val = secrets_dup(value);
    if (!nm || !val) {
        free(nm);
        free(val);
        return hodei_err_set(err, HODEI_ERR_NOMEM, SECRETS_FIELD ": out of memory");
    }
    out->items[out->len].name = nm;
    out->items[out->len++].value = val;
    return HODEI_OK;
}

/* One "name": "value" member. */
static hodei_status secrets_member(json_in *in, agent_secrets *out, json_out *name, json_out *value,
                                   hodei_err *err)
{
    json_ws(in);
    size_t at = in->pos;
    if (!json_string(in, name) || name->len == 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             SECRETS_FIELD ": expected a secret name (a non-empty string of at "
                                           "most %d bytes) at byte %zu",
                             HODEI_EXEC_SECRET_NAME_MAX - 1, at);
    if (!json_peek(in, ':'))
        return hodei_err_set(err, HODEI_ERR_INVALID, SECRETS_FIELD ": expected ':' after \"%s\"",
                             name->p);
    in->pos++;
    if (!json_string(in, value))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             SECRETS_FIELD ": value of \"%s\" must be a JSON string of at most "
                                           "%d bytes",
                             name->p, HODEI_EXEC_SECRET_VALUE_MAX);
    return secrets_add(out, name, value, err);
}

static hodei_status secrets_object(json_in *in, agent_secrets *out, json_out *name, json_out *value,
                                   hodei_err *err)
{
    if (!json_peek(in, '{'))
        return hodei_err_set(err, HODEI_ERR_INVALID, SECRETS_FIELD ": must be one JSON object");
    in->pos++;
    if (json_peek(in, '}')) {
        in->pos++;
        return HODEI_OK;
    }
    for (;;) {
        if (secrets_member(in, out, name, value, err) != HODEI_OK)
            return err->code;
        if (json_peek(in, '}')) {
            in->pos++;
            return HODEI_OK;
        }
        if (!json_peek(in, ','))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 SECRETS_FIELD ": expected ',' or '}' at byte %zu", in->pos);
        in->pos++;
    }
}

hodei_status agent_secrets_parse(const uint8_t *json, size_t len, agent_secrets *out,
                                 hodei_err *err)
{
    hodei_status st = HODEI_ERR_NOMEM;
    out->items = NULL;
    out->len = 0;
    json_in in = {.s = json, .len = json ? len : 0};
    json_ws(&in);
    if (in.pos == in.len)
        return HODEI_OK;
    char name_buf[HODEI_EXEC_SECRET_NAME_MAX];
    json_out name = {.p = name_buf, .cap = sizeof name_buf};
    /* cap counts the NUL: a value of HODEI_EXEC_SECRET_VALUE_MAX bytes fits. */
    json_out value = {.p = malloc(HODEI_EXEC_SECRET_VALUE_MAX + 1),
                      .cap = HODEI_EXEC_SECRET_VALUE_MAX + 1};
    out->items = calloc(HODEI_EXEC_SECRETS_MAX, sizeof *out->items);
    if (!value.p || !out->items) {
        hodei_err_set(err, st, SECRETS_FIELD ": out of memory");
        goto out_free;
    }
    st = secrets_object(&in, out, &name, &value, err);
    json_ws(&in);
    if (st == HODEI_OK && in.pos != in.len)
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           SECRETS_FIELD ": unexpected text after the object at byte %zu", in.pos);
out_free:
    if (value.p)
        explicit_bzero(value.p, value.cap);
    free(value.p);
    if (st != HODEI_OK)
        agent_secrets_free(out);
    return st;
}

void agent_secrets_free(agent_secrets *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->len; i++) {
        char *v = (char *)s->items[i].value;
        explicit_bzero(v, strlen(v));
        free(v);
        free((char *)s->items[i].name);
    }
    free(s->items);
    s->items = NULL;
    s->len = 0;
}
