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

/* A start-up check of a dependency the skeleton knows only through it:
 * check() returns true when reachable (or a stop was requested meanwhile),
 * else false after printing one line to stderr (the daemon exits 1);
 * release() (may be NULL) runs at exit. The NATS check is
 * hodei_daemon_nats_probe (hodei/daemon_nats.h, library hodei_daemon_nats),
 * so a daemon without NATS does not link the NATS client. */
typedef struct {
    bool (*check)(hodei_daemon *d);
    void (*release)(void);
} hodei_daemon_probe;

typedef struct {
    const char *name;              /* process name for logs: "outbox-relay" */
    const char *summary;           /* one line for --help */
    const hodei_cfg_param *params; /* the service's own parameters (may be NULL) */
    size_t n_params;
    void *config; /* the struct those parameters fill */
    /* After loading (may be NULL): checks between the service's parameters
     * and fills defaults derived from others (sec: its loaded section, for
     * hodei_config_source). An error names the parameter; the daemon then
     * exits 2 as for any bad value, --check-config included. */
    hodei_status (*check_config)(const hodei_cfg_section *sec, hodei_err *err);
    bool needs_db;                        /* check database.url is reachable before init */
    const hodei_daemon_probe *nats_probe; /* check nats.url before init; NULL = no check */
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
 * hodei_dependency_up, hodei_start_time_seconds and the process_* set:
 * CPU, resident memory, file descriptors, start time). Register in init(),
 * with a name of [a-z_][a-z0-9_]* in base units (counters end in _total,
 * durations in _seconds); at most 96 families per daemon. Updates are
 * relaxed atomic operations, from any thread, whether or not health.listen
 * is set; the handles live until the daemon exits. */
typedef struct hodei_metric hodei_metric;               /* one series */
typedef struct hodei_metric_family hodei_metric_family; /* a name and its series */
hodei_metric *hodei_daemon_counter(hodei_daemon *d, const char *name, const char *help);
/* A counter kept in micro-units and shown in units (µs of work as seconds). */
hodei_metric *hodei_daemon_counter_micro(hodei_daemon *d, const char *name, const char *help);
hodei_metric *hodei_daemon_gauge(hodei_daemon *d, const char *name, const char *help);
void hodei_metric_add(hodei_metric *m, uint64_t n); /* counters; NULL = no-op */
void hodei_metric_set(hodei_metric *m, int64_t v);  /* gauges; NULL = no-op */

/* Labelled families: labels is a comma-separated list of at most 4 label
 * names ("state" or "method,code"). Each distinct set of values is one
 * series, made on first use and kept for the life of the process; at most
 * 512 per family, beyond which hodei_metric_with answers NULL (a no-op
 * handle) and the daemon logs it once. Keep label values to a known, small
 * set: states, providers, method names; never ids. */
hodei_metric_family *hodei_daemon_counter_vec(hodei_daemon *d, const char *name, const char *help,
                                              const char *labels);
hodei_metric_family *hodei_daemon_gauge_vec(hodei_daemon *d, const char *name, const char *help,
                                            const char *labels);
/* A gauge family set in micro-units and shown in units (cores, seconds). */
hodei_metric_family *hodei_daemon_gauge_vec_micro(hodei_daemon *d, const char *name,
                                                  const char *help, const char *labels);
/* Histograms of durations in seconds: bounds are the buckets' upper bounds
 * in seconds, ascending, at most 24 (+Inf is implied). labels may be "". */
hodei_metric_family *hodei_daemon_histogram_vec(hodei_daemon *d, const char *name, const char *help,
                                                const char *labels, const double *bounds,
                                                size_t n_bounds);
hodei_metric *hodei_daemon_histogram(hodei_daemon *d, const char *name, const char *help,
                                     const double *bounds, size_t n_bounds);
/* The series of a family for values[0..n), n being the family's label
 * count; the lookup is lock-free once the series exists. Label values are
 * escaped as the format asks. */
hodei_metric *hodei_metric_withv(hodei_metric_family *f, const char *const *values, size_t n);
#define hodei_metric_with(f, ...)                                                                  \
    hodei_metric_withv((f), (const char *const[]){__VA_ARGS__},                                    \
                       sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *))
/* Histograms: one observation of v micro-units (µs for a family in
 * seconds); negative counts as 0. NULL = no-op. */
void hodei_metric_observe_micro(hodei_metric *m, int64_t v);
/* Gauge families: every series to 0 (before setting what a fresh count
 * found, so a vanished value reads 0 rather than its last count). */
void hodei_metric_family_zero(hodei_metric_family *f);

/* Bucket bounds (seconds) for the suite's histograms. */
/* Milliseconds to seconds: dispatch, queue wait, relay lag, RPC latency. */
#define HODEI_BUCKETS_FAST                                                                         \
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
/* Seconds to a day: job run time. */
#define HODEI_BUCKETS_SLOW                                                                         \
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400

/* The service's state pointer, for init/run/fini to share. */
void hodei_daemon_set_state(hodei_daemon *d, void *state);
void *hodei_daemon_state(const hodei_daemon *d);

#endif
