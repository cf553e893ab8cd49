/* A standard gRPC client that is not ours (grpc-js from npm, given only the
 * .proto files) queues, reads, lists and cancels jobs on the edge. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "edge_client.h"
#include "harness.h"

Test(foreign_client, grpc_js_uses_the_edge_with_only_the_protos, .timeout = 180)
{
    harness_stack st;
    edge_handle e;
    hodei_rpc_global_init();
    harness_stack_start(&st);
    edge_start(&st, &e, NULL);
    char out[4096] = "";
    int rc = harness_sh(&st, out, sizeof out,
                        "cd '%s/tests/clients' && node foreign_client.js %s '%s/proto' 2>&1",
                        st.root, e.target, st.root);
    cr_expect_eq(rc, 0, "grpc-js client failed:\n%s", out);
    cr_expect_eq(harness_sql_i64(&st, "SELECT count(*) FROM jobs WHERE name = 'from-grpc-js'"
                                      " AND state = 'CANCELLED'"),
                 1, "the job the foreign client made is recorded");
    edge_stop(&e);
    harness_stack_stop(&st);
    hodei_rpc_global_shutdown();
}
