/* Page tokens of the edge's keyset-paged lists (ListJobs, ListKeys): the
 * position after the last row returned, as "<created_at µs>.<id>". Stable
 * while new rows arrive; opaque to clients (they send back what they were
 * given). Pure functions, no I/O. */
#ifndef HODEI_PAGE_TOKEN_H
#define HODEI_PAGE_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hodei/id.h"

#define HODEI_PAGE_TOKEN_MAX 64 /* bytes of a token, without the NUL */
#define HODEI_PAGE_TOKEN_BUF (HODEI_PAGE_TOKEN_MAX + 1)

/* The token for the row (created_us, id): false (and out "") when
 * created_us is negative or id is not an id. */
bool hodei_page_token_encode(int64_t created_us, const char *id, char out[HODEI_PAGE_TOKEN_BUF]);
/* A token back: false (outputs untouched) unless tok has the shape
 * hodei_page_token_encode gives: a number 0..INT64_MAX (as strtoll reads
 * it), '.', an id; at most HODEI_PAGE_TOKEN_MAX bytes in all. tok may be
 * NULL or any NUL-terminated string. */
bool hodei_page_token_decode(const char *tok, int64_t *created_us, char id[HODEI_ID_BUF]);

#endif
