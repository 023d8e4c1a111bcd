/* supervisor.h: the worker supervisor (`visiond worker`).
 *
 * A supervisor owns one queue handle. It reserves jobs of the registry's
 * types under a lease, forks one work-horse per job (horse.h), keeps up to
 * `concurrency` horses running, renews each job's lease by heartbeat while
 * its horse runs, and is the only one to write a job's outcome:
 *   - the horse's result            -> complete
 *   - the horse's failure           -> fail (retryable as the handler said)
 *   - the job's timeout_ms passed   -> SIGTERM, SIGKILL after kill_grace_ms,
 *                                      fail "timeout after Xs" (retryable)
 *   - the horse died by a signal    -> fail "work-horse killed by SIGSEGV" (retryable)
 *   - the horse exited non-zero     -> fail "work-horse exited with status N" (retryable)
 *   - heartbeat says canceled       -> SIGTERM/SIGKILL the horse, write nothing
 *   - heartbeat says lease lost     -> SIGTERM/SIGKILL the horse, write nothing
 * and goes on after each. SIGTERM or SIGINT starts a graceful stop: no new
 * jobs; running horses get grace_ms to finish, then are stopped like a
 * timeout and their jobs handed back with vd_queue_release (queued again at
 * once, the attempt not counted; error "worker shut down ..."). A second
 * SIGTERM/SIGINT skips the rest of the grace period.
 *
 * With no_fork the handler runs inline in the supervisor (debugging only):
 * one job at a time, heartbeats and timeouts only when the handler calls
 * vd_job_ctx_progress/should_stop, no memory limit, and a crash takes the
 * worker down (the job's lease lapses and it is retried).
 *
 * The supervisor never loads a model or opens an accelerator: a horse is a
 * plain fork of it. State lives in the vd_supervisor object; the run loop
 * takes its signals through core/sigpipe.h (a handler writing to a pipe). */
#ifndef VD_WORKER_SUPERVISOR_H
#define VD_WORKER_SUPERVISOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "worker/registry.h"

typedef struct {
    const char *queue_url;    /* required */
    const char *worker_id;    /* NULL = "HOSTNAME:PID"; must be unique among live workers */
    int concurrency;          /* horses at once; 0 = 1 */
    int64_t lease_ms;         /* 0 = 30000 */
    int64_t heartbeat_ms;     /* 0 = lease_ms / 3; must be < lease_ms */
    int64_t grace_ms;         /* graceful-stop period; 0 = 10000; < 0 = none */
    int64_t kill_grace_ms;    /* SIGTERM to SIGKILL; 0 = 2000 */
    int64_t max_jobs;         /* stop after reserving this many; 0 = no limit */
    int burst;                /* exit when nothing is ready and no horse runs */
    int no_fork;              /* run handlers inline (debugging) */
    int64_t memory_limit_mb;  /* > 0: RLIMIT_AS of each horse */
    const char *const *types; /* only these types (each must be registered); NULL = all */
    size_t ntypes;
    /* light horses: argv (NULL-terminated, argv[0] a path) of a light fork server
     * (forkserver.h, vd_forkserver_exec: visiond-horse), whose types run in its clones
     * instead of forks of the supervisor; NULL = none. Borrowed for the run. */
    const char *const *light_argv;
} vd_supervisor_opts;

typedef struct {
    int64_t reserved;    /* jobs taken */
    int64_t finished;    /* completed */
    int64_t failed;      /* failed by the handler */
    int64_t crashed;     /* horse died by a signal or exited without a result */
    int64_t timed_out;   /* stopped at the job's timeout */
    int64_t canceled;    /* stopped because the job was canceled */
    int64_t lost;        /* stopped because the lease was lost */
    int64_t handed_back; /* stopped by a graceful stop and released to the queue */
} vd_supervisor_stats;

typedef struct vd_supervisor vd_supervisor;

/* Checks opts, copies what it needs (opts may go after the call) and opens
 * the queue. reg is borrowed and must outlive the supervisor. *out is freed
 * with vd_supervisor_free. VD_ERR_INVALID for bad options or an unregistered
 * type in opts->types. */
vd_status vd_supervisor_new(const vd_supervisor_opts *opts, const vd_registry *reg,
                            vd_supervisor **out, vd_error *err);

/* Runs until a graceful stop completes, max_jobs are done, or (burst) the
 * queue is drained. Handles SIGTERM, SIGINT and SIGCHLD through the process's
 * sigpipe while it runs (default dispositions after). Returns VD_OK on a clean
 * stop; an error only when the run could not start. Queue errors while
 * running are logged and retried. */
vd_status vd_supervisor_run(vd_supervisor *s, vd_error *err);

/* Copies the counters so far. */
void vd_supervisor_get_stats(const vd_supervisor *s, vd_supervisor_stats *out);

/* Returns the worker id in use (borrowed). */
const char *vd_supervisor_worker_id(const vd_supervisor *s);

/* Closes the queue and frees s (NULL is fine). Kills no horse: run() has
 * reaped them all before it returns. */
void vd_supervisor_free(vd_supervisor *s);

#endif
