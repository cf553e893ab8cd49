/* libs/store's private helpers for events (hodei/events.h). */
#ifndef HODEI_STORE_EVENTS_INT_H
#define HODEI_STORE_EVENTS_INT_H

#include "hodei/events.h"
#include "hodei/v1/events.pb-c.h"

/* Fills ev's event_id (a new UUIDv7), aggregate_id and occurred_at, packs
 * it and adds its row to `to` (or writes it); on failure a set is left as
 * it was. The builders' one way in. */
hodei_status events_row_add(hodei_outbox *to, Hodei__V1__Event *ev, const char *subject,
                            const char *aggregate_type, const char *aggregate_id,
                            const char *event_type, hodei_err *err);

#endif
