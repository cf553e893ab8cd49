/* SecretService on a real job-api: SetSecret/ListSecrets/DeleteSecret round
 * trip with audit rows, bad names and values refused (INVALID_ARGUMENT naming
 * the field, nothing written), values sealed at rest, and no master key =
 * FAILED_PRECONDITION. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/util.h"
#include "hodei/v1/secret.pb-c.h"

#define SVC "/hodei.v1.SecretService/"
#define MASTER_KEY_ENV                                                                             \
    "HODEI_SECRETS_MASTER_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SQL_MAX 512
#define MSG_MAX 512

static harness_stack stack;
static edge_handle edge;

/* edge_call names JobExecutionService; this one takes the full path. */
static hodei_grpc_code secret_call(const char *path, const ProtobufCMessage *req,
                                   const ProtobufCMessageDescriptor *resp_desc,
                                   ProtobufCMessage **resp, char *msg)
{
    return edge_call_path(&edge, path, req, resp_desc, resp, msg, MSG_MAX);
}

static void start(bool with_key)
{
    const char *env[] = {MASTER_KEY_ENV, NULL};
    edge_stack_start(&stack, &edge, with_key ? env : NULL);
}

static void setup_key(void)
{
    start(true);
}
static void setup_nokey(void)
{
    start(false);
}

static void teardown(void)
{
    edge_stack_stop(&stack, &edge);
}

static hodei_grpc_code set_secret(const char *name, const void *value, size_t len, char *msg,
                                  bool *created)
{
    Hodei__V1__SetSecretRequest req = HODEI__V1__SET_SECRET_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    req.name = (char *)name;
    req.value.data = (uint8_t *)value;
    req.value.len = len;
    hodei_grpc_code c = secret_call(SVC "SetSecret", &req.base,
                                    &hodei__v1__set_secret_response__descriptor, &resp, msg);
    if (c == HODEI_GRPC_OK) {
        Hodei__V1__SetSecretResponse *r = (Hodei__V1__SetSecretResponse *)resp;
        cr_assert_str_eq(r->name, name);
        cr_assert_not_null(r->updated_at);
        if (created)
            *created = r->created;
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return c;
}

static Hodei__V1__ListSecretsResponse *list_secrets(void)
{
    Hodei__V1__ListSecretsRequest req = HODEI__V1__LIST_SECRETS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    cr_assert_eq(secret_call(SVC "ListSecrets", &req.base,
                             &hodei__v1__list_secrets_response__descriptor, &resp, msg),
                 HODEI_GRPC_OK, "ListSecrets: %s", msg);
    return (Hodei__V1__ListSecretsResponse *)resp;
}

static hodei_grpc_code delete_secret(const char *name, char *msg)
{
    Hodei__V1__DeleteSecretRequest req = HODEI__V1__DELETE_SECRET_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    req.name = (char *)name;
    hodei_grpc_code c = secret_call(SVC "DeleteSecret", &req.base,
                                    &hodei__v1__delete_secret_response__descriptor, &resp, msg);
    protobuf_c_message_free_unpacked(resp, NULL);
    return c;
}

static int64_t sql(const char *fmt, const char *arg)
{
    char q[SQL_MAX];
    snprintf(q, sizeof q, fmt, arg);
    return harness_sql_i64(&stack, q);
}

Test(secrets, round_trip, .init = setup_key, .fini = teardown, .timeout = 120)
{
    char msg[MSG_MAX];
    bool created = false;
    const char *v1 = "p4ss-word-one", *v2 = "second value é";
    cr_assert_eq(set_secret("db-pass", v1, strlen(v1), msg, &created), HODEI_GRPC_OK, "%s", msg);
    cr_assert(created);
    cr_assert_eq(set_secret("api.token_2", "tok!", 4, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(set_secret("db-pass", v2, strlen(v2), msg, &created), HODEI_GRPC_OK, "%s", msg);
    cr_assert_not(created, "a second SetSecret replaces");

    Hodei__V1__ListSecretsResponse *l = list_secrets();
    cr_assert_eq(l->n_secrets, 2);
    cr_assert_str_eq(l->secrets[0]->name, "api.token_2");
    cr_assert_str_eq(l->secrets[1]->name, "db-pass");
    cr_assert_gt(l->secrets[1]->updated_at->seconds, 0);
    protobuf_c_message_free_unpacked(&l->base, NULL);

    /* sealed at rest: neither the plaintext nor the old value is stored */
    cr_assert_eq(sql("SELECT count(*) FROM secrets WHERE position(convert_to('%s', 'UTF8')"
                     " IN value) > 0",
                     "second value"),
                 0);
    cr_assert_eq(sql("SELECT count(*) FROM secrets WHERE name = '%s' AND length(nonce) = 12"
                     " AND length(value) = length(convert_to('second value é', 'UTF8')) + 16",
                     "db-pass"),
                 1);
    cr_assert_eq(sql("SELECT count(*) FROM audit_log WHERE actor = 'local-admin' AND object_id ="
                     " '%s' AND object_type = 'secret' AND namespace = 'default' AND actor_id <> ''"
                     " AND peer LIKE 'ipv4:127.0.0.1:%%'",
                     "db-pass"),
                 2);
    cr_assert_eq(sql("SELECT count(*) FROM audit_log WHERE detail::text LIKE '%%%s%%'", "p4ss"), 0);

    cr_assert_eq(delete_secret("db-pass", msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(delete_secret("db-pass", msg), HODEI_GRPC_NOT_FOUND);
    cr_assert_not_null(strstr(msg, "secret db-pass not found"), "%s", msg);
    cr_assert_eq(sql("SELECT count(*) FROM audit_log WHERE action = '%s'", "secret.delete"), 1);
    l = list_secrets();
    cr_assert_eq(l->n_secrets, 1);
    protobuf_c_message_free_unpacked(&l->base, NULL);
}

typedef struct {
    const char *name;
    const char *value;
    size_t len;
    const char *field;
} bad_set;

Test(secrets, bad_input_refused, .init = setup_key, .fini = teardown, .timeout = 120)
{
    static char big[8193];
    static char long_name[130];
    memset(big, 'x', sizeof big);
    memset(long_name, 'n', sizeof long_name - 1);
    const bad_set cases[] = {
        {"", "v", 1, "name"},       {"has space", "v", 1, "name"},
        {"a/b", "v", 1, "name"},    {long_name, "v", 1, "name"},
        {"ok", "", 0, "value"},     {"ok", big, sizeof big, "value"},
        {"ok", "a\0b", 3, "value"}, {"ok", "bad\xff utf8", 9, "value"},
    };
    char msg[MSG_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(set_secret(cases[i].name, cases[i].value, cases[i].len, msg, NULL),
                     HODEI_GRPC_INVALID_ARGUMENT, "case %zu", i);
        cr_assert_not_null(strstr(msg, cases[i].field), "case %zu: %s", i, msg);
        cr_assert_null(strstr(msg, "bad\xff"), "case %zu echoes the value", i);
    }
    cr_assert_eq(delete_secret("a b", msg), HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert_not_null(strstr(msg, "name"), "%s", msg);
    cr_assert_eq(sql("SELECT count(*) FROM secrets%s", ""), 0);
    cr_assert_eq(sql("SELECT count(*) FROM audit_log WHERE object_type = '%s'", "secret"), 0);
}

/* `hodei secrets` as a user runs it: the value from stdin, never printed. */
Test(secrets, cli_set_list_delete, .init = setup_key, .fini = teardown, .timeout = 120)
{
    char out[MSG_MAX];
    const char *bin = stack.bin, *srv = edge.target;
    cr_assert_eq(harness_sh(&stack, out, sizeof out,
                            "printf 'cli-v4lue\\n' | '%s/hodei' --server %s secrets set cli.key",
                            bin, srv),
                 0, "%s", out);
    cr_assert_str_eq(out, "secret cli.key created\n");
    cr_assert_eq(sql("SELECT count(*) FROM secrets WHERE name = '%s'"
                     " AND length(value) = 9 + 16",
                     "cli.key"),
                 1, "one trailing newline dropped");
    cr_assert_eq(
        harness_sh(&stack, out, sizeof out, "'%s/hodei' --server %s secrets list", bin, srv), 0);
    cr_assert_not_null(strstr(out, "cli.key"), "%s", out);
    cr_assert_null(strstr(out, "cli-v4lue"), "%s", out);
    cr_assert_eq(harness_sh(&stack, out, sizeof out,
                            "'%s/hodei' --server %s secrets delete cli.key", bin, srv),
                 0);
    cr_assert_eq(harness_sh(&stack, out, sizeof out,
                            "'%s/hodei' --server %s secrets delete cli.key 2>&1", bin, srv),
                 4, "%s", out);
    cr_assert_eq(harness_sh(&stack, out, sizeof out,
                            "'%s/hodei' --server %s secrets set 'bad name' </dev/null 2>&1", bin,
                            srv),
                 2, "%s", out);
}

Test(secrets, no_master_key, .init = setup_nokey, .fini = teardown, .timeout = 120)
{
    char msg[MSG_MAX];
    cr_assert_eq(set_secret("db-pass", "value", 5, msg, NULL), HODEI_GRPC_FAILED_PRECONDITION);
    cr_assert_not_null(strstr(msg, "secrets.master_key is not set"), "%s", msg);
    cr_assert_eq(sql("SELECT count(*) FROM secrets%s", ""), 0);
}
