/* One tick of the active supervisor: each check lists its candidates, then
 * judges each row in a transaction of its own (sup_judge_each; the warm
 * pool: one transaction, a savepoint per provider), and the action lines
 * are logged only once their transaction committed. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hodei/db.h"
#include "hodei/log.h"
#include "sup_int.h"

typedef struct {
    const char *name;
    hodei_status (*run)(sup *s, int *n_out, hodei_err *err);
    const char *metric; /* counter of the rows it acted on, for GET /metrics */
    const char *help;
} sup_check;

/* Lost workers first, so their jobs end "worker lost" rather than as
 * orphans; the warm pool last, so it counts what this tick removed. */
static const sup_check sup_checks[] = {
    {"lost workers", sup_check_lost_workers, "hodei_supervisor_workers_lost_total",
     "Workers marked LOST (silent past supervisor.heartbeat_timeout)."},
    {"assign timeouts", sup_check_assign_timeouts, "hodei_supervisor_assign_timeouts_total",
     "Assignments re-queued because their worker never acknowledged them."},
    {"job timeouts", sup_check_job_timeouts, "hodei_supervisor_job_timeouts_total",
     "Running jobs ended TIMEOUT."},
    {"orphaned jobs", sup_check_orphaned_jobs, "hodei_supervisor_orphaned_jobs_total",
     "Jobs whose worker was gone, ended or re-queued."},
    {"registration timeouts", sup_check_registration,
     "hodei_supervisor_registration_timeouts_total",
     "Workers destroyed because they never registered."},
    {"idle ttl", sup_check_idle, "hodei_supervisor_idle_retired_total",
     "READY workers retired after their provider's idle TTL."},
    {"warm pool", sup_check_warm_pool, "hodei_supervisor_warm_pool_fills_total",
     "Providers whose warm pool was topped up."},
    {"retention", sup_check_retention, "hodei_supervisor_retention_deleted_total",
     "Rows deleted past their retention (jobs, terminated workers, sagas, audit)."},
};
#define SUP_CHECKS_LEN (sizeof sup_checks / sizeof sup_checks[0])
_Static_assert(SUP_CHECKS_LEN <= SUP_CHECKS_MAX, "raise SUP_CHECKS_MAX");

void sup_metrics_register(sup *s)
{
    for (size_t i = 0; i < SUP_CHECKS_LEN; i++)
        s->m_checks[i] = hodei_daemon_counter(s->d, sup_checks[i].metric, sup_checks[i].help);
    s->m_active = hodei_daemon_gauge(s->d, "hodei_supervisor_active",
                                     "1 while this supervisor holds the lock and runs the checks.");
}

void sup_i64_text(int64_t v, char out[SUP_INT_TEXT_MAX])
{
    snprintf(out, SUP_INT_TEXT_MAX, "%" PRId64, v);
}

void sup_note(sup *s, const char *fmt, ...)
{
    char line[SUP_NOTE_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t len = s->notes.len;
    if (!hodei_buf_puts(&s->notes, line) || !hodei_buf_putc(&s->notes, '\n')) {
        s->notes.len = len; /* keep whole lines only */
        if (s->notes.data)
            s->notes.data[len] = '\0';
        s->notes_dropped++;
    }
}

static void sup_notes_reset(sup *s)
{
    hodei_buf_reset(&s->notes);
    s->notes_mark = 0;
    s->notes_dropped = 0;
}

/* Logs the action lines of a committed transaction, one log line each. */
static void sup_notes_flush(sup *s)
{
    const char *p = s->notes.data;

    while (p && *p) {
        size_t n = strcspn(p, "\n");
        HLOG_INFO("%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    if (s->notes_dropped > 0)
        HLOG_INFO("%" PRId64 " more actions in the same transaction (lines not kept)",
                  s->notes_dropped);
    sup_notes_reset(s);
}

static hodei_status sup_item_begin(sup *s, hodei_err *err)
{
    s->notes_mark = s->notes.len;
    return hodei_db_exec(s->conn, "SAVEPOINT sup_item", 0, NULL, NULL, err);
}

static hodei_status sup_item_end(sup *s, const char *what, hodei_status item_st,
                                 const hodei_err *item_err, hodei_err *err)
{
    if (item_st == HODEI_OK)
        return hodei_db_exec(s->conn, "RELEASE SAVEPOINT sup_item", 0, NULL, NULL, err);
    if (hodei_db_status_broken(item_st)) {
        *err = *item_err;
        return item_st;
    }
    s->notes.len = s->notes_mark; /* its actions are undone: so are their lines */
    if (s->notes.data)
        s->notes.data[s->notes.len] = '\0';
    HLOG_WARN("%s: skipped this tick, undone: %s (%s)", what, item_err->msg,
              hodei_status_str(item_st));
    return hodei_db_exec(s->conn, "ROLLBACK TO SAVEPOINT sup_item", 0, NULL, NULL, err);
}

hodei_status sup_rows_each(sup *s, const char *what, const PGresult *res, sup_row_fn one,
                           hodei_err *err)
{
    hodei_status st = HODEI_OK;

    for (int i = 0; st == HODEI_OK && i < PQntuples(res); i++) {
        hodei_err item_err = {0};
        char label[SUP_NOTE_LINE_MAX];
        if ((st = sup_item_begin(s, err)) != HODEI_OK)
            break;
        hodei_status item = one(s, res, i, &item_err);
        snprintf(label, sizeof label, "%s %s", what, hodei_db_get_str(res, i, SUP_ROW_NAME));
        st = sup_item_end(s, label, item, &item_err, err);
        if (item != HODEI_OK)
            s->items_failed++;
    }
    return st;
}

hodei_status sup_select_each(sup *s, const char *what, const char *sql, const char *setting,
                             sup_row_fn one, int *n_out, hodei_err *err)
{
    const char *params[] = {setting ? setting : s->batch_max_text, s->batch_max_text};
    PGresult *res = NULL;

    hodei_status st = hodei_db_exec(s->conn, sql, setting ? 2 : 1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    *n_out = PQntuples(res);
    st = sup_rows_each(s, what, res, one, err);
    PQclear(res);
    return st;
}

/* One candidate judged and acted on in its own transaction (sup_judge_each);
 * a lost conflict runs it again. Returns a status only for a broken
 * connection. */
static hodei_status sup_judge_one(sup *s, const char *what, const char *one_sql,
                                  const char *const *params, int n_params, sup_row_fn one,
                                  hodei_err *err)
{
    hodei_err item_err = {0};
    hodei_status item;
    bool found;
    int tries = 0;
    do {
        PGresult *res = NULL;
        found = false;
        sup_notes_reset(s);
        item = hodei_db_begin(s->conn, &item_err);
        if (item == HODEI_OK)
            item = hodei_db_exec(s->conn, one_sql, n_params, params, &res, &item_err);
        if (item == HODEI_OK && PQntuples(res) == 1) {
            found = true;
            item = one(s, res, 0, &item_err);
        }
        PQclear(res);
        if (item == HODEI_OK)
            item = hodei_db_commit(s->conn, &item_err);
        else
            hodei_db_rollback(s->conn);
    } while (hodei_db_conflict_retry(item, &tries));
    if (item == HODEI_OK) {
        sup_notes_flush(s);
        if (!found)
            s->items_passed++;
        return HODEI_OK;
    }
    sup_notes_reset(s); /* its actions are undone: so are their lines */
    if (hodei_db_status_broken(item)) {
        *err = item_err;
        return item;
    }
    s->items_failed++;
    HLOG_WARN("%s %s: skipped this tick, undone: %s (%s)", what, params[n_params - 1], item_err.msg,
              hodei_status_str(item));
    return HODEI_OK;
}

hodei_status sup_judge_each(sup *s, const char *what, const char *sql, const char *one_sql,
                            const char *setting, sup_row_fn one, int *n_out, hodei_err *err)
{
    const char *params[3] = {setting ? setting : s->batch_max_text, s->batch_max_text, NULL};
    int n_params = setting ? 2 : 1;
    PGresult *res = NULL;

    hodei_status st = hodei_db_exec(s->conn, sql, n_params, params, &res, err);
    if (st != HODEI_OK)
        return st;
    *n_out = PQntuples(res);
    /* what the check did so far (a gate, a prune) commits before the rows */
    if ((st = hodei_db_commit(s->conn, err)) == HODEI_OK)
        sup_notes_flush(s);
    for (int i = 0; st == HODEI_OK && i < PQntuples(res) && !hodei_daemon_stopping(s->d); i++) {
        params[n_params] = hodei_db_get_str(res, i, SUP_ROW_NAME);
        st = sup_judge_one(s, what, one_sql, params, n_params + 1, one, err);
    }
    PQclear(res);
    if (st == HODEI_OK)
        st = hodei_db_begin(s->conn, err);
    return st;
}

/* A failed check is logged when its error first appears (or changes), not
 * on every tick while it lasts. */
static void sup_check_failed(sup *s, size_t i, const hodei_err *e)
{
    if (strcmp(s->last_err[i], e->msg) == 0)
        return;
    snprintf(s->last_err[i], sizeof s->last_err[i], "%s", e->msg);
    HLOG_WARN("check %s failed, rolled back, retrying next tick: %s (%s)", sup_checks[i].name,
              e->msg, hodei_status_str(e->code));
}

static void sup_check_ok(sup *s, size_t i)
{
    sup_notes_flush(s);
    if (!s->last_err[i][0])
        return;
    HLOG_INFO("check %s works again", sup_checks[i].name);
    s->last_err[i][0] = '\0';
}

/* One check in one transaction. Returns a status only for a broken connection. */
static hodei_status sup_check_run(sup *s, size_t i, bool *more, hodei_err *err)
{
    int n = 0;
    bool committing = false;
    hodei_status st;

    sup_notes_reset(s);
    s->items_failed = 0;
    s->items_passed = 0;
    st = hodei_db_begin(s->conn, err);
    if (st == HODEI_OK)
        st = sup_checks[i].run(s, &n, err);
    if (st == HODEI_OK) {
        committing = true;
        st = hodei_db_commit(s->conn, err);
    }
    if (st == HODEI_OK) {
        sup_check_ok(s, i);
        if (n > s->items_failed + s->items_passed)
            hodei_metric_add(s->m_checks[i], (uint64_t)(n - s->items_failed - s->items_passed));
        /* a full batch may hide more rows; one with failures waits a tick */
        *more = *more || (n >= s->cfg->batch_max && s->items_failed == 0 && s->items_passed < n);
        return HODEI_OK;
    }
    if (s->notes.len > 0)
        HLOG_WARN("check %s: its actions are %s", sup_checks[i].name,
                  committing && hodei_db_status_broken(st)
                      ? "in doubt (connection lost during commit)"
                      : "rolled back");
    sup_notes_reset(s);
    if (hodei_db_status_broken(st))
        return st;
    hodei_db_rollback(s->conn);
    sup_check_failed(s, i, err);
    return HODEI_OK;
}

hodei_status sup_tick(sup *s, bool *more, hodei_err *err)
{
    *more = false;
    for (size_t i = 0; i < SUP_CHECKS_LEN && !hodei_daemon_stopping(s->d); i++) {
        hodei_status st = sup_check_run(s, i, more, err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}
