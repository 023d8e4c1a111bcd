/* supervisor_impl.h: the supervisor's private state, shared by supervisor.c
 * (the loops) and supervisor_record.c (the queue writes). Not for other modules. */
#ifndef VD_WORKER_SUPERVISOR_IMPL_H
#define VD_WORKER_SUPERVISOR_IMPL_H

#include <stdint.h>
#include <sys/types.h>

#include "queue/queue.h"
#include "worker/forkserver.h"
#include "worker/horse.h"
#include "worker/registry.h"
#include "worker/spare.h"
#include "worker/supervisor.h"

/* Why the supervisor stopped a horse (or an inline handler). */
typedef enum { WHY_NONE = 0, WHY_TIMEOUT, WHY_CANCELED, WHY_LEASE_LOST, WHY_SHUTDOWN } stop_why;

typedef struct {
    int used;
    pid_t pid;
    int fd; /* read end of the horse's pipe; -1 after end of file */
    vd_job job;
    int64_t t0;       /* monotonic start */
    int64_t deadline; /* monotonic; 0 = no timeout */
    int64_t next_hb;  /* monotonic time of the next heartbeat */
    int64_t kill_at;  /* monotonic time to send SIGKILL; 0 = not stopping */
    int killed;       /* SIGKILL sent */
    stop_why why;
    vd_horse_reader rd;
} slot;

struct vd_supervisor {
    const vd_registry *reg;
    vd_queue *q;
    char worker_id[VD_WORKER_ID_MAX];
    char **types; /* owned copies */
    size_t ntypes;
    int concurrency;
    int64_t lease_ms, heartbeat_ms, grace_ms, kill_grace_ms, max_jobs, memory_limit_mb;
    int burst, no_fork;

    slot *slots; /* [concurrency] */
    int nrunning;
    int sfd; /* signal pipe (core/sigpipe.h) for SIGTERM, SIGINT, SIGCHLD */
    int stopping;
    int64_t stop_deadline; /* monotonic */
    int64_t next_reserve;  /* monotonic */
    int64_t backoff_ms;    /* current empty-queue backoff */
    vd_supervisor_stats stats;
    vd_spare spare;   /* a horse forked ahead, waiting for its job (spare.h); pid 0 = none */
    vd_forkserver fs; /* forks the spares (forkserver.h); sock -1 = none: the spares are ours */
    /* set around a fork-mode outcome write when the freed slot's reserve follows at once: a
     * complete then reserves in the same transaction (vd_queue_complete_reserve) */
    int reserve_with_complete;
    vd_job ahead;   /* the job that reserve took, for fill_slots to hand to a horse */
    int have_ahead; /* ahead holds a job (counted in stats.reserved) */
    pid_t *exiting; /* horses whose outcome is recorded, not yet reaped */
    int nexiting, capexiting;
};

/* Records how an attempt ended, with the queue write retried a few times on a
 * transient error. why: why the supervisor stopped it (if it did); out: what
 * the handler reported; bad: the horse sent garbage; wstatus/have_status: how
 * the horse process ended (fork mode). */
void vd_sup_record_outcome(vd_supervisor *s, const vd_job *job, stop_why why,
                           const vd_horse_outcome *out, int bad, int have_status, int wstatus,
                           int64_t ms);

/* Fails the attempt (retryable or not), retrying a transient queue error. */
void vd_sup_record_fail(vd_supervisor *s, const vd_job *job, const char *msg, int retryable);

/* Renews job's lease and sets *next_hb; returns why the job must stop
 * (canceled, lease lost) or WHY_NONE. */
stop_why vd_sup_heartbeat(vd_supervisor *s, const vd_job *job, int64_t now, int64_t *next_hb);

#endif
