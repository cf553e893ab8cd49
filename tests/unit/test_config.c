#include <criterion/criterion.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hodei/config.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#define TEST_PATH_MAX 64
#define TEST_PRINT_MAX 8192

/* A service's own section, as a daemon would declare it. */
typedef struct {
    bool enabled;
    int64_t tick_ms;
    int64_t workers;
    char *token;
    char *mode;
} own_config;

static const char *const own_modes[] = {"fast", "safe", NULL};

static const hodei_cfg_param own_params[] = {
    {.name = "svc.enabled",
     .type = HODEI_CFG_BOOL,
     .default_value = "no",
     .offset = offsetof(own_config, enabled)},
    {.name = "svc.tick",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "1s",
     .min = 10,
     .max = 3600000,
     .offset = offsetof(own_config, tick_ms)},
    {.name = "svc.workers",
     .type = HODEI_CFG_INT,
     .default_value = "4",
     .min = 1,
     .max = 64,
     .offset = offsetof(own_config, workers)},
    {.name = "svc.api-token",
     .type = HODEI_CFG_STRING,
     .offset = offsetof(own_config, token),
     .required = true,
     .secret = true},
    {.name = "svc.mode",
     .type = HODEI_CFG_STRING,
     .default_value = "safe",
     .offset = offsetof(own_config, mode),
     .choices = own_modes},
};

static const char *const env_names[] = {"HODEI_LOG_LEVEL",
                                        "HODEI_DATABASE_URL",
                                        "HODEI_DATABASE_POOL_SIZE",
                                        "HODEI_DATABASE_CONNECT_TIMEOUT",
                                        "HODEI_NATS_URL",
                                        "HODEI_INSTANCE_ID",
                                        "HODEI_SVC_ENABLED",
                                        "HODEI_SVC_TICK",
                                        "HODEI_SVC_WORKERS",
                                        "HODEI_SVC_API_TOKEN",
                                        "HODEI_SVC_MODE",
                                        "HODEI_DATABASE_URL_FILE",
                                        "HODEI_SVC_API_TOKEN_FILE",
                                        "HODEI_NATS_USER",
                                        "HODEI_NATS_PASSWORD",
                                        "HODEI_NATS_PASSWORD_FILE",
                                        NULL};

static void env_clean(void)
{
    for (size_t i = 0; env_names[i]; i++)
        unsetenv(env_names[i]);
}

/* Criterion ignores what LeakSanitizer finds when a worker exits (and
 * failures in .fini), so every test ends by asking it. */
static void assert_no_leaks(void)
{
#ifdef __SANITIZE_ADDRESS__
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "LeakSanitizer found leaks (see stderr)");
#endif
}

TestSuite(config, .init = env_clean, .fini = env_clean);

static hodei_common_config common;
static own_config own;

static hodei_cfg_section sections[2];

static void sections_setup(void)
{
    memset(&common, 0, sizeof common);
    memset(&own, 0, sizeof own);
    sections[0] = (hodei_cfg_section){hodei_common_params, hodei_common_params_len, &common};
    sections[1] = (hodei_cfg_section){own_params, sizeof own_params / sizeof own_params[0], &own};
}

/* Writes a YAML file; path receives its name. */
static void yaml_write(char path[TEST_PATH_MAX], const char *text)
{
    snprintf(path, TEST_PATH_MAX, "/tmp/hodei-test-config-XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    cr_assert(fd >= 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static hodei_status load_common(const char *path, hodei_err *err)
{
    sections_setup();
    return hodei_config_load(sections, 1, path, err);
}

static hodei_status load_both(const char *path, hodei_err *err)
{
    sections_setup();
    return hodei_config_load(sections, 2, path, err);
}

static hodei_status load_yaml(const char *text, char path[TEST_PATH_MAX], hodei_err *err,
                              size_t n_sections)
{
    yaml_write(path, text);
    hodei_status st = n_sections == 1 ? load_common(path, err) : load_both(path, err);
    unlink(path);
    return st;
}

static void print_to(char *buf, size_t len, size_t n_sections)
{
    FILE *f = fmemopen(buf, len, "w");
    cr_assert(f);
    hodei_config_print(sections, n_sections, f);
    fclose(f);
}

Test(config, defaults_fill_every_common_parameter)
{
    hodei_err err;
    cr_assert_eq(load_common(NULL, &err), HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(common.log_level, "info");
    cr_assert_str_eq(common.database_url, "postgresql://hodei@127.0.0.1:5432/hodei");
    cr_assert_eq(common.database_pool_size, 8);
    cr_assert_eq(common.database_connect_timeout_ms, 5000);
    cr_assert_str_eq(common.nats_url, "nats://127.0.0.1:4222");
    cr_assert_not_null(common.instance_id);
    cr_assert_str_eq(common.instance_id, "");
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, yaml_nested_mappings_fill_dotted_names)
{
    char path[TEST_PATH_MAX];
    hodei_err err;
    hodei_status st = load_yaml("log:\n  level: debug\n"
                                "database:\n  url: postgresql://a@db:6000/x\n  pool_size: 32\n"
                                "  connect_timeout: 250ms\n"
                                "nats.url: nats://n:4333\n",
                                path, &err, 1);
    cr_assert_eq(st, HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(common.log_level, "debug");
    cr_assert_str_eq(common.database_url, "postgresql://a@db:6000/x");
    cr_assert_eq(common.database_pool_size, 32);
    cr_assert_eq(common.database_connect_timeout_ms, 250);
    cr_assert_str_eq(common.nats_url, "nats://n:4333");
    cr_assert_str_eq(common.log_level, "debug");
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, env_overrides_file_and_empty_env_counts)
{
    char path[TEST_PATH_MAX];
    hodei_err err;
    setenv("HODEI_DATABASE_POOL_SIZE", "12", 1);
    setenv("HODEI_INSTANCE_ID", "", 1);
    hodei_status st =
        load_yaml("database:\n  pool_size: 32\ninstance:\n  id: from-file\n", path, &err, 1);
    cr_assert_eq(st, HODEI_OK, "%s", err.msg);
    cr_assert_eq(common.database_pool_size, 12);
    cr_assert_str_eq(common.instance_id, "");
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, bounds_error_names_field_and_file_line)
{
    char path[TEST_PATH_MAX];
    char want[TEST_PATH_MAX + 16];
    hodei_err err;
    hodei_status st = load_yaml("log:\n  level: warn\ndatabase:\n  pool_size: 0\n", path, &err, 1);
    cr_assert_eq(st, HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "database.pool_size: 0 is below the minimum 1"), "%s", err.msg);
    snprintf(want, sizeof want, "(from %s:4)", path);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    hodei_config_free(sections, 1);
    cr_assert_null(common.log_level);
    assert_no_leaks();
}

Test(config, bounds_error_names_env_var)
{
    hodei_err err;
    setenv("HODEI_DATABASE_CONNECT_TIMEOUT", "90s", 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "database.connect_timeout: 90s is above the maximum 1m"), "%s",
              err.msg);
    cr_assert(strstr(err.msg, "(from HODEI_DATABASE_CONNECT_TIMEOUT)"), "%s", err.msg);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, bad_default_names_default_as_source)
{
    static const hodei_cfg_param bad[] = {
        {.name = "x.n",
         .type = HODEI_CFG_INT,
         .default_value = "100",
         .min = 1,
         .max = 10,
         .offset = 0},
    };
    int64_t n = 0;
    hodei_cfg_section sec = {bad, 1, &n};
    hodei_err err;
    cr_assert_eq(hodei_config_load(&sec, 1, NULL, &err), HODEI_ERR_INVALID);
    cr_assert_str_eq(err.msg, "x.n: 100 is above the maximum 10 (from default)");
    hodei_config_free(&sec, 1);
    assert_no_leaks();
}

Test(config, not_an_integer_is_refused)
{
    hodei_err err;
    setenv("HODEI_DATABASE_POOL_SIZE", "8x", 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_INVALID);
    cr_assert_str_eq(err.msg,
                     "database.pool_size: '8x' is not an integer (from HODEI_DATABASE_POOL_SIZE)");
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, unknown_key_is_named_with_file_and_line)
{
    char path[TEST_PATH_MAX];
    char want[TEST_PATH_MAX + 64];
    hodei_err err;
    hodei_status st = load_yaml("log:\n  level: info\ndatabse:\n  url: x\n", path, &err, 1);
    cr_assert_eq(st, HODEI_ERR_INVALID);
    snprintf(want, sizeof want, "unknown configuration key 'databse.url' in %s:4", path);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    cr_assert(strstr(err.msg, "did you mean 'database.url'"), "%s", err.msg);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, yaml_syntax_error_has_file_line_column_and_problem)
{
    char path[TEST_PATH_MAX];
    char want[TEST_PATH_MAX + 64];
    hodei_err err;
    hodei_status st = load_yaml("log:\n  level: info\n  bad: [1, 2\n", path, &err, 1);
    cr_assert_eq(st, HODEI_ERR_INVALID);
    snprintf(want, sizeof want, "%s:4:1: invalid YAML: ", path);
    cr_assert(strstr(err.msg, want), "%s", err.msg);
    cr_assert(strstr(err.msg, "did not find expected ',' or ']'"), "%s", err.msg);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, tab_indentation_is_a_syntax_error)
{
    char path[TEST_PATH_MAX];
    hodei_err err;
    hodei_status st = load_yaml("log:\n\tlevel: info\n", path, &err, 1);
    cr_assert_eq(st, HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, ":2:1: invalid YAML: found character that cannot start any token"),
              "%s", err.msg);
    assert_no_leaks();
}

Test(config, missing_file_is_an_io_error)
{
    hodei_err err;
    cr_assert_eq(load_common("/nonexistent/hodei.yaml", &err), HODEI_ERR_IO);
    cr_assert(strstr(err.msg, "/nonexistent/hodei.yaml"), "%s", err.msg);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, structure_errors_are_refused)
{
    char path[TEST_PATH_MAX];
    hodei_err err;
    cr_assert_eq(load_yaml("database:\n  url:\n    host: x\n", path, &err, 1), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "'database.url' takes a single value"), "%s", err.msg);
    cr_assert_eq(load_yaml("nats:\n  url: [a, b]\n", path, &err, 1), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "'nats.url' is a list"), "%s", err.msg);
    cr_assert_eq(load_yaml("nats:\n  url: a\nnats.url: b\n", path, &err, 1), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "duplicate configuration key 'nats.url'"), "%s", err.msg);
    cr_assert_eq(load_yaml("- a\n- b\n", path, &err, 1), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "top level must be a mapping"), "%s", err.msg);
    cr_assert_eq(load_yaml("log: {level: info}\n---\nnats: {url: x}\n", path, &err, 1),
                 HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "one YAML document"), "%s", err.msg);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, empty_file_and_null_values)
{
    char path[TEST_PATH_MAX];
    hodei_err err;
    cr_assert_eq(load_yaml("", path, &err, 1), HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(common.nats_url, "nats://127.0.0.1:4222");
    hodei_config_free(sections, 1);
    cr_assert_eq(load_yaml("instance:\n  id: ~\n", path, &err, 1), HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(common.instance_id, "");
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, bool_forms)
{
    static const char *const yes[] = {"true", "YES", "on", "1", "True", NULL};
    static const char *const no[] = {"false", "no", "OFF", "0", NULL};
    hodei_err err;
    setenv("HODEI_SVC_API_TOKEN", "t", 1);
    for (size_t i = 0; yes[i]; i++) {
        setenv("HODEI_SVC_ENABLED", yes[i], 1);
        cr_assert_eq(load_both(NULL, &err), HODEI_OK, "%s: %s", yes[i], err.msg);
        cr_assert(own.enabled, "%s", yes[i]);
        hodei_config_free(sections, 2);
    }
    for (size_t i = 0; no[i]; i++) {
        setenv("HODEI_SVC_ENABLED", no[i], 1);
        cr_assert_eq(load_both(NULL, &err), HODEI_OK, "%s: %s", no[i], err.msg);
        cr_assert_not(own.enabled, "%s", no[i]);
        hodei_config_free(sections, 2);
    }
    setenv("HODEI_SVC_ENABLED", "maybe", 1);
    cr_assert_eq(load_both(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "svc.enabled: 'maybe' is not a boolean"), "%s", err.msg);
    cr_assert(strstr(err.msg, "(from HODEI_SVC_ENABLED)"), "%s", err.msg);
    hodei_config_free(sections, 2);
    assert_no_leaks();
}

Test(config, duration_forms)
{
    static const struct {
        const char *text;
        int64_t ms;
    } ok[] = {{"250ms", 250}, {"5s", 5000}, {"2m", 120000}, {"1h", 3600000}, {"750", 750}};
    hodei_err err;
    setenv("HODEI_SVC_API_TOKEN", "t", 1);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        setenv("HODEI_SVC_TICK", ok[i].text, 1);
        cr_assert_eq(load_both(NULL, &err), HODEI_OK, "%s: %s", ok[i].text, err.msg);
        cr_assert_eq(own.tick_ms, ok[i].ms, "%s", ok[i].text);
        hodei_config_free(sections, 2);
    }
    setenv("HODEI_SVC_TICK", "5 s", 1);
    cr_assert_eq(load_both(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "svc.tick: '5 s' is not a duration"), "%s", err.msg);
    hodei_config_free(sections, 2);
    setenv("HODEI_SVC_TICK", "5ms", 1);
    cr_assert_eq(load_both(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "svc.tick: 5ms is below the minimum 10ms (from HODEI_SVC_TICK)"),
              "%s", err.msg);
    hodei_config_free(sections, 2);
    assert_no_leaks();
}

Test(config, choices_are_enforced_and_canonicalised)
{
    hodei_err err;
    setenv("HODEI_LOG_LEVEL", "WARN", 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(common.log_level, "warn");
    hodei_config_free(sections, 1);
    setenv("HODEI_LOG_LEVEL", "verbose", 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_INVALID);
    cr_assert_str_eq(
        err.msg, "log.level: 'verbose' is not one of debug|info|warn|error (from HODEI_LOG_LEVEL)");
    hodei_config_free(sections, 1);
    setenv("HODEI_LOG_LEVEL", "", 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_INVALID);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, string_max_length)
{
    char id[200];
    memset(id, 'a', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    hodei_err err;
    setenv("HODEI_INSTANCE_ID", id, 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(
        strstr(err.msg, "instance.id: the value is 199 characters long, above the maximum 128"),
        "%s", err.msg);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}

Test(config, required_parameter_must_be_set)
{
    char path[TEST_PATH_MAX];
    hodei_err err;
    cr_assert_eq(load_both(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "svc.api-token: a value is required"), "%s", err.msg);
    cr_assert(strstr(err.msg, "HODEI_SVC_API_TOKEN"), "%s", err.msg);
    hodei_config_free(sections, 2);
    cr_assert_eq(load_yaml("svc:\n  api-token: s3cret\n", path, &err, 2), HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(own.token, "s3cret");
    hodei_config_free(sections, 2);
    setenv("HODEI_SVC_API_TOKEN", "", 1);
    cr_assert_eq(load_yaml("svc:\n  api-token: s3cret\n", path, &err, 2), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "(from HODEI_SVC_API_TOKEN"), "%s", err.msg);
    hodei_config_free(sections, 2);
    assert_no_leaks();
}

Test(config, print_masks_secrets_and_names_sources)
{
    char path[TEST_PATH_MAX];
    char want[TEST_PATH_MAX + 64];
    char out[TEST_PRINT_MAX];
    hodei_err err;
    setenv("HODEI_DATABASE_URL", "postgresql://hodei:hunter2@db:5432/hodei", 1);
    hodei_status st = load_yaml("svc:\n  api-token: tok-zz9\n  workers: 9\n", path, &err, 2);
    cr_assert_eq(st, HODEI_OK, "%s", err.msg);
    print_to(out, sizeof out, 2);
    cr_assert_null(strstr(out, "hunter2"), "%s", out);
    cr_assert_null(strstr(out, "tok-zz9"), "%s", out);
    cr_assert(strstr(out, "database.url = ***  # HODEI_DATABASE_URL\n"), "%s", out);
    cr_assert(strstr(out, "log.level = info  # default\n"), "%s", out);
    cr_assert(strstr(out, "database.connect_timeout = 5s  # default\n"), "%s", out);
    cr_assert(strstr(out, "instance.id = \"\"  # default\n"), "%s", out);
    snprintf(want, sizeof want, "svc.workers = 9  # %s:3\n", path);
    cr_assert(strstr(out, want), "%s", out);
    snprintf(want, sizeof want, "svc.api-token = ***  # %s:2\n", path);
    cr_assert(strstr(out, want), "%s", out);
    hodei_config_free(sections, 2);
    assert_no_leaks();
}

Test(config, errors_never_echo_a_secret)
{
    static const hodei_cfg_param p[] = {
        {.name = "k.n", .type = HODEI_CFG_INT, .min = 1, .max = 5, .secret = true},
    };
    int64_t n = 0;
    hodei_cfg_section sec = {p, 1, &n};
    hodei_err err;
    setenv("HODEI_K_N", "hunter2", 1);
    cr_assert_eq(hodei_config_load(&sec, 1, NULL, &err), HODEI_ERR_INVALID);
    unsetenv("HODEI_K_N");
    cr_assert_null(strstr(err.msg, "hunter2"), "%s", err.msg);
    cr_assert(strstr(err.msg, "k.n: '***' is not an integer (from HODEI_K_N)"), "%s", err.msg);
    assert_no_leaks();
}

Test(config, free_zeroes_fields_and_is_safe_after_failure)
{
    hodei_err err;
    setenv("HODEI_SVC_API_TOKEN", "t", 1);
    cr_assert_eq(load_both(NULL, &err), HODEI_OK, "%s", err.msg);
    hodei_config_free(sections, 2);
    cr_assert_null(common.database_url);
    cr_assert_null(own.token);
    cr_assert_null(own.mode);
    setenv("HODEI_SVC_MODE", "reckless", 1); /* fails after earlier strings were filled */
    cr_assert_eq(load_both(NULL, &err), HODEI_ERR_INVALID);
    cr_assert_not_null(common.database_url);
    hodei_config_free(sections, 2);
    hodei_config_free(sections, 2);
    cr_assert_null(common.database_url);
    assert_no_leaks();
}

/* A full load (file, env, both sections), print and free, then a failed
 * load and free: the leak check must find nothing. */
Test(config, load_print_free_leaks_nothing)
{
    char path[TEST_PATH_MAX];
    char out[TEST_PRINT_MAX];
    hodei_err err;
    setenv("HODEI_DATABASE_URL", "postgresql://x:y@h/d", 1);
    cr_assert_eq(load_yaml("svc:\n  api-token: t\n  mode: FAST\n", path, &err, 2), HODEI_OK, "%s",
                 err.msg);
    print_to(out, sizeof out, 2);
    hodei_config_free(sections, 2);
    cr_assert_eq(load_yaml("svc:\n  api-token: t\n  workers: 0\n", path, &err, 2),
                 HODEI_ERR_INVALID);
    hodei_config_free(sections, 2);
    assert_no_leaks();
}

Test(config, duplicate_declaration_is_refused)
{
    hodei_common_config other = {0};
    hodei_cfg_section two[2] = {{hodei_common_params, hodei_common_params_len, &common},
                                {hodei_common_params, hodei_common_params_len, &other}};
    hodei_err err;
    cr_assert_eq(hodei_config_load(two, 2, NULL, &err), HODEI_ERR_INTERNAL);
    cr_assert(strstr(err.msg, "'log.level' is declared twice"), "%s", err.msg);
    assert_no_leaks();
}

Test(config, env_name_mapping)
{
    char out[64];
    hodei_config_env_name("database.connect_timeout", out, sizeof out);
    cr_assert_str_eq(out, "HODEI_DATABASE_CONNECT_TIMEOUT");
    hodei_config_env_name("svc.api-token", out, sizeof out);
    cr_assert_str_eq(out, "HODEI_SVC_API_TOKEN");
    hodei_config_env_name("database.url", out, 10);
    cr_assert_str_eq(out, "HODEI_DAT");
    assert_no_leaks();
}

/* A secret file for the *_file tests; path receives its name. */
static void secret_write(char path[TEST_PATH_MAX], const char *text)
{
    snprintf(path, TEST_PATH_MAX, "/tmp/hodei-test-secret-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
}

Test(config, a_secret_comes_from_its_file_without_the_trailing_newline)
{
    char yaml[TEST_PATH_MAX], url_file[TEST_PATH_MAX], tok_file[TEST_PATH_MAX], text[256];
    char out[TEST_PRINT_MAX], want[TEST_PATH_MAX + 128];
    hodei_err err;
    secret_write(url_file, "postgresql://hodei:hunter2@db/hodei\n");
    secret_write(tok_file, "tok-zz9");
    setenv("HODEI_DATABASE_URL_FILE", url_file, 1);
    snprintf(text, sizeof text, "svc:\n  api-token_file: %s\n", tok_file);
    hodei_status st = load_yaml(text, yaml, &err, 2);
    cr_assert_eq(st, HODEI_OK, "%s", err.msg);
    cr_assert_str_eq(common.database_url, "postgresql://hodei:hunter2@db/hodei");
    cr_assert_str_eq(own.token, "tok-zz9");
    print_to(out, sizeof out, 2);
    cr_assert_null(strstr(out, "hunter2"), "%s", out);
    cr_assert_null(strstr(out, "tok-zz9"), "%s", out);
    snprintf(want, sizeof want,
             "database.url = ***  # file %s (database.url_file from HODEI_DATABASE_URL_FILE)\n",
             url_file);
    cr_assert(strstr(out, want), "%s", out);
    hodei_config_free(sections, 2);
    unlink(url_file);
    unlink(tok_file);
    assert_no_leaks();
}

Test(config, a_secret_set_both_ways_is_refused_naming_both)
{
    char yaml[TEST_PATH_MAX], pw_file[TEST_PATH_MAX];
    hodei_err err;
    secret_write(pw_file, "from-file-zz");
    setenv("HODEI_NATS_PASSWORD_FILE", pw_file, 1);
    hodei_status st = load_yaml("nats:\n  password: from-yaml-zz\n", yaml, &err, 1);
    cr_assert_eq(st, HODEI_ERR_INVALID, "%s", err.msg);
    cr_assert(strstr(err.msg, "nats.password and nats.password_file are both set"), "%s", err.msg);
    cr_assert(strstr(err.msg, "from HODEI_NATS_PASSWORD_FILE"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "from-yaml-zz"), "%s", err.msg);
    cr_assert_null(strstr(err.msg, "from-file-zz"), "%s", err.msg);
    hodei_config_free(sections, 1);
    unlink(pw_file);
    assert_no_leaks();
}

Test(config, a_bad_secret_file_is_named)
{
    char empty[TEST_PATH_MAX], big[TEST_PATH_MAX];
    hodei_err err;
    setenv("HODEI_NATS_PASSWORD_FILE", "/nonexistent/hodei-pw", 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_IO);
    cr_assert(strstr(err.msg, "nats.password_file: cannot open /nonexistent/hodei-pw"), "%s",
              err.msg);
    hodei_config_free(sections, 1);

    secret_write(empty, "\n");
    setenv("HODEI_NATS_PASSWORD_FILE", empty, 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "is empty"), "%s", err.msg);
    hodei_config_free(sections, 1);

    /* nats.password holds at most 1024 bytes: 1024 pass, 1025 do not */
    char text[1100];
    memset(text, 'p', 1025);
    text[1024] = '\0';
    secret_write(big, text);
    setenv("HODEI_NATS_PASSWORD_FILE", big, 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(strlen(common.nats_password), 1024);
    hodei_config_free(sections, 1);
    unlink(big);
    text[1024] = 'p';
    text[1025] = '\0';
    secret_write(big, text);
    setenv("HODEI_NATS_PASSWORD_FILE", big, 1);
    cr_assert_eq(load_common(NULL, &err), HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "holds more than 1024 bytes"), "%s", err.msg);
    hodei_config_free(sections, 1);
    unlink(big);
    unlink(empty);
    assert_no_leaks();
}

Test(config, a_non_secret_has_no_file_form)
{
    char yaml[TEST_PATH_MAX];
    hodei_err err;
    hodei_status st = load_yaml("nats:\n  url_file: /tmp/x\n", yaml, &err, 1);
    cr_assert_eq(st, HODEI_ERR_INVALID);
    cr_assert(strstr(err.msg, "unknown configuration key 'nats.url_file'"), "%s", err.msg);
    hodei_config_free(sections, 1);
    assert_no_leaks();
}
