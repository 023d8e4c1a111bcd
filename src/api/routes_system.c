/* routes_system.c: GET /healthz and GET /metrics.
 *
 * /healthz is public (no token) so that load balancers and supervisors can
 * probe it; it reports whether the job queue answers. The model server's
 * reachability joins it when the model-server client lands. */
#include <stdio.h>
#include <stdlib.h>

#include "api/api_impl.h"
#include "core/util.h"
#include "queue/job_json.h"

static void healthz(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)req;
    vd_api *api = ctx;
    vd_queue *q = NULL;
    vd_error err;
    vd_error_clear(&err);
    int64_t counts[VD_JOB__NSTATES] = {0};
    vd_status st = vd_qpool_get(api->qpool, &q, &err);
    if (st == VD_OK) {
        st = vd_queue_counts(q, counts, &err);
        json_t *backend = json_string(vd_queue_backend(q));
        vd_api_queue_put(api, q, st);
        json_t *qj = st == VD_OK ? json_pack("{s:o, s:b, s:o}", "backend", backend, "ok", 1,
                                             "counts", vd_job_counts_to_json(counts))
                                 : json_pack("{s:o, s:b, s:s}", "backend", backend, "ok", 0,
                                             "error", vd_error_text(&err));
        vd_http_reply_json(resp, st == VD_OK ? 200 : 503,
                           json_pack("{s:s, s:o, s:I}", "status",
                                     st == VD_OK ? "ok" : "unavailable", "queue", qj, "uptime_ms",
                                     (json_int_t)(vd_now_ms() - api->started_ms)));
        return;
    }
    vd_http_reply_json(resp, 503,
                       json_pack("{s:s, s:{s:b, s:s}, s:I}", "status", "unavailable", "queue", "ok",
                                 0, "error", vd_error_text(&err), "uptime_ms",
                                 (json_int_t)(vd_now_ms() - api->started_ms)));
}

static void metrics(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)req;
    vd_api *api = ctx;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        return;
    }
    vd_queue *q = NULL;
    vd_error err;
    int64_t counts[VD_JOB__NSTATES] = {0};
    vd_status st = vd_qpool_get(api->qpool, &q, &err);
    if (st == VD_OK) {
        st = vd_queue_counts(q, counts, &err);
        vd_api_queue_put(api, q, st);
    }
    fprintf(f,
            "# HELP visiond_queue_up Whether the job queue answered this scrape.\n"
            "# TYPE visiond_queue_up gauge\nvisiond_queue_up %d\n",
            st == VD_OK);
    if (st == VD_OK) {
        fprintf(f, "# HELP visiond_jobs Jobs in the queue, by state.\n# TYPE visiond_jobs gauge\n");
        for (int s = 0; s < VD_JOB__NSTATES; s++)
            fprintf(f, "visiond_jobs{state=\"%s\"} %lld\n", vd_job_state_name((vd_job_state)s),
                    (long long)counts[s]);
    }
    st = vd_http_metrics_write(api->metrics, f, &err);
    if (fclose(f) != 0 || st != VD_OK) {
        free(text);
        vd_http_reply_error(resp, 500, "internal", "could not write the metrics");
        return;
    }
    vd_http_reply_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

vd_status vd_api_routes_system(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"GET", "/healthz", healthz, api, VD_ROUTE_PUBLIC},
        {"GET", "/metrics", metrics, api, 0},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
