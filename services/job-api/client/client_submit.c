#include "client_submit.h"

#include "client_shares.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "edge_auth.h"
#include "hodei/assert.h"
#include "hodei/assign.h"
#include "hodei/buf.h"
#include "hodei/db.h"
#include "hodei/events.h"
#include "hodei/id.h"
#include "hodei/job_state.h"
#include "hodei/log.h"
#include "hodei/pb.h"
#include "hodei/sqlarr.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "hodei/v1/events.pb-c.h"

#define SUBMIT_WRITERS_MAX 16
#define SUBMIT_SQL_MAX (256u * 1024 * 1024) /* one group's parameters, all arrays */
#define SUBMIT_RECONNECT_WAIT_MS 2000
#define SUBMIT_STMT "hodei_submit_group"
#define SUBMIT_WORKERS_MAX 256 /* of this edge's workers, offered to the hand-off at submit */

/* One QueueJob waiting for its group's commit. Everything the SQL needs is
 * copied out of the request at enqueue time, so the request can go. */
typedef struct submit_item {
    struct submit_item *next;
    hodei_rpc_call *call;
    char id[HODEI_ID_BUF];
    char *name;
    char *spec_hex;
    int32_t priority;
    int32_t max_attempts;
    int64_t timeout_ms;
    int32_t cpu_millis;
    int64_t memory_bytes;
    int64_t storage_bytes;
    int32_t gpu_count;
    char *architecture;
    char *provider;
    char *image;
    char *constraints_json;
    char *labels_json;
    char *idem_key;                  /* NULL = none */
    char ns[HODEI_NS_BUF];           /* the job's namespace */
    char owner_key_id[HODEI_ID_BUF]; /* "" = none */
    char *owner;                     /* the key's name */
    char *actor;                     /* for the audit row: the key's name or cert:<name> */
    char *peer;
    char *who;             /* whose share of the queue it counts in (client_shares.h) */
    const char *action;    /* "job.queue" or "template.run" */
    char *detail_json;     /* the audit row's summary */
    submit_reply_fn reply; /* NULL = a QueueJobResponse */
    size_t bytes;          /* what this item holds: submit.queue_bytes_max, batch_bytes_max */
    /* Result. */
    struct submit_item *leader; /* same idempotency key earlier in the group */
    bool inserted;
    bool duplicate;
    char result_id[HODEI_ID_BUF];
    Hodei__V1__JobState result_state;
} submit_item;

struct submitter {
    submitter_opts opts;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    submit_item *head, *tail;
    size_t queued;
    size_t queued_bytes;
    submit_shares *shares; /* each caller's queued bytes (submit.queue_bytes_per_key) */
    bool stopping;
    int n_writers;
    pthread_t writers[SUBMIT_WRITERS_MAX];
};

typedef struct {
    submitter *s;
    PGconn *conn;
    submit_item **leaders; /* batch_max slots */
    /* Jobs given to this edge's idle workers in the group's transaction
     * (opts.dispatch), their RunJobs sent after the answers. */
    PGresult *pick, *runs; /* runs without pick: the worker's id in column HODEI_RUN_COLS */
    int *kept;
    size_t n_kept;
    char (*ids)[HODEI_ID_BUF]; /* SUBMIT_WORKERS_MAX: the workers streaming to this edge */
} writer_ctx;

/* ------------------------------------------------------------ enqueue side */

static char *map_json(void **entries, size_t n)
{
    /* Every protobuf-c map entry struct starts with base, key, value. */
    typedef struct {
        ProtobufCMessage base;
        char *key;
        char *value;
    } kv;
    hodei_buf b;
    hodei_buf_init(&b, 1u << 20);
    hodei_buf_putc(&b, '{');
    for (size_t i = 0; i < n; i++) {
        const kv *e = entries[i];
        if (i)
            hodei_buf_putc(&b, ',');
        hodei_buf_json_string(&b, e->key);
        hodei_buf_putc(&b, ':');
        hodei_buf_json_string(&b, e->value);
    }
    hodei_buf_putc(&b, '}');
    return hodei_buf_take(&b, NULL);
}

static char *pack_hex(const ProtobufCMessage *m)
{
    hodei_buf b;
    hodei_buf_init(&b, 4 * protobuf_c_message_get_packed_size(m) + 16);
    HODEI_ASSERT(hodei_pb_hex(&b, m));
    return hodei_buf_take(&b, NULL);
}

/* The audit row's summary: what was queued, never a value of the spec. */
static char *audit_detail(const Hodei__V1__JobSpec *spec, const char *template_name)
{
    hodei_buf b;
    hodei_buf_init(&b, 64u * 1024);
    hodei_buf_puts(&b, "{\"name\":");
    hodei_buf_json_string(&b, spec->name ? spec->name : "");
    hodei_buf_printf(&b, ",\"priority\":%d", (int)spec->priority);
    if (template_name) {
        hodei_buf_puts(&b, ",\"template\":");
        hodei_buf_json_string(&b, template_name);
    }
    if (spec->n_secret_refs > 0) {
        hodei_buf_puts(&b, ",\"secrets\":[");
        for (size_t i = 0; i < spec->n_secret_refs; i++) {
            if (i)
                hodei_buf_putc(&b, ',');
            hodei_buf_json_string(&b, spec->secret_refs[i]);
        }
        hodei_buf_putc(&b, ']');
    }
    hodei_buf_putc(&b, '}');
    return hodei_buf_take(&b, NULL);
}

static void item_who(submit_item *it, hodei_rpc_call *call, const char *ns)
{
    const hodei_identity *id = edge_caller(call);
    char actor[HODEI_CERT_SAN_BUF + 8];
    char who[SUBMIT_SHARE_WHO_BUF];
    hodei_identity_actor(id, actor, sizeof actor);
    submit_share_who(id, who);
    hodei_strlcpy(it->ns, ns, sizeof it->ns);
    hodei_strlcpy(it->owner_key_id, id->key_id, sizeof it->owner_key_id);
    it->owner = strdup(id->name);
    it->actor = strdup(actor);
    it->peer = strdup(id->peer);
    it->who = strdup(who);
    HODEI_ASSERT(it->owner && it->actor && it->peer && it->who);
}

static submit_item *item_from_request(const Hodei__V1__QueueJobRequest *req,
                                      int64_t default_timeout_ms)
{
    const Hodei__V1__JobSpec *spec = req->spec;
    const Hodei__V1__ResourceRequirements *res = spec->resources;
    submit_item *it = calloc(1, sizeof *it);
    HODEI_ASSERT(it);
    hodei_id_new(it->id);
    it->name = strdup(spec->name ? spec->name : "");
    it->spec_hex = pack_hex(&spec->base);
    it->priority = spec->priority;
    it->max_attempts = spec->max_attempts > 0 ? spec->max_attempts : 1;
    it->timeout_ms = spec->timeout_ms > 0 ? spec->timeout_ms : default_timeout_ms;
    if (res) {
        it->cpu_millis = (int32_t)(res->cpu_cores * 1000.0 + 0.5);
        it->memory_bytes = res->memory_bytes;
        it->storage_bytes = res->storage_bytes;
        it->gpu_count = res->gpu_count;
    }
    it->architecture = strdup(res && res->architecture ? res->architecture : "");
    it->provider = strdup(spec->provider ? spec->provider : "");
    it->image = strdup(spec->image ? spec->image : "");
    it->constraints_json = map_json((void **)spec->constraints, spec->n_constraints);
    it->labels_json = map_json((void **)spec->labels, spec->n_labels);
    it->idem_key =
        req->idempotency_key && req->idempotency_key[0] ? strdup(req->idempotency_key) : NULL;
    HODEI_ASSERT(it->name && it->architecture && it->provider && it->image);
    return it;
}

static size_t str_bytes(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

/* The memory the item holds (its strings are what a large spec makes
 * large), which is also about what its group's parameters carry. */
static size_t item_bytes(const submit_item *it)
{
    return sizeof *it + str_bytes(it->name) + str_bytes(it->spec_hex) +
           str_bytes(it->architecture) + str_bytes(it->provider) + str_bytes(it->image) +
           str_bytes(it->constraints_json) + str_bytes(it->labels_json) + str_bytes(it->idem_key) +
           str_bytes(it->owner) + str_bytes(it->actor) + str_bytes(it->peer) + str_bytes(it->who) +
           str_bytes(it->detail_json);
}

static void item_free(submit_item *it)
{
    free(it->name);
    free(it->spec_hex);
    free(it->architecture);
    free(it->provider);
    free(it->image);
    free(it->constraints_json);
    free(it->labels_json);
    free(it->idem_key);
    free(it->owner);
    free(it->actor);
    free(it->peer);
    free(it->who);
    free(it->detail_json);
    free(it);
}

/* The queue's gauges, under s->mu. */
static void submit_gauges(submitter *s)
{
    hodei_metric_set(s->opts.waiting_jobs, (int64_t)s->queued);
    hodei_metric_set(s->opts.waiting_bytes, (int64_t)s->queued_bytes);
    hodei_metric_set(s->opts.waiting_keys, (int64_t)submit_shares_keys(s->shares));
}

/* Answers a QueueJob the queue has no room for: its count (jobs =
 * submit.queue_max), its bytes (share OK), the caller's share of them, or
 * the table of callers. */
static void submit_refuse(submitter *s, hodei_rpc_call *call, const submit_item *it, size_t jobs,
                          size_t waiting, submit_share_verdict share, size_t held)
{
    if (s->opts.refused)
        hodei_metric_add(s->opts.refused, 1);
    if (jobs >= s->opts.queue_max)
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "submit queue is full (%zu jobs waiting: submit.queue_max); retry"
                            " with backoff",
                            jobs);
    else if (share == SUBMIT_SHARE_OVER)
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "this caller's share of the submit queue is used (%zu bytes of its"
                            " jobs waiting, this one %zu; at most %zu: submit.queue_bytes_per_key);"
                            " retry with backoff",
                            held, it->bytes, s->opts.queue_bytes_per_key);
    else if (share == SUBMIT_SHARE_FULL)
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "submit queue is full (jobs of %d callers waiting, the most one edge"
                            " keeps); retry with backoff",
                            SUBMIT_SHARE_KEYS_MAX);
    else
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "submit queue is full (%zu bytes of jobs waiting, this one %zu; at"
                            " most %zu: submit.queue_bytes_max); retry with backoff",
                            waiting, it->bytes, s->opts.queue_bytes_max);
}

void submitter_enqueue(submitter *s, hodei_rpc_call *call, const Hodei__V1__QueueJobRequest *req,
                       const char *ns)
{
    submitter_enqueue_reply(s, call, req, ns, NULL, NULL);
}

void submitter_enqueue_reply(submitter *s, hodei_rpc_call *call,
                             const Hodei__V1__QueueJobRequest *req, const char *ns,
                             submit_reply_fn reply, const char *template_name)
{
    pthread_mutex_lock(&s->mu);
    bool full = s->queued >= s->opts.queue_max;
    bool stopping = s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (stopping) {
        hodei_rpc_call_fail(call, HODEI_GRPC_UNAVAILABLE, "the server is shutting down; retry");
        return;
    }
    if (full) {
        if (s->opts.refused)
            hodei_metric_add(s->opts.refused, 1);
        hodei_rpc_call_fail(call, HODEI_GRPC_RESOURCE_EXHAUSTED,
                            "submit queue is full (%zu jobs waiting: submit.queue_max); retry"
                            " with backoff",
                            s->opts.queue_max);
        return;
    }
    submit_item *it = item_from_request(req, s->opts.default_timeout_ms);
    it->call = call;
    it->reply = reply;
    item_who(it, call, ns);
    it->action = template_name ? "template.run" : "job.queue";
    it->detail_json = audit_detail(req->spec, template_name);
    HODEI_ASSERT(it->detail_json);
    it->bytes = item_bytes(it);
    pthread_mutex_lock(&s->mu);
    size_t jobs = s->queued, waiting = s->queued_bytes, held = 0;
    submit_share_verdict share = SUBMIT_SHARE_OK;
    full = s->queued >= s->opts.queue_max || waiting + it->bytes > s->opts.queue_bytes_max;
    if (!full)
        share =
            submit_shares_take(s->shares, it->who, it->bytes, s->opts.queue_bytes_per_key, &held);
    if (full || share != SUBMIT_SHARE_OK) {
        pthread_mutex_unlock(&s->mu);
        submit_refuse(s, call, it, jobs, waiting, full ? SUBMIT_SHARE_OK : share, held);
        item_free(it);
        return;
    }
    s->queued_bytes += it->bytes;
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->queued++;
    submit_gauges(s);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ------------------------------------------------------------- writer side */

static const char insert_sql[] =
    "WITH input AS ("
    "  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::int[],"
    "                       $6::bigint[], $7::int[], $8::bigint[], $9::bigint[], $10::int[],"
    "                       $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],"
    "                       $16::text[], $17::uuid[], $18::text[], $19::text[], $20::text[],"
    "                       $21::text[], $22::text[], $23::text[])"
    "    WITH ORDINALITY AS t(id, name, spec, priority, max_attempts, timeout_ms, cpu_millis,"
    "                         memory_bytes, storage_bytes, gpu_count, architecture, provider,"
    "                         constraints, labels, idem, namespace, owner_key_id, owner, actor,"
    "                         peer, action, detail, image, ord)"
    "), ins AS ("
    "  INSERT INTO jobs (id, name, state, spec, priority, max_attempts, timeout_ms, cpu_millis,"
    "                    memory_bytes, storage_bytes, gpu_count, architecture, provider,"
    "                    constraints, labels, idempotency_key, namespace, owner_key_id, owner,"
    "                    image)"
    "  SELECT id, name, 'PENDING', decode(spec, 'hex'), priority, max_attempts, timeout_ms,"
    "         cpu_millis, memory_bytes, storage_bytes, gpu_count, architecture, provider,"
    "         constraints::jsonb, labels::jsonb, idem, namespace, owner_key_id, owner, image"
    "  FROM input ORDER BY ord"
    "  ON CONFLICT (namespace, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING"
    "  RETURNING id"
    "), au AS ("
    "  INSERT INTO audit_log (actor, actor_id, peer, namespace, action, object_type, object_id,"
    "                         detail)"
    "  SELECT i.actor, coalesce(i.owner_key_id::text, ''), i.peer, i.namespace, i.action, 'job',"
    "         i.id::text, i.detail::jsonb"
    "  FROM input i JOIN ins USING (id) ORDER BY i.ord"
    "), ob AS (" HODEI_OUTBOX_INSERT_SQL(
        "$24", "e.aggregate_id::uuid IN (SELECT id FROM ins)") ")"
                                                               " SELECT id::text FROM ins";

#define INSERT_ARRAYS 23 /* $1..$23; $24: the JobQueued events */
#define INSERT_NPARAMS 24

typedef struct {
    hodei_buf arr[INSERT_ARRAYS];
    hodei_outbox_rows events; /* JobQueued, one per row, written for the rows inserted */
} group_params;

static hodei_status group_build_params(submit_item **items, size_t n, group_params *g,
                                       hodei_err *err)
{
    hodei_status st = HODEI_OK;
    for (int p = 0; p < INSERT_ARRAYS; p++) {
        hodei_buf_init(&g->arr[p], SUBMIT_SQL_MAX);
        hodei_sqlarr_begin(&g->arr[p]);
    }
    hodei_outbox_rows_init(&g->events, SUBMIT_SQL_MAX);
    for (size_t i = 0; i < n && st == HODEI_OK; i++) {
        const submit_item *it = items[i];
        hodei_sqlarr_str(&g->arr[0], it->id);
        hodei_sqlarr_str(&g->arr[1], it->name);
        hodei_sqlarr_str(&g->arr[2], it->spec_hex);
        hodei_sqlarr_i64(&g->arr[3], it->priority);
        hodei_sqlarr_i64(&g->arr[4], it->max_attempts);
        hodei_sqlarr_i64(&g->arr[5], it->timeout_ms);
        hodei_sqlarr_i64(&g->arr[6], it->cpu_millis);
        hodei_sqlarr_i64(&g->arr[7], it->memory_bytes);
        hodei_sqlarr_i64(&g->arr[8], it->storage_bytes);
        hodei_sqlarr_i64(&g->arr[9], it->gpu_count);
        hodei_sqlarr_str(&g->arr[10], it->architecture);
        hodei_sqlarr_str(&g->arr[11], it->provider);
        hodei_sqlarr_str(&g->arr[12], it->constraints_json);
        hodei_sqlarr_str(&g->arr[13], it->labels_json);
        hodei_sqlarr_str(&g->arr[14], it->idem_key);
        hodei_sqlarr_str(&g->arr[15], it->ns);
        hodei_sqlarr_str(&g->arr[16], it->owner_key_id[0] ? it->owner_key_id : NULL);
        hodei_sqlarr_str(&g->arr[17], it->owner);
        hodei_sqlarr_str(&g->arr[18], it->actor);
        hodei_sqlarr_str(&g->arr[19], it->peer);
        hodei_sqlarr_str(&g->arr[20], it->action);
        hodei_sqlarr_str(&g->arr[21], it->detail_json);
        hodei_sqlarr_str(&g->arr[22], it->image);
        st = hodei_event_job_queued(HODEI_OUTBOX_ADD(&g->events), it->id, it->priority,
                                    it->provider, err);
    }
    bool ok = true;
    for (int p = 0; p < INSERT_ARRAYS; p++)
        ok = hodei_sqlarr_end(&g->arr[p]) && ok;
    if (st == HODEI_OK && !ok)
        st = hodei_err_set(err, HODEI_ERR_LIMIT, "group too large");
    return st;
}

static void group_params_fini(group_params *g)
{
    for (int p = 0; p < INSERT_ARRAYS; p++)
        hodei_buf_fini(&g->arr[p]);
    hodei_outbox_rows_fini(&g->events);
}

/* Marks items whose idempotency key (in the same namespace) repeats an
 * earlier item of the same group as followers; returns the leaders (the
 * rows actually sent). */
static size_t group_dedupe(submit_item **items, size_t n, submit_item **leaders)
{
    size_t nl = 0;
    for (size_t i = 0; i < n; i++) {
        submit_item *it = items[i];
        it->leader = NULL;
        for (size_t j = 0; it->idem_key && j < nl; j++) {
            if (leaders[j]->idem_key && strcmp(leaders[j]->idem_key, it->idem_key) == 0 &&
                strcmp(leaders[j]->ns, it->ns) == 0) {
                it->leader = leaders[j];
                break;
            }
        }
        if (!it->leader)
            leaders[nl++] = it;
    }
    return nl;
}

static submit_item *group_find(submit_item **leaders, size_t nl, size_t *hint, const char *id)
{
    if (*hint < nl && strcmp(leaders[*hint]->id, id) == 0)
        return leaders[(*hint)++];
    for (size_t i = 0; i < nl; i++) {
        if (strcmp(leaders[i]->id, id) == 0) {
            *hint = i + 1;
            return leaders[i];
        }
    }
    return NULL;
}

/* res: one column of inserted job ids (usually in the group's order, which
 * the hint makes cheap; any order works). */
static void group_mark_inserted(submit_item **leaders, size_t nl, const PGresult *res)
{
    size_t hint = 0;
    for (size_t i = 0; i < nl; i++)
        leaders[i]->inserted = false;
    for (int r = 0; r < PQntuples(res); r++) {
        submit_item *it = group_find(leaders, nl, &hint, PQgetvalue(res, r, 0));
        if (!it)
            continue;
        it->inserted = true;
        memcpy(it->result_id, it->id, HODEI_ID_BUF);
        it->result_state = HODEI__V1__JOB_STATE__JOB_STATE_PENDING;
        it->duplicate = false;
    }
}

/* Leaders with a key that were not inserted met an earlier job with that
 * key: answer with that job. */
static hodei_status group_resolve_duplicates(PGconn *conn, submit_item **leaders, size_t nl,
                                             hodei_err *err)
{
    hodei_buf keys, nss;
    hodei_buf_init(&keys, SUBMIT_SQL_MAX);
    hodei_buf_init(&nss, SUBMIT_SQL_MAX);
    hodei_sqlarr_begin(&keys);
    hodei_sqlarr_begin(&nss);
    size_t missing = 0;
    for (size_t i = 0; i < nl; i++) {
        if (!leaders[i]->inserted && leaders[i]->idem_key) {
            hodei_sqlarr_str(&keys, leaders[i]->idem_key);
            hodei_sqlarr_str(&nss, leaders[i]->ns);
            missing++;
        }
    }
    hodei_sqlarr_end(&keys);
    hodei_sqlarr_end(&nss);
    hodei_status st = HODEI_OK;
    if (missing == 0)
        goto out;
    const char *params[2] = {keys.data, nss.data};
    PGresult *res = NULL;
    st = hodei_db_exec(conn,
                       "SELECT j.idempotency_key, j.id::text, j.state, j.namespace FROM jobs j"
                       " JOIN unnest($1::text[], $2::text[]) AS k(idem, ns)"
                       "   ON j.namespace = k.ns AND j.idempotency_key = k.idem",
                       2, params, &res, err);
    if (st != HODEI_OK)
        goto out;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *key = PQgetvalue(res, r, 0);
        const char *ns = PQgetvalue(res, r, 3);
        for (size_t i = 0; i < nl; i++) {
            submit_item *it = leaders[i];
            if (it->inserted || !it->idem_key || strcmp(it->idem_key, key) != 0 ||
                strcmp(it->ns, ns) != 0)
                continue;
            hodei_strlcpy(it->result_id, PQgetvalue(res, r, 1), sizeof it->result_id);
            if (!hodei_job_state_parse(PQgetvalue(res, r, 2), &it->result_state))
                it->result_state = HODEI__V1__JOB_STATE__JOB_STATE_UNSPECIFIED;
            it->duplicate = true;
        }
    }
    PQclear(res);
out:
    hodei_buf_fini(&keys);
    hodei_buf_fini(&nss);
    return st;
}

static hodei_status writer_connect(writer_ctx *w, hodei_err *err)
{
    if (w->conn)
        return HODEI_OK;
    hodei_status st =
        hodei_db_connect(w->s->opts.db_url, w->s->opts.connect_timeout_ms, &w->conn, err);
    if (st == HODEI_OK)
        st = hodei_db_prepare(w->conn, SUBMIT_STMT, insert_sql, INSERT_NPARAMS, err);
    if (st != HODEI_OK && w->conn) {
        PQfinish(w->conn);
        w->conn = NULL;
    }
    return st;
}

static void writer_drop(writer_ctx *w)
{
    if (w->conn) {
        PQfinish(w->conn);
        w->conn = NULL;
    }
}

/* After a lost connection the group's fate is unknown: the commit may have
 * happened. The ids were chosen here, so look them up on a new connection. */
static hodei_status group_resolve_in_doubt(writer_ctx *w, submit_item **leaders, size_t nl,
                                           hodei_err *err)
{
    int64_t until = hodei_mono_ms() + SUBMIT_RECONNECT_WAIT_MS;
    hodei_status st;
    do {
        writer_drop(w);
        st = writer_connect(w, err);
        if (st == HODEI_OK)
            break;
        hodei_sleep_ms(100);
    } while (hodei_mono_ms() < until);
    if (st != HODEI_OK)
        return st;
    hodei_buf ids;
    hodei_buf_init(&ids, SUBMIT_SQL_MAX);
    hodei_sqlarr_begin(&ids);
    for (size_t i = 0; i < nl; i++)
        hodei_sqlarr_str(&ids, leaders[i]->id);
    hodei_sqlarr_end(&ids);
    const char *params[1] = {ids.data};
    PGresult *res = NULL;
    st = hodei_db_exec(w->conn, "SELECT id::text FROM jobs WHERE id = ANY($1::uuid[])", 1, params,
                       &res, err);
    hodei_buf_fini(&ids);
    if (st != HODEI_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "database connection lost; not queued");
    }
    /* The statement is atomic: either every row is there or none. */
    HLOG_WARN("connection lost during commit; the group of %zu was committed", nl);
    group_mark_inserted(leaders, nl, res);
    PQclear(res);
    return group_resolve_duplicates(w->conn, leaders, nl, err);
}

/* The group's insert alone, one statement committing by itself. */
static hodei_status group_insert(writer_ctx *w, const char **params, PGresult **res, hodei_err *err)
{
    return hodei_db_exec_prepared(w->conn, SUBMIT_STMT, INSERT_NPARAMS, params, res, err);
}

/* The JobQueued events of the group's jobs still PENDING once the
 * assignments are written: $1 the events (one per job), $2 the jobs. A job
 * given to a worker at submit has none: nothing needs it (its JobAssigned
 * commits with it, and a JobQueued would only wake a scheduler for a pass
 * with nothing to do). */
static const char queued_events_sql[] =
    HODEI_OUTBOX_INSERT_SQL("$1", "e.aggregate_id::uuid IN (SELECT id FROM jobs"
                                  " WHERE id = ANY($2::uuid[]) AND state = 'PENDING')");

/* The group's insert with the hand-off to this edge's idle workers, in one
 * transaction: BEGIN, the insert (without its events) and the pick in one
 * round trip, then the assignments, the JobQueued events of the jobs left
 * PENDING and COMMIT in another (hodei/assign.h, "at submit"). *res: the
 * insert's rows. A failure rolls back; a broken connection is for the
 * caller to resolve. */
static hodei_status group_insert_assign(writer_ctx *w, const char **params, const char *workers,
                                        PGresult **res, hodei_err *err)
{
    const char *pick_params[HODEI_SUBMIT_PICK_NPARAMS] = {params[0], workers};
    const char *insert_params[INSERT_NPARAMS];
    memcpy(insert_params, params, sizeof insert_params);
    insert_params[INSERT_ARRAYS] = "{}"; /* no events here: see queued_events_sql */
    const hodei_db_cmd first[] = {
        {.sql = "BEGIN"},
        {.sql = insert_sql, .n_params = INSERT_NPARAMS, .params = insert_params, .res = res},
        {.sql = hodei_submit_pick_sql,
         .n_params = HODEI_SUBMIT_PICK_NPARAMS,
         .params = pick_params,
         .res = &w->pick},
    };
    hodei_status st = hodei_db_pipeline(w->conn, first, 3, err);
    if (st != HODEI_OK)
        goto out_rollback;
    hodei_assign_set set;
    hodei_assign_set_init(&set, SUBMIT_SQL_MAX);
    w->kept = calloc((size_t)PQntuples(w->pick) + 1, sizeof *w->kept);
    HODEI_ASSERT(w->kept);
    st = hodei_submit_pairs(w->pick, &set, w->kept, &w->n_kept, err);
    if (st == HODEI_OK) {
        const char *ap[HODEI_ASSIGN_NPARAMS];
        const char *qp[2] = {params[INSERT_ARRAYS], params[0]};
        hodei_db_cmd second[3];
        size_t n = 0;
        if (set.n > 0) {
            hodei_assign_set_params(&set, true, ap);
            second[n++] = (hodei_db_cmd){.sql = hodei_assign_sql,
                                         .n_params = HODEI_ASSIGN_NPARAMS,
                                         .params = ap,
                                         .res = &w->runs};
        }
        if (set.n < (size_t)PQntuples(*res))
            second[n++] = (hodei_db_cmd){.sql = queued_events_sql, .n_params = 2, .params = qp};
        second[n++] = (hodei_db_cmd){.sql = "COMMIT"};
        st = hodei_db_pipeline(w->conn, second, n, err);
    }
    hodei_assign_set_fini(&set);
    if (st == HODEI_OK)
        return HODEI_OK;
out_rollback:
    if (!hodei_db_status_broken(st))
        hodei_db_rollback(w->conn);
    PQclear(*res);
    *res = NULL;
    PQclear(w->runs);
    w->runs = NULL;
    return st;
}

/* A group of one job: the insert, the pick and assignment in one statement
 * (hodei_submit_one_sql), the JobQueued when no worker took it, and COMMIT,
 * all in one round trip. *res: the insert's rows. */
static hodei_status group_insert_assign_one(writer_ctx *w, const char **params, const char *job_id,
                                            size_t n_ids, const char *workers, PGresult **res,
                                            hodei_err *err)
{
    const char *insert_params[INSERT_NPARAMS];
    memcpy(insert_params, params, sizeof insert_params);
    insert_params[INSERT_ARRAYS] = "{}"; /* no events here: see queued_events_sql */
    hodei_outbox_rows assigned;
    char tau[32];
    hodei_outbox_rows_init(&assigned, SUBMIT_SQL_MAX);
    hodei_status st = hodei_submit_one_params(job_id, (const char(*)[HODEI_ID_BUF])w->ids, n_ids,
                                              &assigned, tau, err);
    if (st != HODEI_OK)
        goto out;
    const char *one_params[HODEI_SUBMIT_ONE_NPARAMS] = {job_id, workers, tau,
                                                        hodei_outbox_rows_param(&assigned)};
    const char *qp[2] = {params[INSERT_ARRAYS], params[0]};
    const hodei_db_cmd cmds[] = {
        {.sql = "BEGIN"},
        {.sql = insert_sql, .n_params = INSERT_NPARAMS, .params = insert_params, .res = res},
        {.sql = hodei_submit_one_sql,
         .n_params = HODEI_SUBMIT_ONE_NPARAMS,
         .params = one_params,
         .res = &w->runs},
        {.sql = queued_events_sql, .n_params = 2, .params = qp},
        {.sql = "COMMIT"},
    };
    st = hodei_db_pipeline(w->conn, cmds, sizeof cmds / sizeof cmds[0], err);
    if (st != HODEI_OK) {
        if (!hodei_db_status_broken(st))
            hodei_db_rollback(w->conn);
        PQclear(*res);
        *res = NULL;
        PQclear(w->runs);
        w->runs = NULL;
    }
out:
    hodei_outbox_rows_fini(&assigned);
    return st;
}

/* *unwritten: on failure, true when nothing of the group was committed and
 * the connection is intact (the database refused the statement). */
static hodei_status group_write(writer_ctx *w, submit_item **items, size_t n, bool *unwritten,
                                hodei_err *err)
{
    submit_item **leaders = w->leaders;
    size_t nl = group_dedupe(items, n, leaders);
    group_params g;
    hodei_buf workers;
    const submit_dispatch *dp = w->s->opts.dispatch;
    size_t n_ids = dp ? dp->workers(dp->ctx, w->ids, SUBMIT_WORKERS_MAX) : 0;
    hodei_buf_init(&workers, SUBMIT_SQL_MAX);
    hodei_sqlarr_begin(&workers);
    for (size_t i = 0; i < n_ids; i++)
        hodei_sqlarr_str(&workers, w->ids[i]);
    hodei_sqlarr_end(&workers);
    *unwritten = false;
    hodei_status st = group_build_params(leaders, nl, &g, err);
    *unwritten = st != HODEI_OK;
    if (st == HODEI_OK)
        st = writer_connect(w, err);
    if (st != HODEI_OK)
        goto out;
    const char *params[INSERT_NPARAMS];
    for (int p = 0; p < INSERT_ARRAYS; p++)
        params[p] = g.arr[p].data;
    params[INSERT_ARRAYS] = hodei_outbox_rows_param(&g.events);
    PGresult *res = NULL;
    int tries = 0;
    do { /* a deadlock rolled the group back: write it again */
        PQclear(w->pick);
        free(w->kept);
        w->pick = NULL;
        w->kept = NULL;
        w->n_kept = 0;
        if (n_ids == 0)
            st = group_insert(w, params, &res, err);
        else if (nl == 1)
            st = group_insert_assign_one(w, params, leaders[0]->id, n_ids, workers.data, &res, err);
        else
            st = group_insert_assign(w, params, workers.data, &res, err);
    } while (hodei_db_conflict_retry(st, &tries));
    if (hodei_db_status_broken(st)) {
        st = group_resolve_in_doubt(w, leaders, nl, err);
        goto out;
    }
    if (st != HODEI_OK) {
        *unwritten = true;
        goto out;
    }
    group_mark_inserted(leaders, nl, res);
    PQclear(res);
    st = group_resolve_duplicates(w->conn, leaders, nl, err);
    if (hodei_db_status_broken(st))
        writer_drop(w);
out:
    hodei_buf_fini(&workers);
    group_params_fini(&g);
    return st;
}

/* RunJob of each job the group gave an idle worker of this edge, after the
 * commit; then the pick is done with. */
static void group_dispatch(writer_ctx *w)
{
    const submit_dispatch *dp = w->s->opts.dispatch;
    for (int r = 0; w->runs && r < PQntuples(w->runs); r++) {
        const char *job = hodei_db_get_str(w->runs, r, HODEI_RUN_COL_JOB_ID);
        const char *worker = w->pick ? hodei_submit_worker_of(w->pick, w->kept, w->n_kept, job)
                                     : hodei_db_get_str(w->runs, r, HODEI_RUN_COLS);
        if (worker)
            dp->run(dp->ctx, worker, w->runs, r);
    }
    PQclear(w->runs);
    PQclear(w->pick);
    free(w->kept);
    w->runs = w->pick = NULL;
    w->kept = NULL;
    w->n_kept = 0;
}

static void group_answer(const submitter *s, submit_item **items, size_t n, hodei_status st,
                         const hodei_err *err)
{
    for (size_t i = 0; i < n; i++) {
        submit_item *it = items[i];
        const submit_item *src = it->leader ? it->leader : it;
        if (st != HODEI_OK) {
            hodei_rpc_call_fail(it->call, hodei_rpc_code_from_status(st), "job not queued: %s",
                                err->msg);
            continue;
        }
        if (!src->result_id[0]) {
            hodei_rpc_call_fail(it->call, HODEI_GRPC_ABORTED,
                                "job not queued: a concurrent submit with the same "
                                "idempotency key did not finish; retry");
            continue;
        }
        Hodei__V1__QueueJobResponse resp = HODEI__V1__QUEUE_JOB_RESPONSE__INIT;
        resp.job_id = (char *)src->result_id;
        resp.duplicate = it->leader ? true : src->duplicate;
        if (!resp.duplicate && s->opts.queued)
            hodei_metric_add(s->opts.queued, 1);
        resp.state = src->result_state;
        if (it->reply)
            it->reply(it->call, &resp);
        else
            hodei_rpc_call_reply(it->call, &resp.base);
    }
}

static size_t writer_take(submitter *s, submit_item **items)
{
    pthread_mutex_lock(&s->mu);
    while (!s->head && !s->stopping)
        pthread_cond_wait(&s->cv, &s->mu);
    size_t n = 0;
    size_t bytes = 0; /* a group holds at least one job, however large */
    while (s->head && n < s->opts.batch_max &&
           (n == 0 || bytes + s->head->bytes <= s->opts.batch_bytes_max)) {
        bytes += s->head->bytes;
        s->queued_bytes -= s->head->bytes;
        submit_shares_give(s->shares, s->head->who, s->head->bytes);
        items[n++] = s->head;
        s->head = s->head->next;
        s->queued--;
    }
    if (!s->head)
        s->tail = NULL;
    submit_gauges(s);
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Writes a group and answers its calls. A group is one statement, so a
 * row the database refuses would fail every job of the group, most of
 * them other callers': when a group of several fails with its connection
 * intact (nothing was committed), its jobs are written again one by one,
 * and only the job the database refuses fails. */
static void writer_run(writer_ctx *w, submit_item **items, size_t n)
{
    hodei_err err;
    hodei_err_clear(&err);
    bool unwritten = false;
    hodei_status st = group_write(w, items, n, &unwritten, &err);
    if (st != HODEI_OK && n > 1 && unwritten) {
        HLOG_WARN("submit group of %zu failed (%s); writing its jobs one by one", n, err.msg);
        group_dispatch(w);
        for (size_t i = 0; i < n; i++)
            writer_run(w, &items[i], 1);
        return;
    }
    if (st != HODEI_OK)
        HLOG_ERROR("submit group of %zu failed: %s", n, err.msg);
    /* RunJob first: the job starts sooner (each answer waits ~0.1 ms per
     * job handed off). */
    group_dispatch(w);
    group_answer(w->s, items, n, st, &err);
}

static void *writer_main(void *arg)
{
    writer_ctx w = {.s = arg, .conn = NULL};
    submitter *s = w.s;
    submit_item **items = calloc(s->opts.batch_max, sizeof *items);
    w.leaders = calloc(s->opts.batch_max, sizeof *w.leaders);
    w.ids = calloc(SUBMIT_WORKERS_MAX, sizeof *w.ids);
    HODEI_ASSERT(items && w.leaders && w.ids);
    for (;;) {
        size_t n = writer_take(s, items);
        if (n == 0)
            break;
        writer_run(&w, items, n);
        for (size_t i = 0; i < n; i++)
            item_free(items[i]);
    }
    free(items);
    free(w.leaders);
    free(w.ids);
    writer_drop(&w);
    return NULL;
}

hodei_status submitter_create(const submitter_opts *opts, submitter **out, hodei_err *err)
{
    if (opts->writers < 1 || opts->writers > SUBMIT_WRITERS_MAX || opts->batch_max < 1 ||
        opts->queue_bytes_max < SUBMIT_BYTES_MIN || opts->batch_bytes_max < SUBMIT_BYTES_MIN ||
        opts->queue_bytes_per_key < SUBMIT_BYTES_MIN ||
        opts->queue_bytes_per_key > opts->queue_bytes_max)
        return hodei_err_set(err, HODEI_ERR_INVALID, "submitter: bad options");
    submitter *s = calloc(1, sizeof *s);
    if (!s)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "submitter: out of memory");
    hodei_status st = submit_shares_create(SUBMIT_SHARE_KEYS_MAX, &s->shares, err);
    if (st != HODEI_OK) {
        free(s);
        return st;
    }
    s->opts = *opts;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (int i = 0; i < opts->writers; i++) {
        if (pthread_create(&s->writers[i], NULL, writer_main, s) != 0) {
            submitter_destroy(s);
            return hodei_err_set(err, HODEI_ERR_INTERNAL, "submitter: cannot start writer");
        }
        s->n_writers++;
    }
    *out = s;
    return HODEI_OK;
}

void submitter_destroy(submitter *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_writers; i++)
        pthread_join(s->writers[i], NULL);
    /* Writers drain the queue before they exit; anything left had no writer. */
    for (submit_item *it = s->head, *next; it; it = next) {
        next = it->next;
        hodei_rpc_call_fail(it->call, HODEI_GRPC_UNAVAILABLE, "the server is shutting down");
        item_free(it);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    submit_shares_destroy(s->shares);
    free(s);
}
