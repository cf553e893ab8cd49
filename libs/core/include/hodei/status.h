/* Suite-wide status codes and error detail. Errors travel as values:
 * functions return hodei_status and fill an optional hodei_err with the
 * detail (which call, which input). */
#ifndef HODEI_STATUS_H
#define HODEI_STATUS_H

#include <stddef.h>

typedef enum {
    HODEI_OK = 0,
    HODEI_ERR_INVALID, /* bad input; the message names the field */
    HODEI_ERR_NOT_FOUND,
    HODEI_ERR_EXISTS,
    HODEI_ERR_PRECONDITION, /* the object is not in a state that allows it */
    HODEI_ERR_UNAVAILABLE,  /* a dependency (db, nats) cannot be reached */
    HODEI_ERR_TIMEOUT,
    HODEI_ERR_UNAUTHENTICATED,
    HODEI_ERR_PERMISSION,
    HODEI_ERR_LIMIT, /* a named maximum was reached */
    HODEI_ERR_NOMEM,
    HODEI_ERR_IO,
    HODEI_ERR_CANCELLED,
    HODEI_ERR_INTERNAL,
    /* a transient conflict with another transaction (PostgreSQL deadlock
     * 40P01, serialization failure 40001): nothing was written, running the
     * whole transaction again is correct and usually succeeds */
    HODEI_ERR_CONFLICT,
    HODEI_STATUS_COUNT_
} hodei_status;

#define HODEI_ERR_MSG_MAX 512

typedef struct {
    hodei_status code;
    char msg[HODEI_ERR_MSG_MAX];
} hodei_err;

/* Stable lower-case name of a status ("invalid", "not_found", ...). */
const char *hodei_status_str(hodei_status st);

/* Sets err (may be NULL) and returns code, so callers can
 * `return hodei_err_set(err, HODEI_ERR_INVALID, "spec.priority: ...")`. */
hodei_status hodei_err_set(hodei_err *err, hodei_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clears err to HODEI_OK with an empty message. */
void hodei_err_clear(hodei_err *err);

#endif
