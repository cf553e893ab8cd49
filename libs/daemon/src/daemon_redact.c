#include "daemon_int.h"

#include <ctype.h>
#include <string.h>

void daemon_redact(const char *text, const char *secret, char *out, size_t out_len)
{
    size_t n = 0, secret_len = secret ? strlen(secret) : 0;
    bool space = false;
    if (out_len == 0)
        return;
    while (*text && isspace((unsigned char)*text))
        text++;
    for (const char *p = text; *p && n + 1 < out_len;) {
        if (secret_len && strncmp(p, secret, secret_len) == 0) {
            for (const char *s = space ? " ***" : "***"; *s && n + 1 < out_len; s++)
                out[n++] = *s;
            space = false;
            p += secret_len;
        } else if (isspace((unsigned char)*p)) {
            space = true;
            p++;
        } else {
            if (space && n + 2 < out_len)
                out[n++] = ' ';
            space = false;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}
