#include <criterion/criterion.h>
#include <string.h>

#include "hodei/id.h"
#include "hodei/status.h"
#include "hodei/util.h"

Test(id, new_ids_are_valid_v7_and_unique)
{
    char a[HODEI_ID_BUF], b[HODEI_ID_BUF];
    hodei_id_new(a);
    hodei_id_new(b);
    cr_assert(hodei_id_valid(a));
    cr_assert_eq(a[14], '7', "version nibble of %s", a);
    cr_assert_str_neq(a, b);
}

Test(id, rejects_malformed)
{
    cr_assert_not(hodei_id_valid(""));
    cr_assert_not(hodei_id_valid("0190b1c2-0000-7000-8000-00000000000"));
    cr_assert_not(hodei_id_valid("0190b1c2x0000-7000-8000-000000000000"));
    cr_assert_not(hodei_id_valid("0190b1c2-0000-7000-8000-00000000000g"));
    cr_assert(hodei_id_valid("0190B1C2-0000-7000-8000-000000000000"));
}

Test(util, parse_i64_is_strict)
{
    int64_t v = 0;
    cr_assert(hodei_parse_i64("42", 0, 100, &v));
    cr_assert_eq(v, 42);
    cr_assert_not(hodei_parse_i64("42x", 0, 100, &v));
    cr_assert_not(hodei_parse_i64("", 0, 100, &v));
    cr_assert_not(hodei_parse_i64("101", 0, 100, &v));
    cr_assert_not(hodei_parse_i64("-1", 0, 100, &v));
}

Test(util, parse_duration_units)
{
    int64_t ms = 0;
    cr_assert(hodei_parse_duration_ms("250ms", &ms));
    cr_assert_eq(ms, 250);
    cr_assert(hodei_parse_duration_ms("5s", &ms));
    cr_assert_eq(ms, 5000);
    cr_assert(hodei_parse_duration_ms("2m", &ms));
    cr_assert_eq(ms, 120000);
    cr_assert(hodei_parse_duration_ms("7", &ms));
    cr_assert_eq(ms, 7);
    cr_assert_not(hodei_parse_duration_ms("5 s", &ms));
    cr_assert_not(hodei_parse_duration_ms("-5s", &ms));
    cr_assert_not(hodei_parse_duration_ms("s", &ms));
}

Test(util, utf8)
{
    cr_assert(hodei_utf8_valid("héllo", strlen("héllo")));
    cr_assert_not(hodei_utf8_valid("\xc3", 1));
    cr_assert_not(hodei_utf8_valid("\xed\xa0\x80", 3)); /* surrogate */
    cr_assert_not(hodei_utf8_valid("\xc0\xaf", 2));     /* overlong */
}

Test(util, strlcpy_truncates_and_reports)
{
    char b[4];
    cr_assert(hodei_strlcpy(b, "abc", sizeof b));
    cr_assert_not(hodei_strlcpy(b, "abcd", sizeof b));
    cr_assert_str_eq(b, "abc");
}

Test(status, names)
{
    hodei_err e;
    cr_assert_eq(hodei_err_set(&e, HODEI_ERR_INVALID, "spec.%s bad", "priority"),
                 HODEI_ERR_INVALID);
    cr_assert_str_eq(e.msg, "spec.priority bad");
    cr_assert_str_eq(hodei_status_str(HODEI_ERR_NOT_FOUND), "not_found");
}

#include "hodei/buf.h"

Test(buf, grows_until_max_then_fails)
{
    hodei_buf b;
    hodei_buf_init(&b, 8);
    cr_assert(hodei_buf_puts(&b, "abcd"));
    cr_assert(hodei_buf_printf(&b, "%d", 123));
    cr_assert_str_eq(b.data, "abcd123");
    cr_assert_not(hodei_buf_puts(&b, "xy"));
    cr_assert(b.failed);
    cr_assert_not(hodei_buf_putc(&b, 'z'), "stays failed");
    hodei_buf_fini(&b);
}

Test(buf, hex_round_trip)
{
    hodei_buf b;
    hodei_buf_init(&b, 64);
    unsigned char in[] = {0x00, 0x7f, 0xff, 0x10};
    cr_assert(hodei_buf_hex(&b, in, sizeof in));
    cr_assert_str_eq(b.data, "007fff10");
    unsigned char out[4];
    cr_assert_eq(hodei_hex_decode(b.data, b.len, out, sizeof out), 4);
    cr_assert_arr_eq(in, out, 4);
    cr_assert_eq(hodei_hex_decode("0g", 2, out, sizeof out), -1);
    cr_assert_eq(hodei_hex_decode("abc", 3, out, sizeof out), -1);
    hodei_buf_fini(&b);
}

Test(buf, json_string_escapes)
{
    hodei_buf b;
    hodei_buf_init(&b, 256);
    cr_assert(hodei_buf_json_string(&b, "a\"b\\c\n\x01"));
    cr_assert_str_eq(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    hodei_buf_fini(&b);
}
