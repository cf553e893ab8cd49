/* The suite's names on the wire, defined here once (Postfix's
 * mail_proto.h): JetStream streams and consumers, event and log subjects,
 * message headers, and the event and aggregate types of outbox rows.
 *
 * Names only: no nats.h, so code that only writes outbox rows (libs/store,
 * the supervisor) names subjects without linking the NATS client. libs/bus
 * (the connection, stream setup) includes this header. */
#ifndef HODEI_NAMES_H
#define HODEI_NAMES_H

/* Streams. */
#define HODEI_STREAM_EVENTS "HODEI_EVENTS"
#define HODEI_SUBJ_EVENTS_ALL "hodei.evt.>"
#define HODEI_STREAM_LOGS "HODEI_LOGS"
#define HODEI_SUBJ_LOGS_ALL "hodei.logs.>"
#define HODEI_SUBJ_LOGS_PREFIX "hodei.logs." /* + job id */
/* JetStream's API, for readers that speak it without waiting (the edge's
 * log followers): + stream "." consumer. */
#define HODEI_JS_API_CONSUMER_CREATE "$JS.API.CONSUMER.CREATE."
#define HODEI_JS_API_CONSUMER_NEXT "$JS.API.CONSUMER.MSG.NEXT."
#define HODEI_JS_API_CONSUMER_DELETE "$JS.API.CONSUMER.DELETE."
#define HODEI_JS_ACK_PREFIX "$JS.ACK." /* reply subject of a message a consumer delivered */

/* Event subjects: hodei.evt.<aggregate>.<type>[.<routing key>] */
#define HODEI_SUBJ_JOB_QUEUED "hodei.evt.job.queued"
#define HODEI_SUBJ_JOB_ASSIGNED_PREFIX "hodei.evt.job.assigned." /* + worker id */
#define HODEI_SUBJ_JOB_CANCEL_PREFIX "hodei.evt.job.cancel."     /* + worker id or "none" */
#define HODEI_SUBJ_JOB_CANCEL_UNASSIGNED "none"                  /* routing key: no worker */
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

/* Event types (outbox.event_type, header Hodei-Event-Type, the outbox
 * NOTIFY's payload), one per body of hodei.v1.Event. */
#define HODEI_EVT_JOB_QUEUED "JobQueued"
#define HODEI_EVT_JOB_ASSIGNED "JobAssigned"
#define HODEI_EVT_JOB_CANCEL_REQUESTED "JobCancelRequested"
#define HODEI_EVT_JOB_FINISHED "JobFinished"
#define HODEI_EVT_WORKER_READY "WorkerReady"
#define HODEI_EVT_PROVISION_REQUESTED "ProvisionRequested"
#define HODEI_EVT_PROVISION_FAILED "ProvisionFailed"
#define HODEI_EVT_WORKER_DESTROY_REQUESTED "WorkerDestroyRequested"

/* Aggregate types (outbox.aggregate_type): whose id aggregate_id is. */
#define HODEI_AGG_JOB "job"
#define HODEI_AGG_WORKER "worker"
#define HODEI_AGG_PROVISION "provision" /* a provisioning request: the new worker's id */

/* Durable JetStream consumers on HODEI_EVENTS, one per service, shared by
 * all its replicas. Each filters what the service can use (the scheduler
 * HODEI_SUBJ_EVENTS_UNROUTED, the provisioner HODEI_SUBJ_PROVISION_ALL), so
 * nats-server does not deliver, and the service ack, every event of every
 * job. */
#define HODEI_CONSUMER_SCHEDULER "scheduler"
#define HODEI_CONSUMER_PROVISIONER "provisioner"
#define HODEI_CONSUMER_LOG_ARCHIVE "log-archive" /* job-api: JobFinished -> log archives */

/* Headers. */
#define HODEI_HDR_MSG_ID "Nats-Msg-Id" /* = event id: JetStream dedup */
#define HODEI_HDR_AGGREGATE_ID "Hodei-Aggregate-Id"
#define HODEI_HDR_EVENT_TYPE "Hodei-Event-Type"
#define HODEI_HDR_PUBLISHER "Hodei-Publisher" /* instance that published */
/* On hodei.logs.<job>: the last message of an attempt's log carries this
 * header with the final state name ("SUCCEEDED", ...); followers stop there. */
#define HODEI_HDR_LOG_END "Hodei-Log-End"
/* JetStream stores a message carrying this header only when the subject's
 * last sequence is its value. An end marker published with "0" (an attempt
 * that printed nothing, its job's first) is stored only on an empty subject,
 * and keeps the header: the log archive reads such a marker as the whole
 * subject. */
#define HODEI_HDR_EXPECT_LAST_SUBJ_SEQ "Nats-Expected-Last-Subject-Sequence"

#endif
