/* TemplateService on the edge: stored job specs with ${param} placeholders
 * (table templates), run with values through the submit group commit. */
#ifndef HODEI_JOB_API_TEMPLATE_RPC_H
#define HODEI_JOB_API_TEMPLATE_RPC_H

#include "edge.h"

hodei_status template_rpc_register(edge *e, hodei_err *err);

#endif
