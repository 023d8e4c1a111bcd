/* api_pipeline.c: helpers shared by the pipeline routes (routes_training.c,
 * routes_infer.c): per-request store and model-server handles, input images
 * from paths or uploads, and the error answers they share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "core/util.h"
#include "infer/runner_client.h"
#include "store/store.h"

vd_store *vd_api_store_open(vd_api *api, vd_http_resp *resp)
{
    vd_store *s = NULL;
    vd_error err;
    vd_status st = vd_store_open(api->store_path, NULL, &s, &err);
    if (st != VD_OK) {
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "store_unavailable", "the store is unavailable: %s",
                            vd_error_text(&err));
        return NULL;
    }
    return s;
}

vd_runner *vd_api_runner_new(vd_api *api, vd_http_resp *resp)
{
    vd_runner *r = NULL;
    vd_error err;
    if (!api->model_server) {
        vd_http_reply_error(resp, 503, "model_server_unavailable",
                            "no model server is configured (start with --model-server ADDR)");
        return NULL;
    }
    vd_status st = vd_runner_client_new(api->model_server, api->models_path, 0, &r, &err);
    if (st != VD_OK) {
        vd_http_reply_status(resp, st, NULL, &err);
        return NULL;
    }
    return r;
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
