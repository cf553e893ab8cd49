/* The scheduler's parameters, lifecycle and main loop: wait for events (or
 * the fallback timer), run passes until nothing more can be assigned,
 * acknowledge the events once the pass committed. */
#include "sched.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/db.h"
#include "hodei/log.h"
#include "hodei/sched_strategy.h"
#include "hodei/store.h"
#include "hodei/time.h"
#include "sched_int.h"

#define SCHED_BACKOFF_MIN_MS 50
#define SCHED_BACKOFF_MAX_MS 2000
#define US_PER_MS 1000

sched_config sched_conf;

const hodei_cfg_param sched_params[SCHED_PARAMS_LEN] = {
    {.name = "scheduler.strategy",
     .type = HODEI_CFG_STRING,
     .default_value = "least-loaded",
     .max = 32,
     .offset = offsetof(sched_config, strategy),
     .choices = hodei_sched_strategy_names,
     .help = "round-robin, least-loaded, priority, resource-aware or cost-optimized;"
             " ConfigureScheduler overrides it at run time"},
    {.name = "scheduler.pass_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "1s",
     .min = 10,
     .max = 60000,
     .offset = offsetof(sched_config, pass_interval_ms),
     .help = "fallback pass when no event comes (retry backoffs, lost events)"},
    {.name = "scheduler.batch_max",
     .type = HODEI_CFG_INT,
     .default_value = "256",
     .min = 1,
     .max = SCHED_BATCH_MAX,
     .offset = offsetof(sched_config, batch_max),
     .help = "pending jobs locked and matched per pass"},
    {.name = "scheduler.lookahead",
     .type = HODEI_CFG_INT,
     .default_value = "32",
     .min = 0,
     .max = SCHED_BATCH_MAX,
     .offset = offsetof(sched_config, lookahead),
     .help = "pending jobs locked per pass beyond 4 per ready worker (within batch_max):"
             " how many unmet jobs one pass sees, and may ask workers for"},
    {.name = "scheduler.workers_max",
     .type = HODEI_CFG_INT,
     .default_value = "1024",
     .min = 1,
     .max = SCHED_WORKERS_MAX,
     .offset = offsetof(sched_config, workers_max),
     .help = "ready workers locked per pass"},
    {.name = "scheduler.events_max",
     .type = HODEI_CFG_INT,
     .default_value = "512",
     .min = 1,
     .max = SCHED_EVENTS_MAX,
     .offset = offsetof(sched_config, events_max),
     .help = "events taken from the consumer for one pass"},
    {.name = "scheduler.provision_max",
     .type = HODEI_CFG_INT,
     .default_value = "64",
     .min = 0,
     .max = SCHED_PROVISION_MAX,
     .offset = offsetof(sched_config, provision_max),
     .help = "workers requested per pass at most (0 = never provision)"},
    {.name = "scheduler.default_provider",
     .type = HODEI_CFG_STRING,
     .default_value = "process",
     .max = SCHED_PROVIDER_NAME_MAX,
     .offset = offsetof(sched_config, default_provider),
     .required = true,
     .help = "provider asked for workers for jobs that name none"},
    {.name = "scheduler.default_image_provider",
     .type = HODEI_CFG_STRING,
     .default_value = "docker",
     .max = SCHED_PROVIDER_NAME_MAX,
     .offset = offsetof(sched_config, default_image_provider),
     .required = true,
     .help = "provider asked for workers for jobs that name an image but no provider"},
    {.name = "scheduler.stats_interval",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "60s",
     .min = 100,
     .max = 3600000,
     .offset = offsetof(sched_config, stats_interval_ms),
     .help = "how often the counters line is logged (when anything happened)"},
    {.name = "scheduler.lock_key",
     .type = HODEI_CFG_INT,
     .default_value = "4848484852",
     .min = INT64_MIN,
     .max = INT64_MAX - 2,
     .offset = offsetof(sched_config, lock_key),
     .help = "PostgreSQL advisory lock keys (this one and the next) by which replicas sharing"
             " them run one pass at a time and skip a pass another one is about to run"},
};

/* ------------------------------------------------------------- database */

static void sched_db_backoff(sched *s)
{
    hodei_daemon_backoff(s->d, &s->db_backoff_ms, SCHED_BACKOFF_MIN_MS, SCHED_BACKOFF_MAX_MS);
}

static bool sched_db_ready(sched *s)
{
    hodei_err e = {0};

    if (s->conn)
        return true;
    /* The gate's locks (sched_pass.c) stop every replica's passes while a
     * pass holds them: a replica whose host vanished must lose them within
     * seconds, not the kernel's two hours (hodei_db_lock_session). */
    if (hodei_db_connect(s->common->database_url, s->common->database_connect_timeout_ms, &s->conn,
                         &e) != HODEI_OK ||
        hodei_db_lock_session(s->conn, &e) != HODEI_OK) {
        HLOG_WARN("database unavailable, retrying: %s", e.msg);
        hodei_daemon_report(s->d, "database", false, e.msg);
        PQfinish(s->conn);
        s->conn = NULL;
        sched_db_backoff(s);
        return false;
    }
    if (s->db_backoff_ms)
        HLOG_INFO("database reachable again");
    s->db_backoff_ms = 0;
    hodei_daemon_report(s->d, "database", true, NULL);
    s->listen_pid = PQbackendPID(s->conn);
    s->listening = false;
    s->next_listen_try_ms = 0;
    s->next_pass_ms = 0; /* notifications may have been missed meanwhile */
    return true;
}

static void sched_db_drop(sched *s, const char *why)
{
    HLOG_WARN("database connection lost, reconnecting: %s", why);
    hodei_daemon_report(s->d, "database", false, why);
    PQfinish(s->conn);
    s->conn = NULL;
}

/* One replica listens: every outbox commit notifies every listener, and
 * woken together N replicas ran N passes for one commit (the pass gate
 * then made all but one skip or wait). The listener holds session lock
 * lock_key + 2; the others try it every SCHED_LISTEN_RETRY_MS, so when the
 * listener's session ends (a stop, a crash, a lost host) another one
 * listens within a second and runs a pass at once for what it missed. */
static void sched_listen_try(sched *s)
{
    char key[24];
    const char *params[1] = {key};
    PGresult *res = NULL;
    hodei_err e = {0};

    s->next_listen_try_ms = hodei_mono_ms() + SCHED_LISTEN_RETRY_MS;
    snprintf(key, sizeof key, "%" PRId64, s->cfg->lock_key + 2);
    hodei_status st =
        hodei_db_exec(s->conn, "SELECT pg_try_advisory_lock($1::bigint)", 1, params, &res, &e);
    bool got = st == HODEI_OK && PQntuples(res) == 1 && hodei_db_get_str(res, 0, 0)[0] == 't';
    PQclear(res);
    if (got)
        st = hodei_db_exec(s->conn, "LISTEN " SCHED_OUTBOX_CHANNEL, 0, NULL, NULL, &e);
    if (st != HODEI_OK) {
        if (hodei_db_status_broken(st))
            sched_db_drop(s, e.msg);
        else
            HLOG_WARN("listener lock: %s", e.msg);
        return;
    }
    if (got) {
        s->listening = true;
        s->next_pass_ms = 0; /* what committed before we listened */
        HLOG_INFO("listening on %s: this replica is woken by commits", SCHED_OUTBOX_CHANNEL);
    }
}

/* --------------------------------------------------------------- passes */

static void sched_count(sched *s, const sched_pass_stats *ps, int64_t us)
{
    if (ps->skipped) {
        s->skipped++;
        hodei_metric_add(s->m.skipped, 1);
        return;
    }
    s->passes++;
    s->assigned += ps->assigned;
    s->provisioned += ps->provisioned;
    hodei_metric_add(s->m.passes, 1);
    hodei_metric_add(s->m.assigned, ps->assigned);
    hodei_metric_add(s->m.provisioned, ps->provisioned);
    hodei_metric_add(s->m.pass_seconds, us > 0 ? (uint64_t)us : 0);
    hodei_metric_observe_micro(s->m.pass_duration, us);
    s->pass_us_sum += us;
    if (us > s->pass_us_max)
        s->pass_us_max = us;
    if (ps->assigned > 0)
        HLOG_DEBUG("pass: jobs=%zu workers=%zu assigned=%zu provisioned=%zu us=%" PRId64, ps->jobs,
                   ps->workers, ps->assigned, ps->provisioned, us);
}

/* Runs passes until one leaves nothing more to assign. false when the
 * database failed (the events are then redelivered later). */
static bool sched_passes(sched *s)
{
    hodei_err e = {0};
    int retries = 0;

    s->next_pass_ms = hodei_mono_ms() + s->cfg->pass_interval_ms;
    for (;;) {
        sched_pass_stats ps;
        int64_t t0 = hodei_mono_ns();
        hodei_status st = sched_pass_run(s, &ps, &e);
        if (hodei_db_conflict_retry(st, &retries))
            continue; /* serialization failure or deadlock: nothing written, run again */
        if (st != HODEI_OK) {
            if (hodei_db_status_broken(st))
                sched_db_drop(s, e.msg);
            else
                HLOG_ERROR("pass failed, rolled back: %s", e.msg);
            return false;
        }
        sched_count(s, &ps, (hodei_mono_ns() - t0) / 1000);
        if (ps.skipped || ps.jobs < (size_t)s->cfg->batch_max || ps.assigned == 0 ||
            hodei_daemon_stopping(s->d))
            return true;
    }
}

static void sched_stats(sched *s)
{
    int64_t now = hodei_mono_ms();

    if (now < s->next_stats_ms)
        return;
    s->next_stats_ms = now + s->cfg->stats_interval_ms;
    if (s->passes == 0 && s->skipped == 0 && s->events == 0)
        return;
    HLOG_INFO("stats: passes=%" PRIu64 " skipped=%" PRIu64 " assigned=%" PRIu64
              " provisioned=%" PRIu64 " events=%" PRIu64 " pass_avg_us=%" PRId64
              " pass_max_us=%" PRId64 " strategy=%s",
              s->passes, s->skipped, s->assigned, s->provisioned, s->events,
              s->passes ? s->pass_us_sum / (int64_t)s->passes : 0, s->pass_us_max,
              hodei_sched_strategy_name(s->strategy));
    s->passes = s->skipped = s->assigned = s->provisioned = s->events = 0;
    s->pass_us_sum = s->pass_us_max = 0;
}

/* Whether a notification's payload (the event types of one outbox INSERT,
 * comma-separated; empty from an older schema) calls for a pass. */
static bool sched_payload_triggers(const char *payload)
{
    static const char *const types[] = {HODEI_EVT_JOB_QUEUED, HODEI_EVT_WORKER_READY,
                                        HODEI_EVT_PROVISION_FAILED};
    if (!payload || !payload[0])
        return true;
    for (const char *p = payload; *p;) {
        size_t len = strcspn(p, ",");
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            if (strlen(types[i]) == len && strncmp(p, types[i], len) == 0)
                return true;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

/* Drains the connection's notifications; true when another session wrote
 * an event to the outbox that can make a pass worth running (our own
 * commits notify us too). */
static bool sched_notified(sched *s)
{
    bool wake = false;
    PGnotify *n;

    if (PQconsumeInput(s->conn) != 1) {
        sched_db_drop(s, PQerrorMessage(s->conn));
        return false;
    }
    while ((n = PQnotifies(s->conn)) != NULL) {
        wake = wake || (n->be_pid != s->listen_pid && sched_payload_triggers(n->extra));
        PQfreemem(n);
    }
    return wake;
}

/* Sleeps until an outbox notification, a batch of events, the fallback
 * timer or a stop; then runs the passes they call for. */
static void sched_wait(sched *s, int64_t wait_ms)
{
    struct pollfd fds[3] = {
        {.fd = PQsocket(s->conn), .events = POLLIN},
        {.fd = sched_feed_fd(s), .events = POLLIN},
        {.fd = hodei_daemon_stop_fd(s->d), .events = POLLIN},
    };
    sched_events ev;
    /* a pass's queries may have read notifications already: no poll then */
    bool notified = sched_notified(s);

    if (!notified && s->conn && poll(fds, 3, (int)wait_ms) < 0 && errno != EINTR)
        HLOG_WARN("poll: %s", strerror(errno));
    notified = notified || (s->conn && sched_notified(s));
    bool have = sched_feed_take(s, &ev);
    if (have) {
        HLOG_DEBUG("events: n=%zu pass=%s", ev.n, ev.trigger ? "yes" : "no");
        s->events += ev.n;
        hodei_metric_add(s->m.events, ev.n);
    }
    bool ok = true;
    if (notified || (have && ev.trigger))
        ok = s->conn && sched_passes(s); /* no connection: redelivered later */
    if (have)
        sched_feed_done(s, &ev, ok);
}

hodei_status sched_run(hodei_daemon *d, hodei_err *err)
{
    sched *s = hodei_daemon_state(d);
    hodei_status st = sched_feed_start(s, err);

    while (st == HODEI_OK && !hodei_daemon_stopping(d)) {
        if (!sched_db_ready(s))
            continue;
        if (!s->listening && hodei_mono_ms() >= s->next_listen_try_ms) {
            sched_listen_try(s);
            continue;
        }
        int64_t now = hodei_mono_ms();
        if (now >= s->next_pass_ms) {
            if (!sched_passes(s) && !hodei_daemon_stopping(d))
                sched_db_backoff(s);
            continue;
        }
        int64_t until = s->next_pass_ms;
        if (!s->listening && s->next_listen_try_ms < until)
            until = s->next_listen_try_ms;
        sched_wait(s, until > now ? until - now : 0);
        sched_stats(s);
    }
    return st;
}

/* ------------------------------------------------------------ lifecycle */

static bool sched_alloc(sched *s)
{
    size_t nj = (size_t)s->cfg->batch_max, nw = (size_t)s->cfg->workers_max;

    s->jobs = calloc(nj, sizeof *s->jobs);
    s->job_epoch = calloc(nj, sizeof *s->job_epoch);
    s->job_due_ns = calloc(nj, sizeof *s->job_due_ns);
    s->assign = calloc(nj, sizeof *s->assign);
    s->workers = calloc(nw, sizeof *s->workers);
    s->taken = calloc(nw, sizeof *s->taken);
    s->seen = calloc(1, sizeof *s->seen);
    for (int a = 0; a < SCHED_ARRAYS; a++)
        hodei_buf_init(&s->arr[a], SCHED_ARRAY_TEXT_MAX);
    hodei_assign_set_init(&s->assign_set, SCHED_ARRAY_TEXT_MAX);
    hodei_outbox_rows_init(&s->provision_events, SCHED_ARRAY_TEXT_MAX);
    return s->jobs && s->job_epoch && s->job_due_ns && s->assign && s->workers && s->taken &&
           s->seen;
}

static void sched_free(sched *s)
{
    free(s->jobs);
    free(s->job_epoch);
    free(s->job_due_ns);
    free(s->assign);
    free(s->workers);
    free(s->taken);
    free(s->seen);
    for (int a = 0; a < SCHED_ARRAYS; a++)
        hodei_buf_fini(&s->arr[a]);
    hodei_assign_set_fini(&s->assign_set);
    hodei_outbox_rows_fini(&s->provision_events);
    free(s);
}

hodei_status sched_init(hodei_daemon *d, hodei_err *err)
{
    sched *s = calloc(1, sizeof *s);

    if (!s)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "scheduler: out of memory");
    s->d = d;
    s->cfg = &sched_conf;
    s->common = hodei_daemon_common(d);
    hodei_db_statement_cache(s->common->database_prepare);
    s->instance = hodei_daemon_instance(d);
    HODEI_ASSERT(hodei_sched_strategy_parse(sched_conf.strategy, &s->default_strategy));
    s->strategy = s->default_strategy;
    if (!sched_alloc(s)) {
        sched_free(s);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "scheduler: out of memory");
    }
    s->next_stats_ms = hodei_mono_ms() + sched_conf.stats_interval_ms;
    s->feed.event_fd = -1;
    s->m.passes = hodei_daemon_counter(d, "hodei_scheduler_passes_total",
                                       "Scheduling passes run (each one transaction).");
    s->m.skipped =
        hodei_daemon_counter(d, "hodei_scheduler_passes_skipped_total",
                             "Wake-ups that ran no pass: another replica was about to run one.");
    s->m.assigned = hodei_daemon_counter(d, "hodei_scheduler_jobs_assigned_total",
                                         "Jobs assigned to a worker by a pass.");
    s->m.provisioned = hodei_daemon_counter(d, "hodei_scheduler_workers_requested_total",
                                            "Workers a pass asked a provider for.");
    s->m.events = hodei_daemon_counter(d, "hodei_scheduler_events_total",
                                       "JetStream events the scheduler took.");
    s->m.pass_seconds = hodei_daemon_counter_micro(d, "hodei_scheduler_pass_seconds_total",
                                                   "Time spent in passes.");
    static const double fast[] = {HODEI_BUCKETS_FAST};
    s->m.queue_wait = hodei_daemon_histogram(
        d, "hodei_job_queue_wait_seconds",
        "From a job's queueing (a retry: the end of its backoff) to its assignment by a pass"
        " (job-api reports the jobs it hands to freed workers).",
        fast, sizeof fast / sizeof fast[0]);
    s->m.pass_duration = hodei_daemon_histogram(d, "hodei_scheduler_pass_duration_seconds",
                                                "Scheduling passes, each one transaction.", fast,
                                                sizeof fast / sizeof fast[0]);
    hodei_daemon_set_state(d, s);
    HLOG_INFO("starting: instance=%s strategy=%s pass_interval_ms=%" PRId64 " batch_max=%" PRId64
              " workers_max=%" PRId64 " default_provider=%s",
              s->instance, sched_conf.strategy, sched_conf.pass_interval_ms, sched_conf.batch_max,
              sched_conf.workers_max, sched_conf.default_provider);
    return HODEI_OK;
}

void sched_fini(hodei_daemon *d)
{
    sched *s = hodei_daemon_state(d);

    if (!s)
        return;
    sched_feed_stop(s);
    PQfinish(s->conn);
    sched_free(s);
    hodei_daemon_set_state(d, NULL);
    hodei_bus_global_shutdown(); /* no nats_probe: the skeleton leaves nats.c to us */
}
