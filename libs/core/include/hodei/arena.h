/* A region allocator (PostgreSQL's memory contexts, simplified): memory for
 * one reply, one command or one round comes from here and goes all at once
 * with reset or fini; nothing is freed alone. Allocations are carved from
 * blocks of block_size bytes (a larger one gets a block of its own), and
 * every allocation counts against a named maximum.
 *
 *   hodei_arena a;
 *   hodei_arena_init(&a, 0, 16 * 1024 * 1024);
 *   Hodei__V1__Job **jobs = hodei_arena_calloc(&a, n, sizeof *jobs);
 *   ... reply ...
 *   hodei_arena_fini(&a);
 *
 * Handed to protobuf-c as its allocator (hodei_pb_arena in hodei/pb.h), an
 * unpacked message costs a few block allocations and is freed with its
 * arena. Not thread-safe: one arena belongs to one thread at a time. */
#ifndef HODEI_ARENA_H
#define HODEI_ARENA_H

#include <stddef.h>

#define HODEI_ARENA_BLOCK_DEFAULT (64 * 1024) /* block_size 0 means this */

typedef struct hodei_arena_block hodei_arena_block;

typedef struct {
    hodei_arena_block *head; /* the block being carved; older ones follow */
    size_t block_size;
    size_t bytes; /* handed out since init or reset, alignment included */
    size_t max;   /* an allocation that would pass it gets NULL */
} hodei_arena;

/* A point to roll back to: everything allocated after it goes. */
typedef struct {
    hodei_arena_block *block;
    size_t used, bytes;
} hodei_arena_mark;

/* block_size 0 = HODEI_ARENA_BLOCK_DEFAULT. No memory is taken yet. */
void hodei_arena_init(hodei_arena *a, size_t block_size, size_t max);
/* Frees every block. Safe twice, and on a zeroed arena. */
void hodei_arena_fini(hodei_arena *a);
/* Frees everything handed out, keeping one standard block for reuse. */
void hodei_arena_reset(hodei_arena *a);

/* n bytes aligned for any type, not zeroed; NULL when out of memory or past
 * the maximum. n = 0 gives a valid unique pointer. */
void *hodei_arena_alloc(hodei_arena *a, size_t n);
/* count * size zeroed bytes (NULL also when the product overflows). */
void *hodei_arena_calloc(hodei_arena *a, size_t count, size_t size);
/* s[0..n) and a NUL, or NULL. */
char *hodei_arena_strndup(hodei_arena *a, const char *s, size_t n);
/* A copy of s, or NULL (also when s is NULL). */
char *hodei_arena_strdup(hodei_arena *a, const char *s);

hodei_arena_mark hodei_arena_mark_get(const hodei_arena *a);
/* Frees what was allocated after m (m from this arena, not reset since). */
void hodei_arena_rollback(hodei_arena *a, hodei_arena_mark m);

#endif
