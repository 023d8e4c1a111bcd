/* routes_search.c: the library's search routes (docs/api.md, docs/search.md).
 *
 *   POST /search       {"model", "k", "folder"} + one of "path", "asset_id",
 *                      "vector" (or an upload of one image): the nearest assets
 *   GET  /duplicates   ?model=&max_distance=: groups of near-identical assets
 * Thin adapters over service/search.h; the index owner is the api's
 * (vd_api_libindex). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "api/form.h"
#include "core/util.h"
#include "service/search.h"

/* Answers a refusal or a backend failure of the search service. */
static void reply_search_error(vd_http_resp *resp, const char *why, vd_status st,
                               const vd_error *err)
{
    int code = vd_svc_search_http_status(why);
    if (code)
        vd_http_reply_error(resp, code, why, "%s", vd_error_text(err));
    else if (why && strcmp(why, "model_server") == 0)
        vd_api_reply_infer_error(resp, st, err);
    else if (why && strcmp(why, "store") == 0)
        vd_api_reply_embed_error(resp, st == VD_ERR_DB || st == VD_ERR_CONN ? VD_ERR_DB : st, err);
    else
        vd_http_reply_status(resp, st, NULL, err);
}

/* Reads "vector" (numbers) into a new float array. */
static int get_vector(vd_http_resp *resp, json_t *v, vd_svc_search_req *r, float **buf)
{
    if (!v || json_is_null(v)) return 1;
    if (!json_is_array(v)) {
        vd_http_reply_error(resp, 400, "invalid_type",
                            "field 'vector' must be an array of numbers");
        return 0;
    }
    size_t n = json_array_size(v);
    if (n > VD_VINDEX_MAX_DIM) {
        vd_http_reply_error(resp, 422, "dimension_mismatch", "the vector has %zu values", n);
        return 0;
    }
    *buf = malloc(sizeof(float) * (n + 1));
    if (!*buf) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x)) {
            vd_http_reply_error(resp, 400, "invalid_type", "vector[%zu] must be a number", i);
            return 0;
        }
        (*buf)[i] = (float)json_number_value(x); /* past FLT_MAX: infinite, refused */
    }
    r->vector = *buf;
    r->nvector = n;
    r->has_vector = 1;
    return 1;
}

/* Parses the JSON form. */
static int parse_json(vd_api *api, vd_http_req *req, vd_http_resp *resp, vd_svc_search_req *r,
                      float **vec, char **resolved)
{
    static const char *const fields[] = {"model",    "k",      "folder", "path",
                                         "asset_id", "vector", "text",   NULL};
    const char *path = NULL;
    json_t *k = json_object_get(req->json, "k");
    if (!vd_api_only_fields(resp, req->json, fields) ||
        !vd_api_get_string(resp, req->json, "model", 0, &r->model) ||
        !vd_api_get_string(resp, req->json, "folder", 0, &r->folder) ||
        !vd_api_get_string(resp, req->json, "path", 0, &path) ||
        !vd_api_get_string(resp, req->json, "text", 0, &r->text) ||
        !vd_api_get_int(resp, req->json, "k", INT64_MIN, INT64_MAX, &r->k) ||
        !vd_api_get_int(resp, req->json, "asset_id", INT64_MIN, INT64_MAX, &r->asset_id) ||
        !get_vector(resp, json_object_get(req->json, "vector"), r, vec))
        return 0;
    if (k && !json_is_null(k) && r->k == 0) r->k = -1; /* given 0: out of range */
    if (json_object_get(req->json, "asset_id") && r->asset_id == 0) r->asset_id = -1;
    if (path) {
        int others = r->asset_id != 0 || r->has_vector || r->text;
        if (!others && !(*resolved = vd_api_check_path(api, resp, path, VD_PATH_WANT_FILE)))
            return 0;
        r->path = others ? path : *resolved; /* several queries: the service refuses */
        r->roots = api->roots;
    }
    return 1;
}

/* Parses the multipart form: fields model, k, folder and one file part. */
static int parse_form(vd_http_req *req, vd_http_resp *resp, vd_svc_search_req *r)
{
    static const char *const fields[] = {"model", "k", "folder", NULL};
    if (!vd_form_check(req, resp, fields)) return 0;
    r->model = vd_api_form_value(req, "model");
    r->folder = vd_api_form_value(req, "folder");
    const char *k = vd_api_form_value(req, "k");
    if (k) {
        char *end;
        errno = 0;
        long long x = strtoll(k, &end, 10);
        if (!*k || *end || errno) {
            vd_http_reply_error(resp, 400, "invalid_type", "field 'k' must be an integer");
            return 0;
        }
        r->k = x == 0 ? -1 : x;
    }
    if (vd_form_files(req) > 1) {
        vd_http_reply_error(resp, 422, "one_query", "upload one image, not %zu",
                            vd_form_files(req));
        return 0;
    }
    for (size_t i = 0; i < req->nparts; i++)
        if (req->parts[i].path) r->path = req->parts[i].path; /* our temp file: no roots */
    return 1;
}

static json_t *hits_json(const char *model, const vd_svc_search_hit *h, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:I, s:s, s:f}", "asset_id", (json_int_t)h[i].asset_id,
                                        "path", h[i].path, "score", (double)h[i].score));
    return json_pack("{s:s, s:o}", "model", model, "results", arr);
}

static void search(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    vd_svc_search_req r;
    memset(&r, 0, sizeof r);
    float *vec = NULL;
    char *resolved = NULL;
    vd_store *store = NULL;
    vd_runner *runner = NULL;
    vd_status sst = VD_OK, rst = VD_OK;
    int ok =
        req->parts ? parse_form(req, resp, &r) : parse_json(api, req, resp, &r, &vec, &resolved);
    if (ok && (!r.model || !*r.model)) r.model = api->library_model; /* the configured one */
    vd_libindex *li = ok ? vd_api_libindex(api, resp) : NULL;
    if (!li || !(store = vd_api_store_get(api, resp))) goto out;
    if (r.path && !r.asset_id && !r.has_vector && !r.text &&
        !(runner = vd_api_runner_get(api, resp)))
        goto out;
    vd_svc_search_hit *hits = NULL;
    size_t n = 0;
    const char *why = NULL;
    vd_error err;
    vd_status st = vd_svc_search(li, store, runner, &r, &hits, &n, &why, &err);
    if (st != VD_OK) {
        if (why && strcmp(why, "store") == 0) sst = st;
        if (why && strcmp(why, "model_server") == 0) rst = st;
        reply_search_error(resp, why, st, &err);
        goto out;
    }
    const char *model = vd_svc_search_model(r.model);
    vd_http_reply_json(resp, 200, hits_json(model, hits, n));
    vd_svc_search_hits_free(hits, n);
out:
    vd_api_runner_put(api, runner, rst);
    vd_api_store_put(api, store, sst);
    free(vec);
    free(resolved);
}

static json_t *groups_json(const vd_svc_dup_group *g, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *assets = json_array(), *pairs = json_array();
        for (size_t j = 0; j < g[i].n; j++)
            json_array_append_new(assets,
                                  json_pack("{s:I, s:s}", "asset_id", (json_int_t)g[i].ids[j],
                                            "path", g[i].paths[j]));
        for (size_t j = 0; j < g[i].npairs; j++)
            json_array_append_new(pairs,
                                  json_pack("{s:I, s:I, s:f}", "a", (json_int_t)g[i].pairs[j].a,
                                            "b", (json_int_t)g[i].pairs[j].b, "distance",
                                            (double)g[i].pairs[j].distance));
        json_array_append_new(arr, json_pack("{s:o, s:o}", "assets", assets, "pairs", pairs));
    }
    return arr;
}

static void duplicates(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    const char *model = vd_http_query(req, "model");
    const char *md = vd_http_query(req, "max_distance");
    double maxd = -1;
    if (md) {
        char *end;
        errno = 0;
        maxd = strtod(md, &end);
        if (!*md || *end || errno || !isfinite(maxd) || maxd < 0) {
            vd_http_reply_error(
                resp, 400, "invalid_parameter",
                "query parameter 'max_distance' must be a number >= 0 (got '%.40s')", md);
            return;
        }
    }
    if (!model || !*model) model = api->library_model; /* the configured one */
    vd_libindex *li = vd_api_libindex(api, resp);
    vd_store *store = li ? vd_api_store_get(api, resp) : NULL;
    if (!store) return;
    vd_svc_dup_group *g = NULL;
    size_t n = 0;
    const char *why = NULL;
    vd_error err;
    vd_status st = vd_svc_duplicates(li, store, model, maxd, &g, &n, &why, &err);
    if (st != VD_OK) {
        reply_search_error(resp, why, st, &err);
    } else {
        json_t *j = json_pack("{s:s, s:f, s:o}", "model", vd_svc_search_model(model),
                              "max_distance", maxd < 0 ? VD_SVC_DUP_DEFAULT_MAX_DISTANCE : maxd,
                              "groups", groups_json(g, n));
        vd_http_reply_json(resp, 200, j);
    }
    vd_svc_dup_groups_free(g, n);
    vd_api_store_put(api, store, why && strcmp(why, "store") == 0 ? st : VD_OK);
}

vd_status vd_api_routes_search(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"POST", "/search", search, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD},
        {"GET", "/duplicates", duplicates, api, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
