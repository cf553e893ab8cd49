/* The five strategies over the fit rule (see match.h). */
#include "match.h"

#include <string.h>

#include "hodei/util.h"

#define MATCH_GPU_WEIGHT 4.0 /* a GPU left idle costs more than a core */
#define MATCH_STORAGE_WEIGHT 0.5
#define MATCH_LOAD_EPSILON 1e-6 /* loads closer than this are equal */

/* ------------------------------------------------------------ preferences */

/* Share of a capacity the job leaves unused; an unknown capacity (0) can
 * only take jobs that ask nothing of it, so it wastes nothing. */
static double slack(int64_t need, int64_t cap)
{
    if (cap <= 0)
        return 0.0;
    return (double)(cap - (need > 0 ? need : 0)) / (double)cap;
}

static double waste(const match_job *j, const match_worker *w)
{
    return slack(j->fit.need.cpu_millis, w->fit.cap.cpu_millis) +
           slack(j->fit.need.memory_bytes, w->fit.cap.memory_bytes) +
           MATCH_STORAGE_WEIGHT * slack(j->fit.need.storage_bytes, w->fit.cap.storage_bytes) +
           MATCH_GPU_WEIGHT * slack(j->fit.need.gpu_count, w->fit.cap.gpu_count);
}

/* -1 when a < b, 1 when a > b, 0 when equal. */
static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_dbl(double a, double b, double eps)
{
    if (a < b - eps)
        return -1;
    return a > b + eps ? 1 : 0;
}

/* Most capable first: gpu, cpu, memory, storage (descending). */
static int cmp_capability(const match_worker *a, const match_worker *b)
{
    int c = cmp_i64(b->fit.cap.gpu_count, a->fit.cap.gpu_count);
    if (c == 0)
        c = cmp_i64(b->fit.cap.cpu_millis, a->fit.cap.cpu_millis);
    if (c == 0)
        c = cmp_i64(b->fit.cap.memory_bytes, a->fit.cap.memory_bytes);
    if (c == 0)
        c = cmp_i64(b->fit.cap.storage_bytes, a->fit.cap.storage_bytes);
    return c;
}

static int64_t idle_key(const match_worker *w)
{
    return w->idle_since_us > 0 ? w->idle_since_us : INT64_MAX;
}

/* < 0 when worker a is preferred to worker b for job j. */
static int prefer(Hodei__V1__SchedulingStrategy s, const match_job *j, const match_worker *a,
                  const match_worker *b)
{
    int c = 0;
    switch (s) {
    case HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PRIORITY:
        c = cmp_capability(a, b);
        break;
    case HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_RESOURCE_AWARE:
        c = cmp_dbl(waste(j, a), waste(j, b), 0.0);
        break;
    case HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_COST_OPTIMIZED:
        c = cmp_dbl(a->cost_per_hour, b->cost_per_hour, 0.0);
        if (c == 0)
            c = cmp_dbl(waste(j, a), waste(j, b), 0.0);
        break;
    default: /* least-loaded */
        c = cmp_dbl(a->load, b->load, MATCH_LOAD_EPSILON);
        if (c == 0)
            c = cmp_i64(idle_key(a), idle_key(b));
        break;
    }
    return c != 0 ? c : strcmp(a->id, b->id);
}

/* ------------------------------------------------------------- the solver */

static int pick_best(const match_problem *p, const match_job *j)
{
    int best = -1;
    for (size_t w = 0; w < p->n_workers; w++) {
        if (p->taken[w] || !hodei_fit(&j->fit, &p->workers[w].fit))
            continue;
        if (best < 0 || prefer(p->strategy, j, &p->workers[w], &p->workers[best]) < 0)
            best = (int)w;
    }
    return best;
}

/* The first free fitting worker after the cursor, wrapping around. */
static int pick_next(match_problem *p, const match_job *j)
{
    size_t start = 0;
    while (start < p->n_workers && strcmp(p->workers[start].id, p->rr_after) <= 0)
        start++;
    for (size_t k = 0; k < p->n_workers; k++) {
        size_t w = (start + k) % p->n_workers;
        if (!p->taken[w] && hodei_fit(&j->fit, &p->workers[w].fit)) {
            hodei_strlcpy(p->rr_after, p->workers[w].id, sizeof p->rr_after);
            return (int)w;
        }
    }
    return -1;
}

size_t match_solve(match_problem *p)
{
    size_t assigned = 0;
    bool rr = p->strategy == HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_ROUND_ROBIN;

    if (p->n_workers > 0)
        memset(p->taken, 0, p->n_workers * sizeof p->taken[0]);
    for (size_t i = 0; i < p->n_jobs; i++) {
        int w = -1;
        if (assigned < p->n_workers)
            w = rr ? pick_next(p, &p->jobs[i]) : pick_best(p, &p->jobs[i]);
        p->assign[i] = w;
        if (w >= 0) {
            p->taken[w] = true;
            assigned++;
        }
    }
    return assigned;
}
