/* queue_pg_db.c: the PostgreSQL backend's database (queue_pg_impl.h): the statements, the
 * connection and reconnecting, the schema, LISTEN. See docs/queue.md ("The PostgreSQL
 * backend") for the schema and how reserve and wake-up work.
 *
 * Connecting, password hiding, waiting for a server that is down and mapping results to a
 * vd_status are core/pg.h's; this file only decides when to reconnect and what to repeat. */
#include "queue/queue_pg_impl.h"

#include "core/log.h"
#include "core/pg.h"
#include "core/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 1
/* How long an operation keeps reconnecting and repeating itself while PostgreSQL is
 * unreachable (restarting) before it answers VD_ERR_CONN. */
#define PGQ_RETRY_MS 30000
/* pg_advisory_lock key of the queue's schema migrations ("vdqueue" in ASCII). */
#define PGQ_LOCK_KEY 0x7664717565756500LL

/* Wall-clock milliseconds on the server: every host measures leases against one clock. */
#define NOW_MS         "floor(extract(epoch from now()) * 1000)::bigint"
#define LEASE_LOST_MSG "lease expired: worker lost"
#define NOTIFY         "pg_notify('" PGQ_CHANNEL "', '')"

#define JOB_COLS                                                                                   \
    "id, type, payload, priority, state, attempts, max_retries, timeout_ms, retry_base_ms, "       \
    "retry_max_ms, result_ttl_ms, created_ms, run_at_ms, started_ms, ended_ms, lease_until_ms, "   \
    "worker, progress_done, progress_total, result, error, cancel_requested"

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS vd_queue_schema (version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vd_queue_jobs ("
    "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY," /* the FIFO tie-break */
    "  id text NOT NULL UNIQUE,"
    "  type text NOT NULL,"
    "  payload text NOT NULL,"
    "  priority integer NOT NULL DEFAULT 0,"
    "  state text NOT NULL CHECK (state IN ('queued', 'scheduled', 'started', 'finished',"
    "    'failed', 'canceled')),"
    "  attempts integer NOT NULL DEFAULT 0,"
    "  max_retries integer NOT NULL DEFAULT 0,"
    "  timeout_ms bigint NOT NULL DEFAULT 0,"
    "  retry_base_ms bigint NOT NULL,"
    "  retry_max_ms bigint NOT NULL,"
    "  result_ttl_ms bigint NOT NULL,"
    "  created_ms bigint NOT NULL,"
    "  run_at_ms bigint NOT NULL,"
    "  started_ms bigint NOT NULL DEFAULT 0,"
    "  ended_ms bigint NOT NULL DEFAULT 0,"
    "  lease_until_ms bigint NOT NULL DEFAULT 0,"
    "  worker text NOT NULL DEFAULT '',"
    "  progress_done bigint NOT NULL DEFAULT 0,"
    "  progress_total bigint NOT NULL DEFAULT 0,"
    "  result text,"
    "  error text,"
    "  cancel_requested integer NOT NULL DEFAULT 0,"
    "  last_op text);" /* token of the last change: a repeated call recognises itself */
    "CREATE INDEX IF NOT EXISTS vd_queue_jobs_ready ON vd_queue_jobs"
    "  (priority DESC, run_at_ms, seq) WHERE state = 'queued';"
    "CREATE INDEX IF NOT EXISTS vd_queue_jobs_due ON vd_queue_jobs (run_at_ms)"
    "  WHERE state = 'scheduled';"
    "CREATE INDEX IF NOT EXISTS vd_queue_jobs_lease ON vd_queue_jobs (lease_until_ms)"
    "  WHERE state = 'started';"
    "CREATE INDEX IF NOT EXISTS vd_queue_jobs_state_ended ON vd_queue_jobs (state, ended_ms);"
    "CREATE INDEX IF NOT EXISTS vd_queue_jobs_created ON vd_queue_jobs (created_ms, seq);";

/* Housekeeping rows are picked with SKIP LOCKED too, so that reservers never queue up
 * behind each other's promotions. $1 = at most this many of each (NULL: all). */
#define HOUSEKEEP_SQL                                                                              \
    "WITH p AS (UPDATE vd_queue_jobs SET state = 'queued' WHERE seq IN (SELECT seq FROM"           \
    "   vd_queue_jobs WHERE state = 'scheduled' AND run_at_ms <= " NOW_MS                          \
    "   ORDER BY run_at_ms LIMIT $1::bigint FOR UPDATE SKIP LOCKED) AND state = 'scheduled'"       \
    "   RETURNING 1),"                                                                             \
    " r AS (UPDATE vd_queue_jobs SET"                                                              \
    "   state = CASE WHEN attempts < 1 + max_retries THEN 'queued' ELSE 'failed' END,"             \
    "   ended_ms = CASE WHEN attempts < 1 + max_retries THEN 0 ELSE " NOW_MS " END,"               \
    "   run_at_ms = " NOW_MS ", lease_until_ms = 0, error = '" LEASE_LOST_MSG "'"                  \
    "   WHERE seq IN (SELECT seq FROM vd_queue_jobs WHERE state = 'started' AND"                   \
    "   lease_until_ms < " NOW_MS " ORDER BY lease_until_ms LIMIT $1::bigint"                      \
    "   FOR UPDATE SKIP LOCKED) AND state = 'started' AND lease_until_ms < " NOW_MS                \
    "   RETURNING state),"                                                                         \
    " c AS (SELECT (SELECT count(*) FROM p) AS np, (SELECT count(*) FROM r) AS nr,"                \
    "   (SELECT count(*) FROM r WHERE state = 'queued') AS nq)"                                    \
    " SELECT np + nr, (SELECT count(*) FROM (SELECT " NOTIFY " WHERE c.np + c.nq > 0) z) FROM c"

static const char *const stmt_sql[PQ__COUNT] = {
    [PQ_INSERT] =
        "WITH j AS (INSERT INTO vd_queue_jobs (id, type, payload, priority, state, max_retries,"
        " timeout_ms, retry_base_ms, retry_max_ms, result_ttl_ms, created_ms, run_at_ms, last_op)"
        " SELECT $1, $2, $3, $4::integer,"
        "  CASE WHEN $11::bigint > 0 THEN 'scheduled' ELSE 'queued' END, $5::integer,"
        "  $6::bigint, $7::bigint, $8::bigint, $9::bigint, n.ms, n.ms + $11::bigint, $10"
        " FROM (SELECT " NOW_MS " AS ms) n RETURNING state)"
        " SELECT " NOTIFY " FROM j WHERE state = 'queued'",
    [PQ_HOUSEKEEP] = HOUSEKEEP_SQL,
    [PQ_TAKE] = "UPDATE vd_queue_jobs SET state = 'started', attempts = attempts + 1, worker = $1,"
                " started_ms = " NOW_MS ", ended_ms = 0, lease_until_ms = " NOW_MS " + $2::bigint,"
                " cancel_requested = 0, progress_done = 0, progress_total = 0, last_op = $4"
                " WHERE seq = (SELECT seq FROM vd_queue_jobs WHERE state = 'queued'"
                "   AND ($3::text[] IS NULL OR type = ANY($3::text[]))"
                "   ORDER BY priority DESC, run_at_ms, seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
                " AND state = 'queued' RETURNING " JOB_COLS,
    [PQ_RETAKE] = "SELECT " JOB_COLS " FROM vd_queue_jobs WHERE last_op = $1"
                  " AND state = 'started' AND worker = $2",
    [PQ_HEARTBEAT] = "UPDATE vd_queue_jobs SET lease_until_ms = " NOW_MS " + $3::bigint"
                     " WHERE id = $1 AND state = 'started' AND worker = $2",
    [PQ_PROBE] = "SELECT state, worker, cancel_requested, last_op FROM vd_queue_jobs WHERE id = $1",
    [PQ_PROGRESS] = "UPDATE vd_queue_jobs SET progress_done = $2::bigint,"
                    " progress_total = $3::bigint WHERE id = $1 AND state = 'started'",
    [PQ_COMPLETE] = "UPDATE vd_queue_jobs SET state = 'finished', ended_ms = " NOW_MS ","
                    " lease_until_ms = 0, result = $3, last_op = $4"
                    " WHERE id = $1 AND state = 'started' AND worker = $2",
    [PQ_FAIL_READ] = "SELECT attempts, max_retries, retry_base_ms, retry_max_ms FROM vd_queue_jobs"
                     " WHERE id = $1 AND state = 'started' AND worker = $2 FOR UPDATE",
    [PQ_FAIL_WRITE] = "UPDATE vd_queue_jobs SET state = $2::text, run_at_ms = " NOW_MS
                      " + $3::bigint, ended_ms = CASE WHEN $2::text = 'failed' THEN " NOW_MS
                      " ELSE 0 END, lease_until_ms = 0, error = $4, last_op = $5 WHERE id = $1",
    /* run_at_ms is kept: the job goes back to its place in line */
    [PQ_RELEASE] = "WITH u AS (UPDATE vd_queue_jobs SET state = 'queued',"
                   " attempts = greatest(attempts - 1, 0), lease_until_ms = 0, ended_ms = 0,"
                   " error = $3, last_op = $4 WHERE id = $1 AND state = 'started' AND worker = $2"
                   " RETURNING 1) SELECT " NOTIFY " FROM u",
    [PQ_CANCEL] = "UPDATE vd_queue_jobs SET cancel_requested = CASE WHEN state = 'started' THEN 1"
                  " ELSE 0 END, state = 'canceled', ended_ms = " NOW_MS ", lease_until_ms = 0,"
                  " last_op = $2 WHERE id = $1 AND state IN ('queued', 'scheduled', 'started')",
    /* a requeued job goes behind every one already waiting at its priority */
    [PQ_REQUEUE] = "WITH u AS (UPDATE vd_queue_jobs j SET state = 'queued', attempts = 0,"
                   " run_at_ms = greatest(" NOW_MS ", (SELECT COALESCE(max(w.run_at_ms) + 1, 0)"
                   "  FROM vd_queue_jobs w WHERE w.state = 'queued' AND w.priority = j.priority)),"
                   " ended_ms = 0, lease_until_ms = 0, cancel_requested = 0, progress_done = 0,"
                   " progress_total = 0, result = NULL, last_op = $2"
                   " WHERE j.id = $1 AND j.state IN ('failed', 'canceled') RETURNING 1)"
                   " SELECT " NOTIFY " FROM u",
    [PQ_GET] = "SELECT " JOB_COLS " FROM vd_queue_jobs WHERE id = $1",
    [PQ_LIST] = "SELECT " JOB_COLS " FROM vd_queue_jobs WHERE ($1::text IS NULL OR state = $1)"
                " AND ($2::text IS NULL OR type = $2)"
                " ORDER BY created_ms DESC, seq DESC LIMIT $3::bigint OFFSET $4::bigint",
    [PQ_COUNTS] = "SELECT state, count(*) FROM vd_queue_jobs GROUP BY state",
    [PQ_TTL] = "DELETE FROM vd_queue_jobs WHERE state = 'finished' AND result_ttl_ms > 0"
               " AND ended_ms + result_ttl_ms <= " NOW_MS,
    [PQ_PURGE] = "DELETE FROM vd_queue_jobs WHERE state = ANY($1::text[])"
                 " AND ended_ms < $2::bigint",
};

/* ---- running statements ------------------------------------------------------------------ */

/* A result's status, VD_ERR_CONN whenever the connection is gone whatever the result says. */
static vd_status result_status(pg_queue *q, PGresult *r, const char *what, vd_error *err)
{
    vd_status st = vd_pg_status(q->c, r, what, err);
    if (st != VD_OK && st != VD_ERR_CONN && PQstatus(q->c) == CONNECTION_BAD)
        st = vd_error_set(err, VD_ERR_CONN, "postgres %s: %s: connection lost", q->shown, what);
    return st;
}

vd_status vd_pgq_run(pg_queue *q, int idx, int n, const char *const *params, PGresult **out,
                     vd_error *err)
{
    if (out) *out = NULL;
    if (!q->c) return vd_error_set(err, VD_ERR_CONN, "postgres %s: not connected", q->shown);
    char name[16];
    snprintf(name, sizeof name, "vdq%d", idx);
    if (!q->prepared[idx]) {
        PGresult *r = PQprepare(q->c, name, stmt_sql[idx], 0, NULL);
        vd_status st = result_status(q, r, "prepare", err);
        PQclear(r);
        if (st != VD_OK) return st;
        q->prepared[idx] = 1;
    }
    PGresult *r = PQexecPrepared(q->c, name, n, params, NULL, NULL, 0);
    char what[600];
    snprintf(what, sizeof what, "postgres queue %s", q->shown);
    vd_status st = result_status(q, r, what, err);
    if (st != VD_OK || !out)
        PQclear(r);
    else
        *out = r;
    return st;
}

vd_status vd_pgq_rows(pg_queue *q, int idx, int n, const char *const *params, int64_t *rows,
                      vd_error *err)
{
    PGresult *r;
    vd_status st = vd_pgq_run(q, idx, n, params, &r, err);
    if (st != VD_OK) return st;
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        *rows = PQntuples(r);
    else
        *rows = strtoll(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return VD_OK;
}

vd_status vd_pgq_begin(pg_queue *q, vd_error *err)
{
    if (!q->c) return vd_error_set(err, VD_ERR_CONN, "postgres %s: not connected", q->shown);
    vd_status st = vd_pg_exec(q->c, "BEGIN", "begin", err);
    if (st != VD_OK && PQstatus(q->c) == CONNECTION_BAD) st = VD_ERR_CONN;
    return st;
}

vd_status vd_pgq_end(pg_queue *q, vd_status st, vd_error *err)
{
    if (!q->c) return st;
    if (st == VD_OK) {
        st = vd_pg_exec(q->c, "COMMIT", "commit", err);
        if (st != VD_OK && PQstatus(q->c) == CONNECTION_BAD) st = VD_ERR_CONN;
        if (st == VD_OK) return st;
    }
    if (PQstatus(q->c) != CONNECTION_BAD && PQtransactionStatus(q->c) != PQTRANS_IDLE)
        vd_pg_exec(q->c, "ROLLBACK", "rollback", NULL);
    return st;
}

/* ---- connection ---------------------------------------------------------------------------- */

void vd_pgq_drop(pg_queue *q)
{
    if (q->c) PQfinish(q->c);
    q->c = NULL;
    q->listening = 0;
    memset(q->prepared, 0, sizeof q->prepared);
}

vd_status vd_pgq_listen(pg_queue *q, vd_error *err)
{
    if (!q->listen || q->listening) return VD_OK;
    vd_status st = vd_pg_exec(q->c, "LISTEN " PGQ_CHANNEL, "listen", err);
    if (st == VD_OK) q->listening = 1;
    return st;
}

/* The connection broke (a call failed, the idle LISTEN socket hung up, or the next call
 * finds it bad): says so once, and drops it; the next call connects again. */
static void conn_lost(pg_queue *q)
{
    if (q->c) VD_WARN("postgres %s: connection lost; reconnecting", q->shown);
    vd_pgq_drop(q);
}

static vd_status connect_for(pg_queue *q, int64_t wait_ms, vd_error *err)
{
    if (q->c && PQstatus(q->c) == CONNECTION_OK) return vd_pgq_listen(q, err);
    conn_lost(q);
    vd_status st = vd_pg_connect(q->url, wait_ms, &q->c, err);
    if (st != VD_OK) {
        q->c = NULL;
        return st;
    }
    /* notifications sent while we were away are lost: have the caller look again */
    q->woken = 1;
    return vd_pgq_listen(q, err);
}

vd_status vd_pgq_connect(pg_queue *q, vd_error *err)
{
    return connect_for(q, PGQ_RETRY_MS, err);
}

vd_status vd_pgq_retry(pg_queue *q, vd_pgq_try_fn fn, void *arg, vd_error *err)
{
    int64_t deadline = vd_mono_ms() + PGQ_RETRY_MS;
    for (int retry = 0;; retry = 1) {
        int64_t left = deadline - vd_mono_ms();
        vd_status st = connect_for(q, left > 0 ? left : 0, err);
        if (st == VD_OK) st = fn(q, arg, retry, err);
        if (st != VD_ERR_CONN) return st;
        conn_lost(q);
        if (vd_mono_ms() >= deadline) return st;
        vd_sleep_ms(50);
    }
}

int vd_pgq_poll_notify(pg_queue *q)
{
    if (!q->c) return 1;
    if (!PQconsumeInput(q->c)) {
        conn_lost(q);
        return 0;
    }
    PGnotify *n;
    while ((n = PQnotifies(q->c)) != NULL) {
        q->woken = 1;
        PQfreemem(n);
    }
    return 1;
}

/* ---- schema ---------------------------------------------------------------------------------- */

/* Reads one integer cell (row 0, column col) of sql's result; -1 when it is NULL. */
static vd_status query_int(pg_queue *q, const char *sql, int col, long long *out, vd_error *err)
{
    PGresult *r = PQexec(q->c, sql);
    vd_status st = result_status(q, r, "read schema", err);
    if (st == VD_OK)
        *out = PQntuples(r) < 1 || PQgetisnull(r, 0, col)
                   ? -1
                   : strtoll(PQgetvalue(r, 0, col), NULL, 10);
    PQclear(r);
    return st;
}

/* Creates or checks the schema; the caller holds the advisory lock. */
static vd_status ensure_schema_locked(pg_queue *q, vd_error *err)
{
    long long has_version = -1, has_jobs = -1, version = -1;
    vd_status st = query_int(q, "SELECT (to_regclass('vd_queue_schema') IS NOT NULL)::int", 0,
                             &has_version, err);
    if (st == VD_OK)
        st = query_int(q, "SELECT (to_regclass('vd_queue_jobs') IS NOT NULL)::int", 0, &has_jobs,
                       err);
    if (st == VD_OK && has_version == 1)
        st = query_int(q, "SELECT max(version) FROM vd_queue_schema", 0, &version, err);
    if (st != VD_OK) return st;
    if (has_jobs == 1 && version < 0)
        return vd_error_set(err, VD_ERR_DB,
                            "postgres %s has a vd_queue_jobs table but no schema version: not a "
                            "visiond queue",
                            q->shown);
    if (version > SCHEMA_VERSION)
        return vd_error_set(err, VD_ERR_DB,
                            "postgres %s has queue schema version %lld, newer than this build's %d",
                            q->shown, version, SCHEMA_VERSION);
    if (version == SCHEMA_VERSION) return VD_OK;
    /* version 1 is the first; later versions add their steps here, in order */
    st = vd_pgq_begin(q, err);
    if (st == VD_OK) st = vd_pg_exec(q->c, schema_sql, "create queue schema", err);
    if (st == VD_OK)
        st = vd_pg_exec(q->c, "DELETE FROM vd_queue_schema; INSERT INTO vd_queue_schema VALUES (1)",
                        "set queue schema version", err);
    return vd_pgq_end(q, st, err);
}

static vd_status ensure_schema(pg_queue *q, void *arg, int retry, vd_error *err)
{
    (void)arg;
    (void)retry;
    vd_status st = vd_pg_lock(q->c, PGQ_LOCK_KEY, err);
    if (st != VD_OK) return st;
    st = ensure_schema_locked(q, err);
    vd_error uerr;
    if (q->c && PQstatus(q->c) == CONNECTION_OK) vd_pg_unlock(q->c, PGQ_LOCK_KEY, &uerr);
    return st;
}

vd_status vd_pgq_open(pg_queue *q, vd_error *err)
{
    vd_pg_url_shown(q->url, q->shown, sizeof q->shown);
    return vd_pgq_retry(q, ensure_schema, NULL, err);
}

void vd_pgq_close(pg_queue *q)
{
    vd_pgq_drop(q);
    free(q->url);
    q->url = NULL;
}
