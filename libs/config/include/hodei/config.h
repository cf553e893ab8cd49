/* Configuration: every parameter is declared once (name, type, default,
 * bounds, the field it fills). Sources, later ones winning:
 *   1. the declared default
 *   2. the YAML file (nested mappings: `database: {url: ...}` fills
 *      "database.url"); an unknown key is an error naming it
 *   3. the environment: "database.url" <- HODEI_DATABASE_URL
 *      (dots and dashes become underscores, upper case)
 * A secret string parameter X may instead be given as X_file, a file holding
 * the value (YAML key or HODEI_X_FILE); setting both is refused.
 * Every value is validated; the first bad one is reported naming the
 * parameter and its source, e.g.
 *   "grpc.threads: 0 is below the minimum 1 (from HODEI_GRPC_THREADS)". */
#ifndef HODEI_CONFIG_H
#define HODEI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hodei/status.h"

typedef enum {
    HODEI_CFG_STRING = 0,  /* char * (heap, freed by hodei_config_free); max = max length */
    HODEI_CFG_INT,         /* int64_t within [min, max] */
    HODEI_CFG_BOOL,        /* bool: true/false/yes/no/on/off/1/0 */
    HODEI_CFG_DURATION_MS, /* int64_t ms: "250ms", "5s", "2m", "1h", bare = ms; within [min, max] */
} hodei_cfg_type;

typedef struct {
    const char *name; /* dotted: "database.url" */
    hodei_cfg_type type;
    const char *default_value; /* text, parsed like any input; NULL = "" / 0 */
    int64_t min, max;          /* bounds; both 0 = unbounded (STRING: max length, 0 = 4096) */
    size_t offset;             /* offsetof(struct, field) within the section base */
    const char *help;
    bool required;              /* must be non-empty after all sources */
    bool secret;                /* shown as "***" by hodei_config_print; a STRING one may also be
                                   given as "<name>_file" (a file holding the value) */
    const char *const *choices; /* STRING only: NULL-terminated allowed values, or NULL */
} hodei_cfg_param;

typedef struct {
    const hodei_cfg_param *params;
    size_t n_params;
    void *base; /* the struct the offsets point into */
} hodei_cfg_section;

/* Fills every section. yaml_path NULL = no file. On error nothing needs
 * freeing beyond hodei_config_free (which is safe on partly filled sections). */
hodei_status hodei_config_load(const hodei_cfg_section *sections, size_t n_sections,
                               const char *yaml_path, hodei_err *err);
/* Where a loaded section's parameter `name` got its value: "default", a
 * file position "FILE:LINE", or an environment variable's name ("?" for a
 * section not loaded or a name it lacks). Cross-parameter checks use it
 * to tell a value left at its default from one given. */
void hodei_config_source(const hodei_cfg_section *sec, const char *name, char *out, size_t out_len);
/* Prints "name = value  # source" lines; secrets masked. */
void hodei_config_print(const hodei_cfg_section *sections, size_t n_sections, FILE *out);
/* Frees the strings the load allocated and zeroes their fields. */
void hodei_config_free(const hodei_cfg_section *sections, size_t n_sections);
/* A secret held in a file, as "<name>_file" settings read it: a regular
 * file of 1..max bytes without NUL, one trailing newline dropped; errors
 * name param and path, never the content. *out: free after wiping. */
hodei_status hodei_config_read_file(const char *param, const char *path, size_t max, char **out,
                                    hodei_err *err);
/* Environment variable name for a parameter: "database.url" -> "HODEI_DATABASE_URL". */
void hodei_config_env_name(const char *param, char *out, size_t out_len);

/* Parameters every daemon has. */
typedef struct {
    char *log_level;    /* log.level: debug|info|warn|error */
    char *database_url; /* database.url: libpq conninfo or URI (secret: may hold a password) */
    int64_t database_pool_size; /* database.pool_size */
    int64_t database_connect_timeout_ms;
    bool database_prepare; /* database.prepare: statements prepared per connection */
    char *nats_url;        /* nats.url */
    char *nats_user;       /* nats.user: "" = no credentials */
    char *nats_password;   /* nats.password (secret) */
    char *instance_id;     /* instance.id: "" = hostname-pid */
    char *health_listen;   /* health.listen: "" = off, else address:port */
} hodei_common_config;

extern const hodei_cfg_param hodei_common_params[];
extern const size_t hodei_common_params_len;

#endif
