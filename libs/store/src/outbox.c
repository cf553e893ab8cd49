/* Sets of outbox rows (hodei/events.h): a two-dimensional text array
 * literal, one inner array per row, built as the builders add rows. */
#include <stdlib.h>

#include "events_int.h"
#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/pb.h"
#include "hodei/sqlarr.h"
#include "hodei/time.h"

#define OUTBOX_PACK_STACK 512 /* packed events up to this size need no allocation */

void hodei_outbox_rows_init(hodei_outbox_rows *rows, size_t text_max)
{
    hodei_buf_init(&rows->text, text_max);
    hodei_outbox_rows_reset(rows);
}

void hodei_outbox_rows_reset(hodei_outbox_rows *rows)
{
    hodei_buf_reset(&rows->text);
    hodei_buf_putc(&rows->text, '{');
    rows->n = 0;
    rows->open = rows->text.len;
}

void hodei_outbox_rows_fini(hodei_outbox_rows *rows)
{
    hodei_buf_fini(&rows->text);
}

const char *hodei_outbox_rows_param(hodei_outbox_rows *rows)
{
    rows->text.len = rows->open;
    hodei_buf_putc(&rows->text, '}');
    return rows->text.data;
}

/* Packs ev as lower-case hex into out. */
static hodei_status outbox_pack_hex(const Hodei__V1__Event *ev, hodei_buf *out, hodei_err *err)
{
    uint8_t stack[OUTBOX_PACK_STACK];
    size_t len = protobuf_c_message_get_packed_size(&ev->base);
    if (len > HODEI_OUTBOX_EVENT_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "event of %zu bytes, more than %u", len,
                             HODEI_OUTBOX_EVENT_MAX);
    uint8_t *raw = len <= sizeof stack ? stack : malloc(len);
    if (!raw)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory packing an event");
    protobuf_c_message_pack(&ev->base, raw);
    bool ok = hodei_buf_hex(out, raw, len);
    if (raw != stack)
        free(raw);
    return ok ? HODEI_OK : hodei_err_set(err, HODEI_ERR_LIMIT, "event set full");
}

static hodei_status outbox_rows_add(hodei_outbox_rows *rows, Hodei__V1__Event *ev,
                                    const char *subject, const char *aggregate_type,
                                    const char *aggregate_id, const char *event_type,
                                    hodei_err *err)
{
    char event_id[HODEI_ID_BUF];
    Hodei__V1__Timestamp ts;
    hodei_buf *t = &rows->text;
    hodei_id_new(event_id);
    hodei_pb_time(&ts, hodei_wall_us());
    ev->event_id = event_id;
    ev->aggregate_id = (char *)aggregate_id;
    ev->occurred_at = &ts;
    /* the inner array {"id","subject","type","aggregate","event type","hex"} */
    t->len = rows->open;
    if (rows->n > 0)
        hodei_buf_putc(t, ',');
    const char *text[] = {event_id, subject, aggregate_type, aggregate_id, event_type};
    hodei_buf_putc(t, '{');
    for (size_t i = 0; i < sizeof text / sizeof text[0]; i++) {
        hodei_sqlarr_quote(t, text[i]);
        hodei_buf_putc(t, ',');
    }
    hodei_buf_putc(t, '"'); /* hex needs no escaping */
    hodei_status st = outbox_pack_hex(ev, t, err);
    hodei_buf_puts(t, "\"}");
    ev->event_id = NULL;
    ev->aggregate_id = NULL;
    ev->occurred_at = NULL;
    if (st == HODEI_OK && t->failed)
        st =
            hodei_err_set(err, HODEI_ERR_LIMIT, "events of one statement exceed %zu bytes", t->max);
    if (st != HODEI_OK) { /* the set stays as it was */
        t->len = rows->open;
        t->failed = false;
        return st;
    }
    rows->open = t->len;
    rows->n++;
    return HODEI_OK;
}

hodei_status events_row_add(hodei_outbox *to, Hodei__V1__Event *ev, const char *subject,
                            const char *aggregate_type, const char *aggregate_id,
                            const char *event_type, hodei_err *err)
{
    if (to->rows)
        return outbox_rows_add(to->rows, ev, subject, aggregate_type, aggregate_id, event_type,
                               err);
    hodei_outbox_rows one;
    hodei_outbox_rows_init(&one, HODEI_OUTBOX_ROWS_TEXT_MAX);
    hodei_status st =
        outbox_rows_add(&one, ev, subject, aggregate_type, aggregate_id, event_type, err);
    if (st == HODEI_OK)
        st = hodei_outbox_write(to->conn, &one, err);
    hodei_outbox_rows_fini(&one);
    return st;
}

hodei_status hodei_outbox_write(PGconn *conn, hodei_outbox_rows *rows, hodei_err *err)
{
    if (rows->n == 0)
        return HODEI_OK;
    const char *params[1] = {hodei_outbox_rows_param(rows)};
    return hodei_db_exec(conn, HODEI_OUTBOX_INSERT_SQL("$1", "true"), 1, params, NULL, err);
}
