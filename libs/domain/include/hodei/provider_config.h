/* What a provider row's config (a JSON object of strings) may hold, per
 * provider type, checked at the door (RegisterProvider) and again by the
 * driver that reads it. Types without rules here take any key (their
 * drivers check them when they start). Pure: no I/O. */
#ifndef HODEI_PROVIDER_CONFIG_H
#define HODEI_PROVIDER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "hodei/status.h"

/* docker: the keys its driver reads (services/provisioner/docker_int.h). */
#define HODEI_DOCKER_CONFIG_KEYS                                                                   \
    "host, tls_ca, tls_cert, tls_key, worker_image, network, agent_bundle, agent_volume, pull,"    \
    " pull_timeout, pids_limit, agent_memory, exited_ttl, labels, warm_image"
#define HODEI_DOCKER_LABELS_MAX 16
#define HODEI_DOCKER_PIDS_MAX 4194304

/* One entry: known key, valid value; HODEI_ERR_INVALID naming
 * provider.config["key"] (a value is never echoed: it may be secret). */
hodei_status hodei_provider_config_check(const char *type, const char *key, const char *value,
                                         hodei_err *err);

/* Bytes as configs write them: "<n>", "<n>K|M|G|T" (powers of 1000) or
 * "<n>Ki|Mi|Gi|Ti" (of 1024); at most 2^50. */
bool hodei_bytes_parse(const char *s, int64_t *out);

#endif
