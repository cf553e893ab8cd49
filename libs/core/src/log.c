#include "hodei/log.h"
#include "hodei/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static char log_proc[64] = "hodei";
static volatile int log_min = HODEI_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void hodei_log_init(const char *proc_name, hodei_log_level min_level)
{
    snprintf(log_proc, sizeof log_proc, "%s", proc_name ? proc_name : "hodei");
    log_min = min_level;
}

void hodei_log_set_level(hodei_log_level min_level)
{
    log_min = min_level;
}

int hodei_log_enabled(hodei_log_level level)
{
    return (int)level >= log_min;
}

int hodei_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcasecmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

/* Appends msg to out as a logfmt quoted value: quotes, backslashes and
 * control characters escaped, so one event is always one line. */
static size_t log_quote(char *out, size_t cap, const char *msg)
{
    size_t n = 0;
    if (n < cap)
        out[n++] = '"';
    for (const unsigned char *p = (const unsigned char *)msg; *p && n + 6 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[n++] = '\\';
            out[n++] = (char)*p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else if (*p < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\x%02x", *p);
        } else {
            out[n++] = (char)*p;
        }
    }
    if (n < cap)
        out[n++] = '"';
    return n;
}

void hodei_log_write(hodei_log_level level, const char *file, int line, const char *fmt, ...)
{
    if (!hodei_log_enabled(level))
        return;
    char msg[LOG_LINE_MAX / 2];
    char out[LOG_LINE_MAX];
    char ts[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hodei_time_format_us(hodei_wall_us(), ts, sizeof ts);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    int n = snprintf(out, sizeof out, "ts=%s level=%s proc=%s pid=%d msg=", ts,
                     level_names[level & 3], log_proc, (int)getpid());
    size_t len = (size_t)(n > 0 ? n : 0);
    len += log_quote(out + len, sizeof out - len - 64, msg);
    n = snprintf(out + len, sizeof out - len, " src=%s:%d\n", base, line);
    len += (size_t)(n > 0 ? n : 0);
    if (len >= sizeof out)
        len = sizeof out - 1;
    /* One write(2) per line keeps lines whole when several threads log. */
    ssize_t w = write(STDERR_FILENO, out, len);
    (void)w;
}
