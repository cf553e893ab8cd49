/* The table of what each gRPC method requires: the one place a method's
 * access is decided. The edge checks it before a handler runs (the gRPC
 * server's authorize hook) and the REST door checks the same rule for the
 * method it maps a route to. A method missing here is refused. */
#include <string.h>

#include "hodei/auth.h"

#define JOBS "/hodei.v1.JobExecutionService/"
#define WORKER "/hodei.v1.WorkerAgentService/"
#define SCHED "/hodei.v1.SchedulerService/"
#define PROV "/hodei.v1.ProviderManagementService/"
#define METRICS "/hodei.v1.MetricsService/"
#define LOGS "/hodei.v1.LogStreamService/"
#define TPL "/hodei.v1.TemplateService/"
#define SECRET "/hodei.v1.SecretService/"
#define KEYS "/hodei.v1.KeyService/"
#define AUDIT "/hodei.v1.AuditService/"

static const hodei_auth_rule auth_rules[] = {
    {JOBS "QueueJob", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_SUBMIT},
    {JOBS "GetJobStatus", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {JOBS "CancelJob", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_CANCEL},
    {JOBS "ListJobs", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {WORKER "Register", HODEI_AUTH_WORKER, 0},
    {WORKER "WorkerStream", HODEI_AUTH_WORKER, 0},
    {WORKER "UnregisterWorker", HODEI_AUTH_WORKER, 0},
    {SCHED "ScheduleJob", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_SUBMIT},
    {SCHED "GetAvailableWorkers", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {SCHED "ConfigureScheduler", HODEI_AUTH_SCOPE, HODEI_SCOPE_ADMIN},
    {PROV "RegisterProvider", HODEI_AUTH_SCOPE, HODEI_SCOPE_ADMIN},
    {PROV "ListProviders", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {PROV "GetProviderHealth", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {METRICS "StreamMetrics", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {METRICS "GetAggregatedMetrics", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {LOGS "SubscribeLogs", HODEI_AUTH_SCOPE, HODEI_SCOPE_LOGS_READ},
    {LOGS "GetLogs", HODEI_AUTH_SCOPE, HODEI_SCOPE_LOGS_READ},
    {TPL "CreateTemplate", HODEI_AUTH_SCOPE, HODEI_SCOPE_TEMPLATES_WRITE},
    {TPL "GetTemplate", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {TPL "ListTemplates", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_READ},
    {TPL "RunTemplate", HODEI_AUTH_SCOPE, HODEI_SCOPE_JOBS_SUBMIT},
    {SECRET "SetSecret", HODEI_AUTH_SCOPE, HODEI_SCOPE_SECRETS_WRITE},
    {SECRET "ListSecrets", HODEI_AUTH_SCOPE, HODEI_SCOPE_SECRETS_WRITE},
    {SECRET "DeleteSecret", HODEI_AUTH_SCOPE, HODEI_SCOPE_SECRETS_WRITE},
    {KEYS "CreateKey", HODEI_AUTH_SCOPE, HODEI_SCOPE_ADMIN},
    {KEYS "ListKeys", HODEI_AUTH_SCOPE, HODEI_SCOPE_ADMIN},
    {KEYS "RevokeKey", HODEI_AUTH_SCOPE, HODEI_SCOPE_ADMIN},
    {KEYS "WhoAmI", HODEI_AUTH_ANY_KEY, 0},
    {AUDIT "QueryAudit", HODEI_AUTH_SCOPE, HODEI_SCOPE_ADMIN},
};

const hodei_auth_rule *hodei_auth_rule_find(const char *path, size_t len)
{
    for (size_t i = 0; i < sizeof auth_rules / sizeof auth_rules[0]; i++) {
        const char *p = auth_rules[i].path;
        if (strncmp(p, path, len) == 0 && p[len] == '\0')
            return &auth_rules[i];
    }
    return NULL;
}

const hodei_auth_rule *hodei_auth_rules(size_t *n)
{
    *n = sizeof auth_rules / sizeof auth_rules[0];
    return auth_rules;
}
