/* Message -> JSON (hodei/pbjson.h). Walks the descriptor's fields in
 * declaration order; a field at its default is left out. Strings that are
 * not valid UTF-8 (never expected: every door validates) are written with
 * U+FFFD in place of the bad bytes rather than failing the response. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson_int.h"

static json_t *enc_message(const ProtobufCMessage *msg, int depth);

/* jansson refuses invalid UTF-8: replace each bad byte. */
static json_t *enc_string_repair(const char *s)
{
    size_t len = strlen(s), o = 0;
    char *fixed = malloc(len * 3 + 1);
    if (!fixed)
        return NULL;
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        json_t *probe = n && i + n <= len ? json_stringn(s + i, n) : NULL;
        if (probe) {
            json_decref(probe);
            memcpy(fixed + o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(fixed + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(fixed, o);
    free(fixed);
    return j;
}

static json_t *enc_string(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : enc_string_repair(s);
}

static json_t *enc_double(double v)
{
    if (isnan(v))
        return json_string("NaN");
    if (isinf(v))
        return json_string(v > 0 ? "Infinity" : "-Infinity");
    return json_real(v);
}

static json_t *enc_enum(const ProtobufCEnumDescriptor *d, int value)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, value);
    return ev ? json_string(ev->name) : json_integer(value);
}

static json_t *enc_i64_text(int64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    return json_string(text);
}

static json_t *enc_u64_text(uint64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    return json_string(text);
}

/* One value of field f at p (a member, or an element of a repeated array). */
static json_t *enc_value(const ProtobufCFieldDescriptor *f, const void *p, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return enc_i64_text(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return enc_u64_text(*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_FLOAT:
        return enc_double(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return enc_double(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM:
        return enc_enum(f->descriptor, *(const int *)p);
    case PROTOBUF_C_TYPE_STRING:
        return enc_string(*(char *const *)p);
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *text = pb_base64_encode(b->data, b->len);
        json_t *j = text ? json_string(text) : NULL;
        free(text);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)p;
        return m ? enc_message(m, depth + 1) : json_object();
    }
    }
    return NULL;
}

/* Whether a singular proto3 field holds its default (and is left out). */
static bool enc_is_default(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)p == NULL;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0 && !signbit(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0 && !signbit(*(const double *)p);
    default: {
        static const uint8_t zero[8];
        return memcmp(p, zero, pb_type_size(f->type)) == 0;
    }
    }
}

/* A map field: an object keyed by the entries' keys (as text). */
static json_t *enc_map(const ProtobufCFieldDescriptor *f, const void *arr, size_t n, int depth)
{
    json_t *obj = json_object();
    const ProtobufCFieldDescriptor *kf =
        &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[0];
    const ProtobufCFieldDescriptor *vf =
        &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1];
    for (size_t i = 0; obj && i < n; i++) {
        const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[i];
        json_t *k = enc_value(kf, PB_CMEMBER(e, kf->offset, void), depth);
        json_t *v = enc_value(vf, PB_CMEMBER(e, vf->offset, void), depth);
        char text[32];
        const char *key = NULL;
        if (k && json_is_string(k))
            key = json_string_value(k);
        else if (k && json_is_integer(k) &&
                 snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT, json_integer_value(k)) > 0)
            key = text;
        else if (k && json_is_boolean(k))
            key = json_is_true(k) ? "true" : "false";
        if (!key || !v || json_object_set_new(obj, key, v) != 0) {
            json_decref(k);
            json_decref(obj);
            return NULL;
        }
        json_decref(k);
    }
    return obj;
}

static json_t *enc_repeated(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                            int depth)
{
    size_t n = *PB_CMEMBER(msg, f->quantifier_offset, size_t);
    const void *arr = *PB_CMEMBER(msg, f->offset, void *);
    if (hodei_pbjson_is_map(msg->descriptor, f))
        return enc_map(f, arr, n, depth);
    json_t *a = json_array();
    size_t size = pb_type_size(f->type);
    for (size_t i = 0; a && i < n; i++) {
        json_t *v = enc_value(f, (const char *)arr + i * size, depth);
        if (!v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

static json_t *enc_message(const ProtobufCMessage *msg, int depth)
{
    if (depth > HODEI_PBJSON_DEPTH_MAX)
        return NULL;
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    json_t *obj = json_object();
    for (unsigned i = 0; obj && i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = PB_CMEMBER(msg, f->offset, void);
        json_t *v = NULL;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (*PB_CMEMBER(msg, f->quantifier_offset, size_t) == 0)
                continue;
            v = enc_repeated(msg, f, depth);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (!pb_oneof_is(msg, f))
                continue;
            v = enc_value(f, p, depth);
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
                   f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*PB_CMEMBER(msg, f->quantifier_offset, protobuf_c_boolean))
                continue;
            v = enc_value(f, p, depth);
        } else {
            if (enc_is_default(f, p))
                continue;
            v = enc_value(f, p, depth);
        }
        char name[HODEI_PBJSON_NAME_MAX];
        hodei_pbjson_json_name(f->name, name, sizeof name);
        if (!v || json_object_set_new(obj, name, v) != 0) {
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

json_t *hodei_pbjson_encode(const ProtobufCMessage *msg)
{
    return enc_message(msg, 0);
}

char *hodei_pbjson_encode_text(const ProtobufCMessage *msg)
{
    json_t *j = enc_message(msg, 0);
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    return text;
}
