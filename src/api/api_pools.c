/* api_pools.c: the handles requests borrow, all in one place: the job queue
 * (qpool.h), the store, model-server runners and clients (core/pool.h). A
 * handle whose last call failed as broken() says is closed when
 * it comes back, and a fresh one is opened on the next need. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "api/qpool.h"
#include "core/pool.h"
#include "core/util.h"
#include "infer/runner_client.h"
#include "store/store.h"

struct vd_api_pools {
    vd_qpool *queues;
    vd_pool *stores;  /* vd_store handles on store_path */
    vd_pool *runners; /* model-server runners (NULL without a model server) */
    vd_pool *clients; /* model-server clients, for GET /models (NULL without one) */
    char *store_path;
    char *models_path;  /* NULL = ask the model server */
    char *model_server; /* NULL = none */
};

/* 1 when a handle whose last call returned st must be closed: a connection,
 * I/O, database, protocol or timeout error. */
static int broken(vd_status st)
{
    return st == VD_ERR_CONN || st == VD_ERR_IO || st == VD_ERR_DB || st == VD_ERR_PROTOCOL ||
           st == VD_ERR_TIMEOUT;
}

static vd_status store_open(void *ctx, void **out, vd_error *err)
{
    vd_api_pools *p = ctx;
    vd_store *s = NULL;
    vd_status st = vd_store_open(p->store_path, NULL, &s, err);
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
    vd_api_pools *p = ctx;
    vd_runner *r = NULL;
    vd_status st = vd_runner_client_new(p->model_server, p->models_path, 0, &r, err);
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
    vd_api_pools *p = ctx;
    vd_infer_client *c = NULL;
    vd_status st = vd_infer_client_new(p->model_server, &c, err);
    *out = c;
    return st;
}

static void client_close(void *ctx, void *h)
{
    (void)ctx;
    vd_infer_client_free(h);
}

/* Copies s into *out (NULL and "" stay NULL); 0 when out of memory. */
static int dup_opt(const char *s, char **out)
{
    *out = s && *s ? vd_strdup(s) : NULL;
    return !(s && *s) || *out;
}

vd_status vd_api_pools_new(const vd_api_pools_config *cfg, vd_api_pools **out, vd_error *err)
{
    static const vd_pool_ops stores = {store_open, store_close, store_usable};
    static const vd_pool_ops runners = {runner_open, runner_close, NULL};
    static const vd_pool_ops clients = {client_open, client_close, NULL};
    vd_api_pools *p = calloc(1, sizeof *p);
    *out = NULL;
    if (!p || !dup_opt(cfg->store_path, &p->store_path) ||
        !dup_opt(cfg->models_path, &p->models_path) ||
        !dup_opt(cfg->model_server, &p->model_server)) {
        vd_api_pools_free(p);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    vd_status st = vd_qpool_new(cfg->queue_url, cfg->max, &p->queues, err);
    if (st == VD_OK) st = vd_pool_new(&stores, p, cfg->max, &p->stores, err);
    if (st == VD_OK && p->model_server) st = vd_pool_new(&runners, p, cfg->max, &p->runners, err);
    if (st == VD_OK && p->model_server) st = vd_pool_new(&clients, p, cfg->max, &p->clients, err);
    if (st != VD_OK) {
        vd_api_pools_free(p);
        return st;
    }
    *out = p;
    return VD_OK;
}

void vd_api_pools_free(vd_api_pools *p)
{
    if (!p) return;
    vd_qpool_free(p->queues);
    vd_pool_free(p->stores);
    vd_pool_free(p->runners);
    vd_pool_free(p->clients);
    free(p->store_path);
    free(p->models_path);
    free(p->model_server);
    free(p);
}

static void reply_no_model_server(vd_http_resp *resp)
{
    vd_http_reply_error(resp, 503, "model_server_unavailable",
                        "no model server is configured (start with --model-server ADDR)");
}

vd_status vd_api_queue_borrow(vd_api *api, vd_queue **q, vd_error *err)
{
    return vd_qpool_get(api->pools->queues, q, err);
}

vd_queue *vd_api_queue_get(vd_api *api, vd_http_resp *resp)
{
    vd_queue *q = NULL;
    vd_error err;
    vd_status st = vd_qpool_get(api->pools->queues, &q, &err);
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
    vd_qpool_put(api->pools->queues, q, broken(last));
}

vd_store *vd_api_store_get(vd_api *api, vd_http_resp *resp)
{
    void *h = NULL;
    vd_error err;
    vd_status st = vd_pool_get(api->pools->stores, &h, &err);
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
    vd_pool_put(api->pools->stores, s, broken(last));
}

vd_runner *vd_api_runner_get(vd_api *api, vd_http_resp *resp)
{
    if (!api->pools->runners) {
        reply_no_model_server(resp);
        return NULL;
    }
    void *h = NULL;
    vd_error err;
    vd_status st = vd_pool_get(api->pools->runners, &h, &err);
    if (st != VD_OK) {
        vd_http_reply_status(resp, st, NULL, &err);
        return NULL;
    }
    return h;
}

void vd_api_runner_put(vd_api *api, vd_runner *r, vd_status last)
{
    if (r) vd_pool_put(api->pools->runners, r, broken(last));
}

vd_infer_client *vd_api_infer_get(vd_api *api, vd_http_resp *resp)
{
    if (!api->pools->clients) {
        reply_no_model_server(resp);
        return NULL;
    }
    void *h = NULL;
    vd_error err;
    if (vd_pool_get(api->pools->clients, &h, &err) != VD_OK) {
        vd_http_reply_error(resp, 503, "model_server_unavailable", "%s", vd_error_text(&err));
        return NULL;
    }
    return h;
}

void vd_api_infer_put(vd_api *api, vd_infer_client *c, vd_status last)
{
    if (c) vd_pool_put(api->pools->clients, c, broken(last));
}
