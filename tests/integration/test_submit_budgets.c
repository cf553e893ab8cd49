/* The submit queue's byte budgets at the edge, against the whole product:
 * - submit.batch_bytes_max: a group commit of jobs holding exactly that
 *   many bytes is one transaction; one byte more and the last job goes to
 *   the next group;
 * - submit.queue_bytes_per_key: a client whose waiting jobs would hold one
 *   byte more than its share is refused RESOURCE_EXHAUSTED naming the
 *   setting and its figures, exactly its share is queued, and meanwhile
 *   another client's jobs are still queued;
 * - submit.queue_bytes_max: a QueueJob that would make the waiting jobs
 *   hold one byte more is refused likewise naming that setting; one that
 *   makes them hold exactly that many is queued;
 * - nothing of a refused call reaches the database; every queued job of
 *   both clients is there exactly once, as its client's, and runs;
 * - another client's jobs queued among the large ones are all committed,
 *   even when the database refuses a job of the same group (the group is
 *   then written again one job at a time);
 * - the gauges of the waiting jobs, bytes and clients are back to 0 once
 *   the queue drained;
 * - meanwhile the edge's RSS stays bounded and the worker stays READY.
 * The writer is held by a test transaction that inserts a job with the
 * idempotency key of the first QueueJob (the writer waits on the unique
 * index until the test rolls it back), so the queue fills deterministically;
 * sizes are read from the edge's gauge hodei_edge_submit_waiting_bytes. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cluster.h"
#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/keys.pb-c.h"

#define MSG_MAX 1024
#define QUEUE_BYTES (26 * 1024 * 1024)
#define SHARE_BYTES (14 * 1024 * 1024) /* submit.queue_bytes_per_key */
#define BATCH_BYTES (8 * 1024 * 1024)
#define SMALL_PAD 100    /* script bytes of a small job */
#define PAD_BASE 700000  /* script bytes of a large job (about 1.4 MB waiting) */
#define PAD_MAX 1000000  /* below the 1 MiB spec */
#define ROOM_MIN 200000  /* the job that fills a group or the queue exactly: */
#define ROOM_MAX 1900000 /* its bytes lie between these */
#define IDEM_LEN 24
#define CALLS_MAX 64
#define JOB_WAIT_MS 300000
/* Generous, for an ASan build: what is checked is that 26 MiB of waiting
 * jobs do not cost the edge many times that. */
#define RSS_CEILING_KB (256 * 1024)

static cluster cl;
static char asan_env[1024];

static void setup(void)
{
    const char *asan = getenv("ASAN_OPTIONS");
    snprintf(asan_env, sizeof asan_env, "ASAN_OPTIONS=%s%squarantine_size_mb=4", asan ? asan : "",
             asan && *asan ? ":" : "");
    static const char *env[] = {
        "HODEI_SUBMIT_QUEUE_BYTES_MAX=27262976",     /* QUEUE_BYTES */
        "HODEI_SUBMIT_QUEUE_BYTES_PER_KEY=14680064", /* SHARE_BYTES */
        "HODEI_SUBMIT_BATCH_BYTES_MAX=8388608",      /* BATCH_BYTES */
        "HODEI_SUBMIT_WRITERS=1",
        asan_env,
        NULL,
    };
    cluster_start(&cl, env);
}

static void teardown(void)
{
    cluster_stop(&cl);
}

/* A gauge or counter of the edge's GET /metrics. */
static int64_t metric(const char *name)
{
    return (int64_t)harness_metric(cl.edge.health_port, name);
}

/* A client of the test: its channel (its API key) and what its jobs hold. */
typedef struct {
    hodei_rpc_channel *ch;
    int64_t large; /* bytes a job of script pad PAD_BASE and key IDEM_LEN holds */
    int64_t small; /* likewise with pad SMALL_PAD */
    int64_t held;  /* bytes of its jobs waiting (its share used) */
} client;

typedef struct {
    client *cli;
    char name[16];
    char idem[IDEM_LEN + 8];
    size_t pad; /* script bytes */
    pthread_t thread;
    hodei_grpc_code code;
    char msg[MSG_MAX];
    char job_id[HODEI_ID_BUF];
    int64_t bytes; /* what it added to the waiting bytes (0: refused) */
} qcall;

static qcall calls[CALLS_MAX];
static int n_calls;

static void *qcall_main(void *arg)
{
    qcall *c = arg;
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__Script script = HODEI__V1__SCRIPT__INIT;
    char *content = malloc(c->pad + 8);
    cr_assert_not_null(content);
    memcpy(content, "true\n#", 6);
    memset(content + 6, 'x', c->pad);
    content[c->pad + 6] = '\0';
    script.interpreter = "/bin/sh";
    script.content = content;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    spec.script = &script;
    spec.name = c->name;
    req.spec = &spec;
    req.idempotency_key = c->idem;
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    hodei_status st =
        hodei_rpc_unary(c->cli->ch, "/hodei.v1.JobExecutionService/QueueJob", &req.base,
                        &hodei__v1__queue_job_response__descriptor, 600000, &out, &res, &err);
    free(content);
    if (st != HODEI_OK) {
        c->code = HODEI_GRPC_UNKNOWN;
        hodei_strlcpy(c->msg, err.msg, sizeof c->msg);
        return NULL;
    }
    c->code = res.code;
    hodei_strlcpy(c->msg, res.message, sizeof c->msg);
    if (out) {
        hodei_strlcpy(c->job_id, ((Hodei__V1__QueueJobResponse *)out)->job_id, sizeof c->job_id);
        protobuf_c_message_free_unpacked(out, NULL);
    }
    return NULL;
}

/* Starts a QueueJob of client `cli` with idempotency key `idem`; unless
 * `held` (a job the writer takes at once), waits until it is either queued
 * (the gauge counts it; its bytes are recorded, and added to what the
 * client holds) or refused. */
static qcall *qcall_start_key(client *cli, const char *name, size_t pad, const char *idem,
                              bool held)
{
    cr_assert_lt(n_calls, CALLS_MAX);
    qcall *c = &calls[n_calls];
    memset(c, 0, sizeof *c);
    c->cli = cli;
    c->pad = pad;
    c->code = -1;
    hodei_strlcpy(c->name, name, sizeof c->name);
    hodei_strlcpy(c->idem, idem, sizeof c->idem);
    int64_t jobs = metric("hodei_edge_submit_waiting_jobs");
    int64_t bytes = metric("hodei_edge_submit_waiting_bytes");
    n_calls++;
    cr_assert_eq(pthread_create(&c->thread, NULL, qcall_main, c), 0);
    int64_t until = hodei_mono_ms() + 60000;
    while (!held && hodei_mono_ms() < until) {
        if (__atomic_load_n(&c->code, __ATOMIC_ACQUIRE) != (hodei_grpc_code)-1)
            break; /* answered already: refused */
        if (metric("hodei_edge_submit_waiting_jobs") == jobs + 1) {
            c->bytes = metric("hodei_edge_submit_waiting_bytes") - bytes;
            cli->held += c->bytes;
            return c;
        }
        hodei_sleep_ms(20);
    }
    if (held)
        return c;
    pthread_join(c->thread, NULL);
    c->thread = 0;
    cr_assert_neq(c->code, HODEI_GRPC_OK, "%s was neither queued nor answered: %s", name, c->msg);
    return c;
}

/* The same with a key of idem_len bytes made from `prefix` ('k': to be
 * queued, 'r': to be refused) and the call's number. */
static qcall *qcall_start(client *cli, const char *name, size_t pad, size_t idem_len, char prefix)
{
    char idem[IDEM_LEN + 8];
    cr_assert(idem_len >= 8 && idem_len < sizeof idem);
    snprintf(idem, sizeof idem, "%c%03d-", prefix, n_calls);
    memset(idem + 5, 'i', idem_len - 5);
    idem[idem_len] = '\0';
    return qcall_start_key(cli, name, pad, idem, false);
}

static void qcall_join(qcall *c)
{
    if (c->thread)
        pthread_join(c->thread, NULL);
    c->thread = 0;
}

/* The script pad and key length of a job of `cli` holding `bytes`, from
 * its measured large job (PAD_BASE, IDEM_LEN): the spec is stored as hex
 * (two bytes a script byte), the key once. */
static void shape_for(const client *cli, int64_t bytes, size_t *pad, size_t *idem_len)
{
    int64_t d = bytes - cli->large;
    *idem_len = IDEM_LEN;
    if (d % 2 != 0) {
        d += 1;
        *idem_len = IDEM_LEN - 1;
    }
    cr_assert_geq(PAD_BASE + d / 2, 1000);
    cr_assert_leq(PAD_BASE + d / 2, PAD_MAX);
    *pad = (size_t)(PAD_BASE + d / 2);
}

/* Queues a job of `cli` of exactly `bytes`, asserting the gauge agrees. */
static qcall *queue_exact(client *cli, const char *name, int64_t bytes)
{
    size_t pad, idem_len;
    shape_for(cli, bytes, &pad, &idem_len);
    qcall *c = qcall_start(cli, name, pad, idem_len, 'k');
    cr_assert_eq(c->bytes, bytes, "%s: %lld bytes waiting, expected %lld (%s)", name,
                 (long long)c->bytes, (long long)bytes, c->msg);
    return c;
}

/* The job of `cli` one byte larger than `bytes`, expected refused. */
static qcall *refuse_past(client *cli, const char *name, int64_t bytes)
{
    size_t pad, idem_len;
    shape_for(cli, bytes + 1, &pad, &idem_len);
    qcall *c = qcall_start(cli, name, pad, idem_len, 'r');
    cr_assert_eq(c->code, HODEI_GRPC_RESOURCE_EXHAUSTED, "%s, one byte past: %s", name, c->msg);
    return c;
}

/* Queues large jobs of `big` and small ones of `little` alternately (only
 * large ones when little is NULL), names tagged `tag`, until `target`
 * minus the bytes queued since is within ROOM_MIN..ROOM_MAX; returns the
 * bytes queued since. */
static int64_t fill_until_room(client *big, client *little, const char *tag, int64_t target)
{
    int64_t sum = 0;
    char name[16];
    for (int i = 0; target - sum > ROOM_MAX; i++) {
        bool small = little && i % 2 == 1 && target - sum - little->small >= ROOM_MIN;
        int64_t next = small ? little->small : big->large;
        if (!small && target - sum - next < ROOM_MIN) {
            cr_assert_not_null(little, "%s: no small job to fill with", tag);
            next = little->small;
            small = true;
        }
        snprintf(name, sizeof name, "%s-%c", tag, small ? 'b' : 'L');
        client *cli = small ? little : big;
        qcall *c = qcall_start(cli, name, small ? SMALL_PAD : PAD_BASE, IDEM_LEN, 'k');
        cr_assert_eq(c->bytes, next, "%s: %lld bytes, expected %lld (%s)", name,
                     (long long)c->bytes, (long long)next, c->msg);
        sum += next;
    }
    cr_assert_geq(target - sum, ROOM_MIN);
    return sum;
}

static hodei_rpc_channel *chan_key(const char *key)
{
    hodei_rpc_channel_opts o = {.target = cl.edge.target, .api_key = key};
    hodei_rpc_channel *ch = NULL;
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK, "%s", err.msg);
    return ch;
}

/* Another client: a key of its own that may only queue and read jobs. */
static void make_small_client_key(char *key, size_t key_len)
{
    Hodei__V1__CreateKeyRequest req = HODEI__V1__CREATE_KEY_REQUEST__INIT;
    const char *scopes[] = {"jobs:submit", "jobs:read"};
    req.name = "small-client";
    req.owner = "test";
    req.scopes = (char **)scopes;
    req.n_scopes = 2;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    cr_assert_eq(edge_call_path(&cl.edge, "/hodei.v1.KeyService/CreateKey", &req.base,
                                &hodei__v1__create_key_response__descriptor, &resp, msg,
                                sizeof msg),
                 HODEI_GRPC_OK, "CreateKey: %s", msg);
    hodei_strlcpy(key, ((Hodei__V1__CreateKeyResponse *)resp)->secret, key_len);
    protobuf_c_message_free_unpacked(resp, NULL);
}

static void sql_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK,
              "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* How many distinct transactions wrote the job.queue audit rows of the
 * jobs whose names match the regular expression `pattern` (audit rows are never updated: their xmin
 * is the group's transaction). */
static int64_t groups_of(const char *pattern)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(DISTINCT a.xmin::text) FROM audit_log a JOIN jobs j"
             " ON a.object_id = j.id::text AND a.action = 'job.queue' WHERE j.name ~ '%s'",
             pattern);
    return harness_sql_i64(&cl.stack, sql);
}

static int64_t sql_i64(const char *fmt, const char *arg)
{
    char sql[512];
    snprintf(sql, sizeof sql, fmt, arg);
    return harness_sql_i64(&cl.stack, sql);
}

/* The job of a queued call is in the database exactly once, with its key,
 * as its client's. */
static void assert_stored_once(const qcall *c, bool of_b)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM jobs WHERE id = '%s' AND idempotency_key = '%s'"
             " AND (owner = 'small-client') = %s",
             c->job_id, c->idem, of_b ? "true" : "false");
    cr_assert_eq(harness_sql_i64(&cl.stack, sql), 1, "%s (%s): job %s, once, as its client's",
                 c->name, c->idem, c->job_id);
}

Test(submit_budgets, byte_budgets_hold_at_their_boundaries_and_spare_other_clients, .init = setup,
     .fini = teardown, .timeout = 900)
{
    cluster_provider(&cl, 1, 600000, 1);
    char warm[HODEI_ID_BUF], state[32];
    cluster_queue(&cl, "echo warm", 1, 0, warm);
    cr_assert(cluster_wait_job(&cl, warm, JOB_WAIT_MS, state, sizeof state));
    cr_assert_str_eq(state, "SUCCEEDED");
    hodei_sleep_ms(1000);
    long idle_kb = harness_rss_kb(cl.edge.proc.pid);
    cr_assert_gt(idle_kb, 0);

    char key_b[128];
    make_small_client_key(key_b, sizeof key_b);
    client a = {.ch = chan_key(cl.stack.api_key)};
    client b = {.ch = chan_key(key_b)};

    /* A job the database refuses (a trigger stands for any row-level
     * refusal): it must fail alone, not its group. */
    PGconn *db = PQconnectdb(cl.stack.db_url);
    cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
    sql_ok(db, "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
               " IF NEW.name = 'g3-poison' THEN RAISE EXCEPTION 'test: poisoned row'; END IF;"
               " RETURN NEW; END $$");
    sql_ok(db, "CREATE TRIGGER test_poison BEFORE INSERT ON jobs FOR EACH ROW"
               " EXECUTE FUNCTION test_poison()");

    /* Hold the writer: its first job's key is taken by an open transaction. */
    sql_ok(db, "BEGIN");
    sql_ok(db, "INSERT INTO jobs (id, state, spec, timeout_ms, idempotency_key)"
               " VALUES (gen_random_uuid(), 'PENDING', '\\x00', 1000, 'hold-the-writer')");
    qcall *blocker = qcall_start_key(&a, "g0-hold", SMALL_PAD, "hold-the-writer", true);
    cr_assert(cluster_wait_sql(&cl,
                               "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type ="
                               " 'Lock' AND query LIKE '%INSERT INTO jobs%'",
                               1, 60000),
              "the writer waits for the test's transaction");
    cr_assert_eq(metric("hodei_edge_submit_waiting_bytes"), 0, "the writer took its job");
    cr_assert_eq(metric("hodei_edge_submit_waiting_keys"), 0);

    /* The sizes of a large and a small job of each client (the key's name
     * and the connection's address are part of what a job holds). */
    a.large = qcall_start(&a, "g1-L", PAD_BASE, IDEM_LEN, 'k')->bytes;
    b.small = qcall_start(&b, "g1-b", SMALL_PAD, IDEM_LEN, 'k')->bytes;
    b.large = qcall_start(&b, "g1-B", PAD_BASE, IDEM_LEN, 'k')->bytes;
    a.small = qcall_start(&a, "g1-a", SMALL_PAD, IDEM_LEN, 'k')->bytes;
    cr_assert(a.large > 2 * PAD_BASE && b.large > 2 * PAD_BASE);
    cr_assert(a.small > 0 && b.small > 0);
    cr_assert_eq(metric("hodei_edge_submit_waiting_keys"), 2, "two clients have jobs waiting");
    cr_log_info("a large job holds %lld bytes waiting (B: %lld), a small one %lld (A: %lld)",
                (long long)a.large, (long long)b.large, (long long)b.small, (long long)a.small);

    /* Group 1 holds exactly submit.batch_bytes_max. */
    int64_t g1 = a.held + b.held;
    g1 += fill_until_room(&a, &b, "g1", BATCH_BYTES - g1);
    queue_exact(&a, "g1-X", BATCH_BYTES - g1);
    /* Group 2 (B's large jobs, A's small ones) would hold one byte more
     * with its last job: that job starts group 3. */
    int64_t g2 = fill_until_room(&b, &a, "g2", BATCH_BYTES);
    queue_exact(&a, "g3-X", BATCH_BYTES - g2 + 1);
    qcall *poison = qcall_start(&a, "g3-poison", SMALL_PAD, IDEM_LEN, 'k');
    cr_assert_gt(poison->bytes, 0);
    qcall_start(&b, "g3-b", SMALL_PAD, IDEM_LEN, 'k');

    /* A's share: one byte past it is refused naming
     * submit.queue_bytes_per_key, exactly it is queued; then even A's
     * small job is refused, while B's are still queued. */
    int64_t waiting = metric("hodei_edge_submit_waiting_bytes");
    cr_assert_eq(waiting, a.held + b.held, "the clients' bytes add up to the gauge");
    fill_until_room(&a, NULL, "g3", SHARE_BYTES - a.held);
    int64_t room = SHARE_BYTES - a.held;
    cr_assert_lt(a.held + b.held + room, QUEUE_BYTES, "A's share ends before the queue does");
    qcall *over = refuse_past(&a, "g3-R", room);
    char want[256];
    snprintf(want, sizeof want,
             "(%lld bytes of its jobs waiting, this one %lld; at most %d:"
             " submit.queue_bytes_per_key)",
             (long long)a.held, (long long)room + 1, SHARE_BYTES);
    cr_assert(strstr(over->msg, want), "one byte past A's share: %s (expected %s)", over->msg,
              want);
    queue_exact(&a, "g3-A", room);
    cr_assert_eq(a.held, SHARE_BYTES, "A holds exactly its share");
    qcall *a_small = qcall_start(&a, "g3-a", SMALL_PAD, IDEM_LEN, 'r');
    cr_assert_eq(a_small->code, HODEI_GRPC_RESOURCE_EXHAUSTED, "A past its share: %s",
                 a_small->msg);
    snprintf(want, sizeof want, "(%d bytes of its jobs waiting, this one %lld; at most %d",
             SHARE_BYTES, (long long)a.small, SHARE_BYTES);
    cr_assert(strstr(a_small->msg, want) && strstr(a_small->msg, "submit.queue_bytes_per_key"),
              "%s (expected %s)", a_small->msg, want);
    qcall *b_more = qcall_start(&b, "g3-b", SMALL_PAD, IDEM_LEN, 'k');
    cr_assert_eq(b_more->bytes, b.small, "B is queued while A is at its share: %s", b_more->msg);

    /* The queue: one byte past submit.queue_bytes_max is refused, exactly
     * that many is queued (B's jobs, within B's share). */
    waiting = metric("hodei_edge_submit_waiting_bytes");
    cr_assert_eq(waiting, a.held + b.held);
    cr_assert_lt(QUEUE_BYTES - waiting, SHARE_BYTES - b.held, "B's share outlasts the queue");
    waiting += fill_until_room(&b, &b, "g3", QUEUE_BYTES - waiting);
    cr_assert_eq(metric("hodei_edge_submit_waiting_bytes"), waiting);
    room = QUEUE_BYTES - waiting;
    qcall *past = refuse_past(&b, "g3-R", room);
    snprintf(want, sizeof want,
             "(%lld bytes of jobs waiting, this one %lld; at most %d: submit.queue_bytes_max)",
             (long long)waiting, (long long)room + 1, QUEUE_BYTES);
    cr_assert(strstr(past->msg, want), "one byte past: %s (expected %s)", past->msg, want);
    queue_exact(&b, "g3-Z", room);
    cr_assert_eq(metric("hodei_edge_submit_waiting_bytes"), QUEUE_BYTES, "exactly at the limit");
    cr_assert_eq(a.held + b.held, QUEUE_BYTES);
    qcall *full = qcall_start(&b, "g3-r", SMALL_PAD, IDEM_LEN, 'r');
    cr_assert_eq(full->code, HODEI_GRPC_RESOURCE_EXHAUSTED, "a full queue: %s", full->msg);
    snprintf(want, sizeof want, "(%d bytes of jobs waiting", QUEUE_BYTES);
    cr_assert(strstr(full->msg, want) && strstr(full->msg, "submit.queue_bytes_max"), "%s",
              full->msg);
    cr_assert_eq(metric("hodei_edge_submit_waiting_keys"), 2);

    long full_kb = harness_rss_kb(cl.edge.proc.pid);
    cr_assert(cluster_wait_sql(&cl, "SELECT count(*) FROM workers WHERE state = 'READY'", 1, 30000),
              "the worker stays READY while the writer is held");
    int64_t refused = metric("hodei_jobs_refused_total");
    cr_assert_geq(refused, 4);

    /* Release the writer: every queued call is answered. */
    sql_ok(db, "ROLLBACK");
    for (int i = 0; i < n_calls; i++)
        qcall_join(&calls[i]);
    cr_assert_eq(blocker->code, HODEI_GRPC_OK, "the held job: %s", blocker->msg);
    int queued = 0, queued_b = 0;
    for (int i = 0; i < n_calls; i++) {
        const qcall *c = &calls[i];
        if (c->idem[0] == 'r' || c == poison)
            continue;
        cr_assert_eq(c->code, HODEI_GRPC_OK, "%s (%s): %s", c->name, c->idem, c->msg);
        assert_stored_once(c, c->cli == &b);
        queued++;
        queued_b += c->cli == &b;
    }
    cr_assert_neq(poison->code, HODEI_GRPC_OK, "the job the database refused");
    cr_assert(strstr(poison->msg, "poisoned"), "%s", poison->msg);
    cr_assert_gt(queued_b, 2);
    cr_log_info("%d jobs queued (%d of B), %lld QueueJobs refused", queued, queued_b,
                (long long)metric("hodei_jobs_refused_total"));

    /* The database: the refused calls left nothing; the groups are as the
     * budget says; the other client's jobs are all there, as its own. */
    cr_assert_eq(sql_i64("SELECT count(*) FROM jobs WHERE idempotency_key LIKE '%s'", "r%"), 0);
    cr_assert_eq(sql_i64("SELECT count(*) FROM jobs WHERE name = '%s'", "g3-poison"), 0);
    cr_assert_eq(sql_i64("SELECT count(*) FROM jobs WHERE idempotency_key LIKE '%s'", "k%"),
                 queued - 1); /* the held job's key is not a k-key */
    cr_assert_eq(harness_sql_i64(&cl.stack, "SELECT count(*) FROM audit_log WHERE action ="
                                            " 'job.queue' AND object_id NOT IN (SELECT id::text"
                                            " FROM jobs)"),
                 0);
    cr_assert_eq(
        harness_sql_i64(&cl.stack, "SELECT count(*) FROM jobs"),
        harness_sql_i64(&cl.stack, "SELECT count(*) FROM audit_log WHERE action = 'job.queue'"));
    cr_assert_eq(sql_i64("SELECT count(*) FROM jobs WHERE owner = '%s'", "small-client"), queued_b);
    cr_assert_eq(groups_of("^g1-"), 1, "a group of exactly submit.batch_bytes_max is one commit");
    cr_assert_eq(groups_of("^g2-"), 1);
    cr_assert_eq(groups_of("^(g2-|g3-X$)"), 2, "one byte more starts the next group");

    /* The jobs run; the worker was never LOST; the queue's gauges are back
     * to 0. */
    cr_assert(cluster_wait_sql(&cl, "SELECT count(*) FROM jobs WHERE state <> 'SUCCEEDED'", 0,
                               JOB_WAIT_MS),
              "every queued job runs");
    cr_assert_eq(harness_sql_i64(&cl.stack, "SELECT count(*) FROM workers WHERE state = 'LOST'"),
                 0);
    cr_assert_eq(metric("hodei_edge_submit_waiting_jobs"), 0);
    cr_assert_eq(metric("hodei_edge_submit_waiting_bytes"), 0);
    cr_assert_eq(metric("hodei_edge_submit_waiting_keys"), 0);
    long hwm_kb = harness_status_kb(cl.edge.proc.pid, "VmHWM");
    cr_log_info("edge RSS: idle %ld kB, %ld kB with %d bytes of jobs waiting (peak %ld kB)",
                idle_kb, full_kb, QUEUE_BYTES, hwm_kb);
    cr_assert_lt(full_kb - idle_kb, RSS_CEILING_KB, "edge RSS grew from %ld kB to %ld kB", idle_kb,
                 full_kb);
    PQfinish(db);
    hodei_rpc_channel_destroy(a.ch);
    hodei_rpc_channel_destroy(b.ch);
}

/* hodei-job-api --check-config with the environment entries `env` (and a
 * database URL); its exit code, stdout and stderr in out. */
static int job_api_check(const char *env, char *out, size_t out_len)
{
    const char *bin = getenv("HODEI_BIN");
    cr_assert_not_null(bin, "HODEI_BIN is not set (run through ctest)");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "env -i HODEI_DATABASE_URL=postgresql://hodei@127.0.0.1:1/hodei %s"
             " %s/hodei-job-api --check-config 2>&1",
             env, bin);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "%s", cmd);
    size_t n = fread(out, 1, out_len - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    cr_assert(WIFEXITED(status), "%s", cmd);
    return WEXITSTATUS(status);
}

/* The share is checked at start-up against the queue, and when unset it is
 * a quarter of the queue, at least one job of the largest spec. */
Test(submit_budgets, the_share_is_checked_at_start_up)
{
    static char out[64 * 1024];
    cr_assert_eq(job_api_check("", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "submit.queue_bytes_per_key = 134217728  # default\n"), "%s", out);
    cr_assert_eq(job_api_check("HODEI_SUBMIT_QUEUE_BYTES_MAX=1073741824", out, sizeof out), 0);
    cr_assert(strstr(out, "submit.queue_bytes_per_key = 268435456  # default\n"), "%s", out);
    cr_assert_eq(job_api_check("HODEI_SUBMIT_QUEUE_BYTES_MAX=20971520", out, sizeof out), 0);
    cr_assert(strstr(out, "submit.queue_bytes_per_key = 8388608  # default\n"), "%s", out);
    cr_assert_eq(job_api_check("HODEI_SUBMIT_QUEUE_BYTES_MAX=20971520"
                               " HODEI_SUBMIT_QUEUE_BYTES_PER_KEY=20971520",
                               out, sizeof out),
                 0, "%s", out);
    cr_assert(strstr(out, "submit.queue_bytes_per_key = 20971520  #"
                          " HODEI_SUBMIT_QUEUE_BYTES_PER_KEY\n"),
              "%s", out);
    cr_assert_eq(job_api_check("HODEI_SUBMIT_QUEUE_BYTES_MAX=20971520"
                               " HODEI_SUBMIT_QUEUE_BYTES_PER_KEY=20971521",
                               out, sizeof out),
                 2, "%s", out);
    cr_assert(strstr(out, "job-api: configuration error: submit.queue_bytes_per_key: 20971521"
                          " is above submit.queue_bytes_max (20971520)"),
              "%s", out);
    cr_assert_eq(job_api_check("HODEI_SUBMIT_QUEUE_BYTES_PER_KEY=0", out, sizeof out), 2, "%s",
                 out);
    cr_assert(strstr(out, "job-api: configuration error: submit.queue_bytes_per_key: 0 is below"
                          " the minimum 8388608"),
              "%s", out);
}
