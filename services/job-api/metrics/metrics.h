/* MetricsService (GetAggregatedMetrics, StreamMetrics), as main.c sees it.
 * Every database read runs on the metrics hub's own thread, never on the
 * gRPC threads that carry worker heartbeats and results. */
#ifndef HODEI_JOB_API_METRICS_H
#define HODEI_JOB_API_METRICS_H

#include "edge.h"

/* Starts the hub's thread. Call before the gRPC server starts. */
hodei_status metrics_hub_create(edge *e, hodei_err *err);
/* Call after the gRPC server is destroyed: answers what is still queued
 * and joins the thread. Safe when create failed or never ran. */
void metrics_hub_destroy(edge *e);
/* Registers MetricsService's two methods. */
hodei_status metrics_rpc_register(edge *e, hodei_err *err);

#endif
