/* Limits that more than one component enforces, one constant each, so that
 * what one door accepts the next one accepts too (the edge, the scheduler,
 * the worker agent). Each has a test at the boundary and one past it in
 * every component that checks it. Limits that only one component checks
 * live next to it (hodei/job_spec.h, hodei/exec.h, ...). */
#ifndef HODEI_LIMITS_H
#define HODEI_LIMITS_H

/* Bytes of one secret value: SetSecret (edge), RunJob's secrets JSON and
 * the redactor (agent). */
#define HODEI_SECRET_VALUE_MAX 8192
/* Bytes of one secret name: SetSecret, JobSpec.secret_refs (edge). The
 * agent accepts longer names. */
#define HODEI_SECRET_NAME_MAX 128
/* Entries of a job's labels and of its constraints (edge), of a worker's
 * labels (agent, edge), and what the scheduler parses of either. */
#define HODEI_LABELS_MAX 64

#endif
