/* ProviderManagementService on the edge: RegisterProvider (validated
 * upsert of a providers row), ListProviders, GetProviderHealth (the row,
 * its live worker count and the provisioner's last reconcile result from
 * provider_health). */
#ifndef HODEI_JOB_API_PROVIDER_RPC_H
#define HODEI_JOB_API_PROVIDER_RPC_H

#include "edge.h"
#include "hodei/limits.h"
#include "hodei/v1/provider.pb-c.h"

/* Bounds a provider must respect (each named in RegisterProvider's errors). */
#define PROVIDER_NAME_MAX HODEI_PROVIDER_NAME_MAX
#define PROVIDER_CONFIG_MAX 64 /* entries */
#define PROVIDER_CONFIG_KEY_MAX 128
#define PROVIDER_CONFIG_VALUE_MAX 4096
/* Those the database, the scheduler or the worker agent check too: hodei/limits.h. */
#define PROVIDER_WORKERS_MAX HODEI_PROVIDER_WORKERS_MAX /* max_workers, warm pool bounds */
#define PROVIDER_IDLE_TTL_MS_MAX HODEI_PROVIDER_IDLE_TTL_MS_MAX
#define PROVIDER_COST_MAX ((double)HODEI_PROVIDER_COST_MAX)
#define PROVIDER_CPU_CORES_MAX ((double)HODEI_CPU_CORES_MAX)
#define PROVIDER_BYTES_MAX HODEI_RESOURCE_BYTES_MAX /* memory, storage */
#define PROVIDER_GPU_MAX HODEI_GPU_COUNT_MAX
#define PROVIDER_LIST_MAX 256 /* providers ListProviders returns */

/* Checks every field; the first error names it ("provider.warm_pool_max: ..."). */
hodei_status provider_validate(const Hodei__V1__Provider *p, hodei_err *err);

/* Registers the ProviderManagementService methods. */
hodei_status provider_rpc_register(edge *e, hodei_err *err);

#endif
