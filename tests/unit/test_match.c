/* services/scheduler/match.c: each strategy's choice on small tables of
 * jobs and workers (the fit rule itself: unit_fit). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "hodei/limits.h"
#include "match.h"

#define GiB (1024LL * 1024 * 1024)
#define T_MAX 16
#define RR HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_ROUND_ROBIN
#define LEAST HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_LEAST_LOADED
#define PRIO HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_PRIORITY
#define FIT HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_RESOURCE_AWARE
#define COST HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_COST_OPTIMIZED

static void labels(hodei_fit_labels *l, const char *json)
{
    cr_assert(hodei_fit_labels_parse(json, strlen(json), l), "parse %s", json);
}

static match_job job(const char *id, int prio, int64_t cpu, int64_t mem, int64_t gpu)
{
    match_job j = {.id = id, .priority = prio, .fit.provider = ""};
    j.fit.need = (hodei_fit_resources){
        .cpu_millis = cpu, .memory_bytes = mem, .gpu_count = gpu, .architecture = ""};
    return j;
}

static match_worker worker(const char *id, int64_t cpu, int64_t mem, int64_t gpu)
{
    match_worker w = {.id = id, .fit.provider = "process"};
    w.fit.cap = (hodei_fit_resources){
        .cpu_millis = cpu, .memory_bytes = mem, .gpu_count = gpu, .architecture = "amd64"};
    return w;
}

typedef struct {
    match_problem p;
    bool taken[T_MAX];
    int assign[T_MAX];
} solve_ctx;

/* Solves and returns the chosen worker ids joined by ',' ("-" = none). */
static const char *solve(solve_ctx *c, Hodei__V1__SchedulingStrategy s, const match_job *jobs,
                         size_t nj, const match_worker *workers, size_t nw)
{
    static char out[256];
    c->p.strategy = s;
    c->p.jobs = jobs;
    c->p.n_jobs = nj;
    c->p.workers = workers;
    c->p.n_workers = nw;
    c->p.taken = c->taken;
    c->p.assign = c->assign;
    match_solve(&c->p);
    out[0] = '\0';
    for (size_t i = 0; i < nj; i++) {
        const char *id = c->assign[i] >= 0 ? workers[c->assign[i]].id : "-";
        size_t len = strlen(out);
        snprintf(out + len, sizeof out - len, "%s%s", i ? "," : "", id);
    }
    return out;
}

/* ------------------------------------------------------------- strategies */

Test(match_strategy, round_robin_rotates_across_passes)
{
    solve_ctx c = {0};
    match_worker w[] = {worker("a", 1000, GiB, 0), worker("b", 1000, GiB, 0),
                        worker("c", 1000, GiB, 0)};
    match_job j[] = {job("1", 0, 0, 0, 0), job("2", 0, 0, 0, 0)};
    cr_expect_str_eq(solve(&c, RR, j, 2, w, 3), "a,b");
    cr_expect_str_eq(solve(&c, RR, j, 2, w, 3), "c,a", "the cursor survives the pass");
    match_job big[] = {job("1", 0, 2000, 0, 0), job("2", 0, 0, 0, 0)};
    w[2].fit.cap.cpu_millis = 4000;
    cr_expect_str_eq(solve(&c, RR, big, 2, w, 3), "c,a", "skips b, which does not fit");
    match_job four[] = {job("1", 0, 0, 0, 0), job("2", 0, 0, 0, 0), job("3", 0, 0, 0, 0),
                        job("4", 0, 0, 0, 0)};
    cr_expect_str_eq(solve(&c, RR, four, 4, w, 3), "b,c,a,-", "one job per worker");
}

Test(match_strategy, least_loaded_prefers_few_recent_assignments_then_longest_idle)
{
    solve_ctx c = {0};
    match_worker w[] = {worker("a", 1000, GiB, 0), worker("b", 1000, GiB, 0),
                        worker("c", 1000, GiB, 0), worker("d", 1000, GiB, 0)};
    w[0].load = 3.0;
    w[1].load = 0.5;
    w[1].idle_since_us = 2000;
    w[2].load = 0.5;
    w[2].idle_since_us = 1000; /* idle longer than b */
    w[3].load = 1.0;
    match_job j[] = {job("1", 0, 0, 0, 0), job("2", 0, 0, 0, 0), job("3", 0, 0, 0, 0),
                     job("4", 0, 0, 0, 0)};
    cr_expect_str_eq(solve(&c, LEAST, j, 4, w, 4), "c,b,d,a");
}

Test(match_strategy, priority_gives_the_most_capable_workers_to_the_first_jobs)
{
    solve_ctx c = {0};
    match_worker w[] = {worker("small", 1000, GiB, 0), worker("gpu", 8000, 32 * GiB, 1),
                        worker("mid", 4000, 8 * GiB, 0)};
    /* jobs arrive in priority order, as the pass reads them */
    match_job j[] = {job("high", 100, 500, 0, 0), job("normal", 0, 500, 0, 0),
                     job("low", -5, 500, 0, 0)};
    cr_expect_str_eq(solve(&c, PRIO, j, 3, w, 3), "gpu,mid,small");
    cr_expect_str_eq(solve(&c, LEAST, j, 3, w, 3), "gpu,mid,small",
                     "(least-loaded with equal loads goes by id)");
}

Test(match_strategy, resource_aware_picks_the_best_fit)
{
    solve_ctx c = {0};
    match_worker w[] = {worker("huge", 16000, 64 * GiB, 0), worker("snug", 2000, 4 * GiB, 0),
                        worker("tesla", 2000, 2 * GiB, 1)};
    match_job j[] = {job("plain", 0, 2000, 2 * GiB, 0), job("cuda", 0, 1000, GiB, 1),
                     job("other", 0, 1000, 0, 0)};
    cr_expect_str_eq(solve(&c, FIT, j, 3, w, 3), "snug,tesla,huge",
                     "the GPU worker is kept for the GPU job");
    cr_expect_str_eq(solve(&c, PRIO, j, 3, w, 3), "tesla,-,huge",
                     "priority would have spent the GPU on the first job");
}

Test(match_strategy, cost_optimized_takes_the_cheapest_provider_then_best_fit)
{
    solve_ctx c = {0};
    match_worker w[] = {worker("a-dear", 1000, GiB, 0), worker("b-cheap-big", 8000, 8 * GiB, 0),
                        worker("c-cheap", 1000, GiB, 0)};
    w[0].cost_per_hour = 5.0;
    w[1].cost_per_hour = 0.25;
    w[2].cost_per_hour = 0.25;
    match_job j[] = {job("1", 0, 500, 0, 0), job("2", 0, 500, 0, 0), job("3", 0, 500, 0, 0)};
    cr_expect_str_eq(solve(&c, COST, j, 3, w, 3), "c-cheap,b-cheap-big,a-dear");
}

Test(match_strategy, constraints_route_a_job_to_the_only_worker_with_the_label)
{
    match_worker w[] = {worker("a", 1000, GiB, 0), worker("b", 1000, GiB, 0),
                        worker("c", 1000, GiB, 0)};
    labels(&w[1].fit.labels, "{\"disk\": \"ssd\"}");
    labels(&w[2].fit.labels, "{\"disk\": \"hdd\"}");
    match_job j[] = {job("1", 0, 0, 0, 0)};
    labels(&j[0].fit.constraints, "{\"disk\": \"ssd\"}");
    Hodei__V1__SchedulingStrategy all[] = {RR, LEAST, PRIO, FIT, COST};
    for (size_t s = 0; s < 5; s++) {
        solve_ctx c = {0};
        cr_expect_str_eq(solve(&c, all[s], j, 1, w, 3), "b", "strategy %d", (int)all[s]);
    }
}

/* Every strategy, on pseudo-random tables: a worker gets at most one job,
 * only a job it fits, and a job is left without a worker only when every
 * worker that fits it was given to an earlier job. */
Test(match_strategy, invariants_hold_on_random_tables)
{
    Hodei__V1__SchedulingStrategy all[] = {RR, LEAST, PRIO, FIT, COST};
    static char ids[T_MAX][8];
    uint32_t seed = 12345;
    for (int round = 0; round < 200; round++) {
        match_job j[T_MAX];
        match_worker w[T_MAX];
        size_t nj = 1 + round % T_MAX, nw = 1 + (round * 7) % T_MAX;
        for (size_t i = 0; i < T_MAX; i++) {
            snprintf(ids[i], sizeof ids[i], "w%02zu", i);
            seed = seed * 1103515245u + 12345u;
            w[i] = worker(ids[i], (seed >> 8) % 4 * 1000, (seed >> 12) % 3 * GiB, (seed >> 16) % 2);
            w[i].cost_per_hour = (double)((seed >> 20) % 4);
            w[i].load = (double)((seed >> 24) % 3);
            seed = seed * 1103515245u + 12345u;
            j[i] =
                job("j", 0, (seed >> 8) % 4 * 1000, (seed >> 12) % 3 * GiB, (seed >> 16) % 4 == 0);
        }
        for (size_t s = 0; s < 5; s++) {
            solve_ctx c = {0};
            solve(&c, all[s], j, nj, w, nw);
            bool used[T_MAX] = {0};
            for (size_t i = 0; i < nj; i++) {
                int a = c.assign[i];
                if (a >= 0) {
                    cr_assert_not(used[a], "worker given twice");
                    cr_assert(hodei_fit(&j[i].fit, &w[a].fit),
                              "assigned a worker that does not fit");
                    used[a] = true;
                    continue;
                }
                for (size_t k = 0; k < nw; k++)
                    cr_assert(!hodei_fit(&j[i].fit, &w[k].fit) || c.taken[k],
                              "job %zu left waiting beside a free fitting worker", i);
            }
        }
    }
}

/* The edge accepts HODEI_LABELS_MAX constraints (and worker labels): the
 * scheduler parses exactly as many, and refuses one more. */
static void labels_json(char *out, size_t cap, int n)
{
    size_t len = (size_t)snprintf(out, cap, "{");
    for (int i = 0; i < n; i++)
        len +=
            (size_t)snprintf(out + len, cap - len, "%s\"key%d\": \"value%d\"", i ? ", " : "", i, i);
    snprintf(out + len, cap - len, "}");
}

Test(match_labels, parses_exactly_as_many_as_the_edge_accepts)
{
    cr_assert_eq(HODEI_FIT_LABELS_MAX, HODEI_LABELS_MAX);
    static char json[HODEI_LABELS_MAX * 40 + 64];
    hodei_fit_labels l;
    labels_json(json, sizeof json, HODEI_LABELS_MAX);
    cr_assert(hodei_fit_labels_parse(json, strlen(json), &l), "%d labels refused",
              HODEI_LABELS_MAX);
    cr_assert_eq(l.n, HODEI_LABELS_MAX);
    labels_json(json, sizeof json, HODEI_LABELS_MAX + 1);
    cr_assert_not(hodei_fit_labels_parse(json, strlen(json), &l));
}
