/* Events: every outbox row the suite writes is made by one of the typed
 * builders below (one per event type), which fill the event's id, its
 * aggregate and time, pack it and add the row to a set of rows; nothing
 * else writes outbox rows. A set goes to PostgreSQL as ONE parameter (a
 * two-dimensional text array) and is written by HODEI_OUTBOX_INSERT_SQL,
 * the suite's only INSERT INTO outbox: alone (hodei_outbox_write), or as
 * a CTE of a statement that also changes the state the events announce,
 * keeping the rows that statement's outcome calls for.
 *
 * Subjects and event types come from hodei/names.h; the payload is the
 * packed hodei.v1.Event (proto/hodei/v1/events.proto). */
#ifndef HODEI_EVENTS_H
#define HODEI_EVENTS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/buf.h"
#include "hodei/fit.h"
#include "hodei/status.h"
#include "hodei/v1/common.pb-c.h"

#define HODEI_OUTBOX_EVENT_MAX (1u << 20) /* one packed event */
/* A set's text when the caller names no other maximum: a few events. */
#define HODEI_OUTBOX_ROWS_TEXT_MAX (4u * HODEI_OUTBOX_EVENT_MAX)

/* Rows for one statement. _init takes the text's maximum (a builder that
 * would pass it fails HODEI_ERR_LIMIT and adds nothing); _fini frees. */
typedef struct {
    hodei_buf text; /* {{event_id,subject,aggregate_type,aggregate_id,event_type,hex},...} */
    size_t n;       /* rows added */
    size_t open;    /* text length before the closing brace, while open */
} hodei_outbox_rows;

void hodei_outbox_rows_init(hodei_outbox_rows *rows, size_t text_max);
void hodei_outbox_rows_reset(hodei_outbox_rows *rows);
void hodei_outbox_rows_fini(hodei_outbox_rows *rows);
/* The rows as one statement parameter for HODEI_OUTBOX_INSERT_SQL; valid
 * until the next builder call, reset or fini. */
const char *hodei_outbox_rows_param(hodei_outbox_rows *rows);

/* Where a builder puts its row: HODEI_OUTBOX_WRITE(conn) writes it at once
 * (one INSERT, in the caller's transaction); HODEI_OUTBOX_ADD(rows) adds it
 * to a set for a statement of the caller's. */
typedef struct {
    PGconn *conn;
    hodei_outbox_rows *rows;
} hodei_outbox;
#define HODEI_OUTBOX_WRITE(c) (&(hodei_outbox){.conn = (c)})
#define HODEI_OUTBOX_ADD(r) (&(hodei_outbox){.rows = (r)})

/* The builders: one row each, aggregate and subject as the contract says
 * (docs/architecture.md, "Who writes what"). */
hodei_status hodei_event_job_queued(hodei_outbox *to, const char *job_id, int32_t priority,
                                    const char *provider, hodei_err *err);
/* epoch: the assignment's (the job's epoch after it). Subject: the worker's. */
hodei_status hodei_event_job_assigned(hodei_outbox *to, const char *job_id, const char *worker_id,
                                      int64_t epoch, hodei_err *err);
/* worker_id "" when the job is not assigned (subject ...cancel.none). */
hodei_status hodei_event_job_cancel_requested(hodei_outbox *to, const char *job_id,
                                              const char *worker_id, int64_t epoch,
                                              const char *reason, hodei_err *err);
/* worker_id "" and epoch 0 for a job that never ran (a PENDING cancel). */
hodei_status hodei_event_job_finished(hodei_outbox *to, const char *job_id,
                                      Hodei__V1__JobState state, int32_t exit_code,
                                      const char *worker_id, int64_t epoch, hodei_err *err);
hodei_status hodei_event_worker_ready(hodei_outbox *to, const char *worker_id, const char *provider,
                                      hodei_err *err);
/* The new worker's id is the request's; tmpl: the capacity the provider
 * gives each worker it creates (NULL: none said). */
hodei_status hodei_event_provision_requested(hodei_outbox *to, const char *worker_id,
                                             const char *provider, const hodei_fit_resources *tmpl,
                                             hodei_err *err);
hodei_status hodei_event_provision_failed(hodei_outbox *to, const char *worker_id,
                                          const char *provider, const char *error, hodei_err *err);
hodei_status hodei_event_worker_destroy_requested(hodei_outbox *to, const char *worker_id,
                                                  const char *provider, const char *reason,
                                                  hodei_err *err);

/* Writes every row with one INSERT, inside the caller's transaction
 * (nothing when there is none). The rows stay (reset them to reuse). */
hodei_status hodei_outbox_write(PGconn *conn, hodei_outbox_rows *rows, hodei_err *err);

/* The INSERT of the rows passed as parameter `param` (e.g. "$8"), keeping
 * those for which `keep` holds; `keep` may use e.n (a row's place in the
 * set, from 1) and e.aggregate_id (text). Rows go in the order they were
 * added. As a statement or a CTE body. */
#define HODEI_OUTBOX_INSERT_SQL(param, keep)                                                       \
    "INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id, event_type, payload)"    \
    " SELECT e.event_id::uuid, e.subject, e.aggregate_type, e.aggregate_id, e.event_type,"         \
    "  decode(e.payload, 'hex')"                                                                   \
    " FROM (SELECT i AS n, r[i][1] AS event_id, r[i][2] AS subject, r[i][3] AS aggregate_type,"    \
    "   r[i][4] AS aggregate_id, r[i][5] AS event_type, r[i][6] AS payload"                        \
    "  FROM (SELECT " param "::text[] AS r) AS a, generate_subscripts(a.r, 1) AS i) AS e"          \
    " WHERE " keep " ORDER BY e.n"

#endif
