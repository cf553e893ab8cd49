/* The provisioner's view of HODEI_EVENTS: the durable pull consumer
 * HODEI_CONSUMER_PROVISIONER (explicit ack, every subject, shared by every
 * replica: each event goes to one of them), created idempotently.
 *
 *   ProvisionRequested      -> saga row inserted (or found) and committed,
 *                              then the event is acked; the saga thread runs it
 *   WorkerDestroyRequested  -> destroyed through the driver, TERMINATED, acked
 *   anything else           -> acked and ignored
 * A step that fails for a passing reason (database down) naks the event with
 * a delay: JetStream redelivers it, and handling it twice changes nothing. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/bus.h"
#include "hodei/id.h"
#include "hodei/log.h"
#include "hodei/v1/events.pb-c.h"
#include "prov.h"

#define CONS_NATS_CONNECT_MS 2000
#define CONS_FETCH_WAIT_MS 500 /* also bounds how long a stop waits */
#define CONS_BACKOFF_MIN_MS 100
#define CONS_BACKOFF_MAX_MS 2000
#define CONS_NAK_DELAY_MS 1000
#define CONS_ACK_WAIT_MS 30000
#define CONS_MAX_ACK_PENDING 1024
#define CONS_NS_PER_MS 1000000LL

typedef struct {
    prov *p;
    hodei_bus *bus;
    natsSubscription *sub;
    int64_t backoff_ms;
} consumer;

/* ---------------------------------------------------------------- setup */

static void cons_config(jsConsumerConfig *cc)
{
    jsConsumerConfig_Init(cc);
    cc->Durable = HODEI_CONSUMER_PROVISIONER;
    cc->FilterSubject = HODEI_SUBJ_PROVISION_ALL;
    cc->AckPolicy = js_AckExplicit;
    cc->DeliverPolicy = js_DeliverAll;
    cc->AckWait = (int64_t)CONS_ACK_WAIT_MS * CONS_NS_PER_MS;
    cc->MaxAckPending = CONS_MAX_ACK_PENDING;
}

/* Creates the durable consumer unless it exists (another replica may create
 * it at the same moment: then it exists). */
static hodei_status cons_ensure(consumer *c, hodei_err *err)
{
    hodei_status st = hodei_bus_consumer_refilter(
        c->bus, HODEI_STREAM_EVENTS, HODEI_CONSUMER_PROVISIONER, HODEI_SUBJ_PROVISION_ALL, err);
    if (st != HODEI_ERR_NOT_FOUND)
        return st;
    jsConsumerConfig cc;
    jsErrCode jerr = 0;
    cons_config(&cc);
    natsStatus s =
        js_AddConsumer(NULL, hodei_bus_js(c->bus), HODEI_STREAM_EVENTS, &cc, NULL, &jerr);
    if (s == NATS_OK)
        return HODEI_OK;
    /* Another replica may have made it meanwhile. */
    return hodei_bus_consumer_refilter(c->bus, HODEI_STREAM_EVENTS, HODEI_CONSUMER_PROVISIONER,
                                       HODEI_SUBJ_PROVISION_ALL, err);
}

static hodei_status cons_prepare(consumer *c, hodei_err *err)
{
    char client[192];
    hodei_status st;
    if (!c->bus) {
        snprintf(client, sizeof client, "provisioner/%s", c->p->instance);
        st = hodei_bus_connect(
            c->p->common->nats_url,
            &(hodei_bus_auth){c->p->common->nats_user, c->p->common->nats_password}, client,
            CONS_NATS_CONNECT_MS, &c->bus, err);
        if (st != HODEI_OK)
            return st;
    }
    if ((st = hodei_bus_ensure_streams(c->bus, err)) != HODEI_OK)
        return st;
    if ((st = cons_ensure(c, err)) != HODEI_OK)
        return st;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    so.Consumer = HODEI_CONSUMER_PROVISIONER;
    jsErrCode jerr = 0;
    natsStatus s = js_PullSubscribe(&c->sub, hodei_bus_js(c->bus), HODEI_SUBJ_PROVISION_ALL,
                                    HODEI_CONSUMER_PROVISIONER, NULL, &so, &jerr);
    if (s != NATS_OK)
        return hodei_bus_err(s, "pull subscribe " HODEI_CONSUMER_PROVISIONER, err);
    HLOG_INFO("consuming %s through durable consumer %s", HODEI_STREAM_EVENTS,
              HODEI_CONSUMER_PROVISIONER);
    return HODEI_OK;
}

static void cons_backoff(consumer *c)
{
    hodei_daemon_backoff(c->p->d, &c->backoff_ms, CONS_BACKOFF_MIN_MS, CONS_BACKOFF_MAX_MS);
}

/* ---------------------------------------------------------------- events */

static hodei_status cons_provision(consumer *c, PGconn *conn,
                                   const Hodei__V1__ProvisionRequested *r, hodei_err *err)
{
    const char *worker_id = r->worker_id && r->worker_id[0] ? r->worker_id : r->request_id;
    bool created = false;
    if (!worker_id || !hodei_id_valid(worker_id)) {
        HLOG_WARN("ProvisionRequested without a valid worker id: ignored");
        return HODEI_OK;
    }
    hodei_status st = prov_saga_insert(c->p, conn, worker_id, &created, err);
    if (st != HODEI_OK)
        return st;
    if (created) {
        HLOG_INFO("provision requested: worker %s (provider %s): saga started", worker_id,
                  r->provider ? r->provider : "");
        prov_saga_kick(c->p);
    } else {
        HLOG_INFO("provision requested: worker %s: a saga exists or the worker is no longer"
                  " CREATING; nothing to do",
                  worker_id);
    }
    return HODEI_OK;
}

static hodei_status cons_destroy(consumer *c, PGconn *conn,
                                 const Hodei__V1__WorkerDestroyRequested *r, hodei_err *err)
{
    if (!r->worker_id || !hodei_id_valid(r->worker_id)) {
        HLOG_WARN("WorkerDestroyRequested without a valid worker id: ignored");
        return HODEI_OK;
    }
    HLOG_INFO("destroy requested: worker %s (%s)", r->worker_id, r->reason ? r->reason : "");
    return prov_destroy_requested(c->p, conn, r->worker_id, r->provider ? r->provider : "", err);
}

static hodei_status cons_dispatch(consumer *c, const Hodei__V1__Event *ev, hodei_err *err)
{
    bool provision = ev->body_case == HODEI__V1__EVENT__BODY_PROVISION_REQUESTED;
    bool destroy = ev->body_case == HODEI__V1__EVENT__BODY_WORKER_DESTROY_REQUESTED;
    if (!provision && !destroy)
        return HODEI_OK;
    PGconn *conn = NULL;
    hodei_status st = prov_conn(c->p, &conn, err);
    if (st != HODEI_OK)
        return st;
    st = provision ? cons_provision(c, conn, ev->provision_requested, err)
                   : cons_destroy(c, conn, ev->worker_destroy_requested, err);
    prov_release(c->p, conn, st);
    return st;
}

static void cons_handle(consumer *c, natsMsg *m)
{
    hodei_err err = {0};
    int len = natsMsg_GetDataLength(m);
    Hodei__V1__Event *ev = hodei__v1__event__unpack(NULL, (size_t)(len > 0 ? len : 0),
                                                    (const uint8_t *)natsMsg_GetData(m));
    if (!ev) {
        HLOG_WARN("event on %s does not decode: dropped", natsMsg_GetSubject(m));
        natsMsg_Term(m, NULL);
        return;
    }
    hodei_status st = cons_dispatch(c, ev, &err);
    if (st == HODEI_OK) {
        natsMsg_Ack(m, NULL);
    } else {
        HLOG_WARN("event %s on %s: %s (redelivered later)", ev->event_id, natsMsg_GetSubject(m),
                  err.msg);
        natsMsg_NakWithDelay(m, CONS_NAK_DELAY_MS, NULL);
    }
    hodei__v1__event__free_unpacked(ev, NULL);
}

/* ---------------------------------------------------------------- loop */

/* One fetch; false when the subscription must be made again. */
static bool cons_fetch(consumer *c)
{
    natsMsgList list = {0};
    jsErrCode jerr = 0;
    natsStatus s = natsSubscription_Fetch(&list, c->sub, (int)c->p->cfg->fetch_batch,
                                          CONS_FETCH_WAIT_MS, &jerr);
    if (s == NATS_TIMEOUT)
        return true;
    if (s != NATS_OK) {
        hodei_err err = {0};
        hodei_bus_err(s, "fetch", &err);
        HLOG_WARN("%s (retrying)", err.msg);
        hodei_daemon_report(c->p->d, "nats", false, err.msg);
        cons_backoff(c);
        /* connected but failing: the consumer may have been deleted; make it
         * again. Disconnected: nats.c resubscribes when it reconnects. */
        return !hodei_bus_connected(c->bus);
    }
    if (c->backoff_ms)
        hodei_daemon_report(c->p->d, "nats", true, NULL);
    c->backoff_ms = 0;
    for (int i = 0; i < list.Count; i++)
        cons_handle(c, list.Msgs[i]);
    natsMsgList_Destroy(&list);
    return true;
}

hodei_status prov_consume(prov *p, hodei_err *err)
{
    consumer c = {.p = p};
    while (!hodei_daemon_stopping(p->d)) {
        if (!c.sub) {
            hodei_err e = {0};
            if (cons_prepare(&c, &e) != HODEI_OK) {
                HLOG_WARN("nats not ready, retrying: %s", e.msg);
                hodei_daemon_report(p->d, "nats", false, e.msg);
                cons_backoff(&c);
                continue;
            }
            hodei_daemon_report(p->d, "nats", true, NULL);
            c.backoff_ms = 0;
        }
        if (!cons_fetch(&c)) {
            natsSubscription_Destroy(c.sub);
            c.sub = NULL;
        }
    }
    natsSubscription_Destroy(c.sub);
    hodei_bus_destroy(c.bus);
    return HODEI_OK;
}
