/* SecretService on a real job-api: SetSecret/ListSecrets/DeleteSecret round
 * trip with audit rows, bad names and values refused (INVALID_ARGUMENT naming
 * the field, nothing written), values sealed at rest, and no master key =
 * FAILED_PRECONDITION. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "edge_client.h"
#include "edge_seal.h"
#include "harness.h"
#include "hodei/buf.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/secret.pb-c.h"

#define SVC "/hodei.v1.SecretService/"
#define MASTER_KEY_ENV                                                                             \
    "HODEI_SECRETS_MASTER_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define SQL_MAX 512
#define MSG_MAX 512
#define OUT_MAX 4096

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

/* ------------------------------------------------------- master key rotation */

#define KEY_1 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define KEY_2 "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
#define KEY_3 "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"

/* Decrypts the stored row (ns, name) with key_hex exactly as the edge does,
 * and compares it with want. */
static bool stored_opens_to(const char *key_hex, const char *ns, const char *name, const char *want)
{
    secrets_keyring kr;
    hodei_err err;
    char q[SQL_MAX], out[2 * SECRETS_SEALED_MAX + 64], aad[SECRETS_AAD_MAX + 1];
    uint8_t sealed[SECRETS_SEALED_MAX], nonce[SECRETS_NONCE_LEN], plain[SECRETS_VALUE_MAX];
    size_t len = 0;
    cr_assert_eq(secrets_keyring_init(&kr, key_hex, "", &err), HODEI_OK);
    snprintf(q, sizeof q,
             "SELECT encode(value, 'hex') || ' ' || encode(nonce, 'hex') || ' ' || key_id"
             " FROM secrets WHERE namespace = '%s' AND name = '%s'",
             ns, name);
    cr_assert_eq(
        harness_sh(&stack, out, sizeof out, "psql -X -qtA \"$HODEI_DATABASE_URL\" -c \"%s\"", q),
        0);
    char *sp1 = strchr(out, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    cr_assert(sp1 && sp2, "row: %s", out);
    *sp1 = *sp2 = '\0';
    char *key_id = sp2 + 1;
    key_id[strcspn(key_id, "\n")] = '\0';
    long n = hodei_hex_decode(out, strlen(out), sealed, sizeof sealed);
    cr_assert_eq(hodei_hex_decode(sp1 + 1, strlen(sp1 + 1), nonce, sizeof nonce),
                 SECRETS_NONCE_LEN);
    secrets_aad(key_id, ns, name, aad);
    bool ok = n > 0 &&
              secrets_open(kr.current.key, aad, nonce, sealed, (size_t)n, plain, &len, &err) ==
                  HODEI_OK &&
              len == strlen(want) && memcmp(plain, want, len) == 0;
    secrets_keyring_wipe(&kr);
    return ok;
}

/* A value as a release before key ids stored it: the name alone as AAD. */
static void insert_legacy(const char *key_hex, const char *name, const char *value)
{
    secrets_keyring kr;
    hodei_err err;
    uint8_t sealed[SECRETS_SEALED_MAX], nonce[SECRETS_NONCE_LEN];
    char q[2 * SECRETS_SEALED_MAX + SQL_MAX], hex[2 * SECRETS_SEALED_MAX + 1],
        nhex[2 * SECRETS_NONCE_LEN + 1];
    cr_assert_eq(secrets_keyring_init(&kr, key_hex, "", &err), HODEI_OK);
    size_t len = strlen(value);
    cr_assert_eq(
        secrets_seal(kr.current.key, name, (const uint8_t *)value, len, nonce, sealed, &err),
        HODEI_OK);
    secrets_keyring_wipe(&kr);
    for (size_t i = 0; i < len + SECRETS_TAG_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", sealed[i]);
    for (size_t i = 0; i < SECRETS_NONCE_LEN; i++)
        snprintf(nhex + 2 * i, 3, "%02x", nonce[i]);
    snprintf(q, sizeof q,
             "INSERT INTO secrets (namespace, name, value, nonce, key_id) VALUES"
             " ('default', '%s', decode('%s', 'hex'), decode('%s', 'hex'), '') RETURNING 1",
             name, hex, nhex);
    cr_assert_eq(harness_sql_i64(&stack, q), 1);
}

static const char *key_id_of(const char *key_hex, char out[SECRETS_KEY_ID_LEN + 1])
{
    secrets_keyring kr;
    hodei_err err;
    cr_assert_eq(secrets_keyring_init(&kr, key_hex, "", &err), HODEI_OK);
    hodei_strlcpy(out, kr.current.id, SECRETS_KEY_ID_LEN + 1);
    secrets_keyring_wipe(&kr);
    return out;
}

static bool wait_sql(const char *q, int64_t want, int64_t timeout_ms)
{
    int64_t until = hodei_mono_ms() + timeout_ms;
    do {
        if (harness_sql_i64(&stack, q) == want)
            return true;
        hodei_sleep_ms(100);
    } while (hodei_mono_ms() < until);
    return false;
}

/* The edge again with other settings, and a channel to it (edge_stop
 * closes the old one). */
static void edge_relaunch(const char *const *env)
{
    hodei_err err;
    edge_launch(&stack, &edge, env);
    hodei_rpc_channel_opts o = {.target = edge.target, .api_key = stack.api_key};
    cr_assert_eq(hodei_rpc_channel_create(&o, &edge.ch, &err), HODEI_OK, "%s", err.msg);
}

/* The procedure the README gives: the new key current with the old one in
 * secrets.old_master_keys; every value (older ones, from before key ids,
 * too) is re-sealed in the background with an audit row; then the old key
 * is retired and every value still opens. */
Test(secrets, master_key_rotation_reseals_every_value, .fini = teardown, .timeout = 300)
{
    char msg[MSG_MAX], id1[SECRETS_KEY_ID_LEN + 1], id2[SECRETS_KEY_ID_LEN + 1], q[SQL_MAX];
    const char *env1[] = {"HODEI_SECRETS_MASTER_KEY=" KEY_1, NULL};
    edge_stack_start(&stack, &edge, env1);
    key_id_of(KEY_1, id1);
    key_id_of(KEY_2, id2);
    cr_assert_eq(set_secret("alpha", "value-one", 9, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(set_secret("beta", "value-two", 9, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    insert_legacy(KEY_1, "legacy", "value-old");
    snprintf(q, sizeof q, "SELECT count(*) FROM secrets WHERE key_id = '%s'", id1);
    cr_assert_eq(harness_sql_i64(&stack, q), 2, "values name the key that sealed them");
    edge_stop(&edge);

    const char *env2[] = {"HODEI_SECRETS_MASTER_KEY=" KEY_2, "HODEI_SECRETS_OLD_MASTER_KEYS=" KEY_1,
                          "HODEI_SECRETS_REKEY_INTERVAL=200ms", NULL};
    edge_relaunch(env2);
    snprintf(q, sizeof q, "SELECT count(*) FROM secrets WHERE key_id <> '%s'", id2);
    cr_assert(wait_sql(q, 0, 60000), "values still under the old key; see %s", edge.proc.log_path);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM audit_log WHERE action ="
                                         " 'secret.rekey' AND actor = 'system'"),
                 3);
    snprintf(q, sizeof q,
             "SELECT count(*) FROM audit_log WHERE action = 'secret.rekey' AND detail->>'to' = '%s'"
             " AND detail->>'from' IN ('%s', '')",
             id2, id1);
    cr_assert_eq(harness_sql_i64(&stack, q), 3);
    cr_assert(stored_opens_to(KEY_2, "default", "alpha", "value-one"));
    cr_assert(stored_opens_to(KEY_2, "default", "legacy", "value-old"));
    cr_assert(!stored_opens_to(KEY_1, "default", "beta", "value-two"), "the old key opens nothing");
    edge_stop(&edge);

    /* Retired: the old key is gone from the configuration; writes go on. */
    const char *env3[] = {"HODEI_SECRETS_MASTER_KEY=" KEY_2, NULL};
    edge_relaunch(env3);
    cr_assert_eq(set_secret("gamma", "value-three", 11, msg, NULL), HODEI_GRPC_OK, "%s", msg);
    cr_assert(stored_opens_to(KEY_2, "default", "beta", "value-two"));
    edge_stop(&edge);

    /* An edge that holds neither key says which key it lacks, and changes nothing. */
    const char *env4[] = {"HODEI_SECRETS_MASTER_KEY=" KEY_3, "HODEI_SECRETS_REKEY_INTERVAL=200ms",
                          NULL};
    edge_relaunch(env4);
    char want[96];
    snprintf(want, sizeof want, "sealed with master key %s, which this edge cannot open", id2);
    cr_assert(harness_log_contains(&edge.proc, want, 30000), "see %s", edge.proc.log_path);
    cr_assert(stored_opens_to(KEY_2, "default", "gamma", "value-three"));
    hodei_rpc_channel_destroy(edge.ch);
    edge.ch = NULL;
    edge_stop(&edge);
    harness_stack_stop(&stack);
    hodei_rpc_global_shutdown();
}

Test(secrets, bad_old_master_keys_stop_the_edge, .timeout = 120)
{
    hodei_rpc_global_init();
    harness_stack_start(&stack);
    char out[OUT_MAX];
    int rc = harness_sh(&stack, out, sizeof out,
                        "HODEI_GRPC_LISTEN=127.0.0.1:0 HODEI_SECRETS_MASTER_KEY=%s"
                        " HODEI_SECRETS_OLD_MASTER_KEYS=%s,abc \"$HODEI_BIN/hodei-job-api\" 2>&1",
                        KEY_2, KEY_1);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(out, "secrets.old_master_keys: key 2 is not 64 hex digits") != NULL, "%s",
              out);
    cr_assert(strstr(out, KEY_1) == NULL, "a key in an error: %s", out);
    harness_stack_stop(&stack);
    hodei_rpc_global_shutdown();
}
