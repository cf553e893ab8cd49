/* The submit path end to end: 10,000 jobs queued through gRPC by 16
 * concurrent clients while the outbox relay is SIGKILLed three times and
 * nats-server is restarted once. Afterwards every job row exists and
 * HODEI_EVENTS holds exactly one JobQueued event per job. */
#include <criterion/criterion.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "edge_client.h"
#include "harness.h"
#include "hodei/bus.h"
#include "hodei/time.h"
#include "hodei/v1/events.pb-c.h"

#define E2E_JOBS 10000
#define E2E_CLIENTS 16
#define E2E_WAIT_MS 120000

static harness_stack stack;
static edge_handle edge;
static atomic_int queued;
static atomic_int failed;
static char ids[E2E_JOBS][37];

static void *client_main(void *arg)
{
    int k = (int)(intptr_t)arg;
    hodei_rpc_channel *ch = NULL;
    hodei_rpc_channel_opts o = {.target = edge.target, .api_key = stack.api_key};
    hodei_err err;
    cr_assert_eq(hodei_rpc_channel_create(&o, &ch, &err), HODEI_OK);
    edge_job j;
    edge_job_true(&j);
    for (int i = k; i < E2E_JOBS; i += E2E_CLIENTS) {
        ProtobufCMessage *resp = NULL;
        hodei_rpc_result res;
        hodei_status st =
            hodei_rpc_unary(ch, "/hodei.v1.JobExecutionService/QueueJob", &j.req.base,
                            &hodei__v1__queue_job_response__descriptor, 30000, &resp, &res, &err);
        if (st != HODEI_OK || res.code != HODEI_GRPC_OK) {
            atomic_fetch_add(&failed, 1);
            continue;
        }
        snprintf(ids[i], sizeof ids[i], "%s", ((Hodei__V1__QueueJobResponse *)resp)->job_id);
        protobuf_c_message_free_unpacked(resp, NULL);
        atomic_fetch_add(&queued, 1);
    }
    hodei_rpc_channel_destroy(ch);
    return NULL;
}

static void relay_start(harness_proc *p)
{
    const char *argv[] = {"hodei-outbox-relay", NULL};
    const char *env[] = {"HODEI_LOG_LEVEL=warn", NULL};
    harness_proc_start(&stack, p, argv, env);
}

static void wait_queued(int n)
{
    int64_t until = hodei_mono_ms() + E2E_WAIT_MS;
    while (atomic_load(&queued) + atomic_load(&failed) < n && hodei_mono_ms() < until)
        hodei_sleep_ms(20);
}

/* Reads every message of HODEI_EVENTS; returns how many, and how many
 * distinct job ids among the JobQueued events. */
static void stream_count(int *msgs, int *distinct)
{
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    cr_assert_eq(natsConnection_ConnectTo(&nc, stack.nats_url), NATS_OK);
    cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    cr_assert_eq(js_PullSubscribe(&sub, js, HODEI_SUBJ_EVENTS_ALL, "e2e-check", NULL, &so, &jerr),
                 NATS_OK);
    char *seen = calloc(E2E_JOBS, 1);
    *msgs = *distinct = 0;
    for (;;) {
        natsMsgList list = {0};
        natsStatus s = natsSubscription_Fetch(&list, sub, 1000, 2000, &jerr);
        if (s == NATS_TIMEOUT)
            break;
        cr_assert_eq(s, NATS_OK, "fetch: %s", natsStatus_GetText(s));
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            Hodei__V1__Event *ev = hodei__v1__event__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                            (const uint8_t *)natsMsg_GetData(m));
            cr_assert_not_null(ev, "an event that does not unpack");
            (*msgs)++;
            for (int k = 0; ev->body_case == HODEI__V1__EVENT__BODY_JOB_QUEUED && k < E2E_JOBS;
                 k++) {
                if (strcmp(ids[k], ev->job_queued->job_id) == 0) {
                    if (!seen[k])
                        (*distinct)++;
                    seen[k] = 1;
                    break;
                }
            }
            hodei__v1__event__free_unpacked(ev, NULL);
            natsMsg_Ack(m, NULL);
        }
        natsMsgList_Destroy(&list);
    }
    free(seen);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
}

Test(queue_e2e, ten_thousand_jobs_through_relay_kills_and_a_nats_restart, .timeout = 600)
{
    hodei_rpc_global_init();
    harness_stack_start(&stack);
    edge_start(&stack, &edge, NULL);
    harness_proc relay;
    relay_start(&relay);

    pthread_t th[E2E_CLIENTS];
    for (int i = 0; i < E2E_CLIENTS; i++)
        pthread_create(&th[i], NULL, client_main, (void *)(intptr_t)i);

    for (int kill_no = 1; kill_no <= 3; kill_no++) {
        wait_queued(kill_no * E2E_JOBS / 5);
        harness_proc_stop(&relay, SIGKILL, 5000);
        hodei_sleep_ms(200);
        relay_start(&relay);
    }
    wait_queued(4 * E2E_JOBS / 5);
    harness_nats_stop(&stack);
    hodei_sleep_ms(500);
    harness_nats_start(&stack);

    for (int i = 0; i < E2E_CLIENTS; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&failed), 0, "every QueueJob was acknowledged");
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM jobs"), E2E_JOBS);

    int64_t until = hodei_mono_ms() + E2E_WAIT_MS;
    while (harness_sql_i64(&stack, "SELECT count(*) FROM outbox WHERE published_at IS NULL") != 0 &&
           hodei_mono_ms() < until)
        hodei_sleep_ms(200);
    cr_assert_eq(harness_sql_i64(&stack, "SELECT count(*) FROM outbox WHERE published_at IS NULL"),
                 0, "the relay published every row");

    int msgs = 0, distinct = 0;
    stream_count(&msgs, &distinct);
    cr_expect_eq(msgs, E2E_JOBS, "HODEI_EVENTS holds exactly one event per job (got %d)", msgs);
    cr_expect_eq(distinct, E2E_JOBS, "every job's JobQueued event is there (got %d)", distinct);

    int st = harness_proc_stop(&relay, SIGTERM, 10000);
    cr_expect(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "relay stops cleanly");
    edge_stop(&edge);
    harness_stack_stop(&stack);
    nats_Close();
    hodei_rpc_global_shutdown();
}
