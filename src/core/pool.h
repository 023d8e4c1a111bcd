/* pool.h: a mutex-guarded pool of reusable handles, shared by threads.
 *
 * For handles that are not thread-safe but costly to open (a queue or store
 * connection, a model-server client): each user borrows one with
 * vd_pool_get, uses it alone, and returns it with vd_pool_put. Up to `max`
 * handles exist at once; they are opened lazily, on a get that finds none
 * idle, through the open callback (outside the pool's lock, so a slow open
 * does not stall the others). A get that finds none idle and `max` in use
 * waits until one is put back. A handle put back as broken (it failed with a
 * connection, I/O or database error) is closed and its slot freed, so the
 * next get opens a fresh one: a restarted server or a replaced file is picked
 * up without restarting the process. An optional usable callback is asked
 * about an idle handle before it is lent; a handle it refuses is closed and
 * replaced the same way.
 *
 * The pool does not own ctx: it is passed to the callbacks and must outlive
 * the pool. */
#ifndef VD_CORE_POOL_H
#define VD_CORE_POOL_H

#include <stddef.h>

#include "core/err.h"

typedef struct vd_pool vd_pool;

typedef struct {
    /* Opens a handle into *out (non-NULL on VD_OK); on failure fills err. */
    vd_status (*open)(void *ctx, void **out, vd_error *err);
    /* Closes a handle the pool no longer wants. */
    void (*close)(void *ctx, void *h);
    /* Optional (NULL = always): returns nonzero when an idle handle may
     * still be lent, 0 to have it closed and replaced. Called outside the
     * lock, on a handle no one else holds. */
    int (*usable)(void *ctx, void *h);
} vd_pool_ops;

/* Creates an empty pool of at most max handles (0 = 4); nothing is opened
 * yet. ops is copied. *out is owned by the caller and freed with vd_pool_free. */
vd_status vd_pool_new(const vd_pool_ops *ops, void *ctx, size_t max, vd_pool **out, vd_error *err);

/* Closes every idle handle and frees the pool (NULL is fine). Every
 * borrowed handle must have been put back first. */
void vd_pool_free(vd_pool *p);

/* Borrows a handle into *h: an idle one (checked with usable), else a new
 * one when fewer than max exist, else waits for a put. When a new handle
 * cannot be opened, returns open's error with *h = NULL; its slot is freed
 * (a waiting borrower may try in turn). */
vd_status vd_pool_get(vd_pool *p, void **h, vd_error *err);

/* Returns a borrowed handle (NULL is ignored); broken != 0 closes it and
 * frees its slot instead of keeping it. Wakes one waiting borrower. */
void vd_pool_put(vd_pool *p, void *h, int broken);

/* Reports how many handles exist (idle + borrowed) and how many are idle;
 * either pointer may be NULL. A snapshot, for tests and metrics. */
void vd_pool_counts(vd_pool *p, size_t *open, size_t *idle);

/* Returns the largest number of handles the pool keeps. */
size_t vd_pool_max(const vd_pool *p);

#endif
