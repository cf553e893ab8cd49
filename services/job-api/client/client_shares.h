/* Each caller's share of the submit queue's bytes (submit.queue_bytes_per_key):
 * a bounded hash table from a caller (an API key, a certificate subject, or
 * "anonymous") to the bytes of its jobs waiting for a group commit. A
 * caller enters with its first waiting job and leaves when a writer has
 * taken its last, so the table holds only callers with jobs waiting, at
 * most keys_max of them. Not thread-safe: the submitter calls it under its
 * queue's mutex (each call is one probe of a few slots, no allocation). */
#ifndef HODEI_JOB_API_CLIENT_SHARES_H
#define HODEI_JOB_API_CLIENT_SHARES_H

#include <stddef.h>

#include "hodei/auth.h"
#include "hodei/status.h"

/* Callers with jobs waiting at once on one edge (the table's cap). */
#define SUBMIT_SHARE_KEYS_MAX 1024
/* "key:<id>", "cert:<subject>" or "anonymous", with its NUL. */
#define SUBMIT_SHARE_WHO_BUF (HODEI_CERT_SAN_BUF + 8)

typedef struct submit_shares submit_shares;

typedef enum {
    SUBMIT_SHARE_OK = 0, /* counted */
    SUBMIT_SHARE_OVER,   /* the caller's bytes would pass share_max: nothing counted */
    SUBMIT_SHARE_FULL,   /* a new caller, and keys_max callers have jobs waiting */
} submit_share_verdict;

/* keys_max: 1..65536. */
hodei_status submit_shares_create(size_t keys_max, submit_shares **out, hodei_err *err);
void submit_shares_destroy(submit_shares *t); /* NULL is a no-op */

/* Counts bytes (> 0) against who's share when who's waiting bytes plus
 * bytes stay within share_max. *held: who's waiting bytes before the call
 * (0 for a caller not in the table). */
submit_share_verdict submit_shares_take(submit_shares *t, const char *who, size_t bytes,
                                        size_t share_max, size_t *held);
/* Gives back bytes an earlier take counted for who (a writer took the job);
 * a caller left with none leaves the table. Giving back more than who
 * holds is a programmer error (asserted). */
void submit_shares_give(submit_shares *t, const char *who, size_t bytes);
/* Callers with jobs waiting. */
size_t submit_shares_keys(const submit_shares *t);

/* Who a call's share belongs to: "key:<key id>" for an API key,
 * "cert:<subject>" for a client certificate, "anonymous" for a call that
 * carried neither. out: SUBMIT_SHARE_WHO_BUF bytes. */
void submit_share_who(const hodei_identity *id, char out[SUBMIT_SHARE_WHO_BUF]);

#endif
