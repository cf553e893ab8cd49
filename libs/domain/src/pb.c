#include "hodei/pb.h"

#include <stdlib.h>
#include <string.h>

#define PB_US_PER_S 1000000
#define PB_NS_PER_US 1000

void hodei_pb_time(Hodei__V1__Timestamp *t, int64_t us)
{
    hodei__v1__timestamp__init(t);
    t->seconds = us / PB_US_PER_S;
    t->nanos = (int32_t)(us % PB_US_PER_S) * PB_NS_PER_US;
}

bool hodei_pb_hex(hodei_buf *b, const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *raw = malloc(len ? len : 1);
    if (!raw)
        return false;
    protobuf_c_message_pack(m, raw);
    bool ok = hodei_buf_hex(b, raw, len);
    free(raw);
    return ok;
}

ProtobufCMessage *hodei_pb_unpack_hex(const ProtobufCMessageDescriptor *d, const char *hex)
{
    size_t len = strlen(hex) / 2;
    uint8_t *raw = malloc(len ? len : 1);
    ProtobufCMessage *m = NULL;
    if (raw && hodei_hex_decode(hex, len * 2, raw, len) >= 0)
        m = protobuf_c_message_unpack(d, NULL, len, raw);
    free(raw);
    return m;
}

static void *pb_arena_alloc(void *data, size_t size)
{
    return hodei_arena_alloc(data, size);
}

static void pb_arena_free(void *data, void *p)
{
    (void)data;
    (void)p; /* everything goes with the arena */
}

ProtobufCAllocator hodei_pb_arena(hodei_arena *a)
{
    return (ProtobufCAllocator){
        .alloc = pb_arena_alloc, .free = pb_arena_free, .allocator_data = a};
}

ProtobufCMessage *hodei_pb_unpack_hex_arena(const ProtobufCMessageDescriptor *d, const char *hex,
                                            hodei_arena *a)
{
    size_t len = strlen(hex) / 2;
    uint8_t *raw = hodei_arena_alloc(a, len ? len : 1);
    if (!raw || hodei_hex_decode(hex, len * 2, raw, len) < 0)
        return NULL;
    ProtobufCAllocator pa = hodei_pb_arena(a);
    return protobuf_c_message_unpack(d, &pa, len, raw);
}
