/* The skeleton of a one-shot tool (hodei-migrate): what hodei_daemon_main
 * is to a daemon, without configuration files, signals or health. The tool
 * declares its flags once; the skeleton parses them, answers --help and
 * --version, sets up logging under the tool's name, then calls run, whose
 * return is the exit code.
 *
 *   static const char *url;
 *   static bool status;
 *   static const hodei_tool_flag flags[] = {
 *       {"--database-url", "URL", "HODEI_DATABASE_URL", "PostgreSQL URL", &url, NULL},
 *       {"--status", NULL, NULL, "show, change nothing", NULL, &status},
 *   };
 *   int main(int argc, char **argv) { return hodei_tool_main(argc, argv, &tool); }
 *
 * Flags: "--name VALUE" or "--name=VALUE" for a valued flag (an empty
 * value is refused), "--name" for a switch; anything else prints the usage
 * to stderr and exits 2. */
#ifndef HODEI_TOOL_H
#define HODEI_TOOL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *name;   /* "--database-url" */
    const char *arg;    /* the value's name in the usage ("URL"); NULL = a switch */
    const char *env;    /* environment variable giving the default; may be NULL */
    const char *help;   /* one line */
    const char **value; /* valued flag: set to the value (keeps its default otherwise) */
    bool *set;          /* switch: set to true when given */
} hodei_tool_flag;

typedef struct {
    const char *name;    /* program name for messages and logs: "migrate" */
    const char *summary; /* one line for --help */
    const hodei_tool_flag *flags;
    size_t n_flags;
    const char *exit_codes; /* the --help line on exit codes */
    /* After the flags are parsed; returns the exit code. */
    int (*run)(void);
} hodei_tool;

int hodei_tool_main(int argc, char **argv, const hodei_tool *tool);

#endif
