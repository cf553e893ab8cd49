/* Value parsers and small helpers shared by the argument parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args_int.h"
#include "hodei/util.h"

/* Longest text cli_parse_decimal looks at. */
#define ARGS_DECIMAL_MAX 32

typedef struct {
    const char *suffix;
    int64_t mul;
} args_size_unit;

#define KI INT64_C(1024)
static const args_size_unit args_size_units[] = {
    {"", 1},
    {"k", 1000},
    {"K", 1000},
    {"M", 1000000},
    {"G", 1000000000},
    {"T", INT64_C(1000000000000)},
    {"P", INT64_C(1000000000000000)},
    {"Ki", KI},
    {"Mi", KI *KI},
    {"Gi", KI *KI *KI},
    {"Ti", KI *KI *KI *KI},
    {"Pi", KI *KI *KI *KI *KI},
};

/* The multiplier of suffix (with an optional trailing 'B'), or 0. */
static int64_t args_size_mul(const char *suffix)
{
    size_t n = strlen(suffix);
    if (n > 0 && suffix[n - 1] == 'B')
        n--;
    for (size_t i = 0; i < sizeof args_size_units / sizeof args_size_units[0]; i++) {
        const char *u = args_size_units[i].suffix;
        if (strlen(u) == n && strncmp(u, suffix, n) == 0)
            return args_size_units[i].mul;
    }
    return 0;
}

bool cli_parse_size(const char *s, int64_t *out)
{
    int64_t v = 0;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return false;
        v = v * 10 + (s[i] - '0');
    }
    if (i == 0)
        return false;
    int64_t mul = args_size_mul(s + i);
    if (mul == 0 || v > INT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

bool cli_parse_duration(const char *s, int64_t *out_ms)
{
    if (!(s[0] >= '0' && s[0] <= '9'))
        return false;
    return hodei_parse_duration_ms(s, out_ms);
}

bool cli_parse_decimal(const char *s, double *out)
{
    size_t digits = 0, dots = 0, n = 0;
    for (; s[n]; n++) {
        if (s[n] >= '0' && s[n] <= '9')
            digits++;
        else if (s[n] == '.')
            dots++;
        else
            return false;
    }
    if (digits == 0 || dots > 1 || n > ARGS_DECIMAL_MAX)
        return false;
    *out = strtod(s, NULL);
    return true;
}

bool cli_parse_kv(const char *s, const char **key, size_t *key_len, const char **value)
{
    const char *eq = strchr(s, '=');
    if (!eq || eq == s)
        return false;
    *key = s;
    *key_len = (size_t)(eq - s);
    *value = eq + 1;
    return true;
}

const char *args_quote(const char *s, char buf[ARGS_QUOTE_BUF])
{
    size_t o = 0, i = 0;
    buf[o++] = '"';
    for (; s[i] && i < ARGS_QUOTE_IN_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, ARGS_QUOTE_BUF - o, "\\x%02x", c);
        }
    }
    if (s[i]) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

hodei_status args_nomem(hodei_err *err)
{
    return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory building the request");
}

hodei_status args_int32(const char *flag, const char *value, int32_t *out, hodei_err *err)
{
    int64_t v = 0;
    bool starts_ok = value[0] == '-' || (value[0] >= '0' && value[0] <= '9');
    if (!starts_ok || !hodei_parse_i64(value, INT32_MIN, INT32_MAX, &v)) {
        char q[ARGS_QUOTE_BUF];
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be an integer, got %s", flag,
                             args_quote(value, q));
    }
    *out = (int32_t)v;
    return HODEI_OK;
}
