/* SchedulerService on the edge: ScheduleJob (wake the schedulers for one
 * job), GetAvailableWorkers (READY workers), ConfigureScheduler (the
 * strategy every scheduler replica uses from its next pass). */
#ifndef HODEI_JOB_API_SCHEDULER_RPC_H
#define HODEI_JOB_API_SCHEDULER_RPC_H

#include "edge.h"

hodei_status scheduler_rpc_register(edge *e, hodei_err *err);

#endif
