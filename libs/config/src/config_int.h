/* Private to libs/config: the working table a load fills, one slot per
 * declared parameter, holding the winning text and where it came from. */
#ifndef HODEI_CONFIG_INT_H
#define HODEI_CONFIG_INT_H

#include "hodei/config.h"

#define CONFIG_PARAMS_MAX 512 /* parameters over all sections of one load */
#define CONFIG_NAME_MAX 128   /* dotted parameter name, with the NUL */
#define CONFIG_STRING_MAX_DEFAULT 4096
#define CONFIG_SOURCE_MAX 600 /* "default", "HODEI_X" or "<path>:<line>" */
#define CONFIG_RECORDS_MAX 64 /* loaded sections remembered for print */

typedef struct config_slot {
    const hodei_cfg_param *param;
    void *base;
    char *text; /* heap; the winning value as text */
    char source[CONFIG_SOURCE_MAX];
    bool from_file; /* set by the YAML file (duplicate check) */
    /* For the companion "<name>_file" of a secret string parameter: the
     * slot whose value that file holds (NULL for a declared parameter). */
    struct config_slot *file_of;
} config_slot;

/* Slots of the declared parameters first (in section order), then one
 * "<name>_file" slot per secret string parameter that does not declare its
 * own; file_params and file_names back those slots' parameters. */
typedef struct {
    config_slot *slots;
    size_t n_slots;
    size_t n_declared;
    hodei_cfg_param *file_params;
    char (*file_names)[CONFIG_NAME_MAX];
} config_table;

config_slot *config_table_find(const config_table *t, const char *name);
/* Replaces the slot's text (copied) and source. */
hodei_status config_slot_set(config_slot *s, const char *text, const char *source, hodei_err *err);

/* Reads each set "<name>_file" into its parameter's slot; refuses a
 * parameter set both ways, naming both. */
hodei_status config_files_apply(config_table *t, hodei_err *err);

/* Applies the YAML file at path to the table. */
hodei_status config_yaml_apply(config_table *t, const char *path, hodei_err *err);

/* Parses the slot's text by type, checks bounds, choices and required, and
 * stores the value in its field (strings are heap copies). */
hodei_status config_value_store(const config_slot *s, hodei_err *err);
/* Formats the field's current value as text ("5s", "true", ...). */
void config_value_format(const hodei_cfg_param *p, const void *base, char *out, size_t out_len);

/* Remembers the sources of a loaded section for hodei_config_print. */
hodei_status config_registry_put(const hodei_cfg_section *sec, const config_slot *slots,
                                 hodei_err *err);
/* Copies the source of parameter i of the section, or "?" when unknown. */
void config_registry_source(const hodei_cfg_section *sec, size_t i, char *out, size_t out_len);
void config_registry_drop(const hodei_cfg_section *sec);

#endif
