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

#endif
