/* Who may call what: API keys, their scopes and namespaces, the identity a
 * checked call carries, and the one table that says what each gRPC method
 * requires. Pure (no database, no gRPC, no clock), so the edge, the REST
 * door, hodei-migrate's bootstrap and the CLI share one definition.
 *
 * Keys: "hodei_" + 64 lower-case hex digits (32 bytes from OpenSSL's
 * RAND_bytes). Only SHA-256 of the whole text is stored: the key holds 256
 * random bits, so no dictionary or brute force can reverse the hash, and a
 * slow salted hash (made for passwords people choose) would only cost every
 * lookup without adding safety; the plain hash also lets the database find a
 * key by an index on its hash. */
#ifndef HODEI_AUTH_H
#define HODEI_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/id.h"
#include "hodei/status.h"

/* ------------------------------------------------------------------ scopes */

typedef enum {
    HODEI_SCOPE_JOBS_SUBMIT = 1u << 0,     /* QueueJob, RunTemplate */
    HODEI_SCOPE_JOBS_READ = 1u << 1,       /* jobs, templates, workers, providers */
    HODEI_SCOPE_JOBS_CANCEL = 1u << 2,     /* CancelJob */
    HODEI_SCOPE_LOGS_READ = 1u << 3,       /* GetLogs, SubscribeLogs */
    HODEI_SCOPE_TEMPLATES_WRITE = 1u << 4, /* CreateTemplate */
    HODEI_SCOPE_SECRETS_WRITE = 1u << 5,   /* SetSecret, ListSecrets, DeleteSecret */
    HODEI_SCOPE_ADMIN = 1u << 6,           /* every scope, every namespace, keys, audit,
                                              providers, scheduler configuration */
} hodei_scope;

#define HODEI_SCOPE_ALL ((1u << 7) - 1)
#define HODEI_SCOPE_COUNT 7
#define HODEI_SCOPE_NAME_MAX 32

/* "jobs:submit", ...; NULL when bit is not exactly one scope. */
const char *hodei_scope_name(uint32_t bit);
/* The bit of a scope name; false when unknown. */
bool hodei_scope_parse(const char *name, uint32_t *bit);
/* The i-th scope (0..HODEI_SCOPE_COUNT-1), for listing them in order. */
uint32_t hodei_scope_at(int i);

/* -------------------------------------------------------------- names */

#define HODEI_NS_NAME_MAX 63 /* a namespace: [a-z0-9], '-' inside, like a DNS label */
#define HODEI_NS_BUF (HODEI_NS_NAME_MAX + 1)
#define HODEI_NS_PER_KEY_MAX 16 /* namespaces one key may use */
#define HODEI_NS_DEFAULT "default"
#define HODEI_KEY_NAME_MAX 128 /* a key's name: [A-Za-z0-9_.@-] */
#define HODEI_KEY_NAME_BUF (HODEI_KEY_NAME_MAX + 1)
#define HODEI_KEY_OWNER_MAX 256 /* free text, UTF-8, no control characters */
#define HODEI_KEY_OWNER_BUF (HODEI_KEY_OWNER_MAX + 1)
#define HODEI_CERT_SAN_MAX 255 /* a client certificate name mapped to a key */
#define HODEI_CERT_SAN_BUF (HODEI_CERT_SAN_MAX + 1)
#define HODEI_PEER_BUF 128

bool hodei_ns_valid(const char *ns);
/* Field checks at a door; the error names field. */
hodei_status hodei_ns_check(const char *field, const char *ns, hodei_err *err);
hodei_status hodei_key_name_check(const char *field, const char *name, hodei_err *err);
hodei_status hodei_key_owner_check(const char *field, const char *owner, hodei_err *err);
hodei_status hodei_cert_san_check(const char *field, const char *san, hodei_err *err);

/* ----------------------------------------------------------------- keys */

#define HODEI_APIKEY_PREFIX "hodei_"
#define HODEI_APIKEY_RANDOM_LEN 32
#define HODEI_APIKEY_LEN (sizeof HODEI_APIKEY_PREFIX - 1 + 2 * HODEI_APIKEY_RANDOM_LEN)
#define HODEI_APIKEY_BUF (HODEI_APIKEY_LEN + 1)
#define HODEI_APIKEY_HASH_LEN 32 /* SHA-256 */

/* A new key from RAND_bytes; false only when the CSPRNG failed. */
bool hodei_apikey_new(char out[HODEI_APIKEY_BUF]);
/* true when key has the shape of a key (prefix + 64 lower-case hex). */
bool hodei_apikey_well_formed(const char *key, size_t len);
/* SHA-256 of the key text. */
void hodei_apikey_hash(const char *key, size_t len, uint8_t out[HODEI_APIKEY_HASH_LEN]);
/* The token of an "authorization" header value: "Bearer <token>" (scheme in
 * any case, one or more spaces). false when the value is not of that form. */
bool hodei_auth_bearer(const char *header, const char **token, size_t *len);

/* What a new key is to be. Pointers are borrowed. */
typedef struct {
    const char *name;
    const char *owner; /* may be NULL */
    const char *const *namespaces;
    size_t n_namespaces;   /* 0 = ["default"] */
    uint32_t scopes;       /* at least one */
    int64_t expires_at_us; /* 0 = never; else must be after now_us */
    const char *cert_name; /* NULL or "" = none */
} hodei_key_spec;

/* Checks every field at a door; the error names it ("name", "namespaces[1]",
 * "scopes", "expires_at", "cert_name"). now_us: the wall clock. */
hodei_status hodei_key_spec_check(const hodei_key_spec *k, int64_t now_us, hodei_err *err);

/* ------------------------------------------------------------- identity */

typedef enum {
    HODEI_PRINCIPAL_NONE = 0, /* a worker or public method: no key was needed */
    HODEI_PRINCIPAL_KEY,      /* an API key in "authorization: Bearer" */
    HODEI_PRINCIPAL_CERT,     /* a verified client certificate mapped to a key */
} hodei_principal_kind;

/* What a checked call is allowed, and who it is for the audit log. */
typedef struct {
    hodei_principal_kind kind;
    char key_id[HODEI_ID_BUF];
    char name[HODEI_KEY_NAME_BUF];
    char owner[HODEI_KEY_OWNER_BUF];
    uint32_t scopes;
    size_t n_namespaces; /* namespaces[0] is where the key's jobs go by default */
    char namespaces[HODEI_NS_PER_KEY_MAX][HODEI_NS_BUF];
    int64_t expires_at_us;            /* wall clock, µs since the epoch; 0 = never */
    char subject[HODEI_CERT_SAN_BUF]; /* the certificate name, for CERT */
    char peer[HODEI_PEER_BUF];        /* "ipv4:127.0.0.1:40000" */
} hodei_identity;

/* admin holds every scope. */
bool hodei_identity_has_scope(const hodei_identity *id, uint32_t scope);
bool hodei_identity_is_admin(const hodei_identity *id);
/* May the identity see and use namespace ns? admin: every namespace. */
bool hodei_identity_in_namespace(const hodei_identity *id, const char *ns);
/* The namespace a request that names none goes to: the key's first. */
const char *hodei_identity_home(const hodei_identity *id);
/* The namespace a request asked for (NULL or "" = the key's home), checked:
 * a malformed name is INVALID naming field; one the identity may not use is
 * PERMISSION. */
hodei_status hodei_identity_pick_namespace(const hodei_identity *id, const char *field,
                                           const char *asked, const char **ns, hodei_err *err);
/* The audit log's actor text: the key's name, or "cert:<subject>". */
void hodei_identity_actor(const hodei_identity *id, char *out, size_t out_len);

/* --------------------------------------------------- what each method needs */

typedef enum {
    HODEI_AUTH_SCOPE = 0, /* a valid key holding `scope` */
    HODEI_AUTH_ANY_KEY,   /* a valid key, any scope (WhoAmI) */
    HODEI_AUTH_WORKER,    /* no key: the handler checks the worker's token or session */
    HODEI_AUTH_PUBLIC,    /* no key */
} hodei_auth_kind;

typedef struct {
    const char *path; /* "/hodei.v1.JobExecutionService/QueueJob" */
    hodei_auth_kind kind;
    uint32_t scope; /* for HODEI_AUTH_SCOPE */
} hodei_auth_rule;

/* The rule of a method path (len bytes, not NUL-terminated), or NULL: a
 * method without a rule is refused (fail closed). */
const hodei_auth_rule *hodei_auth_rule_find(const char *path, size_t len);
/* Every rule, for checks that each registered method has one. */
const hodei_auth_rule *hodei_auth_rules(size_t *n);

#endif
