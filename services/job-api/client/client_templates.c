/* TemplateService: CreateTemplate (create or replace, version + 1),
 * GetTemplate, ListTemplates, RunTemplate. A template is a JobSpec whose
 * strings may hold ${param} for its declared parameters; RunTemplate puts
 * the given values in and queues the job through the same group commit as
 * QueueJob. Only declared names are placeholders: a script's own ${HOME}
 * stays as it is. Every write is one statement with its audit_log row.
 * Templates belong to a namespace: a key reads, writes and runs those of
 * the namespaces it may use, and a run's job goes to the template's. */
#include "client_templates.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "client_secrets.h"
#include "client_submit.h"
#include "edge_audit.h"
#include "edge_auth.h"
#include "hodei/buf.h"
#include "hodei/job_spec.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/sqlarr.h"
#include "hodei/template.h"
#include "hodei/v1/template.pb-c.h"

#define SVC "/hodei.v1.TemplateService/"
#define TPL_LIST_DEFAULT 100
#define TPL_LIST_MAX 1000
#define TPL_INT_TEXT_MAX 24

/* ------------------------------------------------------------ validation */

/* Puts prefix before err's message (which names the field). */
static hodei_status tpl_err_prefix(hodei_err *err, const char *prefix)
{
    char msg[sizeof err->msg];
    memcpy(msg, err->msg, sizeof msg);
    return hodei_err_set(err, err->code, "%s%s", prefix, msg);
}

static hodei_status tpl_check_name(const char *field, const char *name, hodei_err *err)
{
    if (!hodei_template_name_valid(name))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "%s: must be 1 to %d characters of a-z 0-9 . _ -, starting with a"
                             " letter or digit",
                             field, HODEI_TEMPLATE_NAME_MAX);
    return HODEI_OK;
}

/* --------------------------------------------------------------- replies */

/* Columns of every template read. */
#define TPL_COLS                                                                                   \
    "name, description, encode(spec, 'hex'), array_to_string(parameters, ' '), version,"           \
    " (extract(epoch FROM created_at) * 1000000)::bigint, namespace"
enum { C_NAME, C_DESCRIPTION, C_SPEC_HEX, C_PARAMS, C_VERSION, C_CREATED_US, C_NAMESPACE };

/* A template read back: its spec unpacked, its parameters split; it owns
 * every string (the result it came from may be cleared). */
typedef struct {
    Hodei__V1__Template t;
    Hodei__V1__Timestamp created;
    char *name, *description, *ns;
    char *params_text; /* the parameters, NUL-separated in place */
    char *params[HODEI_TEMPLATE_PARAMS_MAX];
} tpl_row;

static void tpl_row_free(tpl_row *r)
{
    if (r->t.spec)
        hodei__v1__job_spec__free_unpacked(r->t.spec, NULL);
    free(r->params_text);
    free(r->name);
    free(r->description);
    free(r->ns);
    r->t.spec = NULL;
    r->params_text = r->name = r->description = r->ns = NULL;
}

static hodei_status tpl_row_fill(tpl_row *r, const PGresult *res, int row, hodei_err *err)
{
    memset(r, 0, sizeof *r);
    r->t = (Hodei__V1__Template)HODEI__V1__TEMPLATE__INIT;
    r->t.spec = (Hodei__V1__JobSpec *)hodei_pb_unpack_hex(&hodei__v1__job_spec__descriptor,
                                                          hodei_db_get_str(res, row, C_SPEC_HEX));
    r->params_text = strdup(hodei_db_get_str(res, row, C_PARAMS));
    r->name = strdup(hodei_db_get_str(res, row, C_NAME));
    r->description = strdup(hodei_db_get_str(res, row, C_DESCRIPTION));
    r->ns = strdup(hodei_db_get_str(res, row, C_NAMESPACE));
    if (!r->t.spec || !r->params_text || !r->name || !r->description || !r->ns) {
        tpl_row_free(r);
        return hodei_err_set(err, HODEI_ERR_INTERNAL, "template %s: stored spec does not decode",
                             hodei_db_get_str(res, row, C_NAME));
    }
    for (char *p = r->params_text; *p && r->t.n_parameters < HODEI_TEMPLATE_PARAMS_MAX;) {
        r->params[r->t.n_parameters++] = p;
        p += strcspn(p, " ");
        if (*p)
            *p++ = '\0';
    }
    r->t.parameters = r->params;
    r->t.name = r->name;
    r->t.description = r->description;
    r->t.namespace_ = r->ns;
    r->t.version = (int32_t)hodei_db_get_i64(res, row, C_VERSION);
    hodei_pb_time(&r->created, hodei_db_get_i64(res, row, C_CREATED_US));
    r->t.created_at = &r->created;
    return HODEI_OK;
}

/* The template named `name` in ns: HODEI_ERR_NOT_FOUND when there is none. */
static hodei_status tpl_read(edge *e, const char *ns, const char *name, tpl_row *out,
                             hodei_err *err)
{
    PGconn *conn = NULL;
    PGresult *res = NULL;
    const char *params[2] = {name, ns};
    hodei_status st = edge_db_acquire(e, &conn, err);
    if (st != HODEI_OK)
        return st;
    st =
        hodei_db_exec(conn, "SELECT " TPL_COLS " FROM templates WHERE namespace = $2 AND name = $1",
                      2, params, &res, err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0)
        st = hodei_err_set(err, HODEI_ERR_NOT_FOUND, "template %s not found", name);
    else
        st = tpl_row_fill(out, res, 0, err);
    PQclear(res);
    return st;
}

/* The template a request names in the namespace it asks for (a key's first
 * by default): false after answering the call with the error (a bad name, a
 * namespace the key may not use, none such, the database). */
static bool tpl_lookup(hodei_rpc_call *call, edge *e, const char *asked_ns, const char *name,
                       tpl_row *row)
{
    hodei_err err;
    const char *ns = NULL;
    hodei_status st = tpl_check_name("name", name, &err);
    if (st == HODEI_OK)
        st = hodei_identity_pick_namespace(edge_caller(call), "namespace", asked_ns, &ns, &err);
    if (st == HODEI_OK)
        st = tpl_read(e, ns, name, row, &err);
    if (st != HODEI_OK)
        hodei_rpc_call_fail_err(call, &err);
    return st == HODEI_OK;
}

/* ---------------------------------------------------------- CreateTemplate */

static hodei_status tpl_create_check(const Hodei__V1__Template *t, hodei_err *err)
{
    if (!t)
        return hodei_err_set(err, HODEI_ERR_INVALID, "template: required");
    hodei_status st = tpl_check_name("template.name", t->name ? t->name : "", err);
    if (st != HODEI_OK)
        return st;
    if (t->description && strlen(t->description) > HODEI_TEMPLATE_DESCRIPTION_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "template.description: at most %d bytes",
                             HODEI_TEMPLATE_DESCRIPTION_MAX);
    if (t->n_parameters > HODEI_TEMPLATE_PARAMS_MAX)
        return hodei_err_set(err, HODEI_ERR_INVALID, "template.parameters: at most %d, got %zu",
                             HODEI_TEMPLATE_PARAMS_MAX, t->n_parameters);
    for (size_t i = 0; i < t->n_parameters; i++) {
        const char *p = t->parameters[i] ? t->parameters[i] : "";
        if (!hodei_template_param_valid(p, strlen(p)))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "template.parameters: '%.80s' is not a name ([A-Za-z_]"
                                 "[A-Za-z0-9_]*, at most %d)",
                                 p, HODEI_TEMPLATE_PARAM_NAME_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(t->parameters[j], p) == 0)
                return hodei_err_set(err, HODEI_ERR_INVALID, "template.parameters: '%s' twice", p);
    }
    if (!t->spec)
        return hodei_err_set(err, HODEI_ERR_INVALID, "template.spec: required");
    if ((st = hodei_job_spec_validate(t->spec, err)) != HODEI_OK)
        return tpl_err_prefix(err, "template.");
    hodei_template_subst use = {.names = t->parameters, .n = t->n_parameters};
    hodei_template_subst_spec(&use, t->spec);
    for (size_t i = 0; i < t->n_parameters; i++)
        if (!use.used[i])
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "template.parameters: '%s' appears nowhere in the spec as ${%s}",
                                 t->parameters[i], t->parameters[i]);
    return HODEI_OK;
}

static const char create_sql[] =
    "WITH t AS (INSERT INTO templates (namespace, name, description, spec, parameters)"
    "  VALUES ($5, $1, $2, decode($3, 'hex'), $4::text[])"
    "  ON CONFLICT (namespace, name) DO UPDATE SET description = EXCLUDED.description,"
    "  spec = EXCLUDED.spec, parameters = EXCLUDED.parameters,"
    "  version = templates.version + 1, updated_at = now()"
    "  RETURNING namespace, name, version,"
    "  (extract(epoch FROM created_at) * 1000000)::bigint AS us),"
    " a AS (" EDGE_AUDIT_INSERT " SELECT $6, $7, $8, namespace,"
    "  CASE WHEN version = 1 THEN 'template.create' ELSE 'template.replace' END,"
    "  'template', name, jsonb_build_object('version', version, 'parameters', $4::text[]) FROM t)"
    " SELECT version, us FROM t";

static hodei_status tpl_store(edge *e, hodei_rpc_call *call, const char *ns,
                              const Hodei__V1__Template *t, PGresult **res, hodei_err *err)
{
    hodei_buf hex, arr;
    PGconn *conn = NULL;
    edge_actor a;
    edge_actor_of(edge_caller(call), &a);
    hodei_buf_init(&hex, 2 * HODEI_JOB_SPEC_PACKED_MAX + 1);
    hodei_buf_init(&arr, HODEI_TEMPLATE_PARAMS_MAX * (HODEI_TEMPLATE_PARAM_NAME_MAX + 4) + 4);
    hodei_status st = HODEI_OK;
    hodei_sqlarr_begin(&arr);
    for (size_t i = 0; i < t->n_parameters; i++)
        hodei_sqlarr_str(&arr, t->parameters[i]);
    if (!hodei_pb_hex(&hex, &t->spec->base) || !hodei_sqlarr_end(&arr))
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "out of memory");
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, err);
    if (st == HODEI_OK) {
        const char *params[8] = {t->name,
                                 t->description ? t->description : "",
                                 hex.data ? hex.data : "",
                                 arr.data,
                                 ns,
                                 a.actor,
                                 a.actor_id,
                                 a.peer};
        st = hodei_db_exec(conn, create_sql, 8, params, res, err);
        edge_db_release(e, conn, st);
    }
    hodei_buf_fini(&hex);
    hodei_buf_fini(&arr);
    return st;
}

static void tpl_create(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__CreateTemplateRequest *req = (const Hodei__V1__CreateTemplateRequest *)msg;
    PGresult *res = NULL;
    const char *ns = NULL;
    hodei_err err;
    hodei_status st = tpl_create_check(req->template_, &err);
    if (st == HODEI_OK)
        st = hodei_identity_pick_namespace(edge_caller(call), "template.namespace",
                                           req->template_->namespace_, &ns, &err);
    if (st == HODEI_OK)
        st = tpl_store(e, call, ns, req->template_, &res, &err);
    if (st != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return;
    }
    Hodei__V1__CreateTemplateResponse resp = HODEI__V1__CREATE_TEMPLATE_RESPONSE__INIT;
    Hodei__V1__Template t = *req->template_;
    Hodei__V1__Timestamp created;
    t.version = (int32_t)hodei_db_get_i64(res, 0, 0);
    t.namespace_ = (char *)ns;
    hodei_pb_time(&created, hodei_db_get_i64(res, 0, 1));
    t.created_at = &created;
    resp.template_ = &t;
    HLOG_INFO("template %s: version %d stored", t.name, t.version);
    hodei_rpc_call_reply(call, &resp.base);
    PQclear(res);
}

/* ------------------------------------------------------------- GetTemplate */

static void tpl_get(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__GetTemplateRequest *req = (const Hodei__V1__GetTemplateRequest *)msg;
    tpl_row row;
    if (!tpl_lookup(call, e, req->namespace_, req->name ? req->name : "", &row))
        return;
    Hodei__V1__GetTemplateResponse resp = HODEI__V1__GET_TEMPLATE_RESPONSE__INIT;
    resp.template_ = &row.t;
    hodei_rpc_call_reply(call, &resp.base);
    tpl_row_free(&row);
}

/* ----------------------------------------------------------- ListTemplates */

/* Column of the query's row count before the byte cut (page_total_). */
#define C_PAGE_TOTAL (C_NAMESPACE + 1)

/* The page: at most page_size templates, ending before the reply (its
 * templates and its page token) would pass budget, and at least one. res
 * holds the query's first rows (up to one past page_size) cut where their
 * stored bytes pass the budget; C_PAGE_TOTAL counts the rows before that
 * cut, so a template left out by either cut makes a next page. */
static void tpl_list_reply(hodei_rpc_call *call, const PGresult *res, int page_size, size_t budget)
{
    Hodei__V1__ListTemplatesResponse resp = HODEI__V1__LIST_TEMPLATES_RESPONSE__INIT;
    int max = PQntuples(res) > page_size ? page_size : PQntuples(res);
    int64_t total = PQntuples(res) > 0 ? hodei_db_get_i64(res, 0, C_PAGE_TOTAL) : 0;
    tpl_row *rows = calloc((size_t)max + 1, sizeof *rows);
    Hodei__V1__Template **ptrs = calloc((size_t)max + 1, sizeof *ptrs);
    hodei_err err = {0};
    int filled = 0, n = 0;
    size_t used = 0;
    if (!rows || !ptrs) {
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED, "out of memory");
        goto out;
    }
    for (; filled < max; filled++) {
        if (tpl_row_fill(&rows[filled], res, filled, &err) != HODEI_OK) {
            hodei_rpc_call_fail_err(call, &err);
            goto out;
        }
        size_t item =
            edge_page_field_bytes(protobuf_c_message_get_packed_size(&rows[filled].t.base), true);
        /* a page that ends here carries this name as its token */
        size_t tok =
            filled + 1 < total ? edge_page_field_bytes(strlen(rows[filled].t.name), false) : 0;
        if (filled > 0 && used + item + tok > budget) {
            filled++; /* freed below */
            break;
        }
        used += item;
        ptrs[filled] = &rows[filled].t;
        n = filled + 1;
    }
    resp.n_templates = (size_t)n;
    resp.templates = ptrs;
    resp.next_page_token = n < total && n > 0 ? rows[n - 1].t.name : "";
    hodei_rpc_call_reply(call, &resp.base);
out:
    for (int i = 0; rows && i < filled; i++)
        tpl_row_free(&rows[i]);
    free(rows);
    free(ptrs);
}

static void tpl_list(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__ListTemplatesRequest *req = (const Hodei__V1__ListTemplatesRequest *)msg;
    const char *after = req->page_token ? req->page_token : "";
    char limit[TPL_INT_TEXT_MAX];
    PGconn *conn = NULL;
    PGresult *res = NULL;
    hodei_err err;
    const char *ns = NULL;
    hodei_status st =
        hodei_identity_pick_namespace(edge_caller(call), "namespace", req->namespace_, &ns, &err);
    int page_size = req->page_size == 0 ? TPL_LIST_DEFAULT : req->page_size;
    if (st != HODEI_OK)
        ; /* answered below */
    else if (req->page_size < 0 || req->page_size > TPL_LIST_MAX)
        st = hodei_err_set(&err, HODEI_ERR_INVALID,
                           "page_size: must be between 0 (%d) and %d, got %d", TPL_LIST_DEFAULT,
                           TPL_LIST_MAX, req->page_size);
    else if (after[0])
        st = tpl_check_name("page_token", after, &err);
    if (st == HODEI_OK)
        st = edge_db_acquire(e, &conn, &err);
    if (st != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return;
    }
    snprintf(limit, sizeof limit, "%d", page_size + 1);
    char budget[TPL_INT_TEXT_MAX];
    snprintf(budget, sizeof budget, "%" PRId64, e->cfg->reply_page_bytes_max);
    const char *params[4] = {after, limit, ns, budget};
    /* Bounded as the reply is: of the first page_size + 1 rows, only those
     * starting within the byte budget by their stored bytes (below their
     * reply bytes) are read out; page_total_ counts them all. */
    st = hodei_db_exec(
        conn,
        "SELECT " TPL_COLS ", page_total_ FROM ("
        " SELECT *, count(*) OVER () AS page_total_,"
        "  sum(est_) OVER (ORDER BY name ROWS UNBOUNDED PRECEDING) - est_ AS page_start_"
        " FROM (SELECT templates.*, octet_length(spec)::bigint + octet_length(description)"
        "  + octet_length(name) AS est_ FROM templates WHERE namespace = $3 AND name > $1"
        "  ORDER BY name LIMIT $2::int) s) p"
        " WHERE page_start_ <= $4::bigint ORDER BY name",
        4, params, &res, &err);
    edge_db_release(e, conn, st);
    if (st != HODEI_OK) {
        hodei_rpc_call_fail_err(call, &err);
        return;
    }
    tpl_list_reply(call, res, page_size, (size_t)e->cfg->reply_page_bytes_max);
    PQclear(res);
}

/* ------------------------------------------------------------- RunTemplate */

/* values[i] for row->params[i], from the request's map: every declared
 * parameter given, nothing else. */
static hodei_status tpl_values(const Hodei__V1__RunTemplateRequest *req, const tpl_row *row,
                               const char **values, hodei_err *err)
{
    for (size_t i = 0; i < req->n_parameters; i++) {
        const char *k = req->parameters[i]->key ? req->parameters[i]->key : "";
        const char *v = req->parameters[i]->value ? req->parameters[i]->value : "";
        size_t j = 0;
        while (j < row->t.n_parameters && strcmp(row->params[j], k) != 0)
            j++;
        if (j == row->t.n_parameters)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "parameters: '%.80s' is not a parameter of template %s", k,
                                 row->t.name);
        if (strlen(v) > HODEI_TEMPLATE_VALUE_MAX)
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "parameters: the value of '%s' is over %d bytes", k,
                                 HODEI_TEMPLATE_VALUE_MAX);
        values[j] = v;
    }
    for (size_t j = 0; j < row->t.n_parameters; j++)
        if (!values[j])
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "parameters: '%s' is required by template %s", row->params[j],
                                 row->t.name);
    return HODEI_OK;
}

/* The submitter's answer to RunTemplate once the job is committed. */
static void tpl_run_reply(hodei_rpc_call *call, const Hodei__V1__QueueJobResponse *queued)
{
    Hodei__V1__RunTemplateResponse resp = HODEI__V1__RUN_TEMPLATE_RESPONSE__INIT;
    resp.job_id = queued->job_id;
    hodei_rpc_call_reply(call, &resp.base);
}

static void tpl_run(hodei_rpc_call *call, const ProtobufCMessage *msg, void *ctx)
{
    edge *e = ctx;
    const Hodei__V1__RunTemplateRequest *req = (const Hodei__V1__RunTemplateRequest *)msg;
    const char *name = req->name ? req->name : "";
    const char *values[HODEI_TEMPLATE_PARAMS_MAX] = {0};
    tpl_row row;
    hodei_err err;
    if (!tpl_lookup(call, e, req->namespace_, name, &row))
        return;
    hodei_status st = tpl_values(req, &row, values, &err);
    if (st == HODEI_OK) {
        hodei_template_subst fill = {
            .names = row.params, .n = row.t.n_parameters, .values = values};
        hodei_template_subst_spec(&fill, row.t.spec);
        if (fill.failed)
            st = hodei_err_set(&err, HODEI_ERR_INVALID,
                               "parameters: the filled-in spec is over %d bytes",
                               HODEI_JOB_SPEC_PACKED_MAX);
    }
    Hodei__V1__QueueJobRequest q = HODEI__V1__QUEUE_JOB_REQUEST__INIT;
    q.spec = row.t.spec;
    q.idempotency_key = req->idempotency_key;
    if (st == HODEI_OK && (st = hodei_queue_request_validate(&q, &err)) != HODEI_OK)
        tpl_err_prefix(&err, "with these parameters, ");
    if (st == HODEI_OK)
        st = secret_refs_check(e, row.ns, q.spec, &err);
    if (st != HODEI_OK)
        hodei_rpc_call_fail_err(call, &err);
    else
        submitter_enqueue_reply(e->submit, call, &q, row.ns, tpl_run_reply, row.t.name);
    tpl_row_free(&row);
}

hodei_status template_rpc_register(edge *e, hodei_err *err)
{
    const hodei_rpc_method methods[] = {
        {SVC "CreateTemplate", HODEI_RPC_UNARY, &hodei__v1__create_template_request__descriptor,
         tpl_create, NULL, NULL, e},
        {SVC "GetTemplate", HODEI_RPC_UNARY, &hodei__v1__get_template_request__descriptor, tpl_get,
         NULL, NULL, e},
        {SVC "ListTemplates", HODEI_RPC_UNARY, &hodei__v1__list_templates_request__descriptor,
         tpl_list, NULL, NULL, e},
        {SVC "RunTemplate", HODEI_RPC_UNARY, &hodei__v1__run_template_request__descriptor, tpl_run,
         NULL, NULL, e},
    };
    return hodei_rpc_server_add_all(e->server, methods, sizeof methods / sizeof methods[0], err);
}
