/* qpool.c: pool of queue handles (see qpool.h), a core/pool.h pool of vd_queue. */
#include "api/qpool.h"

#include <stdlib.h>

#include "core/pool.h"
#include "core/util.h"

struct vd_qpool {
    vd_pool *pool;
    char *url;
};

static vd_status q_open(void *ctx, void **out, vd_error *err)
{
    vd_qpool *p = ctx;
    vd_queue *q = NULL;
    vd_status st = vd_queue_open(p->url, &q, err);
    *out = q;
    return st;
}

static void q_close(void *ctx, void *h)
{
    (void)ctx;
    vd_queue_close(h);
}

vd_status vd_qpool_new(const char *url, size_t max, vd_qpool **out, vd_error *err)
{
    *out = NULL;
    vd_qpool *p = calloc(1, sizeof *p);
    if (!p || !(p->url = vd_strdup(url))) {
        free(p);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    static const vd_pool_ops ops = {.open = q_open, .close = q_close};
    vd_status st = vd_pool_new(&ops, p, max, &p->pool, err);
    vd_queue *q = NULL;
    if (st == VD_OK) st = vd_qpool_get(p, &q, err); /* report a bad url or backend now */
    if (st != VD_OK) {
        vd_qpool_free(p);
        return st;
    }
    vd_qpool_put(p, q, 0);
    *out = p;
    return VD_OK;
}

void vd_qpool_free(vd_qpool *p)
{
    if (!p) return;
    vd_pool_free(p->pool);
    free(p->url);
    free(p);
}

vd_status vd_qpool_get(vd_qpool *p, vd_queue **q, vd_error *err)
{
    void *h = NULL;
    vd_status st = vd_pool_get(p->pool, &h, err);
    *q = h;
    return st;
}

void vd_qpool_put(vd_qpool *p, vd_queue *q, int broken)
{
    vd_pool_put(p->pool, q, broken);
}

const char *vd_qpool_url(const vd_qpool *p)
{
    return p->url;
}
