#include "hodei/sched_strategy.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#define STRATEGY_PREFIX "SCHEDULING_STRATEGY_"
#define STRATEGY_NAME_MAX 32

/* Indexed by Hodei__V1__SchedulingStrategy. */
static const char *const strategy_by_value[] = {
    NULL, "round-robin", "least-loaded", "priority", "resource-aware", "cost-optimized",
};
#define STRATEGY_COUNT (sizeof strategy_by_value / sizeof strategy_by_value[0])

const char *const hodei_sched_strategy_names[] = {
    "round-robin", "least-loaded", "priority", "resource-aware", "cost-optimized", NULL,
};

const char *hodei_sched_strategy_name(Hodei__V1__SchedulingStrategy s)
{
    if ((int)s <= 0 || (size_t)s >= STRATEGY_COUNT)
        return NULL;
    return strategy_by_value[s];
}

bool hodei_sched_strategy_parse(const char *s, Hodei__V1__SchedulingStrategy *out)
{
    char norm[STRATEGY_NAME_MAX];
    size_t n = 0;

    if (!s)
        return false;
    if (strncasecmp(s, STRATEGY_PREFIX, strlen(STRATEGY_PREFIX)) == 0)
        s += strlen(STRATEGY_PREFIX);
    for (; s[n]; n++) {
        if (n + 1 >= sizeof norm)
            return false;
        norm[n] = s[n] == '_' ? '-' : (char)tolower((unsigned char)s[n]);
    }
    norm[n] = '\0';
    for (size_t i = 1; i < STRATEGY_COUNT; i++) {
        if (strcmp(norm, strategy_by_value[i]) == 0) {
            *out = (Hodei__V1__SchedulingStrategy)i;
            return true;
        }
    }
    return false;
}
