/* One driver instance per provider row, made the first time the provider is
 * needed (its row read from PostgreSQL) and kept until shutdown, so a
 * pointer handed out stays valid. A provider whose type this build has no
 * driver for is remembered too, so each lookup answers at once. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/log.h"
#include "hodei/util.h"
#include "prov.h"

#define REG_PROVIDERS_MAX 256

typedef struct {
    char name[PROV_NAME_MAX];
    char type[32];
    prov_driver *drv; /* NULL: no driver for type */
} reg_entry;

struct prov_registry {
    pthread_mutex_t mu;
    const prov *p;
    reg_entry entries[REG_PROVIDERS_MAX];
    size_t len;
};

static const prov_driver_ops *const reg_drivers[] = {
    &prov_process_ops, &prov_kubernetes_ops, &prov_firecracker_ops, &prov_docker_ops, NULL,
};

const prov_driver_ops *prov_driver_ops_find(const char *type)
{
    for (size_t i = 0; reg_drivers[i]; i++)
        if (strcmp(reg_drivers[i]->type, type) == 0)
            return reg_drivers[i];
    return NULL;
}

bool prov_scope_judges(const prov_driver *drv, const char *row_scope)
{
    return drv->scope[0] == '\0' || strcmp(drv->scope, row_scope) == 0;
}

bool prov_scope_elsewhere(const prov_driver *drv, const char *row_scope)
{
    return drv->scope[0] != '\0' && row_scope[0] != '\0' && strcmp(drv->scope, row_scope) != 0;
}

hodei_status prov_registry_create(const prov *p, prov_registry **out, hodei_err *err)
{
    prov_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "registry: out of memory");
    pthread_mutex_init(&reg->mu, NULL);
    reg->p = p;
    *out = reg;
    return HODEI_OK;
}

void prov_registry_destroy(prov_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->len; i++)
        if (reg->entries[i].drv)
            reg->entries[i].drv->ops->destroy(reg->entries[i].drv);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static reg_entry *reg_find(prov_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->len; i++)
        if (strcmp(reg->entries[i].name, name) == 0)
            return &reg->entries[i];
    return NULL;
}

static hodei_status reg_answer(const reg_entry *e, prov_driver **out, hodei_err *err)
{
    if (!e->drv)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                             "provider %s: this provisioner has no driver for type %s", e->name,
                             e->type);
    *out = e->drv;
    return HODEI_OK;
}

enum { REG_COL_TYPE, REG_COL_CONFIG }; /* a provider row, as reg_load reads it */

/* Reads the provider row and makes its entry (mu held). */
static hodei_status reg_load(prov_registry *reg, PGconn *conn, const char *name, reg_entry **out,
                             hodei_err *err)
{
    const char *params[1] = {name};
    PGresult *res = NULL;
    hodei_status st = hodei_db_exec(
        conn, "SELECT type, config::text FROM providers WHERE name = $1", 1, params, &res, err);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return hodei_err_set(err, HODEI_ERR_NOT_FOUND, "provider %s not found", name);
    }
    if (reg->len == REG_PROVIDERS_MAX) {
        PQclear(res);
        return hodei_err_set(err, HODEI_ERR_LIMIT, "more than %d providers", REG_PROVIDERS_MAX);
    }
    reg_entry *e = &reg->entries[reg->len];
    memset(e, 0, sizeof *e);
    hodei_strlcpy(e->name, name, sizeof e->name);
    hodei_strlcpy(e->type, hodei_db_get_str(res, 0, REG_COL_TYPE), sizeof e->type);
    const prov_driver_ops *ops = prov_driver_ops_find(e->type);
    prov_driver_params dp = {
        .name = name,
        .config_json = hodei_db_get_str(res, 0, REG_COL_CONFIG),
        .state_dir = reg->p->state_dir,
        .worker_binary = reg->p->worker_binary,
        .destroy_grace_ms = reg->p->cfg->destroy_grace_ms,
    };
    if (ops && (st = ops->create(&dp, &e->drv, err)) != HODEI_OK) {
        PQclear(res);
        return st;
    }
    PQclear(res);
    reg->len++;
    HLOG_INFO("provider %s (type %s): %s%s%s", e->name, e->type,
              e->drv ? "driver ready" : "no driver in this provisioner",
              e->drv && e->drv->scope[0] ? ", scope " : "", e->drv ? e->drv->scope : "");
    *out = e;
    return HODEI_OK;
}

hodei_status prov_registry_get(prov_registry *reg, PGconn *conn, const char *provider,
                               prov_driver **out, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    pthread_mutex_lock(&reg->mu);
    reg_entry *e = reg_find(reg, provider);
    if (!e)
        st = reg_load(reg, conn, provider, &e, err);
    if (st == HODEI_OK)
        st = reg_answer(e, out, err);
    pthread_mutex_unlock(&reg->mu);
    return st;
}
