/* Output: bytes from the two pipes become numbered, redacted lines, handed
 * out in batches bounded by a line count, a byte count and an age. */
#include <stdlib.h>
#include <string.h>

#include "exec_int.h"
#include "hodei/assert.h"
#include "hodei/time.h"

static const Hodei__V1__LogStream output_stream_kind[EXEC_STREAM_COUNT] = {
    HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT,
    HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR,
};

hodei_status exec_output_init(exec_output *o, const hodei_exec_opts *opts, const exec_redactor *red,
                              const hodei_exec_callbacks *cb, hodei_err *err)
{
    memset(o, 0, sizeof *o);
    o->red = red;
    o->cb = cb;
    o->lines_max = opts->batch_lines_max;
    o->bytes_max = opts->batch_bytes_max;
    o->interval_ms = opts->batch_interval_ms;
    o->first_ms = -1;
    o->seq = opts->first_sequence;
    /* Room for one more line after bytes_max is reached. */
    o->arena_cap = o->bytes_max + EXEC_REDACT_OUT_MAX(HODEI_EXEC_LINE_LEN_MAX);
    o->lines = calloc(o->lines_max, sizeof *o->lines);
    o->ptrs = calloc(o->lines_max, sizeof *o->ptrs);
    o->times = calloc(o->lines_max, sizeof *o->times);
    o->offs = calloc(o->lines_max, sizeof *o->offs);
    o->arena = malloc(o->arena_cap);
    bool ok = o->lines && o->ptrs && o->times && o->offs && o->arena;
    for (int s = 0; s < EXEC_STREAM_COUNT; s++) {
        o->part[s] = malloc(HODEI_EXEC_LINE_LEN_MAX);
        ok = ok && o->part[s];
    }
    if (!ok) {
        exec_output_fini(o);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "exec: out of memory for output batches");
    }
    return HODEI_OK;
}

void exec_output_fini(exec_output *o)
{
    free(o->lines);
    free(o->ptrs);
    free(o->times);
    free(o->offs);
    /* Output may hold secrets' neighbours: wipe what was written (only
     * that: wiping the whole 1 MB arena per job cost a tenth of the agent's
     * CPU on short jobs). */
    if (o->arena)
        explicit_bzero(o->arena, o->arena_high);
    free(o->arena);
    for (int s = 0; s < EXEC_STREAM_COUNT; s++) {
        if (o->part[s])
            explicit_bzero(o->part[s], o->part_high[s]);
        free(o->part[s]);
    }
    memset(o, 0, sizeof *o);
}

void exec_output_flush(exec_output *o)
{
    if (o->n == 0)
        return;
    for (size_t i = 0; i < o->n; i++) {
        o->lines[i].data.data = (uint8_t *)o->arena + o->offs[i];
        o->ptrs[i] = &o->lines[i];
    }
    o->cb->on_batch(o->cb->user, o->ptrs, o->n);
    o->batches++;
    o->n = 0;
    o->arena_len = 0;
    o->first_ms = -1;
}

int64_t exec_output_due_ms(const exec_output *o)
{
    return o->n == 0 ? -1 : o->first_ms + o->interval_ms;
}

/* Redacts data[0..len) into the batch as one line. Returns the bytes taken:
 * all of them, or when stop_at_partial fewer, leaving a possible secret's
 * start for the next piece. */
static size_t output_line(exec_output *o, int stream, const char *data, size_t len,
                          bool stop_at_partial)
{
    if (o->arena_cap - o->arena_len < EXEC_REDACT_OUT_MAX(len))
        exec_output_flush(o);
    size_t written = 0;
    size_t taken =
        exec_redact(o->red, data, len, stop_at_partial, o->arena + o->arena_len, &written);
    if (o->arena_len + written > o->arena_high)
        o->arena_high = o->arena_len + written;
    if (o->n > 0 && o->arena_len + written > o->bytes_max) {
        /* It does not fit: deliver the others, then move it to the front. */
        size_t off = o->arena_len;
        exec_output_flush(o);
        memmove(o->arena, o->arena + off, written);
    }
    int64_t now_us = hodei_wall_us();
    size_t i = o->n;
    Hodei__V1__LogLine *line = &o->lines[i];
    hodei__v1__log_line__init(line);
    hodei__v1__timestamp__init(&o->times[i]);
    o->times[i].seconds = now_us / 1000000;
    o->times[i].nanos = (int32_t)(now_us % 1000000) * 1000;
    line->sequence = ++o->seq;
    line->stream = output_stream_kind[stream];
    line->time = &o->times[i];
    line->data.len = written;
    o->offs[i] = o->arena_len;
    o->arena_len += written;
    if (o->n++ == 0)
        o->first_ms = hodei_mono_ms();
    if (o->n >= o->lines_max || o->arena_len >= o->bytes_max)
        exec_output_flush(o);
    return taken;
}

/* The unfinished line is full: emit a piece, keep what may start a secret. */
static void output_cut(exec_output *o, int stream)
{
    char *p = o->part[stream];
    size_t len = o->part_len[stream];
    size_t taken = output_line(o, stream, p, len, true);
    HODEI_ASSERT(taken > 0 && taken <= len);
    memmove(p, p + taken, len - taken);
    o->part_len[stream] = len - taken;
}

static void output_append(exec_output *o, int stream, const char *data, size_t len)
{
    memcpy(o->part[stream] + o->part_len[stream], data, len);
    o->part_len[stream] += len;
    if (o->part_len[stream] > o->part_high[stream])
        o->part_high[stream] = o->part_len[stream];
}

void exec_output_feed(exec_output *o, int stream, const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t seg = nl ? (size_t)(nl - data) : len;
        size_t room = HODEI_EXEC_LINE_LEN_MAX - o->part_len[stream];
        if (seg > room) {
            output_append(o, stream, data, room);
            data += room;
            len -= room;
            output_cut(o, stream);
            continue;
        }
        if (!nl) {
            output_append(o, stream, data, seg);
            return;
        }
        if (o->part_len[stream] == 0) {
            output_line(o, stream, data, seg, false);
        } else {
            output_append(o, stream, data, seg);
            output_line(o, stream, o->part[stream], o->part_len[stream], false);
            o->part_len[stream] = 0;
        }
        data += seg + 1;
        len -= seg + 1;
    }
}

void exec_output_eof(exec_output *o, int stream)
{
    if (o->part_len[stream] == 0)
        return;
    output_line(o, stream, o->part[stream], o->part_len[stream], false);
    o->part_len[stream] = 0;
}
