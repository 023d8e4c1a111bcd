/* store.c: opening, migrations and transactions of the SQLite store. */
#include "store/store_impl.h"

#include "core/datadir.h"
#include "core/sqlite_wal.h"
#include "core/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Migration i takes the schema from version i to i + 1. Append; never edit
 * a released step. */
static const char *const migrations[] = {
    /* 0 -> 1 */
    "CREATE TABLE sessions ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind IN ('image', 'face')),"
    "  model TEXT NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed',"
    "                                       'canceled')),"
    "  progress_done INTEGER NOT NULL DEFAULT 0,"
    "  progress_total INTEGER NOT NULL DEFAULT 0,"
    "  errors TEXT NOT NULL DEFAULT '[]',"
    "  metrics TEXT,"
    "  options TEXT NOT NULL DEFAULT '{}',"
    "  message TEXT,"
    "  threshold REAL NOT NULL DEFAULT 0,"
    "  job_id TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL);"
    "CREATE INDEX sessions_created ON sessions (created_ms);"
    "CREATE TABLE examples ("
    "  session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,"
    "  idx INTEGER NOT NULL,"
    "  path TEXT NOT NULL,"
    "  label TEXT NOT NULL,"
    "  sha256 TEXT NOT NULL DEFAULT '',"
    "  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'embedded', 'failed')),"
    "  error TEXT,"
    "  PRIMARY KEY (session_id, idx)) WITHOUT ROWID;"
    "CREATE TABLE classifiers ("
    "  session_id TEXT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,"
    "  algorithm TEXT NOT NULL,"
    "  labels TEXT NOT NULL,"
    "  blob BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL);"
    "CREATE TABLE embeddings ("
    "  sha256 TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  dim INTEGER NOT NULL,"
    "  vector BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (sha256, model)) WITHOUT ROWID;"
    "CREATE TABLE face_scans ("
    "  sha256 TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  n_faces INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (sha256, model)) WITHOUT ROWID;"
    "CREATE TABLE faces ("
    "  sha256 TEXT NOT NULL,"
    "  model TEXT NOT NULL,"
    "  idx INTEGER NOT NULL,"
    "  x REAL NOT NULL, y REAL NOT NULL, w REAL NOT NULL, h REAL NOT NULL,"
    "  score REAL NOT NULL,"
    "  keypoints BLOB,"
    "  dim INTEGER NOT NULL DEFAULT 0,"
    "  vector BLOB,"
    "  PRIMARY KEY (sha256, model, idx),"
    "  FOREIGN KEY (sha256, model) REFERENCES face_scans (sha256, model) ON DELETE CASCADE)"
    "  WITHOUT ROWID;",
};

_Static_assert(sizeof migrations / sizeof migrations[0] == VD_STORE_SCHEMA_VERSION,
               "one migration per schema version");

const char *vd_store_default_path(char *buf, size_t n)
{
    return vd_data_path(buf, n, "store.db");
}

vd_status vd_store_db_error(vd_store *s, vd_error *err, const char *what)
{
    int code = s && s->db ? sqlite3_errcode(s->db) : SQLITE_ERROR;
    vd_status st = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? VD_ERR_BUSY
                   : code == SQLITE_FULL                          ? VD_ERR_NOSPACE
                                                                  : VD_ERR_DB;
    return vd_error_set(err, st, "store: %s: %s", what,
                        s && s->db ? sqlite3_errmsg(s->db) : "no database");
}

vd_status vd_store_prepare(vd_store *s, const char *sql, sqlite3_stmt **st, vd_error *err)
{
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK) {
        *st = NULL;
        return vd_store_db_error(s, err, "prepare");
    }
    return VD_OK;
}

vd_status vd_store_exec(vd_store *s, const char *sql, vd_error *err)
{
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return vd_store_db_error(s, err, sql);
    return VD_OK;
}

char *vd_store_col_strdup(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? vd_strdup((const char *)t) : NULL;
}

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

static vd_status read_version(vd_store *s, int *v, vd_error *err)
{
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(s, "PRAGMA user_version", &st, err);
    if (rc) return rc;
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        return vd_store_db_error(s, err, "read user_version");
    }
    *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return VD_OK;
}

static vd_status migrate(vd_store *s, vd_error *err)
{
    int v;
    vd_status rc = read_version(s, &v, err);
    if (rc) return rc;
    if (v > VD_STORE_SCHEMA_VERSION)
        return vd_error_set(err, VD_ERR_UNSUPPORTED,
                            "store: schema version %d is newer than this build's %d", v,
                            VD_STORE_SCHEMA_VERSION);
    if (v == VD_STORE_SCHEMA_VERSION) {
        s->version = v;
        return VD_OK;
    }
    /* Another process may be migrating at the same moment: take the write
     * lock first, then read the version again under it. */
    if ((rc = vd_store_exec(s, "BEGIN IMMEDIATE", err))) return rc;
    if ((rc = read_version(s, &v, err))) goto fail;
    for (; v < VD_STORE_SCHEMA_VERSION; v++) {
        if ((rc = vd_store_exec(s, migrations[v], err))) goto fail;
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v + 1);
        if ((rc = vd_store_exec(s, sql, err))) goto fail;
    }
    if ((rc = vd_store_exec(s, "COMMIT", err))) goto fail;
    s->version = v;
    return VD_OK;
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

vd_status vd_store_open(const char *path, const vd_store_opts *opts, vd_store **out, vd_error *err)
{
    *out = NULL;
    if (!path || !*path) return vd_error_set(err, VD_ERR_INVALID, "store: empty path");
    int ro = opts && opts->read_only;
    int busy = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
    if (!ro && mkdir_parent(path) != 0)
        return vd_error_set(err, VD_ERR_IO, "store: cannot create the directory of %s: %s", path,
                            strerror(errno));
    vd_store *s = calloc(1, sizeof *s);
    if (!s) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    int flags = ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    flags |= SQLITE_OPEN_NOMUTEX; /* one handle per thread: see store.h */
    vd_status rc;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        rc = vd_store_db_error(s, err, path);
        goto fail;
    }
    sqlite3_busy_timeout(s->db, busy);
    sqlite3_extended_result_codes(s->db, 0);
    if (!ro && (rc = vd_sqlite_wal(s->db, path, "store", busy, err))) goto fail;
    if ((rc = vd_store_exec(s, "PRAGMA foreign_keys = ON", err))) goto fail;
    if (!ro && (rc = vd_store_exec(s, "PRAGMA synchronous = NORMAL", err))) goto fail;
    if (ro) {
        int v;
        if ((rc = read_version(s, &v, err))) goto fail;
        if (v != VD_STORE_SCHEMA_VERSION) {
            rc = vd_error_set(err, VD_ERR_UNSUPPORTED,
                              "store: %s has schema version %d, this build reads %d", path, v,
                              VD_STORE_SCHEMA_VERSION);
            goto fail;
        }
        s->version = v;
    } else if ((rc = migrate(s, err))) {
        goto fail;
    }
    *out = s;
    return VD_OK;
fail:
    vd_store_close(s);
    return rc;
}

void vd_store_close(vd_store *s)
{
    if (!s) return;
    if (s->db) {
        if (s->in_txn) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close_v2(s->db);
    }
    free(s);
}

int vd_store_moved(vd_store *s)
{
    int moved = 0;
    if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_HAS_MOVED, &moved) != SQLITE_OK) return 0;
    return moved != 0;
}

int vd_store_schema_version(const vd_store *s)
{
    return s->version;
}

vd_status vd_store_begin(vd_store *s, vd_error *err)
{
    if (s->in_txn) return vd_error_set(err, VD_ERR_STATE, "store: a transaction is already open");
    vd_status rc = vd_store_exec(s, "BEGIN IMMEDIATE", err);
    if (rc == VD_OK) s->in_txn = 1;
    return rc;
}

vd_status vd_store_commit(vd_store *s, vd_error *err)
{
    if (!s->in_txn) return vd_error_set(err, VD_ERR_STATE, "store: no transaction is open");
    vd_status rc = vd_store_exec(s, "COMMIT", err);
    if (rc) {
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    s->in_txn = 0;
    return rc;
}

void vd_store_rollback(vd_store *s)
{
    if (!s->in_txn) return;
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    s->in_txn = 0;
}

vd_status vd_store_txn_begin(vd_store *s, int *owned, vd_error *err)
{
    *owned = 0;
    if (s->in_txn) return VD_OK;
    vd_status rc = vd_store_exec(s, "BEGIN IMMEDIATE", err);
    if (rc == VD_OK) *owned = 1;
    return rc;
}

vd_status vd_store_txn_end(vd_store *s, int owned, vd_status st, vd_error *err)
{
    if (!owned) return st;
    if (st == VD_OK) {
        vd_status rc = vd_store_exec(s, "COMMIT", err);
        if (rc == VD_OK) return VD_OK;
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}
