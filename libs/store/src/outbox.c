#include "hodei/store.h"

#include <stdlib.h>

#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/time.h"

#define OUTBOX_EVENT_MAX (1u << 20)

hodei_status hodei_outbox_append(PGconn *conn, Hodei__V1__Event *ev, const char *subject,
                                 const char *aggregate_type, const char *aggregate_id,
                                 const char *event_type, hodei_err *err)
{
    char event_id[HODEI_ID_BUF];
    Hodei__V1__Timestamp ts = HODEI__V1__TIMESTAMP__INIT;
    int64_t now_us = hodei_wall_us();
    hodei_id_new(event_id);
    ts.seconds = now_us / 1000000;
    ts.nanos = (int32_t)(now_us % 1000000) * 1000;
    ev->event_id = event_id;
    ev->aggregate_id = (char *)aggregate_id;
    ev->occurred_at = &ts;

    size_t len = protobuf_c_message_get_packed_size(&ev->base);
    hodei_status st = HODEI_OK;
    uint8_t *raw = malloc(len ? len : 1);
    hodei_buf hex;
    hodei_buf_init(&hex, 2 * OUTBOX_EVENT_MAX);
    if (!raw) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
        goto out;
    }
    protobuf_c_message_pack(&ev->base, raw);
    if (!hodei_buf_hex(&hex, raw, len)) {
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "event larger than %u bytes", OUTBOX_EVENT_MAX);
        goto out;
    }
    const char *params[6] = {event_id, subject, aggregate_type, aggregate_id, event_type, hex.data};
    st = hodei_db_exec(conn,
                       "INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id,"
                       " event_type, payload) VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'))",
                       6, params, NULL, err);
out:
    ev->event_id = NULL;
    ev->occurred_at = NULL;
    hodei_buf_fini(&hex);
    free(raw);
    return st;
}
