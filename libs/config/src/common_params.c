/* The parameters every daemon has (hodei_common_config). */
#include <stddef.h>

#include "hodei/config.h"

static const char *const common_log_levels[] = {"debug", "info", "warn", "error", NULL};

const hodei_cfg_param hodei_common_params[] = {
    {.name = "log.level",
     .type = HODEI_CFG_STRING,
     .default_value = "info",
     .max = 16,
     .offset = offsetof(hodei_common_config, log_level),
     .help = "lowest level logged: debug, info, warn or error",
     .choices = common_log_levels},
    {.name = "database.url",
     .type = HODEI_CFG_STRING,
     .default_value = "postgresql://hodei@127.0.0.1:5432/hodei",
     .offset = offsetof(hodei_common_config, database_url),
     .help = "PostgreSQL connection URI or conninfo (may hold a password)",
     .secret = true},
    {.name = "database.pool_size",
     .type = HODEI_CFG_INT,
     .default_value = "8",
     .min = 1,
     .max = 256,
     .offset = offsetof(hodei_common_config, database_pool_size),
     .help = "connections kept open to PostgreSQL"},
    {.name = "database.connect_timeout",
     .type = HODEI_CFG_DURATION_MS,
     .default_value = "5s",
     .min = 100,
     .max = 60000,
     .offset = offsetof(hodei_common_config, database_connect_timeout_ms),
     .help = "how long one connection attempt to PostgreSQL may take"},
    {.name = "database.prepare",
     .type = HODEI_CFG_BOOL,
     .default_value = "true",
     .offset = offsetof(hodei_common_config, database_prepare),
     .help = "prepare each statement once per connection; false behind poolers that cannot"
             " keep prepared statements"},
    {.name = "nats.url",
     .type = HODEI_CFG_STRING,
     .default_value = "nats://127.0.0.1:4222",
     .offset = offsetof(hodei_common_config, nats_url),
     .help = "NATS server URL"},
    {.name = "instance.id",
     .type = HODEI_CFG_STRING,
     .default_value = "",
     .max = 128,
     .offset = offsetof(hodei_common_config, instance_id),
     .help = "this process's name among its replicas; empty = <hostname>-<pid>"},
    {.name = "health.listen",
     .type = HODEI_CFG_STRING,
     .default_value = "",
     .max = 64,
     .offset = offsetof(hodei_common_config, health_listen),
     .help = "address:port for GET /healthz and /readyz over HTTP; empty = off"},
};

const size_t hodei_common_params_len = sizeof hodei_common_params / sizeof hodei_common_params[0];
