/* Command line of the `hodei` tool, parsed into the request message of the
 * chosen command without talking to any server. Every bad argument is refused
 * here with a message that names the flag (exit code 2).
 *
 *   hodei [GLOBAL OPTIONS] COMMAND [FLAGS] [ARGS]
 *
 * Strings in the requests point into argv, into the environment, or into the
 * arena of cli_args; all of it lives until cli_args_fini. */
#ifndef HODEI_CLI_ARGS_H
#define HODEI_CLI_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "hodei/arena.h"
#include "hodei/auth.h"
#include "hodei/limits.h"
#include "hodei/status.h"
#include "hodei/template.h"
#include "hodei/v1/audit.pb-c.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/keys.pb-c.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/metrics.pb-c.h"
#include "hodei/v1/provider.pb-c.h"
#include "hodei/v1/scheduler.pb-c.h"
#include "hodei/v1/secret.pb-c.h"
#include "hodei/v1/template.pb-c.h"

#define CLI_DEFAULT_SERVER "127.0.0.1:50051"
#define CLI_DEFAULT_CALL_TIMEOUT_MS INT64_C(10000)
#define CLI_CALL_TIMEOUT_MS_MAX INT64_C(86400000) /* one day */
#define CLI_SERVER_MAX 256                        /* bytes of an address */
#define CLI_API_KEY_MAX 512
#define CLI_CANCEL_REASON_MAX 1024
#define CLI_PAGE_TOKEN_MAX 1024
#define CLI_LIST_LIMIT_MAX 1000
#define CLI_STATES_MAX 7 /* distinct job states */
#define CLI_ARENA_MAX (4 * 1024 * 1024)
#define CLI_DEFAULT_INTERPRETER "/bin/sh"
#define CLI_PROVIDER_NAME_MAX HODEI_PROVIDER_NAME_MAX /* bytes; [a-z0-9-] */
#define CLI_SECRET_NAME_MAX 128                       /* bytes; [A-Za-z0-9_.-] */
#define CLI_SECRET_VALUE_MAX 8192                     /* bytes of a secret value */
#define CLI_TOP_INTERVAL_DEFAULT_MS 1000
#define CLI_TOP_INTERVAL_MIN_MS 100
#define CLI_TOP_INTERVAL_MAX_MS 60000
#define CLI_TOP_WINDOW_DEFAULT_MS (3600LL * 1000)
#define CLI_TOP_WINDOW_MIN_MS 1000LL
#define CLI_TOP_WINDOW_MAX_MS (7LL * 24 * 3600 * 1000)
#define CLI_TOP_WORKERS_DEFAULT 20
#define CLI_TOP_WORKERS_MAX 1000

/* Exit codes, documented in `hodei --help` and cli/README.md. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_ERROR = 1,   /* anything else */
    CLI_EXIT_USAGE = 2,   /* bad command, flag or value: nothing was sent */
    CLI_EXIT_REFUSED = 3, /* INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS, OUT_OF_RANGE */
    CLI_EXIT_NOT_FOUND = 4,
    CLI_EXIT_UNAVAILABLE = 5, /* UNAVAILABLE, DEADLINE_EXCEEDED */
    CLI_EXIT_DENIED = 6,      /* UNAUTHENTICATED, PERMISSION_DENIED */
};

typedef enum {
    CLI_CMD_NONE = 0,
    CLI_CMD_SUBMIT,
    CLI_CMD_STATUS,
    CLI_CMD_JOBS,
    CLI_CMD_CANCEL,
    CLI_CMD_RUN,
    CLI_CMD_LOGS,
    CLI_CMD_WORKERS,
    CLI_CMD_PROVIDERS,
    CLI_CMD_SECRETS,
    CLI_CMD_TEMPLATES,
    CLI_CMD_KEYS,
    CLI_CMD_WHOAMI,
    CLI_CMD_AUDIT,
    CLI_CMD_TOP,
    CLI_CMD_DEV,
    CLI_CMD_ARTIFACTS,
    CLI_CMD_COUNT_
} cli_command;

typedef enum { CLI_OUTPUT_HUMAN = 0, CLI_OUTPUT_JSON } cli_output_format;

/* `hodei keys ACTION` */
typedef enum {
    CLI_KEYS_NONE = 0,
    CLI_KEYS_CREATE,
    CLI_KEYS_LIST,
    CLI_KEYS_REVOKE,
} cli_keys_action;

#define CLI_SHARE_MAX HODEI_NS_PER_KEY_MAX /* secrets set --share-with */

/* `hodei secrets ACTION` */
typedef enum {
    CLI_SECRETS_NONE = 0,
    CLI_SECRETS_SET,
    CLI_SECRETS_LIST,
    CLI_SECRETS_DELETE,
} cli_secrets_action;

/* `hodei templates ACTION` */
typedef enum {
    CLI_TEMPLATES_NONE = 0,
    CLI_TEMPLATES_CREATE,
    CLI_TEMPLATES_GET,
    CLI_TEMPLATES_LIST,
    CLI_TEMPLATES_RUN,
} cli_templates_action;

typedef struct {
    /* global options */
    const char *server;
    cli_output_format output;
    int64_t call_timeout_ms;
    const char *api_key; /* NULL = none */
    const char *tls_ca;  /* all NULL = insecure */
    const char *tls_cert;
    const char *tls_key;
    const char *ns; /* --namespace / HODEI_NAMESPACE; NULL = the key's first */

    cli_command command;
    bool help; /* print the help of `command` (NONE = the tool's) */
    bool version;

    /* the request of `command`; only that one is filled (run fills queue) */
    Hodei__V1__QueueJobRequest queue;
    Hodei__V1__JobSpec spec;
    Hodei__V1__ShellCommand shell;
    Hodei__V1__Script script;
    Hodei__V1__ResourceRequirements resources;
    Hodei__V1__GetJobStatusRequest status;
    Hodei__V1__CancelJobRequest cancel;
    Hodei__V1__ListJobsRequest list;
    Hodei__V1__JobState list_states[CLI_STATES_MAX];
    Hodei__V1__GetLogsRequest logs; /* logs: job_id, from_sequence (also -f) */
    Hodei__V1__GetAvailableWorkersRequest workers;
    Hodei__V1__ListProvidersRequest providers;
    Hodei__V1__GetProviderHealthRequest health;
    Hodei__V1__SetSecretRequest secret_set; /* value in the arena, never printed */
    Hodei__V1__ListSecretsRequest secret_list;
    Hodei__V1__DeleteSecretRequest secret_delete;
    Hodei__V1__Template template_; /* templates create: spec = &spec */
    Hodei__V1__CreateTemplateRequest template_create;
    Hodei__V1__GetTemplateRequest template_get;
    Hodei__V1__ListTemplatesRequest template_list;
    Hodei__V1__RunTemplateRequest template_run; /* templates run (followed as run is) */
    char *template_params[HODEI_TEMPLATE_PARAMS_MAX];
    Hodei__V1__RunTemplateRequest__ParametersEntry *template_values[HODEI_TEMPLATE_PARAMS_MAX];
    char *secret_share[CLI_SHARE_MAX]; /* secrets set --share-with */
    Hodei__V1__CreateKeyRequest key_create;
    char *key_scopes[HODEI_SCOPE_COUNT];
    char *key_namespaces[HODEI_NS_PER_KEY_MAX];
    Hodei__V1__Timestamp key_expires;
    Hodei__V1__ListKeysRequest key_list;
    Hodei__V1__RevokeKeyRequest key_revoke;
    Hodei__V1__WhoAmIRequest whoami;
    Hodei__V1__QueryAuditRequest audit;
    Hodei__V1__Timestamp audit_since;

    /* flags that are not part of a request */
    Hodei__V1__Artifact *last_artifact; /* --checksum, --credentials, --when apply to it */
    const char *download_dir;           /* artifacts --download DIR: "" = list only */
    int64_t older_than_ms;              /* jobs --older-than: finished that long ago; 0 = any */
    Hodei__V1__Timestamp finished_before;
    bool no_job_exit_code; /* run: exit 0 once the job has ended, whatever its result */
    bool quiet;            /* run: no waiting status on stderr */
    bool follow;           /* logs -f */
    bool raw;              /* logs, run, templates run --raw: output bytes as they are */
    bool all_workers;      /* workers --all: every state the server returns */
    bool provider_health;  /* `providers health NAME` */
    cli_secrets_action secrets_action;
    const char *secret_name;      /* secrets set/delete NAME */
    const char *secret_from_file; /* secrets set --from-file PATH; NULL = stdin */
    cli_templates_action templates_action;
    const char *template_name; /* templates create/get/run NAME */
    cli_keys_action keys_action;
    /* top: the stream's request, the window of the summaries */
    Hodei__V1__StreamMetricsRequest top_stream;
    Hodei__V1__GetAggregatedMetricsRequest top_window;
    bool top_once;       /* one frame, then exit */
    bool top_no_workers; /* --workers 0: no worker table */
    /* dev: the words after `dev`, handed to hodei-dev */
    int dev_argc;
    char **dev_argv;

    hodei_arena arena;
} cli_args;

/* How the parser reads the environment (getenv in the tool, a table in tests). */
typedef const char *(*cli_getenv_fn)(const char *name);

/* Parses argv[1..argc). On error returns HODEI_ERR_INVALID with err->msg
 * naming the flag ("--priority: must be an integer, got \"x\""); the caller
 * still calls cli_args_fini. Reads the file of `--script` (and stdin for
 * `--script -`); touches nothing else. */
hodei_status cli_args_parse(cli_args *a, int argc, char **argv, cli_getenv_fn env, hodei_err *err);
void cli_args_fini(cli_args *a);

/* `secrets set`: reads the value from in (one trailing newline dropped), or
 * from a->secret_from_file as it is when in is NULL, into a->secret_set.value.
 * Empty or over CLI_SECRET_VALUE_MAX bytes: HODEI_ERR_INVALID naming stdin or
 * --from-file. The parser calls it; exposed for tests. */
hodei_status cli_secret_value_read(cli_args *a, FILE *in, hodei_err *err);

/* Command names as typed ("submit"), "" for NONE. */
const char *cli_command_name(cli_command cmd);

/* Value parsers, exposed for tests. Each returns false on anything but the
 * whole string being a valid value. */
/* "512Mi", "2Gi", "1G", "64k", "100" (bytes); suffixes k K M G T P (powers of
 * 1000) and Ki Mi Gi Ti Pi (powers of 1024), each optionally followed by B. */
bool cli_parse_size(const char *s, int64_t *out);
/* "5s", "2m", "1h", "250ms", "1500" (ms). */
bool cli_parse_duration(const char *s, int64_t *out_ms);
/* "2", "0.5", ".25": plain decimal, no sign, exponent, inf or nan. */
bool cli_parse_decimal(const char *s, double *out);
/* A point in time for --since and --expires: a duration back from (since)
 * or ahead of (expires) now_us ("30m", "2h", "7d"), or RFC 3339 UTC
 * ("2026-12-07T10:00:00Z"). */
bool cli_parse_when(const char *s, int64_t now_us, bool ahead, int64_t *out_us);
/* "K=V": key is everything before the first '=' and must not be empty; the
 * value may be empty or hold more '='. */
bool cli_parse_kv(const char *s, const char **key, size_t *key_len, const char **value);

#endif
