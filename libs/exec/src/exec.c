/* One job attempt: plan, start, then a poll loop over the output pipes, the
 * child's pidfd and the cancel eventfd, with the timeout, the kill grace and
 * the batch age as poll deadlines. */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_int.h"
#include "hodei/assert.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define EXEC_DEFAULT_KILL_GRACE_MS 5000
#define EXEC_PASSWD_BUF 16384 /* getpwnam_r scratch */
#define EXEC_DEFAULT_BATCH_LINES 100
#define EXEC_DEFAULT_BATCH_BYTES (1024 * 1024)
#define EXEC_DEFAULT_BATCH_INTERVAL_MS 100
#define EXEC_DEFAULT_DRAIN_TIMEOUT_MS 2000
#define EXEC_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define EXEC_OPT_MS_MAX INT64_C(604800000) /* 7 days, for every duration option */
/* Without a pidfd, how often the child is polled for its exit. */
#define EXEC_REAP_TICK_MS 20
#define EXEC_READ_CHUNK (64 * 1024)

struct hodei_exec_handle {
    atomic_bool cancelled;
    int event_fd;
};

/* Slots of the poll set; an unused slot has fd -1, which poll skips. */
enum { SLOT_OUT = EXEC_STREAM_OUT, SLOT_ERR = EXEC_STREAM_ERR, SLOT_PID, SLOT_CANCEL, SLOT_N };

typedef struct {
    const hodei_exec_opts *opts;
    hodei_exec_handle *h;
    exec_output out;
    exec_child child;
    char *chunk;                /* EXEC_READ_CHUNK */
    int64_t timeout_ms;         /* 0 = none */
    int64_t timeout_at_ms;      /* monotonic; -1 = none */
    int64_t kill_at_ms;         /* SIGKILL due after SIGTERM; -1 = none */
    int64_t drain_until_ms;     /* set once the child is gone */
    Hodei__V1__JobState forced; /* TIMEOUT or CANCELLED once decided */
    bool exited;
    bool status_known;
    int wait_status;
    bool drain_cut; /* pipes closed before end-of-file */
} exec_run;

/* ------------------------------------------------------------ handle */

hodei_status hodei_exec_handle_create(hodei_exec_handle **out, hodei_err *err)
{
    *out = NULL;
    hodei_exec_handle *h = calloc(1, sizeof *h);
    if (!h)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "exec: out of memory for a handle");
    atomic_init(&h->cancelled, false);
    h->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (h->event_fd < 0) {
        int e = errno;
        free(h);
        return hodei_err_set(err, HODEI_ERR_IO, "exec: eventfd: %s", strerror(e));
    }
    *out = h;
    return HODEI_OK;
}

void hodei_exec_handle_destroy(hodei_exec_handle *h)
{
    if (!h)
        return;
    close(h->event_fd);
    free(h);
}

void hodei_exec_cancel(hodei_exec_handle *h)
{
    HODEI_ASSERT(h);
    atomic_store(&h->cancelled, true);
    uint64_t one = 1;
    ssize_t n = write(h->event_fd, &one, sizeof one);
    (void)n; /* EAGAIN only when the counter is saturated: already signalled */
}

bool hodei_exec_cancelled(const hodei_exec_handle *h)
{
    return h && atomic_load(&h->cancelled);
}

/* ------------------------------------------------------------ options */

void hodei_exec_opts_default(hodei_exec_opts *o)
{
    memset(o, 0, sizeof *o);
    o->kill_grace_ms = EXEC_DEFAULT_KILL_GRACE_MS;
    o->batch_lines_max = EXEC_DEFAULT_BATCH_LINES;
    o->batch_bytes_max = EXEC_DEFAULT_BATCH_BYTES;
    o->batch_interval_ms = EXEC_DEFAULT_BATCH_INTERVAL_MS;
    o->drain_timeout_ms = EXEC_DEFAULT_DRAIN_TIMEOUT_MS;
    const char *tmp = getenv("TMPDIR");
    o->tmp_dir = tmp && tmp[0] == '/' ? tmp : "/tmp";
    o->path = EXEC_DEFAULT_PATH;
    const char *home = getenv("HOME");
    o->home = home && home[0] == '/' ? home : "/";
    o->job_cgroups = true;
}

hodei_status hodei_exec_user_lookup(const char *name, hodei_exec_user *out, hodei_err *err)
{
    memset(out, 0, sizeof *out);
    if (!name || !name[0] || strlen(name) > HODEI_EXEC_USER_NAME_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "user: 1..%d bytes required",
                             HODEI_EXEC_USER_NAME_MAX);
    struct passwd pw, *found = NULL;
    char buf[EXEC_PASSWD_BUF];
    int rc = getpwnam_r(name, &pw, buf, sizeof buf, &found);
    if (rc != 0 || !found)
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "user '%s': %s", name,
                             rc ? strerror(rc) : "no such user on this host");
    int n = HODEI_EXEC_GROUPS_MAX;
    if (getgrouplist(name, pw.pw_gid, out->groups, &n) < 0)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "user '%s': in more than %d groups", name,
                             HODEI_EXEC_GROUPS_MAX);
    hodei_strlcpy(out->name, name, sizeof out->name);
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    out->n_groups = n;
    if (!pw.pw_dir || pw.pw_dir[0] != '/' || !hodei_strlcpy(out->home, pw.pw_dir, sizeof out->home))
        hodei_strlcpy(out->home, "/", sizeof out->home);
    return HODEI_OK;
}

static hodei_status exec_check_ms(const char *name, int64_t v, hodei_err *err)
{
    if (v < 0 || v > EXEC_OPT_MS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be 0..%lld, got %lld", name,
                             (long long)EXEC_OPT_MS_MAX, (long long)v);
    return HODEI_OK;
}

static hodei_status exec_check_opts(const hodei_exec_opts *o, hodei_err *err)
{
    if (o->batch_lines_max < 1 || o->batch_lines_max > HODEI_EXEC_BATCH_LINES_LIMIT)
        return hodei_err_set(err, HODEI_ERR_INVALID, "opts.batch_lines_max: must be 1..%d",
                             HODEI_EXEC_BATCH_LINES_LIMIT);
    if (o->batch_bytes_max < 1 || o->batch_bytes_max > HODEI_EXEC_BATCH_BYTES_LIMIT)
        return hodei_err_set(err, HODEI_ERR_INVALID, "opts.batch_bytes_max: must be 1..%d",
                             HODEI_EXEC_BATCH_BYTES_LIMIT);
    if (!o->tmp_dir || o->tmp_dir[0] != '/' || !o->path || !o->home)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "opts: tmp_dir (absolute), path and home are required");
    hodei_status st = exec_check_ms("opts.default_timeout_ms", o->default_timeout_ms, err);
    if (st == HODEI_OK)
        st = exec_check_ms("opts.kill_grace_ms", o->kill_grace_ms, err);
    if (st == HODEI_OK)
        st = exec_check_ms("opts.batch_interval_ms", o->batch_interval_ms, err);
    if (st == HODEI_OK)
        st = exec_check_ms("opts.drain_timeout_ms", o->drain_timeout_ms, err);
    return st;
}

static hodei_status exec_check_args(const hodei_exec_opts *opts, const Hodei__V1__JobSpec *spec,
                                    const char *job_id, int attempt, const hodei_exec_callbacks *cb,
                                    hodei_err *err)
{
    if (!opts || !spec || !job_id || !cb || !cb->on_batch)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "exec: opts, spec, job_id and cb->on_batch are required");
    if (attempt < 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "attempt: must be >= 0, got %d", attempt);
    if (spec->timeout_ms < 0 || spec->timeout_ms > EXEC_OPT_MS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "spec.timeout_ms: must be 0..%lld",
                             (long long)EXEC_OPT_MS_MAX);
    return exec_check_opts(opts, err);
}

/* ------------------------------------------------------------ the loop */

static void run_signal_group(const exec_run *r, int sig)
{
    if (kill(-r->child.pid, sig) != 0 && errno != ESRCH)
        HLOG_WARN("exec: kill(-%d, %d): %s", (int)r->child.pid, sig, strerror(errno));
}

/* SIGTERM to the group now, SIGKILL after the grace period. */
static void run_terminate(exec_run *r, Hodei__V1__JobState why)
{
    if (r->forced || r->exited)
        return;
    r->forced = why;
    run_signal_group(r, SIGTERM);
    r->kill_at_ms = hodei_mono_ms() + r->opts->kill_grace_ms;
}

/* When the child has exited: kill what is left of its group while its
 * zombie still holds the group id (no reuse possible), then reap it. */
static void run_check_exit(exec_run *r)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc = waitid(P_PID, (id_t)r->child.pid, &si, WEXITED | WNOHANG | WNOWAIT);
    if (rc != 0 && errno == EINTR)
        return;
    if (rc == 0 && si.si_pid == 0)
        return; /* still running */
    if (rc == 0) {
        run_signal_group(r, SIGKILL);
        while (waitpid(r->child.pid, &r->wait_status, 0) < 0 && errno == EINTR)
            ;
        r->status_known = true;
    } else {
        /* Reaped by someone else (see exec.h): the group id is no longer
         * pinned by the zombie, so signalling it could hit a stranger. */
        HLOG_WARN("exec: waitid(%d): %s", (int)r->child.pid, strerror(errno));
    }
    r->exited = true;
    r->kill_at_ms = -1;
    r->drain_until_ms = hodei_mono_ms() + r->opts->drain_timeout_ms;
}

static void run_close_stream(exec_run *r, int s)
{
    exec_output_eof(&r->out, s);
    close(r->child.fd[s]);
    r->child.fd[s] = -1;
}

static void run_read(exec_run *r, int s)
{
    ssize_t n = read(r->child.fd[s], r->chunk, EXEC_READ_CHUNK);
    if (n > 0) {
        exec_output_feed(&r->out, s, r->chunk, (size_t)n);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0)
        HLOG_WARN("exec: reading the job's output: %s", strerror(errno));
    run_close_stream(r, s);
}

static void run_drain_cut(exec_run *r)
{
    for (int s = 0; s < EXEC_STREAM_COUNT; s++) {
        if (r->child.fd[s] >= 0) {
            r->drain_cut = true;
            run_close_stream(r, s);
        }
    }
    if (r->drain_cut)
        HLOG_WARN("exec: job %d exited but its output stayed open; closed unread",
                  (int)r->child.pid);
}

static void run_deadlines(exec_run *r, int64_t now)
{
    if (!r->exited && r->timeout_at_ms >= 0 && now >= r->timeout_at_ms)
        run_terminate(r, HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT);
    if (!r->exited && r->kill_at_ms >= 0 && now >= r->kill_at_ms) {
        run_signal_group(r, SIGKILL);
        r->kill_at_ms = -1;
    }
    int64_t due = exec_output_due_ms(&r->out);
    if (due >= 0 && now >= due)
        exec_output_flush(&r->out);
    if (r->exited && now >= r->drain_until_ms)
        run_drain_cut(r);
}

static int64_t run_earliest(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* poll timeout: until the nearest deadline, -1 when there is none. */
static int run_wait_ms(const exec_run *r, int64_t now)
{
    int64_t at = exec_output_due_ms(&r->out);
    if (!r->exited) {
        at = run_earliest(at, r->forced ? -1 : r->timeout_at_ms);
        at = run_earliest(at, r->kill_at_ms);
        if (r->child.pidfd < 0)
            at = run_earliest(at, now + EXEC_REAP_TICK_MS);
    } else {
        at = run_earliest(at, r->drain_until_ms);
    }
    if (at < 0)
        return -1;
    int64_t wait = at - now;
    return wait <= 0 ? 0 : (int)(wait > INT32_MAX ? INT32_MAX : wait);
}

static void run_fill_poll(const exec_run *r, struct pollfd pf[SLOT_N])
{
    for (int i = 0; i < SLOT_N; i++) {
        pf[i].fd = -1;
        pf[i].events = POLLIN;
        pf[i].revents = 0;
    }
    pf[SLOT_OUT].fd = r->child.fd[EXEC_STREAM_OUT];
    pf[SLOT_ERR].fd = r->child.fd[EXEC_STREAM_ERR];
    if (!r->exited)
        pf[SLOT_PID].fd = r->child.pidfd;
    if (!r->exited && !r->forced && r->h)
        pf[SLOT_CANCEL].fd = r->h->event_fd;
}

static bool run_done(const exec_run *r)
{
    return r->exited && r->child.fd[EXEC_STREAM_OUT] < 0 && r->child.fd[EXEC_STREAM_ERR] < 0;
}

static void run_loop(exec_run *r)
{
    while (!run_done(r)) {
        int64_t now = hodei_mono_ms();
        run_deadlines(r, now);
        if (run_done(r))
            break;
        struct pollfd pf[SLOT_N];
        run_fill_poll(r, pf);
        int n = poll(pf, SLOT_N, run_wait_ms(r, now));
        if (n < 0 && errno != EINTR) {
            HLOG_ERROR("exec: poll: %s", strerror(errno));
            hodei_sleep_ms(EXEC_REAP_TICK_MS); /* ENOMEM: try again, slowly */
        }
        for (int s = 0; n > 0 && s < EXEC_STREAM_COUNT; s++) {
            if (pf[s].revents)
                run_read(r, s);
        }
        if (n > 0 && pf[SLOT_CANCEL].revents) {
            uint64_t count;
            ssize_t got = read(r->h->event_fd, &count, sizeof count);
            (void)got;
            run_terminate(r, HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED);
        }
        if (!r->exited && (r->child.pidfd < 0 || (n > 0 && pf[SLOT_PID].revents)))
            run_check_exit(r);
    }
    exec_output_flush(&r->out);
}

/* ------------------------------------------------------------ results */

static void result_init(hodei_exec_result *out)
{
    memset(out, 0, sizeof *out);
    out->state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
    out->exit_code = HODEI_EXEC_EXIT_NONE;
    out->started_us = out->finished_us = hodei_wall_us();
}

static void result_from_run(const exec_run *r, hodei_exec_result *out)
{
    int st = r->wait_status;
    out->exit_code = !r->status_known  ? HODEI_EXEC_EXIT_NONE
                     : WIFEXITED(st)   ? WEXITSTATUS(st)
                     : WIFSIGNALED(st) ? 128 + WTERMSIG(st)
                                       : HODEI_EXEC_EXIT_NONE;
    if (r->forced == HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT) {
        out->state = r->forced;
        snprintf(out->error, sizeof out->error, "timed out after %lld ms",
                 (long long)r->timeout_ms);
    } else if (r->forced == HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED) {
        out->state = r->forced;
        snprintf(out->error, sizeof out->error, "cancelled");
    } else if (!r->status_known) {
        snprintf(out->error, sizeof out->error, "exit status lost (reaped elsewhere)");
    } else if (WIFSIGNALED(st)) {
        snprintf(out->error, sizeof out->error, "killed by signal %d (%s)", WTERMSIG(st),
                 sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?");
    } else if (out->exit_code != 0) {
        snprintf(out->error, sizeof out->error, "exited with code %d", out->exit_code);
    } else {
        out->state = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    }
    out->lines = r->out.seq;
    out->batches = r->out.batches;
}

/* ------------------------------------------------------------ run */

static void run_init(exec_run *r, const hodei_exec_opts *opts, const Hodei__V1__JobSpec *spec,
                     hodei_exec_handle *h)
{
    memset(r, 0, sizeof *r);
    r->opts = opts;
    r->h = h;
    r->child.pid = 0;
    r->child.pidfd = -1;
    r->child.fd[EXEC_STREAM_OUT] = r->child.fd[EXEC_STREAM_ERR] = -1;
    r->timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : opts->default_timeout_ms;
    r->timeout_at_ms = -1;
    r->kill_at_ms = -1;
    r->drain_until_ms = -1;
}

#define RUN_MIB (1024.0 * 1024.0)

/* A job whose limits cannot be enforced says so in its first output line. */
static void run_cg_note(exec_run *r, const exec_cg *cg, const char *job_id)
{
    char line[EXEC_CG_NOTE_MAX + 160];
    if (cg->own || !cg->note[0])
        return;
    HLOG_WARN("job %s: no cgroup of its own (%s); %s", job_id, cg->note,
              cg->enforced ? "it runs under this worker's limits" : "its limits are not enforced");
    if (cg->enforced)
        return;
    int n = snprintf(line, sizeof line,
                     "hodei-worker: warning: the cpu and memory this job asks for are not"
                     " enforced here (%s)\n",
                     cg->note);
    exec_output_feed(&r->out, EXEC_STREAM_ERR, line,
                     n < (int)sizeof line ? (size_t)n : sizeof line);
}

/* A job that failed after an OOM kill in its cgroup ran out of memory. */
static void run_cg_result(const exec_cg *cg, hodei_exec_result *out)
{
    if (out->state != HODEI__V1__JOB_STATE__JOB_STATE_FAILED || !exec_cg_oom(cg))
        return;
    if (cg->mem_limit > 0)
        snprintf(out->error, sizeof out->error,
                 "out of memory: the job went over %s memory limit of %.1f MiB and was killed"
                 " (exit code %d)",
                 cg->own ? "its" : "its worker's", (double)cg->mem_limit / RUN_MIB, out->exit_code);
    else
        snprintf(out->error, sizeof out->error,
                 "out of memory: the job was killed by the kernel's OOM killer (exit code %d)",
                 out->exit_code);
}

/* Starts the child and runs it to its end. */
static hodei_status run_child(exec_run *r, const exec_plan *plan, const hodei_exec_callbacks *cb,
                              hodei_exec_result *out, hodei_err *err)
{
    out->started_us = hodei_wall_us();
    hodei_status st = exec_child_start(plan, &r->child, out->error, sizeof out->error, err);
    if (st != HODEI_OK)
        return st;
    if (r->child.pid == 0) {
        out->exit_code = HODEI_EXEC_EXIT_START_FAILED;
        return HODEI_OK;
    }
    if (cb->on_start)
        cb->on_start(cb->user, r->child.pid);
    if (r->timeout_ms > 0)
        r->timeout_at_ms = hodei_mono_ms() + r->timeout_ms;
    run_loop(r);
    result_from_run(r, out);
    return HODEI_OK;
}

static hodei_status run_prepared(exec_run *r, const Hodei__V1__JobSpec *spec, const char *job_id,
                                 int attempt, const hodei_exec_secret *secrets, size_t n_secrets,
                                 const hodei_exec_callbacks *cb, hodei_exec_result *out,
                                 hodei_err *err)
{
    exec_redactor red;
    exec_plan plan;
    hodei_status st = exec_redactor_init(&red, secrets, n_secrets, err);
    if (st != HODEI_OK)
        return st;
    st = exec_plan_build(&plan, r->opts, spec, job_id, attempt, secrets, n_secrets, err);
    if (st != HODEI_OK)
        goto out_plan;
    st = exec_output_init(&r->out, r->opts, &red, cb, err);
    if (st != HODEI_OK)
        goto out_plan;
    r->chunk = malloc(EXEC_READ_CHUNK);
    if (!r->chunk) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "exec: out of memory for reads");
        goto out_output;
    }
    exec_cg cg;
    exec_cg_open(&cg, r->opts, spec, job_id, attempt);
    plan.cg_fd = cg.procs_fd;
    plan.n_cg = cg.n;
    run_cg_note(r, &cg, job_id);
    st = run_child(r, &plan, cb, out, err);
    if (st == HODEI_OK)
        run_cg_result(&cg, out);
    exec_cg_fini(&cg);
    exec_child_close(&r->child);
    explicit_bzero(r->chunk, EXEC_READ_CHUNK); /* raw output, secrets unredacted */
    free(r->chunk);
out_output:
    exec_output_fini(&r->out);
out_plan:
    exec_plan_fini(&plan);
    exec_redactor_fini(&red);
    return st;
}

hodei_status hodei_exec_run(const hodei_exec_opts *opts, const Hodei__V1__JobSpec *spec,
                            const char *job_id, int attempt, const hodei_exec_secret *secrets,
                            size_t n_secrets, const hodei_exec_callbacks *cb, hodei_exec_handle *h,
                            hodei_exec_result *out, hodei_err *err)
{
    HODEI_ASSERT(out);
    hodei_err local;
    if (!err)
        err = &local;
    hodei_err_clear(err);
    result_init(out);
    hodei_status st = exec_check_args(opts, spec, job_id, attempt, cb, err);
    if (st == HODEI_OK && hodei_exec_cancelled(h)) {
        out->state = HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED;
        snprintf(out->error, sizeof out->error, "cancelled before start");
        return HODEI_OK;
    }
    if (st == HODEI_OK) {
        exec_run r;
        run_init(&r, opts, spec, h);
        st = run_prepared(&r, spec, job_id, attempt, secrets, n_secrets, cb, out, err);
    }
    if (st != HODEI_OK) {
        out->state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
        out->exit_code = HODEI_EXEC_EXIT_NONE;
        hodei_strlcpy(out->error, err->msg, sizeof out->error);
    }
    out->finished_us = hodei_wall_us();
    return st;
}
