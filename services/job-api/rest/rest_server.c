/* The REST/JSON door: libmicrohttpd, one thread per connection (a call may
 * wait for a group commit, a stream for the next log line), at most
 * REST_CONN_MAX connections. Each request becomes the request message of
 * its route's RPC (rest_routes.c): the JSON body and/or the query
 * parameters, then the path's {fields}, decoded by libs/pbjson, then run
 * through hodei_rpc_local_start by the handler the gRPC door runs. Errors
 * are {"code", "message", "field"} with the HTTP status of the gRPC code.
 * Anything outside /v1 is the embedded dashboard (GET only). */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hodei/assert.h"
#include "hodei/buf.h"
#include "hodei/log.h"
#include "hodei/pbjson.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/logs.pb-c.h"
#include "rest.h"
#include "rest_int.h"

#define REST_BODY_MAX (1024 * 1024)   /* request body */
#define REST_CONN_MAX 256             /* open connections (threads) */
#define REST_CONN_TIMEOUT_S 120       /* idle keep-alive connection */
#define REST_UNARY_WAIT_MS 120000     /* a unary answer (e.g. a group commit) */
#define REST_SSE_KEEPALIVE_MS 15000   /* a comment line on a quiet stream */
#define REST_SSE_EVENT_MAX (17 << 20) /* one event's text */
#define REST_STATUS_MSG_MAX 512
#define REST_SSE_WAKE_MS 500 /* a stream checks for shutdown this often */

struct rest_server {
    edge *e;
    struct MHD_Daemon *mhd;
    int port;
    atomic_bool stopping; /* streams end at their next wake-up */
};

/* Per request: the body as it arrives. */
typedef struct {
    hodei_buf body;
} rest_req;

/* ----------------------------------------------------------------- answers */

static unsigned int rest_http_status(hodei_grpc_code code)
{
    switch (code) {
    case HODEI_GRPC_OK:
        return MHD_HTTP_OK;
    case HODEI_GRPC_CANCELLED:
        return 499;
    case HODEI_GRPC_INVALID_ARGUMENT:
    case HODEI_GRPC_FAILED_PRECONDITION:
    case HODEI_GRPC_OUT_OF_RANGE:
        return MHD_HTTP_BAD_REQUEST;
    case HODEI_GRPC_DEADLINE_EXCEEDED:
        return MHD_HTTP_GATEWAY_TIMEOUT;
    case HODEI_GRPC_NOT_FOUND:
        return MHD_HTTP_NOT_FOUND;
    case HODEI_GRPC_ALREADY_EXISTS:
    case HODEI_GRPC_ABORTED:
        return MHD_HTTP_CONFLICT;
    case HODEI_GRPC_PERMISSION_DENIED:
        return MHD_HTTP_FORBIDDEN;
    case HODEI_GRPC_RESOURCE_EXHAUSTED:
        return MHD_HTTP_TOO_MANY_REQUESTS;
    case HODEI_GRPC_UNIMPLEMENTED:
        return MHD_HTTP_NOT_IMPLEMENTED;
    case HODEI_GRPC_UNAVAILABLE:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case HODEI_GRPC_UNAUTHENTICATED:
        return MHD_HTTP_UNAUTHORIZED;
    default:
        return MHD_HTTP_INTERNAL_SERVER_ERROR;
    }
}

/* The field a validation message names: its text before ": " when that is
 * a field path ("spec.args[2]: must be a string"). */
static json_t *rest_error_field(const char *msg)
{
    const char *colon = strstr(msg, ": ");
    if (!colon || colon == msg)
        return NULL;
    for (const char *p = msg; p < colon; p++) {
        if (*p == '[') { /* an index or a quoted map key: spec.env["A B"] */
            const char *close = memchr(p, ']', (size_t)(colon - p));
            if (!close)
                return NULL;
            p = close;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.'))
            return NULL;
    }
    return json_stringn(msg, (size_t)(colon - msg));
}

static json_t *rest_error_json(hodei_grpc_code code, const char *msg)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_object_set_new(o, "code", json_string(hodei_grpc_code_str(code)));
    json_object_set_new(o, "message", json_string(msg));
    json_t *field = rest_error_field(msg);
    if (field)
        json_object_set_new(o, "field", field);
    return o;
}

static enum MHD_Result rest_send(struct MHD_Connection *conn, unsigned int status, const char *type,
                                 char *text, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result rest_send_json(struct MHD_Connection *conn, unsigned int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return MHD_NO;
    return rest_send(conn, status, "application/json", text, strlen(text));
}

static enum MHD_Result rest_fail(struct MHD_Connection *conn, unsigned int status,
                                 hodei_grpc_code code, const char *msg)
{
    return rest_send_json(conn, status, rest_error_json(code, msg));
}

static enum MHD_Result rest_fail_grpc(struct MHD_Connection *conn, hodei_grpc_code code,
                                      const char *msg)
{
    return rest_fail(conn, rest_http_status(code), code, msg);
}

/* ----------------------------------------------------------------- request */

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const rest_route *rt;
    json_t *obj;
    hodei_err err;
    hodei_status st;
} rest_query;

static enum MHD_Result rest_query_one(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value)
{
    (void)kind;
    rest_query *q = cls;
    q->st = hodei_pbjson_query_add(q->desc, q->obj, rest_query_alias(q->rt, key),
                                   value ? value : "", &q->err);
    return q->st == HODEI_OK ? MHD_YES : MHD_NO;
}

/* A field set from the path (or Last-Event-ID): replaces what the body said. */
static hodei_status rest_set_field(const ProtobufCMessageDescriptor *desc, json_t *obj,
                                   const char *name, const char *value, hodei_err *err)
{
    char json_name[HODEI_PBJSON_NAME_MAX];
    hodei_pbjson_json_name(name, json_name, sizeof json_name);
    json_object_del(obj, name);
    json_object_del(obj, json_name);
    return hodei_pbjson_query_add(desc, obj, name, value, err);
}

/* The route's request message from body, query, path and headers. */
static hodei_status rest_build_request(struct MHD_Connection *conn, const rest_route *rt,
                                       const ProtobufCMessageDescriptor *desc, rest_req *r,
                                       const rest_param *params, size_t n_params,
                                       ProtobufCMessage **out, hodei_err *err)
{
    json_t *obj = NULL;
    hodei_status st = HODEI_OK;
    if (r->body.len > 0) {
        if (!rt->body)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "request body: %s %s takes its fields as query parameters",
                                 rt->method, rt->pattern);
        json_error_t jerr;
        obj = json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, &jerr);
        if (!obj)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "request body: not JSON: %s (line %d, column %d)", jerr.text,
                                 jerr.line, jerr.column);
        if (!json_is_object(obj)) {
            json_decref(obj);
            return hodei_err_set(err, HODEI_ERR_INVALID, "request body: must be a JSON object");
        }
    } else if (!(obj = json_object())) {
        return hodei_err_set(err, HODEI_ERR_NOMEM, "request: out of memory");
    }
    rest_query q = {desc, rt, obj, {0}, HODEI_OK};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, rest_query_one, &q);
    if (q.st != HODEI_OK) {
        *err = q.err;
        st = q.st;
        goto out;
    }
    for (size_t i = 0; i < n_params && st == HODEI_OK; i++)
        st = rest_set_field(desc, obj, params[i].name, params[i].value, err);
    const char *last_id = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (st == HODEI_OK && rt->resume_field && last_id && *last_id) {
        int64_t id;
        if (!hodei_parse_i64(last_id, 0, INT64_MAX - 1, &id)) {
            st = hodei_err_set(err, HODEI_ERR_INVALID, "Last-Event-ID: must be a sequence");
            goto out;
        }
        char next[24];
        snprintf(next, sizeof next, "%lld", (long long)id + 1);
        st = rest_set_field(desc, obj, rt->resume_field, next, err);
    }
    if (st == HODEI_OK)
        st = hodei_pbjson_decode(desc, obj, out, err);
out:
    json_decref(obj);
    return st;
}

/* ----------------------------------------------------------------- calls */

typedef struct {
    hodei_rpc_metadata md[1];
    size_t n_md;
    char peer[INET6_ADDRSTRLEN + 8];
} rest_caller;

/* Who calls: the API key header (as gRPC metadata) and the address. */
static void rest_caller_get(struct MHD_Connection *conn, rest_caller *c)
{
    c->n_md = 0;
    c->peer[0] = '\0';
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth)
        c->md[c->n_md++] = (hodei_rpc_metadata){"authorization", auth};
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, c->peer,
                  sizeof c->peer);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, c->peer,
                  sizeof c->peer);
}

static enum MHD_Result rest_unary(struct MHD_Connection *conn, const rest_route *rt,
                                  hodei_rpc_call *call)
{
    uint8_t *data = NULL, *d;
    size_t len = 0, l;
    hodei_grpc_code code = HODEI_GRPC_OK;
    char msg[REST_STATUS_MSG_MAX] = "";
    int64_t until = hodei_mono_ms() + REST_UNARY_WAIT_MS;
    for (;;) {
        int64_t left = until - hodei_mono_ms();
        hodei_status st =
            hodei_rpc_local_next(call, left > 0 ? left : 0, &d, &l, &code, msg, sizeof msg);
        if (st != HODEI_OK) {
            code = HODEI_GRPC_DEADLINE_EXCEEDED;
            snprintf(msg, sizeof msg, "no answer within %d s", REST_UNARY_WAIT_MS / 1000);
            break;
        }
        if (!d)
            break;
        free(data);
        data = d;
        len = l;
    }
    hodei_rpc_local_end(call);
    if (code != HODEI_GRPC_OK) {
        free(data);
        return rest_fail_grpc(conn, code, msg);
    }
    static const uint8_t none[1];
    ProtobufCMessage *resp = protobuf_c_message_unpack(rt->response, NULL, len, data ? data : none);
    free(data);
    char *text = resp ? hodei_pbjson_encode_text(resp) : NULL;
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
    if (!text)
        return rest_fail_grpc(conn, HODEI_GRPC_INTERNAL, "response: cannot encode");
    return rest_send(conn, MHD_HTTP_OK, "application/json", text, strlen(text));
}

/* ----------------------------------------------------------------- streams */

typedef struct {
    rest_server *rs;
    hodei_rpc_call *call;
    const rest_route *rt;
    hodei_grpc_code end_code; /* with done */
    char end_msg[REST_STATUS_MSG_MAX];
    hodei_buf out; /* the event being written */
    size_t out_pos;
    bool done; /* the end event is in out */
} rest_sse;

/* The event id of a message: a LogChunk's last line sequence (what a
 * reconnecting EventSource sends back as Last-Event-ID). */
static uint64_t rest_sse_id(const ProtobufCMessage *m)
{
    if (m->descriptor != &hodei__v1__log_chunk__descriptor)
        return 0;
    const Hodei__V1__LogChunk *c = (const Hodei__V1__LogChunk *)m;
    return c->n_lines ? c->lines[c->n_lines - 1]->sequence : 0;
}

/* The next event into s->out: a message, the end, or a keep-alive comment. */
static void rest_sse_next(rest_sse *s, int64_t wait_ms)
{
    uint8_t *data;
    size_t len;
    hodei_grpc_code code;
    char msg[REST_STATUS_MSG_MAX];
    hodei_buf_reset(&s->out);
    s->out_pos = 0;
    if (hodei_rpc_local_next(s->call, wait_ms, &data, &len, &code, msg, sizeof msg) != HODEI_OK) {
        hodei_buf_puts(&s->out, ": keep-alive\n\n");
        return;
    }
    if (!data) {
        s->end_code = code;
        hodei_strlcpy(s->end_msg, msg, sizeof s->end_msg);
        json_t *o = rest_error_json(code, msg);
        char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        hodei_buf_printf(&s->out, "event: end\ndata: %s\n\n", text ? text : "{}");
        free(text);
        s->done = true;
        return;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(s->rt->response, NULL, len, data);
    free(data);
    char *text = m ? hodei_pbjson_encode_text(m) : NULL;
    uint64_t id = m ? rest_sse_id(m) : 0;
    if (m)
        protobuf_c_message_free_unpacked(m, NULL);
    if (!text) {
        hodei_buf_puts(&s->out, "event: end\ndata: {\"code\":\"INTERNAL\",\"message\":\"response: "
                                "cannot encode\"}\n\n");
        s->done = true;
        return;
    }
    if (id)
        hodei_buf_printf(&s->out, "id: %llu\n", (unsigned long long)id);
    hodei_buf_puts(&s->out, "data: ");
    hodei_buf_puts(&s->out, text);
    hodei_buf_puts(&s->out, "\n\n");
    free(text);
    if (s->out.failed) {
        hodei_buf_reset(&s->out);
        hodei_buf_puts(&s->out, "event: end\ndata: {\"code\":\"RESOURCE_EXHAUSTED\",\"message\":"
                                "\"event is too large\"}\n\n");
        s->done = true;
    }
}

static ssize_t rest_sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    rest_sse *s = cls;
    int64_t quiet_ms = 0;
    while (s->out_pos >= s->out.len) {
        if (s->done || atomic_load(&s->rs->stopping))
            return MHD_CONTENT_READER_END_OF_STREAM;
        rest_sse_next(s, REST_SSE_WAKE_MS);
        if (s->out.len && s->out.data[0] == ':') { /* nothing yet */
            quiet_ms += REST_SSE_WAKE_MS;
            if (quiet_ms < REST_SSE_KEEPALIVE_MS)
                hodei_buf_reset(&s->out);
            else
                quiet_ms = 0;
        }
    }
    size_t n = s->out.len - s->out_pos;
    if (n > max)
        n = max;
    memcpy(buf, s->out.data + s->out_pos, n);
    s->out_pos += n;
    return (ssize_t)n;
}

static void rest_sse_free(void *cls)
{
    rest_sse *s = cls;
    hodei_rpc_local_end(s->call);
    hodei_buf_fini(&s->out);
    free(s);
}

/* A stream that fails at once (validation, not found) answers with an HTTP
 * error; otherwise text/event-stream, one event per message, then "end". */
static enum MHD_Result rest_stream(rest_server *rs, struct MHD_Connection *conn,
                                   const rest_route *rt, hodei_rpc_call *call)
{
    rest_sse *s = calloc(1, sizeof *s);
    if (!s) {
        hodei_rpc_local_end(call);
        return MHD_NO;
    }
    s->rs = rs;
    s->call = call;
    s->rt = rt;
    hodei_buf_init(&s->out, REST_SSE_EVENT_MAX);
    rest_sse_next(s, 0);
    if (s->done && s->end_code != HODEI_GRPC_OK) {
        /* the end came first: an error the caller gets as a plain answer */
        hodei_grpc_code code = s->end_code;
        char msg[REST_STATUS_MSG_MAX];
        hodei_strlcpy(msg, s->end_msg, sizeof msg);
        rest_sse_free(s);
        return rest_fail_grpc(conn, code, msg);
    }
    if (s->out.len && s->out.data[0] == ':')
        hodei_buf_reset(&s->out); /* no keep-alive before the first event */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, rest_sse_read, s, rest_sse_free);
    if (!resp) {
        rest_sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

/* ----------------------------------------------------------------- routing */

static enum MHD_Result rest_api(rest_server *rs, struct MHD_Connection *conn, const char *url,
                                const char *method, rest_req *r)
{
    rest_param params[REST_PARAMS_MAX];
    size_t n_params = 0;
    bool path_known;
    char msg[REST_STATUS_MSG_MAX];
    if (strcmp(url, "/v1/openapi.json") == 0 && strcmp(method, "GET") == 0)
        return rest_send_json(conn, MHD_HTTP_OK, rest_openapi()); /* public, as the dashboard */
    const rest_route *rt = rest_route_find(method, url, params, &n_params, &path_known);
    if (!rt) {
        snprintf(msg, sizeof msg, "%s %s: %s", method, url,
                 path_known ? "method not allowed on this resource" : "no such resource");
        return rest_fail(conn, path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND,
                         path_known ? HODEI_GRPC_UNIMPLEMENTED : HODEI_GRPC_NOT_FOUND, msg);
    }
    if (r->body.failed) {
        snprintf(msg, sizeof msg, "request body: larger than %d bytes", REST_BODY_MAX);
        return rest_fail(conn, MHD_HTTP_CONTENT_TOO_LARGE, HODEI_GRPC_RESOURCE_EXHAUSTED, msg);
    }
    const hodei_rpc_method *m = hodei_rpc_server_method(rs->e->server, rt->rpc);
    if (!m) {
        snprintf(msg, sizeof msg, "%s: not served by this edge", rt->rpc);
        return rest_fail_grpc(conn, HODEI_GRPC_UNIMPLEMENTED, msg);
    }
    HODEI_ASSERT(m->request == rt->request); /* the route table names the handler's request */
    ProtobufCMessage *req = NULL;
    hodei_err err = {0};
    rest_caller c;
    rest_caller_get(conn, &c);
    hodei_status st = rest_build_request(conn, rt, m->request, r, params, n_params, &req, &err);
    if (st != HODEI_OK) {
        /* who may call comes first, as over gRPC (the request is read after) */
        hodei_grpc_code denied = hodei_rpc_local_authorize(rs->e->server, rt->rpc, c.md, c.n_md,
                                                           c.peer, msg, sizeof msg);
        if (denied != HODEI_GRPC_OK)
            return rest_fail_grpc(conn, denied, msg);
        return rest_fail_grpc(conn, hodei_rpc_code_from_status(st), err.msg);
    }
    hodei_rpc_call *call = NULL;
    if (hodei_rpc_local_start(rs->e->server, rt->rpc, req, c.md, c.n_md, c.peer, &call, &err) !=
        HODEI_OK)
        return rest_fail_grpc(conn, HODEI_GRPC_RESOURCE_EXHAUSTED, err.msg);
    return rt->kind == REST_SSE ? rest_stream(rs, conn, rt, call) : rest_unary(conn, rt, call);
}

static enum MHD_Result rest_asset_send(struct MHD_Connection *conn, const char *url,
                                       const char *method)
{
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return rest_fail(conn, MHD_HTTP_METHOD_NOT_ALLOWED, HODEI_GRPC_UNIMPLEMENTED,
                         "the dashboard takes GET only");
    const rest_asset *a = rest_asset_find(url);
    if (!a)
        return rest_fail(conn, MHD_HTTP_NOT_FOUND, HODEI_GRPC_NOT_FOUND, "no such page");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(head ? 0 : a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result rest_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    (void)version;
    rest_server *rs = cls;
    rest_req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        hodei_buf_init(&r->body, REST_BODY_MAX);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_data_size) {
        hodei_buf_append(&r->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/v1") == 0 || strncmp(url, "/v1/", 4) == 0)
        return rest_api(rs, conn, url, method, r);
    return rest_asset_send(conn, url, method);
}

static void rest_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    rest_req *r = *con_cls;
    if (!r)
        return;
    hodei_buf_fini(&r->body);
    free(r);
    *con_cls = NULL;
}

/* ----------------------------------------------------------------- start */

static int rest_listen(const char *addr, hodei_err *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || (size_t)(colon - addr) >= sizeof host || colon == addr) {
        hodei_err_set(err, HODEI_ERR_INVALID,
                      "http.listen: '%s' is not address:port (e.g. 127.0.0.1:8080)", addr);
        return -1;
    }
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']')
        h++, hl -= 2;
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai) {
        hodei_err_set(err, HODEI_ERR_INVALID,
                      "http.listen: '%s' is not a numeric address:port (e.g. 127.0.0.1:8080)",
                      addr);
        return -1;
    }
    int one = 1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 128) != 0) {
        hodei_err_set(err, HODEI_ERR_IO, "http.listen %s: cannot listen: %s", addr,
                      strerror(errno));
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int rest_bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

hodei_status rest_start(edge *e, const char *addr, rest_server **out, hodei_err *err)
{
    rest_server *rs = calloc(1, sizeof *rs);
    if (!rs)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "http: out of memory");
    int fd = rest_listen(addr, err);
    if (fd < 0) {
        free(rs);
        return err->code;
    }
    rs->e = e;
    rs->port = rest_bound_port(fd);
    unsigned int flags =
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (strchr(addr, '['))
        flags |= MHD_USE_IPv6;
    rs->mhd = MHD_start_daemon(flags, 0, NULL, NULL, rest_answer, rs, MHD_OPTION_LISTEN_SOCKET, fd,
                               MHD_OPTION_CONNECTION_LIMIT, (unsigned int)REST_CONN_MAX,
                               MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)REST_CONN_TIMEOUT_S,
                               MHD_OPTION_NOTIFY_COMPLETED, rest_completed, rs, MHD_OPTION_END);
    if (!rs->mhd) {
        close(fd);
        free(rs);
        return hodei_err_set(err, HODEI_ERR_IO, "http.listen %s: the HTTP server did not start",
                             addr);
    }
    HLOG_INFO("REST API and dashboard on http://%s (port %d)", addr, rs->port);
    *out = rs;
    return HODEI_OK;
}

int rest_port(const rest_server *rs)
{
    return rs->port;
}

void rest_stop(rest_server *rs)
{
    if (!rs)
        return;
    atomic_store(&rs->stopping, true);
    MHD_stop_daemon(rs->mhd);
    free(rs);
}
