/* queue_sqlite_db.c: the SQLite backend's database (queue_sqlite_impl.h): schema, statements,
 * errors, transactions and opening. The backend as a whole:
 *
 * One table, `jobs`, in a database file shared by every process of one host.
 * Durability: WAL journal, synchronous=FULL (every commit is fsync'd, so an
 * acknowledged enqueue or completion survives kill -9 of any process and a
 * power cut; NORMAL would survive kill -9 too but may lose the last commits
 * on power loss). "sqlite:PATH?sync=normal" trades that for speed.
 *
 * Concurrency: every read-modify-write runs in BEGIN IMMEDIATE (one writer at
 * a time, taken before reading, so two reservers can never pick the same
 * row), or is a single UPDATE whose WHERE clause is the precondition. Waits
 * for the write lock up to busy_timeout, then VD_ERR_BUSY.
 *
 * The schema is versioned in table schema_version; see docs/queue.md. */
#include "queue/queue_sqlite_impl.h"

#include "core/sqlite_wal.h"
#include "core/util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SCHEMA_VERSION  1
#define BUSY_TIMEOUT_MS 15000
#define LEASE_LOST_MSG  "lease expired: worker lost"

/* The planner, without statistics, prefers jobs_state_ended (state = ?) and
 * then sorts; the hot statements name their partial index with INDEXED BY so
 * that reserve reads one index entry however long the queue is. */

/* Columns read into a vd_job, in this order (see row_to_job). */
#define JOB_COLS                                                                                   \
    "id, type, payload, priority, state, attempts, max_retries, timeout_ms, retry_base_ms, "       \
    "retry_max_ms, result_ttl_ms, created_ms, run_at_ms, started_ms, ended_ms, lease_until_ms, "   \
    "worker, progress_done, progress_total, result, error, cancel_requested"

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS jobs ("
    "  seq INTEGER PRIMARY KEY," /* insertion order: the FIFO tie-break */
    "  id TEXT NOT NULL UNIQUE,"
    "  type TEXT NOT NULL,"
    "  payload TEXT NOT NULL,"
    "  priority INTEGER NOT NULL DEFAULT 0,"
    "  state TEXT NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  max_retries INTEGER NOT NULL DEFAULT 0,"
    "  timeout_ms INTEGER NOT NULL DEFAULT 0,"
    "  retry_base_ms INTEGER NOT NULL,"
    "  retry_max_ms INTEGER NOT NULL,"
    "  result_ttl_ms INTEGER NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  run_at_ms INTEGER NOT NULL,"
    "  started_ms INTEGER NOT NULL DEFAULT 0,"
    "  ended_ms INTEGER NOT NULL DEFAULT 0,"
    "  lease_until_ms INTEGER NOT NULL DEFAULT 0,"
    "  worker TEXT NOT NULL DEFAULT '',"
    "  progress_done INTEGER NOT NULL DEFAULT 0,"
    "  progress_total INTEGER NOT NULL DEFAULT 0,"
    "  result TEXT,"
    "  error TEXT,"
    "  cancel_requested INTEGER NOT NULL DEFAULT 0);"
    /* reserve: best queued job, highest priority then oldest run_at then seq */
    "CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (priority DESC, run_at_ms, seq)"
    "  WHERE state = 'queued';"
    /* promotion of due scheduled jobs */
    "CREATE INDEX IF NOT EXISTS jobs_due ON jobs (run_at_ms) WHERE state = 'scheduled';"
    /* reclaiming lapsed leases */
    "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (lease_until_ms) WHERE state = 'started';"
    /* counts (covering), purge and result TTL */
    "CREATE INDEX IF NOT EXISTS jobs_state_ended ON jobs (state, ended_ms);"
    /* list, newest first */
    "CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_ms, seq);";

static const char *const stmt_sql[ST__COUNT] = {
    [ST_INSERT] = "INSERT INTO jobs (id, type, payload, priority, state, max_retries, timeout_ms,"
                  " retry_base_ms, retry_max_ms, result_ttl_ms, created_ms, run_at_ms)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_PROMOTE] = "UPDATE jobs INDEXED BY jobs_due SET state = 'queued' WHERE state = 'scheduled' "
                   "AND run_at_ms <= ?1",
    [ST_RECLAIM] = "UPDATE jobs INDEXED BY jobs_lease SET"
                   " state = CASE WHEN attempts < 1 + max_retries THEN 'queued' ELSE 'failed' END,"
                   " ended_ms = CASE WHEN attempts < 1 + max_retries THEN 0 ELSE ?1 END,"
                   " run_at_ms = ?1, lease_until_ms = 0, error = '" LEASE_LOST_MSG "'"
                   " WHERE state = 'started' AND lease_until_ms < ?1",
    [ST_TAKE] = "UPDATE jobs SET state = 'started', attempts = attempts + 1, worker = ?2,"
                " started_ms = ?1, ended_ms = 0, lease_until_ms = ?1 + ?3, cancel_requested = 0,"
                " progress_done = 0, progress_total = 0"
                " WHERE seq = (SELECT seq FROM jobs INDEXED BY jobs_ready WHERE state = 'queued'"
                "   AND (?4 IS NULL OR instr(?4, ',' || type || ',') > 0)"
                "   ORDER BY priority DESC, run_at_ms, seq LIMIT 1)"
                " RETURNING " JOB_COLS,
    [ST_HEARTBEAT] = "UPDATE jobs SET lease_until_ms = ?3 + ?4"
                     " WHERE id = ?1 AND state = 'started' AND worker = ?2",
    [ST_PROBE] = "SELECT state, worker, cancel_requested FROM jobs WHERE id = ?1",
    [ST_PROGRESS] = "UPDATE jobs SET progress_done = ?2, progress_total = ?3"
                    " WHERE id = ?1 AND state = 'started'",
    [ST_COMPLETE] = "UPDATE jobs SET state = 'finished', ended_ms = ?3, lease_until_ms = 0,"
                    " result = ?4 WHERE id = ?1 AND state = 'started' AND worker = ?2",
    [ST_FAIL_READ] = "SELECT attempts, max_retries, retry_base_ms, retry_max_ms FROM jobs"
                     " WHERE id = ?1 AND state = 'started' AND worker = ?2",
    [ST_FAIL_WRITE] = "UPDATE jobs SET state = ?2, run_at_ms = ?3, ended_ms = ?4,"
                      " lease_until_ms = 0, error = ?5 WHERE id = ?1",
    /* run_at_ms is kept: the job goes back to its place in line */
    [ST_RELEASE] = "UPDATE jobs SET state = 'queued', attempts = max(attempts - 1, 0),"
                   " lease_until_ms = 0, ended_ms = 0, error = ?3"
                   " WHERE id = ?1 AND state = 'started' AND worker = ?2",
    [ST_CANCEL] = "UPDATE jobs SET cancel_requested = (state = 'started'), state = 'canceled',"
                  " ended_ms = ?2, lease_until_ms = 0"
                  " WHERE id = ?1 AND state IN ('queued', 'scheduled', 'started')",
    /* run_at_ms orders the queued jobs of a priority: a requeued job goes behind every one
     * already waiting, even one enqueued in the same millisecond. */
    [ST_REQUEUE] = "UPDATE jobs SET state = 'queued', attempts = 0, run_at_ms = MAX(?2,"
                   " (SELECT COALESCE(MAX(w.run_at_ms) + 1, 0) FROM jobs AS w"
                   "  WHERE w.state = 'queued' AND w.priority = jobs.priority)), ended_ms = 0,"
                   " lease_until_ms = 0, cancel_requested = 0, progress_done = 0,"
                   " progress_total = 0, result = NULL"
                   " WHERE id = ?1 AND state IN ('failed', 'canceled')",
    [ST_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [ST_LIST] = "SELECT " JOB_COLS " FROM jobs WHERE (?1 IS NULL OR state = ?1)"
                " AND (?2 IS NULL OR type = ?2)"
                " ORDER BY created_ms DESC, seq DESC LIMIT ?3 OFFSET ?4",
    [ST_COUNTS] = "SELECT state, count(*) FROM jobs GROUP BY state",
    [ST_TTL] = "DELETE FROM jobs WHERE state = 'finished' AND result_ttl_ms > 0"
               " AND ended_ms + result_ttl_ms <= ?1",
    [ST_PURGE] = "DELETE FROM jobs WHERE state IN (?1, ?2, ?3) AND ended_ms < ?4",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

/* Waits for a lock held by another connection: short random sleeps (0.1-2 ms
 * at first, up to 10 ms later) instead of SQLite's default growing backoff,
 * so that several busy workers take turns rather than one holding the lock
 * while the others sleep; gives up after BUSY_TIMEOUT_MS. */
static int busy_wait(void *arg, int count)
{
    sq_queue *q = arg;
    int64_t now = vd_mono_ms();
    if (count == 0) q->busy_since_ms = now;
    if (now - q->busy_since_ms >= BUSY_TIMEOUT_MS) return 0;
    int64_t cap_us = count < 20 ? 2000 : 10000;
    int64_t us = 100 + (int64_t)(vd_random_unit() * (double)cap_us);
    struct timespec ts = {0, (long)(us * 1000)};
    nanosleep(&ts, NULL);
    return 1;
}

static vd_status map_rc(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return VD_OK;
    case SQLITE_NOMEM:
        return VD_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return VD_ERR_BUSY;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_READONLY:
        return VD_ERR_IO;
    case SQLITE_FULL:
        return VD_ERR_NOSPACE;
    default:
        return VD_ERR_DB;
    }
}

vd_status vd_sq_db_error(sq_queue *q, int rc, const char *what, vd_error *err)
{
    return vd_error_set(err, map_rc(rc), "sqlite %s: %s (%s)", q->path, what,
                        q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
}

vd_status vd_sq_stmt(sq_queue *q, int idx, sqlite3_stmt **out, vd_error *err)
{
    sqlite3_stmt *s = q->stmts[idx];
    *out = NULL;
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        *out = s;
        return VD_OK;
    }
    int rc = sqlite3_prepare_v3(q->db, stmt_sql[idx], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) return vd_sq_db_error(q, rc, "prepare", err);
    q->stmts[idx] = *out = s;
    return VD_OK;
}

vd_status vd_sq_run_done(sq_queue *q, sqlite3_stmt *s, const char *what, vd_error *err)
{
    int rc = sqlite3_step(s);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return vd_sq_db_error(q, rc, what, err);
    return VD_OK;
}

static vd_status simple(sq_queue *q, int idx, vd_error *err)
{
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, idx, &s, err);
    if (st != VD_OK) return st;
    return vd_sq_run_done(q, s, stmt_sql[idx], err);
}

vd_status vd_sq_tx_begin(sq_queue *q, vd_error *err)
{
    return simple(q, ST_BEGIN, err);
}

vd_status vd_sq_tx_commit(sq_queue *q, vd_error *err)
{
    vd_status st = simple(q, ST_COMMIT, err);
    if (st != VD_OK && !sqlite3_get_autocommit(q->db)) simple(q, ST_ROLLBACK, NULL);
    return st;
}

vd_status vd_sq_tx_end(sq_queue *q, vd_status st, vd_error *err)
{
    if (st == VD_OK) return vd_sq_tx_commit(q, err);
    if (!sqlite3_get_autocommit(q->db)) simple(q, ST_ROLLBACK, NULL);
    return st;
}

/* ---- open --------------------------------------------------------------- */

/* Creates the parent directories of path (like mkdir -p). */
static vd_status make_parent_dirs(const char *path, vd_error *err)
{
    char *dir = vd_strdup(path);
    if (!dir) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    vd_status st = VD_OK;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1; st == VD_OK; p++) {
            if (*p != '/' && *p != '\0') continue;
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                st = vd_error_set(err, VD_ERR_IO, "cannot create directory %s for the queue: %s",
                                  dir, strerror(errno));
            *p = saved;
            if (saved == '\0') break;
        }
    }
    free(dir);
    return st;
}

static vd_status exec_sql_cb(sq_queue *q, const char *sql, int (*cb)(void *, int, char **, char **),
                             void *arg, const char *what, vd_error *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(q->db, sql, cb, arg, &msg);
    if (rc == SQLITE_OK) return VD_OK;
    vd_status st;
    if ((rc & 0xff) == SQLITE_NOTADB || (rc & 0xff) == SQLITE_CORRUPT)
        st = vd_error_set(err, VD_ERR_DB, "%s is not a usable queue database: %s (%s)", q->path,
                          msg ? msg : sqlite3_errstr(rc), what);
    else
        st = vd_error_set(err, map_rc(rc), "sqlite %s: %s: %s", q->path, what,
                          msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return st;
}

static vd_status exec_sql(sq_queue *q, const char *sql, const char *what, vd_error *err)
{
    return exec_sql_cb(q, sql, NULL, NULL, what, err);
}

static int read_int_cb(void *arg, int ncol, char **vals, char **names)
{
    (void)names;
    if (ncol > 0 && vals[0]) *(long long *)arg = strtoll(vals[0], NULL, 10);
    return 0;
}

/* Creates or checks the schema inside one write transaction. */
static vd_status ensure_schema(sq_queue *q, vd_error *err)
{
    vd_status st = exec_sql(q, "BEGIN IMMEDIATE", "begin", err);
    if (st != VD_OK) return st;
    long long has_version = 0, has_jobs = 0, version = -1;
    st = exec_sql_cb(q,
                     "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                     "'schema_version'",
                     read_int_cb, &has_version, "read schema", err);
    if (st == VD_OK)
        st = exec_sql_cb(q,
                         "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = "
                         "'jobs'",
                         read_int_cb, &has_jobs, "read schema", err);
    if (st == VD_OK && has_version)
        st = exec_sql_cb(q, "SELECT max(version) FROM schema_version", read_int_cb, &version,
                         "read schema version", err);
    if (st == VD_OK && has_jobs && version < 0)
        st =
            vd_error_set(err, VD_ERR_DB,
                         "%s has a jobs table but no schema_version: not a visiond queue", q->path);
    if (st == VD_OK && version > SCHEMA_VERSION)
        st = vd_error_set(err, VD_ERR_DB,
                          "%s has queue schema version %lld, newer than this build's %d", q->path,
                          version, SCHEMA_VERSION);
    if (st == VD_OK && version < SCHEMA_VERSION) {
        /* version 1 is the first; later versions add their migrations here, in order */
        st = exec_sql(q, schema_sql, "create schema", err);
        if (st == VD_OK)
            st = exec_sql(q, "DELETE FROM schema_version; INSERT INTO schema_version VALUES (1)",
                          "set schema version", err);
    }
    if (st != VD_OK) {
        exec_sql(q, "ROLLBACK", "rollback", NULL);
        return st;
    }
    return exec_sql(q, "COMMIT", "commit schema", err);
}

vd_status vd_sq_open(sq_queue *q, const char *url_path, vd_error *err)
{
    q->path = vd_strdup(url_path);
    if (!q->path) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    /* options after '?': sync=full (default) or sync=normal */
    const char *sync = "FULL";
    char *qm = strchr(q->path, '?');
    vd_status st = VD_OK;
    if (qm) {
        *qm = '\0';
        const char *opt = qm + 1;
        if (strcmp(opt, "sync=normal") == 0)
            sync = "NORMAL";
        else if (strcmp(opt, "sync=full") != 0 && *opt)
            st = vd_error_set(err, VD_ERR_INVALID,
                              "unknown sqlite queue option '%s' (known: sync=full, sync=normal)",
                              opt);
    }
    if (st == VD_OK && !*q->path) st = vd_error_set(err, VD_ERR_INVALID, "empty sqlite path");
    if (st == VD_OK && strcmp(q->path, ":memory:") == 0)
        st = vd_error_set(err, VD_ERR_INVALID, "the queue needs a file, not :memory:");
    if (st == VD_OK) st = make_parent_dirs(q->path, err);
    if (st == VD_OK) {
        int rc =
            sqlite3_open_v2(q->path, &q->db,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
        if (rc != SQLITE_OK)
            st = vd_error_set(err, map_rc(rc), "cannot open queue database %s: %s", q->path,
                              q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
    }
    if (st == VD_OK) {
        sqlite3_extended_result_codes(q->db, 1);
        sqlite3_busy_handler(q->db, busy_wait, q);
        st = vd_sqlite_wal(q->db, q->path, "queue", BUSY_TIMEOUT_MS, err);
    }
    if (st == VD_OK) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", sync);
        st = exec_sql(q, sql, "set synchronous", err);
    }
    if (st == VD_OK) st = ensure_schema(q, err);
    return st;
}

void vd_sq_close(sq_queue *q)
{
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(q->stmts[i]);
    sqlite3_close(q->db);
    free(q->path);
}
