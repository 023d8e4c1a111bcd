/* queue.c: backend dispatch, argument checks shared by every backend, and
 * the pure helpers of queue.h (state names, backoff). */
#include "queue/queue_impl.h"

#include "core/pg.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

vd_status vd_queue_sqlite_open(const char *path, vd_queue **out, vd_error *err);
vd_status vd_queue_redis_open(const char *url, vd_queue **out, vd_error *err);
vd_status vd_queue_pg_open(const char *url, vd_queue **out, vd_error *err);

static const char *state_names[VD_JOB__NSTATES] = {"queued",   "scheduled", "started",
                                                   "finished", "failed",    "canceled"};

const char *vd_job_state_name(vd_job_state s)
{
    return (unsigned)s < VD_JOB__NSTATES ? state_names[s] : "unknown";
}

vd_status vd_job_state_parse(const char *name, vd_job_state *out)
{
    for (int i = 0; i < VD_JOB__NSTATES; i++)
        if (name && strcmp(name, state_names[i]) == 0) {
            *out = (vd_job_state)i;
            return VD_OK;
        }
    return VD_ERR_INVALID;
}

void vd_job_clear(vd_job *job)
{
    if (!job) return;
    free(job->payload);
    free(job->result);
    free(job->error);
    memset(job, 0, sizeof *job);
}

void vd_job_list_free(vd_job *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        vd_job_clear(&jobs[i]);
    free(jobs);
}

int64_t vd_queue_backoff_ms(int64_t base_ms, int64_t max_ms, int attempt, double unit)
{
    if (base_ms <= 0) base_ms = 1000;
    if (max_ms <= 0) max_ms = 300000;
    if (attempt < 1) attempt = 1;
    double d = (double)base_ms * ldexp(1.0, attempt > 40 ? 40 : attempt - 1);
    if (d > (double)max_ms) d = (double)max_ms;
    return (int64_t)(d * (0.5 + 0.5 * unit));
}

vd_status vd_queue_open(const char *url, vd_queue **out, vd_error *err)
{
    *out = NULL;
    if (!url || !*url) return vd_error_set(err, VD_ERR_INVALID, "empty queue url");
    if (strncmp(url, "redis://", 8) == 0) return vd_queue_redis_open(url, out, err);
    if (vd_pg_url_is(url)) return vd_queue_pg_open(url, out, err);
    if (strncmp(url, "sqlite:", 7) == 0) url += 7;
    return vd_queue_sqlite_open(url, out, err);
}

void vd_queue_close(vd_queue *q)
{
    if (q) q->ops->close(q);
}

char *vd_queue_url_shown(const char *url, char *buf, size_t n)
{
    return vd_pg_url_is(url) ? vd_pg_url_shown(url, buf, n) : vd_url_redact(url, buf, n);
}

int vd_queue_wake_fd(vd_queue *q)
{
    return q->ops->wake_fd ? q->ops->wake_fd(q) : -1;
}

int vd_queue_woken(vd_queue *q)
{
    return q->ops->woken ? q->ops->woken(q) : 0;
}

const char *vd_queue_backend(const vd_queue *q)
{
    return q->ops->name;
}

int vd_job_type_valid(const char *t)
{
    size_t n = t ? strlen(t) : 0;
    if (n == 0 || n >= VD_JOB_TYPE_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

int vd_job_id_valid(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > VD_ID_LEN || id[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

/* The checks of one item, shared by vd_queue_enqueue and vd_queue_enqueue_many. */
static vd_status check_item(const vd_enqueue_opts *o, vd_error *err)
{
    if (!o || !vd_job_type_valid(o->type))
        return vd_error_set(err, VD_ERR_INVALID,
                            "job type must be 1-%d characters of [A-Za-z0-9_.-]",
                            VD_JOB_TYPE_MAX - 1);
    if (o->payload) {
        json_error_t je;
        json_t *j = json_loads(o->payload, JSON_DECODE_ANY, &je);
        if (!j)
            return vd_error_set(err, VD_ERR_INVALID, "payload is not valid JSON: %s (line %d)",
                                je.text, je.line);
        json_decref(j);
    }
    if (o->max_retries < 0 || o->timeout_ms < 0 || o->delay_ms < 0)
        return vd_error_set(err, VD_ERR_INVALID, "max_retries, timeout and delay must be >= 0");
    if (o->id && !vd_job_id_valid(o->id))
        return vd_error_set(err, VD_ERR_INVALID,
                            "job id must be 1-%d characters of [A-Za-z0-9_.-], not starting "
                            "with '.'",
                            VD_ID_LEN);
    return VD_OK;
}

vd_status vd_queue_enqueue(vd_queue *q, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                           vd_error *err)
{
    vd_status st = check_item(o, err);
    if (st != VD_OK) return st;
    return q->ops->enqueue(q, o, id_out, err);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* VD_ERR_STATE when a caller-chosen id appears twice in opts[0..n). */
static vd_status check_unique_ids(const vd_enqueue_opts *o, size_t n, vd_error *err)
{
    const char **ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (o[i].id) ids[k++] = o[i].id;
    qsort(ids, k, sizeof *ids, cmp_str);
    vd_status st = VD_OK;
    for (size_t i = 1; i < k && st == VD_OK; i++)
        if (strcmp(ids[i - 1], ids[i]) == 0)
            st = vd_error_set(err, VD_ERR_STATE, "job id %s is given twice in the batch", ids[i]);
    free(ids);
    return st;
}

size_t vd_queue_enqueue_many_max(const vd_queue *q)
{
    return q->ops->enqueue_many && q->ops->enqueue_many_max ? q->ops->enqueue_many_max
                                                            : VD_ENQUEUE_MANY_MAX;
}

vd_status vd_queue_enqueue_many(vd_queue *q, const vd_enqueue_opts *opts, size_t n,
                                char (*ids_out)[VD_ID_LEN + 1], size_t *added, vd_error *err)
{
    if (added) *added = 0;
    if (n == 0) return VD_OK;
    size_t max = vd_queue_enqueue_many_max(q);
    if (n > max)
        return vd_error_set(err, VD_ERR_LIMIT, "at most %zu jobs per batch (got %zu)", max, n);
    for (size_t i = 0; i < n; i++) {
        vd_error e;
        vd_error_clear(&e);
        if (check_item(&opts[i], &e) != VD_OK)
            return vd_error_set(err, e.code, "job %zu: %s", i, e.msg);
    }
    vd_status st = check_unique_ids(opts, n, err);
    if (st != VD_OK) return st;
    if (q->ops->enqueue_many) {
        st = q->ops->enqueue_many(q, opts, n, ids_out, err);
        if (st == VD_OK && added) *added = n;
        return st;
    }
    for (size_t i = 0; i < n; i++) { /* the generic fallback: not atomic (queue.h) */
        st = q->ops->enqueue(q, &opts[i], ids_out ? ids_out[i] : NULL, err);
        if (st != VD_OK) return st;
        if (added) *added = i + 1;
    }
    return VD_OK;
}

vd_status vd_queue_reserve(vd_queue *q, const char *worker_id, int64_t lease_ms,
                           const char *const *types, size_t ntypes, vd_job *job, vd_error *err)
{
    if (!worker_id || !*worker_id || strlen(worker_id) >= VD_WORKER_ID_MAX || lease_ms <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "reserve needs a worker id and a lease > 0");
    return q->ops->reserve(q, worker_id, lease_ms, types, ntypes, job, err);
}

vd_status vd_queue_heartbeat(vd_queue *q, const char *id, const char *worker_id, int64_t lease_ms,
                             vd_error *err)
{
    return q->ops->heartbeat(q, id, worker_id, lease_ms, err);
}

vd_status vd_queue_progress(vd_queue *q, const char *id, int64_t done, int64_t total, vd_error *err)
{
    if (done < 0 || total < 0) return vd_error_set(err, VD_ERR_INVALID, "progress must be >= 0");
    return q->ops->progress(q, id, done, total, err);
}

/* VD_OK when result_json is NULL or valid JSON. */
static vd_status check_result(const char *result_json, vd_error *err)
{
    if (!result_json) return VD_OK;
    json_error_t je;
    json_t *j = json_loads(result_json, JSON_DECODE_ANY, &je);
    if (!j)
        return vd_error_set(err, VD_ERR_INVALID, "result is not valid JSON: %s (line %d)", je.text,
                            je.line);
    json_decref(j);
    return VD_OK;
}

vd_status vd_queue_complete(vd_queue *q, const char *id, const char *worker_id,
                            const char *result_json, vd_error *err)
{
    vd_status st = check_result(result_json, err);
    if (st != VD_OK) return st;
    return q->ops->complete(q, id, worker_id, result_json, err);
}

vd_status vd_queue_complete_reserve(vd_queue *q, const char *id, const char *worker_id,
                                    const char *result_json, int64_t lease_ms,
                                    const char *const *types, size_t ntypes, vd_job *next,
                                    int *reserved, vd_error *err)
{
    *reserved = 0;
    vd_status st = check_result(result_json, err);
    if (st != VD_OK) return st;
    if (!worker_id || !*worker_id || strlen(worker_id) >= VD_WORKER_ID_MAX || lease_ms <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "reserve needs a worker id and a lease > 0");
    if (q->ops->complete_reserve)
        return q->ops->complete_reserve(q, id, worker_id, result_json, lease_ms, types, ntypes,
                                        next, reserved, err);
    st = q->ops->complete(q, id, worker_id, result_json, err);
    if (st != VD_OK) return st;
    vd_error rerr;
    vd_error_clear(&rerr);
    *reserved = q->ops->reserve(q, worker_id, lease_ms, types, ntypes, next, &rerr) == VD_OK;
    return VD_OK;
}

vd_status vd_queue_fail(vd_queue *q, const char *id, const char *worker_id, const char *message,
                        int retryable, vd_error *err)
{
    return q->ops->fail(q, id, worker_id, message ? message : "failed", retryable, err);
}

vd_status vd_queue_release(vd_queue *q, const char *id, const char *worker_id, const char *reason,
                           vd_error *err)
{
    if (!id || !*id || !worker_id || !*worker_id)
        return vd_error_set(err, VD_ERR_INVALID, "release needs a job id and a worker id");
    return q->ops->release(q, id, worker_id, reason ? reason : "released", err);
}

vd_status vd_queue_cancel(vd_queue *q, const char *id, vd_error *err)
{
    return q->ops->cancel(q, id, err);
}

vd_status vd_queue_requeue(vd_queue *q, const char *id, vd_error *err)
{
    return q->ops->requeue(q, id, err);
}

vd_status vd_queue_get(vd_queue *q, const char *id, vd_job *job, vd_error *err)
{
    return q->ops->get(q, id, job, err);
}

vd_status vd_queue_list(vd_queue *q, const vd_list_opts *opts, vd_job **jobs, size_t *n,
                        vd_error *err)
{
    vd_list_opts o = opts ? *opts : (vd_list_opts){.state = -1};
    if (o.limit == 0) o.limit = 100;
    return q->ops->list(q, &o, jobs, n, err);
}

vd_status vd_queue_counts(vd_queue *q, int64_t counts[VD_JOB__NSTATES], vd_error *err)
{
    return q->ops->counts(q, counts, err);
}

vd_status vd_queue_maintain(vd_queue *q, int *changed, vd_error *err)
{
    return q->ops->maintain(q, changed, err);
}

vd_status vd_queue_purge(vd_queue *q, int state, int64_t older_than_ms, int64_t *deleted,
                         vd_error *err)
{
    if (state != -1 && state != VD_JOB_FINISHED && state != VD_JOB_FAILED &&
        state != VD_JOB_CANCELED)
        return vd_error_set(err, VD_ERR_INVALID, "only ended jobs can be purged");
    return q->ops->purge(q, state, older_than_ms, deleted, err);
}
