/* Private helpers shared by the two state machines. */
#ifndef HODEI_DOMAIN_STATE_INT_H
#define HODEI_DOMAIN_STATE_INT_H

#include <stdbool.h>
#include <stddef.h>

/* Looks s up in names[1..count-1] (index 0, UNSPECIFIED, is never matched),
 * case-insensitively, with or without `prefix`. Returns the index or -1. */
int domain_state_lookup(const char *const *names, size_t count, const char *prefix, const char *s);

#endif
