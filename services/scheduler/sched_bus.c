/* Wake-ups from JetStream: the durable pull consumer HODEI_CONSUMER_SCHEDULER
 * on HODEI_EVENTS (explicit ack, shared by every replica, created when
 * missing, filtering the events without a routing key), read by one feed
 * thread that hands each batch to the main loop through a one-batch slot
 * and an eventfd. Events carry no decision: any JobQueued, WorkerReady or
 * ProvisionFailed calls for a pass, which re-reads PostgreSQL; every other
 * subject is acknowledged and ignored. The main loop acks a batch after its
 * pass committed and only then is the next one fetched.
 *
 * A fetch waits for one message (so the first event is seen at once), then
 * takes whatever else is already waiting without waiting, so a burst of
 * events costs one pass. nats.c's plain Fetch with a batch > 1 would wait
 * for the whole batch or its timeout. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "sched_int.h"

#define BUS_CONNECT_TIMEOUT_MS 2000
#define BUS_ACK_WAIT_MS 30000
#define BUS_MAX_ACK_PENDING 20000
#define BUS_NAK_DELAY_MS 1000
#define BUS_FETCH_WAIT_MS 500     /* one long poll; bounds how long a stop waits */
#define BUS_DRAIN_EXPIRES_MS 1000 /* bound on a no-wait fetch's answer */
#define BUS_BACKOFF_MIN_MS 250
#define BUS_BACKOFF_MAX_MS 5000
#define BUS_CLIENT_NAME_MAX 160
#define NS_PER_MS 1000000LL
#define BUS_HINT_MAX 256 /* a packed JobAssigned hint */

/* The events after which an assignment or a provision may be possible: a
 * job to place, a worker free, a provision that failed. (A finished job
 * frees its worker with a WorkerReady of its own, unless the edge handed the
 * worker its next job.) */
static const char *const trigger_subjects[] = {
    HODEI_SUBJ_JOB_QUEUED,
    HODEI_SUBJ_WORKER_READY,
    HODEI_SUBJ_PROVISION_FAILED,
    NULL,
};

static bool bus_triggers(const char *subject)
{
    for (size_t i = 0; trigger_subjects[i]; i++) {
        if (strcmp(subject, trigger_subjects[i]) == 0)
            return true;
    }
    return false;
}

static bool feed_quitting(sched *s)
{
    pthread_mutex_lock(&s->feed.mu);
    bool quit = s->feed.quit;
    pthread_mutex_unlock(&s->feed.mu);
    return quit || hodei_daemon_stopping(s->d);
}

/* ------------------------------------------------------------------ setup */

/* Binds to the durable consumer, creating it when missing. DeliverNew: on
 * first creation the history is not replayed (the first pass covers it).
 * The subscription is destroyed, never unsubscribed: nats.c deletes a
 * consumer it created on an explicit unsubscribe, and this one is shared. */
static hodei_status bus_subscribe(sched *s, hodei_err *err)
{
    jsSubOptions so;
    jsErrCode jerr = 0;
    natsStatus ns;

    hodei_status st =
        hodei_bus_consumer_refilter(s->feed.bus, HODEI_STREAM_EVENTS, HODEI_CONSUMER_SCHEDULER,
                                    HODEI_SUBJ_EVENTS_UNROUTED, err);
    if (st != HODEI_OK && st != HODEI_ERR_NOT_FOUND)
        return st;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverNew;
    so.Config.AckWait = BUS_ACK_WAIT_MS * NS_PER_MS;
    so.Config.MaxAckPending = BUS_MAX_ACK_PENDING;
    ns = js_PullSubscribe(&s->feed.sub, hodei_bus_js(s->feed.bus), HODEI_SUBJ_EVENTS_UNROUTED,
                          HODEI_CONSUMER_SCHEDULER, NULL, &so, &jerr);
    if (ns != NATS_OK) {
        s->feed.sub = NULL;
        return hodei_bus_err(ns, "pull subscribe " HODEI_CONSUMER_SCHEDULER, err);
    }
    return HODEI_OK;
}

static hodei_status bus_setup(sched *s, hodei_err *err)
{
    char client[BUS_CLIENT_NAME_MAX];
    hodei_status st;

    if (!s->feed.bus) {
        snprintf(client, sizeof client, "scheduler/%s", s->instance);
        /* asap: a hint must not wait for nats.c's flusher (1 ms); the rest
         * of this connection's traffic is a fetch and an ack per batch */
        st = hodei_bus_connect_asap(
            s->common->nats_url, &(hodei_bus_auth){s->common->nats_user, s->common->nats_password},
            client, BUS_CONNECT_TIMEOUT_MS, &s->feed.bus, err);
        if (st != HODEI_OK)
            return st;
    }
    pthread_mutex_lock(&s->feed.mu);
    s->feed.hint_bus = s->feed.bus;
    pthread_mutex_unlock(&s->feed.mu);
    if (!hodei_bus_connected(s->feed.bus))
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "nats: not connected");
    if ((st = hodei_bus_ensure_streams(s->feed.bus, err)) != HODEI_OK)
        return st;
    return bus_subscribe(s, err);
}

static void feed_setup(sched *s)
{
    sched_feed *f = &s->feed;
    hodei_err e = {0};

    if (bus_setup(s, &e) != HODEI_OK) {
        if (f->backoff_ms == 0)
            HLOG_WARN("events unavailable, scheduling on the %" PRId64 " ms timer: %s",
                      s->cfg->pass_interval_ms, e.msg);
        hodei_daemon_report(s->d, "nats", false, e.msg);
        hodei_daemon_backoff(s->d, &f->backoff_ms, BUS_BACKOFF_MIN_MS, BUS_BACKOFF_MAX_MS);
        return;
    }
    f->backoff_ms = 0;
    hodei_daemon_report(s->d, "nats", true, NULL);
    HLOG_INFO("consuming %s through durable consumer %s", HODEI_STREAM_EVENTS,
              HODEI_CONSUMER_SCHEDULER);
}

/* ------------------------------------------------------------------ fetch */

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
    return natsSubscription_FetchRequest(list, s->feed.sub, &req);
}

static hodei_status bus_fetch(sched *s, sched_events *ev, hodei_err *err)
{
    natsStatus ns;

    memset(ev, 0, sizeof *ev);
    ns = bus_fetch_one(s, &ev->first, BUS_FETCH_WAIT_MS, false, 1);
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

static void bus_settle(sched_events *ev, bool ok)
{
    bus_settle_list(&ev->first, ok);
    bus_settle_list(&ev->rest, ok);
    ev->n = 0;
}

/* ------------------------------------------------------------ feed thread */

/* Puts ev in the slot once the previous batch was settled; false (ev nak'ed)
 * when stopping first. */
static void feed_hand_over(sched *s, sched_events *ev)
{
    sched_feed *f = &s->feed;
    uint64_t one = 1;

    pthread_mutex_lock(&f->mu);
    while (f->slot_full && !f->quit)
        pthread_cond_wait(&f->cv, &f->mu);
    bool quit = f->quit;
    if (!quit) {
        f->slot = *ev;
        f->slot_full = true;
    }
    pthread_mutex_unlock(&f->mu);
    if (quit)
        bus_settle(ev, false);
    else if (write(f->event_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        HLOG_WARN("events: eventfd write: %s", strerror(errno));
}

static void *feed_main(void *arg)
{
    sched *s = arg;
    sched_feed *f = &s->feed;
    hodei_err e = {0};
    sched_events ev;

    while (!feed_quitting(s)) {
        if (!f->sub) {
            feed_setup(s);
            continue;
        }
        if (bus_fetch(s, &ev, &e) != HODEI_OK) {
            HLOG_WARN("events: %s; subscribing again", e.msg);
            natsSubscription_Destroy(f->sub);
            f->sub = NULL;
            continue;
        }
        if (ev.n > 0)
            feed_hand_over(s, &ev);
    }
    return NULL;
}

/* ------------------------------------------------------------ main side */

hodei_status sched_feed_start(sched *s, hodei_err *err)
{
    sched_feed *f = &s->feed;

    f->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (f->event_fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "eventfd: %s", strerror(errno));
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    if (pthread_create(&f->thread, NULL, feed_main, s) != 0) {
        close(f->event_fd);
        f->event_fd = -1;
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "events: cannot start the feed thread");
    }
    f->started = true;
    return HODEI_OK;
}

void sched_feed_hint(sched *s, const char *job_id, const char *worker_id, int64_t epoch)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobAssigned a = HODEI__V1__JOB_ASSIGNED__INIT;
    uint8_t buf[BUS_HINT_MAX];
    char subject[BUS_CLIENT_NAME_MAX];

    a.job_id = (char *)job_id;
    a.worker_id = (char *)worker_id;
    a.epoch = epoch;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_ASSIGNED;
    ev.job_assigned = &a;
    size_t len = protobuf_c_message_get_packed_size(&ev.base);
    if (len > sizeof buf ||
        (size_t)snprintf(subject, sizeof subject, "%s%s", HODEI_SUBJ_HINT_ASSIGNED_PREFIX,
                         worker_id) >= sizeof subject)
        return;
    protobuf_c_message_pack(&ev.base, buf);
    pthread_mutex_lock(&s->feed.mu);
    if (s->feed.hint_bus && hodei_bus_connected(s->feed.hint_bus))
        natsConnection_Publish(hodei_bus_conn(s->feed.hint_bus), subject, buf, (int)len);
    pthread_mutex_unlock(&s->feed.mu);
}

int sched_feed_fd(const sched *s)
{
    return s->feed.event_fd;
}

bool sched_feed_take(sched *s, sched_events *ev)
{
    sched_feed *f = &s->feed;
    uint64_t count;

    if (read(f->event_fd, &count, sizeof count) < 0 && errno != EAGAIN)
        HLOG_WARN("events: eventfd read: %s", strerror(errno));
    pthread_mutex_lock(&f->mu);
    bool full = f->slot_full;
    if (full)
        *ev = f->slot;
    pthread_mutex_unlock(&f->mu);
    return full;
}

void sched_feed_done(sched *s, sched_events *ev, bool ok)
{
    sched_feed *f = &s->feed;

    bus_settle(ev, ok);
    pthread_mutex_lock(&f->mu);
    f->slot_full = false;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

void sched_feed_stop(sched *s)
{
    sched_feed *f = &s->feed;

    if (f->started) {
        pthread_mutex_lock(&f->mu);
        f->quit = true;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        pthread_join(f->thread, NULL);
        if (f->slot_full)
            bus_settle(&f->slot, false);
        pthread_cond_destroy(&f->cv);
        pthread_mutex_destroy(&f->mu);
        f->started = false;
    }
    natsSubscription_Destroy(f->sub);
    f->sub = NULL;
    hodei_bus_destroy(f->bus);
    f->bus = NULL;
    if (f->event_fd >= 0)
        close(f->event_fd);
    f->event_fd = -1;
}
