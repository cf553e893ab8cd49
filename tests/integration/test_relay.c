/* hodei-outbox-relay as a real child process against a private PostgreSQL
 * and nats-server (tests/harness): order and headers, crash and restart of
 * every party, one active relay, pruning, clean stop. */
#include <criterion/criterion.h>

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"
#include "hodei/bus.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/time.h"

#define T_RELAYS_MAX 8
#define T_WRITERS_MAX 16
#define T_ROWS_MAX 10000
#define T_WRITE_RETRY_MS 60000   /* a writer gives up on a row after this */
#define T_PUBLISH_WAIT_MS 120000 /* generous: ASan build, 2 cores */
#define T_FETCH_BATCH 512
#define T_FETCH_WAIT_MS 2000
#define T_SUBJECT HODEI_SUBJ_JOB_QUEUED
#define T_EVENT_TYPE "JobQueued"

/* One outbox row the test wrote. */
typedef struct {
    char job_id[HODEI_ID_BUF];
    char event_id[HODEI_ID_BUF];
} t_row;

/* One message read back from HODEI_EVENTS. */
typedef struct {
    char event_id[HODEI_ID_BUF];
    char aggregate_id[HODEI_ID_BUF];
    char event_type[32];
    char publisher[64];
    char subject[64];
    unsigned char payload[8];
    int payload_len;
} t_msg;

static harness_stack g_st;
static harness_proc g_relays[T_RELAYS_MAX];
static int g_n_relays;
static t_row g_rows[T_ROWS_MAX];
static t_msg g_msgs[T_ROWS_MAX + 16];

static void setup(void)
{
    harness_stack_start(&g_st);
}

static void teardown(void)
{
    for (int i = 0; i < g_n_relays; i++)
        if (harness_proc_alive(&g_relays[i]))
            harness_proc_stop(&g_relays[i], SIGKILL, 5000);
    harness_stack_stop(&g_st);
    hodei_bus_global_shutdown();
}

/* Each case its own database and an emptied NATS of one stack (tests/harness). */
HARNESS_SHARED_SERVERS()

TestSuite(relay, .init = setup, .fini = teardown, .timeout = 600);

/* ---- the relay process ---- */

static harness_proc *relay_start(const char *const *extra_env)
{
    const char *argv[] = {"hodei-outbox-relay", NULL};
    cr_assert(g_n_relays < T_RELAYS_MAX);
    harness_proc *p = &g_relays[g_n_relays++];
    harness_proc_start(&g_st, p, argv, extra_env);
    return p;
}

static harness_proc *relay_start_active(const char *const *extra_env)
{
    harness_proc *p = relay_start(extra_env);
    cr_assert(harness_log_contains(p, "active:", 30000), "relay became active (log %s)",
              p->log_path);
    return p;
}

/* ---- writing like the edge: job row + outbox row in one transaction ---- */

static hodei_status row_insert_tx(PGconn *c, const t_row *r, int idx, hodei_err *err)
{
    char payload[32];
    const char *job[] = {r->job_id};
    const char *evt[] = {r->event_id, r->job_id, payload};
    hodei_status st;

    /* NUL and high bytes on purpose: the payload is binary. */
    snprintf(payload, sizeof payload, "\\x00ff%02x%02x70", (idx >> 8) & 0xff, idx & 0xff);
    st = hodei_db_begin(c, err);
    if (st == HODEI_OK)
        st = hodei_db_exec(c,
                           "INSERT INTO jobs (id, state, spec, timeout_ms) "
                           "VALUES ($1::uuid, 'PENDING', '\\x0a00'::bytea, 60000)",
                           1, job, NULL, err);
    if (st == HODEI_OK)
        st = hodei_db_exec(c,
                           "INSERT INTO outbox (event_id, subject, aggregate_type, "
                           "aggregate_id, event_type, payload) VALUES ($1::uuid, '" T_SUBJECT
                           "', 'job', $2, '" T_EVENT_TYPE "', $3::bytea)",
                           3, evt, NULL, err);
    if (st == HODEI_OK)
        return hodei_db_commit(c, err);
    hodei_db_rollback(c);
    return st;
}

/* Inserts row idx, retrying through server restarts; a retry that finds
 * the job already there means the earlier (in-doubt) commit happened. */
static bool row_write(PGconn **c, int idx, hodei_err *err_out)
{
    int64_t deadline = hodei_mono_ms() + T_WRITE_RETRY_MS;
    hodei_err err = {0};

    while (hodei_mono_ms() < deadline) {
        if (!*c && hodei_db_connect(g_st.db_url, 2000, c, &err) != HODEI_OK) {
            *c = NULL;
            hodei_sleep_ms(50);
            continue;
        }
        hodei_status st = row_insert_tx(*c, &g_rows[idx], idx, &err);
        if (st == HODEI_OK || st == HODEI_ERR_EXISTS)
            return true;
        PQfinish(*c);
        *c = NULL;
        hodei_sleep_ms(50);
    }
    *err_out = err;
    return false;
}

static atomic_int g_committed;
static atomic_int g_write_failures;
static hodei_err g_write_err; /* first failure, for the message */

typedef struct {
    int first, count;
} writer_arg;

static void *writer_main(void *arg)
{
    const writer_arg *w = arg;
    PGconn *c = NULL;

    for (int i = w->first; i < w->first + w->count; i++) {
        hodei_err err = {0};
        if (!row_write(&c, i, &err)) {
            if (atomic_fetch_add(&g_write_failures, 1) == 0)
                g_write_err = err;
            break;
        }
        atomic_fetch_add(&g_committed, 1);
    }
    PQfinish(c);
    return NULL;
}

static void rows_make(int n)
{
    cr_assert(n <= T_ROWS_MAX);
    for (int i = 0; i < n; i++) {
        hodei_id_new(g_rows[i].job_id);
        hodei_id_new(g_rows[i].event_id);
    }
    atomic_store(&g_committed, 0);
    atomic_store(&g_write_failures, 0);
}

/* Writes rows [first, first+n) with `writers` threads, each its own connection. */
static void rows_write(int first, int n, int writers, pthread_t *tids, writer_arg *args)
{
    int per = n / writers;
    for (int w = 0; w < writers; w++) {
        args[w].first = first + w * per;
        args[w].count = w == writers - 1 ? n - w * per : per;
        cr_assert_eq(pthread_create(&tids[w], NULL, writer_main, &args[w]), 0);
    }
}

static void rows_join(int writers, pthread_t *tids)
{
    for (int w = 0; w < writers; w++)
        pthread_join(tids[w], NULL);
    cr_assert_eq(atomic_load(&g_write_failures), 0, "a writer gave up: %s", g_write_err.msg);
}

static void rows_write_sync(int first, int n)
{
    pthread_t tid;
    writer_arg a;
    rows_write(first, n, 1, &tid, &a);
    rows_join(1, &tid);
}

/* ---- waiting on the outbox ---- */

static int64_t outbox_count(const char *where)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM outbox %s", where);
    return harness_sql_i64(&g_st, sql);
}

/* Waits until the outbox holds `total` rows and none is unpublished. */
static bool outbox_wait_published(int64_t total, int64_t timeout_ms)
{
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    do {
        if (outbox_count("WHERE published_at IS NULL") == 0 && outbox_count("") == total)
            return true;
        hodei_sleep_ms(50);
    } while (hodei_mono_ms() < deadline);
    return false;
}

/* ---- reading HODEI_EVENTS back with a pull consumer ---- */

static void msg_header(natsMsg *m, const char *key, char *out, size_t out_len)
{
    const char *v = NULL;
    out[0] = '\0';
    if (natsMsgHeader_Get(m, key, &v) == NATS_OK && v)
        snprintf(out, out_len, "%s", v);
}

static void msg_take(natsMsg *m, t_msg *out)
{
    int len = natsMsg_GetDataLength(m);
    msg_header(m, HODEI_HDR_MSG_ID, out->event_id, sizeof out->event_id);
    msg_header(m, HODEI_HDR_AGGREGATE_ID, out->aggregate_id, sizeof out->aggregate_id);
    msg_header(m, HODEI_HDR_EVENT_TYPE, out->event_type, sizeof out->event_type);
    msg_header(m, HODEI_HDR_PUBLISHER, out->publisher, sizeof out->publisher);
    snprintf(out->subject, sizeof out->subject, "%s", natsMsg_GetSubject(m));
    out->payload_len = len;
    memcpy(out->payload, natsMsg_GetData(m), len < 8 ? (size_t)len : 8);
}

static uint64_t stream_msgs(hodei_bus *bus)
{
    jsStreamInfo *si = NULL;
    cr_assert_eq(js_GetStreamInfo(&si, hodei_bus_js(bus), HODEI_STREAM_EVENTS, NULL, NULL),
                 NATS_OK);
    uint64_t n = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return n;
}

/* Reads every message of HODEI_EVENTS in stream order into g_msgs; returns
 * how many the stream holds (and were read). */
static int stream_read_all(void)
{
    hodei_bus *bus = NULL;
    hodei_err err = {0};
    natsSubscription *sub = NULL;
    jsSubOptions so;
    int got = 0;

    cr_assert_eq(hodei_bus_connect(g_st.nats_url, NULL, "test-reader", 5000, &bus, &err), HODEI_OK,
                 "%s", err.msg);
    uint64_t want = stream_msgs(bus);
    cr_assert(want <= T_ROWS_MAX + 16, "stream holds %" PRIu64 " messages", want);
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    so.Config.AckPolicy = js_AckNone;
    cr_assert_eq(
        js_PullSubscribe(&sub, hodei_bus_js(bus), HODEI_SUBJ_EVENTS_ALL, NULL, NULL, &so, NULL),
        NATS_OK);
    while ((uint64_t)got < want) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, T_FETCH_BATCH, T_FETCH_WAIT_MS, NULL);
        cr_assert_eq(s, NATS_OK, "fetch after %d of %" PRIu64 ": %s", got, want,
                     natsStatus_GetText(s));
        for (int i = 0; i < list.Count && (uint64_t)got < want; i++)
            msg_take(list.Msgs[i], &g_msgs[got++]);
        natsMsgList_Destroy(&list);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    hodei_bus_destroy(bus);
    return got;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Asserts the stream holds exactly one message per row written, no more. */
static void stream_assert_exactly_rows(int n_rows)
{
    static const char *seen[T_ROWS_MAX + 16], *wrote[T_ROWS_MAX];
    int n = stream_read_all();

    cr_assert_eq(n, n_rows, "HODEI_EVENTS holds %d messages for %d rows", n, n_rows);
    for (int i = 0; i < n; i++)
        seen[i] = g_msgs[i].event_id;
    for (int i = 0; i < n_rows; i++)
        wrote[i] = g_rows[i].event_id;
    qsort(seen, (size_t)n, sizeof *seen, cmp_str);
    qsort(wrote, (size_t)n_rows, sizeof *wrote, cmp_str);
    for (int i = 0; i < n; i++)
        cr_assert_str_eq(seen[i], wrote[i], "Nats-Msg-Id #%d (sorted) is a written event id", i);
}

/* ---- the tests ---- */

Test(relay, publishes_in_id_order_with_headers_and_marks_published)
{
    const int backlog = 40, live = 60, n = backlog + live;

    rows_make(n);
    rows_write_sync(0, backlog); /* waiting before the relay starts */
    harness_proc *p =
        relay_start_active((const char *const[]){"HODEI_INSTANCE_ID=relay-one", NULL});
    for (int i = backlog; i < n; i++) /* one transaction each, woken by NOTIFY */
        rows_write_sync(i, 1);
    cr_assert(outbox_wait_published(n, T_PUBLISH_WAIT_MS), "all %d rows marked published", n);

    cr_assert_eq(stream_read_all(), n);
    for (int i = 0; i < n; i++) {
        const t_msg *m = &g_msgs[i];
        cr_assert_str_eq(m->event_id, g_rows[i].event_id, "message %d is row %d (id order)", i, i);
        cr_expect_str_eq(m->aggregate_id, g_rows[i].job_id);
        cr_expect_str_eq(m->event_type, T_EVENT_TYPE);
        cr_expect_str_eq(m->subject, T_SUBJECT);
        cr_expect_str_eq(m->publisher, "relay-one");
        cr_assert_eq(m->payload_len, 5, "payload length of message %d", i);
        const unsigned char want[5] = {0x00, 0xff, (unsigned char)(i >> 8), (unsigned char)i, 'p'};
        cr_expect_eq(memcmp(m->payload, want, 5), 0, "payload bytes of message %d", i);
    }
    cr_expect_eq(outbox_count("WHERE published_at IS NOT NULL"), n,
                 "published rows stay for the retention period");
    harness_proc_stop(p, SIGTERM, 30000);
}

/* As if a relay died between JetStream's ack and its UPDATE. The UPDATE
 * sends no NOTIFY, so this also proves the fallback poll. */
Test(relay, rows_published_again_are_deduplicated_by_jetstream)
{
    rows_make(30);
    harness_proc *p = relay_start_active(NULL);
    rows_write_sync(0, 30);
    cr_assert(outbox_wait_published(30, T_PUBLISH_WAIT_MS));

    cr_assert_eq(harness_sql_i64(&g_st,
                                 "WITH u AS (UPDATE outbox SET published_at = NULL WHERE id IN"
                                 " (SELECT id FROM outbox ORDER BY id LIMIT 20) RETURNING 1)"
                                 " SELECT count(*) FROM u"),
                 20);
    cr_assert(outbox_wait_published(30, T_PUBLISH_WAIT_MS), "published again (log %s)",
              p->log_path);
    stream_assert_exactly_rows(30);
}

/* A row that can never be published holds back the rows after it (order,
 * nothing lost), says why, and leaves the NATS connection alone. */
Test(relay, a_row_with_a_bad_subject_holds_back_and_names_itself)
{
    char sql[512];
    rows_make(11);
    harness_proc *p = relay_start_active(NULL);
    rows_write_sync(0, 5);
    snprintf(sql, sizeof sql,
             "WITH i AS (INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id,"
             " event_type, payload) VALUES ('%s', 'hodei.evt.bad subject', 'job', 'x', 'JobQueued',"
             " '\\x00') RETURNING 1) SELECT count(*) FROM i",
             g_rows[5].event_id);
    cr_assert_eq(harness_sql_i64(&g_st, sql), 1);
    rows_write_sync(6, 5);

    cr_assert(harness_log_contains(p, "is not a literal", 30000), "the error names the subject");
    cr_assert_eq(outbox_count("WHERE published_at IS NOT NULL"), 5, "rows before it went out");
    cr_assert_eq(harness_sql_i64(&g_st, "WITH u AS (UPDATE outbox SET subject = '" T_SUBJECT "'"
                                        " WHERE subject = 'hodei.evt.bad subject' RETURNING 1)"
                                        " SELECT count(*) FROM u"),
                 1);
    cr_assert(outbox_wait_published(11, T_PUBLISH_WAIT_MS), "all published once repaired");
    stream_assert_exactly_rows(11);
    cr_expect_not(harness_log_contains(p, "nats disconnected", 0),
                  "the bad row never reached the NATS connection (log %s)", p->log_path);
}

Test(relay, sigterm_stops_with_exit_0_and_releases_the_lock)
{
    rows_make(10);
    harness_proc *p = relay_start_active(NULL);
    rows_write_sync(0, 10);
    cr_assert(outbox_wait_published(10, T_PUBLISH_WAIT_MS));

    int ws = harness_proc_stop(p, SIGTERM, 30000);
    cr_assert(ws != -1, "the relay exited after SIGTERM");
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0,
              "exit 0 (status 0x%x; ASan reports leaks with a non-zero exit; log %s)", ws,
              p->log_path);
    int64_t deadline = hodei_mono_ms() + 10000, locks;
    while ((locks = harness_sql_i64(&g_st, "SELECT count(*) FROM pg_locks"
                                           " WHERE locktype = 'advisory'")) != 0 &&
           hodei_mono_ms() < deadline)
        hodei_sleep_ms(20);
    cr_expect_eq(locks, 0, "the advisory lock went with the session");
}

Test(relay, unreachable_database_at_start_exits_1_with_a_clear_message)
{
    char url[128];
    snprintf(url, sizeof url, "HODEI_DATABASE_URL=postgresql://hodei@127.0.0.1:%d/hodei",
             harness_free_port());
    harness_proc *p = relay_start((const char *const[]){url, NULL});
    int ws = harness_proc_wait(p, 60000);
    cr_assert(ws != -1, "the relay gave up (log %s)", p->log_path);
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 1, "exit 1, got status 0x%x", ws);
    cr_expect(harness_log_contains(p, "cannot reach the database", 0),
              "the message names the database (log %s)", p->log_path);
}

Test(relay, prunes_published_rows_older_than_retention_never_unpublished_ones)
{
    const char *env[] = {"HODEI_RELAY_RETENTION=1ms", "HODEI_RELAY_PRUNE_INTERVAL=200ms",
                         "HODEI_RELAY_PUBLISH_TIMEOUT=500ms", NULL};
    rows_make(20);
    harness_proc *p = relay_start_active(env);
    cr_assert(harness_log_contains(p, "nats ready", 30000));

    harness_nats_stop(&g_st);
    rows_write_sync(0, 20);
    hodei_sleep_ms(1500); /* several prune turns while NATS is down */
    cr_assert_eq(outbox_count("WHERE published_at IS NULL"), 20,
                 "unpublished rows are never pruned");

    harness_nats_start(&g_st);
    int64_t deadline = hodei_mono_ms() + T_PUBLISH_WAIT_MS;
    while (outbox_count("") != 0 && hodei_mono_ms() < deadline)
        hodei_sleep_ms(50);
    cr_assert_eq(outbox_count(""), 0, "published rows were pruned (log %s)", p->log_path);
    stream_assert_exactly_rows(20);
    cr_expect(harness_log_contains(p, "pruned", 0));
}

/* Waits until `n` rows are committed by the writers (they keep going). */
static void committed_wait(int n)
{
    int64_t deadline = hodei_mono_ms() + T_PUBLISH_WAIT_MS;
    while (atomic_load(&g_committed) < n && atomic_load(&g_write_failures) == 0 &&
           hodei_mono_ms() < deadline)
        hodei_sleep_ms(5);
}

static void progress_log(const char *event)
{
    cr_log_info("%s: committed=%d published=%" PRId64, event, atomic_load(&g_committed),
                outbox_count("WHERE published_at IS NOT NULL"));
}

static harness_proc *relay_kill_and_restart(harness_proc *p)
{
    progress_log("SIGKILL relay");
    int ws = harness_proc_stop(p, SIGKILL, 10000);
    cr_assert(ws != -1 && WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
    return relay_start(NULL);
}

Test(relay, ten_thousand_rows_through_relay_kills_and_a_nats_restart)
{
    const int n = T_ROWS_MAX, writers = T_WRITERS_MAX;
    pthread_t tids[T_WRITERS_MAX];
    writer_arg args[T_WRITERS_MAX];

    rows_make(n);
    harness_proc *p = relay_start_active(NULL);
    rows_write(0, n, writers, tids, args);

    committed_wait(1500);
    p = relay_kill_and_restart(p);
    committed_wait(3500);
    progress_log("stop nats");
    harness_nats_stop(&g_st);
    committed_wait(4500);
    progress_log("start nats");
    harness_nats_start(&g_st);
    committed_wait(6000);
    p = relay_kill_and_restart(p);
    committed_wait(8000);
    p = relay_kill_and_restart(p);
    rows_join(writers, tids);
    progress_log("writers done");

    cr_assert(outbox_wait_published(n, T_PUBLISH_WAIT_MS),
              "all %d rows marked published (unpublished: %" PRId64 ", log %s)", n,
              outbox_count("WHERE published_at IS NULL"), p->log_path);
    stream_assert_exactly_rows(n);
}

Test(relay, one_active_relay_and_the_standby_takes_over_within_5s)
{
    rows_make(400);
    harness_proc *a = relay_start_active((const char *const[]){"HODEI_INSTANCE_ID=relay-a", NULL});
    harness_proc *b = relay_start((const char *const[]){"HODEI_INSTANCE_ID=relay-b", NULL});
    cr_assert(harness_log_contains(b, "standby:", 30000), "second relay stands by");

    rows_write_sync(0, 200);
    cr_assert(outbox_wait_published(200, T_PUBLISH_WAIT_MS));
    cr_assert(harness_proc_alive(b));
    cr_assert_eq(stream_read_all(), 200);
    for (int i = 0; i < 200; i++)
        cr_assert_str_eq(g_msgs[i].publisher, "relay-a", "message %d while both live", i);

    int ws = harness_proc_stop(a, SIGKILL, 10000);
    cr_assert(ws != -1);
    int64_t killed_ms = hodei_mono_ms();
    rows_write_sync(200, 200);
    int64_t left_ms = 5000 - (hodei_mono_ms() - killed_ms);
    cr_assert(outbox_wait_published(400, left_ms > 0 ? left_ms : 0),
              "the standby published the new rows within 5 s of the kill (log %s)", b->log_path);
    cr_assert_eq(stream_read_all(), 400);
    for (int i = 200; i < 400; i++)
        cr_assert_str_eq(g_msgs[i].publisher, "relay-b", "message %d after the kill", i);
}

Test(relay, postgresql_restart_mid_stream_loses_nothing)
{
    const int n = 2000, writers = 4;
    pthread_t tids[4];
    writer_arg args[4];

    rows_make(n);
    harness_proc *p = relay_start_active(NULL);
    rows_write(0, n, writers, tids, args);
    committed_wait(600);
    progress_log("stop postgresql");
    harness_pg_stop(&g_st);
    hodei_sleep_ms(300);
    harness_pg_start(&g_st);
    progress_log("started postgresql");
    rows_join(writers, tids);

    cr_assert(outbox_wait_published(n, T_PUBLISH_WAIT_MS), "all rows published (log %s)",
              p->log_path);
    cr_assert(harness_proc_alive(p), "the relay rode through the restart");
    stream_assert_exactly_rows(n);
}

/* Polls /readyz until it answers want with text in its body. */
static bool readyz(int port, int want, const char *text, char *body, size_t len)
{
    return harness_http_wait(port, "/readyz", want, text, T_PUBLISH_WAIT_MS, body, len);
}

Test(relay, readyz_names_the_database_while_postgresql_is_down_and_nats_while_it_is)
{
    char listen_env[64], body[2048];
    int port = harness_free_port();
    snprintf(listen_env, sizeof listen_env, "HODEI_HEALTH_LISTEN=127.0.0.1:%d", port);
    const char *env[] = {listen_env, NULL};
    harness_proc *p = relay_start_active(env);

    cr_assert(readyz(port, 200, "ready\n", body, sizeof body), "ready once active: %s", body);
    cr_assert(strstr(body, "database: up\n") && strstr(body, "nats: up\n"), "%s", body);

    harness_pg_stop(&g_st);
    cr_assert(readyz(port, 503, "database: down (", body, sizeof body),
              "503 naming the database while PostgreSQL is down: %s (log %s)", body, p->log_path);
    cr_assert_eq(harness_http(port, "GET", "/healthz", body, sizeof body), 200,
                 "alive all the same");
    harness_pg_start(&g_st);
    cr_assert(readyz(port, 200, "database: up\n", body, sizeof body),
              "ready again after PostgreSQL is back: %s (log %s)", body, p->log_path);

    harness_nats_stop(&g_st);
    cr_assert(readyz(port, 503, "nats: down (", body, sizeof body),
              "503 naming NATS while it is down: %s (log %s)", body, p->log_path);
    harness_nats_start(&g_st);
    cr_assert(readyz(port, 200, "nats: up\n", body, sizeof body),
              "ready again after NATS is back: %s (log %s)", body, p->log_path);

    rows_make(50);
    rows_write_sync(0, 50);
    cr_assert(outbox_wait_published(50, T_PUBLISH_WAIT_MS), "publishing goes on");
}
