/* QueueJobRequest bytes -> protobuf-c unpack -> hodei_queue_request_validate,
 * as the edge's QueueJob door does. Properties: an accepted spec packs
 * within HODEI_JOB_SPEC_PACKED_MAX; an error message is printable text
 * (it is shown to a person) and starts with the field it names. */
#include <string.h>

#include "fuzz.h"
#include "hodei/job_spec.h"
#include "hodei/v1/job.pb-c.h"

static void check_message(const hodei_err *err)
{
    size_t len = strnlen(err->msg, sizeof err->msg);
    FUZZ_CHECK(len > 0 && len < sizeof err->msg, "empty or unterminated message");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)err->msg[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control byte 0x%02x at %zu in \"%s\"", c, i, err->msg);
    }
    FUZZ_CHECK(strncmp(err->msg, "spec", 4) == 0 || strncmp(err->msg, "idempotency_key", 15) == 0,
               "message names no field: %s", err->msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Hodei__V1__QueueJobRequest *req = hodei__v1__queue_job_request__unpack(NULL, size, data);
    if (!req)
        return 0;
    hodei_err err = {0};
    hodei_status st = hodei_queue_request_validate(req, &err);
    if (st == HODEI_OK) {
        size_t packed = hodei__v1__job_spec__get_packed_size(req->spec);
        FUZZ_CHECK(packed <= HODEI_JOB_SPEC_PACKED_MAX, "accepted a %zu-byte spec", packed);
        FUZZ_CHECK(hodei_job_spec_max_attempts(req->spec) >= 1, "max_attempts below 1");
        int64_t t = hodei_job_spec_timeout_ms(req->spec);
        FUZZ_CHECK(t >= HODEI_JOB_TIMEOUT_MS_MIN && t <= HODEI_JOB_TIMEOUT_MS_MAX,
                   "timeout %lld out of bounds", (long long)t);
    } else {
        FUZZ_CHECK(st == HODEI_ERR_INVALID, "status %d", (int)st);
        check_message(&err);
    }
    hodei__v1__queue_job_request__free_unpacked(req, NULL);
    return 0;
}
