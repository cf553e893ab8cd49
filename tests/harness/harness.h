/* Test harness: a private stack (nats-server -js + PostgreSQL cluster) per
 * test binary, started through scripts/hodei-stack exactly as operators do,
 * and helpers to run the product's daemons as real child processes.
 *
 * Environment used: HODEI_ROOT (source tree), HODEI_BIN (built binaries);
 * CTest sets both. */
#ifndef HODEI_TEST_HARNESS_H
#define HODEI_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hodei/status.h"

typedef struct {
    char state_dir[512];          /* private folder under /tmp, removed by stop */
    char pg_data[512];            /* PostgreSQL's data folder (HODEI_PG_DATA; outside
                                     state_dir as root), removed by stop */
    char db_url[512];             /* HODEI_DATABASE_URL */
    char nats_url[512];           /* for the test's own NATS clients: HODEI_NATS_URL with the
                                     stack's credentials in it (nats://user:password@...) */
    char nats_server_url[256];    /* HODEI_NATS_URL as daemons get it (no credentials) */
    char nats_user[64];           /* HODEI_NATS_USER */
    char nats_password_file[600]; /* HODEI_NATS_PASSWORD_FILE */
    int pg_port;
    int nats_port;
    char root[512];        /* HODEI_ROOT */
    char bin[512];         /* HODEI_BIN */
    char api_key[96];      /* HODEI_API_KEY: the stack's admin key (hodei-stack up made it) */
    char servers_dir[512]; /* hodei-stack's --state-dir: state_dir, or on shared servers
                              (HARNESS_SHARED_SERVERS) the binary's one stack */
    bool shared;           /* a case on the binary's shared servers */
} harness_stack;

/* Shared servers: HARNESS_SHARED_SERVERS() at file scope in a test file (after including
 * criterion) starts one stack before the binary's first case (in Criterion's runner process;
 * stopped when that process exits, like any stack); each case's harness_stack_start then
 * gets, instead of new servers, its own database (a copy of the migrated one, with the admin
 * key: what a new stack's database is), a NATS server restarted on an empty store, and its own
 * state folder. Cases stay independent (nothing of a case's database, streams, logs or
 * processes reaches the next) and skip ~2-4 s of server start and stop each. For suites whose
 * cases may stop and start a server of their stack (harness_nats_stop, ...) but never remove
 * it. */
void harness_servers_share(void);
#define HARNESS_SHARED_SERVERS()                                                                   \
    ReportHook(PRE_ALL)(struct criterion_test_set * harness_set_)                                  \
    {                                                                                              \
        (void)harness_set_;                                                                        \
        harness_servers_share();                                                                   \
    }

/* Starts a fresh stack with migrations applied. Aborts the test (cr_fatal
 * style, via HODEI_ASSERT) when it cannot. */
void harness_stack_start(harness_stack *st);
/* Stops both servers and removes the state folder. Idempotent. */
void harness_stack_stop(harness_stack *st);
/* Stop or start one server of a running stack, keeping its data. */
void harness_nats_stop(harness_stack *st);
void harness_nats_start(harness_stack *st);
void harness_pg_stop(harness_stack *st);
void harness_pg_start(harness_stack *st);

/* A child process of the product, with the stack's environment
 * (HODEI_DATABASE_URL, HODEI_NATS_URL, HODEI_NATS_USER,
 * HODEI_NATS_PASSWORD_FILE, HODEI_API_KEY) plus extra "K=V" entries (NULL-ended,
 * may be NULL). stdout/stderr go to <state_dir>/<name>-<n>.log. */
typedef struct {
    pid_t pid;
    char log_path[600];
    char name[64];
} harness_proc;

/* argv[0] is a program name under HODEI_BIN ("hodei-outbox-relay") or a path. */
void harness_proc_start(harness_stack *st, harness_proc *p, const char *const *argv,
                        const char *const *extra_env);
/* Sends sig; waits up to timeout_ms for exit; returns the wait status, or -1
 * when it did not exit (then it was SIGKILLed). */
int harness_proc_stop(harness_proc *p, int sig, int64_t timeout_ms);
bool harness_proc_alive(harness_proc *p);
/* Waits for exit up to timeout_ms; returns the wait status or -1. */
int harness_proc_wait(harness_proc *p, int64_t timeout_ms);
/* true when the log file contains needle (polls up to timeout_ms). */
bool harness_log_contains(harness_proc *p, const char *needle, int64_t timeout_ms);
/* How many lines of the file at path (up to 127 bytes each) equal line;
 * 0 when it cannot be read. Tests count a job's runs this way. */
int harness_file_count_lines(const char *path, const char *line);
/* The last len - 1 bytes of a log file, NUL-terminated ("" when unreadable):
 * a failed test's stack folder, and the log with it, is removed afterwards,
 * so a message about a daemon quotes the end of its log. */
#define HARNESS_LOG_TAIL 2048
void harness_log_tail(const char *path, char *out, size_t len);

/* Runs a shell command with the stack's environment; returns its exit code;
 * stdout captured into out (NUL-terminated, truncated to out_len) when out != NULL. */
int harness_sh(harness_stack *st, char *out, size_t out_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* psql -tA against the stack; returns the first line of output as an int64,
 * or -1 on failure. */
int64_t harness_sql_i64(harness_stack *st, const char *sql);

/* PostgreSQL's server programs, as scripts/hodei-stack finds them:
 * $HODEI_STACK_PG_BIN, else the newest /usr/lib/postgresql/<major>/bin.
 * Aborts the test when there is none. */
void harness_pg_bin(char *out, size_t out_len);

/* A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"). Fails the test,
 * naming pid and field, when the file or the field cannot be read. */
long harness_status_kb(pid_t pid, const char *field);
/* The resident set of pid in kB (VmRSS), as harness_status_kb. */
long harness_rss_kb(pid_t pid);

/* A free TCP port on 127.0.0.1. */
int harness_free_port(void);

/* One HTTP/1.0 request to 127.0.0.1:port (a daemon's health.listen);
 * returns the status code, or -1 when nothing answered; the body is copied
 * into body (NUL-terminated, truncated to body_len). */
int harness_http(int port, const char *method, const char *path, char *body, size_t body_len);
/* GETs path every 50 ms until the status is want and the body holds text;
 * false after timeout_ms (body then holds the last answer). */
bool harness_http_wait(int port, const char *path, int want, const char *text, int64_t timeout_ms,
                       char *body, size_t body_len);

/* One sample of a daemon's GET /metrics on 127.0.0.1:port (its health.listen). name
 * is the sample as the exposition writes it, labels and all:
 * "hodei_jobs_queued_total", "hodei_jobs_finished_total{state=\"SUCCEEDED\"}". */
#define HARNESS_METRICS_MAX (1 << 20) /* the largest answer read */
/* Its value. Fails the test, naming port and sample, when the daemon does not answer
 * 200, has no such sample, or the sample's value is not a number. */
double harness_metric(int port, const char *name);
/* The same for a poll of a daemon that may be starting or gone: false when it did not
 * answer 200 (value untouched). A sample missing from an answer, or one whose value is
 * not a number, still fails the test. */
bool harness_metric_try(int port, const char *name, double *value);

#endif
