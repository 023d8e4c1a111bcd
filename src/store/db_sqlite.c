/* db_sqlite.c: the store's database interface (store_db.h) over SQLite: one
 * file in WAL mode with a busy timeout and foreign keys on. */
#include "store/db_impl.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sqlite_wal.h"
#include "core/util.h"

typedef struct {
    vd_db base;
    sqlite3 *h;
} lite_db;

typedef struct {
    vd_db_stmt base;
    sqlite3_stmt *st;
    int64_t changes;
} lite_stmt;

static sqlite3 *H(vd_db *db)
{
    return ((lite_db *)db)->h;
}

static sqlite3_stmt *S(vd_db_stmt *st)
{
    return ((lite_stmt *)st)->st;
}

/* Fills err from SQLite's last error on h: "store: WHAT: message". */
static vd_status lite_error(sqlite3 *h, int code, const char *what, vd_error *err)
{
    vd_status st = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? VD_ERR_BUSY
                   : code == SQLITE_FULL                          ? VD_ERR_NOSPACE
                   : code == SQLITE_CONSTRAINT                    ? VD_ERR_STATE
                                                                  : VD_ERR_DB;
    return vd_error_set(err, st, "store: %s: %s", what, h ? sqlite3_errmsg(h) : "no database");
}

static void lite_close(vd_db *db)
{
    lite_db *d = (lite_db *)db;
    if (d->h) {
        if (db->in_txn) sqlite3_exec(d->h, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(d->h);
    }
    free(d);
}

static vd_status lite_exec(vd_db *db, const char *sql, vd_error *err)
{
    int rc = sqlite3_exec(H(db), sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return lite_error(H(db), rc, sql, err);
    return VD_OK;
}

static vd_status lite_begin(vd_db *db, vd_error *err)
{
    vd_status rc = lite_exec(db, "BEGIN IMMEDIATE", err);
    if (rc == VD_OK) db->in_txn = 1;
    return rc;
}

static vd_status lite_commit(vd_db *db, vd_error *err)
{
    vd_status rc = lite_exec(db, "COMMIT", err);
    if (rc != VD_OK) sqlite3_exec(H(db), "ROLLBACK", NULL, NULL, NULL);
    db->in_txn = 0;
    return rc;
}

static void lite_rollback(vd_db *db)
{
    sqlite3_exec(H(db), "ROLLBACK", NULL, NULL, NULL);
    db->in_txn = 0;
}

static void lite_read_begin(vd_db *db, int *owned)
{
    *owned = sqlite3_exec(H(db), "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
}

static void lite_read_end(vd_db *db, int owned)
{
    (void)owned;
    sqlite3_exec(H(db), "COMMIT", NULL, NULL, NULL);
}

static vd_status lite_prepare(vd_db *db, const char *sql, int flags, vd_db_stmt **out,
                              vd_error *err)
{
    (void)flags; /* no connection to lose */
    *out = NULL;
    lite_stmt *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    int rc = sqlite3_prepare_v2(H(db), sql, -1, &s->st, NULL);
    if (rc != SQLITE_OK) {
        free(s);
        return lite_error(H(db), rc, "prepare", err);
    }
    s->base.db = db;
    *out = &s->base;
    return VD_OK;
}

static void lite_finalize(vd_db_stmt *st)
{
    sqlite3_finalize(S(st));
    free(st);
}

static vd_status bound(int rc)
{
    return rc == SQLITE_OK ? VD_OK : rc == SQLITE_NOMEM ? VD_ERR_NOMEM : VD_ERR_INVALID;
}

static vd_status lite_bind_text(vd_db_stmt *st, int i, const char *text)
{
    if (!text) return bound(sqlite3_bind_null(S(st), i));
    return bound(sqlite3_bind_text(S(st), i, text, -1, SQLITE_TRANSIENT));
}

static vd_status lite_bind_int64(vd_db_stmt *st, int i, int64_t v)
{
    return bound(sqlite3_bind_int64(S(st), i, v));
}

static vd_status lite_bind_double(vd_db_stmt *st, int i, double v)
{
    return bound(sqlite3_bind_double(S(st), i, v));
}

static vd_status lite_bind_blob(vd_db_stmt *st, int i, const void *data, size_t len)
{
    if (!data || len == 0) return bound(sqlite3_bind_null(S(st), i));
    if (len > INT32_MAX) return VD_ERR_LIMIT;
    return bound(sqlite3_bind_blob(S(st), i, data, (int)len, SQLITE_TRANSIENT));
}

static vd_status lite_bind_null(vd_db_stmt *st, int i)
{
    return bound(sqlite3_bind_null(S(st), i));
}

static vd_status lite_step(vd_db_stmt *st, int *row, const char *what, vd_error *err)
{
    lite_stmt *s = (lite_stmt *)st;
    int rc = sqlite3_step(s->st);
    *row = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW) return VD_OK;
    if (rc == SQLITE_DONE) {
        s->changes = sqlite3_changes64(H(st->db));
        return VD_OK;
    }
    return lite_error(H(st->db), rc, what, err);
}

static int64_t lite_changes(vd_db_stmt *st)
{
    return ((lite_stmt *)st)->changes;
}

static void lite_reset(vd_db_stmt *st)
{
    sqlite3_reset(S(st));
}

static int lite_col_null(vd_db_stmt *st, int i)
{
    return sqlite3_column_type(S(st), i) == SQLITE_NULL;
}

static int64_t lite_col_int64(vd_db_stmt *st, int i)
{
    return sqlite3_column_int64(S(st), i);
}

static double lite_col_double(vd_db_stmt *st, int i)
{
    return sqlite3_column_double(S(st), i);
}

static const char *lite_col_text(vd_db_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(S(st), i);
}

static const void *lite_col_blob(vd_db_stmt *st, int i, size_t *len)
{
    const void *b = sqlite3_column_blob(S(st), i);
    *len = b ? (size_t)sqlite3_column_bytes(S(st), i) : 0;
    return b;
}

static vd_status lite_schema_read(vd_db *db, int *version, vd_error *err)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(H(db), "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK) return lite_error(H(db), rc, "read user_version", err);
    rc = sqlite3_step(st);
    *version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) return lite_error(H(db), rc, "read user_version", err);
    return VD_OK;
}

static vd_status lite_schema_write(vd_db *db, int version, vd_error *err)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", version);
    return lite_exec(db, sql, err);
}

/* BEGIN IMMEDIATE: the write lock is the migration lock. */
static vd_status lite_migrate_begin(vd_db *db, vd_error *err)
{
    return lite_begin(db, err);
}

static vd_status lite_migrate_end(vd_db *db, int ok, vd_error *err)
{
    if (ok) return lite_commit(db, err);
    lite_rollback(db);
    return VD_OK;
}

static int lite_moved(vd_db *db)
{
    int moved = 0;
    if (sqlite3_file_control(H(db), "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK) return 0;
    return moved != 0;
}

static const vd_db_ops lite_ops = {
    lite_close,       lite_exec,        lite_begin,       lite_commit,       lite_rollback,
    lite_read_begin,  lite_read_end,    lite_prepare,     lite_finalize,     lite_bind_text,
    lite_bind_int64,  lite_bind_double, lite_bind_blob,   lite_bind_null,    lite_step,
    lite_changes,     lite_reset,       lite_col_null,    lite_col_int64,    lite_col_double,
    lite_col_text,    lite_col_blob,    lite_schema_read, lite_schema_write, lite_migrate_begin,
    lite_migrate_end, lite_moved,
};

static int mkdir_parent(const char *path)
{
    char dir[4096];
    vd_strlcpy(dir, path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

vd_status vd_db_open_sqlite(const char *path, const vd_db_opts *o, vd_db **out, vd_error *err)
{
    *out = NULL;
    int ro = o && o->read_only;
    int busy = o && o->busy_timeout_ms > 0 ? o->busy_timeout_ms : 10000;
    if (!ro && mkdir_parent(path) != 0)
        return vd_error_set(err, VD_ERR_IO, "store: cannot create the directory of %s: %s", path,
                            strerror(errno));
    lite_db *d = calloc(1, sizeof *d);
    if (!d) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    d->base.ops = &lite_ops;
    d->base.kind = VD_DB_SQLITE;
    vd_strlcpy(d->base.shown, path, sizeof d->base.shown);
    int flags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* one handle per thread: see store.h */
    vd_status rc;
    int r = sqlite3_open_v2(path, &d->h, flags, NULL);
    if (r != SQLITE_OK) {
        rc = lite_error(d->h, r, path, err);
        goto fail;
    }
    sqlite3_busy_timeout(d->h, busy);
    sqlite3_extended_result_codes(d->h, 0);
    if (!ro && (rc = vd_sqlite_wal(d->h, path, "store", busy, err)) != VD_OK) goto fail;
    if ((rc = lite_exec(&d->base, "PRAGMA foreign_keys = ON", err)) != VD_OK) goto fail;
    if (!ro && (rc = lite_exec(&d->base, "PRAGMA synchronous = NORMAL", err)) != VD_OK) goto fail;
    *out = &d->base;
    return VD_OK;
fail:
    lite_close(&d->base);
    return rc;
}
