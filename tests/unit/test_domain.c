/* libs/domain: state machines and job spec validation. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/artifact_ref.h"
#include "hodei/image_ref.h"
#include "hodei/job_spec.h"
#include "hodei/job_state.h"
#include "hodei/worker_state.h"

/* ================================================================ job states */

#define J_COUNT 8
/* Expected: row = from, column = to, in enum order
 * UNSPECIFIED PENDING ASSIGNED RUNNING SUCCEEDED FAILED CANCELLED TIMEOUT. */
static const bool job_expected[J_COUNT][J_COUNT] = {
    /* UNSPECIFIED */ {0, 0, 0, 0, 0, 0, 0, 0},
    /* PENDING     */ {0, 0, 1, 0, 0, 1, 1, 0},
    /* ASSIGNED    */ {0, 1, 0, 1, 0, 1, 1, 1},
    /* RUNNING     */ {0, 1, 0, 0, 1, 1, 1, 1},
    /* SUCCEEDED   */ {0, 0, 0, 0, 0, 0, 0, 0},
    /* FAILED      */ {0, 0, 0, 0, 0, 0, 0, 0},
    /* CANCELLED   */ {0, 0, 0, 0, 0, 0, 0, 0},
    /* TIMEOUT     */ {0, 0, 0, 0, 0, 0, 0, 0},
};
static const char *const job_names[J_COUNT] = {
    "UNSPECIFIED", "PENDING", "ASSIGNED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "TIMEOUT",
};

Test(job_state, every_pair_matches_the_table)
{
    for (int from = 0; from < J_COUNT; from++) {
        for (int to = 0; to < J_COUNT; to++) {
            bool got = hodei_job_transition_allowed(from, to);
            cr_expect_eq(got, job_expected[from][to], "%s -> %s: got %d", job_names[from],
                         job_names[to], got);
            hodei_err err = {0};
            hodei_status st = hodei_job_transition_check(from, to, &err);
            if (job_expected[from][to]) {
                cr_expect_eq(st, HODEI_OK, "%s -> %s", job_names[from], job_names[to]);
                continue;
            }
            cr_expect_eq(st, HODEI_ERR_PRECONDITION);
            cr_expect_eq(err.code, HODEI_ERR_PRECONDITION);
            cr_expect(strstr(err.msg, job_names[from]) && strstr(err.msg, job_names[to]),
                      "message names both states: %s", err.msg);
        }
    }
}

Test(job_state, check_message_reads_from_arrow_to)
{
    hodei_err err = {0};
    cr_assert_eq(hodei_job_transition_check(HODEI__V1__JOB_STATE__JOB_STATE_SUCCEEDED,
                                            HODEI__V1__JOB_STATE__JOB_STATE_RUNNING, &err),
                 HODEI_ERR_PRECONDITION);
    cr_assert_str_eq(err.msg, "job state: SUCCEEDED -> RUNNING is not allowed");
    /* NULL err is allowed */
    cr_assert_eq(hodei_job_transition_check(4, 3, NULL), HODEI_ERR_PRECONDITION);
}

Test(job_state, unknown_values_go_nowhere)
{
    const int bad[] = {-1, 8, 99, 1 << 20};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int s = 0; s < J_COUNT; s++) {
            cr_expect_not(hodei_job_transition_allowed(bad[i], s), "%d -> %d", bad[i], s);
            cr_expect_not(hodei_job_transition_allowed(s, bad[i]), "%d -> %d", s, bad[i]);
        }
        cr_expect_str_eq(hodei_job_state_name(bad[i]), "UNSPECIFIED");
        cr_expect_not(hodei_job_state_terminal(bad[i]));
    }
}

Test(job_state, names_and_terminal)
{
    for (int s = 0; s < J_COUNT; s++)
        cr_expect_str_eq(hodei_job_state_name(s), job_names[s]);
    const bool terminal[J_COUNT] = {0, 0, 0, 0, 1, 1, 1, 1};
    for (int s = 0; s < J_COUNT; s++)
        cr_expect_eq(hodei_job_state_terminal(s), terminal[s], "%s", job_names[s]);
}

Test(job_state, parse_accepts_three_spellings)
{
    for (int s = 1; s < J_COUNT; s++) {
        char lower[HODEI_JOB_STATE_NAME_MAX], prefixed[HODEI_JOB_STATE_NAME_MAX];
        size_t n = strlen(job_names[s]);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)(job_names[s][i] | (job_names[s][i] ? 0x20 : 0));
        snprintf(prefixed, sizeof prefixed, "JOB_STATE_%s", job_names[s]);
        const char *forms[] = {job_names[s], lower, prefixed};
        for (size_t f = 0; f < 3; f++) {
            Hodei__V1__JobState out = 0;
            cr_expect(hodei_job_state_parse(forms[f], &out), "%s", forms[f]);
            cr_expect_eq((int)out, s, "%s", forms[f]);
        }
    }
    Hodei__V1__JobState out = HODEI__V1__JOB_STATE__JOB_STATE_RUNNING;
    cr_expect(hodei_job_state_parse("job_state_Failed", &out));
    cr_expect_eq(out, HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
}

Test(job_state, parse_refuses_unknown_and_unspecified)
{
    const char *bad[] = {"",         "UNSPECIFIED", "JOB_STATE_UNSPECIFIED", "JOB_STATE_", "PEND",
                         "PENDINGX", " PENDING",    "WORKER_STATE_READY",    "READY",      "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Hodei__V1__JobState out = HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT;
        cr_expect_not(hodei_job_state_parse(bad[i], &out), "\"%s\"", bad[i]);
        cr_expect_eq(out, HODEI__V1__JOB_STATE__JOB_STATE_TIMEOUT, "untouched on failure");
    }
    Hodei__V1__JobState out = 0;
    cr_expect_not(hodei_job_state_parse(NULL, &out));
}

/* ============================================================= worker states */

#define W_COUNT 9
/* Enum order: UNSPECIFIED CREATING CONNECTING READY BUSY DRAINING TERMINATING
 * TERMINATED LOST. */
static const bool worker_expected[W_COUNT][W_COUNT] = {
    /* UNSPECIFIED */ {0, 0, 0, 0, 0, 0, 0, 0, 0},
    /* CREATING    */ {0, 0, 1, 0, 0, 0, 1, 0, 1},
    /* CONNECTING  */ {0, 0, 0, 1, 0, 0, 1, 0, 1},
    /* READY       */ {0, 0, 0, 0, 1, 1, 0, 0, 1},
    /* BUSY        */ {0, 0, 0, 1, 0, 1, 0, 0, 1},
    /* DRAINING    */ {0, 0, 0, 0, 0, 0, 1, 0, 1},
    /* TERMINATING */ {0, 0, 0, 0, 0, 0, 0, 1, 0},
    /* TERMINATED  */ {0, 0, 0, 0, 0, 0, 0, 0, 0},
    /* LOST        */ {0, 0, 0, 0, 0, 0, 1, 1, 0},
};
static const char *const worker_names[W_COUNT] = {
    "UNSPECIFIED", "CREATING",    "CONNECTING", "READY", "BUSY",
    "DRAINING",    "TERMINATING", "TERMINATED", "LOST",
};

Test(worker_state, every_pair_matches_the_table)
{
    for (int from = 0; from < W_COUNT; from++) {
        for (int to = 0; to < W_COUNT; to++) {
            bool got = hodei_worker_transition_allowed(from, to);
            cr_expect_eq(got, worker_expected[from][to], "%s -> %s: got %d", worker_names[from],
                         worker_names[to], got);
            hodei_err err = {0};
            hodei_status st = hodei_worker_transition_check(from, to, &err);
            if (worker_expected[from][to]) {
                cr_expect_eq(st, HODEI_OK, "%s -> %s", worker_names[from], worker_names[to]);
                continue;
            }
            cr_expect_eq(st, HODEI_ERR_PRECONDITION);
            cr_expect(strstr(err.msg, worker_names[from]) && strstr(err.msg, worker_names[to]),
                      "message names both states: %s", err.msg);
        }
    }
}

Test(worker_state, check_message_and_unknown_values)
{
    hodei_err err = {0};
    cr_assert_eq(hodei_worker_transition_check(7, 3, &err), HODEI_ERR_PRECONDITION);
    cr_assert_str_eq(err.msg, "worker state: TERMINATED -> READY is not allowed");
    const int bad[] = {-1, 9, 42};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int s = 0; s < W_COUNT; s++) {
            cr_expect_not(hodei_worker_transition_allowed(bad[i], s));
            cr_expect_not(hodei_worker_transition_allowed(s, bad[i]));
        }
        cr_expect_str_eq(hodei_worker_state_name(bad[i]), "UNSPECIFIED");
    }
}

Test(worker_state, names_parse_terminal)
{
    for (int s = 0; s < W_COUNT; s++) {
        cr_expect_str_eq(hodei_worker_state_name(s), worker_names[s]);
        cr_expect_eq(hodei_worker_state_terminal(s), s == 7, "%s", worker_names[s]);
    }
    for (int s = 1; s < W_COUNT; s++) {
        char prefixed[HODEI_WORKER_STATE_NAME_MAX];
        snprintf(prefixed, sizeof prefixed, "WORKER_STATE_%s", worker_names[s]);
        Hodei__V1__WorkerState out = 0;
        cr_expect(hodei_worker_state_parse(prefixed, &out), "%s", prefixed);
        cr_expect_eq((int)out, s);
        out = 0;
        cr_expect(hodei_worker_state_parse(worker_names[s], &out));
        cr_expect_eq((int)out, s);
    }
    Hodei__V1__WorkerState out = HODEI__V1__WORKER_STATE__WORKER_STATE_BUSY;
    cr_expect(hodei_worker_state_parse("terminating", &out));
    cr_expect_eq(out, HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING);
    cr_expect_not(hodei_worker_state_parse("unspecified", &out));
    cr_expect_not(hodei_worker_state_parse("PENDING", &out));
    cr_expect_not(hodei_worker_state_parse("", &out));
    cr_expect_eq(out, HODEI__V1__WORKER_STATE__WORKER_STATE_TERMINATING);
}

/* ========================================================= spec validation */

#define FX_ENV_MAX (HODEI_JOB_ENV_MAX + 1)
#define FX_LIST_MAX (HODEI_JOB_LABELS_MAX + 1)
#define FX_ARGS_MAX (HODEI_JOB_ARGS_MAX + 1)
#define FX_KEY_MAX 16
#define FX_STRINGS_MAX 32

/* One valid request with every field set; tests break one thing each. */
static struct {
    Hodei__V1__QueueJobRequest req;
    Hodei__V1__JobSpec spec;
    Hodei__V1__ShellCommand cmd;
    Hodei__V1__Script script;
    Hodei__V1__ResourceRequirements res;
    Hodei__V1__JobSpec__EnvEntry env[FX_ENV_MAX];
    Hodei__V1__JobSpec__EnvEntry *env_p[FX_ENV_MAX];
    Hodei__V1__JobSpec__LabelsEntry labels[FX_LIST_MAX];
    Hodei__V1__JobSpec__LabelsEntry *labels_p[FX_LIST_MAX];
    Hodei__V1__JobSpec__ConstraintsEntry cons[FX_LIST_MAX];
    Hodei__V1__JobSpec__ConstraintsEntry *cons_p[FX_LIST_MAX];
    Hodei__V1__Artifact in[FX_LIST_MAX], out[FX_LIST_MAX];
    Hodei__V1__Artifact *in_p[FX_LIST_MAX], *out_p[FX_LIST_MAX];
    char *args[FX_ARGS_MAX];
    char *secrets[FX_LIST_MAX];
    char keys[FX_ENV_MAX][FX_KEY_MAX]; /* generated unique keys */
    char *strings[FX_STRINGS_MAX];     /* heap strings freed by fx_fini */
    size_t n_strings;
    hodei_err err;
} fx;

/* A heap string of n copies of c, freed after the test. */
static char *fx_rep(char c, size_t n)
{
    cr_assert_lt(fx.n_strings, FX_STRINGS_MAX);
    char *s = malloc(n + 1);
    cr_assert_not_null(s);
    memset(s, c, n);
    s[n] = '\0';
    fx.strings[fx.n_strings++] = s;
    return s;
}

static void fx_lists_init(void)
{
    for (size_t i = 0; i < FX_ENV_MAX; i++) {
        snprintf(fx.keys[i], FX_KEY_MAX, "K%zu", i);
        hodei__v1__job_spec__env_entry__init(&fx.env[i]);
        fx.env[i].key = fx.keys[i];
        fx.env[i].value = "v";
        fx.env_p[i] = &fx.env[i];
    }
    for (size_t i = 0; i < FX_LIST_MAX; i++) {
        hodei__v1__job_spec__labels_entry__init(&fx.labels[i]);
        fx.labels[i].key = fx.keys[i];
        fx.labels[i].value = "x";
        fx.labels_p[i] = &fx.labels[i];
        hodei__v1__job_spec__constraints_entry__init(&fx.cons[i]);
        fx.cons[i].key = fx.keys[i];
        fx.cons[i].value = "y";
        fx.cons_p[i] = &fx.cons[i];
        hodei__v1__artifact__init(&fx.in[i]);
        fx.in[i].source = "s3://bucket/in";
        fx.in[i].destination = "work/in";
        fx.in_p[i] = &fx.in[i];
        hodei__v1__artifact__init(&fx.out[i]);
        fx.out[i].source = "work/out";
        fx.out[i].destination = "s3://bucket/out";
        fx.out_p[i] = &fx.out[i];
        fx.secrets[i] = fx.keys[i];
    }
    for (size_t i = 0; i < FX_ARGS_MAX; i++)
        fx.args[i] = "arg";
}

static void fx_init(void)
{
    memset(&fx, 0, sizeof fx);
    fx_lists_init();
    hodei__v1__shell_command__init(&fx.cmd);
    fx.cmd.command = "/bin/echo";
    fx.cmd.args = fx.args;
    fx.cmd.n_args = 2;
    hodei__v1__script__init(&fx.script);
    fx.script.interpreter = "/bin/bash";
    fx.script.content = "echo hi\n";
    hodei__v1__resource_requirements__init(&fx.res);
    fx.res.cpu_cores = 0.5;
    fx.res.memory_bytes = 512 << 20;
    fx.res.architecture = "amd64";
    Hodei__V1__JobSpec *s = &fx.spec;
    hodei__v1__job_spec__init(s);
    s->name = "nightly build";
    s->payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    s->command = &fx.cmd;
    s->resources = &fx.res;
    s->env = fx.env_p, s->n_env = 1;
    s->labels = fx.labels_p, s->n_labels = 1;
    s->constraints = fx.cons_p, s->n_constraints = 1;
    s->inputs = fx.in_p, s->n_inputs = 1;
    s->outputs = fx.out_p, s->n_outputs = 1;
    s->secret_refs = fx.secrets, s->n_secret_refs = 1;
    s->timeout_ms = 60000;
    s->priority = 10;
    s->max_attempts = 3;
    s->provider = "local";
    s->image = "debian:12";
    s->working_dir = "/tmp";
    hodei__v1__queue_job_request__init(&fx.req);
    fx.req.spec = s;
    fx.req.idempotency_key = "build-42";
}

static void fx_fini(void)
{
    for (size_t i = 0; i < fx.n_strings; i++)
        free(fx.strings[i]);
}

TestSuite(spec, .init = fx_init, .fini = fx_fini);

#define EXPECT_OK()                                                                                \
    do {                                                                                           \
        hodei_status st_ = hodei_queue_request_validate(&fx.req, &fx.err);                         \
        cr_assert_eq(st_, HODEI_OK, "expected valid, got: %s", fx.err.msg);                        \
    } while (0)

/* Invalid, and the message starts with the field's path. */
#define EXPECT_BAD(prefix)                                                                         \
    do {                                                                                           \
        hodei_status st_ = hodei_queue_request_validate(&fx.req, &fx.err);                         \
        cr_assert_eq(st_, HODEI_ERR_INVALID, "expected invalid (%s)", prefix);                     \
        cr_assert_eq(fx.err.code, HODEI_ERR_INVALID);                                              \
        cr_assert(strncmp(fx.err.msg, prefix, strlen(prefix)) == 0,                                \
                  "message \"%s\" should start with \"%s\"", fx.err.msg, prefix);                  \
    } while (0)

Test(spec, full_valid_request_passes)
{
    EXPECT_OK();
    cr_assert_eq(hodei_job_spec_validate(&fx.spec, &fx.err), HODEI_OK);
}

Test(spec, spec_is_required)
{
    fx.req.spec = NULL;
    EXPECT_BAD("spec: required");
    cr_assert_eq(hodei_job_spec_validate(NULL, &fx.err), HODEI_ERR_INVALID);
    cr_assert_str_eq(fx.err.msg, "spec: required");
    cr_assert_eq(hodei_queue_request_validate(NULL, &fx.err), HODEI_ERR_INVALID);
}

Test(spec, minimal_spec_passes)
{
    Hodei__V1__JobSpec s = HODEI__V1__JOB_SPEC__INIT;
    s.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    s.command = &fx.cmd;
    fx.cmd.n_args = 0;
    cr_assert_eq(hodei_job_spec_validate(&s, &fx.err), HODEI_OK, "%s", fx.err.msg);
}

Test(spec, payload_is_required)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD__NOT_SET;
    EXPECT_BAD("spec.payload: either command or script is required");
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    fx.spec.command = NULL;
    EXPECT_BAD("spec.payload: ");
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = NULL;
    EXPECT_BAD("spec.payload: ");
    fx.spec.script = &fx.script;
    EXPECT_OK();
}

Test(spec, command_length)
{
    fx.cmd.command = "";
    EXPECT_BAD("spec.command.command: required");
    fx.cmd.command = fx_rep('c', HODEI_JOB_COMMAND_MAX);
    EXPECT_OK();
    fx.cmd.command = fx_rep('c', HODEI_JOB_COMMAND_MAX + 1);
    EXPECT_BAD("spec.command.command: must be at most 4096 bytes, got 4097");
    fx.cmd.command = NULL;
    EXPECT_BAD("spec.command.command: required");
}

Test(spec, args_count_and_length)
{
    fx.cmd.n_args = HODEI_JOB_ARGS_MAX;
    EXPECT_OK();
    fx.cmd.n_args = HODEI_JOB_ARGS_MAX + 1;
    EXPECT_BAD("spec.command.args: at most 1024 entries, got 1025");
    fx.cmd.n_args = 3;
    fx.args[1] = "";
    EXPECT_OK();
    fx.args[1] = fx_rep('a', HODEI_JOB_ARG_MAX);
    EXPECT_OK();
    fx.args[2] = fx_rep('a', HODEI_JOB_ARG_MAX + 1);
    EXPECT_BAD("spec.command.args[2]: must be at most 65536 bytes");
}

Test(spec, script_fields)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = &fx.script;
    EXPECT_OK();
    fx.script.interpreter = "";
    EXPECT_BAD("spec.script.interpreter: required");
    fx.script.interpreter = fx_rep('i', HODEI_JOB_INTERPRETER_MAX);
    EXPECT_OK();
    fx.script.interpreter = fx_rep('i', HODEI_JOB_INTERPRETER_MAX + 1);
    EXPECT_BAD("spec.script.interpreter: must be at most 256 bytes");
    fx.script.interpreter = "python3";
    fx.script.content = "";
    EXPECT_BAD("spec.script.content: required");
    fx.script.content = fx_rep('#', HODEI_JOB_SCRIPT_MAX - 4096);
    EXPECT_OK();
    fx.script.content = fx_rep('#', HODEI_JOB_SCRIPT_MAX + 1);
    EXPECT_BAD("spec.script.content: must be at most 1048576 bytes");
}

Test(spec, name_length)
{
    fx.spec.name = "";
    EXPECT_OK();
    fx.spec.name = fx_rep('n', HODEI_JOB_NAME_MAX);
    EXPECT_OK();
    fx.spec.name = fx_rep('n', HODEI_JOB_NAME_MAX + 1);
    EXPECT_BAD("spec.name: must be at most 256 bytes, got 257");
}

#define BAD_UTF8 "ok\xc3("
Test(spec, every_string_must_be_utf8)
{
    struct {
        char **field;
        const char *path;
    } cases[] = {
        {&fx.spec.name, "spec.name: must be valid UTF-8"},
        {&fx.cmd.command, "spec.command.command: must be valid UTF-8"},
        {&fx.args[1], "spec.command.args[1]: must be valid UTF-8"},
        {&fx.env[0].value, "spec.env[\"K0\"]: value must be valid UTF-8"},
        {&fx.labels[0].value, "spec.labels[\"K0\"]: value must be valid UTF-8"},
        {&fx.cons[0].value, "spec.constraints[\"K0\"]: value must be valid UTF-8"},
        {&fx.in[0].source, "spec.inputs[0].source: must be valid UTF-8"},
        {&fx.out[0].destination, "spec.outputs[0].destination: must be valid UTF-8"},
        {&fx.spec.image, "spec.image: must be valid UTF-8"},
        {&fx.spec.working_dir, "spec.working_dir: must be valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *saved = *cases[i].field;
        *cases[i].field = (i == sizeof cases / sizeof cases[0] - 1) ? "/ok\xc3(" : BAD_UTF8;
        EXPECT_BAD(cases[i].path);
        *cases[i].field = saved;
        EXPECT_OK();
    }
    fx.spec.name = "h\xc3\xa9llo \xe2\x9c\x93";
    EXPECT_OK();
}

Test(spec, script_strings_must_be_utf8)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = &fx.script;
    fx.script.interpreter = BAD_UTF8;
    EXPECT_BAD("spec.script.interpreter: must be valid UTF-8");
    fx.script.interpreter = "sh";
    fx.script.content = "echo \xff";
    EXPECT_BAD("spec.script.content: must be valid UTF-8");
}

Test(spec, env_count)
{
    fx.spec.n_env = HODEI_JOB_ENV_MAX;
    EXPECT_OK();
    fx.spec.n_env = HODEI_JOB_ENV_MAX + 1;
    EXPECT_BAD("spec.env: at most 256 entries, got 257");
}

Test(spec, env_names)
{
    const char *good[] = {"A", "_", "_x1", "PATH", "lower_case", "A1B2"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fx.env[0].key = (char *)good[i];
        EXPECT_OK();
    }
    fx.env[0].key = "1BAD";
    EXPECT_BAD("spec.env[\"1BAD\"]: name must match [A-Za-z_][A-Za-z0-9_]*");
    cr_assert_str_eq(fx.err.msg, "spec.env[\"1BAD\"]: name must match [A-Za-z_][A-Za-z0-9_]*");
    const char *bad[] = {"", "A-B", "A B", "A=B", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.env[0].key = (char *)bad[i];
        EXPECT_BAD("spec.env[");
        cr_assert(strstr(fx.err.msg, "name must match"), "%s", fx.err.msg);
    }
    fx.env[0].key = fx_rep('E', HODEI_JOB_ENV_NAME_MAX);
    EXPECT_OK();
    fx.env[0].key = fx_rep('E', HODEI_JOB_ENV_NAME_MAX + 1);
    EXPECT_BAD("spec.env[\"EEEE");
    cr_assert(strstr(fx.err.msg, "...\"]: name must be at most 256 bytes, got 257"), "%s",
              fx.err.msg);
}

Test(spec, env_key_is_quoted_safely)
{
    fx.env[0].key = "A\"\n\\";
    EXPECT_BAD("spec.env[\"A\\\"\\x0a\\\\\"]: name must match");
}

Test(spec, env_names_unique)
{
    fx.spec.n_env = 3;
    fx.env[2].key = "K0";
    EXPECT_BAD("spec.env[\"K0\"]: duplicate name");
}

Test(spec, env_values_bounded_and_never_echoed)
{
    fx.env[0].value = "";
    EXPECT_OK();
    fx.env[0].value = fx_rep('v', HODEI_JOB_ENV_VALUE_MAX);
    EXPECT_OK();
    char *secret = fx_rep('S', HODEI_JOB_ENV_VALUE_MAX + 1);
    memcpy(secret, "hunter2", 7);
    fx.env[0].value = secret;
    EXPECT_BAD("spec.env[\"K0\"]: value must be at most 65536 bytes, got 65537");
    cr_assert_null(strstr(fx.err.msg, "hunter2"), "value leaked: %s", fx.err.msg);
}

Test(spec, map_entry_pointer_missing)
{
    fx.spec.n_env = 2;
    fx.env_p[1] = NULL;
    EXPECT_BAD("spec.env: entry 1 is missing");
}

Test(spec, resources_optional)
{
    fx.spec.resources = NULL;
    EXPECT_OK();
}

Test(spec, cpu_cores)
{
    const double good[] = {0, 0.25, 1, 1024};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fx.res.cpu_cores = good[i];
        EXPECT_OK();
    }
    const double bad[] = {-0.5, 1024.5, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.res.cpu_cores = bad[i];
        EXPECT_BAD("spec.resources.cpu_cores: must be a finite number between 0 and 1024");
    }
}

Test(spec, memory_and_storage)
{
    const int64_t pib = INT64_C(1) << 50;
    fx.res.memory_bytes = pib;
    fx.res.storage_bytes = pib;
    EXPECT_OK();
    fx.res.memory_bytes = pib + 1;
    EXPECT_BAD("spec.resources.memory_bytes: must be between 0 and 1125899906842624");
    fx.res.memory_bytes = -1;
    EXPECT_BAD("spec.resources.memory_bytes: ");
    cr_assert(strstr(fx.err.msg, "got -1"), "%s", fx.err.msg);
    fx.res.memory_bytes = 0;
    fx.res.storage_bytes = pib + 1;
    EXPECT_BAD("spec.resources.storage_bytes: ");
    fx.res.storage_bytes = INT64_MIN;
    EXPECT_BAD("spec.resources.storage_bytes: ");
}

Test(spec, gpu_count)
{
    fx.res.gpu_count = HODEI_JOB_GPU_COUNT_MAX;
    EXPECT_OK();
    fx.res.gpu_count = HODEI_JOB_GPU_COUNT_MAX + 1;
    EXPECT_BAD("spec.resources.gpu_count: must be between 0 and 64, got 65");
    fx.res.gpu_count = -1;
    EXPECT_BAD("spec.resources.gpu_count: ");
}

Test(spec, architecture)
{
    const char *good[] = {"", "amd64", "arm64", "x86_64", "aarch64"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fx.res.architecture = (char *)good[i];
        EXPECT_OK();
    }
    const char *bad[] = {"sparc", "AMD64", "amd64 ", "arm"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.res.architecture = (char *)bad[i];
        EXPECT_BAD("spec.resources.architecture: must be empty or one of");
    }
    cr_assert(strstr(fx.err.msg, "got \"arm\""), "%s", fx.err.msg);
}

Test(spec, timeout)
{
    const int64_t good[] = {0, 1000, 3600000, 604800000};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fx.spec.timeout_ms = good[i];
        EXPECT_OK();
    }
    const int64_t bad[] = {1, 999, 604800001, -1, INT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.spec.timeout_ms = bad[i];
        EXPECT_BAD("spec.timeout_ms: must be 0 (server default) or between 1000 and 604800000");
    }
}

/* Labels and constraints follow the same rules; run each test on both. */
typedef struct {
    const char *path;
    size_t *count;
    char **key0, **key1, **value0;
} fx_map;

static fx_map fx_map_get(int which)
{
    if (which == 0)
        return (fx_map){"spec.labels", &fx.spec.n_labels, &fx.labels[0].key, &fx.labels[1].key,
                        &fx.labels[0].value};
    return (fx_map){"spec.constraints", &fx.spec.n_constraints, &fx.cons[0].key, &fx.cons[1].key,
                    &fx.cons[0].value};
}

static void fx_expect_map_bad(const fx_map *m, const char *rest)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s%s", m->path, rest);
    EXPECT_BAD(prefix);
}

Test(spec, labels_and_constraints_count)
{
    for (int w = 0; w < 2; w++) {
        fx_map m = fx_map_get(w);
        *m.count = HODEI_JOB_LABELS_MAX;
        EXPECT_OK();
        *m.count = HODEI_JOB_LABELS_MAX + 1;
        fx_expect_map_bad(&m, ": at most 64 entries, got 65");
        *m.count = 1;
    }
}

Test(spec, labels_and_constraints_keys)
{
    const char *good[] = {"a", "app.kubernetes.io/name", "Zone-1_b", "x/y.z"};
    const char *bad[] = {"", "has space", "k=v", "caf\xc3\xa9", "a:b"};
    for (int w = 0; w < 2; w++) {
        fx_map m = fx_map_get(w);
        for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
            *m.key0 = (char *)good[i];
            EXPECT_OK();
        }
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            *m.key0 = (char *)bad[i];
            fx_expect_map_bad(&m, "[\"");
            cr_assert(strstr(fx.err.msg, "key must be 1 to 63 characters of [a-zA-Z0-9._/-]"), "%s",
                      fx.err.msg);
        }
        *m.key0 = fx_rep('k', HODEI_JOB_LABEL_KEY_MAX);
        EXPECT_OK();
        *m.key0 = fx_rep('k', HODEI_JOB_LABEL_KEY_MAX + 1);
        fx_expect_map_bad(&m, "[\"kkk");
        cr_assert(strstr(fx.err.msg, "key must be at most 63 bytes, got 64"), "%s", fx.err.msg);
        *m.key0 = "K0";
    }
}

Test(spec, labels_and_constraints_unique_and_values)
{
    for (int w = 0; w < 2; w++) {
        fx_map m = fx_map_get(w);
        *m.count = 2;
        *m.key1 = "K0";
        fx_expect_map_bad(&m, "[\"K0\"]: duplicate key");
        *m.key1 = "K1";
        *m.value0 = fx_rep('v', HODEI_JOB_LABEL_VALUE_MAX);
        EXPECT_OK();
        *m.value0 = fx_rep('v', HODEI_JOB_LABEL_VALUE_MAX + 1);
        fx_expect_map_bad(&m, "[\"K0\"]: value must be at most 256 bytes, got 257");
        *m.value0 = "";
        EXPECT_OK();
    }
}

Test(spec, artifacts)
{
    Hodei__V1__Artifact *lists[2] = {fx.in, fx.out};
    size_t *counts[2] = {&fx.spec.n_inputs, &fx.spec.n_outputs};
    const char *paths[2] = {"spec.inputs", "spec.outputs"};
    for (int w = 0; w < 2; w++) {
        char prefix[128];
        *counts[w] = HODEI_JOB_ARTIFACTS_MAX;
        EXPECT_OK();
        *counts[w] = HODEI_JOB_ARTIFACTS_MAX + 1;
        snprintf(prefix, sizeof prefix, "%s: at most 64 entries, got 65", paths[w]);
        EXPECT_BAD(prefix);
        *counts[w] = 3;
        const char *src = lists[w][2].source, *dst = lists[w][2].destination;
        lists[w][2].source = "";
        snprintf(prefix, sizeof prefix, "%s[2].source: required", paths[w]);
        EXPECT_BAD(prefix);
        lists[w][2].source = fx_rep('s', HODEI_JOB_ARTIFACT_PATH_MAX + 1);
        snprintf(prefix, sizeof prefix, "%s[2].source: must be at most 2048 bytes", paths[w]);
        EXPECT_BAD(prefix);
        lists[w][2].source = (char *)src;
        lists[w][2].destination = fx_rep('d', HODEI_JOB_ARTIFACT_PATH_MAX + 1);
        snprintf(prefix, sizeof prefix, "%s[2].destination: must be at most 2048 bytes", paths[w]);
        EXPECT_BAD(prefix);
        lists[w][2].destination = (char *)dst;
        EXPECT_OK();
    }
    fx.out[2].destination = "";
    EXPECT_BAD("spec.outputs[2].destination: required");
}

/* One artifact field set to a value, the message expected ("" = valid). */
typedef struct {
    bool output;
    const char *source, *destination, *checksum, *credentials;
    int when;
    const char *want;
} art_case;

static void art_expect(const art_case *c)
{
    Hodei__V1__Artifact *a = c->output ? &fx.out[0] : &fx.in[0];
    a->source = (char *)c->source;
    a->destination = (char *)c->destination;
    a->checksum = (char *)(c->checksum ? c->checksum : "");
    a->credentials = (char *)(c->credentials ? c->credentials : "");
    a->when = (Hodei__V1__ArtifactWhen)c->when;
    if (c->want[0] == '\0') {
        hodei_status st = hodei_queue_request_validate(&fx.req, &fx.err);
        cr_assert_eq(st, HODEI_OK, "%s -> %s: expected valid, got: %s", c->source, c->destination,
                     fx.err.msg);
    } else {
        EXPECT_BAD(c->want);
    }
}

#define SUM "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

Test(spec, artifact_references)
{
    static const art_case cases[] = {
        {false, "https://example.com/a/data.csv", "", SUM, NULL, 0, ""},
        {false, "http://127.0.0.1:8080/x?sig=1", "in/x", NULL, NULL, 0, ""},
        {false, "s3://my-bucket/run/42/", "", NULL, "s3-cred", 0, ""},
        {false, "s3://my-bucket/k", "dir/", NULL, NULL, 0, ""},
        {false, "file:///srv/shared/ref.fa", "ref.fa", NULL, NULL, 0, ""},
        {false, "ftp://host/x", "x", NULL, NULL, 0,
         "spec.inputs[0].source: scheme \"ftp\" is not supported"},
        {false, "data.csv", "x", NULL, NULL, 0, "spec.inputs[0].source: must be a URL"},
        {false, "https://user:pw@host/x", "x", NULL, NULL, 0,
         "spec.inputs[0].source: user or password in the URL is not allowed"},
        {false, "https:///x", "x", NULL, NULL, 0, "spec.inputs[0].source: the URL has no host"},
        {false, "s3://B/k", "x", NULL, NULL, 0, "spec.inputs[0].source: the bucket must be"},
        {false, "file://host/etc/passwd", "x", NULL, NULL, 0, "spec.inputs[0].source: file URLs"},
        {false, "file:///srv/../etc/passwd", "x", NULL, NULL, 0,
         "spec.inputs[0].source: \".\" and \"..\" are not allowed"},
        {false, "https://h/x", "../x", NULL, NULL, 0,
         "spec.inputs[0].destination: \".\" and \"..\" are not allowed"},
        {false, "https://h/x", "a/../../x", NULL, NULL, 0, "spec.inputs[0].destination: \".\""},
        {false, "https://h/x", "/etc/x", NULL, NULL, 0,
         "spec.inputs[0].destination: must be a path relative to the job's workspace"},
        {false, "https://h/x", "a//b", NULL, NULL, 0, "spec.inputs[0].destination: empty path"},
        {false, "https://h/dir/", "", NULL, NULL, 0,
         "spec.inputs[0].destination: required when the source names no file"},
        {false, "https://h/x", "x", "md5:abc", NULL, 0, "spec.inputs[0].checksum: must be"},
        {false, "https://h/x", "x", "sha256:abc", NULL, 0, "spec.inputs[0].checksum: must be"},
        {false, "s3://bkt/p/", "p", SUM, NULL, 0, "spec.inputs[0].checksum: a checksum needs"},
        {false, "https://h/x", "x", NULL, "cred", 0,
         "spec.inputs[0].credentials: only s3:// sources"},
        {false, "s3://bkt/x", "x", NULL, "bad name!", 0, "spec.inputs[0].credentials: must name"},
        {false, "https://h/x", "x", NULL, NULL, 2, "spec.inputs[0].when: only outputs"},
        {true, "out/*.csv", "s3://bkt/run-42/", NULL, "cred", 2, ""},
        {true, "result.txt", "https://h/upload/result.txt", NULL, NULL, 1, ""},
        {true, "../etc/passwd", "s3://bkt/x", NULL, NULL, 0, "spec.outputs[0].source: \".\""},
        {true, "/etc/passwd", "s3://bkt/x", NULL, NULL, 0,
         "spec.outputs[0].source: must be a path relative"},
        {true, "out/", "s3://bkt/x", NULL, NULL, 0, "spec.outputs[0].source: must name a file"},
        {true, "x", "file:///tmp/x", NULL, NULL, 0,
         "spec.outputs[0].destination: scheme \"file\" is not supported"},
        {true, "x", "gs://b/x", NULL, NULL, 0, "spec.outputs[0].destination: scheme \"gs\""},
        {true, "x", "s3://bkt/x", SUM, NULL, 0, "spec.outputs[0].checksum: only inputs"},
        {true, "x", "s3://bkt/x", NULL, NULL, 7, "spec.outputs[0].when: must be"},
        {true, "x", "https://h/x", NULL, "c", 0,
         "spec.outputs[0].credentials: only s3:// destinations"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_init();
        art_expect(&cases[i]);
    }
}

Test(artifact_ref, urls_and_names)
{
    hodei_artifact_url u;
    hodei_err err;
    cr_assert_eq(hodei_artifact_url_parse("s3://bkt/a/b.txt", true, "f", &u, &err), HODEI_OK);
    cr_assert_eq(u.scheme, HODEI_ARTIFACT_S3);
    cr_assert_str_eq(u.bucket, "bkt");
    cr_assert_str_eq(u.key, "a/b.txt");
    cr_assert(!u.prefix);
    cr_assert_eq(hodei_artifact_url_parse("s3://bkt", false, "f", &u, &err), HODEI_OK);
    cr_assert(u.prefix);
    cr_assert_str_eq(u.key, "");
    cr_assert_eq(hodei_artifact_url_parse("file:///srv/x", false, "f", &u, &err), HODEI_OK);
    cr_assert_str_eq(u.path, "/srv/x");
    char shown[64];
    hodei_artifact_url_display("https://h/x.bin?X-Amz-Signature=abc", shown, sizeof shown);
    cr_assert_str_eq(shown, "https://h/x.bin?...");
    size_t n = 0;
    const char *b = hodei_artifact_basename("https://h/dir/x.bin?q=1", &n);
    cr_assert_eq(n, 5);
    cr_assert(strncmp(b, "x.bin", 5) == 0);
    hodei_artifact_basename("https://h", &n);
    cr_assert_eq(n, 0);
    cr_assert(hodei_artifact_checksum_ok(SUM));
    cr_assert(!hodei_artifact_checksum_ok("sha256:xyz"));
}

Test(spec, priority)
{
    const int32_t good[] = {-1000, 0, 1000};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fx.spec.priority = good[i];
        EXPECT_OK();
    }
    fx.spec.priority = 5000;
    EXPECT_BAD("spec.priority: must be between -1000 and 1000, got 5000");
    cr_assert_str_eq(fx.err.msg, "spec.priority: must be between -1000 and 1000, got 5000");
    fx.spec.priority = -1001;
    EXPECT_BAD("spec.priority: ");
    fx.spec.priority = INT32_MIN;
    EXPECT_BAD("spec.priority: ");
}

Test(spec, max_attempts)
{
    fx.spec.max_attempts = 0;
    EXPECT_OK();
    fx.spec.max_attempts = 100;
    EXPECT_OK();
    fx.spec.max_attempts = 101;
    EXPECT_BAD("spec.max_attempts: must be between 0 and 100, got 101");
    fx.spec.max_attempts = -1;
    EXPECT_BAD("spec.max_attempts: ");
}

Test(spec, provider)
{
    const char *good[] = {"", "local", "k8s-east-1", "docker"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fx.spec.provider = (char *)good[i];
        EXPECT_OK();
    }
    fx.spec.provider = fx_rep('p', HODEI_JOB_PROVIDER_MAX);
    EXPECT_OK();
    const char *bad[] = {"Docker", "a_b", "a.b", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.spec.provider = (char *)bad[i];
        EXPECT_BAD("spec.provider: must be empty or 1 to 63 characters of [a-z0-9-]");
    }
    fx.spec.provider = fx_rep('p', HODEI_JOB_PROVIDER_MAX + 1);
    EXPECT_BAD("spec.provider: ");
}

Test(spec, image)
{
    static char longest[HODEI_JOB_IMAGE_MAX + 2];
    fx.spec.image = "";
    EXPECT_OK();
    const char *good[] = {"busybox",
                          "busybox:1.36",
                          "library/debian:12-slim",
                          "registry.example.com:5000/team/app_x__y.z-w:v1.2_RC",
                          "localhost/img",
                          "Registry.Example.com/a",
                          "ghcr.io/o/r@sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
                          "0123456789abcdef",
                          "hodei-worker:0.1.0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        fx.spec.image = (char *)good[i];
        EXPECT_OK();
    }
    const char *bad[] = {"Busybox", "busy box",   "busybox:", ":tag", "a//b",     "-a",      "a-",
                         "a:.x",    "a@sha256:1", "a/B",      "a..b", "/busybox", "busybox/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.spec.image = (char *)bad[i];
        EXPECT_BAD("spec.image: ");
    }
    fx.spec.image = "Busybox";
    EXPECT_BAD("spec.image: \"Busybox\" is not an image reference");
    memset(longest, 'a', sizeof longest - 1);
    memcpy(longest + 1, "@sha256:", 8);
    longest[HODEI_JOB_IMAGE_MAX] = '\0';
    fx.spec.image = longest;
    EXPECT_OK();
    longest[HODEI_JOB_IMAGE_MAX] = 'a';
    EXPECT_BAD("spec.image: must be at most 512 bytes, got 513");
}

Test(image_ref, parts)
{
    hodei_image_ref r;
    const char *ref = "reg.io:5000/team/app:v1@sha256:0123456789abcdef0123456789abcdef";
    cr_assert(hodei_image_ref_parse(ref, &r, NULL));
    cr_expect_eq(r.name_len, strlen("reg.io:5000/team/app"));
    cr_expect_eq(r.tag_len, 2);
    cr_expect_eq(strncmp(ref + r.tag_off, "v1", 2), 0);
    cr_expect_eq(strncmp(ref + r.digest_off, "sha256:", 7), 0);
    cr_assert(hodei_image_ref_parse("localhost:5000/x", &r, NULL));
    cr_expect_eq(r.tag_len, 0, "a registry port is not a tag");
    cr_expect_eq(r.name_len, strlen("localhost:5000/x"));
}

Test(spec, secret_refs)
{
    fx.spec.n_secret_refs = HODEI_JOB_SECRET_REFS_MAX;
    EXPECT_OK();
    fx.spec.n_secret_refs = HODEI_JOB_SECRET_REFS_MAX + 1;
    EXPECT_BAD("spec.secret_refs: at most 64 entries, got 65");
    fx.spec.n_secret_refs = 2;
    fx.secrets[1] = "db.password-1_X";
    EXPECT_OK();
    fx.secrets[1] = fx_rep('s', HODEI_JOB_SECRET_REF_MAX);
    EXPECT_OK();
    fx.secrets[1] = "team-b/db.password";
    EXPECT_OK();
    const char *bad[] = {"", "a b", "tok$", "A/b", "-a/b", "a-/b", "/b", "a/", "a/b/c", "a/b c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.secrets[1] = (char *)bad[i];
        EXPECT_BAD("spec.secret_refs[1]: must be NAME or NAMESPACE/NAME, NAME 1 to 128 characters "
                   "of [A-Za-z0-9_.-], NAMESPACE 1 to 63 of [a-z0-9-]");
    }
    char ns[80];
    snprintf(ns, sizeof ns, "%s/x", fx_rep('n', HODEI_JOB_SECRET_NS_MAX));
    fx.secrets[1] = ns;
    EXPECT_OK();
    snprintf(ns, sizeof ns, "%s/x", fx_rep('n', HODEI_JOB_SECRET_NS_MAX + 1));
    EXPECT_BAD("spec.secret_refs[1]: must be NAME or NAMESPACE/NAME");
    fx.secrets[1] = fx_rep('s', HODEI_JOB_SECRET_REF_MAX + 1);
    EXPECT_BAD("spec.secret_refs[1]: ");
    fx.secrets[1] = "K0";
    EXPECT_BAD("spec.secret_refs[1]: duplicate of spec.secret_refs[0]");
}

Test(spec, working_dir)
{
    fx.spec.working_dir = "";
    EXPECT_OK();
    fx.spec.working_dir = "/";
    EXPECT_OK();
    fx.spec.working_dir = "tmp/x";
    EXPECT_BAD("spec.working_dir: must be an absolute path");
    char *d = fx_rep('d', HODEI_JOB_WORKING_DIR_MAX);
    d[0] = '/';
    fx.spec.working_dir = d;
    EXPECT_OK();
    d = fx_rep('d', HODEI_JOB_WORKING_DIR_MAX + 1);
    d[0] = '/';
    fx.spec.working_dir = d;
    EXPECT_BAD("spec.working_dir: must be at most 4096 bytes");
}

Test(spec, idempotency_key)
{
    fx.req.idempotency_key = "";
    EXPECT_OK();
    fx.req.idempotency_key = "!~aZ09-_.";
    EXPECT_OK();
    fx.req.idempotency_key = fx_rep('k', HODEI_JOB_IDEMPOTENCY_KEY_MAX);
    EXPECT_OK();
    fx.req.idempotency_key = fx_rep('k', HODEI_JOB_IDEMPOTENCY_KEY_MAX + 1);
    EXPECT_BAD("idempotency_key: must be at most 128 bytes, got 129");
    const char *bad[] = {"a b", "tab\t", "del\x7f", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx.req.idempotency_key = (char *)bad[i];
        EXPECT_BAD("idempotency_key: must be printable ASCII");
    }
    cr_assert(strstr(fx.err.msg, "0xc3 at byte 3"), "%s", fx.err.msg);
}

Test(spec, packed_size_limit)
{
    /* Each field within its own limit, the whole spec over 1 MiB. */
    fx.cmd.n_args = 20;
    for (size_t i = 0; i < 20; i++)
        fx.args[i] = i < 16 ? fx_rep('a', HODEI_JOB_ARG_MAX) : "x";
    EXPECT_BAD("spec: encoded size must be at most 1048576 bytes, got ");
    fx.cmd.n_args = 15;
    EXPECT_OK();
}

Test(spec, script_at_its_limit_hits_the_packed_limit)
{
    fx.spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT;
    fx.spec.script = &fx.script;
    fx.script.content = fx_rep('#', HODEI_JOB_SCRIPT_MAX);
    EXPECT_BAD("spec: encoded size");
}

/* What the edge sees: bytes off the wire, where a map key may repeat. */
Test(spec, unpacked_from_wire)
{
    size_t n = protobuf_c_message_get_packed_size(&fx.req.base);
    uint8_t *buf = malloc(n);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(&fx.req.base, buf);
    Hodei__V1__QueueJobRequest *req = hodei__v1__queue_job_request__unpack(NULL, n, buf);
    cr_assert_not_null(req);
    cr_assert_eq(hodei_queue_request_validate(req, &fx.err), HODEI_OK, "%s", fx.err.msg);
    hodei__v1__queue_job_request__free_unpacked(req, NULL);
    free(buf);

    fx.spec.n_env = 2;
    fx.env[1].key = "K0"; /* the packer does not dedupe map keys */
    n = protobuf_c_message_get_packed_size(&fx.req.base);
    buf = malloc(n);
    protobuf_c_message_pack(&fx.req.base, buf);
    req = hodei__v1__queue_job_request__unpack(NULL, n, buf);
    cr_assert_not_null(req);
    cr_assert_eq(hodei_queue_request_validate(req, &fx.err), HODEI_ERR_INVALID);
    cr_assert_str_eq(fx.err.msg, "spec.env[\"K0\"]: duplicate name");
    hodei__v1__queue_job_request__free_unpacked(req, NULL);
    free(buf);
}

Test(spec, defaults_the_edge_applies)
{
    cr_assert_eq(HODEI_JOB_DEFAULT_TIMEOUT_MS, 3600000);
    fx.spec.max_attempts = 0;
    cr_assert_eq(hodei_job_spec_max_attempts(&fx.spec), 1);
    fx.spec.max_attempts = 7;
    cr_assert_eq(hodei_job_spec_max_attempts(&fx.spec), 7);
    cr_assert_eq(hodei_job_spec_max_attempts(NULL), 1);
    fx.spec.timeout_ms = 0;
    cr_assert_eq(hodei_job_spec_timeout_ms(&fx.spec), HODEI_JOB_DEFAULT_TIMEOUT_MS);
    fx.spec.timeout_ms = 5000;
    cr_assert_eq(hodei_job_spec_timeout_ms(&fx.spec), 5000);
}

Test(spec, arch_helper)
{
    cr_assert(hodei_job_arch_valid("aarch64"));
    cr_assert(hodei_job_arch_valid(NULL));
    cr_assert_not(hodei_job_arch_valid("riscv64"));
}

/* The one parser of a secret reference: the job's validation, the edge's
 * cross-namespace check and its own secrets all split a reference with it. */
Test(spec, secret_ref_parse_splits_namespace_and_name)
{
    char ns[HODEI_SECRET_REF_NS_BUF], name[HODEI_SECRET_REF_NAME_BUF];
    cr_assert(hodei_secret_ref_parse("db.password", "team-a", ns, name));
    cr_expect_str_eq(ns, "team-a");
    cr_expect_str_eq(name, "db.password");
    cr_assert(hodei_secret_ref_parse("team-b/db.password", "team-a", ns, name));
    cr_expect_str_eq(ns, "team-b");
    cr_expect_str_eq(name, "db.password");
    cr_expect(hodei_secret_ref_parse("x", NULL, NULL, NULL), "a check alone needs no buffers");
    char longest[HODEI_JOB_SECRET_NS_MAX + HODEI_JOB_SECRET_REF_MAX + 2];
    snprintf(longest, sizeof longest, "%s/%s", fx_rep('n', HODEI_JOB_SECRET_NS_MAX),
             fx_rep('s', HODEI_JOB_SECRET_REF_MAX));
    cr_assert(hodei_secret_ref_parse(longest, "", ns, name), "the longest reference fits");
    cr_expect_eq(strlen(ns), HODEI_JOB_SECRET_NS_MAX);
    cr_expect_eq(strlen(name), HODEI_JOB_SECRET_REF_MAX);
    const char *bad[] = {"", "a b", "A/b", "-a/b", "a-/b", "/b", "a/", "a/b/c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect(!hodei_secret_ref_parse(bad[i], "team-a", ns, name), "%s refused", bad[i]);
}
