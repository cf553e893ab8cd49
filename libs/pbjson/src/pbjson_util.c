/* Names, maps, base64 and the arena (pbjson_int.h). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson_int.h"

void hodei_pbjson_json_name(const char *proto_name, char *out, size_t cap)
{
    size_t n = 0;
    bool upper = false;
    if (cap == 0)
        return;
    for (const char *p = proto_name; *p && n + 1 < cap; p++) {
        if (*p == '_') {
            upper = true;
            continue;
        }
        out[n++] = upper ? (char)toupper((unsigned char)*p) : *p;
        upper = false;
    }
    out[n] = '\0';
}

const ProtobufCFieldDescriptor *hodei_pbjson_field(const ProtobufCMessageDescriptor *desc,
                                                   const char *name)
{
    char json_name[HODEI_PBJSON_NAME_MAX];
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(desc, name);
    if (f)
        return f;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        hodei_pbjson_json_name(desc->fields[i].name, json_name, sizeof json_name);
        if (strcmp(json_name, name) == 0)
            return &desc->fields[i];
    }
    return NULL;
}

/* protoc names a map's entry <FieldInCamelCase>Entry, nested in the parent,
 * with key = 1 and value = 2; no other message may take that name. */
bool hodei_pbjson_is_map(const ProtobufCMessageDescriptor *parent,
                         const ProtobufCFieldDescriptor *f)
{
    char want[HODEI_PBJSON_NAME_MAX + 8];
    if (f->label != PROTOBUF_C_LABEL_REPEATED || f->type != PROTOBUF_C_TYPE_MESSAGE)
        return false;
    const ProtobufCMessageDescriptor *e = f->descriptor;
    if (e->n_fields != 2 || strcmp(e->fields[0].name, "key") != 0 || e->fields[0].id != 1 ||
        strcmp(e->fields[1].name, "value") != 0 || e->fields[1].id != 2)
        return false;
    hodei_pbjson_json_name(f->name, want, sizeof want - 8);
    want[0] = (char)toupper((unsigned char)want[0]);
    size_t n = strlen(want);
    memcpy(want + n, "Entry", 6);
    size_t plen = strlen(parent->name);
    return strcmp(e->short_name, want) == 0 && strncmp(e->name, parent->name, plen) == 0 &&
           e->name[plen] == '.' && strcmp(e->name + plen + 1, want) == 0;
}

bool pb_oneof_is(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    return *PB_CMEMBER(msg, f->quantifier_offset, uint32_t) == f->id;
}

size_t pb_type_size(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    }
    return 0;
}

/* ----------------------------------------------------------------- base64 */

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *pb_base64_encode(const uint8_t *data, size_t len)
{
    size_t out_len = (len + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (!out)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = b64_std[(v >> 6) & 63];
        out[o++] = b64_std[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)data[i] << 16 | (i + 1 < len ? (uint32_t)data[i + 1] << 8 : 0);
        out[o++] = b64_std[v >> 18];
        out[o++] = b64_std[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64_std[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* out must hold len * 3 / 4 + 3 bytes. */
bool pb_base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len)
{
    while (len > 0 && text[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return false;
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value(text[i]);
        if (v < 0)
            return false;
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            out[o++] = (uint8_t)(acc >> 16);
            out[o++] = (uint8_t)(acc >> 8);
            out[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (len % 4 == 2) {
        out[o++] = (uint8_t)(acc >> 4);
    } else if (len % 4 == 3) {
        out[o++] = (uint8_t)(acc >> 10);
        out[o++] = (uint8_t)(acc >> 2);
    }
    *out_len = o;
    return true;
}

/* ------------------------------------------------------------------ arena */

#define ARENA_CHUNK_MIN 4096

struct pb_arena_chunk {
    pb_arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
};

static void *arena_alloc(void *data, size_t size)
{
    return pb_arena_get(data, size);
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void pb_arena_init(pb_arena *a)
{
    a->chunks = NULL;
    a->alloc = (ProtobufCAllocator){arena_alloc, arena_free, a};
}

void pb_arena_fini(pb_arena *a)
{
    while (a->chunks) {
        pb_arena_chunk *c = a->chunks;
        a->chunks = c->next;
        free(c);
    }
}

void *pb_arena_get(pb_arena *a, size_t size)
{
    size_t align = sizeof(max_align_t);
    size = (size + align - 1) / align * align;
    pb_arena_chunk *c = a->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK_MIN ? size : ARENA_CHUNK_MIN;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->chunks;
        a->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}
