/* liblinear.c: liblinear through dlopen (train/liblinear.h). */
#include "train/liblinear.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define LIBLINEAR "liblinear.so.4"

static vd_liblinear_table table;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;    /* read-only after once */
static char why[512]; /* read-only after once: the loader's message when !loaded */

static void load(void)
{
    void *h = dlopen(LIBLINEAR, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, sizeof why, "%s", e ? e : LIBLINEAR " not found");
        return;
    }
#define VD_LIBLINEAR_SYM(name)                                                                     \
    if (!(table.name = (__typeof__(table.name))dlsym(h, #name))) {                                 \
        snprintf(why, sizeof why, "%s has no %s", LIBLINEAR, #name);                               \
        return;                                                                                    \
    }
    VD_LIBLINEAR_FUNCS(VD_LIBLINEAR_SYM)
#undef VD_LIBLINEAR_SYM
    loaded = 1;
}

vd_status vd_liblinear_load(vd_error *err)
{
    pthread_once(&once, load);
    if (loaded) return VD_OK;
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "training needs liblinear (Debian package liblinear4): %s", why);
}

const vd_liblinear_table *vd_liblinear(void)
{
    pthread_once(&once, load);
    if (!loaded) {
        fprintf(stderr, "visiond: a liblinear call without liblinear (%s): a bug\n", why);
        abort();
    }
    return &table;
}
