/* routes_models.c: GET /models, what the model server serves (its MODELS
 * answer: every configured model with its state and statistics, and the
 * metadata files it could not use). */
#include <stdlib.h>

#include "api/api_impl.h"

#define MODELS_TIMEOUT_MS 3000

static void list_models(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)req;
    vd_api *api = ctx;
    vd_infer_client *c = vd_api_infer_get(api, resp);
    if (!c) return;
    char *text = NULL;
    vd_error err;
    vd_status st = vd_infer_client_models(c, MODELS_TIMEOUT_MS, &text, &err);
    vd_api_infer_put(api, c, st);
    if (st != VD_OK) {
        vd_api_reply_infer_error(resp, st, &err);
        return;
    }
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    free(text);
    if (!j) {
        vd_http_reply_error(resp, 502, "model_server_protocol",
                            "the model server's answer is not JSON: %s", je.text);
        return;
    }
    vd_http_reply_json(resp, 200, j);
}

vd_status vd_api_routes_models(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route route = {"GET", "/models", list_models, api, 0};
    return vd_router_add(r, &route, err);
}
