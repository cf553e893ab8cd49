/* The gRPC edge's JobExecutionService against a real PostgreSQL. */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/id.h"

static harness_stack stack;
static edge_handle edge;

static void setup(void)
{
    edge_stack_start(&stack, &edge, NULL);
}

static void teardown(void)
{
    edge_stack_stop(&stack, &edge);
}

/* Each case its own database and an emptied NATS of one stack (tests/harness). */
HARNESS_SHARED_SERVERS()

TestSuite(job_api, .init = setup, .fini = teardown, .timeout = 180);

static int64_t sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int64_t sqlf(const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return harness_sql_i64(&stack, sql);
}

static Hodei__V1__Job *get_job(const char *id)
{
    Hodei__V1__GetJobStatusRequest req = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    req.job_id = (char *)id;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    cr_assert_eq(edge_call(&edge, "GetJobStatus", &req.base,
                           &hodei__v1__get_job_status_response__descriptor, &resp, msg, sizeof msg),
                 HODEI_GRPC_OK, "GetJobStatus: %s", msg);
    Hodei__V1__GetJobStatusResponse *r = (Hodei__V1__GetJobStatusResponse *)resp;
    Hodei__V1__Job *job = r->job;
    r->job = NULL;
    protobuf_c_message_free_unpacked(resp, NULL);
    return job;
}

Test(job_api, queued_job_is_pending_with_its_spec_and_one_outbox_row)
{
    Hodei__V1__QueueJobRequest req = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    Hodei__V1__JobSpec__EnvEntry env = HODEI__V1__JOB_SPEC__ENV_ENTRY__INIT;
    Hodei__V1__JobSpec__EnvEntry *envs[] = {&env};
    char *args[] = {"hello", "it's \"quoted\""};
    env.key = "GREETING";
    env.value = "hola";
    cmd.command = "echo";
    cmd.n_args = 2;
    cmd.args = args;
    spec.name = "greet";
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    spec.command = &cmd;
    spec.n_env = 1;
    spec.env = envs;
    spec.priority = 7;
    spec.max_attempts = 3;
    req.spec = &spec;
    ProtobufCMessage *resp = NULL;
    char msg[512];
    cr_assert_eq(edge_call(&edge, "QueueJob", &req.base, &hodei__v1__queue_job_response__descriptor,
                           &resp, msg, sizeof msg),
                 HODEI_GRPC_OK, "%s", msg);
    Hodei__V1__QueueJobResponse *qr = (Hodei__V1__QueueJobResponse *)resp;
    cr_assert(hodei_id_valid(qr->job_id));
    cr_assert_not(qr->duplicate);
    cr_assert_eq(qr->state, HODEI__V1__JOB_STATE__JOB_STATE_PENDING);
    char id[37];
    snprintf(id, sizeof id, "%s", qr->job_id);
    protobuf_c_message_free_unpacked(resp, NULL);

    Hodei__V1__Job *job = get_job(id);
    cr_assert_eq(job->state, HODEI__V1__JOB_STATE__JOB_STATE_PENDING);
    cr_assert_eq(job->max_attempts, 3);
    cr_assert_not_null(job->created_at);
    cr_assert_str_eq(job->spec->name, "greet");
    cr_assert_eq(job->spec->payload_case, HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND);
    cr_assert_str_eq(job->spec->command->args[1], "it's \"quoted\"");
    cr_assert_str_eq(job->spec->env[0]->value, "hola");
    hodei__v1__job__free_unpacked(job, NULL);

    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE aggregate_id = '%s'"
                      " AND event_type = 'JobQueued' AND subject = 'hodei.evt.job.queued'",
                      id),
                 1);
    cr_assert_eq(sqlf("SELECT priority FROM jobs WHERE id = '%s'", id), 7);
    cr_assert_eq(sqlf("SELECT timeout_ms FROM jobs WHERE id = '%s'", id), 3600000,
                 "the server's default timeout is recorded");
}

Test(job_api, idempotency_key_returns_the_first_job)
{
    char a[37], b[37];
    edge_queue_shell(&edge, "true", "deploy-42", a);
    edge_queue_shell(&edge, "false", "deploy-42", b);
    cr_assert_str_eq(a, b);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs WHERE idempotency_key = 'deploy-42'"), 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox"), 1, "a duplicate writes no event");
}

typedef struct {
    edge_handle *e;
    char id[37];
} dup_arg;

static void *dup_thread(void *p)
{
    dup_arg *a = p;
    edge_queue_shell(a->e, "true", "same-key", a->id);
    return NULL;
}

Test(job_api, concurrent_submits_with_one_key_make_one_job)
{
    enum { N = 16 };
    pthread_t t[N];
    dup_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i].e = &edge;
        pthread_create(&t[i], NULL, dup_thread, &args[i]);
    }
    for (int i = 0; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 1; i < N; i++)
        cr_assert_str_eq(args[i].id, args[0].id);
    cr_assert_eq(sqlf("SELECT count(*) FROM jobs"), 1);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox"), 1);
}

Test(job_api, unknown_and_malformed_ids)
{
    Hodei__V1__GetJobStatusRequest req = HODEI__V1__GET_JOB_STATUS_REQUEST__INIT;
    char msg[512];
    req.job_id = "0190b1c2-0000-7000-8000-000000000000";
    cr_assert_eq(edge_call(&edge, "GetJobStatus", &req.base,
                           &hodei__v1__get_job_status_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_NOT_FOUND);
    cr_assert(strstr(msg, "not found"), "%s", msg);
    req.job_id = "not-a-uuid";
    cr_assert_eq(edge_call(&edge, "GetJobStatus", &req.base,
                           &hodei__v1__get_job_status_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "job_id"), "%s", msg);
    req.job_id = "";
    cr_assert_eq(edge_call(&edge, "GetJobStatus", &req.base,
                           &hodei__v1__get_job_status_response__descriptor, NULL, msg, sizeof msg),
                 HODEI_GRPC_INVALID_ARGUMENT);
}

static hodei_grpc_code cancel(const char *id, Hodei__V1__Job **job_out, char *msg, size_t len)
{
    Hodei__V1__CancelJobRequest req = HODEI__V1__CANCEL_JOB_REQUEST__INIT;
    req.job_id = (char *)id;
    req.reason = "no longer needed";
    ProtobufCMessage *resp = NULL;
    hodei_grpc_code code = edge_call(&edge, "CancelJob", &req.base,
                                     &hodei__v1__cancel_job_response__descriptor, &resp, msg, len);
    if (code == HODEI_GRPC_OK && job_out) {
        Hodei__V1__CancelJobResponse *r = (Hodei__V1__CancelJobResponse *)resp;
        *job_out = r->job;
        r->job = NULL;
    }
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    return code;
}

Test(job_api, cancel_pending_job_at_once_then_refuse_again)
{
    char id[37], msg[512];
    Hodei__V1__Job *job = NULL;
    edge_queue_shell(&edge, "sleep 100", NULL, id);
    cr_assert_eq(cancel(id, &job, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(job->state, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED);
    cr_assert_not_null(job->finished_at);
    hodei__v1__job__free_unpacked(job, NULL);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE aggregate_id = '%s'"
                      " AND event_type = 'JobFinished'",
                      id),
                 1);
    cr_assert_eq(cancel(id, NULL, msg, sizeof msg), HODEI_GRPC_FAILED_PRECONDITION);
    cr_assert(strstr(msg, "CANCELLED"), "%s", msg);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE aggregate_id = '%s'", id), 2,
                 "the refused cancel wrote nothing");
}

Test(job_api, cancel_running_job_marks_it_and_tells_its_worker)
{
    char id[37], msg[512];
    const char *worker = "0190b1c2-1111-7000-8000-000000000001";
    Hodei__V1__Job *job = NULL;
    edge_queue_shell(&edge, "sleep 100", NULL, id);
    cr_assert_eq(sqlf("WITH u AS (UPDATE jobs SET state = 'RUNNING', worker_id = '%s', epoch = 3,"
                      " attempt = 1 WHERE id = '%s' RETURNING 1) SELECT count(*) FROM u",
                      worker, id),
                 1);
    cr_assert_eq(cancel(id, &job, msg, sizeof msg), HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(job->state, HODEI__V1__JOB_STATE__JOB_STATE_RUNNING);
    cr_assert(job->cancel_requested);
    hodei__v1__job__free_unpacked(job, NULL);
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE aggregate_id = '%s'"
                      " AND event_type = 'JobCancelRequested'"
                      " AND subject = 'hodei.evt.job.cancel.%s'",
                      id, worker),
                 1);
    cr_assert_eq(cancel(id, NULL, msg, sizeof msg), HODEI_GRPC_OK, "a repeated cancel is harmless");
    cr_assert_eq(sqlf("SELECT count(*) FROM outbox WHERE event_type = 'JobCancelRequested'"), 1);
    cr_assert_eq(cancel("0190b1c2-0000-7000-8000-000000000009", NULL, msg, sizeof msg),
                 HODEI_GRPC_NOT_FOUND);
}

static Hodei__V1__ListJobsResponse *list(Hodei__V1__JobState *states, size_t n_states, int size,
                                         const char *token, hodei_grpc_code *code, char *msg)
{
    Hodei__V1__ListJobsRequest req = HODEI__V1__LIST_JOBS_REQUEST__INIT;
    req.n_states = n_states;
    req.states = states;
    req.page_size = size;
    req.page_token = (char *)(token ? token : "");
    ProtobufCMessage *resp = NULL;
    *code = edge_call(&edge, "ListJobs", &req.base, &hodei__v1__list_jobs_response__descriptor,
                      &resp, msg, 512);
    return (Hodei__V1__ListJobsResponse *)resp;
}

Test(job_api, list_pages_newest_first_and_filters_by_state)
{
    enum { N = 23 };
    char ids[N][37], msg[512];
    for (int i = 0; i < N; i++)
        edge_queue_shell(&edge, "true", NULL, ids[i]);
    Hodei__V1__Job *cj = NULL;
    cr_assert_eq(cancel(ids[5], &cj, msg, sizeof msg), HODEI_GRPC_OK);
    hodei__v1__job__free_unpacked(cj, NULL);

    /* Page through everything, 7 at a time: each job once, newest first. */
    char token[128] = "";
    int seen = 0;
    hodei_grpc_code code;
    do {
        Hodei__V1__ListJobsResponse *r = list(NULL, 0, 7, token, &code, msg);
        cr_assert_eq(code, HODEI_GRPC_OK, "%s", msg);
        for (size_t i = 0; i < r->n_jobs; i++, seen++)
            cr_assert_str_eq(r->jobs[i]->id, ids[N - 1 - seen], "position %d", seen);
        snprintf(token, sizeof token, "%s", r->next_page_token);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } while (token[0]);
    cr_assert_eq(seen, N);

    Hodei__V1__JobState st = HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED;
    Hodei__V1__ListJobsResponse *r = list(&st, 1, 0, NULL, &code, msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(r->n_jobs, 1);
    cr_assert_str_eq(r->jobs[0]->id, ids[5]);
    cr_assert_str_eq(r->next_page_token, "");
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

Test(job_api, list_refuses_bad_arguments)
{
    hodei_grpc_code code;
    char msg[512];
    cr_assert_null(list(NULL, 0, 5000, NULL, &code, msg));
    cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "page_size"), "%s", msg);
    cr_assert_null(list(NULL, 0, 10, "garbage", &code, msg));
    cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "page_token"), "%s", msg);
    Hodei__V1__JobState bad = 42;
    cr_assert_null(list(&bad, 1, 10, NULL, &code, msg));
    cr_assert_eq(code, HODEI_GRPC_INVALID_ARGUMENT);
    cr_assert(strstr(msg, "states[0]"), "%s", msg);
}

/* ---------------------------------------------- ListJobs paged by bytes */

/* Pages through every job under the running budget; checks each page
 * against the model, every job once and newest first. Returns the first
 * page's job count. */
static int page_all(char (*ids)[37], const size_t *sz, int n, size_t tok, size_t budget)
{
    char token[128] = "", msg[512];
    hodei_grpc_code code;
    int seen = 0, first = -1;
    do {
        Hodei__V1__ListJobsResponse *r = list(NULL, 0, 1000, token, &code, msg);
        cr_assert_eq(code, HODEI_GRPC_OK, "%s", msg);
        int want = edge_page_model(sz, n, seen, tok, budget);
        cr_assert_eq((int)r->n_jobs, want, "page at %d: %zu jobs, the budget %zu holds %d", seen,
                     r->n_jobs, budget, want);
        size_t packed = protobuf_c_message_get_packed_size(&r->base);
        cr_assert(packed <= budget || r->n_jobs == 1, "page at %d: %zu bytes > %zu", seen, packed,
                  budget);
        for (size_t i = 0; i < r->n_jobs; i++, seen++)
            cr_assert_str_eq(r->jobs[i]->id, ids[n - 1 - seen], "position %d", seen);
        if (first < 0)
            first = (int)r->n_jobs;
        snprintf(token, sizeof token, "%s", r->next_page_token);
        cr_assert(token[0] == '\0' || edge_field_bytes(strlen(token)) == tok, "token %s", token);
        cr_assert_eq(token[0] != '\0', seen < n, "a token exactly while jobs remain (%d)", seen);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    } while (token[0]);
    cr_assert_eq(seen, n);
    return first;
}

Test(job_api, list_pages_end_at_the_reply_byte_budget)
{
    /* oldest first; the newest three make the first page, the 50000 one
     * alone is larger than the budget */
    static const size_t script_len[] = {4000, 12000, 2500,  30000, 9000, 50000,
                                        6000, 1200,  15000, 7000,  3000, 22000};
    enum { N = sizeof script_len / sizeof script_len[0] };
    char ids[N][37], msg[512];
    static char script[60000];
    for (int i = 0; i < N; i++) {
        memset(script, '#', script_len[i]);
        memcpy(script, "true ", 5);
        script[script_len[i]] = '\0';
        edge_queue_shell(&edge, script, NULL, ids[i]);
    }

    /* Each job's bytes in a reply, and a token's, as the edge sends them
     * under the default budget (one page of everything). */
    size_t sz[N], tok;
    hodei_grpc_code code;
    Hodei__V1__ListJobsResponse *r = list(NULL, 0, 1000, NULL, &code, msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(r->n_jobs, N);
    cr_assert_str_eq(r->next_page_token, "");
    for (int i = 0; i < N; i++)
        sz[i] = edge_field_bytes(protobuf_c_message_get_packed_size(&r->jobs[i]->base));
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = list(NULL, 0, 1, NULL, &code, msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "%s", msg);
    tok = edge_field_bytes(strlen(r->next_page_token));
    protobuf_c_message_free_unpacked(&r->base, NULL);

    /* A budget exactly the first three jobs and the token: they are one
     * page; the larger job comes alone; every job once, in order. */
    size_t exact = sz[0] + sz[1] + sz[2] + tok;
    cr_assert_gt(sz[N - 1 - 5], exact, "the large job is larger than the budget");
    edge_restart_page_bytes(&stack, &edge, exact);
    cr_assert_eq(page_all(ids, sz, N, tok, exact), 3);

    /* One byte less: the third job goes to the next page. */
    edge_restart_page_bytes(&stack, &edge, exact - 1);
    cr_assert_eq(page_all(ids, sz, N, tok, exact - 1), 2);

    /* page_size still ends a page first; the edge still takes jobs. */
    r = list(NULL, 0, 1, NULL, &code, msg);
    cr_assert_eq(code, HODEI_GRPC_OK, "%s", msg);
    cr_assert_eq(r->n_jobs, 1);
    cr_assert_str_eq(r->jobs[0]->id, ids[N - 1]);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    char extra[37];
    edge_queue_shell(&edge, "true", NULL, extra);
}
