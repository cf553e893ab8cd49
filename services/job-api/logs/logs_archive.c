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
#include "hodei/util.h"
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
    hodei_metric *archived, *raw_bytes, *stored_bytes, *deleted, *silent_by_marker;
    int64_t next_drain_ms;
};

/* ------------------------------------------------------------ read */

typedef struct {
    hodei_arena arena;
    hodei_log_filter filt;
    logs_lines all;
    bool cut;
    bool ended; /* the end marker was read */
    bool alone; /* ... and it was stored on an empty subject (one request) */
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
 * here in full instead of through a consumer made and removed for it; then
 * *done. One request when the marker was stored on the condition that the
 * subject was empty (HODEI_HDR_EXPECT_LAST_SUBJ_SEQ "0", log_pub_end), two
 * otherwise (the subject's count). */
static hodei_status arch_probe_subject(jsCtx *js, const char *subject, arch_read *r,
                                       uint64_t *last_seq, bool *done, hodei_err *err)
{
    natsMsg *last = NULL;
    jsErrCode jerr = 0;
    const char *end = NULL, *expect = NULL;
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
    bool alone = is_end &&
                 natsMsgHeader_Get(last, HODEI_HDR_EXPECT_LAST_SUBJ_SEQ, &expect) == NATS_OK &&
                 strcmp(expect, "0") == 0;
    natsMsg_Destroy(last);
    if (alone) {
        r->ended = true;
        r->alone = true;
        *done = true;
    }
    if (!is_end || alone)
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
    if (st == HODEI_OK && r.alone)
        hodei_metric_add(la->silent_by_marker, 1);
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
    la->silent_by_marker =
        hodei_daemon_counter(e->d, "hodei_logs_archive_silent_by_marker_total",
                             "Finished jobs found to have printed nothing from their end marker "
                             "alone (stored on an empty subject): one request, no count.");
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

/* A finished job's archive read back in bounded pieces: the rows' sizes
 * first (one query), then each row's compressed bytes in slices of
 * ARCH_SLICE_BYTES (a query each; an S3 object is fetched whole, its
 * compressed size), inflated into a window that holds at least one whole
 * record (ARCH_WINDOW_BYTES, grown to the largest line, at most
 * HODEI_RPC_MESSAGE_MAX), and unpacked one LogLine at a time: the
 * GetLogsResponse is never held whole. */
#define ARCH_SLICE_BYTES (256 * 1024)
#define ARCH_WINDOW_BYTES (1024 * 1024)

enum { AR_EPOCH = 0, AR_RAW, AR_STATE, AR_LOCATION, AR_LEN };

struct logs_archive_reader {
    edge *e;
    char job_id[HODEI_ID_BUF];
    PGresult *rows;
    int row, n_rows;
    bool row_open;   /* inflating rows[row] */
    bool row_in_end; /* inflate saw the end of rows[row]'s stream */
    z_stream zs;
    uint8_t *z;             /* compressed bytes at hand */
    size_t z_len;           /* bytes in z */
    int64_t z_off, z_total; /* next slice's offset in the row's data; its length */
    uint8_t *win;
    size_t win_cap, win_start, win_end; /* inflated bytes [win_start, win_end) not parsed */
};

static hodei_status arch_slice(logs_archive_reader *r, hodei_err *err)
{
    const PGresult *rows = r->rows;
    const char *location = hodei_db_get_str(rows, r->row, AR_LOCATION);
    free(r->z);
    r->z = NULL;
    r->z_len = 0;
    if (location[0]) { /* S3: the whole object, once */
        hodei_status st =
            log_store_get(r->e->log_store, location, ARCH_ARENA_MAX, &r->z, &r->z_len, err);
        r->z_off = r->z_total;
        return st == HODEI_ERR_NOT_FOUND ? hodei_err_set(err, HODEI_ERR_INTERNAL, "%s", err->msg)
                                         : st;
    }
    char off[32], len[32];
    snprintf(off, sizeof off, "%lld", (long long)r->z_off + 1);
    snprintf(len, sizeof len, "%d", ARCH_SLICE_BYTES);
    const char *params[4] = {r->job_id, hodei_db_get_str(rows, r->row, AR_EPOCH), off, len};
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = edge_db_acquire(r->e, &conn, err);
    if (st != HODEI_OK)
        return st;
    st = hodei_db_exec(conn,
                       "SELECT encode(substring(data from $3::int for $4::int), 'hex')"
                       " FROM job_log_archives WHERE job_id = $1::uuid AND epoch = $2::bigint",
                       4, params, &res, err);
    edge_db_release(r->e, conn, st);
    if (st == HODEI_OK && PQntuples(res) == 1) {
        const char *hex = hodei_db_get_str(res, 0, 0);
        size_t hex_len = strlen(hex);
        long n = (r->z = malloc(hex_len / 2 + 1))
                     ? hodei_hex_decode(hex, hex_len, r->z, hex_len / 2 + 1)
                     : -1;
        if (n <= 0)
            st = hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive does not read back");
        else {
            r->z_len = (size_t)n;
            r->z_off += n;
        }
    } else if (st == HODEI_OK) {
        st = hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive row went away while read");
    }
    PQclear(res);
    return st;
}

/* Inflates more of the current row into the window; fetches the next
 * slice when inflate needs input. */
static hodei_status arch_inflate_more(logs_archive_reader *r, hodei_err *err)
{
    if (r->win_start > 0) { /* parsed bytes leave the window */
        memmove(r->win, r->win + r->win_start, r->win_end - r->win_start);
        r->win_end -= r->win_start;
        r->win_start = 0;
    }
    if (r->win_end == r->win_cap) { /* one record larger than the window: grow it */
        size_t cap = r->win_cap * 2;
        uint8_t *w = cap <= HODEI_RPC_MESSAGE_MAX ? realloc(r->win, cap) : NULL;
        if (!w)
            return hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive: a line past %d bytes",
                                 HODEI_RPC_MESSAGE_MAX);
        r->win = w;
        r->win_cap = cap;
    }
    if (r->zs.avail_in == 0 && r->z_off < r->z_total) {
        hodei_status st = arch_slice(r, err);
        if (st != HODEI_OK)
            return st;
        r->zs.next_in = r->z;
        r->zs.avail_in = (uInt)r->z_len;
    }
    size_t before = r->win_end;
    r->zs.next_out = r->win + r->win_end;
    r->zs.avail_out = (uInt)(r->win_cap - r->win_end);
    int zr = inflate(&r->zs, Z_NO_FLUSH);
    r->win_end = r->win_cap - r->zs.avail_out;
    if (zr == Z_STREAM_END)
        r->row_in_end = true;
    else if (zr != Z_OK && zr != Z_BUF_ERROR)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive does not inflate (%d)", zr);
    else if (r->win_end == before && r->zs.avail_in == 0 && r->z_off >= r->z_total)
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive is cut short");
    return HODEI_OK;
}

/* A varint at p[0..n): its value and length, or 0 when incomplete. */
static size_t arch_varint(const uint8_t *p, size_t n, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < n && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80))
            return i + 1;
    }
    return 0;
}

/* The next whole record of the window: *field, and its bytes (wire type
 * 2) in [*data, *data + *len); false when the window holds none whole. */
static bool arch_record(logs_archive_reader *r, uint64_t *field, const uint8_t **data, size_t *len,
                        hodei_err *err, hodei_status *st)
{
    const uint8_t *p = r->win + r->win_start;
    size_t n = r->win_end - r->win_start, used, used2;
    uint64_t tag, v;
    *st = HODEI_OK;
    if (!(used = arch_varint(p, n, &tag)))
        return false;
    *field = tag >> 3;
    switch (tag & 7) {
    case 0:
        if (!(used2 = arch_varint(p + used, n - used, &v)))
            return false;
        *data = NULL;
        *len = 0;
        r->win_start += used + used2;
        return true;
    case 2:
        if (!(used2 = arch_varint(p + used, n - used, &v)))
            return false;
        if (v > HODEI_RPC_MESSAGE_MAX) {
            *st = hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive: a record of %llu bytes",
                                (unsigned long long)v);
            return false;
        }
        if (n - used - used2 < v)
            return false;
        *data = p + used + used2;
        *len = (size_t)v;
        r->win_start += used + used2 + (size_t)v;
        return true;
    default:
        *st = hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive: wire type %u",
                            (unsigned)(tag & 7));
        return false;
    }
}

static void arch_row_close(logs_archive_reader *r)
{
    if (r->row_open)
        inflateEnd(&r->zs);
    r->row_open = false;
    free(r->z);
    r->z = NULL;
    r->z_len = 0;
    r->win_start = r->win_end = 0;
}

static hodei_status arch_row_open(logs_archive_reader *r, hodei_err *err)
{
    memset(&r->zs, 0, sizeof r->zs);
    if (inflateInit(&r->zs) != Z_OK)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "log archive: inflate: out of memory");
    r->row_open = true;
    r->row_in_end = false;
    r->z_off = 0;
    r->z_total = hodei_db_get_i64(r->rows, r->row, AR_LEN);
    if (hodei_db_get_str(r->rows, r->row, AR_LOCATION)[0])
        r->z_total = 1; /* one fetch of the whole object */
    return HODEI_OK;
}

hodei_status logs_archive_open(edge *e, const char *job_id, logs_archive_reader **out,
                               Hodei__V1__JobState *final_state, hodei_err *err)
{
    *out = NULL;
    logs_archive_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->win = malloc(ARCH_WINDOW_BYTES))) {
        free(r);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "log archive: out of memory");
    }
    r->e = e;
    r->win_cap = ARCH_WINDOW_BYTES;
    hodei_strlcpy(r->job_id, job_id, sizeof r->job_id);
    PGconn *conn = NULL;
    const char *params[1] = {job_id};
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st == HODEI_OK) {
        st = hodei_db_exec(conn,
                           "SELECT a.epoch, a.raw_bytes, j.state, a.location, octet_length(a.data)"
                           " FROM job_log_archives a JOIN jobs j ON j.id = a.job_id"
                           " WHERE a.job_id = $1::uuid ORDER BY a.epoch",
                           1, params, &r->rows, err);
        edge_db_release(e, conn, st);
    }
    if (st != HODEI_OK || PQntuples(r->rows) == 0) {
        logs_archive_close(r);
        return st;
    }
    r->n_rows = PQntuples(r->rows);
    if (final_state && !hodei_job_state_parse(hodei_db_get_str(r->rows, 0, AR_STATE), final_state))
        *final_state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
    *out = r;
    return HODEI_OK;
}

hodei_status logs_archive_next(logs_archive_reader *r, hodei_log_filter *f, hodei_arena *arena,
                               logs_lines *out, size_t room, bool *eof, hodei_err *err)
{
    size_t bytes0 = out->bytes;
    hodei_status st = HODEI_OK;
    ProtobufCAllocator pa = hodei_pb_arena(arena);
    *eof = false;
    while (out->n < room && out->bytes - bytes0 < LOGS_CHUNK_BYTES_MAX) {
        if (r->row >= r->n_rows) {
            *eof = true;
            return HODEI_OK;
        }
        if (!r->row_open && (st = arch_row_open(r, err)) != HODEI_OK)
            return st;
        uint64_t field;
        const uint8_t *data;
        size_t len;
        if (!arch_record(r, &field, &data, &len, err, &st)) {
            if (st != HODEI_OK)
                return st;
            if (!r->row_in_end) {
                if ((st = arch_inflate_more(r, err)) != HODEI_OK)
                    return st;
                continue;
            }
            if (r->win_end != r->win_start)
                return hodei_err_set(err, HODEI_ERR_INTERNAL, "log archive ends inside a line");
            arch_row_close(r);
            r->row++;
            continue;
        }
        if (field != 1 || !data)
            continue; /* `complete`, or what a later release adds */
        int64_t epoch = hodei_db_get_i64(r->rows, r->row, AR_EPOCH);
        Hodei__V1__LogLine *l = hodei__v1__log_line__unpack(&pa, len, data);
        if (!l)
            return hodei_err_set(err, HODEI_ERR_INTERNAL,
                                 "log archive of epoch %lld does not unpack", (long long)epoch);
        if (!hodei_log_filter_pass(f, epoch, l->sequence))
            continue;
        l->epoch = epoch;
        out->lines[out->n++] = l;
        out->bytes += l->data.len + LOGS_LINE_OVERHEAD;
    }
    return HODEI_OK;
}

void logs_archive_close(logs_archive_reader *r)
{
    if (!r)
        return;
    arch_row_close(r);
    PQclear(r->rows);
    free(r->win);
    free(r);
}

hodei_status logs_archive_load(edge *e, const char *job_id, hodei_log_filter *f, hodei_arena *arena,
                               logs_lines *out, size_t room, bool *found,
                               Hodei__V1__JobState *final_state, hodei_err *err)
{
    logs_archive_reader *r = NULL;
    bool eof = false;
    hodei_status st = logs_archive_open(e, job_id, &r, final_state, err);
    *found = r != NULL;
    while (st == HODEI_OK && r && !eof && out->n < room)
        st = logs_archive_next(r, f, arena, out, room, &eof, err);
    logs_archive_close(r);
    return st;
}
