/* Limits that more than one component enforces, one constant each, so that
 * what one door accepts the next one accepts too (the edge, the scheduler,
 * the worker agent). Each has a test at the boundary and one past it in
 * every component that checks it. Limits that only one component checks
 * live next to it (hodei/job_spec.h, hodei/exec.h, ...). */
#ifndef HODEI_LIMITS_H
#define HODEI_LIMITS_H

#include <stdint.h>

/* Bytes of one secret value: SetSecret (edge), RunJob's secrets JSON and
 * the redactor (agent). */
#define HODEI_SECRET_VALUE_MAX 8192
/* Bytes of one secret name: SetSecret, JobSpec.secret_refs (edge). The
 * agent accepts longer names. */
#define HODEI_SECRET_NAME_MAX 128
/* Entries of a job's labels and of its constraints (edge), of a worker's
 * labels (agent, edge), and what the scheduler parses of either. */
#define HODEI_LABELS_MAX 64

/* A provider's name, [a-z0-9][a-z0-9-]*: providers.name (database CHECK),
 * RegisterProvider and JobSpec.provider (edge), the scheduler's
 * scheduler.default_image_provider, the CLI's --provider and NAME. */
#define HODEI_PROVIDER_NAME_MAX 63
/* A provider's max_workers, warm_pool_min and warm_pool_max: RegisterProvider
 * (edge) and the providers table's CHECK (migration 0026), so what the
 * supervisor's warm pool and the scheduler read from any row, one written
 * by hand included, is within it. max_workers 0 = no limit. */
#define HODEI_PROVIDER_WORKERS_MAX 10000
/* A provider's idle_ttl_ms (7 days; 0 = never drained): edge and CHECK. */
#define HODEI_PROVIDER_IDLE_TTL_MS_MAX INT64_C(604800000)
/* A provider's cost_per_hour (the cost-optimized strategy's input): edge
 * and CHECK. */
#define HODEI_PROVIDER_COST_MAX 1000000
/* Resources, asked (JobSpec.resources: edge) and offered (a provider's
 * worker_capacity: edge and CHECK; a worker's Hello capacity: edge; the
 * agent's worker.cpu_millis and worker.memory_bytes), so that any job a
 * door accepts can fit a worker another door accepts. */
#define HODEI_CPU_CORES_MAX 1024
#define HODEI_CPU_MILLIS_MAX (HODEI_CPU_CORES_MAX * 1000)
#define HODEI_RESOURCE_BYTES_MAX (INT64_C(1) << 50) /* memory, storage: 1 PiB */
#define HODEI_GPU_COUNT_MAX 64

#endif
