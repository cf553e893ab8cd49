/* The worker agent's parser of the secrets object a job gets on stdin
 * ({"NAME":"value",...}, from RunJob). Properties: what it accepts the
 * redactor accepts too (the two agree on every limit: count, name and
 * value sizes, UTF-8), and names are unique. */
#include <string.h>

#include "agent.h"
#include "exec_int.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agent_secrets s;
    hodei_err err = {0};
    if (agent_secrets_parse(data, size, &s, &err) != HODEI_OK) {
        FUZZ_CHECK(err.msg[0] != '\0', "an error without a message");
        return 0;
    }
    FUZZ_CHECK(s.len <= HODEI_EXEC_SECRETS_MAX, "%zu secrets", s.len);
    exec_redactor red;
    hodei_status st = exec_redactor_init(&red, s.items, s.len, &err);
    FUZZ_CHECK(st == HODEI_OK, "parsed, but the redactor refuses: %s", err.msg);
    exec_redactor_fini(&red);
    agent_secrets_free(&s);
    return 0;
}
