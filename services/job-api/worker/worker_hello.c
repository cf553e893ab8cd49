/* Hello (worker_hello.h): the stream's authentication, the jobs the worker
 * says it runs, and the hub taking the stream. */
#include "worker_hello.h"

#include <string.h>
#include <strings.h>

#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "worker_register.h"

/* A worker's RUNNING jobs, as read here: SELECT id::text, epoch. */
enum { HELLO_LIVE_ID, HELLO_LIVE_EPOCH };

static hodei_status hello_acquire(worker_session *s, PGconn **conn, hodei_err *err)
{
    return edge_db_acquire(worker_hub_edge(s->hub), conn, err);
}

static void hello_release(worker_session *s, PGconn *conn, hodei_status st)
{
    edge_db_release(worker_hub_edge(s->hub), conn, st);
}

static bool hello_names(const Hodei__V1__Hello *hello, const char *job_id)
{
    for (size_t i = 0; i < hello->n_running_job_ids; i++) {
        if (strcasecmp(hello->running_job_ids[i], job_id) == 0)
            return true;
    }
    return false;
}

/* The worker's RUNNING jobs: those the Hello names become this stream's,
 * the others suspects (worker_run.c checks them when they are due). */
static hodei_status hello_jobs(worker_session *s, const Hodei__V1__Hello *hello, hodei_err *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_status st = hello_acquire(s, &conn, err);
    if (st != HODEI_OK)
        return st;
    const char *params[1] = {hello->worker_id};
    st = hodei_db_exec(conn,
                       "SELECT id::text, epoch FROM jobs"
                       " WHERE worker_id = $1::uuid AND state = 'RUNNING'",
                       1, params, &res, err);
    hello_release(s, conn, st);
    if (st != HODEI_OK)
        return st;
    edge *e = worker_hub_edge(s->hub);
    for (int i = 0; i < PQntuples(res); i++) {
        const char *job = hodei_db_get_str(res, i, HELLO_LIVE_ID);
        int64_t epoch = hodei_db_get_i64(res, i, HELLO_LIVE_EPOCH);
        if (hello_names(hello, job)) {
            worker_session_own(s, job, epoch);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        if (s->n_suspects < WORKER_SUSPECTS_MAX) {
            worker_job_ref *r = &s->suspects[s->n_suspects++];
            hodei_strlcpy(r->job_id, job, sizeof r->job_id);
            r->epoch = epoch;
            s->suspects_due_ms = hodei_mono_ms() + e->cfg->worker_resend_ms;
        }
        pthread_mutex_unlock(&s->mu);
    }
    PQclear(res);
    return HODEI_OK;
}

hodei_status worker_hello_on(worker_session *s, const Hodei__V1__Hello *hello, hodei_err *err)
{
    edge *e = worker_hub_edge(s->hub);
    hodei_status st = worker_cert_check(e, s->call, hello->worker_id, err);
    if (st != HODEI_OK)
        return st;
    if ((st = worker_session_auth(e, hello->worker_id, hello->session_token, err)) != HODEI_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    hodei_strlcpy(s->worker_id, hello->worker_id, sizeof s->worker_id);
    pthread_mutex_unlock(&s->mu);
    if ((st = hello_jobs(s, hello, err)) != HODEI_OK)
        return st;
    if ((st = worker_hub_attach(s, err)) != HODEI_OK)
        return st;
    HLOG_INFO("worker %s connected (%zu running jobs reported)", hello->worker_id,
              hello->n_running_job_ids);
    return HODEI_OK;
}
