/* store_impl.h: internals shared by the store's source files (not a public
 * header: use store.h, sessions.h and vectors.h). */
#ifndef VD_STORE_IMPL_H
#define VD_STORE_IMPL_H

#include <sqlite3.h>

#include "store/store.h"

struct vd_store {
    sqlite3 *db;
    int version;
    int in_txn; /* inside vd_store_begin ... commit */
};

/* Fills err with VD_ERR_DB, what failed and SQLite's message; returns VD_ERR_DB
 * (VD_ERR_BUSY when SQLite was busy past the timeout). */
vd_status vd_store_db_error(vd_store *s, vd_error *err, const char *what);

/* Prepares sql or fills err. */
vd_status vd_store_prepare(vd_store *s, const char *sql, sqlite3_stmt **st, vd_error *err);

/* Runs sql with no results. */
vd_status vd_store_exec(vd_store *s, const char *sql, vd_error *err);

/* Starts a write transaction unless the caller holds one (*owned tells which),
 * and ends it: commit when st is VD_OK, else roll back. */
vd_status vd_store_txn_begin(vd_store *s, int *owned, vd_error *err);
vd_status vd_store_txn_end(vd_store *s, int owned, vd_status st, vd_error *err);

/* Returns a malloc'd copy of column i's text (NULL for SQL NULL). */
char *vd_store_col_strdup(sqlite3_stmt *st, int i);

#endif
