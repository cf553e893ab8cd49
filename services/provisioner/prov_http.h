/* HTTP for the provider drivers that speak to an API (Kubernetes over
 * HTTPS, Firecracker over a unix socket), through libcurl. One request at a
 * time per handle; a driver keeps a handle per thread that calls it, or
 * makes one per call (curl_easy_init is cheap next to a network round trip).
 *
 * Bodies are JSON text; the response body is kept up to a named maximum,
 * or handed chunk by chunk to a callback for streams (a Kubernetes watch).
 * Credentials (a bearer token, a client key) are passed in and never logged. */
#ifndef HODEI_PROVISIONER_PROV_HTTP_H
#define HODEI_PROVISIONER_PROV_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/buf.h"
#include "hodei/status.h"

#define PROV_HTTP_BODY_MAX (8u << 20) /* a response body kept, at most */
#define PROV_HTTP_URL_MAX 2048

/* Where and how to connect. Every pointer is borrowed; NULL/"" = unset. */
typedef struct {
    const char *base_url;    /* "https://10.0.0.1:6443", or "http://localhost" with unix_socket */
    const char *unix_socket; /* a unix socket path (Firecracker's API socket) */
    const char *ca_file;     /* PEM file of the CA to trust */
    const char *ca_pem;      /* PEM text of the CA to trust */
    const char *cert_file, *key_file; /* client certificate and key, PEM files */
    const char *cert_pem, *key_pem;   /* ... or their PEM text */
    const char *bearer_token;         /* SECRET: "Authorization: Bearer ..." */
    bool insecure;                    /* skip verifying the server's certificate */
    int64_t timeout_ms;               /* whole request; 0 = none (streams) */
    int64_t connect_timeout_ms;
    const volatile int *cancel; /* non-zero ends the request (checked about once a second) */
} prov_http_target;

/* Called with each chunk of a streamed body; return false to stop. */
typedef bool (*prov_http_chunk_fn)(const char *data, size_t len, void *ctx);

typedef struct {
    long status;           /* HTTP status; 0 when no response came */
    hodei_buf body;        /* the body (unless streamed) */
    int64_t retry_after_s; /* Retry-After in seconds; -1 when absent */
    char content_type[128];
} prov_http_resp;

void prov_http_resp_init(prov_http_resp *r);
void prov_http_resp_fini(prov_http_resp *r);

/* One request: method, path (with its query) appended to base_url, an
 * optional JSON body with its content type ("" = application/json). With
 * on_chunk, the body is streamed to it instead of kept. A transport
 * failure (no connection, TLS, time-out) is UNAVAILABLE (TIMEOUT for a
 * time-out) with curl's reason; any HTTP status is HODEI_OK, read
 * resp->status. */
hodei_status prov_http_do(const prov_http_target *t, const char *method, const char *path,
                          const char *body, const char *content_type, prov_http_resp *resp,
                          prov_http_chunk_fn on_chunk, void *chunk_ctx, hodei_err *err);

/* curl_global_init once per process (thread-safe; idempotent). */
void prov_http_global_init(void);

#endif
