/* pool.c: a pool of reusable handles (see pool.h). */
#include "core/pool.h"

#include <pthread.h>
#include <stdlib.h>

struct vd_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vd_pool_ops ops;
    void *ctx;
    size_t max;
    size_t open; /* handles in existence (idle + borrowed) and slots being opened */
    void **idle;
    size_t nidle;
};

vd_status vd_pool_new(const vd_pool_ops *ops, void *ctx, size_t max, vd_pool **out, vd_error *err)
{
    *out = NULL;
    if (!ops || !ops->open || !ops->close)
        return vd_error_set(err, VD_ERR_INVALID, "pool: open and close callbacks are required");
    if (!max) max = 4;
    vd_pool *p = calloc(1, sizeof *p);
    void **idle = calloc(max, sizeof *idle);
    if (!p || !idle) {
        free(p);
        free(idle);
        return vd_error_set(err, VD_ERR_NOMEM, "pool: out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->ops = *ops;
    p->ctx = ctx;
    p->max = max;
    p->idle = idle;
    *out = p;
    return VD_OK;
}

void vd_pool_free(vd_pool *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nidle; i++)
        p->ops.close(p->ctx, p->idle[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->idle);
    free(p);
}

/* Gives up a slot (a broken handle or a failed open) and wakes a waiter. */
static void release_slot(vd_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->open--;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

vd_status vd_pool_get(vd_pool *p, void **h, vd_error *err)
{
    *h = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->open >= p->max)
        pthread_cond_wait(&p->cv, &p->mu);
    void *idle = NULL;
    if (p->nidle)
        idle = p->idle[--p->nidle];
    else
        p->open++; /* reserve the slot; open outside the lock */
    pthread_mutex_unlock(&p->mu);
    if (idle) {
        if (!p->ops.usable || p->ops.usable(p->ctx, idle)) {
            *h = idle;
            return VD_OK;
        }
        p->ops.close(p->ctx, idle); /* its slot is reused for the fresh one */
    }
    void *fresh = NULL;
    vd_status st = p->ops.open(p->ctx, &fresh, err);
    if (st == VD_OK && !fresh) st = vd_error_set(err, VD_ERR_INTERNAL, "pool: open gave no handle");
    if (st != VD_OK) {
        release_slot(p);
        return st;
    }
    *h = fresh;
    return VD_OK;
}

void vd_pool_put(vd_pool *p, void *h, int broken)
{
    if (!h) return;
    if (broken) {
        p->ops.close(p->ctx, h);
        release_slot(p);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->idle[p->nidle++] = h;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

void vd_pool_counts(vd_pool *p, size_t *open, size_t *idle)
{
    pthread_mutex_lock(&p->mu);
    if (open) *open = p->open;
    if (idle) *idle = p->nidle;
    pthread_mutex_unlock(&p->mu);
}

size_t vd_pool_max(const vd_pool *p)
{
    return p->max;
}
