/* libs/db and hodei-migrate against a real PostgreSQL started by the harness
 * (scripts/hodei-stack), one private stack per test. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/time.h"

#define TEST_CONNECT_TIMEOUT_MS 5000
#define TEST_ACQUIRE_TIMEOUT_MS 5000
#define TEST_NOTIFY_WAIT_MS 10000
#define TEST_OUT_MAX 8192

static harness_stack stack;

static void stack_up(void)
{
    harness_stack_start(&stack);
}
static void stack_down(void)
{
    harness_stack_stop(&stack);
}

TestSuite(db, .init = stack_up, .fini = stack_down, .timeout = 120);
TestSuite(db_offline, .timeout = 60);

static PGconn *conn_open(const char *url)
{
    hodei_err err;
    PGconn *c = NULL;
    hodei_status st = hodei_db_connect(url, TEST_CONNECT_TIMEOUT_MS, &c, &err);
    cr_assert_eq(st, HODEI_OK, "connect: %s", err.msg);
    return c;
}

/* Inserts one outbox row with a fresh event id; returns the status. */
static hodei_status outbox_insert(PGconn *c, const char *event_id, hodei_err *err)
{
    const char *p[] = {event_id, "hodei.evt.job.JobQueued", "job", "j-1", "JobQueued"};
    return hodei_db_exec(c,
                         "INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id,"
                         " event_type, payload) VALUES ($1, $2, $3, $4, $5, '\\x00')",
                         5, p, NULL, err);
}

/* ------------------------------------------------------------ migrations */

static const char *const expected_tables[] = {
    "jobs",      "outbox",  "workers",   "providers", "bootstrap_tokens",  "sagas",
    "templates", "secrets", "audit_log", "api_keys",  "schema_migrations",
};

Test(db, migrations_create_every_table)
{
    char sql[512];
    for (size_t i = 0; i < sizeof expected_tables / sizeof expected_tables[0]; i++) {
        snprintf(sql, sizeof sql,
                 "SELECT count(*) FROM information_schema.tables"
                 " WHERE table_schema = 'public' AND table_name = '%s'",
                 expected_tables[i]);
        cr_expect_eq(harness_sql_i64(&stack, sql), 1, "table %s missing", expected_tables[i]);
    }
    cr_assert_eq(harness_sql_i64(&stack, "SELECT max(version) FROM schema_migrations"),
                 hodei_db_schema_version());
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM schema_migrations"),
                 hodei_db_schema_version(), "versions are 1..N without gaps");
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM pg_indexes"
                                         " WHERE indexname IN ('jobs_pending',"
                                         " 'jobs_idempotency_key', 'outbox_unpublished')"),
                 3);
}

Test(db, migrate_again_applies_nothing)
{
    PGconn *c = conn_open(stack.db_url);
    hodei_err err;
    int applied = -1;
    cr_assert_eq(hodei_db_migrate(c, &applied, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(applied, 0);
    PQfinish(c);

    char out[TEST_OUT_MAX];
    int rc = harness_sh(&stack, out, sizeof out, "\"$HODEI_BIN/hodei-migrate\" --status");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert(strstr(out, " 0 pending") != NULL, "%s", out);
}

typedef struct {
    const char *url;
    pthread_barrier_t *start;
    hodei_status st;
    int applied;
    char msg[HODEI_ERR_MSG_MAX];
} migrate_job;

static void *migrate_thread(void *arg)
{
    migrate_job *j = arg;
    hodei_err err;
    PGconn *c = NULL;
    j->st = hodei_db_connect(j->url, TEST_CONNECT_TIMEOUT_MS, &c, &err);
    pthread_barrier_wait(j->start);
    if (j->st == HODEI_OK)
        j->st = hodei_db_migrate(c, &j->applied, &err);
    if (j->st != HODEI_OK)
        snprintf(j->msg, sizeof j->msg, "%s", err.msg);
    PQfinish(c);
    return NULL;
}

Test(db, concurrent_migrates_both_succeed_one_applies)
{
    char out[TEST_OUT_MAX];
    int rc = harness_sh(&stack, out, sizeof out,
                        "psql -X -q -d \"$HODEI_DATABASE_URL\" -c 'CREATE DATABASE fresh' 2>&1");
    cr_assert_eq(rc, 0, "%s", out);
    /* the stack's URL (its credentials) with another database's name */
    char url[600];
    const char *q = strchr(stack.db_url, '?');
    cr_assert_not_null(q, "database URL %s", stack.db_url);
    const char *slash = q;
    while (slash > stack.db_url && *slash != '/')
        slash--;
    cr_assert(*slash == '/', "database URL %s", stack.db_url);
    snprintf(url, sizeof url, "%.*s/fresh%s", (int)(slash - stack.db_url), stack.db_url, q);

    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    migrate_job jobs[2] = {{.url = url, .start = &start}, {.url = url, .start = &start}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, migrate_thread, &jobs[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);

    for (int i = 0; i < 2; i++)
        cr_assert_eq(jobs[i].st, HODEI_OK, "migrator %d: %s", i, jobs[i].msg);
    cr_assert_eq(jobs[0].applied + jobs[1].applied, hodei_db_schema_version());
    cr_assert(jobs[0].applied == 0 || jobs[1].applied == 0, "both applied: %d and %d",
              jobs[0].applied, jobs[1].applied);
}

Test(db, concurrent_migrate_tools_both_succeed_one_applies)
{
    char out[TEST_OUT_MAX];
    int rc = harness_sh(
        &stack, out, sizeof out,
        "psql -X -q -d \"$HODEI_DATABASE_URL\" -c 'CREATE DATABASE fresh2' >&2 || exit 9;"
        " url=$(printf %%s \"$HODEI_DATABASE_URL\" | sed 's#/[^/?]*?#/fresh2?#');"
        " \"$HODEI_BIN/hodei-migrate\" --database-url \"$url\" > \"$HODEI_STATE_DIR/m1\" 2>&1 &"
        " p1=$!;"
        " \"$HODEI_BIN/hodei-migrate\" --database-url \"$url\" > \"$HODEI_STATE_DIR/m2\" 2>&1 &"
        " p2=$!;"
        " wait $p1 || exit 1; wait $p2 || exit 2;"
        " cat \"$HODEI_STATE_DIR/m1\" \"$HODEI_STATE_DIR/m2\" | grep -c 'hodei-migrate: applied'");
    cr_assert_eq(rc, 0, "%s", out);
    cr_assert_str_eq(out, "1\n", "exactly one tool applies the migrations");
}

/* ------------------------------------------------------------ pool and queries */

Test(db, pool_acquire_exec_release_and_limits)
{
    hodei_db *db = NULL;
    hodei_err err;
    cr_assert_eq(hodei_db_create(stack.db_url, 2, TEST_CONNECT_TIMEOUT_MS, &db, &err), HODEI_OK,
                 "%s", err.msg);
    PGconn *a = NULL, *b = NULL, *c = NULL;
    cr_assert_eq(hodei_db_acquire(db, TEST_ACQUIRE_TIMEOUT_MS, &a, &err), HODEI_OK, "%s", err.msg);
    PGresult *r = NULL;
    const char *p[] = {"40", "2"};
    cr_assert_eq(hodei_db_exec(a, "SELECT $1::int + $2::int, pg_backend_pid()", 2, p, &r, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_db_get_i64(r, 0, 0), 42);
    int64_t backend = hodei_db_get_i64(r, 0, 1);
    PQclear(r);
    hodei_db_release(db, a, false);

    /* the released connection is reused, not reopened */
    cr_assert_eq(hodei_db_acquire(db, TEST_ACQUIRE_TIMEOUT_MS, &a, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_db_exec(a, "SELECT pg_backend_pid()", 0, NULL, &r, &err), HODEI_OK);
    cr_assert_eq(hodei_db_get_i64(r, 0, 0), backend);
    PQclear(r);

    /* size 2: a third caller times out until one is released */
    cr_assert_eq(hodei_db_acquire(db, TEST_ACQUIRE_TIMEOUT_MS, &b, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_db_acquire(db, 50, &c, &err), HODEI_ERR_TIMEOUT);
    cr_assert_null(c);
    hodei_db_release(db, b, false);
    cr_assert_eq(hodei_db_acquire(db, TEST_ACQUIRE_TIMEOUT_MS, &c, &err), HODEI_OK, "%s", err.msg);
    hodei_db_release(db, c, false);
    hodei_db_release(db, a, false);
    hodei_db_destroy(db);
}

/* A leader's session (relay, supervisor) lets the server find a vanished
 * client within seconds, and every connection asks libpq for keepalives:
 * the lock of a dead host does not outlive it by the kernel's 2 hours. */
Test(db, lock_sessions_probe_a_silent_client_within_seconds)
{
    PGconn *c = conn_open(stack.db_url);
    hodei_err err;
    PGresult *r = NULL;
    cr_assert_eq(hodei_db_lock_session(c, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(
        hodei_db_exec(c,
                      "SELECT current_setting('tcp_keepalives_idle'),"
                      " current_setting('tcp_keepalives_interval'),"
                      " current_setting('tcp_keepalives_count'),"
                      " current_setting('tcp_user_timeout'), inet_client_addr() IS NOT NULL",
                      0, NULL, &r, &err),
        HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(hodei_db_get_str(r, 0, 4), "t", "the test talks TCP (settings apply)");
    cr_expect_str_eq(hodei_db_get_str(r, 0, 0), "5");
    cr_expect_str_eq(hodei_db_get_str(r, 0, 1), "2");
    cr_expect_str_eq(hodei_db_get_str(r, 0, 2), "3");
    cr_expect_str_eq(hodei_db_get_str(r, 0, 3), "12000"); /* ms */
    PQclear(r);
    PQconninfoOption *o = PQconninfo(c);
    int found = 0;
    for (PQconninfoOption *i = o; i && i->keyword; i++) {
        if (strcmp(i->keyword, "keepalives_idle") == 0 && i->val)
            found += strcmp(i->val, "10") == 0;
        if (strcmp(i->keyword, "tcp_user_timeout") == 0 && i->val)
            found += strcmp(i->val, "10000") == 0;
    }
    PQconninfoFree(o);
    cr_expect_eq(found, 2,
                 "libpq keepalives_idle 10 and tcp_user_timeout 10000 on every connection");
    PQfinish(c);
}

Test(db, parameters_are_stored_literally)
{
    PGconn *c = conn_open(stack.db_url);
    hodei_err err;
    char id[HODEI_ID_BUF];
    hodei_id_new(id);
    const char *evil = "x'); DROP TABLE jobs; -- \"quoted\" $1 \\ ';";
    const unsigned char spec[] = {0x00, 0x27, 0xff, 0x5c, 0x00, 0x01};
    const char *p[] = {id, evil, (const char *)spec};
    const int lengths[] = {0, 0, (int)sizeof spec};
    const int formats[] = {0, 0, 1};
    cr_assert_eq(hodei_db_exec_bin(c,
                                   "INSERT INTO jobs (id, name, state, spec, timeout_ms)"
                                   " VALUES ($1, $2, 'PENDING', $3, 1000)",
                                   3, p, lengths, formats, NULL, &err),
                 HODEI_OK, "%s", err.msg);
    PGresult *r = NULL;
    const char *q[] = {id};
    cr_assert_eq(hodei_db_exec(c,
                               "SELECT name, encode(spec, 'hex'), idempotency_key"
                               " FROM jobs WHERE id = $1",
                               1, q, &r, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(PQntuples(r), 1);
    cr_assert_str_eq(hodei_db_get_str(r, 0, 0), evil);
    cr_assert_str_eq(hodei_db_get_str(r, 0, 1), "0027ff5c0001");
    cr_assert(hodei_db_is_null(r, 0, 2));
    cr_assert_str_eq(hodei_db_get_str(r, 0, 2), "");
    PQclear(r);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM jobs"), 1, "jobs table intact");
    PQfinish(c);
}

Test(db, sqlstates_map_to_statuses)
{
    PGconn *c = conn_open(stack.db_url);
    hodei_err err;
    char id[HODEI_ID_BUF];
    hodei_id_new(id);
    cr_assert_eq(outbox_insert(c, id, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(outbox_insert(c, id, &err), HODEI_ERR_EXISTS);
    cr_assert(strstr(err.msg, "duplicate key") != NULL, "%s", err.msg);
    cr_assert_not(hodei_db_status_broken(HODEI_ERR_EXISTS));

    const char *p[] = {id};
    cr_assert_eq(hodei_db_exec(c,
                               "INSERT INTO jobs (id, state, spec, timeout_ms)"
                               " VALUES ($1, 'BOGUS', '\\x', 1)",
                               1, p, NULL, &err),
                 HODEI_ERR_INVALID, "check violation: %s", err.msg);
    const char *bad[] = {"not-a-uuid"};
    cr_assert_eq(hodei_db_exec(c, "SELECT $1::uuid", 1, bad, NULL, &err), HODEI_ERR_INVALID);
    cr_assert_eq(hodei_db_exec(c, "SELECT * FROM no_such_table", 0, NULL, NULL, &err),
                 HODEI_ERR_INTERNAL);
    cr_assert(strstr(err.msg, "no_such_table") != NULL, "%s", err.msg);

    /* the connection survives all of these */
    cr_assert_eq(hodei_db_exec(c, "SELECT 1", 0, NULL, NULL, &err), HODEI_OK, "%s", err.msg);
    PQfinish(c);
}

Test(db, transactions_commit_rollback_and_failed_commit)
{
    PGconn *c = conn_open(stack.db_url);
    hodei_err err;
    char id[HODEI_ID_BUF];

    cr_assert_eq(hodei_db_begin(c, &err), HODEI_OK);
    hodei_id_new(id);
    cr_assert_eq(outbox_insert(c, id, &err), HODEI_OK);
    hodei_db_rollback(c);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM outbox"), 0);

    cr_assert_eq(hodei_db_begin(c, &err), HODEI_OK);
    cr_assert_eq(outbox_insert(c, id, &err), HODEI_OK);
    cr_assert_eq(hodei_db_commit(c, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM outbox"), 1);

    /* a statement failed inside: COMMIT must not be reported as success */
    char id2[HODEI_ID_BUF];
    hodei_id_new(id2);
    cr_assert_eq(hodei_db_begin(c, &err), HODEI_OK);
    cr_assert_eq(outbox_insert(c, id2, &err), HODEI_OK);
    cr_assert_eq(outbox_insert(c, id, &err), HODEI_ERR_EXISTS);
    cr_assert_neq(hodei_db_commit(c, &err), HODEI_OK);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM outbox"), 1);
    cr_assert_eq(PQtransactionStatus(c), PQTRANS_IDLE);
    PQfinish(c);
}

/* ------------------------------------------------------------ failures */

static hodei_status pool_select_one(hodei_db *db, hodei_err *err)
{
    PGconn *c = NULL;
    hodei_status st = hodei_db_acquire(db, TEST_ACQUIRE_TIMEOUT_MS, &c, err);
    if (st != HODEI_OK)
        return st;
    st = hodei_db_exec(c, "SELECT 1", 0, NULL, NULL, err);
    hodei_db_release(db, c, hodei_db_status_broken(st));
    return st;
}

Test(db, pool_heals_after_postgres_restart)
{
    hodei_db *db = NULL;
    hodei_err err;
    cr_assert_eq(hodei_db_create(stack.db_url, 2, TEST_CONNECT_TIMEOUT_MS, &db, &err), HODEI_OK);
    cr_assert_eq(pool_select_one(db, &err), HODEI_OK, "%s", err.msg);
    PGconn *held = NULL;
    cr_assert_eq(hodei_db_acquire(db, TEST_ACQUIRE_TIMEOUT_MS, &held, &err), HODEI_OK);

    harness_pg_stop(&stack);
    /* while it is down: a clear UNAVAILABLE, never a hang or a crash */
    cr_assert_eq(pool_select_one(db, &err), HODEI_ERR_UNAVAILABLE);
    cr_assert(strstr(err.msg, "127.0.0.1") != NULL, "%s", err.msg);
    harness_pg_start(&stack);

    /* the connection held across the restart is dead: UNAVAILABLE, broken */
    hodei_status st = hodei_db_exec(held, "SELECT 1", 0, NULL, NULL, &err);
    cr_assert_eq(st, HODEI_ERR_UNAVAILABLE, "held connection: %s", hodei_status_str(st));
    cr_assert(hodei_db_status_broken(st));
    hodei_db_release(db, held, true);

    /* the first exec may still meet a stale connection; the next one works */
    if (pool_select_one(db, &err) != HODEI_OK)
        cr_assert_eq(err.code, HODEI_ERR_UNAVAILABLE, "%s", err.msg);
    cr_assert_eq(pool_select_one(db, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(pool_select_one(db, &err), HODEI_OK, "%s", err.msg);
    hodei_db_destroy(db);
}

static int notifications_wait(PGconn *c, int64_t wait_ms)
{
    int count = 0;
    int64_t deadline = hodei_mono_ms() + wait_ms;
    while (count == 0 && hodei_mono_ms() < deadline) {
        struct pollfd pfd = {.fd = PQsocket(c), .events = POLLIN};
        poll(&pfd, 1, 100);
        cr_assert_eq(PQconsumeInput(c), 1, "%s", PQerrorMessage(c));
        PGnotify *n;
        while ((n = PQnotifies(c)) != NULL) {
            cr_assert_str_eq(n->relname, "hodei_outbox");
            count++;
            PQfreemem(n);
        }
    }
    return count;
}

Test(db, outbox_insert_notifies_listener_on_commit_only)
{
    PGconn *listener = conn_open(stack.db_url);
    PGconn *writer = conn_open(stack.db_url);
    hodei_err err;
    cr_assert_eq(hodei_db_exec(listener, "LISTEN hodei_outbox", 0, NULL, NULL, &err), HODEI_OK);

    char a[HODEI_ID_BUF], b[HODEI_ID_BUF], c[HODEI_ID_BUF];
    hodei_id_new(a);
    hodei_id_new(b);
    hodei_id_new(c);
    cr_assert_eq(hodei_db_begin(writer, &err), HODEI_OK);
    cr_assert_eq(outbox_insert(writer, a, &err), HODEI_OK);
    hodei_db_rollback(writer);

    const char *p[] = {b, c};
    cr_assert_eq(
        hodei_db_exec(writer,
                      "INSERT INTO outbox (event_id, subject, aggregate_type,"
                      " aggregate_id, event_type, payload)"
                      " SELECT e::uuid, 'hodei.evt.job.JobQueued', 'job', 'j', 'JobQueued',"
                      " '\\x01' FROM unnest(ARRAY[$1, $2]) AS e",
                      2, p, NULL, &err),
        HODEI_OK, "%s", err.msg);
    /* Notifications arrive in commit order: the rolled-back insert would
     * have come before this one. */
    cr_assert_eq(notifications_wait(listener, TEST_NOTIFY_WAIT_MS), 1);
    PQfinish(writer);
    PQfinish(listener);
}

/* ------------------------------------------------------------ without a server */

static void offline_paths(harness_stack *st)
{
    memset(st, 0, sizeof *st);
    snprintf(st->root, sizeof st->root, "%s", getenv("HODEI_ROOT"));
    snprintf(st->bin, sizeof st->bin, "%s", getenv("HODEI_BIN"));
}

Test(db_offline, migrate_tool_unreachable_exits_1_without_password)
{
    harness_stack st;
    offline_paths(&st);
    char out[TEST_OUT_MAX];
    int port = harness_free_port();
    int rc = harness_sh(&st, out, sizeof out,
                        "\"$HODEI_BIN/hodei-migrate\" --database-url"
                        " postgresql://hodei:Sup3rSecretPw@127.0.0.1:%d/hodei 2>&1",
                        port);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, out);
    char port_s[32];
    snprintf(port_s, sizeof port_s, "port=%d", port);
    cr_assert(strstr(out, "cannot connect") != NULL, "%s", out);
    cr_assert(strstr(out, port_s) != NULL, "%s", out);
    cr_assert(strstr(out, "Sup3rSecretPw") == NULL, "password leaked: %s", out);

    rc = harness_sh(&st, out, sizeof out, "\"$HODEI_BIN/hodei-migrate\" --frobnicate 2>&1");
    cr_assert_eq(rc, 2, "bad usage: exit %d: %s", rc, out);
}

Test(db_offline, connect_errors_are_clear_and_never_show_password)
{
    hodei_err err;
    PGconn *c = NULL;
    char url[256];
    snprintf(url, sizeof url, "host=127.0.0.1 port=%d user=u dbname=d password=Pa55word",
             harness_free_port());
    cr_assert_eq(hodei_db_connect(url, TEST_CONNECT_TIMEOUT_MS, &c, &err), HODEI_ERR_UNAVAILABLE);
    cr_assert_null(c);
    cr_assert(strstr(err.msg, "Pa55word") == NULL, "%s", err.msg);
    cr_assert(strstr(err.msg, "127.0.0.1") != NULL, "%s", err.msg);

    hodei_db *db = NULL;
    cr_assert_eq(hodei_db_create("postgresql://u:Pa55word@[oops", 4, 0, &db, &err),
                 HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "Pa55word") == NULL, "%s", err.msg);
    cr_assert_eq(hodei_db_create(url, 0, 0, &db, &err), HODEI_ERR_INVALID);
    cr_assert_null(db);
}

Test(db_offline, describe_never_shows_password)
{
    char out[256];
    hodei_db_describe("postgresql://alice:Pa55word@db.example:6543/jobs?sslmode=require", out,
                      sizeof out);
    cr_assert_str_eq(out, "host=db.example port=6543 dbname=jobs user=alice");
    hodei_db_describe("host=10.0.0.1 password=Pa55word user=bob dbname=x", out, sizeof out);
    cr_assert(strstr(out, "Pa55word") == NULL, "%s", out);
    cr_assert(strstr(out, "host=10.0.0.1") != NULL, "%s", out);
}
