#include "logsink.h"

#include <stdlib.h>
#include <string.h>

#include "hodei/util.h"
#include "output_int.h"

/* Largest JSON object of one line: a line is at most a message (16 MiB),
 * escaped (up to 6 bytes per byte) plus its base64. */
#define LOGSINK_JSON_MAX (CLI_OUTPUT_MAX)

static const char logsink_b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool cli_base64(const uint8_t *data, size_t len, char *out, size_t out_len)
{
    size_t need = (len + 2) / 3 * 4 + 1, o = 0;
    if (out_len < need)
        return false;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < len)
            v |= data[i + 2];
        out[o++] = logsink_b64[(v >> 18) & 63];
        out[o++] = logsink_b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? logsink_b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? logsink_b64[v & 63] : '=';
    }
    out[o] = '\0';
    return true;
}

void cli_log_sink_init(cli_log_sink *s, FILE *out, FILE *err, cli_output_format fmt,
                       cli_status_line *status)
{
    *s = (cli_log_sink){.out = out, .err = err, .fmt = fmt, .status = status};
}

void cli_log_sink_start_at(cli_log_sink *s, uint64_t from)
{
    if (from <= 1)
        return;
    s->last_seq = from - 1;
    s->resuming = true;
}

uint64_t cli_log_sink_resume(cli_log_sink *s)
{
    if (s->last_seq > 0)
        s->resuming = true;
    return s->last_seq + 1;
}

static const char *logsink_stream_name(Hodei__V1__LogStream stream)
{
    if (stream == HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM)
        return "system";
    return stream == HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR ? "stderr" : "stdout";
}

/* {"sequence":N,"stream":"stdout","time":"...","data":"..."} and, when the
 * bytes are not UTF-8 (so "data" had to replace some), "data_base64"; then
 * "epoch" (the attempt's) when the edge gave it. */
static bool logsink_json(cli_log_sink *s, const Hodei__V1__LogLine *line)
{
    const char *data = (const char *)line->data.data;
    size_t len = line->data.data ? line->data.len : 0;
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, LOGSINK_JSON_MAX);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    cli_json_kv_int(&j, "sequence", (int64_t)line->sequence);
    cli_json_kv_string(&j, "stream", logsink_stream_name(line->stream));
    output_json_time(&j, "time", line->time);
    cli_json_key(&j, "data");
    cli_json_string_len(&j, data ? data : "", len);
    if (len && !hodei_utf8_valid(data, len)) {
        size_t b64_len = (len + 2) / 3 * 4 + 1;
        char *b64 = malloc(b64_len);
        cli_json_key(&j, "data_base64");
        if (b64 && cli_base64(line->data.data, len, b64, b64_len))
            cli_json_string(&j, b64);
        else
            j.failed = true;
        free(b64);
    }
    if (line->epoch > 0)
        cli_json_kv_int(&j, "epoch", line->epoch);
    cli_json_object_end(&j);
    return output_json_flush(&j, &b, s->out) == CLI_EXIT_OK;
}

/* data[0..len) with every byte a terminal could act on made visible: C0
 * controls but TAB as ^X (ESC is ^[), DEL as ^?, C1 controls (U+0080..
 * U+009F) and bytes that are not UTF-8 as \xNN. */
static bool logsink_neutral(FILE *f, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)data[i];
        size_t n = cli_utf8_seq_len(data + i, len - i);
        bool c1 = n == 2 && c == 0xc2 && (unsigned char)data[i + 1] < 0xa0;
        int rc = 0;
        if (n == 1 && (c < 0x20 || c == 0x7f) && c != '\t')
            rc = fprintf(f, "^%c", c == 0x7f ? '?' : c + 0x40);
        else if (n == 0 || c1)
            rc = fprintf(f, "\\x%02x", c1 ? (unsigned char)data[i + 1] : c);
        else
            rc = fwrite(data + i, 1, n, f) == n ? 1 : -1;
        if (rc < 0)
            return false;
        i += n ? n : 1;
    }
    return true;
}

static bool logsink_text(cli_log_sink *s, const Hodei__V1__LogLine *line)
{
    /* The worker's own lines (artifacts) go to stderr, marked, so the
     * job's stdout stays exactly its own. */
    bool sys = line->stream == HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM;
    FILE *f = sys || line->stream == HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR ? s->err : s->out;
    const char *data = (const char *)line->data.data;
    size_t len = data ? line->data.len : 0;
    if (sys && fputs("[hodei] ", f) == EOF)
        return false;
    if (len && s->raw && fwrite(data, 1, len, f) != len)
        return false;
    if (len && !s->raw && !logsink_neutral(f, data, len))
        return false;
    return fputc('\n', f) != EOF;
}

bool cli_log_sink_line(cli_log_sink *s, const Hodei__V1__LogLine *line)
{
    if (s->failed)
        return false;
    if (s->resuming && line->sequence != 0) {
        bool epochs = line->epoch > 0 && s->last_epoch > 0;
        bool seen = epochs ? line->epoch < s->last_epoch ||
                                 (line->epoch == s->last_epoch && line->sequence <= s->last_seq)
                           : line->sequence <= s->last_seq;
        if (seen) {
            s->skipped++;
            return true;
        }
        s->resuming = false;
    }
    if (s->status)
        cli_status_line_clear(s->status);
    bool ok = s->fmt == CLI_OUTPUT_JSON ? logsink_json(s, line) : logsink_text(s, line);
    if (!ok) {
        s->failed = true;
        return false;
    }
    if (line->sequence != 0)
        s->last_seq = line->sequence;
    if (line->epoch > 0)
        s->last_epoch = line->epoch;
    s->written++;
    return true;
}

static void logsink_flush(cli_log_sink *s)
{
    if (fflush(s->out) != 0 || fflush(s->err) != 0)
        s->failed = true;
}

size_t cli_log_sink_lines(cli_log_sink *s, Hodei__V1__LogLine *const *lines, size_t n)
{
    uint64_t before = s->written;
    for (size_t i = 0; i < n && cli_log_sink_line(s, lines[i]); i++)
        ;
    logsink_flush(s);
    return (size_t)(s->written - before);
}

bool cli_log_sink_chunk(cli_log_sink *s, const Hodei__V1__LogChunk *chunk,
                        Hodei__V1__JobState *final_state)
{
    cli_log_sink_lines(s, chunk->lines, chunk->n_lines);
    if (!chunk->end_of_stream)
        return false;
    *final_state = chunk->final_state;
    return true;
}
