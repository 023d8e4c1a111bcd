/* queue_sqlite_impl.h: what the two files of the SQLite backend share (private to src/queue).
 *
 *   queue_sqlite.c     the queue operations (queue_impl.h) as statements, rows -> jobs
 *   queue_sqlite_db.c  the database: schema, the statements' SQL and their cache, errors,
 *                      transactions, opening (WAL, synchronous, schema version) */
#ifndef VD_QUEUE_SQLITE_IMPL_H
#define VD_QUEUE_SQLITE_IMPL_H

#include <sqlite3.h>
#include <stdint.h>

#include "queue/queue_impl.h"

/* The prepared statements (their SQL is in queue_sqlite_db.c). */
enum {
    ST_INSERT,
    ST_PROMOTE,
    ST_RECLAIM,
    ST_TAKE,
    ST_HEARTBEAT,
    ST_PROBE,
    ST_PROGRESS,
    ST_COMPLETE,
    ST_FAIL_READ,
    ST_FAIL_WRITE,
    ST_RELEASE,
    ST_CANCEL,
    ST_REQUEUE,
    ST_GET,
    ST_LIST,
    ST_COUNTS,
    ST_TTL,
    ST_PURGE,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST__COUNT
};

typedef struct {
    vd_queue base;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[ST__COUNT];
    int64_t busy_since_ms; /* when the current wait for a lock began */
} sq_queue;

/* Opens the database at url_path ("PATH[?sync=full|normal]") into q (path, db, schema).
 * On failure, vd_sq_close frees what was set. */
vd_status vd_sq_open(sq_queue *q, const char *url_path, vd_error *err);
/* Finalizes the statements, closes the database, frees the path (not q itself). */
void vd_sq_close(sq_queue *q);

/* *out = the cached, reset statement idx, prepared on first use. */
vd_status vd_sq_stmt(sq_queue *q, int idx, sqlite3_stmt **out, vd_error *err);
/* Runs a statement that returns no rows; what names it in the error. */
vd_status vd_sq_run_done(sq_queue *q, sqlite3_stmt *s, const char *what, vd_error *err);
/* The error of SQLite result code rc (VD_ERR_BUSY, VD_ERR_NOSPACE, VD_ERR_IO, ...). */
vd_status vd_sq_db_error(sq_queue *q, int rc, const char *what, vd_error *err);
/* BEGIN IMMEDIATE; COMMIT (rolls back when the commit fails); commit when st is VD_OK, else
 * roll back, returning st or the commit's failure. */
vd_status vd_sq_tx_begin(sq_queue *q, vd_error *err);
vd_status vd_sq_tx_commit(sq_queue *q, vd_error *err);
vd_status vd_sq_tx_end(sq_queue *q, vd_status st, vd_error *err);

#endif
