/* NATS and JetStream: the connection, idempotent stream setup and the
 * streams' limits. The names of streams, subjects, consumers and headers are
 * in hodei/names.h (included here), defined once. */
#ifndef HODEI_BUS_H
#define HODEI_BUS_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/names.h"
#include "hodei/status.h"

/* Stream limits. */
#define HODEI_EVENTS_DUPLICATE_WINDOW_MS (2 * 60 * 1000)
#define HODEI_EVENTS_MAX_AGE_MS (7LL * 24 * 3600 * 1000)
#define HODEI_LOGS_MAX_BYTES (8LL * 1024 * 1024 * 1024)
#define HODEI_LOGS_MAX_AGE_MS (3LL * 24 * 3600 * 1000)
/* Messages (batches) one job's subject keeps: past it, that job's own
 * oldest go, never another job's (the edge's logs.job_max bounds bytes). */
#define HODEI_LOGS_MAX_MSGS_PER_JOB 200000

typedef struct hodei_bus hodei_bus;

/* The durable consumer `durable` on `stream`, when it exists with another
 * filter (made by an older release), is made anew with filter `filter` and
 * the same settings; one that delivered everything starts again at its
 * first unacknowledged message. HODEI_ERR_NOT_FOUND when it does not exist:
 * the caller creates it. */
hodei_status hodei_bus_consumer_refilter(hodei_bus *bus, const char *stream, const char *durable,
                                         const char *filter, hodei_err *err);

/* Credentials for the NATS server (nats.user / nats.password). user NULL
 * or "" = none; the strings are only read during the connect call. */
typedef struct {
    const char *user;
    const char *password;
} hodei_bus_auth;

/* Connects to url (comma-separated servers allowed) with reconnection
 * forever (backoff with jitter), and opens a JetStream context. auth may be
 * NULL. HODEI_ERR_UNAVAILABLE when no server answers within
 * connect_timeout_ms; HODEI_ERR_UNAUTHENTICATED when the server refuses the
 * credentials (or their absence). */
hodei_status hodei_bus_connect(const char *url, const hodei_bus_auth *auth, const char *client_name,
                               int64_t connect_timeout_ms, hodei_bus **out, hodei_err *err);
/* As hodei_bus_connect, but each publish is written to the socket at once.
 * By default nats.c hands publishes to a flusher thread that waits 1 ms for
 * more before it writes: right for bulk senders (the relay, log batches),
 * a floor of a millisecond for a latency-bound one (the scheduler's
 * post-commit hints, on the path of every dispatch). */
hodei_status hodei_bus_connect_asap(const char *url, const hodei_bus_auth *auth,
                                    const char *client_name, int64_t connect_timeout_ms,
                                    hodei_bus **out, hodei_err *err);
void hodei_bus_destroy(hodei_bus *bus);

natsConnection *hodei_bus_conn(hodei_bus *bus);
jsCtx *hodei_bus_js(hodei_bus *bus);
bool hodei_bus_connected(hodei_bus *bus);

/* Creates HODEI_EVENTS and HODEI_LOGS, or updates them to the limits above
 * when they exist. Safe to call from every process at start-up. */
hodei_status hodei_bus_ensure_streams(hodei_bus *bus, hodei_err *err);

/* Maps a natsStatus (with nats_GetLastError detail) into err. */
hodei_status hodei_bus_err(natsStatus s, const char *what, hodei_err *err);

/* Call at process exit after every bus is destroyed (releases nats.c's
 * global state so leak checkers stay quiet). */
void hodei_bus_global_shutdown(void);

#endif
