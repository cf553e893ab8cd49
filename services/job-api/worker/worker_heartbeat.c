/* Heartbeat and Keepalive (worker_heartbeat.h). */
#include "worker_heartbeat.h"

void worker_heartbeat_on(worker_session *s, const Hodei__V1__Heartbeat *hb)
{
    pthread_mutex_lock(&s->mu);
    hodei__v1__resource_usage__init(&s->usage);
    if (hb->usage) {
        s->usage.cpu_cores_used = hb->usage->cpu_cores_used;
        s->usage.memory_bytes_used = hb->usage->memory_bytes_used;
        s->usage.memory_bytes_total = hb->usage->memory_bytes_total;
        s->usage.running_jobs = hb->usage->running_jobs;
    }
    s->beat_pending = true;
    pthread_mutex_unlock(&s->mu);
}

/* The agent takes the answer as proof that the edge read everything
 * before it. */
void worker_keepalive_on(worker_session *s, const Hodei__V1__Keepalive *k)
{
    pthread_mutex_lock(&s->mu);
    bool echo = k && k->nonce == s->keepalive_nonce;
    pthread_mutex_unlock(&s->mu);
    if (!k || echo)
        return;
    Hodei__V1__Keepalive answer = HODEI__V1__KEEPALIVE__INIT;
    Hodei__V1__ServerMessage m = HODEI__V1__SERVER_MESSAGE__INIT;
    answer.nonce = k->nonce;
    m.body_case = HODEI__V1__SERVER_MESSAGE__BODY_KEEPALIVE;
    m.keepalive = &answer;
    worker_session_send(s, &m);
}
