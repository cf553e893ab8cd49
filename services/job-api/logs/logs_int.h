/* Private to LogStreamService: reading hodei.logs.<job> back. Shared by
 * GetLogs (logs_get.c) and SubscribeLogs (logs_follow.c).
 *
 * A job's subject holds the LogBatches of every attempt, each attempt's
 * lines numbered from 1, then (once the job ended) one end marker. Readers
 * pass each line through libs/domain's hodei_log_filter (hodei/log_filter.h
 * says which lines it delivers). */
#ifndef HODEI_JOB_API_LOGS_INT_H
#define HODEI_JOB_API_LOGS_INT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stdint.h>

#include "edge.h"
#include "hodei/arena.h"
#include "hodei/auth.h"
#include "hodei/bus.h"
#include "hodei/id.h"
#include "hodei/log_filter.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/worker.pb-c.h"

#define LOGS_CHUNK_BYTES_MAX (1024 * 1024) /* a chunk is sent once it holds this much */
#define LOGS_CHUNK_LINES_MAX 16384         /* > the 10,000 lines of one LogBatch */
#define LOGS_END_GRACE_MS 3000             /* a finished job with no end marker: wait */
#define LOGS_SUBJECT_MAX 128
#define LOGS_LINE_OVERHEAD 48 /* bytes a line costs on the wire beyond its data */

/* Unpacked batches live in a libs/core arena handed to protobuf-c
 * (hodei_pb_arena): a batch costs a few block allocations, not one per
 * line; reset or rollback frees them at once. */
#define LOGS_ARENA_BLOCK (256 * 1024)

/* Lines collected for one response or chunk (the array has
 * LOGS_CHUNK_LINES_MAX slots; lines point into an arena). */
typedef struct {
    Hodei__V1__LogLine **lines;
    size_t n;
    size_t bytes;
} logs_lines;

/* Unpacks one stored message into the arena (NULL when it is not a
 * LogBatch). *end_state gets the Hodei-Log-End header's state, or 0. */
Hodei__V1__LogBatch *logs_unpack(natsMsg *msg, hodei_arena *a, Hodei__V1__JobState *end_state);
/* Appends the lines of b that pass f, while out has fewer than `room`;
 * returns how many lines of b were left unread (0 = all taken). */
size_t logs_append(const Hodei__V1__LogBatch *b, hodei_log_filter *f, logs_lines *out, size_t room);

/* Looks the job up: HODEI_ERR_NOT_FOUND when there is none, or when it is
 * in a namespace `who` may not see (the same answer). *ended_state gets its
 * state when it finished more than LOGS_END_GRACE_MS ago, else 0. */
hodei_status logs_job_check(edge *e, const hodei_identity *who, const char *job_id,
                            Hodei__V1__JobState *ended_state, hodei_err *err);
/* logs_archive.c: a finished job's archived lines (every attempt, in
 * order) through f into out, at most `room`; *found when the job has an
 * archive (then it is the whole log, and *final_state its state; may be
 * NULL). Archives exist only for finished jobs. Call after logs_job_check
 * (which checks the caller may see the job). */
hodei_status logs_archive_load(edge *e, const char *job_id, hodei_log_filter *f, hodei_arena *arena,
                               logs_lines *out, size_t room, bool *found,
                               Hodei__V1__JobState *final_state, hodei_err *err);
/* The same archive read in bounded pieces (logs_archive.c says how):
 * open finds it (*out NULL when the job has none; then HODEI_OK), next
 * appends the lines after the last one it gave that pass f, while out has
 * fewer than `room` and it added less than LOGS_CHUNK_BYTES_MAX (lines
 * unpacked into arena, which the caller may reset once it sent them), *eof
 * once every line was read. close(NULL) is a no-op. */
typedef struct logs_archive_reader logs_archive_reader;
hodei_status logs_archive_open(edge *e, const char *job_id, logs_archive_reader **out,
                               Hodei__V1__JobState *final_state, hodei_err *err);
hodei_status logs_archive_next(logs_archive_reader *r, hodei_log_filter *f, hodei_arena *arena,
                               logs_lines *out, size_t room, bool *eof, hodei_err *err);
void logs_archive_close(logs_archive_reader *r);
typedef struct log_archive log_archive;
/* The archiver thread: JobFinished events -> job_log_archives. */
hodei_status log_archive_create(edge *e, log_archive **out, hodei_err *err);
void log_archive_destroy(log_archive *la);

/* logs_store.c: where archives are kept (logs.archive_store). Created at
 * start-up (credentials read then; errors name the setting); with
 * "database" every call but create/destroy/is_s3/drain is unused. */
#define LOGS_LOCATION_MAX 700 /* "s3://bucket/<prefix><job>/<epoch>.pb.zlib" */
hodei_status log_store_create(edge *e, log_store **out, hodei_err *err);
void log_store_destroy(log_store *ls); /* NULL is a no-op */
bool log_store_is_s3(const log_store *ls);
/* One attempt's compressed archive as an object; location gets its
 * "s3://bucket/key". */
hodei_status log_store_put(log_store *ls, const char *job_id, int64_t epoch, const uint8_t *data,
                           size_t len, char location[LOGS_LOCATION_MAX], hodei_err *err);
/* An archive back (*data malloc'd; at most max bytes). */
hodei_status log_store_get(log_store *ls, const char *location, size_t max, uint8_t **data,
                           size_t *len, hodei_err *err);
hodei_status log_store_delete(log_store *ls, const char *location, hodei_err *err);
/* Deletes a batch of the objects queued in log_archive_deletions (rows
 * gone by retention); *deleted says how many. */
hodei_status log_store_drain(log_store *ls, int *deleted, hodei_err *err);

/* Subject of a job's log. */
void logs_subject(const char *job_id, char out[LOGS_SUBJECT_MAX]);
/* Validates a request's job_id and from_epoch: INVALID_ARGUMENT naming the
 * field. */
/* Stream sequence of the log subject's last message; 0 when it has none. */
hodei_status logs_last_seq(jsCtx *js, const char *subject, uint64_t *seq, hodei_err *err);

hodei_status logs_check_request(const char *id, int64_t from_epoch, hodei_err *err);

/* logs_get.c: the threads GetLogs' reading runs on (logs.readers), off
 * the gRPC threads, with a queue of at most logs.readers_queue_max calls.
 * Create before the gRPC server starts; stop (queued calls answered
 * UNAVAILABLE, threads joined once their call is answered; calls arriving
 * later are answered UNAVAILABLE) before it is destroyed, as the calls
 * held must be released first; destroy after. NULL is a no-op. */
hodei_status logs_readers_create(edge *e, logs_readers **out, hodei_err *err);
void logs_readers_stop(logs_readers *r);
void logs_readers_destroy(logs_readers *r);

/* Method entries (logs_get.c, logs_follow.c). */
void logs_get_method(edge *e, hodei_rpc_method *out);
void logs_follow_method(edge *e, hodei_rpc_method *out);

/* The followers of SubscribeLogs (logs_follow.c): their list, and a thread
 * that ends a follow whose job finished without an end marker. */
hodei_status log_hub_create(edge *e, log_hub **out, hodei_err *err);
/* Call after the gRPC server is destroyed. NULL is a no-op. */
void log_hub_destroy(log_hub *h);

#endif
