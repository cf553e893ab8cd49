#include "hodei/worker_state.h"

#include "state_int.h"

#define WORKER_STATE_COUNT 9
#define WS(x) HODEI__V1__WORKER_STATE__WORKER_STATE_##x
#define BIT(x) (1u << WS(x))

static const char *const worker_state_names[WORKER_STATE_COUNT] = {
    [WS(UNSPECIFIED)] = "UNSPECIFIED",
    [WS(CREATING)] = "CREATING",
    [WS(CONNECTING)] = "CONNECTING",
    [WS(READY)] = "READY",
    [WS(BUSY)] = "BUSY",
    [WS(DRAINING)] = "DRAINING",
    [WS(TERMINATING)] = "TERMINATING",
    [WS(TERMINATED)] = "TERMINATED",
    [WS(LOST)] = "LOST",
};

/* For each state, the set of states it may move to. */
static const unsigned worker_state_next[WORKER_STATE_COUNT] = {
    [WS(CREATING)] = BIT(CONNECTING) | BIT(TERMINATING) | BIT(LOST),
    [WS(CONNECTING)] = BIT(READY) | BIT(TERMINATING) | BIT(LOST),
    [WS(READY)] = BIT(BUSY) | BIT(DRAINING) | BIT(LOST),
    [WS(BUSY)] = BIT(READY) | BIT(DRAINING) | BIT(LOST),
    [WS(DRAINING)] = BIT(TERMINATING) | BIT(LOST),
    [WS(TERMINATING)] = BIT(TERMINATED),
    [WS(LOST)] = BIT(TERMINATING) | BIT(TERMINATED),
};

static bool worker_state_known(Hodei__V1__WorkerState s)
{
    return (int)s > 0 && (int)s < WORKER_STATE_COUNT;
}

bool hodei_worker_transition_allowed(Hodei__V1__WorkerState from, Hodei__V1__WorkerState to)
{
    if (!worker_state_known(from) || !worker_state_known(to))
        return false;
    return (worker_state_next[from] & (1u << to)) != 0;
}

hodei_status hodei_worker_transition_check(Hodei__V1__WorkerState from, Hodei__V1__WorkerState to,
                                           hodei_err *err)
{
    if (hodei_worker_transition_allowed(from, to))
        return HODEI_OK;
    return hodei_err_set(err, HODEI_ERR_PRECONDITION, "worker state: %s -> %s is not allowed",
                         hodei_worker_state_name(from), hodei_worker_state_name(to));
}

const char *hodei_worker_state_name(Hodei__V1__WorkerState state)
{
    if (!worker_state_known(state))
        return worker_state_names[0];
    return worker_state_names[state];
}

bool hodei_worker_state_parse(const char *s, Hodei__V1__WorkerState *out)
{
    int i = domain_state_lookup(worker_state_names, WORKER_STATE_COUNT, "WORKER_STATE_", s);
    if (i < 0)
        return false;
    *out = (Hodei__V1__WorkerState)i;
    return true;
}

bool hodei_worker_state_terminal(Hodei__V1__WorkerState state)
{
    return state == WS(TERMINATED);
}

bool hodei_worker_state_in(Hodei__V1__WorkerState state, hodei_worker_state_set set)
{
    return worker_state_known(state) && (set & HODEI_WSET(state)) != 0;
}

bool hodei_worker_state_is(const char *name, hodei_worker_state_set set)
{
    Hodei__V1__WorkerState s;
    return hodei_worker_state_parse(name, &s) && hodei_worker_state_in(s, set);
}
