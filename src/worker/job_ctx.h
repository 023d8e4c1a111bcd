/* job_ctx.h: the inside of vd_job_ctx, shared by the fork work-horse
 * (horse.c) and the inline runner of --no-fork (supervisor.c). Handlers see
 * only the functions of registry.h. */
#ifndef VD_WORKER_JOB_CTX_H
#define VD_WORKER_JOB_CTX_H

#include "queue/queue.h"
#include "worker/registry.h"

struct vd_job_ctx {
    const vd_job *job; /* borrowed */
    void *userdata;    /* the type's registration userdata */
    int retryable;     /* set by vd_job_ctx_set_retryable; starts at -1 (= not said) */
    /* How the runner reports progress and answers "should I stop?". */
    vd_status (*progress)(vd_job_ctx *ctx, int64_t done, int64_t total);
    int (*should_stop)(vd_job_ctx *ctx);
    void *impl; /* the runner's own state */
};

/* Decides whether a handler's failure is retried: what the handler said with
 * vd_job_ctx_set_retryable, else 0 for VD_ERR_INVALID / VD_ERR_UNSUPPORTED
 * and 1 for every other status. */
int vd_job_ctx_failure_retryable(const vd_job_ctx *ctx, vd_status st);

#endif
