/* The output redactor. Input: secret values, then the job's output.
 *   byte 0: number of secrets (mod 5), byte 1: where to split the output
 *   then each secret as <len byte><len bytes>, the rest is the output.
 * The output is redacted as the agent does it, in two pieces (stop at a
 * partial match at the end of the first, carry the rest over).
 * Property: no secret value of HODEI_EXEC_SECRET_REDACT_MIN bytes or more,
 * nor any such line of one, survives in the redacted output (an occurrence
 * inside a "[REDACTED]" marker is the marker, not the secret). */
#include <string.h>

#include "exec_int.h"
#include "fuzz.h"
#include "hodei/util.h"

#define SECRETS_MAX 4

static const char marker[] = HODEI_EXEC_REDACTED;
#define MARKER_LEN (sizeof marker - 1)

/* Whether [pos, pos+len) of out lies within one "[REDACTED]" marker. */
static bool inside_marker(const char *out, size_t out_len, size_t pos, size_t len)
{
    size_t from = pos + len > MARKER_LEN ? pos + len - MARKER_LEN : 0;
    for (size_t m = from; m <= pos && m + MARKER_LEN <= out_len; m++)
        if (memcmp(out + m, marker, MARKER_LEN) == 0)
            return true;
    return false;
}

static void check_absent(const char *out, size_t out_len, const char *v, size_t len)
{
    if (len < HODEI_EXEC_SECRET_REDACT_MIN || len > out_len)
        return;
    for (size_t p = 0; p + len <= out_len; p++)
        if (memcmp(out + p, v, len) == 0)
            FUZZ_CHECK(inside_marker(out, out_len, p, len), "secret (%zu bytes) at %zu survives",
                       len, p);
}

/* Each line of a value (output reaches the redactor line by line). */
static void check_value(const char *out, size_t out_len, const char *value)
{
    const char *p = value;
    for (;;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        check_absent(out, out_len, p, len);
        if (!nl)
            return;
        p = nl + 1;
    }
}

static bool has_bracket(const char *s)
{
    return strchr(s, '[') || strchr(s, ']');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t n = data[0] % (SECRETS_MAX + 1), pos = 2;
    char vals[SECRETS_MAX][256];
    hodei_exec_secret secrets[SECRETS_MAX];
    static const char *const names[SECRETS_MAX] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < n; i++) {
        if (pos >= size)
            return 0;
        size_t len = data[pos++];
        if (len > size - pos)
            return 0;
        memcpy(vals[i], data + pos, len);
        vals[i][len] = '\0';
        pos += len;
        /* Values are UTF-8 without NUL (the parser refuses others), and
         * brackets are left out so that the marker cannot hide a match. */
        if (strlen(vals[i]) != len || !hodei_utf8_valid(vals[i], len) || has_bracket(vals[i]))
            return 0;
        secrets[i] = (hodei_exec_secret){.name = names[i], .value = vals[i]};
    }
    const char *in = (const char *)data + pos;
    size_t in_len = size - pos, split = in_len ? data[1] % (in_len + 1) : 0;
    exec_redactor red;
    hodei_err err = {0};
    if (exec_redactor_init(&red, secrets, n, &err) != HODEI_OK)
        return 0;
    char *out = malloc(EXEC_REDACT_OUT_MAX(split) + EXEC_REDACT_OUT_MAX(in_len));
    if (!out)
        abort();
    size_t o1 = 0, o2 = 0;
    size_t used = exec_redact(&red, in, split, true, out, &o1);
    FUZZ_CHECK(used <= split, "consumed %zu of %zu", used, split);
    size_t rest = in_len - used;
    size_t used2 = exec_redact(&red, in + used, rest, false, out + o1, &o2);
    FUZZ_CHECK(used2 == rest, "whole-input pass consumed %zu of %zu", used2, rest);
    FUZZ_CHECK(o1 <= EXEC_REDACT_OUT_MAX(split) && o2 <= EXEC_REDACT_OUT_MAX(rest),
               "wrote %zu and %zu past the bound", o1, o2);
    for (size_t i = 0; i < n; i++)
        check_value(out, o1 + o2, vals[i]);
    free(out);
    exec_redactor_fini(&red);
    return 0;
}
