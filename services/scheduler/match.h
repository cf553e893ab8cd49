/* Matching pending jobs to ready workers: the five strategies over the
 * fit rule (hodei/fit.h, shared with the edge's hand-off). Pure: no I/O, no
 * clock, no allocation; the scheduler's pass fills the tables from
 * PostgreSQL and writes the result back.
 *
 * Jobs are served in the order given (the pass reads them by priority DESC,
 * created_at, id), each taking the best fitting worker still free:
 *   round-robin     the next fitting worker after the last one given a job
 *                   (workers sorted by id; the cursor survives passes)
 *   least-loaded    fewest recent assignments, then idle the longest
 *   priority        the most capable worker (gpu, cpu, memory, storage), so
 *                   the highest-priority jobs get the strongest workers
 *   resource-aware  best fit: the least capacity left unused (gpu weighs 4x)
 *   cost-optimized  the cheapest provider's worker (cost_per_hour), then
 *                   best fit
 * Ties go to the lower worker id, so every outcome is deterministic. */
#ifndef HODEI_SCHED_MATCH_H
#define HODEI_SCHED_MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/fit.h"
#include "hodei/id.h"
#include "hodei/v1/scheduler.pb-c.h"

typedef struct {
    const char *id;
    int32_t priority;
    hodei_fit_job fit; /* needs, provider preference, constraints */
} match_job;

typedef struct {
    const char *id;
    hodei_fit_worker fit;  /* capacity, provider, labels */
    double cost_per_hour;  /* of its provider; 0 = free or unknown */
    double load;           /* recent assignments (decayed count) */
    int64_t idle_since_us; /* 0 = unknown (counts as just now) */
} match_worker;

typedef struct {
    Hodei__V1__SchedulingStrategy strategy;
    const match_job *jobs;
    size_t n_jobs;
    const match_worker *workers; /* sorted by id (round-robin relies on it) */
    size_t n_workers;
    char rr_after[HODEI_ID_BUF]; /* in/out: round-robin cursor ("" = start) */
    bool *taken;                 /* scratch: n_workers entries */
    int *assign;                 /* out: n_jobs entries, worker index or -1 */
} match_problem;

/* Fills p->assign; returns how many jobs got a worker. No worker is given
 * two jobs. */
size_t match_solve(match_problem *p);

#endif
