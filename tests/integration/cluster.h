/* The whole product on one private stack, every daemon a real child
 * process: job-api, outbox-relay, scheduler, provisioner (process provider,
 * real hodei-worker processes) and supervisor. For end-to-end tests. */
#ifndef HODEI_TEST_CLUSTER_H
#define HODEI_TEST_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "edge_client.h"
#include "harness.h"

typedef enum {
    CL_RELAY = 0,
    CL_SCHEDULER,
    CL_PROVISIONER,
    CL_SUPERVISOR,
    CL_DAEMON_COUNT
} cluster_daemon;

typedef struct {
    harness_stack stack;
    edge_handle edge; /* the job-api and a channel to it */
    harness_proc procs[CL_DAEMON_COUNT];
    int health_port[CL_DAEMON_COUNT]; /* each daemon's health.listen */
    const char *const *extra_env;     /* given to every daemon */
    char workers_dir[600];            /* the process provider's state */
} cluster;

/* Starts the stack and every daemon. extra_env (NULL-ended, may be NULL)
 * goes to every daemon, e.g. short supervisor timeouts. */
void cluster_start(cluster *c, const char *const *extra_env);
/* SIGTERM to everything, asserting clean exits; removes the stack. */
void cluster_stop(cluster *c);

/* SIGKILL one daemon and start it again. */
void cluster_kill_restart(cluster *c, cluster_daemon d);
void cluster_kill_restart_edge(cluster *c);
/* The two halves of cluster_kill_restart_edge: SIGKILL, and a new edge on
 * the same port. */
void cluster_kill_edge(cluster *c);
void cluster_start_edge(cluster *c);

/* Sets the process provider's limits (max workers, idle TTL, warm pool). */
void cluster_provider(cluster *c, int max_workers, int64_t idle_ttl_ms, int warm_min);

/* Queues `sh -c script` with max_attempts and timeout (0 = defaults). */
void cluster_queue(cluster *c, const char *script, int max_attempts, int64_t timeout_ms,
                   char *id_out);
/* Waits until the job is terminal or timeout_ms passes; returns its state
 * name ("SUCCEEDED", ...) in state_out. */
bool cluster_wait_job(cluster *c, const char *id, int64_t timeout_ms, char *state_out,
                      size_t state_len);
/* Waits until `SELECT count(*) ...` returns want. */
bool cluster_wait_sql(cluster *c, const char *sql, int64_t want, int64_t timeout_ms);

#endif
