/* pq.c: libpq through dlopen (core/pq.h), opened by core/dl.h. */
#include "core/pq.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/dl.h"

#define VD_PQ_NAME(name) #name,
static const char *const names[] = {VD_PQ_FUNCS(VD_PQ_NAME)};
#undef VD_PQ_NAME

static vd_pq_table table;
static vd_dl lib = VD_DL_INIT("libpq.so.5", names);

_Static_assert(sizeof table == sizeof names / sizeof *names * sizeof(void *),
               "vd_pq_table is one function pointer per name");

vd_status vd_pq_load(vd_error *err)
{
    if (vd_dl_load(&lib, &table)) return VD_OK;
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "PostgreSQL needs libpq (Debian package libpq5): %s", lib.why);
}

const vd_pq_table *vd_pq(void)
{
    if (!vd_dl_load(&lib, &table)) {
        fprintf(stderr, "visiond: a libpq call without libpq (%s): a bug\n", lib.why);
        abort();
    }
    return &table;
}
