/* Who may call what, on a real job-api: every client RPC refuses a call
 * with no key, an unknown key, a malformed one, a revoked one and an
 * expired one (UNAUTHENTICATED), and a key without the method's scope
 * (PERMISSION_DENIED), changing nothing in the database; a revocation on
 * another edge takes effect within auth.cache_ttl; namespaces keep one
 * key's jobs, logs and templates from another's (NOT_FOUND, exactly as for
 * a job that does not exist); KeyService and AuditService; the bootstrap
 * key of hodei-migrate. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/auth.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/audit.pb-c.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/keys.pb-c.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/template.pb-c.h"
#include "hodei/v1/worker.pb-c.h"

#define KEYS "/hodei.v1.KeyService/"
#define JOBS "/hodei.v1.JobExecutionService/"
#define MSG_MAX 512
#define OUT_MAX 8192

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

/* Each case its own database and an emptied NATS of one stack (tests/harness). */
HARNESS_SHARED_SERVERS()

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 300);

/* ------------------------------------------------------------------ helpers */

static hodei_rpc_channel *chan(const edge_handle *e, const char *key)
{
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    hodei_rpc_channel_opts o = {.target = e->target, .api_key = key};
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK, "%s", err.msg);
    return ch;
}

static hodei_grpc_code call(hodei_rpc_channel *ch, const char *path, const ProtobufCMessage *req,
                            const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **resp,
                            char *msg)
{
    return edge_call_on(ch, path, req, resp_desc, resp, msg, MSG_MAX, 20000);
}

typedef struct {
    char key[HODEI_APIKEY_BUF];
    char id[HODEI_ID_BUF];
} made_key;

/* A key made by the stack's admin key. scopes and nss: NULL-ended. */
static made_key make_key(const char *name, const char *const *scopes, const char *const *nss,
                         int64_t expires_us)
{
    hodei_rpc_channel *admin = chan(&edge, stack.api_key);
    Hodei__V1__CreateKeyRequest req = HODEI__V1__CREATE_KEY_REQUEST__INIT;
    Hodei__V1__Timestamp exp = HODEI__V1__TIMESTAMP__INIT;
    req.name = (char *)name;
    req.owner = "test";
    for (; scopes && scopes[req.n_scopes];)
        req.n_scopes++;
    req.scopes = (char **)scopes;
    for (; nss && nss[req.n_namespaces];)
        req.n_namespaces++;
    req.namespaces = (char **)nss;
    if (expires_us) {
        exp.seconds = expires_us / 1000000;
        exp.nanos = (int32_t)(expires_us % 1000000) * 1000;
        req.expires_at = &exp;
    }
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    cr_assert_eq(call(admin, KEYS "CreateKey", &req.base,
                      &hodei__v1__create_key_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "CreateKey %s: %s", name, msg);
    Hodei__V1__CreateKeyResponse *r = (Hodei__V1__CreateKeyResponse *)resp;
    made_key k;
    hodei_strlcpy(k.key, r->secret, sizeof k.key);
    hodei_strlcpy(k.id, r->key->id, sizeof k.id);
    protobuf_c_message_free_unpacked(resp, NULL);
    hodei_rpc_channel_destroy(admin);
    return k;
}

static void revoke(const char *id)
{
    hodei_rpc_channel *admin = chan(&edge, stack.api_key);
    Hodei__V1__RevokeKeyRequest req = HODEI__V1__REVOKE_KEY_REQUEST__INIT;
    req.id = (char *)id;
    char msg[MSG_MAX];
    cr_assert_eq(call(admin, KEYS "RevokeKey", &req.base,
                      &hodei__v1__revoke_key_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "RevokeKey: %s", msg);
    hodei_rpc_channel_destroy(admin);
}

/* One number that changes when any row that a client call could change
 * does: counts and latest times of every such table. */
static int64_t db_state(void)
{
    return harness_sql_i64(
        &stack, "SELECT hashtext(concat_ws('/',"
                " (SELECT count(*) FROM jobs), (SELECT max(updated_at) FROM jobs),"
                " (SELECT count(*) FROM secrets), (SELECT max(updated_at) FROM secrets),"
                " (SELECT count(*) FROM templates), (SELECT max(updated_at) FROM templates),"
                " (SELECT count(*) FROM providers), (SELECT max(updated_at) FROM providers),"
                " (SELECT count(*) FROM scheduler_settings),"
                " (SELECT count(*) FROM api_keys), (SELECT count(revoked_at) FROM api_keys),"
                " (SELECT count(*) FROM audit_log), (SELECT count(*) FROM outbox)))");
}

static const Hodei__V1__WhoAmIRequest empty_req = HODEI__V1__WHO_AM_IREQUEST__INIT;

/* Every method a client calls (not the workers'): the door's own table. */
static void each_client_rule(void (*fn)(const hodei_auth_rule *r, void *ctx), void *ctx)
{
    size_t n = 0;
    const hodei_auth_rule *rules = hodei_auth_rules(&n);
    cr_assert_gt(n, 25, "the table lists every method");
    for (size_t i = 0; i < n; i++)
        if (rules[i].kind == HODEI_AUTH_SCOPE || rules[i].kind == HODEI_AUTH_ANY_KEY)
            fn(&rules[i], ctx);
}

/* ------------------------------------------------------- unauthenticated */

typedef struct {
    hodei_rpc_channel *ch;
    const char *what;
    const char *words; /* expected in the message */
    hodei_grpc_code want;
    int calls;
} refuse_ctx;

static void refuse_one(const hodei_auth_rule *r, void *arg)
{
    refuse_ctx *c = arg;
    char msg[MSG_MAX];
    /* The refusal comes before the request is read: any message will do. */
    hodei_grpc_code code =
        call(c->ch, r->path, &empty_req.base, &hodei__v1__who_am_iresponse__descriptor, NULL, msg);
    cr_expect_eq(code, c->want, "%s with %s: got %s (%s)", r->path, c->what,
                 hodei_grpc_code_str(code), msg);
    cr_expect(strstr(msg, c->words) != NULL, "%s with %s: message %s", r->path, c->what, msg);
    c->calls++;
}

Test(auth, every_client_rpc_refuses_a_missing_unknown_revoked_or_expired_key)
{
    const char *all[] = {"admin", NULL};
    made_key revoked = make_key("to-revoke", all, NULL, 0);
    made_key expiring = make_key("expiring", all, NULL, hodei_wall_us() + 1500000);
    revoke(revoked.id);
    hodei_sleep_ms(1600);
    int64_t before = db_state();
    struct {
        const char *key, *what, *words;
    } cases[] = {
        {NULL, "no key", "no API key"},
        {"hodei_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "an unknown key",
         "API key not recognised"},
        {"not-a-key", "a malformed key", "API key not recognised"},
        {revoked.key, "a revoked key", "was revoked"},
        {expiring.key, "an expired key", "has expired"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        refuse_ctx c = {.ch = chan(&edge, cases[i].key),
                        .what = cases[i].what,
                        .words = cases[i].words,
                        .want = HODEI_GRPC_UNAUTHENTICATED};
        each_client_rule(refuse_one, &c);
        cr_assert_gt(c.calls, 25);
        hodei_rpc_channel_destroy(c.ch);
    }
    cr_assert_eq(db_state(), before, "a refused call changed the database");
    cr_expect(harness_log_contains(&edge.proc, "refused /hodei.v1.JobExecutionService/QueueJob", 0),
              "refusals are logged");
}

/* ------------------------------------------------------------ scopes */

static void denied_one(const hodei_auth_rule *r, void *arg)
{
    refuse_ctx *c = arg;
    if (r->kind != HODEI_AUTH_SCOPE)
        return; /* WhoAmI: any valid key */
    /* A key with every scope but this one (and not admin). */
    const char *scopes[HODEI_SCOPE_COUNT + 1] = {0};
    size_t n = 0;
    for (int i = 0; i < HODEI_SCOPE_COUNT; i++) {
        uint32_t bit = hodei_scope_at(i);
        if (bit != r->scope && bit != HODEI_SCOPE_ADMIN)
            scopes[n++] = hodei_scope_name(bit);
    }
    char name[64];
    snprintf(name, sizeof name, "without-%d", c->calls);
    made_key k = make_key(name, scopes, NULL, 0);
    int64_t before = db_state();
    hodei_rpc_channel *ch = chan(&edge, k.key);
    char msg[MSG_MAX];
    hodei_grpc_code code =
        call(ch, r->path, &empty_req.base, &hodei__v1__who_am_iresponse__descriptor, NULL, msg);
    cr_expect_eq(code, HODEI_GRPC_PERMISSION_DENIED, "%s without %s: got %s (%s)", r->path,
                 hodei_scope_name(r->scope), hodei_grpc_code_str(code), msg);
    cr_expect(strstr(msg, hodei_scope_name(r->scope)) != NULL, "%s: %s", r->path, msg);
    cr_expect_eq(db_state(), before, "%s: a denied call changed the database", r->path);
    hodei_rpc_channel_destroy(ch);
    c->calls++;
}

Test(auth, a_key_without_the_methods_scope_is_denied)
{
    refuse_ctx c = {0};
    each_client_rule(denied_one, &c);
    cr_assert_gt(c.calls, 20);
}

/* --------------------------------------------------------- revocation bound */

Test(auth, a_revocation_reaches_another_edge_within_the_cache_ttl)
{
    edge_handle b;
    edge_start(&stack, &b, (const char *const[]){"HODEI_AUTH_CACHE_TTL=2s", NULL});
    const char *scopes[] = {"jobs:read", NULL};
    made_key k = make_key("short-lived", scopes, NULL, 0);
    hodei_rpc_channel *on_b = chan(&b, k.key);
    Hodei__V1__ListJobsRequest list = HODEI__V1__LIST_JOBS_REQUEST__INIT;
    char msg[MSG_MAX];
    cr_assert_eq(call(on_b, JOBS "ListJobs", &list.base, &hodei__v1__list_jobs_response__descriptor,
                      NULL, msg),
                 HODEI_GRPC_OK, "%s", msg); /* now cached on b */
    int64_t revoked_at = hodei_mono_ms();
    revoke(k.id); /* on the first edge */
    hodei_rpc_channel *on_a = chan(&edge, k.key);
    cr_assert_eq(call(on_a, JOBS "ListJobs", &list.base, &hodei__v1__list_jobs_response__descriptor,
                      NULL, msg),
                 HODEI_GRPC_UNAUTHENTICATED, "the revoking edge refuses at once: %s", msg);
    /* b may answer from its cache until the TTL has passed, never after. */
    hodei_sleep_ms(2000 - (hodei_mono_ms() - revoked_at) + 50);
    cr_assert_eq(call(on_b, JOBS "ListJobs", &list.base, &hodei__v1__list_jobs_response__descriptor,
                      NULL, msg),
                 HODEI_GRPC_UNAUTHENTICATED, "still accepted %lld ms after the revocation: %s",
                 (long long)(hodei_mono_ms() - revoked_at), msg);
    hodei_rpc_channel_destroy(on_a);
    hodei_rpc_channel_destroy(on_b);
    edge_stop(&b);
}

/* --------------------------------------------------------------- namespaces */

static void queue_as(hodei_rpc_channel *ch, const char *ns, const char *idem, char id[37])
{
    edge_job j;
    edge_job_true(&j);
    j.req.namespace_ = (char *)(ns ? ns : "");
    j.req.idempotency_key = (char *)(idem ? idem : "");
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    cr_assert_eq(call(ch, JOBS "QueueJob", &j.req.base, &hodei__v1__queue_job_response__descriptor,
                      &resp, msg),
                 HODEI_GRPC_OK, "QueueJob: %s", msg);
    hodei_strlcpy(id, ((Hodei__V1__QueueJobResponse *)resp)->job_id, 37);
    protobuf_c_message_free_unpacked(resp, NULL);
}

static hodei_grpc_code get_job(hodei_rpc_channel *ch, const char *id, char *msg)
{
    Hodei__V1__GetJobStatusRequest req = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    req.job_id = (char *)id;
    return call(ch, JOBS "GetJobStatus", &req.base, &hodei__v1__get_job_status_response__descriptor,
                NULL, msg);
}

static size_t list_count(hodei_rpc_channel *ch, const char *ns, hodei_grpc_code *code)
{
    Hodei__V1__ListJobsRequest req = HODEI__V1__LIST_JOBS_REQUEST__INIT;
    req.namespace_ = (char *)(ns ? ns : "");
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    *code = call(ch, JOBS "ListJobs", &req.base, &hodei__v1__list_jobs_response__descriptor, &resp,
                 msg);
    size_t n = resp ? ((Hodei__V1__ListJobsResponse *)resp)->n_jobs : 0;
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return n;
}

Test(auth, a_key_cannot_read_follow_or_cancel_another_namespaces_job)
{
    const char *user[] = {"jobs:submit", "jobs:read", "jobs:cancel", "logs:read", NULL};
    const char *ns_a[] = {"team-a", NULL}, *ns_b[] = {"team-b", NULL};
    made_key a = make_key("alice", user, ns_a, 0), b = make_key("bob", user, ns_b, 0);
    hodei_rpc_channel *ca = chan(&edge, a.key), *cb = chan(&edge, b.key);
    hodei_rpc_channel *admin = chan(&edge, stack.api_key);
    char ja[37], jb[37], msg[MSG_MAX], missing_msg[MSG_MAX], sql[512];
    queue_as(ca, NULL, "same-key", ja);
    queue_as(cb, NULL, "same-key", jb);
    cr_assert_str_neq(ja, jb, "idempotency keys are a namespace's own");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM jobs WHERE id = '%s' AND namespace = 'team-a'"
             " AND owner = 'alice' AND owner_key_id = '%s'",
             ja, a.id);
    cr_assert_eq(harness_sql_i64(&stack, sql), 1, "the job records the key that queued it");

    /* Another namespace's job answers exactly as a job that does not exist. */
    char missing[37];
    snprintf(missing, sizeof missing, "%.24s%012d", ja, 0);
    cr_assert_eq(get_job(cb, missing, missing_msg), HODEI_GRPC_NOT_FOUND);
    cr_assert_eq(get_job(cb, ja, msg), HODEI_GRPC_NOT_FOUND);
    cr_assert(strstr(msg, "not found") && strstr(missing_msg, "not found"), "%s | %s", msg,
              missing_msg);
    Hodei__V1__CancelJobRequest cancel = HODEI__V1__CANCEL_JOB_REQUEST__INIT;
    cancel.job_id = ja;
    cr_assert_eq(call(cb, JOBS "CancelJob", &cancel.base,
                      &hodei__v1__cancel_job_response__descriptor, NULL, msg),
                 HODEI_GRPC_NOT_FOUND, "%s", msg);
    Hodei__V1__GetLogsRequest logs = HODEI__V1__GET_LOGS_REQUEST__INIT;
    logs.job_id = ja;
    cr_assert_eq(call(cb, "/hodei.v1.LogStreamService/GetLogs", &logs.base,
                      &hodei__v1__get_logs_response__descriptor, NULL, msg),
                 HODEI_GRPC_NOT_FOUND, "%s", msg);
    Hodei__V1__SubscribeLogsRequest follow = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    follow.job_id = ja;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_open(cb, "/hodei.v1.LogStreamService/SubscribeLogs", &follow.base,
                                       &hodei__v1__log_chunk__descriptor, 20000, &st, &err),
                 HODEI_OK, "%s", err.msg);
    ProtobufCMessage *m = NULL;
    hodei_rpc_result res;
    cr_assert_eq(hodei_rpc_stream_recv(st, 20000, &m, &res, &err), HODEI_OK, "%s", err.msg);
    cr_assert_null(m, "no line of another namespace's job");
    cr_assert_eq(res.code, HODEI_GRPC_NOT_FOUND, "%s", res.message);
    hodei_rpc_stream_destroy(st);

    hodei_grpc_code code;
    cr_assert_eq(list_count(cb, NULL, &code), 1, "bob lists his own job only");
    list_count(cb, "team-a", &code);
    cr_assert_eq(code, HODEI_GRPC_PERMISSION_DENIED);
    edge_job q;
    edge_job_true(&q);
    q.req.namespace_ = "team-a";
    cr_assert_eq(call(cb, JOBS "QueueJob", &q.req.base, &hodei__v1__queue_job_response__descriptor,
                      NULL, msg),
                 HODEI_GRPC_PERMISSION_DENIED, "%s", msg);
    cr_assert(strstr(msg, "namespace team-a") != NULL, "%s", msg);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM jobs"), 2, "nothing queued");

    /* The admin sees both and may cancel either. */
    cr_assert_eq(list_count(admin, NULL, &code), 2);
    cr_assert_eq(get_job(admin, ja, msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(call(admin, JOBS "CancelJob", &cancel.base,
                      &hodei__v1__cancel_job_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "%s", msg);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit_log WHERE action = 'job.cancel' AND object_id = '%s'"
             " AND actor = 'local-admin' AND namespace = 'team-a'",
             ja);
    cr_assert_eq(harness_sql_i64(&stack, sql), 1, "the cancel is audited with its actor");
    hodei_rpc_channel_destroy(ca);
    hodei_rpc_channel_destroy(cb);
    hodei_rpc_channel_destroy(admin);
}

Test(auth, templates_belong_to_a_namespace)
{
    const char *user[] = {"jobs:submit", "jobs:read", "templates:write", NULL};
    const char *ns_a[] = {"team-a", NULL}, *ns_b[] = {"team-b", NULL};
    made_key a = make_key("alice", user, ns_a, 0), b = make_key("bob", user, ns_b, 0);
    hodei_rpc_channel *ca = chan(&edge, a.key), *cb = chan(&edge, b.key);
    Hodei__V1__Template t = HODEI__V1__TEMPLATE__INIT;
    edge_job job;
    edge_job_true(&job);
    t.name = "build";
    t.spec = &job.spec;
    Hodei__V1__CreateTemplateRequest cr = HODEI__V1__CREATE_TEMPLATE_REQUEST__INIT;
    cr.template_ = &t;
    char msg[MSG_MAX];
    cr_assert_eq(call(ca, "/hodei.v1.TemplateService/CreateTemplate", &cr.base,
                      &hodei__v1__create_template_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__GetTemplateRequest get = HODEI__V1__GET_TEMPLATE_REQUEST__INIT;
    get.name = "build";
    cr_assert_eq(call(cb, "/hodei.v1.TemplateService/GetTemplate", &get.base,
                      &hodei__v1__get_template_response__descriptor, NULL, msg),
                 HODEI_GRPC_NOT_FOUND, "%s", msg);
    Hodei__V1__RunTemplateRequest run = HODEI__V1__RUN_TEMPLATE_REQUEST__INIT;
    run.name = "build";
    run.namespace_ = "team-a";
    cr_assert_eq(call(cb, "/hodei.v1.TemplateService/RunTemplate", &run.base,
                      &hodei__v1__run_template_response__descriptor, NULL, msg),
                 HODEI_GRPC_PERMISSION_DENIED, "%s", msg);
    /* bob may have a template of the same name in his own namespace */
    cr_assert_eq(call(cb, "/hodei.v1.TemplateService/CreateTemplate", &cr.base,
                      &hodei__v1__create_template_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "%s", msg);
    run.namespace_ = "";
    ProtobufCMessage *resp = NULL;
    cr_assert_eq(call(ca, "/hodei.v1.TemplateService/RunTemplate", &run.base,
                      &hodei__v1__run_template_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM jobs j JOIN audit_log l ON l.object_id = j.id::text"
             " WHERE j.id = '%s' AND j.namespace = 'team-a' AND l.action = 'template.run'"
             " AND l.actor = 'alice'",
             ((Hodei__V1__RunTemplateResponse *)resp)->job_id);
    protobuf_c_message_free_unpacked(resp, NULL);
    cr_assert_eq(harness_sql_i64(&stack, sql), 1, "a run queues in the template's namespace");
    hodei_rpc_channel_destroy(ca);
    hodei_rpc_channel_destroy(cb);
}

/* ------------------------------------------------------------- KeyService */

Test(auth, keys_are_shown_once_stored_hashed_and_checked_at_the_door)
{
    hodei_rpc_channel *admin = chan(&edge, stack.api_key);
    char msg[MSG_MAX];
    struct {
        const char *name, *scope, *ns, *words;
    } bad[] = {
        {"", "jobs:read", "", "name:"},
        {"a b", "jobs:read", "", "name:"},
        {"ok", "jobs:write", "", "scopes[0]"},
        {"ok", "", "", "scopes:"},
        {"ok", "jobs:read", "Team-A", "namespaces[0]"},
        {"local-admin", "jobs:read", "", "already named local-admin"},
    };
    int64_t before = db_state();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Hodei__V1__CreateKeyRequest req = HODEI__V1__CREATE_KEY_REQUEST__INIT;
        char *scope = (char *)bad[i].scope, *ns = (char *)bad[i].ns;
        req.name = (char *)bad[i].name;
        req.n_scopes = scope[0] ? 1 : 0;
        req.scopes = &scope;
        req.n_namespaces = ns[0] ? 1 : 0;
        req.namespaces = &ns;
        hodei_grpc_code code = call(admin, KEYS "CreateKey", &req.base,
                                    &hodei__v1__create_key_response__descriptor, NULL, msg);
        cr_expect(code == HODEI_GRPC_INVALID_ARGUMENT || code == HODEI_GRPC_ALREADY_EXISTS,
                  "case %zu: %s", i, hodei_grpc_code_str(code));
        cr_expect(strstr(msg, bad[i].words) != NULL, "case %zu: %s", i, msg);
    }
    cr_assert_eq(db_state(), before, "a refused CreateKey changed the database");

    const char *scopes[] = {"jobs:read", NULL};
    made_key k = make_key("reader", scopes, NULL, 0);
    cr_assert(hodei_apikey_well_formed(k.key, strlen(k.key)));
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM api_keys WHERE id = '%s' AND key_hash = sha256('%s'::bytea)",
             k.id, k.key);
    cr_assert_eq(harness_sql_i64(&stack, sql), 1, "stored as its SHA-256");
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM audit_log WHERE position('%s' IN detail::text) > 0"
             " OR position('%s' IN object_id) > 0",
             k.key, k.key);
    cr_assert_eq(harness_sql_i64(&stack, sql), 0, "the key itself is stored nowhere");

    Hodei__V1__ListKeysRequest lr = HODEI__V1__LIST_KEYS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    cr_assert_eq(call(admin, KEYS "ListKeys", &lr.base, &hodei__v1__list_keys_response__descriptor,
                      &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__ListKeysResponse *l = (Hodei__V1__ListKeysResponse *)resp;
    cr_assert_eq(l->n_keys, 2);
    cr_assert_str_eq(l->keys[1]->name, "reader");
    cr_assert_eq(l->keys[1]->n_scopes, 1);
    cr_assert_str_eq(l->keys[1]->namespaces[0], "default");
    protobuf_c_message_free_unpacked(resp, NULL);

    hodei_rpc_channel *reader = chan(&edge, k.key);
    cr_assert_eq(call(reader, KEYS "WhoAmI", &empty_req.base,
                      &hodei__v1__who_am_iresponse__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__WhoAmIResponse *me = (Hodei__V1__WhoAmIResponse *)resp;
    cr_assert_str_eq(me->key->name, "reader");
    cr_assert_str_eq(me->key->id, k.id);
    cr_assert(strncmp(me->peer, "ipv4:127.0.0.1:", 15) == 0, "%s", me->peer);
    protobuf_c_message_free_unpacked(resp, NULL);

    Hodei__V1__RevokeKeyRequest rr = HODEI__V1__REVOKE_KEY_REQUEST__INIT;
    rr.name = "reader";
    cr_assert_eq(call(admin, KEYS "RevokeKey", &rr.base,
                      &hodei__v1__revoke_key_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(call(admin, KEYS "RevokeKey", &rr.base,
                      &hodei__v1__revoke_key_response__descriptor, NULL, msg),
                 HODEI_GRPC_NOT_FOUND, "%s", msg);
    cr_assert_eq(call(reader, KEYS "WhoAmI", &empty_req.base,
                      &hodei__v1__who_am_iresponse__descriptor, NULL, msg),
                 HODEI_GRPC_UNAUTHENTICATED, "revoked on this edge: at once (%s)", msg);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM audit_log WHERE action IN"
                                         " ('key.create', 'key.revoke') AND actor = 'local-admin'"),
                 2);
    hodei_rpc_channel_destroy(reader);
    hodei_rpc_channel_destroy(admin);
}

/* ------------------------------------------------------------- AuditService */

Test(auth, the_audit_log_names_every_change_and_pages)
{
    hodei_rpc_channel *admin = chan(&edge, stack.api_key);
    char id[37], msg[MSG_MAX];
    for (int i = 0; i < 5; i++)
        queue_as(admin, NULL, NULL, id);
    Hodei__V1__QueryAuditRequest q = HODEI__V1__QUERY_AUDIT_REQUEST__INIT;
    q.action = "job.*";
    q.actor = "local-admin";
    q.page_size = 3;
    ProtobufCMessage *resp = NULL;
    cr_assert_eq(call(admin, "/hodei.v1.AuditService/QueryAudit", &q.base,
                      &hodei__v1__query_audit_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__QueryAuditResponse *r = (Hodei__V1__QueryAuditResponse *)resp;
    cr_assert_eq(r->n_entries, 3);
    cr_assert_str_eq(r->entries[0]->object_id, id, "newest first");
    cr_assert_str_eq(r->entries[0]->action, "job.queue");
    cr_assert_str_eq(r->entries[0]->namespace_, "default");
    cr_assert(strncmp(r->entries[0]->peer, "ipv4:127.0.0.1:", 15) == 0);
    cr_assert_neq(r->next_page_token[0], '\0');
    q.page_token = r->next_page_token;
    ProtobufCMessage *resp2 = NULL;
    cr_assert_eq(call(admin, "/hodei.v1.AuditService/QueryAudit", &q.base,
                      &hodei__v1__query_audit_response__descriptor, &resp2, msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__QueryAuditResponse *r2 = (Hodei__V1__QueryAuditResponse *)resp2;
    cr_assert_eq(r2->n_entries, 2);
    cr_assert_str_eq(r2->next_page_token, "");
    protobuf_c_message_free_unpacked(resp, NULL);
    protobuf_c_message_free_unpacked(resp2, NULL);

    Hodei__V1__QueryAuditRequest bad = HODEI__V1__QUERY_AUDIT_REQUEST__INIT;
    bad.page_token = "x";
    cr_assert_eq(call(admin, "/hodei.v1.AuditService/QueryAudit", &bad.base,
                      &hodei__v1__query_audit_response__descriptor, NULL, msg),
                 HODEI_GRPC_INVALID_ARGUMENT, "%s", msg);
    cr_assert(strstr(msg, "page_token") != NULL, "%s", msg);
    hodei_rpc_channel_destroy(admin);
}

/* ---------------------------------------------------------------- bootstrap */

Test(auth, hodei_migrate_makes_the_first_admin_key_once)
{
    char out[OUT_MAX];
    int rc = harness_sh(&stack, out, sizeof out,
                        "\"$HODEI_BIN/hodei-migrate\" --create-admin-key ops 2>/dev/null");
    cr_assert_eq(rc, 0, "%s", out);
    out[strcspn(out, "\n")] = '\0';
    cr_assert(hodei_apikey_well_formed(out, strlen(out)), "stdout holds the key alone: %s", out);
    hodei_rpc_channel *ops = chan(&edge, out);
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    cr_assert_eq(call(ops, KEYS "WhoAmI", &empty_req.base, &hodei__v1__who_am_iresponse__descriptor,
                      &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    cr_assert_str_eq(((Hodei__V1__WhoAmIResponse *)resp)->key->scopes[0], "admin");
    protobuf_c_message_free_unpacked(resp, NULL);
    hodei_rpc_channel_destroy(ops);

    rc = harness_sh(&stack, out, sizeof out,
                    "\"$HODEI_BIN/hodei-migrate\" --create-admin-key ops 2>&1");
    cr_assert_eq(rc, 3, "a second key of that name: exit %d: %s", rc, out);
    cr_assert(strstr(out, "already named ops") != NULL, "%s", out);
    rc = harness_sh(&stack, out, sizeof out,
                    "\"$HODEI_BIN/hodei-migrate\" --create-admin-key ops --replace 2>/dev/null");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM api_keys WHERE name = 'ops'"
                                         " AND revoked_at IS NOT NULL"),
                 1, "--replace revoked the older one");
    rc = harness_sh(&stack, out, sizeof out, "\"$HODEI_BIN/hodei-migrate\" --replace 2>&1");
    cr_assert_eq(rc, 2, "%s", out);
}

/* ------------------------------------------------------------------- the CLI */

Test(auth, the_cli_makes_lists_revokes_keys_and_reads_the_audit_log)
{
    char out[OUT_MAX], key[OUT_MAX];
    const char *srv = edge.target;
    int rc = harness_sh(&stack, key, sizeof key,
                        "\"$HODEI_BIN/hodei\" --server %s keys create ci --scope jobs:submit"
                        " --scope jobs:read --namespace team-a --owner robot 2>/dev/null",
                        srv);
    cr_assert_eq(rc, 0, "%s", key);
    key[strcspn(key, "\n")] = '\0';
    cr_assert(hodei_apikey_well_formed(key, strlen(key)), "the key alone on stdout: %s", key);
    rc = harness_sh(&stack, out, sizeof out,
                    "HODEI_API_KEY=%s \"$HODEI_BIN/hodei\" --server %s whoami", key, srv);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "ci") && strstr(out, "jobs:submit,jobs:read") && strstr(out, "team-a"),
              "%s", out);
    rc = harness_sh(&stack, out, sizeof out,
                    "HODEI_API_KEY=%s \"$HODEI_BIN/hodei\" --server %s submit -- true", key, srv);
    cr_assert_eq(rc, 0, "%s", out);
    rc = harness_sh(&stack, out, sizeof out,
                    "HODEI_API_KEY=%s \"$HODEI_BIN/hodei\" --server %s keys list 2>&1", key, srv);
    cr_assert_eq(rc, 6, "a key without admin: exit 6 (%s)", out);
    cr_assert(strstr(out, "PERMISSION_DENIED") != NULL, "%s", out);
    rc = harness_sh(&stack, out, sizeof out, "\"$HODEI_BIN/hodei\" --server %s keys list", srv);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "local-admin") && strstr(out, "ci"), "%s", out);
    rc = harness_sh(&stack, out, sizeof out,
                    "\"$HODEI_BIN/hodei\" --server %s -o json audit --actor ci --action 'job.*'",
                    srv);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "\"action\":\"job.queue\"") && strstr(out, "\"namespace\":\"team-a\""),
              "%s", out);
    rc =
        harness_sh(&stack, out, sizeof out, "\"$HODEI_BIN/hodei\" --server %s keys revoke ci", srv);
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, "key ci (") && strstr(out, ") revoked"), "%s", out);
    rc = harness_sh(&stack, out, sizeof out,
                    "HODEI_API_KEY=%s \"$HODEI_BIN/hodei\" --server %s jobs 2>&1", key, srv);
    cr_assert_eq(rc, 6, "a revoked key: exit 6 (%s)", out);
    cr_assert(strstr(out, "UNAUTHENTICATED") != NULL, "%s", out);
    rc = harness_sh(&stack, out, sizeof out,
                    "HODEI_API_KEY= \"$HODEI_BIN/hodei\" --server %s jobs 2>&1", srv);
    cr_assert_eq(rc, 6, "no key: exit 6 (%s)", out);
    cr_assert(strstr(out, "no API key") != NULL, "%s", out);
}

/* ------------------------------------------------------------- mutual TLS */

static hodei_rpc_channel *tls_chan(const edge_handle *e, const char *dir, const char *client,
                                   const char *key)
{
    char ca[600], cert[600], pem_key[600];
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert, sizeof cert, "%s/client-%s.pem", dir, client);
    snprintf(pem_key, sizeof pem_key, "%s/client-%s.key", dir, client);
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    hodei_rpc_channel_opts o = {.target = e->target,
                                .tls_ca_file = ca,
                                .tls_cert_file = cert,
                                .tls_key_file = pem_key,
                                .api_key = key};
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK, "%s", err.msg);
    return ch;
}

static hodei_grpc_code register_as(hodei_rpc_channel *ch, const char *worker_id, char *msg)
{
    Hodei__V1__RegisterRequest req = HODEI__V1__REGISTER_REQUEST__INIT;
    req.token = "0000000000000000000000000000000000000000000000000000000000000000";
    req.worker_id = (char *)worker_id;
    req.hostname = "h";
    return call(ch, "/hodei.v1.WorkerAgentService/Register", &req.base,
                &hodei__v1__register_response__descriptor, NULL, msg);
}

Test(auth, a_client_certificate_acts_as_its_key_and_a_worker_certificate_names_its_worker)
{
    char dir[600], worker[HODEI_ID_BUF], out[OUT_MAX], msg[MSG_MAX];
    snprintf(dir, sizeof dir, "%s/pki", stack.state_dir);
    hodei_id_new(worker);
    cr_assert_eq(harness_sh(&stack, out, sizeof out,
                            "'%s/scripts/gen-certs' --out '%s' --server-san IP:127.0.0.1"
                            " --client robot --client stranger --client %s 2>&1",
                            stack.root, dir, worker),
                 0, "gen-certs: %s", out);
    char env_cert[700], env_key[700], env_ca[700];
    snprintf(env_cert, sizeof env_cert, "HODEI_GRPC_TLS_CERT=%s/server.pem", dir);
    snprintf(env_key, sizeof env_key, "HODEI_GRPC_TLS_KEY=%s/server.key", dir);
    snprintf(env_ca, sizeof env_ca, "HODEI_GRPC_TLS_CLIENT_CA=%s/ca.pem", dir);
    const char *env[] = {env_cert, env_key, env_ca, "HODEI_AUTH_WORKER_CERT_CHECK=true", NULL};
    edge_handle m;
    edge_start(&stack, &m, env);

    hodei_rpc_channel *admin = chan(&edge, stack.api_key);
    Hodei__V1__CreateKeyRequest req = HODEI__V1__CREATE_KEY_REQUEST__INIT;
    char *scopes[] = {"jobs:read"};
    req.name = "robot-key";
    req.n_scopes = 1;
    req.scopes = scopes;
    req.cert_name = "robot";
    cr_assert_eq(call(admin, KEYS "CreateKey", &req.base,
                      &hodei__v1__create_key_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "%s", msg);
    hodei_rpc_channel_destroy(admin);

    hodei_rpc_channel *robot = tls_chan(&m, dir, "robot", NULL);
    Hodei__V1__ListJobsRequest list = HODEI__V1__LIST_JOBS_REQUEST__INIT;
    cr_assert_eq(call(robot, JOBS "ListJobs", &list.base,
                      &hodei__v1__list_jobs_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "the certificate acts as its key: %s", msg);
    Hodei__V1__CancelJobRequest cancel = HODEI__V1__CANCEL_JOB_REQUEST__INIT;
    cancel.job_id = worker;
    cr_assert_eq(call(robot, JOBS "CancelJob", &cancel.base,
                      &hodei__v1__cancel_job_response__descriptor, NULL, msg),
                 HODEI_GRPC_PERMISSION_DENIED, "with that key's scopes only: %s", msg);
    ProtobufCMessage *resp = NULL;
    cr_assert_eq(call(robot, KEYS "WhoAmI", &empty_req.base,
                      &hodei__v1__who_am_iresponse__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "%s", msg);
    cr_assert_str_eq(((Hodei__V1__WhoAmIResponse *)resp)->key->name, "robot-key");
    cr_assert_str_eq(((Hodei__V1__WhoAmIResponse *)resp)->key->cert_name, "robot");
    protobuf_c_message_free_unpacked(resp, NULL);

    hodei_rpc_channel *stranger = tls_chan(&m, dir, "stranger", NULL);
    cr_assert_eq(call(stranger, JOBS "ListJobs", &list.base,
                      &hodei__v1__list_jobs_response__descriptor, NULL, msg),
                 HODEI_GRPC_UNAUTHENTICATED, "%s", msg);
    cr_assert(strstr(msg, "not mapped to an API key") != NULL, "%s", msg);
    hodei_rpc_channel *with_key = tls_chan(&m, dir, "stranger", stack.api_key);
    cr_assert_eq(call(with_key, JOBS "ListJobs", &list.base,
                      &hodei__v1__list_jobs_response__descriptor, NULL, msg),
                 HODEI_GRPC_OK, "a key in the call decides: %s", msg);
    snprintf(out, sizeof out, "the client certificate does not name worker %s", worker);
    cr_assert_eq(register_as(stranger, worker, msg), HODEI_GRPC_UNAUTHENTICATED);
    cr_assert(strstr(msg, out) != NULL, "%s", msg);
    hodei_rpc_channel *own = tls_chan(&m, dir, worker, NULL);
    cr_assert_eq(register_as(own, worker, msg), HODEI_GRPC_UNAUTHENTICATED, "no such token");
    cr_assert(strstr(msg, "does not name worker") == NULL, "its own certificate passes: %s", msg);
    hodei_rpc_channel_destroy(robot);
    hodei_rpc_channel_destroy(stranger);
    hodei_rpc_channel_destroy(with_key);
    hodei_rpc_channel_destroy(own);
    edge_stop(&m);
}

/* ------------------------------------------------- streams held by one key */

static void setup_follow_cap(void)
{
    const char *env[] = {"HODEI_LOGS_FOLLOWS_PER_KEY=2", NULL};
    edge_stack_start(&stack, &edge, env);
}

static hodei_rpc_stream *follow_open(hodei_rpc_channel *ch, const char *job)
{
    Hodei__V1__SubscribeLogsRequest req = HODEI__V1__SUBSCRIBE_LOGS_REQUEST__INIT;
    req.job_id = (char *)job;
    hodei_rpc_stream *st = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_open(ch, "/hodei.v1.LogStreamService/SubscribeLogs", &req.base,
                                       &hodei__v1__log_chunk__descriptor, 30000, &st, &err),
                 HODEI_OK, "%s", err.msg);
    return st;
}

/* logs.follows_per_key: one key holds at most that many SubscribeLogs
 * streams; the next is RESOURCE_EXHAUSTED naming the limit, and a closed
 * one makes room. (The job stays PENDING: no worker, so nothing is sent.) */
Test(auth_limits, a_key_holds_at_most_logs_follows_per_key_log_streams, .init = setup_follow_cap,
     .fini = teardown, .timeout = 300)
{
    hodei_rpc_channel *ch = chan(&edge, stack.api_key);
    char job[37];
    queue_as(ch, NULL, NULL, job);
    hodei_rpc_stream *open[2] = {follow_open(ch, job), follow_open(ch, job)};
    hodei_sleep_ms(1500); /* both are held by the edge */
    hodei_rpc_stream *third = follow_open(ch, job);
    ProtobufCMessage *m = NULL;
    hodei_rpc_result res;
    hodei_err err;
    cr_assert_eq(hodei_rpc_stream_recv(third, 20000, &m, &res, &err), HODEI_OK, "%s", err.msg);
    cr_assert_null(m);
    cr_assert_eq(res.code, HODEI_GRPC_RESOURCE_EXHAUSTED, "%s", res.message);
    cr_assert(strstr(res.message, "at most 2: logs.follows_per_key"), "%s", res.message);
    hodei_rpc_stream_destroy(third);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(hodei_rpc_stream_recv(open[i], 200, &m, &res, &err), HODEI_ERR_TIMEOUT,
                     "stream %d still open", i);
    }
    hodei_rpc_stream_destroy(open[0]);
    hodei_sleep_ms(1500); /* the edge saw it close */
    hodei_rpc_stream *again = follow_open(ch, job);
    cr_assert_eq(hodei_rpc_stream_recv(again, 1500, &m, &res, &err), HODEI_ERR_TIMEOUT,
                 "a closed stream makes room (%s)", res.message);
    hodei_rpc_stream_destroy(again);
    hodei_rpc_stream_destroy(open[1]);
    hodei_rpc_channel_destroy(ch);
}
