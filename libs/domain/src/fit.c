/* The fit rule (see hodei/fit.h; its SQL form is beside it there). */
#include "hodei/fit.h"

#include <string.h>

static bool fit_span_eq(hodei_fit_span a, hodei_fit_span b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

static bool fit_labels_contain(const hodei_fit_labels *have, hodei_fit_span key,
                               hodei_fit_span value)
{
    for (size_t i = 0; i < have->n; i++) {
        if (fit_span_eq(have->key[i], key))
            return fit_span_eq(have->value[i], value);
    }
    return false;
}

static bool fit_res(int64_t need, int64_t cap)
{
    return need <= 0 || cap >= need;
}

static bool fit_arch(const char *need, const char *have)
{
    return !need || !need[0] || (have && strcmp(need, have) == 0);
}

bool hodei_fit(const hodei_fit_job *job, const hodei_fit_worker *worker)
{
    const hodei_fit_resources *n = &job->need;
    const hodei_fit_resources *c = &worker->cap;

    if (!fit_res(n->cpu_millis, c->cpu_millis) || !fit_res(n->memory_bytes, c->memory_bytes) ||
        !fit_res(n->storage_bytes, c->storage_bytes) || !fit_res(n->gpu_count, c->gpu_count))
        return false;
    if (!fit_arch(n->architecture, c->architecture))
        return false;
    if (job->provider && job->provider[0] &&
        (!worker->provider || strcmp(job->provider, worker->provider) != 0))
        return false;
    if (strcmp(job->image ? job->image : "", worker->image ? worker->image : "") != 0)
        return false;
    for (size_t i = 0; i < job->constraints.n; i++) {
        if (!fit_labels_contain(&worker->labels, job->constraints.key[i],
                                job->constraints.value[i]))
            return false;
    }
    return true;
}

static bool fit_template_res(int64_t need, int64_t tmpl)
{
    return need <= 0 || tmpl <= 0 || tmpl >= need;
}

bool hodei_fit_template(const hodei_fit_resources *need, const hodei_fit_resources *tmpl)
{
    if (!fit_template_res(need->cpu_millis, tmpl->cpu_millis) ||
        !fit_template_res(need->memory_bytes, tmpl->memory_bytes) ||
        !fit_template_res(need->storage_bytes, tmpl->storage_bytes) ||
        !fit_template_res(need->gpu_count, tmpl->gpu_count))
        return false;
    return !tmpl->architecture || !tmpl->architecture[0] ||
           fit_arch(need->architecture, tmpl->architecture);
}
