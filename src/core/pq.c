/* pq.c: libpq through dlopen (core/pq.h). */
#include "core/pq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define LIBPQ "libpq.so.5"

static vd_pq_table table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;    /* read-only after once */
static char why[512]; /* read-only after once: the loader's message when !loaded */

static void load(void)
{
    void *h = dlopen(LIBPQ, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "%s", e ? e : LIBPQ " not found");
        return;
    }
#define VD_PQ_SYM(name)                                                                            \
    if (!(table.name##_ = (__typeof__(table.name##_))dlsym(h, #name))) {                           \
        snprintf(why, sizeof why, "%s has no %s", LIBPQ, #name);                                   \
        return;                                                                                    \
    }
    VD_PQ_FUNCS(VD_PQ_SYM)
#undef VD_PQ_SYM
    loaded = 1;
}

vd_status vd_pq_load(vd_error *err)
{
    pthread_once(&once, load);
    if (loaded) return VD_OK;
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "PostgreSQL needs libpq (Debian package libpq5): %s", why);
}

const vd_pq_table *vd_pq(void)
{
    pthread_once(&once, load);
    if (!loaded) {
        fprintf(stderr, "visiond: a libpq call without libpq (%s): a bug\n", why);
        abort();
    }
    return &table;
}
