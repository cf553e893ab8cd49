/* JSON -> message (hodei/pbjson.h). The message is built in an arena with
 * protobuf-c's own initialisers, packed, and unpacked by protobuf-c into a
 * message of the usual kind, so what the caller frees is exactly what
 * protobuf_c_message_unpack would have made from the same request on the
 * wire. The path of the field being read is kept for error messages. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson_int.h"

#define DEC_PATH_MAX 256

typedef struct {
    pb_arena arena;
    hodei_err *err;
    char path[DEC_PATH_MAX];
    size_t path_len;
} dec_ctx;

static hodei_status dec_message(dec_ctx *c, const ProtobufCMessageDescriptor *desc, const json_t *j,
                                ProtobufCMessage **out, int depth);

static hodei_status dec_fail(dec_ctx *c, const char *what)
{
    return hodei_err_set(c->err, HODEI_ERR_INVALID, "%s: %s", c->path_len ? c->path : "request",
                         what);
}

static hodei_status dec_nomem(dec_ctx *c)
{
    return hodei_err_set(c->err, HODEI_ERR_NOMEM, "request: out of memory");
}

/* Appends printf(fmt, ...) to the path; returns the length to restore. */
static size_t dec_push(dec_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t dec_push(dec_ctx *c, const char *fmt, ...)
{
    size_t saved = c->path_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->path + c->path_len, sizeof c->path - c->path_len, fmt, ap);
    va_end(ap);
    if (n > 0)
        c->path_len =
            c->path_len + (size_t)n < sizeof c->path ? c->path_len + (size_t)n : sizeof c->path - 1;
    return saved;
}

/* A field's name (proto name) after a dot, or first. */
static size_t dec_push_field(dec_ctx *c, const char *name)
{
    return dec_push(c, "%s%.64s", c->path_len ? "." : "", name);
}

static void dec_pop(dec_ctx *c, size_t saved)
{
    c->path_len = saved;
    c->path[saved] = '\0';
}

/* ----------------------------------------------------------------- scalars */

/* An integer from a JSON integer, an integral real, or a decimal string. */
static hodei_status dec_integer(dec_ctx *c, const json_t *j, bool is_unsigned, int64_t *sv,
                                uint64_t *uv)
{
    if (json_is_integer(j)) {
        json_int_t v = json_integer_value(j);
        if (is_unsigned && v < 0)
            return dec_fail(c, "must not be negative");
        *sv = v;
        *uv = (uint64_t)v;
        return HODEI_OK;
    }
    if (json_is_real(j)) {
        double v = json_real_value(j);
        if (v != floor(v) || fabs(v) > 9007199254740992.0)
            return dec_fail(c, "must be an integer");
        if (is_unsigned && v < 0)
            return dec_fail(c, "must not be negative");
        *sv = (int64_t)v;
        *uv = (uint64_t)v;
        return HODEI_OK;
    }
    if (!json_is_string(j))
        return dec_fail(c, "must be an integer");
    const char *s = json_string_value(j);
    char *end = NULL;
    errno = 0;
    if (!*s || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) || (is_unsigned && s[0] == '-'))
        return dec_fail(c,
                        is_unsigned && s[0] == '-' ? "must not be negative" : "must be an integer");
    if (is_unsigned) {
        *uv = strtoull(s, &end, 10);
        *sv = (int64_t)*uv;
    } else {
        *sv = strtoll(s, &end, 10);
        *uv = (uint64_t)*sv;
    }
    if (errno == ERANGE)
        return dec_fail(c, "is out of range");
    if (*end)
        return dec_fail(c, "must be an integer");
    return HODEI_OK;
}

static hodei_status dec_double(dec_ctx *c, const json_t *j, double *out)
{
    if (json_is_number(j)) {
        *out = json_number_value(j);
        return HODEI_OK;
    }
    if (!json_is_string(j))
        return dec_fail(c, "must be a number");
    const char *s = json_string_value(j);
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
    } else if (strcmp(s, "Infinity") == 0) {
        *out = INFINITY;
    } else if (strcmp(s, "-Infinity") == 0) {
        *out = -INFINITY;
    } else {
        char *end = NULL;
        errno = 0;
        *out = strtod(s, &end);
        if (!*s || *end || errno == ERANGE || isnan(*out) || isinf(*out))
            return dec_fail(c, "must be a number");
    }
    return HODEI_OK;
}

static hodei_status dec_enum(dec_ctx *c, const ProtobufCEnumDescriptor *d, const json_t *j,
                             int *out)
{
    if (json_is_string(j)) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value_by_name(d, json_string_value(j));
        if (!ev) {
            char msg[HODEI_ERR_MSG_MAX];
            int n = snprintf(msg, sizeof msg, "'%.64s' is not a %s (one of", json_string_value(j),
                             d->short_name);
            for (unsigned i = 0; i < d->n_values && n > 0 && (size_t)n < sizeof msg; i++)
                n += snprintf(msg + n, sizeof msg - (size_t)n, "%s%s", i ? ", " : " ",
                              d->values[i].name);
            if (n > 0 && (size_t)n < sizeof msg)
                snprintf(msg + n, sizeof msg - (size_t)n, ")");
            return dec_fail(c, msg);
        }
        *out = ev->value;
        return HODEI_OK;
    }
    int64_t sv;
    uint64_t uv;
    if (!json_is_integer(j))
        return dec_fail(c, "must be an enum value name or number");
    hodei_status st = dec_integer(c, j, false, &sv, &uv);
    if (st != HODEI_OK)
        return st;
    if (sv < INT32_MIN || sv > INT32_MAX)
        return dec_fail(c, "is out of range");
    *out = (int)sv;
    return HODEI_OK;
}

static hodei_status dec_bytes(dec_ctx *c, const json_t *j, ProtobufCBinaryData *out)
{
    if (!json_is_string(j))
        return dec_fail(c, "must be a base64 string");
    size_t len = json_string_length(j);
    uint8_t *data = pb_arena_get(&c->arena, len * 3 / 4 + 3);
    if (!data)
        return dec_nomem(c);
    if (!pb_base64_decode(json_string_value(j), len, data, &out->len))
        return dec_fail(c, "must be base64");
    out->data = data;
    return HODEI_OK;
}

static hodei_status dec_string(dec_ctx *c, const json_t *j, char **out)
{
    if (!json_is_string(j))
        return dec_fail(c, "must be a string");
    size_t len = json_string_length(j);
    char *s = pb_arena_get(&c->arena, len + 1);
    if (!s)
        return dec_nomem(c);
    memcpy(s, json_string_value(j), len);
    *out = s;
    return HODEI_OK;
}

static hodei_status dec_int_field(dec_ctx *c, const ProtobufCFieldDescriptor *f, const json_t *j,
                                  void *p)
{
    int64_t sv = 0;
    uint64_t uv = 0;
    bool is_unsigned = f->type == PROTOBUF_C_TYPE_UINT32 || f->type == PROTOBUF_C_TYPE_FIXED32 ||
                       f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64;
    hodei_status st = dec_integer(c, j, is_unsigned, &sv, &uv);
    if (st != HODEI_OK)
        return st;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (sv < INT32_MIN || sv > INT32_MAX)
            return dec_fail(c, "is out of range for a 32-bit integer");
        *(int32_t *)p = (int32_t)sv;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (uv > UINT32_MAX)
            return dec_fail(c, "is out of range for a 32-bit integer");
        *(uint32_t *)p = (uint32_t)uv;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)p = uv;
        break;
    default:
        *(int64_t *)p = sv;
        break;
    }
    return HODEI_OK;
}

/* One value of f from j into p. */
static hodei_status dec_value(dec_ctx *c, const ProtobufCFieldDescriptor *f, const json_t *j,
                              void *p, int depth)
{
    hodei_status st = HODEI_OK;
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_FLOAT:
        if ((st = dec_double(c, j, &d)) == HODEI_OK)
            *(float *)p = (float)d;
        return st;
    case PROTOBUF_C_TYPE_DOUBLE:
        return dec_double(c, j, (double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(j))
            return dec_fail(c, "must be true or false");
        *(protobuf_c_boolean *)p = json_is_true(j);
        return HODEI_OK;
    case PROTOBUF_C_TYPE_ENUM:
        return dec_enum(c, f->descriptor, j, (int *)p);
    case PROTOBUF_C_TYPE_STRING:
        return dec_string(c, j, (char **)p);
    case PROTOBUF_C_TYPE_BYTES:
        return dec_bytes(c, j, p);
    case PROTOBUF_C_TYPE_MESSAGE:
        return dec_message(c, f->descriptor, j, (ProtobufCMessage **)p, depth + 1);
    default:
        return dec_int_field(c, f, j, p);
    }
}

/* -------------------------------------------------------- repeated and maps */

/* A map key as text -> the key field's type. */
static hodei_status dec_map_key(dec_ctx *c, const ProtobufCFieldDescriptor *kf, const char *key,
                                void *p)
{
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        json_t *s = json_string(key);
        hodei_status st = s ? dec_string(c, s, (char **)p) : dec_nomem(c);
        json_decref(s);
        return st;
    }
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(key, "true") != 0 && strcmp(key, "false") != 0)
            return dec_fail(c, "map key must be true or false");
        *(protobuf_c_boolean *)p = strcmp(key, "true") == 0;
        return HODEI_OK;
    }
    json_t *s = json_string(key);
    hodei_status st = s ? dec_int_field(c, kf, s, p) : dec_nomem(c);
    json_decref(s);
    return st;
}

static hodei_status dec_map(dec_ctx *c, const ProtobufCFieldDescriptor *f, const json_t *j,
                            void **arr_out, size_t *n_out, int depth)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    if (!json_is_object(j))
        return dec_fail(c, "must be an object (a map)");
    size_t n = json_object_size(j), i = 0;
    ProtobufCMessage **arr = pb_arena_get(&c->arena, (n ? n : 1) * sizeof *arr);
    if (!arr)
        return dec_nomem(c);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)j, key, val)
    {
        size_t saved = dec_push(c, "[\"%.64s\"]", key);
        ProtobufCMessage *e = pb_arena_get(&c->arena, ed->sizeof_message);
        if (!e)
            return dec_nomem(c);
        ed->message_init(e);
        hodei_status st =
            dec_map_key(c, &ed->fields[0], key, PB_MEMBER(e, ed->fields[0].offset, void));
        if (st == HODEI_OK && !json_is_null(val))
            st = dec_value(c, &ed->fields[1], val, PB_MEMBER(e, ed->fields[1].offset, void), depth);
        if (st != HODEI_OK)
            return st;
        dec_pop(c, saved);
        arr[i++] = e;
    }
    *arr_out = arr;
    *n_out = i;
    return HODEI_OK;
}

static hodei_status dec_repeated(dec_ctx *c, const ProtobufCMessageDescriptor *desc,
                                 const ProtobufCFieldDescriptor *f, const json_t *j,
                                 ProtobufCMessage *msg, int depth)
{
    void **arr_p = PB_MEMBER(msg, f->offset, void *);
    size_t *n_p = PB_MEMBER(msg, f->quantifier_offset, size_t);
    if (hodei_pbjson_is_map(desc, f))
        return dec_map(c, f, j, arr_p, n_p, depth);
    if (!json_is_array(j))
        return dec_fail(c, "must be an array");
    size_t n = json_array_size(j), size = pb_type_size(f->type);
    char *arr = pb_arena_get(&c->arena, (n ? n : 1) * size);
    if (!arr)
        return dec_nomem(c);
    for (size_t i = 0; i < n; i++) {
        size_t saved = dec_push(c, "[%zu]", i);
        const json_t *e = json_array_get(j, i);
        if (json_is_null(e))
            return dec_fail(c, "must not be null");
        hodei_status st = dec_value(c, f, e, arr + i * size, depth);
        if (st != HODEI_OK)
            return st;
        dec_pop(c, saved);
    }
    *arr_p = arr;
    *n_p = n;
    return HODEI_OK;
}

/* --------------------------------------------------------------- messages */

/* The oneof f belongs to already holds another member. */
static const ProtobufCFieldDescriptor *dec_oneof_other(const ProtobufCMessageDescriptor *desc,
                                                       const ProtobufCFieldDescriptor *f,
                                                       const ProtobufCMessage *msg)
{
    uint32_t set = *PB_CMEMBER(msg, f->quantifier_offset, uint32_t);
    if (set == 0 || set == f->id)
        return NULL;
    return protobuf_c_message_descriptor_get_field(desc, set);
}

static hodei_status dec_field(dec_ctx *c, const ProtobufCMessageDescriptor *desc,
                              const ProtobufCFieldDescriptor *f, const json_t *val,
                              ProtobufCMessage *msg, int depth)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return dec_repeated(c, desc, f, val, msg, depth);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        const ProtobufCFieldDescriptor *other = dec_oneof_other(desc, f, msg);
        if (other) {
            char what[HODEI_ERR_MSG_MAX];
            snprintf(what, sizeof what, "cannot be set together with %s (one of them only)",
                     other->name);
            return dec_fail(c, what);
        }
        *PB_MEMBER(msg, f->quantifier_offset, uint32_t) = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
               f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
        *PB_MEMBER(msg, f->quantifier_offset, protobuf_c_boolean) = 1;
    }
    return dec_value(c, f, val, PB_MEMBER(msg, f->offset, void), depth);
}

static hodei_status dec_message(dec_ctx *c, const ProtobufCMessageDescriptor *desc, const json_t *j,
                                ProtobufCMessage **out, int depth)
{
    if (depth > HODEI_PBJSON_DEPTH_MAX)
        return dec_fail(c, "nested too deeply");
    if (!json_is_object(j))
        return dec_fail(c, "must be an object");
    ProtobufCMessage *msg = pb_arena_get(&c->arena, desc->sizeof_message);
    uint8_t *seen = pb_arena_get(&c->arena, desc->n_fields + 1);
    if (!msg || !seen)
        return dec_nomem(c);
    desc->message_init(msg);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)j, key, val)
    {
        const ProtobufCFieldDescriptor *f = hodei_pbjson_field(desc, key);
        size_t saved = dec_push_field(c, f ? f->name : key);
        if (!f)
            return dec_fail(c, "unknown field");
        size_t idx = (size_t)(f - desc->fields);
        if (seen[idx])
            return dec_fail(c, "given twice (by its proto name and its json name)");
        seen[idx] = 1;
        if (!json_is_null(val)) {
            hodei_status st = dec_field(c, desc, f, val, msg, depth);
            if (st != HODEI_OK)
                return st;
        }
        dec_pop(c, saved);
    }
    *out = msg;
    return HODEI_OK;
}

/* The arena-built message, packed and unpacked by protobuf-c. */
static hodei_status dec_rebuild(dec_ctx *c, const ProtobufCMessage *built, ProtobufCMessage **out)
{
    size_t len = protobuf_c_message_get_packed_size(built);
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf)
        return dec_nomem(c);
    protobuf_c_message_pack(built, buf);
    *out = protobuf_c_message_unpack(built->descriptor, NULL, len, buf);
    free(buf);
    if (!*out)
        return hodei_err_set(c->err, HODEI_ERR_INVALID, "request: not a valid %s",
                             built->descriptor->name);
    return HODEI_OK;
}

hodei_status hodei_pbjson_decode(const ProtobufCMessageDescriptor *desc, const json_t *json,
                                 ProtobufCMessage **out, hodei_err *err)
{
    dec_ctx c = {.err = err};
    ProtobufCMessage *built = NULL;
    pb_arena_init(&c.arena);
    hodei_status st = dec_message(&c, desc, json, &built, 0);
    if (st == HODEI_OK)
        st = dec_rebuild(&c, built, out);
    pb_arena_fini(&c.arena);
    return st;
}

hodei_status hodei_pbjson_decode_text(const ProtobufCMessageDescriptor *desc, const char *text,
                                      size_t len, ProtobufCMessage **out, hodei_err *err)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "request body: not JSON: %s (line %d, column %d)", je.text, je.line,
                             je.column);
    hodei_status st = hodei_pbjson_decode(desc, j, out, err);
    json_decref(j);
    return st;
}
