/* The REST door described as OpenAPI 3.0, generated from what the door
 * itself runs on: the route table (rest_routes.c) and the protobuf-c
 * descriptors of each route's request and response (services.proto's
 * messages). A route's {fields} are path parameters; a GET's other
 * top-level fields are query parameters; a POST/PUT's request message is
 * its JSON body; the answer is the response message (a stream's: one
 * Server-Sent Event per message). Schemas follow the proto3 JSON mapping
 * libs/pbjson speaks: lowerCamelCase names, 64-bit integers as strings,
 * enums by name, bytes as base64, maps as objects. Nothing here is written
 * by hand per resource: a route or field added to the protos or the table
 * is in the next build's document (hodei-openapi, and GET /v1/openapi.json). */
#include <stdio.h>
#include <string.h>

#include "hodei/pbjson.h"
#include "rest_int.h"

#define OPENAPI_SCHEMA_PREFIX "#/components/schemas/"

/* "hodei.v1.ListJobsRequest" -> "ListJobsRequest" (one package). */
static const char *schema_name(const ProtobufCMessageDescriptor *d)
{
    const char *dot = strrchr(d->name, '.');
    return dot ? dot + 1 : d->name;
}

static json_t *schema_ref(const ProtobufCMessageDescriptor *d)
{
    char ref[256];
    snprintf(ref, sizeof ref, OPENAPI_SCHEMA_PREFIX "%s", schema_name(d));
    return json_pack("{s:s}", "$ref", ref);
}

static json_t *enum_schema(const ProtobufCEnumDescriptor *e)
{
    json_t *names = json_array();
    for (unsigned i = 0; i < e->n_values; i++)
        json_array_append_new(names, json_string(e->values[i].name));
    return json_pack("{s:s,s:o}", "type", "string", "enum", names);
}

static void schema_add(json_t *schemas, const ProtobufCMessageDescriptor *d);

/* One value of field f (not the repeated or map wrapper). */
static json_t *value_schema(json_t *schemas, const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_pack("{s:s,s:s}", "type", "integer", "format", "int32");
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_pack("{s:s,s:s,s:i}", "type", "integer", "format", "int32", "minimum", 0);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return json_pack("{s:s,s:s,s:s}", "type", "string", "format", "int64", "description",
                         "a 64-bit integer: a decimal string (a number is accepted on input)");
    case PROTOBUF_C_TYPE_FLOAT:
        return json_pack("{s:s,s:s}", "type", "number", "format", "float");
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_pack("{s:s,s:s}", "type", "number", "format", "double");
    case PROTOBUF_C_TYPE_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case PROTOBUF_C_TYPE_STRING:
        return json_pack("{s:s}", "type", "string");
    case PROTOBUF_C_TYPE_BYTES:
        return json_pack("{s:s,s:s}", "type", "string", "format", "byte");
    case PROTOBUF_C_TYPE_ENUM:
        return enum_schema(f->descriptor);
    case PROTOBUF_C_TYPE_MESSAGE:
        schema_add(schemas, f->descriptor);
        return schema_ref(f->descriptor);
    }
    return json_object();
}

static json_t *field_schema(json_t *schemas, const ProtobufCMessageDescriptor *parent,
                            const ProtobufCFieldDescriptor *f)
{
    if (hodei_pbjson_is_map(parent, f)) {
        const ProtobufCMessageDescriptor *entry = f->descriptor;
        const ProtobufCFieldDescriptor *value = protobuf_c_message_descriptor_get_field(entry, 2);
        return json_pack("{s:s,s:o}", "type", "object", "additionalProperties",
                         value ? value_schema(schemas, value) : json_object());
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return json_pack("{s:s,s:o}", "type", "array", "items", value_schema(schemas, f));
    return value_schema(schemas, f);
}

/* Adds d (and what it holds) to components.schemas, once. */
static void schema_add(json_t *schemas, const ProtobufCMessageDescriptor *d)
{
    if (json_object_get(schemas, schema_name(d)))
        return;
    json_t *props = json_object();
    json_t *s = json_pack("{s:s,s:o,s:b}", "type", "object", "properties", props,
                          "additionalProperties", 0);
    json_object_set_new(schemas, schema_name(d), s); /* before the fields: recursion */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        char name[HODEI_PBJSON_NAME_MAX];
        hodei_pbjson_json_name(f->name, name, sizeof name);
        json_t *fs = field_schema(schemas, d, f);
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            json_object_set_new(fs, "x-oneof", json_true());
        json_object_set_new(props, name, fs);
    }
}

/* The {names} of a route's path, as path parameters. */
static void path_params(json_t *params, json_t *schemas, const rest_route *r, bool *in_path,
                        size_t n_fields)
{
    const ProtobufCMessageDescriptor *req = r->request;
    for (const char *p = strchr(r->pattern, '{'); p; p = strchr(p + 1, '{')) {
        const char *close = strchr(p, '}');
        char field[64];
        size_t len = (size_t)(close - p - 1);
        if (!close || len >= sizeof field)
            break;
        memcpy(field, p + 1, len);
        field[len] = '\0';
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(req, field);
        size_t idx = f ? (size_t)(f - req->fields) : n_fields;
        if (idx < n_fields)
            in_path[idx] = true;
        json_array_append_new(
            params,
            json_pack("{s:s,s:s,s:b,s:o}", "name", field, "in", "path", "required", 1, "schema",
                      f ? field_schema(schemas, req, f) : json_pack("{s:s}", "type", "string")));
    }
}

/* A GET's other fields, as query parameters (by proto name; the json name
 * is accepted too). A message field is not a parameter: its own fields
 * are, as "field.sub". */
static void query_params(json_t *params, json_t *schemas, const rest_route *r, const bool *in_path)
{
    const ProtobufCMessageDescriptor *req = r->request;
    for (unsigned i = 0; i < req->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &req->fields[i];
        if (in_path[i])
            continue;
        json_t *p = json_pack("{s:s,s:s,s:o}", "name", f->name, "in", "query", "schema",
                              field_schema(schemas, req, f));
        if (hodei_pbjson_is_map(req, f)) {
            json_object_set_new(p, "description",
                                json_string("key=value; repeat the parameter for more"));
            json_object_set_new(p, "style", json_string("form"));
            json_object_set_new(p, "explode", json_true());
            json_object_set_new(
                p, "schema",
                json_pack("{s:s,s:{s:s}}", "type", "array", "items", "type", "string"));
        }
        const char *alias = rest_query_alias_of(r, f->name);
        if (alias) {
            json_t *copy = json_deep_copy(p);
            json_object_set_new(copy, "name", json_string(alias));
            json_object_set_new(copy, "description",
                                json_sprintf("the same as %s (one value per occurrence)", f->name));
            json_array_append_new(params, copy);
        }
        json_array_append_new(params, p);
    }
}

static json_t *error_response(const char *what)
{
    return json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", what, "content", "application/json",
                     "schema", "$ref", OPENAPI_SCHEMA_PREFIX "Error");
}

static json_t *operation(json_t *schemas, const rest_route *r)
{
    const char *rpc = strrchr(r->rpc, '/') + 1;
    char service[96];
    const char *svc = strstr(r->rpc, "hodei.v1.");
    size_t svc_len = (size_t)(strrchr(r->rpc, '/') - (svc ? svc + 9 : r->rpc));
    snprintf(service, sizeof service, "%.*s", (int)svc_len, svc ? svc + 9 : r->rpc);
    json_t *params = json_array();
    bool in_path[256] = {false};
    size_t n = r->request->n_fields < 256 ? r->request->n_fields : 256;
    path_params(params, schemas, r, in_path, n);
    if (!r->body)
        query_params(params, schemas, r, in_path);
    if (r->kind == REST_SSE && r->resume_field)
        json_array_append_new(params, json_pack("{s:s,s:s,s:s,s:{s:s}}", "name", "Last-Event-ID",
                                                "in", "header", "description",
                                                "resume after this event id (a line's sequence)",
                                                "schema", "type", "string"));
    schema_add(schemas, r->request);
    schema_add(schemas, r->response);
    json_t *ok;
    if (r->kind == REST_SSE)
        ok = json_pack("{s:s,s:{s:{s:{s:s,s:s}}}}", "description",
                       "Server-Sent Events: one `data:` event per message (the schema), then "
                       "`event: end` with {code, message}",
                       "content", "text/event-stream", "schema", "type", "string", "description",
                       schema_name(r->response));
    else
        ok = json_pack("{s:s,s:{s:{s:o}}}", "description", "OK", "content", "application/json",
                       "schema", schema_ref(r->response));
    json_object_set_new(ok, "x-message", json_string(schema_name(r->response)));
    char summary[160];
    snprintf(summary, sizeof summary, "%s.%s", service, rpc);
    json_t *op = json_pack(
        "{s:s,s:s,s:[s],s:o,s:{s:o,s:o,s:o,s:o,s:o}}", "operationId", rpc, "summary", summary,
        "tags", service, "parameters", params, "responses", "200", ok, "400",
        error_response("invalid argument or failed precondition; `field` names the field"), "401",
        error_response("no API key, or an unknown one"), "403",
        error_response("the key lacks the scope"), "default", error_response("an error"));
    if (r->body)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b,s:{s:{s:o}}}", "required", 1, "content",
                                      "application/json", "schema", schema_ref(r->request)));
    return op;
}

json_t *rest_openapi(void)
{
    size_t n;
    const rest_route *routes = rest_routes(&n);
    json_t *schemas = json_object();
    json_object_set_new(
        schemas, "Error",
        json_pack("{s:s,s:[s,s],s:{s:{s:s,s:s},s:{s:s},s:{s:s,s:s}}}", "type", "object", "required",
                  "code", "message", "properties", "code", "type", "string", "description",
                  "the gRPC status code's name (INVALID_ARGUMENT, NOT_FOUND, ...)", "message",
                  "type", "string", "field", "type", "string", "description",
                  "the request field the message names, when it names one"));
    json_t *paths = json_object();
    for (size_t i = 0; i < n; i++) {
        const rest_route *r = &routes[i];
        json_t *item = json_object_get(paths, r->pattern);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, r->pattern, item);
        }
        char method[8];
        size_t k = 0;
        for (; r->method[k] && k < sizeof method - 1; k++)
            method[k] = (char)(r->method[k] | 0x20);
        method[k] = '\0';
        json_object_set_new(item, method, operation(schemas, r));
    }
    return json_pack("{s:s,s:{s:s,s:s,s:s},s:o,s:{s:o,s:{s:{s:s,s:s,s:s}}},s:[{s:[]}]}", "openapi",
                     "3.0.3", "info", "title", "Hodei Jobs REST API", "version", "v1",
                     "description",
                     "The client RPCs of proto/hodei/v1/services.proto over HTTP/JSON on the edge "
                     "(http.listen). Generated from the route table and the protobuf descriptors.",
                     "paths", paths, "components", "schemas", schemas, "securitySchemes", "apiKey",
                     "type", "http", "scheme", "bearer", "description",
                     "an API key: Authorization: Bearer hodei_...", "security", "apiKey");
}
