/* Output of `hodei keys`, `hodei whoami` and `hodei audit`. A new key's
 * secret is the one thing `keys create` prints on stdout (so that
 * key=$(hodei keys create ...) works); what it is goes to stderr. */
#include <string.h>

#include "output_int.h"

#define KEYS_LIST_BUF 512 /* scopes or namespaces of one key, joined */
#define AUDIT_DETAIL_CHARS 80

static void keys_json_begin(hodei_buf *b, cli_json *j)
{
    hodei_buf_init(b, CLI_OUTPUT_MAX);
    cli_json_init(j, b);
}

static void keys_join(char *const *items, size_t n, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < len; i++) {
        int w = snprintf(out + used, len - used, "%s%s", i ? "," : "", items[i]);
        used = w < 0 ? len : used + (size_t)w;
    }
    if (!out[0])
        snprintf(out, len, "-");
}

static void keys_json_list(cli_json *j, const char *key, char *const *items, size_t n)
{
    cli_json_key(j, key);
    cli_json_array_begin(j);
    for (size_t i = 0; i < n; i++)
        cli_json_string(j, items[i]);
    cli_json_array_end(j);
}

static void keys_json_one(cli_json *j, const Hodei__V1__ApiKey *k)
{
    cli_json_object_begin(j);
    cli_json_kv_string(j, "id", k->id);
    cli_json_kv_string(j, "name", k->name);
    cli_json_kv_string(j, "owner", k->owner);
    keys_json_list(j, "scopes", k->scopes, k->n_scopes);
    keys_json_list(j, "namespaces", k->namespaces, k->n_namespaces);
    output_json_time(j, "created_at", k->created_at);
    output_json_time(j, "expires_at", k->expires_at);
    output_json_time(j, "revoked_at", k->revoked_at);
    cli_json_kv_string(j, "cert_name", k->cert_name);
    cli_json_kv_string(j, "created_by", k->created_by);
    cli_json_object_end(j);
}

static void keys_describe(const Hodei__V1__ApiKey *k, FILE *out)
{
    char scopes[KEYS_LIST_BUF], nss[KEYS_LIST_BUF], at[OUTPUT_TIME_BUF];
    keys_join(k->scopes, k->n_scopes, scopes, sizeof scopes);
    keys_join(k->namespaces, k->n_namespaces, nss, sizeof nss);
    output_line(out, "Name:", k->name);
    output_line(out, "ID:", k->id);
    output_line(out, "Owner:", k->owner);
    output_line(out, "Scopes:", scopes);
    output_line(out, "Namespaces:", nss);
    output_time(k->expires_at, at, sizeof at);
    output_line(out, "Expires:", k->expires_at ? at : "never");
    if (k->cert_name && k->cert_name[0])
        output_line(out, "Certificate:", k->cert_name);
}

int cli_output_key_created(cli_output_format fmt, const Hodei__V1__CreateKeyResponse *r, FILE *out,
                           FILE *err)
{
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        keys_json_begin(&b, &j);
        cli_json_object_begin(&j);
        cli_json_key(&j, "key");
        keys_json_one(&j, r->key);
        cli_json_kv_string(&j, "secret", r->secret);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    keys_describe(r->key, err);
    fprintf(err, "The key is shown once, below: keep it now (hodei --api-key KEY, or "
                 "HODEI_API_KEY).\n");
    fprintf(out, "%s\n", r->secret);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_keys(cli_output_format fmt, const Hodei__V1__ListKeysResponse *r, FILE *out,
                    FILE *err)
{
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        keys_json_begin(&b, &j);
        cli_json_object_begin(&j);
        cli_json_key(&j, "keys");
        cli_json_array_begin(&j);
        for (size_t i = 0; i < r->n_keys; i++)
            keys_json_one(&j, r->keys[i]);
        cli_json_array_end(&j);
        cli_json_kv_string(&j, "next_page_token", r->next_page_token);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    if (r->n_keys == 0) {
        fprintf(err, "No keys.\n");
        return CLI_EXIT_OK;
    }
    fprintf(out, "%-36s  %-20s  %-8s  %-24s  %-16s  %s\n", "ID", "NAME", "STATE", "SCOPES",
            "NAMESPACES", "EXPIRES");
    for (size_t i = 0; i < r->n_keys; i++) {
        const Hodei__V1__ApiKey *k = r->keys[i];
        char name[CLI_CELL_MAX], scopes[KEYS_LIST_BUF], nss[KEYS_LIST_BUF], at[OUTPUT_TIME_BUF];
        output_sanitize(k->name, HODEI_KEY_NAME_MAX, name, sizeof name);
        keys_join(k->scopes, k->n_scopes, scopes, sizeof scopes);
        keys_join(k->namespaces, k->n_namespaces, nss, sizeof nss);
        output_time(k->expires_at, at, sizeof at);
        fprintf(out, "%-36s  %-20s  %-8s  %-24s  %-16s  %s\n", k->id, name,
                k->revoked_at ? "revoked" : "active", scopes, nss, k->expires_at ? at : "never");
    }
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_key_revoked(cli_output_format fmt, const Hodei__V1__RevokeKeyResponse *r, FILE *out)
{
    char name[CLI_CELL_MAX];
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        keys_json_begin(&b, &j);
        keys_json_one(&j, r->key);
        return output_json_flush(&j, &b, out);
    }
    output_sanitize(r->key->name, HODEI_KEY_NAME_MAX, name, sizeof name);
    fprintf(out, "key %s (%s) revoked\n", name, r->key->id);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_whoami(cli_output_format fmt, const Hodei__V1__WhoAmIResponse *r, FILE *out)
{
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        keys_json_begin(&b, &j);
        cli_json_object_begin(&j);
        cli_json_key(&j, "key");
        keys_json_one(&j, r->key);
        cli_json_kv_string(&j, "peer", r->peer);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    keys_describe(r->key, out);
    output_line(out, "Peer:", r->peer);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static void audit_json_one(cli_json *j, const Hodei__V1__AuditEntry *e)
{
    cli_json_object_begin(j);
    cli_json_kv_int(j, "id", e->id);
    output_json_time(j, "at", e->at);
    cli_json_kv_string(j, "actor", e->actor);
    cli_json_kv_string(j, "actor_key_id", e->actor_key_id);
    cli_json_kv_string(j, "action", e->action);
    cli_json_kv_string(j, "object_type", e->object_type);
    cli_json_kv_string(j, "object_id", e->object_id);
    cli_json_kv_string(j, "namespace", e->namespace_);
    cli_json_kv_string(j, "detail", e->detail_json);
    cli_json_kv_string(j, "peer", e->peer);
    cli_json_object_end(j);
}

int cli_output_audit(cli_output_format fmt, const Hodei__V1__QueryAuditResponse *r, FILE *out,
                     FILE *err)
{
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        keys_json_begin(&b, &j);
        cli_json_object_begin(&j);
        cli_json_key(&j, "entries");
        cli_json_array_begin(&j);
        for (size_t i = 0; i < r->n_entries; i++)
            audit_json_one(&j, r->entries[i]);
        cli_json_array_end(&j);
        cli_json_kv_string(&j, "next_page_token", r->next_page_token);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    if (r->n_entries == 0) {
        fprintf(err, "No audit entries.\n");
        return CLI_EXIT_OK;
    }
    fprintf(out, "%-24s  %-16s  %-16s  %-12s  %-40s  %s\n", "TIME", "ACTOR", "ACTION", "NAMESPACE",
            "OBJECT", "DETAIL");
    for (size_t i = 0; i < r->n_entries; i++) {
        const Hodei__V1__AuditEntry *e = r->entries[i];
        char at[OUTPUT_TIME_BUF], actor[CLI_CELL_MAX], action[CLI_CELL_MAX], ns[CLI_CELL_MAX];
        char object[CLI_CELL_MAX], detail[CLI_CELL_MAX];
        output_time(e->at, at, sizeof at);
        output_sanitize(e->actor, 40, actor, sizeof actor);
        output_sanitize(e->action, 40, action, sizeof action);
        output_sanitize(e->namespace_[0] ? e->namespace_ : "-", 40, ns, sizeof ns);
        output_sanitize(e->object_id, 80, object, sizeof object);
        output_sanitize(e->detail_json, AUDIT_DETAIL_CHARS, detail, sizeof detail);
        fprintf(out, "%-24s  %-16s  %-16s  %-12s  %-40s  %s\n", at, actor, action, ns, object,
                detail);
    }
    if (r->next_page_token[0])
        fprintf(out, "Next page token: %s\n", r->next_page_token);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
