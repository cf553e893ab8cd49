/* KeyService (CreateKey, ListKeys, RevokeKey, WhoAmI) and AuditService
 * (QueryAudit) on the edge. Keys are made by libs/store (the same code as
 * hodei-migrate's bootstrap); a revoke drops this edge's cached answer at
 * once (other edges within auth.cache_ttl). */
#ifndef HODEI_JOB_API_CLIENT_KEYS_H
#define HODEI_JOB_API_CLIENT_KEYS_H

#include "edge.h"

hodei_status keys_rpc_register(edge *e, hodei_err *err);
hodei_status audit_rpc_register(edge *e, hodei_err *err);

#endif
