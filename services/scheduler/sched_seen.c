/* "Log once per job": two generations of open-addressed 64-bit hashes of
 * job ids. A hash collision only silences one log line. */
#include <string.h>

#include "sched_int.h"

#define FNV_OFFSET 14695981039346656037ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t seen_hash(const char *id)
{
    uint64_t h = FNV_OFFSET;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        h ^= *p;
        h *= FNV_PRIME;
    }
    return h ? h : 1; /* 0 marks a free slot */
}

/* The slot holding h, or the free slot where it would go. */
static size_t seen_probe(const uint64_t *slots, uint64_t h)
{
    size_t i = (size_t)(h % SCHED_SEEN_SLOTS);
    while (slots[i] != 0 && slots[i] != h)
        i = (i + 1) % SCHED_SEEN_SLOTS;
    return i;
}

bool sched_seen_first(sched_seen *seen, const char *id)
{
    uint64_t h = seen_hash(id);
    uint64_t *cur = seen->slot[seen->cur];
    uint64_t *old = seen->slot[!seen->cur];

    if (cur[seen_probe(cur, h)] == h || old[seen_probe(old, h)] == h)
        return false;
    if (seen->count >= SCHED_SEEN_MAX) {
        seen->cur = !seen->cur;
        cur = seen->slot[seen->cur];
        memset(cur, 0, sizeof seen->slot[0]);
        seen->count = 0;
    }
    cur[seen_probe(cur, h)] = h;
    seen->count++;
    return true;
}
