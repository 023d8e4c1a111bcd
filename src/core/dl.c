/* dl.c: libraries opened on first use (core/dl.h). */
#include "core/dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* Opens the library and fills table; d->why on failure. Called once, under d->mu. */
static int open_and_bind(vd_dl *d, void *table)
{
    void *h = dlopen(d->soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(d->why, sizeof d->why, "%s", e ? e : d->soname);
        return 0;
    }
    for (size_t i = 0; i < d->n; i++) {
        void *a = dlsym(h, d->names[i]);
        if (!a) {
            snprintf(d->why, sizeof d->why, "%s has no %s", d->soname, d->names[i]);
            return 0;
        }
        /* POSIX: a function's address from dlsym converts to a function pointer of the
         * same representation; the table is n such pointers (the users assert its size) */
        memcpy((char *)table + i * sizeof a, &a, sizeof a);
    }
    return 1;
}

int vd_dl_load(vd_dl *d, void *table)
{
    int st = atomic_load_explicit(&d->state, memory_order_acquire);
    if (st) return st > 0;
    pthread_mutex_lock(&d->mu);
    st = atomic_load_explicit(&d->state, memory_order_relaxed);
    if (!st) {
        st = open_and_bind(d, table) ? 1 : -1;
        atomic_store_explicit(&d->state, st, memory_order_release);
    }
    pthread_mutex_unlock(&d->mu);
    return st > 0;
}
