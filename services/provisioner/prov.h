/* The provisioner's shared state and the parts prov_service.c puts together:
 *   prov_params.c  every parameter (prov_conf)
 *   prov_service.c start-up, run, shutdown (handed to the skeleton by main.c)
 *   consumer.c   durable JetStream pull consumer, dispatch of events
 *   saga.c       the provisioning saga's steps (token, create, wait, compensate)
 *   saga_db.c    the saga rows: insert, claim/renew leases, step updates
 *   token.c      one-time bootstrap tokens (random, stored hashed)
 *   destroy.c    WorkerDestroyRequested, and moving a worker to TERMINATED
 *   reconcile.c  provider reality vs the registry; provider health
 *   registry.c   one driver instance per provider row (provider.h) */
#ifndef HODEI_PROVISIONER_PROV_H
#define HODEI_PROVISIONER_PROV_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hodei/config.h"
#include "hodei/daemon.h"
#include "hodei/db.h"
#include "hodei/id.h"
#include "hodei/status.h"
#include "provider.h"

#define PROV_PATH_MAX 4096
#define PROV_DB_WAIT_MS 5000 /* waiting for a pooled connection */
#define PROV_ERROR_MAX 2048  /* saga error text kept (a worker's last log lines fit) */
#define PROV_TOKEN_BYTES 32
#define PROV_TOKEN_HEX_BUF (2 * PROV_TOKEN_BYTES + 1)
#define PROV_INT_TEXT_MAX 24
#define PROV_STATE_DIR_DEFAULT "/tmp/hodei-provisioner"

typedef struct {
    char *worker_binary;    /* provisioner.worker_binary ("" = next to us) */
    char *edge_address;     /* provisioner.edge_address -> HODEI_SERVER */
    char *state_dir;        /* provisioner.state_dir ("" = $HODEI_STATE_DIR or /tmp/...) */
    char *worker_log_level; /* provisioner.worker_log_level -> HODEI_LOG_LEVEL */
    int64_t token_ttl_ms;   /* provisioner.token_ttl: also the registration deadline */
    int64_t reconcile_interval_ms;
    int64_t reconcile_lock_key;
    int64_t saga_lease_ms;
    int64_t saga_poll_ms;
    int64_t destroy_grace_ms;
    int64_t fetch_batch;
} prov_config;

typedef struct prov_registry prov_registry;

typedef struct {
    hodei_daemon *d;
    const prov_config *cfg;
    const hodei_common_config *common;
    const char *instance;
    hodei_db *db;
    prov_registry *reg;
    char state_dir[PROV_PATH_MAX];
    char worker_binary[PROV_PATH_MAX];
    int saga_kick_fd; /* eventfd: run the saga loop now */
    pthread_t saga_thread, reconcile_thread;
    bool saga_running, reconcile_running;
    struct {                                      /* GET /metrics */
        hodei_metric_family *started, *destroyed; /* provider */
        hodei_metric_family *failed;              /* provider, reason */
        hodei_metric *succeeded, *compensated;
    } m;
} prov;

/* ---- registry.c ---- */
hodei_status prov_registry_create(const prov *p, prov_registry **out, hodei_err *err);
void prov_registry_destroy(prov_registry *reg);
/* The driver instance for a provider row, made on first use. NOT_FOUND:
 * no such provider; UNAVAILABLE: this build has no driver for its type.
 * The pointer stays valid until prov_registry_destroy. */
hodei_status prov_registry_get(prov_registry *reg, PGconn *conn, const char *provider,
                               prov_driver **out, hodei_err *err);

/* Scope (provider.h): whether this provisioner may judge a worker whose row
 * records row_scope ("" = NULL): a driver with a global view judges every
 * worker, one with a host's view only those of its own scope. */
bool prov_scope_judges(const prov_driver *drv, const char *row_scope);
/* The worker was made by a provisioner of another scope (another host):
 * this one can neither see nor destroy it. A row with no scope recorded
 * (made by an older release, or not made yet) is nobody's in particular. */
bool prov_scope_elsewhere(const prov_driver *drv, const char *row_scope);

/* ---- token.c ---- */
/* Revokes the worker's unused tokens, then stores the SHA-256 of a new one
 * (expires now() + ttl_ms). hex_out gets the token: a secret. */
hodei_status prov_token_mint(PGconn *conn, const char *worker_id, const char *provider,
                             int64_t ttl_ms, char hex_out[PROV_TOKEN_HEX_BUF], hodei_err *err);
/* Marks every unused token of the worker revoked. */
hodei_status prov_token_revoke(PGconn *conn, const char *worker_id, hodei_err *err);

/* ---- destroy.c ---- */
/* Handles WorkerDestroyRequested: worker to TERMINATING (through the state
 * machine, ending any attempt still on it), the driver destroys it, worker
 * TERMINATED. Idempotent. */
hodei_status prov_destroy_requested(prov *p, PGconn *conn, const char *worker_id,
                                    const char *provider_hint, hodei_err *err);
/* Inside the caller's transaction: a live worker to TERMINATING through
 * the state machine (see above); LOST, TERMINATING, TERMINATED or no row
 * stay as they are. */
hodei_status prov_worker_to_terminating(PGconn *conn, const char *worker_id, hodei_err *err);
hodei_status prov_worker_to_terminated(PGconn *conn, const char *worker_id, hodei_err *err);

/* ---- saga_db.c / saga.c ---- */
/* Inserts the saga of a ProvisionRequested unless one exists for this
 * worker or the worker is not CREATING; *created_out says which. */
hodei_status prov_saga_insert(prov *p, PGconn *conn, const char *worker_id, bool *created_out,
                              hodei_err *err);
/* The saga runner thread. */
hodei_status prov_saga_start(prov *p, hodei_err *err);
void prov_saga_stop(prov *p);
void prov_saga_kick(prov *p);

/* ---- reconcile.c ---- */
hodei_status prov_reconcile_start(prov *p, hodei_err *err);
void prov_reconcile_stop(prov *p);

/* ---- consumer.c ---- */
/* Consumes HODEI_EVENTS until the daemon stops. */
hodei_status prov_consume(prov *p, hodei_err *err);

/* ---- helpers (saga_db.c) ---- */
hodei_status prov_conn(prov *p, PGconn **conn, hodei_err *err);
void prov_release(prov *p, PGconn *conn, hodei_status st);
/* Runs fn inside BEGIN/COMMIT (ROLLBACK on failure). */
typedef hodei_status (*prov_tx_fn)(PGconn *conn, void *ctx, hodei_err *err);
hodei_status prov_tx(PGconn *conn, prov_tx_fn fn, void *ctx, hodei_err *err);

/* prov_params.c: the configuration and its parameter table. */
extern prov_config prov_conf;
extern const hodei_cfg_param prov_params[];
extern const size_t prov_params_len;

/* prov_service.c: the daemon's start-up, work and shutdown. */
hodei_status prov_init(hodei_daemon *d, hodei_err *err);
hodei_status prov_run(hodei_daemon *d, hodei_err *err);
void prov_fini(hodei_daemon *d);

#endif
