/* routes_library.c: the photo library over HTTP (docs/api.md "Library",
 * docs/library.md).
 *
 *   POST   /assets        register images ({"paths"}, {"folder"} or a multipart
 *                         upload) and enqueue their index job (202)
 *   GET    /assets        list (?after=ID&limit=N&folder=DIR&state=S)
 *   GET    /assets/{id}   one asset with its faces
 *   DELETE /assets/{id}   soft delete (204)
 * The rules live in service/library.h (register) and store/library.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "api/form.h"
#include "core/util.h"
#include "service/library.h"
#include "store/library.h"

/* HTTP status of a refusal by the service (service/library.h). */
static int refusal_status(const char *why)
{
    if (strcmp(why, "too_many_paths") == 0 || strcmp(why, "file_too_large") == 0) return 413;
    if (strcmp(why, "path_not_found") == 0) return 404;
    return 422;
}

static json_t *outcomes_json(const vd_svc_assets_result *r, int errors)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const vd_svc_asset_outcome *o = &r->v[i];
        if (errors && o->code)
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "path", o->path, "code",
                                                 o->code, "error", o->error ? o->error : ""));
        else if (!errors && !o->code)
            json_array_append_new(arr, json_pack("{s:s, s:I, s:b}", "path", o->path, "asset_id",
                                                 (json_int_t)o->asset_id, "existed", o->existed));
    }
    return arr;
}

/* Reads the request into the service's form: JSON paths or folder, or the file parts. */
static int register_parse(vd_http_req *req, vd_http_resp *resp, vd_svc_assets_req *in,
                          const char ***paths, const char ***tmp, const char ***names)
{
    if (req->parts) {
        static const char *const none[] = {NULL};
        if (!vd_form_check(req, resp, none)) return 0;
        *tmp = calloc(req->nparts + 1, sizeof **tmp);
        *names = calloc(req->nparts + 1, sizeof **names);
        if (!*tmp || !*names) {
            vd_http_reply_error(resp, 500, "internal", "out of memory");
            return 0;
        }
        for (size_t i = 0; i < req->nparts; i++)
            if (req->parts[i].path) {
                (*tmp)[in->nuploads] = req->parts[i].path;
                (*names)[in->nuploads++] = req->parts[i].filename;
            }
        in->uploads = *tmp;
        in->names = *names;
        return 1;
    }
    static const char *const fields[] = {"paths", "folder", NULL};
    json_t *b = req->json, *jp = json_object_get(b, "paths");
    if (!vd_api_only_fields(resp, b, fields) ||
        !vd_api_get_string(resp, b, "folder", 0, &in->folder))
        return 0;
    if (jp && !json_is_array(jp)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field 'paths' must be an array of strings");
        return 0;
    }
    size_t n = json_array_size(jp);
    *paths = calloc(n + 1, sizeof **paths);
    if (!*paths) {
        vd_http_reply_error(resp, 500, "internal", "out of memory");
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!((*paths)[i] = json_string_value(json_array_get(jp, i)))) {
            vd_http_reply_error(resp, 400, "invalid_type", "paths[%zu] is not a string", i);
            return 0;
        }
    in->paths = *paths;
    in->npaths = n;
    if (jp && n == 0 && !in->folder) {
        vd_http_reply_error(resp, 422, "empty_list", "'paths' is empty");
        return 0;
    }
    return 1;
}

static void register_assets(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    vd_svc_assets_req in = {0};
    const char **paths = NULL, **tmp = NULL, **names = NULL, *why = NULL;
    vd_svc_library lib = {
        .roots = api->roots, .model = api->library_model, .face_model = api->library_face_model};
    vd_svc_assets_result r = {0};
    vd_status st = VD_OK;
    vd_error err;
    if (!register_parse(req, resp, &in, &paths, &tmp, &names) ||
        !(lib.store = vd_api_store_get(api, resp)) || !(lib.queue = vd_api_queue_get(api, resp)))
        goto out;
    st = vd_svc_assets_register(&lib, &in, &r, &why, &err);
    if (st != VD_OK && why && strcmp(why, "queue") == 0)
        vd_api_reply_queue_error(resp, st, &err);
    else if (st != VD_OK && (!why || strcmp(why, "store") == 0))
        vd_api_reply_embed_error(resp, st, &err); /* 503 store_unavailable */
    else if (st != VD_OK)
        vd_http_reply_error(resp, refusal_status(why), why, "%s", vd_error_text(&err));
    else
        vd_http_reply_json(resp, r.job_id[0] ? 202 : 200,
                           json_pack("{s:o, s:o, s:o, s:I, s:I, s:I, s:I}", "job_id",
                                     r.job_id[0] ? json_string(r.job_id) : json_null(), "assets",
                                     outcomes_json(&r, 0), "errors", outcomes_json(&r, 1), "added",
                                     (json_int_t)r.added, "known", (json_int_t)r.known, "failed",
                                     (json_int_t)r.failed, "queued", (json_int_t)r.queued));
out:
    vd_api_store_put(api, lib.store, why && strcmp(why, "store") == 0 ? st : VD_OK);
    vd_api_queue_put(api, lib.queue, why && strcmp(why, "queue") == 0 ? st : VD_OK);
    vd_svc_assets_result_free(&r);
    free(paths);
    free(tmp);
    free(names);
}

static json_t *asset_json(const vd_asset *a)
{
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:I}", "id", (json_int_t)a->id,
                          "sha256", a->sha256, "path", a->path, "folder", a->folder, "state",
                          vd_asset_state_name(a->state), "width", a->width, "height", a->height,
                          "created_ms", (json_int_t)a->created_ms);
    json_object_set_new(j, "error", a->error ? json_string(a->error) : json_null());
    json_object_set_new(j, "indexed_ms", a->indexed_ms ? json_integer(a->indexed_ms) : json_null());
    return j;
}

static json_t *face_json(const vd_library_face *f)
{
    const char *by = vd_assign_by_name(f->assigned_by);
    return json_pack("{s:I, s:[f,f,f,f], s:f, s:o, s:o}", "id", (json_int_t)f->id, "box", f->box[0],
                     f->box[1], f->box[2], f->box[3], "score", f->score, "person_id",
                     f->person_id ? json_integer(f->person_id) : json_null(), "assigned_by",
                     by ? json_string(by) : json_null());
}

/* Reads the {id} of the route as a positive integer; answers 404 otherwise. */
static int asset_id(vd_http_req *req, vd_http_resp *resp, int64_t *id)
{
    const char *s = vd_http_param(req, "id");
    char *end = NULL;
    long long v = s && *s >= '0' && *s <= '9' ? strtoll(s, &end, 10) : 0;
    if (v <= 0 || !end || *end) {
        vd_http_reply_error(resp, 404, "asset_not_found", "no asset '%.40s'", s ? s : "");
        return 0;
    }
    *id = v;
    return 1;
}

/* Answers a failed store call: 404 asset_not_found, else the store's error. */
static void reply_store_error(vd_http_resp *resp, vd_status st, const vd_error *err)
{
    if (st == VD_ERR_NOT_FOUND)
        vd_http_reply_error(resp, 404, "asset_not_found", "%s", vd_error_text(err));
    else
        vd_api_reply_embed_error(resp, st, err);
}

static void show(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t id;
    vd_store *store;
    if (!asset_id(req, resp, &id) || !(store = vd_api_store_get(api, resp))) return;
    vd_asset a;
    vd_library_face *f = NULL;
    size_t n = 0;
    vd_error err;
    vd_status st = vd_store_asset_get(store, id, 0, &a, &err);
    if (st == VD_OK) st = vd_store_asset_faces(store, id, NULL, 0, &f, &n, &err);
    if (st != VD_OK) {
        reply_store_error(resp, st, &err);
    } else {
        json_t *j = asset_json(&a), *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(arr, face_json(&f[i]));
        json_object_set_new(j, "faces", arr);
        vd_http_reply_json(resp, 200, j);
    }
    vd_library_face_list_free(f, n);
    vd_asset_clear(&a);
    vd_api_store_put(api, store, st == VD_ERR_NOT_FOUND ? VD_OK : st);
}

static void list(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t after = 0, limit = 100;
    const char *state = vd_http_query(req, "state");
    vd_asset_filter f = {.folder = vd_http_query(req, "folder"), .state = -1};
    if (!vd_api_query_int(resp, req, "after", 0, INT64_MAX, &after) ||
        !vd_api_query_int(resp, req, "limit", 1, VD_LIBRARY_LIST_MAX, &limit))
        return;
    if (state && (f.state = vd_asset_state_parse(state)) < 0) {
        vd_http_reply_error(resp, 400, "invalid_parameter",
                            "state must be pending, indexed or error, not '%.40s'", state);
        return;
    }
    f.after_id = after;
    f.limit = (int)limit;
    vd_store *store = vd_api_store_get(api, resp);
    if (!store) return;
    vd_asset *v = NULL;
    size_t n = 0;
    vd_error err;
    vd_status st = vd_store_asset_list(store, &f, &v, &n, &err);
    vd_api_store_put(api, store, st);
    if (st != VD_OK) {
        vd_api_reply_embed_error(resp, st, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, asset_json(&v[i]));
    json_t *next = (int64_t)n == limit ? json_integer(v[n - 1].id) : json_null();
    vd_asset_list_free(v, n);
    vd_http_reply_json(resp, 200, json_pack("{s:o, s:o}", "assets", arr, "next_after", next));
}

static void delete_asset(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t id;
    vd_store *store;
    if (!asset_id(req, resp, &id) || !(store = vd_api_store_get(api, resp))) return;
    vd_error err;
    vd_status st = vd_svc_asset_delete(store, id, &err);
    vd_api_store_put(api, store, st == VD_ERR_NOT_FOUND ? VD_OK : st);
    if (st != VD_OK) {
        reply_store_error(resp, st, &err);
    } else {
        vd_api_libindex_poke(api); /* the index drops it at once (searches never return it) */
        vd_http_reply_text(resp, 204, NULL, NULL, 0);
    }
}

vd_status vd_api_routes_library(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"POST", "/assets", register_assets, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD},
        {"GET", "/assets", list, api, 0},
        {"GET", "/assets/{id}", show, api, 0},
        {"DELETE", "/assets/{id}", delete_asset, api, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
