#include "state_int.h"

#include <string.h>
#include <strings.h>

int domain_state_lookup(const char *const *names, size_t count, const char *prefix, const char *s)
{
    if (!s)
        return -1;
    size_t prefix_len = strlen(prefix);
    if (strncasecmp(s, prefix, prefix_len) == 0)
        s += prefix_len;
    for (size_t i = 1; i < count; i++) {
        if (names[i] && strcasecmp(s, names[i]) == 0)
            return (int)i;
    }
    return -1;
}
