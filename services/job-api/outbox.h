/* Writing one event to the outbox inside the caller's transaction. */
#ifndef HODEI_JOB_API_OUTBOX_H
#define HODEI_JOB_API_OUTBOX_H

#include <libpq-fe.h>

#include "hodei/status.h"
#include "hodei/v1/events.pb-c.h"

/* Fills ev's event_id (new UUIDv7), aggregate_id and occurred_at, packs it
 * and inserts the outbox row. ev's body must be set by the caller. */
hodei_status outbox_append(PGconn *conn, Hodei__V1__Event *ev, const char *subject,
                           const char *aggregate_type, const char *aggregate_id,
                           const char *event_type, hodei_err *err);

#endif
