/* cli/: what `hodei run` and `hodei logs` do without a server — the exit
 * code of a finished job, the waiting status line, the queue position, the
 * routing and resuming of log lines — and the workers/providers output. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logsink.h"
#include "output.h"
#include "run_view.h"

#define JOB_ID "0190b1c2-0000-7000-8000-000000000001"
#define WORKER_ID "0190b1c2-0000-7000-8000-0000000000aa"

/* ------------------------------------------------------------ capture */

typedef struct {
    FILE *out, *err;
    char *out_text, *err_text;
    size_t out_len, err_len;
} capture;

static void capture_open(capture *c)
{
    memset(c, 0, sizeof *c);
    c->out = open_memstream(&c->out_text, &c->out_len);
    c->err = open_memstream(&c->err_text, &c->err_len);
    cr_assert(c->out && c->err);
}

static void capture_close(capture *c)
{
    fclose(c->out);
    fclose(c->err);
}

static void capture_free(capture *c)
{
    free(c->out_text);
    free(c->err_text);
}

/* ------------------------------------------------------------ exit codes */

static Hodei__V1__Job job_in(Hodei__V1__JobState state, int32_t exit_code, const char *error)
{
    Hodei__V1__Job j = HODEI__V1__JOB__INIT;
    j.id = JOB_ID;
    j.state = state;
    j.exit_code = exit_code;
    j.error = (char *)error;
    return j;
}

Test(exit_code, job_state_and_code_give_the_process_exit_code)
{
    static const struct {
        Hodei__V1__JobState state;
        int32_t code;
        const char *error;
        int want;
    } cases[] = {
        {HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0, "", 0},
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 7, "", 7},
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 1, "", 1},
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 255, "", 255},
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 137, "killed by signal 9", 137},
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 0, "worker lost", 1}, /* 1 if 0 */
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, -1, "", 1},           /* out of range */
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 256, "", 1},
        {HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 127, "exec: nope: No such file", 127},
        {HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT, 0, "timed out after 5s", 124},
        {HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT, 143, "", 124},
        {HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED, 0, "", 130},
        {HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED, 143, "cancelled", 130},
        {HODEI__V1__JOB_STATE__JOB_STATE_RUNNING, 0, "", 1}, /* not over: an error */
        {HODEI__V1__JOB_STATE__JOB_STATE_PENDING, 0, "", 1},
        {HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED, 0, "", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        Hodei__V1__Job j = job_in(cases[i].state, cases[i].code, cases[i].error);
        cr_expect_eq(cli_run_exit_code(&j, false, false), cases[i].want, "case %zu: got %d", i,
                     cli_run_exit_code(&j, false, false));
    }
    cr_expect_eq(cli_run_exit_code(NULL, false, false), 1);
}

Test(exit_code, ctrl_c_and_no_job_exit_code)
{
    Hodei__V1__Job ok = job_in(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0, "");
    Hodei__V1__Job failed = job_in(HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 7, "");
    Hodei__V1__Job timeout = job_in(HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT, 0, "");
    Hodei__V1__Job running = job_in(HODEI__V1__JOB_STATE__JOB_STATE_RUNNING, 0, "");
    /* Ctrl-C: 130, even when the job finished before the cancel landed */
    cr_expect_eq(cli_run_exit_code(&ok, true, false), 130);
    cr_expect_eq(cli_run_exit_code(&failed, true, false), 130);
    cr_expect_eq(cli_run_exit_code(&failed, true, true), 130);
    /* --no-job-exit-code: any end is 0, only the tool's own failures are not */
    cr_expect_eq(cli_run_exit_code(&ok, false, true), 0);
    cr_expect_eq(cli_run_exit_code(&failed, false, true), 0);
    cr_expect_eq(cli_run_exit_code(&timeout, false, true), 0);
    cr_expect_eq(cli_run_exit_code(&running, false, true), 1);
}

static char *summary_of(Hodei__V1__Job *j)
{
    capture c;
    capture_open(&c);
    cli_run_summary(j, c.err);
    capture_close(&c);
    free(c.out_text);
    return c.err_text;
}

Test(exit_code, summary_tells_the_job_from_the_tool)
{
    Hodei__V1__Job j = job_in(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 0, "");
    char *s = summary_of(&j);
    cr_expect_str_eq(s, "", "a success says nothing");
    free(s);
    j = job_in(HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 7, "");
    s = summary_of(&j);
    cr_expect_str_eq(s, "hodei: job " JOB_ID " FAILED (exit code 7)\n");
    free(s);
    j = job_in(HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 127, "exec: nope: No such file\n\x1b[2J");
    s = summary_of(&j);
    cr_expect_str_eq(s,
                     "hodei: job " JOB_ID " FAILED (exit code 127): exec: nope: No such "
                     "file??[2J\n",
                     "the error, with control characters defused");
    free(s);
    j = job_in(HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT, 0, "timed out after 5s");
    s = summary_of(&j);
    cr_expect_str_eq(s, "hodei: job " JOB_ID " TIMEOUT: timed out after 5s\n");
    free(s);
    j = job_in(HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED, 0, "");
    s = summary_of(&j);
    cr_expect_str_eq(s, "hodei: job " JOB_ID " CANCELLED\n");
    free(s);
}

/* ------------------------------------------------------------ status line */

Test(status_line, not_a_terminal_one_line_per_change)
{
    capture c;
    capture_open(&c);
    cli_status_line s;
    cli_status_line_init(&s, c.err, false);
    cli_status_line_set(&s, "queued (position 2)");
    cli_status_line_set(&s, "queued (position 2)");
    cli_status_line_set(&s, "queued (position 1)");
    cli_status_line_clear(&s);
    cli_status_line_set(&s, "queued (position 1)");
    cli_status_line_set(&s, "starting on worker w1...");
    capture_close(&c);
    cr_expect_str_eq(c.err_text, "hodei: queued (position 2)\n"
                                 "hodei: queued (position 1)\n"
                                 "hodei: starting on worker w1...\n");
    cr_expect_str_eq(c.out_text, "");
    capture_free(&c);
}

Test(status_line, terminal_rewrites_in_place_and_wipes_before_output)
{
    capture c;
    capture_open(&c);
    cli_status_line s;
    cli_status_line_init(&s, c.err, true);
    cli_status_line_clear(&s); /* nothing shown yet: nothing to wipe */
    cli_status_line_set(&s, "queued");
    cli_status_line_set(&s, "queued");
    cli_status_line_set(&s, "queued, waiting for a worker...");
    cli_status_line_clear(&s);
    cli_status_line_clear(&s);
    cli_status_line_set(&s, "queued, waiting for a worker..."); /* wiped: shown again */
    capture_close(&c);
    cr_expect_str_eq(c.err_text, "\r\033[Khodei: queued"
                                 "\r\033[Khodei: queued, waiting for a worker..."
                                 "\r\033[K"
                                 "\r\033[Khodei: queued, waiting for a worker...");
    capture_free(&c);
}

Test(status_line, terminal_line_is_cut_to_the_width)
{
    char text[200];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    capture c;
    capture_open(&c);
    cli_status_line s;
    cli_status_line_init(&s, c.err, true);
    cli_status_line_set(&s, text);
    capture_close(&c);
    cr_expect_eq(c.err_len, 4 + CLI_STATUS_LINE_MAX, "wipe + %d bytes, got %zu",
                 CLI_STATUS_LINE_MAX, c.err_len);
    cr_expect_null(strchr(c.err_text, '\n'));
    capture_free(&c);
}

/* ------------------------------------------------------------ waiting text */

static const char *wait_text(cli_wait_view v)
{
    static char out[256];
    cli_wait_text(&v, out, sizeof out);
    return out;
}

Test(status_line, waiting_texts)
{
    const Hodei__V1__JobState pending = HODEI__V1__JOB_STATE__JOB_STATE_PENDING;
    cli_wait_view v = {.state = pending, .ready_workers = -1, .starting_workers = -1};
    cr_expect_str_eq(wait_text(v), "queued");
    v.position = 3;
    cr_expect_str_eq(wait_text(v), "queued (position 3)");
    v.position_more = true;
    cr_expect_str_eq(wait_text(v), "queued (position 3 or later)");
    v.position_more = false;
    v.ready_workers = 0;
    v.starting_workers = 0;
    cr_expect_str_eq(wait_text(v), "queued (position 3), waiting for a worker...");
    v.starting_workers = 1;
    cr_expect_str_eq(wait_text(v), "queued (position 3), provisioning a worker...");
    v.ready_workers = 2;
    cr_expect_str_eq(wait_text(v), "queued (position 3)", "a READY worker: just queued");
    v.attempt = 1;
    cr_expect_str_eq(wait_text(v), "queued for attempt 2 (position 3)");
    v = (cli_wait_view){.state = HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED, .worker_id = WORKER_ID};
    cr_expect_str_eq(wait_text(v), "starting on worker " WORKER_ID "...");
    v.cancelling = true;
    cr_expect_str_eq(wait_text(v), "cancelling...");
}

/* ------------------------------------------------------------ queue position */

typedef struct {
    Hodei__V1__Job job;
    Hodei__V1__JobSpec spec;
    Hodei__V1__Timestamp created;
    char id[40];
} queued_job;

static void queued(queued_job *q, int n, int32_t priority, int64_t created_s)
{
    hodei__v1__job__init(&q->job);
    hodei__v1__job_spec__init(&q->spec);
    hodei__v1__timestamp__init(&q->created);
    snprintf(q->id, sizeof q->id, "0190b1c2-0000-7000-8000-%012d", n);
    q->spec.priority = priority;
    q->created.seconds = created_s;
    q->job.id = q->id;
    q->job.spec = &q->spec;
    q->job.created_at = &q->created;
    q->job.state = HODEI__V1__JOB_STATE__JOB_STATE_PENDING;
}

Test(queue, position_counts_higher_priority_then_older)
{
    queued_job q[6];
    Hodei__V1__Job *list[6];
    queued(&q[0], 0, 0, 100); /* me */
    queued(&q[1], 1, 0, 90);  /* same priority, older: ahead */
    queued(&q[2], 2, 0, 110); /* same priority, newer: behind */
    queued(&q[3], 3, 5, 200); /* higher priority, newer: ahead */
    queued(&q[4], 4, -5, 10); /* lower priority, older: behind */
    queued(&q[5], 5, 0, 100); /* same priority and time, larger id: behind */
    for (int i = 0; i < 6; i++)
        list[5 - i] = &q[i].job; /* the server lists newest first; order must not matter */
    cr_expect_eq(cli_queue_position(&q[0].job, list, 6), 3);
    cr_expect_eq(cli_queue_position(&q[3].job, list, 6), 1);
    cr_expect_eq(cli_queue_position(&q[4].job, list, 6), 6);
    cr_expect_eq(cli_queue_position(&q[0].job, list, 0), 0, "not listed: unknown");
    cr_expect_eq(cli_queue_position(&q[0].job, list, 5), 0, "list[5] is me");
}

/* ------------------------------------------------------------ log lines */

static Hodei__V1__LogLine log_line(uint64_t seq, Hodei__V1__LogStream stream, const void *data,
                                   size_t len)
{
    Hodei__V1__LogLine l = HODEI__V1__LOG_LINE__INIT;
    l.sequence = seq;
    l.stream = stream;
    l.data.data = (uint8_t *)data;
    l.data.len = len;
    return l;
}

#define OUT HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT
#define ERR HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR
#define LINE(seq, stream, lit) log_line(seq, stream, lit, sizeof lit - 1)

Test(logs, stdout_and_stderr_lines_go_to_their_stream_byte_for_byte)
{
    static const char binary[] = {'a', '\0', 'b', '\xff', '\xfe', '\r', '\t', 'z'};
    Hodei__V1__LogLine lines[] = {
        LINE(1, OUT, "hi"),
        LINE(2, ERR, "warning: x"),
        LINE(3, OUT, ""), /* an empty line stays one newline */
        log_line(4, OUT, binary, sizeof binary),
        LINE(5, ERR, "no newline doubled\n"), /* a newline inside data is data */
        LINE(6, HODEI__V1__LOG_STREAM__LOG_STREAM_UNSPECIFIED, "unknown stream -> stdout"),
    };
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    s.raw = true; /* --raw: the bytes exactly */
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        cr_assert(cli_log_sink_line(&s, &lines[i]));
    capture_close(&c);
    static const char want_out[] = "hi\n\n"
                                   "a\0b\xff\xfe\r\tz\n"
                                   "unknown stream -> stdout\n";
    cr_assert_eq(c.out_len, sizeof want_out - 1, "stdout: %zu bytes", c.out_len);
    cr_expect_eq(memcmp(c.out_text, want_out, c.out_len), 0);
    cr_expect_str_eq(c.err_text, "warning: x\nno newline doubled\n\n");
    cr_expect_eq(s.written, 6);
    cr_expect_eq(s.last_seq, 6);
    capture_free(&c);
}

Test(logs, a_null_data_pointer_is_an_empty_line)
{
    Hodei__V1__LogLine l = log_line(1, OUT, NULL, 0);
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    cr_assert(cli_log_sink_line(&s, &l));
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "\n");
    capture_free(&c);
}

Test(logs, resume_after_a_break_prints_no_line_twice)
{
    Hodei__V1__LogLine a[] = {LINE(1, OUT, "one"), LINE(2, OUT, "two"), LINE(3, ERR, "three")};
    Hodei__V1__LogLine again[] = {LINE(2, OUT, "two"), LINE(3, ERR, "three"), LINE(4, OUT, "four")};
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    cr_expect_eq(cli_log_sink_resume(&s), 1, "nothing seen yet: from the start");
    for (int i = 0; i < 3; i++)
        cli_log_sink_line(&s, &a[i]);
    cr_expect_eq(cli_log_sink_resume(&s), 4, "ask for the line after the last written");
    /* a server that resends from an earlier line */
    for (int i = 0; i < 3; i++)
        cli_log_sink_line(&s, &again[i]);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "one\ntwo\nfour\n");
    cr_expect_str_eq(c.err_text, "three\n");
    cr_expect_eq(s.skipped, 2);
    cr_expect_eq(s.last_seq, 4);
    capture_free(&c);
}

Test(logs, a_new_attempt_restarting_at_one_is_printed)
{
    Hodei__V1__LogLine lines[] = {LINE(1, OUT, "try 1 a"), LINE(2, OUT, "try 1 b"),
                                  LINE(1, OUT, "try 2 a")};
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    for (int i = 0; i < 3; i++)
        cli_log_sink_line(&s, &lines[i]);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "try 1 a\ntry 1 b\ntry 2 a\n",
                     "outside a resume, a lower sequence is not a repeat");
    capture_free(&c);
}

/* Lines as an edge serves them: with their attempt's epoch. */
static Hodei__V1__LogLine epoch_line(int64_t epoch, uint64_t seq, const char *text)
{
    Hodei__V1__LogLine l = log_line(seq, OUT, text, strlen(text));
    l.epoch = epoch;
    return l;
}

Test(logs, resume_inside_a_later_attempt_prints_no_earlier_attempt_again)
{
    Hodei__V1__LogLine first[] = {epoch_line(1, 1, "1a"), epoch_line(1, 2, "1b"),
                                  epoch_line(1, 3, "1c"), epoch_line(2, 1, "2a")};
    /* an edge that resends from the start after the break: every line of
     * attempt 1 (sequences 2 and 3 are past the last written, 1) and 2a */
    Hodei__V1__LogLine again[] = {epoch_line(1, 2, "1b"), epoch_line(1, 3, "1c"),
                                  epoch_line(2, 1, "2a"), epoch_line(2, 2, "2b")};
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    for (int i = 0; i < 4; i++)
        cli_log_sink_line(&s, &first[i]);
    cr_expect_eq(cli_log_sink_resume(&s), 2, "the line after 2a");
    cr_expect_eq(s.last_epoch, 2, "asked with from_epoch 2");
    for (int i = 0; i < 4; i++)
        cli_log_sink_line(&s, &again[i]);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "1a\n1b\n1c\n2a\n2b\n");
    cr_expect_eq(s.skipped, 3);
    capture_free(&c);
}

Test(logs, resume_inside_an_attempt_prints_a_later_attempt_whole)
{
    Hodei__V1__LogLine first[] = {epoch_line(3, 1, "3a"), epoch_line(3, 2, "3b")};
    Hodei__V1__LogLine again[] = {epoch_line(3, 2, "3b"), epoch_line(3, 3, "3c"),
                                  epoch_line(4, 1, "4a"), epoch_line(4, 2, "4b")};
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_JSON, NULL);
    for (int i = 0; i < 2; i++)
        cli_log_sink_line(&s, &first[i]);
    cr_expect_eq(cli_log_sink_resume(&s), 3);
    for (int i = 0; i < 4; i++)
        cli_log_sink_line(&s, &again[i]);
    capture_close(&c);
    cr_expect_eq(s.written, 5);
    cr_expect_eq(s.skipped, 1);
    cr_expect(strstr(c.out_text, "\"data\":\"4a\",\"epoch\":4}\n") != NULL, "%s", c.out_text);
    capture_free(&c);
}

Test(logs, start_at_drops_earlier_lines)
{
    Hodei__V1__LogLine lines[] = {LINE(1, OUT, "1"), LINE(2, OUT, "2"), LINE(3, OUT, "3")};
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    cli_log_sink_start_at(&s, 3);
    cr_expect_eq(cli_log_sink_resume(&s), 3);
    cr_expect_eq(
        cli_log_sink_lines(&s, (Hodei__V1__LogLine *const[]){&lines[0], &lines[1], &lines[2]}, 3),
        1);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "3\n");
    capture_free(&c);
}

Test(logs, chunk_end_of_stream_carries_the_final_state)
{
    Hodei__V1__LogLine l = LINE(1, OUT, "last words");
    Hodei__V1__LogLine *lp = &l;
    Hodei__V1__LogChunk chunk = HODEI__V1__LOG_CHUNK__INIT;
    chunk.lines = &lp;
    chunk.n_lines = 1;
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    Hodei__V1__JobState final_state = 0;
    cr_expect_not(cli_log_sink_chunk(&s, &chunk, &final_state));
    cr_expect_eq(final_state, 0);
    chunk.n_lines = 0;
    chunk.end_of_stream = true;
    chunk.final_state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
    cr_expect(cli_log_sink_chunk(&s, &chunk, &final_state));
    cr_expect_eq(final_state, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "last words\n");
    capture_free(&c);
}

Test(logs, the_status_line_is_wiped_before_the_first_line)
{
    Hodei__V1__LogLine l = LINE(1, ERR, "job says");
    capture c;
    capture_open(&c);
    cli_status_line st;
    cli_status_line_init(&st, c.err, true);
    cli_status_line_set(&st, "starting on worker w...");
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, &st);
    cli_log_sink_line(&s, &l);
    cli_log_sink_line(&s, &l);
    capture_close(&c);
    cr_expect_str_eq(c.err_text,
                     "\r\033[Khodei: starting on worker w...\r\033[Kjob says\njob says\n");
    capture_free(&c);
}

Test(logs, json_lines_keep_the_exact_bytes)
{
    static const char bin[] = {'o', 'k', '\xff', '\0'};
    Hodei__V1__Timestamp t = HODEI__V1__TIMESTAMP__INIT;
    t.seconds = 1700000000;
    Hodei__V1__LogLine a = LINE(1, OUT, "say \"hi\"\t");
    Hodei__V1__LogLine b = log_line(2, ERR, bin, sizeof bin);
    a.time = &t;
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_JSON, NULL);
    cli_log_sink_line(&s, &a);
    cli_log_sink_line(&s, &b);
    capture_close(&c);
    cr_expect_str_eq(c.out_text,
                     "{\"sequence\":1,\"stream\":\"stdout\",\"time\":\"2023-11-14T22:13:20.000Z\","
                     "\"data\":\"say \\\"hi\\\"\\u0009\"}\n"
                     "{\"sequence\":2,\"stream\":\"stderr\",\"time\":null,"
                     "\"data\":\"ok\xef\xbf\xbd\\u0000\",\"data_base64\":\"b2v/AA==\"}\n");
    cr_expect_str_eq(c.err_text, "", "with -o json every line is on stdout");
    capture_free(&c);
}

Test(logs, a_failed_write_is_reported)
{
    FILE *full = fopen("/dev/full", "w");
    cr_assert_not_null(full);
    setvbuf(full, NULL, _IONBF, 0);
    Hodei__V1__LogLine l = LINE(1, OUT, "x");
    cli_log_sink s;
    cli_log_sink_init(&s, full, stderr, CLI_OUTPUT_HUMAN, NULL);
    cr_expect_not(cli_log_sink_line(&s, &l));
    cr_expect(s.failed);
    cr_expect_not(cli_log_sink_line(&s, &l), "stays failed");
    fclose(full);
}

Test(logs, base64)
{
    static const struct {
        const char *in, *out;
    } cases[] = {{"", ""},
                 {"f", "Zg=="},
                 {"fo", "Zm8="},
                 {"foo", "Zm9v"},
                 {"foob", "Zm9vYg=="},
                 {"fooba", "Zm9vYmE="},
                 {"foobar", "Zm9vYmFy"}};
    char out[16];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert(cli_base64((const uint8_t *)cases[i].in, strlen(cases[i].in), out, sizeof out));
        cr_expect_str_eq(out, cases[i].out);
    }
    cr_expect_not(cli_base64((const uint8_t *)"foo", 3, out, 4), "needs room for the NUL");
}

/* ------------------------------------------------------------ workers, providers */

Test(fleet, sizes_and_durations)
{
    char t[32];
    cli_format_size(0, t, sizeof t);
    cr_expect_str_eq(t, "-");
    cli_format_size(512, t, sizeof t);
    cr_expect_str_eq(t, "512");
    cli_format_size(512 * 1024 * 1024, t, sizeof t);
    cr_expect_str_eq(t, "512Mi");
    cli_format_size(INT64_C(3) << 30, t, sizeof t);
    cr_expect_str_eq(t, "3Gi");
    cli_format_size(INT64_C(3) << 29, t, sizeof t);
    cr_expect_str_eq(t, "1.5Gi");
    cli_format_duration(0, t, sizeof t);
    cr_expect_str_eq(t, "-");
    cli_format_duration(1500, t, sizeof t);
    cr_expect_str_eq(t, "1500ms");
    cli_format_duration(300000, t, sizeof t);
    cr_expect_str_eq(t, "5m");
    cli_format_duration(5400000, t, sizeof t);
    cr_expect_str_eq(t, "1h30m");
    cli_format_duration(3661000, t, sizeof t);
    cr_expect_str_eq(t, "1h1m1s");
}

typedef struct {
    Hodei__V1__Worker w;
    Hodei__V1__ResourceRequirements cap;
    Hodei__V1__Timestamp beat;
    Hodei__V1__Worker__LabelsEntry label;
    Hodei__V1__Worker__LabelsEntry *labels[1];
} test_worker;

static void worker(test_worker *t, const char *id, Hodei__V1__WorkerState state)
{
    hodei__v1__worker__init(&t->w);
    hodei__v1__resource_requirements__init(&t->cap);
    hodei__v1__timestamp__init(&t->beat);
    hodei__v1__worker__labels_entry__init(&t->label);
    t->cap.cpu_cores = 2;
    t->cap.memory_bytes = INT64_C(4) << 30;
    t->beat.seconds = 1000;
    t->label.key = "zone";
    t->label.value = "eu-1";
    t->labels[0] = &t->label;
    t->w.id = (char *)id;
    t->w.provider = "process";
    t->w.state = state;
    t->w.capacity = &t->cap;
    t->w.last_heartbeat = &t->beat;
    t->w.labels = t->labels;
    t->w.n_labels = 1;
}

Test(fleet, workers_table_shows_ready_ones_unless_all)
{
    test_worker a, b;
    worker(&a, "w-ready", HODEI__V1__WORKER_STATE__WORKER_STATE_READY);
    worker(&b, "w-busy", HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY);
    Hodei__V1__Worker *ws[] = {&a.w, &b.w};
    Hodei__V1__GetAvailableWorkersResponse r = HODEI__V1__GET_AVAILABLE_WORKERS_RESPONSE__INIT;
    r.workers = ws;
    r.n_workers = 2;
    int64_t now_us = INT64_C(1003) * 1000000;
    capture c;
    capture_open(&c);
    cr_expect_eq(cli_output_workers(CLI_OUTPUT_HUMAN, &r, false, now_us, c.out, c.err), 0);
    capture_close(&c);
    cr_expect_str_eq(c.out_text,
                     "ID       PROVIDER  STATE  CPU  MEMORY  LABELS     LAST HEARTBEAT\n"
                     "w-ready  process   READY  2    4Gi     zone=eu-1  3s ago\n");
    cr_expect_str_eq(c.err_text, "(1 more in other states; --all shows them)\n");
    capture_free(&c);

    capture_open(&c);
    cli_output_workers(CLI_OUTPUT_HUMAN, &r, true, now_us, c.out, c.err);
    capture_close(&c);
    cr_expect(strstr(c.out_text, "w-busy   process   BUSY") != NULL, "%s", c.out_text);
    cr_expect_str_eq(c.err_text, "");
    capture_free(&c);

    r.n_workers = 0;
    capture_open(&c);
    cli_output_workers(CLI_OUTPUT_HUMAN, &r, false, now_us, c.out, c.err);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "");
    cr_expect_str_eq(c.err_text, "No workers ready.\n");
    capture_free(&c);
}

Test(fleet, workers_json)
{
    test_worker a;
    worker(&a, "w1", HODEI__V1__WORKER_STATE__WORKER_STATE_READY);
    Hodei__V1__Worker *ws[] = {&a.w};
    Hodei__V1__GetAvailableWorkersResponse r = HODEI__V1__GET_AVAILABLE_WORKERS_RESPONSE__INIT;
    r.workers = ws;
    r.n_workers = 1;
    capture c;
    capture_open(&c);
    cr_expect_eq(cli_output_workers(CLI_OUTPUT_JSON, &r, false, 0, c.out, c.err), 0);
    capture_close(&c);
    cr_expect_str_eq(c.out_text,
                     "{\"workers\":[{\"id\":\"w1\",\"provider\":\"process\",\"state\":\"READY\","
                     "\"hostname\":\"\",\"capacity\":{\"cpu_cores\":2,\"memory_bytes\":4294967296,"
                     "\"storage_bytes\":0,\"gpu_count\":0,\"architecture\":\"\"},"
                     "\"labels\":{\"zone\":\"eu-1\"},\"current_job_id\":\"\","
                     "\"last_heartbeat\":\"1970-01-01T00:16:40.000Z\",\"created_at\":null}]}\n");
    capture_free(&c);
}

Test(fleet, providers_table_and_json)
{
    Hodei__V1__Provider p = HODEI__V1__PROVIDER__INIT;
    p.name = "process";
    p.type = HODEI__V1__PROVIDER_TYPE__PROVIDER_TYPE_PROCESS;
    p.enabled = true;
    p.max_workers = 8;
    p.warm_pool_min = 1;
    p.warm_pool_max = 2;
    p.idle_ttl_ms = 300000;
    Hodei__V1__Provider *ps[] = {&p};
    Hodei__V1__ListProvidersResponse r = HODEI__V1__LIST_PROVIDERS_RESPONSE__INIT;
    r.providers = ps;
    r.n_providers = 1;
    capture c;
    capture_open(&c);
    cr_expect_eq(cli_output_providers(CLI_OUTPUT_HUMAN, &r, c.out, c.err), 0);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "NAME     TYPE     ENABLED  MAX  WARM MIN/MAX  IDLE TTL\n"
                                 "process  process  yes      8    1/2           5m\n");
    capture_free(&c);
    capture_open(&c);
    cr_expect_eq(cli_output_providers(CLI_OUTPUT_JSON, &r, c.out, c.err), 0);
    capture_close(&c);
    cr_expect_str_eq(c.out_text,
                     "{\"providers\":[{\"name\":\"process\",\"type\":\"process\",\"enabled\":true,"
                     "\"max_workers\":8,\"warm_pool_min\":1,\"warm_pool_max\":2,"
                     "\"idle_ttl_ms\":300000,\"cost_per_hour\":0,\"worker_capacity\":null,"
                     "\"config\":{}}]}\n");
    capture_free(&c);
}

Test(fleet, provider_health_exits_1_when_unhealthy)
{
    Hodei__V1__GetProviderHealthResponse h = HODEI__V1__GET_PROVIDER_HEALTH_RESPONSE__INIT;
    h.name = "docker";
    h.healthy = true;
    h.workers = 3;
    capture c;
    capture_open(&c);
    cr_expect_eq(cli_output_provider_health(CLI_OUTPUT_HUMAN, &h, c.out), 0);
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "Provider:  docker\nHealthy:   yes\nWorkers:   3\n"
                                 "Message:   -\nChecked:   -\n");
    capture_free(&c);
    h.healthy = false;
    h.message = "cannot reach /var/run/docker.sock";
    capture_open(&c);
    cr_expect_eq(cli_output_provider_health(CLI_OUTPUT_JSON, &h, c.out), 1);
    capture_close(&c);
    cr_expect_str_eq(c.out_text,
                     "{\"name\":\"docker\",\"healthy\":false,\"message\":\"cannot "
                     "reach /var/run/docker.sock\",\"workers\":3,\"checked_at\":null}\n");
    capture_free(&c);
}

Test(logs, human_output_shows_terminal_controls_as_text_and_raw_keeps_them)
{
    static const char evil[] = "\x1b]0;owned\x07red\x1b[2J\r\tok\x7f\xc2\x9b"
                               "1m\x9b"
                               "\xc3\xa9";
    Hodei__V1__LogLine l = log_line(1, OUT, evil, sizeof evil - 1);
    capture c;
    capture_open(&c);
    cli_log_sink s;
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    cr_assert(cli_log_sink_line(&s, &l));
    capture_close(&c);
    cr_expect_str_eq(c.out_text, "^[]0;owned^Gred^[[2J^M\tok^?\\x9b1m\\x9b\xc3\xa9\n");
    capture_free(&c);
    capture_open(&c);
    cli_log_sink_init(&s, c.out, c.err, CLI_OUTPUT_HUMAN, NULL);
    s.raw = true;
    cr_assert(cli_log_sink_line(&s, &l));
    capture_close(&c);
    cr_assert_eq(c.out_len, sizeof evil);
    cr_expect_eq(memcmp(c.out_text, evil, sizeof evil - 1), 0);
    capture_free(&c);
}
