/* One line per event to stderr, logfmt:
 *   ts=2026-11-28T12:00:00.123Z level=info proc=job-api msg="..." src=file.c:12
 * The process name is set once at start-up. Never pass a secret. */
#ifndef HODEI_LOG_H
#define HODEI_LOG_H

typedef enum {
    HODEI_LOG_DEBUG = 0,
    HODEI_LOG_INFO,
    HODEI_LOG_WARN,
    HODEI_LOG_ERROR
} hodei_log_level;

void hodei_log_init(const char *proc_name, hodei_log_level min_level);
void hodei_log_set_level(hodei_log_level min_level);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int hodei_log_level_parse(const char *s);
int hodei_log_enabled(hodei_log_level level);

void hodei_log_write(hodei_log_level level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define HLOG_DEBUG(...)                                                                            \
    do {                                                                                           \
        if (hodei_log_enabled(HODEI_LOG_DEBUG))                                                    \
            hodei_log_write(HODEI_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__);                     \
    } while (0)
#define HLOG_INFO(...) hodei_log_write(HODEI_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define HLOG_WARN(...) hodei_log_write(HODEI_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define HLOG_ERROR(...) hodei_log_write(HODEI_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)

#endif
