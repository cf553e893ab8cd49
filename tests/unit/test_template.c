/* libs/domain template.c: names, and ${param} substitution in a spec. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/job_spec.h"
#include "hodei/template.h"

/* A spec whose strings are heap copies, as protobuf-c's unpack makes them. */
static Hodei__V1__JobSpec *spec_new(const char *command, const char *arg, const char *env_value)
{
    Hodei__V1__JobSpec *s = calloc(1, sizeof *s);
    hodei__v1__job_spec__init(s);
    s->command = calloc(1, sizeof *s->command);
    hodei__v1__shell_command__init(s->command);
    s->payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    s->command->command = strdup(command);
    s->command->args = calloc(1, sizeof *s->command->args);
    s->command->args[0] = strdup(arg);
    s->command->n_args = 1;
    s->env = calloc(1, sizeof *s->env);
    s->env[0] = calloc(1, sizeof *s->env[0]);
    hodei__v1__job_spec__env_entry__init(s->env[0]);
    s->env[0]->key = strdup("GREETING");
    s->env[0]->value = strdup(env_value);
    s->n_env = 1;
    return s;
}

static void spec_free(Hodei__V1__JobSpec *s)
{
    hodei__v1__job_spec__free_unpacked(s, NULL);
}

static char *names[] = {"who", "n"};

Test(template, names)
{
    cr_assert(hodei_template_name_valid("greet"));
    cr_assert(hodei_template_name_valid("0-build.v2_x"));
    cr_assert_not(hodei_template_name_valid(""));
    cr_assert_not(hodei_template_name_valid("-lead"));
    cr_assert_not(hodei_template_name_valid("Upper"));
    cr_assert(hodei_template_param_valid("who", 3));
    cr_assert(hodei_template_param_valid("_x9", 3));
    cr_assert_not(hodei_template_param_valid("9x", 2));
    cr_assert_not(hodei_template_param_valid("a-b", 3));
}

Test(template, finds_which_declared_parameters_are_used)
{
    Hodei__V1__JobSpec *s = spec_new("echo", "hello ${who}", "${HOME}");
    hodei_template_subst t = {.names = names, .n = 2};
    hodei_template_subst_spec(&t, s);
    cr_assert(t.used[0]);
    cr_assert_not(t.used[1], "n is declared but nowhere used");
    cr_assert_str_eq(s->command->args[0], "hello ${who}", "without values nothing changes");
    cr_assert_not(t.failed);
    spec_free(s);
}

Test(template, fills_declared_placeholders_only)
{
    Hodei__V1__JobSpec *s = spec_new("run-${n}", "hello ${who}, ${who}! ${HOME} ${who", "${n}x");
    const char *values[] = {"world", "3"};
    hodei_template_subst t = {.names = names, .n = 2, .values = values};
    hodei_template_subst_spec(&t, s);
    cr_assert_not(t.failed);
    cr_assert(t.used[0] && t.used[1]);
    cr_assert_str_eq(s->command->command, "run-3");
    cr_assert_str_eq(s->command->args[0], "hello world, world! ${HOME} ${who");
    cr_assert_str_eq(s->env[0]->value, "3x");
    spec_free(s); /* replaced strings are heap strings: ASan and LSan agree */
}

Test(template, a_value_may_empty_a_string)
{
    Hodei__V1__JobSpec *s = spec_new("echo", "${who}", "plain");
    const char *values[] = {"", "1"};
    hodei_template_subst t = {.names = names, .n = 2, .values = values};
    hodei_template_subst_spec(&t, s);
    cr_assert_not(t.failed);
    cr_assert_str_eq(s->command->args[0], "");
    cr_assert_str_eq(s->env[0]->value, "plain");
    spec_free(s);
}

Test(template, a_value_is_not_substituted_again)
{
    Hodei__V1__JobSpec *s = spec_new("echo", "${who}", "x");
    const char *values[] = {"${n}", "1"};
    hodei_template_subst t = {.names = names, .n = 2, .values = values};
    hodei_template_subst_spec(&t, s);
    cr_assert_str_eq(s->command->args[0], "${n}");
    cr_assert_not(t.used[1]);
    spec_free(s);
}

Test(template, one_string_and_its_limit)
{
    char *s = strdup("a${who}b");
    const char *values[] = {"", "1"};
    hodei_template_subst t = {.names = names, .n = 2, .values = values};
    hodei_template_subst_string(&t, &s);
    cr_assert_str_eq(s, "ab");
    char *none = NULL;
    hodei_template_subst_string(&t, &none); /* NULL is left alone */
    cr_assert_null(none);

    /* a filled-in string past HODEI_JOB_SPEC_PACKED_MAX fails and stays */
    char *big = malloc(HODEI_JOB_SPEC_PACKED_MAX / 2 + 1);
    memset(big, 'x', HODEI_JOB_SPEC_PACKED_MAX / 2);
    big[HODEI_JOB_SPEC_PACKED_MAX / 2] = '\0';
    const char *big_values[] = {big, "1"};
    char *twice = strdup("${who}${who}${who}");
    hodei_template_subst u = {.names = names, .n = 2, .values = big_values};
    hodei_template_subst_string(&u, &twice);
    cr_assert(u.failed);
    cr_assert_str_eq(twice, "${who}${who}${who}");
    free(twice);
    free(big);
    free(s);
}

/* The strings filled in for one spec share one budget: exactly
 * HODEI_JOB_SPEC_PACKED_MAX bytes together are filled in, one byte more
 * fails (however many strings repeat a placeholder, one RunTemplate never
 * makes more than the largest spec). */
Test(template, the_filled_in_strings_of_a_spec_share_one_budget)
{
    size_t half = HODEI_JOB_SPEC_PACKED_MAX / 2;
    char *big = malloc(half + 1);
    memset(big, 'x', half);
    big[half] = '\0';
    for (int past = 0; past <= 1; past++) {
        Hodei__V1__JobSpec *s = spec_new("${who}", "${who}", "${n}");
        const char *values[] = {big, past ? "1" : ""};
        hodei_template_subst t = {.names = names, .n = 2, .values = values};
        hodei_template_subst_spec(&t, s);
        cr_assert_eq(t.failed, past == 1, "%zu bytes filled in, past %d", t.filled_bytes, past);
        if (!past) {
            cr_assert_eq(t.filled_bytes, (size_t)HODEI_JOB_SPEC_PACKED_MAX);
            cr_assert_eq(strlen(s->command->command), half);
            cr_assert_eq(strlen(s->command->args[0]), half);
            cr_assert_str_eq(s->env[0]->value, "");
        } else {
            cr_assert_str_eq(s->env[0]->value, "${n}", "the string past the budget stays");
        }
        spec_free(s);
    }
    free(big);
}
