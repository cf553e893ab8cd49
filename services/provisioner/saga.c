/* The provisioning saga, one worker at a time:
 *
 *   RUNNING token   -> mint a token (hash stored), deadline = now() + TTL  -> create
 *   RUNNING create  -> the provider already runs it? adopt it (a provisioner
 *                      died after create_worker); else mint a fresh token
 *                      (the old one is revoked: only its hash was kept) and
 *                      create_worker -> provider_ref, worker CONNECTING   -> wait
 *   RUNNING wait    -> worker READY/BUSY/DRAINING -> SUCCEEDED; deadline
 *                      passed, worker gone or worker taken elsewhere -> compensate
 *   COMPENSATING destroy -> (token revoked, worker TERMINATING committed
 *                      first) driver destroy, worker TERMINATED, ProvisionFailed,
 *                      COMPENSATED
 *
 * Each step's state is committed before the next step runs, so a runner
 * killed anywhere leaves a row another runner (or itself after a restart)
 * resumes once the lease has expired. The runner thread advances every
 * saga it leases each round (provisioner.saga_poll, or at once when kicked). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "hodei/events.h"
#include "hodei/log.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/worker_state.h"
#include "saga_int.h"

#define SAGA_WS(x) HODEI__V1__WORKER_STATE__WORKER_STATE_##x
#define SAGA_WORKER_GONE SAGA_WS(UNSPECIFIED) /* no row */

/* reason: a word of hodei_provisioner_sagas_failed_total's reason label. */
static void saga_fail(prov *p, PGconn *conn, prov_saga *s, const char *reason, const char *why);

/* ---------------------------------------------------------------- worker row */

enum { SAGA_ROW_STATE, SAGA_ROW_SCOPE };

/* The worker's state (SAGA_WORKER_GONE when there is no row) and, when
 * scope is not NULL, the scope that made it ("" = none recorded). */
static hodei_status saga_worker_state(PGconn *conn, const char *worker_id, bool lock,
                                      Hodei__V1__WorkerState *state, char *scope, hodei_err *err)
{
    const char *params[1] = {worker_id};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(
        conn,
        lock ? "SELECT state, coalesce(provider_scope, '') FROM workers"
               " WHERE id = $1 FOR UPDATE"
             : "SELECT state, coalesce(provider_scope, '') FROM workers WHERE id = $1",
        1, params, &res, err);
    if (st == HODEI_OK) {
        bool row = PQntuples(res) > 0;
        *state = SAGA_WORKER_GONE;
        if (row)
            hodei_worker_state_parse(hodei_db_get_str(res, 0, SAGA_ROW_STATE), state);
        if (scope)
            hodei_strlcpy(scope, row ? hodei_db_get_str(res, 0, SAGA_ROW_SCOPE) : "",
                          PROV_SCOPE_MAX);
    }
    PQclear(res);
    return st;
}

static bool saga_registered(Hodei__V1__WorkerState state)
{
    return hodei_worker_state_in(state, HODEI_WSET_READY | HODEI_WSET_BUSY | HODEI_WSET_DRAINING);
}

/* For messages: the state's name, or "gone". */
static const char *saga_state_shown(Hodei__V1__WorkerState state)
{
    return state == SAGA_WORKER_GONE ? "gone" : hodei_worker_state_name(state);
}

/* ---------------------------------------------------------------- token + create */

typedef struct {
    prov *p;
    prov_saga *s;
    char otp[PROV_TOKEN_HEX_BUF];
    Hodei__V1__WorkerState state;
} saga_mint_ctx;

static hodei_status saga_mint_tx(PGconn *conn, void *ctx, hodei_err *err)
{
    saga_mint_ctx *m = ctx;
    hodei_status st = saga_worker_state(conn, m->s->worker_id, true, &m->state, NULL, err);
    if (st != HODEI_OK)
        return st;
    if (m->state != SAGA_WS(CREATING))
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "worker is %s, not CREATING",
                             saga_state_shown(m->state));
    st = prov_token_mint(conn, m->s->worker_id, m->s->provider, m->p->cfg->token_ttl_ms, m->otp,
                         err);
    if (st == HODEI_OK)
        st = saga_db_step(m->p, conn, m->s, SAGA_STEP_CREATE, m->p->cfg->token_ttl_ms, NULL, err);
    return st;
}

typedef struct {
    prov *p;
    prov_saga *s;
    const char *ref;
    const char *scope; /* the driver's (provider.h, "Scope") */
} saga_connecting_ctx;

/* CREATING -> CONNECTING with the provider_ref and the scope that made it.
 * A worker that registered before this commit (the edge moved it on
 * itself) keeps its state. */
static hodei_status saga_connecting_tx(PGconn *conn, void *ctx, hodei_err *err)
{
    saga_connecting_ctx *c = ctx;
    Hodei__V1__WorkerState state;
    const char *params[3] = {c->s->worker_id, c->ref, c->scope};
    hodei_status st = saga_worker_state(conn, c->s->worker_id, true, &state, NULL, err);
    if (st != HODEI_OK)
        return st;
    if (state == SAGA_WS(CREATING))
        st = hodei_store_worker_transition(conn, c->s->worker_id, HODEI_WSET_CREATING,
                                           SAGA_WS(CONNECTING), err);
    else if (state != SAGA_WS(CONNECTING) && !saga_registered(state))
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "worker became %s while being created",
                             saga_state_shown(state));
    if (st == HODEI_OK)
        st = hodei_db_exec(conn,
                           "UPDATE workers SET provider_ref = $2, provider_scope = nullif($3, '')"
                           " WHERE id = $1",
                           3, params, NULL, err);
    if (st == HODEI_OK)
        st = saga_db_step(c->p, conn, c->s, SAGA_STEP_WAIT, 0, c->ref, err);
    return st;
}

static void saga_wait(prov *p, PGconn *conn, prov_saga *s);

/* Records the running worker: CREATING -> CONNECTING, step wait. */
static void saga_record_created(prov *p, PGconn *conn, prov_saga *s, const prov_driver *drv,
                                const char *ref)
{
    hodei_err err = {0};
    saga_connecting_ctx c = {p, s, ref, drv->scope};
    hodei_status st = prov_tx(conn, saga_connecting_tx, &c, &err);
    hodei_strlcpy(s->ref, ref, sizeof s->ref);
    if (st == HODEI_OK) {
        HLOG_INFO("saga %s: worker %s started (provider %s, ref %s); waiting for registration",
                  s->id, s->worker_id, s->provider, ref);
        hodei_metric_add(hodei_metric_with(p->m.started, s->provider), 1);
        hodei_strlcpy(s->step, SAGA_STEP_WAIT, sizeof s->step);
        saga_wait(p, conn, s); /* it may have registered already */
        return;
    }
    if (st == HODEI_ERR_PRECONDITION || st == HODEI_ERR_NOT_FOUND)
        saga_fail(p, conn, s, "superseded", err.msg); /* e.g. terminated meanwhile: undo it */
    else
        HLOG_WARN("saga %s: recording worker %s: %s (retrying)", s->id, s->worker_id, err.msg);
}

/* A worker already running under this id (we died after creating it). */
static bool saga_adopt(prov *p, PGconn *conn, prov_saga *s, prov_driver *drv)
{
    prov_worker_status ws = PROV_WORKER_GONE;
    char ref[PROV_REF_MAX] = "";
    hodei_err err = {0};
    if (drv->ops->get_status(drv, s->worker_id, "", &ws, ref, &err) != HODEI_OK ||
        ws != PROV_WORKER_RUNNING)
        return false;
    HLOG_INFO("saga %s: worker %s already runs (ref %s): adopted, not started again", s->id,
              s->worker_id, ref);
    saga_record_created(p, conn, s, drv, ref);
    return true;
}

enum { SPEC_CPU, SPEC_MEMORY, SPEC_STORAGE, SPEC_GPU, SPEC_ARCH, SPEC_LABELS, SPEC_IMAGE };

/* What the worker row asks of the worker; the strings point into *res_out
 * (PQclear it after create_worker). */
static hodei_status saga_worker_spec(PGconn *conn, const char *worker_id, prov_worker_spec *spec,
                                     PGresult **res_out, hodei_err *err)
{
    const char *params[1] = {worker_id};
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT cpu_millis, memory_bytes, storage_bytes, gpu_count,"
                                    "       architecture, labels::text, image"
                                    "  FROM workers WHERE id = $1",
                                    1, params, res_out, err);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(*res_out) == 0) {
        PQclear(*res_out);
        *res_out = NULL;
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "worker %s: no row", worker_id);
    }
    *spec = (prov_worker_spec){
        .cpu_millis = hodei_db_get_i64(*res_out, 0, SPEC_CPU),
        .memory_bytes = hodei_db_get_i64(*res_out, 0, SPEC_MEMORY),
        .storage_bytes = hodei_db_get_i64(*res_out, 0, SPEC_STORAGE),
        .gpu_count = hodei_db_get_i64(*res_out, 0, SPEC_GPU),
        .architecture = hodei_db_get_str(*res_out, 0, SPEC_ARCH),
        .labels_json = hodei_db_get_str(*res_out, 0, SPEC_LABELS),
        .image = hodei_db_get_str(*res_out, 0, SPEC_IMAGE),
    };
    return HODEI_OK;
}

typedef struct {
    const prov_saga *s;
    const prov_worker_spec *spec;
    const char *why;
    bool gpu_only; /* only the jobs asking for GPUs (the engine cannot give them) */
    size_t failed;
} saga_jobs_ctx;

/* The pending jobs that would ask for this worker again: same image, this
 * provider or none named (a job naming none with an image comes here, the
 * scheduler's default image provider), GPUs or not as the worker. */
static hodei_status saga_jobs_fail_tx(PGconn *conn, void *ctx, hodei_err *err)
{
    saga_jobs_ctx *c = ctx;
    const char *params[3] = {c->spec->image, c->s->provider, c->gpu_only ? "t" : "f"};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(
        conn,
        "SELECT id::text FROM jobs WHERE state = 'PENDING'"
        " AND image = $1 AND (provider = $2 OR provider = '')"
        " AND (NOT $3::bool OR gpu_count > 0)"
        " ORDER BY created_at LIMIT " HODEI_STR(HODEI_STORE_FAIL_MAX) " FOR UPDATE SKIP LOCKED",
        3, params, &res, err);
    const char *ids[HODEI_STORE_FAIL_MAX];
    int n = st == HODEI_OK ? PQntuples(res) : 0;
    for (int i = 0; i < n; i++)
        ids[i] = hodei_db_get_str(res, i, 0);
    if (st == HODEI_OK)
        st = hodei_store_pending_fail(conn, ids, (size_t)n, c->why, &c->failed, err);
    PQclear(res);
    return st;
}

/* create_worker said the worker can never be made (its image does not
 * exist, the engine cannot give what it asks): the jobs waiting for such a
 * worker end FAILED with that reason, before the saga compensates (whose
 * ProvisionFailed would have the scheduler ask again). */
static void saga_jobs_fail(prov *p, PGconn *conn, prov_saga *s, const prov_worker_spec *spec,
                           hodei_status why_st, const char *why)
{
    hodei_err err = {0};
    saga_jobs_ctx c = {.s = s,
                       .spec = spec,
                       .why = why,
                       .gpu_only = why_st == HODEI_ERR_INVALID && spec->gpu_count > 0};
    if (prov_tx(conn, saga_jobs_fail_tx, &c, &err) != HODEI_OK)
        HLOG_WARN("saga %s: failing the jobs waiting for worker %s: %s", s->id, s->worker_id,
                  err.msg);
    else if (c.failed > 0)
        HLOG_WARN("saga %s: %zu pending job(s) FAILED: %s", s->id, c.failed, why);
}

static void saga_create(prov *p, PGconn *conn, prov_saga *s)
{
    prov_driver *drv = NULL;
    hodei_err err = {0};
    if (prov_registry_get(p->reg, conn, s->provider, &drv, &err) != HODEI_OK) {
        saga_fail(p, conn, s, "no_driver", err.msg);
        return;
    }
    if (saga_adopt(p, conn, s, drv))
        return;
    saga_mint_ctx m = {.p = p, .s = s};
    hodei_status st = prov_tx(conn, saga_mint_tx, &m, &err);
    if (st != HODEI_OK) {
        if (st == HODEI_ERR_PRECONDITION)
            saga_fail(p, conn, s, "token", err.msg);
        else
            HLOG_WARN("saga %s: token for worker %s: %s (retrying)", s->id, s->worker_id, err.msg);
        return;
    }
    prov_worker_env env = {.worker_id = s->worker_id,
                           .server = p->cfg->edge_address,
                           .otp = m.otp,
                           .log_level = p->cfg->worker_log_level};
    PGresult *spec_res = NULL;
    if ((st = saga_worker_spec(conn, s->worker_id, &env.spec, &spec_res, &err)) != HODEI_OK) {
        OPENSSL_cleanse(m.otp, sizeof m.otp);
        HLOG_WARN("saga %s: reading worker %s: %s (retrying)", s->id, s->worker_id, err.msg);
        return; /* the next round mints again */
    }
    char ref[PROV_REF_MAX] = "";
    st = drv->ops->create_worker(drv, &env, ref, &err);
    OPENSSL_cleanse(m.otp, sizeof m.otp);
    if (st == HODEI_ERR_NOT_FOUND || st == HODEI_ERR_INVALID)
        saga_jobs_fail(p, conn, s, &env.spec, st, err.msg);
    PQclear(spec_res);
    if (st != HODEI_OK) {
        saga_fail(p, conn, s, "create_failed", err.msg);
        return;
    }
    saga_record_created(p, conn, s, drv, ref);
}

/* ---------------------------------------------------------------- wait */

static void saga_succeed(prov *p, PGconn *conn, prov_saga *s, Hodei__V1__WorkerState state)
{
    hodei_err err = {0};
    if (saga_db_finish(p, conn, s, "SUCCEEDED", &err) == HODEI_OK) {
        HLOG_INFO("saga %s: worker %s registered (%s); saga SUCCEEDED", s->id, s->worker_id,
                  hodei_worker_state_name(state));
        hodei_metric_add(p->m.succeeded, 1);
    } else
        HLOG_WARN("saga %s: finishing: %s", s->id, err.msg);
}

/* A saga taken over from a provisioner of another scope (another host,
 * which died) cannot see its worker: it waits for the registration or the
 * deadline, and never takes the worker for gone. */
static void saga_wait(prov *p, PGconn *conn, prov_saga *s)
{
    Hodei__V1__WorkerState state;
    char why[PROV_ERROR_MAX], scope[PROV_SCOPE_MAX] = "";
    hodei_err err = {0};
    if (saga_worker_state(conn, s->worker_id, false, &state, scope, &err) != HODEI_OK) {
        HLOG_WARN("saga %s: reading worker %s: %s", s->id, s->worker_id, err.msg);
        return;
    }
    if (saga_registered(state)) {
        saga_succeed(p, conn, s, state);
        return;
    }
    if (state != SAGA_WS(CONNECTING)) {
        snprintf(why, sizeof why, "worker became %s before registering", saga_state_shown(state));
        saga_fail(p, conn, s, "superseded", why);
        return;
    }
    if (s->past_deadline) {
        saga_fail(p, conn, s, "registration_timeout",
                  "worker did not register before its token expired");
        return;
    }
    prov_driver *drv = NULL;
    prov_worker_status ws = PROV_WORKER_RUNNING;
    if (prov_registry_get(p->reg, conn, s->provider, &drv, &err) != HODEI_OK ||
        !prov_scope_judges(drv, scope) ||
        drv->ops->get_status(drv, s->worker_id, s->ref, &ws, NULL, &err) != HODEI_OK ||
        ws != PROV_WORKER_GONE)
        return;
    char detail[PROV_ERROR_MAX - 64] = "";
    if (drv->ops->describe_exit)
        drv->ops->describe_exit(drv, s->worker_id, s->ref, detail, sizeof detail);
    snprintf(why, sizeof why, "worker exited before registering%s%s", detail[0] ? ": " : "",
             detail);
    saga_fail(p, conn, s, "exited", why);
}

/* ---------------------------------------------------------------- compensation */

typedef struct {
    prov *p;
    prov_saga *s;
    const char *why;
    Hodei__V1__WorkerState state;
    bool registered;
} saga_comp_ctx;

/* Revokes first, then locks the worker: the same order as the edge's
 * Register, so a registration either happened (token used, worker READY:
 * the saga succeeded after all) or can no longer happen. */
static hodei_status saga_comp_begin_tx(PGconn *conn, void *ctx, hodei_err *err)
{
    saga_comp_ctx *c = ctx;
    hodei_status st = prov_token_revoke(conn, c->s->worker_id, err);
    if (st == HODEI_OK)
        st = saga_worker_state(conn, c->s->worker_id, true, &c->state, NULL, err);
    if (st != HODEI_OK)
        return st;
    c->registered = saga_registered(c->state);
    if (c->registered)
        return saga_db_finish(c->p, conn, c->s, "SUCCEEDED", err);
    st = prov_worker_to_terminating(conn, c->s->worker_id, err);
    if (st == HODEI_OK)
        st = saga_db_compensating(c->p, conn, c->s, c->why, err);
    return st;
}

static hodei_status saga_comp_end_tx(PGconn *conn, void *ctx, hodei_err *err)
{
    saga_comp_ctx *c = ctx;
    hodei_status st = prov_worker_to_terminated(conn, c->s->worker_id, err);
    if (st == HODEI_OK)
        st = hodei_event_provision_failed(HODEI_OUTBOX_WRITE(conn), c->s->worker_id, c->s->provider,
                                          c->s->error, err);
    if (st == HODEI_OK)
        st = saga_db_finish(c->p, conn, c->s, "COMPENSATED", err);
    return st;
}

/* COMPENSATING destroy: the driver destroys, then the end is committed. A
 * worker made on another host (scope) is left to that host's provisioner,
 * whose reconcile destroys it once its row is TERMINATED. */
static void saga_compensate(prov *p, PGconn *conn, prov_saga *s)
{
    prov_driver *drv = NULL;
    Hodei__V1__WorkerState state;
    char scope[PROV_SCOPE_MAX] = "";
    hodei_err err = {0};
    hodei_status st = prov_registry_get(p->reg, conn, s->provider, &drv, &err);
    if (st == HODEI_ERR_NOT_FOUND || st == HODEI_ERR_UNAVAILABLE || st == HODEI_ERR_INVALID) {
        /* No driver, or one its config cannot make (checked at the door, so
         * only a row edited by hand): nothing can have been created through
         * it. Anything an earlier config made is found by reconcile's
         * list_workers once the config is fixed. */
        drv = NULL;
        st = HODEI_OK;
    } else if (st == HODEI_OK) {
        st = saga_worker_state(conn, s->worker_id, false, &state, scope, &err);
    }
    if (st == HODEI_OK && drv && prov_scope_elsewhere(drv, scope))
        HLOG_INFO("saga %s: worker %s was made by a provisioner of scope %s: left to it", s->id,
                  s->worker_id, scope);
    else if (st == HODEI_OK && drv)
        st = drv->ops->destroy_worker(drv, s->worker_id, s->ref, &err);
    if (st != HODEI_OK) {
        HLOG_WARN("saga %s: destroying worker %s: %s (retrying)", s->id, s->worker_id, err.msg);
        return;
    }
    saga_comp_ctx c = {.p = p, .s = s};
    if (prov_tx(conn, saga_comp_end_tx, &c, &err) != HODEI_OK) {
        HLOG_WARN("saga %s: finishing compensation of worker %s: %s (retrying)", s->id,
                  s->worker_id, err.msg);
        return;
    }
    HLOG_WARN("saga %s: worker %s COMPENSATED (token revoked, worker destroyed, TERMINATED,"
              " ProvisionFailed): %s",
              s->id, s->worker_id, s->error);
    hodei_metric_add(p->m.compensated, 1);
}

static void saga_fail(prov *p, PGconn *conn, prov_saga *s, const char *reason, const char *why)
{
    hodei_err err = {0};
    saga_comp_ctx c = {.p = p, .s = s, .why = why};
    if (prov_tx(conn, saga_comp_begin_tx, &c, &err) != HODEI_OK) {
        HLOG_WARN("saga %s: starting compensation of worker %s (%s): %s (retrying)", s->id,
                  s->worker_id, why, err.msg);
        return;
    }
    if (c.registered) {
        HLOG_INFO("saga %s: worker %s registered (%s) just in time; saga SUCCEEDED", s->id,
                  s->worker_id, hodei_worker_state_name(c.state));
        hodei_metric_add(p->m.succeeded, 1);
        return;
    }
    HLOG_WARN("saga %s: worker %s failed: %s; compensating", s->id, s->worker_id, why);
    hodei_metric_add(hodei_metric_with(p->m.failed, s->provider, reason), 1);
    s->compensating = true;
    hodei_strlcpy(s->error, why, sizeof s->error);
    saga_compensate(p, conn, s);
}

/* ---------------------------------------------------------------- runner */

static void saga_advance(prov *p, PGconn *conn, prov_saga *s)
{
    if (s->compensating)
        saga_compensate(p, conn, s);
    else if (strcmp(s->step, SAGA_STEP_WAIT) == 0)
        saga_wait(p, conn, s);
    else if (strcmp(s->step, SAGA_STEP_TOKEN) == 0 || strcmp(s->step, SAGA_STEP_CREATE) == 0)
        saga_create(p, conn, s);
    else
        saga_fail(p, conn, s, "internal", "unknown saga step");
}

/* One round: claim (renewing our leases), advance each saga one step. */
static void saga_round(prov *p, prov_saga *sagas)
{
    PGconn *conn = NULL;
    hodei_err err = {0};
    int n = 0;
    hodei_status st = prov_conn(p, &conn, &err);
    if (st == HODEI_OK)
        st = saga_db_claim(p, conn, sagas, SAGA_CLAIM_MAX, &n, &err);
    if (st != HODEI_OK) {
        HLOG_WARN("saga round: %s", err.msg);
        prov_release(p, conn, st);
        return;
    }
    for (int i = 0; i < n && !hodei_daemon_stopping(p->d); i++)
        saga_advance(p, conn, &sagas[i]);
    /* a step that lost the connection left it broken: test it before reuse */
    prov_release(p, conn, hodei_db_conn_status(conn));
}

/* Sleeps until the next round: poll interval, a kick, or a stop. */
static void saga_sleep(prov *p)
{
    struct pollfd fds[2] = {{.fd = hodei_daemon_stop_fd(p->d), .events = POLLIN},
                            {.fd = p->saga_kick_fd, .events = POLLIN}};
    if (poll(fds, 2, (int)p->cfg->saga_poll_ms) > 0 && (fds[1].revents & POLLIN)) {
        uint64_t v;
        (void)!read(p->saga_kick_fd, &v, sizeof v);
    }
}

static void *saga_thread_main(void *arg)
{
    prov *p = arg;
    prov_saga *sagas = calloc(SAGA_CLAIM_MAX, sizeof *sagas);
    if (!sagas) {
        HLOG_ERROR("saga runner: out of memory; stopping");
        hodei_daemon_request_stop(p->d);
        return NULL;
    }
    while (!hodei_daemon_stopping(p->d)) {
        saga_round(p, sagas);
        saga_sleep(p);
    }
    saga_db_release_leases(p);
    free(sagas);
    return NULL;
}

void prov_saga_kick(prov *p)
{
    uint64_t one = 1;
    (void)!write(p->saga_kick_fd, &one, sizeof one);
}

hodei_status prov_saga_start(prov *p, hodei_err *err)
{
    int rc = pthread_create(&p->saga_thread, NULL, saga_thread_main, p);
    if (rc != 0)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "saga thread: %s", strerror(rc));
    p->saga_running = true;
    return HODEI_OK;
}

void prov_saga_stop(prov *p)
{
    if (!p->saga_running)
        return;
    pthread_join(p->saga_thread, NULL);
    p->saga_running = false;
}
