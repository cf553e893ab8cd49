/* The agent's parameters (declared once) and the checks that span more
 * than one of them: the one-time token from HODEI_OTP or HODEI_OTP_FILE,
 * the labels, the TLS files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "hodei/job_spec.h"
#include "hodei/log.h"
#include "hodei/util.h"

agent_config agent_conf;

static const char *const agent_cgroup_modes[] = {"auto", "off", NULL};

#define P(field) offsetof(agent_config, field)
const hodei_cfg_param agent_params[] = {
    {"server", HODEI_CFG_STRING, NULL, 1, 4096, P(server),
     "edge address host:port; several, comma-separated: one picked at random, the next after a"
     " failure",
     true, false, NULL},
    {"worker_id", HODEI_CFG_STRING, NULL, 1, HODEI_ID_LEN, P(worker_id),
     "this worker's id, the one its token is bound to", true, false, NULL},
    {"otp", HODEI_CFG_STRING, "", 0, AGENT_OTP_MAX, P(otp),
     "one-time registration token; or otp_file", false, true, NULL},
    {"otp_file", HODEI_CFG_STRING, "", 0, 4096, P(otp_file), "file holding the one-time token",
     false, false, NULL},
    {"worker.labels", HODEI_CFG_STRING, "", 0, 8192, P(labels),
     "labels offered to jobs' constraints: k=v,k2=v2", false, false, NULL},
    {"worker.tls_ca", HODEI_CFG_STRING, "", 0, 4096, P(tls_ca),
     "CA file to verify the edge (PEM); empty = no TLS", false, false, NULL},
    {"worker.tls_cert", HODEI_CFG_STRING, "", 0, 4096, P(tls_cert),
     "client certificate for mutual TLS (PEM)", false, false, NULL},
    {"worker.tls_key", HODEI_CFG_STRING, "", 0, 4096, P(tls_key),
     "client private key for mutual TLS (PEM)", false, false, NULL},
    {"worker.tmp_dir", HODEI_CFG_STRING, "", 0, 4096, P(tmp_dir),
     "where script files are written; empty = $TMPDIR or /tmp", false, false, NULL},
    {"worker.job_user", HODEI_CFG_STRING, "", 0, HODEI_EXEC_USER_NAME_MAX, P(job_user),
     "user jobs run as (the agent must be root to switch); empty = the agent's own user", false,
     false, NULL},
    {"worker.job_uids", HODEI_CFG_STRING, "", 0, 32, P(job_uids),
     "FIRST-LAST: each running job gets a uid of its own from this range (ids no account"
     " uses; worker.job_user gives the group and home), so jobs cannot reach each other's"
     " processes or workspaces; empty = every job runs as worker.job_user",
     false, false, NULL},
    {"worker.batch_lines", HODEI_CFG_INT, "100", 1, HODEI_EXEC_BATCH_LINES_LIMIT, P(batch_lines),
     "most output lines in one LogBatch", false, false, NULL},
    {"worker.batch_interval", HODEI_CFG_DURATION_MS, "100ms", 1, 10000, P(batch_interval_ms),
     "longest a line waits before its batch is sent", false, false, NULL},
    {"worker.reconnect_min", HODEI_CFG_DURATION_MS, "200ms", 10, 60000, P(reconnect_min_ms),
     "first reconnect/registration retry delay (doubles, with jitter)", false, false, NULL},
    {"worker.reconnect_max", HODEI_CFG_DURATION_MS, "5s", 10, 600000, P(reconnect_max_ms),
     "longest reconnect/registration retry delay (keep it below the supervisor's heartbeat "
     "timeout)",
     false, false, NULL},
    {"worker.drain_timeout", HODEI_CFG_DURATION_MS, "5m", 0, 86400000, P(drain_timeout_ms),
     "after SIGTERM, how long the running job may go on before it is cancelled", false, false,
     NULL},
    {"worker.kill_grace", HODEI_CFG_DURATION_MS, "5s", 100, 600000, P(kill_grace_ms),
     "SIGTERM to SIGKILL of a cancelled or timed-out job's process group", false, false, NULL},
    {"worker.keepalive_interval", HODEI_CFG_DURATION_MS, "10s", 100, 600000, P(keepalive_ms),
     "a Keepalive is sent when nothing else was sent for this long", false, false, NULL},
    {"worker.buffer_max", HODEI_CFG_INT, "8388608", 65536, 1073741824, P(buffer_bytes_max),
     "bytes of output kept while disconnected; beyond, the oldest is dropped", false, false, NULL},
    {"worker.result_resend", HODEI_CFG_DURATION_MS, "10s", 100, 600000, P(result_resend_ms),
     "an unacknowledged JobResult is sent again after this long", false, false, NULL},
    {"worker.work_dir", HODEI_CFG_STRING, "", 0, 3900, P(work_dir),
     "where jobs with artifacts get their workspace; empty = <tmp>/hodei-work-<worker id>", false,
     false, NULL},
    {"worker.file_inputs", HODEI_CFG_STRING, "", 0, 8192, P(file_inputs),
     "absolute folders file:// inputs may read, ':'-separated; empty = file:// refused", false,
     false, NULL},
    {"worker.s3_endpoint", HODEI_CFG_STRING, "", 0, 500, P(s3_endpoint),
     "S3 endpoint URL (https://host[:port]); empty = AWS for worker.s3_region", false, false, NULL},
    {"worker.s3_region", HODEI_CFG_STRING, "us-east-1", 1, 63, P(s3_region),
     "S3 region used in signatures", false, false, NULL},
    {"worker.s3_path_style", HODEI_CFG_BOOL, "false", 0, 0, P(s3_path_style),
     "S3 URLs as endpoint/bucket/key instead of bucket.endpoint/key", false, false, NULL},
    {"worker.artifacts_ca_file", HODEI_CFG_STRING, "", 0, 4096, P(artifacts_ca_file),
     "extra CA bundle (PEM) to verify https artifact servers; empty = the system's", false, false,
     NULL},
    {"worker.artifact_max", HODEI_CFG_INT, "10737418240", 1, INT64_C(1) << 50, P(artifact_max),
     "bytes of one input or output file", false, false, NULL},
    {"worker.artifacts_job_max", HODEI_CFG_INT, "53687091200", 1, INT64_C(1) << 50,
     P(artifacts_job_max), "bytes of all inputs of a job (and of all its outputs)", false, false,
     NULL},
    {"worker.artifact_retries", HODEI_CFG_INT, "3", 0, 20, P(artifact_retries),
     "retries of a transient transfer failure (backoff from 500 ms, doubling)", false, false, NULL},
    {"worker.artifact_part", HODEI_CFG_INT, "8388608", HODEI_ARTIFACT_PART_MIN, 1073741824,
     P(artifact_part), "S3 multipart part size; files of twice this size or more go in parts",
     false, false, NULL},
    {"worker.cpu_millis", HODEI_CFG_INT, "0", 0, HODEI_CPU_MILLIS_MAX, P(cpu_millis),
     "CPU (millicores) this worker offers, as its provider sized it; 0 = measured", false, false,
     NULL},
    {"worker.memory_bytes", HODEI_CFG_INT, "0", 0, HODEI_RESOURCE_BYTES_MAX, P(memory_bytes),
     "memory this worker offers, as its provider sized it; 0 = measured", false, false, NULL},
    {"worker.job_cgroups", HODEI_CFG_STRING, "auto", 0, 8, P(job_cgroups),
     "auto: each job with cpu or memory asked runs in a cgroup of its own with those limits"
     " (when this host lets the agent make one; else a warning); off: never",
     false, false, agent_cgroup_modes},
};
#undef P
const size_t agent_params_len = sizeof agent_params / sizeof agent_params[0];

/* Printable ASCII without spaces, as tokens are. */
static bool config_token_ok(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Reads the token file; a trailing newline (and spaces) is not part of it. */
static hodei_status config_otp_read(const char *path, char *out, size_t out_len, hodei_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "otp_file: cannot open '%s': %s", path,
                             strerror(errno));
    ssize_t n = read(fd, out, out_len - 1);
    int e = errno;
    char extra;
    bool more = n >= 0 && (size_t)n == out_len - 1 && read(fd, &extra, 1) > 0;
    close(fd);
    if (n < 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "otp_file: cannot read '%s': %s", path,
                             strerror(e));
    if (more)
        return hodei_err_set(err, HODEI_ERR_INVALID, "otp_file: '%s' holds more than %d bytes",
                             path, AGENT_OTP_MAX);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        n--;
    out[n] = '\0';
    return HODEI_OK;
}

/* Once copied, the token leaves the environment: its bytes are wiped in
 * place (the strings /proc/<pid>/environ shows are the ones getenv returns,
 * which unsetenv alone would leave there) and the variable is removed, so
 * nothing that reads the environment later, nor anything started from the
 * agent, sees it. The configuration's copy is wiped too. */
static void config_otp_scrub(char *conf_copy)
{
    char *v = getenv("HODEI_OTP");
    if (v)
        explicit_bzero(v, strlen(v));
    unsetenv("HODEI_OTP");
    explicit_bzero(conf_copy, strlen(conf_copy));
}

static hodei_status config_otp(agent *a, hodei_err *err)
{
    const agent_config *c = a->cfg;
    bool has_otp = c->otp && c->otp[0], has_file = c->otp_file && c->otp_file[0];
    if (has_otp == has_file)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "otp: set exactly one of HODEI_OTP and HODEI_OTP_FILE");
    if (has_otp) {
        hodei_strlcpy(a->otp, c->otp, sizeof a->otp);
        config_otp_scrub(c->otp);
    } else if (config_otp_read(c->otp_file, a->otp, sizeof a->otp, err) != HODEI_OK)
        return err->code;
    if (!config_token_ok(a->otp, strlen(a->otp)))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: the token must be 1..%d printable ASCII characters without "
                             "spaces",
                             has_otp ? "otp" : "otp_file", AGENT_OTP_MAX);
    return HODEI_OK;
}

static bool config_label_key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > HODEI_JOB_LABEL_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = k[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-' || ch == '/';
        if (!ok)
            return false;
    }
    return true;
}

static hodei_status config_label_add(agent *a, char *item, hodei_err *err)
{
    char *eq = strchr(item, '=');
    if (!eq)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.labels: entry %zu has no '=' (expected key=value)",
                             a->n_labels + 1);
    *eq = '\0';
    const char *val = eq + 1;
    if (!config_label_key_ok(item))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.labels: key of entry %zu must be 1..%d of [A-Za-z0-9._/-]",
                             a->n_labels + 1, HODEI_JOB_LABEL_KEY_MAX);
    if (strlen(val) > HODEI_JOB_LABEL_VALUE_MAX || !hodei_utf8_valid(val, strlen(val)))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.labels[\"%s\"]: value must be UTF-8 of at most %d bytes", item,
                             HODEI_JOB_LABEL_VALUE_MAX);
    for (size_t i = 0; i < a->n_labels; i++)
        if (strcmp(a->label_entries[i].key, item) == 0)
            return hodei_err_set(err, HODEI_ERR_INVALID, "worker.labels: key \"%s\" twice", item);
    if (a->n_labels == AGENT_LABELS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "worker.labels: more than %d entries",
                             AGENT_LABELS_MAX);
    Hodei__V1__RegisterRequest__LabelsEntry *e = &a->label_entries[a->n_labels];
    hodei__v1__register_request__labels_entry__init(e);
    e->key = item;
    e->value = (char *)val;
    a->label_ptrs[a->n_labels++] = e;
    return HODEI_OK;
}

/* "k=v,k2=v2": split in place in a copy kept for the agent's life. */
static hodei_status config_labels(agent *a, hodei_err *err)
{
    const char *text = a->cfg->labels ? a->cfg->labels : "";
    if (!text[0])
        return HODEI_OK;
    a->labels_store = strdup(text);
    if (!a->labels_store)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "worker.labels: out of memory");
    char *p = a->labels_store;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (config_label_add(a, p, err) != HODEI_OK)
            return err->code;
        if (!comma)
            return HODEI_OK;
        p = comma + 1;
    }
}

/* HODEI_SERVER: one edge address or several, comma-separated. */
static hodei_status config_servers(agent *a, hodei_err *err)
{
    const char *p = a->cfg->server;
    a->n_servers = 0;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= AGENT_SERVER_MAX || strcspn(p, " \t") < len)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "server: address %d is empty, has spaces or is longer than %d"
                                 " bytes (host:port, several comma-separated)",
                                 a->n_servers + 1, AGENT_SERVER_MAX - 1);
        if (a->n_servers == AGENT_SERVERS_MAX)
            return hodei_err_set(err, HODEI_ERR_INVALID, "server: more than %d addresses",
                                 AGENT_SERVERS_MAX);
        memcpy(a->servers[a->n_servers], p, len);
        a->servers[a->n_servers++][len] = '\0';
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    a->server_at = (int)(a->rand_state % (uint64_t)a->n_servers);
    return HODEI_OK;
}

static hodei_status config_tls(const agent_config *c, hodei_err *err)
{
    bool ca = c->tls_ca[0], cert = c->tls_cert[0], key = c->tls_key[0];
    if (cert != key)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.tls_cert and worker.tls_key: set both or neither");
    if (cert && !ca)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.tls_cert: mutual TLS needs worker.tls_ca too");
    return HODEI_OK;
}

/* worker.job_user: resolved once; switching needs root, and a root agent
 * says when its jobs run as root too. */
static hodei_status config_job_user(agent *a, hodei_err *err)
{
    const char *name = a->cfg->job_user;
    a->has_job_user = false;
    if (!name || !name[0]) {
        if (geteuid() == 0)
            HLOG_WARN("jobs run as root: set worker.job_user (HODEI_WORKER_JOB_USER) to an "
                      "unprivileged user");
        return HODEI_OK;
    }
    hodei_status st = hodei_exec_user_lookup(name, &a->job_user, err);
    if (st != HODEI_OK)
        return hodei_err_set(err, HODEI_ERR_INVALID, "worker.job_user: %s", err->msg);
    if (a->job_user.uid == geteuid())
        return HODEI_OK; /* already that user: nothing to switch */
    if (geteuid() != 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.job_user: running jobs as %s needs the agent to run as root "
                             "(it runs as uid %d)",
                             name, (int)geteuid());
    a->has_job_user = true;
    return HODEI_OK;
}

/* Each ':'-separated folder of worker.file_inputs must be absolute. */
static hodei_status config_file_inputs(const char *roots, hodei_err *err)
{
    for (const char *r = roots; *r;) {
        size_t n = strcspn(r, ":");
        if (n > 0 && r[0] != '/')
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "worker.file_inputs: every folder must be an absolute path, got "
                                 "\"%.*s\"",
                                 (int)(n > 64 ? 64 : n), r);
        r += n + (r[n] == ':');
    }
    return HODEI_OK;
}

static hodei_status config_artifacts(agent *a, hodei_err *err)
{
    const agent_config *c = a->cfg;
    hodei_artifact_conf *ac = &a->art_conf;
    hodei_status st = config_file_inputs(c->file_inputs, err);
    if (st != HODEI_OK)
        return st;
    if (c->s3_endpoint[0] && strncmp(c->s3_endpoint, "https://", 8) != 0 &&
        strncmp(c->s3_endpoint, "http://", 7) != 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.s3_endpoint: must start with https:// or http://");
    if (c->work_dir[0] && c->work_dir[0] != '/')
        return hodei_err_set(err, HODEI_ERR_INVALID, "worker.work_dir: must be an absolute path");
    hodei_artifact_conf_default(ac);
    ac->s3_endpoint = c->s3_endpoint;
    ac->s3_region = c->s3_region;
    ac->s3_path_style = c->s3_path_style;
    ac->file_roots = c->file_inputs;
    ac->ca_file = c->artifacts_ca_file;
    ac->artifact_bytes_max = c->artifact_max;
    ac->job_bytes_max = c->artifacts_job_max;
    ac->retry_max = (int)c->artifact_retries;
    ac->part_bytes = c->artifact_part;
    ac->multipart_threshold = 2 * c->artifact_part;
    const char *tmp = c->tmp_dir[0] ? c->tmp_dir : getenv("TMPDIR");
    int n = c->work_dir[0] ? snprintf(a->work_root, sizeof a->work_root, "%s", c->work_dir)
                           : snprintf(a->work_root, sizeof a->work_root, "%s/hodei-work-%s",
                                      tmp && tmp[0] == '/' ? tmp : "/tmp", c->worker_id);
    if (n <= 0 || (size_t)n >= sizeof a->work_root)
        return hodei_err_set(err, HODEI_ERR_INVALID, "worker.work_dir: path too long");
    return hodei_artifact_global_init(err);
}

hodei_status agent_config_apply(agent *a, hodei_err *err)
{
    const agent_config *c = a->cfg;
    if (!hodei_id_valid(c->worker_id))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker_id: must be a UUID (8-4-4-4-12 hex digits)");
    if (c->reconnect_min_ms > c->reconnect_max_ms)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker.reconnect_min: %lld ms is above worker.reconnect_max",
                             (long long)c->reconnect_min_ms);
    if (config_servers(a, err) != HODEI_OK || config_tls(c, err) != HODEI_OK ||
        config_otp(a, err) != HODEI_OK || config_job_user(a, err) != HODEI_OK ||
        agent_job_uids_config(a, err) != HODEI_OK || config_artifacts(a, err) != HODEI_OK)
        return err->code;
    return config_labels(a, err);
}
