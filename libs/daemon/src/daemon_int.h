/* Private to libs/daemon. */
#ifndef HODEI_DAEMON_INT_H
#define HODEI_DAEMON_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "hodei/buf.h"
#include "hodei/daemon.h"

#define DAEMON_INSTANCE_MAX 192 /* "<hostname>-<pid>" or instance.id (max 128) */
#define DAEMON_SECTIONS_MAX 2   /* common + the service's own */
#define DAEMON_DESCRIBE_MAX 512 /* "user@host:port/db", a redacted URL */
#define DAEMON_REASON_MAX 512   /* a dependency's error text, one line */
#define DAEMON_NATS_CHECK_TIMEOUT_MS 2000
#define DAEMON_DEPS_MAX 8 /* dependencies a service reports for /readyz */
#define DAEMON_DEP_NAME_MAX 32
#define DAEMON_FAMILIES_MAX 96 /* metric families per daemon */
#define DAEMON_METRIC_NAME_MAX 64
#define DAEMON_METRIC_HELP_MAX 256
#define DAEMON_LABELS_MAX 4 /* label names per family */
#define DAEMON_LABEL_NAME_MAX 32
#define DAEMON_LABEL_VALUE_MAX 128 /* longer values are cut */
#define DAEMON_SERIES_MAX 512      /* series per family */
#define DAEMON_BUCKETS_MAX 24      /* histogram bounds, +Inf besides */
#define DAEMON_NATS_CLOSE_WAIT_MS 5000

/* Exit codes (see daemon.h). */
#define DAEMON_EXIT_OK 0
#define DAEMON_EXIT_FAILURE 1
#define DAEMON_EXIT_USAGE 2
#define DAEMON_CONTINUE (-1)

struct MHD_Daemon;

typedef struct {
    char name[DAEMON_DEP_NAME_MAX];
    bool up;
    char why[DAEMON_REASON_MAX]; /* "" when up */
} daemon_dep;

typedef enum {
    DAEMON_COUNTER,
    DAEMON_COUNTER_MICRO,
    DAEMON_GAUGE,
    DAEMON_GAUGE_MICRO,
    DAEMON_HISTOGRAM
} daemon_metric_kind;

/* One series. Made whole, then published (daemon_metrics.c), never freed
 * before the daemon exits. */
struct hodei_metric {
    hodei_metric_family *family;
    char *key;    /* the raw values joined by \x1f, for lookups */
    char *labels; /* rendered: a="x",b="y" (escaped); "" without labels */
    _Atomic uint64_t counter;
    _Atomic int64_t gauge;
    _Atomic uint64_t *buckets; /* histograms: per bucket (not cumulative), n_bounds + 1 */
    _Atomic uint64_t sum_micro;
};

struct hodei_metric_family {
    char name[DAEMON_METRIC_NAME_MAX];
    char help[DAEMON_METRIC_HELP_MAX];
    daemon_metric_kind kind;
    char label_names[DAEMON_LABELS_MAX][DAEMON_LABEL_NAME_MAX];
    size_t n_labels;
    double bounds[DAEMON_BUCKETS_MAX];
    int64_t bounds_micro[DAEMON_BUCKETS_MAX];
    size_t n_bounds;
    pthread_mutex_t mu; /* makes series; lookups read without it */
    hodei_metric *series[DAEMON_SERIES_MAX];
    _Atomic size_t n_series; /* series[0..n) are published */
    atomic_bool overflow_logged;
};

struct hodei_daemon {
    const hodei_service *svc;
    hodei_common_config common;
    hodei_cfg_section sections[DAEMON_SECTIONS_MAX];
    size_t n_sections;
    atomic_bool stopping;
    int stop_fd; /* eventfd, readable once a stop is requested */
    pthread_t signal_thread;
    atomic_bool signal_thread_quit;
    char instance[DAEMON_INSTANCE_MAX];
    void *state;
    /* health endpoints (daemon_health.c); deps and running under health_mu */
    struct MHD_Daemon *health;
    pthread_mutex_t health_mu;
    bool running; /* run() has started and not returned */
    daemon_dep deps[DAEMON_DEPS_MAX];
    size_t n_deps;
    hodei_metric_family *families[DAEMON_FAMILIES_MAX]; /* registered in init, before run */
    _Atomic size_t n_families;
    int64_t start_time_s; /* wall clock, for /metrics */
};

typedef struct {
    bool check_only;
    const char *config_path; /* --config, else HODEI_CONFIG, else NULL */
} daemon_args;

/* Parses argv. Returns DAEMON_CONTINUE to go on, or the exit code after
 * --help / --version (0) or a usage error (2, usage printed to stderr). */
int daemon_args_parse(int argc, char **argv, const hodei_service *svc, daemon_args *out);

/* Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and so in every
 * thread started later) and ignores SIGPIPE. Call first in main. */
void daemon_signals_block(void);
/* Starts the thread that turns SIGTERM/SIGINT into a stop request. */
hodei_status daemon_signals_start(hodei_daemon *d, hodei_err *err);
/* Wakes the signal thread and joins it. */
void daemon_signals_stop(hodei_daemon *d);

/* Start-up checks: DAEMON_EXIT_OK when reachable (or a stop was requested
 * meanwhile), otherwise the exit code after printing one line to stderr. */
int daemon_check_db(hodei_daemon *d);
/* Only checks that database.url parses (for --check-config). */
int daemon_check_db_url(const hodei_daemon *d);
/* health.listen: DAEMON_EXIT_OK when empty or an address:port, else the
 * exit code after printing one line naming the field. */
int daemon_health_check_config(const hodei_daemon *d);
/* Starts the HTTP server when health.listen is set; DAEMON_EXIT_OK or the
 * exit code after printing one line (bad address, port taken). */
int daemon_health_start(hodei_daemon *d);
void daemon_health_stop(hodei_daemon *d);
/* Marks run() as started (true) or returned (false) for /readyz. */
void daemon_health_running(hodei_daemon *d, bool running);
/* Appends the /metrics text; ready as /readyz would answer. Under health_mu. */
void daemon_metrics_text(hodei_daemon *d, bool ready, hodei_buf *b);
/* The process_* metrics from /proc/self (daemon_process.c). */
void daemon_process_metrics(hodei_buf *b);
/* Frees every family and series (after the health server stopped). */
void daemon_metrics_free(hodei_daemon *d);

/* Copies text to out, each occurrence of secret (when non-empty) replaced
 * by "***" and runs of whitespace folded into one space, trimmed. */
void daemon_redact(const char *text, const char *secret, char *out, size_t out_len);

#endif
