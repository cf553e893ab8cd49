/* The one-shot tool skeleton (hodei/tool.h). */
#include "hodei/tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/log.h"

#ifndef HODEI_VERSION
#define HODEI_VERSION "0.0.0"
#endif

#define TOOL_EXIT_OK 0
#define TOOL_EXIT_USAGE 2
#define TOOL_CONTINUE (-1)

static const char *tool_prog(int argc, char **argv, const hodei_tool *t)
{
    if (argc < 1 || !argv[0] || !*argv[0])
        return t->name;
    const char *slash = strrchr(argv[0], '/');
    return slash ? slash + 1 : argv[0];
}

static void tool_usage(const char *prog, const hodei_tool *t, FILE *out)
{
    fprintf(out, "usage: %s", prog);
    for (size_t i = 0; i < t->n_flags; i++)
        fprintf(out, t->flags[i].arg ? " [%s %s]" : " [%s]", t->flags[i].name, t->flags[i].arg);
    fprintf(out, " [--help] [--version]\n");
}

static void tool_help(const char *prog, const hodei_tool *t)
{
    tool_usage(prog, t, stdout);
    if (t->summary)
        printf("  %s\n", t->summary);
    for (size_t i = 0; i < t->n_flags; i++) {
        const hodei_tool_flag *f = &t->flags[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", f->name, f->arg ? " " : "", f->arg ? f->arg : "");
        printf("  %-24s %s", left, f->help ? f->help : "");
        if (f->env && f->value && *f->value)
            printf(" (default: $%s, else %s)", f->env, *f->value);
        else if (f->env)
            printf(" (default: $%s)", f->env);
        else if (f->value && *f->value)
            printf(" (default: %s)", *f->value);
        printf("\n");
    }
    if (t->exit_codes)
        printf("exit: %s\n", t->exit_codes);
}

static int tool_bad(const char *prog, const hodei_tool *t, const char *arg, const char *why)
{
    fprintf(stderr, "%s: %s: %s\n", prog, arg, why);
    tool_usage(prog, t, stderr);
    return TOOL_EXIT_USAGE;
}

/* Applies argv[*i] (and its value) to the flag it names; TOOL_CONTINUE or
 * an exit code. */
static int tool_flag(const char *prog, const hodei_tool *t, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    for (size_t k = 0; k < t->n_flags; k++) {
        const hodei_tool_flag *f = &t->flags[k];
        size_t n = strlen(f->name);
        if (strncmp(a, f->name, n) != 0 || (a[n] != '\0' && a[n] != '='))
            continue;
        if (!f->arg) {
            if (a[n] == '=')
                return tool_bad(prog, t, a, "takes no value");
            *f->set = true;
            return TOOL_CONTINUE;
        }
        const char *v = a[n] == '=' ? a + n + 1 : (*i + 1 < argc ? argv[++*i] : "");
        if (!*v)
            return tool_bad(prog, t, f->name, "needs a value");
        *f->value = v;
        return TOOL_CONTINUE;
    }
    return tool_bad(prog, t, a, "unknown argument");
}

static int tool_parse(int argc, char **argv, const hodei_tool *t)
{
    const char *prog = tool_prog(argc, argv, t);
    /* --help first, so it shows the built-in defaults, never a value from
     * the environment (a URL may hold a password). */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            tool_help(prog, t);
            return TOOL_EXIT_OK;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("%s %s\n", t->name, HODEI_VERSION);
            return TOOL_EXIT_OK;
        }
    }
    for (size_t k = 0; k < t->n_flags; k++) {
        const hodei_tool_flag *f = &t->flags[k];
        HODEI_ASSERT(f->arg ? f->value != NULL : f->set != NULL);
        const char *env = f->env ? getenv(f->env) : NULL;
        if (f->arg && env && *env)
            *f->value = env;
    }
    for (int i = 1; i < argc; i++) {
        int rc = tool_flag(prog, t, argc, argv, &i);
        if (rc != TOOL_CONTINUE)
            return rc;
    }
    return TOOL_CONTINUE;
}

int hodei_tool_main(int argc, char **argv, const hodei_tool *tool)
{
    HODEI_ASSERT(tool != NULL && tool->name != NULL && tool->run != NULL);
    int rc = tool_parse(argc, argv, tool);
    if (rc != TOOL_CONTINUE)
        return rc;
    hodei_log_init(tool->name, HODEI_LOG_INFO);
    return tool->run();
}
