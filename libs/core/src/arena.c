/* Region allocator (hodei/arena.h). Blocks form a list, newest first; only
 * the newest is carved, so a mark is (newest block, its used bytes). */
#include "hodei/arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN alignof(max_align_t)

struct hodei_arena_block {
    hodei_arena_block *next;
    size_t cap, used;
    alignas(max_align_t) unsigned char data[];
};

void hodei_arena_init(hodei_arena *a, size_t block_size, size_t max)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : HODEI_ARENA_BLOCK_DEFAULT;
    a->bytes = 0;
    a->max = max;
}

static void arena_free_until(hodei_arena *a, const hodei_arena_block *stop)
{
    while (a->head && a->head != stop) {
        hodei_arena_block *b = a->head;
        a->head = b->next;
        free(b);
    }
}

void hodei_arena_fini(hodei_arena *a)
{
    arena_free_until(a, NULL);
    a->bytes = 0;
}

void hodei_arena_reset(hodei_arena *a)
{
    hodei_arena_block *keep = NULL;
    for (hodei_arena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        if (!keep && b->cap == a->block_size) {
            keep = b;
            continue;
        }
        free(b);
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
    a->bytes = 0;
}

void *hodei_arena_alloc(hodei_arena *a, size_t n)
{
    if (n > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t size = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (size == 0)
        size = ARENA_ALIGN;
    if (size > a->max || a->bytes > a->max - size)
        return NULL;
    hodei_arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > a->block_size ? size : a->block_size;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = a->head;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    a->bytes += size;
    return p;
}

void *hodei_arena_calloc(hodei_arena *a, size_t count, size_t size)
{
    if (size != 0 && count > SIZE_MAX / size)
        return NULL;
    void *p = hodei_arena_alloc(a, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

char *hodei_arena_strndup(hodei_arena *a, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *p = hodei_arena_alloc(a, n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *hodei_arena_strdup(hodei_arena *a, const char *s)
{
    return s ? hodei_arena_strndup(a, s, strlen(s)) : NULL;
}

hodei_arena_mark hodei_arena_mark_get(const hodei_arena *a)
{
    return (hodei_arena_mark){a->head, a->head ? a->head->used : 0, a->bytes};
}

void hodei_arena_rollback(hodei_arena *a, hodei_arena_mark m)
{
    arena_free_until(a, m.block);
    if (a->head)
        a->head->used = m.used;
    a->bytes = m.bytes;
}
