/* The server: one completion queue, `threads` threads draining it, generic
 * grpc_server_request_call kept outstanding and dispatch by method path.
 * The life of one call is in rpc_call.c. */
#include <grpc/grpc_security.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/util.h"
#include "rpc_int.h"

static hodei_status server_opts_check(const hodei_rpc_server_opts *o, hodei_err *err)
{
    if (!o || !o->listen_addr || !o->listen_addr[0])
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc server: listen_addr is required");
    if (strlen(o->listen_addr) >= sizeof((hodei_rpc_server *)0)->listen_addr)
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc server: listen_addr is too long");
    if (o->threads < 1 || o->threads > RPC_THREADS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc server: threads %d not in 1..%d",
                             o->threads, RPC_THREADS_MAX);
    if (!o->tls_cert_file != !o->tls_key_file)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "rpc server: tls_cert_file and tls_key_file go together");
    if (o->tls_client_ca_file && !o->tls_cert_file)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "rpc server: tls_client_ca_file needs tls_cert_file and tls_key_file");
    return HODEI_OK;
}

static hodei_status server_tls_load(hodei_rpc_server *srv, const hodei_rpc_server_opts *o,
                                    hodei_err *err)
{
    hodei_status st = HODEI_OK;
    if (o->tls_cert_file) {
        st = rpc_file_read(o->tls_cert_file, &srv->tls_cert, err);
        if (st == HODEI_OK)
            st = rpc_file_read(o->tls_key_file, &srv->tls_key, err);
    }
    if (st == HODEI_OK && o->tls_client_ca_file)
        st = rpc_file_read(o->tls_client_ca_file, &srv->tls_ca, err);
    return st;
}

static void server_free(hodei_rpc_server *srv)
{
    for (size_t i = 0; i < srv->method_count; i++)
        free(srv->method_paths[i]);
    free(srv->tls_cert);
    free(srv->tls_key);
    free(srv->tls_ca);
    pthread_cond_destroy(&srv->cond);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}

hodei_status hodei_rpc_server_create(const hodei_rpc_server_opts *opts, hodei_rpc_server **out,
                                     hodei_err *err)
{
    hodei_status st = server_opts_check(opts, err);
    if (st != HODEI_OK)
        return st;
    hodei_rpc_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "rpc server: out of memory");
    atomic_init(&srv->refs, 1);
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cond, NULL);
    hodei_strlcpy(srv->listen_addr, opts->listen_addr, sizeof srv->listen_addr);
    srv->thread_count = opts->threads;
    srv->authorize = opts->authorize;
    srv->authorize_ctx = opts->authorize_ctx;
    srv->principal_free = opts->principal_free ? opts->principal_free : free;
    srv->observe = opts->observe;
    srv->observe_ctx = opts->observe_ctx;
    srv->reply_buffer_max = opts->reply_buffer_max;
    hodei_strlcpy(srv->reply_buffer_name,
                  opts->reply_buffer_name ? opts->reply_buffer_name : "the reply buffer",
                  sizeof srv->reply_buffer_name);
    atomic_init(&srv->out_bytes, 0);
    srv->tag_shutdown.kind = RPC_TAG_SHUTDOWN;
    st = server_tls_load(srv, opts, err);
    if (st != HODEI_OK)
        goto out_free;
    grpc_arg arg_storage[RPC_ARGS_MAX];
    grpc_channel_args args;
    rpc_channel_args_init(&args, arg_storage, true);
    srv->server = grpc_server_create(&args, NULL);
    srv->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(srv->server, srv->cq, NULL);
    *out = srv;
    return HODEI_OK;
out_free:
    server_free(srv);
    return st;
}

hodei_status hodei_rpc_server_add(hodei_rpc_server *srv, const hodei_rpc_method *m, hodei_err *err)
{
    if (srv->started)
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "rpc server: add after start");
    if (!m->path || m->path[0] != '/' || !m->request || !m->on_call ||
        (m->kind == HODEI_RPC_BIDI && !m->on_message))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "rpc server: method %s needs a /path, a request type and handlers",
                             m->path ? m->path : "(null)");
    if (srv->method_count >= RPC_METHODS_MAX)
        return hodei_err_set(err, HODEI_ERR_LIMIT, "rpc server: more than %d methods",
                             RPC_METHODS_MAX);
    for (size_t i = 0; i < srv->method_count; i++)
        if (strcmp(srv->method_paths[i], m->path) == 0)
            return hodei_err_set(err, HODEI_ERR_EXISTS, "rpc server: method %s added twice",
                                 m->path);
    char *path = strdup(m->path);
    if (!path)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "rpc server: out of memory");
    srv->method_paths[srv->method_count] = path;
    srv->methods[srv->method_count] = *m;
    srv->methods[srv->method_count].path = path;
    srv->method_count++;
    return HODEI_OK;
}

hodei_status hodei_rpc_server_add_all(hodei_rpc_server *srv, const hodei_rpc_method *methods,
                                      size_t n, hodei_err *err)
{
    for (size_t i = 0; i < n; i++) {
        hodei_status st = hodei_rpc_server_add(srv, &methods[i], err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}

hodei_status hodei_rpc_server_request_max(hodei_rpc_server *srv, const char *path, size_t max,
                                          hodei_err *err)
{
    if (srv->started)
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "rpc server: limit set after start");
    if (max == 0 || max > HODEI_RPC_MESSAGE_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc server: request_max must be 1..%d",
                             HODEI_RPC_MESSAGE_MAX);
    bool found = false;
    for (size_t i = 0; i < srv->method_count; i++) {
        if (path ? strcmp(srv->method_paths[i], path) == 0 : srv->request_max[i] == 0) {
            srv->request_max[i] = max;
            found = true;
        }
    }
    if (!found && path)
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "rpc server: no method %s", path);
    return HODEI_OK;
}

/* The path is the peer's bytes, not a C string: it may hold a NUL (a
 * strncmp would stop there and the length check then read past mp). */
const hodei_rpc_method *rpc_server_find(const hodei_rpc_server *srv, grpc_slice path)
{
    size_t len = GRPC_SLICE_LENGTH(path);
    const char *p = (const char *)GRPC_SLICE_START_PTR(path);
    for (size_t i = 0; i < srv->method_count; i++) {
        const char *mp = srv->method_paths[i];
        if (strlen(mp) == len && memcmp(mp, p, len) == 0)
            return &srv->methods[i];
    }
    return NULL;
}

const hodei_rpc_method *rpc_server_find_str(const hodei_rpc_server *srv, const char *path)
{
    for (size_t i = 0; i < srv->method_count; i++)
        if (strcmp(srv->method_paths[i], path) == 0)
            return &srv->methods[i];
    return NULL;
}

const hodei_rpc_method *hodei_rpc_server_method(const hodei_rpc_server *srv, const char *path)
{
    return rpc_server_find_str(srv, path);
}

/* Keeps one more grpc_server_request_call outstanding, unless shutting down. */
void rpc_server_request_next(hodei_rpc_server *srv)
{
    if (atomic_load(&srv->shutting_down))
        return;
    hodei_rpc_call *call = rpc_call_create(srv);
    if (!call) {
        HLOG_ERROR("rpc server: out of memory for a new call");
        return;
    }
    atomic_fetch_add(&srv->outstanding, 1);
    grpc_call_error e = grpc_server_request_call(srv->server, &call->gcall, &call->details,
                                                 &call->md, srv->cq, srv->cq, &call->tag_new);
    if (e != GRPC_CALL_OK) {
        HLOG_ERROR("rpc server: request_call: %s", grpc_call_error_to_string(e));
        atomic_fetch_sub(&srv->outstanding, 1);
        rpc_call_discard(call);
    }
}

/* One completion handled. Wakes the destroyer when the last one is in. */
void rpc_server_tag_done(hodei_rpc_server *srv)
{
    if (atomic_fetch_sub(&srv->outstanding, 1) == 1 && atomic_load(&srv->shutting_down)) {
        pthread_mutex_lock(&srv->mu);
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->mu);
    }
}

static void server_dispatch(hodei_rpc_server *srv, rpc_tag *tag, bool ok)
{
    switch (tag->kind) {
    case RPC_TAG_NEW:
        if (ok)
            rpc_call_on_new(tag->call);
        else
            rpc_call_discard(tag->call);
        break;
    case RPC_TAG_RECV:
        rpc_call_on_recv(tag->call, ok);
        break;
    case RPC_TAG_SEND:
        rpc_call_on_send(tag->call, ok);
        break;
    case RPC_TAG_CLOSE:
        rpc_call_on_close(tag->call, ok);
        break;
    case RPC_TAG_SHUTDOWN:
        pthread_mutex_lock(&srv->mu);
        srv->shutdown_seen = true;
        pthread_cond_broadcast(&srv->cond);
        pthread_mutex_unlock(&srv->mu);
        break;
    }
}

static void *server_thread_main(void *arg)
{
    hodei_rpc_server *srv = arg;
    for (;;) {
        grpc_event ev =
            grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type != GRPC_OP_COMPLETE)
            continue;
        rpc_tag *tag = ev.tag;
        bool counted = tag->kind != RPC_TAG_SHUTDOWN;
        server_dispatch(srv, tag, ev.success != 0);
        if (counted)
            rpc_server_tag_done(srv);
    }
    return NULL;
}

static grpc_server_credentials *server_creds_make(const hodei_rpc_server *srv)
{
    if (!srv->tls_cert)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_pem_key_cert_pair pair = {.private_key = srv->tls_key, .cert_chain = srv->tls_cert};
    grpc_ssl_client_certificate_request_type req =
        srv->tls_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                    : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    return grpc_ssl_server_credentials_create_ex(srv->tls_ca, &pair, 1, req, NULL);
}

static hodei_status server_threads_start(hodei_rpc_server *srv, hodei_err *err)
{
    for (int i = 0; i < srv->thread_count; i++) {
        if (pthread_create(&srv->threads[i], NULL, server_thread_main, srv) != 0)
            return hodei_err_set(err, HODEI_ERR_INTERNAL, "rpc server: cannot start thread %d", i);
        srv->threads_started++;
    }
    return HODEI_OK;
}

hodei_status hodei_rpc_server_start(hodei_rpc_server *srv, hodei_err *err)
{
    if (srv->started)
        return hodei_err_set(err, HODEI_ERR_PRECONDITION, "rpc server: already started");
    grpc_server_credentials *creds = server_creds_make(srv);
    if (!creds)
        return hodei_err_set(err, HODEI_ERR_INVALID, "rpc server: bad TLS certificate or key");
    srv->port = grpc_server_add_http2_port(srv->server, srv->listen_addr, creds);
    grpc_server_credentials_release(creds);
    if (srv->port <= 0)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "rpc server: cannot listen on %s",
                             srv->listen_addr);
    grpc_server_start(srv->server);
    srv->started = true;
    int requests = srv->thread_count * RPC_REQUESTS_PER_THREAD;
    for (int i = 0; i < requests; i++)
        rpc_server_request_next(srv);
    hodei_status st = server_threads_start(srv, err);
    if (st == HODEI_OK)
        HLOG_INFO("rpc server listening on %s port %d (%s, %d threads)", srv->listen_addr,
                  srv->port,
                  srv->tls_ca     ? "mtls"
                  : srv->tls_cert ? "tls"
                                  : "insecure",
                  srv->thread_count);
    return st;
}

int hodei_rpc_server_port(const hodei_rpc_server *srv)
{
    return srv->port;
}

/* Shutdown, cancel every call, then wait until every tag handed to gRPC
 * has come back (calls' on_close handlers run meanwhile on the threads). */
static void server_drain(hodei_rpc_server *srv)
{
    atomic_store(&srv->shutting_down, true);
    grpc_server_shutdown_and_notify(srv->server, srv->cq, &srv->tag_shutdown);
    grpc_server_cancel_all_calls(srv->server);
    if (srv->threads_started == 0) {
        /* Never started: drain the queue on this thread. */
        for (;;) {
            grpc_event ev =
                grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
            rpc_tag *tag = ev.tag;
            server_dispatch(srv, tag, ev.success != 0);
            if (tag->kind != RPC_TAG_SHUTDOWN)
                rpc_server_tag_done(srv);
            if (srv->shutdown_seen && atomic_load(&srv->outstanding) == 0)
                return;
        }
    }
    pthread_mutex_lock(&srv->mu);
    while (!srv->shutdown_seen || atomic_load(&srv->outstanding) != 0)
        pthread_cond_wait(&srv->cond, &srv->mu);
    pthread_mutex_unlock(&srv->mu);
}

void hodei_rpc_server_destroy(hodei_rpc_server *srv)
{
    if (!srv)
        return;
    server_drain(srv);
    grpc_server_destroy(srv->server);
    grpc_completion_queue_shutdown(srv->cq);
    for (int i = 0; i < srv->threads_started; i++)
        pthread_join(srv->threads[i], NULL);
    if (srv->threads_started == 0) {
        grpc_event ev;
        do {
            ev = grpc_completion_queue_next(srv->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        } while (ev.type != GRPC_QUEUE_SHUTDOWN);
    }
    grpc_completion_queue_destroy(srv->cq);
    rpc_server_unref(srv);
}

void rpc_server_unref(hodei_rpc_server *srv)
{
    if (atomic_fetch_sub(&srv->refs, 1) == 1)
        server_free(srv);
}
