/* routes_immich.c: Immich's machine-learning service interface (docs/immich.md).
 *
 *   GET  /ping      "pong" (text/plain): Immich's server's health check
 *   POST /predict   multipart: "entries" (JSON), "image" (a file) or "text";
 *                   answered as Immich's ML service answers (service/immich.h)
 *
 * Both need the API's token like every route, unless `serve --immich-ml`
 * (config key immich_ml) makes them public: Immich's server sends no token
 * (docs/security.md). Errors of the request itself are Immich's shape,
 * {"detail": "..."}; the HTTP core's refusals (body too large, too many
 * uploads, a malformed multipart body) keep visiond's. */
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "core/paths.h"
#include "image/decode.h"
#include "service/immich.h"

static void ping(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)ctx, (void)req;
    char *body = malloc(5);
    if (body) memcpy(body, "pong", 5);
    vd_http_reply_text(resp, 200, "text/plain; charset=utf-8", body, body ? 4 : 0);
}

static void detail(vd_http_resp *resp, int status, const char *msg)
{
    vd_http_reply_json(resp, status, json_pack("{s:s}", "detail", msg));
}

/* The HTTP status of a failed prediction that is not the request's fault. */
static int failure_status(vd_status st, vd_http_resp *resp)
{
    if (st == VD_ERR_BUSY || st == VD_ERR_CONN || st == VD_ERR_TIMEOUT) {
        vd_http_add_header(resp, "Retry-After", "1");
        return 503;
    }
    if (st == VD_ERR_IMAGE || st == VD_ERR_UNSUPPORTED) return 422;
    return vd_http_status_for(st);
}

/* The "image" file part's bytes (*data owned), 1; 0 after answering. No part: *data NULL. */
static int read_image(const vd_http_req *req, vd_http_resp *resp, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    for (size_t i = 0; i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        if (!p->path || strcmp(p->name, "image") != 0) continue;
        vd_media_limits lim = {.max_bytes = VD_IMAGE_MAX_FILE_BYTES};
        vd_path_problem prob = VD_PATH_OK;
        vd_error err;
        if (vd_media_read(NULL, p->path, &lim, data, len, &prob, &err) == VD_OK) return 1;
        detail(resp, err.code == VD_ERR_LIMIT ? 413 : 422, vd_error_text(&err));
        return 0;
    }
    return 1;
}

static void predict(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    const char *entries = req->parts ? vd_api_form_value(req, "entries") : NULL;
    if (!entries) { /* FastAPI's answer for a missing form field */
        vd_http_reply_json(resp, 422,
                           json_pack("{s:[{s:s, s:[s,s], s:s, s:n}]}", "detail", "type", "missing",
                                     "loc", "body", "entries", "msg", "Field required", "input"));
        return;
    }
    uint8_t *image = NULL;
    size_t len = 0;
    if (!read_image(req, resp, &image, &len)) return;
    vd_runner *runner = vd_api_runner_get(api, resp);
    vd_status st = VD_OK;
    if (runner) {
        json_t *out = NULL;
        int refusal = 0;
        vd_error err;
        st = vd_immich_predict(runner, &api->immich_aliases, entries, image, len,
                               vd_api_form_value(req, "text"), &out, &refusal, &err);
        if (st == VD_OK)
            vd_http_reply_json(resp, 200, out);
        else
            detail(resp, refusal ? refusal : failure_status(st, resp), vd_error_text(&err));
        if (refusal || st == VD_ERR_IMAGE || st == VD_ERR_UNSUPPORTED || st == VD_ERR_LIMIT)
            st = VD_OK; /* the runner is fine */
    }
    vd_api_runner_put(api, runner, st);
    free(image);
}

vd_status vd_api_routes_immich(vd_api *api, vd_router *r, vd_error *err)
{
    unsigned pub = api->immich_public ? VD_ROUTE_PUBLIC : 0;
    const vd_route routes[] = {
        {"GET", "/ping", ping, api, pub},
        {"POST", "/predict", predict, api, VD_ROUTE_BODY_UPLOAD | pub},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
