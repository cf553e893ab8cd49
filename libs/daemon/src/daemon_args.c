/* Command line: --config FILE (or HODEI_CONFIG), --check-config, --help,
 * --version. Anything else is a usage error (exit 2). */
#include "daemon_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifndef HODEI_VERSION
#define HODEI_VERSION "0.0.0"
#endif

#define DAEMON_ENV_NAME_MAX 160

static const char *daemon_prog(int argc, char **argv, const hodei_service *svc)
{
    if (argc < 1 || !argv[0] || !*argv[0])
        return svc->name;
    const char *slash = strrchr(argv[0], '/');
    return slash ? slash + 1 : argv[0];
}

static void daemon_usage(const char *prog, FILE *out)
{
    fprintf(out, "usage: %s [--config FILE] [--check-config] [--help] [--version]\n", prog);
}

static void daemon_params_print(const hodei_cfg_param *params, size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const hodei_cfg_param *p = &params[i];
        char env[DAEMON_ENV_NAME_MAX];
        hodei_config_env_name(p->name, env, sizeof env);
        const char *def = p->default_value && *p->default_value ? p->default_value : "\"\"";
        fprintf(out, "  %-30s %-34s default %s%s\n", p->name, env, def,
                p->required ? " (required)" : "");
        if (p->help)
            fprintf(out, "      %s\n", p->help);
    }
}

static void daemon_help(const char *prog, const hodei_service *svc)
{
    daemon_usage(prog, stdout);
    if (svc->summary)
        printf("%s: %s\n", svc->name, svc->summary);
    printf("\nOptions:\n"
           "  --config FILE    YAML configuration file (default: $HODEI_CONFIG, else none)\n"
           "  --check-config   load and validate the configuration, print it, exit\n"
           "  --help           this text\n"
           "  --version        print the version\n"
           "\nParameters (YAML key, environment variable, default); the environment\n"
           "overrides the file, the file overrides the default:\n");
    daemon_params_print(hodei_common_params, hodei_common_params_len, stdout);
    if (svc->params)
        daemon_params_print(svc->params, svc->n_params, stdout);
    printf("\nExit codes: 0 clean stop, 1 runtime failure, 2 bad usage or configuration.\n"
           "SIGTERM or SIGINT stops the daemon cleanly.\n");
}

static int daemon_args_bad(const char *prog, const hodei_service *svc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int daemon_args_bad(const char *prog, const hodei_service *svc, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", svc->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    daemon_usage(prog, stderr);
    fprintf(stderr, "Try '%s --help' for the parameters.\n", prog);
    return DAEMON_EXIT_USAGE;
}

int daemon_args_parse(int argc, char **argv, const hodei_service *svc, daemon_args *out)
{
    const char *prog = daemon_prog(argc, argv, svc);
    const char *env = getenv("HODEI_CONFIG");
    *out = (daemon_args){.config_path = env && *env ? env : NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            if (i + 1 >= argc || !*argv[i + 1])
                return daemon_args_bad(prog, svc, "--config needs a FILE");
            out->config_path = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0 && a[9]) {
            out->config_path = a + 9;
        } else if (strcmp(a, "--check-config") == 0) {
            out->check_only = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            daemon_help(prog, svc);
            return DAEMON_EXIT_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("%s %s\n", svc->name, HODEI_VERSION);
            return DAEMON_EXIT_OK;
        } else {
            return daemon_args_bad(prog, svc, "unknown option '%s'", a);
        }
    }
    return DAEMON_CONTINUE;
}
