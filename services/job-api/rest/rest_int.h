/* Private to rest/: the route table and the embedded dashboard. */
#ifndef HODEI_JOB_API_REST_INT_H
#define HODEI_JOB_API_REST_INT_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#define REST_PARAMS_MAX 2      /* {names} in one route's path */
#define REST_PARAM_LEN_MAX 256 /* one path segment's value */

typedef enum {
    REST_UNARY = 0, /* JSON in, JSON out */
    REST_SSE,       /* JSON (query) in, text/event-stream out */
} rest_kind;

typedef struct {
    const char *method;  /* "GET", "POST", "PUT", "DELETE" */
    const char *pattern; /* "/v1/jobs/{job_id}:cancel": {x} = a request field */
    const char *rpc;     /* gRPC method path */
    const ProtobufCMessageDescriptor *request; /* the handler's (rest_server.c checks) */
    const ProtobufCMessageDescriptor *response;
    rest_kind kind;
    bool body;                /* the request message comes from the JSON body (else the query) */
    const char *resume_field; /* SSE: Last-Event-ID + 1 goes here ("from_sequence") */
} rest_route;

typedef struct {
    char name[64];
    char value[REST_PARAM_LEN_MAX];
} rest_param;

/* The route for method and path; params filled from the path. *path_known
 * says whether some route has this path with another method (405). */
const rest_route *rest_route_find(const char *method, const char *path, rest_param *params,
                                  size_t *n_params, bool *path_known);
/* All routes (for the index at GET /v1). */
const rest_route *rest_routes(size_t *n);

/* Query aliases: "state" for ListJobsRequest.states, "label" for labels;
 * other names are returned as they are. */
const char *rest_query_alias(const rest_route *r, const char *name);
/* The alias of a request field, or NULL (for the OpenAPI document). */
const char *rest_query_alias_of(const rest_route *r, const char *field);

/* The REST door as an OpenAPI 3.0 document (rest_openapi.c), from the
 * route table and the messages' descriptors; a new reference, NULL when
 * out of memory. */
json_t *rest_openapi(void);

/* The dashboard's files, embedded at build time (rest_assets.c, generated). */
typedef struct {
    const char *path; /* "/ui/app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} rest_asset;

const rest_asset *rest_asset_find(const char *path);

#endif
