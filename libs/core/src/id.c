#include "hodei/id.h"
#include "hodei/time.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

void hodei_id_new(char out[HODEI_ID_BUF])
{
    uint8_t b[16];
    uint64_t ms = (uint64_t)hodei_wall_ms();
    size_t got = 0;
    while (got < 10) {
        ssize_t n = getrandom(b + 6 + got, 10 - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f)); /* RFC 4122 variant */
    snprintf(out, HODEI_ID_BUF,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool hodei_id_valid(const char *s)
{
    if (!s || strlen(s) != HODEI_ID_LEN)
        return false;
    for (int i = 0; i < HODEI_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

hodei_status hodei_id_check(const char *field, const char *id, const char *what, hodei_err *err)
{
    if (!id || !id[0])
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: required", field);
    if (!hodei_id_valid(id))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: must be %s (a UUID)", field, what);
    return HODEI_OK;
}
