/* Private parts of the outbox relay, shared by relay.c and relay_batch.c. */
#ifndef HODEI_RELAY_INT_H
#define HODEI_RELAY_INT_H

#include <libpq-fe.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/status.h"
#include "relay_stats.h"

#define RELAY_BATCH_MAX 10000               /* upper bound of relay.batch_max */
#define RELAY_PAYLOAD_MAX (8 * 1024 * 1024) /* largest event payload we decode */
#define RELAY_ACK_SLICE_MS 100              /* re-check the connection while waiting */
#define RELAY_SUBJECT_MAX 255               /* longest outbox.subject we publish */
#define RELAY_FULL_SCAN_MS 1000             /* a round from id 0, for stragglers */
/* The floor trails the highest id marked by this many ids: transactions
 * committing concurrently (group commits of up to a few hundred rows each)
 * take ids just below one another, and their rows must not wait for the
 * full scan. The walk over published entries stays bounded by this. */
#define RELAY_FLOOR_LAG_IDS 4096

/* ---- one published batch (relay_batch.c) ---- */

/* The rows of a round, oldest first; payload arrives as bytea hex text. */
#define RELAY_ROW_COLUMNS                                                                          \
    "id, event_id::text, subject, aggregate_id, event_type, payload,"                              \
    " (extract(epoch FROM created_at) * 1000000)::int8"
/* $2 is a floor: ids at or below it were all published when it was set,
 * except stragglers (a transaction that took its id long before it
 * committed), which the periodic full scan (floor 0) picks up. Without a floor
 * every round walks the index entries of rows published moments ago and
 * not yet vacuumed, and that walk grows with the load. */
#define RELAY_SELECT_SQL                                                                           \
    "SELECT " RELAY_ROW_COLUMNS                                                                    \
    " FROM outbox WHERE published_at IS NULL AND id > $2::bigint ORDER BY id LIMIT $1"
#define RELAY_MARK_SQL                                                                             \
    "UPDATE outbox SET published_at = clock_timestamp()"                                           \
    " WHERE id = ANY($1::bigint[]) AND published_at IS NULL"
/* Marks $1 and reads the next rows in one statement; the SELECT sees the
 * snapshot before the UPDATE, hence the explicit exclusion of $1. */
#define RELAY_MARK_FETCH_SQL                                                                       \
    "WITH marked AS (" RELAY_MARK_SQL ")"                                                          \
    " SELECT " RELAY_ROW_COLUMNS " FROM outbox"                                                    \
    " WHERE published_at IS NULL AND id <> ALL($1::bigint[]) AND id > $3::bigint"                  \
    " ORDER BY id LIMIT $2"
enum {
    RELAY_COL_ID = 0,
    RELAY_COL_EVENT_ID,
    RELAY_COL_SUBJECT,
    RELAY_COL_AGGREGATE_ID,
    RELAY_COL_EVENT_TYPE,
    RELAY_COL_PAYLOAD,
    RELAY_COL_CREATED_US,
    RELAY_COLS
};

typedef enum { RELAY_SLOT_PENDING = 0, RELAY_SLOT_ACKED, RELAY_SLOT_FAILED } relay_slot_state;

typedef struct {
    int64_t id;          /* outbox.id */
    int64_t created_us;  /* outbox.created_at, wall microseconds */
    int64_t ack_us;      /* when JetStream's ack arrived */
    const natsMsg *sent; /* identity of the message nats.c owns (compare only) */
    natsMsg *owned;      /* handed back by the ack handler; destroyed at close */
    relay_slot_state state;
} relay_slot;

/* The rows of one round and what JetStream answered for each. The ack
 * handler runs on a nats.c thread; everything below mu is guarded by it. */
typedef struct {
    pthread_mutex_t mu;
    relay_slot *slots; /* cap entries, allocated once */
    int cap;
    int len;            /* rows in this round */
    int hint;           /* where the next ack most likely belongs */
    bool open;          /* false: late acks are not ours any more */
    char fail_msg[256]; /* first failure JetStream reported */
    jsCtx *js;          /* our own context: carries the ack handler */
    natsConnection *nc; /* the bus's connection (not ours to close) */
    char *payload;      /* scratch for decoding bytea, grows to RELAY_PAYLOAD_MAX */
    size_t payload_cap;
} relay_batch;

/* Allocates room for cap rows. */
hodei_status relay_batch_init(relay_batch *b, int cap, hodei_err *err);
/* Creates the JetStream context (with our ack handler) on nc. */
hodei_status relay_batch_attach(relay_batch *b, natsConnection *nc, hodei_err *err);
/* Destroys the context (before the connection goes) and the memory. */
void relay_batch_fini(relay_batch *b);

/* Publishes the rows of res (columns as RELAY_SELECT_SQL in relay.c) with
 * headers, waits up to timeout_ms for the acks, and returns in *prefix_out
 * how many leading rows JetStream acknowledged. HODEI_OK only when all were. */
hodei_status relay_batch_publish(relay_batch *b, const PGresult *res, const char *publisher,
                                 int64_t timeout_ms, int *prefix_out, hodei_err *err);
/* Adds the ack lag of the first n slots of the last batch to h. */
void relay_batch_lags(const relay_batch *b, int n, relay_hist *h);

#endif
