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

/* One source of horses: a fork server and the spare it forked ahead. */
typedef struct {
    vd_forkserver fs; /* forks the spares (forkserver.h); sock -1 = none */
    vd_spare spare;   /* a horse forked ahead, waiting for its job (spare.h); pid 0 = none */
    int used;         /* a job went to this source: keep a spare of it ready from then on */
} vd_sup_source;

enum { VD_SUP_FULL = 0, VD_SUP_LIGHT = 1, VD_SUP_NSRC = 2 };

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
    /* where horses come from (supervisor_spares.c): [VD_SUP_FULL] a fork of the supervisor,
     * which runs every type; [VD_SUP_LIGHT] the exec'd visiond-horse (light_argv), which
     * runs light_types only (pipeline/light.h), or none */
    vd_sup_source src[VD_SUP_NSRC];
    const char *const *light_argv; /* borrowed from the opts; NULL = no light horses */
    char *light_types;             /* owned: the light server's types, joined by ','; or NULL */
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

/* Horse sources (supervisor_spares.c). */

/* Starts the fork servers: the forked one always, the light one when
 * s->light_argv is set; a server that cannot start is logged and done without. */
void vd_sup_sources_start(vd_supervisor *s);

/* The source whose horses run type: the light one when it is up and runs type. */
vd_sup_source *vd_sup_source_for(vd_supervisor *s, const char *type);

/* Makes src->spare a horse waiting for its job (waiting for the fork server,
 * or forking one here for the full source). VD_OK or why there is none. */
vd_status vd_sup_spare_get(vd_supervisor *s, vd_sup_source *src, vd_error *err);

/* Asks each used source for its next spare while jobs flow; retires the
 * spares when the worker stops or may take no more. */
void vd_sup_spares_keep(vd_supervisor *s);

/* Retires every spare (an idle worker has no child process). */
void vd_sup_spares_retire(vd_supervisor *s);

/* Takes the spare that answers on src's socket, when it is there (poll said so). */
void vd_sup_spare_arrived(vd_supervisor *s, vd_sup_source *src);

/* pid exited: returns 1 when it was a fork server or a spare (and forgets it). */
int vd_sup_sources_reaped(vd_supervisor *s, pid_t pid);

/* At the end of a run: stops the fork servers and waits for them and the spares. */
void vd_sup_sources_stop(vd_supervisor *s);

/* Notes a horse on its way out (its outcome recorded), for reap(). */
void vd_sup_remember_exiting(vd_supervisor *s, pid_t pid);

#endif
