/* The provider driver interface: how the provisioner creates, finds and
 * destroys the real workers behind the registry (a local process, a Docker
 * container, a Kubernetes pod, a Firecracker microVM).
 *
 * One driver TYPE (prov_driver_ops, a vtable) per provider type; one driver
 * INSTANCE (prov_driver) per row of the providers table, created from that
 * row's name and config. The provisioner calls an instance from several
 * threads at once (the saga runner, the event consumer, the reconciler):
 * every operation must be thread-safe.
 *
 * Rules every driver follows, so the saga and the reconciler stay correct:
 *  - A real worker is always labelled with its worker id (the process
 *    provider: <state dir>/workers/<id>.pid; Docker: a container named
 *    hodei-<id> with a label; Kubernetes: a pod label; Firecracker: the VM's
 *    id), so it can be found again by id after the provisioner restarts,
 *    even when its provider_ref was never committed.
 *  - create_worker hands the worker exactly the environment in
 *    prov_worker_env (HODEI_SERVER, HODEI_WORKER_ID, HODEI_OTP,
 *    HODEI_LOG_LEVEL) and nothing of the provisioner's own environment
 *    (database URL, credentials). The token is a secret: never log it, never
 *    put it in an error message, a label or a command line.
 *  - destroy_worker is idempotent: a worker that is already gone is HODEI_OK.
 *  - list_workers returns every live worker the instance owns (also those
 *    started by an earlier run of the provisioner), so the reconciler can
 *    destroy orphans and mark lost workers.
 *  - Errors travel as hodei_status with a message naming the operation and
 *    the worker; HODEI_ERR_UNAVAILABLE for a backend that cannot be reached.
 *    create_worker says HODEI_ERR_NOT_FOUND when the image does not exist
 *    and cannot be pulled (the message names it), and HODEI_ERR_INVALID
 *    when the worker as asked can never be made by this backend (GPUs an
 *    engine cannot give): the saga then also fails the pending jobs that
 *    would ask for such a worker again, instead of provisioning forever.
 *  - Scope (prov_driver.scope): a driver whose view is one host's (the
 *    process provider; Firecracker microVMs) fills it at create with a name
 *    shared only by the provisioners that see the same workers (the process
 *    provider keeps a UUID in its state folder). Each worker row records the
 *    scope that made it (workers.provider_scope), and only provisioners of
 *    that scope reconcile it, judge it gone or destroy it: a provisioner on
 *    another host never takes a worker it cannot see for a lost one. A
 *    driver with a global view (one Docker engine, one Kubernetes API) leaves
 *    it "": any replica judges every worker, one at a time (reconcile.c). */
#ifndef HODEI_PROVISIONER_PROVIDER_H
#define HODEI_PROVISIONER_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/id.h"
#include "hodei/status.h"

#define PROV_REF_MAX 128 /* provider_ref text, with the NUL */
#define PROV_NAME_MAX 64 /* provider name, with the NUL */
#define PROV_HEALTH_MSG_MAX 256
#define PROV_LIST_MAX 4096 /* most workers one list_workers returns */
#define PROV_SCOPE_MAX 64  /* prov_driver.scope, with the NUL */

typedef struct prov_driver_ops prov_driver_ops;

/* The part of an instance every driver shares. A driver's own struct embeds
 * it as its FIRST member and converts the pointer back (Linux's
 * container_of pattern); the provisioner only sees this base. */
typedef struct {
    const prov_driver_ops *ops;
    char name[PROV_NAME_MAX];   /* the provider row it serves */
    char scope[PROV_SCOPE_MAX]; /* "" = global view; else see "Scope" above */
} prov_driver;

/* A worker label of this name is not a placement label (drivers skip it):
 * the image a worker runs is workers.image (prov_worker_spec.image). */
#define PROV_LABEL_IMAGE "image"

/* What the registry row says the worker must be (workers: image,
 * cpu_millis, memory_bytes, storage_bytes, gpu_count, architecture,
 * labels). 0 / "" = not stated: the driver applies no limit (or its
 * configured default). Drivers that cannot honour a field ignore it (the
 * process provider: the agent limits each job itself). Every string is
 * borrowed. */
typedef struct {
    const char *image;  /* workers.image: "" = the provider's default worker image */
    int64_t cpu_millis; /* hard limit for containers (quota), requests = limits for pods */
    int64_t memory_bytes;
    int64_t storage_bytes; /* ephemeral storage */
    int64_t gpu_count;
    const char *architecture;
    const char *labels_json; /* every worker label, a JSON object ("{}" = none) */
} prov_worker_spec;

/* What create_worker hands the worker. Every string is borrowed. */
typedef struct {
    const char *worker_id; /* HODEI_WORKER_ID */
    const char *server;    /* HODEI_SERVER: the edge's address */
    const char *otp;       /* HODEI_OTP: the one-time token (SECRET) */
    const char *log_level; /* HODEI_LOG_LEVEL */
    prov_worker_spec spec; /* what the worker must be */
} prov_worker_env;

/* One real worker as the provider sees it. */
typedef struct {
    char worker_id[HODEI_ID_BUF];
    char ref[PROV_REF_MAX];
} prov_worker_ref;

typedef enum {
    PROV_WORKER_GONE = 0, /* no such worker (never made, exited, destroyed) */
    PROV_WORKER_RUNNING,  /* it exists and runs */
} prov_worker_status;

/* What a driver can do, for health reports and for the saga's timing. */
typedef struct {
    const char *isolation;     /* "none" (host process), "container", "vm" */
    bool survives_restart;     /* list_workers finds workers after a provisioner restart */
    int64_t create_timeout_ms; /* how long create_worker may block */
} prov_caps;

/* How an instance is made: the provider row, and the provisioner's settings. */
typedef struct {
    const char *name;          /* providers.name */
    const char *config_json;   /* providers.config (a JSON object of strings) */
    const char *state_dir;     /* provisioner.state_dir, resolved */
    const char *worker_binary; /* provisioner.worker_binary, resolved */
    int64_t destroy_grace_ms;  /* SIGTERM (or stop) -> SIGKILL (or force) */
} prov_driver_params;

struct prov_driver_ops {
    const char *type; /* providers.type this driver serves: "process" */
    hodei_status (*create)(const prov_driver_params *p, prov_driver **out, hodei_err *err);
    void (*destroy)(prov_driver *drv); /* NULL-safe; workers live on */

    /* Starts a worker with env; *ref_out gets the provider's handle
     * (stored in workers.provider_ref). */
    hodei_status (*create_worker)(prov_driver *drv, const prov_worker_env *env,
                                  char ref_out[PROV_REF_MAX], hodei_err *err);
    /* Is the worker with this id running? ref may be "" (not yet recorded):
     * then the driver finds it by worker id. *ref_out (may be NULL) gets its
     * current handle when RUNNING. */
    hodei_status (*get_status)(prov_driver *drv, const char *worker_id, const char *ref,
                               prov_worker_status *out, char ref_out[PROV_REF_MAX], hodei_err *err);
    /* Stops the worker (graceful, then forced after destroy_grace_ms) and
     * forgets it. ref may be "". Gone already = HODEI_OK. */
    hodei_status (*destroy_worker)(prov_driver *drv, const char *worker_id, const char *ref,
                                   hodei_err *err);
    /* Every live worker of this instance, up to cap; *n_out = how many. */
    hodei_status (*list_workers)(prov_driver *drv, prov_worker_ref *out, size_t cap, size_t *n_out,
                                 hodei_err *err);
    /* Can the backend create workers now? msg says why not (or what it checked). */
    bool (*health)(prov_driver *drv, char msg[PROV_HEALTH_MSG_MAX]);
    void (*capabilities)(const prov_driver *drv, prov_caps *out);
    /* Optional (NULL = not offered): why a worker that is gone ended, e.g.
     * its exit code and last log lines, for the saga's error when a worker
     * exits before registering. Writes "" when nothing is known. */
    void (*describe_exit)(prov_driver *drv, const char *worker_id, const char *ref, char *out,
                          size_t out_len);
};

/* The drivers built into this provisioner. */
extern const prov_driver_ops prov_process_ops;     /* provider_process.c */
extern const prov_driver_ops prov_kubernetes_ops;  /* provider_k8s.c */
extern const prov_driver_ops prov_firecracker_ops; /* provider_firecracker.c */
extern const prov_driver_ops prov_docker_ops;      /* provider_docker.c */

/* The driver type for a providers.type value, or NULL when this build has none. */
const prov_driver_ops *prov_driver_ops_find(const char *type);

#endif
