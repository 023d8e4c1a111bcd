/* store_db.h: the store's internal database interface (not a public header:
 * use store.h, sessions.h, vectors.h). The store's queries (sessions.c,
 * vectors.c, and any table added later) are written once, in SQL that both
 * backends accept, against this interface; db_sqlite.c implements it over
 * sqlite3, db_pg.c over libpq (core/pg.h connects).
 *
 * SQL: `?` placeholders, numbered in order (db_pg.c turns them into $1,
 * $2...; a `?` inside a '...' literal is left alone). Upserts with
 * INSERT ... ON CONFLICT (...) DO UPDATE/NOTHING, RETURNING, no rowids, no
 * AUTOINCREMENT, no INSERT OR REPLACE. A query that needs a backend's own
 * function (JSON) asks vd_db_kind() and picks its text in one place.
 *
 * Types: text, 64-bit integers, doubles (DOUBLE PRECISION), blobs (BYTEA,
 * sent and read in binary: no escaping). In PostgreSQL a bound value's type
 * is inferred from the statement; cast (`?::text`) where it cannot be.
 *
 * Errors are vd_status with err filled ("store: WHAT: <backend message>"):
 * VD_ERR_STATE for a unique or foreign-key violation, VD_ERR_BUSY for a lock
 * wait past the timeout (SQLite) or a serialization failure (PostgreSQL),
 * VD_ERR_NOSPACE for a full disk, VD_ERR_CONN when the PostgreSQL connection
 * is gone, VD_ERR_DB otherwise.
 *
 * Reconnecting (PostgreSQL): a handle whose connection broke reconnects, with
 * vd_pg_connect's backoff, the next time a statement starts outside a
 * transaction. A statement prepared with VD_DB_RETRY (a read, or a write that
 * gives the same result when run twice) that fails with VD_ERR_CONN outside a
 * transaction is run again once on the new connection; any other failure with
 * VD_ERR_CONN is reported as it is: inside a transaction the whole
 * transaction is lost (the server rolled it back) and the caller's
 * vd_store_* function returns VD_ERR_CONN. */
#ifndef VD_STORE_DB_H
#define VD_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum { VD_DB_SQLITE = 0, VD_DB_PG } vd_db_kind;

typedef struct vd_db vd_db;
typedef struct vd_db_stmt vd_db_stmt;

/* Flags of vd_db_prepare. */
enum {
    VD_DB_RETRY = 1, /* safe to run again after a lost connection (see above) */
};

/* How to open: see vd_store_opts (store.h). */
typedef struct {
    int busy_timeout_ms;  /* SQLite: how long a writer waits for another */
    int read_only;        /* SQLite: open an existing file read-only */
    int64_t conn_wait_ms; /* PostgreSQL: how long to wait for a server that is down */
} vd_db_opts;

/* Opens a SQLite file (path, created with its parent directory unless
 * read_only) or a PostgreSQL database (url, a form of core/pg.h). */
vd_status vd_db_open_sqlite(const char *path, const vd_db_opts *o, vd_db **out, vd_error *err);
vd_status vd_db_open_pg(const char *url, const vd_db_opts *o, vd_db **out, vd_error *err);

/* Closes db (NULL is fine), rolling back an open transaction. */
void vd_db_close(vd_db *db);

vd_db_kind vd_db_kind_of(const vd_db *db);

/* The URL or path db was opened with, as messages may show it (no password). */
const char *vd_db_shown(const vd_db *db);

/* Runs sql (one or more statements, no parameters, no rows wanted). */
vd_status vd_db_exec(vd_db *db, const char *sql, vd_error *err);

/* Transactions: begin takes the write lock up front in SQLite (BEGIN
 * IMMEDIATE); commit ends it (rolling back when the commit fails); rollback
 * is a no-op without one. They do not nest: vd_db_in_txn tells. */
vd_status vd_db_begin(vd_db *db, vd_error *err);
vd_status vd_db_commit(vd_db *db, vd_error *err);
void vd_db_rollback(vd_db *db);
int vd_db_in_txn(const vd_db *db);

/* A read snapshot for several SELECTs (SQLite: a deferred BEGIN; PostgreSQL:
 * nothing, each statement sees committed data). Ended by vd_db_read_end.
 * No-op inside a transaction. */
void vd_db_read_begin(vd_db *db, int *owned);
void vd_db_read_end(vd_db *db, int owned);

/* Prepares sql (flags: VD_DB_RETRY). *st is freed with vd_db_finalize. */
vd_status vd_db_prepare(vd_db *db, const char *sql, int flags, vd_db_stmt **st, vd_error *err);
void vd_db_finalize(vd_db_stmt *st);

/* Binds parameter i (from 1). Values are copied. text NULL binds SQL NULL;
 * a blob of len 0 or NULL data binds SQL NULL. Returns VD_ERR_NOMEM when a
 * copy cannot be made (the statement then fails at step too). */
vd_status vd_db_bind_text(vd_db_stmt *st, int i, const char *text);
vd_status vd_db_bind_int64(vd_db_stmt *st, int i, int64_t v);
vd_status vd_db_bind_double(vd_db_stmt *st, int i, double v);
vd_status vd_db_bind_blob(vd_db_stmt *st, int i, const void *data, size_t len);
vd_status vd_db_bind_null(vd_db_stmt *st, int i);

/* Runs the statement, or moves to its next row: *row = 1 with a row to read
 * with the vd_db_col_* functions, 0 when done. what names the operation in
 * messages. */
vd_status vd_db_step(vd_db_stmt *st, int *row, const char *what, vd_error *err);

/* Runs a statement that returns no rows (what names it in messages). */
vd_status vd_db_run(vd_db_stmt *st, const char *what, vd_error *err);

/* Rows changed by the last step of st (INSERT, UPDATE, DELETE). */
int64_t vd_db_changes(vd_db_stmt *st);

/* Makes st ready to run again; bindings are kept until bound again. */
void vd_db_reset(vd_db_stmt *st);

/* Columns of the current row, from 0. col_text: NULL for SQL NULL, valid
 * until the next step/reset/finalize. col_blob: *len bytes (NULL, 0 for SQL
 * NULL), valid as long. Integers and doubles read as 0 when NULL. */
int vd_db_col_null(vd_db_stmt *st, int i);
int64_t vd_db_col_int64(vd_db_stmt *st, int i);
double vd_db_col_double(vd_db_stmt *st, int i);
const char *vd_db_col_text(vd_db_stmt *st, int i);
const void *vd_db_col_blob(vd_db_stmt *st, int i, size_t *len);

/* A malloc'd copy of column i's text (NULL for SQL NULL). */
char *vd_db_col_strdup(vd_db_stmt *st, int i);

/* Schema version of the database (0: empty) and setting it, inside the
 * migration transaction. SQLite: PRAGMA user_version; PostgreSQL: the one
 * row of table visiond_schema. */
vd_status vd_db_schema_read(vd_db *db, int *version, vd_error *err);
vd_status vd_db_schema_write(vd_db *db, int version, vd_error *err);

/* Serialises schema migrations between processes that open a new database
 * at once: SQLite takes the write lock (vd_db_begin), PostgreSQL an advisory
 * lock (vd_pg_lock) then a transaction. vd_db_migrate_end commits (ok) or
 * rolls back, and releases the lock. */
vd_status vd_db_migrate_begin(vd_db *db, vd_error *err);
vd_status vd_db_migrate_end(vd_db *db, int ok, vd_error *err);

/* Returns 1 when the SQLite file under db is no longer at its path; 0 for
 * PostgreSQL. */
int vd_db_moved(vd_db *db);

#endif
