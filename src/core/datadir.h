/* datadir.h: the data directory, resolved in one place.
 *
 * Every default path of visiond (the store DATA/store.db, the queue
 * sqlite:DATA/visiond.db, the model server's socket DATA/model.sock, uploads,
 * models) lies under the data directory: $VISIOND_DATA when it is set and
 * non-empty, else "./data". A --data option sets it with vd_data_dir_set, so
 * that every default of the process, and of the children it starts, follows. */
#ifndef VD_CORE_DATADIR_H
#define VD_CORE_DATADIR_H

#include <stddef.h>

#include "core/err.h"

/* The default when $VISIOND_DATA is unset or empty. */
#define VD_DATA_DIR_DEFAULT "./data"

/* Returns the data directory (borrowed: valid until the next vd_data_dir_set). */
const char *vd_data_dir(void);

/* Makes dir the data directory of this process and of the processes it
 * starts (it sets $VISIOND_DATA). VD_ERR_INVALID for NULL or "". */
vd_status vd_data_dir_set(const char *dir, vd_error *err);

/* Writes "DATA/name" into buf (truncated to n) and returns buf. */
const char *vd_data_path(char *buf, size_t n, const char *name);

#endif
