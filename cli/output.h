/* What the user sees: responses rendered for people (`--output human`) or
 * programs (`--output json`, one JSON object per command), server errors as
 * "hodei: <CODE>: <message>", and the exit code of each outcome.
 *
 * Human output never passes control characters or invalid UTF-8 from the
 * server to the terminal: they are shown as '?' and U+FFFD. */
#ifndef HODEI_CLI_OUTPUT_H
#define HODEI_CLI_OUTPUT_H

#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "hodei/rpc.h"
#include "hodei/v1/job.pb-c.h"

#define CLI_OUTPUT_MAX (128 * 1024 * 1024) /* bytes of one JSON document */
#define CLI_TABLE_TEXT_MAX 60              /* characters of COMMAND/NAME in `jobs` */
#define CLI_CELL_MAX 512                   /* bytes of one rendered table cell */

/* Exit code for the gRPC status a call ended with (CLI_EXIT_*). */
int cli_exit_from_grpc(hodei_grpc_code code);
/* Exit code when a call could not be made at all. */
int cli_exit_from_status(hodei_status st);

/* "hodei: NOT_FOUND: job 0190... not found" on err. */
void cli_output_error(FILE *err, const char *code_name, const char *message);

/* Each returns CLI_EXIT_OK, or CLI_EXIT_ERROR when the output could not be
 * built or written. now_us is the wall clock (ages in `jobs`). */
int cli_output_submit(cli_output_format fmt, const Hodei__V1__QueueJobResponse *resp, FILE *out,
                      FILE *err);
int cli_output_status(cli_output_format fmt, const Hodei__V1__Job *job, FILE *out);
/* hodei artifacts: the job's output records, as lines or {"job_id","artifacts":[...]}. */
int cli_output_artifacts(cli_output_format fmt, const Hodei__V1__Job *job, FILE *out);
void cli_output_record_lines(size_t n, Hodei__V1__ArtifactRecord *const *items, const char *indent,
                             FILE *out);
const char *cli_artifact_state_name(Hodei__V1__ArtifactState st);
int cli_output_jobs(cli_output_format fmt, const Hodei__V1__ListJobsResponse *resp, int64_t now_us,
                    FILE *out, FILE *err);
int cli_output_cancel(cli_output_format fmt, const Hodei__V1__Job *job, FILE *out);

/* `workers`: READY workers only unless `all`; table ID, PROVIDER, STATE,
 * CPU, MEMORY, LABELS, LAST HEARTBEAT, or {"workers":[...]}. */
int cli_output_workers(cli_output_format fmt, const Hodei__V1__GetAvailableWorkersResponse *resp,
                       bool all, int64_t now_us, FILE *out, FILE *err);
/* `providers`: table NAME, TYPE, ENABLED, MAX, WARM MIN/MAX, IDLE TTL, or
 * {"providers":[...]}. */
int cli_output_providers(cli_output_format fmt, const Hodei__V1__ListProvidersResponse *resp,
                         FILE *out, FILE *err);
/* `providers health NAME`; CLI_EXIT_ERROR also when the provider is not
 * healthy, so that `hodei providers health p && ...` works. */
int cli_output_provider_health(cli_output_format fmt, const Hodei__V1__GetProviderHealthResponse *h,
                               FILE *out);

/* `secrets set`: "secret NAME created|replaced" or {"name","created","updated_at"};
 * `secrets list`: table NAME, UPDATED or {"secrets":[{"name","updated_at"}]};
 * `secrets delete`: "secret NAME deleted" or {"name","deleted":true}. */
int cli_output_secret_set(cli_output_format fmt, const Hodei__V1__SetSecretResponse *r, FILE *out);
int cli_output_secrets(cli_output_format fmt, const Hodei__V1__ListSecretsResponse *r, FILE *out,
                       FILE *err);
int cli_output_secret_deleted(cli_output_format fmt, const char *name, FILE *out);
/* `hodei templates` (output_templates.c): create's answer, one template, the list. */
int cli_output_template_created(cli_output_format fmt, const Hodei__V1__Template *t, FILE *out);
int cli_output_template(cli_output_format fmt, const Hodei__V1__Template *t, FILE *out);
int cli_output_templates(cli_output_format fmt, const Hodei__V1__ListTemplatesResponse *r,
                         FILE *out, FILE *err);

/* `hodei keys` (output_keys.c): create prints the key alone on stdout and
 * what it is on err; list is a table ID NAME STATE SCOPES NAMESPACES EXPIRES;
 * revoke "key NAME (ID) revoked". `hodei whoami`; `hodei audit` a table
 * TIME ACTOR ACTION NAMESPACE OBJECT DETAIL, then "Next page token: T". */
int cli_output_key_created(cli_output_format fmt, const Hodei__V1__CreateKeyResponse *r, FILE *out,
                           FILE *err);
int cli_output_keys(cli_output_format fmt, const Hodei__V1__ListKeysResponse *r, FILE *out,
                    FILE *err);
int cli_output_key_revoked(cli_output_format fmt, const Hodei__V1__RevokeKeyResponse *r, FILE *out);
int cli_output_whoami(cli_output_format fmt, const Hodei__V1__WhoAmIResponse *r, FILE *out);
int cli_output_audit(cli_output_format fmt, const Hodei__V1__QueryAuditResponse *r, FILE *out,
                     FILE *err);

/* "process", "docker", "kubernetes", "firecracker", "unspecified". */
const char *cli_provider_type_name(Hodei__V1__ProviderType type);
/* "512Mi", "2Gi", "1.5Gi" (powers of 1024), "100" bytes; "-" when <= 0. */
void cli_format_size(int64_t bytes, char *out, size_t out_len);
/* "1h30m", "5m", "30s", "1500ms"; "-" when <= 0. */
void cli_format_duration(int64_t ms, char *out, size_t out_len);

/* Shown in `jobs` AGE: "42s", "7m", "5h", "3d"; "-" when created_us <= 0. */
void cli_format_age(int64_t created_us, int64_t now_us, char *out, size_t out_len);
/* The command line of a spec for people: args quoted like a shell would
 * need them ("echo 'a b'"), or "script: /bin/sh (120 bytes)". */
void cli_format_command(const Hodei__V1__JobSpec *spec, char *out, size_t out_len);

#endif
