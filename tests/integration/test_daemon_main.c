/* hodei-test-daemon: the smallest real user of the daemon skeleton, driven
 * by tests/integration/test_daemon.c. One section of its own; run waits on
 * the stop fd only (a one-hour wait), so a prompt exit proves the wake-up.
 * TEST_DAEMON_NEEDS_DB=1 / TEST_DAEMON_NEEDS_NATS=1 turn on the start-up
 * checks. With test.ready_file set, run reports a dependency "widget" down
 * until that file exists (for /readyz). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hodei/daemon.h"
#include "hodei/daemon_nats.h"
#include "hodei/log.h"

typedef struct {
    char *greeting;
    int64_t workers;
    bool fail_run;
    char *ready_file;
} test_config;

typedef struct {
    int64_t ticks;
    hodei_metric *widgets_up_total, *widgets, *work_seconds, *wait_seconds;
    hodei_metric_family *turns_total;
} test_state;

static test_config cfg;

static const hodei_cfg_param test_params[] = {
    {.name = "test.greeting",
     .type = HODEI_CFG_STRING,
     .default_value = "hello",
     .max = 64,
     .offset = offsetof(test_config, greeting),
     .help = "logged at start"},
    {.name = "test.workers",
     .type = HODEI_CFG_INT,
     .default_value = "2",
     .min = 1,
     .max = 16,
     .offset = offsetof(test_config, workers),
     .help = "a bounded integer"},
    {.name = "test.fail_run",
     .type = HODEI_CFG_BOOL,
     .default_value = "false",
     .offset = offsetof(test_config, fail_run),
     .help = "run returns an error at once"},
    {.name = "test.ready_file",
     .type = HODEI_CFG_STRING,
     .default_value = "",
     .max = 512,
     .offset = offsetof(test_config, ready_file),
     .help = "dependency \"widget\" is down until this file exists"},
};

static hodei_status test_init(hodei_daemon *d, hodei_err *err)
{
    test_state *s = calloc(1, sizeof *s);
    if (!s)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    hodei_daemon_set_state(d, s);
    s->widgets_up_total =
        hodei_daemon_counter(d, "test_widgets_up_total", "times \\ the widget came up");
    s->widgets = hodei_daemon_gauge(d, "test_widgets", "widgets\nin use");
    s->work_seconds = hodei_daemon_counter_micro(d, "test_work_seconds_total", "time worked");
    s->turns_total = hodei_daemon_counter_vec(d, "test_turns_total", "turns by side", "side,kind");
    static const double bounds[] = {0.001, 0.5, 2};
    s->wait_seconds = hodei_daemon_histogram(d, "test_wait_seconds", "waits", bounds, 3);
    HLOG_INFO("init greeting=%s workers=%lld", cfg.greeting, (long long)cfg.workers);
    return HODEI_OK;
}

static hodei_status test_run(hodei_daemon *d, hodei_err *err)
{
    test_state *s = hodei_daemon_state(d);
    if (cfg.fail_run)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "told to fail by test.fail_run");
    HLOG_INFO("running instance=%s", hodei_daemon_instance(d));
    if (cfg.ready_file[0]) {
        hodei_daemon_report(d, "widget", false, "waiting for the ready file");
        while (access(cfg.ready_file, F_OK) != 0 && !hodei_daemon_wait(d, 20))
            s->ticks++;
        hodei_daemon_report(d, "widget", true, NULL);
        hodei_metric_add(s->widgets_up_total, 3);
        hodei_metric_set(s->widgets, -7);
        hodei_metric_add(s->work_seconds, 1500002);
        hodei_metric_add(hodei_metric_with(s->turns_total, "left", "a\"b\\c\nd"), 2);
        hodei_metric_add(hodei_metric_with(s->turns_total, "right", "x"), 1);
        hodei_metric_add(hodei_metric_with(s->turns_total, "left", "a\"b\\c\nd"), 1);
        hodei_metric_observe_micro(s->wait_seconds, 1000);    /* on a bound: le 0.001 */
        hodei_metric_observe_micro(s->wait_seconds, 400000);  /* le 0.5 */
        hodei_metric_observe_micro(s->wait_seconds, 9000000); /* +Inf */
        HLOG_INFO("widget up");
    }
    while (!hodei_daemon_wait(d, 3600 * 1000))
        s->ticks++;
    return HODEI_OK;
}

static void test_fini(hodei_daemon *d)
{
    free(hodei_daemon_state(d));
    hodei_daemon_set_state(d, NULL);
    HLOG_INFO("fini");
}

static bool test_env_on(const char *name)
{
    const char *v = getenv(name);
    return v && strcmp(v, "1") == 0;
}

int main(int argc, char **argv)
{
    hodei_service svc = {
        .name = "test-daemon",
        .summary = "a daemon for testing the skeleton",
        .params = test_params,
        .n_params = sizeof test_params / sizeof test_params[0],
        .config = &cfg,
        .needs_db = test_env_on("TEST_DAEMON_NEEDS_DB"),
        .nats_probe = test_env_on("TEST_DAEMON_NEEDS_NATS") ? &hodei_daemon_nats_probe : NULL,
        .init = test_init,
        .run = test_run,
        .fini = test_fini,
    };
    return hodei_daemon_main(argc, argv, &svc);
}
