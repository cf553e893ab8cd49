/* Output of workers, providers and provider health: tables for people, one
 * JSON object for programs. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/worker_state.h"
#include "output_int.h"

#define FLEET_COLS_MAX 8

/* ------------------------------------------------------------ units */

static const struct {
    const char *suffix;
    int64_t mul;
} fleet_size_units[] = {
    {"Pi", INT64_C(1) << 50}, {"Ti", INT64_C(1) << 40}, {"Gi", INT64_C(1) << 30},
    {"Mi", INT64_C(1) << 20}, {"Ki", INT64_C(1) << 10},
};

void cli_format_size(int64_t bytes, char *out, size_t out_len)
{
    if (bytes <= 0) {
        snprintf(out, out_len, "-");
        return;
    }
    for (size_t i = 0; i < sizeof fleet_size_units / sizeof fleet_size_units[0]; i++) {
        int64_t mul = fleet_size_units[i].mul;
        if (bytes < mul)
            continue;
        if (bytes % mul == 0)
            snprintf(out, out_len, "%" PRId64 "%s", bytes / mul, fleet_size_units[i].suffix);
        else
            snprintf(out, out_len, "%.1f%s", (double)bytes / (double)mul,
                     fleet_size_units[i].suffix);
        return;
    }
    snprintf(out, out_len, "%" PRId64, bytes);
}

void cli_format_duration(int64_t ms, char *out, size_t out_len)
{
    if (ms <= 0) {
        snprintf(out, out_len, "-");
        return;
    }
    if (ms % 1000 != 0) {
        snprintf(out, out_len, "%" PRId64 "ms", ms);
        return;
    }
    int64_t s = ms / 1000, h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
    size_t o = 0;
    if (h)
        o += (size_t)snprintf(out + o, out_len - o, "%" PRId64 "h", h);
    if (m && o < out_len)
        o += (size_t)snprintf(out + o, out_len - o, "%" PRId64 "m", m);
    if (sec && o < out_len)
        snprintf(out + o, out_len - o, "%" PRId64 "s", sec);
}

/* ------------------------------------------------------------ tables */

/* Renders cell `col` of `row` into out (sanitized); returns its width. */
typedef size_t (*fleet_cell_fn)(const void *row, int col, int64_t now_us, char out[CLI_CELL_MAX]);

typedef struct {
    const char *const *headers;
    int cols;
    fleet_cell_fn cell;
    int64_t now_us;
} fleet_table;

static void fleet_table_row(FILE *out, const fleet_table *t, const void *row,
                            const size_t width[FLEET_COLS_MAX])
{
    char cell[CLI_CELL_MAX];
    for (int c = 0; c < t->cols; c++) {
        size_t w = row ? t->cell(row, c, t->now_us, cell)
                       : output_sanitize(t->headers[c], CLI_TABLE_TEXT_MAX, cell, sizeof cell);
        if (c == t->cols - 1)
            fprintf(out, "%s\n", cell);
        else
            fprintf(out, "%s%*s", cell, (int)(width[c] - w + 2), "");
    }
}

static void fleet_table_print(FILE *out, const fleet_table *t, const void *const *rows, size_t n)
{
    size_t width[FLEET_COLS_MAX];
    char cell[CLI_CELL_MAX];
    HODEI_ASSERT(t->cols <= FLEET_COLS_MAX);
    for (int c = 0; c < t->cols; c++) {
        width[c] = strlen(t->headers[c]);
        for (size_t r = 0; r < n; r++) {
            size_t w = t->cell(rows[r], c, t->now_us, cell);
            width[c] = w > width[c] ? w : width[c];
        }
    }
    fleet_table_row(out, t, NULL, width);
    for (size_t r = 0; r < n; r++)
        fleet_table_row(out, t, rows[r], width);
}

/* ------------------------------------------------------------ workers */

enum {
    WCOL_ID,
    WCOL_PROVIDER,
    WCOL_STATE,
    WCOL_CPU,
    WCOL_MEMORY,
    WCOL_LABELS,
    WCOL_BEAT,
    WCOL_COUNT
};

static const char *const fleet_worker_headers[WCOL_COUNT] = {
    "ID", "PROVIDER", "STATE", "CPU", "MEMORY", "LABELS", "LAST HEARTBEAT",
};

static void fleet_labels_text(const Hodei__V1__Worker *w, char *out, size_t out_len)
{
    hodei_buf b;
    hodei_buf_init(&b, OUTPUT_LINE_MAX);
    for (size_t i = 0; i < w->n_labels; i++)
        hodei_buf_printf(&b, "%s%s=%s", i ? "," : "", w->labels[i]->key, w->labels[i]->value);
    snprintf(out, out_len, "%s", b.len && b.data ? b.data : "-");
    hodei_buf_fini(&b);
}

static void fleet_worker_raw(const Hodei__V1__Worker *w, int col, int64_t now_us, char *raw,
                             size_t raw_len)
{
    const Hodei__V1__ResourceRequirements *cap = w->capacity;
    switch (col) {
    case WCOL_ID:
        snprintf(raw, raw_len, "%s", w->id);
        break;
    case WCOL_PROVIDER:
        snprintf(raw, raw_len, "%s", w->provider[0] ? w->provider : "-");
        break;
    case WCOL_STATE:
        snprintf(raw, raw_len, "%s", hodei_worker_state_name(w->state));
        break;
    case WCOL_CPU:
        if (cap && cap->cpu_cores > 0)
            snprintf(raw, raw_len, "%g", cap->cpu_cores);
        else
            snprintf(raw, raw_len, "-");
        break;
    case WCOL_MEMORY:
        cli_format_size(cap ? cap->memory_bytes : 0, raw, raw_len);
        break;
    case WCOL_LABELS:
        fleet_labels_text(w, raw, raw_len);
        break;
    default: {
        int64_t beat_us = output_time_us(w->last_heartbeat);
        char age[OUTPUT_TIME_BUF];
        cli_format_age(beat_us, now_us, age, sizeof age);
        snprintf(raw, raw_len, "%s%s", age, beat_us ? " ago" : "");
    }
    }
}

static size_t fleet_worker_cell(const void *row, int col, int64_t now_us, char out[CLI_CELL_MAX])
{
    char raw[OUTPUT_LINE_MAX];
    fleet_worker_raw(row, col, now_us, raw, sizeof raw);
    return output_sanitize(raw, CLI_TABLE_TEXT_MAX, out, CLI_CELL_MAX);
}

static void fleet_json_worker(cli_json *j, const Hodei__V1__Worker *w)
{
    cli_json_object_begin(j);
    cli_json_kv_string(j, "id", w->id);
    cli_json_kv_string(j, "provider", w->provider);
    cli_json_kv_string(j, "state", hodei_worker_state_name(w->state));
    cli_json_kv_string(j, "hostname", w->hostname);
    output_json_resources(j, "capacity", w->capacity);
    cli_json_key(j, "labels");
    cli_json_object_begin(j);
    for (size_t i = 0; i < w->n_labels; i++)
        cli_json_kv_string(j, w->labels[i]->key, w->labels[i]->value);
    cli_json_object_end(j);
    cli_json_kv_string(j, "current_job_id", w->current_job_id);
    output_json_time(j, "last_heartbeat", w->last_heartbeat);
    output_json_time(j, "created_at", w->created_at);
    cli_json_object_end(j);
}

static int fleet_workers_json(const Hodei__V1__Worker *const *rows, size_t n, FILE *out)
{
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, CLI_OUTPUT_MAX);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    cli_json_key(&j, "workers");
    cli_json_array_begin(&j);
    for (size_t i = 0; i < n; i++)
        fleet_json_worker(&j, rows[i]);
    cli_json_array_end(&j);
    cli_json_object_end(&j);
    return output_json_flush(&j, &b, out);
}

static void fleet_workers_human(const Hodei__V1__Worker *const *rows, size_t n, size_t hidden,
                                bool all, int64_t now_us, FILE *out, FILE *err)
{
    if (n == 0) {
        fprintf(err, "%s\n", all ? "No workers found." : "No workers ready.");
    } else {
        fleet_table t = {fleet_worker_headers, WCOL_COUNT, fleet_worker_cell, now_us};
        fleet_table_print(out, &t, (const void *const *)rows, n);
    }
    if (hidden)
        fprintf(err, "(%zu more in other states; --all shows them)\n", hidden);
}

int cli_output_workers(cli_output_format fmt, const Hodei__V1__GetAvailableWorkersResponse *resp,
                       bool all, int64_t now_us, FILE *out, FILE *err)
{
    int rc = CLI_EXIT_ERROR;
    size_t n = 0;
    const Hodei__V1__Worker **rows = calloc(resp->n_workers + 1, sizeof *rows);
    if (!rows)
        goto out;
    for (size_t i = 0; i < resp->n_workers; i++) {
        if (all || resp->workers[i]->state == HODEI__V1__WORKER_STATE__WORKER_STATE_READY)
            rows[n++] = resp->workers[i];
    }
    if (fmt == CLI_OUTPUT_JSON) {
        rc = fleet_workers_json(rows, n, out);
        goto out_free_rows;
    }
    fleet_workers_human(rows, n, resp->n_workers - n, all, now_us, out, err);
    rc = ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
out_free_rows:
    free(rows);
out:
    return rc;
}

/* ------------------------------------------------------------ providers */

enum { PCOL_NAME, PCOL_TYPE, PCOL_ENABLED, PCOL_MAX, PCOL_WARM, PCOL_IDLE, PCOL_COUNT };

static const char *const fleet_provider_headers[PCOL_COUNT] = {
    "NAME", "TYPE", "ENABLED", "MAX", "WARM MIN/MAX", "IDLE TTL",
};

const char *cli_provider_type_name(Hodei__V1__ProviderType type)
{
    switch (type) {
    case HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_PROCESS:
        return "process";
    case HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_DOCKER:
        return "docker";
    case HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_KUBERNETES:
        return "kubernetes";
    case HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_FIRECRACKER:
        return "firecracker";
    default:
        return "unspecified";
    }
}

static size_t fleet_provider_cell(const void *row, int col, int64_t now_us, char out[CLI_CELL_MAX])
{
    const Hodei__V1__Provider *p = row;
    char raw[OUTPUT_LINE_MAX];
    switch (col) {
    case PCOL_NAME:
        snprintf(raw, sizeof raw, "%s", p->name);
        break;
    case PCOL_TYPE:
        snprintf(raw, sizeof raw, "%s", cli_provider_type_name(p->type));
        break;
    case PCOL_ENABLED:
        snprintf(raw, sizeof raw, "%s", p->enabled ? "yes" : "no");
        break;
    case PCOL_MAX:
        snprintf(raw, sizeof raw, "%d", (int)p->max_workers);
        break;
    case PCOL_WARM:
        snprintf(raw, sizeof raw, "%d/%d", (int)p->warm_pool_min, (int)p->warm_pool_max);
        break;
    default:
        cli_format_duration(p->idle_ttl_ms, raw, sizeof raw);
    }
    return output_sanitize(raw, CLI_TABLE_TEXT_MAX, out, CLI_CELL_MAX);
}

static void fleet_json_provider(cli_json *j, const Hodei__V1__Provider *p)
{
    cli_json_object_begin(j);
    cli_json_kv_string(j, "name", p->name);
    cli_json_kv_string(j, "type", cli_provider_type_name(p->type));
    cli_json_kv_bool(j, "enabled", p->enabled);
    cli_json_kv_int(j, "max_workers", p->max_workers);
    cli_json_kv_int(j, "warm_pool_min", p->warm_pool_min);
    cli_json_kv_int(j, "warm_pool_max", p->warm_pool_max);
    cli_json_kv_int(j, "idle_ttl_ms", p->idle_ttl_ms);
    cli_json_key(j, "cost_per_hour");
    cli_json_double(j, p->cost_per_hour);
    output_json_resources(j, "worker_capacity", p->worker_capacity);
    cli_json_key(j, "config");
    cli_json_object_begin(j);
    for (size_t i = 0; i < p->n_config; i++)
        cli_json_kv_string(j, p->config[i]->key, p->config[i]->value);
    cli_json_object_end(j);
    cli_json_object_end(j);
}

int cli_output_providers(cli_output_format fmt, const Hodei__V1__ListProvidersResponse *resp,
                         FILE *out, FILE *err)
{
    if (fmt == CLI_OUTPUT_JSON) {
        hodei_buf b;
        cli_json j;
        hodei_buf_init(&b, CLI_OUTPUT_MAX);
        cli_json_init(&j, &b);
        cli_json_object_begin(&j);
        cli_json_key(&j, "providers");
        cli_json_array_begin(&j);
        for (size_t i = 0; i < resp->n_providers; i++)
            fleet_json_provider(&j, resp->providers[i]);
        cli_json_array_end(&j);
        cli_json_object_end(&j);
        return output_json_flush(&j, &b, out);
    }
    if (resp->n_providers == 0) {
        fprintf(err, "No providers.\n");
        return CLI_EXIT_OK;
    }
    fleet_table t = {fleet_provider_headers, PCOL_COUNT, fleet_provider_cell, 0};
    fleet_table_print(out, &t, (const void *const *)resp->providers, resp->n_providers);
    return ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
}

/* ------------------------------------------------------------ health */

static int fleet_health_json(const Hodei__V1__GetProviderHealthResponse *h, FILE *out)
{
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, CLI_OUTPUT_MAX);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    cli_json_kv_string(&j, "name", h->name);
    cli_json_kv_bool(&j, "healthy", h->healthy);
    cli_json_kv_string(&j, "message", h->message);
    cli_json_kv_int(&j, "workers", h->workers);
    output_json_time(&j, "checked_at", h->checked_at);
    cli_json_object_end(&j);
    return output_json_flush(&j, &b, out);
}

int cli_output_provider_health(cli_output_format fmt, const Hodei__V1__GetProviderHealthResponse *h,
                               FILE *out)
{
    int rc;
    if (fmt == CLI_OUTPUT_JSON) {
        rc = fleet_health_json(h, out);
    } else {
        char text[OUTPUT_TIME_BUF];
        output_line(out, "Provider:", h->name);
        output_line(out, "Healthy:", h->healthy ? "yes" : "no");
        snprintf(text, sizeof text, "%d", (int)h->workers);
        output_line(out, "Workers:", text);
        output_line(out, "Message:", h->message);
        output_time(h->checked_at, text, sizeof text);
        output_line(out, "Checked:", text);
        rc = ferror(out) ? CLI_EXIT_ERROR : CLI_EXIT_OK;
    }
    return rc == CLI_EXIT_OK && !h->healthy ? CLI_EXIT_ERROR : rc;
}
