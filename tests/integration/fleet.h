/* The product as several hosts would run it, on one machine: edges,
 * schedulers, provisioners, relays and supervisors, any number of each
 * (FLEET_MAX), every one a real child process on one private stack. Each
 * provisioner is a "host" of its own: its own state folder (so its own
 * scope) and instance id, and, with pid namespaces, its own view of the
 * processes (unshare): it cannot see, signal or find the other hosts'
 * workers, as on separate machines. Workers get every edge's address
 * (HODEI_SERVER=a,b) and spread over them. */
#ifndef HODEI_TEST_FLEET_H
#define HODEI_TEST_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "edge_client.h"
#include "harness.h"

typedef enum {
    FL_EDGE = 0,
    FL_SCHEDULER,
    FL_PROVISIONER,
    FL_RELAY,
    FL_SUPERVISOR,
    FL_KINDS
} fleet_kind;

#define FLEET_MAX 4 /* replicas of one kind */
#define FLEET_ENV_MAX 40

typedef struct {
    harness_proc proc; /* edges: edge.proc */
    edge_handle edge;  /* FL_EDGE only */
    int health_port;
    bool running;
    char env_text[FLEET_ENV_MAX][800];
    const char *env[FLEET_ENV_MAX + 1];
} fleet_member;

typedef struct {
    harness_stack stack;
    fleet_member m[FL_KINDS][FLEET_MAX];
    int count[FL_KINDS];
    bool pidns;                   /* provisioners in pid namespaces of their own */
    harness_proc host[FLEET_MAX]; /* the namespace's init, per provisioner */
    pid_t host_init_pid[FLEET_MAX];
    char host_dir[FLEET_MAX][600]; /* each provisioner's state folder */
    char edges[512];               /* "127.0.0.1:p1,127.0.0.1:p2" */
    const char *const *extra_env;
} fleet;

/* Starts the stack and count[kind] replicas of each kind. extra_env
 * (NULL-ended) goes to every daemon. */
void fleet_start(fleet *f, const int count[FL_KINDS], bool pidns, const char *const *extra_env);
/* SIGTERM everything (asserting clean exits), the hosts' workers, the stack. */
void fleet_stop(fleet *f);

void fleet_kill(fleet *f, fleet_kind k, int i); /* SIGKILL */
void fleet_launch(fleet *f, fleet_kind k, int i);
/* SIGTERM, asserting a clean exit. */
void fleet_term(fleet *f, fleet_kind k, int i);

/* A metric of member (k, i) (harness_metric_try), -1 when it is not running or
 * does not answer; a sample missing from its answer fails the test. */
double fleet_metric(fleet *f, fleet_kind k, int i, const char *name);
/* The replica of kind k whose gauge `name` is 1 (the active relay or
 * supervisor), or -1. */
int fleet_active(fleet *f, fleet_kind k, const char *name);

/* Sets the process provider's limits. */
void fleet_provider(fleet *f, int max_workers, int64_t idle_ttl_ms, int warm_min);
/* psql -tA: the first line as int64 (-1 on failure). */
int64_t fleet_sql(fleet *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool fleet_wait_sql(fleet *f, int64_t want, int64_t timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A client's own channels to every edge (one per thread: a channel that
 * failed is replaced, as careful clients do, and gRPC's own reconnect
 * backoff would answer from its cache). */
typedef struct {
    hodei_rpc_channel *ch[FLEET_MAX];
} fleet_client;
void fleet_client_init(fleet *f, fleet_client *c);
void fleet_client_fini(fleet *f, fleet_client *c);

/* QueueJob of `sh -c script` (max_attempts) with idempotency key `key`,
 * on edge `at` first, then on the others while one is unreachable; the job
 * id in id_out. Returns false when no edge took it within timeout_ms. */
bool fleet_queue(fleet *f, fleet_client *c, int at, const char *script, int max_attempts,
                 const char *key, char id_out[37], int64_t timeout_ms);

#endif
