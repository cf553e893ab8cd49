/* Private to libs/pbjson: field access by descriptor, base64, and the arena
 * a decoded message is built in before protobuf-c packs it. */
#ifndef HODEI_PBJSON_INT_H
#define HODEI_PBJSON_INT_H

#include <stdint.h>

#include "hodei/pbjson.h"

#define PB_MEMBER(msg, off, type) ((type *)(void *)((char *)(msg) + (off)))
#define PB_CMEMBER(msg, off, type) ((const type *)(const void *)((const char *)(msg) + (off)))

/* Size in a message struct of one value of a field's type. */
size_t pb_type_size(ProtobufCType type);

/* Base64: encode appends to out (malloc'd text, NUL-terminated); decode
 * takes the standard or URL-safe alphabet, padding optional. */
char *pb_base64_encode(const uint8_t *data, size_t len);
bool pb_base64_decode(const char *text, size_t len, uint8_t *out, size_t *out_len);

/* A bump allocator handed to protobuf-c: freeing is a no-op, everything
 * goes at once with pb_arena_fini. */
typedef struct pb_arena_chunk pb_arena_chunk;
typedef struct {
    pb_arena_chunk *chunks;
    ProtobufCAllocator alloc;
} pb_arena;

void pb_arena_init(pb_arena *a);
void pb_arena_fini(pb_arena *a);
void *pb_arena_get(pb_arena *a, size_t size); /* zeroed; NULL when out of memory */

/* The message's field number f->id is set in its oneof (case == id). */
bool pb_oneof_is(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f);

#endif
