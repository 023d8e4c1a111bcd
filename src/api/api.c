/* api.c: the API service: wiring of the handle pools, media roots, metrics,
 * route modules and the HTTP server core; helpers shared by the route modules. */
#include "api/api_impl.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "infer/client.h"

/* Every route module, in registration order. Add a line for a new area. */
static vd_status (*const route_modules[])(vd_api *, vd_router *, vd_error *) = {
    vd_api_routes_system, vd_api_routes_jobs,  vd_api_routes_training,  vd_api_routes_infer,
    vd_api_routes_models, vd_api_routes_media, vd_api_routes_dashboard,
};

static vd_status make_dir(const char *path, vd_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return vd_error_set(err, VD_ERR_INVALID, "directory name too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return vd_error_set(err, VD_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return vd_error_set(err, VD_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
    return VD_OK;
}

void vd_api_stop(vd_api *api)
{
    if (!api) return;
    vd_http_stop(api->http);
    vd_router_free(api->router);
    vd_qpool_free(api->qpool);
    vd_api_pools_free(api);
    vd_media_roots_free(api->roots);
    vd_http_metrics_free(api->metrics);
    free(api->model_server);
    free(api->data_dir);
    free(api->upload_dir);
    free(api->store_path);
    free(api->models_path);
    free(api);
}

vd_status vd_api_start(const vd_api_config *cfg, vd_api **out, vd_error *err)
{
    *out = NULL;
    vd_api *api = calloc(1, sizeof *api);
    if (!api) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    api->started_ms = vd_now_ms();
    vd_status st = VD_OK;
    const char *data = cfg->data_dir && *cfg->data_dir ? cfg->data_dir : "./data";
    api->data_dir = vd_strdup(data);
    size_t n = strlen(data) + sizeof "/uploads";
    api->upload_dir = malloc(n);
    api->metrics = vd_http_metrics_new();
    api->router = vd_router_new();
    if (!api->data_dir || !api->upload_dir || !api->metrics || !api->router) {
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        goto fail;
    }
    snprintf(api->upload_dir, n, "%s/uploads", data);
    if (cfg->model_server && *cfg->model_server) {
        /* Check the address's form now (no connection is made). */
        vd_infer_client *probe = NULL;
        if ((st = vd_infer_client_new(cfg->model_server, &probe, err)) != VD_OK) goto fail;
        vd_infer_client_free(probe);
        api->model_server = vd_strdup(cfg->model_server);
        if (!api->model_server) {
            st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    {
        char buf[4096];
        if (cfg->store_path && *cfg->store_path)
            snprintf(buf, sizeof buf, "%s", cfg->store_path);
        else
            snprintf(buf, sizeof buf, "%s/store.db", data);
        api->store_path = vd_strdup(buf);
        if (cfg->models_path && *cfg->models_path) api->models_path = vd_strdup(cfg->models_path);
        if (!api->store_path || (cfg->models_path && *cfg->models_path && !api->models_path)) {
            st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    if ((st = make_dir(api->upload_dir, err)) != VD_OK) goto fail;
    if ((st = vd_media_roots_new(cfg->media_roots, cfg->nmedia_roots, &api->roots, err)) != VD_OK)
        goto fail;
    int threads = cfg->threads > 0 ? cfg->threads : 4;
    /* One handle of each kind per HTTP thread: a request holds at most one
     * of each at a time, so no borrower ever waits. */
    if ((st = vd_qpool_new(cfg->queue_url, (size_t)threads, &api->qpool, err)) != VD_OK) goto fail;
    if ((st = vd_api_pools_new(api, (size_t)threads, err)) != VD_OK) goto fail;
    for (size_t i = 0; i < sizeof route_modules / sizeof route_modules[0]; i++)
        if ((st = route_modules[i](api, api->router, err)) != VD_OK) goto fail;
    vd_http_config hc = {
        .listen = cfg->listen,
        .token = cfg->token,
        .max_body = cfg->max_body,
        .max_upload = cfg->max_upload,
        .max_uploads = cfg->max_uploads,
        .threads = threads,
        .upload_dir = api->upload_dir,
        .router = api->router,
        .metrics = api->metrics,
    };
    if ((st = vd_http_start(&hc, &api->http, err)) != VD_OK) goto fail;
    *out = api;
    return VD_OK;
fail:
    vd_api_stop(api);
    return st;
}

int vd_api_port(const vd_api *api)
{
    return vd_http_port(api->http);
}

/* ---- helpers for route modules ------------------------------------------ */

int vd_api_only_fields(vd_http_resp *resp, json_t *obj, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            vd_http_reply_error(resp, 422, "unknown_field", "unknown field '%.100s'", key);
            return 0;
        }
    }
    return 1;
}

int vd_api_get_string(vd_http_resp *resp, json_t *obj, const char *key, int required,
                      const char **out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (!required) return 1;
        vd_http_reply_error(resp, 422, "missing_field", "field '%s' is required", key);
        return 0;
    }
    if (!json_is_string(v)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field '%s' must be a string", key);
        return 0;
    }
    *out = json_string_value(v);
    return 1;
}

int vd_api_get_int(vd_http_resp *resp, json_t *obj, const char *key, int64_t min, int64_t max,
                   int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_integer(v)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field '%s' must be an integer", key);
        return 0;
    }
    json_int_t x = json_integer_value(v);
    if (x < min || x > max) {
        vd_http_reply_error(resp, 422, "invalid_value",
                            "field '%s' must be between %lld and %lld (got %lld)", key,
                            (long long)min, (long long)max, (long long)x);
        return 0;
    }
    *out = x;
    return 1;
}

int vd_api_get_bool(vd_http_resp *resp, json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 1;
    if (!json_is_boolean(v)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field '%s' must be true or false", key);
        return 0;
    }
    *out = json_is_true(v);
    return 1;
}

int vd_api_query_int(vd_http_resp *resp, const vd_http_req *req, const char *name, int64_t min,
                     int64_t max, int64_t *out)
{
    const char *s = vd_http_query(req, name);
    if (!s) return 1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (!*s || *end || errno) {
        vd_http_reply_error(resp, 400, "invalid_parameter",
                            "query parameter '%s' must be an integer (got '%.40s')", name, s);
        return 0;
    }
    if (x < min || x > max) {
        vd_http_reply_error(resp, 400, "invalid_parameter",
                            "query parameter '%s' must be between %lld and %lld", name,
                            (long long)min, (long long)max);
        return 0;
    }
    *out = x;
    return 1;
}

char *vd_api_check_path(vd_api *api, vd_http_resp *resp, const char *path, vd_path_want want)
{
    char *resolved = NULL;
    vd_path_problem problem = VD_PATH_OK;
    vd_error err;
    vd_status st = vd_media_roots_check(api->roots, path, want, &resolved, &problem, &err);
    if (st == VD_OK) return resolved;
    vd_http_reply_error(resp, st == VD_ERR_NOT_FOUND ? 404 : 422, vd_path_problem_name(problem),
                        "%s", vd_error_text(&err));
    return NULL;
}

vd_queue *vd_api_queue_get(vd_api *api, vd_http_resp *resp)
{
    vd_queue *q = NULL;
    vd_error err;
    vd_status st = vd_qpool_get(api->qpool, &q, &err);
    if (st != VD_OK) {
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "backend_unavailable", "the job queue is unavailable: %s",
                            vd_error_text(&err));
        return NULL;
    }
    return q;
}

void vd_api_queue_put(vd_api *api, vd_queue *q, vd_status last)
{
    vd_qpool_put(api->qpool, q, vd_api_status_broken(last));
}

void vd_api_reply_infer_error(vd_http_resp *resp, vd_status st, const vd_error *err)
{
    const char *msg = err && err->code == st ? vd_error_text(err) : vd_strerror(st);
    switch (st) {
    case VD_ERR_CONN:
    case VD_ERR_TIMEOUT:
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "model_server_unavailable", "the model server: %s", msg);
        return;
    case VD_ERR_BUSY:
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 429, "model_server_busy", "the model server is busy: %s", msg);
        return;
    case VD_ERR_NOT_FOUND:
        vd_http_reply_error(resp, 404, "model_not_found", "%s", msg);
        return;
    default:
        vd_http_reply_status(resp, st, NULL, err);
        return;
    }
}

void vd_api_reply_queue_error(vd_http_resp *resp, vd_status st, const vd_error *err)
{
    const char *msg = err && err->code == st ? vd_error_text(err) : vd_strerror(st);
    switch (st) {
    case VD_ERR_NOT_FOUND:
        vd_http_reply_error(resp, 404, "job_not_found", "%s", msg);
        return;
    case VD_ERR_STATE:
        vd_http_reply_error(resp, 409, "invalid_state", "%s", msg);
        return;
    case VD_ERR_INVALID:
        vd_http_reply_error(resp, 422, "invalid_value", "%s", msg);
        return;
    case VD_ERR_BUSY:
    case VD_ERR_CONN:
    case VD_ERR_DB:
    case VD_ERR_TIMEOUT:
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "backend_unavailable", "the job queue failed: %s", msg);
        return;
    default:
        vd_http_reply_status(resp, st, NULL, err);
        return;
    }
}
