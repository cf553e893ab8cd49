#include "output.h"

#include <inttypes.h>
#include <string.h>

#include "hodei/buf.h"
#include "hodei/job_state.h"
#include "hodei/time.h"
#include "json.h"
#include "output_int.h"

#define OUTPUT_ELLIPSIS "..."

/* ------------------------------------------------------------ exit codes */

int cli_exit_from_grpc(hodei_grpc_code code)
{
    switch (code) {
    case HODEI_GRPC_OK:
        return CLI_EXIT_OK;
    case HODEI_GRPC_INVALID_ARGUMENT:
    case HODEI_GRPC_FAILED_PRECONDITION:
    case HODEI_GRPC_ALREADY_EXISTS:
    case HODEI_GRPC_OUT_OF_RANGE:
        return CLI_EXIT_REFUSED;
    case HODEI_GRPC_NOT_FOUND:
        return CLI_EXIT_NOT_FOUND;
    case HODEI_GRPC_UNAVAILABLE:
    case HODEI_GRPC_DEADLINE_EXCEEDED:
        return CLI_EXIT_UNAVAILABLE;
    case HODEI_GRPC_UNAUTHENTICATED:
    case HODEI_GRPC_PERMISSION_DENIED:
        return CLI_EXIT_DENIED;
    default:
        return CLI_EXIT_ERROR;
    }
}

int cli_exit_from_status(hodei_status st)
{
    switch (st) {
    case HODEI_OK:
        return CLI_EXIT_OK;
    case HODEI_ERR_UNAVAILABLE:
    case HODEI_ERR_TIMEOUT:
        return CLI_EXIT_UNAVAILABLE;
    case HODEI_ERR_UNAUTHENTICATED:
    case HODEI_ERR_PERMISSION:
        return CLI_EXIT_DENIED;
    default:
        return CLI_EXIT_ERROR;
    }
}

/* ------------------------------------------------------------ text for people */

size_t output_sanitize(const char *s, size_t max_chars, char *out, size_t out_len)
{
    size_t len = strlen(s), i = 0, o = 0, chars = 0;
    while (i < len && chars < max_chars) {
        size_t n = cli_utf8_seq_len(s + i, len - i);
        const char *piece = n ? s + i : "\xef\xbf\xbd";
        size_t piece_len = n ? n : 3;
        if (n == 1 && ((unsigned char)s[i] < 0x20 || s[i] == 0x7f))
            piece = "?";
        if (o + piece_len + sizeof OUTPUT_ELLIPSIS > out_len)
            break;
        memcpy(out + o, piece, piece_len);
        o += piece_len;
        i += n ? n : 1;
        chars++;
    }
    if (i < len) {
        memcpy(out + o, OUTPUT_ELLIPSIS, sizeof OUTPUT_ELLIPSIS);
        return chars + strlen(OUTPUT_ELLIPSIS);
    }
    out[o] = '\0';
    return chars;
}

void cli_output_error(FILE *err, const char *code_name, const char *message)
{
    char clean[OUTPUT_LINE_MAX];
    output_sanitize(message ? message : "", OUTPUT_LINE_MAX, clean, sizeof clean);
    fprintf(err, "hodei: %s: %s\n", code_name, clean);
}

void cli_format_age(int64_t created_us, int64_t now_us, char *out, size_t out_len)
{
    if (created_us <= 0) {
        snprintf(out, out_len, "-");
        return;
    }
    int64_t s = now_us > created_us ? (now_us - created_us) / 1000000 : 0;
    if (s < 120)
        snprintf(out, out_len, "%" PRId64 "s", s);
    else if (s < 120 * 60)
        snprintf(out, out_len, "%" PRId64 "m", s / 60);
    else if (s < 48 * 3600)
        snprintf(out, out_len, "%" PRId64 "h", s / 3600);
    else
        snprintf(out, out_len, "%" PRId64 "d", s / 86400);
}

static bool output_word_plain(const char *w)
{
    if (!w[0])
        return false;
    for (const char *p = w; *p; p++) {
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,@%+-", *p))
            return false;
    }
    return true;
}

/* Appends w to b, in single quotes unless it needs none. */
static void output_shell_word(hodei_buf *b, const char *w)
{
    if (output_word_plain(w)) {
        hodei_buf_puts(b, w);
        return;
    }
    hodei_buf_putc(b, '\'');
    for (const char *p = w; *p; p++) {
        if (*p == '\'')
            hodei_buf_puts(b, "'\\''");
        else
            hodei_buf_putc(b, *p);
    }
    hodei_buf_putc(b, '\'');
}

void cli_format_command(const Hodei__V1__JobSpec *spec, char *out, size_t out_len)
{
    hodei_buf b;
    hodei_buf_init(&b, OUTPUT_LINE_MAX);
    if (spec && spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND && spec->command) {
        output_shell_word(&b, spec->command->command ? spec->command->command : "");
        for (size_t i = 0; i < spec->command->n_args; i++) {
            hodei_buf_putc(&b, ' ');
            output_shell_word(&b, spec->command->args[i] ? spec->command->args[i] : "");
        }
    } else if (spec && spec->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT && spec->script) {
        hodei_buf_printf(&b, "script: %s (%zu bytes)", spec->script->interpreter,
                         strlen(spec->script->content));
    }
    output_sanitize(b.data ? b.data : "", out_len, out, out_len);
    hodei_buf_fini(&b);
}

void output_time(const Hodei__V1__Timestamp *ts, char *out, size_t out_len)
{
    if (!ts || (ts->seconds == 0 && ts->nanos == 0)) {
        snprintf(out, out_len, "-");
        return;
    }
    hodei_time_format_us(ts->seconds * 1000000 + ts->nanos / 1000, out, out_len);
}

int64_t output_time_us(const Hodei__V1__Timestamp *ts)
{
    if (!ts || (ts->seconds == 0 && ts->nanos == 0))
        return 0;
    return ts->seconds * 1000000 + ts->nanos / 1000;
}

/* ------------------------------------------------------------ JSON */

void output_json_time(cli_json *j, const char *key, const Hodei__V1__Timestamp *ts)
{
    cli_json_key(j, key);
    if (output_time_us(ts) == 0) {
        cli_json_null(j);
        return;
    }
    char text[OUTPUT_TIME_BUF];
    output_time(ts, text, sizeof text);
    cli_json_string(j, text);
}

/* Maps are repeated entries of three distinct generated types. */
#define OUTPUT_JSON_MAP(j, name, n, entries)                                                       \
    do {                                                                                           \
        cli_json_key(j, name);                                                                     \
        cli_json_object_begin(j);                                                                  \
        for (size_t i_ = 0; i_ < (n); i_++)                                                        \
            cli_json_kv_string(j, (entries)[i_]->key, (entries)[i_]->value);                       \
        cli_json_object_end(j);                                                                    \
    } while (0)

static const char *output_when_name(Hodei__V1__ArtifactWhen w)
{
    return w == HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ALWAYS       ? "always"
           : w == HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ON_FAILURE ? "failure"
                                                                     : "success";
}

static void output_json_artifacts(cli_json *j, const char *key, size_t n,
                                  Hodei__V1__Artifact *const *items, bool outputs)
{
    cli_json_key(j, key);
    cli_json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        cli_json_object_begin(j);
        cli_json_kv_string(j, "source", items[i]->source);
        cli_json_kv_string(j, "destination", items[i]->destination);
        if (items[i]->checksum && items[i]->checksum[0])
            cli_json_kv_string(j, "checksum", items[i]->checksum);
        if (items[i]->credentials && items[i]->credentials[0])
            cli_json_kv_string(j, "credentials", items[i]->credentials);
        if (outputs)
            cli_json_kv_string(j, "when", output_when_name(items[i]->when));
        cli_json_object_end(j);
    }
    cli_json_array_end(j);
}

const char *cli_artifact_state_name(Hodei__V1__ArtifactState st)
{
    return st == HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED ? "UPLOADED" : "FAILED";
}

void output_json_records(cli_json *j, const char *key, size_t n,
                         Hodei__V1__ArtifactRecord *const *items)
{
    cli_json_key(j, key);
    cli_json_array_begin(j);
    for (size_t i = 0; i < n; i++) {
        const Hodei__V1__ArtifactRecord *r = items[i];
        cli_json_object_begin(j);
        cli_json_kv_string(j, "source", r->source);
        cli_json_kv_string(j, "destination", r->destination);
        cli_json_kv_int(j, "size_bytes", r->size_bytes);
        cli_json_kv_string(j, "checksum", r->checksum);
        cli_json_kv_string(j, "state", cli_artifact_state_name(r->state));
        cli_json_kv_string(j, "error", r->error);
        cli_json_kv_int(j, "epoch", r->epoch);
        cli_json_object_end(j);
    }
    cli_json_array_end(j);
}

static void output_json_payload(cli_json *j, const Hodei__V1__JobSpec *s)
{
    if (s->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND && s->command) {
        cli_json_key(j, "command");
        cli_json_object_begin(j);
        cli_json_kv_string(j, "command", s->command->command);
        cli_json_key(j, "args");
        cli_json_array_begin(j);
        for (size_t i = 0; i < s->command->n_args; i++)
            cli_json_string(j, s->command->args[i]);
        cli_json_array_end(j);
        cli_json_object_end(j);
    } else if (s->payload_case == HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT && s->script) {
        cli_json_key(j, "script");
        cli_json_object_begin(j);
        cli_json_kv_string(j, "interpreter", s->script->interpreter);
        cli_json_kv_string(j, "content", s->script->content);
        cli_json_object_end(j);
    }
}

void output_json_resources(cli_json *j, const char *key, const Hodei__V1__ResourceRequirements *r)
{
    cli_json_key(j, key);
    if (!r) {
        cli_json_null(j);
        return;
    }
    cli_json_object_begin(j);
    cli_json_key(j, "cpu_cores");
    cli_json_double(j, r->cpu_cores);
    cli_json_kv_int(j, "memory_bytes", r->memory_bytes);
    cli_json_kv_int(j, "storage_bytes", r->storage_bytes);
    cli_json_kv_int(j, "gpu_count", r->gpu_count);
    cli_json_kv_string(j, "architecture", r->architecture);
    cli_json_object_end(j);
}

void output_json_spec(cli_json *j, const Hodei__V1__JobSpec *s)
{
    cli_json_key(j, "spec");
    if (!s) {
        cli_json_null(j);
        return;
    }
    cli_json_object_begin(j);
    cli_json_kv_string(j, "name", s->name);
    output_json_payload(j, s);
    OUTPUT_JSON_MAP(j, "env", s->n_env, s->env);
    output_json_resources(j, "resources", s->resources);
    cli_json_kv_int(j, "timeout_ms", s->timeout_ms);
    OUTPUT_JSON_MAP(j, "labels", s->n_labels, s->labels);
    OUTPUT_JSON_MAP(j, "constraints", s->n_constraints, s->constraints);
    output_json_artifacts(j, "inputs", s->n_inputs, s->inputs, false);
    output_json_artifacts(j, "outputs", s->n_outputs, s->outputs, true);
    cli_json_kv_int(j, "priority", s->priority);
    cli_json_kv_int(j, "max_attempts", s->max_attempts);
    cli_json_kv_string(j, "provider", s->provider);
    cli_json_kv_string(j, "image", s->image);
    cli_json_key(j, "secret_refs");
    cli_json_array_begin(j);
    for (size_t i = 0; i < s->n_secret_refs; i++)
        cli_json_string(j, s->secret_refs[i]);
    cli_json_array_end(j);
    cli_json_kv_string(j, "working_dir", s->working_dir);
    cli_json_object_end(j);
}

void output_json_job(cli_json *j, const Hodei__V1__Job *job)
{
    if (!job) {
        cli_json_null(j);
        return;
    }
    cli_json_object_begin(j);
    cli_json_kv_string(j, "id", job->id);
    cli_json_kv_string(j, "name", job->spec ? job->spec->name : "");
    cli_json_kv_string(j, "state", hodei_job_state_name(job->state));
    cli_json_kv_int(j, "attempt", job->attempt);
    cli_json_kv_int(j, "max_attempts", job->max_attempts);
    cli_json_kv_string(j, "worker_id", job->worker_id);
    cli_json_kv_int(j, "epoch", job->epoch);
    cli_json_kv_bool(j, "cancel_requested", job->cancel_requested);
    cli_json_kv_int(j, "exit_code", job->exit_code);
    cli_json_kv_string(j, "error", job->error);
    output_json_time(j, "created_at", job->created_at);
    output_json_time(j, "updated_at", job->updated_at);
    output_json_time(j, "started_at", job->started_at);
    output_json_time(j, "finished_at", job->finished_at);
    cli_json_kv_string(j, "idempotency_key", job->idempotency_key);
    output_json_spec(j, job->spec);
    if (job->n_artifacts > 0)
        output_json_records(j, "artifacts", job->n_artifacts, job->artifacts);
    cli_json_object_end(j);
}

int output_json_flush(cli_json *j, hodei_buf *b, FILE *out)
{
    int rc = CLI_EXIT_ERROR;
    if (cli_json_done(j) && fwrite(b->data, 1, b->len, out) == b->len && fputc('\n', out) != EOF)
        rc = CLI_EXIT_OK;
    hodei_buf_fini(b);
    return rc;
}

/* {"job": {...}} for status and cancel. */
static int output_json_job_doc(const Hodei__V1__Job *job, FILE *out)
{
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, CLI_OUTPUT_MAX);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    cli_json_key(&j, "job");
    output_json_job(&j, job);
    cli_json_object_end(&j);
    return output_json_flush(&j, &b, out);
}

/* ------------------------------------------------------------ submit, cancel */

int cli_output_submit(cli_output_format fmt, const Hodei__V1__QueueJobResponse *resp, FILE *out,
                      FILE *err)
{
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        hodei_buf_init(&b, CLI_OUTPUT_MAX);
        cli_json_init(&j, &b);
        cli_json_object_begin(&j);
        cli_json_kv_string(&j, "job_id", resp->job_id);
        cli_json_kv_bool(&j, "duplicate", resp->duplicate);
        cli_json_kv_string(&j, "state", hodei_job_state_name(resp->state));
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    char id[CLI_CELL_MAX];
    output_sanitize(resp->job_id, CLI_CELL_MAX, id, sizeof id);
    if (resp->duplicate)
        fprintf(err, "(duplicate of an earlier submit)\n");
    return fprintf(out, "%s\n", id) < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_cancel(cli_output_format fmt, const Hodei__V1__Job *job, FILE *out)
{
    if (fmt == CLI_OUTPUT_JSON)
        return output_json_job_doc(job, out);
    if (!job)
        return fprintf(out, "cancel requested\n") < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
    const char *state = hodei_job_state_name(job->state);
    int n = job->cancel_requested && !hodei_job_state_terminal(job->state)
                ? fprintf(out, "%s (cancel requested)\n", state)
                : fprintf(out, "%s\n", state);
    return n < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ status */

void output_line(FILE *out, const char *label, const char *value)
{
    char clean[OUTPUT_LINE_MAX];
    output_sanitize(value && value[0] ? value : "-", OUTPUT_LINE_MAX, clean, sizeof clean);
    fprintf(out, "%-11s%s\n", label, clean);
}

static void output_status_times(FILE *out, const Hodei__V1__Job *job)
{
    char t[OUTPUT_TIME_BUF];
    output_time(job->created_at, t, sizeof t);
    output_line(out, "Created:", t);
    output_time(job->started_at, t, sizeof t);
    output_line(out, "Started:", t);
    output_time(job->finished_at, t, sizeof t);
    output_line(out, "Finished:", t);
}

int cli_output_status(cli_output_format fmt, const Hodei__V1__Job *job, FILE *out)
{
    if (fmt == CLI_OUTPUT_JSON)
        return output_json_job_doc(job, out);
    if (!job)
        return CLI_EXIT_ERROR;
    char text[OUTPUT_LINE_MAX];
    output_line(out, "ID:", job->id);
    output_line(out, "Name:", job->spec ? job->spec->name : "");
    snprintf(text, sizeof text, "%s%s", hodei_job_state_name(job->state),
             job->cancel_requested && !hodei_job_state_terminal(job->state) ? " (cancel requested)"
                                                                            : "");
    output_line(out, "State:", text);
    snprintf(text, sizeof text, "%d/%d", (int)job->attempt, (int)job->max_attempts);
    output_line(out, "Attempt:", text);
    output_line(out, "Worker:", job->worker_id);
    snprintf(text, sizeof text, "%d", (int)job->exit_code);
    output_line(out, "Exit code:", hodei_job_state_terminal(job->state) ? text : "-");
    output_line(out, "Error:", job->error);
    output_status_times(out, job);
    cli_format_command(job->spec, text, sizeof text);
    output_line(out, "Command:", text);
    if (job->n_artifacts > 0) {
        fprintf(out, "Artifacts:\n");
        cli_output_record_lines(job->n_artifacts, job->artifacts, "  ", out);
    }
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ artifacts */

static void output_size(int64_t n, char *out, size_t len)
{
    if (n < 1024)
        snprintf(out, len, "%lldB", (long long)n);
    else if (n < 1024 * 1024)
        snprintf(out, len, "%.1fKiB", (double)n / 1024);
    else if (n < (INT64_C(1) << 30))
        snprintf(out, len, "%.1fMiB", (double)n / (1024 * 1024));
    else
        snprintf(out, len, "%.2fGiB", (double)n / (double)(INT64_C(1) << 30));
}

void cli_output_record_lines(size_t n, Hodei__V1__ArtifactRecord *const *items, const char *indent,
                             FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        const Hodei__V1__ArtifactRecord *r = items[i];
        char src[OUTPUT_LINE_MAX], dst[OUTPUT_LINE_MAX], why[OUTPUT_LINE_MAX], size[32];
        output_sanitize(r->source, OUTPUT_LINE_MAX, src, sizeof src);
        output_sanitize(r->destination, OUTPUT_LINE_MAX, dst, sizeof dst);
        output_size(r->size_bytes, size, sizeof size);
        if (r->state == HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED) {
            fprintf(out, "%s%-9s %9s  %s -> %s  %s\n", indent, "UPLOADED", size, src, dst,
                    r->checksum);
        } else {
            output_sanitize(r->error, OUTPUT_LINE_MAX, why, sizeof why);
            fprintf(out, "%s%-9s %9s  %s -> %s  (%s)\n", indent, "FAILED", "-", src, dst, why);
        }
    }
}

int cli_output_artifacts(cli_output_format fmt, const Hodei__V1__Job *job, FILE *out)
{
    if (!job)
        return CLI_EXIT_ERROR;
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        hodei_buf_init(&b, CLI_OUTPUT_MAX);
        cli_json_init(&j, &b);
        cli_json_object_begin(&j);
        cli_json_kv_string(&j, "job_id", job->id);
        output_json_records(&j, "artifacts", job->n_artifacts, job->artifacts);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    if (job->n_artifacts == 0)
        fprintf(out, "no output artifacts recorded for job %s\n", job->id);
    cli_output_record_lines(job->n_artifacts, job->artifacts, "", out);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ jobs */

enum { COL_ID, COL_STATE, COL_PRIO, COL_ATTEMPT, COL_AGE, COL_TEXT, COL_COUNT };

static const char *const output_headers[COL_COUNT] = {
    "ID", "STATE", "PRIO", "ATTEMPT", "AGE", "COMMAND/NAME",
};

/* Renders one cell of the table into out; returns its width in characters. */
static size_t output_jobs_cell(const Hodei__V1__Job *job, int col, int64_t now_us,
                               char out[CLI_CELL_MAX])
{
    char raw[OUTPUT_LINE_MAX] = "";
    const Hodei__V1__JobSpec *spec = job->spec;
    switch (col) {
    case COL_ID:
        snprintf(raw, sizeof raw, "%s", job->id);
        break;
    case COL_STATE:
        snprintf(raw, sizeof raw, "%s%s", hodei_job_state_name(job->state),
                 job->cancel_requested && !hodei_job_state_terminal(job->state) ? "*" : "");
        break;
    case COL_PRIO:
        snprintf(raw, sizeof raw, "%d", spec ? (int)spec->priority : 0);
        break;
    case COL_ATTEMPT:
        snprintf(raw, sizeof raw, "%d/%d", (int)job->attempt, (int)job->max_attempts);
        break;
    case COL_AGE:
        cli_format_age(output_time_us(job->created_at), now_us, raw, sizeof raw);
        break;
    default:
        if (spec && spec->name && spec->name[0])
            snprintf(raw, sizeof raw, "%s", spec->name);
        else
            cli_format_command(spec, raw, sizeof raw);
    }
    return output_sanitize(raw, CLI_TABLE_TEXT_MAX, out, CLI_CELL_MAX);
}

static void output_jobs_row(FILE *out, const Hodei__V1__Job *job, int64_t now_us,
                            const size_t width[COL_COUNT])
{
    char cell[CLI_CELL_MAX];
    for (int c = 0; c < COL_COUNT; c++) {
        size_t w = job ? output_jobs_cell(job, c, now_us, cell)
                       : output_sanitize(output_headers[c], CLI_TABLE_TEXT_MAX, cell, sizeof cell);
        if (c == COL_COUNT - 1)
            fprintf(out, "%s\n", cell);
        else
            fprintf(out, "%s%*s", cell, (int)(width[c] - w + 2), "");
    }
}

static int output_jobs_human(const Hodei__V1__ListJobsResponse *resp, int64_t now_us, FILE *out,
                             FILE *err)
{
    if (resp->n_jobs == 0) {
        fprintf(err, "No jobs found.\n");
    } else {
        size_t width[COL_COUNT];
        char cell[CLI_CELL_MAX];
        for (int c = 0; c < COL_COUNT; c++) {
            width[c] = strlen(output_headers[c]);
            for (size_t r = 0; r < resp->n_jobs; r++) {
                size_t w = output_jobs_cell(resp->jobs[r], c, now_us, cell);
                width[c] = w > width[c] ? w : width[c];
            }
        }
        output_jobs_row(out, NULL, now_us, width);
        for (size_t r = 0; r < resp->n_jobs; r++)
            output_jobs_row(out, resp->jobs[r], now_us, width);
    }
    if (resp->next_page_token && resp->next_page_token[0]) {
        char token[OUTPUT_LINE_MAX];
        output_sanitize(resp->next_page_token, CLI_PAGE_TOKEN_MAX, token, sizeof token);
        fprintf(out, "Next page token: %s\n", token);
    }
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

int cli_output_jobs(cli_output_format fmt, const Hodei__V1__ListJobsResponse *resp, int64_t now_us,
                    FILE *out, FILE *err)
{
    if (fmt == CLI_OUTPUT_HUMAN)
        return output_jobs_human(resp, now_us, out, err);
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, CLI_OUTPUT_MAX);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    cli_json_key(&j, "jobs");
    cli_json_array_begin(&j);
    for (size_t i = 0; i < resp->n_jobs; i++)
        output_json_job(&j, resp->jobs[i]);
    cli_json_array_end(&j);
    cli_json_kv_string(&j, "next_page_token", resp->next_page_token);
    cli_json_object_end(&j);
    return output_json_flush(&j, &b, out);
}
