/* store.h: the SQLite store for sessions, examples, classifiers, embeddings
 * and faces (everything but the job queue, which has its own database).
 *
 * One file, by default $VISIOND_DATA/store.db, in WAL mode with a busy
 * timeout, so that the api, the worker supervisors and their work-horses can
 * read and write it at the same time (readers never block writers; writers
 * take turns, waiting up to busy_timeout_ms for each other).
 *
 * The schema is versioned with PRAGMA user_version; vd_store_open applies
 * every migration newer than the file's version in one transaction, so an
 * old file is upgraded in place and a new one is created from scratch. A file
 * written by a newer visiond (a version we do not know) is refused.
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
#define VD_STORE_SCHEMA_VERSION 2

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

/* Opens (creating when needed, with its parent directory) the store at
 * path, enables WAL and foreign keys, and migrates the schema to
 * VD_STORE_SCHEMA_VERSION. opts may be NULL. *out is owned by the caller
 * and closed with vd_store_close. VD_ERR_DB when SQLite fails,
 * VD_ERR_UNSUPPORTED for a file from a newer schema. */
vd_status vd_store_open(const char *path, const vd_store_opts *opts, vd_store **out, vd_error *err);

/* Closes the handle (NULL is fine). Uncommitted work from vd_store_begin is
 * rolled back. */
void vd_store_close(vd_store *s);

/* Returns 1 when the file this handle opened is no longer at its path (it
 * was deleted, renamed or replaced), so that opening the path again would
 * give another database; 0 otherwise. For long-lived handles (the API's
 * pool): such a handle is closed rather than used. */
int vd_store_moved(vd_store *s);

/* Returns the file's schema version (after migrations: VD_STORE_SCHEMA_VERSION). */
int vd_store_schema_version(const vd_store *s);

/* Starts a write transaction (BEGIN IMMEDIATE: waits for other writers up
 * to the busy timeout). Transactions do not nest. */
vd_status vd_store_begin(vd_store *s, vd_error *err);

/* Commits the transaction started by vd_store_begin. */
vd_status vd_store_commit(vd_store *s, vd_error *err);

/* Rolls back the transaction started by vd_store_begin (no-op without one). */
void vd_store_rollback(vd_store *s);

#endif
