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
#include "queue/queue_sqlite_impl.h"

#include "core/util.h"

#include <jansson.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TTL_MS (7LL * 24 * 3600 * 1000)
/* Jobs per enqueue_many transaction: each commit is one fsync under synchronous=FULL
 * (~7 ms on a virtual disk), and 10,000 rows hold the write lock for a few tens of ms
 * (docs/queue.md, "Bulk enqueue"). */
#define SQ_ENQUEUE_MANY_MAX 10000

vd_status vd_queue_sqlite_open(const char *path, vd_queue **out, vd_error *err);

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
    vd_sq_close(q);
    free(q);
}

/* Inserts one job (in the caller's transaction, if any). */
static vd_status insert_job(sq_queue *q, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                            vd_error *err)
{
    char id[VD_ID_LEN + 1];
    if (o->id)
        vd_strlcpy(id, o->id, sizeof id);
    else
        vd_job_id_new(id);
    int64_t now = vd_now_ms();
    int64_t ttl = o->result_ttl_ms == 0  ? DEFAULT_TTL_MS
                  : o->result_ttl_ms < 0 ? 0
                                         : o->result_ttl_ms;
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_INSERT, &s, err);
    if (st != VD_OK) return st;
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
    if (rc != SQLITE_DONE) return vd_sq_db_error(q, rc, "enqueue", err);
    if (id_out) memcpy(id_out, id, sizeof id);
    return VD_OK;
}

static vd_status sq_enqueue(vd_queue *base, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                            vd_error *err)
{
    return insert_job((sq_queue *)base, o, id_out, err);
}

/* One BEGIN IMMEDIATE ... COMMIT for the batch: one fsync (synchronous=FULL)
 * for all of it, and nothing of it when an insert fails. */
static vd_status sq_enqueue_many(vd_queue *base, const vd_enqueue_opts *o, size_t n,
                                 char (*ids_out)[VD_ID_LEN + 1], vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    vd_status st = vd_sq_tx_begin(q, err);
    if (st != VD_OK) return st;
    for (size_t i = 0; i < n && st == VD_OK; i++)
        st = insert_job(q, &o[i], ids_out ? ids_out[i] : NULL, err);
    return vd_sq_tx_end(q, st, err);
}

/* Promotes due scheduled jobs and reclaims lapsed leases; adds the number of
 * touched jobs to *changed. Runs inside the caller's transaction. */
static vd_status housekeep(sq_queue *q, int64_t now, int *changed, vd_error *err)
{
    int order[2] = {ST_PROMOTE, ST_RECLAIM};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *s;
        vd_status st = vd_sq_stmt(q, order[i], &s, err);
        if (st != VD_OK) return st;
        sqlite3_bind_int64(s, 1, now);
        st = vd_sq_run_done(q, s, "housekeeping", err);
        if (st != VD_OK) return st;
        if (changed) *changed += sqlite3_changes(q->db);
    }
    return VD_OK;
}

/* The job types as ",a,b," (NULL for all): a job type name has no comma
 * (vd_job_type_valid), and instr() on one bound string needs no temporary
 * index per reserve, which `type IN (SELECT value FROM json_each(?))` built
 * (and a forking supervisor paid in copy-on-write faults: docs/worker.md,
 * "Per-job cost"). *out is malloc'd. */
static vd_status types_list_new(const char *const *types, size_t ntypes, char **out, vd_error *err)
{
    *out = NULL;
    if (!types) return VD_OK;
    size_t n = 2;
    for (size_t i = 0; i < ntypes; i++)
        n += types[i] ? strlen(types[i]) + 1 : 0;
    char *p = malloc(n);
    if (!p) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    *out = p;
    *p++ = ',';
    for (size_t i = 0; i < ntypes; i++) {
        if (!types[i] || strchr(types[i], ',')) continue;
        size_t k = strlen(types[i]);
        memcpy(p, types[i], k);
        p += k;
        *p++ = ',';
    }
    *p = '\0';
    return VD_OK;
}

/* The reserve inside an open transaction: housekeeping, then the best job
 * into *job. VD_ERR_EMPTY when none is ready (the housekeeping stands). */
static vd_status take_locked(sq_queue *q, const char *worker_id, int64_t lease_ms,
                             const char *types_list, vd_job *job, vd_error *err)
{
    int64_t now = vd_now_ms();
    vd_status st = housekeep(q, now, NULL, err);
    if (st != VD_OK) return st;
    sqlite3_stmt *s;
    st = vd_sq_stmt(q, ST_TAKE, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_int64(s, 1, now);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, lease_ms);
    if (types_list)
        sqlite3_bind_text(s, 4, types_list, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, 4);
    int rc = sqlite3_step(s);
    int filled = 0;
    if (rc == SQLITE_ROW) {
        st = row_to_job(s, job, err);
        filled = st == VD_OK;
        rc = sqlite3_step(s);
    } else {
        st = VD_ERR_EMPTY;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) st = vd_sq_db_error(q, rc, "reserve", err);
    if (st != VD_OK && filled) vd_job_clear(job);
    return st;
}

static vd_status sq_reserve(vd_queue *base, const char *worker_id, int64_t lease_ms,
                            const char *const *types, size_t ntypes, vd_job *job, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    char *types_list;
    vd_status st = types_list_new(types, ntypes, &types_list, err);
    if (st != VD_OK) return st;
    st = vd_sq_tx_begin(q, err);
    if (st == VD_OK) st = take_locked(q, worker_id, lease_ms, types_list, job, err);
    free(types_list);
    if (st == VD_ERR_EMPTY) {
        /* commit the housekeeping even when nothing was taken */
        st = vd_sq_tx_commit(q, err);
        return st == VD_OK ? vd_error_set(err, VD_ERR_EMPTY, "no job is ready") : st;
    }
    int filled = st == VD_OK;
    st = vd_sq_tx_end(q, st, err);
    if (st != VD_OK && filled) vd_job_clear(job);
    return st;
}

/* Explains why an update guarded by (id, state started, worker) touched no
 * row. With finished_ok, a job this worker already finished is VD_OK (a
 * repeated complete, e.g. after a lost reply, succeeds and changes nothing). */
static vd_status why_not_held(sq_queue *q, const char *id, const char *worker_id, int finished_ok,
                              vd_error *err)
{
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_PROBE, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return vd_sq_db_error(q, rc, "read job", err);
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
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_HEARTBEAT, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, vd_now_ms());
    sqlite3_bind_int64(s, 4, lease_ms);
    st = vd_sq_run_done(q, s, "heartbeat", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    return why_not_held(q, id, worker_id, 0, err);
}

static vd_status sq_progress(vd_queue *base, const char *id, int64_t done, int64_t total,
                             vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_PROGRESS, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, done);
    sqlite3_bind_int64(s, 3, total);
    st = vd_sq_run_done(q, s, "progress", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    st = why_not_held(q, id, NULL, 0, err);
    if (st == VD_ERR_NOT_FOUND) return st;
    return vd_error_set(err, VD_ERR_STATE, "job %s is not started", id);
}

/* The complete's update, in a transaction or alone. */
static vd_status complete_stmt(sq_queue *q, const char *id, const char *worker_id,
                               const char *result, vd_error *err)
{
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_COMPLETE, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, vd_now_ms());
    if (result)
        sqlite3_bind_text(s, 4, result, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(s, 4);
    st = vd_sq_run_done(q, s, "complete", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    return why_not_held(q, id, worker_id, 1, err);
}

static vd_status sq_complete(vd_queue *base, const char *id, const char *worker_id,
                             const char *result, vd_error *err)
{
    return complete_stmt((sq_queue *)base, id, worker_id, result, err);
}

/* complete, then reserve, in one transaction: one commit (one fsync under
 * synchronous=FULL) instead of two. When the complete cannot be written
 * nothing is; when the reserve part fails, everything is rolled back and its
 * error returned, so that the caller writes the complete alone. */
static vd_status sq_complete_reserve(vd_queue *base, const char *id, const char *worker_id,
                                     const char *result, int64_t lease_ms, const char *const *types,
                                     size_t ntypes, vd_job *next, int *reserved, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    *reserved = 0;
    char *types_list;
    vd_status st = types_list_new(types, ntypes, &types_list, err);
    if (st != VD_OK) return st;
    st = vd_sq_tx_begin(q, err);
    if (st == VD_OK) st = complete_stmt(q, id, worker_id, result, err);
    if (st == VD_OK) {
        st = take_locked(q, worker_id, lease_ms, types_list, next, err);
        *reserved = st == VD_OK;
        if (st == VD_ERR_EMPTY) st = VD_OK;
    }
    free(types_list);
    st = vd_sq_tx_end(q, st, err);
    if (st != VD_OK && *reserved) vd_job_clear(next);
    if (st != VD_OK) *reserved = 0;
    return st;
}

static vd_status sq_fail(vd_queue *base, const char *id, const char *worker_id, const char *message,
                         int retryable, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    vd_status st = vd_sq_tx_begin(q, err);
    if (st != VD_OK) return st;
    sqlite3_stmt *s;
    if ((st = vd_sq_stmt(q, ST_FAIL_READ, &s, err)) != VD_OK) return vd_sq_tx_end(q, st, err);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_DONE) {
        sqlite3_reset(s);
        st = why_not_held(q, id, worker_id, 0, err);
        return vd_sq_tx_end(q, st, err);
    }
    if (rc != SQLITE_ROW) {
        sqlite3_reset(s);
        return vd_sq_tx_end(q, vd_sq_db_error(q, rc, "fail", err), err);
    }
    int attempts = sqlite3_column_int(s, 0);
    int max_retries = sqlite3_column_int(s, 1);
    int64_t base_ms = sqlite3_column_int64(s, 2), max_ms = sqlite3_column_int64(s, 3);
    sqlite3_reset(s);

    int64_t now = vd_now_ms();
    int retry = retryable && attempts < 1 + max_retries;
    if ((st = vd_sq_stmt(q, ST_FAIL_WRITE, &s, err)) != VD_OK) return vd_sq_tx_end(q, st, err);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, retry ? "scheduled" : "failed", -1, SQLITE_STATIC);
    sqlite3_bind_int64(
        s, 3, retry ? now + vd_queue_backoff_ms(base_ms, max_ms, attempts, vd_random_unit()) : now);
    sqlite3_bind_int64(s, 4, retry ? 0 : now);
    sqlite3_bind_text(s, 5, message, -1, SQLITE_TRANSIENT);
    st = vd_sq_run_done(q, s, "fail", err);
    return vd_sq_tx_end(q, st, err);
}

static vd_status sq_release(vd_queue *base, const char *id, const char *worker_id,
                            const char *reason, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_RELEASE, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, worker_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 3, reason, -1, SQLITE_TRANSIENT);
    st = vd_sq_run_done(q, s, "release", err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    return why_not_held(q, id, worker_id, 0, err);
}

/* Runs statement idx (?1 id, ?2 now), which moves job id unless its state forbids that; a
 * job it did not move is VD_ERR_STATE "job ID is STATE: `rule`". */
static vd_status move_job(vd_queue *base, const char *id, int idx, const char *what,
                          const char *rule, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, idx, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 2, vd_now_ms());
    st = vd_sq_run_done(q, s, what, err);
    if (st != VD_OK) return st;
    if (sqlite3_changes(q->db) == 1) return VD_OK;
    vd_job j;
    st = vd_queue_get(base, id, &j, err);
    if (st != VD_OK) return st;
    st = vd_error_set(err, VD_ERR_STATE, "job %s is %s: %s", id, vd_job_state_name(j.state), rule);
    vd_job_clear(&j);
    return st;
}

static vd_status sq_cancel(vd_queue *base, const char *id, vd_error *err)
{
    return move_job(base, id, ST_CANCEL, "cancel",
                    "only queued, scheduled or started jobs can be canceled", err);
}

static vd_status sq_requeue(vd_queue *base, const char *id, vd_error *err)
{
    return move_job(base, id, ST_REQUEUE, "requeue", "only failed or canceled jobs can be requeued",
                    err);
}

static vd_status sq_get(vd_queue *base, const char *id, vd_job *job, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_GET, &s, err);
    if (st != VD_OK) return st;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        st = row_to_job(s, job, err);
    else if (rc == SQLITE_DONE)
        st = vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    else
        st = vd_sq_db_error(q, rc, "get", err);
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
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_LIST, &s, err);
    if (st != VD_OK) return st;
    if (o->state >= 0)
        sqlite3_bind_text(s, 1, vd_job_state_name((vd_job_state)o->state), -1, SQLITE_STATIC);
    if (o->type) sqlite3_bind_text(s, 2, o->type, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)(o->limit > INT64_MAX ? INT64_MAX : o->limit));
    sqlite3_bind_int64(s, 4, (sqlite3_int64)(o->offset > INT64_MAX ? INT64_MAX : o->offset));
    size_t cap = 0, cnt = 0;
    vd_job *arr = NULL;
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
    if (st == VD_OK && rc != SQLITE_DONE) st = vd_sq_db_error(q, rc, "list", err);
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
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_COUNTS, &s, err);
    if (st != VD_OK) return st;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        vd_job_state js;
        if (vd_job_state_parse((const char *)sqlite3_column_text(s, 0), &js) == VD_OK)
            counts[js] = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return vd_sq_db_error(q, rc, "counts", err);
    return VD_OK;
}

static vd_status sq_maintain(vd_queue *base, int *changed, vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    int n = 0;
    vd_status st = vd_sq_tx_begin(q, err);
    if (st != VD_OK) return st;
    int64_t now = vd_now_ms();
    st = housekeep(q, now, &n, err);
    if (st == VD_OK) {
        sqlite3_stmt *s;
        st = vd_sq_stmt(q, ST_TTL, &s, err);
        if (st == VD_OK) {
            sqlite3_bind_int64(s, 1, now);
            st = vd_sq_run_done(q, s, "delete expired results", err);
            if (st == VD_OK) n += sqlite3_changes(q->db);
        }
    }
    st = vd_sq_tx_end(q, st, err);
    if (changed) *changed = st == VD_OK ? n : 0;
    return st;
}

static vd_status sq_purge(vd_queue *base, int state, int64_t older_than_ms, int64_t *deleted,
                          vd_error *err)
{
    sq_queue *q = (sq_queue *)base;
    if (deleted) *deleted = 0;
    sqlite3_stmt *s;
    vd_status st = vd_sq_stmt(q, ST_PURGE, &s, err);
    if (st != VD_OK) return st;
    if (state == -1) {
        sqlite3_bind_text(s, 1, "finished", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, "failed", -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, "canceled", -1, SQLITE_STATIC);
    } else {
        for (int i = 1; i <= 3; i++)
            sqlite3_bind_text(s, i, vd_job_state_name((vd_job_state)state), -1, SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, 4, older_than_ms);
    st = vd_sq_run_done(q, s, "purge", err);
    if (st == VD_OK && deleted) *deleted = sqlite3_changes64(q->db);
    return st;
}

static const vd_queue_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .enqueue = sq_enqueue,
    .enqueue_many = sq_enqueue_many,
    .enqueue_many_max = SQ_ENQUEUE_MANY_MAX,
    .reserve = sq_reserve,
    .heartbeat = sq_heartbeat,
    .progress = sq_progress,
    .complete = sq_complete,
    .complete_reserve = sq_complete_reserve,
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

vd_status vd_queue_sqlite_open(const char *url_path, vd_queue **out, vd_error *err)
{
    *out = NULL;
    if (!url_path || !*url_path) return vd_error_set(err, VD_ERR_INVALID, "empty sqlite path");
    sq_queue *q = calloc(1, sizeof *q);
    if (!q) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    q->base.ops = &sqlite_ops;
    vd_status st = vd_sq_open(q, url_path, err);
    if (st != VD_OK) {
        sq_close(&q->base);
        return st;
    }
    *out = &q->base;
    return VD_OK;
}
