/* RegisterProvider's config entries (hodei_provider_config_check) and the
 * byte sizes they hold (hodei_bytes_parse). The input is split at its
 * first two NUL bytes into provider type, key and value. Properties: a
 * refusal is HODEI_ERR_INVALID naming provider.config, printable; a parsed
 * size lies in [0, 2^50]. */
#include <string.h>

#include "fuzz.h"
#include "hodei/provider_config.h"

#define FUZZ_FIELD_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char buf[3 * FUZZ_FIELD_MAX + 3];
    if (size > sizeof buf - 3)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *type = buf;
    const char *key = type + strlen(type) + 1;
    const char *value = key + strlen(key) + 1;
    if ((size_t)(value - buf) > size + 2)
        return 0;
    int64_t bytes = -1;
    if (hodei_bytes_parse(value, &bytes))
        FUZZ_CHECK(bytes >= 0 && bytes <= (INT64_C(1) << 50), "parsed %lld", (long long)bytes);
    hodei_err err = {0};
    hodei_status st = hodei_provider_config_check(type, key, value, &err);
    if (st == HODEI_OK)
        return 0;
    FUZZ_CHECK(st == HODEI_ERR_INVALID, "status %d", (int)st);
    size_t len = strnlen(err.msg, sizeof err.msg);
    FUZZ_CHECK(len > 0 && len < sizeof err.msg, "empty or unterminated message");
    FUZZ_CHECK(strncmp(err.msg, "provider.config", 15) == 0, "names no field: %s", err.msg);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)err.msg[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control byte 0x%02x at %zu in \"%s\"", c, i, err.msg);
    }
    return 0;
}
