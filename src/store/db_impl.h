/* db_impl.h: what a backend of store_db.h provides (db_sqlite.c, db_pg.c);
 * store_db.c dispatches through it. Not for the store's query code. */
#ifndef VD_STORE_DB_IMPL_H
#define VD_STORE_DB_IMPL_H

#include "store/store_db.h"

typedef struct {
    void (*close)(vd_db *db);
    vd_status (*exec)(vd_db *db, const char *sql, vd_error *err);
    vd_status (*begin)(vd_db *db, vd_error *err);
    vd_status (*commit)(vd_db *db, vd_error *err);
    void (*rollback)(vd_db *db);
    void (*read_begin)(vd_db *db, int *owned);
    void (*read_end)(vd_db *db, int owned);
    vd_status (*prepare)(vd_db *db, const char *sql, int flags, vd_db_stmt **st, vd_error *err);
    void (*finalize)(vd_db_stmt *st);
    vd_status (*bind_text)(vd_db_stmt *st, int i, const char *text);
    vd_status (*bind_int64)(vd_db_stmt *st, int i, int64_t v);
    vd_status (*bind_double)(vd_db_stmt *st, int i, double v);
    vd_status (*bind_blob)(vd_db_stmt *st, int i, const void *data, size_t len);
    vd_status (*bind_null)(vd_db_stmt *st, int i);
    vd_status (*step)(vd_db_stmt *st, int *row, const char *what, vd_error *err);
    int64_t (*changes)(vd_db_stmt *st);
    void (*reset)(vd_db_stmt *st);
    int (*col_null)(vd_db_stmt *st, int i);
    int64_t (*col_int64)(vd_db_stmt *st, int i);
    double (*col_double)(vd_db_stmt *st, int i);
    const char *(*col_text)(vd_db_stmt *st, int i);
    const void *(*col_blob)(vd_db_stmt *st, int i, size_t *len);
    vd_status (*schema_read)(vd_db *db, int *version, vd_error *err);
    vd_status (*schema_write)(vd_db *db, int version, vd_error *err);
    vd_status (*migrate_begin)(vd_db *db, vd_error *err);
    vd_status (*migrate_end)(vd_db *db, int ok, vd_error *err);
    int (*moved)(vd_db *db);
} vd_db_ops;

/* The first member of each backend's handle and statement. */
struct vd_db {
    const vd_db_ops *ops;
    vd_db_kind kind;
    int in_txn;      /* inside vd_db_begin ... commit/rollback */
    char shown[512]; /* path or URL without its password */
};

struct vd_db_stmt {
    vd_db *db;
};

#endif
