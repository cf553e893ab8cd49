/* Runs a parsed command against the server: one unary call rendered by
 * output.c, or for `run` and `logs` the longer conversations of
 * run_job.c and run_follow.c. */
#ifndef HODEI_CLI_RUN_H
#define HODEI_CLI_RUN_H

#include <stdio.h>

#include "args.h"

/* Returns the exit code (CLI_EXIT_*, or the job's for `run`). */
int cli_run(const cli_args *a, FILE *out, FILE *err);

#endif
