#include "hodei/store.h"

#include <stdlib.h>

#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/pb.h"
#include "hodei/sqlarr.h"
#include "hodei/time.h"

hodei_status hodei_outbox_pack(Hodei__V1__Event *ev, const char *aggregate_id, char *event_id,
                               hodei_buf *hex, hodei_err *err)
{
    Hodei__V1__Timestamp ts;
    hodei_id_new(event_id);
    hodei_pb_time(&ts, hodei_wall_us());
    ev->event_id = event_id;
    ev->aggregate_id = (char *)aggregate_id;
    ev->occurred_at = &ts;
    size_t len = protobuf_c_message_get_packed_size(&ev->base);
    hodei_status st = HODEI_OK;
    uint8_t *raw = malloc(len ? len : 1);
    if (!raw)
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    else if (protobuf_c_message_pack(&ev->base, raw), !hodei_buf_hex(hex, raw, len))
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "event larger than %u bytes",
                           HODEI_OUTBOX_EVENT_MAX);
    ev->event_id = NULL;
    ev->aggregate_id = NULL;
    ev->occurred_at = NULL;
    free(raw);
    return st;
}

void hodei_outbox_rows_init(hodei_outbox_rows *rows)
{
    for (int i = 0; i < HODEI_OUTBOX_ROWS_COLS; i++) {
        hodei_buf_init(&rows->cols[i], 2 * HODEI_OUTBOX_EVENT_MAX + 64);
        hodei_sqlarr_begin(&rows->cols[i]);
    }
    rows->n = 0;
}

hodei_status hodei_outbox_rows_add(hodei_outbox_rows *rows, Hodei__V1__Event *ev,
                                   const char *subject, const char *aggregate_type,
                                   const char *aggregate_id, const char *event_type, hodei_err *err)
{
    char event_id[HODEI_ID_BUF];
    hodei_buf hex;
    hodei_buf_init(&hex, HODEI_OUTBOX_EVENT_HEX_MAX);
    hodei_status st = hodei_outbox_pack(ev, aggregate_id, event_id, &hex, err);
    if (st == HODEI_OK) {
        const char *vals[HODEI_OUTBOX_ROWS_COLS] = {event_id,     subject,    aggregate_type,
                                                    aggregate_id, event_type, hex.data};
        for (int i = 0; i < HODEI_OUTBOX_ROWS_COLS; i++)
            hodei_sqlarr_str(&rows->cols[i], vals[i]);
        rows->n++;
    }
    hodei_buf_fini(&hex);
    return st;
}

void hodei_outbox_rows_params(hodei_outbox_rows *rows, const char **params)
{
    for (int i = 0; i < HODEI_OUTBOX_ROWS_COLS; i++) {
        hodei_sqlarr_end(&rows->cols[i]);
        params[i] = rows->cols[i].data;
    }
}

void hodei_outbox_rows_fini(hodei_outbox_rows *rows)
{
    for (int i = 0; i < HODEI_OUTBOX_ROWS_COLS; i++)
        hodei_buf_fini(&rows->cols[i]);
}

hodei_status hodei_outbox_append(PGconn *conn, Hodei__V1__Event *ev, const char *subject,
                                 const char *aggregate_type, const char *aggregate_id,
                                 const char *event_type, hodei_err *err)
{
    char event_id[HODEI_ID_BUF];
    hodei_buf hex;
    hodei_buf_init(&hex, HODEI_OUTBOX_EVENT_HEX_MAX);
    hodei_status st = hodei_outbox_pack(ev, aggregate_id, event_id, &hex, err);
    if (st == HODEI_OK) {
        const char *params[6] = {event_id,     subject,    aggregate_type,
                                 aggregate_id, event_type, hex.data};
        st = hodei_db_exec(conn,
                           "INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id,"
                           " event_type, payload) VALUES ($1, $2, $3, $4, $5, decode($6, 'hex'))",
                           6, params, NULL, err);
    }
    hodei_buf_fini(&hex);
    return st;
}
