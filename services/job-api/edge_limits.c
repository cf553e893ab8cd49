/* The largest message a client may send to each method, checked before the
 * message is decoded (libs/rpc answers RESOURCE_EXHAUSTED naming the
 * maximum). Client calls are small; what carries a job spec is as large as
 * the largest spec (HODEI_JOB_SPEC_PACKED_MAX) and some room; a worker's
 * stream carries log batches as large as they need (HODEI_RPC_MESSAGE_MAX,
 * gRPC's own cap on this server). One table, so the limits are read in one
 * place (README, "Limits"). */
#include "edge.h"

#include <string.h>

#include "client/client_providers.h"
#include "edge_auth.h"
#include "hodei/assert.h"
#include "hodei/job_spec.h"
#include "hodei/util.h"

#define EDGE_REQUEST_SMALL_MAX (64 * 1024)
#define EDGE_REQUEST_SPEC_MAX (HODEI_JOB_SPEC_PACKED_MAX + 64 * 1024)
#define EDGE_REQUEST_RUN_TEMPLATE_MAX (512 * 1024) /* 64 parameters of 4 KiB */
/* RegisterProvider: the largest valid Provider fits (client_providers.h).
 * Its config holds at most PROVIDER_CONFIG_MAX entries of a key of at most
 * PROVIDER_CONFIG_KEY_MAX bytes and a value of PROVIDER_CONFIG_VALUE_MAX
 * (PEM files, say); each is a map entry whose tag and length, and its key's
 * and value's, take at most 1 + 2, 1 + 2 and 1 + 2 bytes (16 counted). The
 * rest is under 1 KiB: the name (63 bytes), the type, five numbers and
 * enabled (11 bytes each at most), the worker capacity (under 64) and the
 * request's and Provider's own tags and lengths; 4 KiB counted.
 * 64 * (128 + 4096 + 16) + 4096 = 275,456 bytes (269 KiB). */
#define EDGE_REQUEST_PROVIDER_MAX                                                                  \
    ((size_t)PROVIDER_CONFIG_MAX * (PROVIDER_CONFIG_KEY_MAX + PROVIDER_CONFIG_VALUE_MAX + 16) +    \
     4096)

static const struct {
    const char *path;
    size_t max;
} edge_request_limits[] = {
    {"/hodei.v1.JobExecutionService/QueueJob", EDGE_REQUEST_SPEC_MAX},
    {"/hodei.v1.TemplateService/CreateTemplate", EDGE_REQUEST_SPEC_MAX},
    {"/hodei.v1.TemplateService/RunTemplate", EDGE_REQUEST_RUN_TEMPLATE_MAX},
    {"/hodei.v1.ProviderManagementService/RegisterProvider", EDGE_REQUEST_PROVIDER_MAX},
    {"/hodei.v1.WorkerAgentService/WorkerStream", HODEI_RPC_MESSAGE_MAX},
};

hodei_status edge_request_limits_apply(edge *e, hodei_err *err)
{
    size_t n = sizeof edge_request_limits / sizeof edge_request_limits[0];
    for (size_t i = 0; i < n; i++) {
        hodei_status st = hodei_rpc_server_request_max(e->server, edge_request_limits[i].path,
                                                       edge_request_limits[i].max, err);
        if (st != HODEI_OK)
            return st;
    }
    /* every other method: a small client call */
    return hodei_rpc_server_request_max(e->server, NULL, EDGE_REQUEST_SMALL_MAX, err);
}

#define EDGE_STREAM_BUDGET_WAIT_PENDING 2 /* edge_stream_try_send */

bool edge_stream_idle_end(edge *e, hodei_rpc_call *call)
{
    int64_t stalled = hodei_rpc_call_stalled_ms(call);
    if (stalled < e->cfg->streams_idle_ms)
        return false;
    hodei_rpc_call_abort(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                         "the client read nothing for %lld ms while messages waited for it"
                         " (at most %lld ms: streams.idle_timeout)",
                         (long long)stalled, (long long)e->cfg->streams_idle_ms);
    return true;
}

/* hodei_edge_reply_bytes: set where stream messages are sent or wait. */
static void edge_reply_gauge(edge *e)
{
    hodei_metric_set(e->m.reply_bytes, (int64_t)hodei_rpc_server_reply_bytes(e->server));
}

bool edge_stream_wait_taken(edge *e, hodei_rpc_call *call, int64_t max_ms)
{
    size_t pending = hodei_rpc_call_pending(call);
    if (pending == 0)
        return true;
    if (edge_stream_idle_end(e, call))
        return false;
    int64_t wait_ms = e->cfg->streams_idle_ms - hodei_rpc_call_stalled_ms(call);
    if (wait_ms > max_ms)
        wait_ms = max_ms;
    hodei_rpc_call_wait_pending(call, pending - 1, wait_ms > 1 ? wait_ms : 1);
    return !edge_stream_idle_end(e, call);
}

/* When the streams' share of replies.buffer_max is spent, by this stream or
 * others, a stream whose client reads holds the message being written and
 * perhaps the next: it waits for its client like any stream
 * (streams.idle_timeout) and then sends (a stream holding nothing always
 * gets its next message), so clients that read nothing cannot cut off one
 * that reads. A stream holding more is ended RESOURCE_EXHAUSTED naming
 * the budget. */
hodei_status edge_stream_try_send(edge *e, hodei_rpc_call *call, const ProtobufCMessage *msg)
{
    hodei_status st = hodei_rpc_call_send(call, msg);
    edge_reply_gauge(e);
    if (st == HODEI_OK)
        return HODEI_OK;
    if (st != HODEI_ERR_LIMIT)
        return HODEI_ERR_CANCELLED;
    if (hodei_rpc_call_pending(call) <= EDGE_STREAM_BUDGET_WAIT_PENDING)
        return HODEI_ERR_LIMIT; /* 1 or 2 held (or 0: taken since, the next passes) */
    hodei_rpc_call_abort(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                         "the edge holds too many replies not yet read by their clients"
                         " (at most %lld bytes: replies.buffer_max); retry later",
                         (long long)e->cfg->reply_buffer_max);
    return HODEI_ERR_CANCELLED;
}

/* ------------------------------------------------ streams per API key */

static int64_t stream_key_max(const edge *e, edge_stream_kind kind, const char **setting,
                              const char **what)
{
    if (kind == EDGE_STREAM_METRICS) {
        *setting = "metrics.streams_per_key";
        *what = "metrics";
        return e->cfg->metrics_streams_per_key;
    }
    *setting = "logs.follows_per_key";
    *what = "log";
    return e->cfg->logs_follows_per_key;
}

bool edge_stream_key_take(edge *e, hodei_rpc_call *call, edge_stream_kind kind,
                          char key_out[HODEI_ID_BUF])
{
    const hodei_identity *who = edge_caller(call);
    key_out[0] = '\0';
    if (!who || who->kind == HODEI_PRINCIPAL_NONE || !who->key_id[0])
        return true;
    const char *setting, *what;
    int64_t max = stream_key_max(e, kind, &setting, &what);
    edge_key_streams *ks = &e->key_streams;
    edge_key_streams_slot *slot = NULL, *free_slot = NULL;
    pthread_mutex_lock(&ks->mu);
    for (size_t i = 0; i < EDGE_STREAM_KEYS_MAX && !slot; i++) {
        if (strcmp(ks->slots[i].key_id, who->key_id) == 0)
            slot = &ks->slots[i];
        else if (!free_slot && !ks->slots[i].key_id[0])
            free_slot = &ks->slots[i];
    }
    if (!slot && free_slot) {
        slot = free_slot;
        memset(slot, 0, sizeof *slot);
        hodei_strlcpy(slot->key_id, who->key_id, sizeof slot->key_id);
    }
    bool ok = slot && slot->open[kind] < max;
    if (ok) {
        slot->open[kind]++;
        hodei_strlcpy(key_out, who->key_id, HODEI_ID_BUF);
    }
    pthread_mutex_unlock(&ks->mu);
    if (!slot)
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "too many API keys hold streams on this edge (at most %d)",
                            EDGE_STREAM_KEYS_MAX);
    else if (!ok)
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "too many %s streams open with this key (at most %lld: %s)", what,
                            (long long)max, setting);
    return ok;
}

void edge_stream_key_give(edge *e, edge_stream_kind kind, const char *key_id)
{
    if (!key_id || !key_id[0])
        return;
    edge_key_streams *ks = &e->key_streams;
    pthread_mutex_lock(&ks->mu);
    for (size_t i = 0; i < EDGE_STREAM_KEYS_MAX; i++) {
        edge_key_streams_slot *slot = &ks->slots[i];
        if (strcmp(slot->key_id, key_id) != 0)
            continue;
        HODEI_ASSERT(slot->open[kind] > 0);
        slot->open[kind]--;
        bool empty = true;
        for (int k = 0; k < EDGE_STREAM_KINDS; k++)
            empty = empty && slot->open[k] == 0;
        if (empty)
            slot->key_id[0] = '\0';
        break;
    }
    pthread_mutex_unlock(&ks->mu);
}

size_t edge_page_field_bytes(size_t len, bool always)
{
    if (len == 0 && !always)
        return 0;
    size_t varint = 1;
    for (size_t v = len; v >= 0x80; v >>= 7)
        varint++;
    return 1 + varint + len; /* key (field 1..15, one byte), length, bytes */
}
