/* NATS connection and JetStream stream setup for every Hodei process. */
#include "hodei/bus.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hodei/assert.h"
#include "hodei/log.h"
#include "hodei/sync.h"
#include "hodei/util.h"

#define BUS_SERVERS_MAX 16
#define BUS_URL_MAX 2048
#define BUS_NAME_MAX 128
#define BUS_RECONNECT_WAIT_MS 250
#define BUS_RECONNECT_JITTER_MS 250
#define BUS_RECONNECT_BUF_BYTES (32 * 1024 * 1024)
#define BUS_PING_INTERVAL_MS 5000
#define BUS_PINGS_OUT_MAX 3
#define BUS_NS_PER_MS 1000000LL
#define BUS_CLOSE_WAIT_MS 5000

struct hodei_bus {
    natsConnection *conn;
    jsCtx *js;
    atomic_bool closing; /* set by destroy: disconnects are expected */
    pthread_mutex_t mu;
    pthread_cond_t closed_cond;
    bool closed; /* the closed callback ran (guarded by mu) */
    char name[BUS_NAME_MAX];
};

static hodei_status bus_status_of(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return HODEI_OK;
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED:
    case NATS_IO_ERROR:
    case NATS_SSL_ERROR:
        return HODEI_ERR_UNAVAILABLE;
    case NATS_TIMEOUT:
        return HODEI_ERR_TIMEOUT;
    case NATS_NOT_FOUND:
        return HODEI_ERR_NOT_FOUND;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
        return HODEI_ERR_INVALID;
    case NATS_NO_MEMORY:
        return HODEI_ERR_NOMEM;
    case NATS_INSUFFICIENT_BUFFER:
    case NATS_MAX_PAYLOAD:
    case NATS_SLOW_CONSUMER:
        return HODEI_ERR_LIMIT;
    case NATS_NOT_PERMITTED:
        return HODEI_ERR_PERMISSION;
    case NATS_CONNECTION_AUTH_FAILED:
        return HODEI_ERR_UNAUTHENTICATED;
    default:
        return HODEI_ERR_INTERNAL;
    }
}

hodei_status hodei_bus_err(natsStatus s, const char *what, hodei_err *err)
{
    hodei_status st = bus_status_of(s);
    const char *detail = nats_GetLastError(NULL);

    if (st == HODEI_OK)
        return HODEI_OK;
    if (detail && detail[0] && strcmp(detail, natsStatus_GetText(s)) != 0)
        return hodei_err_set(err, st, "%s: %s (%s)", what, natsStatus_GetText(s), detail);
    return hodei_err_set(err, st, "%s: %s", what, natsStatus_GetText(s));
}

static void bus_on_disconnected(natsConnection *nc, void *closure)
{
    hodei_bus *bus = closure;
    if (atomic_load(&bus->closing))
        return;
    HLOG_WARN("nats disconnected; reconnecting (client=%s)", bus->name);
}

static void bus_on_reconnected(natsConnection *nc, void *closure)
{
    const hodei_bus *bus = closure;
    char url[256] = "";

    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    HLOG_INFO("nats reconnected to %s (client=%s)", url, bus->name);
}

static void bus_on_closed(natsConnection *nc, void *closure)
{
    hodei_bus *bus = closure;
    HLOG_DEBUG("nats connection closed (client=%s)", bus->name);
    pthread_mutex_lock(&bus->mu);
    bus->closed = true;
    pthread_cond_broadcast(&bus->closed_cond);
    pthread_mutex_unlock(&bus->mu);
}

static void bus_sync_init(hodei_bus *bus)
{

    pthread_mutex_init(&bus->mu, NULL);
    hodei_cond_init_monotonic(&bus->closed_cond);
}

/* Splits "nats://a:4222, nats://b:4222" in place into servers[]. */
static int bus_split_servers(char *list, const char *servers[BUS_SERVERS_MAX])
{
    int n = 0;
    char *p = list;

    while (p && *p && n < BUS_SERVERS_MAX) {
        char *comma = strchr(p, ',');
        char *end;
        if (comma)
            *comma = '\0';
        while (*p == ' ')
            p++;
        end = p + strlen(p);
        while (end > p && end[-1] == ' ')
            *--end = '\0';
        if (*p)
            servers[n++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return n;
}

static natsStatus bus_set_servers(natsOptions *opts, const char *url)
{
    char list[BUS_URL_MAX];
    const char *servers[BUS_SERVERS_MAX];
    int n;

    if (!hodei_strlcpy(list, url, sizeof list))
        return NATS_INVALID_ARG;
    n = bus_split_servers(list, servers);
    if (n == 0)
        return NATS_INVALID_ARG;
    return natsOptions_SetServers(opts, servers, n);
}

static natsStatus bus_options_fill(natsOptions *opts, hodei_bus *bus, const char *url,
                                   const hodei_bus_auth *auth, int64_t connect_timeout_ms)
{
    natsStatus s = bus_set_servers(opts, url);

    if (s == NATS_OK && auth && auth->user && auth->user[0])
        s = natsOptions_SetUserInfo(opts, auth->user, auth->password ? auth->password : "");
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, bus->name);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, connect_timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, BUS_RECONNECT_WAIT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectJitter(opts, BUS_RECONNECT_JITTER_MS, BUS_RECONNECT_JITTER_MS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectBufSize(opts, BUS_RECONNECT_BUF_BYTES);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(opts, BUS_PING_INTERVAL_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(opts, BUS_PINGS_OUT_MAX);
    if (s == NATS_OK)
        s = natsOptions_SetDisconnectedCB(opts, bus_on_disconnected, bus);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectedCB(opts, bus_on_reconnected, bus);
    if (s == NATS_OK)
        s = natsOptions_SetClosedCB(opts, bus_on_closed, bus);
    return s;
}

static hodei_status bus_connect(const char *url, const hodei_bus_auth *auth,
                                const char *client_name, int64_t connect_timeout_ms, bool send_asap,
                                hodei_bus **out, hodei_err *err)
{
    hodei_status st = HODEI_ERR_NOMEM;
    natsOptions *opts = NULL;
    natsStatus s;
    hodei_bus *bus;

    HODEI_ASSERT(url && out);
    *out = NULL;
    bus = calloc(1, sizeof *bus);
    if (!bus)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "bus: out of memory");
    hodei_strlcpy(bus->name, client_name ? client_name : "hodei", sizeof bus->name);
    bus_sync_init(bus);

    s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = bus_options_fill(opts, bus, url, auth, connect_timeout_ms);
    if (s == NATS_OK && send_asap)
        s = natsOptions_SetSendAsap(opts, true);
    if (s != NATS_OK) {
        st = hodei_bus_err(s, "nats options", err);
        goto out_free;
    }
    s = natsConnection_Connect(&bus->conn, opts);
    if (s != NATS_OK) {
        st = hodei_bus_err(s, "nats connect", err);
        goto out_free;
    }
    s = natsConnection_JetStream(&bus->js, bus->conn, NULL);
    if (s != NATS_OK) {
        st = hodei_bus_err(s, "jetstream context", err);
        goto out_free;
    }
    natsOptions_Destroy(opts);
    *out = bus;
    return HODEI_OK;

out_free:
    natsOptions_Destroy(opts);
    hodei_bus_destroy(bus);
    return st;
}

hodei_status hodei_bus_connect(const char *url, const hodei_bus_auth *auth, const char *client_name,
                               int64_t connect_timeout_ms, hodei_bus **out, hodei_err *err)
{
    return bus_connect(url, auth, client_name, connect_timeout_ms, false, out, err);
}

hodei_status hodei_bus_connect_asap(const char *url, const hodei_bus_auth *auth,
                                    const char *client_name, int64_t connect_timeout_ms,
                                    hodei_bus **out, hodei_err *err)
{
    return bus_connect(url, auth, client_name, connect_timeout_ms, true, out, err);
}

/* nats.c runs the connection callbacks on its own thread after Close
 * returns; the closed callback is the last one, so wait for it before the
 * closure (bus) is freed. false when it did not come in time. */
static bool bus_wait_closed(hodei_bus *bus)
{
    struct timespec deadline;
    bool closed;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += BUS_CLOSE_WAIT_MS / 1000;
    pthread_mutex_lock(&bus->mu);
    while (!bus->closed && rc == 0)
        rc = pthread_cond_timedwait(&bus->closed_cond, &bus->mu, &deadline);
    closed = bus->closed;
    pthread_mutex_unlock(&bus->mu);
    return closed;
}

void hodei_bus_destroy(hodei_bus *bus)
{
    if (!bus)
        return;
    atomic_store(&bus->closing, true);
    jsCtx_Destroy(bus->js);
    if (bus->conn) {
        natsConnection_Close(bus->conn);
        natsConnection_Destroy(bus->conn);
        if (!bus_wait_closed(bus)) {
            HLOG_ERROR("nats close callback did not run within %d ms; leaking the bus handle",
                       BUS_CLOSE_WAIT_MS);
            return;
        }
    }
    pthread_cond_destroy(&bus->closed_cond);
    pthread_mutex_destroy(&bus->mu);
    free(bus);
}

natsConnection *hodei_bus_conn(hodei_bus *bus)
{
    HODEI_ASSERT(bus);
    return bus->conn;
}

jsCtx *hodei_bus_js(hodei_bus *bus)
{
    HODEI_ASSERT(bus);
    return bus->js;
}

bool hodei_bus_connected(hodei_bus *bus)
{
    HODEI_ASSERT(bus);
    return natsConnection_Status(bus->conn) == NATS_CONN_STATUS_CONNECTED;
}

/* js_AddStream, or js_UpdateStream when the stream exists with other limits. */
static hodei_status bus_stream_apply(hodei_bus *bus, jsStreamConfig *cfg, hodei_err *err)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_AddStream(&si, bus->js, cfg, NULL, &jerr);
    char what[128];

    if (s != NATS_OK && jerr == JSStreamNameExistErr) {
        jerr = 0;
        s = js_UpdateStream(&si, bus->js, cfg, NULL, &jerr);
    }
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK)
        return HODEI_OK;
    snprintf(what, sizeof what, "stream %s (jetstream error %d)", cfg->Name, (int)jerr);
    return hodei_bus_err(s, what, err);
}

hodei_status hodei_bus_ensure_streams(hodei_bus *bus, hodei_err *err)
{
    const char *evt_subjects[] = {HODEI_SUBJ_EVENTS_ALL};
    const char *log_subjects[] = {HODEI_SUBJ_LOGS_ALL};
    jsStreamConfig evt, logs;
    hodei_status st;

    HODEI_ASSERT(bus);
    jsStreamConfig_Init(&evt);
    evt.Name = HODEI_STREAM_EVENTS;
    evt.Subjects = evt_subjects;
    evt.SubjectsLen = 1;
    evt.Storage = js_FileStorage;
    evt.Duplicates = (int64_t)HODEI_EVENTS_DUPLICATE_WINDOW_MS * BUS_NS_PER_MS;
    evt.MaxAge = HODEI_EVENTS_MAX_AGE_MS * BUS_NS_PER_MS;
    st = bus_stream_apply(bus, &evt, err);
    if (st != HODEI_OK)
        return st;

    jsStreamConfig_Init(&logs);
    logs.Name = HODEI_STREAM_LOGS;
    logs.Subjects = log_subjects;
    logs.SubjectsLen = 1;
    logs.Storage = js_FileStorage;
    logs.MaxBytes = HODEI_LOGS_MAX_BYTES;
    logs.MaxMsgsPerSubject = HODEI_LOGS_MAX_MSGS_PER_JOB;
    logs.MaxAge = HODEI_LOGS_MAX_AGE_MS * BUS_NS_PER_MS;
    return bus_stream_apply(bus, &logs, err);
}

void hodei_bus_global_shutdown(void)
{
    /* Waits (bounded) for nats.c's threads so leak checkers see no memory
     * still held by the library. */
    if (nats_CloseAndWait(2000) != NATS_OK)
        nats_Close();
}

/* nats-server 2.9 accepts a new filter on an existing consumer but then
 * delivers nothing more when the consumer had none: the consumer is made
 * anew instead, with the same settings. One that delivered everything
 * starts again from the first message it had not acknowledged (its ack
 * floor + 1), so nothing unacknowledged is skipped; any other keeps its
 * deliver policy (a subscriber binding with it must find it unchanged). */
static bool bus_consumer_filters(hodei_bus *bus, const char *stream, const char *durable,
                                 const char *filter)
{
    jsConsumerInfo *ci = NULL;
    bool same = js_GetConsumerInfo(&ci, bus->js, stream, durable, NULL, NULL) == NATS_OK &&
                ci->Config && ci->Config->FilterSubject &&
                strcmp(ci->Config->FilterSubject, filter) == 0;
    jsConsumerInfo_Destroy(ci);
    return same;
}

hodei_status hodei_bus_consumer_refilter(hodei_bus *bus, const char *stream, const char *durable,
                                         const char *filter, hodei_err *err)
{
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    char what[160];
    snprintf(what, sizeof what, "consumer %s", durable);
    natsStatus s = js_GetConsumerInfo(&ci, bus->js, stream, durable, NULL, &jerr);
    if (s != NATS_OK)
        return hodei_bus_err(s, what, err);
    const char *had = ci->Config && ci->Config->FilterSubject ? ci->Config->FilterSubject : "";
    if (ci->Config && strcmp(had, filter) != 0) {
        jsConsumerConfig cc = *ci->Config;
        uint64_t from = ci->AckFloor.Stream + 1;
        cc.FilterSubject = filter;
        if (cc.DeliverPolicy == js_DeliverAll || cc.DeliverPolicy == js_DeliverByStartSequence) {
            cc.DeliverPolicy = js_DeliverByStartSequence;
            cc.OptStartSeq = from;
        }
        s = js_DeleteConsumer(bus->js, stream, durable, NULL, &jerr);
        if (s == NATS_OK || s == NATS_NOT_FOUND)
            s = js_AddConsumer(NULL, bus->js, stream, &cc, NULL, &jerr);
        if (s == NATS_OK && cc.DeliverPolicy == js_DeliverByStartSequence)
            HLOG_INFO("consumer %s: filter %s -> %s, made anew from stream sequence %llu", durable,
                      had[0] ? had : "(none)", filter, (unsigned long long)from);
        else if (s == NATS_OK)
            HLOG_INFO("consumer %s: filter %s -> %s, made anew", durable, had[0] ? had : "(none)",
                      filter);
        else if (bus_consumer_filters(bus, stream, durable, filter))
            s = NATS_OK; /* another replica made it meanwhile */
    }
    jsConsumerInfo_Destroy(ci);
    return hodei_bus_err(s, what, err);
}
