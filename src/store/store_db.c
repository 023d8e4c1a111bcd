/* store_db.c: the store's database interface (store_db.h), dispatching to
 * the backend a handle was opened with (db_sqlite.c, db_pg.c). */
#include "store/db_impl.h"

#include "core/util.h"

void vd_db_close(vd_db *db)
{
    if (db) db->ops->close(db);
}

vd_db_kind vd_db_kind_of(const vd_db *db)
{
    return db->kind;
}

const char *vd_db_shown(const vd_db *db)
{
    return db->shown;
}

vd_status vd_db_exec(vd_db *db, const char *sql, vd_error *err)
{
    return db->ops->exec(db, sql, err);
}

vd_status vd_db_begin(vd_db *db, vd_error *err)
{
    if (db->in_txn) return vd_error_set(err, VD_ERR_STATE, "store: a transaction is already open");
    return db->ops->begin(db, err);
}

vd_status vd_db_commit(vd_db *db, vd_error *err)
{
    if (!db->in_txn) return vd_error_set(err, VD_ERR_STATE, "store: no transaction is open");
    return db->ops->commit(db, err);
}

void vd_db_rollback(vd_db *db)
{
    if (db->in_txn) db->ops->rollback(db);
}

int vd_db_in_txn(const vd_db *db)
{
    return db->in_txn;
}

void vd_db_read_begin(vd_db *db, int *owned)
{
    *owned = 0;
    if (!db->in_txn) db->ops->read_begin(db, owned);
}

void vd_db_read_end(vd_db *db, int owned)
{
    if (owned) db->ops->read_end(db, owned);
}

vd_status vd_db_prepare(vd_db *db, const char *sql, int flags, vd_db_stmt **st, vd_error *err)
{
    return db->ops->prepare(db, sql, flags, st, err);
}

void vd_db_finalize(vd_db_stmt *st)
{
    if (st) st->db->ops->finalize(st);
}

vd_status vd_db_bind_text(vd_db_stmt *st, int i, const char *text)
{
    return st->db->ops->bind_text(st, i, text);
}

vd_status vd_db_bind_int64(vd_db_stmt *st, int i, int64_t v)
{
    return st->db->ops->bind_int64(st, i, v);
}

vd_status vd_db_bind_double(vd_db_stmt *st, int i, double v)
{
    return st->db->ops->bind_double(st, i, v);
}

vd_status vd_db_bind_blob(vd_db_stmt *st, int i, const void *data, size_t len)
{
    return st->db->ops->bind_blob(st, i, data, len);
}

vd_status vd_db_bind_null(vd_db_stmt *st, int i)
{
    return st->db->ops->bind_null(st, i);
}

vd_status vd_db_step(vd_db_stmt *st, int *row, const char *what, vd_error *err)
{
    return st->db->ops->step(st, row, what, err);
}

vd_status vd_db_run(vd_db_stmt *st, const char *what, vd_error *err)
{
    int row = 0;
    return st->db->ops->step(st, &row, what, err);
}

int64_t vd_db_changes(vd_db_stmt *st)
{
    return st->db->ops->changes(st);
}

void vd_db_reset(vd_db_stmt *st)
{
    st->db->ops->reset(st);
}

int vd_db_col_null(vd_db_stmt *st, int i)
{
    return st->db->ops->col_null(st, i);
}

int64_t vd_db_col_int64(vd_db_stmt *st, int i)
{
    return st->db->ops->col_int64(st, i);
}

double vd_db_col_double(vd_db_stmt *st, int i)
{
    return st->db->ops->col_double(st, i);
}

const char *vd_db_col_text(vd_db_stmt *st, int i)
{
    return st->db->ops->col_text(st, i);
}

const void *vd_db_col_blob(vd_db_stmt *st, int i, size_t *len)
{
    return st->db->ops->col_blob(st, i, len);
}

char *vd_db_col_strdup(vd_db_stmt *st, int i)
{
    const char *t = vd_db_col_text(st, i);
    return t ? vd_strdup(t) : NULL;
}

vd_status vd_db_schema_read(vd_db *db, int *version, vd_error *err)
{
    return db->ops->schema_read(db, version, err);
}

vd_status vd_db_schema_write(vd_db *db, int version, vd_error *err)
{
    return db->ops->schema_write(db, version, err);
}

vd_status vd_db_migrate_begin(vd_db *db, vd_error *err)
{
    return db->ops->migrate_begin(db, err);
}

vd_status vd_db_migrate_end(vd_db *db, int ok, vd_error *err)
{
    return db->ops->migrate_end(db, ok, err);
}

int vd_db_moved(vd_db *db)
{
    return db->ops->moved(db);
}
