/* sqlite_wal.c: WAL mode with retries (see sqlite_wal.h). */
#include "core/sqlite_wal.h"

#include <string.h>

#include "core/util.h"

/* Runs a journal_mode pragma; writes the mode it answers into mode. Returns an SQLite code. */
static int journal_mode(sqlite3 *db, const char *sql, char mode[16])
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            vd_strlcpy(mode, t ? (const char *)t : "", 16);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

vd_status vd_sqlite_wal(sqlite3 *db, const char *path, const char *kind, int64_t timeout_ms,
                        vd_error *err)
{
    int64_t deadline = vd_mono_ms() + timeout_ms;
    for (;;) {
        char mode[16] = "";
        int rc = journal_mode(db, "PRAGMA journal_mode", mode); /* WAL is kept in the file */
        if (rc == SQLITE_OK && strcmp(mode, "wal") != 0)
            rc = journal_mode(db, "PRAGMA journal_mode=WAL", mode);
        if (rc == SQLITE_OK) {
            if (strcmp(mode, "wal") == 0) return VD_OK;
            return vd_error_set(err, VD_ERR_DB,
                                "%s: cannot switch to WAL journal mode (got '%s'); is the "
                                "filesystem local?",
                                path, mode);
        }
        int base = rc & 0xff;
        if (base == SQLITE_NOTADB || base == SQLITE_CORRUPT)
            return vd_error_set(err, VD_ERR_DB, "%s is not a usable %s database: %s", path, kind,
                                sqlite3_errmsg(db));
        if (base != SQLITE_BUSY && base != SQLITE_LOCKED)
            return vd_error_set(err, VD_ERR_DB, "%s: set WAL mode: %s", path, sqlite3_errmsg(db));
        if (vd_mono_ms() >= deadline)
            return vd_error_set(err, VD_ERR_BUSY, "%s: set WAL mode: still locked after %lld ms",
                                path, (long long)timeout_ms);
        vd_sleep_ms(5 + (int64_t)(vd_random_unit() * 45.0));
    }
}
