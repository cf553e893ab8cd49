/* Start and stop of the edge's worker side and logs (edge_workers.h). */
#include "edge_workers.h"

#include <stdio.h>

#include "hodei/assign.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "logs/logs_int.h"
#include "logs/logs_pub.h"
#include "worker/worker_hub.h"
#include "worker/worker_rpc.h"
#include "worker/worker_run.h"

#define EDGE_NATS_CONNECT_TIMEOUT_MS 5000
#define EDGE_NATS_NAME_MAX 128

/* The log publisher lives as long as the worker hub; kept here, with the
 * log archiver. */
static log_pub *edge_log_pub;
static log_archive *edge_log_archive;

hodei_status edge_workers_start(edge *e, const char *instance, hodei_err *err)
{
    e->instance = instance;
    hodei_status st = hodei_bus_connect(
        e->common->nats_url, &(hodei_bus_auth){e->common->nats_user, e->common->nats_password},
        instance, EDGE_NATS_CONNECT_TIMEOUT_MS, &e->bus, err);
    if (st == HODEI_OK)
        st = hodei_bus_ensure_streams(e->bus, err);
    char readers[EDGE_NATS_NAME_MAX];
    snprintf(readers, sizeof readers, "%s-log-readers", instance);
    if (st == HODEI_OK)
        st = hodei_bus_connect(e->common->nats_url,
                               &(hodei_bus_auth){e->common->nats_user, e->common->nats_password},
                               readers, EDGE_NATS_CONNECT_TIMEOUT_MS, &e->readers_bus, err);
    if (st == HODEI_OK)
        st = log_pub_create(e->bus,
                            hodei_daemon_counter(e->d, "hodei_log_lines_lost_total",
                                                 "Workers' log lines the log store (JetStream) did"
                                                 " not take, after retries; each attempt's readers"
                                                 " get a line naming the lost sequences."),
                            &edge_log_pub, err);
    if (st == HODEI_OK)
        st = worker_rpc_start(e, edge_log_pub, err);
    if (st == HODEI_OK)
        st = log_hub_create(e, &e->logs, err);
    if (st == HODEI_OK)
        st = log_store_create(e, &e->log_store, err);
    if (st == HODEI_OK)
        st = log_archive_create(e, &edge_log_archive, err);
    if (st == HODEI_OK)
        st = logs_readers_create(e, &e->log_readers, err);
    return st;
}

void edge_workers_quiesce(edge *e)
{
    logs_readers_stop(e->log_readers);
}

void edge_workers_stop(edge *e)
{
    logs_readers_destroy(e->log_readers);
    e->log_readers = NULL;
    log_archive_destroy(edge_log_archive);
    edge_log_archive = NULL;
    log_store_destroy(e->log_store);
    e->log_store = NULL;
    log_hub_destroy(e->logs);
    e->logs = NULL;
    hodei_bus_destroy(e->readers_bus);
    e->readers_bus = NULL;
    worker_rpc_stop(e);
    log_pub_destroy(edge_log_pub);
    edge_log_pub = NULL;
    hodei_bus_destroy(e->bus);
    e->bus = NULL;
}

static edge *dispatch_edge;

void edge_workers_dispatch_ctx(edge *e)
{
    dispatch_edge = e;
}

/* e->workers is set before the server takes its first call, and every
 * submit comes from a call. */
static size_t dispatch_workers(void *ctx, char (*ids)[HODEI_ID_BUF], size_t max)
{
    (void)ctx;
    return dispatch_edge && dispatch_edge->workers
               ? worker_hub_ids(dispatch_edge->workers, ids, max)
               : 0;
}

static void dispatch_run(void *ctx, const char *worker_id, const PGresult *run, int row)
{
    (void)ctx;
    hodei_metric_add(dispatch_edge->m.submit_assigned, 1);
    /* an assignment like a pass's or a hand-off's: its wait in the queue */
    if (!PQgetisnull(run, row, HODEI_RUN_COL_DUE_AGE_US))
        hodei_metric_observe_micro(dispatch_edge->m.queue_wait_seconds,
                                   hodei_db_get_i64(run, row, HODEI_RUN_COL_DUE_AGE_US));
    worker_run_send_to(dispatch_edge->workers, worker_id, run, row);
}

const submit_dispatch edge_workers_dispatch = {.workers = dispatch_workers, .run = dispatch_run};

hodei_status logs_rpc_register(edge *e, hodei_err *err)
{
    hodei_rpc_method methods[2];
    logs_get_method(e, &methods[0]);
    logs_follow_method(e, &methods[1]);
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}
