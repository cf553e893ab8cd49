/* WorkerAgentService's method table, and the start and stop of the worker
 * side (worker_rpc.h). The only file that knows every part of worker/. */
#include "worker_rpc.h"

#include "worker_acks.h"
#include "worker_hub.h"
#include "worker_register.h"
#include "worker_results.h"
#include "worker_run.h"
#include "worker_stream.h"

hodei_status worker_rpc_start(edge *e, log_pub *pub, hodei_err *err)
{
    hodei_status st = worker_acks_create(e, &e->acks, err);
    if (st == HODEI_OK)
        st = worker_results_create(e, &e->results, err);
    if (st == HODEI_OK)
        st = worker_hub_create(e, pub, worker_run_resend, &e->workers, err);
    return st;
}

void worker_rpc_stop(edge *e)
{
    worker_hub_stop(e->workers);        /* no re-send runs from here on */
    worker_results_destroy(e->results); /* records the results still pending */
    e->results = NULL;
    worker_acks_destroy(e->acks); /* writes the acks still pending */
    e->acks = NULL;
    worker_hub_destroy(e->workers);
    e->workers = NULL;
}

hodei_status worker_rpc_register(edge *e, hodei_err *err)
{
    hodei_rpc_method methods[3];
    worker_register_method(e, &methods[0]);
    worker_unregister_method(e, &methods[1]);
    worker_stream_method(e, &methods[2]);
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}
