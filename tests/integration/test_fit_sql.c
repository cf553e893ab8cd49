/* The fit rule's two forms against each other (hodei/fit.h): every case of
 * tests/fit_cases.h goes into a real PostgreSQL as a pending job and a
 * worker finishing another job, and the edge's hand-off pick
 * (hodei_handoff_pick_next, HODEI_FIT_SQL) must take the job exactly when
 * the C rule, run on the rows as PostgreSQL prints them, says it fits, and
 * when the table says so. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "../fit_cases.h"
#include "harness.h"
#include "hodei/assign.h"
#include "hodei/db.h"
#include "hodei/fit.h"

static harness_stack stack;
static PGconn *conn;

static const char *WORKER = "0190b1c2-0000-7000-8000-0000000000f1";
static const char *ENDING = "0190b1c2-0000-7000-8000-0000000000e1";
static const char *PENDING = "0190b1c2-0000-7000-8000-0000000000e2";

static void setup(void)
{
    hodei_err err;
    harness_stack_start(&stack);
    cr_assert_eq(hodei_db_connect(stack.db_url, 5000, &conn, &err), HODEI_OK, "%s", err.msg);
}

static void teardown(void)
{
    PQfinish(conn);
    harness_stack_stop(&stack);
}

TestSuite(fit, .init = setup, .fini = teardown, .timeout = 120);

static void exec(const char *sql, int n, const char *const *params)
{
    hodei_err err;
    cr_assert_eq(hodei_db_exec(conn, sql, n, params, NULL, &err), HODEI_OK, "%s: %s", sql, err.msg);
}

static void num(char *out, size_t len, int64_t v)
{
    snprintf(out, len, "%lld", (long long)v);
}

/* The case's worker (BUSY with ENDING) and pending job, alone. */
static void case_rows(const fit_case *c)
{
    char cpu[24], mem[24], sto[24], gpu[24];
    exec("DELETE FROM jobs", 0, NULL);
    exec("DELETE FROM workers", 0, NULL);
    num(cpu, sizeof cpu, c->worker.cpu_millis);
    num(mem, sizeof mem, c->worker.memory_bytes);
    num(sto, sizeof sto, c->worker.storage_bytes);
    num(gpu, sizeof gpu, c->worker.gpu_count);
    const char *w[] = {
        WORKER, c->worker.provider, cpu, mem, sto, gpu, c->worker.architecture, c->worker.json,
        ENDING, c->worker.image};
    exec("INSERT INTO workers (id, provider, state, cpu_millis, memory_bytes, storage_bytes,"
         " gpu_count, architecture, labels, current_job_id, image)"
         " VALUES ($1, $2, 'BUSY', $3, $4, $5, $6, $7, $8::jsonb, $9, $10)",
         10, w);
    const char *e[] = {ENDING, WORKER};
    exec("INSERT INTO jobs (id, state, spec, timeout_ms, attempt, max_attempts, worker_id, epoch)"
         " VALUES ($1, 'RUNNING', '\\x', 60000, 1, 1, $2, 1)",
         2, e);
    num(cpu, sizeof cpu, c->job.cpu_millis);
    num(mem, sizeof mem, c->job.memory_bytes);
    num(sto, sizeof sto, c->job.storage_bytes);
    num(gpu, sizeof gpu, c->job.gpu_count);
    const char *j[] = {PENDING,         cpu,         mem,         sto, gpu, c->job.architecture,
                       c->job.provider, c->job.json, c->job.image};
    exec("INSERT INTO jobs (id, state, spec, timeout_ms, cpu_millis, memory_bytes,"
         " storage_bytes, gpu_count, architecture, provider, constraints, image)"
         " VALUES ($1, 'PENDING', '\\x', 60000, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)",
         9, j);
}

/* The C rule on the rows as PostgreSQL prints them (as the scheduler reads
 * them). */
static bool case_fits_in_c(const fit_case *c)
{
    PGresult *res = NULL;
    hodei_err err;
    cr_assert_eq(
        hodei_db_exec(conn,
                      "SELECT (SELECT constraints::text FROM jobs WHERE state = 'PENDING'),"
                      " (SELECT labels::text FROM workers)",
                      0, NULL, &res, &err),
        HODEI_OK, "%s", err.msg);
    const char *constraints = PQgetvalue(res, 0, 0), *labels = PQgetvalue(res, 0, 1);
    hodei_fit_job j = {.need = {c->job.cpu_millis, c->job.memory_bytes, c->job.storage_bytes,
                                c->job.gpu_count, c->job.architecture},
                       .provider = c->job.provider,
                       .image = c->job.image};
    hodei_fit_worker w = {.cap = {c->worker.cpu_millis, c->worker.memory_bytes,
                                  c->worker.storage_bytes, c->worker.gpu_count,
                                  c->worker.architecture},
                          .provider = c->worker.provider,
                          .image = c->worker.image};
    cr_assert(hodei_fit_labels_parse(constraints, strlen(constraints), &j.constraints), "%s: %s",
              c->name, constraints);
    cr_assert(hodei_fit_labels_parse(labels, strlen(labels), &w.labels), "%s: %s", c->name, labels);
    bool fits = hodei_fit(&j, &w);
    PQclear(res);
    return fits;
}

/* The SQL rule, through the hand-off's real pick (rolled back). */
static bool case_fits_in_sql(const fit_case *c)
{
    hodei_handoff_pick pick;
    hodei_err err;
    cr_assert_eq(hodei_db_begin(conn, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_handoff_pick_next(conn, WORKER, ENDING, &pick, &err), HODEI_OK, "%s: %s",
                 c->name, err.msg);
    hodei_db_rollback(conn);
    cr_assert(pick.ok, "%s: the worker is BUSY with the ending job", c->name);
    cr_assert_str_eq(pick.provider, c->worker.provider, "%s", c->name);
    if (!pick.job_id[0])
        return false;
    cr_assert_str_eq(pick.job_id, PENDING, "%s", c->name);
    return true;
}

Test(fit, the_hand_off_pick_and_the_c_rule_agree_on_every_case)
{
    for (size_t i = 0; i < FIT_CASES_N; i++) {
        const fit_case *c = &fit_cases[i];
        case_rows(c);
        bool in_c = case_fits_in_c(c), in_sql = case_fits_in_sql(c);
        cr_expect_eq(in_c, c->fits, "C rule, case \"%s\"", c->name);
        cr_expect_eq(in_sql, c->fits, "SQL pick, case \"%s\"", c->name);
    }
}

Test(fit, the_pick_skips_a_job_that_is_not_due_or_held_elsewhere)
{
    case_rows(&fit_cases[0]); /* a job that fits */
    exec("UPDATE jobs SET not_before = now() + interval '1 hour' WHERE state = 'PENDING'", 0, NULL);
    cr_assert_not(case_fits_in_sql(&fit_cases[0]), "not due yet");
    exec("UPDATE jobs SET not_before = NULL WHERE state = 'PENDING'", 0, NULL);

    PGconn *other = NULL;
    hodei_err err;
    cr_assert_eq(hodei_db_connect(stack.db_url, 5000, &other, &err), HODEI_OK, "%s", err.msg);
    const char *p[] = {PENDING};
    cr_assert_eq(hodei_db_begin(other, &err), HODEI_OK);
    cr_assert_eq(
        hodei_db_exec(other, "SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", 1, p, NULL, &err),
        HODEI_OK, "%s", err.msg);
    cr_assert_not(case_fits_in_sql(&fit_cases[0]), "held by a scheduler's pass: skipped");
    hodei_db_rollback(other);
    PQfinish(other);
    cr_assert(case_fits_in_sql(&fit_cases[0]));
}
