/* queue.h: the durable job queue, the contract every backend keeps.
 *
 * A job has an id, a registered type name, a JSON payload, a priority
 * (higher runs first; FIFO within a priority), a retry budget, a timeout and
 * a state:
 *
 *   queued --reserve--> started --complete--> finished
 *      ^                  |  \----fail, attempts left--> scheduled --due--> queued
 *      |                  |   \---fail, none left-----> failed (the dead letter)
 *      |                  +--cancel--> canceled (the worker sees it on heartbeat)
 *      +--- release (attempt not counted); lease lapsed (worker died), attempts
 *           left; or requeue of failed/canceled
 *
 * Delivery is at-least-once: reserve hands a job to one worker under a lease
 * (lease_ms); the worker renews it with heartbeat while the job runs; a lease
 * that lapses returns the job to queued, or fails it ("lease expired") when
 * its attempts are used up. A job is never lost and never left started.
 * Handlers must therefore be idempotent.
 *
 * Retries: the n-th failed attempt waits retry_base_ms * 2^(n-1), capped at
 * retry_max_ms, times a jitter factor in [0.5, 1.0], in state scheduled.
 * A job may be attempted at most 1 + max_retries times; an attempt given back
 * with vd_queue_release does not count.
 *
 * Backends: "sqlite:PATH" (or a bare PATH), "redis://HOST:PORT/DB",
 * "postgres://USER@HOST:PORT/DB" (and libpq's other forms, core/pg.h). A vd_queue
 * handle is not thread-safe and must not be shared across fork(): open one
 * per thread or process. All times are wall-clock milliseconds. */
#ifndef VD_QUEUE_H
#define VD_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/util.h"

typedef enum {
    VD_JOB_QUEUED = 0,
    VD_JOB_SCHEDULED, /* waiting for its run_at time (a delay or a retry backoff) */
    VD_JOB_STARTED,
    VD_JOB_FINISHED,
    VD_JOB_FAILED,
    VD_JOB_CANCELED,
    VD_JOB__NSTATES
} vd_job_state;

#define VD_JOB_TYPE_MAX  64
#define VD_WORKER_ID_MAX 128

/* One job as stored. Strings marked "owned" are malloc'd and freed by vd_job_clear. */
typedef struct {
    char id[VD_ID_LEN + 1];
    char type[VD_JOB_TYPE_MAX];
    char *payload; /* owned: JSON text, never NULL for a stored job */
    int priority;  /* higher first */
    vd_job_state state;
    int attempts;          /* how many times it has been reserved */
    int max_retries;       /* attempts allowed = 1 + max_retries */
    int64_t timeout_ms;    /* wall time one attempt may take; 0 = none */
    int64_t retry_base_ms; /* first backoff step */
    int64_t retry_max_ms;  /* backoff cap */
    int64_t result_ttl_ms; /* how long a finished job is kept; 0 = forever */
    int64_t created_ms;
    int64_t run_at_ms;             /* when a queued/scheduled job becomes runnable */
    int64_t started_ms;            /* start of the current or last attempt; 0 = never */
    int64_t ended_ms;              /* 0 while not ended */
    int64_t lease_until_ms;        /* while started */
    char worker[VD_WORKER_ID_MAX]; /* lease holder, or the last one */
    int64_t progress_done;
    int64_t progress_total;
    char *result;         /* owned: JSON text or NULL */
    char *error;          /* owned: last failure message or NULL */
    int cancel_requested; /* set by cancel on a started job */
} vd_job;

typedef struct vd_queue vd_queue;

typedef struct {
    const char *type;      /* required: a registered job type name */
    const char *payload;   /* JSON text; NULL means "{}"; must parse */
    int priority;          /* default 0 */
    int max_retries;       /* default 0 */
    int64_t timeout_ms;    /* 0 = no timeout */
    int64_t delay_ms;      /* > 0: start in state scheduled */
    int64_t retry_base_ms; /* 0 = 1000 */
    int64_t retry_max_ms;  /* 0 = 300000 */
    int64_t result_ttl_ms; /* 0 = 7 days; < 0 = forever */
    const char *id; /* optional caller-chosen id (unique, vd_job_id_valid); NULL = generated */
} vd_enqueue_opts;

typedef struct {
    int state;        /* a vd_job_state, or -1 for every state */
    const char *type; /* NULL = any */
    size_t limit;     /* 0 = 100 */
    size_t offset;
} vd_list_opts;

/* Returns "queued", "scheduled", "started", "finished", "failed", "canceled". */
const char *vd_job_state_name(vd_job_state s);

/* Parses a state name; returns VD_ERR_INVALID for an unknown one. */
vd_status vd_job_state_parse(const char *name, vd_job_state *out);

/* Returns 1 when t is a valid job type name: 1 to VD_JOB_TYPE_MAX-1
 * characters of [A-Za-z0-9_.-]. */
int vd_job_type_valid(const char *t);

/* Returns 1 when id may be a caller-chosen job id: 1 to VD_ID_LEN characters
 * of [A-Za-z0-9_.-], not starting with '.' (so never "/", a control
 * character, "." or ".."; it must be usable as one URL path segment).
 * vd_queue_enqueue refuses others (VD_ERR_INVALID), for the API and the CLI. */
int vd_job_id_valid(const char *id);

/* Frees the owned strings of *job and zeroes it. */
void vd_job_clear(vd_job *job);

/* Returns the backoff before retry number `attempt` (1-based) of a job
 * with these settings; `unit` in [0,1) picks the jitter. */
int64_t vd_queue_backoff_ms(int64_t base_ms, int64_t max_ms, int attempt, double unit);

/* Opens (creating when needed) the queue at url. *out is owned by the caller
 * and closed with vd_queue_close. */
vd_status vd_queue_open(const char *url, vd_queue **out, vd_error *err);
void vd_queue_close(vd_queue *q);

/* Writes url into buf (n bytes) as messages and logs show it: any password as "***", in
 * every backend's URL forms (PostgreSQL's keyword form too: core/pg.h). Returns buf. */
char *vd_queue_url_shown(const char *url, char *buf, size_t n);

/* Returns the backend name ("sqlite", "redis", "postgres"). */
const char *vd_queue_backend(const vd_queue *q);

/* Waiting while idle. A backend that can announce new work (PostgreSQL: LISTEN/NOTIFY)
 * returns a file descriptor that becomes readable when a job may have become queued; the
 * others return -1 and the caller polls reserve with a backoff. The descriptor may change
 * between calls (reconnects): ask again before each wait. Due scheduled jobs and lapsed
 * leases are not announced, so keep a periodic reserve too (e.g. every second). */
int vd_queue_wake_fd(vd_queue *q);
/* Reads what came in on the wake descriptor, without blocking. Returns 1 when a job may have
 * become queued since the last reserve (reserve now), 0 otherwise (always 0 without a wake
 * descriptor). Call it before waiting too: the announcement may already be buffered. */
int vd_queue_woken(vd_queue *q);

/* Adds a job; writes its id into id_out (may be NULL). */
vd_status vd_queue_enqueue(vd_queue *q, const vd_enqueue_opts *opts, char id_out[VD_ID_LEN + 1],
                           vd_error *err);

/* Most jobs one vd_queue_enqueue_many call takes on every backend (callers cut
 * longer lists into batches of this size, one transaction each; the API's limit
 * of a request). */
#define VD_ENQUEUE_MANY_MAX 1000

/* Most jobs one vd_queue_enqueue_many call takes on q: VD_ENQUEUE_MANY_MAX, or
 * more on a backend where a larger transaction costs others nothing (SQLite:
 * fewer commits, each one fsync under synchronous=FULL; docs/queue.md). */
size_t vd_queue_enqueue_many_max(const vd_queue *q);

/* Adds the n jobs opts[0..n) in one transaction: all of them or none. Every
 * item is checked first as vd_queue_enqueue checks one (VD_ERR_INVALID, the
 * message starting "job I: " with the item's 0-based index); a caller-chosen
 * id that is taken, or given twice in the batch, is VD_ERR_STATE and nothing
 * is added. ids_out (may be NULL) receives the n ids. *added (may be NULL)
 * says how many jobs were added: n, or 0 after an error -- except on a
 * backend without a batch write of its own (queue_impl.h), where the items
 * go in one vd_queue_enqueue at a time and the ones before a failure stay.
 * VD_ERR_LIMIT when n > vd_queue_enqueue_many_max(q); n = 0 adds nothing (VD_OK). */
vd_status vd_queue_enqueue_many(vd_queue *q, const vd_enqueue_opts *opts, size_t n,
                                char (*ids_out)[VD_ID_LEN + 1], size_t *added, vd_error *err);

/* Takes the best runnable job (highest priority, then oldest run_at) for
 * worker_id under a lease of lease_ms, moving due scheduled jobs to queued
 * and reclaiming lapsed leases first. If types is non-NULL, only jobs of
 * those ntypes types are taken. Fills *job (cleared by the caller) and sets
 * state started, attempts += 1. Returns VD_ERR_EMPTY when nothing is ready. */
vd_status vd_queue_reserve(vd_queue *q, const char *worker_id, int64_t lease_ms,
                           const char *const *types, size_t ntypes, vd_job *job, vd_error *err);

/* Renews the lease of a started job held by worker_id. Returns
 * VD_ERR_CANCELED when the job was canceled (stop the work-horse), or
 * VD_ERR_LEASE_LOST when the job is no longer this worker's. */
vd_status vd_queue_heartbeat(vd_queue *q, const char *id, const char *worker_id, int64_t lease_ms,
                             vd_error *err);

/* Records progress (done of total) of a started job. */
vd_status vd_queue_progress(vd_queue *q, const char *id, int64_t done, int64_t total,
                            vd_error *err);

/* Finishes a started job held by worker_id with a JSON result (NULL = none).
 * VD_ERR_LEASE_LOST when it is no longer this worker's. */
vd_status vd_queue_complete(vd_queue *q, const char *id, const char *worker_id,
                            const char *result_json, vd_error *err);

/* vd_queue_complete, then vd_queue_reserve(worker_id, lease_ms, types) into *next, in one
 * transaction where the backend has one (SQLite: one commit, one fsync; Redis: one script, one
 * round trip; PostgreSQL: one commit). Returns the complete's status, with nothing written unless
 * VD_OK (where the backend rolls back a failed reserve with it, the reserve's error is returned:
 * write the complete alone then). On VD_OK the outcome is committed, and *reserved is 1 when a job
 * was taken into *next (cleared by the caller), 0 when none was ready or the reserve failed
 * (reserve again as usual). The outcome is never written after the reserve (docs/worker.md). */
vd_status vd_queue_complete_reserve(vd_queue *q, const char *id, const char *worker_id,
                                    const char *result_json, int64_t lease_ms,
                                    const char *const *types, size_t ntypes, vd_job *next,
                                    int *reserved, vd_error *err);

/* Fails the current attempt of a started job held by worker_id. With
 * retryable and attempts left, the job becomes scheduled after the backoff;
 * otherwise failed. The message is kept in job.error. */
vd_status vd_queue_fail(vd_queue *q, const char *id, const char *worker_id, const char *message,
                        int retryable, vd_error *err);

/* Gives a started job held by worker_id back without charging it an attempt
 * (a worker that stops before the job ends, e.g. on SIGTERM): the job becomes
 * queued at once, attempts -= 1 (so this reserve does not count), its lease
 * is cleared and its run_at_ms is kept, so it keeps its place in line (same
 * priority, ahead of jobs that became runnable after it). reason (NULL =
 * "released") is kept in job.error for the record. Like complete and fail:
 * VD_ERR_LEASE_LOST when the job is not (or no longer) this worker's started
 * job, VD_ERR_CANCELED when it was canceled while this worker held it. */
vd_status vd_queue_release(vd_queue *q, const char *id, const char *worker_id, const char *reason,
                           vd_error *err);

/* Cancels a job: queued or scheduled ones become canceled at once; a started
 * one becomes canceled with cancel_requested set, and its worker stops the
 * horse at the next heartbeat. VD_ERR_STATE for an ended job. */
vd_status vd_queue_cancel(vd_queue *q, const char *id, vd_error *err);

/* Puts a failed or canceled job back to queued with attempts reset to 0.
 * VD_ERR_STATE for any other state. */
vd_status vd_queue_requeue(vd_queue *q, const char *id, vd_error *err);

/* Reads one job into *job (cleared by the caller). */
vd_status vd_queue_get(vd_queue *q, const char *id, vd_job *job, vd_error *err);

/* Lists jobs, newest first. *jobs is a malloc'd array of *n jobs, freed with
 * vd_job_list_free. */
vd_status vd_queue_list(vd_queue *q, const vd_list_opts *opts, vd_job **jobs, size_t *n,
                        vd_error *err);
void vd_job_list_free(vd_job *jobs, size_t n);

/* Counts jobs in every state: counts[state]. */
vd_status vd_queue_counts(vd_queue *q, int64_t counts[VD_JOB__NSTATES], vd_error *err);

/* Housekeeping: returns lapsed leases, promotes due scheduled jobs and
 * deletes finished jobs past their result TTL. Sets *changed (may be NULL)
 * to how many jobs it touched. reserve does the first two itself. */
vd_status vd_queue_maintain(vd_queue *q, int *changed, vd_error *err);

/* Deletes ended jobs (finished, failed or canceled; state -1 = all three)
 * that ended before older_than_ms. Sets *deleted. */
vd_status vd_queue_purge(vd_queue *q, int state, int64_t older_than_ms, int64_t *deleted,
                         vd_error *err);

#endif
