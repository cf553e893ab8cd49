#include "hodei/job_state.h"

#include "state_int.h"

#define JOB_STATE_COUNT 8
#define JS(x) HODEI__V1__JOB_STATE__JOB_STATE_##x
#define BIT(x) (1u << JS(x))

static const char *const job_state_names[JOB_STATE_COUNT] = {
    [JS(UNSPECIFIED)] = "UNSPECIFIED", [JS(PENDING)] = "PENDING",     [JS(ASSIGNED)] = "ASSIGNED",
    [JS(RUNNING)] = "RUNNING",         [JS(SUCCEEDED)] = "SUCCEEDED", [JS(FAILED)] = "FAILED",
    [JS(CANCELLED)] = "CANCELLED",     [JS(TIMEOUT)] = "TIMEOUT",
};

/* For each state, the set of states it may move to. */
static const unsigned job_state_next[JOB_STATE_COUNT] = {
    /* FAILED: a job no provider can ever run (an image that does not exist,
     * GPUs its provider cannot give) ends without an attempt. */
    [JS(PENDING)] = BIT(ASSIGNED) | BIT(CANCELLED) | BIT(FAILED),
    [JS(ASSIGNED)] = BIT(RUNNING) | BIT(PENDING) | BIT(CANCELLED) | BIT(FAILED) | BIT(TIMEOUT),
    [JS(RUNNING)] = BIT(SUCCEEDED) | BIT(FAILED) | BIT(CANCELLED) | BIT(TIMEOUT) | BIT(PENDING),
};

static bool job_state_known(Hodei__V1__JobState s)
{
    return (int)s > 0 && (int)s < JOB_STATE_COUNT;
}

bool hodei_job_transition_allowed(Hodei__V1__JobState from, Hodei__V1__JobState to)
{
    if (!job_state_known(from) || !job_state_known(to))
        return false;
    return (job_state_next[from] & (1u << to)) != 0;
}

hodei_status hodei_job_transition_check(Hodei__V1__JobState from, Hodei__V1__JobState to,
                                        hodei_err *err)
{
    if (hodei_job_transition_allowed(from, to))
        return HODEI_OK;
    return hodei_err_set(err, HODEI_ERR_PRECONDITION, "job state: %s -> %s is not allowed",
                         hodei_job_state_name(from), hodei_job_state_name(to));
}

const char *hodei_job_state_name(Hodei__V1__JobState state)
{
    if (!job_state_known(state))
        return job_state_names[0];
    return job_state_names[state];
}

bool hodei_job_state_parse(const char *s, Hodei__V1__JobState *out)
{
    int i = domain_state_lookup(job_state_names, JOB_STATE_COUNT, "JOB_STATE_", s);
    if (i < 0)
        return false;
    *out = (Hodei__V1__JobState)i;
    return true;
}

bool hodei_job_state_terminal(Hodei__V1__JobState state)
{
    return state == JS(SUCCEEDED) || state == JS(FAILED) || state == JS(CANCELLED) ||
           state == JS(TIMEOUT);
}
