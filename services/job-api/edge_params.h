/* The edge's parameters (job-api.yaml, HODEI_* environment), and the
 * configuration they fill. */
#ifndef HODEI_JOB_API_EDGE_PARAMS_H
#define HODEI_JOB_API_EDGE_PARAMS_H

#include <stddef.h>

#include "edge.h"
#include "hodei/config.h"

extern edge_config edge_conf;
extern const hodei_cfg_param edge_params[];
extern const size_t edge_params_len;
/* hodei_service.check_config: the checks between parameters (a caller's
 * share of the submit queue within the queue) and the defaults derived from
 * others (submit.queue_bytes_per_key). */
hodei_status edge_params_check(const hodei_cfg_section *sec, hodei_err *err);

#endif
