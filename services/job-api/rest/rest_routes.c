/* The REST resources: each one a client RPC of services.proto, with the
 * request fields named in its path. Order matters only for reading. */
#include <string.h>

#include "hodei/v1/audit.pb-c.h"
#include "hodei/v1/job.pb-c.h"
#include "hodei/v1/keys.pb-c.h"
#include "hodei/v1/logs.pb-c.h"
#include "hodei/v1/metrics.pb-c.h"
#include "hodei/v1/provider.pb-c.h"
#include "hodei/v1/scheduler.pb-c.h"
#include "hodei/v1/secret.pb-c.h"
#include "hodei/v1/template.pb-c.h"
#include "rest_int.h"

#define JOBS "/hodei.v1.JobExecutionService/"
#define LOGS "/hodei.v1.LogStreamService/"
#define TPL "/hodei.v1.TemplateService/"
#define SEC "/hodei.v1.SecretService/"
#define PROV "/hodei.v1.ProviderManagementService/"
#define SCHED "/hodei.v1.SchedulerService/"
#define MET "/hodei.v1.MetricsService/"
#define KEYS "/hodei.v1.KeyService/"
#define AUDIT "/hodei.v1.AuditService/"
#define D(x) &hodei__v1__##x##__descriptor

static const rest_route routes[] = {
    {"POST", "/v1/jobs", JOBS "QueueJob", D(queue_job_request), D(queue_job_response), REST_UNARY,
     true, NULL},
    {"GET", "/v1/jobs", JOBS "ListJobs", D(list_jobs_request), D(list_jobs_response), REST_UNARY,
     false, NULL},
    {"GET", "/v1/jobs/{job_id}", JOBS "GetJobStatus", D(get_job_status_request),
     D(get_job_status_response), REST_UNARY, false, NULL},
    {"POST", "/v1/jobs/{job_id}:cancel", JOBS "CancelJob", D(cancel_job_request),
     D(cancel_job_response), REST_UNARY, true, NULL},
    {"POST", "/v1/jobs/{job_id}:schedule", SCHED "ScheduleJob", D(schedule_job_request),
     D(schedule_job_response), REST_UNARY, true, NULL},
    {"GET", "/v1/jobs/{job_id}/logs", LOGS "GetLogs", D(get_logs_request), D(get_logs_response),
     REST_UNARY, false, NULL},
    {"GET", "/v1/jobs/{job_id}/logs:follow", LOGS "SubscribeLogs", D(subscribe_logs_request),
     D(log_chunk), REST_SSE, false, "from_sequence"},
    {"GET", "/v1/templates", TPL "ListTemplates", D(list_templates_request),
     D(list_templates_response), REST_UNARY, false, NULL},
    {"POST", "/v1/templates", TPL "CreateTemplate", D(create_template_request),
     D(create_template_response), REST_UNARY, true, NULL},
    {"GET", "/v1/templates/{name}", TPL "GetTemplate", D(get_template_request),
     D(get_template_response), REST_UNARY, false, NULL},
    {"POST", "/v1/templates/{name}:run", TPL "RunTemplate", D(run_template_request),
     D(run_template_response), REST_UNARY, true, NULL},
    {"GET", "/v1/secrets", SEC "ListSecrets", D(list_secrets_request), D(list_secrets_response),
     REST_UNARY, false, NULL},
    {"PUT", "/v1/secrets/{name}", SEC "SetSecret", D(set_secret_request), D(set_secret_response),
     REST_UNARY, true, NULL},
    {"DELETE", "/v1/secrets/{name}", SEC "DeleteSecret", D(delete_secret_request),
     D(delete_secret_response), REST_UNARY, false, NULL},
    {"GET", "/v1/workers", SCHED "GetAvailableWorkers", D(get_available_workers_request),
     D(get_available_workers_response), REST_UNARY, false, NULL},
    {"PUT", "/v1/scheduler", SCHED "ConfigureScheduler", D(configure_scheduler_request),
     D(configure_scheduler_response), REST_UNARY, true, NULL},
    {"GET", "/v1/providers", PROV "ListProviders", D(list_providers_request),
     D(list_providers_response), REST_UNARY, false, NULL},
    {"POST", "/v1/providers", PROV "RegisterProvider", D(register_provider_request),
     D(register_provider_response), REST_UNARY, true, NULL},
    {"GET", "/v1/providers/{name}/health", PROV "GetProviderHealth", D(get_provider_health_request),
     D(get_provider_health_response), REST_UNARY, false, NULL},
    {"GET", "/v1/metrics", MET "GetAggregatedMetrics", D(get_aggregated_metrics_request),
     D(get_aggregated_metrics_response), REST_UNARY, false, NULL},
    {"GET", "/v1/metrics:stream", MET "StreamMetrics", D(stream_metrics_request),
     D(metrics_snapshot), REST_SSE, false, NULL},
    {"GET", "/v1/keys", KEYS "ListKeys", D(list_keys_request), D(list_keys_response), REST_UNARY,
     false, NULL},
    {"POST", "/v1/keys", KEYS "CreateKey", D(create_key_request), D(create_key_response),
     REST_UNARY, true, NULL},
    {"POST", "/v1/keys/{id}:revoke", KEYS "RevokeKey", D(revoke_key_request),
     D(revoke_key_response), REST_UNARY, true, NULL},
    {"GET", "/v1/whoami", KEYS "WhoAmI", D(who_am_irequest), D(who_am_iresponse), REST_UNARY, false,
     NULL},
    {"GET", "/v1/audit", AUDIT "QueryAudit", D(query_audit_request), D(query_audit_response),
     REST_UNARY, false, NULL},
};

const rest_route *rest_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

/* Matches path against pattern; a {name} takes one segment's text, up to
 * the next '/' or ':' (job ids and names hold neither). */
static bool route_match(const char *pattern, const char *path, rest_param *params, size_t *n)
{
    *n = 0;
    const char *p = pattern, *s = path;
    while (*p) {
        if (*p != '{') {
            if (*p++ != *s++)
                return false;
            continue;
        }
        const char *close = strchr(p, '}');
        size_t len = strcspn(s, "/:");
        if (!close || len == 0 || len >= REST_PARAM_LEN_MAX || *n >= REST_PARAMS_MAX)
            return false;
        size_t name_len = (size_t)(close - p - 1);
        if (name_len >= sizeof params[*n].name)
            return false;
        memcpy(params[*n].name, p + 1, name_len);
        params[*n].name[name_len] = '\0';
        memcpy(params[*n].value, s, len);
        params[*n].value[len] = '\0';
        (*n)++;
        p = close + 1;
        s += len;
    }
    return *s == '\0';
}

const rest_route *rest_route_find(const char *method, const char *path, rest_param *params,
                                  size_t *n_params, bool *path_known)
{
    *path_known = false;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_match(routes[i].pattern, path, params, n_params))
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return &routes[i];
        *path_known = true;
    }
    return NULL;
}

/* Query parameters in the singular, one value per occurrence, for a
 * repeated or map field: ?state=A&state=B, ?label=team=ml. */
static const struct {
    const char *rpc, *alias, *field;
} aliases[] = {
    {JOBS "ListJobs", "state", "states"},
    {JOBS "ListJobs", "label", "labels"},
};

const char *rest_query_alias(const rest_route *r, const char *name)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(r->rpc, aliases[i].rpc) == 0 && strcmp(name, aliases[i].alias) == 0)
            return aliases[i].field;
    return name;
}

const char *rest_query_alias_of(const rest_route *r, const char *field)
{
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(r->rpc, aliases[i].rpc) == 0 && strcmp(field, aliases[i].field) == 0)
            return aliases[i].alias;
    return NULL;
}
