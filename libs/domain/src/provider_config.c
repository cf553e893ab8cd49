/* Provider config entries per type (see provider_config.h). */
#include "hodei/provider_config.h"

#include <string.h>

#include "hodei/image_ref.h"
#include "hodei/limits.h"
#include "hodei/util.h"

#define PC_BYTES_MAX HODEI_RESOURCE_BYTES_MAX
#define PC_NAME_MAX 255

bool hodei_bytes_parse(const char *s, int64_t *out)
{
    static const char *const units[] = {"", "K", "M", "G", "T"};
    static const char *const iunits[] = {"", "Ki", "Mi", "Gi", "Ti"};
    char num[32];
    size_t n = strspn(s, "0123456789");
    int64_t v;
    if (n == 0 || n >= sizeof num)
        return false;
    memcpy(num, s, n);
    num[n] = '\0';
    if (!hodei_parse_i64(num, 0, PC_BYTES_MAX, &v))
        return false;
    int64_t dec = 1, bin = 1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++, dec *= 1000, bin *= 1024) {
        int64_t mult = strcmp(s + n, units[i]) == 0 ? dec : strcmp(s + n, iunits[i]) == 0 ? bin : 0;
        if (mult)
            return v <= PC_BYTES_MAX / mult && (*out = v * mult) >= 0;
    }
    return false;
}

/* k=v,k2=v2: at most HODEI_DOCKER_LABELS_MAX, keys not empty, not hodei.* */
static bool pc_labels_ok(const char *val)
{
    int n = 0;
    for (const char *e = val; *e;) {
        size_t len = strcspn(e, ",");
        const char *eq = memchr(e, '=', len);
        if (!eq || eq == e || strncmp(e, "hodei.", 6) == 0 || ++n > HODEI_DOCKER_LABELS_MAX)
            return false;
        e += len;
        if (*e == ',')
            e++;
    }
    return true;
}

static bool pc_host_ok(const char *v)
{
    return (strncmp(v, "unix:///", 8) == 0 && v[8]) || (strncmp(v, "tcp://", 6) == 0 && v[6]);
}

/* Why a docker entry's value is wrong, or NULL when it is right. */
static const char *pc_docker(const char *key, const char *v, bool *known)
{
    int64_t n;
    *known = true;
    if (strcmp(key, "host") == 0)
        return pc_host_ok(v) ? NULL : "must be unix:///path or tcp://host:port";
    if (strcmp(key, "tls_ca") == 0 || strcmp(key, "tls_cert") == 0 || strcmp(key, "tls_key") == 0)
        return v[0] == '/' || !v[0] ? NULL : "must be an absolute path (or empty)";
    if (strcmp(key, "worker_image") == 0 || strcmp(key, "warm_image") == 0)
        return hodei_image_ref_parse(v, NULL, NULL) ? NULL : "must be an image reference";
    if (strcmp(key, "network") == 0 || strcmp(key, "agent_volume") == 0)
        return v[0] && strlen(v) <= PC_NAME_MAX ? NULL : "must be a name of 1 to 255 bytes";
    if (strcmp(key, "agent_bundle") == 0)
        return v[0] == '/' ? NULL : "must be an absolute path";
    if (strcmp(key, "pull") == 0)
        return strcmp(v, "missing") == 0 || strcmp(v, "always") == 0 || strcmp(v, "never") == 0
                   ? NULL
                   : "must be missing, always or never";
    if (strcmp(key, "pull_timeout") == 0 || strcmp(key, "exited_ttl") == 0)
        return hodei_parse_duration_ms(v, &n) && n >= 0 ? NULL
                                                        : "must be a duration such as 30s or 5m";
    if (strcmp(key, "pids_limit") == 0)
        return hodei_parse_i64(v, 0, HODEI_DOCKER_PIDS_MAX, &n) ? NULL
                                                                : "must be 0 (no limit) to 4194304";
    if (strcmp(key, "agent_memory") == 0)
        return hodei_bytes_parse(v, &n) ? NULL : "must be bytes, e.g. 33554432, 32Mi or 1G";
    if (strcmp(key, "labels") == 0)
        return pc_labels_ok(v) ? NULL
                               : "must be k=v,k2=v2 (at most 16, keys not empty, not hodei.*)";
    *known = false;
    return NULL;
}

#define PC_KEY_SHOWN_MAX 64

/* The key as an error message may show it (to a person): at most
 * PC_KEY_SHOWN_MAX bytes, control bytes, quotes and backslashes as '?'. */
static void pc_key_shown(const char *key, char out[PC_KEY_SHOWN_MAX + 1])
{
    size_t n = 0;
    for (; key && key[n] && n < PC_KEY_SHOWN_MAX; n++) {
        unsigned char c = (unsigned char)key[n];
        out[n] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? '?' : (char)c;
    }
    out[n] = '\0';
}

hodei_status hodei_provider_config_check(const char *type, const char *key, const char *value,
                                         hodei_err *err)
{
    bool known = true;
    const char *why = NULL;
    char shown[PC_KEY_SHOWN_MAX + 1];
    if (type && strcmp(type, "docker") == 0)
        why = pc_docker(key, value ? value : "", &known);
    if (!known || why)
        pc_key_shown(key, shown);
    if (!known)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "provider.config[\"%s\"]: unknown key for type %s (%s)", shown, type,
                             HODEI_DOCKER_CONFIG_KEYS);
    if (why)
        return hodei_err_set(err, HODEI_ERR_INVALID, "provider.config[\"%s\"]: %s", shown, why);
    return HODEI_OK;
}
