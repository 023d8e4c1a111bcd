/* sqlite_wal.h: switching an SQLite database to WAL when other processes open
 * it at the same moment (the queue and the store are opened by the api, the
 * workers and the CLI at once on a fresh data directory).
 *
 * The switch needs an exclusive lock, and SQLite answers SQLITE_BUSY at once,
 * without calling the busy handler, when waiting could deadlock; so the busy
 * handler alone does not make a concurrent first open succeed. */
#ifndef VD_SQLITE_WAL_H
#define VD_SQLITE_WAL_H

#include <sqlite3.h>
#include <stdint.h>

#include "core/err.h"

/* Puts db (the file at path, named in errors) in WAL journal mode, retrying
 * with short jittered sleeps while the database is locked, for up to
 * timeout_ms. VD_ERR_BUSY when it stays locked; VD_ERR_DB when the file is not
 * a database ("PATH is not a usable KIND database: ..."), the file system
 * cannot do WAL, or another error occurs. */
vd_status vd_sqlite_wal(sqlite3 *db, const char *path, const char *kind, int64_t timeout_ms,
                        vd_error *err);

#endif
