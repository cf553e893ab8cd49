/* Where each loaded value came from, kept per section (keyed by its base
 * and parameter table) so hodei_config_print can name the source. */
#include "config_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/util.h"

typedef struct {
    const void *base;
    const hodei_cfg_param *params;
    size_t n_params;
    char **sources; /* n_params heap strings */
} config_record;

static config_record registry[CONFIG_RECORDS_MAX];
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;

static void registry_record_clear(config_record *r)
{
    for (size_t i = 0; r->sources && i < r->n_params; i++)
        free(r->sources[i]);
    free(r->sources);
    memset(r, 0, sizeof *r);
}

static config_record *registry_find(const hodei_cfg_section *sec)
{
    for (size_t i = 0; i < CONFIG_RECORDS_MAX; i++)
        if (registry[i].base == sec->base && registry[i].params == sec->params)
            return &registry[i];
    return NULL;
}

static char **registry_sources_copy(const config_slot *slots, size_t n)
{
    char **sources = calloc(n, sizeof *sources);
    for (size_t i = 0; sources && i < n; i++) {
        sources[i] = strdup(slots[i].source);
        if (!sources[i]) {
            for (size_t k = 0; k < i; k++)
                free(sources[k]);
            free(sources);
            return NULL;
        }
    }
    return sources;
}

hodei_status config_registry_put(const hodei_cfg_section *sec, const config_slot *slots,
                                 hodei_err *err)
{
    if (sec->n_params == 0)
        return HODEI_OK;
    char **sources = registry_sources_copy(slots, sec->n_params);
    if (!sources)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "configuration: out of memory");
    hodei_status st = HODEI_OK;
    pthread_mutex_lock(&registry_lock);
    config_record *r = registry_find(sec);
    if (!r) {
        hodei_cfg_section empty = {0};
        r = registry_find(&empty);
    }
    if (r) {
        registry_record_clear(r);
        *r = (config_record){sec->base, sec->params, sec->n_params, sources};
    } else {
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "more than %d configuration sections loaded",
                           CONFIG_RECORDS_MAX);
    }
    pthread_mutex_unlock(&registry_lock);
    if (!r) {
        config_record lost = {NULL, NULL, sec->n_params, sources};
        registry_record_clear(&lost);
    }
    return st;
}

void config_registry_source(const hodei_cfg_section *sec, size_t i, char *out, size_t out_len)
{
    pthread_mutex_lock(&registry_lock);
    config_record *r = sec->base ? registry_find(sec) : NULL;
    hodei_strlcpy(out, r && i < r->n_params ? r->sources[i] : "?", out_len);
    pthread_mutex_unlock(&registry_lock);
}

void config_registry_drop(const hodei_cfg_section *sec)
{
    if (!sec->base)
        return;
    pthread_mutex_lock(&registry_lock);
    config_record *r = registry_find(sec);
    if (r)
        registry_record_clear(r);
    pthread_mutex_unlock(&registry_lock);
}
