#include "hodei/template.h"

#include <stdlib.h>
#include <string.h>

#include "hodei/buf.h"
#include "hodei/job_spec.h"

static bool tpl_lower_or_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool hodei_template_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HODEI_TEMPLATE_NAME_MAX || !tpl_lower_or_digit(s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tpl_lower_or_digit(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

bool hodei_template_param_valid(const char *s, size_t len)
{
    if (len == 0 || len > HODEI_TEMPLATE_PARAM_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

/* ------------------------------------------------------------ substitution */

static int subst_find(const hodei_template_subst *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->n; i++)
        if (strlen(t->names[i]) == len && memcmp(t->names[i], name, len) == 0)
            return (int)i;
    return -1;
}

void hodei_template_subst_string(hodei_template_subst *t, char **s)
{
    const char *in = *s;
    hodei_buf out;
    bool changed = false;
    if (!in || t->failed || !strstr(in, "${"))
        return;
    /* filling in: every string filled so far counts against one budget,
     * so the edge never holds more than the largest spec for one call */
    size_t budget = HODEI_JOB_SPEC_PACKED_MAX;
    if (t->values)
        budget = t->filled_bytes < budget ? budget - t->filled_bytes : 0;
    hodei_buf_init(&out, budget);
    for (size_t i = 0; in[i];) {
        const char *end = in[i] == '$' && in[i + 1] == '{' ? strchr(in + i + 2, '}') : NULL;
        int k = end ? subst_find(t, in + i + 2, (size_t)(end - in - i - 2)) : -1;
        if (k < 0) {
            hodei_buf_putc(&out, in[i++]);
            continue;
        }
        t->used[k] = true;
        changed = true;
        if (t->values)
            hodei_buf_puts(&out, t->values[k]);
        i = (size_t)(end - in) + 1;
    }
    if (out.failed)
        t->failed = true;
    else if (changed && t->values) {
        size_t len = 0;
        char *filled = hodei_buf_take(&out, &len);
        t->filled_bytes += len;
        if (!filled)
            filled = strdup("");
        if (!filled) {
            t->failed = true;
        } else {
            if (*s != protobuf_c_empty_string)
                free(*s);
            *s = filled;
        }
    }
    hodei_buf_fini(&out);
}

void hodei_template_subst_spec(hodei_template_subst *t, Hodei__V1__JobSpec *spec)
{
    hodei_template_subst_string(t, &spec->name);
    if (spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND && spec->command) {
        hodei_template_subst_string(t, &spec->command->command);
        for (size_t i = 0; i < spec->command->n_args; i++)
            hodei_template_subst_string(t, &spec->command->args[i]);
    }
    if (spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT && spec->script) {
        hodei_template_subst_string(t, &spec->script->interpreter);
        hodei_template_subst_string(t, &spec->script->content);
    }
    for (size_t i = 0; i < spec->n_env; i++)
        hodei_template_subst_string(t, &spec->env[i]->value);
    for (size_t i = 0; i < spec->n_labels; i++)
        hodei_template_subst_string(t, &spec->labels[i]->value);
    hodei_template_subst_string(t, &spec->working_dir);
    hodei_template_subst_string(t, &spec->image);
}
