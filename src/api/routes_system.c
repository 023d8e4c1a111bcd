/* routes_system.c: GET /healthz and GET /metrics.
 *
 * /healthz is public (no token) so that load balancers and supervisors can
 * probe it. It answers 503 when the job queue does not answer (the API is of
 * no use then), and 200 with status "degraded" when only the model server is
 * unreachable (job routes still work; a restart of the API would not help). */
#include <stdio.h>
#include <stdlib.h>

#include "api/api_impl.h"
#include "core/procstat.h"
#include "core/util.h"
#include "queue/job_json.h"

#define HEALTH_TIMEOUT_MS 1000

/* {"ok": bool, "backend", "counts"} or {"ok": false, "error"}; sets *ok. */
static json_t *queue_health(vd_api *api, int *ok)
{
    vd_queue *q = NULL;
    vd_error err;
    vd_error_clear(&err);
    int64_t counts[VD_JOB__NSTATES] = {0};
    vd_status st = vd_api_queue_borrow(api, &q, &err);
    if (st != VD_OK) {
        *ok = 0;
        return json_pack("{s:b, s:s}", "ok", 0, "error", vd_error_text(&err));
    }
    const char *backend = vd_queue_backend(q);
    st = vd_queue_counts(q, counts, &err);
    vd_api_queue_put(api, q, st);
    *ok = st == VD_OK;
    if (st != VD_OK)
        return json_pack("{s:b, s:s, s:s}", "ok", 0, "backend", backend, "error",
                         vd_error_text(&err));
    return json_pack("{s:b, s:s, s:o}", "ok", 1, "backend", backend, "counts",
                     vd_job_counts_to_json(counts));
}

/* {"address", "ok", "health": {...}} or {"address", "ok": false, "error"}, or
 * {"configured": false}; sets *ok (1 when none is configured). */
static json_t *model_server_health(vd_api *api, int *ok)
{
    *ok = 1;
    if (!api->model_server) return json_pack("{s:b}", "configured", 0);
    vd_infer_client *c = NULL;
    vd_error err;
    vd_status st = vd_infer_client_new(api->model_server, &c, &err);
    char *text = NULL;
    if (st == VD_OK) st = vd_infer_client_health(c, HEALTH_TIMEOUT_MS, &text, &err);
    vd_infer_client_free(c); /* a fresh connection each time: this is a probe */
    json_t *h = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    if (st != VD_OK || !h) {
        *ok = 0;
        json_decref(h);
        return json_pack("{s:s, s:b, s:s}", "address", api->model_server, "ok", 0, "error",
                         st != VD_OK ? vd_error_text(&err) : "unreadable HEALTH answer");
    }
    return json_pack("{s:s, s:b, s:o}", "address", api->model_server, "ok", 1, "health", h);
}

static void healthz(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    (void)req;
    vd_api *api = ctx;
    int qok = 0, mok = 0;
    json_t *qj = queue_health(api, &qok);
    json_t *mj = model_server_health(api, &mok);
    const char *status = !qok ? "unavailable" : !mok ? "degraded" : "ok";
    vd_http_reply_json(resp, qok ? 200 : 503,
                       json_pack("{s:s, s:o, s:o, s:I}", "status", status, "queue", qj,
                                 "model_server", mj, "uptime_ms",
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
    vd_status st = vd_api_queue_borrow(api, &q, &err);
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
    pthread_mutex_lock(&api->libindex_mu);
    if (api->libindex) vd_libindex_write_prometheus(api->libindex, f);
    pthread_mutex_unlock(&api->libindex_mu);
    vd_procstat ps;
    vd_procstat_read(&ps);
    vd_procstat_write_prometheus(&ps, f);
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
