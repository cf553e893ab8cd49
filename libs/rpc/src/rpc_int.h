/* Private to libs/rpc: the server and call structures shared by rpc_server.c
 * and rpc_call.c, and helpers shared with the client. */
#ifndef HODEI_RPC_INT_H
#define HODEI_RPC_INT_H

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <pthread.h>
#include <stdatomic.h>

#include "hodei/rpc.h"

#define RPC_THREADS_MAX 64
#define RPC_METHODS_MAX 128
#define RPC_REQUESTS_PER_THREAD 8 /* grpc_server_request_call kept outstanding */
#define RPC_QUEUE_MAX_DEFAULT 1024
#define RPC_PEM_FILE_MAX (1024 * 1024)
#define RPC_STATUS_MSG_MAX 512

/* What a completion-queue tag stands for. Tags are embedded in their owner. */
typedef enum {
    RPC_TAG_NEW = 0,  /* grpc_server_request_call matched a call */
    RPC_TAG_RECV,     /* RECV_MESSAGE (server side) */
    RPC_TAG_SEND,     /* SEND_MESSAGE and/or SEND_STATUS_FROM_SERVER */
    RPC_TAG_CLOSE,    /* RECV_CLOSE_ON_SERVER */
    RPC_TAG_SHUTDOWN, /* grpc_server_shutdown_and_notify */
} rpc_tag_kind;

typedef struct {
    rpc_tag_kind kind;
    hodei_rpc_call *call;
} rpc_tag;

typedef struct rpc_send_node {
    struct rpc_send_node *next;
    grpc_byte_buffer *bb;
} rpc_send_node;

/* When on_close may fire and has fired. */
typedef enum { RPC_CLOSE_PENDING = 0, RPC_CLOSE_FIRING, RPC_CLOSE_DONE } rpc_close_state;

struct hodei_rpc_call {
    hodei_rpc_server *srv; /* only touched while the call is open */
    pthread_mutex_t mu;    /* guards everything below, and start_batch */
    int refs;
    grpc_call *gcall;
    grpc_call_details details;
    grpc_metadata_array md;
    char **md_values;        /* NUL-terminated copies, built on demand */
    hodei_rpc_method method; /* copy; path not used after dispatch */
    size_t request_max;      /* the method's, set at dispatch */
    bool known;              /* method found */
    rpc_tag tag_new, tag_recv, tag_send, tag_close;

    grpc_byte_buffer *recv_bb;
    int close_cancelled; /* RECV_CLOSE_ON_SERVER out-parameter */
    bool md_sent;        /* SEND_INITIAL_METADATA started */
    bool recv_busy;      /* RECV in flight or its handler running */
    bool close_seen;     /* the call is over on the wire */
    bool half_closed;    /* BIDI: client half-closed cleanly */
    bool finished;       /* handler replied / failed / finished */
    bool lib_ref_dropped;
    rpc_close_state close_state;
    bool fire_cancelled; /* value handed to on_close */

    bool send_busy;            /* one send batch in flight */
    grpc_byte_buffer *send_bb; /* message of the batch in flight */
    bool status_pending;       /* finish asked; status not yet started */
    bool status_started;
    hodei_grpc_code status_code;
    char status_msg[RPC_STATUS_MSG_MAX];
    grpc_slice status_slice; /* kept until the status batch completes */
    rpc_send_node *q_head, *q_tail;
    size_t q_len, q_max;
    size_t out_bytes;        /* response bytes held for the peer (in srv->out_bytes) */
    int64_t out_progress_ms; /* when the peer last took a message, or the first waited */

    ProtobufCMessage *req; /* first request, freed after on_call */
    char *peer;            /* cached peer identity */
    bool peer_checked;
    char *peer_addr; /* cached peer address */
    void *principal; /* from the server's authorize hook */
    void (*principal_free)(void *principal);
    void *user;
    const char *path;        /* the registered method's path (the server's copy); NULL if unknown */
    int64_t arrived_ns;      /* hodei_mono_ns() when the call was matched */
    bool observed;           /* the server's observe hook has seen this call */
    struct rpc_local *local; /* in-process calls only (rpc_local.c); NULL over gRPC */
    hodei_rpc_taken_fn on_taken; /* hodei_rpc_call_set_on_taken */
    void *on_taken_arg;
    int on_taken_running;    /* runs of on_taken in progress */
    pthread_cond_t taken_cv; /* with mu: a message was taken or dropped, or the call closed */
};

struct hodei_rpc_server {
    grpc_server *server;
    grpc_completion_queue *cq;
    char listen_addr[256];
    char *tls_cert, *tls_key, *tls_ca; /* PEM contents */
    int thread_count;
    pthread_t threads[RPC_THREADS_MAX];
    int threads_started;
    hodei_rpc_method methods[RPC_METHODS_MAX];
    char *method_paths[RPC_METHODS_MAX];
    size_t request_max[RPC_METHODS_MAX]; /* 0 = HODEI_RPC_MESSAGE_MAX */
    size_t method_count;
    hodei_rpc_authorize_fn authorize;
    void *authorize_ctx;
    void (*principal_free)(void *principal);
    int port;
    bool started;
    void (*observe)(void *ctx, const char *path, hodei_grpc_code code, int64_t elapsed_us);
    void *observe_ctx;
    size_t reply_buffer_max; /* 0 = none */
    char reply_buffer_name[64];
    atomic_size_t out_bytes; /* response bytes held for peers, all calls */
    atomic_int refs;         /* the owner's and one per call: freed at 0 (rpc_server_unref) */

    atomic_int outstanding; /* tags handed to gRPC, not yet completed */
    atomic_bool shutting_down;
    pthread_mutex_t mu; /* guards shutdown_seen + cond */
    pthread_cond_t cond;
    bool shutdown_seen;
    rpc_tag tag_shutdown;
};

/* rpc_common.c */
grpc_byte_buffer *rpc_msg_pack(const ProtobufCMessage *msg);
ProtobufCMessage *rpc_msg_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb);
hodei_status rpc_file_read(const char *path, char **out, hodei_err *err);
#define RPC_ARGS_MAX 3
void rpc_channel_args_init(grpc_channel_args *args, grpc_arg arg_storage[RPC_ARGS_MAX],
                           bool server);
gpr_timespec rpc_deadline_from_ms(int64_t timeout_ms);
void rpc_result_set(hodei_rpc_result *res, grpc_status_code code, grpc_slice details);

/* rpc_call.c, used by rpc_server.c */
hodei_rpc_call *rpc_call_create(hodei_rpc_server *srv);
void rpc_call_on_new(hodei_rpc_call *call);
void rpc_call_on_recv(hodei_rpc_call *call, bool ok);
void rpc_call_on_send(hodei_rpc_call *call, bool ok);
void rpc_call_on_close(hodei_rpc_call *call, bool ok);
void rpc_call_discard(hodei_rpc_call *call);
/* Entered locked, returns unlocked: fires on_close / drops the library's
 * reference when due. */
void rpc_call_settle(hodei_rpc_call *call);
/* Entered locked with status_pending set: starts the status when no send
 * is in flight, then settles (returns unlocked). */
void rpc_call_start_status(hodei_rpc_call *call);
void rpc_call_queue_clear_locked(hodei_rpc_call *call);
/* Hands the call's outcome to the server's observe hook, once. Call locked. */
void rpc_call_observe_locked(hodei_rpc_call *call, hodei_grpc_code code);
/* Starts a batch on an open call, counting it as outstanding. Call locked. */
bool rpc_call_start_locked(hodei_rpc_call *call, const grpc_op *ops, size_t n, rpc_tag *tag);

/* rpc_call_in.c: the server's authorize hook for call to m (sets its
 * principal); HODEI_GRPC_OK or the code that refuses it, with msg. */
hodei_grpc_code rpc_call_authorize(hodei_rpc_call *call, const hodei_rpc_method *m, char *msg,
                                   size_t msg_len);

/* rpc_local.c: what rpc_call.c hands over for an in-process call */
void rpc_local_reply(hodei_rpc_call *call, const ProtobufCMessage *resp);
/* Whether one more outgoing message may be queued on call (held mu):
 * CANCELLED once the call is closed or finished, LIMIT at q_max. */
static inline hodei_status rpc_call_send_admit_locked(const hodei_rpc_call *call)
{
    if (call->close_seen || call->finished)
        return HODEI_ERR_CANCELLED;
    return call->q_len >= call->q_max ? HODEI_ERR_LIMIT : HODEI_OK;
}

/* Response bytes (rpc_call.c), under call->mu: charge len to the call and
 * the server when the server's budget allows (false: refused, nothing
 * charged). A stream's message (stream_msg; a reply otherwise) may fill
 * only (1 - 1/RPC_REPLY_RESERVE_DIV) of the budget, the rest being kept
 * for replies: clients that leave streams unread cannot fail other
 * clients' calls; and it is always let in when the call holds nothing: a
 * client that reads is never starved by ones that do not. Credit them back
 * when the peer took them or they are dropped. Whatever a call still holds
 * is credited when it is freed. */
#define RPC_REPLY_RESERVE_DIV 4
bool rpc_call_out_charge_locked(hodei_rpc_call *call, size_t len, bool stream_msg);
void rpc_call_out_credit_locked(hodei_rpc_call *call, size_t len, bool taken);
/* The message naming the budget, for a refused reply. */
void rpc_call_out_refusal(const hodei_rpc_call *call, size_t len, char *msg, size_t msg_len);

/* Entered locked, returns locked: runs on_taken (unlocked) when one is
 * set; the caller holds a reference. */
void rpc_call_fire_taken_locked(hodei_rpc_call *call);

hodei_status rpc_local_send(hodei_rpc_call *call, const ProtobufCMessage *msg);
void rpc_local_status(hodei_rpc_call *call, hodei_grpc_code code, const char *msg);
void rpc_local_abort(hodei_rpc_call *call, hodei_grpc_code code, const char *msg);
const char *rpc_local_metadata(hodei_rpc_call *call, const char *key);
void rpc_local_free(struct rpc_local *l);

/* rpc_server.c, used by rpc_call.c */
/* Drops a call's (or the owner's) reference; the last one frees srv, so
 * a call a handler still holds when the server is destroyed may end later. */
void rpc_server_unref(hodei_rpc_server *srv);
const hodei_rpc_method *rpc_server_find(const hodei_rpc_server *srv, grpc_slice path);
const hodei_rpc_method *rpc_server_find_str(const hodei_rpc_server *srv, const char *path);
void rpc_server_request_next(hodei_rpc_server *srv);
void rpc_server_tag_done(hodei_rpc_server *srv);

#endif
