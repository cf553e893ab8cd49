/* Flat JSON objects (jobs.constraints, workers.labels) as spans, and the
 * containment test the fit rule uses. */
#include <string.h>

#include "match.h"

typedef struct {
    const char *p;
    const char *end;
} match_cursor;

static void cur_ws(match_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool cur_eat(match_cursor *c, char ch)
{
    cur_ws(c);
    if (c->p >= c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* A string token; the span is its inside (quotes excluded, escapes kept). */
static bool cur_string(match_cursor *c, match_span *inside)
{
    if (!cur_eat(c, '"'))
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
static bool cur_scalar(match_cursor *c, match_span *raw)
{
    match_span inside;
    cur_ws(c);
    if (c->p >= c->end)
        return false;
    raw->p = c->p;
    if (*c->p == '"') {
        if (!cur_string(c, &inside))
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

static bool labels_pairs(match_cursor *c, match_labels *out)
{
    for (;;) {
        if (out->n >= MATCH_LABELS_MAX)
            return false;
        if (!cur_string(c, &out->key[out->n]) || !cur_eat(c, ':') ||
            !cur_scalar(c, &out->value[out->n]))
            return false;
        out->n++;
        if (cur_eat(c, '}'))
            return true;
        if (!cur_eat(c, ','))
            return false;
    }
}

bool match_labels_parse(const char *json, size_t len, match_labels *out)
{
    match_cursor c = {json, json + len};
    bool ok;

    out->n = 0;
    if (!json || !cur_eat(&c, '{'))
        return false;
    ok = cur_eat(&c, '}') || labels_pairs(&c, out);
    cur_ws(&c);
    if (!ok || c.p != c.end) {
        out->n = 0;
        return false;
    }
    return true;
}
