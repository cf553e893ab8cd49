/* Template substitution (hodei_template_subst_string), as RunTemplate fills
 * a stored template's strings with the caller's values. The input is
 * pieces separated by NUL bytes: the template string, then name and value
 * pairs (only names a template may declare are kept, as CreateTemplate
 * checks). Properties: the result equals a plain reading of the rules (a
 * declared ${name} is replaced by its value, the first declaration of a
 * name wins, anything else is copied, a value is never scanned again); the
 * parameters marked used are exactly the ones replaced; without values the
 * string is left as it is; a result past HODEI_JOB_SPEC_PACKED_MAX is
 * refused (failed) and the string left as it was; the whole-spec form gives
 * every field the same result. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "hodei/buf.h"
#include "hodei/job_spec.h"
#include "hodei/template.h"

#define PIECES_MAX (1 + 2 * HODEI_TEMPLATE_PARAMS_MAX)

/* The rules read plainly: the expected result, and which names it used. */
static char *reference(const char *in, char *const *names, const char *const *values, size_t n,
                       bool *used, size_t *len_out)
{
    hodei_buf out;
    hodei_buf_init(&out, (size_t)1 << 30);
    size_t i = 0, len = strlen(in);
    while (i < len) {
        const char *close = NULL;
        if (in[i] == '$' && i + 1 < len && in[i + 1] == '{')
            close = strchr(in + i + 2, '}');
        size_t k = n;
        if (close) {
            size_t nl = (size_t)(close - (in + i + 2));
            for (k = 0; k < n; k++)
                if (strlen(names[k]) == nl && memcmp(names[k], in + i + 2, nl) == 0)
                    break;
        }
        if (k == n) {
            hodei_buf_putc(&out, in[i++]);
            continue;
        }
        used[k] = true;
        hodei_buf_puts(&out, values[k]);
        i = (size_t)(close - in) + 1;
    }
    FUZZ_CHECK(!out.failed, "reference: out of memory");
    char *s = hodei_buf_take(&out, len_out);
    return s ? s : strdup("");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    FUZZ_CHECK(copy != NULL, "out of memory");
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *piece[PIECES_MAX];
    size_t np = 0;
    for (size_t at = 0; np < PIECES_MAX;) {
        piece[np++] = copy + at;
        const char *nul = memchr(copy + at, '\0', size + 1 - at);
        at = (size_t)(nul - copy) + 1;
        if (at > size)
            break;
    }
    char *names[HODEI_TEMPLATE_PARAMS_MAX];
    const char *values[HODEI_TEMPLATE_PARAMS_MAX];
    size_t n = 0;
    for (size_t p = 1; p + 1 < np; p += 2) {
        if (!hodei_template_param_valid(piece[p], strlen(piece[p])))
            continue;
        names[n] = (char *)piece[p];
        values[n++] = piece[p + 1];
    }

    /* without values: marks only, the string stays */
    hodei_template_subst marks = {.names = names, .n = n, .values = NULL};
    char *s = strdup(piece[0]);
    char *before = s;
    hodei_template_subst_string(&marks, &s);
    FUZZ_CHECK(s == before && strcmp(s, piece[0]) == 0, "changed without values");
    free(s);

    bool want_used[HODEI_TEMPLATE_PARAMS_MAX] = {false};
    size_t want_len = 0;
    char *want = reference(piece[0], names, values, n, want_used, &want_len);
    hodei_template_subst t = {.names = names, .n = n, .values = values};
    s = strdup(piece[0]);
    hodei_template_subst_string(&t, &s);
    for (size_t k = 0; k < n; k++) {
        FUZZ_CHECK(t.used[k] == want_used[k], "parameter %s used: %d, expected %d", names[k],
                   t.used[k], want_used[k]);
        FUZZ_CHECK(marks.used[k] == want_used[k], "marks only: parameter %s", names[k]);
    }
    if (want_len > HODEI_JOB_SPEC_PACKED_MAX) {
        FUZZ_CHECK(t.failed, "a result of %zu bytes was accepted", want_len);
        FUZZ_CHECK(strcmp(s, piece[0]) == 0, "a refused substitution changed the string");
    } else {
        FUZZ_CHECK(!t.failed, "a result of %zu bytes was refused", want_len);
        FUZZ_CHECK(strlen(s) == want_len && strcmp(s, want) == 0,
                   "result differs from the rules (%zu vs %zu bytes)", strlen(s), want_len);
    }

    /* the whole spec: every field the same as the one string */
    Hodei__V1__JobSpec spec = HODEI__V1__JOB_SPEC__INIT;
    Hodei__V1__ShellCommand cmd = HODEI__V1__SHELL_COMMAND__INIT;
    char *args[1] = {strdup(piece[0])};
    spec.name = strdup(piece[0]);
    cmd.command = strdup(piece[0]);
    cmd.args = args;
    cmd.n_args = 1;
    spec.command = &cmd;
    spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    hodei_template_subst ts = {.names = names, .n = n, .values = values};
    hodei_template_subst_spec(&ts, &spec);
    /* the strings filled in for one spec share one budget, the largest
     * spec: each field is the one string filled in or left as it was, as
     * many filled as fit, all of them when nothing was refused */
    const char *fields[3] = {spec.name, cmd.command, args[0]};
    size_t filled = 0;
    for (int f = 0; f < 3; f++) {
        bool is_filled = strcmp(fields[f], s) == 0;
        FUZZ_CHECK(is_filled || strcmp(fields[f], piece[0]) == 0,
                   "spec field %d is neither the one string nor left alone", f);
        filled += is_filled;
        FUZZ_CHECK(ts.failed || is_filled, "spec field %d differs from the one string", f);
    }
    if (ts.failed)
        FUZZ_CHECK(3 * want_len > HODEI_JOB_SPEC_PACKED_MAX, "3 strings of %zu bytes were refused",
                   want_len);
    if (ts.failed && strcmp(s, piece[0]) != 0)
        FUZZ_CHECK(filled * want_len <= HODEI_JOB_SPEC_PACKED_MAX &&
                       (filled + 1) * want_len > HODEI_JOB_SPEC_PACKED_MAX,
                   "%zu strings of %zu bytes filled in", filled, want_len);
    free(spec.name);
    free(cmd.command);
    free(args[0]);
    free(s);
    free(want);
    free(copy);
    return 0;
}
