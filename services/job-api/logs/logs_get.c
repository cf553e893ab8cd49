/* LogStreamService.GetLogs: the lines stored so far on hodei.logs.<job>,
 * read with an ephemeral ordered consumer up to the subject's last message
 * at the time of the call. `complete` when the end marker is among them
 * (or the job finished over LOGS_END_GRACE_MS ago and no marker came) and
 * nothing was left out. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "edge_auth.h"
#include "hodei/bus.h"
#include "hodei/log.h"
#include "hodei/util.h"
#include "logs_int.h"

#define LOGS_GET_LINES_MAX 100000             /* max_lines ceiling, and 0 = this */
#define LOGS_GET_BYTES_MAX (8 * 1024 * 1024)  /* a response stops growing here */
#define LOGS_GET_WAIT_MS 5000                 /* for the next stored message */
#define LOGS_GET_ARENA_MAX (64 * 1024 * 1024) /* unpacked batches held for one response */

typedef struct {
    hodei_arena arena;
    hodei_log_filter filt;
    logs_lines out;
    size_t room;
    bool ended;     /* the end marker was read */
    bool truncated; /* lines were left out (max_lines, size) */
} logs_get_state;

/* Takes one message; true when reading must stop. */
static bool get_take(logs_get_state *g, natsMsg *m)
{
    Hodei__V1__JobState end;
    hodei_arena_mark mark = hodei_arena_mark_get(&g->arena);
    size_t before = g->out.n;
    Hodei__V1__LogBatch *b = logs_unpack(m, &g->arena, &end);
    if (!b) {
        HLOG_WARN("%s: a stored message is not a LogBatch; skipped", natsMsg_GetSubject(m));
        hodei_arena_rollback(&g->arena, mark);
        return false;
    }
    if (end) {
        g->ended = true;
        return true;
    }
    bool cut = logs_append(b, &g->filt, &g->out, g->room) > 0;
    if (g->out.n == before)
        hodei_arena_rollback(&g->arena, mark); /* nothing of it is kept */
    if (cut || g->out.bytes >= LOGS_GET_BYTES_MAX || g->arena.bytes >= LOGS_GET_ARENA_MAX) {
        g->truncated = true;
        return true;
    }
    return false;
}

static hodei_status get_read(jsCtx *js, const char *subject, uint64_t last_seq, logs_get_state *g,
                             hodei_err *err)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_LOGS;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_SubscribeSync(&sub, js, subject, NULL, &so, &jerr);
    if (s != NATS_OK)
        return hodei_bus_err(s, "log store: subscribe", err);
    hodei_status st = HODEI_OK;
    for (bool stop = false; !stop;) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, LOGS_GET_WAIT_MS);
        if (s != NATS_OK) {
            st = hodei_bus_err(s, "log store: read", err);
            break;
        }
        jsMsgMetaData *meta = NULL;
        uint64_t seq = natsMsg_GetMetaData(&meta, m) == NATS_OK ? meta->Sequence.Stream : last_seq;
        jsMsgMetaData_Destroy(meta);
        stop = get_take(g, m) || seq >= last_seq;
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return st;
}

static hodei_status get_check(const Hodei__V1__GetLogsRequest *req, hodei_err *err)
{
    hodei_status st = logs_check_request(req->job_id, req->from_epoch, err);
    if (st != HODEI_OK)
        return st;
    if (req->max_lines < 0 || req->max_lines > LOGS_GET_LINES_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "max_lines: must be between 0 (all) and %d, got %d",
                             LOGS_GET_LINES_MAX, req->max_lines);
    return HODEI_OK;
}

static void logs_get(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__GetLogsRequest *req = (const Hodei__V1__GetLogsRequest *)msg;
    hodei_err err;
    char job_id[HODEI_ID_BUF], subject[LOGS_SUBJECT_MAX];
    Hodei__V1__JobState ended_state;
    uint64_t last_seq = 0;
    logs_get_state g = {0};
    hodei_arena_init(&g.arena, LOGS_ARENA_BLOCK, SIZE_MAX);
    hodei_log_filter_init(&g.filt, req->from_sequence, req->from_epoch);
    hodei_status st = get_check(req, &err);
    if (st != HODEI_OK)
        goto fail;
    for (size_t i = 0; i <= HODEI_ID_LEN; i++)
        job_id[i] = (char)tolower((unsigned char)req->job_id[i]);
    logs_subject(job_id, subject);
    if ((st = logs_job_check(e, edge_caller(call), job_id, &ended_state, &err)) != HODEI_OK)
        goto fail;
    g.room = req->max_lines > 0 ? (size_t)req->max_lines : LOGS_GET_LINES_MAX;
    g.out.lines = malloc(g.room * sizeof *g.out.lines);
    if (!g.out.lines) {
        st = hodei_err_set(&err, HODEI_ERR_NOMEM, "out of memory");
        goto fail;
    }
    bool archived = false;
    /* A finished job's archive whenever it has one, even within the end
     * grace: the stream may be gone already. */
    if ((st = logs_archive_load(e, job_id, &g.filt, &g.arena, &g.out, g.room, &archived, NULL,
                                &err)) != HODEI_OK)
        goto fail;
    if (archived) { /* the whole log of a finished job */
        g.ended = true;
        g.truncated = g.out.n >= g.room;
    } else if ((st = logs_last_seq(hodei_bus_js(e->readers_bus), subject, &last_seq, &err)) !=
               HODEI_OK)
        goto fail;
    if (!archived && last_seq > 0 &&
        (st = get_read(hodei_bus_js(e->readers_bus), subject, last_seq, &g, &err)) != HODEI_OK)
        goto fail;
    Hodei__V1__GetLogsResponse resp = HODEI__V1__GET_LOGS_RESPONSE__INIT;
    resp.lines = g.out.lines;
    resp.n_lines = g.out.n;
    resp.complete = !g.truncated && (g.ended || ended_state != 0);
    hodei_rpc_call_reply(call, &resp.base);
    goto out;
fail:
    hodei_rpc_call_fail_err(call, &err);
out:
    free(g.out.lines);
    hodei_arena_fini(&g.arena);
}

void logs_get_method(edge *e, hodei_rpc_method *out)
{
    *out = (hodei_rpc_method){"/hodei.v1.LogStreamService/GetLogs",
                              HODEI_RPC_UNARY,
                              &hodei__v1__get_logs_request__descriptor,
                              logs_get,
                              NULL,
                              NULL,
                              e};
}
