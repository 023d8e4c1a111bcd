/* store.h: the store for sessions, examples, classifiers, embeddings and
 * faces (everything but the job queue, which has its own database), on one
 * of two backends with the same contract (docs/store.md):
 *
 *  - SQLite (the default): one file, by default $VISIOND_DATA/store.db, in
 *    WAL mode with a busy timeout, so that the api, the worker supervisors
 *    and their work-horses can read and write it at the same time (readers
 *    never block writers; writers take turns, waiting up to busy_timeout_ms).
 *  - PostgreSQL 15, shared by processes on several machines (core/pg.h URL
 *    forms). A handle whose connection broke reconnects, with backoff, on its
 *    next statement outside a transaction; a read or an idempotent write cut
 *    by the loss runs again once, any other write (and anything inside a
 *    transaction) returns VD_ERR_CONN, with nothing of it written.
 *
 * The schema is versioned; vd_store_open applies every migration newer than
 * the database's version in one transaction under a lock (SQLite's write
 * lock, PostgreSQL's advisory lock), so an old store is upgraded in place, a
 * new one is created from scratch, and several processes opening a new one
 * together migrate it once. A store written by a newer visiond (a version we
 * do not know) is refused.
 *
 * Concurrency: a vd_store handle is not thread-safe and must not be used
 * across fork(): open one per thread or process (opening is cheap). Every
 * write function is atomic on its own; vd_store_begin/commit group several.
 *
 * The concerns live in their own headers: store/sessions.h (training
 * sessions, their examples and classifiers), store/vectors.h (the embedding
 * and face caches), core/sha256.h (content keys). */
#ifndef VD_STORE_H
#define VD_STORE_H

#include <stdint.h>

#include "core/err.h"

typedef struct vd_store vd_store;

/* The schema version this build writes (and the newest it can read). */
#define VD_STORE_SCHEMA_VERSION 3

typedef struct {
    int busy_timeout_ms;  /* SQLite: how long a writer waits for another; 0 = 10000 */
    int read_only;        /* SQLite: open an existing file read-only (no migrations) */
    int64_t conn_wait_ms; /* PostgreSQL: how long to wait for a server that is down
                             (at open and at each reconnect); 0 = 10000 */
} vd_store_opts;

/* Returns the default store path into buf: $VISIOND_DATA/store.db, else
 * ./data/store.db. */
const char *vd_store_default_path(char *buf, size_t n);

/* Returns the store every command opens when not told (--store) into buf:
 * $VISIOND_STORE when set and not empty, else vd_store_default_path. */
const char *vd_store_default_url(char *buf, size_t n);

/* Opens the store at url and migrates its schema to VD_STORE_SCHEMA_VERSION.
 * url: "sqlite:PATH" or a plain PATH (a SQLite file, created when needed
 * with its parent directory; WAL and foreign keys on), or a PostgreSQL URL
 * (vd_pg_url_is: postgres://..., the keyword or service= form), connecting
 * with vd_pg_connect (waiting opts->conn_wait_ms for a server that is down).
 * opts may be NULL. *out is owned by the caller and closed with
 * vd_store_close. VD_ERR_DB when the database fails, VD_ERR_UNSUPPORTED for
 * a store from a newer schema; PostgreSQL: VD_ERR_AUTH (wrong password or
 * user), VD_ERR_NOT_FOUND (no such database), VD_ERR_CONN (no server after
 * the wait); messages show the URL without its password. */
vd_status vd_store_open(const char *url, const vd_store_opts *opts, vd_store **out, vd_error *err);

/* Closes the handle (NULL is fine). Uncommitted work from vd_store_begin is
 * rolled back. */
void vd_store_close(vd_store *s);

/* Returns 1 when the SQLite file this handle opened is no longer at its path
 * (it was deleted, renamed or replaced), so that opening the path again would
 * give another database; 0 otherwise (always 0 for PostgreSQL). For long-lived handles (the API's
 * pool): such a handle is closed rather than used. */
int vd_store_moved(vd_store *s);

/* Returns the file's schema version (after migrations: VD_STORE_SCHEMA_VERSION). */
int vd_store_schema_version(const vd_store *s);

/* Starts a write transaction (SQLite: BEGIN IMMEDIATE, waiting for other
 * writers up to the busy timeout; PostgreSQL: BEGIN). Transactions do not
 * nest. */
vd_status vd_store_begin(vd_store *s, vd_error *err);

/* Commits the transaction started by vd_store_begin. */
vd_status vd_store_commit(vd_store *s, vd_error *err);

/* Rolls back the transaction started by vd_store_begin (no-op without one). */
void vd_store_rollback(vd_store *s);

#endif
