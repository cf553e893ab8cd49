/* Events packed for the set-based outbox inserts of a pass (the same bytes
 * hodei_outbox_append writes for a single row). */
#include "hodei/sqlarr.h"
#include "hodei/store.h"
#include "sched_int.h"

bool sched_event_append(sched *s, Hodei__V1__Event *ev, const char *aggregate_id,
                        char event_id[HODEI_ID_BUF], hodei_buf *arr)
{
    hodei_err err;

    hodei_buf_reset(&s->hex);
    if (hodei_outbox_pack(ev, aggregate_id, event_id, &s->hex, &err) != HODEI_OK)
        return false;
    hodei_sqlarr_str(arr, s->hex.data);
    return true;
}
