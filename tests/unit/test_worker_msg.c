/* libs/domain worker_msg.c: the door checks for what worker agents send. A
 * refusal is INVALID and starts with the field's path; a token is never
 * echoed. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "hodei/worker_msg.h"

#define ID "0190b1c2-0000-7000-8000-000000000001"
#define TOKEN "s3cret-t0ken"

static hodei_err err;

#define EXPECT_OK(call) cr_assert_eq((call), HODEI_OK, "%s", err.msg)
#define EXPECT_FIELD(call, prefix)                                                                 \
    do {                                                                                           \
        cr_assert_eq((call), HODEI_ERR_INVALID);                                                   \
        cr_assert_eq(strncmp(err.msg, prefix, strlen(prefix)), 0, "message: %s", err.msg);         \
    } while (0)

Test(worker_msg, tokens)
{
    EXPECT_OK(hodei_worker_check_token("token", TOKEN, &err));
    EXPECT_FIELD(hodei_worker_check_token("token", "", &err), "token: required");
    EXPECT_FIELD(hodei_worker_check_token("token", NULL, &err), "token: required");
    EXPECT_FIELD(hodei_worker_check_token("hello.session_token", "has space", &err),
                 "hello.session_token:");
    char long_token[HODEI_WORKER_TOKEN_MAX + 2];
    memset(long_token, 'a', sizeof long_token - 1);
    long_token[sizeof long_token - 1] = '\0';
    EXPECT_FIELD(hodei_worker_check_token("token", long_token, &err), "token:");
    cr_assert_null(strstr(err.msg, "aaaa"), "a token is never echoed");
}

Test(worker_msg, register)
{
    Hodei__V1__RegisterRequest r = HODEI__V1__REGISTER_REQUEST__INIT;
    Hodei__V1__ResourceRequirements cap = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    Hodei__V1__RegisterRequest__LabelsEntry l0 = HODEI__V1__REGISTER_REQUEST__LABELS_ENTRY__INIT,
                                            l1 = HODEI__V1__REGISTER_REQUEST__LABELS_ENTRY__INIT;
    Hodei__V1__RegisterRequest__LabelsEntry *labels[] = {&l0, &l1};
    r.token = TOKEN;
    r.worker_id = ID;
    r.hostname = "node-1";
    r.agent_version = "1.0";
    r.capacity = &cap;
    cap.cpu_cores = 2;
    cap.architecture = "amd64";
    l0.key = "zone";
    l0.value = "a";
    l1.key = "gpu";
    l1.value = "none";
    r.labels = labels;
    r.n_labels = 2;
    EXPECT_OK(hodei_worker_check_register(&r, &err));

    r.worker_id = "not-an-id";
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "worker_id:");
    r.worker_id = ID;
    r.hostname = "";
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "hostname:");
    r.hostname = "bad\nhost";
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "hostname:");
    r.hostname = "node-1";
    cap.cpu_cores = NAN;
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "capacity.cpu_cores:");
    cap.cpu_cores = 2;
    cap.gpu_count = -1;
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "capacity.gpu_count:");
    cap.gpu_count = 0;
    cap.architecture = "sparc";
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "capacity.architecture:");
    cap.architecture = "";
    l1.key = "zone";
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "labels[\"zone\"]: given twice");
    l1.key = "bad key";
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "labels[1]: key");
    l1.key = "gpu";
    l1.value = "\x01";
    EXPECT_FIELD(hodei_worker_check_register(&r, &err), "labels[\"gpu\"]: value");
}

Test(worker_msg, hello)
{
    Hodei__V1__Hello h = HODEI__V1__HELLO__INIT;
    char *ids[] = {ID, "nope"};
    h.worker_id = ID;
    h.session_token = TOKEN;
    EXPECT_OK(hodei_worker_check_hello(&h, &err));
    h.running_job_ids = ids;
    h.n_running_job_ids = 1;
    EXPECT_OK(hodei_worker_check_hello(&h, &err));
    h.n_running_job_ids = 2;
    EXPECT_FIELD(hodei_worker_check_hello(&h, &err), "hello.running_job_ids[1]:");
    h.n_running_job_ids = HODEI_WORKER_RUNNING_IDS_MAX + 1;
    EXPECT_FIELD(hodei_worker_check_hello(&h, &err), "hello.running_job_ids: at most");
    h.n_running_job_ids = 0;
    h.session_token = NULL;
    EXPECT_FIELD(hodei_worker_check_hello(&h, &err), "hello.session_token:");
}

Test(worker_msg, heartbeat)
{
    Hodei__V1__Heartbeat hb = HODEI__V1__HEARTBEAT__INIT;
    Hodei__V1__ResourceUsage u = HODEI__V1__RESOURCE_USAGE__INIT;
    EXPECT_OK(hodei_worker_check_heartbeat(&hb, &err)); /* usage is optional */
    hb.usage = &u;
    u.cpu_cores_used = 1.5;
    u.running_jobs = HODEI_WORKER_RUNNING_JOBS_MAX;
    EXPECT_OK(hodei_worker_check_heartbeat(&hb, &err));
    u.running_jobs = HODEI_WORKER_RUNNING_JOBS_MAX + 1;
    EXPECT_FIELD(hodei_worker_check_heartbeat(&hb, &err), "heartbeat.usage.running_jobs:");
    u.running_jobs = 0;
    u.cpu_cores_used = INFINITY;
    EXPECT_FIELD(hodei_worker_check_heartbeat(&hb, &err), "heartbeat.usage.cpu_cores_used:");
    u.cpu_cores_used = 0;
    u.memory_bytes_used = -1;
    EXPECT_FIELD(hodei_worker_check_heartbeat(&hb, &err), "heartbeat.usage.memory_bytes");
}

Test(worker_msg, ack_and_result)
{
    Hodei__V1__RunJobAck a = HODEI__V1__RUN_JOB_ACK__INIT;
    a.job_id = ID;
    a.epoch = 1;
    EXPECT_OK(hodei_worker_check_ack(&a, &err));
    a.epoch = 0;
    EXPECT_FIELD(hodei_worker_check_ack(&a, &err), "run_job_ack.epoch:");

    Hodei__V1__JobResult r = HODEI__V1__JOB_RESULT__INIT;
    r.job_id = ID;
    r.epoch = 2;
    r.state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
    r.error = "exit 3";
    EXPECT_OK(hodei_worker_check_result(&r, &err));
    r.state = HODEI__V1__JOB_STATE__JOB_STATE_RUNNING;
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.state:");
    r.state = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    r.error = "\xff\xfe";
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.error:");
    r.error = NULL;
    r.job_id = NULL;
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.job_id:");
}

Test(worker_msg, log_batch)
{
    Hodei__V1__LogLine l1 = HODEI__V1__LOG_LINE__INIT, l2 = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__LogLine *lines[] = {&l1, &l2};
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    b.job_id = ID;
    b.epoch = 1;
    b.lines = lines;
    b.n_lines = 2;
    l1.sequence = 1;
    l2.sequence = 2;
    l1.stream = l2.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_STDOUT;
    EXPECT_OK(hodei_worker_check_log_batch(&b, &err));
    l2.sequence = 1;
    EXPECT_FIELD(hodei_worker_check_log_batch(&b, &err), "log_batch.lines[1].sequence:");
    l2.sequence = 2;
    l2.stream = 0;
    EXPECT_FIELD(hodei_worker_check_log_batch(&b, &err), "log_batch.lines[1].stream:");
    l2.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_STDERR;
    b.n_lines = 0;
    EXPECT_FIELD(hodei_worker_check_log_batch(&b, &err), "log_batch.lines:");
    b.n_lines = 2;
    b.epoch = -1;
    EXPECT_FIELD(hodei_worker_check_log_batch(&b, &err), "log_batch.epoch:");
}

Test(worker_msg, log_batch_system_lines)
{
    Hodei__V1__LogLine l = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__LogLine *lines[] = {&l};
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    b.job_id = ID;
    b.epoch = 1;
    b.lines = lines;
    b.n_lines = 1;
    l.sequence = 1;
    l.stream = HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM; /* the agent's own notes */
    EXPECT_OK(hodei_worker_check_log_batch(&b, &err));
}

Test(worker_msg, result_artifact_records)
{
    Hodei__V1__ArtifactRecord a = HODEI__V1__ARTIFACT_RECORD__INIT;
    Hodei__V1__ArtifactRecord *recs[] = {&a};
    Hodei__V1__JobResult r = HODEI__V1__JOB_RESULT__INIT;
    r.job_id = ID;
    r.epoch = 3;
    r.state = HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED;
    r.artifacts = recs;
    r.n_artifacts = 1;
    a.source = "out/report.txt";
    a.destination = "s3://bucket/report.txt";
    a.state = HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED;
    a.epoch = 3;
    a.size_bytes = 10;
    a.checksum = "sha256:"
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    EXPECT_OK(hodei_worker_check_result(&r, &err));
    a.checksum = "md5:abc";
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.artifacts[0].checksum:");
    a.checksum = "";
    a.epoch = 2;
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.artifacts[0]:");
    a.epoch = 3;
    a.state = HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UNSPECIFIED;
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.artifacts[0].state:");
    a.state = HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_FAILED;
    a.source = "\xff";
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.artifacts[0].source:");
    recs[0] = NULL;
    EXPECT_FIELD(hodei_worker_check_result(&r, &err), "job_result.artifacts[0]: missing");
}
