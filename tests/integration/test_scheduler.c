/* hodei-scheduler against a private stack, with hodei-outbox-relay (and
 * hodei-job-api where a test needs the edge) as child processes. Workers
 * are READY rows inserted by SQL; jobs are queued through the edge or
 * inserted by SQL with their JobQueued outbox row, as the edge writes them. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/bus.h"
#include "hodei/id.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/events.pb-c.h"
#include "hodei/v1/scheduler.pb-c.h"

#define WAIT_MS 15000
#define PASS_ENV "HODEI_SCHEDULER_PASS_INTERVAL=200ms"
#define ID_LEN HODEI_ID_BUF
#define SQL_MAX 4096
#define MANY_JOBS 200
#define MANY_WORKERS 20
#define LATENCY_ROUNDS 200

static harness_stack stack;
static PGconn *db;

/* ------------------------------------------------------------ SQL helpers */

static PGresult *q(const char *sql, int n, const char *const *params)
{
    PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType t = PQresultStatus(res);
    cr_assert(t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK, "%s: %s", sql,
              PQresultErrorMessage(res));
    return res;
}

static void q_exec(const char *sql, int n, const char *const *params)
{
    PQclear(q(sql, n, params));
}

/* First column of the first row as a number; -1 when there is no row. */
static int64_t q_i64(const char *sql, int n, const char *const *params)
{
    PGresult *res = q(sql, n, params);
    int64_t v = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)
                    ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                    : -1;
    PQclear(res);
    return v;
}

static void q_str(char *out, size_t len, const char *sql, int n, const char *const *params)
{
    PGresult *res = q(sql, n, params);
    snprintf(out, len, "%s", PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
}

static void provider_add(const char *name, int max_workers, const char *cost, bool enabled,
                         int worker_cpu_millis)
{
    char max[16], cpu[16];
    snprintf(max, sizeof max, "%d", max_workers);
    snprintf(cpu, sizeof cpu, "%d", worker_cpu_millis);
    const char *p[] = {name, max, cost, enabled ? "t" : "f", cpu};
    q_exec("INSERT INTO providers (name, type, max_workers, cost_per_hour, enabled,"
           " worker_cpu_millis) VALUES ($1, 'process', $2, $3, $4, $5)"
           " ON CONFLICT (name) DO UPDATE SET max_workers = $2, cost_per_hour = $3, enabled = $4,"
           " worker_cpu_millis = $5, warm_pool_min = 0, warm_pool_max = 0",
           5, p);
}

/* A READY worker; idle_ago_ms orders workers by idle_since. */
static void worker_add(char id[ID_LEN], const char *provider, int cpu_millis, const char *labels,
                       int idle_ago_ms)
{
    char cpu[16], ago[16];
    hodei_id_new(id);
    snprintf(cpu, sizeof cpu, "%d", cpu_millis);
    snprintf(ago, sizeof ago, "%d", idle_ago_ms);
    const char *p[] = {id, provider, cpu, labels, ago};
    q_exec("INSERT INTO workers (id, provider, state, cpu_millis, memory_bytes, architecture,"
           " labels, idle_since, last_heartbeat_at)"
           " VALUES ($1, $2, 'READY', $3, 4294967296, 'amd64', $4::jsonb,"
           "         now() - $5::int * interval '1 ms', now())",
           5, p);
}

/* A PENDING job and its JobQueued outbox row, as the edge writes them. */
static void job_add(char id[ID_LEN], int priority, int cpu_millis, const char *provider,
                    const char *constraints, int not_before_ms)
{
    char prio[16], cpu[16], nb[16], event_id[ID_LEN];
    uint8_t raw[256];
    char hex[520];
    hodei_id_new(id);
    hodei_id_new(event_id);
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobQueued body = HODEI__V1__JOB_QUEUED__INIT;
    body.job_id = id;
    body.priority = priority;
    body.provider = (char *)provider;
    ev.event_id = event_id;
    ev.aggregate_id = id;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_QUEUED;
    ev.job_queued = &body;
    size_t len = hodei__v1__event__pack(&ev, raw);
    for (size_t i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[2 * len] = '\0';
    snprintf(prio, sizeof prio, "%d", priority);
    snprintf(cpu, sizeof cpu, "%d", cpu_millis);
    snprintf(nb, sizeof nb, "%d", not_before_ms);
    const char *p[] = {id, prio, cpu, provider, constraints, nb, event_id, hex};
    q_exec("WITH j AS (INSERT INTO jobs (id, state, spec, priority, timeout_ms, cpu_millis,"
           "                            provider, constraints, not_before)"
           "  VALUES ($1, 'PENDING', '\\x', $2, 60000, $3, $4, $5::jsonb,"
           "          CASE WHEN $6::int > 0 THEN now() + $6::int * interval '1 ms' END)"
           "  RETURNING id)"
           " INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id, event_type,"
           "                     payload)"
           " SELECT $7, '" HODEI_SUBJ_JOB_QUEUED "', 'job', $1, 'JobQueued', decode($8, 'hex')"
           "   FROM j",
           8, p);
}

static void job_state(const char *id, char *state, size_t len)
{
    const char *p[] = {id};
    q_str(state, len,
          "SELECT state || ':' || coalesce(worker_id::text, '') FROM jobs WHERE id = $1", 1, p);
}

/* Waits until the job is ASSIGNED; returns its worker id in worker. */
static bool job_wait_assigned(const char *id, char worker[ID_LEN], int64_t timeout_ms)
{
    const char *p[] = {id};
    int64_t until = hodei_mono_ms() + timeout_ms;
    do {
        char s[128];
        q_str(s, sizeof s,
              "SELECT state || ':' || coalesce(worker_id::text, '') FROM jobs"
              " WHERE id = $1",
              1, p);
        if (strncmp(s, "ASSIGNED:", 9) == 0) {
            hodei_strlcpy(worker, s + 9, ID_LEN);
            return true;
        }
        hodei_sleep_ms(10);
    } while (hodei_mono_ms() < until);
    return false;
}

/* Ends every BUSY worker's job (SUCCEEDED) and makes the worker READY. */
static int64_t workers_free_all(void)
{
    return q_i64("WITH f AS (UPDATE workers w SET state = 'READY', current_job_id = NULL,"
                 "                               idle_since = now(), updated_at = now()"
                 "              FROM (SELECT id, current_job_id FROM workers WHERE state = 'BUSY'"
                 "                    FOR UPDATE) old"
                 "             WHERE w.id = old.id RETURNING old.current_job_id AS job_id),"
                 " j AS (UPDATE jobs SET state = 'SUCCEEDED', finished_at = now()"
                 "         FROM f WHERE jobs.id = f.job_id RETURNING 1)"
                 " SELECT count(*) FROM j",
                 0, NULL);
}

/* ---------------------------------------------------------------- processes */

/* Each case its own database and an emptied NATS of one stack (tests/harness). */
HARNESS_SHARED_SERVERS()

static void stack_up(void)
{
    harness_stack_start(&stack);
    db = PQconnectdb(stack.db_url);
    cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
}

static void stack_down(void)
{
    PQfinish(db);
    db = NULL;
    harness_stack_stop(&stack);
}

static void relay_start(harness_proc *p)
{
    const char *argv[] = {"hodei-outbox-relay", NULL};
    const char *env[] = {"HODEI_LOG_LEVEL=warn", "HODEI_RELAY_POLL_INTERVAL=100ms", NULL};
    harness_proc_start(&stack, p, argv, env);
}

/* pass_env: "HODEI_SCHEDULER_PASS_INTERVAL=..." or NULL for 200 ms. */
static void sched_start(harness_proc *p, const char *instance, const char *pass_env)
{
    char inst[64];
    snprintf(inst, sizeof inst, "HODEI_INSTANCE_ID=%s", instance);
    const char *argv[] = {"hodei-scheduler", NULL};
    const char *env[] = {pass_env ? pass_env : PASS_ENV, inst, "HODEI_LOG_LEVEL=info", NULL};
    harness_proc_start(&stack, p, argv, env);
    cr_assert(harness_log_contains(p, "consuming " HODEI_STREAM_EVENTS, WAIT_MS),
              "scheduler did not subscribe; see %s", p->log_path);
}

/* SIGTERM must end it with status 0: no leak under ASan, clean shutdown. */
static void proc_stop_clean(harness_proc *p)
{
    int st = harness_proc_stop(p, SIGTERM, 10000);
    cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "%s exited with status 0x%x; see %s", p->name, st, p->log_path);
}

/* Occurrences of needle in a process's log. */
static int log_count(const harness_proc *p, const char *needle)
{
    FILE *f = fopen(p->log_path, "r");
    char line[2048];
    int n = 0;
    cr_assert_not_null(f, "%s", p->log_path);
    while (fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* ------------------------------------------------------------------- NATS */

typedef struct {
    natsConnection *nc;
    natsSubscription *sub;
} watch;

static void watch_start(watch *w, const char *subject)
{
    cr_assert_eq(natsConnection_ConnectTo(&w->nc, stack.nats_url), NATS_OK);
    cr_assert_eq(natsConnection_SubscribeSync(&w->sub, w->nc, subject), NATS_OK);
    cr_assert_eq(natsConnection_Flush(w->nc), NATS_OK);
}

/* The next event on the watched subjects, or NULL after timeout_ms. */
static Hodei__V1__Event *watch_next(watch *w, int64_t timeout_ms, char *subject, size_t len)
{
    natsMsg *m = NULL;
    if (natsSubscription_NextMsg(&m, w->sub, timeout_ms) != NATS_OK)
        return NULL;
    if (subject)
        snprintf(subject, len, "%s", natsMsg_GetSubject(m));
    Hodei__V1__Event *ev = hodei__v1__event__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                    (const uint8_t *)natsMsg_GetData(m));
    natsMsg_Destroy(m);
    cr_assert_not_null(ev, "an event that does not unpack");
    return ev;
}

static void watch_stop(watch *w)
{
    natsSubscription_Destroy(w->sub);
    natsConnection_Destroy(w->nc);
}

/* ---------------------------------------------------------------- the edge */

static hodei_grpc_code sched_call(edge_handle *e, const char *method, const ProtobufCMessage *req,
                                  const ProtobufCMessageDescriptor *resp_desc,
                                  ProtobufCMessage **resp, char *msg, size_t msg_len)
{
    char path[128];
    hodei_rpc_result res;
    hodei_err err;
    ProtobufCMessage *out = NULL;
    snprintf(path, sizeof path, "/hodei.v1.SchedulerService/%s", method);
    cr_assert_eq(hodei_rpc_unary(e->ch, path, req, resp_desc, 10000, &out, &res, &err), HODEI_OK,
                 "%s: %s", method, err.msg);
    if (msg)
        snprintf(msg, msg_len, "%s", res.message);
    if (resp)
        *resp = out;
    else if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return res.code;
}

static hodei_grpc_code configure(edge_handle *e, Hodei__V1__SchedulingStrategy s, char *msg,
                                 size_t msg_len)
{
    Hodei__V1__ConfigureSchedulerRequest req = HODEI__V1__CONFIGURE_SCHEDULER_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    req.strategy = s;
    hodei_grpc_code c =
        sched_call(e, "ConfigureScheduler", &req.base,
                   &hodei__v1__configure_scheduler_response__descriptor, &out, msg, msg_len);
    if (c == HODEI_GRPC_OK)
        cr_expect_eq(((Hodei__V1__ConfigureSchedulerResponse *)out)->strategy, s);
    if (out)
        protobuf_c_message_free_unpacked(out, NULL);
    return c;
}

/* Queues `true` with cpu_cores through the edge; returns the job id. */
static void edge_queue(edge_handle *e, double cpu_cores, char id[ID_LEN])
{
    edge_job j;
    Hodei__V1__ResourceRequirements res = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    ProtobufCMessage *out = NULL;
    char msg[256];
    edge_job_true(&j);
    res.cpu_cores = cpu_cores;
    j.spec.resources = &res;
    cr_assert_eq(edge_call(e, "QueueJob", &j.req.base, &hodei__v1__queue_job_response__descriptor,
                           &out, msg, sizeof msg),
                 HODEI_GRPC_OK, "QueueJob: %s", msg);
    snprintf(id, ID_LEN, "%s", ((Hodei__V1__QueueJobResponse *)out)->job_id);
    protobuf_c_message_free_unpacked(out, NULL);
}

/* ------------------------------------------------------------------ tests */

Test(scheduler, assigns_a_queued_job_to_a_fitting_worker_with_epoch_and_event, .timeout = 120)
{
    harness_proc relay, sched;
    edge_handle edge;
    watch w;
    char small[ID_LEN], big[ID_LEN], job[ID_LEN], worker[ID_LEN], subject[160], want[160];

    hodei_rpc_global_init();
    stack_up();
    relay_start(&relay);
    sched_start(&sched, "s1", NULL);
    edge_start(&stack, &edge, NULL);
    worker_add(small, "process", 1000, "{}", 2000);
    worker_add(big, "process", 4000, "{}", 1000);
    watch_start(&w, HODEI_SUBJ_JOB_ASSIGNED_PREFIX ">");

    edge_queue(&edge, 2.0, job); /* 2 cores: only the big worker fits */
    cr_assert(job_wait_assigned(job, worker, WAIT_MS), "the job was not assigned");
    cr_expect_str_eq(worker, big);
    const char *p[] = {job, big, small};
    cr_expect_eq(q_i64("SELECT epoch * 10 + attempt FROM jobs WHERE id = $1", 1, p), 11,
                 "epoch 1, attempt 1");
    cr_expect_eq(q_i64("SELECT count(*) FROM workers WHERE id = $2 AND state = 'BUSY'"
                       " AND current_job_id = $1",
                       2, p),
                 1, "the worker is BUSY with the job");
    cr_expect_eq(q_i64("SELECT count(*) FROM workers WHERE id = $1 AND state = 'READY'", 1, &p[2]),
                 1, "the small worker stays free");

    Hodei__V1__Event *ev = watch_next(&w, WAIT_MS, subject, sizeof subject);
    cr_assert_not_null(ev, "no JobAssigned event");
    snprintf(want, sizeof want, "%s%s", HODEI_SUBJ_JOB_ASSIGNED_PREFIX, big);
    cr_expect_str_eq(subject, want);
    cr_assert_eq(ev->body_case, HODEI__V1__EVENT__BODY_JOB_ASSIGNED);
    cr_expect_str_eq(ev->job_assigned->job_id, job);
    cr_expect_str_eq(ev->job_assigned->worker_id, big);
    cr_expect_eq(ev->job_assigned->epoch, 1);
    cr_expect_str_eq(ev->aggregate_id, job);
    hodei__v1__event__free_unpacked(ev, NULL);

    watch_stop(&w);
    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    edge_stop(&edge);
    stack_down();
    hodei_rpc_global_shutdown();
}

Test(scheduler, a_required_label_routes_the_job_to_the_only_worker_with_it, .timeout = 120)
{
    harness_proc relay, sched;
    char a[ID_LEN], b[ID_LEN], c[ID_LEN], job[ID_LEN], plain[ID_LEN], worker[ID_LEN];

    stack_up();
    worker_add(a, "process", 2000, "{\"disk\": \"hdd\"}", 3000);
    worker_add(b, "process", 2000, "{\"disk\": \"ssd\", \"zone\": \"eu-1\"}", 1000);
    worker_add(c, "process", 2000, "{}", 2000);
    relay_start(&relay);
    sched_start(&sched, "s1", NULL);
    job_add(job, 0, 0, "", "{\"disk\": \"ssd\"}", 0);
    cr_assert(job_wait_assigned(job, worker, WAIT_MS));
    cr_expect_str_eq(worker, b, "the only worker labelled disk=ssd");
    job_add(plain, 0, 0, "", "{\"disk\": \"nvme\"}", 0);
    hodei_sleep_ms(1000);
    char st[128];
    job_state(plain, st, sizeof st);
    cr_expect_str_eq(st, "PENDING:", "no worker has disk=nvme");
    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    stack_down();
}

Test(scheduler, no_ready_worker_provisions_one_worker_per_unmet_job_with_two_replicas,
     .timeout = 120)
{
    harness_proc relay, s1, s2;
    watch w;
    char jobs[3][ID_LEN], capped[2][ID_LEN], nowhere[ID_LEN], off[ID_LEN], huge[ID_LEN];

    stack_up();
    provider_add("process", 0, "0", true, 2000);
    provider_add("capped", 1, "0", true, 1000);
    provider_add("off", 0, "0", false, 1000);
    relay_start(&relay);
    sched_start(&s1, "s1", NULL);
    sched_start(&s2, "s2", NULL);
    watch_start(&w, HODEI_SUBJ_PROVISION_REQUESTED);

    for (int i = 0; i < 3; i++)
        job_add(jobs[i], 0, 1000, "", "{}", 0);
    for (int i = 0; i < 2; i++)
        job_add(capped[i], 0, 0, "capped", "{}", 0);
    job_add(nowhere, 0, 0, "nowhere", "{}", 0);
    job_add(off, 0, 0, "off", "{}", 0);
    job_add(huge, 0, 8000, "", "{}", 0); /* "process" workers have 2 cores */

    int seen = 0;
    for (Hodei__V1__Event *ev; (ev = watch_next(&w, 3000, NULL, 0)) != NULL; seen++) {
        cr_assert_eq(ev->body_case, HODEI__V1__EVENT__BODY_PROVISION_REQUESTED);
        const Hodei__V1__ProvisionRequested *pr = ev->provision_requested;
        cr_expect_str_eq(pr->request_id, pr->worker_id);
        const char *p[] = {pr->worker_id, pr->provider};
        cr_expect_eq(q_i64("SELECT cpu_millis FROM workers WHERE id = $1 AND provider = $2"
                           " AND state = 'CREATING'",
                           2, p),
                     (int64_t)(pr->resources->cpu_cores * 1000),
                     "a CREATING row with the provider's worker capacity");
        hodei__v1__event__free_unpacked(ev, NULL);
    }
    hodei_sleep_ms(1000); /* several more passes on both replicas */
    cr_expect_eq(seen, 4, "3 for process + 1 for capped (max_workers 1), got %d", seen);
    cr_expect_eq(q_i64("SELECT count(*) FROM workers WHERE provider = 'process'"
                       " AND state = 'CREATING'",
                       0, NULL),
                 3, "one per unmet job");
    cr_expect_eq(q_i64("SELECT count(*) FROM workers WHERE provider = 'capped'", 0, NULL), 1,
                 "max_workers holds");
    cr_expect_eq(
        q_i64("SELECT count(*) FROM workers WHERE provider IN ('nowhere', 'off')", 0, NULL), 0);
    cr_expect_eq(
        q_i64("SELECT count(*) FROM outbox WHERE event_type = 'ProvisionRequested'", 0, NULL), 4);
    cr_expect_eq(q_i64("SELECT count(*) FROM jobs WHERE state = 'PENDING'", 0, NULL), 8);
    int logged = log_count(&s1, nowhere) + log_count(&s2, nowhere);
    cr_expect(logged >= 1 && logged <= 2, "the unrunnable job is logged once per replica (%d)",
              logged);
    cr_expect_eq(log_count(&s1, off) + log_count(&s2, off) >= 1, 1);
    cr_expect_eq(log_count(&s1, huge) + log_count(&s2, huge) >= 1, 1);

    /* one of the new workers registers: it takes a job, nothing more is asked */
    q_exec("UPDATE workers SET state = 'READY', idle_since = now()"
           " WHERE id = (SELECT id FROM workers WHERE provider = 'process' LIMIT 1)",
           0, NULL);
    hodei_sleep_ms(1000);
    cr_expect_eq(q_i64("SELECT count(*) FROM jobs WHERE state = 'ASSIGNED'", 0, NULL), 1);
    cr_expect_eq(q_i64("SELECT count(*) FROM workers WHERE provider = 'process'", 0, NULL), 3);

    watch_stop(&w);
    proc_stop_clean(&s1);
    proc_stop_clean(&s2);
    proc_stop_clean(&relay);
    stack_down();
}

Test(scheduler, higher_priority_jobs_are_assigned_first, .timeout = 120)
{
    harness_proc relay, sched;
    char low[ID_LEN], mid[ID_LEN], high[ID_LEN], worker[ID_LEN], got[ID_LEN];

    stack_up();
    relay_start(&relay);
    sched_start(&sched, "s1", NULL);
    job_add(low, 0, 0, "", "{}", 0);
    job_add(high, 10, 0, "", "{}", 0);
    job_add(mid, 5, 0, "", "{}", 0);
    hodei_sleep_ms(500);
    worker_add(worker, "process", 1000, "{}", 0);
    const char *order[] = {high, mid, low};
    for (int i = 0; i < 3; i++) {
        cr_assert(job_wait_assigned(order[i], got, WAIT_MS), "job %d not assigned in turn", i);
        for (int k = i + 1; k < 3; k++) {
            char st[128];
            job_state(order[k], st, sizeof st);
            cr_expect_str_eq(st, "PENDING:", "a lower-priority job went first");
        }
        cr_expect_eq(workers_free_all(), 1);
    }
    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    stack_down();
}

Test(scheduler, a_job_waits_for_its_not_before, .timeout = 120)
{
    harness_proc relay, sched;
    char job[ID_LEN], worker[ID_LEN], got[ID_LEN], st[128];

    stack_up();
    relay_start(&relay);
    sched_start(&sched, "s1", NULL);
    worker_add(worker, "process", 1000, "{}", 0);
    job_add(job, 0, 0, "", "{}", 1500);
    hodei_sleep_ms(800);
    job_state(job, st, sizeof st);
    cr_expect_str_eq(st, "PENDING:", "assigned before its not_before");
    cr_assert(job_wait_assigned(job, got, WAIT_MS), "not assigned once not_before passed");
    cr_expect_str_eq(got, worker);
    const char *p[] = {job};
    cr_expect_eq(
        q_i64("SELECT count(*) FROM jobs WHERE id = $1 AND updated_at >= not_before", 1, p), 1);
    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    stack_down();
}

Test(scheduler, scheduler_service_on_the_edge, .timeout = 120)
{
    harness_proc relay, sched;
    edge_handle edge;
    char dear[ID_LEN], cheap[ID_LEN], a[ID_LEN], b[ID_LEN], waiting[ID_LEN], got[ID_LEN];
    char msg[512], strategy[32];
    ProtobufCMessage *out = NULL;

    hodei_rpc_global_init();
    stack_up();
    provider_add("dear", 0, "5.0", true, 1000);
    provider_add("cheap", 0, "0.1", true, 1000);
    relay_start(&relay);
    sched_start(&sched, "s1", NULL);
    edge_start(&stack, &edge, NULL);
    worker_add(dear, "dear", 1000, "{\"tier\": \"gold\"}", 60000); /* idle the longest */
    worker_add(cheap, "cheap", 1000, "{}", 1000);

    /* GetAvailableWorkers */
    Hodei__V1__GetAvailableWorkersRequest gr = HODEI__V1__GET_AVAILABLE_WORKERS_REQUEST__INIT;
    cr_assert_eq(sched_call(&edge, "GetAvailableWorkers", &gr.base,
                            &hodei__v1__get_available_workers_response__descriptor, &out, msg,
                            sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__GetAvailableWorkersResponse *gw = (Hodei__V1__GetAvailableWorkersResponse *)out;
    cr_assert_eq(gw->n_workers, 2);
    for (size_t i = 0; i < gw->n_workers; i++) {
        cr_expect_eq(gw->workers[i]->state, HODEI__V1__WORKER_STATE__WORKER_STATE_READY);
        cr_expect_eq(gw->workers[i]->capacity->cpu_cores, 1.0);
        bool is_dear = strcmp(gw->workers[i]->id, dear) == 0;
        cr_expect_eq(gw->workers[i]->n_labels, is_dear ? 1u : 0u);
        if (is_dear) {
            cr_expect_str_eq(gw->workers[i]->labels[0]->key, "tier");
            cr_expect_str_eq(gw->workers[i]->labels[0]->value, "gold");
        }
    }
    protobuf_c_message_free_unpacked(out, NULL);
    gr.provider = "cheap";
    cr_assert_eq(sched_call(&edge, "GetAvailableWorkers", &gr.base,
                            &hodei__v1__get_available_workers_response__descriptor, &out, msg,
                            sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    gw = (Hodei__V1__GetAvailableWorkersResponse *)out;
    cr_assert_eq(gw->n_workers, 1);
    cr_expect_str_eq(gw->workers[0]->id, cheap);
    protobuf_c_message_free_unpacked(out, NULL);
    gr.provider = "Bad Name!";
    cr_expect_eq(sched_call(&edge, "GetAvailableWorkers", &gr.base,
                            &hodei__v1__get_available_workers_response__descriptor, NULL, msg,
                            sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "provider") != NULL, "names the field: %s", msg);

    /* ConfigureScheduler: validation, then least-loaded picks the longest idle ... */
    cr_expect_eq(configure(&edge, 0, msg, sizeof msg), HODEI_GRPC_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "strategy") != NULL, "names the field: %s", msg);
    cr_expect_eq(configure(&edge, 42, msg, sizeof msg), HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert_eq(configure(&edge, HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_LEAST_LOADED,
                           msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    q_str(strategy, sizeof strategy, "SELECT strategy FROM scheduler_settings", 0, NULL);
    cr_expect_str_eq(strategy, "least-loaded");
    job_add(a, 0, 0, "", "{}", 0);
    cr_assert(job_wait_assigned(a, got, WAIT_MS));
    cr_expect_str_eq(got, dear, "least-loaded: the worker idle the longest");
    workers_free_all();
    q_exec("UPDATE workers SET assign_load = 0, last_assigned_at = NULL,"
           " idle_since = now() - interval '1 hour' WHERE provider = 'dear'",
           0, NULL);

    /* ... and cost-optimized the cheapest, from the next pass on */
    cr_assert_eq(configure(&edge,
                           HODEI__V1__SCHEDULING_STRATEGY__SCHEDULING_STRATEGY_COST_OPTIMIZED, msg,
                           sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    job_add(b, 0, 0, "", "{}", 0);
    cr_assert(job_wait_assigned(b, got, WAIT_MS));
    cr_expect_str_eq(got, cheap, "cost-optimized: the cheaper provider");
    cr_expect(harness_log_contains(&sched, "strategy: cost-optimized", WAIT_MS));

    /* ScheduleJob */
    Hodei__V1__ScheduleJobRequest sr = HODEI__V1__SCHEDULE_JOB_REQUEST__INIT;
    sr.job_id = "not-a-uuid";
    cr_expect_eq(sched_call(&edge, "ScheduleJob", &sr.base,
                            &hodei__v1__schedule_job_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_expect(strstr(msg, "job_id") != NULL, "%s", msg);
    sr.job_id = "0190f3a4-0000-7000-8000-000000000000";
    cr_expect_eq(sched_call(&edge, "ScheduleJob", &sr.base,
                            &hodei__v1__schedule_job_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_NOT_FOUND);
    job_add(waiting, 0, 0, "nowhere", "{}", 0);
    const char *p[] = {waiting};
    int64_t before = q_i64("SELECT count(*) FROM outbox WHERE aggregate_id = $1"
                           " AND event_type = 'JobQueued'",
                           1, p);
    sr.job_id = waiting;
    cr_assert_eq(sched_call(&edge, "ScheduleJob", &sr.base,
                            &hodei__v1__schedule_job_response__descriptor, &out, msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__ScheduleJobResponse *sj = (Hodei__V1__ScheduleJobResponse *)out;
    cr_expect_eq(sj->state, HODEI__V1__JOB_STATE__JOB_STATE_PENDING);
    cr_expect_str_eq(sj->worker_id, "");
    protobuf_c_message_free_unpacked(out, NULL);
    cr_expect_eq(q_i64("SELECT count(*) FROM outbox WHERE aggregate_id = $1"
                       " AND event_type = 'JobQueued'",
                       1, p),
                 before + 1, "a wake-up event");
    sr.job_id = b;
    cr_assert_eq(sched_call(&edge, "ScheduleJob", &sr.base,
                            &hodei__v1__schedule_job_response__descriptor, &out, msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    sj = (Hodei__V1__ScheduleJobResponse *)out;
    cr_expect_eq(sj->state, HODEI__V1__JOB_STATE__JOB_STATE_ASSIGNED);
    cr_expect_str_eq(sj->worker_id, cheap);
    protobuf_c_message_free_unpacked(out, NULL);

    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    edge_stop(&edge);
    stack_down();
    hodei_rpc_global_shutdown();
}

Test(scheduler, keeps_assigning_across_postgresql_and_nats_restarts, .timeout = 180)
{
    harness_proc relay, sched;
    char worker[ID_LEN], job[ID_LEN], got[ID_LEN];

    stack_up();
    worker_add(worker, "process", 1000, "{}", 0);
    relay_start(&relay);
    /* a long timer: prompt assignments below come through events */
    sched_start(&sched, "s1", "HODEI_SCHEDULER_PASS_INTERVAL=10s");
    job_add(job, 0, 0, "", "{}", 0);
    cr_assert(job_wait_assigned(job, got, 2000));

    PQfinish(db);
    harness_pg_stop(&stack);
    hodei_sleep_ms(1000);
    harness_pg_start(&stack);
    db = PQconnectdb(stack.db_url);
    cr_assert_eq(PQstatus(db), CONNECTION_OK, "%s", PQerrorMessage(db));
    cr_expect_eq(workers_free_all(), 1);
    job_add(job, 0, 0, "", "{}", 0);
    cr_assert(job_wait_assigned(job, got, 3 * WAIT_MS), "no assignment after a PostgreSQL restart");
    cr_expect(harness_log_contains(&sched, "database connection lost", 1000));

    harness_nats_stop(&stack);
    cr_expect_eq(workers_free_all(), 1);
    job_add(job, 0, 0, "", "{}", 0);
    cr_assert(job_wait_assigned(job, got, 3000),
              "the outbox notification did not wake the scheduler while NATS is down");
    harness_nats_start(&stack);
    hodei_sleep_ms(2000);
    cr_expect_eq(workers_free_all(), 1);
    job_add(job, 0, 0, "", "{}", 0);
    cr_assert(job_wait_assigned(job, got, 3000), "events did not resume after NATS came back");

    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    stack_down();
}

/* Publishes ev on subject straight to JetStream (no outbox row, so no
 * PostgreSQL notification): only the consumer can wake the scheduler. */
static void js_publish_event(const char *subject, Hodei__V1__Event *ev)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsPubOptions po;
    uint8_t raw[512];
    size_t len = hodei__v1__event__pack(ev, raw);
    cr_assert_eq(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsPubOptions_Init(&po);
    po.MsgId = ev->event_id;
    cr_assert_eq(js_Publish(NULL, js, subject, raw, (int)len, &po, NULL), NATS_OK);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static int64_t consumer_ack_pending(void)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsConsumerInfo *ci = NULL;
    cr_assert_eq(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(
        js_GetConsumerInfo(&ci, js, HODEI_STREAM_EVENTS, HODEI_CONSUMER_SCHEDULER, NULL, NULL),
        NATS_OK);
    int64_t pending = ci->NumAckPending + (int64_t)ci->NumPending;
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return pending;
}

Test(scheduler, an_event_on_the_durable_consumer_alone_triggers_a_pass_and_is_acked, .timeout = 120)
{
    harness_proc relay, sched;
    char worker[ID_LEN], job[ID_LEN], got[ID_LEN], event_id[ID_LEN], st[128];

    stack_up();
    relay_start(&relay);
    sched_start(&sched, "s1", "HODEI_SCHEDULER_PASS_INTERVAL=30s");
    hodei_sleep_ms(500); /* the pass at start is behind us */
    worker_add(worker, "process", 1000, "{}", 0);
    hodei_id_new(job);
    const char *p[] = {job};
    q_exec("INSERT INTO jobs (id, state, spec, timeout_ms) VALUES ($1, 'PENDING', '\\x', 60000)", 1,
           p); /* no outbox row: no notification */
    hodei_sleep_ms(1000);
    job_state(job, st, sizeof st);
    cr_expect_str_eq(st, "PENDING:", "nothing woke the scheduler yet");

    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobQueued body = HODEI__V1__JOB_QUEUED__INIT;
    hodei_id_new(event_id);
    body.job_id = job;
    ev.event_id = event_id;
    ev.aggregate_id = job;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_QUEUED;
    ev.job_queued = &body;
    js_publish_event(HODEI_SUBJ_JOB_QUEUED, &ev);
    cr_assert(job_wait_assigned(job, got, 3000), "the JobQueued event did not trigger a pass");
    int64_t until = hodei_mono_ms() + WAIT_MS;
    while (consumer_ack_pending() != 0 && hodei_mono_ms() < until)
        hodei_sleep_ms(50);
    cr_expect_eq(consumer_ack_pending(), 0, "every event on the consumer acked");

    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    stack_down();
}

/* The invariant two replicas must keep: no worker holds two jobs, and every
 * assigned job is the current job of a BUSY worker. */
static void check_no_double_booking(void)
{
    cr_assert_eq(q_i64("SELECT count(*) FROM (SELECT worker_id FROM jobs"
                       " WHERE state IN ('ASSIGNED', 'RUNNING')"
                       " GROUP BY worker_id HAVING count(*) > 1) d",
                       0, NULL),
                 0, "a worker holds two jobs");
    cr_assert_eq(q_i64("SELECT count(*) FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id"
                       " WHERE j.state = 'ASSIGNED' AND (w.state IS DISTINCT FROM 'BUSY'"
                       "  OR w.current_job_id IS DISTINCT FROM j.id)",
                       0, NULL),
                 0, "an assigned job whose worker is not busy with it");
}

Test(scheduler, two_replicas_never_assign_a_job_twice_or_a_worker_two_jobs, .timeout = 300)
{
    harness_proc relay, s1, s2;
    char w[ID_LEN], j[ID_LEN];

    stack_up();
    provider_add("process", 0, "0", false, 0); /* no provisioning in this test */
    for (int i = 0; i < MANY_WORKERS; i++)
        worker_add(w, "process", 1000, "{}", i);
    relay_start(&relay);
    sched_start(&s1, "s1", NULL);
    sched_start(&s2, "s2", NULL);
    for (int i = 0; i < MANY_JOBS; i++)
        job_add(j, i % 7, 0, "", "{}", 0);
    int64_t until = hodei_mono_ms() + 120000;
    while (q_i64("SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'", 0, NULL) < MANY_JOBS &&
           hodei_mono_ms() < until) {
        check_no_double_booking();
        workers_free_all();
        hodei_sleep_ms(5);
    }
    cr_assert_eq(q_i64("SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'", 0, NULL), MANY_JOBS);
    cr_expect_eq(q_i64("SELECT count(*) FROM jobs WHERE epoch = 1 AND attempt = 1", 0, NULL),
                 MANY_JOBS, "every job assigned exactly once");
    cr_expect_eq(q_i64("SELECT count(DISTINCT aggregate_id) FROM outbox"
                       " WHERE event_type = 'JobAssigned'",
                       0, NULL),
                 MANY_JOBS);
    cr_expect_eq(q_i64("SELECT count(*) FROM outbox WHERE event_type = 'JobAssigned'", 0, NULL),
                 MANY_JOBS, "one JobAssigned per assignment");
    proc_stop_clean(&s1);
    proc_stop_clean(&s2);
    proc_stop_clean(&relay);
    stack_down();
}

/* Assigns jobs one at a time, then in bursts, each on its commit's
 * notification alone (the caller keeps the fallback timer out of the way). */
static void assign_on_notifications(int singles, int bursts, int burst)
{
    char j[ID_LEN], got[ID_LEN];
    for (int i = 0; i < singles; i++) {
        job_add(j, 0, 0, "", "{}", 0);
        cr_assert(job_wait_assigned(j, got, 10000), "job %d waited: a wake-up was lost", i);
    }
    for (int b = 0; b < bursts; b++) {
        for (int i = 0; i < burst; i++)
            job_add(j, 0, 0, "", "{}", 0);
        int64_t until = hodei_mono_ms() + 10000;
        while (q_i64("SELECT count(*) FROM jobs WHERE state = 'PENDING'", 0, NULL) > 0 &&
               hodei_mono_ms() < until)
            hodei_sleep_ms(10);
        cr_assert_eq(q_i64("SELECT count(*) FROM jobs WHERE state = 'PENDING'", 0, NULL), 0,
                     "burst %d: a job waited (a wake-up was lost)", b);
    }
}

/* Three replicas: one listens for commits (the others would run a pass
 * each for the same commit), every job is assigned on its commit's
 * notification alone (fallback timer at 60 s, no relay, so no events), and
 * when the listener is SIGKILLed another replica listens within seconds. */
Test(scheduler, one_of_three_replicas_listens_and_another_takes_over, .timeout = 300)
{
    harness_proc s[3];
    char w[ID_LEN];
    enum { SINGLES = 20, BURSTS = 4, BURST = 10 };
    const char *listening = "listening on hodei_outbox";

    stack_up();
    provider_add("process", 0, "0", false, 0); /* no provisioning in this test */
    for (int i = 0; i < 2 * (SINGLES + BURSTS * BURST); i++)
        worker_add(w, "process", 1000, "{}", i);
    for (int i = 0; i < 3; i++) {
        char inst_env[32];
        snprintf(inst_env, sizeof inst_env, "HODEI_INSTANCE_ID=s%d", i + 1);
        const char *argv[] = {"hodei-scheduler", NULL};
        const char *env[] = {"HODEI_SCHEDULER_PASS_INTERVAL=60s", inst_env, "HODEI_LOG_LEVEL=info",
                             NULL};
        harness_proc_start(&stack, &s[i], argv, env);
        cr_assert(harness_log_contains(&s[i], "consuming " HODEI_STREAM_EVENTS, WAIT_MS),
                  "scheduler did not subscribe; see %s", s[i].log_path);
    }
    hodei_sleep_ms(2500); /* every replica tried the listener lock */
    int listener = -1, n = 0;
    for (int i = 0; i < 3; i++) {
        if (log_count(&s[i], listening) > 0) {
            listener = i;
            n++;
        }
    }
    cr_assert_eq(n, 1, "one replica listens, not %d", n);
    assign_on_notifications(SINGLES, BURSTS, BURST);

    harness_proc_stop(&s[listener], SIGKILL, 10000);
    int64_t until = hodei_mono_ms() + 15000;
    int next = -1;
    while (next < 0 && hodei_mono_ms() < until) {
        for (int i = 0; i < 3; i++)
            if (i != listener && log_count(&s[i], listening) > 0)
                next = i;
        hodei_sleep_ms(100);
    }
    cr_assert(next >= 0, "no replica listens after the listener was killed");
    assign_on_notifications(SINGLES, BURSTS, BURST);

    check_no_double_booking();
    cr_expect_eq(q_i64("SELECT count(*) FROM jobs WHERE epoch = 1 AND attempt = 1"
                       " AND state = 'ASSIGNED'",
                       0, NULL),
                 2 * (SINGLES + BURSTS * BURST), "every job assigned exactly once");
    for (int i = 0; i < 3; i++)
        if (i != listener)
            proc_stop_clean(&s[i]);
    stack_down();
}

/* Not a pass/fail figure: QueueJob acknowledged -> JobAssigned seen on NATS
 * with a warm worker, through the edge, the relay and the scheduler. */
static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

Test(scheduler, latency_from_queue_to_assigned_with_a_warm_worker, .timeout = 180)
{
    harness_proc relay, sched;
    edge_handle edge;
    watch w;
    char worker[ID_LEN], job[ID_LEN];
    int64_t us[LATENCY_ROUNDS];

    hodei_rpc_global_init();
    stack_up();
    relay_start(&relay);
    sched_start(&sched, "s1", "HODEI_SCHEDULER_PASS_INTERVAL=1s");
    edge_start(&stack, &edge, NULL);
    worker_add(worker, "process", 4000, "{}", 0);
    watch_start(&w, HODEI_SUBJ_JOB_ASSIGNED_PREFIX ">");
    for (int i = 0; i < LATENCY_ROUNDS; i++) {
        int64_t t0 = hodei_mono_ns();
        edge_queue(&edge, 0.5, job);
        int64_t t1 = hodei_mono_ns();
        Hodei__V1__Event *ev = watch_next(&w, WAIT_MS, NULL, 0);
        cr_assert_not_null(ev, "round %d: no JobAssigned", i);
        cr_assert_str_eq(ev->job_assigned->job_id, job);
        hodei__v1__event__free_unpacked(ev, NULL);
        us[i] = (hodei_mono_ns() - t1) / 1000;
        (void)t0;
        cr_assert_eq(workers_free_all(), 1);
    }
    qsort(us, LATENCY_ROUNDS, sizeof us[0], cmp_i64);
    cr_log_info("QueueJob ack -> JobAssigned on NATS: p50 %lld us, p90 %lld us, p99 %lld us",
                (long long)us[LATENCY_ROUNDS / 2], (long long)us[LATENCY_ROUNDS * 9 / 10],
                (long long)us[LATENCY_ROUNDS * 99 / 100]);
    fprintf(stderr, "scheduler latency: p50=%lldus p90=%lldus p99=%lldus\n",
            (long long)us[LATENCY_ROUNDS / 2], (long long)us[LATENCY_ROUNDS * 9 / 10],
            (long long)us[LATENCY_ROUNDS * 99 / 100]);
    watch_stop(&w);
    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    edge_stop(&edge);
    stack_down();
    hodei_rpc_global_shutdown();
}

/* Not a pass/fail figure: assignments per second with 8 workers and a
 * backlog of 3,000 jobs, the workers freed by SQL as fast as the loop goes
 * (each free writes the WorkerReady event the edge would). */
#define TP_JOBS 3000
#define TP_WORKERS 8

static const char tp_free_sql[] =
    "WITH f AS (UPDATE workers w SET state = 'READY', current_job_id = NULL, idle_since = now(),"
    "                               updated_at = now()"
    "             FROM (SELECT id, current_job_id FROM workers WHERE state = 'BUSY' FOR UPDATE) old"
    "            WHERE w.id = old.id RETURNING old.current_job_id AS job_id, w.id AS wid),"
    " j AS (UPDATE jobs SET state = 'SUCCEEDED', finished_at = now() FROM f"
    "        WHERE jobs.id = f.job_id RETURNING 1),"
    " o AS (INSERT INTO outbox (event_id, subject, aggregate_type, aggregate_id, event_type,"
    "                           payload)"
    "       SELECT gen_random_uuid(), '" HODEI_SUBJ_WORKER_READY "', 'worker', wid::text,"
    "              'WorkerReady', '\\x' FROM f)"
    " SELECT count(*) FROM j";

Test(scheduler, throughput_with_eight_workers_and_a_backlog, .timeout = 300)
{
    harness_proc relay, sched;
    char w[ID_LEN], n[16];
    int64_t done = 0;

    stack_up();
    for (int i = 0; i < TP_WORKERS; i++)
        worker_add(w, "process", 1000, "{}", i);
    relay_start(&relay);
    sched_start(&sched, "s1", "HODEI_SCHEDULER_PASS_INTERVAL=1s");
    snprintf(n, sizeof n, "%d", TP_JOBS);
    const char *p[] = {n};
    q_exec("INSERT INTO jobs (id, state, spec, timeout_ms)"
           " SELECT gen_random_uuid(), 'PENDING', '\\x', 60000 FROM generate_series(1, $1::int)",
           1, p);
    int64_t t0 = hodei_mono_ms();
    while (done < TP_JOBS && hodei_mono_ms() - t0 < 120000)
        done += q_i64(tp_free_sql, 0, NULL);
    int64_t ms = hodei_mono_ms() - t0;
    cr_expect_eq(done, TP_JOBS);
    cr_expect_eq(q_i64("SELECT count(*) FROM jobs WHERE epoch = 1 AND attempt = 1", 0, NULL),
                 TP_JOBS);
    fprintf(stderr, "scheduler throughput: %lld jobs in %lld ms = %.0f jobs/s (8 workers)\n",
            (long long)done, (long long)ms, (double)done * 1000.0 / (double)(ms ? ms : 1));
    proc_stop_clean(&sched);
    proc_stop_clean(&relay);
    stack_down();
}
