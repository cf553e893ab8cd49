/* Health endpoints (health.listen): a small HTTP server, libmicrohttpd on
 * its own thread, answering
 *   GET /healthz  200 "ok" while the process answers at all (liveness)
 *   GET /readyz   200 "ready" once run() started, while every reported
 *                 dependency is up and no stop was requested; 503
 *                 otherwise; the verdict, then one line per dependency
 *   GET /metrics  Prometheus text format (daemon_metrics.c)
 * HEAD answers the same without a body; other methods 405, other paths
 * 404. The listening socket is ours (socket/bind/listen), so a busy port
 * or a bad address is reported with its errno before anything starts. */
#include "daemon_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hodei/buf.h"
#include "hodei/log.h"
#include "hodei/util.h"

#define HEALTH_BACKLOG 16
#define HEALTH_CONN_LIMIT 32
#define HEALTH_CONN_TIMEOUT_S 5
#define HEALTH_BODY_MAX (DAEMON_DEPS_MAX * (DAEMON_DEP_NAME_MAX + DAEMON_REASON_MAX + 16) + 64)
#define HEALTH_METRICS_MAX (2 * 1024 * 1024)

/* "a.b.c.d:port" or "[v6]:port"; port 0 = any free port. */
static bool health_addr_parse(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon, *port_text;
    int64_t port;

    memset(ss, 0, sizeof *ss);
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (!end || end[1] != ':' || (size_t)(end - text - 1) >= sizeof host)
            return false;
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = '\0';
        port_text = end + 2;
    } else {
        colon = strrchr(text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host)
            return false;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }
    if (!hodei_parse_i64(port_text, 0, 65535, &port))
        return false;
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (text[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof *v4;
        return true;
    }
    if (text[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof *v6;
        return true;
    }
    return false;
}

int daemon_health_check_config(const hodei_daemon *d)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *listen_at = d->common.health_listen;
    if (!listen_at || !*listen_at || health_addr_parse(listen_at, &ss, &len))
        return DAEMON_EXIT_OK;
    fprintf(stderr,
            "%s: configuration error: health.listen: '%s' is not an address:port"
            " (e.g. 127.0.0.1:9090 or [::1]:9090; empty = off)\n",
            d->svc->name, listen_at);
    return DAEMON_EXIT_USAGE;
}

/* Appends one line to out[len] at *n, never past its end. */
static void health_line(char *out, size_t len, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void health_line(char *out, size_t len, size_t *n, const char *fmt, ...)
{
    va_list ap;
    if (*n >= len)
        return;
    va_start(ap, fmt);
    int w = vsnprintf(out + *n, len - *n, fmt, ap);
    va_end(ap);
    *n = w < 0 ? len : *n + (size_t)w;
}

/* Under health_mu. */
static bool health_ready(const hodei_daemon *d)
{
    bool ready = d->running && !hodei_daemon_stopping(d);
    for (size_t i = 0; i < d->n_deps; i++)
        ready = ready && d->deps[i].up;
    return ready;
}

/* The body of /readyz: its first line the verdict, then one line per
 * reported dependency. Returns whether it is ready. Under health_mu. */
static bool health_ready_text(const hodei_daemon *d, char *out, size_t len)
{
    bool stopping = hodei_daemon_stopping(d);
    bool ready = health_ready(d);
    const char *verdict;
    size_t n = 0;
    verdict = ready ? "ready" : stopping ? "stopping" : !d->running ? "starting" : "not ready";
    health_line(out, len, &n, "%s\n", verdict);
    for (size_t i = 0; i < d->n_deps; i++) {
        const daemon_dep *dep = &d->deps[i];
        if (dep->up)
            health_line(out, len, &n, "%s: up\n", dep->name);
        else
            health_line(out, len, &n, "%s: down (%s)\n", dep->name,
                        dep->why[0] ? dep->why : "no reason given");
    }
    return ready;
}

static enum MHD_Result health_answer(void *cls, struct MHD_Connection *conn, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **con_cls)
{
    hodei_daemon *d = cls;
    char body[HEALTH_BODY_MAX];
    const char *text = body, *type = "text/plain; charset=utf-8";
    hodei_buf metrics;
    unsigned int code;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    (void)version;
    (void)upload_data;
    (void)con_cls;

    if (*upload_data_size != 0) { /* a body we do not want: drop it */
        *upload_data_size = 0;
        return MHD_YES;
    }
    hodei_buf_init(&metrics, HEALTH_METRICS_MAX);
    if (strcmp(url, "/healthz") != 0 && strcmp(url, "/readyz") != 0 &&
        strcmp(url, "/metrics") != 0) {
        code = MHD_HTTP_NOT_FOUND;
        snprintf(body, sizeof body, "not found: try /healthz, /readyz or /metrics\n");
    } else if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        snprintf(body, sizeof body, "method not allowed: GET or HEAD\n");
    } else if (strcmp(url, "/healthz") == 0) {
        code = MHD_HTTP_OK;
        snprintf(body, sizeof body, "ok\n");
    } else if (strcmp(url, "/metrics") == 0) {
        pthread_mutex_lock(&d->health_mu);
        daemon_metrics_text(d, health_ready(d), &metrics);
        pthread_mutex_unlock(&d->health_mu);
        code = metrics.failed ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_OK;
        text = metrics.failed ? "metrics text too large\n" : metrics.data;
        type = "text/plain; version=0.0.4; charset=utf-8";
    } else {
        pthread_mutex_lock(&d->health_mu);
        bool ready = health_ready_text(d, body, sizeof body);
        pthread_mutex_unlock(&d->health_mu);
        code = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        head ? 0 : strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    hodei_buf_fini(&metrics);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result r = MHD_queue_response(conn, code, resp);
    MHD_destroy_response(resp);
    return r;
}

int daemon_health_start(hodei_daemon *d)
{
    struct sockaddr_storage ss;
    socklen_t len;
    const char *listen_at = d->common.health_listen;
    int one = 1;

    if (!listen_at || !*listen_at)
        return DAEMON_EXIT_OK;
    if (!health_addr_parse(listen_at, &ss, &len))
        return daemon_health_check_config(d);
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, HEALTH_BACKLOG) != 0) {
        fprintf(stderr, "%s: health.listen %s: cannot listen: %s\n", d->svc->name, listen_at,
                strerror(errno));
        if (fd >= 0)
            close(fd);
        return DAEMON_EXIT_FAILURE;
    }
    len = sizeof ss;
    int port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    d->health = MHD_start_daemon(flags, 0, NULL, NULL, health_answer, d, MHD_OPTION_LISTEN_SOCKET,
                                 fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HEALTH_CONN_LIMIT,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HEALTH_CONN_TIMEOUT_S,
                                 MHD_OPTION_END);
    if (!d->health) {
        fprintf(stderr, "%s: health.listen %s: the HTTP server did not start\n", d->svc->name,
                listen_at);
        close(fd);
        return DAEMON_EXIT_FAILURE;
    }
    HLOG_INFO("health endpoints on %s (port %d): /healthz /readyz", listen_at, port);
    return DAEMON_EXIT_OK;
}

void daemon_health_stop(hodei_daemon *d)
{
    if (!d->health)
        return;
    /* MHD closes the listening socket it was handed. */
    MHD_stop_daemon(d->health);
    d->health = NULL;
}

void daemon_health_running(hodei_daemon *d, bool running)
{
    pthread_mutex_lock(&d->health_mu);
    d->running = running;
    pthread_mutex_unlock(&d->health_mu);
}

void hodei_daemon_report(hodei_daemon *d, const char *dependency, bool up, const char *why)
{
    pthread_mutex_lock(&d->health_mu);
    daemon_dep *dep = NULL;
    for (size_t i = 0; i < d->n_deps && !dep; i++)
        if (strcmp(d->deps[i].name, dependency) == 0)
            dep = &d->deps[i];
    if (!dep && d->n_deps < DAEMON_DEPS_MAX) {
        dep = &d->deps[d->n_deps++];
        hodei_strlcpy(dep->name, dependency, sizeof dep->name);
    }
    if (dep) {
        dep->up = up;
        hodei_strlcpy(dep->why, up || !why ? "" : why, sizeof dep->why);
        dep->why[strcspn(dep->why, "\r\n")] = '\0'; /* one line per dependency */
    }
    pthread_mutex_unlock(&d->health_mu);
}
