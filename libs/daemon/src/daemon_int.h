/* Private to libs/daemon. */
#ifndef HODEI_DAEMON_INT_H
#define HODEI_DAEMON_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "hodei/daemon.h"

#define DAEMON_INSTANCE_MAX 192       /* "<hostname>-<pid>" or instance.id (max 128) */
#define DAEMON_SECTIONS_MAX 2         /* common + the service's own */
#define DAEMON_DESCRIBE_MAX 512       /* "user@host:port/db", a redacted URL */
#define DAEMON_REASON_MAX 512         /* a dependency's error text, one line */
#define DAEMON_NATS_CHECK_TIMEOUT_MS 2000
#define DAEMON_NATS_CLOSE_WAIT_MS 5000

/* Exit codes (see daemon.h). */
#define DAEMON_EXIT_OK 0
#define DAEMON_EXIT_FAILURE 1
#define DAEMON_EXIT_USAGE 2
#define DAEMON_CONTINUE (-1)

struct hodei_daemon {
    const hodei_service *svc;
    hodei_common_config common;
    hodei_cfg_section sections[DAEMON_SECTIONS_MAX];
    size_t n_sections;
    atomic_bool stopping;
    int stop_fd;                      /* eventfd, readable once a stop is requested */
    pthread_t signal_thread;
    atomic_bool signal_thread_quit;
    char instance[DAEMON_INSTANCE_MAX];
    void *state;
};

typedef struct {
    bool check_only;
    const char *config_path;          /* --config, else HODEI_CONFIG, else NULL */
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
int daemon_check_nats(hodei_daemon *d);
/* Releases what nats.c keeps for the process, waiting for its threads. */
void daemon_nats_release(void);

/* Copies text to out, each occurrence of secret (when non-empty) replaced
 * by "***" and runs of whitespace folded into one space, trimmed. */
void daemon_redact(const char *text, const char *secret, char *out, size_t out_len);

#endif
