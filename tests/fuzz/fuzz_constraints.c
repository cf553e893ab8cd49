/* Label and constraint parsing (hodei_fit_labels_parse), as the scheduler
 * reads jobs.constraints and workers.labels. Properties: what it accepts
 * holds at most HODEI_FIT_LABELS_MAX entries whose spans lie inside the
 * input; a refusal leaves nothing; a worker whose labels are exactly the
 * job's constraints fits that job (hodei_fit). */
#include <string.h>

#include "fuzz.h"
#include "hodei/fit.h"

static void check_span(const hodei_fit_span *s, const char *in, size_t size)
{
    FUZZ_CHECK(s->p >= in && s->len <= size && (size_t)(s->p - in) <= size - s->len,
               "span outside the input");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    hodei_fit_labels labels;
    memset(&labels, 0xa5, sizeof labels);
    if (!hodei_fit_labels_parse(in, size, &labels)) {
        FUZZ_CHECK(labels.n == 0, "refused but %zu entries left", labels.n);
        return 0;
    }
    FUZZ_CHECK(labels.n <= HODEI_FIT_LABELS_MAX, "%zu entries", labels.n);
    for (size_t i = 0; i < labels.n; i++) {
        check_span(&labels.key[i], in, size);
        check_span(&labels.value[i], in, size);
    }
    hodei_fit_job job = {.need = {.architecture = ""}, .provider = "", .image = ""};
    hodei_fit_worker worker = {.cap = {.architecture = ""}, .provider = "p", .image = ""};
    job.constraints = labels;
    worker.labels = labels;
    FUZZ_CHECK(hodei_fit(&job, &worker), "a worker with the job's constraints as labels misfits");
    return 0;
}
