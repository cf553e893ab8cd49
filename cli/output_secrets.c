/* Output of `hodei secrets`: names and times only (the server never returns
 * a value). */
#include <string.h>

#include "output_int.h"

#define SECRETS_NAME_COL_MIN 4 /* width of the NAME header */

static int secrets_json_begin(hodei_buf *b, cli_json *j)
{
    hodei_buf_init(b, CLI_OUTPUT_MAX);
    cli_json_init(j, b);
    cli_json_object_begin(j);
    return CLI_EXIT_OK;
}

int cli_output_secret_set(cli_output_format fmt, const Hodei__V1__SetSecretResponse *r, FILE *out)
{
    char name[CLI_CELL_MAX];
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        secrets_json_begin(&b, &j);
        cli_json_kv_string(&j, "name", r->name);
        cli_json_kv_bool(&j, "created", r->created);
        output_json_time(&j, "updated_at", r->updated_at);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    output_sanitize(r->name, CLI_SECRET_NAME_MAX, name, sizeof name);
    fprintf(out, "secret %s %s\n", name, r->created ? "created" : "replaced");
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

static void secrets_shared(const Hodei__V1__SecretInfo *si, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < si->n_shared_with && used < len; i++) {
        int w = snprintf(out + used, len - used, "%s%s", i ? "," : "", si->shared_with[i]);
        used = w < 0 ? len : used + (size_t)w;
    }
    if (!out[0])
        snprintf(out, len, "-");
}

static void secrets_table(const Hodei__V1__ListSecretsResponse *r, FILE *out)
{
    char name[CLI_CELL_MAX], at[OUTPUT_TIME_BUF], shared[CLI_CELL_MAX];
    size_t width = SECRETS_NAME_COL_MIN;
    for (size_t i = 0; i < r->n_secrets; i++) {
        size_t w = output_sanitize(r->secrets[i]->name, CLI_SECRET_NAME_MAX, name, sizeof name);
        width = w > width ? w : width;
    }
    fprintf(out, "%-*s  %-24s  %-16s  %s\n", (int)width, "NAME", "UPDATED", "KEY", "SHARED WITH");
    for (size_t i = 0; i < r->n_secrets; i++) {
        size_t w = output_sanitize(r->secrets[i]->name, CLI_SECRET_NAME_MAX, name, sizeof name);
        output_time(r->secrets[i]->updated_at, at, sizeof at);
        secrets_shared(r->secrets[i], shared, sizeof shared);
        fprintf(out, "%s%*s  %-24s  %-16s  %s\n", name, (int)(width - w), "", at,
                r->secrets[i]->key_id[0] ? r->secrets[i]->key_id : "-", shared);
    }
}

int cli_output_secrets(cli_output_format fmt, const Hodei__V1__ListSecretsResponse *r, FILE *out,
                       FILE *err)
{
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        secrets_json_begin(&b, &j);
        cli_json_key(&j, "secrets");
        cli_json_array_begin(&j);
        for (size_t i = 0; i < r->n_secrets; i++) {
            cli_json_object_begin(&j);
            cli_json_kv_string(&j, "name", r->secrets[i]->name);
            output_json_time(&j, "updated_at", r->secrets[i]->updated_at);
            cli_json_kv_string(&j, "namespace", r->secrets[i]->namespace_);
            cli_json_kv_string(&j, "key_id", r->secrets[i]->key_id);
            cli_json_key(&j, "shared_with");
            cli_json_array_begin(&j);
            for (size_t k = 0; k < r->secrets[i]->n_shared_with; k++)
                cli_json_string(&j, r->secrets[i]->shared_with[k]);
            cli_json_array_end(&j);
            cli_json_object_end(&j);
        }
        cli_json_array_end(&j);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    if (r->n_secrets == 0) {
        fprintf(err, "No secrets.\n");
        return CLI_EXIT_OK;
    }
    secrets_table(r, out);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_secret_deleted(cli_output_format fmt, const char *name, FILE *out)
{
    char clean[CLI_CELL_MAX];
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        secrets_json_begin(&b, &j);
        cli_json_kv_string(&j, "name", name);
        cli_json_kv_bool(&j, "deleted", true);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    output_sanitize(name, CLI_SECRET_NAME_MAX, clean, sizeof clean);
    fprintf(out, "secret %s deleted\n", clean);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
