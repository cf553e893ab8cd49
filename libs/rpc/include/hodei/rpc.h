/* gRPC plumbing on gRPC core's C API: a server that dispatches calls by method
 * path to handlers, and a client for unary, server-streaming and bidirectional
 * calls. Messages are protobuf-c; the wire is standard gRPC, so any gRPC
 * client that has the .proto files can talk to a hodei server.
 *
 * Threading: the server runs `threads` threads on one completion queue.
 * Handlers run on those threads and must not block for long; a handler may
 * keep the call and answer later from any thread (e.g. after a group commit).
 *
 * Ownership: request messages handed to handlers are owned by the library and
 * freed after the handler returns, unless the handler calls
 * hodei_rpc_call_take_request(). Response messages passed to reply/send are
 * serialized before the function returns; the caller keeps ownership. */
#ifndef HODEI_RPC_H
#define HODEI_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/status.h"

/* gRPC status codes (same numbers as grpc_status_code). */
typedef enum {
    HODEI_GRPC_OK = 0,
    HODEI_GRPC_CANCELLED = 1,
    HODEI_GRPC_UNKNOWN = 2,
    HODEI_GRPC_INVALID_ARGUMENT = 3,
    HODEI_GRPC_DEADLINE_EXCEEDED = 4,
    HODEI_GRPC_NOT_FOUND = 5,
    HODEI_GRPC_ALREADY_EXISTS = 6,
    HODEI_GRPC_PERMISSION_DENIED = 7,
    HODEI_GRPC_RESOURCE_EXHAUSTED = 8,
    HODEI_GRPC_FAILED_PRECONDITION = 9,
    HODEI_GRPC_ABORTED = 10,
    HODEI_GRPC_OUT_OF_RANGE = 11,
    HODEI_GRPC_UNIMPLEMENTED = 12,
    HODEI_GRPC_INTERNAL = 13,
    HODEI_GRPC_UNAVAILABLE = 14,
    HODEI_GRPC_DATA_LOSS = 15,
    HODEI_GRPC_UNAUTHENTICATED = 16,
} hodei_grpc_code;

/* Maps a suite status to the gRPC code a client should see. */
hodei_grpc_code hodei_rpc_code_from_status(hodei_status st);
const char *hodei_grpc_code_str(hodei_grpc_code code); /* "INVALID_ARGUMENT", ... */

/* Largest message accepted or sent, both directions. */
#define HODEI_RPC_MESSAGE_MAX (16 * 1024 * 1024)

/* ---------------------------------------------------------------- server */

typedef struct hodei_rpc_server hodei_rpc_server;
typedef struct hodei_rpc_call hodei_rpc_call;

typedef enum {
    HODEI_RPC_UNARY = 0,     /* one request, one response */
    HODEI_RPC_SERVER_STREAM, /* one request, many responses */
    HODEI_RPC_BIDI,          /* many requests, many responses */
} hodei_rpc_kind;

/* Called once per call with the (first) request message. For UNARY and
 * SERVER_STREAM the handler must eventually finish the call with
 * hodei_rpc_call_reply / hodei_rpc_call_fail / hodei_rpc_call_finish. For
 * BIDI, `req` is NULL here: messages arrive through on_message. */
typedef void (*hodei_rpc_handler_fn)(hodei_rpc_call *call, const ProtobufCMessage *req, void *ctx);
/* BIDI only: each message the client sends; msg is freed after return. */
typedef void (*hodei_rpc_message_fn)(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx);
/* BIDI and SERVER_STREAM: the client half-closed (BIDI) or the call ended
 * (cancelled, deadline, peer gone, or finished). Called exactly once per
 * call, after which the call handle must no longer be used by the handler
 * unless it holds a reference (hodei_rpc_call_ref). It may finish the call
 * from inside on_close. Never runs while on_call/on_message of the same call
 * runs. On BIDI a peer that cancels or vanishes can look like a half-close
 * (cancelled = false); finishing such a call is harmless. Server shutdown
 * always reports cancelled = true. Also called for UNARY when set. */
typedef void (*hodei_rpc_close_fn)(hodei_rpc_call *call, bool cancelled, void *ctx);

typedef struct {
    const char *path; /* "/hodei.v1.JobExecutionService/QueueJob" */
    hodei_rpc_kind kind;
    const ProtobufCMessageDescriptor *request; /* type of client messages */
    hodei_rpc_handler_fn on_call;
    hodei_rpc_message_fn on_message; /* BIDI only */
    hodei_rpc_close_fn on_close;     /* optional */
    void *ctx;
} hodei_rpc_method;

/* The server's one authorization point: called for every call to a
 * registered method, before its request is read and before its handler runs.
 * path is the method path. Return HODEI_GRPC_OK to let the call in, with
 * *principal set to what the handlers will find with
 * hodei_rpc_call_principal (owned by the call from here: freed with
 * principal_free when the call is freed; may stay NULL); any other code ends
 * the call at once with that code and msg. May block briefly (a lookup). */
typedef hodei_grpc_code (*hodei_rpc_authorize_fn)(hodei_rpc_call *call, const char *path, void *ctx,
                                                  void **principal, char *msg, size_t msg_len);

typedef struct {
    const char *listen_addr; /* "127.0.0.1:50051", "0.0.0.0:0" (0 = any free port) */
    int threads;             /* completion-queue threads, 1..64 */
    /* TLS: all NULL = insecure. With client_ca_file set, client certs are required. */
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *tls_client_ca_file;
    hodei_rpc_authorize_fn authorize; /* NULL = every call is let in */
    void *authorize_ctx;
    void (*principal_free)(void *principal); /* NULL = free() */
    /* Optional: called once per call as its status goes out (for a call the
     * peer ended first: CANCELLED, when that is seen), with the method path
     * (NULL for a method not registered) and the microseconds since the
     * call arrived. Runs on a server thread holding the call's lock: keep
     * it short and call nothing of this library from it. */
    void (*observe)(void *ctx, const char *path, hodei_grpc_code code, int64_t elapsed_us);
    void *observe_ctx;
    /* The most bytes of response messages the server holds for all calls
     * (gRPC and in-process) that their peers have not taken yet: packed,
     * queued or being written. A reply or stream message that would pass it
     * is refused (a reply ends the call RESOURCE_EXHAUSTED naming
     * reply_buffer_name; a stream send returns HODEI_ERR_LIMIT, except on a
     * stream holding nothing yet: one that reads always gets its next
     * message). Stream messages may fill only three quarters of it: the
     * last quarter is kept for replies, so clients that leave streams
     * unread cannot fail other clients' calls. 0 = no budget. */
    size_t reply_buffer_max;
    const char *reply_buffer_name; /* the setting that holds it, for errors */
} hodei_rpc_server_opts;

hodei_status hodei_rpc_server_create(const hodei_rpc_server_opts *opts, hodei_rpc_server **out,
                                     hodei_err *err);
/* Register before start. path must be unique. */
hodei_status hodei_rpc_server_add(hodei_rpc_server *srv, const hodei_rpc_method *method,
                                  hodei_err *err);
/* The most bytes one client message of the method at path may have,
 * checked before it is decoded: a larger one ends the call
 * RESOURCE_EXHAUSTED naming the maximum. path NULL: every registered method
 * that has no maximum yet. Before start; without one a method takes
 * HODEI_RPC_MESSAGE_MAX. HODEI_ERR_NOT_FOUND when no method has that path. */
hodei_status hodei_rpc_server_request_max(hodei_rpc_server *srv, const char *path, size_t max,
                                          hodei_err *err);
/* hodei_rpc_server_add for methods[0..n), stopping at the first error. */
hodei_status hodei_rpc_server_add_all(hodei_rpc_server *srv, const hodei_rpc_method *methods,
                                      size_t n, hodei_err *err);
/* Binds and starts the threads. */
hodei_status hodei_rpc_server_start(hodei_rpc_server *srv, hodei_err *err);
/* The port actually bound (useful with port 0). */
int hodei_rpc_server_port(const hodei_rpc_server *srv);
/* Stops accepting, cancels calls still open, waits for handlers' threads,
 * frees everything. NULL is a no-op. */
void hodei_rpc_server_destroy(hodei_rpc_server *srv);

/* Unary: sends resp and status OK; ends the call. */
void hodei_rpc_call_reply(hodei_rpc_call *call, const ProtobufCMessage *resp);
/* Any kind: ends the call with an error status and message (UTF-8). */
void hodei_rpc_call_fail(hodei_rpc_call *call, hodei_grpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Shorthand: fails with the code mapped from err->code and err->msg. */
void hodei_rpc_call_fail_err(hodei_rpc_call *call, const hodei_err *err);
/* Streaming kinds: queues one message. Returns HODEI_ERR_CANCELLED once the
 * call is gone, HODEI_ERR_LIMIT when more than `queue_max` messages wait
 * (set per call with hodei_rpc_call_set_queue_max; default 1024). */
hodei_status hodei_rpc_call_send(hodei_rpc_call *call, const ProtobufCMessage *msg);
/* Streaming kinds: sends the status after every queued message. */
void hodei_rpc_call_finish(hodei_rpc_call *call, hodei_grpc_code code, const char *msg);
void hodei_rpc_call_set_queue_max(hodei_rpc_call *call, size_t queue_max);
/* Messages queued and not yet written (for flow control). */
size_t hodei_rpc_call_pending(hodei_rpc_call *call);
/* Streaming kinds: waits until at most pending_max of the call's messages
 * wait for the peer, the peer is gone, or timeout_ms passed; returns the
 * number waiting then. Woken by each message the peer takes (no polling);
 * any thread, holding none of the library's locks. */
size_t hodei_rpc_call_wait_pending(hodei_rpc_call *call, size_t pending_max, int64_t timeout_ms);
/* Streaming kinds: how long (ms) messages have been waiting for the peer
 * without one of them being taken (written to the wire, or read by an
 * in-process caller); 0 when nothing waits. A peer that reads nothing makes
 * it grow; a quiet stream with nothing to send keeps it at 0. */
int64_t hodei_rpc_call_stalled_ms(hodei_rpc_call *call);
/* Streaming kinds: fn(call, arg) runs each time the peer took one of the
 * call's messages (written to the wire, or read by an in-process caller),
 * on the thread that saw it, with no lock of the library held: a handler
 * waiting for room is woken rather than polling. It may send, ask for
 * pending and stalled, and take its own locks; it must not set or clear
 * the callback itself. fn NULL clears it; clearing (from any other
 * thread) returns once a run of the old one in progress has returned, so
 * arg may be freed then. Calls with no callback pay nothing. */
typedef void (*hodei_rpc_taken_fn)(hodei_rpc_call *call, void *arg);
void hodei_rpc_call_set_on_taken(hodei_rpc_call *call, hodei_rpc_taken_fn fn, void *arg);
/* Any kind: ends the call at once with code and msg, dropping every message
 * still queued for it (a finish already asked for is overridden): for a peer
 * that takes nothing, whose queued messages would otherwise hold the call
 * open. on_close follows as for a cancelled call. */
void hodei_rpc_call_abort(hodei_rpc_call *call, hodei_grpc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Bytes of response messages the server holds for its calls' peers now
 * (what reply_buffer_max bounds). */
size_t hodei_rpc_server_reply_bytes(const hodei_rpc_server *srv);

/* UNARY and SERVER_STREAM, inside on_call only: takes ownership of the
 * request message (free with protobuf_c_message_free_unpacked(msg, NULL)). */
ProtobufCMessage *hodei_rpc_call_take_request(hodei_rpc_call *call);

/* Reference counting for handlers that keep a call across threads (e.g. the
 * edge holding a worker's stream). The library holds its own reference
 * until the call has completed on the wire. */
void hodei_rpc_call_ref(hodei_rpc_call *call);
void hodei_rpc_call_unref(hodei_rpc_call *call);

/* Request metadata value for key (lower-case, e.g. "authorization"), or NULL.
 * Valid while the call lives. */
const char *hodei_rpc_call_metadata(hodei_rpc_call *call, const char *key);
/* Absolute deadline of the call in hodei_mono_ms() terms, or INT64_MAX. */
int64_t hodei_rpc_call_deadline_ms(hodei_rpc_call *call);
/* Peer identity: the SAN of a verified client certificate, or NULL. */
const char *hodei_rpc_call_peer_identity(hodei_rpc_call *call);
/* True when the verified client certificate carries name among its
 * identities (every SAN, else its common name). */
bool hodei_rpc_call_peer_has_identity(hodei_rpc_call *call, const char *name);
/* The peer's address as gRPC gives it ("ipv4:127.0.0.1:40000"), or "". */
const char *hodei_rpc_call_peer_address(hodei_rpc_call *call);
/* What the server's authorize hook gave this call (NULL when none). */
void *hodei_rpc_call_principal(hodei_rpc_call *call);
/* Per-call user pointer (handlers' own state). */
void hodei_rpc_call_set_user(hodei_rpc_call *call, void *user);
void *hodei_rpc_call_user(hodei_rpc_call *call);

/* ------------------------------------------------------- in-process calls */

/* Another door of the same process (the edge's REST/JSON API) calls a
 * registered method as a gRPC client would: the same dispatch, the same
 * handler, the same replies and statuses. Only UNARY and SERVER_STREAM
 * methods can be called this way.
 *
 * hodei_rpc_local_start runs the server's authorize hook (as for a gRPC
 * call: md carries the "authorization" key), then the method's handler on the calling thread
 * and returns the call; the caller then takes what the handler sends with
 * hodei_rpc_local_next (messages packed as on the wire, in order, then the
 * status) and always ends with hodei_rpc_local_end. The handler's on_close
 * runs on the caller's thread, from hodei_rpc_local_next when it hands over
 * the status or from hodei_rpc_local_end (cancelled = true when the caller
 * leaves before the status), never inside the handler's own reply or
 * finish. Messages queued for the caller count in hodei_rpc_call_pending,
 * so a handler's flow control works as it does over gRPC. */
typedef struct {
    const char *key; /* lower-case, as gRPC metadata keys are: "authorization" */
    const char *value;
} hodei_rpc_metadata;

/* req (may be NULL: an empty message) is taken, whatever the result.
 * md[0..n_md): what hodei_rpc_call_metadata answers; peer: the caller's
 * address for hodei_rpc_call_peer_address-style logging (may be NULL).
 * HODEI_OK with *out set; the status of a call refused at once (unknown
 * method: UNIMPLEMENTED; shutting down: UNAVAILABLE) comes through
 * hodei_rpc_local_next like any other. HODEI_ERR_NOMEM otherwise. */
hodei_status hodei_rpc_local_start(hodei_rpc_server *srv, const char *path, ProtobufCMessage *req,
                                   const hodei_rpc_metadata *md, size_t n_md, const char *peer,
                                   hodei_rpc_call **out, hodei_err *err);
/* Waits up to timeout_ms (< 0: no limit) for the next thing the handler sent.
 * HODEI_OK, *data set: one packed response message (caller frees *data);
 * HODEI_OK, *data NULL: the call ended with *code and msg (NUL-terminated);
 * HODEI_ERR_TIMEOUT: nothing yet; call again. */
hodei_status hodei_rpc_local_next(hodei_rpc_call *call, int64_t timeout_ms, uint8_t **data,
                                  size_t *len, hodei_grpc_code *code, char *msg, size_t msg_len);
/* The caller is done with the call (after its status, or leaving early):
 * drops what is queued, runs on_close if it has not run, releases the
 * caller's reference. The handler may still answer a unary call later;
 * that answer goes nowhere. */
void hodei_rpc_local_end(hodei_rpc_call *call);
/* Only the authorize hook for a call to path with md (for a door that
 * refuses a request before it can start the call, so the caller learns
 * 401/403 before 400, as over gRPC). HODEI_GRPC_OK or the refusal, msg set. */
hodei_grpc_code hodei_rpc_local_authorize(hodei_rpc_server *srv, const char *path,
                                          const hodei_rpc_metadata *md, size_t n_md,
                                          const char *peer, char *msg, size_t msg_len);
/* The method registered at path (NULL when none): its kind and request type. */
const hodei_rpc_method *hodei_rpc_server_method(const hodei_rpc_server *srv, const char *path);

/* ---------------------------------------------------------------- client */

typedef struct hodei_rpc_channel hodei_rpc_channel;
typedef struct hodei_rpc_stream hodei_rpc_stream;

typedef struct {
    const char *target; /* "127.0.0.1:50051" */
    /* TLS: all NULL = insecure. ca_file alone = server-auth TLS; plus
     * cert/key = mutual TLS. */
    const char *tls_ca_file;
    const char *tls_cert_file;
    const char *tls_key_file;
    const char *api_key; /* sent as "authorization: Bearer <key>" when set */
} hodei_rpc_channel_opts;

/* Result of a call as the client sees it. */
typedef struct {
    hodei_grpc_code code;
    char message[512];
} hodei_rpc_result;

hodei_status hodei_rpc_channel_create(const hodei_rpc_channel_opts *opts, hodei_rpc_channel **out,
                                      hodei_err *err);
void hodei_rpc_channel_destroy(hodei_rpc_channel *ch);

/* Unary call. On code OK, *resp_out holds the unpacked response (free with
 * protobuf_c_message_free_unpacked(*resp_out, NULL)). timeout_ms <= 0 means
 * no deadline. Returns HODEI_OK when the call completed (whatever its gRPC
 * code, see res), an error when it could not be made at all. */
hodei_status hodei_rpc_unary(hodei_rpc_channel *ch, const char *path, const ProtobufCMessage *req,
                             const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
                             ProtobufCMessage **resp_out, hodei_rpc_result *res, hodei_err *err);

/* Streaming calls. For SERVER_STREAM pass the request in `req`; for BIDI pass
 * NULL and use hodei_rpc_stream_send. */
hodei_status hodei_rpc_stream_open(hodei_rpc_channel *ch, const char *path,
                                   const ProtobufCMessage *req,
                                   const ProtobufCMessageDescriptor *resp_desc, int64_t timeout_ms,
                                   hodei_rpc_stream **out, hodei_err *err);
hodei_status hodei_rpc_stream_send(hodei_rpc_stream *st, const ProtobufCMessage *msg,
                                   hodei_err *err);
hodei_status hodei_rpc_stream_close_send(hodei_rpc_stream *st, hodei_err *err);
/* Waits up to timeout_ms (< 0 = forever) for the next message.
 * HODEI_OK with *msg_out set: a message (caller frees).
 * HODEI_OK with *msg_out NULL: the stream ended; res holds the final status.
 * HODEI_ERR_TIMEOUT: nothing arrived in time; the stream is still usable. */
hodei_status hodei_rpc_stream_recv(hodei_rpc_stream *st, int64_t timeout_ms,
                                   ProtobufCMessage **msg_out, hodei_rpc_result *res,
                                   hodei_err *err);
/* Cancels if still open and frees. NULL is a no-op. */
void hodei_rpc_stream_destroy(hodei_rpc_stream *st);

/* Call once per process before any other rpc function, and once at exit. */
void hodei_rpc_global_init(void);
void hodei_rpc_global_shutdown(void);

#endif
