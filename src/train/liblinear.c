/* liblinear.c: liblinear through dlopen (train/liblinear.h), opened by core/dl.h. */
#include "train/liblinear.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/dl.h"

#define VD_LIBLINEAR_NAME(name) #name,
static const char *const names[] = {VD_LIBLINEAR_FUNCS(VD_LIBLINEAR_NAME)};
#undef VD_LIBLINEAR_NAME

static vd_liblinear_table table;
static vd_dl lib = VD_DL_INIT("liblinear.so.4", names);

_Static_assert(sizeof table == sizeof names / sizeof *names * sizeof(void *),
               "vd_liblinear_table is one function pointer per name");

vd_status vd_liblinear_load(vd_error *err)
{
    if (vd_dl_load(&lib, &table)) return VD_OK;
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "training needs liblinear (Debian package liblinear4): %s", lib.why);
}

const vd_liblinear_table *vd_liblinear(void)
{
    if (!vd_dl_load(&lib, &table)) {
        fprintf(stderr, "visiond: a liblinear call without liblinear (%s): a bug\n", lib.why);
        abort();
    }
    return &table;
}
