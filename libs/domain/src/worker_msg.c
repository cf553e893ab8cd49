/* Door checks for what worker agents send (hodei/worker_msg.h). Every error
 * is HODEI_ERR_INVALID and starts with the field's path; tokens are never
 * echoed. */
#include "hodei/worker_msg.h"

#include <math.h>
#include <string.h>

#include "hodei/artifact_ref.h"
#include "hodei/id.h"
#include "hodei/job_spec.h"
#include "hodei/util.h"

#define CHECK_HOSTNAME_MAX 255
#define CHECK_AGENT_VERSION_MAX 64
#define CHECK_ERROR_MAX 4096           /* JobResult.error, bytes */
#define CHECK_LOG_LINES_MAX 10000      /* lines in one LogBatch */
#define CHECK_LOG_LINE_MAX (64 * 1024) /* bytes of one line */
#define CHECK_CPU_CORES_USED_MAX 4096.0

static const char *check_str(const char *s)
{
    return s ? s : "";
}

static bool check_printable(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return false;
    }
    return true;
}

/* UTF-8 without control characters. */
static bool check_text(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    }
    return hodei_utf8_valid(s, n);
}

hodei_status hodei_worker_check_id(const char *field, const char *id, hodei_err *err)
{
    return hodei_id_check(field, id, "an id", err);
}

hodei_status hodei_worker_check_token(const char *field, const char *token, hodei_err *err)
{
    if (!token || !token[0])
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: required", field);
    if (strlen(token) > HODEI_WORKER_TOKEN_MAX || !check_printable(token))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be at most %d printable ASCII characters", field,
                             HODEI_WORKER_TOKEN_MAX);
    return HODEI_OK;
}

static hodei_status check_capacity(const Hodei__V1__ResourceRequirements *c, hodei_err *err)
{
    if (!c)
        return HODEI_OK;
    if (!isfinite(c->cpu_cores) || c->cpu_cores < 0 || c->cpu_cores > HODEI_JOB_CPU_CORES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "capacity.cpu_cores: must be between 0 and %.0f",
                             HODEI_JOB_CPU_CORES_MAX);
    if (c->memory_bytes < 0 || c->memory_bytes > HODEI_JOB_MEMORY_BYTES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "capacity.memory_bytes: must be between 0 and 1 PiB");
    if (c->storage_bytes < 0 || c->storage_bytes > HODEI_JOB_STORAGE_BYTES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "capacity.storage_bytes: must be between 0 and 1 PiB");
    if (c->gpu_count < 0 || c->gpu_count > HODEI_JOB_GPU_COUNT_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "capacity.gpu_count: must be between 0 and %d",
                             HODEI_JOB_GPU_COUNT_MAX);
    if (!hodei_job_arch_valid(c->architecture))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "capacity.architecture: must be one of amd64, arm64, x86_64, aarch64"
                             " or empty");
    return HODEI_OK;
}

static bool check_label_key(const char *k)
{
    size_t n = strlen(k);
    if (n < 1 || n > HODEI_JOB_LABEL_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("._/-", c) != NULL;
        if (!ok)
            return false;
    }
    return true;
}

static hodei_status check_labels(const Hodei__V1__RegisterRequest *r, hodei_err *err)
{
    if (r->n_labels > HODEI_JOB_LABELS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "labels: at most %d entries, got %zu",
                             HODEI_JOB_LABELS_MAX, r->n_labels);
    for (size_t i = 0; i < r->n_labels; i++) {
        const char *k = r->labels[i] ? check_str(r->labels[i]->key) : "";
        const char *v = r->labels[i] ? check_str(r->labels[i]->value) : "";
        if (!check_label_key(k))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "labels[%zu]: key must be 1 to %d of [A-Za-z0-9._/-]", i,
                                 HODEI_JOB_LABEL_KEY_MAX);
        if (strlen(v) > HODEI_JOB_LABEL_VALUE_MAX || !check_text(v))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "labels[\"%s\"]: value must be UTF-8 text of at most %d bytes", k,
                                 HODEI_JOB_LABEL_VALUE_MAX);
        for (size_t j = 0; j < i; j++) {
            if (r->labels[j] && strcmp(check_str(r->labels[j]->key), k) == 0)
                return hodei_err_set(err, HODEI_ERR_INVALID, "labels[\"%s\"]: given twice", k);
        }
    }
    return HODEI_OK;
}

hodei_status hodei_worker_check_register(const Hodei__V1__RegisterRequest *r, hodei_err *err)
{
    hodei_status st = hodei_worker_check_token("token", r->token, err);
    if (st == HODEI_OK)
        st = hodei_worker_check_id("worker_id", r->worker_id, err);
    if (st != HODEI_OK)
        return st;
    const char *host = check_str(r->hostname);
    if (!host[0] || strlen(host) > CHECK_HOSTNAME_MAX || !check_text(host))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "hostname: required, UTF-8 text of at most %d bytes",
                             CHECK_HOSTNAME_MAX);
    const char *ver = check_str(r->agent_version);
    if (strlen(ver) > CHECK_AGENT_VERSION_MAX || !check_printable(ver))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "agent_version: at most %d printable ASCII characters",
                             CHECK_AGENT_VERSION_MAX);
    if ((st = check_capacity(r->capacity, err)) != HODEI_OK)
        return st;
    return check_labels(r, err);
}

hodei_status hodei_worker_check_hello(const Hodei__V1__Hello *h, hodei_err *err)
{
    hodei_status st = hodei_worker_check_id("hello.worker_id", h->worker_id, err);
    if (st == HODEI_OK)
        st = hodei_worker_check_token("hello.session_token", h->session_token, err);
    if (st != HODEI_OK)
        return st;
    if (h->n_running_job_ids > HODEI_WORKER_RUNNING_IDS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "hello.running_job_ids: at most %d entries, got %zu",
                             HODEI_WORKER_RUNNING_IDS_MAX, h->n_running_job_ids);
    for (size_t i = 0; i < h->n_running_job_ids; i++) {
        if (!hodei_id_valid(check_str(h->running_job_ids[i])))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "hello.running_job_ids[%zu]: must be a job id (a UUID)", i);
    }
    return HODEI_OK;
}

hodei_status hodei_worker_check_heartbeat(const Hodei__V1__Heartbeat *h, hodei_err *err)
{
    const Hodei__V1__ResourceUsage *u = h->usage;
    if (!u)
        return HODEI_OK;
    if (!isfinite(u->cpu_cores_used) || u->cpu_cores_used < 0 ||
        u->cpu_cores_used > CHECK_CPU_CORES_USED_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "heartbeat.usage.cpu_cores_used: must be between 0 and %.0f",
                             CHECK_CPU_CORES_USED_MAX);
    if (u->memory_bytes_used < 0 || u->memory_bytes_total < 0 ||
        u->memory_bytes_used > HODEI_JOB_MEMORY_BYTES_MAX ||
        u->memory_bytes_total > HODEI_JOB_MEMORY_BYTES_MAX)
        return hodei_err_set(
            err, HODEI_ERR_INVALID,
            "heartbeat.usage.memory_bytes_used/total: must be between 0 and 1 PiB");
    if (u->running_jobs < 0 || u->running_jobs > HODEI_WORKER_RUNNING_JOBS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "heartbeat.usage.running_jobs: must be between 0 and %d",
                             HODEI_WORKER_RUNNING_JOBS_MAX);
    return HODEI_OK;
}

static hodei_status check_epoch(const char *field, int64_t epoch, hodei_err *err)
{
    if (epoch <= 0)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be positive (the epoch of RunJob)",
                             field);
    return HODEI_OK;
}

hodei_status hodei_worker_check_ack(const Hodei__V1__RunJobAck *a, hodei_err *err)
{
    hodei_status st = hodei_worker_check_id("run_job_ack.job_id", a->job_id, err);
    return st == HODEI_OK ? check_epoch("run_job_ack.epoch", a->epoch, err) : st;
}

static hodei_status check_line(size_t i, const Hodei__V1__LogLine *l, hodei_err *err)
{
    if (!l || l->sequence == 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "log_batch.lines[%zu].sequence: must be 1 or more", i);
    if (l->stream != HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT &&
        l->stream != HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR &&
        l->stream != HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "log_batch.lines[%zu].stream: must be STDOUT, STDERR or SYSTEM", i);
    if (l->data.len > CHECK_LOG_LINE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "log_batch.lines[%zu].data: at most %d bytes, got %zu", i,
                             CHECK_LOG_LINE_MAX, l->data.len);
    return HODEI_OK;
}

hodei_status hodei_worker_check_log_batch(const Hodei__V1__LogBatch *b, hodei_err *err)
{
    hodei_status st = hodei_worker_check_id("log_batch.job_id", b->job_id, err);
    if (st == HODEI_OK)
        st = check_epoch("log_batch.epoch", b->epoch, err);
    if (st != HODEI_OK)
        return st;
    if (b->n_lines == 0 || b->n_lines > CHECK_LOG_LINES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "log_batch.lines: 1 to %d lines, got %zu",
                             CHECK_LOG_LINES_MAX, b->n_lines);
    for (size_t i = 0; i < b->n_lines; i++) {
        if ((st = check_line(i, b->lines[i], err)) != HODEI_OK)
            return st;
        if (i > 0 && b->lines[i]->sequence <= b->lines[i - 1]->sequence)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "log_batch.lines[%zu].sequence: must increase along the batch", i);
    }
    return HODEI_OK;
}

/* A text field of an artifact record: UTF-8, at most max bytes. */
static hodei_status check_record_text(size_t i, const char *name, const char *v, size_t max,
                                      hodei_err *err)
{
    v = check_str(v);
    size_t n = strlen(v);
    if (n > max || !hodei_utf8_valid(v, n))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "job_result.artifacts[%zu].%s: must be UTF-8 of at most %zu bytes", i,
                             name, max);
    return HODEI_OK;
}

static hodei_status check_records(const Hodei__V1__JobResult *r, hodei_err *err)
{
    if (r->n_artifacts > HODEI_ARTIFACT_FILES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "job_result.artifacts: at most %d entries, got %zu",
                             HODEI_ARTIFACT_FILES_MAX, r->n_artifacts);
    for (size_t i = 0; i < r->n_artifacts; i++) {
        const Hodei__V1__ArtifactRecord *a = r->artifacts[i];
        if (!a)
            return hodei_err_set(err, HODEI_ERR_INVALID, "job_result.artifacts[%zu]: missing", i);
        hodei_status st = check_record_text(i, "source", a->source, HODEI_ARTIFACT_SOURCE_MAX, err);
        if (st == HODEI_OK)
            st = check_record_text(i, "destination", a->destination, HODEI_ARTIFACT_DESTINATION_MAX,
                                   err);
        if (st == HODEI_OK)
            st = check_record_text(i, "error", a->error, HODEI_ARTIFACT_ERROR_MAX, err);
        if (st != HODEI_OK)
            return st;
        const char *sum = check_str(a->checksum);
        if (sum[0] && !hodei_artifact_checksum_ok(sum))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "job_result.artifacts[%zu].checksum: must be \"\" or "
                                 "sha256:<64 hex>",
                                 i);
        if (a->state != HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED &&
            a->state != HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_FAILED)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "job_result.artifacts[%zu].state: must be UPLOADED or FAILED", i);
        if (a->size_bytes < 0 || a->epoch != r->epoch)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "job_result.artifacts[%zu]: size_bytes must be >= 0 and epoch "
                                 "the result's",
                                 i);
    }
    return HODEI_OK;
}

hodei_status hodei_worker_check_result(const Hodei__V1__JobResult *r, hodei_err *err)
{
    hodei_status st = hodei_worker_check_id("job_result.job_id", r->job_id, err);
    if (st == HODEI_OK)
        st = check_epoch("job_result.epoch", r->epoch, err);
    if (st != HODEI_OK)
        return st;
    if (r->state != HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED &&
        r->state != HODEI__V1__JOB_STATE__JOB_STATE_FAILED &&
        r->state != HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT &&
        r->state != HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "job_result.state: must be SUCCEEDED, FAILED, TIMEOUT or CANCELLED");
    const char *e = check_str(r->error);
    if (strlen(e) > CHECK_ERROR_MAX || !hodei_utf8_valid(e, strlen(e)))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "job_result.error: must be UTF-8 of at most %d bytes",
                             CHECK_ERROR_MAX);
    return check_records(r, err);
}
