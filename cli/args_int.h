/* Private to the argument parser (args.c, args_submit.c, args_values.c). */
#ifndef HODEI_CLI_ARGS_INT_H
#define HODEI_CLI_ARGS_INT_H

#include "args.h"

/* Values quoted in messages: at most this many input bytes are shown. */
#define ARGS_QUOTE_IN_MAX 64
#define ARGS_QUOTE_BUF (2 + ARGS_QUOTE_IN_MAX * 4 + 3 + 1)

typedef hodei_status (*args_flag_fn)(cli_args *a, const char *flag, const char *value,
                                     hodei_err *err);

typedef struct {
    const char *name;       /* "--name" */
    const char *short_name; /* "-o" or NULL */
    bool takes_value;
    args_flag_fn fn; /* NULL for --help */
} args_flag;

/* Consumes argv[*i] (a positional, or the first word after "--") and maybe
 * more, leaving *i on the last argument it used. */
typedef hodei_status (*args_positional_fn)(cli_args *a, int argc, char **argv, int *i,
                                           hodei_err *err);

/* Runs the flags of one command over argv[i..argc). Stops at --help (sets
 * a->help). Unknown flags and missing values are usage errors. */
hodei_status args_parse_flags(cli_args *a, const args_flag *flags, int argc, char **argv, int i,
                              args_positional_fn positional, hodei_err *err);

/* s as "..." with unprintable bytes escaped and long input cut; returns buf. */
const char *args_quote(const char *s, char buf[ARGS_QUOTE_BUF]);

hodei_status args_nomem(hodei_err *err);
hodei_status args_int32(const char *flag, const char *value, int32_t *out, hodei_err *err);

/* Positionals shared by several commands: JOB_ID (status, cancel, logs;
 * at most one, a valid id), and none at all. */
hodei_status args_job_id(cli_args *a, int argc, char **argv, int *i, hodei_err *err);
hodei_status args_job_id_required(cli_args *a, hodei_err *err);
hodei_status args_no_positional(cli_args *a, int argc, char **argv, int *i, hodei_err *err);

/* Each parses its command's flags and arguments from argv[i] (the first word
 * after the command's name). */
/* `hodei submit ...` and `hodei run ...` (submit's flags and run's own). */
hodei_status args_parse_submit(cli_args *a, int argc, char **argv, int i, hodei_err *err);
/* `hodei logs [-f] [--from SEQ] JOB_ID` (args_fleet.c). */
hodei_status args_parse_logs(cli_args *a, int argc, char **argv, int i, hodei_err *err);
/* `hodei workers [--provider P] [--all]` (args_fleet.c). */
hodei_status args_parse_workers(cli_args *a, int argc, char **argv, int i, hodei_err *err);
/* `hodei providers` and `hodei providers health NAME` (args_fleet.c). */
hodei_status args_parse_providers(cli_args *a, int argc, char **argv, int i, hodei_err *err);
/* `hodei secrets set NAME [--from-file PATH] | list | delete NAME` (args_secrets.c). */
hodei_status args_parse_secrets(cli_args *a, int argc, char **argv, int i, hodei_err *err);
/* `hodei templates create NAME [--param P]... [submit's flags] -- CMD | get NAME | list
 * | run NAME [-p K=V]...` (args_templates.c). */
hodei_status args_parse_templates(cli_args *a, int argc, char **argv, int i, hodei_err *err);

/* `hodei keys ...`, `hodei whoami`, `hodei audit ...` (args_keys.c). */
hodei_status args_parse_keys(cli_args *a, int argc, char **argv, int i, hodei_err *err);
hodei_status args_parse_whoami(cli_args *a, int argc, char **argv, int i, hodei_err *err);
hodei_status args_parse_audit(cli_args *a, int argc, char **argv, int i, hodei_err *err);
/* `hodei top [--interval DUR] [--window DUR] [--workers N] [--once]` and
 * `hodei dev [hodei-dev's flags]` (args_top.c). */
hodei_status args_parse_top(cli_args *a, int argc, char **argv, int i, hodei_err *err);
hodei_status args_parse_dev(cli_args *a, int argc, char **argv, int i, hodei_err *err);

/* Shared by submit, run and templates create (args_submit.c). */
/* submit's flags, then --param and --description of templates create. */
extern const args_flag args_template_create_flags[];
/* CMD [ARGS...]: the rest of argv is the command. */
hodei_status args_submit_command(cli_args *a, int argc, char **argv, int *i, hodei_err *err);
/* Defaults, then the whole request checked as the server will, naming the flag. */
hodei_status args_submit_finish(cli_args *a, hodei_err *err);
hodei_status args_raw(cli_args *a, const char *flag, const char *value, hodei_err *err);
hodei_status args_submit_quiet(cli_args *a, const char *flag, const char *value, hodei_err *err);
hodei_status args_submit_no_job_exit_code(cli_args *a, const char *flag, const char *value,
                                          hodei_err *err);
hodei_status args_submit_idempotency_key(cli_args *a, const char *flag, const char *value,
                                         hodei_err *err);
/* templates create --param NAME and --description TEXT (args_templates.c). */
hodei_status args_template_param(cli_args *a, const char *flag, const char *value, hodei_err *err);
hodei_status args_template_description(cli_args *a, const char *flag, const char *value,
                                       hodei_err *err);

#endif
