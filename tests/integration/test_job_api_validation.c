/* Every validation rule of QueueJob, sent through gRPC: the status is
 * INVALID_ARGUMENT, the message names the field, and nothing is written. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/limits.h"
#include "hodei/v1/provider.pb-c.h"

static harness_stack stack;
static edge_handle edge;

static void setup(void)
{
    edge_stack_start(&stack, &edge, NULL);
}

static void teardown(void)
{
    edge_stack_stop(&stack, &edge);
}

/* A valid request, in static storage each mutator may change. */
typedef struct {
    Hodei__V1__QueueJobRequest req;
    Hodei__V1__JobSpec spec;
    Hodei__V1__ShellCommand cmd;
    Hodei__V1__Script script;
    Hodei__V1__ResourceRequirements res;
    Hodei__V1__JobSpec__EnvEntry env[2];
    Hodei__V1__JobSpec__EnvEntry *envp[2];
    Hodei__V1__JobSpec__LabelsEntry label;
    Hodei__V1__JobSpec__LabelsEntry *labelp[1];
    Hodei__V1__JobSpec__ConstraintsEntry cons;
    Hodei__V1__JobSpec__ConstraintsEntry *consp[1];
    Hodei__V1__Artifact art;
    Hodei__V1__Artifact *artp[1];
    char *args[1];
    char *secrets[2];
    char big[2 * 1024 * 1024];
} fixture;

static fixture fx;

static void fixture_build(void)
{
    memset(&fx, 0, sizeof fx);
    hodei__v1__queue_job_request__init(&fx.req);
    hodei__v1__job_spec__init(&fx.spec);
    hodei__v1__shell_command__init(&fx.cmd);
    hodei__v1__script__init(&fx.script);
    hodei__v1__resource_requirements__init(&fx.res);
    fx.args[0] = "hi";
    fx.cmd.command = "echo";
    fx.cmd.n_args = 1;
    fx.cmd.args = fx.args;
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    fx.spec.command = &fx.cmd;
    fx.spec.resources = &fx.res;
    fx.req.spec = &fx.spec;
}

typedef struct {
    const char *name;
    void (*mutate)(void);
    const char *field; /* must appear in the error message */
} bad_case;

static void m_no_spec(void)
{
    fx.req.spec = NULL;
}
static void m_no_payload(void)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD__NOT_SET;
    fx.spec.command = NULL;
}
static void m_empty_command(void)
{
    fx.cmd.command = "";
}
static void m_long_command(void)
{
    memset(fx.big, 'a', 5000);
    fx.big[5000] = 0;
    fx.cmd.command = fx.big;
}
static void m_long_arg(void)
{
    memset(fx.big, 'a', 70000);
    fx.big[70000] = 0;
    fx.args[0] = fx.big;
}
static void m_many_args(void)
{
    static char *many[1100];
    for (int i = 0; i < 1100; i++)
        many[i] = "x";
    fx.cmd.n_args = 1100;
    fx.cmd.args = many;
}
static void m_script_no_interp(void)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = &fx.script;
    fx.script.interpreter = "";
    fx.script.content = "echo hi";
}
static void m_script_empty(void)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = &fx.script;
    fx.script.interpreter = "/bin/sh";
    fx.script.content = "";
}
static void m_long_name(void)
{
    memset(fx.big, 'n', 300);
    fx.big[300] = 0;
    fx.spec.name = fx.big;
}
static void m_bad_utf8_name(void)
{
    fx.spec.name = "bad\xc3";
}
static void m_env_name(void)
{
    hodei__v1__job_spec__env_entry__init(&fx.env[0]);
    fx.env[0].key = "1BAD";
    fx.env[0].value = "v";
    fx.envp[0] = &fx.env[0];
    fx.spec.n_env = 1;
    fx.spec.env = fx.envp;
}
static void m_env_dup(void)
{
    for (int i = 0; i < 2; i++) {
        hodei__v1__job_spec__env_entry__init(&fx.env[i]);
        fx.env[i].key = "HOME";
        fx.env[i].value = "v";
        fx.envp[i] = &fx.env[i];
    }
    fx.spec.n_env = 2;
    fx.spec.env = fx.envp;
}
static void m_cpu_negative(void)
{
    fx.res.cpu_cores = -1;
}
static void m_cpu_nan(void)
{
    fx.res.cpu_cores = NAN;
}
static void m_memory_negative(void)
{
    fx.res.memory_bytes = -5;
}
static void m_gpu(void)
{
    fx.res.gpu_count = 65;
}
static void m_arch(void)
{
    fx.res.architecture = "sparc";
}
static void m_timeout_short(void)
{
    fx.spec.timeout_ms = 10;
}
static void m_timeout_long(void)
{
    fx.spec.timeout_ms = 604800001;
}
static void m_label_key(void)
{
    hodei__v1__job_spec__labels_entry__init(&fx.label);
    fx.label.key = "bad key!";
    fx.label.value = "v";
    fx.labelp[0] = &fx.label;
    fx.spec.n_labels = 1;
    fx.spec.labels = fx.labelp;
}
static void m_constraint_value(void)
{
    hodei__v1__job_spec__constraints_entry__init(&fx.cons);
    memset(fx.big, 'v', 300);
    fx.big[300] = 0;
    fx.cons.key = "zone";
    fx.cons.value = fx.big;
    fx.consp[0] = &fx.cons;
    fx.spec.n_constraints = 1;
    fx.spec.constraints = fx.consp;
}
static void m_artifact_source(void)
{
    hodei__v1__artifact__init(&fx.art);
    fx.art.source = "";
    fx.art.destination = "/tmp/x";
    fx.artp[0] = &fx.art;
    fx.spec.n_inputs = 1;
    fx.spec.inputs = fx.artp;
}
static void m_artifact_dest(void)
{
    hodei__v1__artifact__init(&fx.art);
    fx.art.source = "s3://b/k";
    fx.art.destination = "";
    fx.artp[0] = &fx.art;
    fx.spec.n_outputs = 1;
    fx.spec.outputs = fx.artp;
}
static void m_priority_high(void)
{
    fx.spec.priority = 5000;
}
static void m_priority_low(void)
{
    fx.spec.priority = -1001;
}
static void m_attempts(void)
{
    fx.spec.max_attempts = 101;
}
static void m_attempts_negative(void)
{
    fx.spec.max_attempts = -1;
}
static void m_provider(void)
{
    fx.spec.provider = "Bad_Provider";
}
static void m_image(void)
{
    memset(fx.big, 'i', 600);
    fx.big[600] = 0;
    fx.spec.image = fx.big;
}
static void m_secret_name(void)
{
    fx.secrets[0] = "bad secret";
    fx.spec.n_secret_refs = 1;
    fx.spec.secret_refs = fx.secrets;
}
static void m_secret_dup(void)
{
    fx.secrets[0] = fx.secrets[1] = "db-pass";
    fx.spec.n_secret_refs = 2;
    fx.spec.secret_refs = fx.secrets;
}
static void m_workdir(void)
{
    fx.spec.working_dir = "relative/dir";
}
static void m_idem_space(void)
{
    fx.req.idempotency_key = "has space";
}
static void m_idem_long(void)
{
    memset(fx.big, 'k', 200);
    fx.big[200] = 0;
    fx.req.idempotency_key = fx.big;
}
static void m_spec_too_big(void)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = &fx.script;
    memset(fx.big, 'e', 1024 * 1024 + 10);
    fx.big[1024 * 1024 + 10] = 0;
    fx.script.interpreter = "/bin/sh";
    fx.script.content = fx.big;
}

static const bad_case cases[] = {
    {"no spec", m_no_spec, "spec"},
    {"no payload", m_no_payload, "spec.payload"},
    {"empty command", m_empty_command, "spec.command"},
    {"long command", m_long_command, "spec.command"},
    {"long arg", m_long_arg, "spec.command.args"},
    {"too many args", m_many_args, "spec.command.args"},
    {"script without interpreter", m_script_no_interp, "spec.script.interpreter"},
    {"empty script", m_script_empty, "spec.script.content"},
    {"long name", m_long_name, "spec.name"},
    {"invalid UTF-8 name", m_bad_utf8_name, "spec.name"},
    {"env name", m_env_name, "spec.env"},
    {"duplicate env", m_env_dup, "spec.env"},
    {"negative cpu", m_cpu_negative, "spec.resources.cpu_cores"},
    {"NaN cpu", m_cpu_nan, "spec.resources.cpu_cores"},
    {"negative memory", m_memory_negative, "spec.resources.memory_bytes"},
    {"too many gpus", m_gpu, "spec.resources.gpu_count"},
    {"unknown architecture", m_arch, "spec.resources.architecture"},
    {"timeout too short", m_timeout_short, "spec.timeout_ms"},
    {"timeout too long", m_timeout_long, "spec.timeout_ms"},
    {"label key", m_label_key, "spec.labels"},
    {"constraint value", m_constraint_value, "spec.constraints"},
    {"input source", m_artifact_source, "spec.inputs[0].source"},
    {"output destination", m_artifact_dest, "spec.outputs[0].destination"},
    {"priority too high", m_priority_high, "spec.priority"},
    {"priority too low", m_priority_low, "spec.priority"},
    {"too many attempts", m_attempts, "spec.max_attempts"},
    {"negative attempts", m_attempts_negative, "spec.max_attempts"},
    {"provider name", m_provider, "spec.provider"},
    {"long image", m_image, "spec.image"},
    {"secret name", m_secret_name, "spec.secret_refs"},
    {"duplicate secret", m_secret_dup, "spec.secret_refs"},
    {"relative working dir", m_workdir, "spec.working_dir"},
    {"idempotency key with space", m_idem_space, "idempotency_key"},
    {"long idempotency key", m_idem_long, "idempotency_key"},
    {"spec over 1 MiB", m_spec_too_big, "spec"},
};

Test(validation, every_rule_refused_naming_the_field_and_nothing_written, .init = setup,
     .fini = teardown, .timeout = 180)
{
    char msg[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fixture_build();
        cases[i].mutate();
        hodei_grpc_code code =
            edge_call(&edge, "QueueJob", &fx.req.base, &hodei__v1__queue_job_response__descriptor,
                      NULL, msg, sizeof msg);
        cr_expect_eq(code, HODEI_GRPC_INVALID_ARGUMENT, "%s: code %d (%s)", cases[i].name,
                     (int)code, msg);
        cr_expect(strstr(msg, cases[i].field) != NULL, "%s: message '%s' does not name %s",
                  cases[i].name, msg, cases[i].field);
    }
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM jobs"), 0, "nothing was written");
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM outbox"), 0);

    /* And the valid base request is accepted, so the cases above failed for
     * their one change alone. */
    fixture_build();
    cr_assert_eq(edge_call(&edge, "QueueJob", &fx.req.base,
                           &hodei__v1__queue_job_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
}

Test(validation, malformed_message_is_invalid_argument, .init = setup, .fini = teardown,
     .timeout = 120)
{
    /* The bytes of a GetJobStatusRequest{job_id:"x"} sent as a QueueJob:
     * field 1 of QueueJobRequest is the spec message, and "x" does not parse
     * as one. The edge must refuse it and write nothing. */
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    Hodei__V1__GetJobStatusRequest wrong = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    wrong.job_id = "x";
    cr_assert_eq(hodei_rpc_unary(edge.ch, "/hodei.v1.JobExecutionService/QueueJob", &wrong.base,
                                 &hodei__v1__queue_job_response__descriptor, 10000, &out, &res,
                                 &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_null(out);
    cr_assert_eq(res.code, HODEI_GRPC_INVALID_ARGUMENT, "%s", res.message);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM jobs"), 0);
}

/* GetJobStatus with a job id of id_len bytes: the code and message. */
static hodei_grpc_code status_with_id_len(size_t id_len, char *msg, size_t msg_len)
{
    char *id = malloc(id_len + 1);
    cr_assert(id);
    memset(id, 'a', id_len);
    id[id_len] = '\0';
    Hodei__V1__GetJobStatusRequest req = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    req.job_id = id;
    cr_assert_eq(hodei__v1__get_job_status_request__get_packed_size(&req),
                 1 + 3 + id_len); /* tag, 3-byte length, bytes */
    hodei_grpc_code code =
        edge_call(&edge, "GetJobStatus", &req.base, &hodei__v1__get_job_status_response__descriptor,
                  NULL, msg, msg_len);
    free(id);
    return code;
}

/* Each method has a largest request (services/job-api/edge_limits.c),
 * checked before decoding: at it, the call goes on to its own checks; one
 * byte past it, RESOURCE_EXHAUSTED naming the maximum; a spec-carrying call
 * may be as large as the largest spec, no larger. Nothing is written and the
 * next call is served. */
Test(validation, each_method_refuses_a_request_above_its_maximum, .init = setup, .fini = teardown,
     .timeout = 180)
{
    char msg[512];
    hodei_grpc_code code = status_with_id_len(65536 - 4, msg, sizeof msg);
    cr_expect_neq(code, HODEI_GRPC_RESOURCE_EXHAUSTED, "at the maximum: %s", msg);
    code = status_with_id_len(65536 - 3, msg, sizeof msg);
    cr_expect_eq(code, HODEI_GRPC_RESOURCE_EXHAUSTED, "one past: code %d (%s)", (int)code, msg);
    cr_expect(strstr(msg, "65537 bytes, above this method's maximum of 65536 bytes"), "%s", msg);

    /* QueueJob: a script past the largest spec and its room */
    size_t big = 1024 * 1024 + 64 * 1024 + 16;
    char *content = malloc(big + 1);
    cr_assert(content);
    memset(content, 'e', big);
    content[big] = '\0';
    fixture_build();
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = &fx.script;
    fx.script.interpreter = "/bin/sh";
    fx.script.content = content;
    code = edge_call(&edge, "QueueJob", &fx.req.base, &hodei__v1__queue_job_response__descriptor,
                     NULL, msg, sizeof msg);
    free(content);
    cr_expect_eq(code, HODEI_GRPC_RESOURCE_EXHAUSTED, "code %d (%s)", (int)code, msg);
    cr_expect(strstr(msg, "maximum of 1114112 bytes"), "%s", msg);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM jobs"), 0, "nothing was written");

    fixture_build();
    cr_assert_eq(edge_call(&edge, "QueueJob", &fx.req.base,
                           &hodei__v1__queue_job_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_OK, "the next call is served: %s", msg);
}

/* ------------------------------------------------------------ RegisterProvider's size */

#define PV_ENTRIES_MAX 64     /* PROVIDER_CONFIG_MAX */
#define PV_KEY_MAX 128        /* PROVIDER_CONFIG_KEY_MAX */
#define PV_VALUE_MAX 4096     /* PROVIDER_CONFIG_VALUE_MAX */
#define PV_REQUEST_MAX 275456 /* EDGE_REQUEST_PROVIDER_MAX */
#define PV_ENTRIES (PV_ENTRIES_MAX + 2)

typedef struct {
    Hodei__V1__RegisterProviderRequest req;
    Hodei__V1__Provider p;
    Hodei__V1__ResourceRequirements cap;
    Hodei__V1__Provider__ConfigEntry entries[PV_ENTRIES];
    Hodei__V1__Provider__ConfigEntry *ptrs[PV_ENTRIES];
    char keys[PV_ENTRIES][PV_KEY_MAX + 1];
    char values[PV_ENTRIES][PV_VALUE_MAX + 1];
    char name[HODEI_PROVIDER_NAME_MAX + 1];
} pv_request;

static pv_request pv; /* large: static */

/* A process provider with every field at its largest valid value: a name of
 * 63 bytes, 64 config entries of a 128-byte key and a 4,096-byte value. */
static void pv_build(char first)
{
    memset(&pv, 0, sizeof pv);
    hodei__v1__register_provider_request__init(&pv.req);
    hodei__v1__provider__init(&pv.p);
    hodei__v1__resource_requirements__init(&pv.cap);
    memset(pv.name, 'n', HODEI_PROVIDER_NAME_MAX);
    pv.name[0] = first;
    pv.p.name = pv.name;
    pv.p.type = HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_PROCESS;
    pv.p.max_workers = pv.p.warm_pool_max = HODEI_PROVIDER_WORKERS_MAX;
    pv.p.warm_pool_min = HODEI_PROVIDER_WORKERS_MAX;
    pv.p.idle_ttl_ms = HODEI_PROVIDER_IDLE_TTL_MS_MAX;
    pv.p.cost_per_hour = HODEI_PROVIDER_COST_MAX;
    pv.p.enabled = false;
    pv.cap.cpu_cores = HODEI_CPU_CORES_MAX;
    pv.cap.memory_bytes = pv.cap.storage_bytes = HODEI_RESOURCE_BYTES_MAX;
    pv.cap.gpu_count = HODEI_GPU_COUNT_MAX;
    pv.cap.architecture = "aarch64";
    pv.p.worker_capacity = &pv.cap;
    for (size_t i = 0; i < PV_ENTRIES; i++) {
        hodei__v1__provider__config_entry__init(&pv.entries[i]);
        memset(pv.keys[i], 'k', PV_KEY_MAX);
        snprintf(pv.keys[i] + PV_KEY_MAX - 3, 4, "%03zu", i);
        memset(pv.values[i], 'v', PV_VALUE_MAX);
        pv.entries[i].key = pv.keys[i];
        pv.entries[i].value = pv.values[i];
        pv.ptrs[i] = &pv.entries[i];
    }
    pv.p.config = pv.ptrs;
    pv.p.n_config = PV_ENTRIES_MAX;
    pv.req.provider = &pv.p;
}

static size_t pv_size(void)
{
    return hodei__v1__register_provider_request__get_packed_size(&pv.req);
}

/* Past the entries' cap, the last entry's value cut so the request is
 * exactly `bytes` long. */
static void pv_sized(size_t bytes)
{
    pv.p.n_config = PV_ENTRIES;
    for (size_t len = PV_VALUE_MAX; len > 0; len--) {
        pv.values[PV_ENTRIES - 1][len] = '\0';
        if (pv_size() == bytes)
            return;
    }
    cr_assert(false, "no request of exactly %zu bytes", bytes);
}

static hodei_grpc_code pv_register(char *msg, size_t msg_len)
{
    return edge_call_path(&edge, "/hodei.v1.ProviderManagementService/RegisterProvider",
                          &pv.req.base, &hodei__v1__register_provider_response__descriptor, NULL,
                          msg, msg_len);
}

/* RegisterProvider's largest message is derived from the provider's caps
 * (services/job-api/edge_limits.c): a provider with every cap reached at
 * once is accepted and stored whole; a message one byte past the maximum
 * is refused RESOURCE_EXHAUSTED naming it, and at the maximum it reaches
 * the provider's checks (65 entries: INVALID_ARGUMENT); neither writes
 * anything. */
Test(validation, register_provider_takes_the_largest_valid_config, .init = setup, .fini = teardown,
     .timeout = 180)
{
    char msg[512];
    pv_build('a');
    size_t largest = pv_size();
    cr_assert_gt(largest, 256 * 1024, "the largest valid request is past 256 KiB (%zu)", largest);
    cr_assert_leq(largest, PV_REQUEST_MAX, "and within the maximum (%zu)", largest);
    hodei_grpc_code code = pv_register(msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "%d %s", (int)code, msg);
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM providers p, jsonb_each_text(p.config) e"
             " WHERE p.name = '%s' AND length(e.key) = %d AND length(e.value) = %d",
             pv.name, PV_KEY_MAX, PV_VALUE_MAX);
    cr_assert_eq(harness_sql_i64(&stack, sql), PV_ENTRIES_MAX, "every entry stored whole");
    int64_t audits = harness_sql_i64(
        &stack, "SELECT count(*) FROM audit_log WHERE action = 'provider.register'");
    cr_assert_eq(audits, 1);

    pv_build('b');
    pv_sized(PV_REQUEST_MAX + 1);
    code = pv_register(msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_RESOURCE_EXHAUSTED, "%d %s", (int)code, msg);
    cr_assert(strstr(msg, "275457 bytes, above this method's maximum of 275456 bytes"), "%s", msg);
    pv_build('b');
    pv_sized(PV_REQUEST_MAX);
    code = pv_register(msg, sizeof msg);
    cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT, "%d %s", (int)code, msg);
    cr_assert(strstr(msg, "provider.config: at most 64 entries"), "%s", msg);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM providers WHERE name LIKE 'bn%'"), 0,
                 "nothing was written");
    cr_assert_eq(harness_sql_i64(
                     &stack, "SELECT count(*) FROM audit_log WHERE action = 'provider.register'"),
                 audits, "nothing was audited");
}
