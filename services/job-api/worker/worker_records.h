/* The output records of a worker's JobResult (JobResult.artifacts) into
 * job_artifacts, inside the result's own transaction. */
#ifndef HODEI_JOB_API_WORKER_RECORDS_H
#define HODEI_JOB_API_WORKER_RECORDS_H

#include "hodei/db.h"
#include "hodei/v1/worker.pb-c.h"

/* JobResult.artifacts into job_artifacts, in the caller's transaction. */
hodei_status worker_records_insert(PGconn *conn, const Hodei__V1__JobResult *r, hodei_err *err);

#endif
