/* routes_jobs.c: the job queue over HTTP.
 *
 *   POST   /jobs                enqueue (201, the job); an array: a batch, all or
 *                                nothing (201, {"ids": [...], "count": n})
 *   GET    /jobs                list, filtered by ?state=&type=&limit=&offset=
 *   GET    /jobs/{id}           one job
 *   POST   /jobs/{id}/requeue   failed or canceled -> queued again
 *   DELETE /jobs/{id}           cancel (the job stays, in state canceled)
 * Jobs are shown in queue/job_json.h's shape, written by api/jobfmt.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "api/jobfmt.h"
#include "jobspec/jobspec.h"

#define MAX_LIST 1000

/* Answers 200 (or status) with job id read back from q. */
static void reply_job(vd_api *api, vd_queue *q, const char *id, int status, vd_http_resp *resp)
{
    vd_job job;
    memset(&job, 0, sizeof job);
    vd_error err;
    vd_status st = vd_queue_get(q, id, &job, &err);
    vd_api_queue_put(api, q, st);
    if (st != VD_OK) {
        vd_api_reply_queue_error(resp, st, &err);
        return;
    }
    size_t len = 0;
    char *text = vd_api_job_text(&job, &len);
    vd_job_clear(&job);
    if (!text) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        return;
    }
    vd_http_reply_text(resp, status, "application/json", text, len);
}

static int valid_id(vd_http_resp *resp, const char *id)
{
    if (strlen(id) <= VD_ID_LEN) return 1;
    vd_http_reply_error(resp, 404, "job_not_found",
                        "no job %.40s... (ids have at most %d characters)", id, VD_ID_LEN);
    return 0;
}

static void get_job(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    const char *id = vd_http_param(req, "id");
    if (!valid_id(resp, id)) return;
    vd_queue *q = vd_api_queue_get(api, resp);
    if (q) reply_job(api, q, id, 200, resp);
}

/* The enqueue rules shared with `visiond jobs enqueue` (jobspec.h), with this
 * server's media roots: 1 when the job may be enqueued, else answers resp
 * (422 with the refusal's code; 404 path_not_found for a missing path inside
 * the roots) and returns 0. */
static int check_job(vd_api *api, const char *type, const char *payload, int any_type,
                     vd_http_resp *resp)
{
    vd_job_check_opts co = {
        .roots = api->roots, .test_jobs = vd_job_test_types_enabled(), .any_type = any_type};
    vd_job_refusal why;
    vd_error err;
    vd_status st = vd_job_check(type, payload, &co, &why, &err);
    if (st == VD_OK) return 1;
    vd_http_reply_error(resp, st == VD_ERR_NOT_FOUND ? 404 : 422,
                        why.code ? why.code : "invalid_payload", "%s", vd_error_text(&err));
    return 0;
}

/* One job of a POST /jobs body: its options (strings borrowed from the JSON
 * body) and its payload text (owned). */
typedef struct {
    vd_enqueue_opts o;
    char *payload;
} job_item;

/* Reads the job object b into *it with the rules of a single POST /jobs (the
 * fields' ranges, then check_job). 1 when it may be enqueued; else resp holds
 * the refusal and it->payload is NULL. */
static int parse_item(vd_api *api, json_t *b, job_item *it, vd_http_resp *resp)
{
    static const char *const fields[] = {
        "type",          "payload",      "priority",      "max_retries", "timeout_ms", "delay_ms",
        "retry_base_ms", "retry_max_ms", "result_ttl_ms", "id",          "any_type",   NULL};
    memset(it, 0, sizeof *it);
    vd_enqueue_opts *o = &it->o;
    int64_t prio = 0, retries = 0, timeout = 0, delay = 0, base = 0, max = 0, ttl = 0;
    int any_type = 0;
    const int64_t DAY = 86400000LL, YEAR = 365 * DAY;
    if (!json_is_object(b)) {
        vd_http_reply_error(resp, 400, "invalid_type", "a job must be a JSON object");
        return 0;
    }
    if (!vd_api_only_fields(resp, b, fields) || !vd_api_get_string(resp, b, "type", 1, &o->type) ||
        !vd_api_get_string(resp, b, "id", 0, &o->id) ||
        !vd_api_get_int(resp, b, "priority", -1000000, 1000000, &prio) ||
        !vd_api_get_int(resp, b, "max_retries", 0, 1000, &retries) ||
        !vd_api_get_int(resp, b, "timeout_ms", 0, YEAR, &timeout) ||
        !vd_api_get_int(resp, b, "delay_ms", 0, YEAR, &delay) ||
        !vd_api_get_int(resp, b, "retry_base_ms", 0, DAY, &base) ||
        !vd_api_get_int(resp, b, "retry_max_ms", 0, YEAR, &max) ||
        !vd_api_get_int(resp, b, "result_ttl_ms", -1, 10 * YEAR, &ttl) ||
        !vd_api_get_bool(resp, b, "any_type", &any_type))
        return 0;
    json_t *p = json_object_get(b, "payload");
    if (p) {
        it->payload = json_dumps(p, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!it->payload) {
            vd_http_reply_error(resp, 500, "nomem", "out of memory");
            return 0;
        }
        o->payload = it->payload;
    }
    if (vd_job_type_valid(o->type) && !check_job(api, o->type, it->payload, any_type, resp)) {
        free(it->payload);
        it->payload = NULL;
        return 0;
    }
    o->priority = (int)prio;
    o->max_retries = (int)retries;
    o->timeout_ms = timeout;
    o->delay_ms = delay;
    o->retry_base_ms = base;
    o->retry_max_ms = max;
    o->result_ttl_ms = ttl;
    return 1;
}

static void enqueue_one(vd_api *api, json_t *b, vd_http_resp *resp)
{
    job_item it;
    if (!parse_item(api, b, &it, resp)) return;
    vd_enqueue_opts o = it.o;
    char *payload = it.payload;
    vd_queue *q = vd_api_queue_get(api, resp);
    if (!q) {
        free(payload);
        return;
    }
    vd_error err;
    vd_status st = VD_OK;
    if (o.id) { /* a caller-chosen id that exists is a conflict, not a bad value */
        vd_job old;
        memset(&old, 0, sizeof old);
        st = vd_queue_get(q, o.id, &old, &err);
        vd_job_clear(&old);
        if (st == VD_OK) {
            vd_api_queue_put(api, q, st);
            free(payload);
            vd_http_reply_error(resp, 409, "job_exists", "a job with id %.40s already exists",
                                o.id);
            return;
        }
        if (st != VD_ERR_NOT_FOUND) {
            vd_api_queue_put(api, q, st);
            free(payload);
            vd_api_reply_queue_error(resp, st, &err);
            return;
        }
    }
    char id[VD_ID_LEN + 1];
    st = vd_queue_enqueue(q, &o, id, &err);
    free(payload);
    if (st != VD_OK) {
        vd_api_queue_put(api, q, st);
        vd_api_reply_queue_error(resp, st, &err);
        return;
    }
    char loc[64];
    snprintf(loc, sizeof loc, "/jobs/%s", id);
    vd_http_add_header(resp, "Location", loc);
    reply_job(api, q, id, 201, resp);
}

/* Parses and checks every item of a batch into items[]; returns the JSON
 * array of the refusals ({"index", "status", "code", "message"}; empty when
 * every item may be enqueued) and the first refusal's status in *status. */
static json_t *parse_batch(vd_api *api, json_t *arr, job_item *items, int *status)
{
    json_t *refused = json_array();
    *status = 0;
    for (size_t i = 0; refused && i < json_array_size(arr); i++) {
        vd_http_resp ir;
        memset(&ir, 0, sizeof ir);
        if (parse_item(api, json_array_get(arr, i), &items[i], &ir)) continue;
        json_t *body = ir.body ? json_loadb(ir.body, ir.len, 0, NULL) : NULL;
        json_t *e = body ? json_object_get(body, "error") : NULL;
        json_t *one = json_pack("{s:I, s:i, s:O?, s:O?}", "index", (json_int_t)i, "status",
                                ir.status, "code", e ? json_object_get(e, "code") : NULL, "message",
                                e ? json_object_get(e, "message") : NULL);
        if (!*status) *status = ir.status;
        if (one) json_array_append_new(refused, one);
        json_decref(body);
        free(ir.body);
    }
    return refused;
}

/* Answers a batch written by vd_queue_enqueue_many: 201 {"ids": [...], "count": n}. */
static void reply_ids(vd_http_resp *resp, char (*ids)[VD_ID_LEN + 1], size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(ids[i]));
    json_t *body = arr ? json_pack("{s:o, s:I}", "ids", arr, "count", (json_int_t)n) : NULL;
    if (!body) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        return;
    }
    vd_http_reply_json(resp, 201, body);
}

/* POST /jobs with an array: every item checked as one job is; any refusal
 * refuses the whole batch (422, or the first refusal's status, with every
 * refused item listed) and nothing is enqueued; else all of it goes in one
 * transaction (vd_queue_enqueue_many). docs/api.md. */
static void enqueue_batch(vd_api *api, json_t *arr, vd_http_resp *resp)
{
    size_t n = json_array_size(arr);
    if (n == 0 || n > VD_ENQUEUE_MANY_MAX) {
        vd_http_reply_error(resp, 422, "invalid_batch", "a batch holds 1 to %d jobs (got %zu)",
                            VD_ENQUEUE_MANY_MAX, n);
        return;
    }
    job_item *items = calloc(n, sizeof *items);
    vd_enqueue_opts *opts = calloc(n, sizeof *opts);
    char(*ids)[VD_ID_LEN + 1] = calloc(n, sizeof *ids);
    int status = 0;
    json_t *refused = items && opts && ids ? parse_batch(api, arr, items, &status) : NULL;
    if (!refused) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
    } else if (json_array_size(refused) > 0) {
        json_t *body = json_pack("{s:{s:s, s:s, s:O}}", "error", "code", "invalid_batch", "message",
                                 "jobs were refused; none was enqueued", "items", refused);
        if (body)
            vd_http_reply_json(resp, status, body);
        else
            vd_http_reply_error(resp, 500, "nomem", "out of memory");
    } else {
        for (size_t i = 0; i < n; i++)
            opts[i] = items[i].o;
        vd_queue *q = vd_api_queue_get(api, resp);
        if (q) {
            vd_error err;
            vd_status st = vd_queue_enqueue_many(q, opts, n, ids, NULL, &err);
            vd_api_queue_put(api, q, st);
            if (st == VD_OK)
                reply_ids(resp, ids, n);
            else if (st == VD_ERR_STATE) /* an id taken, or given twice */
                vd_http_reply_error(resp, 409, "job_exists", "%s; none was enqueued", err.msg);
            else
                vd_api_reply_queue_error(resp, st, &err);
        }
    }
    json_decref(refused);
    for (size_t i = 0; items && i < n; i++)
        free(items[i].payload);
    free(items);
    free(opts);
    free(ids);
}

static void enqueue(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    if (json_is_array(req->json))
        enqueue_batch(ctx, req->json, resp);
    else
        enqueue_one(ctx, req->json, resp);
}

static void list_jobs(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    vd_list_opts o = {.state = -1};
    const char *state = vd_http_query(req, "state");
    if (state && *state && strcmp(state, "all") != 0) {
        vd_job_state s;
        if (vd_job_state_parse(state, &s) != VD_OK) {
            vd_http_reply_error(resp, 400, "invalid_parameter",
                                "unknown state '%.40s' (queued, scheduled, started, finished, "
                                "failed, canceled or all)",
                                state);
            return;
        }
        o.state = (int)s;
    }
    const char *type = vd_http_query(req, "type");
    if (type && *type) o.type = type;
    int64_t limit = 100, offset = 0;
    if (!vd_api_query_int(resp, req, "limit", 1, MAX_LIST, &limit) ||
        !vd_api_query_int(resp, req, "offset", 0, INT64_MAX / 2, &offset))
        return;
    o.limit = (size_t)limit;
    o.offset = (size_t)offset;
    vd_queue *q = vd_api_queue_get(api, resp);
    if (!q) return;
    vd_job *jobs = NULL;
    size_t n = 0;
    vd_error err;
    vd_status st = vd_queue_list(q, &o, &jobs, &n, &err);
    vd_api_queue_put(api, q, st);
    if (st != VD_OK) {
        vd_api_reply_queue_error(resp, st, &err);
        return;
    }
    /* {"jobs": [...], "count", "limit", "offset"}, each job from jobfmt. */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int bad = !f;
    if (f) {
        fputs("{\"jobs\":[", f);
        for (size_t i = 0; i < n && !bad; i++) {
            size_t jl = 0;
            char *jt = vd_api_job_text(&jobs[i], &jl);
            if (!jt) bad = 1;
            if (jt && ((i && fputc(',', f) == EOF) || fwrite(jt, 1, jl, f) != jl)) bad = 1;
            free(jt);
        }
        fprintf(f, "],\"count\":%zu,\"limit\":%lld,\"offset\":%lld}", n, (long long)limit,
                (long long)offset);
        if (fclose(f) != 0) bad = 1;
    }
    vd_job_list_free(jobs, n);
    if (bad) {
        free(text);
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        return;
    }
    vd_http_reply_text(resp, 200, "application/json", text, len);
}

static void change(void *ctx, vd_http_req *req, vd_http_resp *resp,
                   vd_status (*op)(vd_queue *, const char *, vd_error *))
{
    vd_api *api = ctx;
    const char *id = vd_http_param(req, "id");
    if (!valid_id(resp, id)) return;
    vd_queue *q = vd_api_queue_get(api, resp);
    if (!q) return;
    vd_error err;
    vd_status st = op(q, id, &err);
    if (st != VD_OK) {
        vd_api_queue_put(api, q, st);
        vd_api_reply_queue_error(resp, st, &err);
        return;
    }
    reply_job(api, q, id, 200, resp);
}

static void requeue(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    change(ctx, req, resp, vd_queue_requeue);
}

static void cancel(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    change(ctx, req, resp, vd_queue_cancel);
}

vd_status vd_api_routes_jobs(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"POST", "/jobs", enqueue, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_ARRAY},
        {"GET", "/jobs", list_jobs, api, 0},
        {"GET", "/jobs/{id}", get_job, api, 0},
        {"DELETE", "/jobs/{id}", cancel, api, 0},
        {"POST", "/jobs/{id}/requeue", requeue, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_OPTIONAL},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
