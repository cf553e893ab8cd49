/* Register (once, with the one-time token) and UnregisterWorker (with the
 * session token). Register is retried with capped exponential backoff and
 * jitter while the edge cannot be reached; a refusal is final. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"

int64_t agent_jitter(agent *a, int64_t base_ms)
{
    /* xorshift64: spreading reconnects needs no cryptographic quality */
    uint64_t x = a->rand_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    a->rand_state = x;
    int64_t half = base_ms / 2;
    return half + (int64_t)(x % (uint64_t)(half + 1));
}

int64_t agent_backoff_next(const agent *a, int64_t backoff_ms)
{
    int64_t next = backoff_ms * 2;
    return next > a->cfg->reconnect_max_ms ? a->cfg->reconnect_max_ms : next;
}

/* Codes after which asking again can help. */
static bool register_retryable(hodei_grpc_code code)
{
    switch (code) {
    case HODEI_GRPC_UNAVAILABLE:
    case HODEI_GRPC_DEADLINE_EXCEEDED:
    case HODEI_GRPC_RESOURCE_EXHAUSTED:
    case HODEI_GRPC_ABORTED:
    case HODEI_GRPC_INTERNAL:
    case HODEI_GRPC_UNKNOWN:
    case HODEI_GRPC_CANCELLED:
        return true;
    default:
        return false;
    }
}

static bool register_token_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AGENT_SESSION_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

static hodei_status register_check(agent *a, const Hodei__V1__RegisterResponse *r, hodei_err *err)
{
    if (!r->worker_id || strcasecmp(r->worker_id, a->cfg->worker_id) != 0)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "RegisterResponse.worker_id: \"%.64s\" is not this worker's id %s",
                             r->worker_id ? r->worker_id : "", a->cfg->worker_id);
    if (!register_token_ok(r->session_token))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "RegisterResponse.session_token: must be 1..%d printable ASCII "
                             "characters without spaces",
                             AGENT_SESSION_TOKEN_MAX);
    if (r->heartbeat_interval_ms < AGENT_HEARTBEAT_MS_MIN ||
        r->heartbeat_interval_ms > AGENT_HEARTBEAT_MS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "RegisterResponse.heartbeat_interval_ms: %lld is outside [%d, %d]",
                             (long long)r->heartbeat_interval_ms, AGENT_HEARTBEAT_MS_MIN,
                             AGENT_HEARTBEAT_MS_MAX);
    hodei_strlcpy(a->session_token, r->session_token, sizeof a->session_token);
    a->heartbeat_ms = r->heartbeat_interval_ms;
    return HODEI_OK;
}

/* One Register call. HODEI_OK: registered. HODEI_ERR_UNAVAILABLE: try
 * again (err says why). Anything else: final. */
static hodei_status register_once(agent *a, hodei_err *err)
{
    Hodei__V1__ResourceRequirements cap = HODEI__V1__RESOURCE_REQUIREMENTS__INIT;
    Hodei__V1__RegisterRequest req = HODEI__V1__REGISTER_REQUEST__INIT;
    char arch[64];
    agent_capacity(&a->usage, a->cfg, &cap, arch, sizeof arch);
    req.token = a->otp;
    req.worker_id = a->cfg->worker_id;
    req.hostname = a->hostname;
    req.capacity = &cap;
    req.n_labels = a->n_labels;
    req.labels = a->label_ptrs;
    req.agent_version = AGENT_VERSION;
    ProtobufCMessage *resp = NULL;
    hodei_rpc_result res;
    hodei_status st = hodei_rpc_unary(a->ch, AGENT_PATH_REGISTER, &req.base,
                                      &hodei__v1__register_response__descriptor,
                                      AGENT_RPC_TIMEOUT_MS, &resp, &res, err);
    if (st != HODEI_OK)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "Register could not be sent: %s",
                             err->msg);
    if (res.code == HODEI_GRPC_OK) {
        st = register_check(a, (const Hodei__V1__RegisterResponse *)resp, err);
        protobuf_c_message_free_unpacked(resp, NULL);
        return st;
    }
    if (register_retryable(res.code))
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "registration at %s failed: %s: %s",
                             agent_server(a), hodei_grpc_code_str(res.code), res.message);
    return hodei_err_set(err,
                         res.code == HODEI_GRPC_UNAUTHENTICATED ? HODEI_ERR_UNAUTHENTICATED
                                                                : HODEI_ERR_PERMISSION,
                         "registration refused by %s: %s: %s", agent_server(a),
                         hodei_grpc_code_str(res.code), res.message);
}

hodei_status agent_register(agent *a, bool *registered, hodei_err *err)
{
    int64_t backoff = a->cfg->reconnect_min_ms;
    *registered = false;
    HLOG_INFO("registering worker_id=%s server=%s", a->cfg->worker_id, agent_server(a));
    for (;;) {
        hodei_status st = register_once(a, err);
        if (st == HODEI_OK)
            break;
        if (st != HODEI_ERR_UNAVAILABLE) {
            explicit_bzero(a->otp, sizeof a->otp);
            return st;
        }
        int64_t delay = agent_jitter(a, backoff);
        HLOG_WARN("%s; retrying in %lld ms", err->msg, (long long)delay);
        if (hodei_daemon_wait(a->d, delay)) {
            HLOG_INFO("stop requested before registration");
            return HODEI_OK;
        }
        backoff = agent_backoff_next(a, backoff);
        if (agent_channel_open(a, err) != HODEI_OK)
            HLOG_WARN("cannot renew the channel to %s: %s", agent_server(a), err->msg);
    }
    explicit_bzero(a->otp, sizeof a->otp); /* used once; the session token now */
    *registered = true;
    HLOG_INFO("registered worker_id=%s heartbeat_interval_ms=%lld", a->cfg->worker_id,
              (long long)a->heartbeat_ms);
    return HODEI_OK;
}

void agent_unregister(agent *a)
{
    Hodei__V1__UnregisterWorkerRequest req = HODEI__V1__UNREGISTER_WORKER_REQUEST__INIT;
    req.worker_id = a->cfg->worker_id;
    req.session_token = a->session_token;
    ProtobufCMessage *resp = NULL;
    hodei_rpc_result res;
    hodei_err err;
    hodei_status st = hodei_rpc_unary(a->ch, AGENT_PATH_UNREGISTER, &req.base,
                                      &hodei__v1__unregister_worker_response__descriptor,
                                      AGENT_RPC_TIMEOUT_MS, &resp, &res, &err);
    if (st != HODEI_OK)
        HLOG_WARN("UnregisterWorker could not be sent: %s", err.msg);
    else if (res.code != HODEI_GRPC_OK)
        HLOG_WARN("UnregisterWorker failed: %s: %s", hodei_grpc_code_str(res.code), res.message);
    else
        HLOG_INFO("unregistered worker_id=%s", a->cfg->worker_id);
    if (resp)
        protobuf_c_message_free_unpacked(resp, NULL);
}
