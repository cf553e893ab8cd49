/* The proto3 JSON mapping for protobuf-c messages, driven by their
 * descriptors (no code per message), with jansson for the JSON itself.
 *
 * As protobuf's own JSON printers and parsers do:
 * - field names are emitted as their lowerCamelCase json name
 *   ("timeoutMs"); on input both that and the proto name ("timeout_ms")
 *   are accepted;
 * - fields at their default value (0, "", false, empty, unset message) are
 *   left out; a oneof member that is set is always written;
 * - 64-bit integers are strings ("1700000000"); on input any integer field
 *   takes a number or a decimal string;
 * - enums are their value names ("JOB_STATE_PENDING"); on input a name or
 *   a number;
 * - bytes are base64 (standard alphabet, padded); on input the standard or
 *   the URL-safe alphabet, padded or not;
 * - maps are JSON objects; repeated fields arrays;
 * - float and double: numbers, and "NaN", "Infinity", "-Infinity";
 * - null is the field's default; an unknown field is an error.
 *
 * Errors name the field with its proto path ("spec.timeout_ms: must be an
 * integer", "spec.args[2]: must be a string"), so a REST client reads the
 * same kind of message as the gRPC validation gives.
 *
 * Ownership: decode returns a message made as protobuf-c's unpack makes one
 * (free it with protobuf_c_message_free_unpacked(msg, NULL)); encode returns
 * a new jansson reference (json_decref) or malloc'd text (free). */
#ifndef HODEI_PBJSON_H
#define HODEI_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "hodei/status.h"

#define HODEI_PBJSON_DEPTH_MAX 32 /* nested messages, both ways */
#define HODEI_PBJSON_NAME_MAX 128 /* a field's json name */

/* msg as a JSON object; NULL only when out of memory. */
json_t *hodei_pbjson_encode(const ProtobufCMessage *msg);
/* msg as compact JSON text (malloc'd, NUL-terminated); NULL when out of memory. */
char *hodei_pbjson_encode_text(const ProtobufCMessage *msg);

/* json (an object) as a new message of type desc. HODEI_ERR_INVALID names
 * the field that is wrong; HODEI_ERR_NOMEM. */
hodei_status hodei_pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                 ProtobufCMessage **out, hodei_err *err);
/* The same from text; a text that is not JSON is HODEI_ERR_INVALID naming
 * where it fails ("request body: not JSON: ... (line 1, column 7)"). */
hodei_status hodei_pbjson_decode_text(const ProtobufCMessageDescriptor *desc, const char *text,
                                      size_t len, ProtobufCMessage **out, hodei_err *err);

/* A field of desc by proto name or json name; NULL when none. */
const ProtobufCFieldDescriptor *hodei_pbjson_field(const ProtobufCMessageDescriptor *desc,
                                                   const char *name);
/* The json name of a proto field name ("timeout_ms" -> "timeoutMs"), as
 * protoc derives it. Truncated to cap - 1 bytes. */
void hodei_pbjson_json_name(const char *proto_name, char *out, size_t cap);
/* True when f is a map field (a repeated XxxEntry message of key and value). */
bool hodei_pbjson_is_map(const ProtobufCMessageDescriptor *parent,
                         const ProtobufCFieldDescriptor *f);

/* Query parameters onto a JSON object that hodei_pbjson_decode will read:
 * name is a field path of desc ("page_size", "spec.name", json names too);
 * text becomes the JSON value the field's type takes (a repeated field
 * collects every occurrence; "true"/"false" for booleans; numbers and
 * enum names stay text, which the decoder accepts). A map field takes
 * "key=value" per occurrence. HODEI_ERR_INVALID names an unknown field. */
hodei_status hodei_pbjson_query_add(const ProtobufCMessageDescriptor *desc, json_t *obj,
                                    const char *name, const char *text, hodei_err *err);

#endif
