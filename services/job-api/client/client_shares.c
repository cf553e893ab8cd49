/* The per-caller byte shares of the submit queue: open addressing with
 * linear probing in a power-of-two table at most half full, and deletion
 * by backward shift (no tombstones, so probes stay short however callers
 * come and go). */
#include "client_shares.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/assert.h"
#include "hodei/util.h"

#define SHARES_KEYS_LIMIT 65536

typedef struct {
    char who[SUBMIT_SHARE_WHO_BUF]; /* "" = a free slot */
    uint64_t hash;
    size_t bytes; /* > 0 while the slot is used */
} share_slot;

struct submit_shares {
    share_slot *slots;
    size_t mask; /* slots - 1 */
    size_t n;    /* used slots */
    size_t keys_max;
};

/* A word at a time (a caller's name is 40 bytes or more, and this runs
 * twice a job under the queue's mutex); callers are key ids the edge made
 * or verified certificate names, so no one picks collisions. */
static uint64_t share_hash(const char *s)
{
    size_t n = strlen(s);
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
        h ^= h >> 29;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * UINT64_C(0xc4ceb9fe1a85ec53);
    return h ^ (h >> 32);
}

hodei_status submit_shares_create(size_t keys_max, submit_shares **out, hodei_err *err)
{
    if (keys_max < 1 || keys_max > SHARES_KEYS_LIMIT)
        return hodei_err_set(err, HODEI_ERR_INVALID, "submit shares: keys_max must be 1..%d",
                             SHARES_KEYS_LIMIT);
    size_t cap = 2;
    while (cap < 2 * keys_max)
        cap *= 2;
    submit_shares *t = calloc(1, sizeof *t);
    share_slot *slots = calloc(cap, sizeof *slots);
    if (!t || !slots) {
        free(t);
        free(slots);
        return hodei_err_set(err, HODEI_ERR_NOMEM, "submit shares: out of memory");
    }
    t->slots = slots;
    t->mask = cap - 1;
    t->keys_max = keys_max;
    *out = t;
    return HODEI_OK;
}

void submit_shares_destroy(submit_shares *t)
{
    if (!t)
        return;
    free(t->slots);
    free(t);
}

/* who's slot, or the free slot where it would go. */
static share_slot *share_find(const submit_shares *t, const char *who, uint64_t hash)
{
    for (size_t i = (size_t)hash & t->mask;; i = (i + 1) & t->mask) {
        share_slot *s = &t->slots[i];
        if (!s->who[0] || (s->hash == hash && strcmp(s->who, who) == 0))
            return s;
    }
}

submit_share_verdict submit_shares_take(submit_shares *t, const char *who, size_t bytes,
                                        size_t share_max, size_t *held)
{
    HODEI_ASSERT(who[0] && strlen(who) < SUBMIT_SHARE_WHO_BUF && bytes > 0);
    uint64_t hash = share_hash(who);
    share_slot *s = share_find(t, who, hash);
    *held = s->bytes;
    if (s->bytes > share_max || bytes > share_max - s->bytes)
        return SUBMIT_SHARE_OVER;
    if (!s->who[0]) {
        if (t->n >= t->keys_max)
            return SUBMIT_SHARE_FULL;
        hodei_strlcpy(s->who, who, sizeof s->who);
        s->hash = hash;
        t->n++;
    }
    s->bytes += bytes;
    return SUBMIT_SHARE_OK;
}

/* Empties slot i and moves back each later slot of the run that may no
 * longer be reached from its home slot past the gap. */
static void share_remove(submit_shares *t, size_t i)
{
    for (size_t j = (i + 1) & t->mask; t->slots[j].who[0]; j = (j + 1) & t->mask) {
        size_t home = (size_t)t->slots[j].hash & t->mask;
        /* Stays when its home lies cyclically in (i, j]. */
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            i = j;
        }
    }
    t->slots[i].who[0] = '\0';
    t->slots[i].bytes = 0;
    t->n--;
}

void submit_shares_give(submit_shares *t, const char *who, size_t bytes)
{
    share_slot *s = share_find(t, who, share_hash(who));
    HODEI_ASSERT(s->who[0] && s->bytes >= bytes);
    s->bytes -= bytes;
    if (s->bytes == 0)
        share_remove(t, (size_t)(s - t->slots));
}

size_t submit_shares_keys(const submit_shares *t)
{
    return t->n;
}

void submit_share_who(const hodei_identity *id, char out[SUBMIT_SHARE_WHO_BUF])
{
    if (id && id->kind == HODEI_PRINCIPAL_CERT && id->subject[0])
        snprintf(out, SUBMIT_SHARE_WHO_BUF, "cert:%s", id->subject);
    else if (id && id->kind != HODEI_PRINCIPAL_NONE && id->key_id[0])
        snprintf(out, SUBMIT_SHARE_WHO_BUF, "key:%s", id->key_id);
    else
        hodei_strlcpy(out, "anonymous", SUBMIT_SHARE_WHO_BUF);
}
