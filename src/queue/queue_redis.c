/* queue_redis.c: the Redis backend of queue.h ("redis://HOST:PORT/DB").
 *
 * Every state change is one Lua script run with EVALSHA (loaded with SCRIPT
 * LOAD; a NOSCRIPT reply, e.g. after a Redis restart, loads it again), so a
 * change that touches several keys is atomic. Times come from the Redis
 * server's clock (TIME inside the scripts): every worker on every machine
 * measures leases and run_at times against one clock. The key layout and the
 * scripts are described in docs/queue-redis.md.
 *
 * URL: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P&timeout_ms=N&retry_ms=N]
 *   prefix      key prefix, default "visiond:" (a ':' is appended when missing)
 *   timeout_ms  connect and per-command timeout, default 5000
 *   retry_ms    how long an operation keeps reconnecting and retrying after
 *               the connection broke (or Redis is loading its data set),
 *               with backoff from 25 ms to 1 s; default 10000. After that the
 *               operation returns VD_ERR_CONN.
 *
 * Retries are safe: every mutating script carries a random token and
 * recognises a repeat of an operation it already applied (enqueue, reserve,
 * fail, release, cancel, requeue); heartbeat and progress are idempotent; complete of a
 * job already finished by the same worker succeeds. */
#include "core/log.h"
#include "core/util.h"
#include "queue/queue_redis_impl.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

vd_status vd_queue_redis_open(const char *url, vd_queue **out, vd_error *err);

#define BATCH        1000 /* jobs one maintain/purge/reserve script touches at most */
#define MAX_DELAY_MS ((int64_t)1 << 50)

/* ---- replies -------------------------------------------------------------------------------- */

static int reply_is(const redisReply *r, size_t i, const char *s)
{
    return r && r->type == REDIS_REPLY_ARRAY && i < r->elements &&
           r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, s) == 0;
}

static const char *reply_code(const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
        r->element[0]->type == REDIS_REPLY_STRING)
        return r->element[0]->str;
    return "?";
}

static int64_t reply_int(const redisReply *r, size_t i)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements) return 0;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER) return e->integer;
    if (e->type == REDIS_REPLY_STRING) return strtoll(e->str, NULL, 10);
    return 0;
}

/* Turns a script's status code into a vd_status about job id. */
static vd_status code_status(const redisReply *r, const char *op, const char *id, vd_error *err)
{
    const char *code = reply_code(r);
    if (strcmp(code, "ok") == 0) return VD_OK;
    if (strcmp(code, "not_found") == 0) return vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    if (strcmp(code, "lease_lost") == 0)
        return vd_error_set(err, VD_ERR_LEASE_LOST, "%s: job %s is no longer held by this worker",
                            op, id);
    if (strcmp(code, "canceled") == 0)
        return vd_error_set(err, VD_ERR_CANCELED, "%s: job %s was canceled", op, id);
    if (strcmp(code, "state") == 0)
        return vd_error_set(err, VD_ERR_STATE, "cannot %s job %s: it is %s", op, id,
                            r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING
                                ? r->element[1]->str
                                : "in another state");
    if (strcmp(code, "exists") == 0)
        return vd_error_set(err, VD_ERR_STATE, "a job with id %s already exists", id);
    return vd_error_set(err, VD_ERR_INTERNAL, "redis %s script answered '%s'", op, code);
}

static char *dup_str(const redisReply *v)
{
    char *s = malloc(v->len + 1);
    if (s) {
        memcpy(s, v->str, v->len);
        s[v->len] = '\0';
    }
    return s;
}

/* Fills *job from a flat HGETALL reply (field, value, ...). */
static vd_status job_from_hash(const redisReply *h, vd_job *job, vd_error *err)
{
    memset(job, 0, sizeof *job);
    if (!h || h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0)
        return vd_error_set(err, VD_ERR_INTERNAL, "redis job hash has an unexpected shape");
    int have_state = 0;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        const char *f = k->str;
        int64_t n = strtoll(v->str, NULL, 10);
        if (strcmp(f, "id") == 0)
            vd_strlcpy(job->id, v->str, sizeof job->id);
        else if (strcmp(f, "type") == 0)
            vd_strlcpy(job->type, v->str, sizeof job->type);
        else if (strcmp(f, "worker") == 0)
            vd_strlcpy(job->worker, v->str, sizeof job->worker);
        else if (strcmp(f, "state") == 0) {
            vd_job_state s;
            if (vd_job_state_parse(v->str, &s) != VD_OK) {
                vd_job_clear(job);
                return vd_error_set(err, VD_ERR_INTERNAL, "redis job has unknown state '%s'",
                                    v->str);
            }
            job->state = s;
            have_state = 1;
        } else if (strcmp(f, "payload") == 0 || strcmp(f, "result") == 0 ||
                   strcmp(f, "error") == 0) {
            char **dst = f[0] == 'p' ? &job->payload : f[0] == 'r' ? &job->result : &job->error;
            free(*dst);
            if (!(*dst = dup_str(v))) {
                vd_job_clear(job);
                return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            }
        } else if (strcmp(f, "priority") == 0)
            job->priority = (int)n;
        else if (strcmp(f, "attempts") == 0)
            job->attempts = (int)n;
        else if (strcmp(f, "max_retries") == 0)
            job->max_retries = (int)n;
        else if (strcmp(f, "timeout_ms") == 0)
            job->timeout_ms = n;
        else if (strcmp(f, "retry_base_ms") == 0)
            job->retry_base_ms = n;
        else if (strcmp(f, "retry_max_ms") == 0)
            job->retry_max_ms = n;
        else if (strcmp(f, "result_ttl_ms") == 0)
            job->result_ttl_ms = n;
        else if (strcmp(f, "created_ms") == 0)
            job->created_ms = n;
        else if (strcmp(f, "run_at_ms") == 0)
            job->run_at_ms = n;
        else if (strcmp(f, "started_ms") == 0)
            job->started_ms = n;
        else if (strcmp(f, "ended_ms") == 0)
            job->ended_ms = n;
        else if (strcmp(f, "lease_until_ms") == 0)
            job->lease_until_ms = n;
        else if (strcmp(f, "progress_done") == 0)
            job->progress_done = n;
        else if (strcmp(f, "progress_total") == 0)
            job->progress_total = n;
        else if (strcmp(f, "cancel_requested") == 0)
            job->cancel_requested = n != 0;
    }
    if (!job->id[0] || !have_state || !job->payload) {
        vd_job_clear(job);
        return vd_error_set(err, VD_ERR_INTERNAL, "redis job hash is incomplete");
    }
    return VD_OK;
}

/* ---- operations ----------------------------------------------------------------------------- */

/* Picks the token for a mutating call: the one of the same call left unsure
 * on this handle, or a fresh one. */
static void op_token(rqueue *q, int script, const char *id, const char *worker,
                     char token[VD_ID_LEN + 1])
{
    if (q->unsure.script == script && strcmp(q->unsure.id, id) == 0 &&
        strcmp(q->unsure.worker, worker ? worker : "") == 0) {
        memcpy(token, q->unsure.token, VD_ID_LEN + 1);
        return;
    }
    vd_id_new(token);
}

/* Records how a mutating call ended: unsure after VD_ERR_CONN, settled otherwise. */
static void op_settled(rqueue *q, int script, const char *id, const char *worker, const char *token,
                       vd_status st)
{
    if (st == VD_ERR_CONN) {
        q->unsure.script = script;
        vd_strlcpy(q->unsure.id, id, sizeof q->unsure.id);
        vd_strlcpy(q->unsure.worker, worker ? worker : "", sizeof q->unsure.worker);
        vd_strlcpy(q->unsure.token, token, sizeof q->unsure.token);
    } else if (q->unsure.script == script && strcmp(q->unsure.id, id) == 0 &&
               strcmp(q->unsure.worker, worker ? worker : "") == 0) {
        q->unsure.script = -1;
    }
}

#define I64(buf, v) snprintf(buf, sizeof buf, "%" PRId64, (int64_t)(v))

/* The 11 script arguments of one job (enqueue.lua) into args, their number
 * strings into num (7 x 24 bytes). */
static void job_args(const vd_enqueue_opts *o, const char *token, const char *id, const char **args,
                     char (*num)[24])
{
    I64(num[0], o->priority);
    I64(num[1], o->max_retries);
    I64(num[2], o->timeout_ms);
    I64(num[3], o->delay_ms);
    I64(num[4], o->retry_base_ms > 0 ? o->retry_base_ms : 1000);
    I64(num[5], o->retry_max_ms > 0 ? o->retry_max_ms : 300000);
    I64(num[6], o->result_ttl_ms == 0  ? 7 * 24 * 3600 * 1000LL
                : o->result_ttl_ms < 0 ? 0
                                       : o->result_ttl_ms);
    const char *a[] = {token,  id,     o->type, o->payload ? o->payload : "{}",
                       num[0], num[1], num[2],  num[3],
                       num[4], num[5], num[6]};
    memcpy(args, a, sizeof a);
}

/* Enqueues o[0..n) in one script call (enqueue.lua: all or nothing). */
static vd_status enqueue_jobs(rqueue *q, const vd_enqueue_opts *o, size_t n,
                              char (*ids)[VD_ID_LEN + 1], vd_error *err)
{
    for (size_t i = 0; i < n; i++)
        if (o[i].delay_ms > MAX_DELAY_MS)
            return vd_error_set(err, VD_ERR_INVALID, "delay_ms must be <= %" PRId64, MAX_DELAY_MS);
    const char **args = malloc(n * 11 * sizeof *args);
    char(*num)[24] = malloc(n * 7 * sizeof *num);
    if (!args || !num) {
        free(args);
        free(num);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    char token[VD_ID_LEN + 1];
    const char *key = o[0].id ? o[0].id : ""; /* a retried call reuses its token */
    op_token(q, S_ENQUEUE, key, NULL, token);
    for (size_t i = 0; i < n; i++) {
        if (o[i].id)
            vd_strlcpy(ids[i], o[i].id, VD_ID_LEN + 1);
        else
            vd_job_id_new(ids[i]);
        job_args(&o[i], token, ids[i], args + 11 * i, num + 7 * i);
    }
    redisReply *r;
    vd_status st = vd_redis_eval(q, S_ENQUEUE, (int)(11 * n), args, NULL, &r, err);
    if (o[0].id) op_settled(q, S_ENQUEUE, key, NULL, token, st);
    free(args);
    free(num);
    if (st != VD_OK) return st;
    const char *which =
        r->type == REDIS_REPLY_ARRAY && r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING
            ? r->element[1]->str
            : ids[0];
    st = code_status(r, "enqueue", which, err);
    freeReplyObject(r);
    return st;
}

static vd_status rq_enqueue(vd_queue *base, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                            vd_error *err)
{
    char id[1][VD_ID_LEN + 1];
    vd_status st = enqueue_jobs((rqueue *)base, o, 1, id, err);
    if (st == VD_OK && id_out) memcpy(id_out, id[0], VD_ID_LEN + 1);
    return st;
}

static vd_status rq_enqueue_many(vd_queue *base, const vd_enqueue_opts *o, size_t n,
                                 char (*ids_out)[VD_ID_LEN + 1], vd_error *err)
{
    char(*ids)[VD_ID_LEN + 1] = ids_out ? ids_out : malloc(n * sizeof *ids);
    if (!ids) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = enqueue_jobs((rqueue *)base, o, n, ids, err);
    if (!ids_out) free(ids);
    return st;
}

/* Runs script s, whose reservation takes a reserve's token: ARGV = prefix, token, head[0..nhead),
 * lease_ms, types... The token is kept as an unsure reserve's after VD_ERR_CONN, so the next
 * reserve on this handle gets back the job a lost reply carried. *r as vd_redis_eval. */
static vd_status reserve_script(rqueue *q, int s, const char *const *head, size_t nhead,
                                const char *worker_id, int64_t lease_ms, const char *const *types,
                                size_t ntypes, redisReply **r, vd_error *err)
{
    size_t nargs = 2 + nhead + (types ? ntypes : 0), n = 0;
    const char **args = malloc(sizeof *args * nargs);
    if (!args) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    char token[VD_ID_LEN + 1], lease[24];
    op_token(q, S_RESERVE, "", worker_id, token);
    I64(lease, lease_ms);
    args[n++] = token;
    for (size_t i = 0; i < nhead; i++)
        args[n++] = head[i];
    args[n++] = lease;
    for (size_t i = 0; types && i < ntypes; i++)
        args[n++] = types[i];
    vd_status st = vd_redis_eval(q, s, (int)nargs, args, NULL, r, err);
    op_settled(q, S_RESERVE, "", worker_id, token, st);
    free(args);
    return st;
}

static vd_status rq_reserve(vd_queue *base, const char *worker_id, int64_t lease_ms,
                            const char *const *types, size_t ntypes, vd_job *job, vd_error *err)
{
    rqueue *q = (rqueue *)base;
    if (types && ntypes == 0) return vd_error_set(err, VD_ERR_EMPTY, "no job types to take");
    redisReply *r;
    vd_status st =
        reserve_script(q, S_RESERVE, &worker_id, 1, worker_id, lease_ms, types, ntypes, &r, err);
    if (st != VD_OK) return st;
    if (reply_is(r, 0, "empty"))
        st = vd_error_set(err, VD_ERR_EMPTY, "no job is ready");
    else if (reply_is(r, 0, "ok") && r->elements == 2)
        st = job_from_hash(r->element[1], job, err);
    else
        st = code_status(r, "reserve", "?", err);
    freeReplyObject(r);
    return st;
}

static vd_status simple_op(rqueue *q, int s, const char *op, const char *id, int nargs,
                           const char *const *args, const size_t *lens, vd_error *err)
{
    if (!id || !*id) return vd_error_set(err, VD_ERR_INVALID, "%s needs a job id", op);
    redisReply *r;
    vd_status st = vd_redis_eval(q, s, nargs, args, lens, &r, err);
    if (st != VD_OK) return st;
    st = code_status(r, op, id, err);
    freeReplyObject(r);
    return st;
}

static vd_status rq_heartbeat(vd_queue *base, const char *id, const char *worker_id,
                              int64_t lease_ms, vd_error *err)
{
    if (!worker_id || lease_ms <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "heartbeat needs a worker id and a lease > 0");
    char lease[24];
    I64(lease, lease_ms);
    const char *args[] = {id, worker_id, lease};
    return simple_op((rqueue *)base, S_HEARTBEAT, "heartbeat", id, 3, args, NULL, err);
}

static vd_status rq_progress(vd_queue *base, const char *id, int64_t done, int64_t total,
                             vd_error *err)
{
    char d[24], t[24];
    I64(d, done);
    I64(t, total);
    const char *args[] = {id, d, t};
    return simple_op((rqueue *)base, S_PROGRESS, "record progress of", id, 3, args, NULL, err);
}

/* Runs a mutating script whose first two arguments are token and id, with
 * the token of an unsure earlier try of the same call (see rqueue.unsure). */
static vd_status token_op(rqueue *q, int s, const char *op, const char *id, const char *worker,
                          int nargs, const char **args, vd_error *err)
{
    if (!id || !*id) return vd_error_set(err, VD_ERR_INVALID, "%s needs a job id", op);
    char token[VD_ID_LEN + 1];
    op_token(q, s, id, worker, token);
    args[0] = token;
    redisReply *r;
    vd_status st = vd_redis_eval(q, s, nargs, args, NULL, &r, err);
    op_settled(q, s, id, worker, token, st);
    if (st != VD_OK) return st;
    st = code_status(r, op, id, err);
    freeReplyObject(r);
    return st;
}

static vd_status rq_complete(vd_queue *base, const char *id, const char *worker_id,
                             const char *result, vd_error *err)
{
    if (!worker_id) return vd_error_set(err, VD_ERR_INVALID, "complete needs a worker id");
    const char *args[] = {NULL, id, worker_id, result ? "1" : "0", result ? result : ""};
    return token_op((rqueue *)base, S_COMPLETE, "complete", id, worker_id, 5, args, err);
}

/* complete, then reserve, in one script (complete_reserve.lua): one round trip instead of two.
 * Its token is also the reserve's: when the reply is lost (VD_ERR_CONN), the token is left
 * unsure as a reserve's, so that the caller's next reserve on this handle gets back the job the
 * lost reply carried instead of leaving it started until its lease lapses (the caller writes
 * the complete alone first; a complete the script already wrote is a repeat, answered ok). */
static vd_status rq_complete_reserve(vd_queue *base, const char *id, const char *worker_id,
                                     const char *result, int64_t lease_ms, const char *const *types,
                                     size_t ntypes, vd_job *next, int *reserved, vd_error *err)
{
    rqueue *q = (rqueue *)base;
    *reserved = 0;
    if (!id || !*id) return vd_error_set(err, VD_ERR_INVALID, "complete needs a job id");
    if (types && ntypes == 0) return rq_complete(base, id, worker_id, result, err);
    const char *head[] = {id, worker_id, result ? "1" : "0", result ? result : ""};
    redisReply *r;
    vd_status st =
        reserve_script(q, S_COMPLETE_RESERVE, head, 4, worker_id, lease_ms, types, ntypes, &r, err);
    if (st != VD_OK) return st;
    if (!reply_is(r, 0, "ok"))
        st = code_status(r, "complete", id, err);
    else if (reply_is(r, 1, "ok") && r->elements == 3) {
        /* the complete is written either way; a hash that does not parse is a failed reserve */
        *reserved = job_from_hash(r->element[2], next, err) == VD_OK;
        if (!*reserved) VD_WARN("redis complete_reserve: %s", vd_error_text(err));
        vd_error_clear(err);
    }
    freeReplyObject(r);
    return st;
}

static vd_status rq_fail(vd_queue *base, const char *id, const char *worker_id, const char *message,
                         int retryable, vd_error *err)
{
    if (!worker_id) return vd_error_set(err, VD_ERR_INVALID, "fail needs a worker id");
    char unit[32];
    snprintf(unit, sizeof unit, "%.17g", vd_random_unit());
    const char *args[] = {NULL, id, worker_id, message, retryable ? "1" : "0", unit};
    return token_op((rqueue *)base, S_FAIL, "fail", id, worker_id, 6, args, err);
}

static vd_status rq_release(vd_queue *base, const char *id, const char *worker_id,
                            const char *reason, vd_error *err)
{
    if (!worker_id) return vd_error_set(err, VD_ERR_INVALID, "release needs a worker id");
    const char *args[] = {NULL, id, worker_id, reason};
    return token_op((rqueue *)base, S_RELEASE, "release", id, worker_id, 4, args, err);
}

static vd_status rq_cancel(vd_queue *base, const char *id, vd_error *err)
{
    const char *args[] = {NULL, id};
    return token_op((rqueue *)base, S_CANCEL, "cancel", id, NULL, 2, args, err);
}

static vd_status rq_requeue(vd_queue *base, const char *id, vd_error *err)
{
    const char *args[] = {NULL, id};
    return token_op((rqueue *)base, S_REQUEUE, "requeue", id, NULL, 2, args, err);
}

static vd_status rq_get(vd_queue *base, const char *id, vd_job *job, vd_error *err)
{
    rqueue *q = (rqueue *)base;
    if (!id || !*id) return vd_error_set(err, VD_ERR_INVALID, "get needs a job id");
    size_t klen = strlen(q->prefix) + 4 + strlen(id) + 1;
    char *key = malloc(klen);
    if (!key) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    snprintf(key, klen, "%sjob:%s", q->prefix, id);
    const char *argv[2] = {"HGETALL", key};
    redisReply *r;
    vd_status st = vd_redis_call(q, 2, argv, NULL, &r, err);
    free(key);
    if (st != VD_OK) return st;
    if (r->type == REDIS_REPLY_ERROR)
        st = vd_error_set(err, VD_ERR_DB, "redis HGETALL failed: %s", r->str);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements == 0)
        st = vd_error_set(err, VD_ERR_NOT_FOUND, "no job %s", id);
    else
        st = job_from_hash(r, job, err);
    freeReplyObject(r);
    return st;
}

static vd_status rq_list(vd_queue *base, const vd_list_opts *o, vd_job **jobs, size_t *n,
                         vd_error *err)
{
    rqueue *q = (rqueue *)base;
    *jobs = NULL;
    *n = 0;
    if (o->state != -1 && (o->state < 0 || o->state >= VD_JOB__NSTATES))
        return vd_error_set(err, VD_ERR_INVALID, "unknown job state %d", o->state);
    if (o->limit > 100000 || o->offset > (size_t)1 << 40)
        return vd_error_set(err, VD_ERR_INVALID, "list limit must be <= 100000");
    char off[24], lim[24];
    I64(off, o->offset);
    I64(lim, o->limit);
    const char *args[] = {o->state == -1 ? "" : vd_job_state_name((vd_job_state)o->state),
                          o->type ? o->type : "", off, lim};
    redisReply *r;
    vd_status st = vd_redis_eval(q, S_LIST, 4, args, NULL, &r, err);
    if (st != VD_OK) return st;
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return vd_error_set(err, VD_ERR_INTERNAL, "redis list script answered no array");
    }
    vd_job *out = r->elements ? calloc(r->elements, sizeof *out) : NULL;
    if (r->elements && !out) {
        freeReplyObject(r);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    for (size_t i = 0; i < r->elements && st == VD_OK; i++)
        if ((st = job_from_hash(r->element[i], &out[k], err)) == VD_OK) k++;
    freeReplyObject(r);
    if (st != VD_OK) {
        vd_job_list_free(out, k);
        return st;
    }
    *jobs = out;
    *n = k;
    return VD_OK;
}

static vd_status rq_counts(vd_queue *base, int64_t counts[VD_JOB__NSTATES], vd_error *err)
{
    rqueue *q = (rqueue *)base;
    redisReply *r;
    vd_status st = vd_redis_eval(q, S_COUNTS, 0, NULL, NULL, &r, err);
    if (st != VD_OK) return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != VD_JOB__NSTATES)
        st = vd_error_set(err, VD_ERR_INTERNAL, "redis counts script answered the wrong shape");
    else
        for (int i = 0; i < VD_JOB__NSTATES; i++)
            counts[i] = reply_int(r, (size_t)i);
    freeReplyObject(r);
    return st;
}

static vd_status rq_maintain(vd_queue *base, int *changed, vd_error *err)
{
    rqueue *q = (rqueue *)base;
    int64_t total = 0;
    char lim[24];
    I64(lim, BATCH);
    const char *args[] = {lim};
    for (;;) {
        redisReply *r;
        vd_status st = vd_redis_eval(q, S_MAINTAIN, 1, args, NULL, &r, err);
        if (st != VD_OK) return st;
        total += reply_int(r, 0);
        int more = reply_int(r, 1) != 0;
        freeReplyObject(r);
        if (!more) break;
    }
    if (changed) *changed = total > INT32_MAX ? INT32_MAX : (int)total;
    return VD_OK;
}

static vd_status rq_purge(vd_queue *base, int state, int64_t older_than_ms, int64_t *deleted,
                          vd_error *err)
{
    rqueue *q = (rqueue *)base;
    char older[24], lim[24];
    I64(older, older_than_ms);
    I64(lim, BATCH);
    const char *args[5] = {older, lim};
    int nargs = 2;
    if (state == -1) {
        args[nargs++] = "finished";
        args[nargs++] = "failed";
        args[nargs++] = "canceled";
    } else {
        args[nargs++] = vd_job_state_name((vd_job_state)state);
    }
    int64_t total = 0;
    for (;;) {
        redisReply *r;
        vd_status st = vd_redis_eval(q, S_PURGE, nargs, args, NULL, &r, err);
        if (st != VD_OK) {
            if (deleted) *deleted = total;
            return st;
        }
        total += reply_int(r, 0);
        int more = reply_int(r, 1) != 0;
        freeReplyObject(r);
        if (!more) break;
    }
    if (deleted) *deleted = total;
    return VD_OK;
}

static void rq_close(vd_queue *base)
{
    rqueue *q = (rqueue *)base;
    vd_redis_teardown(q);
    free(q);
}

static const vd_queue_ops redis_ops = {
    .name = "redis",
    .close = rq_close,
    .enqueue = rq_enqueue,
    .enqueue_many = rq_enqueue_many,
    .reserve = rq_reserve,
    .heartbeat = rq_heartbeat,
    .progress = rq_progress,
    .complete = rq_complete,
    .complete_reserve = rq_complete_reserve,
    .fail = rq_fail,
    .release = rq_release,
    .cancel = rq_cancel,
    .requeue = rq_requeue,
    .get = rq_get,
    .list = rq_list,
    .counts = rq_counts,
    .maintain = rq_maintain,
    .purge = rq_purge,
};

/* ---- open ----------------------------------------------------------------------------------- */

vd_status vd_queue_redis_open(const char *url, vd_queue **out, vd_error *err)
{
    *out = NULL;
    if (!url || strncmp(url, "redis://", 8) != 0)
        return vd_error_set(err, VD_ERR_INVALID, "redis url must start with redis://");
    rqueue *q = calloc(1, sizeof *q);
    if (!q) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    q->base.ops = &redis_ops;
    q->unsure.script = -1;
    vd_status st = vd_redis_setup(q, url, err);
    if (st != VD_OK) {
        rq_close(&q->base);
        return st;
    }
    *out = &q->base;
    return VD_OK;
}
