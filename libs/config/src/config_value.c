/* Parsing, checking and storing one parameter's value, and formatting it
 * back for print. Messages never echo a secret's value. */
#include "config_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hodei/util.h"

#define CONFIG_CHOICES_TEXT_MAX 256
#define CONFIG_SHOWN_MAX 64 /* characters of a bad value quoted in a message */

static void *config_field(const hodei_cfg_param *p, void *base)
{
    return (char *)base + p->offset;
}

static bool config_bounded(const hodei_cfg_param *p)
{
    return p->min != 0 || p->max != 0;
}

/* The value as a message may show it: "***" for secrets, else a prefix. */
static void config_shown(const config_slot *s, char *out, size_t out_len)
{
    if (s->param->secret) {
        hodei_strlcpy(out, "***", out_len);
        return;
    }
    if (!hodei_strlcpy(out, s->text, out_len) && out_len > 4)
        memcpy(out + out_len - 4, "...", 4);
}

static void config_duration_text(int64_t ms, char *out, size_t out_len)
{
    if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, out_len, "%" PRId64 "h", ms / 3600000);
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, out_len, "%" PRId64 "m", ms / 60000);
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, out_len, "%" PRId64 "s", ms / 1000);
    else
        snprintf(out, out_len, "%" PRId64 "ms", ms);
}

static void config_choices_text(const char *const *choices, char *out, size_t out_len)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; choices[i] && n < out_len; i++) {
        int w = snprintf(out + n, out_len - n, "%s%s", i ? "|" : "", choices[i]);
        n += w > 0 ? (size_t)w : 0;
    }
}

static hodei_status config_store_choice(const config_slot *s, hodei_err *err)
{
    const hodei_cfg_param *p = s->param;
    for (size_t i = 0; p->choices[i]; i++) {
        if (strcasecmp(p->choices[i], s->text) == 0) {
            char *copy = strdup(p->choices[i]);
            if (!copy)
                return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", p->name);
            *(char **)config_field(p, s->base) = copy;
            return HODEI_OK;
        }
    }
    char shown[CONFIG_SHOWN_MAX], list[CONFIG_CHOICES_TEXT_MAX];
    config_shown(s, shown, sizeof shown);
    config_choices_text(p->choices, list, sizeof list);
    return hodei_err_set(err, HODEI_ERR_INVALID, "%s: '%s' is not one of %s (from %s)", p->name,
                         shown, list, s->source);
}

static hodei_status config_store_string(const config_slot *s, hodei_err *err)
{
    const hodei_cfg_param *p = s->param;
    size_t max = p->max > 0 ? (size_t)p->max : CONFIG_STRING_MAX_DEFAULT;
    size_t len = strlen(s->text);
    if (len > max)
        return hodei_err_set(
            err, HODEI_ERR_INVALID,
            "%s: the value is %zu characters long, above the maximum %zu (from %s)", p->name, len,
            max, s->source);
    if (!hodei_utf8_valid(s->text, len))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: the value is not valid UTF-8 (from %s)",
                             p->name, s->source);
    if (p->choices)
        return config_store_choice(s, err);
    char *copy = strdup(s->text);
    if (!copy)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", p->name);
    *(char **)config_field(p, s->base) = copy;
    return HODEI_OK;
}

static hodei_status config_check_bounds(const config_slot *s, int64_t v, bool duration,
                                        hodei_err *err)
{
    const hodei_cfg_param *p = s->param;
    if (!config_bounded(p) || (v >= p->min && v <= p->max))
        return HODEI_OK;
    bool below = v < p->min;
    char shown[CONFIG_SHOWN_MAX], limit[32];
    config_shown(s, shown, sizeof shown);
    if (duration)
        config_duration_text(below ? p->min : p->max, limit, sizeof limit);
    else
        snprintf(limit, sizeof limit, "%" PRId64, below ? p->min : p->max);
    return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s is %s the %s %s (from %s)", p->name, shown,
                         below ? "below" : "above", below ? "minimum" : "maximum", limit,
                         s->source);
}

static hodei_status config_store_int(const config_slot *s, hodei_err *err)
{
    int64_t v = 0;
    if (!hodei_parse_i64(s->text, INT64_MIN, INT64_MAX, &v)) {
        char shown[CONFIG_SHOWN_MAX];
        config_shown(s, shown, sizeof shown);
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: '%s' is not an integer (from %s)",
                             s->param->name, shown, s->source);
    }
    hodei_status st = config_check_bounds(s, v, false, err);
    if (st == HODEI_OK)
        *(int64_t *)config_field(s->param, s->base) = v;
    return st;
}

static hodei_status config_store_duration(const config_slot *s, hodei_err *err)
{
    int64_t v = 0;
    if (!hodei_parse_duration_ms(s->text, &v)) {
        char shown[CONFIG_SHOWN_MAX];
        config_shown(s, shown, sizeof shown);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: '%s' is not a duration (write e.g. 250ms, 5s, 2m, 1h) (from %s)",
                             s->param->name, shown, s->source);
    }
    hodei_status st = config_check_bounds(s, v, true, err);
    if (st == HODEI_OK)
        *(int64_t *)config_field(s->param, s->base) = v;
    return st;
}

static hodei_status config_store_bool(const config_slot *s, hodei_err *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    bool *field = config_field(s->param, s->base);
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcasecmp(s->text, yes[i]) == 0 || strcasecmp(s->text, no[i]) == 0) {
            *field = strcasecmp(s->text, yes[i]) == 0;
            return HODEI_OK;
        }
    }
    char shown[CONFIG_SHOWN_MAX];
    config_shown(s, shown, sizeof shown);
    return hodei_err_set(err, HODEI_ERR_INVALID,
                         "%s: '%s' is not a boolean (write true/false, yes/no, on/off, 1/0) "
                         "(from %s)",
                         s->param->name, shown, s->source);
}

hodei_status config_value_store(const config_slot *s, hodei_err *err)
{
    const hodei_cfg_param *p = s->param;
    if (p->required && s->text[0] == '\0') {
        char env[CONFIG_NAME_MAX + 8];
        hodei_config_env_name(p->name, env, sizeof env);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: a value is required but it is empty (from %s; set it in the "
                             "configuration file or %s)",
                             p->name, s->source, env);
    }
    switch (p->type) {
    case HODEI_CFG_STRING:
        return config_store_string(s, err);
    case HODEI_CFG_INT:
        return config_store_int(s, err);
    case HODEI_CFG_BOOL:
        return config_store_bool(s, err);
    case HODEI_CFG_DURATION_MS:
        return config_store_duration(s, err);
    }
    return hodei_err_set(err, HODEI_ERR_INTERNAL, "%s: unknown parameter type %d", p->name,
                         (int)p->type);
}

static bool config_needs_quotes(const char *s)
{
    if (*s == '\0')
        return true;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        if (*c <= ' ' || *c == '"' || *c == '#' || *c == '\\')
            return true;
    return false;
}

/* Quoted with backslash escapes so one parameter is always one line. */
static void config_quote(const char *s, char *out, size_t out_len)
{
    size_t n = 0;
    out[n++] = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c && n + 6 < out_len; c++) {
        if (*c == '"' || *c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*c;
        } else if (*c < ' ') {
            n += (size_t)snprintf(out + n, out_len - n, "\\x%02x", *c);
        } else {
            out[n++] = (char)*c;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

void config_value_format(const hodei_cfg_param *p, const void *base, char *out, size_t out_len)
{
    const void *field = (const char *)base + p->offset;
    switch (p->type) {
    case HODEI_CFG_STRING: {
        const char *s = *(char *const *)field;
        if (!s || config_needs_quotes(s))
            config_quote(s ? s : "", out, out_len);
        else
            hodei_strlcpy(out, s, out_len);
        return;
    }
    case HODEI_CFG_INT:
        snprintf(out, out_len, "%" PRId64, *(const int64_t *)field);
        return;
    case HODEI_CFG_BOOL:
        hodei_strlcpy(out, *(const bool *)field ? "true" : "false", out_len);
        return;
    case HODEI_CFG_DURATION_MS:
        config_duration_text(*(const int64_t *)field, out, out_len);
        return;
    }
    hodei_strlcpy(out, "?", out_len);
}
