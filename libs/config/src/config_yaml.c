/* The YAML file: one document whose root is a mapping; nested mappings are
 * flattened to dotted names ("database: {url: x}" fills "database.url");
 * every leaf must be a scalar naming a declared parameter. */
#include "config_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define CONFIG_YAML_DEPTH_MAX 8 /* nesting levels of mappings */
#define CONFIG_SUGGEST_DISTANCE_MAX 2

typedef struct {
    config_table *table;
    const char *path;
    yaml_document_t *doc;
} yaml_walk;

static size_t yaml_line(const yaml_node_t *node)
{
    return node->start_mark.line + 1;
}

/* Edit distance, for "did you mean" on an unknown key. */
static size_t yaml_distance(const char *a, const char *b)
{
    size_t row[CONFIG_NAME_MAX + 1];
    size_t lb = strlen(b);
    if (lb > CONFIG_NAME_MAX)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; a[i - 1]; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static hodei_status yaml_unknown_key(const yaml_walk *w, const char *name, size_t line,
                                     hodei_err *err)
{
    const char *best = NULL;
    size_t best_d = CONFIG_SUGGEST_DISTANCE_MAX + 1;
    for (size_t i = 0; i < w->table->n_slots; i++) {
        size_t d = yaml_distance(name, w->table->slots[i].param->name);
        if (d < best_d) {
            best_d = d;
            best = w->table->slots[i].param->name;
        }
    }
    if (best)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "unknown configuration key '%s' in %s:%zu (did you mean '%s'?)", name,
                             w->path, line, best);
    return hodei_err_set(err, HODEI_ERR_INVALID, "unknown configuration key '%s' in %s:%zu", name,
                         w->path, line);
}

static bool yaml_is_null(const yaml_node_t *v)
{
    const char *s = (const char *)v->data.scalar.value;
    if (v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static hodei_status yaml_leaf(const yaml_walk *w, const char *name, const yaml_node_t *key,
                              const yaml_node_t *val, hodei_err *err)
{
    config_slot *s = config_table_find(w->table, name);
    if (!s)
        return yaml_unknown_key(w, name, yaml_line(key), err);
    if (s->from_file)
        return hodei_err_set(err, HODEI_ERR_INVALID, "duplicate configuration key '%s' in %s:%zu",
                             name, w->path, yaml_line(key));
    bool is_null = yaml_is_null(val);
    const char *text = is_null ? "" : (const char *)val->data.scalar.value;
    if (!is_null && strlen(text) != val->data.scalar.length)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: the value holds a NUL character (%s:%zu)",
                             name, w->path, yaml_line(val));
    char source[CONFIG_SOURCE_MAX];
    snprintf(source, sizeof source, "%s:%zu", w->path, yaml_line(val));
    s->from_file = true;
    return config_slot_set(s, text, source, err);
}

static hodei_status yaml_walk_mapping(const yaml_walk *w, const yaml_node_t *map,
                                      const char *prefix, int depth, hodei_err *err);

static hodei_status yaml_walk_pair(const yaml_walk *w, const yaml_node_pair_t *pair,
                                   const char *prefix, int depth, hodei_err *err)
{
    yaml_node_t *key = yaml_document_get_node(w->doc, pair->key);
    yaml_node_t *val = yaml_document_get_node(w->doc, pair->value);
    if (key->type != YAML_SCALAR_NODE)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s:%zu: a key must be a plain name", w->path,
                             yaml_line(key));
    char name[CONFIG_NAME_MAX];
    int n = snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "",
                     (const char *)key->data.scalar.value);
    if (n < 0 || (size_t)n >= sizeof name)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s:%zu: key '%s...' is too long", w->path,
                             yaml_line(key), prefix);
    switch (val->type) {
    case YAML_SCALAR_NODE:
        return yaml_leaf(w, name, key, val, err);
    case YAML_MAPPING_NODE:
        if (config_table_find(w->table, name))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "%s:%zu: '%s' takes a single value, not a mapping", w->path,
                                 yaml_line(key), name);
        return yaml_walk_mapping(w, val, name, depth + 1, err);
    default:
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s:%zu: '%s' is a list; configuration values are single values",
                             w->path, yaml_line(key), name);
    }
}

static hodei_status yaml_walk_mapping(const yaml_walk *w, const yaml_node_t *map,
                                      const char *prefix, int depth, hodei_err *err)
{
    if (depth > CONFIG_YAML_DEPTH_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s:%zu: mappings nested deeper than %d",
                             w->path, yaml_line(map), CONFIG_YAML_DEPTH_MAX);
    for (const yaml_node_pair_t *pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        hodei_status st = yaml_walk_pair(w, pair, prefix, depth, err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}

static hodei_status yaml_syntax_error(const yaml_parser_t *parser, const char *path, hodei_err *err)
{
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory reading YAML", path);
    case YAML_READER_ERROR:
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: invalid YAML: %s at byte %zu", path,
                             problem, parser->problem_offset);
    default:
        break;
    }
    if (parser->context)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s:%zu:%zu: invalid YAML: %s %s (line %zu)",
                             path, parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                             problem, parser->context, parser->context_mark.line + 1);
    return hodei_err_set(err, HODEI_ERR_INVALID, "%s:%zu:%zu: invalid YAML: %s", path,
                         parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem);
}

static hodei_status yaml_apply_root(config_table *t, const char *path, yaml_document_t *doc,
                                    hodei_err *err)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (!root)
        return HODEI_OK; /* an empty file sets nothing */
    if (root->type == YAML_SCALAR_NODE && yaml_is_null(root))
        return HODEI_OK;
    if (root->type != YAML_MAPPING_NODE)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s:%zu: the top level must be a mapping of keys to values", path,
                             yaml_line(root));
    yaml_walk w = {.table = t, .path = path, .doc = doc};
    return yaml_walk_mapping(&w, root, "", 1, err);
}

/* A second document would be ignored by a reader that stops at the first:
 * refuse it rather than silently drop settings. */
static hodei_status yaml_check_single(yaml_parser_t *parser, const char *path, hodei_err *err)
{
    yaml_document_t doc;
    if (!yaml_parser_load(parser, &doc))
        return yaml_syntax_error(parser, path, err);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    hodei_status st = HODEI_OK;
    if (root)
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "%s:%zu: a configuration file holds one YAML document", path,
                           yaml_line(root));
    yaml_document_delete(&doc);
    return st;
}

hodei_status config_yaml_apply(config_table *t, const char *path, hodei_err *err)
{
    hodei_status st;
    yaml_parser_t parser;
    yaml_document_t doc;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hodei_err_set(err, HODEI_ERR_IO, "cannot open configuration file %s: %s", path,
                             strerror(errno));
    if (!yaml_parser_initialize(&parser)) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", path);
        goto out_close_file;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        st = yaml_syntax_error(&parser, path, err);
        goto out_delete_parser;
    }
    st = yaml_apply_root(t, path, &doc, err);
    if (st == HODEI_OK)
        st = yaml_check_single(&parser, path, err);
    yaml_document_delete(&doc);
out_delete_parser:
    yaml_parser_delete(&parser);
out_close_file:
    fclose(f);
    return st;
}
