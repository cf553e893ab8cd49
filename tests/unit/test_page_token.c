/* libs/domain page_token.c: the keyset position a list hands back and
 * takes again. A token the server made always decodes to the row it came
 * from; anything else is refused without touching the outputs. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "hodei/page_token.h"

#define ID "0190b1c2-0000-7000-8000-000000000001"

Test(page_token, round_trip)
{
    char tok[HODEI_PAGE_TOKEN_BUF], id[HODEI_ID_BUF];
    int64_t us = 0;
    cr_assert(hodei_page_token_encode(1733580000123456, ID, tok));
    cr_assert_str_eq(tok, "1733580000123456." ID);
    cr_assert(hodei_page_token_decode(tok, &us, id));
    cr_assert_eq(us, 1733580000123456);
    cr_assert_str_eq(id, ID);
}

Test(page_token, extremes_fit)
{
    char tok[HODEI_PAGE_TOKEN_BUF], id[HODEI_ID_BUF];
    int64_t us = -1;
    cr_assert(hodei_page_token_encode(INT64_MAX, ID, tok));
    cr_assert_leq(strlen(tok), HODEI_PAGE_TOKEN_MAX);
    cr_assert(hodei_page_token_decode(tok, &us, id));
    cr_assert_eq(us, INT64_MAX);
    cr_assert(hodei_page_token_encode(0, ID, tok));
    cr_assert(hodei_page_token_decode(tok, &us, id));
    cr_assert_eq(us, 0);
}

Test(page_token, encode_refuses_what_would_not_decode)
{
    char tok[HODEI_PAGE_TOKEN_BUF] = "x";
    cr_assert_not(hodei_page_token_encode(-1, ID, tok));
    cr_assert_str_eq(tok, "");
    cr_assert_not(hodei_page_token_encode(5, "not-an-id", tok));
    cr_assert_str_eq(tok, "");
}

Test(page_token, decode_refuses_anything_else)
{
    const char *bad[] = {
        NULL,
        "",
        ".",
        "123",
        ID,
        "." ID,
        "abc." ID,
        "-5." ID,
        "12x." ID,
        "99999999999999999999." ID, /* past INT64_MAX */
        "1." ID "0",
        "1." ID ".",
        "1.0190b1c2-0000-7000-8000-00000000000g",
        "00000000000000000000000000000001." ID, /* over 64 bytes in all */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t us = 42;
        char id[HODEI_ID_BUF] = "untouched";
        cr_assert_not(hodei_page_token_decode(bad[i], &us, id), "accepted [%zu] %s", i,
                      bad[i] ? bad[i] : "(null)");
        cr_assert_eq(us, 42);
        cr_assert_str_eq(id, "untouched");
    }
}
