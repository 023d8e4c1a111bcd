/* api_pipeline.c: helpers shared by the pipeline routes (routes_training.c,
 * routes_infer.c, routes_models.c): the pools of store and model-server
 * handles the requests borrow, input images from paths or uploads, and the
 * error answers they share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "core/util.h"
#include "infer/runner_client.h"
#include "store/store.h"

/* ---- the pools ---------------------------------------------------------- */

static vd_status store_open(void *ctx, void **out, vd_error *err)
{
    vd_api *api = ctx;
    vd_store *s = NULL;
    vd_status st = vd_store_open(api->store_path, NULL, &s, err);
    *out = s;
    return st;
}

static void store_close(void *ctx, void *h)
{
    (void)ctx;
    vd_store_close(h);
}

/* A handle on a file that was deleted or replaced would read and write a
 * database no one else sees: open the path again instead. */
static int store_usable(void *ctx, void *h)
{
    (void)ctx;
    return !vd_store_moved(h);
}

static vd_status runner_open(void *ctx, void **out, vd_error *err)
{
    vd_api *api = ctx;
    vd_runner *r = NULL;
    vd_status st = vd_runner_client_new(api->model_server, api->models_path, 0, &r, err);
    *out = r;
    return st;
}

static void runner_close(void *ctx, void *h)
{
    (void)ctx;
    vd_runner_free(h);
}

static vd_status client_open(void *ctx, void **out, vd_error *err)
{
    vd_api *api = ctx;
    vd_infer_client *c = NULL;
    vd_status st = vd_infer_client_new(api->model_server, &c, err);
    *out = c;
    return st;
}

static void client_close(void *ctx, void *h)
{
    (void)ctx;
    vd_infer_client_free(h);
}

vd_status vd_api_pools_new(vd_api *api, size_t max, vd_error *err)
{
    static const vd_pool_ops stores = {store_open, store_close, store_usable};
    static const vd_pool_ops runners = {runner_open, runner_close, NULL};
    static const vd_pool_ops clients = {client_open, client_close, NULL};
    vd_status st = vd_pool_new(&stores, api, max, &api->stores, err);
    if (st == VD_OK && api->model_server) st = vd_pool_new(&runners, api, max, &api->runners, err);
    if (st == VD_OK && api->model_server) st = vd_pool_new(&clients, api, max, &api->clients, err);
    return st;
}

void vd_api_pools_free(vd_api *api)
{
    vd_pool_free(api->stores);
    vd_pool_free(api->runners);
    vd_pool_free(api->clients);
    api->stores = api->runners = api->clients = NULL;
}

int vd_api_status_broken(vd_status st)
{
    return st == VD_ERR_CONN || st == VD_ERR_IO || st == VD_ERR_DB || st == VD_ERR_PROTOCOL ||
           st == VD_ERR_TIMEOUT;
}

static void reply_no_model_server(vd_http_resp *resp)
{
    vd_http_reply_error(resp, 503, "model_server_unavailable",
                        "no model server is configured (start with --model-server ADDR)");
}

vd_store *vd_api_store_get(vd_api *api, vd_http_resp *resp)
{
    void *h = NULL;
    vd_error err;
    vd_status st = vd_pool_get(api->stores, &h, &err);
    if (st != VD_OK) {
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "store_unavailable", "the store is unavailable: %s",
                            vd_error_text(&err));
        return NULL;
    }
    return h;
}

void vd_api_store_put(vd_api *api, vd_store *s, vd_status last)
{
    if (!s) return;
    vd_store_rollback(s); /* no-op unless a handler left a transaction open */
    vd_pool_put(api->stores, s, vd_api_status_broken(last));
}

vd_runner *vd_api_runner_get(vd_api *api, vd_http_resp *resp)
{
    if (!api->runners) {
        reply_no_model_server(resp);
        return NULL;
    }
    void *h = NULL;
    vd_error err;
    vd_status st = vd_pool_get(api->runners, &h, &err);
    if (st != VD_OK) {
        vd_http_reply_status(resp, st, NULL, &err);
        return NULL;
    }
    return h;
}

void vd_api_runner_put(vd_api *api, vd_runner *r, vd_status last)
{
    if (r) vd_pool_put(api->runners, r, vd_api_status_broken(last));
}

vd_infer_client *vd_api_infer_get(vd_api *api, vd_http_resp *resp)
{
    if (!api->clients) {
        reply_no_model_server(resp);
        return NULL;
    }
    void *h = NULL;
    vd_error err;
    if (vd_pool_get(api->clients, &h, &err) != VD_OK) {
        vd_http_reply_error(resp, 503, "model_server_unavailable", "%s", vd_error_text(&err));
        return NULL;
    }
    return h;
}

void vd_api_infer_put(vd_api *api, vd_infer_client *c, vd_status last)
{
    if (c) vd_pool_put(api->clients, c, vd_api_status_broken(last));
}

void vd_api_reply_embed_error(vd_http_resp *resp, vd_status st, const vd_error *err)
{
    const char *msg = err && err->code == st ? vd_error_text(err) : vd_strerror(st);
    if (st == VD_ERR_NOT_FOUND) {
        vd_http_reply_error(resp, 422, "unknown_model", "%s", msg);
    } else if (st == VD_ERR_DB) {
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "store_unavailable", "%s", msg);
    } else {
        vd_api_reply_infer_error(resp, st, err);
    }
}

void vd_api_reply_path_error(vd_http_resp *resp, const char *what, vd_path_problem problem,
                             const vd_error *err)
{
    int status = problem == VD_PATH_NOT_FOUND ? 404 : 422;
    vd_http_reply_error(resp, status, vd_path_problem_name(problem), "%s: %s", what,
                        vd_error_text(err));
}

const char *vd_api_form_value(const vd_http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nparts; i++)
        if (!req->parts[i].path && req->parts[i].value && strcmp(req->parts[i].name, name) == 0)
            return req->parts[i].value;
    return NULL;
}

void vd_api_inputs_free(vd_api_inputs *in)
{
    for (size_t i = 0; i < in->n; i++) {
        free(in->paths[i]);
        free(in->names[i]);
    }
    free(in->paths);
    free(in->names);
    memset(in, 0, sizeof *in);
}

static int inputs_alloc(vd_api_inputs *in, size_t n, vd_http_resp *resp)
{
    in->paths = calloc(n ? n : 1, sizeof *in->paths);
    in->names = calloc(n ? n : 1, sizeof *in->names);
    if (in->paths && in->names) return 1;
    vd_api_inputs_free(in);
    vd_http_reply_error(resp, 500, "nomem", "out of memory");
    return 0;
}

int vd_api_inputs_get(vd_api *api, vd_http_req *req, vd_http_resp *resp, size_t max,
                      vd_api_inputs *in)
{
    memset(in, 0, sizeof *in);
    if (req->parts) {
        size_t nfiles = 0;
        for (size_t i = 0; i < req->nparts; i++)
            nfiles += req->parts[i].path != NULL;
        if (nfiles == 0) {
            vd_http_reply_error(resp, 422, "no_paths", "the upload has no file part");
            return 0;
        }
        if (nfiles > max) {
            vd_http_reply_error(resp, 413, "too_many_paths", "at most %zu files per request", max);
            return 0;
        }
        if (!inputs_alloc(in, nfiles, resp)) return 0;
        for (size_t i = 0; i < req->nparts; i++) {
            const vd_http_part *p = &req->parts[i];
            if (!p->path) continue;
            in->paths[in->n] = vd_strdup(p->path);
            in->names[in->n] = vd_strdup(p->filename && *p->filename ? p->filename : p->name);
            in->n++;
            if (!in->paths[in->n - 1] || !in->names[in->n - 1]) {
                vd_api_inputs_free(in);
                vd_http_reply_error(resp, 500, "nomem", "out of memory");
                return 0;
            }
        }
        return 1;
    }
    in->roots = api->roots; /* opened again under the roots (core/paths.h) */
    json_t *arr = req->json ? json_object_get(req->json, "paths") : NULL;
    if (!arr || json_is_null(arr)) {
        vd_http_reply_error(resp, 422, "no_paths", "field 'paths' is required (or upload files)");
        return 0;
    }
    if (!json_is_array(arr)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field 'paths' must be an array of strings");
        return 0;
    }
    size_t n = json_array_size(arr);
    if (n == 0) {
        vd_http_reply_error(resp, 422, "no_paths", "field 'paths' is empty");
        return 0;
    }
    if (n > max) {
        vd_http_reply_error(resp, 413, "too_many_paths", "at most %zu paths per request (got %zu)",
                            max, n);
        return 0;
    }
    if (!inputs_alloc(in, n, resp)) return 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = json_string_value(json_array_get(arr, i));
        if (!p) {
            vd_api_inputs_free(in);
            vd_http_reply_error(resp, 400, "invalid_type", "paths[%zu] must be a string", i);
            return 0;
        }
        char *resolved = NULL;
        vd_path_problem prob;
        vd_error err;
        if (vd_media_roots_check(api->roots, p, VD_PATH_WANT_FILE, &resolved, &prob, &err) !=
            VD_OK) {
            vd_api_inputs_free(in);
            char what[32];
            snprintf(what, sizeof what, "paths[%zu]", i);
            vd_api_reply_path_error(resp, what, prob, &err);
            return 0;
        }
        in->paths[in->n] = resolved;
        in->names[in->n] = vd_strdup(p);
        in->n++;
        if (!in->names[in->n - 1]) {
            vd_api_inputs_free(in);
            vd_http_reply_error(resp, 500, "nomem", "out of memory");
            return 0;
        }
    }
    return 1;
}
