/* queue_sqlite.c: the SQLite backend of the job queue (queue.h).
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
#include "queue/queue_impl.h"

#include "core/sqlite_wal.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SCHEMA_VERSION  1
#define BUSY_TIMEOUT_MS 15000
#define DEFAULT_TTL_MS  (7LL * 24 * 3600 * 1000)
#define LEASE_LOST_MSG  "lease expired: worker lost"

vd_status vd_queue_sqlite_open(const char *path, vd_queue **out, vd_error *err);

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
                "   AND (?4 IS NULL OR type IN (SELECT value FROM json_each(?4)))"
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

typedef struct {
    vd_queue base;
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[ST__COUNT];
    int64_t busy_since_ms; /* when the current wait for a lock began */
} sq_queue;

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

static vd_status db_error(sq_queue *q, int rc, const char *what, vd_error *err)
{
    return vd_error_set(err, map_rc(rc), "sqlite %s: %s (%s)", q->path, what,
                        q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
}

/* Returns the cached, reset statement idx, preparing it on first use. */
static sqlite3_stmt *stmt(sq_queue *q, int idx, vd_error *err)
{
    sqlite3_stmt *s = q->stmts[idx];
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
        return s;
    }
    int rc = sqlite3_prepare_v3(q->db, stmt_sql[idx], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
    if (rc != SQLITE_OK) {
        db_error(q, rc, "prepare", err);
        return NULL;
    }
    q->stmts[idx] = s;
    return s;
}

/* Runs a statement that returns no rows; returns the step's status. */
static vd_status run_done(sq_queue *q, sqlite3_stmt *s, const char *what, vd_error *err)
{
    int rc = sqlite3_step(s);
    while (rc == SQLITE_ROW)
        rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return db_error(q, rc, what, err);
    return VD_OK;
}

static vd_status simple(sq_queue *q, int idx, vd_error *err)
{
    sqlite3_stmt *s = stmt(q, idx, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    return run_done(q, s, stmt_sql[idx], err);
}

static vd_status tx_begin(sq_queue *q, vd_error *err)
{
    return simple(q, ST_BEGIN, err);
}

static vd_status tx_commit(sq_queue *q, vd_error *err)
{
    vd_status st = simple(q, ST_COMMIT, err);
    if (st != VD_OK && !sqlite3_get_autocommit(q->db)) simple(q, ST_ROLLBACK, NULL);
    return st;
}

/* Ends a transaction: commits when st is VD_OK, rolls back otherwise; returns
 * st or the commit's failure. */
static vd_status tx_end(sq_queue *q, vd_status st, vd_error *err)
{
    if (st == VD_OK) return tx_commit(q, err);
    if (!sqlite3_get_autocommit(q->db)) simple(q, ST_ROLLBACK, NULL);
    return st;
}

static char *col_dup(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? vd_strdup((const char *)t) : NULL;
}

static void col_copy(sqlite3_stmt *s, int i, char *dst, size_t n)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    vd_strlcpy(dst, t ? (const char *)t : "", n);
}

static vd_status row_to_job(sqlite3_stmt *s, vd_job *j, vd_error *err)
{
    memset(j, 0, sizeof *j);
    col_copy(s, 0, j->id, sizeof j->id);
    col_copy(s, 1, j->type, sizeof j->type);
    j->payload = col_dup(s, 2);
    j->priority = sqlite3_column_int(s, 3);
    vd_job_state st = VD_JOB_QUEUED;
    if (vd_job_state_parse((const char *)sqlite3_column_text(s, 4), &st) != VD_OK) {
        vd_job_clear(j);
        return vd_error_set(err, VD_ERR_DB, "job has an unknown state '%s'",
                            (const char *)sqlite3_column_text(s, 4));
    }
    j->state = st;
    j->attempts = sqlite3_column_int(s, 5);
    j->max_retries = sqlite3_column_int(s, 6);
    j->timeout_ms = sqlite3_column_int64(s, 7);
    j->retry_base_ms = sqlite3_column_int64(s, 8);
    j->retry_max_ms = sqlite3_column_int64(s, 9);
    j->result_ttl_ms = sqlite3_column_int64(s, 10);
    j->created_ms = sqlite3_column_int64(s, 11);
    j->run_at_ms = sqlite3_column_int64(s, 12);
    j->started_ms = sqlite3_column_int64(s, 13);
    j->ended_ms = sqlite3_column_int64(s, 14);
    j->lease_until_ms = sqlite3_column_int64(s, 15);
    col_copy(s, 16, j->worker, sizeof j->worker);
    j->progress_done = sqlite3_column_int64(s, 17);
    j->progress_total = sqlite3_column_int64(s, 18);
    j->result = col_dup(s, 19);
    j->error = col_dup(s, 20);
    j->cancel_requested = sqlite3_column_int(s, 21);
    if (!j->payload || (sqlite3_column_type(s, 19) != SQLITE_NULL && !j->result) ||
        (sqlite3_column_type(s, 20) != SQLITE_NULL && !j->error)) {
        vd_job_clear(j);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory reading a job");
    }
    return VD_OK;
}

/* ---- ops ---------------------------------------------------------------- */

static void sq_close(vd_queue *base)
{
    sq_queue *q = (sq_queue *)base;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(q->stmts[i]);
    sqlite3_close(q->db);
    free(q->path);
    free(q);
}

static vd_status sq_enqueue(vd_queue *base, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                            vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    char id[VD_ID_LEN + 1];
    if (o->id)
        vd_strlcpy(id, o->id, sizeof id);
    else
        vd_id_new(id);
    int64_t now = vd_now_ms();
    int64_t ttl = o->result_ttl_ms == 0  ? DEFAULT_TTL_MS
                  : o->result_ttl_ms < 0 ? 0
                                         : o->result_ttl_ms;
    sqlite3_stmt *s = stmt(q, ST_INSERT, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, o->type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, o->payload ? o->payload : "{}", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s, 4, o->priority);
    sqlite3_bind_text(s, 5, o->delay_ms > 0 ? "scheduled" : "queued", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, o->max_retries);
    sqlite3_bind_int64(s, 7, o->timeout_ms);
    sqlite3_bind_int64(s, 8, o->retry_base_ms > 0 ? o->retry_base_ms : 1000);
    sqlite3_bind_int64(s, 9, o->retry_max_ms > 0 ? o->retry_max_ms : 300000);
    sqlite3_bind_int64(s, 10, ttl);
    sqlite3_bind_int64(s, 11, now);
    sqlite3_bind_int64(s, 12, now + (o->delay_ms > 0 ? o->delay_ms : 0));
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return vd_error_set(err, VD_ERR_STATE, "a job with id %s already exists", id);
    if (rc != SQLITE_DONE) return db_error(q, rc, "enqueue", err);
    if (id_out) memcpy(id_out, id, sizeof id);
    return VD_OK;
}

/* Promotes due scheduled jobs and reclaims lapsed leases; adds the number of
 * touched jobs to *changed. Runs inside the caller's transaction. */
static vd_status housekeep(sq_queue *q, int64_t now, int *changed, vd_error *err)
{
    int order[2] = {ST_PROMOTE, ST_RECLAIM};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *s = stmt(q, order[i], err);
        if (!s) return err ? err->code : VD_ERR_DB;
        sqlite3_bind_int64(s, 1, now);
        vd_status st = run_done(q, s, "housekeeping", err);
        if (st != VD_OK) return st;
        if (changed) *changed += sqlite3_changes(q->db);
    }
    return VD_OK;
}

static vd_status sq_reserve(vd_queue *base, const char *worker_id, int64_t lease_ms,
                            const char *const *types, size_t ntypes, vd_job *job, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    char *types_json = NULL;
    if (types) {
        json_t *arr = json_array();
        for (size_t i = 0; arr && i < ntypes; i++)
            if (types[i]) json_array_append_new(arr, json_string(types[i]));
        types_json = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
        json_decref(arr);
        if (!types_json) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    vd_status st = tx_begin(q, err);
    if (st != VD_OK) {
        free(types_json);
        return st;
    }
    int64_t now = vd_now_ms();
    int filled = 0;
    st = housekeep(q, now, NULL, err);
    if (st == VD_OK) {
        sqlite3_stmt *s = stmt(q, ST_TAKE, err);
        if (!s) {
            st = err ? err->code : VD_ERR_DB;
        } else {
            sqlite3_bind_int64(s, 1, now);
            sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int64(s, 3, lease_ms);
            if (types_json)
                sqlite3_bind_text(s, 4, types_json, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(s, 4);
            int rc = sqlite3_step(s);
            if (rc == SQLITE_ROW) {
                st = row_to_job(s, job, err);
                filled = st == VD_OK;
                rc = sqlite3_step(s);
            } else {
                st = VD_ERR_EMPTY;
            }
            sqlite3_reset(s);
            if (rc != SQLITE_DONE) st = db_error(q, rc, "reserve", err);
        }
    }
    free(types_json);
    if (st == VD_ERR_EMPTY) {
        /* commit the housekeeping even when nothing was taken */
        st = tx_commit(q, err);
        return st == VD_OK ? vd_error_set(err, VD_ERR_EMPTY, "no job is ready") : st;
    }
    st = tx_end(q, st, err);
    if (st != VD_OK && filled) vd_job_clear(job);
    return st;
}

/* Explains why an update guarded by (id, state started, worker) touched no
 * row. With finished_ok, a job this worker already finished is VD_OK (a
 * repeated complete, e.g. after a lost reply, succeeds and changes nothing). */
static vd_status why_not_held(sq_queue *q, const char *id, const char *worker_id, int finished_ok,
                              vd_error *err)
{
    sqlite3_stmt *s = stmt(q, ST_PROBE, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return db_error(q, rc, "read job", err);
    }
    char state[16], worker[VD_WORKER_ID_MAX];
    col_copy(s, 0, state, sizeof state);
    col_copy(s, 1, worker, sizeof worker);
    int cancel_requested = sqlite3_column_int(s, 2);
    sqlite3_reset(s);
    if (finished_ok && strcmp(state, "finished") == 0 && worker_id &&
        strcmp(worker, worker_id) == 0)
        return VD_OK;
    if (strcmp(state, "canceled") == 0 && cancel_requested && worker_id &&
        strcmp(worker, worker_id) == 0)
        return vd_error_set(err, VD_ERR_CANCELED, "job %s was canceled", id);
    if (strcmp(state, "started") == 0)
        return vd_error_set(err, VD_ERR_LEASE_LOST, "job %s is held by worker %s now", id, worker);
    return vd_error_set(err, VD_ERR_LEASE_LOST, "job %s is %s, no longer held by worker %s", id,
                        state, worker_id ? worker_id : "");
}

static vd_status sq_heartbeat(vd_queue *base, const char *id, const char *worker_id,
                              int64_t lease_ms, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id || !worker_id || lease_ms <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "heartbeat needs an id, a worker and a lease > 0");
    sqlite3_stmt *s = stmt(q, ST_HEARTBEAT, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, vd_now_ms());
    sqlite3_bind_int64(s, 4, lease_ms);
    vd_status st = run_done(q, s, "heartbeat", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    return why_not_held(q, id, worker_id, 0, err);
}

static vd_status sq_progress(vd_queue *base, const char *id, int64_t done, int64_t total,
                             vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    sqlite3_stmt *s = stmt(q, ST_PROGRESS, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, done);
    sqlite3_bind_int64(s, 3, total);
    vd_status st = run_done(q, s, "progress", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    st = why_not_held(q, id, NULL, 0, err);
    if (st == VD_ERR_NOT_FOUND) return st;
    return vd_error_set(err, VD_ERR_STATE, "job %s is not started", id);
}

static vd_status sq_complete(vd_queue *base, const char *id, const char *worker_id,
                             const char *result, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    sqlite3_stmt *s = stmt(q, ST_COMPLETE, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, vd_now_ms());
    if (result)
        sqlite3_bind_text(s, 4, result, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, 4);
    vd_status st = run_done(q, s, "complete", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    return why_not_held(q, id, worker_id, 1, err);
}

static vd_status sq_fail(vd_queue *base, const char *id, const char *worker_id, const char *message,
                         int retryable, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    vd_status st = tx_begin(q, err);
    if (st != VD_OK) return st;
    sqlite3_stmt *s = stmt(q, ST_FAIL_READ, err);
    if (!s) return tx_end(q, err ? err->code : VD_ERR_DB, err);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        st = why_not_held(q, id, worker_id, 0, err);
        return tx_end(q, st, err);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return tx_end(q, db_error(q, rc, "fail", err), err);
    }
    int attempts = sqlite3_column_int(s, 0);
    int max_retries = sqlite3_column_int(s, 1);
    int64_t base_ms = sqlite3_column_int64(s, 2), max_ms = sqlite3_column_int64(s, 3);
    sqlite3_reset(s);

    int64_t now = vd_now_ms();
    int retry = retryable && attempts < 1 + max_retries;
    s = stmt(q, ST_FAIL_WRITE, err);
    if (!s) return tx_end(q, err ? err->code : VD_ERR_DB, err);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, retry ? "scheduled" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(
        s, 3, retry ? now + vd_queue_backoff_ms(base_ms, max_ms, attempts, vd_random_unit()) : now);
    sqlite3_bind_int64(s, 4, retry ? 0 : now);
    sqlite3_bind_text(s, 5, message, -1, SQLITE_TRANSIENT);
    st = run_done(q, s, "fail", err);
    return tx_end(q, st, err);
}

static vd_status sq_release(vd_queue *base, const char *id, const char *worker_id,
                            const char *reason, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    sqlite3_stmt *s = stmt(q, ST_RELEASE, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, reason, -1, SQLITE_TRANSIENT);
    vd_status st = run_done(q, s, "release", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    return why_not_held(q, id, worker_id, 0, err);
}

static vd_status sq_cancel(vd_queue *base, const char *id, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    sqlite3_stmt *s = stmt(q, ST_CANCEL, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, vd_now_ms());
    vd_status st = run_done(q, s, "cancel", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    vd_job j;
    st = vd_queue_get(base, id, &j, err);
    if (st != VD_OK) return st;
    st = vd_error_set(err, VD_ERR_STATE,
                      "job %s is %s: only queued, scheduled or started jobs "
                      "can be canceled",
                      id, vd_job_state_name(j.state));
    vd_job_clear(&j);
    return st;
}

static vd_status sq_requeue(vd_queue *base, const char *id, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    sqlite3_stmt *s = stmt(q, ST_REQUEUE, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, vd_now_ms());
    vd_status st = run_done(q, s, "requeue", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    vd_job j;
    st = vd_queue_get(base, id, &j, err);
    if (st != VD_OK) return st;
    st = vd_error_set(err, VD_ERR_STATE,
                      "job %s is %s: only failed or canceled jobs can be requeued", id,
                      vd_job_state_name(j.state));
    vd_job_clear(&j);
    return st;
}

static vd_status sq_get(vd_queue *base, const char *id, vd_job *job, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    sqlite3_stmt *s = stmt(q, ST_GET, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    vd_status st;
    if (rc == SQLITE_ROW)
        st = row_to_job(s, job, err);
    else if (rc == SQLITE_DONE)
        st = vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    else
        st = db_error(q, rc, "get", err);
    sqlite3_reset(s);
    return st;
}

static vd_status sq_list(vd_queue *base, const vd_list_opts *o, vd_job **jobs, size_t *n,
                         vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    *jobs = NULL;
    *n = 0;
    if (o->state != -1 && (o->state < 0 || o->state >= VD_JOB__NSTATES))
        return vd_error_set(err, VD_ERR_INVALID, "unknown job state %d", o->state);
    sqlite3_stmt *s = stmt(q, ST_LIST, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    if (o->state >= 0)
        sqlite3_bind_text(s, 1, vd_job_state_name((vd_job_state)o->state), -1, SQLITE_STATIC);
    if (o->type) sqlite3_bind_text(s, 2, o->type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)(o->limit > INT64_MAX ? INT64_MAX : o->limit));
    sqlite3_bind_int64(s, 4, (sqlite3_int64)(o->offset > INT64_MAX ? INT64_MAX : o->offset));
    size_t cap = 0, cnt = 0;
    vd_job *arr = NULL;
    vd_status st = VD_OK;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            vd_job *na = realloc(arr, ncap * sizeof *na);
            if (!na) {
                st = vd_error_set(err, VD_ERR_NOMEM, "out of memory listing jobs");
                break;
            }
            arr = na;
            cap = ncap;
        }
        st = row_to_job(s, &arr[cnt], err);
        if (st != VD_OK) break;
        cnt++;
    }
    if (st == VD_OK && rc != SQLITE_DONE) st = db_error(q, rc, "list", err);
    sqlite3_reset(s);
    if (st != VD_OK) {
        vd_job_list_free(arr, cnt);
        return st;
    }
    *jobs = arr;
    *n = cnt;
    return VD_OK;
}

static vd_status sq_counts(vd_queue *base, int64_t counts[VD_JOB__NSTATES], vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    for (int i = 0; i < VD_JOB__NSTATES; i++)
        counts[i] = 0;
    sqlite3_stmt *s = stmt(q, ST_COUNTS, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        vd_job_state js;
        if (vd_job_state_parse((const char *)sqlite3_column_text(s, 0), &js) == VD_OK)
            counts[js] = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return db_error(q, rc, "counts", err);
    return VD_OK;
}

static vd_status sq_maintain(vd_queue *base, int *changed, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    int n = 0;
    vd_status st = tx_begin(q, err);
    if (st != VD_OK) return st;
    int64_t now = vd_now_ms();
    st = housekeep(q, now, &n, err);
    if (st == VD_OK) {
        sqlite3_stmt *s = stmt(q, ST_TTL, err);
        if (!s) {
            st = err ? err->code : VD_ERR_DB;
        } else {
            sqlite3_bind_int64(s, 1, now);
            st = run_done(q, s, "delete expired results", err);
            if (st == VD_OK) n += sqlite3_changes(q->db);
        }
    }
    st = tx_end(q, st, err);
    if (changed) *changed = st == VD_OK ? n : 0;
    return st;
}

static vd_status sq_purge(vd_queue *base, int state, int64_t older_than_ms, int64_t *deleted,
                          vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (deleted) *deleted = 0;
    sqlite3_stmt *s = stmt(q, ST_PURGE, err);
    if (!s) return err ? err->code : VD_ERR_DB;
    if (state == -1) {
        sqlite3_bind_text(s, 1, "finished", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, "failed", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, "canceled", -1, SQLITE_STATIC);
    } else {
        for (int i = 1; i <= 3; i++)
            sqlite3_bind_text(s, i, vd_job_state_name((vd_job_state)state), -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, 4, older_than_ms);
    vd_status st = run_done(q, s, "purge", err);
    if (st == VD_OK && deleted) *deleted = sqlite3_changes64(q->db);
    return st;
}

static const vd_queue_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .enqueue = sq_enqueue,
    .reserve = sq_reserve,
    .heartbeat = sq_heartbeat,
    .progress = sq_progress,
    .complete = sq_complete,
    .fail = sq_fail,
    .release = sq_release,
    .cancel = sq_cancel,
    .requeue = sq_requeue,
    .get = sq_get,
    .list = sq_list,
    .counts = sq_counts,
    .maintain = sq_maintain,
    .purge = sq_purge,
};

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

vd_status vd_queue_sqlite_open(const char *url_path, vd_queue **out, vd_error *err)
{
    *out = NULL;
    if (!url_path || !*url_path) return vd_error_set(err, VD_ERR_INVALID, "empty sqlite path");
    sq_queue *q = calloc(1, sizeof *q);
    if (!q) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    q->base.ops = &sqlite_ops;
    q->path = vd_strdup(url_path);
    if (!q->path) {
        free(q);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
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
    if (st != VD_OK) {
        sq_close(&q->base);
        return st;
    }
    *out = &q->base;
    return VD_OK;
}
