/* dl.h: a shared library opened with dlopen on first use and called through a table of
 * function pointers, instead of being linked (core/pq.h: libpq; train/liblinear.h:
 * liblinear; each says why).
 *
 * Use: a module keeps one vd_dl (VD_DL_INIT: the soname and an array of its function names)
 * and a struct of exactly that many function pointers, in the same order. vd_dl_load opens
 * the library the first time (RTLD_NOW | RTLD_LOCAL) and fills the struct; every later call
 * gives the first answer. Thread-safe; once loaded, a call costs one atomic load. */
#ifndef VD_CORE_DL_H
#define VD_CORE_DL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct {
    /* read-only */
    const char *soname;       /* e.g. "libpq.so.5" */
    const char *const *names; /* the functions, in the order of the table */
    size_t n;
    char why[256]; /* after a failed load: the loader's message, or the missing function */
    /* private */
    pthread_mutex_t mu;
    atomic_int state; /* 0: not tried; 1: loaded; -1: failed */
} vd_dl;

/* names must be an array (its size gives n). */
#define VD_DL_INIT(soname, names)                                                                  \
    {                                                                                              \
        (soname), (names), sizeof(names) / sizeof *(names), "", PTHREAD_MUTEX_INITIALIZER, 0       \
    }

/* Opens d's library once and writes each function's address into table, a struct of d->n
 * function pointers in the order of d->names. Returns 1 when the table is usable, 0 when not
 * (d->why says why). */
int vd_dl_load(vd_dl *d, void *table);

#endif
