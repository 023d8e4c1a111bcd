/* api_request.c: reading a request, for the route modules: typed JSON
 * fields, query arguments, client paths (checked against the media roots),
 * multipart form values, and the input images of a request (paths or uploads). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "core/util.h"

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
