/* Logs that outlive the stream, on the whole product: a finished job's
 * output reads back whole (GetLogs, SubscribeLogs through `hodei logs -f`)
 * after JetStream's HODEI_LOGS was purged, with the same (epoch, sequence)
 * numbers; a job printing past logs.job_max shows one marker line saying
 * how much was dropped, and another job's output running beside it is
 * whole. */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <stdio.h>
#include <string.h>

#include "cluster.h"
#include "hodei/bus.h"
#include "hodei/id.h"
#include "hodei/util.h"
#include "hodei/v1/logs.pb-c.h"

#define MSG_MAX 1024
#define JOB_WAIT_MS 180000
#define LIMIT 65536

static cluster cl;

static const char *const logs_env[] = {"HODEI_LOGS_JOB_MAX=65536", NULL};

static Hodei__V1__GetLogsResponse *get_logs(const char *id)
{
    Hodei__V1__GetLogsRequest req = HODEI__V1__GET_LOGS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char msg[MSG_MAX];
    req.job_id = (char *)id;
    cr_assert_eq(edge_call_path(&cl.edge, "/hodei.v1.LogStreamService/GetLogs", &req.base,
                                &hodei__v1__get_logs_response__descriptor, &resp, msg, MSG_MAX),
                 HODEI_GRPC_OK, "GetLogs: %s", msg);
    return (Hodei__V1__GetLogsResponse *)resp;
}

static void purge_logs(void)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    cr_assert_eq(natsConnection_ConnectTo(&nc, cl.stack.nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    cr_assert_eq(js_PurgeStream(js, HODEI_STREAM_LOGS, NULL, &jerr), NATS_OK, "purge: %d",
                 (int)jerr);
    jsStreamInfo *si = NULL;
    cr_assert_eq(js_GetStreamInfo(&si, js, HODEI_STREAM_LOGS, NULL, &jerr), NATS_OK);
    cr_assert_eq(si->State.Msgs, 0, "the stream holds nothing after the purge");
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

static void wait_done(const char *id, const char *want)
{
    char state[32];
    cr_assert(cluster_wait_job(&cl, id, JOB_WAIT_MS, state, sizeof state), "job did not end");
    cr_assert_str_eq(state, want, "job %s", id);
}

Test(e2e_logs, archived_logs_read_back_after_a_purge_and_limits_hold, .timeout = 900)
{
    char a[HODEI_ID_BUF], big[HODEI_ID_BUF], small[HODEI_ID_BUF], sql[512], out[4096];
    cluster_start(&cl, logs_env);
    cluster_provider(&cl, 3, 5000, 0);

    /* 3,000 lines, then the stream is purged: the archive has them all. */
    cluster_queue(&cl, "i=1; while [ $i -le 3000 ]; do echo line-$i; i=$((i+1)); done", 1, 0, a);
    wait_done(a, "SUCCEEDED");
    snprintf(sql, sizeof sql, "SELECT count(*) FROM job_log_archives WHERE job_id = '%s'", a);
    cr_assert(cluster_wait_sql(&cl, sql, 1, 60000), "no archive row for job %s", a);
    purge_logs();
    Hodei__V1__GetLogsResponse *r = get_logs(a);
    cr_assert_eq(r->n_lines, 3000);
    cr_assert(r->complete);
    for (size_t i = 0; i < r->n_lines; i++) {
        char want[32];
        snprintf(want, sizeof want, "line-%zu", i + 1);
        cr_assert_eq(r->lines[i]->sequence, i + 1);
        cr_assert_eq(r->lines[i]->epoch, 1);
        cr_assert_eq(r->lines[i]->data.len, strlen(want));
        cr_assert(memcmp(r->lines[i]->data.data, want, strlen(want)) == 0);
    }
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* SubscribeLogs (hodei logs -f) reads the archive too, and resumes by
     * (epoch, sequence). */
    cr_assert_eq(harness_sh(&cl.stack, out, sizeof out,
                            "'%s/hodei' --server %s logs -f %s | wc -l | tr -d ' \\n'",
                            cl.stack.bin, cl.edge.target, a),
                 0);
    cr_assert_str_eq(out, "3000");
    cr_assert_eq(harness_sh(&cl.stack, out, sizeof out,
                            "'%s/hodei' --server %s logs --from 2991 %s | head -1", cl.stack.bin,
                            cl.edge.target, a),
                 0);
    cr_assert_str_eq(out, "line-2991\n");

    /* A job past logs.job_max beside one that prints a little. */
    cluster_queue(&cl, "sleep 1; for i in $(seq 1 40); do echo small-$i; sleep 0.05; done", 1, 0,
                  small);
    cluster_queue(&cl,
                  "i=0; while [ $i -lt 20000 ]; do"
                  " echo 0123456789012345678901234567890123456789012345678901234567890123456789;"
                  " i=$((i+1)); done",
                  1, 0, big);
    wait_done(big, "SUCCEEDED");
    wait_done(small, "SUCCEEDED");
    r = get_logs(big);
    cr_assert_gt(r->n_lines, 100);
    cr_assert_lt(r->n_lines, 20000);
    int64_t bytes = 0;
    for (size_t i = 0; i + 1 < r->n_lines; i++)
        bytes += (int64_t)r->lines[i]->data.len + 1;
    cr_assert_leq(bytes, LIMIT);
    const Hodei__V1__LogLine *last = r->lines[r->n_lines - 1];
    cr_assert_eq(last->stream, HODEI__V1__LOG_STREAM__LOG_STREAM_SYSTEM);
    snprintf(out, sizeof out, "%.*s", (int)last->data.len, (const char *)last->data.data);
    cr_assert_not_null(strstr(out, "of output were dropped"), "%s", out);
    char want[64];
    snprintf(want, sizeof want, "hodei: %zu lines", 20000 - (r->n_lines - 1));
    cr_assert(strncmp(out, want, strlen(want)) == 0, "%s (want %s)", out, want);
    cr_assert_eq(last->sequence, 20000, "the marker takes the last dropped sequence");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    r = get_logs(small);
    cr_assert_eq(r->n_lines, 40, "the other job's output is whole");
    for (size_t i = 0; i < r->n_lines; i++)
        cr_assert_eq(r->lines[i]->sequence, i + 1);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    cluster_stop(&cl);
}
