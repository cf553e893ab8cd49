/* The Kubernetes provider's configuration: the provider row's settings,
 * and the connection to the API server, from the in-cluster environment
 * (KUBERNETES_SERVICE_HOST/PORT, the service account's token, CA and
 * namespace) or from a kubeconfig file (current or named context; cluster
 * server, certificate-authority(-data), insecure-skip-tls-verify; user
 * token, tokenFile, client-certificate(-data), client-key(-data)). A
 * kubeconfig is YAML (JSON is YAML too): libyaml reads it into a jansson
 * tree, and relative file paths are taken from the kubeconfig's folder, as
 * kubectl does. */
#include <errno.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "hodei/util.h"
#include "k8s_int.h"

#define K8S_FILE_MAX (1u << 20) /* a kubeconfig, token or CA file */
#define K8S_YAML_DEPTH_MAX 32

/* ------------------------------------------------------------ small helpers */

static char *k8s_strdup(const char *s)
{
    return strdup(s ? s : "");
}

static hodei_status k8s_read_file(const char *path, const char *what, char **out, hodei_err *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s: %s", what, path, strerror(errno));
    char *buf = malloc(K8S_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, K8S_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", what);
    if (n > K8S_FILE_MAX) {
        free(buf);
        return hodei_err_set(err, HODEI_ERR_LIMIT, "%s: %s is larger than %u bytes", what, path,
                             K8S_FILE_MAX);
    }
    buf[n] = '\0';
    *out = buf;
    return HODEI_OK;
}

/* Base64 text -> a NUL-terminated string (PEM). */
static hodei_status k8s_b64_decode(const char *b64, const char *what, char **out, hodei_err *err)
{
    size_t len = strlen(b64);
    unsigned char *buf = malloc(len / 4 * 3 + 4);
    if (!buf)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", what);
    int n = len ? EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)len) : 0;
    if (n < 0 || len % 4 != 0) {
        free(buf);
        return hodei_err_set(err, HODEI_ERR_INVALID, "%s: not valid base64", what);
    }
    while (n > 0 && len >= 1 && b64[len - 1] == '=') { /* EVP_DecodeBlock counts the padding */
        n--;
        len--;
    }
    buf[n] = '\0';
    *out = (char *)buf;
    return HODEI_OK;
}

/* ------------------------------------------------------------ settings */

static const char *const k8s_keys[] = {"namespace",       "kubeconfig",
                                       "context",         "service_account_dir",
                                       "agent_image",     "agent_source",
                                       "default_image",   "service_account",
                                       "pull_policy",     "image_pull_secret",
                                       "node_selector",   "tolerations",
                                       "request_timeout", NULL};

static const char *k8s_get(json_t *cfg, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(cfg, key));
    return v && v[0] ? v : dflt;
}

static hodei_status k8s_settings_check_keys(json_t *cfg, hodei_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(cfg, key, val)
    {
        bool known = false;
        for (size_t i = 0; k8s_keys[i] && !known; i++)
            known = strcmp(k8s_keys[i], key) == 0;
        if (!known)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "kubernetes provider config: unknown key \"%s\"", key);
        if (!json_is_string(val))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "kubernetes provider config: \"%s\" must be a string", key);
    }
    return HODEI_OK;
}

static hodei_status k8s_settings_json(const char *key, const char *text, json_type want,
                                      json_t **out, hodei_err *err)
{
    json_error_t jerr;
    *out = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!*out || json_typeof(*out) != want) {
        json_decref(*out);
        *out = NULL;
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "kubernetes provider config: \"%s\" must be a JSON %s", key,
                             want == JSON_OBJECT ? "object of strings" : "array of tolerations");
    }
    return HODEI_OK;
}

static hodei_status k8s_settings_selector(json_t *sel, hodei_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(sel, key, val)
    {
        if (!json_is_string(val))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "kubernetes provider config: node_selector[\"%s\"] must be a "
                                 "string",
                                 key);
    }
    return HODEI_OK;
}

static bool k8s_pull_policy_ok(const char *p)
{
    return strcmp(p, "Always") == 0 || strcmp(p, "IfNotPresent") == 0 || strcmp(p, "Never") == 0;
}

hodei_status k8s_settings_parse(const char *config_json, k8s_settings *out, hodei_err *err)
{
    json_error_t jerr;
    memset(out, 0, sizeof *out);
    json_t *cfg = json_loads(config_json && config_json[0] ? config_json : "{}", 0, &jerr);
    hodei_status st = HODEI_OK;
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "kubernetes provider config: not a JSON object");
    }
    if ((st = k8s_settings_check_keys(cfg, err)) != HODEI_OK)
        goto out;
    out->namespace = k8s_strdup(k8s_get(cfg, "namespace", ""));
    out->kubeconfig = k8s_strdup(k8s_get(cfg, "kubeconfig", ""));
    out->context = k8s_strdup(k8s_get(cfg, "context", ""));
    out->sa_dir = k8s_strdup(k8s_get(cfg, "service_account_dir", K8S_SA_DIR));
    out->agent_image = k8s_strdup(k8s_get(cfg, "agent_image", "hodei/worker-agent:latest"));
    out->agent_source = k8s_strdup(k8s_get(cfg, "agent_source", "/opt/hodei"));
    out->default_image = k8s_strdup(k8s_get(cfg, "default_image", "debian:bookworm-slim"));
    out->service_account = k8s_strdup(k8s_get(cfg, "service_account", ""));
    out->pull_policy = k8s_strdup(k8s_get(cfg, "pull_policy", "IfNotPresent"));
    out->image_pull_secret = k8s_strdup(k8s_get(cfg, "image_pull_secret", ""));
    if (!k8s_pull_policy_ok(out->pull_policy)) {
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "kubernetes provider config: pull_policy must be Always, IfNotPresent "
                           "or Never");
        goto out;
    }
    if (!hodei_parse_duration_ms(k8s_get(cfg, "request_timeout", "10s"),
                                 &out->request_timeout_ms) ||
        out->request_timeout_ms < 100 || out->request_timeout_ms > 300000) {
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "kubernetes provider config: request_timeout must be a duration "
                           "between 100ms and 5m");
        goto out;
    }
    st = k8s_settings_json("node_selector", k8s_get(cfg, "node_selector", "{}"), JSON_OBJECT,
                           &out->node_selector, err);
    if (st == HODEI_OK)
        st = k8s_settings_selector(out->node_selector, err);
    if (st == HODEI_OK)
        st = k8s_settings_json("tolerations", k8s_get(cfg, "tolerations", "[]"), JSON_ARRAY,
                               &out->tolerations, err);
out:
    json_decref(cfg);
    if (st != HODEI_OK)
        k8s_settings_fini(out);
    return st;
}

void k8s_settings_fini(k8s_settings *s)
{
    if (!s)
        return;
    char **strs[] = {&s->namespace,   &s->kubeconfig,       &s->context,       &s->sa_dir,
                     &s->agent_image, &s->agent_source,     &s->default_image, &s->service_account,
                     &s->pull_policy, &s->image_pull_secret};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    json_decref(s->node_selector);
    json_decref(s->tolerations);
    s->node_selector = s->tolerations = NULL;
}

/* ------------------------------------------------------------ YAML -> JSON */

static json_t *k8s_yaml_node(yaml_document_t *doc, yaml_node_t *node, int depth)
{
    if (!node || depth > K8S_YAML_DEPTH_MAX)
        return NULL;
    if (node->type == YAML_SCALAR_NODE)
        return json_stringn((const char *)node->data.scalar.value, node->data.scalar.length);
    if (node->type == YAML_SEQUENCE_NODE) {
        json_t *arr = json_array();
        for (yaml_node_item_t *it = node->data.sequence.items.start;
             arr && it < node->data.sequence.items.top; it++) {
            json_t *v = k8s_yaml_node(doc, yaml_document_get_node(doc, *it), depth + 1);
            if (!v || json_array_append_new(arr, v) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    json_t *obj = json_object();
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start;
         obj && p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        json_t *v = k8s_yaml_node(doc, yaml_document_get_node(doc, p->value), depth + 1);
        if (!k || k->type != YAML_SCALAR_NODE || !v ||
            json_object_set_new(obj, (const char *)k->data.scalar.value, v) != 0) {
            json_decref(v);
            json_decref(obj);
            return NULL;
        }
    }
    return obj;
}

static hodei_status k8s_yaml_load(const char *path, json_t **out, hodei_err *err)
{
    char *text = NULL;
    hodei_status st = k8s_read_file(path, "kubeconfig", &text, err);
    if (st != HODEI_OK)
        return st;
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    if (!yaml_parser_load(&parser, &doc)) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "kubeconfig %s: line %zu: %s", path,
                           parser.problem_mark.line + 1,
                           parser.problem ? parser.problem : "not YAML");
        yaml_parser_delete(&parser);
        free(text);
        return st;
    }
    *out = k8s_yaml_node(&doc, yaml_document_get_root_node(&doc), 0);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    explicit_bzero(text, strlen(text)); /* it may hold a token or a key */
    free(text);
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return hodei_err_set(err, HODEI_ERR_INVALID, "kubeconfig %s: not a mapping", path);
    }
    return HODEI_OK;
}

/* ------------------------------------------------------------ kubeconfig */

/* The entry of list (clusters, users, contexts) named name: its inner object. */
static json_t *k8s_named(json_t *root, const char *list, const char *inner, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, list), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && strcmp(n, name) == 0)
            return json_object_get(e, inner);
    }
    return NULL;
}

static const char *k8s_str(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return v && v[0] ? v : NULL;
}

/* A path as the kubeconfig gives it, made absolute against its folder. */
static char *k8s_rel_path(const char *kubeconfig, const char *p)
{
    if (p[0] == '/')
        return strdup(p);
    char *copy = strdup(kubeconfig), *out = NULL;
    if (copy && asprintf(&out, "%s/%s", dirname(copy), p) < 0)
        out = NULL;
    free(copy);
    return out;
}

/* A file field (certificate-authority) or its -data twin. */
static hodei_status k8s_pem_field(const char *kubeconfig, json_t *obj, const char *key,
                                  char **file_out, char **pem_out, hodei_err *err)
{
    char data_key[64];
    snprintf(data_key, sizeof data_key, "%s-data", key);
    const char *data = k8s_str(obj, data_key), *file = k8s_str(obj, key);
    if (data)
        return k8s_b64_decode(data, data_key, pem_out, err);
    if (file && !(*file_out = k8s_rel_path(kubeconfig, file)))
        return hodei_err_set(err, HODEI_ERR_NOMEM, "kubeconfig: out of memory");
    return HODEI_OK;
}

static hodei_status k8s_kubeconfig_user(const char *path, json_t *user, k8s_conn *c, hodei_err *err)
{
    hodei_status st = HODEI_OK;
    if (!user)
        return HODEI_OK; /* anonymous, or client certificates only */
    const char *tok = k8s_str(user, "token"), *tok_file = k8s_str(user, "tokenFile");
    if (json_object_get(user, "exec") || json_object_get(user, "auth-provider"))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "kubeconfig %s: user exec and auth-provider plugins are not "
                             "supported; use a token, a tokenFile or a client certificate",
                             path);
    if (tok)
        c->token = strdup(tok);
    else if (tok_file)
        c->token_file = k8s_rel_path(path, tok_file);
    st = k8s_pem_field(path, user, "client-certificate", &c->cert_file, &c->cert_pem, err);
    if (st == HODEI_OK)
        st = k8s_pem_field(path, user, "client-key", &c->key_file, &c->key_pem, err);
    return st;
}

static hodei_status k8s_kubeconfig(const k8s_settings *s, k8s_conn *c, hodei_err *err)
{
    json_t *root = NULL;
    hodei_status st = k8s_yaml_load(s->kubeconfig, &root, err);
    if (st != HODEI_OK)
        return st;
    const char *ctx_name = s->context[0] ? s->context : k8s_str(root, "current-context");
    json_t *ctx = ctx_name ? k8s_named(root, "contexts", "context", ctx_name) : NULL;
    json_t *cluster =
        ctx ? k8s_named(root, "clusters", "cluster", k8s_str(ctx, "cluster") ?: "") : NULL;
    if (!ctx || !cluster || !k8s_str(cluster, "server")) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "kubeconfig %s: context \"%s\" %s",
                           s->kubeconfig, ctx_name ? ctx_name : "(no current-context)",
                           !ctx ? "not found" : "names no cluster with a server");
        goto out;
    }
    c->source = "kubeconfig";
    c->server = strdup(k8s_str(cluster, "server"));
    c->namespace = k8s_strdup(k8s_str(ctx, "namespace"));
    const char *skip = k8s_str(cluster, "insecure-skip-tls-verify");
    c->insecure = skip && strcmp(skip, "true") == 0;
    st = k8s_pem_field(s->kubeconfig, cluster, "certificate-authority", &c->ca_file, &c->ca_pem,
                       err);
    if (st == HODEI_OK) {
        const char *user_name = k8s_str(ctx, "user");
        st = k8s_kubeconfig_user(
            s->kubeconfig, user_name ? k8s_named(root, "users", "user", user_name) : NULL, c, err);
    }
out:
    json_decref(root);
    return st;
}

/* ------------------------------------------------------------ in-cluster */

static hodei_status k8s_in_cluster(const k8s_settings *s, k8s_conn *c, hodei_err *err)
{
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    char path[K8S_PATH_MAX];
    if (!host || !host[0] || !port || !port[0])
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "kubernetes provider: no kubeconfig in the config and not in a "
                             "cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
    bool v6 = strchr(host, ':') != NULL;
    if (asprintf(&c->server, v6 ? "https://[%s]:%s" : "https://%s:%s", host, port) < 0) {
        c->server = NULL;
        return hodei_err_set(err, HODEI_ERR_NOMEM, "kubernetes provider: out of memory");
    }
    c->source = "in-cluster";
    snprintf(path, sizeof path, "%s/token", s->sa_dir);
    c->token_file = strdup(path);
    snprintf(path, sizeof path, "%s/ca.crt", s->sa_dir);
    c->ca_file = strdup(path);
    char *probe = NULL;
    hodei_status st = k8s_read_file(c->token_file, "service account token", &probe, err);
    if (st != HODEI_OK)
        return st;
    explicit_bzero(probe, strlen(probe));
    free(probe);
    snprintf(path, sizeof path, "%s/namespace", s->sa_dir);
    if (k8s_read_file(path, "namespace", &probe, err) == HODEI_OK) {
        probe[strcspn(probe, " \r\n")] = '\0';
        c->namespace = probe;
    } else
        c->namespace = strdup("");
    return HODEI_OK;
}

hodei_status k8s_conn_load(const k8s_settings *s, k8s_conn *out, hodei_err *err)
{
    memset(out, 0, sizeof *out);
    hodei_status st = s->kubeconfig[0] ? k8s_kubeconfig(s, out, err) : k8s_in_cluster(s, out, err);
    if (st == HODEI_OK && s->namespace[0]) {
        free(out->namespace);
        out->namespace = strdup(s->namespace);
    } else if (st == HODEI_OK && (!out->namespace || !out->namespace[0])) {
        free(out->namespace);
        out->namespace = strdup("default");
    }
    if (st != HODEI_OK)
        k8s_conn_fini(out);
    return st;
}

static void k8s_free_secret(char **s)
{
    if (*s) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void k8s_conn_fini(k8s_conn *c)
{
    if (!c)
        return;
    k8s_free_secret(&c->token);
    k8s_free_secret(&c->key_pem);
    char **strs[] = {&c->server,    &c->namespace, &c->ca_file,  &c->ca_pem,
                     &c->cert_file, &c->key_file,  &c->cert_pem, &c->token_file};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
}
