/* Events packed for the set-based outbox inserts of a pass (the same bytes
 * hodei_outbox_append writes for a single row). */
#include <string.h>

#include "hodei/sqlarr.h"
#include "hodei/time.h"
#include "sched_int.h"

#define US_PER_S 1000000
#define NS_PER_US 1000

bool sched_event_append(sched *s, Hodei__V1__Event *ev, const char *aggregate_id,
                        char event_id[HODEI_ID_BUF], hodei_buf *arr)
{
    uint8_t raw[SCHED_EVENT_MAX];
    Hodei__V1__Timestamp ts = HODEI__V1__TIMESTAMP__INIT;
    int64_t now_us = hodei_wall_us();
    size_t len;
    bool ok = false;

    hodei_id_new(event_id);
    ts.seconds = now_us / US_PER_S;
    ts.nanos = (int32_t)(now_us % US_PER_S) * NS_PER_US;
    ev->event_id = event_id;
    ev->aggregate_id = (char *)aggregate_id;
    ev->occurred_at = &ts;
    len = protobuf_c_message_get_packed_size(&ev->base);
    if (len <= sizeof raw) {
        protobuf_c_message_pack(&ev->base, raw);
        hodei_buf_reset(&s->hex);
        ok = hodei_buf_hex(&s->hex, raw, len);
        if (ok)
            hodei_sqlarr_str(arr, s->hex.data);
    }
    ev->event_id = NULL;
    ev->aggregate_id = NULL;
    ev->occurred_at = NULL;
    return ok;
}
