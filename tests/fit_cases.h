/* One table of fit cases (hodei/fit.h), run through the C rule by
 * unit_fit and through the edge's hand-off pick in PostgreSQL (the SQL
 * rule) by the integration test `fit`: the two forms must agree on every
 * row, and with `fits`. Values as the doors accept them (constraints and
 * labels: flat maps of strings, as jsonb prints them). */
#ifndef HODEI_TEST_FIT_CASES_H
#define HODEI_TEST_FIT_CASES_H

#include <stdbool.h>
#include <stdint.h>

#define FIT_GiB (1024LL * 1024 * 1024)

typedef struct {
    int64_t cpu_millis, memory_bytes, storage_bytes, gpu_count;
    const char *architecture;
    const char *provider;
    const char *json;  /* job: constraints; worker: labels */
    const char *image; /* "" = the provider's default worker image */
} fit_case_side;

typedef struct {
    const char *name;
    fit_case_side job;
    fit_case_side worker;
    bool fits;
} fit_case;

#define FIT_W(cpu, mem, arch, prov, labels)                                                        \
    {                                                                                              \
        cpu, mem, 0, 0, arch, prov, labels, ""                                                     \
    }

static const fit_case fit_cases[] = {
    {"asks nothing",
     {0, 0, 0, 0, "", "", "{}", ""},
     FIT_W(2000, 4 * FIT_GiB, "amd64", "process", "{}"),
     true},
    {"exact fit",
     {2000, 4 * FIT_GiB, 0, 0, "", "", "{}", ""},
     FIT_W(2000, 4 * FIT_GiB, "amd64", "process", "{}"),
     true},
    {"cpu short",
     {2001, 0, 0, 0, "", "", "{}", ""},
     FIT_W(2000, 4 * FIT_GiB, "amd64", "process", "{}"),
     false},
    {"memory short",
     {0, 5 * FIT_GiB, 0, 0, "", "", "{}", ""},
     FIT_W(2000, 4 * FIT_GiB, "amd64", "process", "{}"),
     false},
    {"no gpu",
     {0, 0, 0, 1, "", "", "{}", ""},
     FIT_W(2000, 4 * FIT_GiB, "amd64", "process", "{}"),
     false},
    {"gpu covered",
     {0, 0, 0, 2, "", "", "{}", ""},
     {0, 0, 0, 2, "amd64", "process", "{}", ""},
     true},
    {"storage unknown",
     {0, 0, FIT_GiB, 0, "", "", "{}", ""},
     FIT_W(2000, 4 * FIT_GiB, "amd64", "process", "{}"),
     false},
    {"storage covered",
     {0, 0, FIT_GiB, 0, "", "", "{}", ""},
     {2000, 4 * FIT_GiB, 2 * FIT_GiB, 0, "amd64", "process", "{}", ""},
     true},
    {"unknown capacity, no need",
     {0, 0, 0, 0, "", "", "{}", ""},
     FIT_W(0, 0, "", "process", "{}"),
     true},
    {"unknown capacity does not cover a need",
     {1, 0, 0, 0, "", "", "{}", ""},
     FIT_W(0, 0, "", "process", "{}"),
     false},
    {"architecture differs",
     {0, 0, 0, 0, "arm64", "", "{}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process", "{}"),
     false},
    {"architecture equal",
     {0, 0, 0, 0, "arm64", "", "{}", ""},
     FIT_W(1000, FIT_GiB, "arm64", "process", "{}"),
     true},
    {"unknown architecture does not satisfy one asked for",
     {0, 0, 0, 0, "arm64", "", "{}", ""},
     FIT_W(1000, FIT_GiB, "", "process", "{}"),
     false},
    {"provider differs",
     {0, 0, 0, 0, "", "docker", "{}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process", "{}"),
     false},
    {"provider equal",
     {0, 0, 0, 0, "", "docker", "{}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "docker", "{}"),
     true},
    {"one constraint among the labels",
     {0, 0, 0, 0, "", "", "{\"zone\": \"eu-1\"}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process",
           "{\"n\": \"2\", \"gpu\": \"a100\", \"zone\": \"eu-1\"}"),
     true},
    {"every constraint among the labels",
     {0, 0, 0, 0, "", "", "{\"gpu\": \"a100\", \"zone\": \"eu-1\"}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process",
           "{\"n\": \"2\", \"gpu\": \"a100\", \"zone\": \"eu-1\"}"),
     true},
    {"a constraint with another value",
     {0, 0, 0, 0, "", "", "{\"zone\": \"eu-2\"}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process", "{\"zone\": \"eu-1\"}"),
     false},
    {"a missing label",
     {0, 0, 0, 0, "", "", "{\"rack\": \"1\"}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process", "{\"zone\": \"eu-1\"}"),
     false},
    {"constraints on a worker without labels",
     {0, 0, 0, 0, "", "", "{\"zone\": \"eu-1\"}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process", "{}"),
     false},
    {"a value with quotes and escapes",
     {0, 0, 0, 0, "", "", "{\"k\": \"a \\\"b\\\" \\\\ c\"}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process", "{\"k\": \"a \\\"b\\\" \\\\ c\"}"),
     true},
    {"a value that differs only in case",
     {0, 0, 0, 0, "", "", "{\"k\": \"EU\"}", ""},
     FIT_W(1000, FIT_GiB, "amd64", "process", "{\"k\": \"eu\"}"),
     false},
    {"a named image on a default-image worker",
     {0, 0, 0, 0, "", "", "{}", "busybox:1.36"},
     FIT_W(1000, FIT_GiB, "amd64", "docker", "{}"),
     false},
    {"the same image",
     {0, 0, 0, 0, "", "", "{}", "busybox:1.36"},
     {1000, FIT_GiB, 0, 0, "amd64", "docker", "{}", "busybox:1.36"},
     true},
    {"another tag is another image",
     {0, 0, 0, 0, "", "", "{}", "busybox:1.36"},
     {1000, FIT_GiB, 0, 0, "amd64", "docker", "{}", "busybox"},
     false},
    {"a job without an image does not land in a user's image",
     {0, 0, 0, 0, "", "", "{}", ""},
     {1000, FIT_GiB, 0, 0, "amd64", "docker", "{}", "busybox:1.36"},
     false},
    {"everything at once",
     {1500, 2 * FIT_GiB, 0, 0, "amd64", "docker", "{\"zone\": \"eu-1\"}", "alpine:3"},
     {2000, 4 * FIT_GiB, 0, 0, "amd64", "docker", "{\"zone\": \"eu-1\", \"ssd\": \"yes\"}",
      "alpine:3"},
     true},
};

#define FIT_CASES_N (sizeof fit_cases / sizeof fit_cases[0])

#endif
