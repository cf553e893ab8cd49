/* NATS and JetStream: names of streams, subjects and headers (defined here
 * once, like Postfix's mail_proto.h), the connection, and idempotent stream
 * setup. */
#ifndef HODEI_BUS_H
#define HODEI_BUS_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/status.h"

/* Streams. */
#define HODEI_STREAM_EVENTS "HODEI_EVENTS"
#define HODEI_SUBJ_EVENTS_ALL "hodei.evt.>"
#define HODEI_STREAM_LOGS "HODEI_LOGS"
#define HODEI_SUBJ_LOGS_ALL "hodei.logs.>"
#define HODEI_SUBJ_LOGS_PREFIX "hodei.logs." /* + job id */

/* Event subjects: hodei.evt.<aggregate>.<type>[.<routing key>] */
#define HODEI_SUBJ_JOB_QUEUED "hodei.evt.job.queued"
#define HODEI_SUBJ_JOB_ASSIGNED_PREFIX "hodei.evt.job.assigned." /* + worker id */
#define HODEI_SUBJ_JOB_CANCEL_PREFIX "hodei.evt.job.cancel."     /* + worker id or "none" */
#define HODEI_SUBJ_JOB_FINISHED "hodei.evt.job.finished"
#define HODEI_SUBJ_WORKER_READY "hodei.evt.worker.ready"
#define HODEI_SUBJ_PROVISION_REQUESTED "hodei.evt.provision.requested"
#define HODEI_SUBJ_PROVISION_FAILED "hodei.evt.provision.failed"
/* A worker to destroy: work for the provisioner, so under "provision" with
 * its other requests (one consumer filter takes both). */
#define HODEI_SUBJ_WORKER_DESTROY "hodei.evt.provision.destroy"
#define HODEI_SUBJ_PROVISION_ALL "hodei.evt.provision.>"
/* Every event without a routing key: the per-worker subjects (JobAssigned,
 * CancelRequested: one or two per job) are the edge's, not the scheduler's. */
#define HODEI_SUBJ_EVENTS_UNROUTED "hodei.evt.*.*"
/* Not events (no stream holds them): a scheduler's wake-up for the edge that
 * holds the worker, published after the assignment committed, a relay hop
 * before its JobAssigned event. Payload: the packed JobAssigned Event. */
#define HODEI_SUBJ_HINT_ASSIGNED_PREFIX "hodei.hint.job.assigned." /* + worker id */
#define HODEI_SUBJ_HINT_ASSIGNED_ALL "hodei.hint.job.assigned.*"

/* Durable JetStream consumers on HODEI_EVENTS, one per service, shared by
 * all its replicas. Each filters what the service can use (the scheduler
 * HODEI_SUBJ_EVENTS_UNROUTED, the provisioner HODEI_SUBJ_PROVISION_ALL), so
 * nats-server does not deliver, and the service ack, every event of every
 * job. */
#define HODEI_CONSUMER_SCHEDULER "scheduler"
#define HODEI_CONSUMER_PROVISIONER "provisioner"

/* Headers. */
#define HODEI_HDR_MSG_ID "Nats-Msg-Id" /* = event id: JetStream dedup */
#define HODEI_HDR_AGGREGATE_ID "Hodei-Aggregate-Id"
#define HODEI_HDR_EVENT_TYPE "Hodei-Event-Type"
#define HODEI_HDR_PUBLISHER "Hodei-Publisher" /* instance that published */
/* On hodei.logs.<job>: the last message of an attempt's log carries this
 * header with the final state name ("SUCCEEDED", ...); followers stop there. */
#define HODEI_HDR_LOG_END "Hodei-Log-End"

/* Stream limits. */
#define HODEI_EVENTS_DUPLICATE_WINDOW_MS (2 * 60 * 1000)
#define HODEI_EVENTS_MAX_AGE_MS (7LL * 24 * 3600 * 1000)
#define HODEI_LOGS_MAX_BYTES (8LL * 1024 * 1024 * 1024)
#define HODEI_LOGS_MAX_AGE_MS (3LL * 24 * 3600 * 1000)

typedef struct hodei_bus hodei_bus;

/* The durable consumer `durable` on `stream`, when it exists with another
 * filter (made by an older release), is made anew with filter `filter` and
 * the same settings; one that delivered everything starts again at its
 * first unacknowledged message. HODEI_ERR_NOT_FOUND when it does not exist:
 * the caller creates it. */
hodei_status hodei_bus_consumer_refilter(hodei_bus *bus, const char *stream, const char *durable,
                                         const char *filter, hodei_err *err);

/* Connects to url (comma-separated servers allowed) with reconnection
 * forever (backoff with jitter), and opens a JetStream context.
 * HODEI_ERR_UNAVAILABLE when no server answers within connect_timeout_ms. */
hodei_status hodei_bus_connect(const char *url, const char *client_name, int64_t connect_timeout_ms,
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
