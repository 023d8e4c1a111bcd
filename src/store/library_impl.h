/* library_impl.h: internals shared by library.c and library_faces.c (not a
 * public header: use store/library.h). */
#ifndef VD_STORE_LIBRARY_IMPL_H
#define VD_STORE_LIBRARY_IMPL_H

#include "store/library.h"

/* Takes n numbers of the library's counter inside the caller's transaction
 * (the row stays locked until it ends); *last is the highest: the numbers
 * are *last - n + 1 .. *last. */
vd_status vd_library_seq_take(vd_store *s, int64_t n, int64_t *last, vd_error *err);

/* Logs the removal of an asset or face ("asset", "face") at seq. */
vd_status vd_library_log_removal(vd_store *s, int64_t seq, const char *kind, int64_t id,
                                 vd_error *err);

/* *out: a malloc'd L2-normalised copy of v; VD_ERR_INVALID for no vector, a
 * bad dim, a value that is not finite or a norm of 0 (what names it). */
vd_status vd_library_normalised(const float *v, int dim, const char *what, float **out,
                                vd_error *err);

/* VD_OK when asset id exists and is not deleted, else VD_ERR_NOT_FOUND. */
vd_status vd_library_asset_live(vd_store *s, int64_t id, vd_error *err);

/* Removes the faces of asset id (of model; NULL: every model), logging each
 * removal with a new seq and clearing people's covers that were among them.
 * Inside the caller's transaction. */
vd_status vd_library_faces_remove(vd_store *s, int64_t id, const char *model, vd_error *err);

/* Runs sql with the one integer parameter id; *changes (may be NULL) counts rows. */
vd_status vd_library_run_id(vd_store *s, const char *sql, int64_t id, const char *what,
                            int64_t *changes, vd_error *err);

/* A list's limit: dflt when limit <= 0, at most VD_LIBRARY_LIST_MAX. */
int vd_library_limit(int limit, int dflt);

/* Returns list grown (realloc) so that slot n exists, zeroed; NULL: no memory
 * (list untouched). */
void *vd_library_grow(void *list, size_t n, size_t *cap, size_t sz);

#endif
