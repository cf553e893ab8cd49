/* Private to saga.c and saga_db.c: one provisioning saga as the runner
 * holds it, and the SQL that moves its row. Every update is fenced by the
 * lease (lease_owner = this instance): a runner that lost its lease changes
 * nothing and drops the saga. */
#ifndef HODEI_PROVISIONER_SAGA_INT_H
#define HODEI_PROVISIONER_SAGA_INT_H

#include <stdbool.h>

#include "prov.h"

#define SAGA_STEP_MAX 16
#define SAGA_CLAIM_MAX 64 /* sagas advanced per round */

/* Steps, as stored in sagas.step. */
#define SAGA_STEP_TOKEN "token"     /* RUNNING: mint a token next */
#define SAGA_STEP_CREATE "create"   /* RUNNING: token stored; create_worker next (or adopt) */
#define SAGA_STEP_WAIT "wait"       /* RUNNING: worker CONNECTING; waiting for READY */
#define SAGA_STEP_DESTROY "destroy" /* COMPENSATING: token revoked; destroy, then TERMINATED */
#define SAGA_STEP_DONE "done"

typedef struct {
    char id[HODEI_ID_BUF];
    char worker_id[HODEI_ID_BUF];
    char provider[PROV_NAME_MAX];
    char ref[PROV_REF_MAX];
    char step[SAGA_STEP_MAX];
    char prev_owner[128];
    char error[PROV_ERROR_MAX];
    bool compensating;
    bool past_deadline;
} prov_saga;

/* Renews this instance's leases and takes over expired ones (up to cap);
 * *n_out = how many sagas were filled in. */
hodei_status saga_db_claim(prov *p, PGconn *conn, prov_saga *out, int cap, int *n_out,
                           hodei_err *err);
/* Moves the saga to step; deadline_ms > 0 also sets deadline_at = now() +
 * deadline_ms; ref non-NULL records data.provider_ref. PRECONDITION when the
 * lease is lost. */
hodei_status saga_db_step(prov *p, PGconn *conn, const prov_saga *s, const char *step,
                          int64_t deadline_ms, const char *ref, hodei_err *err);
/* RUNNING -> COMPENSATING at step "destroy", with the error. */
hodei_status saga_db_compensating(prov *p, PGconn *conn, const prov_saga *s, const char *error,
                                  hodei_err *err);
/* The end: state SUCCEEDED or COMPENSATED, finished, lease released. */
hodei_status saga_db_finish(prov *p, PGconn *conn, const prov_saga *s, const char *state,
                            hodei_err *err);
/* Hands this instance's leases back (clean stop: another replica resumes at once). */
void saga_db_release_leases(prov *p);

#endif
