/* Scheduling strategies: their names as stored (scheduler_settings.strategy)
 * and configured (scheduler.strategy), shared by the scheduler and the edge's
 * ConfigureScheduler. Pure functions, no I/O. */
#ifndef HODEI_SCHED_STRATEGY_H
#define HODEI_SCHED_STRATEGY_H

#include <stdbool.h>

#include "hodei/v1/scheduler.pb-c.h"

/* NULL-terminated: "round-robin", "least-loaded", "priority",
 * "resource-aware", "cost-optimized" (usable as a config choices list). */
extern const char *const hodei_sched_strategy_names[];

/* The stored name, or NULL for UNSPECIFIED and unknown values. */
const char *hodei_sched_strategy_name(Hodei__V1__SchedulingStrategy s);

/* Accepts the stored names and the proto names ("COST_OPTIMIZED",
 * "SCHEDULING_STRATEGY_COST_OPTIMIZED"), any letter case, '-' or '_'.
 * false (and *out untouched) for anything else. */
bool hodei_sched_strategy_parse(const char *s, Hodei__V1__SchedulingStrategy *out);

/* least-loaded: a worker's recent assignments decay with this e-folding
 * time (assign_load * exp(-age / tau) + 1 on each assignment). */
#define HODEI_SCHED_LOAD_TAU_S 60.0

#endif
