/* A small client of the Docker Engine API (the provisioner's Docker
 * driver): one HTTP request at a time per call, with libcurl, over the
 * engine's unix socket (unix:///var/run/docker.sock) or TCP with TLS
 * (tcp://host:2376 plus CA, certificate and key files). The API version is
 * negotiated once through GET /version: the engine's own, capped at
 * DOCKER_API_VERSION_MAX, refused below DOCKER_API_VERSION_MIN; every path
 * is then sent as /v<version><path>. Thread-safe: each call uses its own
 * curl handle. */
#ifndef HODEI_PROVISIONER_DOCKER_API_H
#define HODEI_PROVISIONER_DOCKER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/buf.h"
#include "hodei/status.h"

#define DOCKER_API_VERSION_MIN "1.40" /* DeviceRequests (GPUs) */
#define DOCKER_API_VERSION_MAX "1.41"
#define DOCKER_API_HOST_MAX 512
#define DOCKER_API_PATH_MAX 1024
#define DOCKER_API_VERSION_TEXT_MAX 16
#define DOCKER_API_RESPONSE_MAX (8u << 20) /* bytes of one response body kept */

typedef struct docker_api docker_api;

typedef struct {
    const char *host;     /* unix:///path or tcp://host:port */
    const char *tls_ca;   /* tcp: CA file ("" = no TLS) */
    const char *tls_cert; /* tcp: client certificate ("" = none) */
    const char *tls_key;  /* tcp: client key */
} docker_api_opts;

/* Checks the options (no I/O). */
hodei_status docker_api_create(const docker_api_opts *o, docker_api **out, hodei_err *err);
void docker_api_destroy(docker_api *a); /* NULL is a no-op */

/* One request. path starts with '/' (no version); body is JSON or NULL.
 * *status_out gets the HTTP status; the body goes into resp (its max bounds
 * it). Transport failures are HODEI_ERR_UNAVAILABLE naming the host
 * (HODEI_ERR_TIMEOUT past timeout_ms). */
typedef struct {
    const char *method;
    const char *path;
    const char *body;
    int64_t timeout_ms;
} docker_api_req;

hodei_status docker_api_call(docker_api *a, const docker_api_req *req, long *status_out,
                             hodei_buf *resp, hodei_err *err);

/* The negotiated API version ("1.41"), negotiating on first use. */
hodei_status docker_api_version(docker_api *a, char out[DOCKER_API_VERSION_TEXT_MAX],
                                hodei_err *err);
/* The engine's own version text from the negotiation ("20.10.24"), or "". */
void docker_api_engine_version(docker_api *a, char *out, size_t out_len);

/* The engine's error text of a failed call ({"message": "..."}), or the
 * body itself, cut to fit out. */
void docker_api_message(const hodei_buf *resp, char *out, size_t out_len);

/* Container logs come multiplexed (stdout/stderr frames with an 8-byte
 * header: stream, 3 zero bytes, big-endian length). Appends the payloads
 * of raw (len bytes) to out. */
void docker_api_demux(const char *raw, size_t len, hodei_buf *out);

#endif
