#include "help.h"

static const char help_tool[] =
    "Usage: hodei [GLOBAL OPTIONS] COMMAND [FLAGS] [ARGS]\n"
    "\n"
    "The command-line client of Hodei Jobs.\n"
    "\n"
    "Commands:\n"
    "  run       run a job and follow it: hodei run [FLAGS] -- CMD [ARGS...];\n"
    "            exits with the job's exit code (see hodei help run)\n"
    "  submit    queue a job: hodei submit [FLAGS] -- CMD [ARGS...]\n"
    "  status    show one job: hodei status JOB_ID\n"
    "  artifacts a job's output files: hodei artifacts JOB_ID [--download DIR]\n"
    "  logs      a job's output: hodei logs [-f] [--from SEQ] JOB_ID\n"
    "  jobs      list jobs, newest first\n"
    "  cancel    cancel a job: hodei cancel JOB_ID [--reason R]\n"
    "  workers   list ready workers: hodei workers [--provider P] [--all]\n"
    "  providers list providers; hodei providers health NAME\n"
    "  secrets   stored secrets: hodei secrets set NAME | list | delete NAME\n"
    "  templates job specs with ${param}: hodei templates create | get | list | run\n"
    "  keys      API keys (admin): hodei keys create NAME --scope S | list | revoke\n"
    "  whoami    the key this command runs as\n"
    "  audit     who changed what (admin): hodei audit [--actor A] [--action X] [--since 1h]\n"
    "  top       a live view of jobs, queue, workers and latencies (MetricsService)\n"
    "  dev       the whole local stack in the foreground until Ctrl-C (hodei-dev)\n"
    "  help      show the help of a command: hodei help run\n"
    "\n"
    "Global options (before the command):\n"
    "  --server ADDR          edge address (default $HODEI_SERVER, else 127.0.0.1:50051)\n"
    "  -o, --output FORMAT    human (default) or json: one JSON object per command\n"
    "  --call-timeout DUR     deadline of each call, e.g. 500ms, 10s, 2m (default 10s)\n"
    "  --api-key KEY          API key sent to the server (default $HODEI_API_KEY)\n"
    "  -n, --namespace NS     namespace of jobs, templates, secrets and audit queries\n"
    "                         (default $HODEI_NAMESPACE, else the key's first)\n"
    "  --tls-ca FILE          use TLS; trust the server certificate signed by this CA\n"
    "  --tls-cert FILE        client certificate for mutual TLS (with --tls-key)\n"
    "  --tls-key FILE         private key of --tls-cert\n"
    "  -h, --help             this help (also after a command)\n"
    "  --version              print the version\n"
    "\n"
    "Environment:\n"
    "  HODEI_SERVER           edge address when --server is not given\n"
    "  HODEI_API_KEY          API key when --api-key is not given\n"
    "  HODEI_NAMESPACE        namespace when --namespace is not given\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  any other error\n"
    "  2  usage error: bad command, flag or value (nothing was sent)\n"
    "  3  the server refused the request (INVALID_ARGUMENT, FAILED_PRECONDITION,\n"
    "     ALREADY_EXISTS, OUT_OF_RANGE)\n"
    "  4  not found (NOT_FOUND)\n"
    "  5  server unreachable or too slow (UNAVAILABLE, DEADLINE_EXCEEDED)\n"
    "  6  not allowed (UNAUTHENTICATED, PERMISSION_DENIED)\n"
    "Errors from the server are printed as \"hodei: <CODE>: <message>\".\n"
    "hodei run exits with the job's own code instead (hodei help run).\n";

static const char help_submit[] =
    "Usage: hodei submit [FLAGS] [--] CMD [ARGS...]\n"
    "       hodei submit [FLAGS] --script FILE [--interpreter PATH]\n"
    "\n"
    "Queues a job and prints its id alone on stdout, so that\n"
    "  id=$(hodei submit -- make test)\n"
    "works. Everything after CMD is passed to it verbatim, even words that look\n"
    "like flags; use -- before CMD when CMD itself starts with '-'.\n"
    "\n"
    "Flags:\n"
    "  --name NAME               free text shown in listings\n"
    "  -e, --env K=V             environment variable (repeatable)\n"
    "  -l, --label K=V           label attached to the job (repeatable)\n"
    "  --constraint K=V          worker label the job requires (repeatable)\n"
    "  --priority N              -1000..1000, higher runs first (default 0)\n"
    "  --timeout DUR             e.g. 30s, 5m, 2h, 1500ms; 1s..7 days (default: server's)\n"
    "  --max-attempts N          0..100 attempts in all (default 1)\n"
    "  --cpu N                   cores, decimal: 2, 0.5\n"
    "  --memory SIZE             512Mi, 2Gi, 1G, 64k or bytes (Ki/Mi/Gi/Ti/Pi = 1024^n)\n"
    "  --storage SIZE            like --memory\n"
    "  --gpus N                  0..64\n"
    "  --arch ARCH               amd64, arm64, x86_64 or aarch64\n"
    "  --provider NAME           preferred provider (default: any)\n"
    "  --image IMAGE             image for container providers\n"
    "  --idempotency-key KEY     resubmitting with the same key returns the same job\n"
    "  --secret NAME             stored secret handed to the job (repeatable)\n"
    "  --workdir DIR             absolute working directory\n"
    "  --script FILE             run FILE's content (\"-\" = stdin) instead of a command\n"
    "  --interpreter PATH        interpreter of --script (default /bin/sh)\n"
    "  --input [DEST=]URL        fetched into the workspace before the job: https://, http://,\n"
    "                            s3://bucket/key or s3://bucket/prefix/, file:///path "
    "(repeatable)\n"
    "  --output PATH=URL         uploaded after the job: a path or glob in the workspace to\n"
    "                            s3://bucket/key, s3://bucket/prefix/ or https:// (repeatable)\n"
    "  --checksum sha256:HEX     the last --input's checksum, verified\n"
    "  --credentials NAME        stored secret with the last --input/--output's S3 credentials\n"
    "  --when WHEN               the last --output: success (default), failure or always\n"
    "\n"
    "A resubmit that matched an earlier job prints \"(duplicate of an earlier submit)\"\n"
    "on stderr. With -o json: {\"job_id\":...,\"duplicate\":...,\"state\":...}.\n";

static const char help_status[] =
    "Usage: hodei status JOB_ID\n"
    "\n"
    "Shows one job: id, name, state, attempt/max, worker, exit code, error,\n"
    "created/started/finished times, the command and its output artifacts\n"
    "(state, size, location, checksum). With -o json: {\"job\":{...}}. Exit\n"
    "code 4 when the job does not exist.\n";

static const char help_artifacts[] =
    "Usage: hodei artifacts JOB_ID [--download DIR]\n"
    "\n"
    "Lists the output files of the job's latest attempt that produced any:\n"
    "STATE (UPLOADED or FAILED), SIZE, SOURCE (path in the workspace),\n"
    "LOCATION and CHECKSUM, or the error. With --download DIR each uploaded\n"
    "file is fetched into DIR/SOURCE and its checksum verified. S3 locations\n"
    "use AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN),\n"
    "AWS_REGION, and HODEI_S3_ENDPOINT / HODEI_S3_PATH_STYLE=true for an\n"
    "S3-compatible store; HODEI_ARTIFACTS_CA_FILE adds a CA for https.\n"
    "With -o json: {\"artifacts\":[...]}. Exit code 1 when a download fails.\n";

static const char help_jobs[] =
    "Usage: hodei jobs [--state S]... [--label K=V]... [--older-than DUR] [--limit N]\n"
    "                  [--page-token T]\n"
    "\n"
    "Lists jobs, newest first, as a table: ID, STATE (* = cancel requested),\n"
    "PRIO, ATTEMPT, AGE, COMMAND/NAME; then the token of the next page, if any.\n"
    "\n"
    "Flags:\n"
    "  --state S        only jobs in state S: pending, assigned, running, succeeded,\n"
    "                   failed, cancelled, timeout (repeatable, or comma-separated)\n"
    "  -l, --label K=V  only jobs labelled K=V (hodei submit --label); repeatable:\n"
    "                   every one must match\n"
    "  --older-than DUR only jobs that finished more than DUR ago (30d, 12h): what\n"
    "                   the supervisor's retention.jobs of DUR deletes\n"
    "  --limit N        at most N jobs, 1..1000 (default: the server's, 50)\n"
    "  --page-token T   continue after an earlier page\n"
    "\n"
    "With -o json: {\"jobs\":[...],\"next_page_token\":\"...\"}.\n";

static const char help_cancel[] =
    "Usage: hodei cancel JOB_ID [--reason R]\n"
    "\n"
    "Cancels a job and prints its resulting state: CANCELLED at once for a job\n"
    "that had not started, else its current state with \"(cancel requested)\"\n"
    "until the worker has stopped it. With -o json: {\"job\":{...}}.\n"
    "Exit code 3 when the job has already finished.\n";

static const char help_run[] =
    "Usage: hodei run [FLAGS] [--] CMD [ARGS...]\n"
    "       hodei run [FLAGS] --script FILE [--interpreter PATH]\n"
    "\n"
    "Queues a job like hodei submit, shows on stderr what it waits for (queued,\n"
    "position, waiting for or provisioning a worker, starting), then prints its\n"
    "output as it is produced: the job's stdout on stdout, its stderr on stderr,\n"
    "each line's bytes exactly as written. It ends when the job ends, with the\n"
    "job's exit code. The status line is rewritten in place on a terminal and\n"
    "printed once per change otherwise; every line of hodei's own starts with\n"
    "\"hodei: \".\n"
    "\n"
    "Ctrl-C cancels the job and keeps following it until it has stopped (exit\n"
    "130); a second Ctrl-C exits at once and leaves the job to the server. If\n"
    "the connection to the edge breaks, hodei reconnects and carries on from\n"
    "the last line it printed, so no line is printed twice.\n"
    "\n"
    "Flags: every flag of hodei submit (hodei help submit), and\n"
    "  --no-job-exit-code   exit 0 whenever the job ended, whatever its result\n"
    "  -q, --quiet          no waiting status on stderr\n"
    "  --raw                the job's output bytes exactly, terminal escapes included\n"
    "                       (by default control bytes show as ^[, ^M, \\x9b)\n"
    "\n"
    "Exit codes (the job's, unlike the other commands):\n"
    "  0     the job succeeded\n"
    "  N     the job failed with exit code N (1 when it reported 0)\n"
    "  124   the job timed out\n"
    "  127   the job's command could not be started (the reason is on stderr)\n"
    "  130   the job was cancelled, or you pressed Ctrl-C\n"
    "  2, 5  and the other codes of hodei --help when hodei itself failed: a\n"
    "        usage error (2, nothing was sent) or an unreachable server (5)\n"
    "To tell them apart: a job that did not succeed ends with the line\n"
    "\"hodei: job ID STATE (exit code N)\" on stderr, hodei's own failures print\n"
    "\"hodei: <CODE>: ...\" or \"hodei: <flag>: ...\"; or use --no-job-exit-code,\n"
    "with which any non-zero code is hodei's own.\n"
    "\n"
    "With -o json, stdout carries JSON Lines: one object per output line (as\n"
    "hodei logs -o json) and last {\"job\":{...}} with the final state.\n";

static const char help_logs[] =
    "Usage: hodei logs [-f|--follow] [--from SEQ] [--raw] JOB_ID\n"
    "\n"
    "Prints a job's output so far (GetLogs): its stdout lines on stdout, its\n"
    "stderr lines on stderr. Control bytes that a terminal would act on are\n"
    "shown as text (ESC as ^[, CR as ^M, C1 controls and bytes that are not\n"
    "UTF-8 as \\xNN); --raw writes each line's bytes exactly. With -f,\n"
    "keeps following the job (SubscribeLogs) until it ends, reconnecting from\n"
    "the last line printed if the connection breaks.\n"
    "\n"
    "Flags:\n"
    "  -f, --follow   follow until the job ends\n"
    "  --from SEQ     start at line sequence SEQ (1 = the first line)\n"
    "  --raw          the bytes exactly as written, terminal escapes included\n"
    "\n"
    "With -o json, stdout carries JSON Lines, one object per line:\n"
    "{\"sequence\":N,\"stream\":\"stdout\"|\"stderr\",\"time\":\"...\",\"data\":\"...\"},\n"
    "plus \"data_base64\" with the exact bytes when they are not UTF-8.\n";

static const char help_top[] =
    "Usage: hodei top [--interval DUR] [--window DUR] [--workers N] [--once]\n"
    "\n"
    "A live view of the platform, redrawn as the edge streams it (StreamMetrics):\n"
    "jobs pending, assigned and running; jobs ended in the last 10 s and the rate;\n"
    "the queue by priority band and provider with its oldest wait; each\n"
    "provider's workers, CPU and memory in use; the live workers, busiest first.\n"
    "Every 5 s it also asks for the window's figures (GetAggregatedMetrics): jobs\n"
    "ended by state, dispatch latency and run time percentiles, utilisation.\n"
    "Ctrl-C ends it.\n"
    "\n"
    "Flags:\n"
    "  -n, --interval DUR   between snapshots, 100ms..60s (default 1s)\n"
    "  -w, --window DUR     window of the summaries, 1s..7 days (default 1h)\n"
    "  --workers N          workers listed, 0..1000 (default 20)\n"
    "  -1, --once           print one view and exit (a pipe or a script)\n"
    "\n"
    "On a terminal the view is redrawn in place; otherwise each view follows the\n"
    "last. With -o json: one JSON object per view (JSON Lines):\n"
    "{\"snapshot\":{...},\"window\":{...}} with the messages' field names.\n";

static const char help_dev[] =
    "Usage: hodei dev [--warm N] [--edge-port P] [--state-dir DIR] [--purge]\n"
    "\n"
    "Runs hodei-dev (scripts/hodei-dev; make dev): a private nats-server and\n"
    "PostgreSQL, every daemon and the process provider with N warm workers, in\n"
    "the foreground. It prints the edge's address, the dashboard, an API key and\n"
    "each daemon's /metrics, then waits; Ctrl-C stops everything it started and\n"
    "keeps the data for the next run (--purge deletes it). hodei-dev --help\n"
    "tells the rest.\n";

static const char help_workers[] =
    "Usage: hodei workers [--provider P] [--all]\n"
    "\n"
    "Lists the workers ready to take a job (GetAvailableWorkers) as a table:\n"
    "ID, PROVIDER, STATE, CPU, MEMORY, LABELS, LAST HEARTBEAT.\n"
    "\n"
    "Flags:\n"
    "  --provider P   only the workers of provider P\n"
    "  --all          every worker the server returns, whatever its state\n"
    "\n"
    "With -o json: {\"workers\":[...]}.\n";

static const char help_providers[] =
    "Usage: hodei providers\n"
    "       hodei providers health NAME\n"
    "\n"
    "Lists the providers workers are created on (ListProviders) as a table:\n"
    "NAME, TYPE, ENABLED, MAX (workers), WARM MIN/MAX (warm pool), IDLE TTL.\n"
    "With health NAME, shows one provider's health (GetProviderHealth) and\n"
    "exits 1 when it is not healthy.\n"
    "\n"
    "With -o json: {\"providers\":[...]}, or {\"name\",\"healthy\",\"message\",\n"
    "\"workers\",\"checked_at\"} for health.\n";

static const char help_secrets[] =
    "Usage: hodei secrets set NAME [--from-file PATH]\n"
    "       hodei secrets list\n"
    "       hodei secrets delete NAME\n"
    "\n"
    "Secrets are values the edge stores encrypted (SecretService) and gives to\n"
    "the jobs that name them (submit/run --secret NAME) as one JSON object on\n"
    "their stdin; their output shows [REDACTED] in place of each value.\n"
    "NAME is 1 to 128 of A-Z, a-z, 0-9, _, ., -.\n"
    "\n"
    "  set NAME      create or replace; the value is read from stdin (one\n"
    "                trailing newline dropped), 1 to 8192 bytes of UTF-8\n"
    "  list          names and update times; values are never shown\n"
    "  delete NAME   remove it (exit 4 when there is none)\n"
    "\n"
    "A secret belongs to a namespace (hodei --namespace NS secrets ...; default the\n"
    "key's first). A job uses its own namespace's secrets by NAME, and another\n"
    "namespace's as NS/NAME once that secret is shared with the job's namespace.\n"
    "\n"
    "Flags:\n"
    "  --from-file PATH     set: read the value from PATH, as it is\n"
    "  --share-with NS      set: jobs of namespace NS may use it as <its ns>/NAME\n"
    "                       (repeatable; setting again replaces the list)\n"
    "\n"
    "With -o json: {\"name\",\"created\",\"updated_at\"} for set,\n"
    "{\"secrets\":[{\"name\",\"updated_at\"}]} for list, {\"name\",\"deleted\"} for delete.\n";

static const char help_templates[] =
    "Usage: hodei templates create NAME [--param P]... [--description TEXT]\n"
    "                              [submit's flags] -- CMD [ARGS...]\n"
    "       hodei templates get NAME\n"
    "       hodei templates list\n"
    "       hodei templates run NAME [-p P=VALUE]... [--idempotency-key KEY]\n"
    "                               [--quiet] [--no-job-exit-code]\n"
    "\n"
    "A template is a job spec kept on the server (TemplateService) whose strings\n"
    "(name, command and args, script, env and label values, workdir, image) may\n"
    "hold ${P} for each declared parameter P; other ${...} (a shell's ${HOME})\n"
    "are left alone. NAME is 1 to 63 of a-z, 0-9, _, ., -.\n"
    "\n"
    "  create NAME   create, or replace (its version goes up by one); every --param\n"
    "                must appear in the spec as ${P}. Quote ${P} from your shell:\n"
    "                hodei templates create greet --param who -- sh -c 'echo hi ${who}'\n"
    "  get NAME      the template, its parameters and command\n"
    "  list          every template (the first 1000 by name)\n"
    "  run NAME      queue the job with every parameter given (-p P=VALUE) and\n"
    "                follow it as hodei run does; exits with the job's exit code\n"
    "\n"
    "Values go into the command as they are: a template that puts a parameter\n"
    "into a shell command trusts whoever may run it.\n"
    "\n"
    "With -o json: {\"name\",\"version\",\"description\",\"parameters\",\"created_at\"}\n"
    "for create, the same with \"spec\" for get, {\"templates\":[...]} for list; run\n"
    "prints what hodei run prints.\n";

static const char help_keys[] =
    "Usage: hodei keys create NAME --scope S [--scope S]... [--namespace NS]...\n"
    "                             [--owner TEXT] [--expires WHEN] [--cert-name NAME]\n"
    "       hodei keys list [--all]\n"
    "       hodei keys revoke ID|NAME\n"
    "\n"
    "API keys for clients (KeyService; needs a key with scope admin). A key is\n"
    "shown once, when it is made: create prints it alone on stdout, so that\n"
    "  key=$(hodei keys create ci --scope jobs:submit --scope jobs:read)\n"
    "works; what it is goes to stderr. The server keeps only its SHA-256.\n"
    "\n"
    "Scopes: jobs:submit, jobs:read, jobs:cancel, logs:read, templates:write,\n"
    "secrets:write, admin (everything, every namespace, keys, audit, providers,\n"
    "scheduler configuration).\n"
    "\n"
    "Flags of create:\n"
    "  --scope S          a scope (repeatable, at least one)\n"
    "  --namespace NS     a namespace it may use (repeatable; the first is where its\n"
    "                     jobs go by default; none = default)\n"
    "  --owner TEXT       who holds it\n"
    "  --expires WHEN     90d, 12h, or 2027-01-31T00:00:00Z (default: never)\n"
    "  --cert-name NAME   a client certificate with this name (SAN) acts as this key\n"
    "                     when the edge requires mutual TLS\n"
    "list --all shows revoked keys too. A revoked key stops working at once on the\n"
    "edge that revoked it, within auth.cache_ttl (2 s, at most 5 s) on the others.\n";

static const char help_whoami[] =
    "Usage: hodei whoami\n"
    "\n"
    "The key this command runs as (--api-key or HODEI_API_KEY): its name, id,\n"
    "owner, scopes, namespaces and expiry, and the address the edge sees.\n";

static const char help_audit[] =
    "Usage: hodei [--namespace NS] audit [--actor A] [--action X] [--object ID]\n"
    "                                  [--since WHEN] [--limit N] [--page-token T]\n"
    "\n"
    "The audit log, newest first (AuditService; needs scope admin): every change\n"
    "(job.queue, job.cancel, template.*, secret.*, provider.register,\n"
    "scheduler.configure, key.*) and every secret given to a job (secret.use),\n"
    "with the key that did it and its address. Values of secrets are never in it.\n"
    "\n"
    "Flags:\n"
    "  --actor A       a key's name or id\n"
    "  --action X      an action, or a prefix ending in *: --action 'secret.*'\n"
    "  --object ID     a job id, a secret's NS/NAME, a template's name, ...\n"
    "  --since WHEN    30m, 2h, 7d back from now, or 2026-12-07T10:00:00Z\n"
    "  --limit N       1..1000 entries (default 100); then Next page token: T\n"
    "  --page-token T  the next page\n";

void cli_help_print(cli_command cmd, FILE *out)
{
    static const char *const texts[CLI_CMD_COUNT_] = {
        [CLI_CMD_NONE] = help_tool,
        [CLI_CMD_SUBMIT] = help_submit,
        [CLI_CMD_STATUS] = help_status,
        [CLI_CMD_JOBS] = help_jobs,
        [CLI_CMD_CANCEL] = help_cancel,
        [CLI_CMD_RUN] = help_run,
        [CLI_CMD_LOGS] = help_logs,
        [CLI_CMD_WORKERS] = help_workers,
        [CLI_CMD_PROVIDERS] = help_providers,
        [CLI_CMD_SECRETS] = help_secrets,
        [CLI_CMD_TEMPLATES] = help_templates,
        [CLI_CMD_KEYS] = help_keys,
        [CLI_CMD_WHOAMI] = help_whoami,
        [CLI_CMD_AUDIT] = help_audit,
        [CLI_CMD_TOP] = help_top,
        [CLI_CMD_DEV] = help_dev,
        [CLI_CMD_ARTIFACTS] = help_artifacts,
    };
    fputs(texts[(unsigned)cmd < CLI_CMD_COUNT_ ? cmd : CLI_CMD_NONE], out);
}

void cli_help_hint(cli_command cmd, FILE *err)
{
    if (cmd == CLI_CMD_NONE)
        fprintf(err, "Try 'hodei --help'.\n");
    else
        fprintf(err, "Try 'hodei help %s'.\n", cli_command_name(cmd));
}
