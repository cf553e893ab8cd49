/* Flat JSON objects (jobs.constraints, workers.labels) read as spans for
 * the fit rule (hodei/fit.h). A key given twice is refused. */
#include <string.h>

#include "hodei/fit.h"

typedef struct {
    const char *p;
    const char *end;
} fit_cursor;

static void fit_cur_ws(fit_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool fit_cur_eat(fit_cursor *c, char ch)
{
    fit_cur_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* A string token; the span is its inside (quotes excluded, escapes kept). */
static bool fit_cur_string(fit_cursor *c, hodei_fit_span *inside)
{
    if (!fit_cur_eat(c, '"'))
        return false;
    inside->p = c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\' && ++c->p >= c->end)
            return false;
        c->p++;
    }
    if (c->p >= c->end)
        return false;
    inside->len = (size_t)(c->p - inside->p);
    c->p++;
    return true;
}

/* A scalar value token; the span is the raw token (a string with quotes). */
static bool fit_cur_scalar(fit_cursor *c, hodei_fit_span *raw)
{
    hodei_fit_span inside;
    fit_cur_ws(c);
    if (c->p >= c->end)
        return false;
    raw->p = c->p;
    if (*c->p == '"') {
        if (!fit_cur_string(c, &inside))
            return false;
    } else {
        while (c->p < c->end && strchr(",} \t\r\n{[]\":", *c->p) == NULL)
            c->p++;
        if (c->p == raw->p)
            return false;
    }
    raw->len = (size_t)(c->p - raw->p);
    return true;
}

/* A key already read: refused, since the fit rule compares a constraint
 * with the first worker label of its name (PostgreSQL's jsonb never prints
 * one twice; anything else that does is not such an object). */
static bool fit_labels_has(const hodei_fit_labels *l, const hodei_fit_span *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->key[i].len == key->len && memcmp(l->key[i].p, key->p, key->len) == 0)
            return true;
    return false;
}

static bool fit_labels_pairs(fit_cursor *c, hodei_fit_labels *out)
{
    for (;;) {
        if (out->n >= HODEI_FIT_LABELS_MAX)
            return false;
        if (!fit_cur_string(c, &out->key[out->n]) || !fit_cur_eat(c, ':') ||
            !fit_cur_scalar(c, &out->value[out->n]))
            return false;
        if (fit_labels_has(out, &out->key[out->n]))
            return false;
        out->n++;
        if (fit_cur_eat(c, '}'))
            return true;
        if (!fit_cur_eat(c, ','))
            return false;
    }
}

bool hodei_fit_labels_parse(const char *json, size_t len, hodei_fit_labels *out)
{
    fit_cursor c = {json, json + len};
    bool ok;

    out->n = 0;
    if (!json || !fit_cur_eat(&c, '{'))
        return false;
    ok = fit_cur_eat(&c, '}') || fit_labels_pairs(&c, out);
    fit_cur_ws(&c);
    if (!ok || c.p != c.end) {
        out->n = 0;
        return false;
    }
    return true;
}
