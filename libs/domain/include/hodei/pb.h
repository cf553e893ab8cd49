/* Protobuf helpers the services share: timestamps from wall-clock
 * microseconds, and messages to and from the hex text PostgreSQL's
 * encode(..., 'hex') / decode(..., 'hex') exchange. */
#ifndef HODEI_PB_H
#define HODEI_PB_H

#include <stdbool.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "hodei/arena.h"
#include "hodei/buf.h"
#include "hodei/v1/common.pb-c.h"

/* Initializes t and sets it to us microseconds since the Unix epoch. */
void hodei_pb_time(Hodei__V1__Timestamp *t, int64_t us);
/* Appends m, packed, as hex to b; false when b refuses it (its max) or out
 * of memory. */
bool hodei_pb_hex(hodei_buf *b, const ProtobufCMessage *m);
/* The message hex holds, unpacked with protobuf-c's default allocator
 * (free with protobuf_c_message_free_unpacked); NULL when hex is not hex
 * or does not unpack as d. */
ProtobufCMessage *hodei_pb_unpack_hex(const ProtobufCMessageDescriptor *d, const char *hex);

/* protobuf-c's allocator over an arena: a message unpacked with it lives in
 * the arena (never free_unpacked it; it goes with the arena). A failed
 * allocation (the arena's maximum) makes the unpack return NULL. The
 * returned struct refers to a; it may be a local of the unpacking call. */
ProtobufCAllocator hodei_pb_arena(hodei_arena *a);

/* hodei_pb_unpack_hex into an arena: the message and every piece of it
 * (the decoded bytes too) come from a and go with it. NULL when hex is not
 * hex, does not unpack as d, or the arena's maximum is reached. */
ProtobufCMessage *hodei_pb_unpack_hex_arena(const ProtobufCMessageDescriptor *d, const char *hex,
                                            hodei_arena *a);

#endif
