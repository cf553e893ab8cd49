/* worker-agent/secrets.c: the strict parser of RunJob.secrets_json. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"

#define SECRET "s3cr3t-VALUE"

static hodei_status parse(const char *json, agent_secrets *out, hodei_err *err)
{
    hodei_err_clear(err);
    return agent_secrets_parse((const uint8_t *)json, json ? strlen(json) : 0, out, err);
}

static void assert_refused(const char *json, const char *needle)
{
    agent_secrets s;
    hodei_err err;
    cr_assert_eq(parse(json, &s, &err), HODEI_ERR_INVALID, "accepted: %s", json);
    cr_assert_eq(s.len, 0);
    cr_assert_null(s.items);
    cr_assert(strncmp(err.msg, "RunJob.secrets_json: ", 21) == 0, "message: %s", err.msg);
    cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    cr_assert_null(strstr(err.msg, SECRET), "a value reached the message: %s", err.msg);
}

Test(worker_secrets, empty_input_and_empty_object_are_no_secrets)
{
    agent_secrets s;
    hodei_err err;
    const char *none[] = {"", " \n\t", "{}", " { } \n"};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        cr_assert_eq(parse(none[i], &s, &err), HODEI_OK, "%s: %s", none[i], err.msg);
        cr_assert_eq(s.len, 0);
        agent_secrets_free(&s);
    }
    cr_assert_eq(agent_secrets_parse(NULL, 0, &s, &err), HODEI_OK);
    cr_assert_eq(s.len, 0);
}

Test(worker_secrets, names_and_values_with_escapes)
{
    agent_secrets s;
    hodei_err err;
    const char *json = "{ \"DB\" : \"" SECRET "\", \"Q\":\"a\\\"b\\\\c\\/d\\n\\t\","
                       " \"U\":\"\\u00e9\\u20ac\\ud83d\\ude00\", \"E\": \"\"}";
    cr_assert_eq(parse(json, &s, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(s.len, 4);
    cr_assert_str_eq(s.items[0].name, "DB");
    cr_assert_str_eq(s.items[0].value, SECRET);
    cr_assert_str_eq(s.items[1].value, "a\"b\\c/d\n\t");
    cr_assert_str_eq(s.items[2].value, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    cr_assert_str_eq(s.items[3].name, "E");
    cr_assert_str_eq(s.items[3].value, "");
    agent_secrets_free(&s);
    cr_assert_eq(s.len, 0);
    cr_assert_null(s.items);
    agent_secrets_free(&s); /* twice is harmless */
}

Test(worker_secrets, malformed_input_is_refused_naming_where)
{
    assert_refused("[]", "must be one JSON object");
    assert_refused("\"x\"", "must be one JSON object");
    assert_refused("{\"A\":\"" SECRET "\"", "expected ',' or '}'");
    assert_refused("{\"A\":\"" SECRET "\" \"B\":\"x\"}", "expected ',' or '}'");
    assert_refused("{\"A\":\"" SECRET "\",}", "expected a secret name");
    assert_refused("{\"A\" \"x\"}", "expected ':' after \"A\"");
    assert_refused("{\"A\":\"" SECRET "\"} x", "unexpected text after the object");
    assert_refused("{\"A\":\"" SECRET "\"}{}", "unexpected text after the object");
    assert_refused("{A:\"x\"}", "expected a secret name");
    assert_refused("{\"\":\"x\"}", "expected a secret name");
}

Test(worker_secrets, values_must_be_proper_strings)
{
    assert_refused("{\"N\": 5}", "value of \"N\" must be a JSON string");
    assert_refused("{\"N\": null}", "value of \"N\"");
    assert_refused("{\"N\": {\"x\":\"y\"}}", "value of \"N\"");
    assert_refused("{\"N\": \"" SECRET "\nraw\"}", "value of \"N\"");    /* raw control */
    assert_refused("{\"N\": \"" SECRET "\\u0000\"}", "value of \"N\"");  /* NUL */
    assert_refused("{\"N\": \"" SECRET "\\ud83d\"}", "value of \"N\"");  /* lone high */
    assert_refused("{\"N\": \"" SECRET "\\ude00\"}", "value of \"N\"");  /* lone low */
    assert_refused("{\"N\": \"" SECRET "\\x\"}", "value of \"N\"");      /* bad escape */
    assert_refused("{\"N\": \"" SECRET "\\u12G4\"}", "value of \"N\"");  /* bad hex */
    assert_refused("{\"N\": \"" SECRET "\xc3\x28\"}", "value of \"N\""); /* bad UTF-8 */
    assert_refused("{\"N\": \"" SECRET, "value of \"N\"");               /* unterminated */
}

Test(worker_secrets, duplicates_and_limits)
{
    assert_refused("{\"A\":\"x\",\"A\":\"" SECRET "\"}", "name \"A\" twice");
    /* The edge's SetSecret takes values of HODEI_SECRET_VALUE_MAX bytes: the
     * agent takes the same, and refuses one byte more naming the limit. */
    static char json[HODEI_SECRET_VALUE_MAX + 64];
    int n = snprintf(json, sizeof json, "{\"BIG\":\"");
    memset(json + n, 'v', HODEI_SECRET_VALUE_MAX);
    snprintf(json + n + HODEI_SECRET_VALUE_MAX, 8, "\"}");
    agent_secrets s;
    hodei_err err;
    cr_assert_eq(parse(json, &s, &err), HODEI_OK, "a value of the largest size: %s", err.msg);
    cr_assert_eq(strlen(s.items[0].value), HODEI_SECRET_VALUE_MAX);
    agent_secrets_free(&s);
    snprintf(json + n + HODEI_SECRET_VALUE_MAX, 8, "v\"}");
    assert_refused(json, "at most 8192 bytes");
    n = snprintf(json, sizeof json, "{\"");
    memset(json + n, 'k', HODEI_EXEC_SECRET_NAME_MAX);
    snprintf(json + n + HODEI_EXEC_SECRET_NAME_MAX, 16, "\":\"x\"}");
    assert_refused(json, "expected a secret name");
    size_t used = (size_t)snprintf(json, sizeof json, "{");
    for (int i = 0; i <= HODEI_EXEC_SECRETS_MAX; i++)
        used +=
            (size_t)snprintf(json + used, sizeof json - used, "%s\"K%d\":\"v\"", i ? "," : "", i);
    snprintf(json + used, sizeof json - used, "}");
    assert_refused(json, "more than 64 secrets");
}
