/* Secret redaction: the patterns derived from the secret values and the
 * left-to-right replacement of every occurrence. */
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "hodei/assert.h"
#include "hodei/util.h"

#define REDACTED_LEN (sizeof HODEI_EXEC_REDACTED - 1)
/* JSON-escaping one value: quotes plus at most 6 bytes per input byte. */
#define REDACT_ESCAPED_MAX (EXEC_PATTERN_LEN_MAX + 2)

static hodei_status redact_check_secret(const hodei_exec_secret *secrets, size_t i, hodei_err *err)
{
    const hodei_exec_secret *s = &secrets[i];
    if (!s->name || !s->value)
        return hodei_err_set(err, HODEI_ERR_INVALID, "secrets[%zu]: name and value required", i);
    size_t name_len = strlen(s->name), value_len = strlen(s->value);
    if (name_len == 0 || name_len > HODEI_EXEC_SECRET_NAME_MAX ||
        !hodei_utf8_valid(s->name, name_len))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "secrets[%zu]: name must be 1..%d bytes of UTF-8", i,
                             HODEI_EXEC_SECRET_NAME_MAX);
    if (value_len > HODEI_EXEC_SECRET_VALUE_MAX || !hodei_utf8_valid(s->value, value_len))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "secrets[%zu] (\"%s\"): value must be at most %d bytes of UTF-8", i,
                             s->name, HODEI_EXEC_SECRET_VALUE_MAX);
    for (size_t j = 0; j < i; j++) {
        if (strcmp(secrets[j].name, s->name) == 0)
            return hodei_err_set(err, HODEI_ERR_INVALID, "secrets[%zu] (\"%s\"): duplicate name", i,
                                 s->name);
    }
    return HODEI_OK;
}

static bool redact_add(exec_redactor *r, size_t cap, const char *text, size_t len)
{
    if (len < HODEI_EXEC_SECRET_REDACT_MIN)
        return true;
    HODEI_ASSERT(r->n < cap && len <= EXEC_PATTERN_LEN_MAX);
    char *copy = malloc(len);
    if (!copy)
        return false;
    memcpy(copy, text, len);
    r->items[r->n].text = copy;
    r->items[r->n].len = len;
    r->n++;
    return true;
}

/* Each piece of the value between newlines: output is split into lines
 * before it is redacted, so a multi-line secret shows up piece by piece. */
static bool redact_add_pieces(exec_redactor *r, size_t cap, const char *value)
{
    const char *p = value;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!redact_add(r, cap, p, len))
            return false;
        if (!nl)
            return true;
        p = nl + 1;
    }
}

/* The value as it appears inside the JSON object on stdin, when that
 * differs from the value (quotes, backslashes, control characters). */
static bool redact_add_escaped(exec_redactor *r, size_t cap, const char *value)
{
    hodei_buf b;
    hodei_buf_init(&b, REDACT_ESCAPED_MAX);
    bool ok = hodei_buf_json_string(&b, value);
    HODEI_ASSERT(ok && b.len >= 2);
    size_t len = b.len - 2;
    if (len != strlen(value))
        ok = redact_add(r, cap, b.data + 1, len);
    hodei_buf_fini(&b);
    return ok;
}

static int redact_cmp_longest_first(const void *a, const void *b)
{
    size_t la = ((const exec_pattern *)a)->len, lb = ((const exec_pattern *)b)->len;
    return (la < lb) - (la > lb);
}

hodei_status exec_redactor_init(exec_redactor *r, const hodei_exec_secret *secrets,
                                size_t n_secrets, hodei_err *err)
{
    memset(r, 0, sizeof *r);
    if (n_secrets > HODEI_EXEC_SECRETS_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "secrets: at most %d, got %zu",
                             HODEI_EXEC_SECRETS_MAX, n_secrets);
    if (n_secrets > 0 && !secrets)
        return hodei_err_set(err, HODEI_ERR_INVALID, "secrets: NULL with n_secrets %zu", n_secrets);
    size_t cap = 0;
    for (size_t i = 0; i < n_secrets; i++) {
        hodei_status st = redact_check_secret(secrets, i, err);
        if (st != HODEI_OK)
            return st;
        cap += 2; /* the escaped form and the value's first piece */
        for (const char *p = secrets[i].value; (p = strchr(p, '\n')) != NULL; p++)
            cap++;
    }
    if (cap == 0)
        return HODEI_OK;
    r->items = calloc(cap, sizeof *r->items);
    if (!r->items)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "secrets: out of memory");
    for (size_t i = 0; i < n_secrets; i++) {
        if (!redact_add_pieces(r, cap, secrets[i].value) ||
            !redact_add_escaped(r, cap, secrets[i].value)) {
            exec_redactor_fini(r);
            return hodei_err_set(err, HODEI_ERR_NOMEM, "secrets: out of memory");
        }
    }
    qsort(r->items, r->n, sizeof *r->items, redact_cmp_longest_first);
    return HODEI_OK;
}

void exec_redactor_fini(exec_redactor *r)
{
    for (size_t i = 0; i < r->n; i++) {
        explicit_bzero(r->items[i].text, r->items[i].len);
        free(r->items[i].text);
    }
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* At in[0..rem): the length of the longest pattern found whole, 0 when none,
 * or -1 when stop_at_partial and rem bytes are a proper prefix of a pattern.
 * Longer patterns come first, so a partial longer secret wins over a whole
 * shorter one (redacting the shorter would leak the longer one's rest). */
static long redact_match(const exec_redactor *r, const char *in, size_t rem, bool stop_at_partial)
{
    for (size_t k = 0; k < r->n; k++) {
        const exec_pattern *p = &r->items[k];
        if (p->text[0] != in[0])
            continue;
        if (p->len <= rem) {
            if (memcmp(in, p->text, p->len) == 0)
                return (long)p->len;
        } else if (stop_at_partial && memcmp(in, p->text, rem) == 0) {
            return -1;
        }
    }
    return 0;
}

size_t exec_redact(const exec_redactor *r, const char *in, size_t len, bool stop_at_partial,
                   char *out, size_t *out_len)
{
    if (r->n == 0) {
        if (len)
            memcpy(out, in, len);
        *out_len = len;
        return len;
    }
    size_t i = 0, o = 0;
    while (i < len) {
        long m = redact_match(r, in + i, len - i, stop_at_partial);
        if (m < 0)
            break;
        if (m > 0) {
            memcpy(out + o, HODEI_EXEC_REDACTED, REDACTED_LEN);
            o += REDACTED_LEN;
            i += (size_t)m;
        } else {
            out[o++] = in[i++];
        }
    }
    *out_len = o;
    return i;
}
