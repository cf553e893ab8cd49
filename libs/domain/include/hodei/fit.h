/* The fit rule: whether a worker can run a job. It is written here once, in
 * C for the scheduler's matching (hodei_fit) and, beside it, as the SQL
 * predicate the edge's hand-off runs in PostgreSQL (HODEI_FIT_SQL): change
 * both together. Test `fit` runs one table of cases (tests/fit_cases.h)
 * through both, the SQL one through the hand-off's real pick.
 *
 * A worker fits a job when
 *   - each resource the job asks for (cpu, memory, storage, gpu > 0) is
 *     covered by the worker's capacity; a capacity of 0 means "unknown" and
 *     fits only a job that asks nothing of that resource;
 *   - the job's architecture, when set, equals the worker's;
 *   - the job's provider, when set, is the worker's provider;
 *   - the job's image is the worker's ("" = the provider's default worker
 *     image, which only a worker started in that default runs);
 *   - the worker has every label the job's constraints name, with the same
 *     value.
 * The choice among fitting workers (the strategies) is the scheduler's. */
#ifndef HODEI_FIT_H
#define HODEI_FIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/job_spec.h"

/* Labels per worker and constraints per job: as many as the doors accept. */
#define HODEI_FIT_LABELS_MAX HODEI_JOB_LABELS_MAX

/* Bytes of a JSON text (not NUL-terminated). */
typedef struct {
    const char *p;
    size_t len;
} hodei_fit_span;

/* A flat JSON object as PostgreSQL prints jobs.constraints and
 * workers.labels. key: the text between the quotes, escapes kept as
 * written; value: the raw token, quotes included (so "2" and 2 differ, as
 * in jsonb). Spans point into the parsed text, which must outlive them.
 * Compared byte for byte: PostgreSQL prints jsonb canonically, so equal
 * strings print equally. */
typedef struct {
    hodei_fit_span key[HODEI_FIT_LABELS_MAX];
    hodei_fit_span value[HODEI_FIT_LABELS_MAX];
    size_t n;
} hodei_fit_labels;

/* Parses `{"k": "v", ...}` (len bytes). false when it is not a flat object
 * of scalars, names a key twice or holds more than HODEI_FIT_LABELS_MAX keys (*out then
 * empty). */
bool hodei_fit_labels_parse(const char *json, size_t len, hodei_fit_labels *out);

typedef struct {
    int64_t cpu_millis;
    int64_t memory_bytes;
    int64_t storage_bytes;
    int64_t gpu_count;
    const char *architecture; /* "" = any (job) / unknown (worker) */
} hodei_fit_resources;

typedef struct {
    hodei_fit_resources need;
    const char *provider; /* "" = any */
    const char *image;    /* "" = the provider's default worker image */
    hodei_fit_labels constraints;
} hodei_fit_job;

typedef struct {
    hodei_fit_resources cap;
    const char *provider;
    const char *image; /* the image it was started in; "" = its provider's default */
    hodei_fit_labels labels;
} hodei_fit_worker;

bool hodei_fit(const hodei_fit_job *job, const hodei_fit_worker *worker);

/* A job's needs against a provider's worker template: as hodei_fit on
 * resources and architecture, except that a template value of 0 ("decided
 * when the worker registers") never rules a job out. Labels are not known
 * before registration and are not checked. */
bool hodei_fit_template(const hodei_fit_resources *need, const hodei_fit_resources *tmpl);

/* hodei_fit as a SQL predicate over a jobs row `j` and a workers row `w`
 * (table names or aliases): the same rule, term for term. Labels: every
 * constraint among the worker's labels is jsonb containment, which for the
 * flat string maps both doors accept is the C rule's comparison. */
#define HODEI_FIT_SQL(j, w)                                                                        \
    "((" j ".cpu_millis <= 0 OR " w ".cpu_millis >= " j ".cpu_millis)"                             \
    " AND (" j ".memory_bytes <= 0 OR " w ".memory_bytes >= " j ".memory_bytes)"                   \
    " AND (" j ".storage_bytes <= 0 OR " w ".storage_bytes >= " j ".storage_bytes)"                \
    " AND (" j ".gpu_count <= 0 OR " w ".gpu_count >= " j ".gpu_count)"                            \
    " AND (" j ".architecture = '' OR " j ".architecture = " w ".architecture)"                    \
    " AND (" j ".provider = '' OR " j ".provider = " w ".provider)"                                \
    " AND " j ".image = " w ".image"                                                               \
    " AND " w ".labels @> " j ".constraints)"

#endif
