/* hodei-worker, private to worker-agent/: the agent's state shared by its
 * parts. Threads:
 *   - the daemon's run thread holds the session (session.c): Register, the
 *     WorkerStream with its receive loop and timers, reconnects;
 *   - the sender (sender.c) is the only thread that writes to the stream;
 *   - the runner (runner.c) runs one job at a time with libs/exec.
 * Everything below the "guarded by mu" line is read and written under mu. */
#ifndef HODEI_WORKER_AGENT_H
#define HODEI_WORKER_AGENT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hodei/artifact.h"
#include "hodei/daemon.h"
#include "hodei/exec.h"
#include "hodei/id.h"
#include "hodei/rpc.h"
#include "hodei/status.h"
#include "hodei/v1/worker.pb-c.h"

#define AGENT_VERSION "0.1.0"

#define AGENT_PATH_REGISTER "/hodei.v1.WorkerAgentService/Register"
#define AGENT_PATH_STREAM "/hodei.v1.WorkerAgentService/WorkerStream"
#define AGENT_PATH_UNREGISTER "/hodei.v1.WorkerAgentService/UnregisterWorker"

/* Limits. */
#define AGENT_OTP_MAX 512           /* one-time token bytes */
#define AGENT_SESSION_TOKEN_MAX 256 /* RegisterResponse.session_token bytes */
#define AGENT_HEARTBEAT_MS_MIN 100  /* RegisterResponse.heartbeat_interval_ms */
#define AGENT_HEARTBEAT_MS_MAX 3600000
#define AGENT_ATTEMPT_MAX 1000 /* RunJob.attempt */
#define AGENT_RESULTS_MAX 64   /* results waiting for a JobResultAck */
#define AGENT_RECENT_MAX 32    /* acknowledged (job, epoch) remembered */
#define AGENT_CONTROL_MAX 64   /* queued heartbeats, keepalives, acks */
#define AGENT_DROPS_MAX (AGENT_RESULTS_MAX + 1)
#define AGENT_LABELS_MAX HODEI_LABELS_MAX
#define AGENT_HOSTNAME_MAX 256
#define AGENT_RPC_TIMEOUT_MS 10000 /* Register and UnregisterWorker */
#define AGENT_TICK_MS 100          /* receive wait between timer checks */
/* After a stop: how long results may wait for an acknowledgement once no
 * job runs (a running job first gets the drain timeout and the kill grace)
 * before the agent gives up and exits 1. */
#define AGENT_STOP_RESULT_GRACE_MS 10000
/* Output written to a stream in the last this-many ms is written again on
 * the next stream when the stream breaks: a completed gRPC send only means
 * the bytes left for the transport. The edge drops the copies it already
 * has (Nats-Msg-Id = job:epoch:first sequence). */
#define AGENT_UNCONFIRMED_MS 3000
/* A new stream carries output and results only once the edge has said
 * something on it or it stayed open this long: an edge that accepts a
 * stream and then fails it would otherwise swallow what was written. */
#define AGENT_STREAM_PROBATION_MS 500
#define AGENT_SERVERS_MAX 16 /* edge addresses in HODEI_SERVER */
#define AGENT_SERVER_MAX 256 /* one address, with the NUL */
/* Outputs are collected within the job's timeout, but get at least this
 * long after the run (a timed-out or failed job's outputs still go). */
#define AGENT_COLLECT_MIN_MS 30000
/* A stream that lived this long resets the reconnect backoff. */
#define AGENT_STREAM_HEALTHY_MS 10000

typedef struct {
    char *server;        /* server (HODEI_SERVER): edge host:port, or several, comma-separated */
    char *worker_id;     /* worker_id (HODEI_WORKER_ID) */
    char *otp;           /* otp (HODEI_OTP): one-time token, secret */
    char *otp_file;      /* otp_file (HODEI_OTP_FILE) */
    char *labels;        /* worker.labels: "k=v,k2=v2" */
    char *tls_ca;        /* worker.tls_ca */
    char *tls_cert;      /* worker.tls_cert */
    char *tls_key;       /* worker.tls_key */
    char *tmp_dir;       /* worker.tmp_dir: script files; "" = $TMPDIR or /tmp */
    char *job_user;      /* worker.job_user: "" = the agent's own user */
    char *job_uids;      /* worker.job_uids: "FIRST-LAST", a uid per running job; "" = off */
    int64_t batch_lines; /* worker.batch_lines */
    int64_t batch_interval_ms; /* worker.batch_interval */
    int64_t reconnect_min_ms;  /* worker.reconnect_min */
    int64_t reconnect_max_ms;  /* worker.reconnect_max */
    int64_t drain_timeout_ms;  /* worker.drain_timeout */
    int64_t kill_grace_ms;     /* worker.kill_grace */
    int64_t keepalive_ms;      /* worker.keepalive_interval */
    int64_t buffer_bytes_max;  /* worker.buffer_max: output kept while disconnected */
    int64_t result_resend_ms;  /* worker.result_resend */
    /* artifacts (worker.artifacts.*, libs/artifact) */
    char *work_dir;            /* worker.work_dir: "" = <tmp>/hodei-work-<worker id> */
    char *file_inputs;         /* worker.file_inputs: folders file:// may read, ':'-separated */
    char *s3_endpoint;         /* worker.s3_endpoint */
    char *s3_region;           /* worker.s3_region */
    bool s3_path_style;        /* worker.s3_path_style */
    char *artifacts_ca_file;   /* worker.artifacts_ca_file */
    int64_t artifact_max;      /* worker.artifact_max: bytes of one artifact */
    int64_t artifacts_job_max; /* worker.artifacts_job_max: bytes in (and out) per job */
    int64_t artifact_retries;  /* worker.artifact_retries */
    int64_t artifact_part;     /* worker.artifact_part: multipart part bytes */
    int64_t cpu_millis;        /* worker.cpu_millis: capacity to report; 0 = measured */
    int64_t memory_bytes;      /* worker.memory_bytes: capacity to report; 0 = measured */
    char *job_cgroups;         /* worker.job_cgroups: auto | off */
} agent_config;

extern agent_config agent_conf;
extern const hodei_cfg_param agent_params[];
extern const size_t agent_params_len;

/* ------------------------------------------------------------ secrets */

typedef struct {
    hodei_exec_secret *items; /* names and values heap-allocated */
    size_t len;
} agent_secrets;

/* Parses a flat JSON object of string values ({"NAME":"value",...}); an
 * empty input is no secrets. Errors never quote a value. */
hodei_status agent_secrets_parse(const uint8_t *json, size_t len, agent_secrets *out,
                                 hodei_err *err);
/* Wipes the values and frees everything. */
void agent_secrets_free(agent_secrets *s);

/* ------------------------------------------------------------ usage */

typedef struct {
    int cpu_fd;      /* cgroup cpu.stat or /proc/stat */
    int mem_fd;      /* cgroup memory.current, or -1 */
    int mem_max_fd;  /* cgroup memory.max, or -1 */
    int meminfo_fd;  /* /proc/meminfo */
    bool cgroup_cpu; /* cpu_fd is cgroup cpu.stat */
    int ncpu;
    int64_t prev_wall_us;
    int64_t prev_busy;  /* cgroup: usage_usec; procfs: busy ticks */
    int64_t prev_total; /* procfs: all ticks */
} agent_usage;

void agent_usage_init(agent_usage *u);
void agent_usage_sample(agent_usage *u, Hodei__V1__ResourceUsage *out);
void agent_usage_fini(agent_usage *u);
/* What this worker offers: cores and memory as its provider sized it
 * (worker.cpu_millis, worker.memory_bytes), else as measured (the cgroup's
 * limits, else the machine's); and its architecture. */
void agent_capacity(agent_usage *u, const agent_config *cfg, Hodei__V1__ResourceRequirements *out,
                    char *arch, size_t arch_len);

/* ------------------------------------------------------------ state */

typedef enum { ITEM_CONTROL = 0, ITEM_LOG, ITEM_RESULT_MARK } agent_item_kind;

/* A queued outgoing message: a packed WorkerMessage (CONTROL, LOG) or the
 * place of a job's result after its output (RESULT_MARK, no data). */
typedef struct agent_item {
    struct agent_item *next;
    agent_item_kind kind;
    uint8_t *data;
    size_t len;
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
    uint64_t first_seq, last_seq; /* LOG */
    int64_t sent_ms;              /* LOG on the sent queue: when it was written */
} agent_item;

typedef struct {
    agent_item *head, *tail;
    size_t count;
    size_t bytes;
} agent_queue;

/* Output records of a job's artifacts (JobResult.artifacts), owned. */
typedef struct {
    Hodei__V1__ArtifactRecord **items;
    size_t len;
} agent_records;

/* A job's result, kept until a JobResultAck for it arrives. */
typedef struct {
    bool in_use;
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
    Hodei__V1__JobState state;
    int exit_code;
    char error[HODEI_EXEC_ERROR_MAX];
    int64_t started_us, finished_us;
    bool queued; /* its RESULT_MARK is still behind its output */
    bool due;    /* send at the next chance */
    int sends;
    int64_t last_sent_ms;
    agent_records artifacts; /* freed when the result is acknowledged */
} agent_result;

/* Output lines dropped while disconnected, replaced by one warning line. */
typedef struct {
    bool in_use;
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
    uint64_t first_seq, last_seq;
} agent_drop;

/* The job accepted from RunJob: acked, running or about to. */
typedef struct {
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
    int32_t attempt;
    Hodei__V1__RunJob *msg; /* owned; spec used by the executor */
    agent_secrets secrets;
    agent_secrets artifact_secrets; /* RunJob.artifact_secrets_json: never the job's */
    hodei_exec_handle *handle;
    bool started; /* the runner took it */
    pid_t pid;    /* its process (group) once running, else 0 */
    bool cancelled;
    uint64_t dropped_lines;
    uint64_t seq; /* the last sequence number given to a line (runner thread) */
} agent_job;

typedef struct {
    char job_id[HODEI_ID_BUF];
    int64_t epoch;
} agent_key;

typedef struct agent {
    const agent_config *cfg;
    hodei_daemon *d;
    hodei_rpc_channel *ch;
    /* The edges of HODEI_SERVER, split; the channel goes to servers[server_at].
     * The first is picked at random (workers spread over the edges); every
     * new channel after a failure moves on to the next one. */
    char servers[AGENT_SERVERS_MAX][AGENT_SERVER_MAX];
    int n_servers, server_at;
    char otp[AGENT_OTP_MAX + 1];
    hodei_exec_user job_user;          /* worker.job_user, resolved */
    bool has_job_user;                 /* false: jobs run as the agent's user */
    uid_t job_uid_first, job_uid_last; /* worker.job_uids; has_job_uids false = off */
    bool has_job_uids;
    char session_token[AGENT_SESSION_TOKEN_MAX + 1];
    int64_t heartbeat_ms;
    char hostname[AGENT_HOSTNAME_MAX];
    Hodei__V1__RegisterRequest__LabelsEntry label_entries[AGENT_LABELS_MAX];
    Hodei__V1__RegisterRequest__LabelsEntry *label_ptrs[AGENT_LABELS_MAX];
    char *labels_store; /* the labels text, split in place */
    size_t n_labels;
    agent_usage usage;
    uint64_t rand_state;
    hodei_artifact_conf art_conf; /* from the worker.* artifact parameters */
    char work_root[4096];         /* workspaces: worker.work_dir or its default */
    pthread_t sender_thread, runner_thread;
    bool threads_started;

    /* ---------------- guarded by mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;                /* threads end */
    hodei_rpc_stream *stream; /* published to the sender after Hello */
    bool stream_broken;       /* a send failed; wait for the session */
    bool stream_ready;        /* past probation: output and results may go */
    bool sending;             /* the sender is inside a send */
    int64_t last_send_ms;
    agent_queue control;
    agent_queue data;
    agent_queue sent; /* output written to the current stream lately */
    agent_drop drops[AGENT_DROPS_MAX];
    uint64_t dropped_total;
    agent_result results[AGENT_RESULTS_MAX];
    agent_key recent[AGENT_RECENT_MAX];
    size_t recent_next;
    agent_job *job;
    bool accepting; /* false once stopping or draining */
    bool draining;
    int64_t ka_sent_nonce;     /* our last Keepalive */
    int64_t ka_sent_at_ms;     /* when it was queued */
    int64_t ka_answered_nonce; /* the last server Keepalive we answered */
} agent;

/* session.c: (re)creates the channel to the edge; the session thread's own. */
hodei_status agent_channel_open(agent *a, hodei_err *err);
/* The edge the channel goes to now. */
const char *agent_server(const agent *a);

/* config.c */
hodei_status agent_config_apply(agent *a, hodei_err *err);

/* sender.c: queues (call with mu held unless noted) and the sender thread. */
void agent_queue_push(agent_queue *q, agent_item *it);
void agent_queue_push_front(agent_queue *q, agent_item *it);
agent_item *agent_queue_pop(agent_queue *q);
void agent_queue_clear(agent_queue *q);
agent_item *agent_item_pack(agent_item_kind kind, const Hodei__V1__WorkerMessage *m);
void agent_item_free(agent_item *it);
/* Queues a control message if a stream is up; drops it otherwise. */
void agent_send_control(agent *a, const Hodei__V1__WorkerMessage *m);
/* Queues one batch of a job's output, with back-pressure while connected
 * and dropping the oldest output while disconnected. Takes mu itself. */
void agent_send_log(agent *a, agent_job *job, Hodei__V1__LogLine **lines, size_t n);
void *agent_sender_main(void *arg);
/* The stream the sender writes to (after Hello), and its removal (waits
 * for a send in progress to return; broken: output written lately is
 * written again on the next stream). Take mu themselves. */
void agent_stream_publish(agent *a, hodei_rpc_stream *st);
void agent_stream_unpublish(agent *a, bool broken);
void agent_stream_ready(agent *a);
/* mu held. The edge has read what was written before `before_ms` (it
 * answered a later Keepalive), or everything of one job (it acknowledged
 * the result): those need not be written again. job_id NULL = any job. */
void agent_sent_confirm(agent *a, const char *job_id, int64_t epoch, int64_t before_ms);

/* runner.c */
agent_result *agent_result_find(agent *a, const char *job_id, int64_t epoch);
void agent_result_ack(agent *a, const Hodei__V1__JobResultAck *ack);
void agent_result_resend_due(agent *a, int64_t now_ms);
bool agent_results_pending(agent *a);
void agent_run_job(agent *a, Hodei__V1__RunJob *rj);
void agent_cancel_job(agent *a, const Hodei__V1__CancelJob *cj);
/* Cancels the running job, if any (after the drain timeout). */
void agent_cancel_current(agent *a, const char *why);
void *agent_runner_main(void *arg);
/* After the runner thread ended: frees a job it never started. */
void agent_runner_fini(agent *a);

/* job_uid.c: with worker.job_uids, each job runs under a uid of its own,
 * held (flock on AGENT_JOB_UID_DIR/<uid>) by one job of this host at a
 * time, so that no job reaches another's processes (/proc/<pid>/cwd, ptrace)
 * or workspace. A uid is swept of processes left by its previous job before
 * it is handed out, unless its lock file is new (no job ran under it) or
 * its last job's agent released it clean (the file's first byte: 'c' once
 * every process of the job was gone, 'd' while a job holds it or after one
 * that left something). */
#define AGENT_JOB_UID_DIR "/run/hodei-job-uids"
typedef struct {
    int lock_fd; /* -1 = none held */
    hodei_exec_user user;
} agent_job_uid;
/* Parses worker.job_uids and makes the lock folder (at start-up). */
hodei_status agent_job_uids_config(agent *a, hodei_err *err);
/* out->user is worker.job_user with the uid of a free slot (or
 * worker.job_user itself when job_uids is off). */
hodei_status agent_job_uid_acquire(agent *a, agent_job_uid *out, hodei_err *err);
/* clean: nothing the job started is left (agent_kill_leftovers). */
void agent_job_uid_release(agent_job_uid *u, bool clean);

/* artifacts.c: the job's workspace, inputs staged before it runs and
 * outputs collected after (runner thread). */
typedef struct {
    char workspace[4096];        /* "" = the job has no artifacts */
    int64_t deadline_ms;         /* monotonic: the attempt's start + its timeout */
    const hodei_exec_user *user; /* the job's user (workspace handed to it); NULL = ours */
} agent_artifacts;
/* Makes the workspace and stages the inputs. Not HODEI_OK: *res holds the
 * attempt's result (FAILED naming the input, TIMEOUT or CANCELLED). */
hodei_status agent_artifacts_stage(agent *a, agent_job *job, agent_artifacts *art,
                                   hodei_exec_result *res);
/* Collects the outputs into the result, then removes the workspace. */
void agent_artifacts_collect(agent *a, agent_job *job, agent_artifacts *art,
                             const hodei_exec_result *res, agent_records *out);
void agent_records_free(agent_records *r);
/* A LOG_STREAM_SYSTEM line in the job's output. */
void agent_system_line(agent *a, agent_job *job, const char *text);

/* reaper.c: the agent as child subreaper reaps orphaned job processes
 * (never the executor's own child). */
void agent_reaper_init(void);
void agent_reap_orphans(agent *a);
/* At the end of a job: SIGKILLs and reaps every process still below the
 * agent (what the job left outside its process group). Returns how many
 * were still there after the last round (0: none is left). */
int agent_kill_leftovers(const char *job_id);

/* register.c: backoff, Register (retried while the edge is unavailable;
 * *registered false when a stop came first), UnregisterWorker. */
int64_t agent_jitter(agent *a, int64_t base_ms);
int64_t agent_backoff_next(const agent *a, int64_t backoff_ms);
hodei_status agent_register(agent *a, bool *registered, hodei_err *err);
void agent_unregister(agent *a);

/* session.c: Register, the stream, reconnects, the stop; the daemon's run. */
hodei_status agent_session_run(agent *a, hodei_err *err);

/* agent_service.c: the daemon's start-up, work (the session) and shutdown. */
hodei_status agent_init(hodei_daemon *d, hodei_err *err);
hodei_status agent_run(hodei_daemon *d, hodei_err *err);
void agent_fini(hodei_daemon *d);

#endif
