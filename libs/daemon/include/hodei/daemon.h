/* The daemon skeleton every service's main hands itself to (Postfix's
 * single_server_main): flags, configuration, logging, signals, start-up
 * checks and clean shutdown live here; the service supplies init/run/fini.
 *
 *   int main(int argc, char **argv) { return hodei_daemon_main(argc, argv, &relay_service); }
 *
 * With health.listen set, GET /healthz (alive) and GET /readyz (run()
 * started, no reported dependency down, not stopping) answer over HTTP.
 *
 * Flags: --config FILE (or HODEI_CONFIG), --check-config (load, validate,
 * print, exit 0/2), --help, --version.
 * Exit codes: 0 clean stop, 1 runtime failure (e.g. database unreachable at
 * start), 2 bad usage or configuration. Every failure prints one clear line
 * naming the cause. SIGTERM and SIGINT request a stop; run() must return
 * promptly after hodei_daemon_stopping() turns true. */
#ifndef HODEI_DAEMON_H
#define HODEI_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/config.h"
#include "hodei/status.h"

typedef struct hodei_daemon hodei_daemon;

typedef struct {
    const char *name;              /* process name for logs: "outbox-relay" */
    const char *summary;           /* one line for --help */
    const hodei_cfg_param *params; /* the service's own parameters (may be NULL) */
    size_t n_params;
    void *config;    /* the struct those parameters fill */
    bool needs_db;   /* check database.url is reachable before init */
    bool needs_nats; /* check nats.url is reachable before init */
    hodei_status (*init)(hodei_daemon *d, hodei_err *err);
    hodei_status (*run)(hodei_daemon *d, hodei_err *err);
    void (*fini)(hodei_daemon *d);
} hodei_service;

int hodei_daemon_main(int argc, char **argv, const hodei_service *svc);

bool hodei_daemon_stopping(const hodei_daemon *d);
/* Requests a stop from inside the process (as SIGTERM would). */
void hodei_daemon_request_stop(hodei_daemon *d);
/* Sleeps up to timeout_ms or until a stop is requested; returns stopping. */
bool hodei_daemon_wait(hodei_daemon *d, int64_t timeout_ms);
/* The wait after a failure: *backoff_ms doubles (min_ms the first time, 0 =
 * none yet), at most max_ms, then hodei_daemon_wait. Reset *backoff_ms to 0
 * after a success. Returns stopping. */
bool hodei_daemon_backoff(hodei_daemon *d, int64_t *backoff_ms, int64_t min_ms, int64_t max_ms);
/* A file descriptor that becomes readable when a stop is requested (for
 * poll loops). Do not read or close it. */
int hodei_daemon_stop_fd(const hodei_daemon *d);
const hodei_common_config *hodei_daemon_common(const hodei_daemon *d);
/* "<hostname>-<pid>" unless instance.id is set. */
const char *hodei_daemon_instance(const hodei_daemon *d);
/* Reports a dependency's state for GET /readyz under a short name
 * ("database", "nats"); the last report of each name counts, and /readyz
 * is 503 while any is down, naming it and why (one line). Reporting the
 * same state again is cheap. Safe from any thread. */
void hodei_daemon_report(hodei_daemon *d, const char *dependency, bool up, const char *why);
/* Metrics, shown by GET /metrics (health.listen) in Prometheus' text
 * format, beside the skeleton's own (hodei_build_info, hodei_ready,
 * hodei_dependency_up, hodei_start_time_seconds). Register in init(), with
 * a name of [a-z_][a-z0-9_]* (counters end in _total); at most 48 per
 * daemon. Updates are one relaxed atomic operation, from any thread,
 * whether or not health.listen is set. */
typedef struct hodei_metric hodei_metric;
hodei_metric *hodei_daemon_counter(hodei_daemon *d, const char *name, const char *help);
/* A counter kept in micro-units and shown in units (µs of work as seconds). */
hodei_metric *hodei_daemon_counter_micro(hodei_daemon *d, const char *name, const char *help);
hodei_metric *hodei_daemon_gauge(hodei_daemon *d, const char *name, const char *help);
void hodei_metric_add(hodei_metric *m, uint64_t n); /* counters */
void hodei_metric_set(hodei_metric *m, int64_t v);  /* gauges */
/* The service's state pointer, for init/run/fini to share. */
void hodei_daemon_set_state(hodei_daemon *d, void *state);
void *hodei_daemon_state(const hodei_daemon *d);

#endif
