/* Identifiers: UUID version 7 (time-ordered, so new rows land at the end of
 * their index), random bits from the kernel's CSPRNG. */
#ifndef HODEI_ID_H
#define HODEI_ID_H

#include <stdbool.h>
#include <stddef.h>

#include "hodei/status.h"

#define HODEI_ID_LEN 36 /* without the NUL */
#define HODEI_ID_BUF (HODEI_ID_LEN + 1)

void hodei_id_new(char out[HODEI_ID_BUF]);
/* true when s is a canonical lower- or upper-case UUID text (8-4-4-4-12 hex). */
bool hodei_id_valid(const char *s);
/* The check of an id field at a door: "<field>: required" when empty,
 * "<field>: must be <what> (a UUID)" when malformed (what: "a job id", ...),
 * both HODEI_ERR_INVALID. */
hodei_status hodei_id_check(const char *field, const char *id, const char *what, hodei_err *err);

#endif
