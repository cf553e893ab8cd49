/* Page tokens "<created_at µs>.<id>" (hodei/page_token.h). */
#include "hodei/page_token.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "hodei/util.h"

#define PAGE_TOKEN_NUM_MAX 31 /* bytes before the dot */

bool hodei_page_token_encode(int64_t created_us, const char *id, char out[HODEI_PAGE_TOKEN_BUF])
{
    out[0] = '\0';
    if (created_us < 0 || !hodei_id_valid(id))
        return false;
    snprintf(out, HODEI_PAGE_TOKEN_BUF, "%" PRId64 ".%s", created_us, id);
    return true;
}

bool hodei_page_token_decode(const char *tok, int64_t *created_us, char id[HODEI_ID_BUF])
{
    const char *dot = tok ? strchr(tok, '.') : NULL;
    char num[PAGE_TOKEN_NUM_MAX + 1];
    int64_t us;
    if (!dot || (size_t)(dot - tok) > PAGE_TOKEN_NUM_MAX || strlen(tok) > HODEI_PAGE_TOKEN_MAX)
        return false;
    memcpy(num, tok, (size_t)(dot - tok));
    num[dot - tok] = '\0';
    if (!hodei_parse_i64(num, 0, INT64_MAX, &us) || !hodei_id_valid(dot + 1))
        return false;
    *created_us = us;
    hodei_strlcpy(id, dot + 1, HODEI_ID_BUF);
    return true;
}
