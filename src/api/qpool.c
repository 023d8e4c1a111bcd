/* qpool.c: pool of queue handles (see qpool.h). */
#include "api/qpool.h"

#include <pthread.h>
#include <stdlib.h>

#include "core/util.h"

struct vd_qpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char *url;
    size_t max;
    size_t open; /* handles in existence (idle + borrowed) */
    vd_queue **idle;
    size_t nidle;
};

vd_status vd_qpool_new(const char *url, size_t max, vd_qpool **out, vd_error *err)
{
    *out = NULL;
    if (!max) max = 4;
    vd_qpool *p = calloc(1, sizeof *p);
    if (!p) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    p->url = vd_strdup(url);
    p->idle = calloc(max, sizeof *p->idle);
    p->max = max;
    if (!p->url || !p->idle) {
        free(p->url);
        free(p->idle);
        free(p);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    vd_queue *q = NULL;
    vd_status st = vd_queue_open(url, &q, err);
    if (st != VD_OK) {
        vd_qpool_free(p);
        return st;
    }
    p->idle[p->nidle++] = q;
    p->open = 1;
    *out = p;
    return VD_OK;
}

void vd_qpool_free(vd_qpool *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->nidle; i++)
        vd_queue_close(p->idle[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->idle);
    free(p->url);
    free(p);
}

vd_status vd_qpool_get(vd_qpool *p, vd_queue **q, vd_error *err)
{
    *q = NULL;
    pthread_mutex_lock(&p->mu);
    while (p->nidle == 0 && p->open >= p->max)
        pthread_cond_wait(&p->cv, &p->mu);
    if (p->nidle) {
        *q = p->idle[--p->nidle];
        pthread_mutex_unlock(&p->mu);
        return VD_OK;
    }
    p->open++; /* reserve the slot, open outside the lock */
    pthread_mutex_unlock(&p->mu);
    vd_status st = vd_queue_open(p->url, q, err);
    if (st != VD_OK) {
        pthread_mutex_lock(&p->mu);
        p->open--;
        pthread_cond_signal(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    return st;
}

void vd_qpool_put(vd_qpool *p, vd_queue *q, int broken)
{
    if (!q) return;
    if (broken) vd_queue_close(q);
    pthread_mutex_lock(&p->mu);
    if (broken)
        p->open--;
    else
        p->idle[p->nidle++] = q;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

const char *vd_qpool_url(const vd_qpool *p)
{
    return p->url;
}
