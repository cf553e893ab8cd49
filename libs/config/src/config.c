/* Loading: declared defaults, then the YAML file, then HODEI_* environment
 * variables; then every value is validated and stored in its field. */
#include "config_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/util.h"

void hodei_config_env_name(const char *param, char *out, size_t out_len)
{
    static const char prefix[] = "HODEI_";
    size_t n = 0;
    if (out_len == 0)
        return;
    for (const char *p = prefix; *p && n + 1 < out_len; p++)
        out[n++] = *p;
    for (const char *p = param; *p && n + 1 < out_len; p++) {
        unsigned char c = (unsigned char)*p;
        out[n++] = (c == '.' || c == '-') ? '_' : (char)toupper(c);
    }
    out[n] = '\0';
}

config_slot *config_table_find(const config_table *t, const char *name)
{
    for (size_t i = 0; i < t->n_slots; i++)
        if (strcmp(t->slots[i].param->name, name) == 0)
            return &t->slots[i];
    return NULL;
}

hodei_status config_slot_set(config_slot *s, const char *text, const char *source, hodei_err *err)
{
    char *copy = strdup(text);
    if (!copy)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", s->param->name);
    free(s->text);
    s->text = copy;
    hodei_strlcpy(s->source, source, sizeof s->source);
    return HODEI_OK;
}

static const char *config_default_text(const hodei_cfg_param *p)
{
    if (p->default_value)
        return p->default_value;
    switch (p->type) {
    case HODEI_CFG_STRING:
        return "";
    case HODEI_CFG_BOOL:
        return "false";
    default:
        return "0";
    }
}

static void config_table_free(config_table *t)
{
    for (size_t i = 0; i < t->n_slots; i++)
        free(t->slots[i].text);
    free(t->slots);
    free(t->file_params);
    free(t->file_names);
    memset(t, 0, sizeof *t);
}

static bool config_param_has_file(const hodei_cfg_param *p)
{
    return p->secret && p->type == HODEI_CFG_STRING;
}

static hodei_status config_table_add(config_table *t, const hodei_cfg_param *p, void *base,
                                     hodei_err *err)
{
    HODEI_ASSERT(p->name != NULL && base != NULL);
    if (strlen(p->name) >= CONFIG_NAME_MAX)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "parameter name '%s' is too long", p->name);
    if (config_table_find(t, p->name))
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "parameter '%s' is declared twice", p->name);
    config_slot *s = &t->slots[t->n_slots++];
    s->param = p;
    s->base = base;
    return config_slot_set(s, config_default_text(p), "default", err);
}

/* The companion "<name>_file" of each secret string parameter, unless one
 * of that name is declared (e.g. an agent's own otp_file). */
static hodei_status config_table_add_files(config_table *t, hodei_err *err)
{
    size_t n_declared = t->n_slots;
    for (size_t i = 0; i < n_declared; i++) {
        const hodei_cfg_param *p = t->slots[i].param;
        if (!config_param_has_file(p))
            continue;
        size_t k = t->n_slots - n_declared;
        int n = snprintf(t->file_names[k], CONFIG_NAME_MAX, "%s_file", p->name);
        if (n < 0 || n >= CONFIG_NAME_MAX)
            return hodei_err_set(err, HODEI_ERR_INTERNAL, "parameter name '%s' is too long",
                                 p->name);
        if (config_table_find(t, t->file_names[k]))
            continue;
        t->file_params[k] = (hodei_cfg_param){.name = t->file_names[k],
                                              .type = HODEI_CFG_STRING,
                                              .max = CONFIG_STRING_MAX_DEFAULT,
                                              .help = "file holding the value"};
        config_slot *s = &t->slots[t->n_slots++];
        s->param = &t->file_params[k];
        s->file_of = &t->slots[i];
        hodei_status st = config_slot_set(s, "", "default", err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}

static hodei_status config_table_build(config_table *t, const hodei_cfg_section *secs,
                                       size_t n_secs, hodei_err *err)
{
    size_t total = 0, n_files = 0;
    for (size_t i = 0; i < n_secs; i++) {
        total += secs[i].n_params;
        for (size_t k = 0; k < secs[i].n_params; k++)
            n_files += config_param_has_file(&secs[i].params[k]);
    }
    if (total + n_files > CONFIG_PARAMS_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "%zu parameters declared, above the maximum %d",
                             total + n_files, CONFIG_PARAMS_MAX);
    t->slots = calloc(total + n_files + 1, sizeof *t->slots);
    t->file_params = calloc(n_files + 1, sizeof *t->file_params);
    t->file_names = calloc(n_files + 1, sizeof *t->file_names);
    if (!t->slots || !t->file_params || !t->file_names)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "configuration: out of memory");
    for (size_t i = 0; i < n_secs; i++) {
        for (size_t k = 0; k < secs[i].n_params; k++) {
            hodei_status st = config_table_add(t, &secs[i].params[k], secs[i].base, err);
            if (st != HODEI_OK)
                return st;
        }
    }
    t->n_declared = t->n_slots;
    return config_table_add_files(t, err);
}

static hodei_status config_env_apply(config_table *t, hodei_err *err)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        char env[CONFIG_NAME_MAX + 8];
        hodei_config_env_name(t->slots[i].param->name, env, sizeof env);
        const char *v = getenv(env);
        if (!v)
            continue;
        hodei_status st = config_slot_set(&t->slots[i], v, env, err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}

static hodei_status config_register(const config_table *t, const hodei_cfg_section *secs,
                                    size_t n_secs, hodei_err *err)
{
    size_t at = 0;
    for (size_t i = 0; i < n_secs; i++) {
        hodei_status st = config_registry_put(&secs[i], &t->slots[at], err);
        if (st != HODEI_OK)
            return st;
        at += secs[i].n_params;
    }
    return HODEI_OK;
}

/* String fields are set to NULL first, so hodei_config_free is safe
 * whatever point a failed load reached. */
static void config_fields_clear(const hodei_cfg_section *secs, size_t n_secs)
{
    for (size_t i = 0; i < n_secs; i++) {
        for (size_t k = 0; k < secs[i].n_params; k++) {
            const hodei_cfg_param *p = &secs[i].params[k];
            if (p->type == HODEI_CFG_STRING)
                *(char **)((char *)secs[i].base + p->offset) = NULL;
        }
    }
}

hodei_status hodei_config_load(const hodei_cfg_section *sections, size_t n_sections,
                               const char *yaml_path, hodei_err *err)
{
    config_table t = {0};
    hodei_err_clear(err);
    config_fields_clear(sections, n_sections);
    hodei_status st = config_table_build(&t, sections, n_sections, err);
    if (st == HODEI_OK && yaml_path)
        st = config_yaml_apply(&t, yaml_path, err);
    if (st == HODEI_OK)
        st = config_env_apply(&t, err);
    if (st == HODEI_OK)
        st = config_files_apply(&t, err);
    for (size_t i = 0; st == HODEI_OK && i < t.n_declared; i++)
        st = config_value_store(&t.slots[i], err);
    if (st == HODEI_OK)
        st = config_register(&t, sections, n_sections, err);
    config_table_free(&t);
    return st;
}

void hodei_config_source(const hodei_cfg_section *sec, const char *name, char *out, size_t out_len)
{
    for (size_t k = 0; k < sec->n_params; k++) {
        if (strcmp(sec->params[k].name, name) == 0) {
            config_registry_source(sec, k, out, out_len);
            return;
        }
    }
    hodei_strlcpy(out, "?", out_len);
}

void hodei_config_print(const hodei_cfg_section *sections, size_t n_sections, FILE *out)
{
    for (size_t i = 0; i < n_sections; i++) {
        const hodei_cfg_section *sec = &sections[i];
        for (size_t k = 0; k < sec->n_params; k++) {
            const hodei_cfg_param *p = &sec->params[k];
            char value[CONFIG_STRING_MAX_DEFAULT + 64];
            char source[CONFIG_SOURCE_MAX];
            config_value_format(p, sec->base, value, sizeof value);
            if (p->secret && strcmp(value, "\"\"") != 0)
                hodei_strlcpy(value, "***", sizeof value);
            config_registry_source(sec, k, source, sizeof source);
            fprintf(out, "%s = %s  # %s\n", p->name, value, source);
        }
    }
}

void hodei_config_free(const hodei_cfg_section *sections, size_t n_sections)
{
    for (size_t i = 0; i < n_sections; i++) {
        for (size_t k = 0; k < sections[i].n_params; k++) {
            const hodei_cfg_param *p = &sections[i].params[k];
            if (p->type != HODEI_CFG_STRING)
                continue;
            char **field = (char **)((char *)sections[i].base + p->offset);
            free(*field);
            *field = NULL;
        }
        config_registry_drop(&sections[i]);
    }
}
