#include "hodei/status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_names[HODEI_STATUS_COUNT_] = {
    [HODEI_OK] = "ok",
    [HODEI_ERR_INVALID] = "invalid",
    [HODEI_ERR_NOT_FOUND] = "not_found",
    [HODEI_ERR_EXISTS] = "exists",
    [HODEI_ERR_PRECONDITION] = "precondition",
    [HODEI_ERR_UNAVAILABLE] = "unavailable",
    [HODEI_ERR_TIMEOUT] = "timeout",
    [HODEI_ERR_UNAUTHENTICATED] = "unauthenticated",
    [HODEI_ERR_PERMISSION] = "permission",
    [HODEI_ERR_LIMIT] = "limit",
    [HODEI_ERR_NOMEM] = "nomem",
    [HODEI_ERR_IO] = "io",
    [HODEI_ERR_CANCELLED] = "cancelled",
    [HODEI_ERR_INTERNAL] = "internal",
    [HODEI_ERR_CONFLICT] = "conflict",
};

const char *hodei_status_str(hodei_status st)
{
    if ((unsigned)st >= HODEI_STATUS_COUNT_ || !status_names[st])
        return "unknown";
    return status_names[st];
}

hodei_status hodei_err_set(hodei_err *err, hodei_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void hodei_err_clear(hodei_err *err)
{
    if (err) {
        err->code = HODEI_OK;
        err->msg[0] = '\0';
    }
}
