/* The help texts of the tool and of each command. */
#ifndef HODEI_CLI_HELP_H
#define HODEI_CLI_HELP_H

#include <stdio.h>

#include "args.h"

#ifndef HODEI_CLI_VERSION
#define HODEI_CLI_VERSION "0.1.0"
#endif

/* The help of cmd; CLI_CMD_NONE is the tool's (commands, global options,
 * environment, exit codes). */
void cli_help_print(cli_command cmd, FILE *out);
/* One line after a usage error: where to read more. */
void cli_help_hint(cli_command cmd, FILE *err);

#endif
