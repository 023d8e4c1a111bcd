/* store_impl.h: internals shared by the store's source files (not a public
 * header: use store.h, sessions.h and vectors.h). Queries go through the
 * database interface of store_db.h, written once for both backends. */
#ifndef VD_STORE_IMPL_H
#define VD_STORE_IMPL_H

#include "store/store.h"
#include "store/store_db.h"

struct vd_store {
    vd_db *db;
    int version;
};

/* Starts a write transaction unless the caller holds one (*owned tells which),
 * and ends it: commit when st is VD_OK, else roll back. */
vd_status vd_store_txn_begin(vd_store *s, int *owned, vd_error *err);
vd_status vd_store_txn_end(vd_store *s, int owned, vd_status st, vd_error *err);

/* Vectors as BLOBs of little-endian float32 (vectors.c): binds n floats (SQL
 * NULL when n is 0; VD_ERR_NOMEM), reads column col as `want` floats (a
 * malloc'd array; NULL on a size mismatch or when want is 0), converts n. */
vd_status vd_store_bind_floats(vd_db_stmt *st, int col, const float *v, size_t n);
float *vd_store_col_floats(vd_db_stmt *st, int col, size_t want);
void vd_store_floats_from_le(const unsigned char *in, size_t n, float *out);

/* One migration: the SQL for each backend (PostgreSQL's NULL when the step
 * does nothing there). */
typedef struct {
    const char *sqlite;
    const char *pg;
} vd_store_migration;

/* The migrations, one per schema version (store_schema.c). */
extern const vd_store_migration vd_store_migrations[];

#endif
