/* Provisioners on two hosts (issue: a second provisioner in its own pid
 * namespace marked the first one's 8 READY workers LOST within 35 s, and
 * the warm pool churned). Each provisioner here has its own state folder,
 * instance id and pid namespace: it cannot see the other's workers. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fleet.h"
#include "hodei/id.h"
#include "hodei/time.h"

static fleet fl;

static const char *const env[] = {
    "HODEI_PROVISIONER_RECONCILE_INTERVAL=300ms", /* many rounds in the test's time */
    "HODEI_SUPERVISOR_TICK_INTERVAL=200ms",
    "HODEI_SUPERVISOR_HEARTBEAT_TIMEOUT=5s",
    "HODEI_WORKER_RECONNECT_MAX=1s",
    "HODEI_PROVISIONER_DESTROY_GRACE=1s",
    NULL,
};

#define LIVE "state IN ('READY','BUSY')"

Test(two_hosts, neither_provisioner_takes_the_others_workers_for_lost_and_a_job_runs_once,
     .timeout = 600)
{
    const int count[FL_KINDS] = {[FL_EDGE] = 1,
                                 [FL_SCHEDULER] = 1,
                                 [FL_PROVISIONER] = 2,
                                 [FL_RELAY] = 1,
                                 [FL_SUPERVISOR] = 1};
    fleet_start(&fl, count, true, env);
    /* Host 0 makes four warm workers alone, then host 1 four more. */
    fleet_term(&fl, FL_PROVISIONER, 1);
    fleet_provider(&fl, 8, 600000, 4);
    cr_assert(fleet_wait_sql(&fl, 4, 60000, "SELECT count(*) FROM workers WHERE " LIVE),
              "host 0 holds 4 READY workers");
    fleet_term(&fl, FL_PROVISIONER, 0);
    fleet_launch(&fl, FL_PROVISIONER, 1);
    fleet_provider(&fl, 8, 600000, 8);
    cr_assert(fleet_wait_sql(&fl, 8, 60000, "SELECT count(*) FROM workers WHERE " LIVE),
              "host 1 adds 4 READY workers");
    fleet_launch(&fl, FL_PROVISIONER, 0);
    cr_assert_eq(fleet_sql(&fl, "SELECT count(DISTINCT provider_scope) FROM workers WHERE " LIVE),
                 2, "the workers belong to two scopes");
    cr_assert_eq(fleet_sql(&fl, "SELECT min(n) FROM (SELECT count(*) n FROM workers WHERE " LIVE
                                " GROUP BY provider_scope) s"),
                 4, "four on each host");

    /* Both reconcile every 300 ms: 10 s is ~30 rounds each. */
    hodei_sleep_ms(10000);
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM workers WHERE state = 'LOST'"), 0,
                 "no worker is LOST");
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM workers WHERE " LIVE), 8,
                 "all 8 workers still live");
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM workers"), 8,
                 "no churn: no worker made beyond the 8");
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM provider_health WHERE provider = 'process'"
                                " AND healthy AND message LIKE 'scope %%'"),
                 1, "reconcile runs per scope and reports healthy");

    /* Jobs on both hosts' workers: each runs once. */
    char file[700], script[900], ids[40][37];
    snprintf(file, sizeof file, "%s/ran.txt", fl.stack.state_dir);
    snprintf(script, sizeof script, "sleep 0.2; echo \"$HODEI_JOB_ID\" >> '%s'", file);
    fleet_client client;
    fleet_client_init(&fl, &client);
    for (int i = 0; i < 40; i++) {
        char key[HODEI_ID_BUF];
        hodei_id_new(key);
        cr_assert(fleet_queue(&fl, &client, 0, script, 1, key, ids[i], 30000), "QueueJob %d", i);
    }
    fleet_client_fini(&fl, &client);
    cr_assert(
        fleet_wait_sql(&fl, 40, 120000, "SELECT count(*) FROM jobs WHERE state = 'SUCCEEDED'"),
        "every job succeeds at its only attempt");
    for (int i = 0; i < 40; i++)
        cr_expect_eq(harness_file_count_lines(file, ids[i]), 1, "job %s ran once", ids[i]);
    cr_expect_eq(fleet_sql(&fl, "SELECT count(DISTINCT w.provider_scope) FROM jobs j"
                                " JOIN workers w ON w.id = j.worker_id"),
                 2, "jobs ran on both hosts' workers");
    cr_expect_eq(fleet_sql(&fl, "SELECT count(*) FROM workers WHERE state = 'LOST'"), 0,
                 "still no worker LOST");

    /* Idle workers retired: each destroy request goes to either provisioner;
     * every worker ends TERMINATED and its process gone on its own host. */
    fleet_provider(&fl, 8, 500, 0);
    cr_expect(
        fleet_wait_sql(&fl, 8, 120000, "SELECT count(*) FROM workers WHERE state = 'TERMINATED'"),
        "every worker is destroyed and TERMINATED (%lld are)",
        (long long)fleet_sql(&fl, "SELECT count(*) FROM workers WHERE state = 'TERMINATED'"));
    char out[256] = "";
    harness_sh(&fl.stack, out, sizeof out,
               "ls '%s'/host-0/workers '%s'/host-1/workers | grep -c '\\.pid$' || true",
               fl.stack.state_dir, fl.stack.state_dir);
    cr_expect_eq(strtol(out, NULL, 10), 0, "no worker process left on either host");
    fleet_stop(&fl);
}
