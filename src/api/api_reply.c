/* api_reply.c: the error answers the route modules share: a failed call to
 * the model server, the queue, the embedding pipeline, or a refused path. */
#include "api/api_impl.h"

void vd_api_reply_infer_error(vd_http_resp *resp, vd_status st, const vd_error *err)
{
    const char *msg = err && err->code == st ? vd_error_text(err) : vd_strerror(st);
    switch (st) {
    case VD_ERR_CONN:
    case VD_ERR_TIMEOUT:
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "model_server_unavailable", "the model server: %s", msg);
        return;
    case VD_ERR_AUTH: /* the model server refused this api's secret: not the caller's fault */
        vd_http_reply_error(resp, 503, "model_server_unavailable",
                            "the model server refused this api (check model_secret_file): %s", msg);
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
