/* LogBatch: a worker's output lines. A batch of an attempt that is not
 * this stream's is dropped; the rest is cut at logs.job_max bytes per
 * attempt and published to JetStream (logs/logs_pub.c). When the attempt's
 * result comes, one SYSTEM line says how much was dropped. */
#ifndef HODEI_JOB_API_WORKER_LOGS_H
#define HODEI_JOB_API_WORKER_LOGS_H

#include <stdint.h>

#include "worker_hub.h"

/* A validated LogBatch (job id in lower case). The batch is the library's
 * heap copy: its line array is reordered in place, never freed here. */
void worker_logs_on_batch(worker_session *s, Hodei__V1__LogBatch *b);
/* After an attempt's result: one SYSTEM line saying how much output
 * logs.job_max dropped, and one saying which lines the log store lost
 * (logs/logs_pub.h), each only when there were some. */
void worker_logs_drops(worker_session *s, const char *job_id, int64_t epoch);

#endif
