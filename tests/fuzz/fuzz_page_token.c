/* Page tokens of ListJobs and ListKeys (hodei_page_token_decode), which a
 * client sends back as it likes. Properties: a token the decoder accepts
 * names a row (created_us >= 0, a valid id), and encoding that row gives a
 * token that decodes to the same row; a refused token leaves the outputs
 * untouched; an encoded token is never longer than HODEI_PAGE_TOKEN_MAX. */
#include <string.h>

#include "fuzz.h"
#include "hodei/page_token.h"

#define TOKEN_INPUT_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char tok[TOKEN_INPUT_MAX + 1];
    size_t n = size < TOKEN_INPUT_MAX ? size : TOKEN_INPUT_MAX;
    memcpy(tok, data, n);
    tok[n] = '\0'; /* the string a client sent: up to its first NUL */
    int64_t us = -7;
    char id[HODEI_ID_BUF];
    memset(id, 'Z', sizeof id);
    if (!hodei_page_token_decode(tok, &us, id)) {
        FUZZ_CHECK(us == -7 && id[0] == 'Z', "a refused token changed the outputs");
        return 0;
    }
    FUZZ_CHECK(us >= 0, "accepted a negative position %lld", (long long)us);
    FUZZ_CHECK(hodei_id_valid(id), "accepted a token whose id is not an id");
    FUZZ_CHECK(strlen(tok) <= HODEI_PAGE_TOKEN_MAX, "accepted %zu bytes", strlen(tok));
    char again[HODEI_PAGE_TOKEN_BUF];
    FUZZ_CHECK(hodei_page_token_encode(us, id, again), "cannot encode a decoded row");
    FUZZ_CHECK(strlen(again) <= HODEI_PAGE_TOKEN_MAX, "encoded %zu bytes", strlen(again));
    int64_t us2 = -1;
    char id2[HODEI_ID_BUF];
    FUZZ_CHECK(hodei_page_token_decode(again, &us2, id2), "its own token refused: %s", again);
    FUZZ_CHECK(us2 == us && strcmp(id2, id) == 0, "round trip changed the row: %s", again);
    return 0;
}
