/* Wake-ups from JetStream: the durable pull consumer HODEI_CONSUMER_SCHEDULER
 * on HODEI_EVENTS (explicit ack, shared by every replica, created when
 * missing). Events carry no decision: any JobQueued, WorkerReady,
 * JobFinished or ProvisionFailed calls for a pass, which re-reads
 * PostgreSQL; every other subject is acknowledged and ignored.
 *
 * A fetch waits for one message (so the first event is seen at once), then
 * takes whatever else is already waiting without waiting, so a burst of
 * events costs one pass. nats.c's plain Fetch with a batch > 1 would wait
 * for the whole batch or its timeout. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "sched_int.h"

#define BUS_CONNECT_TIMEOUT_MS  2000
#define BUS_ACK_WAIT_MS         30000
#define BUS_MAX_ACK_PENDING     20000
#define BUS_NAK_DELAY_MS        1000
#define BUS_DRAIN_EXPIRES_MS    2     /* bound on a no-wait fetch's answer */
#define BUS_BACKOFF_MIN_MS      250
#define BUS_BACKOFF_MAX_MS      5000
#define BUS_CLIENT_NAME_MAX     160
#define NS_PER_MS               1000000LL

static const char *const trigger_subjects[] = {
    HODEI_SUBJ_JOB_QUEUED, HODEI_SUBJ_WORKER_READY, HODEI_SUBJ_JOB_FINISHED,
    HODEI_SUBJ_PROVISION_FAILED, NULL,
};

static bool bus_triggers(const char *subject)
{
    for (size_t i = 0; trigger_subjects[i]; i++) {
        if (strcmp(subject, trigger_subjects[i]) == 0)
            return true;
    }
    return false;
}

static void bus_backoff(sched *s)
{
    s->nats_backoff_ms = s->nats_backoff_ms ? 2 * s->nats_backoff_ms : BUS_BACKOFF_MIN_MS;
    if (s->nats_backoff_ms > BUS_BACKOFF_MAX_MS)
        s->nats_backoff_ms = BUS_BACKOFF_MAX_MS;
    s->nats_retry_ms = hodei_mono_ms() + s->nats_backoff_ms;
}

/* Binds to the durable consumer, creating it when missing. DeliverNew: on
 * first creation the history is not replayed (the first pass covers it). */
static hodei_status bus_subscribe(sched *s, hodei_err *err)
{
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus ns;

    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverNew;
    so.Config.AckWait = BUS_ACK_WAIT_MS * NS_PER_MS;
    so.Config.MaxAckPending = BUS_MAX_ACK_PENDING;
    ns = js_PullSubscribe(&s->sub, hodei_bus_js(s->bus), HODEI_SUBJ_EVENTS_ALL,
                          HODEI_CONSUMER_SCHEDULER, NULL, &so, &jerr);
    if (ns != NATS_OK) {
        s->sub = NULL;
        return hodei_bus_err(ns, "pull subscribe " HODEI_CONSUMER_SCHEDULER, err);
    }
    return HODEI_OK;
}

static hodei_status bus_setup(sched *s, hodei_err *err)
{
    char client[BUS_CLIENT_NAME_MAX];
    hodei_status st;

    if (!s->bus) {
        snprintf(client, sizeof client, "scheduler/%s", s->instance);
        st = hodei_bus_connect(s->common->nats_url, client, BUS_CONNECT_TIMEOUT_MS, &s->bus, err);
        if (st != HODEI_OK)
            return st;
    }
    if (!hodei_bus_connected(s->bus))
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "nats: not connected");
    if ((st = hodei_bus_ensure_streams(s->bus, err)) != HODEI_OK)
        return st;
    return bus_subscribe(s, err);
}

void sched_bus_try_setup(sched *s)
{
    hodei_err e = {0};

    if (s->sub || hodei_mono_ms() < s->nats_retry_ms)
        return;
    if (bus_setup(s, &e) != HODEI_OK) {
        if (s->nats_backoff_ms == 0)
            HLOG_WARN("events unavailable, scheduling on the %" PRId64 " ms timer: %s",
                      s->cfg->pass_interval_ms, e.msg);
        bus_backoff(s);
        return;
    }
    s->nats_backoff_ms = 0;
    HLOG_INFO("consuming %s through durable consumer %s", HODEI_STREAM_EVENTS,
              HODEI_CONSUMER_SCHEDULER);
}

static void bus_scan(sched_events *ev, const natsMsgList *list)
{
    for (int i = 0; i < list->Count; i++) {
        if (bus_triggers(natsMsg_GetSubject(list->Msgs[i])))
            ev->trigger = true;
    }
    ev->n += (size_t)list->Count;
}

static natsStatus bus_fetch_one(sched *s, natsMsgList *list, int64_t wait_ms, bool no_wait,
                                int batch)
{
    jsFetchRequest req;
    jsFetchRequest_Init(&req);
    req.Batch = batch;
    req.NoWait = no_wait;
    req.Expires = wait_ms * NS_PER_MS;
    return natsSubscription_FetchRequest(list, s->sub, &req);
}

hodei_status sched_bus_fetch(sched *s, int64_t wait_ms, sched_events *ev, hodei_err *err)
{
    natsStatus ns;

    memset(ev, 0, sizeof *ev);
    ns = bus_fetch_one(s, &ev->first, wait_ms, false, 1);
    if (ns == NATS_TIMEOUT || ns == NATS_NOT_FOUND)
        return HODEI_OK;
    if (ns != NATS_OK)
        return hodei_bus_err(ns, "fetch", err);
    bus_scan(ev, &ev->first);
    if (s->cfg->events_max > 1) {
        ns = bus_fetch_one(s, &ev->rest, BUS_DRAIN_EXPIRES_MS, true, (int)s->cfg->events_max - 1);
        if (ns == NATS_OK)
            bus_scan(ev, &ev->rest);
    }
    return HODEI_OK;
}

static void bus_settle_list(natsMsgList *list, bool ok)
{
    for (int i = 0; i < list->Count; i++) {
        if (ok)
            natsMsg_Ack(list->Msgs[i], NULL);
        else
            natsMsg_NakWithDelay(list->Msgs[i], BUS_NAK_DELAY_MS, NULL);
    }
    natsMsgList_Destroy(list);
}

void sched_bus_settle(sched_events *ev, bool ok)
{
    bus_settle_list(&ev->first, ok);
    bus_settle_list(&ev->rest, ok);
    ev->n = 0;
}

void sched_bus_close(sched *s)
{
    /* Destroy, never Unsubscribe: nats.c deletes a consumer it created on
     * an explicit unsubscribe, and this one is shared by every replica. */
    natsSubscription_Destroy(s->sub);
    s->sub = NULL;
    hodei_bus_destroy(s->bus);
    s->bus = NULL;
}
