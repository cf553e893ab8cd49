/* libs/bus against a real, private nats-server -js (started here). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hodei/bus.h"
#include "hodei/time.h"

#define TEST_READY_TIMEOUT_MS 10000
#define TEST_CONNECT_TIMEOUT_MS 2000
/* The private server runs with authentication on, as every stack does. */
#define TEST_NATS_USER "hodei-test"
#define TEST_NATS_PASSWORD "bus-test-pw-7f3a"

static const hodei_bus_auth test_auth = {TEST_NATS_USER, TEST_NATS_PASSWORD};

typedef struct {
    char dir[256];
    char url[64];
    int port;
    pid_t pid;
} test_nats;

static test_nats g_nats;

static int test_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    cr_assert(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_nats_spawn(test_nats *n)
{
    char port[16], store[300], logp[300], conf[300];
    snprintf(port, sizeof port, "%d", n->port);
    snprintf(store, sizeof store, "%s/js", n->dir);
    snprintf(logp, sizeof logp, "%s/nats.log", n->dir);
    snprintf(conf, sizeof conf, "%s/nats.conf", n->dir);
    FILE *cf = fopen(conf, "w");
    cr_assert(cf != NULL);
    fprintf(cf, "authorization { user: \"%s\", password: \"%s\" }\n", TEST_NATS_USER,
            TEST_NATS_PASSWORD);
    cr_assert(fclose(cf) == 0);
    n->pid = fork();
    cr_assert(n->pid >= 0);
    if (n->pid == 0) {
        int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execlp("nats-server", "nats-server", "-c", conf, "-js", "-a", "127.0.0.1", "-p", port,
               "-sd", store, (char *)NULL);
        _exit(127);
    }
}

/* Ready = a client connects and JetStream answers an account info request. */
static void test_nats_wait_ready(test_nats *n)
{
    int64_t deadline = hodei_mono_ms() + TEST_READY_TIMEOUT_MS;
    while (hodei_mono_ms() < deadline) {
        hodei_bus *bus = NULL;
        if (hodei_bus_connect(n->url, &test_auth, "probe", 500, &bus, NULL) == HODEI_OK) {
            jsAccountInfo *ai = NULL;
            natsStatus s = js_GetAccountInfo(&ai, hodei_bus_js(bus), NULL, NULL);
            jsAccountInfo_Destroy(ai);
            hodei_bus_destroy(bus);
            if (s == NATS_OK)
                return;
        }
        hodei_sleep_ms(20);
    }
    cr_assert_fail("nats-server on port %d not ready", n->port);
}

static void test_nats_kill(test_nats *n)
{
    if (n->pid > 0) {
        kill(n->pid, SIGTERM);
        waitpid(n->pid, NULL, 0);
        n->pid = 0;
    }
}

static void setup(void)
{
    snprintf(g_nats.dir, sizeof g_nats.dir, "/tmp/hodei-test-bus-XXXXXX");
    cr_assert(mkdtemp(g_nats.dir) != NULL);
    g_nats.port = test_free_port();
    snprintf(g_nats.url, sizeof g_nats.url, "nats://127.0.0.1:%d", g_nats.port);
    test_nats_spawn(&g_nats);
    test_nats_wait_ready(&g_nats);
}

static void teardown(void)
{
    char cmd[400];
    test_nats_kill(&g_nats);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_nats.dir);
    cr_expect(system(cmd) == 0);
    hodei_bus_global_shutdown();
}

static hodei_bus *test_connect(void)
{
    hodei_bus *bus = NULL;
    hodei_err err = {0};
    hodei_status st =
        hodei_bus_connect(g_nats.url, &test_auth, "test-bus", TEST_CONNECT_TIMEOUT_MS, &bus, &err);
    cr_assert_eq(st, HODEI_OK, "connect: %s", err.msg);
    return bus;
}

static jsStreamInfo *test_stream_info(hodei_bus *bus, const char *name)
{
    jsStreamInfo *si = NULL;
    natsStatus s = js_GetStreamInfo(&si, hodei_bus_js(bus), name, NULL, NULL);
    cr_assert_eq(s, NATS_OK, "stream info %s: %s", name, natsStatus_GetText(s));
    return si;
}

static jsPubAck *test_publish(hodei_bus *bus, const char *subj, const char *msg_id)
{
    natsMsg *m = NULL;
    jsPubAck *pa = NULL;
    cr_assert_eq(natsMsg_Create(&m, subj, NULL, "x", 1), NATS_OK);
    cr_assert_eq(natsMsgHeader_Set(m, HODEI_HDR_MSG_ID, msg_id), NATS_OK);
    natsStatus s = js_PublishMsg(&pa, hodei_bus_js(bus), m, NULL, NULL);
    natsMsg_Destroy(m);
    cr_assert_eq(s, NATS_OK, "publish %s: %s", subj, natsStatus_GetText(s));
    return pa;
}

TestSuite(bus, .init = setup, .fini = teardown, .timeout = 60);

Test(bus, ensure_streams_twice_is_harmless_and_keeps_messages)
{
    hodei_bus *bus = test_connect();
    hodei_err err = {0};

    cr_assert_eq(hodei_bus_ensure_streams(bus, &err), HODEI_OK, "%s", err.msg);
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_JOB_QUEUED, "a1"));
    cr_assert_eq(hodei_bus_ensure_streams(bus, &err), HODEI_OK, "second call: %s", err.msg);

    jsStreamInfo *si = test_stream_info(bus, HODEI_STREAM_EVENTS);
    cr_expect_eq(si->State.Msgs, 1, "the message survived the second ensure");
    cr_expect_eq(si->Config->Storage, js_FileStorage);
    cr_expect_eq(si->Config->Duplicates, (int64_t)HODEI_EVENTS_DUPLICATE_WINDOW_MS * 1000000);
    cr_expect_eq(si->Config->MaxAge, HODEI_EVENTS_MAX_AGE_MS * 1000000);
    cr_expect_str_eq(si->Config->Subjects[0], HODEI_SUBJ_EVENTS_ALL);
    jsStreamInfo_Destroy(si);

    si = test_stream_info(bus, HODEI_STREAM_LOGS);
    cr_expect_eq(si->Config->MaxBytes, HODEI_LOGS_MAX_BYTES);
    cr_expect_eq(si->Config->MaxAge, HODEI_LOGS_MAX_AGE_MS * 1000000);
    cr_expect_str_eq(si->Config->Subjects[0], HODEI_SUBJ_LOGS_ALL);
    jsStreamInfo_Destroy(si);
    hodei_bus_destroy(bus);
}

Test(bus, ensure_streams_restores_changed_limits)
{
    hodei_bus *bus = test_connect();
    hodei_err err = {0};
    const char *subjects[] = {HODEI_SUBJ_EVENTS_ALL};
    jsStreamConfig cfg;
    jsStreamInfo *si = NULL;

    jsStreamConfig_Init(&cfg);
    cfg.Name = HODEI_STREAM_EVENTS;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = 60LL * 1000000000;
    cr_assert_eq(js_AddStream(&si, hodei_bus_js(bus), &cfg, NULL, NULL), NATS_OK);
    jsStreamInfo_Destroy(si);

    cr_assert_eq(hodei_bus_ensure_streams(bus, &err), HODEI_OK, "%s", err.msg);
    si = test_stream_info(bus, HODEI_STREAM_EVENTS);
    cr_expect_eq(si->Config->MaxAge, HODEI_EVENTS_MAX_AGE_MS * 1000000);
    cr_expect_eq(si->Config->Duplicates, (int64_t)HODEI_EVENTS_DUPLICATE_WINDOW_MS * 1000000);
    jsStreamInfo_Destroy(si);
    hodei_bus_destroy(bus);
}

static int test_fetch_subjects(natsSubscription *sub, char out[][64], int max)
{
    natsMsgList list = {0};
    int n = 0;
    if (natsSubscription_Fetch(&list, sub, max, 1000, NULL) == NATS_OK) {
        for (int i = 0; i < list.Count && n < max; i++) {
            snprintf(out[n++], 64, "%s", natsMsg_GetSubject(list.Msgs[i]));
            natsMsg_Ack(list.Msgs[i], NULL);
        }
    }
    natsMsgList_Destroy(&list);
    return n;
}

/* A consumer an older release made on every event (no filter, deliver all)
 * gets this release's filter without skipping what it had not acknowledged,
 * and keeps delivering what is published afterwards (nats-server 2.9 stops
 * delivering after a filter is set on such a consumer in place). */
Test(bus, a_consumer_with_an_older_filter_is_refiltered_without_losing_messages)
{
    hodei_bus *bus = test_connect();
    hodei_err err = {0};
    char got[8][64];
    cr_assert_eq(hodei_bus_ensure_streams(bus, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_bus_consumer_refilter(bus, HODEI_STREAM_EVENTS, "old",
                                             HODEI_SUBJ_PROVISION_ALL, &err),
                 HODEI_ERR_NOT_FOUND, "a missing consumer: %s", err.msg);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = "old";
    cc.AckPolicy = js_AckExplicit;
    cr_assert_eq(js_AddConsumer(NULL, hodei_bus_js(bus), HODEI_STREAM_EVENTS, &cc, NULL, NULL),
                 NATS_OK);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    so.Consumer = "old";
    natsSubscription *sub = NULL;
    cr_assert_eq(
        js_PullSubscribe(&sub, hodei_bus_js(bus), HODEI_SUBJ_EVENTS_ALL, "old", NULL, &so, NULL),
        NATS_OK);
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_WORKER_DESTROY, "r1"));
    cr_assert_eq(test_fetch_subjects(sub, got, 8), 1, "the old consumer takes r1");
    natsSubscription_Destroy(sub);
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_JOB_QUEUED, "r2"));
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_WORKER_DESTROY, "r3")); /* not yet consumed */

    cr_assert_eq(hodei_bus_consumer_refilter(bus, HODEI_STREAM_EVENTS, "old",
                                             HODEI_SUBJ_PROVISION_ALL, &err),
                 HODEI_OK, "%s", err.msg);
    cr_assert_eq(hodei_bus_consumer_refilter(bus, HODEI_STREAM_EVENTS, "old",
                                             HODEI_SUBJ_PROVISION_ALL, &err),
                 HODEI_OK, "again: %s", err.msg);
    sub = NULL;
    cr_assert_eq(
        js_PullSubscribe(&sub, hodei_bus_js(bus), HODEI_SUBJ_PROVISION_ALL, "old", NULL, &so, NULL),
        NATS_OK);
    cr_assert_eq(test_fetch_subjects(sub, got, 8), 1,
                 "only r3: r1 was acknowledged, r2 is not the provisioner's");
    cr_expect_str_eq(got[0], HODEI_SUBJ_WORKER_DESTROY);
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_JOB_QUEUED, "r4"));
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_PROVISION_REQUESTED, "r5"));
    cr_assert_eq(test_fetch_subjects(sub, got, 8), 1, "what comes later is delivered");
    cr_expect_str_eq(got[0], HODEI_SUBJ_PROVISION_REQUESTED);
    natsSubscription_Destroy(sub);
    hodei_bus_destroy(bus);
}

/* The scheduler's consumer (deliver new, bound with its settings) keeps
 * its deliver policy, so the scheduler can bind to it again. */
Test(bus, a_deliver_new_consumer_keeps_its_policy_when_refiltered)
{
    hodei_bus *bus = test_connect();
    hodei_err err = {0};
    char got[8][64];
    cr_assert_eq(hodei_bus_ensure_streams(bus, &err), HODEI_OK, "%s", err.msg);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverNew;
    natsSubscription *sub = NULL;
    cr_assert_eq(
        js_PullSubscribe(&sub, hodei_bus_js(bus), HODEI_SUBJ_EVENTS_ALL, "sched", NULL, &so, NULL),
        NATS_OK);
    natsSubscription_Destroy(sub);
    cr_assert_eq(hodei_bus_consumer_refilter(bus, HODEI_STREAM_EVENTS, "sched",
                                             HODEI_SUBJ_EVENTS_UNROUTED, &err),
                 HODEI_OK, "%s", err.msg);
    sub = NULL;
    cr_assert_eq(js_PullSubscribe(&sub, hodei_bus_js(bus), HODEI_SUBJ_EVENTS_UNROUTED, "sched",
                                  NULL, &so, NULL),
                 NATS_OK, "binding again with deliver-new");
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_JOB_ASSIGNED_PREFIX "w1", "s1"));
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_JOB_QUEUED, "s2"));
    cr_assert_eq(test_fetch_subjects(sub, got, 8), 1, "only the unrouted event");
    cr_expect_str_eq(got[0], HODEI_SUBJ_JOB_QUEUED);
    natsSubscription_Destroy(sub);
    hodei_bus_destroy(bus);
}

Test(bus, same_msg_id_is_stored_once)
{
    hodei_bus *bus = test_connect();
    hodei_err err = {0};
    jsPubAck *pa;

    cr_assert_eq(hodei_bus_ensure_streams(bus, &err), HODEI_OK, "%s", err.msg);
    pa = test_publish(bus, HODEI_SUBJ_JOB_QUEUED, "0190b1c2-0000-7000-8000-000000000001");
    cr_expect_not(pa->Duplicate);
    jsPubAck_Destroy(pa);
    pa = test_publish(bus, HODEI_SUBJ_JOB_QUEUED, "0190b1c2-0000-7000-8000-000000000001");
    cr_expect(pa->Duplicate, "second publish with the same Nats-Msg-Id is a duplicate");
    jsPubAck_Destroy(pa);
    pa = test_publish(bus, HODEI_SUBJ_JOB_QUEUED, "0190b1c2-0000-7000-8000-000000000002");
    cr_expect_not(pa->Duplicate);
    jsPubAck_Destroy(pa);

    jsStreamInfo *si = test_stream_info(bus, HODEI_STREAM_EVENTS);
    cr_expect_eq(si->State.Msgs, 2, "two distinct ids, two messages");
    jsStreamInfo_Destroy(si);
    hodei_bus_destroy(bus);
}

/* Nobody without the credentials reaches the bus: no user, a wrong
 * password, the right password for another user. */
Test(bus, server_refuses_missing_or_wrong_credentials)
{
    const hodei_bus_auth bad[] = {
        {NULL, NULL},
        {TEST_NATS_USER, "wrong"},
        {"someone-else", TEST_NATS_PASSWORD},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hodei_bus *bus = NULL;
        hodei_err err = {0};
        hodei_status st = hodei_bus_connect(g_nats.url, &bad[i], "test-bus", 2000, &bus, &err);
        cr_expect_eq(st, HODEI_ERR_UNAUTHENTICATED, "case %zu: got %s: %s", i, hodei_status_str(st),
                     err.msg);
        cr_expect_null(bus);
        cr_expect_null(strstr(err.msg, TEST_NATS_PASSWORD), "the error shows no password");
    }
    hodei_bus *bus = test_connect();
    cr_expect(hodei_bus_connected(bus), "the right credentials connect");
    hodei_bus_destroy(bus);
}

Test(bus, connect_to_closed_port_is_unavailable)
{
    hodei_bus *bus = NULL;
    hodei_err err = {0};
    char url[64];

    snprintf(url, sizeof url, "nats://127.0.0.1:%d", test_free_port());
    hodei_status st = hodei_bus_connect(url, NULL, "test-bus", 1000, &bus, &err);
    cr_expect_eq(st, HODEI_ERR_UNAVAILABLE, "got %s: %s", hodei_status_str(st), err.msg);
    cr_expect_null(bus);
    cr_expect_neq(err.msg[0], '\0', "the error says why");
}

Test(bus, reconnects_by_itself_after_server_restart)
{
    hodei_bus *bus = test_connect();
    hodei_err err = {0};
    int64_t deadline;

    cr_assert_eq(hodei_bus_ensure_streams(bus, &err), HODEI_OK, "%s", err.msg);
    test_nats_kill(&g_nats);
    deadline = hodei_mono_ms() + TEST_READY_TIMEOUT_MS;
    while (hodei_bus_connected(bus) && hodei_mono_ms() < deadline)
        hodei_sleep_ms(10);
    cr_assert_not(hodei_bus_connected(bus), "noticed the server is gone");

    test_nats_spawn(&g_nats);
    deadline = hodei_mono_ms() + TEST_READY_TIMEOUT_MS;
    while (!hodei_bus_connected(bus) && hodei_mono_ms() < deadline)
        hodei_sleep_ms(10);
    cr_assert(hodei_bus_connected(bus), "reconnected to the restarted server");
    test_nats_wait_ready(&g_nats);
    jsPubAck_Destroy(test_publish(bus, HODEI_SUBJ_JOB_FINISHED, "after-restart"));
    jsStreamInfo *si = test_stream_info(bus, HODEI_STREAM_EVENTS);
    cr_expect_eq(si->State.Msgs, 1);
    jsStreamInfo_Destroy(si);
    hodei_bus_destroy(bus);
}
