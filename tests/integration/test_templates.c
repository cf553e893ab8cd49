/* TemplateService on a real job-api: create, replace (version + 1), get,
 * list in pages, run with parameters (the job queued with the values put
 * in, idempotent by key), and bad requests refused naming the field with
 * nothing written. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/util.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/template.pb-c.h"

#define SVC "/hodei.v1.TemplateService/"
#define MSG_MAX 512

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

TestSuite(templates, .init = setup, .fini = teardown, .timeout = 120);

static hodei_grpc_code call(const char *path, const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                            char *msg)
{
    return edge_call_path(&edge, path, req, resp_desc, resp, msg, MSG_MAX);
}

/* A template running `sh -c script`, with params[0..n). */
typedef struct {
    Hodei__V1__Template t;
    Hodei__V1__JobSpec spec;
    Hodei__V1__ShellCommand cmd;
    char *args[2];
} tpl;

static void tpl_init(tpl *x, const char *name, const char *script, char **params, size_t n)
{
    x->t = (Hodei__V1__Template)HODEI__V1__TEMPLATE__INIT;
    x->spec = (Hodei__V1__JobSpec)HODEI__V1__JOB_SPEC__INIT;
    x->cmd = (Hodei__V1__ShellCommand)HODEI__V1__SHELL_COMMAND__INIT;
    x->args[0] = "-c";
    x->args[1] = (char *)script;
    x->cmd.command = "sh";
    x->cmd.n_args = 2;
    x->cmd.args = x->args;
    x->spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    x->spec.command = &x->cmd;
    x->t.name = (char *)name;
    x->t.spec = &x->spec;
    x->t.parameters = params;
    x->t.n_parameters = n;
}

static hodei_grpc_code create(tpl *x, char *msg, int32_t *version)
{
    Hodei__V1__CreateTemplateRequest req = HODEI__V1__CREATE_TEMPLATE_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    req.template_ = &x->t;
    hodei_grpc_code c = call(SVC "CreateTemplate", &req.base,
                             &hodei__v1__create_template_response__descriptor, &resp, msg);
    if (c == HODEI_GRPC_OK) {
        const Hodei__V1__Template *t = ((Hodei__V1__CreateTemplateResponse *)resp)->template_;
        cr_assert_str_eq(t->name, x->t.name);
        cr_assert_not_null(t->created_at);
        if (version)
            *version = t->version;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return c;
}

static hodei_grpc_code run(const char *name, const char *const *kv, const char *key, char *job_id,
                           char *msg)
{
    Hodei__V1__RunTemplateRequest req = HODEI__V1__RUN_TEMPLATE_REQUEST__INIT;
    Hodei__V1__RunTemplateRequest__ParametersEntry entries[4], *ptrs[4];
    ProtobufCMessage *resp = NULL;
    size_t n = 0;
    for (; kv && kv[2 * n] && n < 4; n++) {
        entries[n] = (Hodei__V1__RunTemplateRequest__ParametersEntry)
            HODEI__V1__RUN_TEMPLATE_REQUEST__PARAMETERS_ENTRY__INIT;
        entries[n].key = (char *)kv[2 * n];
        entries[n].value = (char *)kv[2 * n + 1];
        ptrs[n] = &entries[n];
    }
    req.name = (char *)name;
    req.parameters = ptrs;
    req.n_parameters = n;
    req.idempotency_key = (char *)(key ? key : "");
    hodei_grpc_code c = call(SVC "RunTemplate", &req.base,
                             &hodei__v1__run_template_response__descriptor, &resp, msg);
    if (c == HODEI_GRPC_OK)
        hodei_strlcpy(job_id, ((Hodei__V1__RunTemplateResponse *)resp)->job_id, 37);
    protobuf_c_message_free_unpacked(resp, NULL);
    return c;
}

static int64_t sql(const char *q)
{
    return harness_sql_i64(&stack, q);
}

Test(templates, create_replace_get_and_list_in_pages)
{
    char msg[MSG_MAX];
    char *who[] = {"who"};
    int32_t version = 0;
    tpl a, b, c;
    tpl_init(&a, "greet", "echo hello ${who} from ${HOME}", who, 1);
    a.t.description = "says hello";
    cr_assert_eq(create(&a, msg, &version), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(version, 1);
    a.t.description = "says hello, again";
    cr_assert_eq(create(&a, msg, &version), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(version, 2, "a second CreateTemplate replaces it");
    tpl_init(&b, "alpha", "true", NULL, 0);
    tpl_init(&c, "zulu", "true", NULL, 0);
    cr_assert_eq(create(&b, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(create(&c, msg, NULL), HODEI_GRPC_OK, "%s", msg);

    Hodei__V1__GetTemplateRequest get = HODEI__V1__GET_TEMPLATE_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    get.name = "greet";
    cr_assert_eq(call(SVC "GetTemplate", &get.base, &hodei__v1__get_template_response__descriptor,
                      &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    const Hodei__V1__Template *t = ((Hodei__V1__GetTemplateResponse *)resp)->template_;
    cr_assert_str_eq(t->description, "says hello, again");
    cr_assert_eq(t->version, 2);
    cr_assert_eq(t->n_parameters, 1);
    cr_assert_str_eq(t->parameters[0], "who");
    cr_assert_str_eq(t->spec->command->args[1], "echo hello ${who} from ${HOME}");
    protobuf_c_message_free_unpacked(resp, NULL);
    get.name = "nope";
    cr_assert_eq(call(SVC "GetTemplate", &get.base, &hodei__v1__get_template_response__descriptor,
                      NULL, msg),
                 HODEI_GRPC_NOT_FOUND, "%s", msg);

    /* pages of two, in name order */
    Hodei__V1__ListTemplatesRequest list = HODEI__V1__LIST_TEMPLATES_REQUEST__INIT;
    list.page_size = 2;
    cr_assert_eq(call(SVC "ListTemplates", &list.base,
                      &hodei__v1__list_templates_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__ListTemplatesResponse *l = (Hodei__V1__ListTemplatesResponse *)resp;
    cr_assert_eq(l->n_templates, 2);
    cr_assert_str_eq(l->templates[0]->name, "alpha");
    cr_assert_str_eq(l->templates[1]->name, "greet");
    char token[64];
    hodei_strlcpy(token, l->next_page_token, sizeof token);
    cr_assert_str_eq(token, "greet");
    protobuf_c_message_free_unpacked(resp, NULL);
    list.page_token = token;
    cr_assert_eq(call(SVC "ListTemplates", &list.base,
                      &hodei__v1__list_templates_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    l = (Hodei__V1__ListTemplatesResponse *)resp;
    cr_assert_eq(l->n_templates, 1);
    cr_assert_str_eq(l->templates[0]->name, "zulu");
    cr_assert_str_eq(l->next_page_token, "", "the last page");
    protobuf_c_message_free_unpacked(resp, NULL);

    cr_assert_eq(sql("SELECT count(*) FROM audit_log WHERE object_type = 'template'"
                     " AND object_id = 'greet' AND action IN ('template.create',"
                     " 'template.replace')"),
                 2);
}

Test(templates, run_puts_the_values_in_and_queues_one_job_per_key)
{
    char msg[MSG_MAX], id[37], again[37], q[256];
    char *params[] = {"who", "times"};
    tpl a;
    tpl_init(&a, "greet", "for i in $(seq ${times}); do echo hello ${who} from ${HOME}; done",
             params, 2);
    a.spec.name = "greet ${who}";
    cr_assert_eq(create(&a, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    const char *kv[] = {"who", "world", "times", "3", NULL};
    cr_assert_eq(run("greet", kv, "run-1", id, msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(run("greet", kv, "run-1", again, msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_str_eq(again, id, "the same idempotency key: the same job");

    Hodei__V1__GetJobStatusRequest get = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    get.job_id = id;
    cr_assert_eq(edge_call(&edge, "GetJobStatus", &get.base,
                           &hodei__v1__get_job_status_response__descriptor, &resp, msg, MSG_MAX),
                 HODEI_GRPC_OK, "%s", msg);
    const Hodei__V1__Job *j = ((Hodei__V1__GetJobStatusResponse *)resp)->job;
    cr_assert_str_eq(j->spec->name, "greet world");
    cr_assert_str_eq(j->spec->command->args[1],
                     "for i in $(seq 3); do echo hello world from ${HOME}; done",
                     "declared parameters filled in, the shell's ${HOME} left alone");
    cr_assert_str_eq(j->idempotency_key, "run-1");
    protobuf_c_message_free_unpacked(resp, NULL);
    snprintf(q, sizeof q, "SELECT count(*) FROM jobs WHERE id = '%s' AND state = 'PENDING'", id);
    cr_assert_eq(sql(q), 1);
    cr_assert_eq(sql("SELECT count(*) FROM jobs"), 1);
}

Test(templates, bad_requests_name_the_field_and_change_nothing)
{
    char msg[MSG_MAX], id[37];
    char *who[] = {"who"}, *bad_param[] = {"1x"}, *twice[] = {"who", "who"},
         *unused[] = {"who", "when"};
    tpl a;
    struct {
        const char *name, *script;
        char **params;
        size_t n;
        const char *want;
    } bad[] = {
        {"Bad Name", "echo ${who}", who, 1, "template.name: must be"},
        {"ok", "echo ${1x}", bad_param, 1, "template.parameters: '1x' is not a name"},
        {"ok", "echo ${who}", twice, 2, "template.parameters: 'who' twice"},
        {"ok", "echo ${who}", unused, 2,
         "template.parameters: 'when' appears nowhere in the spec as ${when}"},
        {"ok", "true", NULL, 0, "template.spec.priority"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tpl_init(&a, bad[i].name, bad[i].script, bad[i].params, bad[i].n);
        if (i == 4)
            a.spec.priority = 5000; /* past the spec's own limits */
        cr_assert_eq(create(&a, msg, NULL), HODEI_GRPC_INVALID_ARGUMENT, "case %zu: %s", i, msg);
        cr_assert(strstr(msg, bad[i].want), "case %zu: want '%s' in '%s'", i, bad[i].want, msg);
    }
    Hodei__V1__CreateTemplateRequest empty = HODEI__V1__CREATE_TEMPLATE_REQUEST__INIT;
    cr_assert_eq(call(SVC "CreateTemplate", &empty.base,
                      &hodei__v1__create_template_response__descriptor, NULL, msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "template: required"), "%s", msg);
    cr_assert_eq(sql("SELECT count(*) FROM templates"), 0, "nothing written");

    tpl_init(&a, "greet", "echo ${who}", who, 1);
    cr_assert_eq(create(&a, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    const char *none[] = {NULL};
    const char *extra[] = {"who", "x", "what", "y", NULL};
    const char *ok[] = {"who", "x", NULL};
    cr_assert_eq(run("greet", none, NULL, id, msg), HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "parameters: 'who' is required by template greet"), "%s", msg);
    cr_assert_eq(run("greet", extra, NULL, id, msg), HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "parameters: 'what' is not a parameter of template greet"), "%s", msg);
    cr_assert_eq(run("nope", ok, NULL, id, msg), HODEI_GRPC_NOT_FOUND, "%s", msg);
    cr_assert_eq(run("", ok, NULL, id, msg), HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "name: must be"), "%s", msg);
    cr_assert_eq(run("greet", ok, "bad key with spaces", id, msg), HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "idempotency_key"), "%s", msg);
    Hodei__V1__ListTemplatesRequest list = HODEI__V1__LIST_TEMPLATES_REQUEST__INIT;
    list.page_size = -1;
    cr_assert_eq(call(SVC "ListTemplates", &list.base,
                      &hodei__v1__list_templates_response__descriptor, NULL, msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "page_size"), "%s", msg);
    cr_assert_eq(sql("SELECT count(*) FROM jobs"), 0, "no job queued");
}

/* ---------------------------------------- RunTemplate fills in at most one spec */

/* n copies of "${v}" (caller frees). */
static char *placeholders(size_t n)
{
    char *s = malloc(4 * n + 1);
    cr_assert_not_null(s);
    for (size_t i = 0; i < n; i++)
        memcpy(s + 4 * i, "${v}", 4);
    s[4 * n] = '\0';
    return s;
}

/* The strings RunTemplate fills in share one budget, the largest spec
 * (HODEI_JOB_SPEC_PACKED_MAX): a script and an env value of 40 KiB each
 * once filled in are queued; a script of 800 KiB and an env value of
 * 400 KiB (each string under the budget, together past it) are refused
 * naming it before anything else is checked, and nothing is queued. (The
 * exact boundary: unit_template.) */
Test(templates, run_fills_in_at_most_the_largest_spec)
{
    char msg[MSG_MAX], id[37], *who[] = {"v"};
    char *value = malloc(4097);
    memset(value, 'x', 4096);
    value[4096] = '\0';
    const char *kv[] = {"v", value, NULL};
    static const size_t script_n[2] = {10, 200}, env_n[2] = {10, 100};
    for (int past = 0; past <= 1; past++) {
        tpl a;
        char name[16];
        char *script = placeholders(script_n[past]), *env_value = placeholders(env_n[past]);
        Hodei__V1__JobSpec__EnvEntry env = HODEI__V1__JOB_SPEC__ENV_ENTRY__INIT, *envs[] = {&env};
        snprintf(name, sizeof name, "fill-%d", past);
        tpl_init(&a, name, script, who, 1);
        env.key = "V";
        env.value = env_value;
        a.spec.env = envs;
        a.spec.n_env = 1;
        cr_assert_eq(create(&a, msg, NULL), HODEI_GRPC_OK, "%s", msg);
        hodei_grpc_code code = run(name, kv, NULL, id, msg);
        if (!past) {
            cr_assert_eq(code, HODEI_GRPC_OK, "80 KiB filled in: %s", msg);
        } else {
            cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT, "1.2 MiB filled in: %d %s", code, msg);
            cr_assert(strstr(msg, "parameters: the filled-in spec is over 1048576 bytes"), "%s",
                      msg);
        }
        free(script);
        free(env_value);
    }
    cr_assert_eq(sql("SELECT count(*) FROM jobs"), 1, "only the spec within the budget queued");
    free(value);
}

/* ---------------------------------------- ListTemplates paged by bytes */

static Hodei__V1__ListTemplatesResponse *list_page(int size, const char *token)
{
    Hodei__V1__ListTemplatesRequest req = HODEI__V1__LIST_TEMPLATES_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    req.page_size = size;
    req.page_token = (char *)token;
    cr_assert_eq(call(SVC "ListTemplates", &req.base,
                      &hodei__v1__list_templates_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    return (Hodei__V1__ListTemplatesResponse *)resp;
}

/* Pages through every template under budget, each page as many as fit
 * before the reply (templates and token) would pass it, at least one;
 * every template once, in name order. Returns the first page's count. */
static int page_all(const size_t *sz, int n, size_t tok, size_t budget)
{
    char token[64] = "";
    int seen = 0, first = -1;
    do {
        Hodei__V1__ListTemplatesResponse *l = list_page(1000, token);
        int want = edge_page_model(sz, n, seen, tok, budget);
        cr_assert_eq((int)l->n_templates, want,
                     "page at %d: %zu templates, the budget %zu holds %d", seen, l->n_templates,
                     budget, want);
        size_t packed = protobuf_c_message_get_packed_size(&l->base);
        cr_assert(packed <= budget || l->n_templates == 1, "page at %d: %zu bytes", seen, packed);
        for (size_t i = 0; i < l->n_templates; i++, seen++) {
            char name[16];
            snprintf(name, sizeof name, "t%02d", seen);
            cr_assert_str_eq(l->templates[i]->name, name, "position %d", seen);
        }
        if (first < 0)
            first = (int)l->n_templates;
        hodei_strlcpy(token, l->next_page_token, sizeof token);
        cr_assert_eq(token[0] != '\0', seen < n, "a token exactly while templates remain");
        protobuf_c_message_free_unpacked(&l->base, NULL);
    } while (token[0]);
    cr_assert_eq(seen, n);
    return first;
}

Test(templates, list_pages_end_at_the_reply_byte_budget)
{
    /* in name order; t04 alone is larger than the budget of t00..t02 */
    static const size_t script_len[] = {9000, 3000, 14000, 2000, 60000, 5000, 11000, 800};
    enum { N = sizeof script_len / sizeof script_len[0] };
    static char script[N][61000];
    char name[N][16], msg[MSG_MAX];
    for (int i = 0; i < N; i++) {
        memset(script[i], '#', script_len[i]);
        memcpy(script[i], "true ", 5);
        script[i][script_len[i]] = '\0';
        snprintf(name[i], sizeof name[i], "t%02d", i);
        tpl x;
        tpl_init(&x, name[i], script[i], NULL, 0);
        cr_assert_eq(create(&x, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    }
    size_t sz[N], tok = edge_field_bytes(3);
    Hodei__V1__ListTemplatesResponse *l = list_page(1000, "");
    cr_assert_eq(l->n_templates, N);
    for (int i = 0; i < N; i++)
        sz[i] = edge_field_bytes(protobuf_c_message_get_packed_size(&l->templates[i]->base));
    protobuf_c_message_free_unpacked(&l->base, NULL);

    size_t exact = sz[0] + sz[1] + sz[2] + tok; /* a page exactly at the budget */
    cr_assert_gt(sz[4], exact);
    edge_restart_page_bytes(&stack, &edge, exact);
    cr_assert_eq(page_all(sz, N, tok, exact), 3);
    edge_restart_page_bytes(&stack, &edge, exact - 1);
    cr_assert_eq(page_all(sz, N, tok, exact - 1), 2);
    l = list_page(1, ""); /* page_size still ends a page first */
    cr_assert_eq(l->n_templates, 1);
    cr_assert_str_eq(l->next_page_token, "t00");
    protobuf_c_message_free_unpacked(&l->base, NULL);
}
