/* libs/pbjson: the proto3 JSON mapping on the product's own messages. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/pbjson.h"
#include "hodei/v1/common.pb-c.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/provider.pb-c.h"

/* Decodes text as desc; asserts success. */
static ProtobufCMessage *must_decode(const ProtobufCMessageDescriptor *desc, const char *text)
{
    ProtobufCMessage *m = NULL;
    hodei_err err = {0};
    hodei_status st = hodei_pbjson_decode_text(desc, text, strlen(text), &m, &err);
    cr_assert_eq(st, HODEI_OK, "decode %s: %s", text, err.msg);
    cr_assert_not_null(m);
    return m;
}

/* Decodes text as desc; asserts failure with a message starting with want. */
static void must_refuse(const ProtobufCMessageDescriptor *desc, const char *text, const char *want)
{
    ProtobufCMessage *m = NULL;
    hodei_err err = {0};
    hodei_status st = hodei_pbjson_decode_text(desc, text, strlen(text), &m, &err);
    cr_assert_eq(st, HODEI_ERR_INVALID, "decode %s: accepted", text);
    cr_assert_null(m);
    cr_assert(strncmp(err.msg, want, strlen(want)) == 0, "decode %s: got '%s', want '%s...'", text,
              err.msg, want);
}

Test(pbjson, json_names_follow_protoc)
{
    char out[64];
    hodei_pbjson_json_name("timeout_ms", out, sizeof out);
    cr_assert_str_eq(out, "timeoutMs");
    hodei_pbjson_json_name("from_sequence", out, sizeof out);
    cr_assert_str_eq(out, "fromSequence");
    hodei_pbjson_json_name("id", out, sizeof out);
    cr_assert_str_eq(out, "id");
    hodei_pbjson_json_name("a_b_c", out, 3);
    cr_assert_str_eq(out, "aB");
}

Test(pbjson, maps_are_recognised)
{
    const ProtobufCMessageDescriptor *d = &hodei__v1__job_spec__descriptor;
    cr_assert(hodei_pbjson_is_map(d, hodei_pbjson_field(d, "env")));
    cr_assert(hodei_pbjson_is_map(d, hodei_pbjson_field(d, "labels")));
    cr_assert_not(hodei_pbjson_is_map(d, hodei_pbjson_field(d, "inputs")));
    cr_assert_not(hodei_pbjson_is_map(d, hodei_pbjson_field(d, "secret_refs")));
    cr_assert_eq(hodei_pbjson_field(d, "timeoutMs"), hodei_pbjson_field(d, "timeout_ms"));
    cr_assert_null(hodei_pbjson_field(d, "timeoutms"));
}

Test(pbjson, a_job_spec_round_trips)
{
    const char *in =
        "{\"spec\":{\"name\":\"build\",\"command\":{\"command\":\"sh\",\"args\":[\"-c\","
        "\"echo hi\"]},\"env\":{\"A\":\"1\",\"B\":\"two\"},\"resources\":{\"cpu_cores\":"
        "0.5,\"memoryBytes\":\"1073741824\"},\"timeoutMs\":\"90000\",\"priority\":-5,"
        "\"max_attempts\":\"3\"},\"idempotencyKey\":\"k-1\"}";
    Hodei__V1__QueueJobRequest *r =
        (Hodei__V1__QueueJobRequest *)must_decode(&hodei__v1__queue_job_request__descriptor, in);
    cr_assert_str_eq(r->idempotency_key, "k-1");
    cr_assert_str_eq(r->spec->name, "build");
    cr_assert_eq(r->spec->payload_case, HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND);
    cr_assert_str_eq(r->spec->command->command, "sh");
    cr_assert_eq(r->spec->command->n_args, 2);
    cr_assert_str_eq(r->spec->command->args[1], "echo hi");
    cr_assert_eq(r->spec->n_env, 2);
    cr_assert_eq(r->spec->timeout_ms, 90000);
    cr_assert_eq(r->spec->priority, -5);
    cr_assert_eq(r->spec->max_attempts, 3);
    cr_assert_eq(r->spec->resources->memory_bytes, 1073741824LL);
    cr_assert_float_eq(r->spec->resources->cpu_cores, 0.5, 1e-9);

    char *out = hodei_pbjson_encode_text(&r->base);
    cr_assert_not_null(out);
    cr_assert_str_eq(out,
                     "{\"spec\":{\"name\":\"build\",\"command\":{\"command\":\"sh\",\"args\":["
                     "\"-c\",\"echo hi\"]},\"env\":{\"A\":\"1\",\"B\":\"two\"},\"resources\":{"
                     "\"cpuCores\":0.5,\"memoryBytes\":\"1073741824\"},\"timeoutMs\":\"90000\","
                     "\"priority\":-5,\"maxAttempts\":3},\"idempotencyKey\":\"k-1\"}");
    free(out);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

Test(pbjson, defaults_are_left_out_and_a_set_oneof_member_is_kept)
{
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__Script script = HODEI__V1__SCRIPT__INIT;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    spec.script = &script;
    char *out = hodei_pbjson_encode_text(&spec.base);
    cr_assert_str_eq(out, "{\"script\":{}}");
    free(out);
    Hodei__V1__JobSpec empty = HODEI__V1__JOB_SPEC__INIT;
    out = hodei_pbjson_encode_text(&empty.base);
    cr_assert_str_eq(out, "{}");
    free(out);
}

Test(pbjson, enums_bytes_and_uint64)
{
    const char *in = "{\"sequence\":\"18446744073709551615\",\"stream\":\"LOG_STREAM_STDERR\","
                     "\"data\":\"aGk\\u003d\",\"epoch\":7}";
    Hodei__V1__LogLine *l = (Hodei__V1__LogLine *)must_decode(&hodei__v1__log_line__descriptor, in);
    cr_assert_eq(l->sequence, UINT64_MAX);
    cr_assert_eq(l->stream, HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR);
    cr_assert_eq(l->data.len, 2);
    cr_assert_eq(memcmp(l->data.data, "hi", 2), 0);
    cr_assert_eq(l->epoch, 7);
    char *out = hodei_pbjson_encode_text(&l->base);
    cr_assert_str_eq(out, "{\"sequence\":\"18446744073709551615\",\"stream\":\"LOG_STREAM_STDERR\","
                          "\"data\":\"aGk=\",\"epoch\":\"7\"}");
    free(out);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    /* URL-safe base64 without padding, an enum by number. */
    l = (Hodei__V1__LogLine *)must_decode(&hodei__v1__log_line__descriptor,
                                          "{\"data\":\"-_8\",\"stream\":1}");
    cr_assert_eq(l->data.len, 2);
    cr_assert_eq(l->data.data[0], 0xfb);
    cr_assert_eq(l->data.data[1], 0xff);
    cr_assert_eq(l->stream, 1);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

Test(pbjson, repeated_enums_by_name)
{
    Hodei__V1__ListJobsRequest *r = (Hodei__V1__ListJobsRequest *)must_decode(
        &hodei__v1__list_jobs_request__descriptor,
        "{\"states\":[\"JOB_STATE_RUNNING\",\"JOB_STATE_PENDING\"],\"pageSize\":10}");
    cr_assert_eq(r->n_states, 2);
    cr_assert_eq(r->states[0], HODEI__V1__JOB_STATE__JOB_STATE_RUNNING);
    cr_assert_eq(r->states[1], HODEI__V1__JOB_STATE__JOB_STATE_PENDING);
    cr_assert_eq(r->page_size, 10);
    char *out = hodei_pbjson_encode_text(&r->base);
    cr_assert_str_eq(out,
                     "{\"states\":[\"JOB_STATE_RUNNING\",\"JOB_STATE_PENDING\"],\"pageSize\":10}");
    free(out);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

Test(pbjson, doubles_take_the_special_names)
{
    Hodei__V1__ResourceRequirements *r = (Hodei__V1__ResourceRequirements *)must_decode(
        &hodei__v1__resource_requirements__descriptor, "{\"cpuCores\":\"Infinity\"}");
    cr_assert(isinf(r->cpu_cores));
    char *out = hodei_pbjson_encode_text(&r->base);
    cr_assert_str_eq(out, "{\"cpuCores\":\"Infinity\"}");
    free(out);
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

Test(pbjson, null_is_the_default)
{
    Hodei__V1__QueueJobRequest *r = (Hodei__V1__QueueJobRequest *)must_decode(
        &hodei__v1__queue_job_request__descriptor, "{\"spec\":null,\"idempotency_key\":null}");
    cr_assert_null(r->spec);
    cr_assert_str_eq(r->idempotency_key, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

Test(pbjson, bad_input_names_the_field)
{
    const ProtobufCMessageDescriptor *q = &hodei__v1__queue_job_request__descriptor;
    must_refuse(q, "{\"spec\":{\"timeoutMs\":\"soon\"}}", "spec.timeout_ms: must be an integer");
    must_refuse(q, "{\"spec\":{\"priority\":1.5}}", "spec.priority: must be an integer");
    must_refuse(q, "{\"spec\":{\"priority\":4294967296}}", "spec.priority: is out of range");
    must_refuse(q, "{\"spec\":{\"command\":{\"args\":[\"a\",2]}}}",
                "spec.command.args[1]: must be a string");
    must_refuse(q, "{\"spec\":{\"env\":{\"A\":3}}}", "spec.env[\"A\"]: must be a string");
    must_refuse(q, "{\"spec\":{\"nmae\":\"x\"}}", "spec.nmae: unknown field");
    must_refuse(q, "{\"spec\":{\"command\":{},\"script\":{}}}",
                "spec.script: cannot be set together with command");
    must_refuse(q, "{\"spec\":{\"timeout_ms\":1,\"timeoutMs\":2}}", "spec.timeout_ms: given twice");
    must_refuse(q, "{\"spec\":[]}", "spec: must be an object");
    must_refuse(q, "[]", "request: must be an object");
    must_refuse(q, "{\"spec\":{\"name\":", "request body: not JSON");
    must_refuse(q, "{\"a\":1,\"a\":2}", "request body: not JSON");
    must_refuse(&hodei__v1__list_jobs_request__descriptor, "{\"states\":[\"RUNNING\"]}",
                "states[0]: 'RUNNING' is not a JobState (one of JOB_STATE_UNSPECIFIED");
    must_refuse(&hodei__v1__log_line__descriptor, "{\"sequence\":-1}",
                "sequence: must not be negative");
    must_refuse(&hodei__v1__log_line__descriptor, "{\"data\":\"!!\"}", "data: must be base64");
    must_refuse(&hodei__v1__provider__descriptor, "{\"enabled\":\"yes\"}",
                "enabled: must be true or false");
}

Test(pbjson, query_parameters_meet_the_same_checks)
{
    const ProtobufCMessageDescriptor *d = &hodei__v1__list_jobs_request__descriptor;
    json_t *obj = json_object();
    hodei_err err = {0};
    cr_assert_eq(hodei_pbjson_query_add(d, obj, "states", "JOB_STATE_RUNNING", &err), HODEI_OK);
    cr_assert_eq(hodei_pbjson_query_add(d, obj, "states", "JOB_STATE_FAILED", &err), HODEI_OK);
    cr_assert_eq(hodei_pbjson_query_add(d, obj, "pageSize", "20", &err), HODEI_OK);
    cr_assert_eq(hodei_pbjson_query_add(d, obj, "page_size", "30", &err), HODEI_ERR_INVALID);
    cr_assert_str_eq(err.msg, "page_size: given twice");
    cr_assert_eq(hodei_pbjson_query_add(d, obj, "colour", "red", &err), HODEI_ERR_INVALID);
    cr_assert_str_eq(err.msg, "colour: unknown parameter");
    ProtobufCMessage *m = NULL;
    cr_assert_eq(hodei_pbjson_decode(d, obj, &m, &err), HODEI_OK, "%s", err.msg);
    Hodei__V1__ListJobsRequest *r = (Hodei__V1__ListJobsRequest *)m;
    cr_assert_eq(r->n_states, 2);
    cr_assert_eq(r->states[1], HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(r->page_size, 20);
    protobuf_c_message_free_unpacked(m, NULL);
    json_decref(obj);

    /* Nested fields and maps. */
    obj = json_object();
    const ProtobufCMessageDescriptor *q = &hodei__v1__queue_job_request__descriptor;
    cr_assert_eq(hodei_pbjson_query_add(q, obj, "spec.name", "n", &err), HODEI_OK);
    cr_assert_eq(hodei_pbjson_query_add(q, obj, "spec.labels", "team=infra", &err), HODEI_OK);
    cr_assert_eq(hodei_pbjson_query_add(q, obj, "spec.labels", "tier", &err), HODEI_ERR_INVALID);
    cr_assert_str_eq(err.msg, "spec.labels: expected key=value, got 'tier'");
    cr_assert_eq(hodei_pbjson_query_add(q, obj, "spec.timeoutMs", "x", &err), HODEI_OK);
    cr_assert_eq(hodei_pbjson_decode(q, obj, &m, &err), HODEI_ERR_INVALID);
    cr_assert_str_eq(err.msg, "spec.timeout_ms: must be an integer");
    json_decref(obj);
}

Test(pbjson, invalid_utf8_is_repaired_on_output)
{
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    char bad[] = {'a', (char)0xff, 'b', 0};
    spec.name = bad;
    char *out = hodei_pbjson_encode_text(&spec.base);
    cr_assert_str_eq(out, "{\"name\":\"a\xEF\xBF\xBD"
                          "b\"}");
    free(out);
}
