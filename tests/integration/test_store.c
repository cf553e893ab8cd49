/* libs/store against a real PostgreSQL: the epoch-fenced end of an attempt,
 * retries, and worker transitions, each with its outbox row. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "hodei/assign.h"
#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/store.h"

static harness_stack stack;
static PGconn *conn;

static const char *JOB = "0190b1c2-0000-7000-8000-00000000000a";
static const char *WORKER = "0190b1c2-0000-7000-8000-0000000000b1";
static const char *OTHER = "0190b1c2-0000-7000-8000-0000000000b2";

static void sql(const char *q)
{
    hodei_err err;
    cr_assert_eq(hodei_db_exec(conn, q, 0, NULL, NULL, &err), HODEI_OK, "%s: %s", q, err.msg);
}

static int64_t val(const char *q)
{
    return harness_sql_i64(&stack, q);
}

static void setup(void)
{
    hodei_err err;
    harness_stack_start(&stack);
    cr_assert_eq(hodei_db_connect(stack.db_url, 5000, &conn, &err), HODEI_OK, "%s", err.msg);
    char q[1024];
    snprintf(q, sizeof q,
             "INSERT INTO workers (id, provider, state, current_job_id) VALUES"
             " ('%s', 'process', 'BUSY', '%s'), ('%s', 'process', 'READY', NULL)",
             WORKER, JOB, OTHER);
    sql(q);
    snprintf(q, sizeof q,
             "INSERT INTO jobs (id, state, spec, timeout_ms, attempt, max_attempts, worker_id,"
             " epoch) VALUES ('%s', 'ASSIGNED', '\\x', 60000, 1, 2, '%s', 1)",
             JOB, WORKER);
    sql(q);
}

static void teardown(void)
{
    PQfinish(conn);
    harness_stack_stop(&stack);
}

/* Each case its own database and an emptied NATS of one stack (tests/harness). */
HARNESS_SHARED_SERVERS()

TestSuite(store, .init = setup, .fini = teardown, .timeout = 120);

static hodei_status end_attempt(Hodei__V1__JobState state, int64_t epoch, const char *worker,
                                Hodei__V1__JobState *final, hodei_err *err)
{
    const hodei_attempt e = {.job_id = JOB,
                             .worker_id = worker,
                             .epoch = epoch,
                             .state = state,
                             .exit_code =
                                 state == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED ? 0 : 3,
                             .error = ""};
    hodei_status st = hodei_db_begin(conn, err);
    cr_assert_eq(st, HODEI_OK);
    st = hodei_store_attempt_end_free(conn, &e, final, err);
    if (st == HODEI_OK)
        cr_assert_eq(hodei_db_commit(conn, err), HODEI_OK, "%s", err->msg);
    else
        hodei_db_rollback(conn);
    return st;
}

Test(store, started_then_failed_with_attempts_left_requeues_with_backoff)
{
    hodei_err err;
    cr_assert_eq(hodei_store_job_started(conn, JOB, WORKER, 1, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(
        val("SELECT count(*) FROM jobs WHERE state = 'RUNNING' AND started_at IS NOT NULL"), 1);
    cr_assert_eq(hodei_store_job_started(conn, JOB, WORKER, 1, &err), HODEI_OK,
                 "a repeated ack is harmless");

    Hodei__V1__JobState final = 0;
    /* Measured against the clock before the call, not against now(): on a
     * loaded machine the check may run after the backoff has passed. */
    int64_t before_ms = val("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint");
    cr_assert_eq(end_attempt(HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 1, WORKER, &final, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(final, HODEI__V1__JOB_STATE__JOB_STATE_PENDING);
    char nb[256];
    snprintf(nb, sizeof nb,
             "SELECT count(*) FROM jobs WHERE state = 'PENDING' AND worker_id IS NULL"
             " AND not_before >= to_timestamp(%" PRId64 " / 1000.0)"
             " + %" PRId64 " * interval '1 millisecond'",
             before_ms, hodei_retry_backoff_ms(1));
    cr_assert_eq(val(nb), 1, "re-queued, not schedulable before its backoff");
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobQueued'"), 1);
    char q[256];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM workers WHERE id = '%s' AND state = 'READY'"
             " AND current_job_id IS NULL AND idle_since IS NOT NULL",
             WORKER);
    cr_assert_eq(val(q), 1, "the worker is free again");
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"), 1);
}

Test(store, stale_epoch_or_other_worker_is_refused_and_changes_nothing)
{
    hodei_err err;
    cr_assert_eq(end_attempt(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 2, WORKER, NULL, &err),
                 HODEI_ERR_PRECONDITION);
    cr_assert(strstr(err.msg, "stale"), "%s", err.msg);
    cr_assert_eq(end_attempt(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 1, OTHER, NULL, &err),
                 HODEI_ERR_PRECONDITION);
    cr_assert_eq(hodei_store_job_started(conn, JOB, OTHER, 1, &err), HODEI_ERR_PRECONDITION);
    cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'ASSIGNED'"), 1);
    cr_assert_eq(val("SELECT count(*) FROM outbox"), 0);
}

Test(store, success_ends_the_job_once)
{
    hodei_err err;
    Hodei__V1__JobState final = 0;
    cr_assert_eq(hodei_store_job_started(conn, JOB, WORKER, 1, &err), HODEI_OK);
    cr_assert_eq(end_attempt(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 1, WORKER, &final, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(final, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED' AND exit_code = 0"
                     " AND finished_at IS NOT NULL"),
                 1);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 1);
    /* The same result again (a worker re-sending after a reconnect) is refused. */
    cr_assert_eq(end_attempt(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, 1, WORKER, NULL, &err),
                 HODEI_ERR_PRECONDITION);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 1);
}

Test(store, spent_attempts_or_cancel_end_the_job)
{
    hodei_err err;
    Hodei__V1__JobState final = 0;
    sql("UPDATE jobs SET attempt = 2");
    cr_assert_eq(end_attempt(HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT, 1, WORKER, &final, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(final, HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT);
    cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'TIMEOUT' AND exit_code = 3"), 1);

    /* A cancelled job is not retried even with attempts left. */
    sql("UPDATE jobs SET state = 'RUNNING', attempt = 1, cancel_requested = true,"
        " finished_at = NULL");
    cr_assert_eq(end_attempt(HODEI__V1__JOB_STATE__JOB_STATE_FAILED, 1, WORKER, &final, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(final, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
}

Test(store, worker_transitions_follow_the_state_machine)
{
    hodei_err err;
    const hodei_worker_state_set from_ready = HODEI_WSET_READY;
    cr_assert_eq(hodei_store_worker_transition(
                     conn, OTHER, from_ready, HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_store_worker_transition(conn, OTHER, from_ready,
                                               HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING,
                                               &err),
                 HODEI_ERR_PRECONDITION, "it is DRAINING now, not READY");
    const hodei_worker_state_set from_draining = HODEI_WSET_DRAINING;
    cr_assert_eq(hodei_store_worker_transition(conn, OTHER, from_draining,
                                               HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY, &err),
                 HODEI_ERR_PRECONDITION, "DRAINING -> BUSY is not a legal transition");
    cr_assert_eq(
        hodei_store_worker_transition(conn, "0190b1c2-0000-7000-8000-0000000000ff", from_ready,
                                      HODEI__V1__WORKER_STATE__WORKER_STATE_DRAINING, &err),
        HODEI_ERR_NOT_FOUND);
    cr_assert_eq(hodei_event_worker_destroy_requested(HODEI_OUTBOX_WRITE(conn), OTHER, "process",
                                                      "idle", &err),
                 HODEI_OK);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'WorkerDestroyRequested'"
                     " AND subject = 'hodei.evt.provision.destroy'"),
                 1);
}

Test(store, retry_backoff_doubles_to_a_cap)
{
    cr_assert_eq(hodei_retry_backoff_ms(1), HODEI_RETRY_BACKOFF_BASE_MS);
    cr_assert_eq(hodei_retry_backoff_ms(2), 2 * HODEI_RETRY_BACKOFF_BASE_MS);
    cr_assert_eq(hodei_retry_backoff_ms(50), HODEI_RETRY_BACKOFF_MAX_MS);
}

Test(store, a_worker_whose_result_ended_nothing_is_freed_only_from_that_job)
{
    hodei_err err;
    bool released = true;
    /* BUSY with another job: stays BUSY. */
    cr_assert_eq(hodei_store_worker_release(conn, WORKER, "0190b1c2-0000-7000-8000-0000000000cc",
                                            &released, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_not(released);
    cr_assert_eq(val("SELECT count(*) FROM workers WHERE state = 'BUSY'"), 1);
    /* The supervisor ended the attempt (worker left BUSY); the late result
     * then frees it. */
    sql("UPDATE jobs SET state = 'TIMEOUT', finished_at = now()");
    cr_assert_eq(hodei_store_worker_release(conn, WORKER, JOB, &released, &err), HODEI_OK, "%s",
                 err.msg);
    cr_assert(released);
    cr_assert_eq(val("SELECT count(*) FROM workers WHERE state = 'BUSY'"), 0);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"), 1);
    /* Again: nothing to do. */
    cr_assert_eq(hodei_store_worker_release(conn, WORKER, JOB, &released, &err), HODEI_OK);
    cr_assert_not(released);
}

/* ------------------------------------------------------------ hand-off */

static const char *NEXT = "0190b1c2-0000-7000-8000-00000000000b";

static void next_job_pending(void)
{
    char q[256];
    snprintf(q, sizeof q,
             "INSERT INTO jobs (id, state, spec, timeout_ms, epoch) VALUES"
             " ('%s', 'PENDING', '\\x0a0178', 60000, 4)",
             NEXT);
    sql(q);
}

static hodei_status handoff(Hodei__V1__JobState state, hodei_handoff *h, hodei_err *err)
{
    const hodei_attempt a = {.job_id = JOB,
                             .worker_id = WORKER,
                             .epoch = 1,
                             .state = state,
                             .exit_code = 0,
                             .error = ""};
    cr_assert_eq(hodei_db_begin(conn, err), HODEI_OK);
    hodei_status st = hodei_handoff_result(conn, &a, h, err);
    if (st == HODEI_OK)
        cr_assert_eq(hodei_db_commit(conn, err), HODEI_OK, "%s", err->msg);
    else
        hodei_db_rollback(conn);
    return st;
}

/* The next job is the worker's, at epoch + 1, with its JobAssigned and no
 * WorkerReady; the run row says so. */
static void handed_to_worker(const hodei_handoff *h)
{
    char q[512];
    cr_assert(h->run, "a job was handed");
    cr_assert_str_eq(PQgetvalue(h->run, 0, HODEI_RUN_COL_JOB_ID), NEXT);
    cr_assert_str_eq(PQgetvalue(h->run, 0, HODEI_RUN_COL_EPOCH), "5");
    cr_assert_str_eq(PQgetvalue(h->run, 0, HODEI_RUN_COL_SPEC_HEX), "0a0178", "RunJob's spec");
    snprintf(q, sizeof q,
             "SELECT count(*) FROM jobs j JOIN workers w ON w.current_job_id = j.id"
             " WHERE j.id = '%s' AND j.state = 'ASSIGNED' AND j.epoch = 5 AND j.attempt = 1"
             " AND j.worker_id = w.id AND w.id = '%s' AND w.state = 'BUSY'",
             NEXT, WORKER);
    cr_assert_eq(val(q), 1);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobAssigned'"
                     " AND subject LIKE 'hodei.evt.job.assigned.%'"),
                 1);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"), 0);
}

Test(store, a_success_hands_the_worker_its_next_job_in_one_statement)
{
    hodei_err err;
    hodei_handoff h;
    next_job_pending();
    cr_assert_eq(handoff(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, &h, &err), HODEI_OK, "%s",
                 err.msg);
    cr_assert_eq(h.final, HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED);
    handed_to_worker(&h);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 1);
    PQclear(h.run);
}

Test(store, a_failure_hands_the_next_job_through_the_pass_statement)
{
    hodei_err err;
    hodei_handoff h;
    next_job_pending();
    sql("UPDATE jobs SET attempt = 2 WHERE state = 'ASSIGNED'"); /* no attempt left */
    cr_assert_eq(handoff(HODEI__V1__JOB_STATE__JOB_STATE_FAILED, &h, &err), HODEI_OK, "%s",
                 err.msg);
    cr_assert_eq(h.final, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    handed_to_worker(&h);
    PQclear(h.run);
}

Test(store, with_nothing_waiting_the_worker_goes_ready)
{
    hodei_err err;
    hodei_handoff h;
    cr_assert_eq(handoff(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, &h, &err), HODEI_OK, "%s",
                 err.msg);
    cr_assert_null(h.run);
    cr_assert_eq(val("SELECT count(*) FROM workers WHERE state = 'READY'"), 2);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'WorkerReady'"), 1);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 1);
}

Test(store, a_stale_result_hands_nothing)
{
    hodei_err err;
    hodei_handoff h;
    next_job_pending();
    sql("UPDATE jobs SET epoch = 2 WHERE state = 'ASSIGNED'");
    cr_assert_eq(handoff(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, &h, &err),
                 HODEI_ERR_PRECONDITION);
    cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'PENDING'"), 1);
    cr_assert_eq(val("SELECT count(*) FROM outbox"), 0);
}

Test(store, the_pass_statement_applies_only_pairs_still_free)
{
    hodei_err err;
    hodei_assign_set set;
    PGresult *rows = NULL;
    next_job_pending();
    hodei_assign_set_init(&set, 1 << 20);
    cr_assert_eq(hodei_assign_set_add(&set, NEXT, OTHER, 3, &err), HODEI_OK); /* epoch moved on */
    cr_assert_eq(hodei_assign_run(conn, &set, false, &rows, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(PQntuples(rows), 0);
    PQclear(rows);
    hodei_assign_set_reset(&set);
    cr_assert_eq(hodei_assign_set_add(&set, NEXT, OTHER, 4, &err), HODEI_OK);
    cr_assert_eq(hodei_assign_run(conn, &set, false, &rows, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(PQntuples(rows), 1);
    cr_assert_str_eq(PQgetvalue(rows, 0, HODEI_RUN_COL_SPEC_HEX), "", "not asked for");
    PQclear(rows);
    hodei_assign_set_fini(&set);
    cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'ASSIGNED' AND epoch = 5"), 1);
    cr_assert_eq(val("SELECT count(*) FROM workers WHERE state = 'BUSY'"), 2);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobAssigned'"), 1);
}

/* The supervisor's way with a silent worker: the attempt ends FAILED
 * "worker lost" (re-queued: attempts are left) and the worker is retired. */
static void lose_worker(void)
{
    hodei_err err;
    Hodei__V1__JobState final = 0;
    const hodei_attempt a = {.job_id = JOB,
                             .worker_id = WORKER,
                             .epoch = 1,
                             .state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED,
                             .exit_code = -1,
                             .error = "worker lost"};
    cr_assert_eq(hodei_db_begin(conn, &err), HODEI_OK);
    cr_assert_eq(hodei_store_attempt_end(conn, &a, &final, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_store_worker_retire(
                     conn, WORKER, HODEI_WSET_READY | HODEI_WSET_BUSY | HODEI_WSET_DRAINING,
                     HODEI__V1__WORKER_STATE__WORKER_STATE_LOST, "worker lost", &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_db_commit(conn, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(final, HODEI__V1__JOB_STATE__JOB_STATE_PENDING, "re-queued for its retry");
}

static bool late(Hodei__V1__JobState state, const char *worker, int64_t epoch)
{
    hodei_err err;
    bool ended = false;
    const hodei_attempt a = {.job_id = JOB,
                             .worker_id = worker,
                             .epoch = epoch,
                             .state = state,
                             .exit_code =
                                 state == HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED ? 0 : 3,
                             .error = ""};
    cr_assert_eq(hodei_store_attempt_late_success(conn, &a, &ended, &err), HODEI_OK, "%s", err.msg);
    return ended;
}

Test(store, a_late_success_of_a_worker_taken_for_lost_ends_the_job_before_its_retry)
{
    lose_worker();
    cr_assert(!late(HODEI__V1__JOB_STATE__JOB_STATE_FAILED, WORKER, 1),
              "a late failure leaves the retry to run");
    cr_assert(!late(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, OTHER, 1),
              "only the worker that held the attempt");
    cr_assert(!late(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, WORKER, 2), "only its own epoch");
    cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'PENDING' AND worker_id IS NULL"), 1,
                 "refused claims change nothing");
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 0);

    cr_assert(late(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, WORKER, 1));
    char q[512];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED' AND worker_id = '%s'"
             " AND epoch = 1 AND exit_code = 0 AND error IS NULL AND finished_at IS NOT NULL",
             WORKER);
    cr_assert_eq(val(q), 1, "the job ends with the late result, at its epoch");
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 1);
    cr_assert(!late(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, WORKER, 1), "once");
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 1);
}

Test(store, a_late_success_after_the_retry_was_handed_out_or_cancelled_changes_nothing)
{
    lose_worker();
    char q[512];
    snprintf(q, sizeof q,
             "UPDATE jobs SET state = 'ASSIGNED', worker_id = '%s', epoch = 2, attempt = 2", OTHER);
    sql(q);
    cr_assert(!late(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, WORKER, 1));
    snprintf(q, sizeof q,
             "SELECT count(*) FROM jobs WHERE state = 'ASSIGNED' AND worker_id = '%s'"
             " AND epoch = 2",
             OTHER);
    cr_assert_eq(val(q), 1, "the retry keeps its worker");

    sql("UPDATE jobs SET state = 'PENDING', worker_id = NULL, epoch = 1, attempt = 1,"
        " cancel_requested = true");
    cr_assert(!late(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED, WORKER, 1),
              "a cancel asked for meanwhile is not overridden");
    cr_assert_eq(val("SELECT count(*) FROM jobs WHERE state = 'PENDING'"), 1);
    cr_assert_eq(val("SELECT count(*) FROM outbox WHERE event_type = 'JobFinished'"), 0);
}
