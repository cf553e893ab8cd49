/* libs/domain's fit rule (hodei/fit.h): the shared table of cases
 * (tests/fit_cases.h, which the integration test `fit` also runs through
 * the SQL form), label parsing, and a provider's worker template. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../fit_cases.h"
#include "hodei/fit.h"

static void labels(hodei_fit_labels *l, const char *json)
{
    cr_assert(hodei_fit_labels_parse(json, strlen(json), l), "parse %s", json);
}

Test(fit, every_case_of_the_shared_table)
{
    for (size_t i = 0; i < FIT_CASES_N; i++) {
        const fit_case *c = &fit_cases[i];
        hodei_fit_job j = {.need = {c->job.cpu_millis, c->job.memory_bytes, c->job.storage_bytes,
                                    c->job.gpu_count, c->job.architecture},
                           .provider = c->job.provider,
                           .image = c->job.image};
        hodei_fit_worker w = {.cap = {c->worker.cpu_millis, c->worker.memory_bytes,
                                      c->worker.storage_bytes, c->worker.gpu_count,
                                      c->worker.architecture},
                              .provider = c->worker.provider,
                              .image = c->worker.image};
        labels(&j.constraints, c->job.json);
        labels(&w.labels, c->worker.json);
        cr_expect_eq(hodei_fit(&j, &w), c->fits, "%s", c->name);
    }
}

Test(fit, a_number_is_not_the_string_of_its_digits)
{
    hodei_fit_job j = {.need = {.architecture = ""}, .provider = ""};
    hodei_fit_worker w = {.cap = {.architecture = ""}, .provider = "process"};
    labels(&w.labels, "{\"n\": \"2\"}");
    labels(&j.constraints, "{\"n\": 2}");
    cr_expect_not(hodei_fit(&j, &w));
}

Test(fit_labels, parses_flat_objects_as_postgres_prints_them)
{
    hodei_fit_labels l;
    labels(&l, "{}");
    cr_assert_eq(l.n, 0);
    labels(&l, "{\"gpu\": \"a100\", \"zone\": \"eu-1\"}");
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.key[1].len, 4);
    cr_assert_eq(memcmp(l.key[1].p, "zone", 4), 0);
    cr_assert_eq(memcmp(l.value[1].p, "\"eu-1\"", 6), 0, "values keep their quotes");
    labels(&l, " { \"a\\\"b\" : \"c\\\\\" , \"n\": 2, \"t\": true } ");
    cr_assert_eq(l.n, 3);
    cr_assert_eq(l.key[0].len, 4, "escapes are kept as written");
    cr_assert_eq(l.value[1].len, 1);
}

/* As many labels as the doors accept (HODEI_JOB_LABELS_MAX), not one more. */
static void many_labels(char *out, size_t cap, int n)
{
    size_t len = 0;
    len += (size_t)snprintf(out + len, cap - len, "{");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s\"k%d\": \"v\"", i ? ", " : "", i);
    snprintf(out + len, cap - len, "}");
}

Test(fit_labels, refuses_what_is_not_a_flat_object)
{
    hodei_fit_labels l;
    const char *bad[] = {"",
                         "[]",
                         "{",
                         "{\"a\"}",
                         "{\"a\": }",
                         "{\"a\": {\"b\": \"c\"}}",
                         "{\"a\": [1]}",
                         "{\"a\": \"b\",}",
                         "{\"a\": \"b\"} x",
                         "{\"a\": \"b\", \"a\": \"b\"}",
                         "{\"a\": \"b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_not(hodei_fit_labels_parse(bad[i], strlen(bad[i]), &l), "accepted %s", bad[i]);
        cr_expect_eq(l.n, 0);
    }
    char big[8192];
    many_labels(big, sizeof big, HODEI_FIT_LABELS_MAX);
    cr_expect(hodei_fit_labels_parse(big, strlen(big), &l), "as many as a job may name");
    cr_expect_eq(l.n, HODEI_FIT_LABELS_MAX);
    many_labels(big, sizeof big, HODEI_FIT_LABELS_MAX + 1);
    cr_expect_not(hodei_fit_labels_parse(big, strlen(big), &l), "more than HODEI_FIT_LABELS_MAX");
}

Test(fit_template, zero_is_decided_at_registration)
{
    hodei_fit_resources tmpl = {.cpu_millis = 2000, .architecture = "amd64"};
    hodei_fit_resources need = {.cpu_millis = 1000, .memory_bytes = FIT_GiB, .architecture = ""};
    cr_expect(hodei_fit_template(&need, &tmpl), "memory 0 in the template: unknown yet");
    need.cpu_millis = 4000;
    cr_expect_not(hodei_fit_template(&need, &tmpl), "the template's cpu is too small");
    need.cpu_millis = 0;
    need.architecture = "arm64";
    cr_expect_not(hodei_fit_template(&need, &tmpl));
    tmpl.architecture = "";
    cr_expect(hodei_fit_template(&need, &tmpl));
}
