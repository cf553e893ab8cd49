/* The edge's start-up, run and shutdown (edge_service.h): what starts in
 * which order, and the gRPC server with every service's table. */
#include "edge_service.h"

#include <malloc.h>
#include <stddef.h>
#include <stdlib.h>

#include <openssl/crypto.h>

#include "client/client_keys.h"
#include "client/client_providers.h"
#include "client/client_scheduler.h"
#include "client/client_secrets.h"
#include "client/client_submit.h"
#include "client/client_templates.h"
#include "edge.h"
#include "edge_auth.h"
#include "edge_params.h"
#include "edge_workers.h"
#include "hodei/daemon.h"
#include "hodei/log.h"
#include "metrics/metrics.h"
#include "rest/rest.h"
#include "worker/worker_rpc.h"

static edge the_edge;
static rest_server *the_rest; /* http.listen: REST/JSON API and dashboard */

static hodei_status edge_start_server(edge *e, hodei_err *err)
{
    hodei_rpc_server_opts o = {
        .listen_addr = edge_conf.grpc_listen,
        .threads = (int)edge_conf.grpc_threads,
        .tls_cert_file = edge_conf.tls_cert[0] ? edge_conf.tls_cert : NULL,
        .tls_key_file = edge_conf.tls_key[0] ? edge_conf.tls_key : NULL,
        .tls_client_ca_file = edge_conf.tls_client_ca[0] ? edge_conf.tls_client_ca : NULL,
        .authorize = edge_auth_authorize,
        .authorize_ctx = e->auth,
        .principal_free = free,
        .observe = edge_metrics_rpc_observe,
        .observe_ctx = &e->m,
        .reply_buffer_max = (size_t)edge_conf.reply_buffer_max,
        .reply_buffer_name = "replies.buffer_max",
    };
    if ((o.tls_cert_file == NULL) != (o.tls_key_file == NULL))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "grpc.tls_cert and grpc.tls_key: set both or neither");
    if (o.tls_client_ca_file && !o.tls_cert_file)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "grpc.tls_client_ca: needs grpc.tls_cert and grpc.tls_key");
    if (edge_conf.auth_worker_cert_check && !o.tls_client_ca_file)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "auth.worker_cert_check: needs mutual TLS (grpc.tls_client_ca)");
    hodei_status st = hodei_rpc_server_create(&o, &e->server, err);
    if (st == HODEI_OK)
        st = jobs_rpc_register(e, err);
    if (st == HODEI_OK)
        st = worker_rpc_register(e, err);
    if (st == HODEI_OK)
        st = logs_rpc_register(e, err);
    if (st == HODEI_OK)
        st = provider_rpc_register(e, err);
    if (st == HODEI_OK)
        st = scheduler_rpc_register(e, err);
    if (st == HODEI_OK)
        st = secret_rpc_register(e, err);
    if (st == HODEI_OK)
        st = template_rpc_register(e, err);
    if (st == HODEI_OK)
        st = keys_rpc_register(e, err);
    if (st == HODEI_OK)
        st = audit_rpc_register(e, err);
    if (st == HODEI_OK)
        st = metrics_rpc_register(e, err);
    if (st == HODEI_OK)
        st = edge_request_limits_apply(e, err);
    if (st == HODEI_OK)
        st = hodei_rpc_server_start(e->server, err);
    if (st == HODEI_OK)
        HLOG_INFO("listening on %s (port %d)%s", edge_conf.grpc_listen,
                  hodei_rpc_server_port(e->server), o.tls_cert_file ? " with TLS" : "");
    return st;
}

hodei_status edge_init(hodei_daemon *d, hodei_err *err)
{
    edge *e = &the_edge;
    e->d = d;
    e->cfg = &edge_conf;
    pthread_mutex_init(&e->key_streams.mu, NULL);
    edge_metrics_register(&e->m, d);
    e->common = hodei_daemon_common(d);
    hodei_db_statement_cache(e->common->database_prepare);
    hodei_rpc_global_init();
    hodei_status st = HODEI_OK;
    if ((st = secrets_keyring_init(&e->keys, edge_conf.secrets_master_key,
                                   edge_conf.secrets_old_keys, err)) != HODEI_OK)
        return st;
    if (e->keys.on)
        HLOG_INFO("secrets: master key %s, %zu older key(s) to re-seal from", e->keys.current.id,
                  e->keys.n_old);
    st = hodei_db_create(e->common->database_url, (int)e->common->database_pool_size,
                         e->common->database_connect_timeout_ms, &e->db, err);
    if (st != HODEI_OK)
        return st;
    submitter_opts so = {
        .db_url = e->common->database_url,
        .connect_timeout_ms = e->common->database_connect_timeout_ms,
        .batch_max = (size_t)edge_conf.submit_batch_max,
        .queue_max = (size_t)edge_conf.submit_queue_max,
        .queue_bytes_max = (size_t)edge_conf.submit_queue_bytes_max,
        .batch_bytes_max = (size_t)edge_conf.submit_batch_bytes_max,
        .queue_bytes_per_key = (size_t)edge_conf.submit_queue_bytes_per_key,
        .writers = (int)edge_conf.submit_writers,
        .default_timeout_ms = edge_conf.default_timeout_ms,
        .queued = hodei_daemon_counter(d, "hodei_jobs_queued_total",
                                       "Jobs QueueJob committed (not idempotent repeats)."),
        .refused = hodei_daemon_counter(d, "hodei_jobs_refused_total",
                                        "QueueJobs refused as the submit queue, or the"
                                        " caller's share of it, was full."),
        .waiting_jobs = hodei_daemon_gauge(d, "hodei_edge_submit_waiting_jobs",
                                           "Jobs waiting for a submit writer."),
        .waiting_bytes = hodei_daemon_gauge(d, "hodei_edge_submit_waiting_bytes",
                                            "Bytes of the jobs waiting for a submit writer "
                                            "(at most submit.queue_bytes_max)."),
        .waiting_keys = hodei_daemon_gauge(d, "hodei_edge_submit_waiting_keys",
                                           "Callers (API keys, certificate subjects, anonymous)"
                                           " with jobs waiting for a submit writer; each holds"
                                           " at most submit.queue_bytes_per_key."),
        .dispatch = edge_conf.submit_assign ? &edge_workers_dispatch : NULL,
    };
    edge_workers_dispatch_ctx(e);
    if ((st = submitter_create(&so, &e->submit, err)) != HODEI_OK)
        return st;
    edge_auth_opts ao = {
        .db = e->db,
        .db_wait_ms = edge_conf.db_wait_ms,
        .cache_ttl_ms = edge_conf.auth_cache_ttl_ms,
        .worker_cert_check = edge_conf.auth_worker_cert_check,
    };
    if ((st = edge_auth_create(&ao, &e->auth, err)) != HODEI_OK)
        return st;
    if ((st = secret_rekey_start(e, &e->rekey, err)) != HODEI_OK)
        return st;
    if ((st = edge_workers_start(e, hodei_daemon_instance(d), err)) != HODEI_OK)
        return st;
    if ((st = metrics_hub_create(e, err)) != HODEI_OK)
        return st;
    if ((st = edge_start_server(e, err)) != HODEI_OK)
        return st;
    if (edge_conf.http_listen[0])
        st = rest_start(e, edge_conf.http_listen, &the_rest, err);
    return st;
}

/* glibc keeps what a burst freed in its per-thread arenas: after four runs
 * of the hostile bench (16 unread 30 MB streams each) the edge's heap held
 * 140 MB for 12 MB in use, its idle RSS 153 MB; malloc_trim(0) took it to
 * 42 MB. So the edge gives free memory back every EDGE_TRIM_PERIOD_MS once
 * more than EDGE_TRIM_FREE_MIN of it is free (docs/architecture.md). */
#define EDGE_TRIM_PERIOD_MS 10000
#define EDGE_TRIM_FREE_MIN ((size_t)32 << 20)

static void edge_trim(void)
{
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks < EDGE_TRIM_FREE_MIN)
        return;
    malloc_trim(0);
    HLOG_DEBUG("heap: %zu bytes free of %zu given back", mi.fordblks, mi.arena);
}

hodei_status edge_run(hodei_daemon *d, hodei_err *err)
{
    while (!hodei_daemon_wait(d, EDGE_TRIM_PERIOD_MS))
        edge_trim();
    return HODEI_OK;
}

void edge_fini(hodei_daemon *d)
{
    edge *e = &the_edge;
    /* Stop taking calls first; calls already queued are committed and
     * answered by the writers before they exit. */
    rest_stop(the_rest);
    edge_workers_quiesce(e);
    hodei_rpc_server_destroy(e->server);
    secret_rekey_stop(e->rekey);
    metrics_hub_destroy(e);
    /* The writers hand jobs to the worker streams: they go first. */
    submitter_destroy(e->submit);
    edge_workers_stop(e);
    edge_auth_destroy(e->auth);
    hodei_db_destroy(e->db);
    secrets_keyring_wipe(&e->keys);
    hodei_rpc_global_shutdown();
}
