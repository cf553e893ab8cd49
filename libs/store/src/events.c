/* The typed event builders (hodei/events.h): one per event type, each
 * the only place its subject, aggregate and body are decided. */
#include <stdio.h>

#include "events_int.h"
#include "hodei/id.h"
#include "hodei/names.h"

#define EVENTS_MILLIS_PER_CORE 1000.0
#define EVENTS_SUBJECT_MAX 128

hodei_status hodei_event_job_queued(hodei_outbox *to, const char *job_id, int32_t priority,
                                    const char *provider, hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobQueued b = HODEI__V1__JOB_QUEUED__INIT;
    b.job_id = (char *)job_id;
    b.priority = priority;
    b.provider = (char *)provider;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_QUEUED;
    ev.job_queued = &b;
    return events_row_add(to, &ev, HODEI_SUBJ_JOB_QUEUED, HODEI_AGG_JOB, job_id,
                          HODEI_EVT_JOB_QUEUED, err);
}

hodei_status hodei_event_job_assigned(hodei_outbox *to, const char *job_id, const char *worker_id,
                                      int64_t epoch, hodei_err *err)
{
    char subject[EVENTS_SUBJECT_MAX];
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobAssigned b = HODEI__V1__JOB_ASSIGNED__INIT;
    snprintf(subject, sizeof subject, "%s%s", HODEI_SUBJ_JOB_ASSIGNED_PREFIX, worker_id);
    b.job_id = (char *)job_id;
    b.worker_id = (char *)worker_id;
    b.epoch = epoch;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_ASSIGNED;
    ev.job_assigned = &b;
    return events_row_add(to, &ev, subject, HODEI_AGG_JOB, job_id, HODEI_EVT_JOB_ASSIGNED, err);
}

hodei_status hodei_event_job_cancel_requested(hodei_outbox *to, const char *job_id,
                                              const char *worker_id, int64_t epoch,
                                              const char *reason, hodei_err *err)
{
    char subject[EVENTS_SUBJECT_MAX];
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobCancelRequested b = HODEI__V1__JOB_CANCEL_REQUESTED__INIT;
    snprintf(subject, sizeof subject, "%s%s", HODEI_SUBJ_JOB_CANCEL_PREFIX,
             worker_id[0] ? worker_id : HODEI_SUBJ_JOB_CANCEL_UNASSIGNED);
    b.job_id = (char *)job_id;
    b.worker_id = (char *)worker_id;
    b.epoch = epoch;
    b.reason = (char *)reason;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_CANCEL_REQUESTED;
    ev.job_cancel_requested = &b;
    return events_row_add(to, &ev, subject, HODEI_AGG_JOB, job_id, HODEI_EVT_JOB_CANCEL_REQUESTED,
                          err);
}

hodei_status hodei_event_job_finished(hodei_outbox *to, const char *job_id,
                                      Hodei__V1__JobState state, int32_t exit_code,
                                      const char *worker_id, int64_t epoch, hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__JobFinished b = HODEI__V1__JOB_FINISHED__INIT;
    b.job_id = (char *)job_id;
    b.state = state;
    b.exit_code = exit_code;
    b.worker_id = (char *)worker_id;
    b.epoch = epoch;
    ev.body_case = HODEI__V1__EVENT__BODY_JOB_FINISHED;
    ev.job_finished = &b;
    return events_row_add(to, &ev, HODEI_SUBJ_JOB_FINISHED, HODEI_AGG_JOB, job_id,
                          HODEI_EVT_JOB_FINISHED, err);
}

hodei_status hodei_event_worker_ready(hodei_outbox *to, const char *worker_id, const char *provider,
                                      hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__WorkerReady b = HODEI__V1__WORKER_READY__INIT;
    b.worker_id = (char *)worker_id;
    b.provider = (char *)provider;
    ev.body_case = HODEI__V1__EVENT__BODY_WORKER_READY;
    ev.worker_ready = &b;
    return events_row_add(to, &ev, HODEI_SUBJ_WORKER_READY, HODEI_AGG_WORKER, worker_id,
                          HODEI_EVT_WORKER_READY, err);
}

hodei_status hodei_event_provision_requested(hodei_outbox *to, const char *worker_id,
                                             const char *provider, const hodei_fit_resources *tmpl,
                                             hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__ProvisionRequested b = HODEI__V1__PROVISION_REQUESTED__INIT;
    Hodei__V1__ResourceRequirements r = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    if (tmpl) {
        r.cpu_cores = (double)tmpl->cpu_millis / EVENTS_MILLIS_PER_CORE;
        r.memory_bytes = tmpl->memory_bytes;
        r.storage_bytes = tmpl->storage_bytes;
        r.gpu_count = (int32_t)tmpl->gpu_count;
        r.architecture = (char *)tmpl->architecture;
        b.resources = &r;
    }
    b.request_id = (char *)worker_id;
    b.worker_id = (char *)worker_id;
    b.provider = (char *)provider;
    ev.body_case = HODEI__V1__EVENT__BODY_PROVISION_REQUESTED;
    ev.provision_requested = &b;
    return events_row_add(to, &ev, HODEI_SUBJ_PROVISION_REQUESTED, HODEI_AGG_PROVISION, worker_id,
                          HODEI_EVT_PROVISION_REQUESTED, err);
}

hodei_status hodei_event_provision_failed(hodei_outbox *to, const char *worker_id,
                                          const char *provider, const char *error, hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__ProvisionFailed b = HODEI__V1__PROVISION_FAILED__INIT;
    b.worker_id = (char *)worker_id;
    b.provider = (char *)provider;
    b.error = (char *)error;
    ev.body_case = HODEI__V1__EVENT__BODY_PROVISION_FAILED;
    ev.provision_failed = &b;
    return events_row_add(to, &ev, HODEI_SUBJ_PROVISION_FAILED, HODEI_AGG_WORKER, worker_id,
                          HODEI_EVT_PROVISION_FAILED, err);
}

hodei_status hodei_event_worker_destroy_requested(hodei_outbox *to, const char *worker_id,
                                                  const char *provider, const char *reason,
                                                  hodei_err *err)
{
    Hodei__V1__Event ev = HODEI__V1__EVENT__INIT;
    Hodei__V1__WorkerDestroyRequested b = HODEI__V1__WORKER_DESTROY_REQUESTED__INIT;
    b.worker_id = (char *)worker_id;
    b.provider = (char *)provider;
    b.reason = (char *)reason;
    ev.body_case = HODEI__V1__EVENT__BODY_WORKER_DESTROY_REQUESTED;
    ev.worker_destroy_requested = &b;
    return events_row_add(to, &ev, HODEI_SUBJ_WORKER_DESTROY, HODEI_AGG_WORKER, worker_id,
                          HODEI_EVT_WORKER_DESTROY_REQUESTED, err);
}
