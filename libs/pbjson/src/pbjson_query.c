/* Query parameters -> the JSON object hodei_pbjson_decode reads, so a GET's
 * parameters meet exactly the checks a body would. */
#include <stdio.h>
#include <string.h>

#include "pbjson_int.h"

#define QUERY_PATH_MAX 256

/* The JSON value text stands for in field f (see hodei/pbjson.h). */
static json_t *query_value(const ProtobufCFieldDescriptor *f, const char *text)
{
    if (f->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 || text[0] == '\0')
            return json_true();
        if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0)
            return json_false();
    }
    return json_string(text);
}

/* "key=value" into the map object at obj[name]. */
static hodei_status query_map_add(json_t *map, const char *name, const ProtobufCFieldDescriptor *f,
                                  const char *text, hodei_err *err)
{
    const char *eq = strchr(text, '=');
    if (!eq || eq == text)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: expected key=value, got '%.64s'", name,
                             text);
    char key[HODEI_ERR_MSG_MAX];
    snprintf(key, sizeof key, "%.*s", (int)(eq - text), text);
    if (json_object_get(map, key))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: key '%.64s' given twice", name, key);
    const ProtobufCFieldDescriptor *vf =
        &((const ProtobufCMessageDescriptor *)f->descriptor)->fields[1];
    json_t *v = query_value(vf, eq + 1);
    if (!v || json_object_set_new(map, key, v) != 0)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", name);
    return HODEI_OK;
}

/* The object for a nested message segment, made when missing. */
static json_t *query_child(json_t *obj, const char *key)
{
    json_t *child = json_object_get(obj, key);
    if (child)
        return json_is_object(child) ? child : NULL;
    child = json_object();
    if (!child || json_object_set_new(obj, key, child) != 0)
        return NULL;
    return child;
}

hodei_status hodei_pbjson_query_add(const ProtobufCMessageDescriptor *desc, json_t *obj,
                                    const char *name, const char *text, hodei_err *err)
{
    char path[QUERY_PATH_MAX];
    if (snprintf(path, sizeof path, "%s", name) >= (int)sizeof path)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%.64s...: unknown parameter", name);
    char *seg = path, *dot;
    const ProtobufCFieldDescriptor *f = NULL;
    while ((dot = strchr(seg, '.')) != NULL) {
        *dot = '\0';
        f = hodei_pbjson_field(desc, seg);
        if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED)
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: unknown parameter", name);
        if (!(obj = query_child(obj, f->name)))
            return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given twice", name);
        desc = f->descriptor;
        seg = dot + 1;
    }
    f = hodei_pbjson_field(desc, seg);
    if (!f || (f->type == PROTOBUF_C_TYPE_MESSAGE && !hodei_pbjson_is_map(desc, f)))
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: unknown parameter", name);
    json_t *have = json_object_get(obj, f->name);
    if (hodei_pbjson_is_map(desc, f)) {
        json_t *map = query_child(obj, f->name);
        return map ? query_map_add(map, name, f, text, err)
                   : hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", name);
    }
    json_t *v = query_value(f, text);
    if (!v)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", name);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!have) {
            have = json_array();
            if (!have || json_object_set_new(obj, f->name, have) != 0) {
                json_decref(v);
                return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", name);
            }
        }
        if (json_array_append_new(have, v) != 0)
            return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", name);
        return HODEI_OK;
    }
    if (have) {
        json_decref(v);
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: given twice", name);
    }
    if (json_object_set_new(obj, f->name, v) != 0)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", name);
    return HODEI_OK;
}
