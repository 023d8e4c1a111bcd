/* queue_pg.c: the PostgreSQL backend of queue.h ("postgres://USER@HOST:PORT/DB" and the
 * other libpq forms of core/pg.h).
 *
 * One table, vd_queue_jobs, shared by every process on every host. reserve runs in one
 * transaction: housekeeping (due scheduled jobs -> queued, lapsed leases -> queued or
 * failed), then one UPDATE of the best queued row picked with SELECT ... FOR UPDATE SKIP
 * LOCKED, so concurrent reservers never wait for each other and never share a job. The
 * other changes are single UPDATEs whose WHERE is the precondition (fail reads and writes
 * in one transaction). Times come from the server's clock.
 *
 * Every change that makes a job queued also sends NOTIFY visiond_queue; an idle worker
 * LISTENs (vd_queue_wake_fd) and reserves as soon as one arrives.
 *
 * Reconnecting: an operation whose connection broke (PostgreSQL restarted) reconnects and
 * repeats itself for up to 30 s. Repeats are safe: each change writes a random token into
 * the job's last_op, and a repeat that finds its own token knows the first try took effect
 * (a repeated reserve gets the job the first one took). */
#include "queue/queue_pg_impl.h"

#include "core/pg.h"
#include "core/util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vd_status vd_queue_pg_open(const char *url, vd_queue **out, vd_error *err);

#define DEFAULT_TTL_MS (7LL * 24 * 3600 * 1000)
#define MAX_DELAY_MS   ((int64_t)1 << 50)
#define BATCH          "1000" /* jobs a reserve's housekeeping touches at most */

#define I64(buf, v) snprintf(buf, sizeof buf, "%" PRId64, (int64_t)(v))

/* ---- rows and text ------------------------------------------------------------------------ */

static char *cell_dup(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : vd_strdup(PQgetvalue(r, row, col));
}

static int64_t cell_i64(const PGresult *r, int row, int col)
{
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static vd_status row_to_job(const PGresult *r, int row, vd_job *j, vd_error *err)
{
    memset(j, 0, sizeof *j);
    vd_strlcpy(j->id, PQgetvalue(r, row, 0), sizeof j->id);
    vd_strlcpy(j->type, PQgetvalue(r, row, 1), sizeof j->type);
    j->payload = cell_dup(r, row, 2);
    j->priority = (int)cell_i64(r, row, 3);
    vd_job_state st = VD_JOB_QUEUED;
    if (vd_job_state_parse(PQgetvalue(r, row, 4), &st) != VD_OK) {
        vd_job_clear(j);
        return vd_error_set(err, VD_ERR_DB, "job has an unknown state '%s'", PQgetvalue(r, row, 4));
    }
    j->state = st;
    j->attempts = (int)cell_i64(r, row, 5);
    j->max_retries = (int)cell_i64(r, row, 6);
    j->timeout_ms = cell_i64(r, row, 7);
    j->retry_base_ms = cell_i64(r, row, 8);
    j->retry_max_ms = cell_i64(r, row, 9);
    j->result_ttl_ms = cell_i64(r, row, 10);
    j->created_ms = cell_i64(r, row, 11);
    j->run_at_ms = cell_i64(r, row, 12);
    j->started_ms = cell_i64(r, row, 13);
    j->ended_ms = cell_i64(r, row, 14);
    j->lease_until_ms = cell_i64(r, row, 15);
    vd_strlcpy(j->worker, PQgetvalue(r, row, 16), sizeof j->worker);
    j->progress_done = cell_i64(r, row, 17);
    j->progress_total = cell_i64(r, row, 18);
    j->result = cell_dup(r, row, 19);
    j->error = cell_dup(r, row, 20);
    j->cancel_requested = cell_i64(r, row, 21) != 0;
    if (!j->payload || (!PQgetisnull(r, row, 19) && !j->result) ||
        (!PQgetisnull(r, row, 20) && !j->error)) {
        vd_job_clear(j);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory reading a job");
    }
    return VD_OK;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : (c >> 4) == 0xE        ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (len == 0 || len > n) return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] >= 0xA0) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* A copy of s that PostgreSQL accepts as text: bytes that are not UTF-8 become '?'. A
 * failure message may quote anything (a file name, a library's message). */
static char *text_dup(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n + 1);
    if (!out) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t len = utf8_seq(u + i, n - i);
        if (len == 0) {
            out[i++] = '?';
            continue;
        }
        memcpy(out + i, s + i, len);
        i += len;
    }
    out[n] = '\0';
    return out;
}

/* ---- refusals ------------------------------------------------------------------------------ */

/* Explains why an update guarded by (id, state started, worker) touched no row. token: this
 * call's; a job whose last change carries it was changed by an earlier try of this call
 * (VD_OK). With finished_ok, a job this worker already finished is VD_OK too. */
static vd_status why_not_held(pg_queue *q, const char *id, const char *worker_id, int finished_ok,
                              const char *token, vd_error *err)
{
    PGresult *r;
    const char *p[] = {id};
    vd_status st = vd_pgq_run(q, PQ_PROBE, 1, p, &r, err);
    if (st != VD_OK) return st;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    }
    char state[16], worker[VD_WORKER_ID_MAX];
    vd_strlcpy(state, PQgetvalue(r, 0, 0), sizeof state);
    vd_strlcpy(worker, PQgetvalue(r, 0, 1), sizeof worker);
    int cancel_requested = cell_i64(r, 0, 2) != 0;
    int mine = token && !PQgetisnull(r, 0, 3) && strcmp(PQgetvalue(r, 0, 3), token) == 0;
    PQclear(r);
    int same_worker = worker_id && strcmp(worker, worker_id) == 0;
    if (mine || (finished_ok && strcmp(state, "finished") == 0 && same_worker)) return VD_OK;
    if (strcmp(state, "canceled") == 0 && cancel_requested && same_worker)
        return vd_error_set(err, VD_ERR_CANCELED, "job %s was canceled", id);
    if (strcmp(state, "started") == 0)
        return vd_error_set(err, VD_ERR_LEASE_LOST, "job %s is held by worker %s now", id, worker);
    return vd_error_set(err, VD_ERR_LEASE_LOST, "job %s is %s, no longer held by worker %s", id,
                        state, worker_id ? worker_id : "");
}

/* ---- enqueue ------------------------------------------------------------------------------- */

typedef struct {
    const vd_enqueue_opts *o;
    const char *id, *token;
} enqueue_arg;

/* The INSERT of one job (VD_ERR_STATE: its id is taken). */
static vd_status insert_job(pg_queue *q, const enqueue_arg *a, vd_error *err)
{
    const vd_enqueue_opts *o = a->o;
    char pri[24], mr[24], to[24], rb[24], rm[24], ttl[24], delay[24];
    I64(pri, o->priority);
    I64(mr, o->max_retries);
    I64(to, o->timeout_ms);
    I64(rb, o->retry_base_ms > 0 ? o->retry_base_ms : 1000);
    I64(rm, o->retry_max_ms > 0 ? o->retry_max_ms : 300000);
    I64(ttl, o->result_ttl_ms == 0 ? DEFAULT_TTL_MS : o->result_ttl_ms < 0 ? 0 : o->result_ttl_ms);
    I64(delay, o->delay_ms > 0 ? o->delay_ms : 0);
    const char *p[] = {a->id,    o->type, o->payload ? o->payload : "{}", pri, mr, to, rb, rm, ttl,
                       a->token, delay};
    return vd_pgq_run(q, PQ_INSERT, 11, p, NULL, err);
}

static vd_status try_enqueue(pg_queue *q, void *arg, int retry, vd_error *err)
{
    const enqueue_arg *a = arg;
    const vd_enqueue_opts *o = a->o;
    vd_status st = insert_job(q, a, err);
    if (st != VD_ERR_STATE) return st;
    /* a unique violation after a broken connection may be our own first try */
    if (retry && (!o->id || why_not_held(q, a->id, NULL, 0, a->token, err) == VD_OK)) return VD_OK;
    return vd_error_set(err, VD_ERR_STATE, "a job with id %s already exists", a->id);
}

static vd_status pgq_enqueue(vd_queue *base, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                             vd_error *err)
{
    if (o->delay_ms > MAX_DELAY_MS)
        return vd_error_set(err, VD_ERR_INVALID, "delay_ms must be <= %" PRId64, MAX_DELAY_MS);
    char id[VD_ID_LEN + 1], token[VD_ID_LEN + 1];
    if (o->id)
        vd_strlcpy(id, o->id, sizeof id);
    else
        vd_job_id_new(id);
    vd_id_new(token);
    enqueue_arg a = {o, id, token};
    vd_status st = vd_pgq_retry((pg_queue *)base, try_enqueue, &a, err);
    if (st == VD_OK && id_out) memcpy(id_out, id, sizeof id);
    return st;
}

/* A batch: one token for all of it, in one transaction (all or nothing). */
typedef struct {
    const vd_enqueue_opts *o;
    size_t n;
    char (*ids)[VD_ID_LEN + 1];
    const char *token;
} many_arg;

static vd_status try_enqueue_many(pg_queue *q, void *arg, int retry, vd_error *err)
{
    const many_arg *m = arg;
    size_t taken = m->n;
    vd_status st = vd_pgq_begin(q, err);
    if (st != VD_OK) return st;
    for (size_t i = 0; i < m->n && st == VD_OK; i++) {
        enqueue_arg a = {&m->o[i], m->ids[i], m->token};
        st = insert_job(q, &a, err);
        if (st == VD_ERR_STATE) taken = i;
    }
    st = vd_pgq_end(q, st, err);
    if (st != VD_ERR_STATE) return st;
    /* after a broken connection a taken id may be our own first try, committed
     * whole: its first job carries this batch's token */
    if (retry && why_not_held(q, m->ids[0], NULL, 0, m->token, err) == VD_OK) return VD_OK;
    return vd_error_set(err, VD_ERR_STATE, "job %zu: a job with id %s already exists", taken,
                        taken < m->n ? m->ids[taken] : "?");
}

static vd_status pgq_enqueue_many(vd_queue *base, const vd_enqueue_opts *o, size_t n,
                                  char (*ids_out)[VD_ID_LEN + 1], vd_error *err)
{
    char(*ids)[VD_ID_LEN + 1] = calloc(n, sizeof *ids);
    if (!ids) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = VD_OK;
    for (size_t i = 0; i < n && st == VD_OK; i++) {
        if (o[i].delay_ms > MAX_DELAY_MS)
            st = vd_error_set(err, VD_ERR_INVALID, "job %zu: delay_ms must be <= %" PRId64, i,
                              MAX_DELAY_MS);
        else if (o[i].id)
            vd_strlcpy(ids[i], o[i].id, sizeof ids[i]);
        else
            vd_job_id_new(ids[i]);
    }
    char token[VD_ID_LEN + 1];
    vd_id_new(token);
    many_arg m = {o, n, ids, token};
    if (st == VD_OK) st = vd_pgq_retry((pg_queue *)base, try_enqueue_many, &m, err);
    if (st == VD_OK && ids_out) memcpy(ids_out, ids, n * sizeof *ids);
    free(ids);
    return st;
}

/* ---- reserve ------------------------------------------------------------------------------- */

typedef struct {
    const char *worker, *lease, *types, *token;
    int64_t limit_changed; /* out: housekeeping count (maintain) */
    vd_job *job;
} reserve_arg;

/* Promotes due scheduled jobs and reclaims lapsed leases (at most limit of each; NULL = all)
 * inside the caller's transaction; adds how many it changed to *changed. */
static vd_status housekeep(pg_queue *q, const char *limit, int64_t *changed, vd_error *err)
{
    PGresult *r;
    const char *p[] = {limit};
    vd_status st = vd_pgq_run(q, PQ_HOUSEKEEP, 1, p, &r, err);
    if (st != VD_OK) return st;
    if (changed && PQntuples(r) > 0) *changed += cell_i64(r, 0, 0);
    PQclear(r);
    return VD_OK;
}

static vd_status take_row(pg_queue *q, int idx, int n, const char *const *p, vd_job *job,
                          vd_error *err)
{
    PGresult *r;
    vd_status st = vd_pgq_run(q, idx, n, p, &r, err);
    if (st != VD_OK) return st;
    st = PQntuples(r) > 0 ? row_to_job(r, 0, job, err) : VD_ERR_EMPTY;
    PQclear(r);
    return st;
}

/* On a retry, the job an earlier try of this call took (its commit may have gone through with
 * the reply lost) into a->job: VD_OK; VD_ERR_EMPTY when none, or on a first try. */
static vd_status retake(pg_queue *q, reserve_arg *a, int retry, vd_error *err)
{
    if (!retry) return VD_ERR_EMPTY;
    const char *p[] = {a->token, a->worker};
    return take_row(q, PQ_RETAKE, 2, p, a->job, err);
}

/* Begins a reserve's transaction, having read the notifications (what was notified before
 * its snapshot, it sees). */
static vd_status begin_take(pg_queue *q, vd_error *err)
{
    if (!vd_pgq_poll_notify(q))
        return vd_error_set(err, VD_ERR_CONN, "postgres %s: connection lost", q->shown);
    q->woken = 0;
    return vd_pgq_begin(q, err);
}

/* Inside the transaction: housekeeping, then the next job into a->job (VD_ERR_EMPTY: none). */
static vd_status take_next(pg_queue *q, reserve_arg *a, vd_error *err)
{
    vd_status st = housekeep(q, BATCH, NULL, err);
    if (st != VD_OK) return st;
    const char *p[] = {a->worker, a->lease, a->types, a->token};
    return take_row(q, PQ_TAKE, 4, p, a->job, err);
}

static vd_status try_reserve(pg_queue *q, void *arg, int retry, vd_error *err)
{
    reserve_arg *a = arg;
    vd_status st = retake(q, a, retry, err);
    if (st != VD_ERR_EMPTY) return st;
    if ((st = begin_take(q, err)) != VD_OK) return st;
    st = take_next(q, a, err);
    if (st == VD_ERR_EMPTY) { /* commit the housekeeping even when nothing was taken */
        st = vd_pgq_end(q, VD_OK, err);
        return st == VD_OK ? vd_error_set(err, VD_ERR_EMPTY, "no job is ready") : st;
    }
    int filled = st == VD_OK;
    st = vd_pgq_end(q, st, err);
    if (st != VD_OK && filled) vd_job_clear(a->job);
    return st;
}

/* The types as a PostgreSQL array literal, e.g. {"a","b.c"} (names are [A-Za-z0-9_.-]). */
static char *types_array(const char *const *types, size_t ntypes)
{
    size_t cap = 3;
    for (size_t i = 0; i < ntypes; i++)
        cap += (types[i] ? strlen(types[i]) : 0) + 3;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t k = 0;
    s[k++] = '{';
    for (size_t i = 0; i < ntypes; i++) {
        if (!types[i]) continue;
        k += (size_t)snprintf(s + k, cap - k, "%s\"%s\"", k > 1 ? "," : "", types[i]);
    }
    s[k++] = '}';
    s[k] = '\0';
    return s;
}

/* The types of a reserve as an array literal into *arr (NULL: any type). */
static vd_status reserve_types(const char *const *types, size_t ntypes, char **arr, vd_error *err)
{
    *arr = NULL;
    if (!types) return VD_OK;
    for (size_t i = 0; i < ntypes; i++)
        if (types[i] && !vd_job_type_valid(types[i]))
            return vd_error_set(err, VD_ERR_INVALID, "bad job type '%s'", types[i]);
    if (!(*arr = types_array(types, ntypes)))
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    return VD_OK;
}

/* Checks a reserve's types, fills *r (lease_ms, a fresh token: both live until this returns)
 * and runs fn(q, arg) under vd_pgq_retry: the part reserve and complete_reserve share. */
static vd_status run_reserving(pg_queue *q, const char *worker_id, int64_t lease_ms,
                               const char *const *types, size_t ntypes, vd_job *job, reserve_arg *r,
                               vd_pgq_try_fn fn, void *arg, vd_error *err)
{
    char *arr;
    vd_status st = reserve_types(types, ntypes, &arr, err);
    if (st != VD_OK) return st;
    char lease[24], token[VD_ID_LEN + 1];
    I64(lease, lease_ms);
    vd_id_new(token);
    *r = (reserve_arg){
        .worker = worker_id, .lease = lease, .types = arr, .token = token, .job = job};
    st = vd_pgq_retry(q, fn, arg, err);
    free(arr);
    return st;
}

static vd_status pgq_reserve(vd_queue *base, const char *worker_id, int64_t lease_ms,
                             const char *const *types, size_t ntypes, vd_job *job, vd_error *err)
{
    reserve_arg a;
    return run_reserving((pg_queue *)base, worker_id, lease_ms, types, ntypes, job, &a, try_reserve,
                         &a, err);
}

typedef struct {
    const char *id, *result;
    reserve_arg r; /* its token is the complete's too */
    int *reserved;
} complete_reserve_arg;

/* complete, then reserve, in one transaction (one commit). A retry first looks for the job
 * an earlier try took (its commit may have gone through with the reply lost: the complete
 * with it); the complete of a retry that finds its own token is a repeat, answered ok. */
static vd_status try_complete_reserve(pg_queue *q, void *arg, int retry, vd_error *err)
{
    complete_reserve_arg *a = arg;
    reserve_arg *ra = &a->r;
    vd_status st = retake(q, ra, retry, err);
    *a->reserved = st == VD_OK;
    if (st != VD_ERR_EMPTY) return st;
    if ((st = begin_take(q, err)) != VD_OK) return st;
    const char *p[] = {a->id, ra->worker, a->result, ra->token};
    int64_t rows = 0;
    st = vd_pgq_rows(q, PQ_COMPLETE, 4, p, &rows, err);
    if (st == VD_OK && rows == 0) st = why_not_held(q, a->id, ra->worker, 1, ra->token, err);
    if (st == VD_OK) {
        st = take_next(q, ra, err);
        *a->reserved = st == VD_OK;
        if (st == VD_ERR_EMPTY) st = VD_OK;
    }
    st = vd_pgq_end(q, st, err);
    if (st != VD_OK && *a->reserved) {
        vd_job_clear(ra->job);
        *a->reserved = 0;
    }
    return st;
}

static vd_status pgq_complete_reserve(vd_queue *base, const char *id, const char *worker_id,
                                      const char *result, int64_t lease_ms,
                                      const char *const *types, size_t ntypes, vd_job *next,
                                      int *reserved, vd_error *err)
{
    *reserved = 0;
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    complete_reserve_arg a = {.id = id, .result = result, .reserved = reserved};
    return run_reserving((pg_queue *)base, worker_id, lease_ms, types, ntypes, next, &a.r,
                         try_complete_reserve, &a, err);
}

/* ---- changes of one held job ---------------------------------------------------------------- */

/* One guarded UPDATE of job p[0] (held by worker, or any holder when worker is NULL); when it
 * touches no row, the refusal is explained by why_not_held (or by `rule`, a VD_ERR_STATE
 * message, when rule is set). */
typedef struct {
    int idx, n;
    const char *const *p;
    const char *worker, *token, *rule;
    int finished_ok;
} change_arg;

static vd_status try_change(pg_queue *q, void *arg, int retry, vd_error *err)
{
    (void)retry;
    const change_arg *a = arg;
    int64_t rows = 0;
    vd_status st = vd_pgq_rows(q, a->idx, a->n, a->p, &rows, err);
    if (st != VD_OK || rows > 0) return st;
    st = why_not_held(q, a->p[0], a->worker, a->finished_ok, a->token, err);
    if (!a->rule || st == VD_OK || st == VD_ERR_NOT_FOUND || st == VD_ERR_CONN) return st;
    vd_job j;
    st = vd_queue_get(&q->base, a->p[0], &j, err);
    if (st != VD_OK) return st;
    st = vd_error_set(err, VD_ERR_STATE, "job %s is %s: %s", a->p[0], vd_job_state_name(j.state),
                      a->rule);
    vd_job_clear(&j);
    return st;
}

static vd_status change(pg_queue *q, const change_arg *a, vd_error *err)
{
    return vd_pgq_retry(q, try_change, (void *)a, err);
}

static vd_status pgq_heartbeat(vd_queue *base, const char *id, const char *worker_id,
                               int64_t lease_ms, vd_error *err)
{
    if (!id || !worker_id || lease_ms <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "heartbeat needs an id, a worker and a lease > 0");
    char lease[24];
    I64(lease, lease_ms);
    const char *p[] = {id, worker_id, lease};
    change_arg a = {.idx = PQ_HEARTBEAT, .n = 3, .p = p, .worker = worker_id};
    return change((pg_queue *)base, &a, err);
}

static vd_status pgq_progress(vd_queue *base, const char *id, int64_t done, int64_t total,
                              vd_error *err)
{
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    char d[24], t[24];
    I64(d, done);
    I64(t, total);
    const char *p[] = {id, d, t};
    change_arg a = {.idx = PQ_PROGRESS, .n = 3, .p = p, .rule = "progress needs a started job"};
    vd_status st = change((pg_queue *)base, &a, err);
    if (st == VD_ERR_STATE) return vd_error_set(err, VD_ERR_STATE, "job %s is not started", id);
    return st;
}

static vd_status pgq_complete(vd_queue *base, const char *id, const char *worker_id,
                              const char *result, vd_error *err)
{
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    char token[VD_ID_LEN + 1];
    vd_id_new(token);
    const char *p[] = {id, worker_id, result, token};
    change_arg a = {
        .idx = PQ_COMPLETE, .n = 4, .p = p, .worker = worker_id, .token = token, .finished_ok = 1};
    return change((pg_queue *)base, &a, err);
}

typedef struct {
    const char *id, *worker, *message, *token;
    int retryable;
    double unit;
} fail_arg;

static vd_status try_fail(pg_queue *q, void *arg, int retry, vd_error *err)
{
    (void)retry;
    const fail_arg *a = arg;
    vd_status st = vd_pgq_begin(q, err);
    if (st != VD_OK) return st;
    PGresult *r;
    const char *p[] = {a->id, a->worker};
    if ((st = vd_pgq_run(q, PQ_FAIL_READ, 2, p, &r, err)) != VD_OK) return vd_pgq_end(q, st, err);
    if (PQntuples(r) == 0) {
        PQclear(r);
        st = why_not_held(q, a->id, a->worker, 0, a->token, err);
        return vd_pgq_end(q, st, err);
    }
    int attempts = (int)cell_i64(r, 0, 0), max_retries = (int)cell_i64(r, 0, 1);
    int64_t base_ms = cell_i64(r, 0, 2), max_ms = cell_i64(r, 0, 3);
    PQclear(r);
    int again = a->retryable && attempts < 1 + max_retries;
    char backoff[24];
    I64(backoff, again ? vd_queue_backoff_ms(base_ms, max_ms, attempts, a->unit) : 0);
    const char *w[] = {a->id, again ? "scheduled" : "failed", backoff, a->message, a->token};
    st = vd_pgq_run(q, PQ_FAIL_WRITE, 5, w, NULL, err);
    return vd_pgq_end(q, st, err);
}

static vd_status pgq_fail(vd_queue *base, const char *id, const char *worker_id,
                          const char *message, int retryable, vd_error *err)
{
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    char token[VD_ID_LEN + 1];
    vd_id_new(token);
    char *msg = text_dup(message);
    if (!msg) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    fail_arg a = {id, worker_id, msg, token, retryable, vd_random_unit()};
    vd_status st = vd_pgq_retry((pg_queue *)base, try_fail, &a, err);
    free(msg);
    return st;
}

static vd_status pgq_release(vd_queue *base, const char *id, const char *worker_id,
                             const char *reason, vd_error *err)
{
    if (!id || !worker_id) return vd_error_set(err, VD_ERR_INVALID, "no job id or worker");
    char token[VD_ID_LEN + 1];
    vd_id_new(token);
    char *why = text_dup(reason);
    if (!why) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    const char *p[] = {id, worker_id, why, token};
    change_arg a = {.idx = PQ_RELEASE, .n = 4, .p = p, .worker = worker_id, .token = token};
    vd_status st = change((pg_queue *)base, &a, err);
    free(why);
    return st;
}

static vd_status move_job(vd_queue *base, const char *id, int idx, const char *rule, vd_error *err)
{
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    char token[VD_ID_LEN + 1];
    vd_id_new(token);
    const char *p[] = {id, token};
    change_arg a = {.idx = idx, .n = 2, .p = p, .token = token, .rule = rule};
    return change((pg_queue *)base, &a, err);
}

static vd_status pgq_cancel(vd_queue *base, const char *id, vd_error *err)
{
    return move_job(base, id, PQ_CANCEL, "only queued, scheduled or started jobs can be canceled",
                    err);
}

static vd_status pgq_requeue(vd_queue *base, const char *id, vd_error *err)
{
    return move_job(base, id, PQ_REQUEUE, "only failed or canceled jobs can be requeued", err);
}

/* ---- reading ------------------------------------------------------------------------------- */

typedef struct {
    int idx, n;
    const char *const *p;
    PGresult *r; /* out */
} read_arg;

static vd_status try_read(pg_queue *q, void *arg, int retry, vd_error *err)
{
    (void)retry;
    read_arg *a = arg;
    return vd_pgq_run(q, a->idx, a->n, a->p, &a->r, err);
}

/* Runs a read-only statement (repeated after a reconnect); *out is the caller's to PQclear. */
static vd_status read_rows(pg_queue *q, int idx, int n, const char *const *p, PGresult **out,
                           vd_error *err)
{
    read_arg a = {idx, n, p, NULL};
    vd_status st = vd_pgq_retry(q, try_read, &a, err);
    *out = a.r;
    return st;
}

static vd_status pgq_get(vd_queue *base, const char *id, vd_job *job, vd_error *err)
{
    if (!id) return vd_error_set(err, VD_ERR_INVALID, "no job id");
    PGresult *r;
    const char *p[] = {id};
    vd_status st = read_rows((pg_queue *)base, PQ_GET, 1, p, &r, err);
    if (st != VD_OK) return st;
    if (PQntuples(r) == 0)
        st = vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    else
        st = row_to_job(r, 0, job, err);
    PQclear(r);
    return st;
}

static vd_status pgq_list(vd_queue *base, const vd_list_opts *o, vd_job **jobs, size_t *n,
                          vd_error *err)
{
    *jobs = NULL;
    *n = 0;
    if (o->state != -1 && (o->state < 0 || o->state >= VD_JOB__NSTATES))
        return vd_error_set(err, VD_ERR_INVALID, "unknown job state %d", o->state);
    char lim[24], off[24];
    I64(lim, o->limit > INT64_MAX ? INT64_MAX : o->limit);
    I64(off, o->offset > INT64_MAX ? INT64_MAX : o->offset);
    const char *p[] = {o->state >= 0 ? vd_job_state_name((vd_job_state)o->state) : NULL, o->type,
                       lim, off};
    PGresult *r;
    vd_status st = read_rows((pg_queue *)base, PQ_LIST, 4, p, &r, err);
    if (st != VD_OK) return st;
    int rows = PQntuples(r);
    vd_job *arr = rows ? calloc((size_t)rows, sizeof *arr) : NULL;
    if (rows && !arr) st = vd_error_set(err, VD_ERR_NOMEM, "out of memory listing jobs");
    size_t cnt = 0;
    for (int i = 0; st == VD_OK && i < rows; i++)
        if ((st = row_to_job(r, i, &arr[cnt], err)) == VD_OK) cnt++;
    PQclear(r);
    if (st != VD_OK) {
        vd_job_list_free(arr, cnt);
        return st;
    }
    *jobs = arr;
    *n = cnt;
    return VD_OK;
}

static vd_status pgq_counts(vd_queue *base, int64_t counts[VD_JOB__NSTATES], vd_error *err)
{
    for (int i = 0; i < VD_JOB__NSTATES; i++)
        counts[i] = 0;
    PGresult *r;
    vd_status st = read_rows((pg_queue *)base, PQ_COUNTS, 0, NULL, &r, err);
    if (st != VD_OK) return st;
    for (int i = 0; i < PQntuples(r); i++) {
        vd_job_state js;
        if (vd_job_state_parse(PQgetvalue(r, i, 0), &js) == VD_OK) counts[js] = cell_i64(r, i, 1);
    }
    PQclear(r);
    return VD_OK;
}

/* ---- housekeeping ---------------------------------------------------------------------------- */

static vd_status try_maintain(pg_queue *q, void *arg, int retry, vd_error *err)
{
    (void)retry;
    int64_t *changed = arg, n = 0, ttl = 0;
    vd_status st = vd_pgq_begin(q, err);
    if (st != VD_OK) return st;
    st = housekeep(q, NULL, &n, err);
    if (st == VD_OK) st = vd_pgq_rows(q, PQ_TTL, 0, NULL, &ttl, err);
    st = vd_pgq_end(q, st, err);
    *changed = st == VD_OK ? n + ttl : 0;
    return st;
}

static vd_status pgq_maintain(vd_queue *base, int *changed, vd_error *err)
{
    int64_t n = 0;
    vd_status st = vd_pgq_retry((pg_queue *)base, try_maintain, &n, err);
    if (changed) *changed = n > INT32_MAX ? INT32_MAX : (int)n;
    return st;
}

typedef struct {
    const char *states, *older;
    int64_t deleted;
} purge_arg;

static vd_status try_purge(pg_queue *q, void *arg, int retry, vd_error *err)
{
    (void)retry;
    purge_arg *a = arg;
    int64_t rows = 0;
    const char *p[] = {a->states, a->older};
    vd_status st = vd_pgq_rows(q, PQ_PURGE, 2, p, &rows, err);
    if (st == VD_OK) a->deleted += rows; /* a repeat deletes only what the first try left */
    return st;
}

static vd_status pgq_purge(vd_queue *base, int state, int64_t older_than_ms, int64_t *deleted,
                           vd_error *err)
{
    char states[48], older[24];
    if (state == -1)
        snprintf(states, sizeof states, "{finished,failed,canceled}");
    else
        snprintf(states, sizeof states, "{%s}", vd_job_state_name((vd_job_state)state));
    I64(older, older_than_ms);
    purge_arg a = {states, older, 0};
    vd_status st = vd_pgq_retry((pg_queue *)base, try_purge, &a, err);
    if (deleted) *deleted = a.deleted;
    return st;
}

/* ---- waking idle workers --------------------------------------------------------------------- */

static int pgq_wake_fd(vd_queue *base)
{
    pg_queue *q = (pg_queue *)base;
    q->listen = 1;
    if (!q->c || PQstatus(q->c) != CONNECTION_OK) return -1;
    vd_error err;
    if (vd_pgq_listen(q, &err) != VD_OK) return -1;
    return PQsocket(q->c);
}

static int pgq_woken(vd_queue *base)
{
    pg_queue *q = (pg_queue *)base;
    if (!vd_pgq_poll_notify(q)) return 1; /* the connection broke: reserve reconnects */
    int w = q->woken;
    q->woken = 0;
    return w;
}

/* ---- open ------------------------------------------------------------------------------------ */

static void pgq_close(vd_queue *base)
{
    pg_queue *q = (pg_queue *)base;
    vd_pgq_close(q);
    free(q);
}

static const vd_queue_ops pg_ops = {
    .name = "postgres",
    .close = pgq_close,
    .enqueue = pgq_enqueue,
    .enqueue_many = pgq_enqueue_many,
    .reserve = pgq_reserve,
    .heartbeat = pgq_heartbeat,
    .progress = pgq_progress,
    .complete = pgq_complete,
    .complete_reserve = pgq_complete_reserve,
    .fail = pgq_fail,
    .release = pgq_release,
    .cancel = pgq_cancel,
    .requeue = pgq_requeue,
    .get = pgq_get,
    .list = pgq_list,
    .counts = pgq_counts,
    .maintain = pgq_maintain,
    .purge = pgq_purge,
    .wake_fd = pgq_wake_fd,
    .woken = pgq_woken,
};

vd_status vd_queue_pg_open(const char *url, vd_queue **out, vd_error *err)
{
    *out = NULL;
    if (!url || !vd_pg_url_is(url))
        return vd_error_set(err, VD_ERR_INVALID, "not a PostgreSQL url");
    pg_queue *q = calloc(1, sizeof *q);
    if (!q) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    q->base.ops = &pg_ops;
    q->url = vd_strdup(url);
    vd_status st = q->url ? vd_pgq_open(q, err) : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (st != VD_OK) {
        pgq_close(&q->base);
        return st;
    }
    *out = &q->base;
    return VD_OK;
}
