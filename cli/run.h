/* Runs a parsed command against the server: one unary call, then the
 * response rendered by output.c. */
#ifndef HODEI_CLI_RUN_H
#define HODEI_CLI_RUN_H

#include <stdio.h>

#include "args.h"

/* Returns the exit code (CLI_EXIT_*). */
int cli_run(const cli_args *a, FILE *out, FILE *err);

#endif
