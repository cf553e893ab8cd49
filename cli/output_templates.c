/* Output of `hodei templates`: create's answer, one template, the list. */
#include <string.h>

#include "output_int.h"

#define TEMPLATES_NAME_COL_MIN 4 /* width of the NAME header */
#define TEMPLATES_PARAMS_BUF 1024

static void templates_json_begin(hodei_buf *b, cli_json *j)
{
    hodei_buf_init(b, CLI_OUTPUT_MAX);
    cli_json_init(j, b);
}

/* The parameter names, space-separated ("-" when none). */
static void templates_params(const Hodei__V1__Template *t, char *out, size_t len)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->n_parameters && n < len; i++) {
        int w = snprintf(out + n, len - n, "%s%s", i ? " " : "", t->parameters[i]);
        n = w < 0 ? len : n + (size_t)w;
    }
    if (!out[0])
        snprintf(out, len, "-");
}

static void templates_json_one(cli_json *j, const Hodei__V1__Template *t, bool with_spec)
{
    cli_json_object_begin(j);
    cli_json_kv_string(j, "name", t->name);
    cli_json_kv_int(j, "version", t->version);
    cli_json_kv_string(j, "description", t->description);
    cli_json_key(j, "parameters");
    cli_json_array_begin(j);
    for (size_t i = 0; i < t->n_parameters; i++)
        cli_json_string(j, t->parameters[i]);
    cli_json_array_end(j);
    output_json_time(j, "created_at", t->created_at);
    if (with_spec)
        output_json_spec(j, t->spec);
    cli_json_object_end(j);
}

int cli_output_template_created(cli_output_format fmt, const Hodei__V1__Template *t, FILE *out)
{
    char name[CLI_CELL_MAX];
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        templates_json_begin(&b, &j);
        templates_json_one(&j, t, false);
        return output_json_flush(&j, &b, out);
    }
    output_sanitize(t->name, HODEI_TEMPLATE_NAME_MAX, name, sizeof name);
    fprintf(out, "template %s version %d\n", name, t->version);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_template(cli_output_format fmt, const Hodei__V1__Template *t, FILE *out)
{
    char text[OUTPUT_LINE_MAX], at[OUTPUT_TIME_BUF];
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        templates_json_begin(&b, &j);
        templates_json_one(&j, t, true);
        return output_json_flush(&j, &b, out);
    }
    output_line(out, "Name:", t->name);
    snprintf(text, sizeof text, "%d", t->version);
    output_line(out, "Version:", text);
    templates_params(t, text, sizeof text);
    output_line(out, "Params:", text);
    output_line(out, "About:", t->description);
    cli_format_command(t->spec, text, sizeof text);
    output_line(out, "Command:", text);
    output_time(t->created_at, at, sizeof at);
    output_line(out, "Created:", at);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_templates(cli_output_format fmt, const Hodei__V1__ListTemplatesResponse *r,
                         FILE *out, FILE *err)
{
    char name[CLI_CELL_MAX], params[TEMPLATES_PARAMS_BUF], about[CLI_CELL_MAX];
    size_t width = TEMPLATES_NAME_COL_MIN;
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        templates_json_begin(&b, &j);
        cli_json_object_begin(&j);
        cli_json_key(&j, "templates");
        cli_json_array_begin(&j);
        for (size_t i = 0; i < r->n_templates; i++)
            templates_json_one(&j, r->templates[i], false);
        cli_json_array_end(&j);
        cli_json_kv_string(&j, "next_page_token", r->next_page_token);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    if (r->n_templates == 0) {
        fprintf(err, "No templates.\n");
        return CLI_EXIT_OK;
    }
    for (size_t i = 0; i < r->n_templates; i++) {
        size_t w =
            output_sanitize(r->templates[i]->name, HODEI_TEMPLATE_NAME_MAX, name, sizeof name);
        width = w > width ? w : width;
    }
    fprintf(out, "%-*s  %-7s  %s\n", (int)width, "NAME", "VERSION", "PARAMETERS  DESCRIPTION");
    for (size_t i = 0; i < r->n_templates; i++) {
        const Hodei__V1__Template *t = r->templates[i];
        size_t w = output_sanitize(t->name, HODEI_TEMPLATE_NAME_MAX, name, sizeof name);
        templates_params(t, params, sizeof params);
        output_sanitize(t->description[0] ? t->description : "-", 60, about, sizeof about);
        fprintf(out, "%s%*s  %-7d  %s  %s\n", name, (int)(width - w), "", t->version, params,
                about);
    }
    if (r->next_page_token[0])
        fprintf(err, "More templates than one page (%zu) shows.\n", r->n_templates);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}
