/* Logs that outlive the stream. Every edge replica pulls JobFinished events
 * from one shared durable consumer (HODEI_CONSUMER_LOG_ARCHIVE): for each
 * finished job it reads hodei.logs.<job> whole, keeps each attempt's lines
 * (deduplicated as readers do), packs them as a GetLogsResponse,
 * compresses that with zlib and stores one row per attempt in
 * job_log_archives (with logs.archive_store: s3, the compressed bytes go to
 * an object first and the row names it, logs_store.c); the event is acknowledged after the commit,
 * so a crash only means the job is archived again (ON CONFLICT DO NOTHING). A job that finished
 * counts every attempt; lines of an earlier attempt that the stream dropped before the job finished
 * are not in the stream to keep.
 *
 * Readers (GetLogs, SubscribeLogs) use logs_archive_load: once a finished
 * job has archive rows they serve those, with the same (epoch, sequence)
 * numbers, whatever the stream still holds. The same thread removes the
 * objects of rows that retention deleted (log_archive_deletions). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "hodei/buf.h"
#include "hodei/bus.h"
#include "hodei/db.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/time.h"
#include "hodei/v1/events.pb-c.h"
#include "logs_int.h"

#define ARCH_FETCH_WAIT_MS 500
#define ARCH_ACK_WAIT_MS 60000
#define ARCH_NAK_DELAY_MS 2000
#define ARCH_READ_WAIT_MS 5000
#define ARCH_LINES_MAX (4u << 20)            /* lines of one job kept for its archive */
#define ARCH_ARENA_MAX (1024u * 1024 * 1024) /* unpacked bytes of one job */
#define ARCH_BACKOFF_MS 2000
#define ARCH_DRAIN_INTERVAL_MS 2000 /* objects of deleted archive rows: looked for this often */
#define ARCH_DRAIN_BATCH 100
#define ARCH_END_WAIT_MS 10000 /* a job with no end marker is archived this long after its end */

struct log_archive {
    edge *e;
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    bool quit;
    natsSubscription *sub;
    hodei_metric *archived, *raw_bytes, *stored_bytes, *deleted;
    int64_t next_drain_ms;
};

/* ------------------------------------------------------------ read */

typedef struct {
    hodei_arena arena;
    hodei_log_filter filt;
    logs_lines all;
    bool cut;
    bool ended; /* the end marker was read */
} arch_read;

/* How many messages the subject holds (one stream info request). */
static hodei_status arch_subject_count(jsCtx *js, const char *subject, uint64_t *n, hodei_err *err)
{
    jsOptions o;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    jsOptions_Init(&o);
    o.Stream.Info.SubjectsFilter = subject;
    natsStatus s = js_GetStreamInfo(&si, js, HODEI_STREAM_LOGS, &o, &jerr);
    if (s != NATS_OK)
        return hodei_bus_err(s, "log store: stream info", err);
    *n = 0;
    for (int i = 0; si->State.Subjects && i < si->State.Subjects->Count; i++)
        if (strcmp(si->State.Subjects->List[i].Subject, subject) == 0)
            *n = si->State.Subjects->List[i].Msgs;
    jsStreamInfo_Destroy(si);
    return HODEI_OK;
}

/* The subject's last sequence (0: none). A subject whose only message is
 * its end marker (a job that printed nothing: most short jobs) is read
 * here in full, with two requests, instead of through a consumer made and
 * removed for it; then *done. */
static hodei_status arch_probe_subject(jsCtx *js, const char *subject, arch_read *r,
                                       uint64_t *last_seq, bool *done, hodei_err *err)
{
    natsMsg *last = NULL;
    jsErrCode jerr = 0;
    const char *end = NULL;
    *last_seq = 0;
    *done = false;
    natsStatus s = js_GetLastMsg(&last, js, HODEI_STREAM_LOGS, subject, NULL, &jerr);
    if (s == NATS_NOT_FOUND) {
        *done = true;
        return HODEI_OK;
    }
    if (s != NATS_OK)
        return hodei_bus_err(s, "log store", err);
    *last_seq = natsMsg_GetSequence(last);
    bool is_end = natsMsgHeader_Get(last, HODEI_HDR_LOG_END, &end) == NATS_OK;
    natsMsg_Destroy(last);
    if (!is_end)
        return HODEI_OK;
    uint64_t n = 0;
    hodei_status st = arch_subject_count(js, subject, &n, err);
    if (st == HODEI_OK && n == 1) {
        r->ended = true;
        *done = true;
    }
    return st;
}

/* Every line of the subject, in order, repeats dropped. */
static hodei_status arch_read_subject(jsCtx *js, const char *subject, arch_read *r, hodei_err *err)
{
    uint64_t last_seq = 0;
    bool done = false;
    hodei_status st = arch_probe_subject(js, subject, r, &last_seq, &done, err);
    if (st != HODEI_OK || done)
        return st;
    /* 32 MiB of pointers: only for a subject with lines to read */
    r->all.lines = malloc(ARCH_LINES_MAX * sizeof *r->all.lines);
    if (!r->all.lines)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
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
    for (bool stop = false; !stop && st == HODEI_OK;) {
        natsMsg *m = NULL;
        s = natsSubscription_NextMsg(&m, sub, ARCH_READ_WAIT_MS);
        if (s != NATS_OK) {
            st = hodei_bus_err(s, "log store: read", err);
            break;
        }
        jsMsgMetaData *meta = NULL;
        uint64_t seq = natsMsg_GetMetaData(&meta, m) == NATS_OK ? meta->Sequence.Stream : last_seq;
        jsMsgMetaData_Destroy(meta);
        Hodei__V1__JobState end;
        Hodei__V1__LogBatch *b = logs_unpack(m, &r->arena, &end);
        if (end)
            r->ended = true;
        if (b && !end && logs_append(b, &r->filt, &r->all, ARCH_LINES_MAX) > 0)
            r->cut = true;
        if (r->arena.bytes >= ARCH_ARENA_MAX)
            r->cut = true;
        stop = seq >= last_seq || r->cut;
        natsMsg_Destroy(m);
    }
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    return st;
}

/* ------------------------------------------------------------ write */

/* An object put for a row that was not inserted: deleted unless a row
 * (an earlier archiving of the same attempt) names it. */
static void arch_unreferenced(log_archive *la, PGconn *conn, const char *job_id,
                              const char *epoch_s, const char *location)
{
    PGresult *res = NULL;
    hodei_err err;
    const char *params[3] = {job_id, epoch_s, location};
    if (hodei_db_exec(conn,
                      "SELECT count(*) FROM job_log_archives WHERE job_id = $1::uuid"
                      " AND epoch = $2::bigint AND location = $3",
                      3, params, &res, &err) == HODEI_OK &&
        hodei_db_get_i64(res, 0, 0) == 0 &&
        log_store_delete(la->e->log_store, location, &err) != HODEI_OK)
        HLOG_WARN("log archive %s: no row names it and it was not deleted: %s", location, err.msg);
    PQclear(res);
}

/* lines[0..n) of one epoch: packed, compressed, stored (in the row, or as
 * an object the row names). */
static hodei_status arch_store(log_archive *la, PGconn *conn, const char *job_id, int64_t epoch,
                               Hodei__V1__LogLine **lines, size_t n, hodei_err *err)
{
    Hodei__V1__GetLogsResponse resp = HODEI__V1__GET_LOGS_RESPONSE__INIT;
    resp.lines = lines;
    resp.n_lines = n;
    resp.complete = true;
    size_t raw_len = hodei__v1__get_logs_response__get_packed_size(&resp);
    uLongf z_len = compressBound((uLong)raw_len);
    uint8_t *raw = malloc(raw_len ? raw_len : 1), *z = malloc(z_len);
    hodei_status st = HODEI_OK;
    if (!raw || !z) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory archiving job %s", job_id);
        goto out;
    }
    hodei__v1__get_logs_response__pack(&resp, raw);
    if (compress2(z, &z_len, raw, (uLong)raw_len, Z_DEFAULT_COMPRESSION) != Z_OK) {
        st = hodei_err_set(err, HODEI_ERR_INTERNAL, "zlib failed archiving job %s", job_id);
        goto out;
    }
    char epoch_s[24], lines_s[24], raw_s[24], location[LOGS_LOCATION_MAX] = "";
    snprintf(epoch_s, sizeof epoch_s, "%lld", (long long)epoch);
    snprintf(lines_s, sizeof lines_s, "%zu", n);
    snprintf(raw_s, sizeof raw_s, "%zu", raw_len);
    bool s3 = log_store_is_s3(la->e->log_store);
    if (s3 &&
        (st = log_store_put(la->e->log_store, job_id, epoch, z, z_len, location, err)) != HODEI_OK)
        goto out;
    /* in S3: the row keeps sizes and location, data stays empty */
    const char *params[6] = {job_id, epoch_s,         lines_s,
                             raw_s,  (const char *)z, s3 ? location : NULL};
    int lens[6] = {0, 0, 0, 0, s3 ? 0 : (int)z_len, 0};
    int fmts[6] = {0, 0, 0, 0, 1, 0};
    PGresult *res = NULL;
    st = hodei_db_exec_bin(
        conn,
        "INSERT INTO job_log_archives (job_id, epoch, lines, raw_bytes, data,"
        " location)"
        " SELECT $1::uuid, $2::bigint, $3::bigint, $4::bigint, $5::bytea, $6::text"
        " WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $1::uuid)"
        " ON CONFLICT DO NOTHING",
        6, params, lens, fmts, &res, err);
    /* an object no row names (the job went meanwhile) is removed again; a
     * row already there (archived twice) names the same key */
    if (st == HODEI_OK && s3 && strtol(PQcmdTuples(res), NULL, 10) == 0)
        arch_unreferenced(la, conn, job_id, epoch_s, location);
    PQclear(res);
    if (st == HODEI_OK) {
        hodei_metric_add(la->raw_bytes, (int64_t)raw_len);
        hodei_metric_add(la->stored_bytes, (int64_t)z_len);
    }
out:
    free(raw);
    free(z);
    return st;
}

/* true while a job without an end marker on its subject finished so lately
 * that the edge may still be publishing its last lines and the marker. */
static bool arch_too_early(log_archive *la, const char *job_id)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    char wait[24];
    snprintf(wait, sizeof wait, "%d", ARCH_END_WAIT_MS);
    const char *params[2] = {job_id, wait};
    if (edge_db_acquire(la->e, &conn, &err) != HODEI_OK)
        return true;
    hodei_status st = hodei_db_exec(conn,
                                    "SELECT count(*) FROM jobs WHERE id = $1::uuid AND finished_at"
                                    " > now() - $2::int * interval '1 millisecond'",
                                    2, params, &res, &err);
    edge_db_release(la->e, conn, st);
    bool early = st != HODEI_OK || hodei_db_get_i64(res, 0, 0) > 0;
    PQclear(res);
    return early;
}

/* Reads the job's subject and stores one row per attempt. */
static hodei_status arch_job(log_archive *la, const char *job_id, hodei_err *err)
{
    char subject[LOGS_SUBJECT_MAX];
    arch_read r = {0};
    PGconn *conn = NULL;
    logs_subject(job_id, subject);
    hodei_arena_init(&r.arena, LOGS_ARENA_BLOCK, SIZE_MAX);
    hodei_log_filter_init(&r.filt, 0, 0);
    hodei_status st = arch_read_subject(hodei_bus_js(la->e->bus), subject, &r, err);
    if (st == HODEI_OK && !r.ended && arch_too_early(la, job_id))
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "its end marker is not stored yet");
    if (st == HODEI_OK && r.cut)
        HLOG_WARN("job %s: log larger than the archive keeps (%u lines); its end is not archived",
                  job_id, ARCH_LINES_MAX);
    if (st == HODEI_OK && r.all.n > 0 && (st = edge_db_acquire(la->e, &conn, err)) == HODEI_OK) {
        size_t from = 0;
        while (st == HODEI_OK && from < r.all.n) {
            size_t to = from;
            while (to < r.all.n && r.all.lines[to]->epoch == r.all.lines[from]->epoch)
                to++;
            st = arch_store(la, conn, job_id, r.all.lines[from]->epoch, r.all.lines + from,
                            to - from, err);
            from = to;
        }
        edge_db_release(la->e, conn, st);
    }
    free(r.all.lines);
    hodei_arena_fini(&r.arena);
    return st;
}

/* ------------------------------------------------------------ consume */

static hodei_status arch_subscribe(log_archive *la, hodei_err *err)
{
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = HODEI_STREAM_EVENTS;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverNew;
    so.Config.AckWait = (int64_t)ARCH_ACK_WAIT_MS * 1000000;
    natsStatus ns = js_PullSubscribe(&la->sub, hodei_bus_js(la->e->bus), HODEI_SUBJ_JOB_FINISHED,
                                     HODEI_CONSUMER_LOG_ARCHIVE, NULL, &so, &jerr);
    if (ns != NATS_OK) {
        la->sub = NULL;
        return hodei_bus_err(ns, "pull subscribe " HODEI_CONSUMER_LOG_ARCHIVE, err);
    }
    return HODEI_OK;
}

static bool arch_quit(log_archive *la)
{
    pthread_mutex_lock(&la->mu);
    bool q = la->quit;
    pthread_mutex_unlock(&la->mu);
    return q;
}

static void arch_one(log_archive *la, natsMsg *m)
{
    hodei_err err;
    Hodei__V1__Event *ev = hodei__v1__event__unpack(NULL, (size_t)natsMsg_GetDataLength(m),
                                                    (const uint8_t *)natsMsg_GetData(m));
    if (!ev || !ev->aggregate_id || !hodei_id_valid(ev->aggregate_id)) {
        HLOG_WARN("log archive: a JobFinished event without a job id; dropped");
        natsMsg_Term(m, NULL);
    } else if (arch_job(la, ev->aggregate_id, &err) == HODEI_OK) {
        hodei_metric_add(la->archived, 1);
        natsMsg_Ack(m, NULL);
    } else {
        HLOG_WARN("log archive: job %s not archived yet: %s", ev->aggregate_id, err.msg);
        natsMsg_NakWithDelay(m, ARCH_NAK_DELAY_MS, NULL);
    }
    if (ev)
        hodei__v1__event__free_unpacked(ev, NULL);
}

/* Objects of archive rows deleted by retention, removed from the store. */
static void arch_drain(log_archive *la)
{
    int64_t now = hodei_mono_ms();
    if (!log_store_is_s3(la->e->log_store) || now < la->next_drain_ms)
        return;
    hodei_err err;
    int n = 0;
    if (log_store_drain(la->e->log_store, &n, &err) != HODEI_OK)
        HLOG_WARN("log archive: deleting archives of deleted jobs: %s", err.msg);
    la->next_drain_ms = n >= ARCH_DRAIN_BATCH ? now : now + ARCH_DRAIN_INTERVAL_MS;
    if (n > 0)
        hodei_metric_add(la->deleted, n);
}

static void *arch_main(void *arg)
{
    log_archive *la = arg;
    hodei_err err;
    while (!arch_quit(la)) {
        arch_drain(la);
        if (!la->sub && arch_subscribe(la, &err) != HODEI_OK) {
            HLOG_WARN("log archive: %s; trying again", err.msg);
            hodei_sleep_ms(ARCH_BACKOFF_MS);
            continue;
        }
        natsMsgList list = {0};
        natsStatus ns = natsSubscription_Fetch(&list, la->sub, 16, ARCH_FETCH_WAIT_MS, NULL);
        if (ns == NATS_TIMEOUT)
            continue;
        if (ns != NATS_OK) {
            natsSubscription_Destroy(la->sub);
            la->sub = NULL;
            hodei_sleep_ms(ARCH_BACKOFF_MS);
            continue;
        }
        for (int i = 0; i < list.Count; i++)
            arch_one(la, list.Msgs[i]);
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

hodei_status log_archive_create(edge *e, log_archive **out, hodei_err *err)
{
    log_archive *la = calloc(1, sizeof *la);
    if (!la)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    la->e = e;
    pthread_mutex_init(&la->mu, NULL);
    la->archived = hodei_daemon_counter(e->d, "hodei_logs_archived_total",
                                        "Finished jobs whose logs were archived.");
    la->raw_bytes = hodei_daemon_counter(e->d, "hodei_logs_archive_raw_bytes_total",
                                         "Bytes of log lines archived, before compression.");
    la->stored_bytes = hodei_daemon_counter(e->d, "hodei_logs_archive_stored_bytes_total",
                                            "Bytes of compressed log archives written.");
    la->deleted = hodei_daemon_counter(e->d, "hodei_logs_archive_objects_deleted_total",
                                       "Log archive objects removed from S3 after their job was "
                                       "deleted.");
    if (pthread_create(&la->thread, NULL, arch_main, la) != 0) {
        free(la);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive: cannot start its thread");
    }
    la->started = true;
    *out = la;
    return HODEI_OK;
}

void log_archive_destroy(log_archive *la)
{
    if (!la)
        return;
    pthread_mutex_lock(&la->mu);
    la->quit = true;
    pthread_mutex_unlock(&la->mu);
    if (la->started)
        pthread_join(la->thread, NULL);
    if (la->sub)
        natsSubscription_Destroy(la->sub); /* destroyed, not unsubscribed: it is shared */
    pthread_mutex_destroy(&la->mu);
    free(la);
}

/* ------------------------------------------------------------ load */

/* One archive's compressed bytes: decompressed, unpacked into the arena,
 * its lines through the filter into out. */
static hodei_status logs_archive_unpack(int64_t epoch, int64_t raw_len, const uint8_t *z,
                                        size_t z_len, hodei_log_filter *f, hodei_arena *arena,
                                        logs_lines *out, size_t room, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    uint8_t *raw = NULL;
    uLongf got = (uLongf)raw_len;
    if (raw_len < 0 || raw_len > ARCH_ARENA_MAX ||
        !(raw = malloc(raw_len > 0 ? (size_t)raw_len : 1)) ||
        uncompress(raw, &got, z, (uLong)z_len) != Z_OK || got != (uLongf)raw_len) {
        st = hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive of epoch %lld does not read back",
                           (long long)epoch);
        goto out;
    }
    ProtobufCAllocator pa = hodei_pb_arena(arena);
    Hodei__V1__GetLogsResponse *r = hodei__v1__get_logs_response__unpack(&pa, (size_t)raw_len, raw);
    if (!r) {
        st = hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive of epoch %lld does not unpack",
                           (long long)epoch);
        goto out;
    }
    for (size_t i = 0; i < r->n_lines && out->n < room; i++) {
        Hodei__V1__LogLine *l = r->lines[i];
        if (!hodei_log_filter_pass(f, epoch, l->sequence))
            continue;
        l->epoch = epoch;
        out->lines[out->n++] = l;
        out->bytes += l->data.len + LOGS_LINE_OVERHEAD;
    }
out:
    free(raw);
    return st;
}

/* One archive row (epoch, raw_bytes, data as hex, state, location): its
 * bytes from the row or from the store, then unpacked. */
static hodei_status logs_archive_unpack_row(edge *e, const PGresult *res, int row,
                                            hodei_log_filter *f, hodei_arena *arena,
                                            logs_lines *out, size_t room, hodei_err *err)
{
    int64_t epoch = hodei_db_get_i64(res, row, 0);
    int64_t raw_len = hodei_db_get_i64(res, row, 1);
    const char *location = hodei_db_get_str(res, row, 4);
    uint8_t *z = NULL;
    size_t z_len = 0;
    hodei_status st = HODEI_OK;
    if (location[0]) {
        st = log_store_get(e->log_store, location, ARCH_ARENA_MAX, &z, &z_len, err);
        if (st != HODEI_OK)
            return hodei_err_set(err, st == HODEI_ERR_NOT_FOUND ? HODEI_ERR_INTERNAL : st,
                                 "log archive of epoch %lld: %s", (long long)epoch, err->msg);
    } else {
        const char *hex = hodei_db_get_str(res, row, 2);
        size_t hex_len = strlen(hex);
        long n =
            (z = malloc(hex_len / 2 + 1)) ? hodei_hex_decode(hex, hex_len, z, hex_len / 2 + 1) : -1;
        if (n < 0) {
            free(z);
            return hodei_err_set(err, HODEI_ERR_INTERNAL,
                                 "log archive of epoch %lld does not read back", (long long)epoch);
        }
        z_len = (size_t)n;
    }
    st = logs_archive_unpack(epoch, raw_len, z, z_len, f, arena, out, room, err);
    free(z);
    return st;
}

hodei_status logs_archive_load(edge *e, const char *job_id, hodei_log_filter *f, hodei_arena *arena,
                               logs_lines *out, size_t room, bool *found,
                               Hodei__V1__JobState *final_state, hodei_err *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    const char *params[1] = {job_id};
    *found = false;
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    st = hodei_db_exec(conn,
                       "SELECT a.epoch, a.raw_bytes, encode(a.data, 'hex'), j.state, a.location"
                       " FROM job_log_archives a JOIN jobs j ON j.id = a.job_id"
                       " WHERE a.job_id = $1::uuid ORDER BY a.epoch",
                       1, params, &res, err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        return st;
    for (int i = 0; i < PQntuples(res) && st == HODEI_OK; i++) {
        *found = true;
        if (final_state && !hodei_job_state_parse(hodei_db_get_str(res, i, 3), final_state))
            *final_state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
        st = logs_archive_unpack_row(e, res, i, f, arena, out, room, err);
    }
    PQclear(res);
    return st;
}
