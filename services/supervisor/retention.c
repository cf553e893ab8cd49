/* Retention: what grows without bound is deleted once it is past its age,
 * in batches of supervisor.batch_max rows per kind and tick, each in the
 * tick's own short transaction, rows already locked by someone else passed
 * over (SKIP LOCKED), so no long lock is ever held and running jobs do not
 * wait on it. Kinds: finished jobs (their artifact records and log
 * archives go with them, ON DELETE CASCADE), TERMINATED workers, finished
 * sagas, audit rows. Published outbox rows are the relay's
 * (relay.retention). A retention of 0 keeps that kind forever. The check
 * runs once per retention.interval, and at once again while a batch came
 * back full. */
#include <stdio.h>
#include <stdlib.h>

#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "sup_int.h"

typedef struct {
    const char *kind;
    const char *sql; /* $1 = age in ms, $2 = batch */
    size_t offset;   /* of its retention in sup_config */
} sup_retention_kind;

#define SUP_AGE "now() - $1::bigint * interval '1 millisecond'"

static const sup_retention_kind sup_retention_kinds[] = {
    {"finished jobs",
     "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs"
     " WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMEOUT')"
     " AND created_at < " SUP_AGE " AND finished_at < " SUP_AGE
     " ORDER BY created_at LIMIT $2::int FOR UPDATE SKIP LOCKED)",
     offsetof(sup_config, retention_jobs_ms)},
    {"terminated workers",
     "DELETE FROM workers WHERE id IN (SELECT id FROM workers WHERE state = 'TERMINATED'"
     " AND updated_at < " SUP_AGE " LIMIT $2::int FOR UPDATE SKIP LOCKED)",
     offsetof(sup_config, retention_workers_ms)},
    {"finished sagas",
     "DELETE FROM sagas WHERE id IN (SELECT id FROM sagas"
     " WHERE state IN ('SUCCEEDED', 'FAILED', 'COMPENSATED')"
     " AND updated_at < " SUP_AGE " LIMIT $2::int FOR UPDATE SKIP LOCKED)",
     offsetof(sup_config, retention_sagas_ms)},
    {"audit rows",
     "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < " SUP_AGE
     " ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED)",
     offsetof(sup_config, retention_audit_ms)},
};

hodei_status sup_check_retention(sup *s, int *n_out, hodei_err *err)
{
    int64_t now = hodei_mono_ms();
    *n_out = 0;
    if (!s->retention_more && now < s->next_retention_ms)
        return HODEI_OK;
    s->next_retention_ms = now + s->cfg->retention_interval_ms;
    s->retention_more = false;
    for (size_t i = 0; i < sizeof sup_retention_kinds / sizeof sup_retention_kinds[0]; i++) {
        const sup_retention_kind *k = &sup_retention_kinds[i];
        int64_t age = *(const int64_t *)((const char *)s->cfg + k->offset);
        if (age <= 0)
            continue;
        char age_s[SUP_INT_TEXT_MAX];
        sup_i64_text(age, age_s);
        const char *params[2] = {age_s, s->batch_max_text};
        PGresult *res = NULL;
        hodei_status st = hodei_db_exec(s->conn, k->sql, 2, params, &res, err);
        if (st != HODEI_OK)
            return st;
        int n = (int)strtol(PQcmdTuples(res), NULL, 10);
        PQclear(res);
        if (n > 0)
            sup_note(s, "retention: deleted %d %s", n, k->kind);
        if (n >= s->cfg->batch_max)
            s->retention_more = true;
        *n_out += n;
    }
    return HODEI_OK; /* a full batch (n_out >= batch_max) makes the next tick come at once */
}
