/* A per-command arena: every piece of a request the CLI builds (map entries,
 * argument arrays, copied keys, the script's content) comes from here and is
 * freed at once by cli_arena_fini. */
#ifndef HODEI_CLI_ARENA_H
#define HODEI_CLI_ARENA_H

#include <stddef.h>

typedef struct cli_arena_block cli_arena_block;

typedef struct {
    cli_arena_block *blocks;
    size_t used; /* bytes handed out, headers included */
    size_t max;  /* refuse allocations past this */
} cli_arena;

void cli_arena_init(cli_arena *a, size_t max);
/* Frees every allocation. Safe on a zeroed arena. */
void cli_arena_fini(cli_arena *a);
/* Zeroed memory, or NULL when out of memory or past the maximum. */
void *cli_arena_alloc(cli_arena *a, size_t n);
/* Copy of s[0..n) with a NUL after it, or NULL. */
char *cli_arena_strndup(cli_arena *a, const char *s, size_t n);

#endif
