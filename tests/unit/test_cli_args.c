/* cli/: argument parsing into requests, value parsers, JSON, output, exit codes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "json.h"
#include "output.h"

#define JOB_ID "0190b1c2-0000-7000-8000-000000000001"

static cli_args A;
static hodei_err E;
static const char *env_server;
static const char *env_api_key;
static const char *env_namespace;

static const char *fake_env(const char *name)
{
    if (strcmp(name, "HODEI_NAMESPACE") == 0)
        return env_namespace;
    if (strcmp(name, "HODEI_SERVER") == 0)
        return env_server;
    if (strcmp(name, "HODEI_API_KEY") == 0)
        return env_api_key;
    return NULL;
}

#define ARGV_MAX 1024
/* The parsed request points into argv: keep a copy that outlives the call. */
static const char *argv_store[ARGV_MAX];

static hodei_status parse_words(const char **words)
{
    int argc = 0;
    for (; words[argc]; argc++) {
        cr_assert_lt(argc, ARGV_MAX - 1);
        argv_store[argc] = words[argc];
    }
    argv_store[argc] = NULL;
    cli_args_fini(&A);
    hodei_err_clear(&E);
    return cli_args_parse(&A, argc, (char **)argv_store, fake_env, &E);
}

/* Words are string literals; parse_words keeps the array alive. */
#define PARSE(...) parse_words((const char *[]){"hodei", __VA_ARGS__, NULL})

#define EXPECT_OK(...)                                                                             \
    cr_assert_eq(PARSE(__VA_ARGS__), HODEI_OK, "expected success, got: %s", E.msg)

/* A usage error whose message starts with `prefix` (the flag it names). */
#define EXPECT_USAGE(prefix, ...)                                                                  \
    do {                                                                                           \
        cr_assert_eq(PARSE(__VA_ARGS__), HODEI_ERR_INVALID, "expected a usage error");             \
        cr_assert(strncmp(E.msg, prefix, strlen(prefix)) == 0,                                     \
                  "message \"%s\" should start with \"%s\"", E.msg, prefix);                       \
    } while (0)

static void cli_setup(void)
{
    memset(&A, 0, sizeof A);
    env_server = NULL;
    env_api_key = NULL;
    env_namespace = NULL;
}

static void cli_teardown(void)
{
    cli_args_fini(&A);
}

TestSuite(args, .init = cli_setup, .fini = cli_teardown);

/* A temporary file holding `content` (len bytes); the path is in `path`. */
static void temp_file(char path[64], const char *content, size_t len)
{
    snprintf(path, 64, "/tmp/hodei-cli-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, content, len), (ssize_t)len);
    close(fd);
}

/* ------------------------------------------------------------ global options */

Test(args, defaults)
{
    EXPECT_OK("jobs");
    cr_assert_eq(A.command, CLI_CMD_JOBS);
    cr_assert_str_eq(A.server, "127.0.0.1:50051");
    cr_assert_eq(A.output, CLI_OUTPUT_HUMAN);
    cr_assert_eq(A.call_timeout_ms, 10000);
    cr_assert_null(A.api_key);
    cr_assert_null(A.tls_ca);
    cr_assert_not(A.help);
    cr_assert_not(A.version);
}

Test(args, environment_under_flags)
{
    env_server = "edge.example:7000";
    env_api_key = "key-123";
    EXPECT_OK("jobs");
    cr_assert_str_eq(A.server, "edge.example:7000");
    cr_assert_str_eq(A.api_key, "key-123");
    EXPECT_OK("--server", "10.0.0.1:50051", "--api-key", "other", "jobs");
    cr_assert_str_eq(A.server, "10.0.0.1:50051");
    cr_assert_str_eq(A.api_key, "other");
    env_server = "bad address";
    EXPECT_USAGE("HODEI_SERVER: ", "jobs");
    EXPECT_OK("--server", "ok:1", "jobs"); /* the flag wins; the bad env is not used */
    env_server = "";
    EXPECT_OK("jobs");
    cr_assert_str_eq(A.server, "127.0.0.1:50051");
}

Test(args, output_and_call_timeout)
{
    EXPECT_OK("--output", "json", "jobs");
    cr_assert_eq(A.output, CLI_OUTPUT_JSON);
    EXPECT_OK("-o", "json", "jobs");
    cr_assert_eq(A.output, CLI_OUTPUT_JSON);
    EXPECT_OK("--output=human", "jobs");
    cr_assert_eq(A.output, CLI_OUTPUT_HUMAN);
    EXPECT_USAGE("--output: must be human or json, got \"yaml\"", "--output", "yaml", "jobs");
    EXPECT_OK("--call-timeout", "2m", "jobs");
    cr_assert_eq(A.call_timeout_ms, 120000);
    EXPECT_OK("--call-timeout=250ms", "jobs");
    cr_assert_eq(A.call_timeout_ms, 250);
    EXPECT_USAGE("--call-timeout: ", "--call-timeout", "0", "jobs");
    EXPECT_USAGE("--call-timeout: ", "--call-timeout", "soon", "jobs");
    EXPECT_USAGE("--call-timeout: ", "--call-timeout", "25h", "jobs");
    EXPECT_USAGE("--call-timeout: needs a value", "--call-timeout");
}

Test(args, server_and_api_key_checked)
{
    EXPECT_USAGE("--server: must not be empty", "--server", "", "jobs");
    EXPECT_USAGE("--server: must be an address", "--server", "a b:1", "jobs");
    EXPECT_USAGE("--api-key: must be printable ASCII", "--api-key", "sec ret", "jobs");
    cr_assert_null(strstr(E.msg, "sec ret"), "the key must not be echoed: %s", E.msg);
    env_api_key = "bad\nkey";
    EXPECT_USAGE("HODEI_API_KEY: ", "jobs");
    cr_assert_null(strstr(E.msg, "bad"), "the key must not be echoed: %s", E.msg);
}

Test(args, tls_files)
{
    char ca[64], cert[64], key[64];
    temp_file(ca, "ca", 2);
    temp_file(cert, "cert", 4);
    temp_file(key, "key", 3);
    EXPECT_OK("--tls-ca", ca, "jobs");
    cr_assert_str_eq(A.tls_ca, ca);
    EXPECT_OK("--tls-ca", ca, "--tls-cert", cert, "--tls-key", key, "jobs");
    cr_assert_str_eq(A.tls_cert, cert);
    cr_assert_str_eq(A.tls_key, key);
    EXPECT_USAGE("--tls-cert: needs --tls-key", "--tls-ca", ca, "--tls-cert", cert, "jobs");
    EXPECT_USAGE("--tls-key: needs --tls-cert", "--tls-ca", ca, "--tls-key", key, "jobs");
    EXPECT_USAGE("--tls-cert: needs --tls-ca", "--tls-cert", cert, "--tls-key", key, "jobs");
    EXPECT_USAGE("--tls-ca: cannot read \"/nonexistent/ca.pem\"", "--tls-ca", "/nonexistent/ca.pem",
                 "jobs");
    unlink(ca);
    unlink(cert);
    unlink(key);
}

Test(args, commands_help_version)
{
    EXPECT_USAGE("missing command", "-o", "json");
    EXPECT_USAGE("unknown command \"run-it\"", "run-it");
    EXPECT_OK("--help");
    cr_assert(A.help);
    cr_assert_eq(A.command, CLI_CMD_NONE);
    EXPECT_OK("-h");
    cr_assert(A.help);
    EXPECT_OK("help");
    cr_assert(A.help);
    cr_assert_eq(A.command, CLI_CMD_NONE);
    EXPECT_OK("help", "submit");
    cr_assert(A.help);
    cr_assert_eq(A.command, CLI_CMD_SUBMIT);
    EXPECT_OK("submit", "--help"); /* no command needed to ask for help */
    cr_assert(A.help);
    cr_assert_eq(A.command, CLI_CMD_SUBMIT);
    EXPECT_OK("cancel", "-h");
    cr_assert_eq(A.command, CLI_CMD_CANCEL);
    cr_assert(A.help);
    EXPECT_USAGE("help: unknown command \"nope\"", "help", "nope");
    EXPECT_USAGE("help: unexpected argument", "help", "jobs", "extra");
    EXPECT_OK("--version");
    cr_assert(A.version);
    EXPECT_USAGE("--version: takes no value", "--version=2");
}

Test(args, unknown_and_misplaced_flags)
{
    EXPECT_USAGE("unknown option --frob", "--frob", "jobs");
    EXPECT_USAGE("unknown flag --frob for hodei submit", "submit", "--frob", "--", "true");
    EXPECT_USAGE("unknown flag --name for hodei jobs", "jobs", "--name", "x");
    EXPECT_USAGE("-o: global options go before the command", "status", JOB_ID, "-o", "json");
    EXPECT_USAGE("--server: global options go before the command", "jobs", "--server=x:1");
}

/* ------------------------------------------------------------ submit */

static const char *env_value(const char *key)
{
    for (size_t i = 0; i < A.spec.n_env; i++) {
        if (strcmp(A.spec.env[i]->key, key) == 0)
            return A.spec.env[i]->value;
    }
    return NULL;
}

Test(args, submit_builds_the_request)
{
    EXPECT_OK("submit", "--name", "nightly", "--env", "A=1", "-e", "B=x=y", "--label", "team=ci",
              "--constraint", "zone=eu-1", "--priority", "-7", "--timeout", "2m", "--max-attempts",
              "3", "--cpu", "0.5", "--memory", "512Mi", "--storage", "10G", "--gpus", "1", "--arch",
              "arm64", "--provider", "local", "--image", "debian:12", "--idempotency-key",
              "build-42", "--secret", "db.password", "--secret", "token", "--workdir", "/srv", "--",
              "make", "-j", "4", "test");
    cr_assert_eq(A.command, CLI_CMD_SUBMIT);
    const Hodei__V1__QueueJobRequest *q = &A.queue;
    cr_assert_eq(q->spec, &A.spec);
    cr_assert_str_eq(q->idempotency_key, "build-42");
    const Hodei__V1__JobSpec *s = q->spec;
    cr_assert_str_eq(s->name, "nightly");
    cr_assert_eq(s->payload_case, HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND);
    cr_assert_str_eq(s->command->command, "make");
    cr_assert_eq(s->command->n_args, 3);
    cr_assert_str_eq(s->command->args[0], "-j");
    cr_assert_str_eq(s->command->args[1], "4");
    cr_assert_str_eq(s->command->args[2], "test");
    cr_assert_eq(s->n_env, 2);
    cr_assert_str_eq(env_value("A"), "1");
    cr_assert_str_eq(env_value("B"), "x=y");
    cr_assert_eq(s->n_labels, 1);
    cr_assert_str_eq(s->labels[0]->key, "team");
    cr_assert_str_eq(s->labels[0]->value, "ci");
    cr_assert_eq(s->n_constraints, 1);
    cr_assert_str_eq(s->constraints[0]->key, "zone");
    cr_assert_str_eq(s->constraints[0]->value, "eu-1");
    cr_assert_eq(s->priority, -7);
    cr_assert_eq(s->timeout_ms, 120000);
    cr_assert_eq(s->max_attempts, 3);
    cr_assert_not_null(s->resources);
    cr_assert_float_eq(s->resources->cpu_cores, 0.5, 1e-12);
    cr_assert_eq(s->resources->memory_bytes, INT64_C(512) * 1024 * 1024);
    cr_assert_eq(s->resources->storage_bytes, INT64_C(10000000000));
    cr_assert_eq(s->resources->gpu_count, 1);
    cr_assert_str_eq(s->resources->architecture, "arm64");
    cr_assert_str_eq(s->provider, "local");
    cr_assert_str_eq(s->image, "debian:12");
    cr_assert_eq(s->n_secret_refs, 2);
    cr_assert_str_eq(s->secret_refs[0], "db.password");
    cr_assert_str_eq(s->secret_refs[1], "token");
    cr_assert_str_eq(s->working_dir, "/srv");
}

Test(args, submit_minimal_leaves_defaults)
{
    EXPECT_OK("submit", "--", "true");
    const Hodei__V1__JobSpec *s = A.queue.spec;
    cr_assert_str_eq(s->command->command, "true");
    cr_assert_eq(s->command->n_args, 0);
    cr_assert_null(s->resources, "no resource flag, no resources message");
    cr_assert_eq(s->timeout_ms, 0);
    cr_assert_eq(s->max_attempts, 0);
    cr_assert_eq(s->priority, 0);
    cr_assert_eq(s->n_env, 0);
    cr_assert_str_eq(A.queue.idempotency_key, "");
}

Test(args, submit_words_after_the_command_are_verbatim)
{
    EXPECT_OK("submit", "--priority", "3", "ls", "-la", "--name", "x", "--", "-o");
    const Hodei__V1__JobSpec *s = A.queue.spec;
    cr_assert_eq(s->priority, 3);
    cr_assert_str_eq(s->name, "", "--name after the command belongs to the command");
    cr_assert_str_eq(s->command->command, "ls");
    cr_assert_eq(s->command->n_args, 5);
    cr_assert_str_eq(s->command->args[1], "--name");
    cr_assert_str_eq(s->command->args[3], "--");
    cr_assert_str_eq(s->command->args[4], "-o");
    EXPECT_OK("submit", "--", "-weird-cmd");
    cr_assert_str_eq(A.queue.spec->command->command, "-weird-cmd");
}

Test(args, submit_inline_values)
{
    EXPECT_OK("submit", "--name=a=b", "--env=K=V", "--timeout=1h", "--", "true");
    cr_assert_str_eq(A.spec.name, "a=b");
    cr_assert_str_eq(env_value("K"), "V");
    cr_assert_eq(A.spec.timeout_ms, 3600000);
}

Test(args, submit_script)
{
    char path[64];
    temp_file(path, "echo hello\n", 11);
    EXPECT_OK("submit", "--script", path);
    const Hodei__V1__JobSpec *s = A.queue.spec;
    cr_assert_eq(s->payload_case, HODEI__V1__JOB_SPEC__PAYLOAD_SCRIPT);
    cr_assert_str_eq(s->script->content, "echo hello\n");
    cr_assert_str_eq(s->script->interpreter, "/bin/sh");
    EXPECT_OK("submit", "--interpreter", "python3", "--script", path);
    cr_assert_str_eq(A.queue.spec->script->interpreter, "python3");
    EXPECT_USAGE("--script: cannot be combined with a command", "submit", "--script", path, "--",
                 "true");
    EXPECT_USAGE("--script: given twice", "submit", "--script", path, "--script", path);
    EXPECT_USAGE("--interpreter: only with --script", "submit", "--interpreter", "sh", "--",
                 "true");
    unlink(path);
    EXPECT_USAGE("--script: cannot read", "submit", "--script", path);
}

Test(args, submit_script_bad_files)
{
    char empty[64], nul[64], big[64];
    temp_file(empty, "", 0);
    temp_file(nul, "a\0b", 3);
    size_t n = 1024 * 1024 + 1;
    char *content = malloc(n);
    memset(content, '#', n);
    temp_file(big, content, n);
    free(content);
    EXPECT_USAGE("--script: ", "submit", "--script", empty);
    cr_assert(strstr(E.msg, "is empty"), "%s", E.msg);
    EXPECT_USAGE("--script: ", "submit", "--script", nul);
    cr_assert(strstr(E.msg, "NUL"), "%s", E.msg);
    EXPECT_USAGE("--script: ", "submit", "--script", big);
    cr_assert(strstr(E.msg, "larger than 1048576 bytes"), "%s", E.msg);
    EXPECT_USAGE("--script: cannot read", "submit", "--script", "/tmp");
    unlink(empty);
    unlink(nul);
    unlink(big);
}

Test(args, submit_needs_a_payload)
{
    EXPECT_USAGE("submit: a command is required", "submit");
    EXPECT_USAGE("submit: a command is required", "submit", "--name", "x");
    EXPECT_USAGE("submit: a command is required", "submit", "--");
}

Test(args, submit_env_and_maps)
{
    EXPECT_OK("submit", "--env", "EMPTY=", "--", "true");
    cr_assert_str_eq(env_value("EMPTY"), "");
    EXPECT_USAGE("--env: must be KEY=VALUE, got \"NOEQ\"", "submit", "--env", "NOEQ", "--", "x");
    EXPECT_USAGE("--env: must be KEY=VALUE, got \"=v\"", "submit", "--env", "=v", "--", "x");
    EXPECT_USAGE("--env (spec.env[\"1BAD\"]): name must match [A-Za-z_][A-Za-z0-9_]*", "submit",
                 "--env", "1BAD=x", "--", "x");
    EXPECT_USAGE("--env (spec.env[\"A\"]): duplicate name", "submit", "--env", "A=1", "--env",
                 "A=2", "--", "x");
    EXPECT_USAGE("--label: must be KEY=VALUE", "submit", "--label", "novalue", "--", "x");
    EXPECT_USAGE("--label (spec.labels[\"bad key\"]): key must be", "submit", "--label",
                 "bad key=1", "--", "x");
    EXPECT_USAGE("--constraint (spec.constraints[\"k\"]): duplicate key", "submit", "--constraint",
                 "k=1", "--constraint", "k=2", "--", "x");
    EXPECT_USAGE("--secret (spec.secret_refs[0]): must be NAME or NAMESPACE/NAME", "submit",
                 "--secret", "A/b", "--", "x");
}

Test(args, jobs_label_filter)
{
    EXPECT_OK("jobs", "--label", "team=ml", "-l", "tier=");
    cr_assert_eq(A.list.n_labels, 2);
    cr_assert_str_eq(A.list.labels[0]->key, "team");
    cr_assert_str_eq(A.list.labels[0]->value, "ml");
    cr_assert_str_eq(A.list.labels[1]->key, "tier");
    cr_assert_str_eq(A.list.labels[1]->value, "");
    EXPECT_USAGE("--label: must be KEY=VALUE, got \"team\"", "jobs", "--label", "team");
    EXPECT_USAGE("--label (labels[\"bad key\"]): key must be", "jobs", "--label", "bad key=1");
    EXPECT_USAGE("--label (labels[\"k\"]): duplicate key", "jobs", "-l", "k=1", "-l", "k=2");
}

/* Artifacts: --input/--output, and the flags that apply to the last one. */
Test(args, submit_artifacts)
{
    EXPECT_OK("submit", "--input", "https://h/data.csv", "--checksum",
              "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "--input",
              "ref/genome.fa=s3://refs/hg38.fa", "--credentials", "s3-prod", "--output",
              "out/*.csv=s3://results/run-42/", "--credentials", "s3-prod", "--when", "always",
              "--", "x");
    const Hodei__V1__JobSpec *s = &A.spec;
    cr_assert_eq(s->n_inputs, 2);
    cr_assert_str_eq(s->inputs[0]->source, "https://h/data.csv");
    cr_assert_str_eq(s->inputs[0]->destination, "");
    cr_assert_str_eq(s->inputs[0]->checksum,
                     "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    cr_assert_str_eq(s->inputs[1]->source, "s3://refs/hg38.fa");
    cr_assert_str_eq(s->inputs[1]->destination, "ref/genome.fa");
    cr_assert_str_eq(s->inputs[1]->credentials, "s3-prod");
    cr_assert_eq(s->n_outputs, 1);
    cr_assert_str_eq(s->outputs[0]->source, "out/*.csv");
    cr_assert_str_eq(s->outputs[0]->destination, "s3://results/run-42/");
    cr_assert_eq(s->outputs[0]->when, HODEI__V1__ARTIFACT_WHEN__ARTIFACT_WHEN_ALWAYS);
    EXPECT_USAGE("--checksum: must follow an --input or --output", "submit", "--checksum",
                 "sha256:00", "--", "x");
    EXPECT_USAGE("--output: expected PATH=URL", "submit", "--output", "s3://b/x", "--", "x");
    EXPECT_USAGE("--when: must be success, failure or always", "submit", "--output", "a=s3://bkt/a",
                 "--when", "sometimes", "--", "x");
    EXPECT_USAGE("--input (spec.inputs[0].destination): \".\" and \"..\"", "submit", "--input",
                 "../x=https://h/x", "--", "x");
    EXPECT_USAGE("--output (spec.outputs[0].destination): scheme \"ftp\"", "submit", "--output",
                 "a=ftp://h/x", "--", "x");
}

/* jobs --older-than: what retention would delete. */
Test(args, jobs_older_than)
{
    EXPECT_OK("jobs", "--state", "succeeded", "--older-than", "30d");
    cr_assert_eq(A.older_than_ms, INT64_C(30) * 86400000);
    cr_assert_eq(A.list.n_states, 1);
    EXPECT_OK("jobs", "--older-than", "12h");
    cr_assert_eq(A.older_than_ms, INT64_C(12) * 3600000);
    EXPECT_USAGE("--older-than: must be a duration like 30d", "jobs", "--older-than", "soon");
    EXPECT_USAGE("--older-than: must be a duration like 30d", "jobs", "--older-than", "0d");
}

/* A map key holding ": " still maps to its flag. */
Test(args, submit_key_with_colon_space)
{
    EXPECT_USAGE("--env (spec.env[\"A: \\\"]: B\"]): name must match", "submit", "--env",
                 "A: \"]: B=1", "--", "x");
}

Test(args, submit_env_count_limit)
{
    static char words[300][16];
    const char *argv[2 * 300 + 5];
    int n = 0;
    argv[n++] = "hodei";
    argv[n++] = "submit";
    for (int i = 0; i < 257; i++) {
        snprintf(words[i], sizeof words[i], "V%d=1", i);
        argv[n++] = "--env";
        argv[n++] = words[i];
    }
    argv[n++] = "true";
    argv[n] = NULL;
    cr_assert_eq(parse_words(argv), HODEI_ERR_INVALID);
    cr_assert_str_eq(E.msg, "--env: given more than 256 times");
    argv[n - 3] = "true"; /* 256 entries */
    argv[n - 2] = NULL;
    cr_assert_eq(parse_words(argv), HODEI_OK, "%s", E.msg);
    cr_assert_eq(A.spec.n_env, 256);
}

/* Each bad value is refused before any call, naming the flag. */
Test(args, submit_bad_values_name_the_flag)
{
    static const struct {
        const char *flag, *value, *prefix;
    } cases[] = {
        {"--priority", "abc", "--priority: must be an integer, got \"abc\""},
        {"--priority", " 5", "--priority: must be an integer"},
        {"--priority", "99999999999", "--priority: must be an integer"},
        {"--priority", "5000",
         "--priority (spec.priority): must be between -1000 and 1000, got 5000"},
        {"--timeout", "5x", "--timeout: must be a duration"},
        {"--timeout", "-5s", "--timeout: must be a duration"},
        {"--timeout", "5", "--timeout (spec.timeout_ms): must be 0 (server default) or between"},
        {"--timeout", "8d", "--timeout: must be a duration"},
        {"--timeout", "169h", "--timeout (spec.timeout_ms): "},
        {"--max-attempts", "x", "--max-attempts: must be an integer"},
        {"--max-attempts", "101", "--max-attempts (spec.max_attempts): must be between 0 and 100"},
        {"--cpu", "abc", "--cpu: must be a number of cores"},
        {"--cpu", "-1", "--cpu: must be a number of cores"},
        {"--cpu", "1e3", "--cpu: must be a number of cores"},
        {"--cpu", "nan", "--cpu: must be a number of cores"},
        {"--cpu", "2000", "--cpu (spec.resources.cpu_cores): must be a finite number"},
        {"--memory", "12Zi", "--memory: must be a size"},
        {"--memory", "-1", "--memory: must be a size"},
        {"--memory", "2Pi", "--memory (spec.resources.memory_bytes): must be between 0 and"},
        {"--memory", "99999999999P", "--memory: must be a size"},
        {"--storage", "1.5G", "--storage: must be a size"},
        {"--gpus", "65", "--gpus (spec.resources.gpu_count): "},
        {"--arch", "sparc", "--arch (spec.resources.architecture): must be empty or one of"},
        {"--provider", "Bad_Name", "--provider (spec.provider): "},
        {"--workdir", "relative/dir", "--workdir (spec.working_dir): must be an absolute path"},
        {"--idempotency-key", "a b", "--idempotency-key (idempotency_key): must be printable"},
        {"--name", "\xff", "--name (spec.name): must be valid UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {"hodei", "submit", cases[i].flag, cases[i].value, "--", "true", NULL};
        cr_expect_eq(parse_words(argv), HODEI_ERR_INVALID, "%s %s accepted", cases[i].flag,
                     cases[i].value);
        cr_expect(strncmp(E.msg, cases[i].prefix, strlen(cases[i].prefix)) == 0,
                  "%s %s: \"%s\" should start with \"%s\"", cases[i].flag, cases[i].value, E.msg,
                  cases[i].prefix);
    }
}

Test(args, submit_good_values)
{
    static const struct {
        const char *flag, *value;
    } cases[] = {
        {"--priority", "-1000"}, {"--priority", "1000"},    {"--timeout", "0"},
        {"--timeout", "1s"},     {"--timeout", "168h"},     {"--max-attempts", "0"},
        {"--cpu", "1024"},       {"--cpu", ".25"},          {"--memory", "1Pi"},
        {"--memory", "64k"},     {"--memory", "1GB"},       {"--arch", "x86_64"},
        {"--workdir", "/"},      {"--name", "caf\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {"hodei", "submit", cases[i].flag, cases[i].value, "--", "true", NULL};
        cr_expect_eq(parse_words(argv), HODEI_OK, "%s %s: %s", cases[i].flag, cases[i].value,
                     E.msg);
    }
}

/* ------------------------------------------------------------ status, jobs, cancel */

Test(args, status)
{
    EXPECT_OK("status", JOB_ID);
    cr_assert_eq(A.command, CLI_CMD_STATUS);
    cr_assert_str_eq(A.status.job_id, JOB_ID);
    EXPECT_USAGE("JOB_ID: required", "status");
    EXPECT_USAGE("JOB_ID: must be a job id (UUID), got \"nope\"", "status", "nope");
    EXPECT_USAGE("unexpected argument", "status", JOB_ID, JOB_ID);
    EXPECT_USAGE("unknown flag --reason for hodei status", "status", JOB_ID, "--reason", "x");
}

Test(args, cancel)
{
    EXPECT_OK("cancel", JOB_ID, "--reason", "no longer needed");
    cr_assert_eq(A.command, CLI_CMD_CANCEL);
    cr_assert_str_eq(A.cancel.job_id, JOB_ID);
    cr_assert_str_eq(A.cancel.reason, "no longer needed");
    EXPECT_OK("cancel", "--reason=r", JOB_ID);
    cr_assert_str_eq(A.cancel.reason, "r");
    EXPECT_OK("cancel", JOB_ID);
    cr_assert_str_eq(A.cancel.reason, "");
    EXPECT_USAGE("JOB_ID: required", "cancel", "--reason", "x");
    EXPECT_USAGE("--reason: must be valid UTF-8", "cancel", JOB_ID, "--reason", "\xc3");
    char *long_reason = malloc(CLI_CANCEL_REASON_MAX + 2);
    memset(long_reason, 'r', CLI_CANCEL_REASON_MAX + 1);
    long_reason[CLI_CANCEL_REASON_MAX + 1] = '\0';
    EXPECT_USAGE("--reason: must be at most 1024 bytes", "cancel", JOB_ID, "--reason", long_reason);
    free(long_reason);
}

Test(args, jobs)
{
    EXPECT_OK("jobs");
    cr_assert_eq(A.list.n_states, 0);
    cr_assert_eq(A.list.page_size, 0, "0 = the server's default");
    cr_assert_str_eq(A.list.page_token, "");
    EXPECT_OK("jobs", "--state", "pending", "--state", "RUNNING,job_state_failed", "--state",
              "pending", "--limit", "20", "--page-token", "abc.123");
    cr_assert_eq(A.list.n_states, 3);
    cr_assert_eq(A.list.states[0], HODEI__V1__JOB_STATE__JOB_STATE_PENDING);
    cr_assert_eq(A.list.states[1], HODEI__V1__JOB_STATE__JOB_STATE_RUNNING);
    cr_assert_eq(A.list.states[2], HODEI__V1__JOB_STATE__JOB_STATE_FAILED);
    cr_assert_eq(A.list.page_size, 20);
    cr_assert_str_eq(A.list.page_token, "abc.123");
    EXPECT_OK("jobs", "--state",
              "pending,assigned,running,succeeded,failed,cancelled,timeout,"
              "PENDING");
    cr_assert_eq(A.list.n_states, 7);
    EXPECT_USAGE("--state: unknown job state \"bogus\"", "jobs", "--state", "bogus");
    EXPECT_USAGE("--state: unknown job state \"\"", "jobs", "--state", "");
    EXPECT_USAGE("--state: unknown job state \"\"", "jobs", "--state", "pending,");
    EXPECT_USAGE("--state: unknown job state \"unspecified\"", "jobs", "--state", "unspecified");
    EXPECT_USAGE("--state: unknown job state", "jobs", "--state",
                 "an-extremely-long-state-name-that-is-not-real");
    EXPECT_OK("jobs", "--limit", "1000");
    EXPECT_USAGE("--limit: must be between 1 and 1000, got 1001", "jobs", "--limit", "1001");
    EXPECT_USAGE("--limit: must be between 1 and 1000, got 0", "jobs", "--limit", "0");
    EXPECT_USAGE("--limit: must be an integer", "jobs", "--limit", "ten");
    EXPECT_USAGE("--page-token: ", "jobs", "--page-token", "has space");
    EXPECT_USAGE("unexpected argument \"extra\" for hodei jobs", "jobs", "extra");
}

/* ------------------------------------------------------------ run, logs, workers, providers */

Test(args, run_takes_submit_flags_and_its_own)
{
    EXPECT_OK("run", "--image", "alpine:3", "--timeout", "30s", "--env", "K=V", "--", "sh", "-c",
              "echo hi; exit 7");
    cr_assert_eq(A.command, CLI_CMD_RUN);
    cr_assert_eq(A.queue.spec, &A.spec, "run queues the same request as submit");
    cr_assert_str_eq(A.spec.image, "alpine:3");
    cr_assert_eq(A.spec.timeout_ms, 30000);
    cr_assert_str_eq(env_value("K"), "V");
    cr_assert_str_eq(A.shell.command, "sh");
    cr_assert_eq(A.shell.n_args, 2);
    cr_assert_str_eq(A.shell.args[1], "echo hi; exit 7");
    cr_assert_not(A.no_job_exit_code);
    cr_assert_not(A.quiet);
    EXPECT_OK("run", "--no-job-exit-code", "-q", "make", "--no-job-exit-code");
    cr_assert(A.no_job_exit_code);
    cr_assert(A.quiet);
    cr_assert_eq(A.shell.n_args, 1, "words after CMD are the job's, even run's own flags");
    cr_assert_str_eq(A.shell.args[0], "--no-job-exit-code");
    EXPECT_OK("run", "--quiet", "--help", "--script", "/nonexistent");
    cr_assert(A.help);
}

Test(args, run_refuses_bad_arguments_before_any_call)
{
    EXPECT_USAGE("run: a command is required: hodei run", "run");
    EXPECT_USAGE("run: a command is required", "run", "--image", "x");
    EXPECT_USAGE("--timeout: must be a duration", "run", "--timeout", "soon", "--", "true");
    EXPECT_USAGE("--timeout (spec.timeout_ms): ", "run", "--timeout", "200h", "--", "true");
    EXPECT_USAGE("--env: must be KEY=VALUE", "run", "--env", "novalue", "--", "true");
    EXPECT_USAGE("--image: needs a value", "run", "--image");
    EXPECT_USAGE("--no-job-exit-code: takes no value", "run", "--no-job-exit-code=1", "true");
    EXPECT_USAGE("unknown flag --follow for hodei run", "run", "--follow", "true");
    EXPECT_USAGE("unknown flag --no-job-exit-code for hodei submit", "submit", "--no-job-exit-code",
                 "--", "true");
    EXPECT_USAGE("unknown flag -q for hodei submit", "submit", "-q", "true");
}

Test(args, logs)
{
    EXPECT_OK("logs", JOB_ID);
    cr_assert_eq(A.command, CLI_CMD_LOGS);
    cr_assert_str_eq(A.logs.job_id, JOB_ID);
    cr_assert_eq(A.logs.from_sequence, 0);
    cr_assert_not(A.follow);
    EXPECT_OK("logs", "-f", "--from", "42", JOB_ID);
    cr_assert(A.follow);
    cr_assert_eq(A.logs.from_sequence, 42);
    EXPECT_OK("logs", JOB_ID, "--follow", "--from=1");
    cr_assert(A.follow);
    cr_assert_eq(A.logs.from_sequence, 1);
    EXPECT_OK("logs", "--from", "9223372036854775807", JOB_ID);
    cr_assert_eq(A.logs.from_sequence, UINT64_C(9223372036854775807));
    EXPECT_USAGE("JOB_ID: required (hodei logs JOB_ID)", "logs", "-f");
    EXPECT_USAGE("JOB_ID: must be a job id (UUID), got \"x\"", "logs", "x");
    EXPECT_USAGE("unexpected argument", "logs", JOB_ID, JOB_ID);
    EXPECT_USAGE("--from: must be a line sequence number", "logs", "--from", "0", JOB_ID);
    EXPECT_USAGE("--from: must be a line sequence number", "logs", "--from", "-3", JOB_ID);
    EXPECT_USAGE("--from: must be a line sequence number", "logs", "--from", "+3", JOB_ID);
    EXPECT_USAGE("--from: must be a line sequence number", "logs", "--from", "1e3", JOB_ID);
    EXPECT_USAGE("--from: must be a line sequence number", "logs", "--from", "99999999999999999999",
                 JOB_ID);
    EXPECT_USAGE("--from: needs a value", "logs", JOB_ID, "--from");
    EXPECT_USAGE("--follow: takes no value", "logs", "--follow=yes", JOB_ID);
    EXPECT_USAGE("unknown flag --tail for hodei logs", "logs", "--tail", "5", JOB_ID);
}

Test(args, workers)
{
    EXPECT_OK("workers");
    cr_assert_eq(A.command, CLI_CMD_WORKERS);
    cr_assert_str_eq(A.workers.provider, "");
    cr_assert_not(A.all_workers);
    EXPECT_OK("workers", "--provider", "process", "--all");
    cr_assert_str_eq(A.workers.provider, "process");
    cr_assert(A.all_workers);
    EXPECT_OK("workers", "--provider=k8s-eu-1");
    cr_assert_str_eq(A.workers.provider, "k8s-eu-1");
    EXPECT_USAGE("--provider: must be a provider name", "workers", "--provider", "Docker");
    EXPECT_USAGE("--provider: must be a provider name", "workers", "--provider", "");
    EXPECT_USAGE("--provider: must be a provider name", "workers", "--provider", "a b");
    EXPECT_USAGE("--provider: must be a provider name", "workers", "--provider",
                 "a234567890123456789012345678901234567890123456789012345678901234");
    EXPECT_OK("workers", "--provider",
              "a23456789012345678901234567890123456789012345678901234567890123");
    EXPECT_USAGE("--provider: needs a value", "workers", "--provider");
    EXPECT_USAGE("--all: takes no value", "workers", "--all=1");
    EXPECT_USAGE("unexpected argument \"ready\" for hodei workers", "workers", "ready");
}

Test(args, providers)
{
    EXPECT_OK("providers");
    cr_assert_eq(A.command, CLI_CMD_PROVIDERS);
    cr_assert_not(A.provider_health);
    EXPECT_OK("providers", "health", "process");
    cr_assert(A.provider_health);
    cr_assert_str_eq(A.health.name, "process");
    EXPECT_OK("providers", "health", "--help");
    cr_assert(A.help);
    EXPECT_OK("help", "providers");
    cr_assert_eq(A.command, CLI_CMD_PROVIDERS);
    EXPECT_USAGE("NAME: required (hodei providers health NAME)", "providers", "health");
    EXPECT_USAGE("NAME: must be a provider name", "providers", "health", "Bad_Name");
    EXPECT_USAGE("unexpected argument \"list\" for hodei providers (did you mean", "providers",
                 "list");
    EXPECT_USAGE("unexpected argument \"other\" (hodei providers health takes one NAME)",
                 "providers", "health", "process", "other");
    EXPECT_USAGE("unknown flag --all for hodei providers", "providers", "--all");
}

Test(args, templates)
{
    EXPECT_OK("templates", "list");
    cr_assert_eq(A.command, CLI_CMD_TEMPLATES);
    cr_assert_eq(A.templates_action, CLI_TEMPLATES_LIST);
    EXPECT_OK("templates", "get", "greet");
    cr_assert_str_eq(A.template_get.name, "greet");
    EXPECT_OK("templates", "create", "greet", "--param", "who", "--description", "hi", "--priority",
              "5", "--", "sh", "-c", "echo ${who}");
    cr_assert_eq(A.templates_action, CLI_TEMPLATES_CREATE);
    cr_assert_str_eq(A.template_create.template_->name, "greet");
    cr_assert_eq(A.template_.n_parameters, 1);
    cr_assert_str_eq(A.template_.parameters[0], "who");
    cr_assert_str_eq(A.template_.description, "hi");
    cr_assert_eq(A.template_.spec->priority, 5);
    cr_assert_str_eq(A.template_.spec->command->args[1], "echo ${who}");
    EXPECT_OK("templates", "run", "greet", "-p", "who=a=b", "--idempotency-key", "k1", "-q");
    cr_assert_eq(A.template_run.n_parameters, 1);
    cr_assert_str_eq(A.template_run.parameters[0]->key, "who");
    cr_assert_str_eq(A.template_run.parameters[0]->value, "a=b");
    cr_assert_str_eq(A.template_run.idempotency_key, "k1");
    cr_assert(A.quiet);
    EXPECT_USAGE("missing action", "templates");
    EXPECT_USAGE("unknown action \"delete\"", "templates", "delete", "x");
    EXPECT_USAGE("NAME: required (hodei templates run NAME)", "templates", "run");
    EXPECT_USAGE("NAME: must be 1 to 63", "templates", "get", "Greet");
    EXPECT_USAGE("unexpected argument \"x\"", "templates", "list", "x");
    EXPECT_USAGE("unexpected argument \"x\"", "templates", "get", "a", "x");
    EXPECT_USAGE("--param: a parameter name is", "templates", "create", "a", "--param", "1x", "--",
                 "true");
    EXPECT_USAGE("--param: must be NAME=VALUE", "templates", "run", "a", "-p", "who");
    EXPECT_USAGE("--param: who given twice", "templates", "run", "a", "-p", "who=1", "-p", "who=2");
    EXPECT_USAGE("templates create: a command is required", "templates", "create", "a");
    EXPECT_USAGE("--priority (spec.priority)", "templates", "create", "a", "--priority", "5000",
                 "--", "true");
    EXPECT_USAGE("--idempotency-key: belongs to templates run", "templates", "create", "a",
                 "--idempotency-key", "k", "--", "true");
    EXPECT_USAGE("unknown flag", "templates", "get", "a", "--param", "x");
}

Test(args, secrets)
{
    char path[64];
    EXPECT_OK("secrets", "list");
    cr_assert_eq(A.command, CLI_CMD_SECRETS);
    cr_assert_eq(A.secrets_action, CLI_SECRETS_LIST);
    EXPECT_OK("secrets", "delete", "db-pass");
    cr_assert_eq(A.secrets_action, CLI_SECRETS_DELETE);
    cr_assert_str_eq(A.secret_delete.name, "db-pass");
    temp_file(path, "s3cret\n", 7);
    EXPECT_OK("secrets", "set", "A.b_c-9", "--from-file", path);
    cr_assert_eq(A.secrets_action, CLI_SECRETS_SET);
    cr_assert_str_eq(A.secret_set.name, "A.b_c-9");
    cr_assert_eq(A.secret_set.value.len, 7, "a file's value is kept as it is");
    cr_assert_eq(memcmp(A.secret_set.value.data, "s3cret\n", 7), 0);
    unlink(path);
    temp_file(path, "", 0);
    EXPECT_USAGE("--from-file: the secret value is empty", "secrets", "set", "x", "--from-file",
                 path);
    unlink(path);
    EXPECT_USAGE("--from-file: cannot open", "secrets", "set", "x", "--from-file",
                 "/nonexistent/hodei-secret");
    EXPECT_USAGE("--from-file: needs a value", "secrets", "set", "x", "--from-file");
    EXPECT_USAGE("--from-file: only with hodei secrets set NAME", "secrets", "delete", "x",
                 "--from-file", "/dev/null");
    EXPECT_USAGE("missing action", "secrets");
    EXPECT_USAGE("unknown action \"get\"", "secrets", "get", "x");
    EXPECT_USAGE("NAME: required (hodei secrets delete NAME)", "secrets", "delete");
    EXPECT_USAGE("NAME: required (hodei secrets set NAME)", "secrets", "set", "--from-file",
                 "/dev/null");
    EXPECT_USAGE("NAME: must be 1 to 128", "secrets", "delete", "a/b");
    EXPECT_USAGE("unexpected argument \"y\"", "secrets", "delete", "x", "y");
    EXPECT_USAGE("unexpected argument \"x\"", "secrets", "list", "x");
    EXPECT_OK("secrets", "set", "--help");
    cr_assert(A.help);
}

Test(args, secret_value_from_stdin)
{
    static char big[CLI_SECRET_VALUE_MAX + 2];
    FILE *f = fmemopen("hunter2\n", 8, "r");
    EXPECT_OK("secrets", "list");
    cr_assert_eq(cli_secret_value_read(&A, f, &E), HODEI_OK, "%s", E.msg);
    fclose(f);
    cr_assert_eq(A.secret_set.value.len, 7, "one trailing newline is dropped");
    cr_assert_eq(memcmp(A.secret_set.value.data, "hunter2", 7), 0);
    f = fmemopen("\n", 1, "r");
    cr_assert_eq(cli_secret_value_read(&A, f, &E), HODEI_ERR_INVALID);
    fclose(f);
    cr_assert_str_eq(E.msg, "stdin: the secret value is empty");
    memset(big, 'x', sizeof big);
    f = fmemopen(big, CLI_SECRET_VALUE_MAX + 1, "r");
    cr_assert_eq(cli_secret_value_read(&A, f, &E), HODEI_ERR_INVALID);
    fclose(f);
    cr_assert_not_null(strstr(E.msg, "over 8192 bytes"));
    cr_assert_null(strstr(E.msg, "xxxx"), "the value is never echoed");
    big[CLI_SECRET_VALUE_MAX] = '\n';
    f = fmemopen(big, CLI_SECRET_VALUE_MAX + 1, "r");
    cr_assert_eq(cli_secret_value_read(&A, f, &E), HODEI_OK, "%s", E.msg);
    fclose(f);
    cr_assert_eq(A.secret_set.value.len, CLI_SECRET_VALUE_MAX);
}

Test(args, namespace_goes_into_every_request)
{
    EXPECT_OK("jobs");
    cr_assert_str_eq(A.list.namespace_, "", "none: the key's first");
    env_namespace = "team-b";
    EXPECT_OK("submit", "--", "true");
    cr_assert_str_eq(A.queue.namespace_, "team-b");
    EXPECT_OK("--namespace", "team-a", "secrets", "list");
    cr_assert_str_eq(A.secret_list.namespace_, "team-a", "the flag over the environment");
    EXPECT_OK("-n", "team-a", "templates", "get", "build");
    cr_assert_str_eq(A.template_get.namespace_, "team-a");
    EXPECT_OK("-n", "team-a", "audit");
    cr_assert_str_eq(A.audit.namespace_, "team-a");
    EXPECT_USAGE("--namespace: a namespace is 1 to 63", "--namespace", "Team_A", "jobs");
    env_namespace = "-bad";
    EXPECT_USAGE("HODEI_NAMESPACE: a namespace is", "jobs");
}

Test(args, secrets_share_with)
{
    char path[64];
    temp_file(path, "v", 1);
    EXPECT_OK("secrets", "set", "tok", "--from-file", path, "--share-with", "team-b",
              "--share-with", "ops");
    cr_assert_eq(A.secret_set.n_shared_with, 2);
    cr_assert_str_eq(A.secret_set.shared_with[1], "ops");
    EXPECT_USAGE("--share-with: a namespace is", "secrets", "set", "tok", "--from-file", path,
                 "--share-with", "B");
    EXPECT_USAGE("--share-with: only with hodei secrets set NAME", "secrets", "list",
                 "--share-with", "b");
    unlink(path);
}

Test(args, keys)
{
    EXPECT_OK("keys", "create", "ci", "--scope", "jobs:submit", "--scope", "jobs:read", "--scope",
              "jobs:submit", "--namespace", "team-a", "--owner", "CI robot", "--expires", "90d",
              "--cert-name", "ci.example.com");
    cr_assert_eq(A.command, CLI_CMD_KEYS);
    cr_assert_eq(A.keys_action, CLI_KEYS_CREATE);
    cr_assert_str_eq(A.key_create.name, "ci");
    cr_assert_eq(A.key_create.n_scopes, 2, "a scope named twice counts once");
    cr_assert_str_eq(A.key_create.namespaces[0], "team-a");
    cr_assert_str_eq(A.key_create.owner, "CI robot");
    cr_assert_not_null(A.key_create.expires_at);
    cr_assert_gt(A.key_create.expires_at->seconds, 0);
    cr_assert_str_eq(A.key_create.cert_name, "ci.example.com");
    EXPECT_OK("keys", "list", "--all");
    cr_assert(A.key_list.include_revoked);
    EXPECT_OK("keys", "revoke", JOB_ID);
    cr_assert_str_eq(A.key_revoke.id, JOB_ID);
    EXPECT_OK("keys", "revoke", "ci");
    cr_assert_str_eq(A.key_revoke.name, "ci");
    EXPECT_USAGE("--scope: at least one", "keys", "create", "ci");
    EXPECT_USAGE("--scope: unknown scope \"jobs:write\"", "keys", "create", "ci", "--scope",
                 "jobs:write");
    EXPECT_USAGE("NAME: required", "keys", "create", "--scope", "admin");
    EXPECT_USAGE("NAME: must be 1 to 128", "keys", "create", "a b", "--scope", "admin");
    EXPECT_USAGE("--namespace: a namespace is", "keys", "create", "ci", "--scope", "admin",
                 "--namespace", "A");
    EXPECT_USAGE("--expires: must be a duration", "keys", "create", "ci", "--scope", "admin",
                 "--expires", "soon");
    EXPECT_USAGE("--owner: at most 256 bytes", "keys", "create", "ci", "--scope", "admin",
                 "--owner", "tab\there");
    EXPECT_USAGE("--scope, --namespace", "keys", "list", "--scope", "admin");
    EXPECT_USAGE("--all: only with hodei keys list", "keys", "revoke", "ci", "--all");
    EXPECT_USAGE("ID|NAME: required", "keys", "revoke");
    EXPECT_USAGE("missing action", "keys");
    EXPECT_USAGE("unknown action \"show\"", "keys", "show");
    EXPECT_USAGE("unexpected argument \"x\"", "keys", "list", "x");
    EXPECT_OK("whoami");
    cr_assert_eq(A.command, CLI_CMD_WHOAMI);
    EXPECT_USAGE("unexpected argument", "whoami", "x");
}

Test(args, audit)
{
    EXPECT_OK("audit", "--actor", "alice", "--action", "secret.*", "--object", "team-a/tok",
              "--since", "2h", "--limit", "20", "--page-token", "42");
    cr_assert_eq(A.command, CLI_CMD_AUDIT);
    cr_assert_str_eq(A.audit.actor, "alice");
    cr_assert_str_eq(A.audit.action, "secret.*");
    cr_assert_str_eq(A.audit.object_id, "team-a/tok");
    cr_assert_not_null(A.audit.since);
    cr_assert_eq(A.audit.page_size, 20);
    cr_assert_str_eq(A.audit.page_token, "42");
    EXPECT_OK("audit", "--since", "2026-12-07T10:00:00Z");
    cr_assert_eq(A.audit.since->seconds, 1796637600);
    EXPECT_USAGE("--since: must be a duration back", "audit", "--since", "yesterday");
    EXPECT_USAGE("--since: must be a duration back", "audit", "--since", "2026-12-07 10:00");
    EXPECT_USAGE("--limit: must be between 1 and 1000", "audit", "--limit", "0");
    EXPECT_USAGE("--page-token: must be a token", "audit", "--page-token", "abc");
    EXPECT_USAGE("--actor: 1 to 256 bytes", "audit", "--actor", "");
}

Test(parsers, when)
{
    int64_t us = 0, now = INT64_C(1800000000000000);
    cr_assert(cli_parse_when("90d", now, true, &us));
    cr_assert_eq(us, now + INT64_C(90) * 86400 * 1000000);
    cr_assert(cli_parse_when("30m", now, false, &us));
    cr_assert_eq(us, now - INT64_C(30) * 60 * 1000000);
    cr_assert(cli_parse_when("1970-01-02T00:00:00Z", now, false, &us));
    cr_assert_eq(us, INT64_C(86400) * 1000000);
    const char *bad[] = {
        "", "d", "0d", "-1h", "1x", "2026-12-07T10:00:00", "2026-13-01T00:00:00Z", "36601d"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert(!cli_parse_when(bad[i], now, true, &us), "%s", bad[i]);
}

Test(args, every_new_command_has_help)
{
    static const char *const names[] = {"run",     "logs", "workers", "providers",
                                        "secrets", "keys", "whoami",  "audit"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cr_assert_eq(PARSE(names[i], "--help"), HODEI_OK, "%s --help: %s", names[i], E.msg);
        cr_assert(A.help);
        cr_assert_str_eq(cli_command_name(A.command), names[i]);
    }
}

/* ------------------------------------------------------------ value parsers */

Test(parsers, size)
{
    static const struct {
        const char *s;
        int64_t v;
    } good[] = {
        {"0", 0},
        {"100", 100},
        {"64k", 64000},
        {"64K", 64000},
        {"1M", 1000000},
        {"1G", 1000000000},
        {"1GB", 1000000000},
        {"2T", INT64_C(2000000000000)},
        {"1P", INT64_C(1000000000000000)},
        {"1Ki", 1024},
        {"512Mi", INT64_C(512) << 20},
        {"2Gi", INT64_C(2) << 30},
        {"2GiB", INT64_C(2) << 30},
        {"3Ti", INT64_C(3) << 40},
        {"1Pi", INT64_C(1) << 50},
        {"8191Pi", INT64_C(8191) << 50},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        int64_t v = -1;
        cr_expect(cli_parse_size(good[i].s, &v), "%s", good[i].s);
        cr_expect_eq(v, good[i].v, "%s: %lld", good[i].s, (long long)v);
    }
    const char *bad[] = {"",
                         "G",
                         "-1",
                         "+1",
                         " 1",
                         "1 G",
                         "1.5G",
                         "1g",
                         "1mi",
                         "1Zi",
                         "1KiB2",
                         "8192Pi",
                         "9223372036854775808",
                         "1e3",
                         "0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v = 0;
        cr_expect_not(cli_parse_size(bad[i], &v), "\"%s\" accepted as %lld", bad[i], (long long)v);
    }
}

Test(parsers, duration)
{
    int64_t ms = 0;
    cr_assert(cli_parse_duration("5s", &ms));
    cr_assert_eq(ms, 5000);
    cr_assert(cli_parse_duration("2m", &ms));
    cr_assert_eq(ms, 120000);
    cr_assert(cli_parse_duration("1h", &ms));
    cr_assert_eq(ms, 3600000);
    cr_assert(cli_parse_duration("250ms", &ms));
    cr_assert_eq(ms, 250);
    cr_assert(cli_parse_duration("1500", &ms));
    cr_assert_eq(ms, 1500);
    const char *bad[] = {"", "s", " 5s", "+5s", "-5s", "5 s", "5d", "1.5h", "5S"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not(cli_parse_duration(bad[i], &ms), "\"%s\"", bad[i]);
}

Test(parsers, decimal)
{
    double d = -1;
    cr_assert(cli_parse_decimal("2", &d));
    cr_assert_float_eq(d, 2.0, 1e-12);
    cr_assert(cli_parse_decimal("0.5", &d));
    cr_assert_float_eq(d, 0.5, 1e-12);
    cr_assert(cli_parse_decimal(".25", &d));
    cr_assert_float_eq(d, 0.25, 1e-12);
    cr_assert(cli_parse_decimal("3.", &d));
    cr_assert_float_eq(d, 3.0, 1e-12);
    const char *bad[] = {"",    ".",     "-1",    "+1", "1e3", "inf",
                         "nan", "0x1p3", "1.2.3", " 1", "1,5", "123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_not(cli_parse_decimal(bad[i], &d), "\"%s\"", bad[i]);
}

Test(parsers, key_value)
{
    const char *k = NULL, *v = NULL;
    size_t n = 0;
    cr_assert(cli_parse_kv("A=1", &k, &n, &v));
    cr_assert_eq(n, 1);
    cr_assert(strncmp(k, "A", n) == 0);
    cr_assert_str_eq(v, "1");
    cr_assert(cli_parse_kv("KEY=a=b", &k, &n, &v));
    cr_assert_eq(n, 3);
    cr_assert_str_eq(v, "a=b");
    cr_assert(cli_parse_kv("E=", &k, &n, &v));
    cr_assert_str_eq(v, "");
    cr_assert_not(cli_parse_kv("=v", &k, &n, &v));
    cr_assert_not(cli_parse_kv("novalue", &k, &n, &v));
    cr_assert_not(cli_parse_kv("", &k, &n, &v));
}

/* ------------------------------------------------------------ JSON */

static char *json_escaped(const char *s, size_t len)
{
    hodei_buf b;
    hodei_buf_init(&b, 4096);
    cr_assert(cli_json_escape(&b, s, len));
    return hodei_buf_take(&b, NULL);
}

Test(json, escaping)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"", 0, "\"\""},
        {"say \"hi\"", 8, "\"say \\\"hi\\\"\""},
        {"back\\slash", 10, "\"back\\\\slash\""},
        {"a\nb\tc\rd", 7, "\"a\\u000ab\\u0009c\\u000dd\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
        {"nul\0in", 6, "\"nul\\u0000in\""},
        {"/slash/", 7, "\"/slash/\""},
        {"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80", 14,
         "\"caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80\""},
        {"bad\xff", 4, "\"bad\xef\xbf\xbd\""},
        {"\xc3", 1, "\"\xef\xbf\xbd\""},                                 /* truncated */
        {"\xc3(", 2, "\"\xef\xbf\xbd(\""},                               /* bad continuation */
        {"\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},                 /* overlong */
        {"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate */
        {"\xf4\x90\x80\x80", 4, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xe2\x9c", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = json_escaped(cases[i].in, cases[i].len);
        cr_expect_str_eq(got, cases[i].out, "case %zu", i);
        free(got);
    }
}

Test(json, writer_places_commas_and_nests)
{
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, 4096);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    cli_json_kv_string(&j, "id", "x");
    cli_json_kv_int(&j, "n", INT64_MIN);
    cli_json_kv_bool(&j, "ok", true);
    cli_json_key(&j, "list");
    cli_json_array_begin(&j);
    cli_json_int(&j, 1);
    cli_json_string(&j, NULL);
    cli_json_object_begin(&j);
    cli_json_object_end(&j);
    cli_json_array_begin(&j);
    cli_json_array_end(&j);
    cli_json_array_end(&j);
    cli_json_key(&j, "d");
    cli_json_double(&j, 0.1);
    cli_json_key(&j, "half");
    cli_json_double(&j, 0.5);
    cli_json_key(&j, "nan");
    cli_json_double(&j, NAN);
    cli_json_key(&j, "k\"ey");
    cli_json_null(&j);
    cli_json_object_end(&j);
    cr_assert(cli_json_done(&j));
    cr_assert_str_eq(b.data, "{\"id\":\"x\",\"n\":-9223372036854775808,\"ok\":true,"
                             "\"list\":[1,null,{},[]],\"d\":0.1,\"half\":0.5,\"nan\":null,"
                             "\"k\\\"ey\":null}");
    hodei_buf_fini(&b);
}

Test(json, misuse_and_overflow_are_reported)
{
    hodei_buf b;
    cli_json j;
    hodei_buf_init(&b, 4096);
    cli_json_init(&j, &b);
    cli_json_object_begin(&j);
    cr_assert_not(cli_json_done(&j), "unbalanced");
    cli_json_key(&j, "k");
    cr_assert_not(cli_json_done(&j), "a key without a value");
    cli_json_object_end(&j);
    cr_assert_not(cli_json_done(&j), "closed after a key");
    hodei_buf_fini(&b);

    hodei_buf_init(&b, 16);
    cli_json_init(&j, &b);
    cli_json_array_begin(&j);
    cli_json_string(&j, "far more than sixteen bytes");
    cli_json_array_end(&j);
    cr_assert_not(cli_json_done(&j), "the buffer's maximum was passed");
    hodei_buf_fini(&b);

    hodei_buf_init(&b, 4096);
    cli_json_init(&j, &b);
    for (int i = 0; i < CLI_JSON_DEPTH_MAX + 1; i++)
        cli_json_array_begin(&j);
    for (int i = 0; i < CLI_JSON_DEPTH_MAX + 1; i++)
        cli_json_array_end(&j);
    cr_assert_not(cli_json_done(&j), "deeper than CLI_JSON_DEPTH_MAX");
    hodei_buf_fini(&b);
}

/* ------------------------------------------------------------ exit codes */

Test(exit_codes, grpc_codes)
{
    static const int expected[17] = {
        [HODEI_GRPC_OK] = 0,
        [HODEI_GRPC_CANCELLED] = 1,
        [HODEI_GRPC_UNKNOWN] = 1,
        [HODEI_GRPC_INVALID_ARGUMENT] = 3,
        [HODEI_GRPC_DEADLINE_EXCEEDED] = 5,
        [HODEI_GRPC_NOT_FOUND] = 4,
        [HODEI_GRPC_ALREADY_EXISTS] = 3,
        [HODEI_GRPC_PERMISSION_DENIED] = 6,
        [HODEI_GRPC_RESOURCE_EXHAUSTED] = 1,
        [HODEI_GRPC_FAILED_PRECONDITION] = 3,
        [HODEI_GRPC_ABORTED] = 1,
        [HODEI_GRPC_OUT_OF_RANGE] = 3,
        [HODEI_GRPC_UNIMPLEMENTED] = 1,
        [HODEI_GRPC_INTERNAL] = 1,
        [HODEI_GRPC_UNAVAILABLE] = 5,
        [HODEI_GRPC_DATA_LOSS] = 1,
        [HODEI_GRPC_UNAUTHENTICATED] = 6,
    };
    for (int c = 0; c < 17; c++)
        cr_expect_eq(cli_exit_from_grpc((hodei_grpc_code)c), expected[c], "code %d", c);
    cr_expect_eq(cli_exit_from_grpc((hodei_grpc_code)99), CLI_EXIT_ERROR);
}

Test(exit_codes, call_not_made)
{
    cr_expect_eq(cli_exit_from_status(HODEI_OK), 0);
    cr_expect_eq(cli_exit_from_status(HODEI_ERR_UNAVAILABLE), 5);
    cr_expect_eq(cli_exit_from_status(HODEI_ERR_TIMEOUT), 5);
    cr_expect_eq(cli_exit_from_status(HODEI_ERR_UNAUTHENTICATED), 6);
    cr_expect_eq(cli_exit_from_status(HODEI_ERR_PERMISSION), 6);
    cr_expect_eq(cli_exit_from_status(HODEI_ERR_INTERNAL), 1);
    cr_expect_eq(cli_exit_from_status(HODEI_ERR_IO), 1);
}

/* ------------------------------------------------------------ output */

typedef struct {
    char *out_text, *err_text;
    size_t out_len, err_len;
    FILE *out, *err;
} capture;

static void capture_open(capture *c)
{
    memset(c, 0, sizeof *c);
    c->out = open_memstream(&c->out_text, &c->out_len);
    c->err = open_memstream(&c->err_text, &c->err_len);
    cr_assert(c->out && c->err);
}

static void capture_close(capture *c)
{
    fclose(c->out);
    fclose(c->err);
}

static void capture_free(capture *c)
{
    free(c->out_text);
    free(c->err_text);
}

Test(output, submit_human_prints_the_id_alone)
{
    Hodei__V1__QueueJobResponse r = HODEI__V1__QUEUE_JOB_RESPONSE__INIT;
    r.job_id = JOB_ID;
    r.state = HODEI__V1__JOB_STATE__JOB_STATE_PENDING;
    capture c;
    capture_open(&c);
    cr_assert_eq(cli_output_submit(CLI_OUTPUT_HUMAN, &r, c.out, c.err), CLI_EXIT_OK);
    capture_close(&c);
    cr_assert_str_eq(c.out_text, JOB_ID "\n");
    cr_assert_str_eq(c.err_text, "");
    capture_free(&c);

    r.duplicate = true;
    capture_open(&c);
    cli_output_submit(CLI_OUTPUT_HUMAN, &r, c.out, c.err);
    capture_close(&c);
    cr_assert_str_eq(c.out_text, JOB_ID "\n");
    cr_assert_str_eq(c.err_text, "(duplicate of an earlier submit)\n");
    capture_free(&c);
}

Test(output, submit_json)
{
    Hodei__V1__QueueJobResponse r = HODEI__V1__QUEUE_JOB_RESPONSE__INIT;
    r.job_id = JOB_ID;
    r.duplicate = true;
    r.state = HODEI__V1__JOB_STATE__JOB_STATE_RUNNING;
    capture c;
    capture_open(&c);
    cr_assert_eq(cli_output_submit(CLI_OUTPUT_JSON, &r, c.out, c.err), CLI_EXIT_OK);
    capture_close(&c);
    cr_assert_str_eq(c.out_text,
                     "{\"job_id\":\"" JOB_ID "\",\"duplicate\":true,\"state\":\"RUNNING\"}\n");
    cr_assert_str_eq(c.err_text, "");
    capture_free(&c);
}

/* A job as the server would send it. */
typedef struct {
    Hodei__V1__Job job;
    Hodei__V1__JobSpec spec;
    Hodei__V1__ShellCommand cmd;
    Hodei__V1__Timestamp created, started;
    char *args[2];
} job_fixture;

static void job_fixture_init(job_fixture *f, const char *id, const char *name)
{
    hodei__v1__job__init(&f->job);
    hodei__v1__job_spec__init(&f->spec);
    hodei__v1__shell_command__init(&f->cmd);
    hodei__v1__timestamp__init(&f->created);
    hodei__v1__timestamp__init(&f->started);
    f->args[0] = "hello world";
    f->args[1] = "it's";
    f->cmd.command = "echo";
    f->cmd.args = f->args;
    f->cmd.n_args = 2;
    f->spec.payload_case = HODEI__V1__JOB_SPEC__PAYLOAD_COMMAND;
    f->spec.command = &f->cmd;
    f->spec.name = (char *)name;
    f->spec.priority = 5;
    f->created.seconds = 1800000000; /* 2027-01-15T08:00:00Z */
    f->created.nanos = 123000000;
    f->job.id = (char *)id;
    f->job.spec = &f->spec;
    f->job.state = HODEI__V1__JOB_STATE__JOB_STATE_RUNNING;
    f->job.attempt = 1;
    f->job.max_attempts = 3;
    f->job.worker_id = "w-1";
    f->job.created_at = &f->created;
}

Test(output, command_line_is_shell_quoted)
{
    job_fixture f;
    job_fixture_init(&f, JOB_ID, "");
    char text[256];
    cli_format_command(&f.spec, text, sizeof text);
    cr_assert_str_eq(text, "echo 'hello world' 'it'\\''s'");
    f.args[0] = "";
    f.args[1] = "a\x1b[31m";
    cli_format_command(&f.spec, text, sizeof text);
    cr_assert_str_eq(text, "echo '' 'a?[31m'", "control characters never reach the terminal");
}

Test(output, age)
{
    char t[16];
    const int64_t now = INT64_C(1800000000) * 1000000;
    cli_format_age(now - 5 * 1000000, now, t, sizeof t);
    cr_assert_str_eq(t, "5s");
    cli_format_age(now - INT64_C(119) * 1000000, now, t, sizeof t);
    cr_assert_str_eq(t, "119s");
    cli_format_age(now - INT64_C(600) * 1000000, now, t, sizeof t);
    cr_assert_str_eq(t, "10m");
    cli_format_age(now - INT64_C(3) * 3600 * 1000000, now, t, sizeof t);
    cr_assert_str_eq(t, "3h");
    cli_format_age(now - INT64_C(10) * 86400 * 1000000, now, t, sizeof t);
    cr_assert_str_eq(t, "10d");
    cli_format_age(now + 1000000, now, t, sizeof t);
    cr_assert_str_eq(t, "0s", "clock skew shows as 0s");
    cli_format_age(0, now, t, sizeof t);
    cr_assert_str_eq(t, "-");
}

Test(output, status_block)
{
    job_fixture f;
    job_fixture_init(&f, JOB_ID, "nightly");
    capture c;
    capture_open(&c);
    cr_assert_eq(cli_output_status(CLI_OUTPUT_HUMAN, &f.job, c.out), CLI_EXIT_OK);
    capture_close(&c);
    cr_assert_str_eq(c.out_text, "ID:        " JOB_ID "\n"
                                 "Name:      nightly\n"
                                 "State:     RUNNING\n"
                                 "Attempt:   1/3\n"
                                 "Worker:    w-1\n"
                                 "Exit code: -\n"
                                 "Error:     -\n"
                                 "Created:   2027-01-15T08:00:00.123Z\n"
                                 "Started:   -\n"
                                 "Finished:  -\n"
                                 "Command:   echo 'hello world' 'it'\\''s'\n");
    capture_free(&c);
}

Test(output, status_finished_shows_exit_code_and_error)
{
    job_fixture f;
    job_fixture_init(&f, JOB_ID, "");
    f.job.state = HODEI__V1__JOB_STATE__JOB_STATE_FAILED;
    f.job.exit_code = 2;
    f.job.error = "exit status 2\nsecond line";
    capture c;
    capture_open(&c);
    cli_output_status(CLI_OUTPUT_HUMAN, &f.job, c.out);
    capture_close(&c);
    cr_assert(strstr(c.out_text, "State:     FAILED\n"), "%s", c.out_text);
    cr_assert(strstr(c.out_text, "Exit code: 2\n"), "%s", c.out_text);
    cr_assert(strstr(c.out_text, "Error:     exit status 2?second line\n"), "%s", c.out_text);
    cr_assert(strstr(c.out_text, "Name:      -\n"), "%s", c.out_text);
    capture_free(&c);
}

Test(output, status_json_is_one_object)
{
    job_fixture f;
    job_fixture_init(&f, JOB_ID, "n\xff");
    f.started.seconds = 1800000001;
    f.job.started_at = &f.started;
    capture c;
    capture_open(&c);
    cr_assert_eq(cli_output_status(CLI_OUTPUT_JSON, &f.job, c.out), CLI_EXIT_OK);
    capture_close(&c);
    const char *expect =
        "{\"job\":{\"id\":\"" JOB_ID "\",\"name\":\"n\xef\xbf\xbd\",\"state\":\"RUNNING\","
        "\"attempt\":1,\"max_attempts\":3,\"worker_id\":\"w-1\",\"epoch\":0,"
        "\"cancel_requested\":false,\"exit_code\":0,\"error\":\"\","
        "\"created_at\":\"2027-01-15T08:00:00.123Z\",\"updated_at\":null,"
        "\"started_at\":\"2027-01-15T08:00:01.000Z\",\"finished_at\":null,"
        "\"idempotency_key\":\"\",\"spec\":{\"name\":\"n\xef\xbf\xbd\","
        "\"command\":{\"command\":\"echo\",\"args\":[\"hello world\",\"it's\"]},"
        "\"env\":{},\"resources\":null,\"timeout_ms\":0,\"labels\":{},\"constraints\":{},"
        "\"inputs\":[],\"outputs\":[],\"priority\":5,\"max_attempts\":0,\"provider\":\"\","
        "\"image\":\"\",\"secret_refs\":[],\"working_dir\":\"\"}}}\n";
    cr_assert_str_eq(c.out_text, expect);
    capture_free(&c);
}

Test(output, jobs_table_is_aligned)
{
    job_fixture a, b;
    job_fixture_init(&a, JOB_ID, "nightly build");
    job_fixture_init(&b, "short-id", "");
    b.job.state = HODEI__V1__JOB_STATE__JOB_STATE_PENDING;
    b.job.cancel_requested = true;
    b.spec.priority = -100;
    b.job.attempt = 0;
    b.job.max_attempts = 10;
    Hodei__V1__Job *jobs[2] = {&a.job, &b.job};
    Hodei__V1__ListJobsResponse r = HODEI__V1__LIST_JOBS_RESPONSE__INIT;
    r.jobs = jobs;
    r.n_jobs = 2;
    r.next_page_token = "tok.2";
    const int64_t now = INT64_C(1800000300) * 1000000;
    capture c;
    capture_open(&c);
    cr_assert_eq(cli_output_jobs(CLI_OUTPUT_HUMAN, &r, now, c.out, c.err), CLI_EXIT_OK);
    capture_close(&c);
    cr_assert_str_eq(
        c.out_text,
        "ID                                    STATE     PRIO  ATTEMPT  AGE  COMMAND/NAME\n" JOB_ID
        "  RUNNING   5     1/3      4m   nightly build\n"
        "short-id                              PENDING*  -100  0/10     4m   "
        "echo 'hello world' 'it'\\''s'\n"
        "Next page token: tok.2\n");
    capture_free(&c);
}

Test(output, jobs_empty_and_json)
{
    Hodei__V1__ListJobsResponse r = HODEI__V1__LIST_JOBS_RESPONSE__INIT;
    capture c;
    capture_open(&c);
    cr_assert_eq(cli_output_jobs(CLI_OUTPUT_HUMAN, &r, 0, c.out, c.err), CLI_EXIT_OK);
    capture_close(&c);
    cr_assert_str_eq(c.out_text, "");
    cr_assert_str_eq(c.err_text, "No jobs found.\n");
    capture_free(&c);

    capture_open(&c);
    cr_assert_eq(cli_output_jobs(CLI_OUTPUT_JSON, &r, 0, c.out, c.err), CLI_EXIT_OK);
    capture_close(&c);
    cr_assert_str_eq(c.out_text, "{\"jobs\":[],\"next_page_token\":\"\"}\n");
    capture_free(&c);
}

Test(output, cancel_prints_the_resulting_state)
{
    job_fixture f;
    job_fixture_init(&f, JOB_ID, "");
    f.job.cancel_requested = true;
    capture c;
    capture_open(&c);
    cli_output_cancel(CLI_OUTPUT_HUMAN, &f.job, c.out);
    capture_close(&c);
    cr_assert_str_eq(c.out_text, "RUNNING (cancel requested)\n");
    capture_free(&c);
    f.job.state = HODEI__V1__JOB_STATE__JOB_STATE_CANCELLED;
    capture_open(&c);
    cli_output_cancel(CLI_OUTPUT_HUMAN, &f.job, c.out);
    capture_close(&c);
    cr_assert_str_eq(c.out_text, "CANCELLED\n");
    capture_free(&c);
}

Test(output, server_errors)
{
    capture c;
    capture_open(&c);
    cli_output_error(c.err, "NOT_FOUND", "job x not found\x1b");
    capture_close(&c);
    cr_assert_str_eq(c.err_text, "hodei: NOT_FOUND: job x not found?\n");
    capture_free(&c);
}
