/* What a worker agent sends, as the edge decodes it: the first byte picks
 * the door (even: a WorkerStream message, odd: a RegisterRequest), the rest
 * is unpacked with protobuf-c and checked with libs/domain's hodei_worker_check_*
 * functions. Properties: a refusal is HODEI_ERR_INVALID with a printable,
 * non-empty message; a token is never echoed in it. */
#include <string.h>

#include "fuzz.h"
#include "hodei/v1/worker.pb-c.h"
#include "hodei/worker_msg.h"

static void check_refusal(hodei_status st, const hodei_err *err, const char *token)
{
    FUZZ_CHECK(st == HODEI_ERR_INVALID, "status %d", (int)st);
    size_t len = strnlen(err->msg, sizeof err->msg);
    FUZZ_CHECK(len > 0 && len < sizeof err->msg, "empty or unterminated message");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)err->msg[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f, "control byte 0x%02x at %zu in \"%s\"", c, i, err->msg);
    }
    if (token && strlen(token) >= 8)
        FUZZ_CHECK(strstr(err->msg, token) == NULL, "token echoed: %s", err->msg);
}

static void fuzz_stream_message(const uint8_t *data, size_t size)
{
    Hodei__V1__WorkerMessage *m = hodei__v1__worker_message__unpack(NULL, size, data);
    if (!m)
        return;
    hodei_err err = {0};
    hodei_status st = HODEI_OK;
    const char *token = NULL;
    switch (m->body_case) {
    case HODEI__V1__WORKER_MESSAGE__BODY_HELLO:
        st = hodei_worker_check_hello(m->hello, &err);
        token = m->hello ? m->hello->session_token : NULL;
        break;
    case HODEI__V1__WORKER_MESSAGE__BODY_HEARTBEAT:
        st = hodei_worker_check_heartbeat(m->heartbeat, &err);
        break;
    case HODEI__V1__WORKER_MESSAGE__BODY_RUN_JOB_ACK:
        st = hodei_worker_check_ack(m->run_job_ack, &err);
        break;
    case HODEI__V1__WORKER_MESSAGE__BODY_LOG_BATCH:
        st = hodei_worker_check_log_batch(m->log_batch, &err);
        break;
    case HODEI__V1__WORKER_MESSAGE__BODY_JOB_RESULT:
        st = hodei_worker_check_result(m->job_result, &err);
        break;
    default:
        break;
    }
    if (st != HODEI_OK)
        check_refusal(st, &err, token);
    hodei__v1__worker_message__free_unpacked(m, NULL);
}

static void fuzz_register(const uint8_t *data, size_t size)
{
    Hodei__V1__RegisterRequest *r = hodei__v1__register_request__unpack(NULL, size, data);
    if (!r)
        return;
    hodei_err err = {0};
    hodei_status st = hodei_worker_check_register(r, &err);
    if (st != HODEI_OK)
        check_refusal(st, &err, r->token);
    hodei__v1__register_request__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] & 1)
        fuzz_register(data + 1, size - 1);
    else
        fuzz_stream_message(data + 1, size - 1);
    return 0;
}
