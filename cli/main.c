/* hodei: the command-line client. Parse, then run; see README.md. */
#include <stdio.h>
#include <stdlib.h>

#include "args.h"
#include "help.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "run.h"

static const char *main_getenv(const char *name)
{
    return getenv(name);
}

int main(int argc, char **argv)
{
    static cli_args a;
    hodei_err err;
    int rc;
    hodei_err_clear(&err);
    hodei_log_init("hodei", HODEI_LOG_WARN);
    if (cli_args_parse(&a, argc, argv, main_getenv, &err) != HODEI_OK) {
        fprintf(stderr, "hodei: %s\n", err.msg);
        cli_help_hint(a.command, stderr);
        rc = err.code == HODEI_ERR_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_ERROR;
    } else if (a.version) {
        printf("hodei %s\n", HODEI_CLI_VERSION);
        rc = CLI_EXIT_OK;
    } else if (a.help) {
        cli_help_print(a.command, stdout);
        rc = CLI_EXIT_OK;
    } else {
        if (a.older_than_ms > 0) { /* the one flag that needs the clock */
            int64_t us = hodei_wall_us() - a.older_than_ms * 1000;
            hodei__v1__timestamp__init(&a.finished_before);
            a.finished_before.seconds = us / 1000000;
            a.finished_before.nanos = (int32_t)(us % 1000000) * 1000;
            a.list.finished_before = &a.finished_before;
        }
        rc = cli_run(&a, stdout, stderr);
    }
    cli_args_fini(&a);
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK)
        rc = CLI_EXIT_ERROR;
    return rc;
}
