#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct cli_arena_block {
    cli_arena_block *next;
    max_align_t data[];
};

void cli_arena_init(cli_arena *a, size_t max)
{
    a->blocks = NULL;
    a->used = 0;
    a->max = max;
}

void cli_arena_fini(cli_arena *a)
{
    cli_arena_block *b = a->blocks;
    while (b) {
        cli_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->blocks = NULL;
    a->used = 0;
}

void *cli_arena_alloc(cli_arena *a, size_t n)
{
    size_t total = sizeof(cli_arena_block) + n;
    if (n > a->max || total > a->max - a->used)
        return NULL;
    cli_arena_block *b = calloc(1, total);
    if (!b)
        return NULL;
    b->next = a->blocks;
    a->blocks = b;
    a->used += total;
    return b->data;
}

char *cli_arena_strndup(cli_arena *a, const char *s, size_t n)
{
    char *p = cli_arena_alloc(a, n + 1);
    if (p)
        memcpy(p, s, n);
    return p;
}
