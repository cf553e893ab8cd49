/* Matching pending jobs to ready workers: the fit rules and the five
 * strategies. Pure: no I/O, no clock, no allocation — the scheduler's pass
 * fills the tables from PostgreSQL and writes the result back.
 *
 * Fit (every strategy): a worker fits a job when
 *   - each resource the job asks for (cpu, memory, storage, gpu > 0) is
 *     covered by the worker's capacity; a capacity of 0 means "unknown" and
 *     fits only a job that asks nothing of that resource;
 *   - the job's architecture, when set, equals the worker's;
 *   - the job's provider, when set, is the worker's provider;
 *   - the job's image is the worker's ("" = the provider's default image,
 *     which only a worker started in that default runs);
 *   - the worker has every label the job's constraints require, with the
 *     same value.
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

#include "hodei/id.h"
#include "hodei/limits.h"
#include "hodei/v1/scheduler.pb-c.h"

#define MATCH_LABELS_MAX HODEI_LABELS_MAX /* labels per worker, constraints per job */

/* Bytes of a JSON text (not NUL-terminated). */
typedef struct {
    const char *p;
    size_t len;
} match_span;

/* A flat JSON object as found in jobs.constraints / workers.labels.
 * key: the text between the quotes, escapes kept as written; value: the raw
 * token, quotes included (so "2" and 2 differ, as in jsonb). Spans point
 * into the parsed text, which must outlive them. Compared byte for byte:
 * PostgreSQL prints jsonb canonically, so equal strings print equally. */
typedef struct {
    match_span key[MATCH_LABELS_MAX];
    match_span value[MATCH_LABELS_MAX];
    size_t n;
} match_labels;

/* Parses `{"k": "v", ...}` (len bytes). false when it is not a flat object
 * of scalars or holds more than MATCH_LABELS_MAX keys (*out then empty). */
bool match_labels_parse(const char *json, size_t len, match_labels *out);

typedef struct {
    int64_t cpu_millis;
    int64_t memory_bytes;
    int64_t storage_bytes;
    int64_t gpu_count;
    const char *architecture; /* "" = any (job) / unknown (worker) */
} match_resources;

typedef struct {
    const char *id;
    int32_t priority;
    match_resources need;
    const char *provider; /* "" = any */
    const char *image;    /* "" = the provider's default worker image */
    match_labels constraints;
} match_job;

typedef struct {
    const char *id;
    const char *provider;
    const char *image; /* the image it was started in; "" = its provider's default */
    match_resources cap;
    match_labels labels;
    double cost_per_hour;  /* of its provider; 0 = free or unknown */
    double load;           /* recent assignments (decayed count) */
    int64_t idle_since_us; /* 0 = unknown (counts as just now) */
} match_worker;

bool match_fits(const match_job *job, const match_worker *worker);

/* A job's needs against a provider's worker template: as match_fits on
 * resources and architecture, except that a template value of 0 ("decided
 * when the worker registers") never rules a job out. Labels are not known
 * before registration and are not checked. */
bool match_template_fits(const match_resources *need, const match_resources *tmpl);

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
