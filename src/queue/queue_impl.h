/* queue_impl.h: what a queue backend provides (a table of functions).
 * Only queue.c and the backends include this. */
#ifndef VD_QUEUE_IMPL_H
#define VD_QUEUE_IMPL_H

#include "queue/queue.h"

typedef struct {
    const char *name;
    void (*close)(vd_queue *q);
    vd_status (*enqueue)(vd_queue *q, const vd_enqueue_opts *o, char id_out[VD_ID_LEN + 1],
                         vd_error *err);
    /* Optional (NULL: queue.c enqueues one item at a time). All or nothing,
     * in one transaction; items already checked by queue.c (valid, ids unique
     * within the batch). */
    vd_status (*enqueue_many)(vd_queue *q, const vd_enqueue_opts *o, size_t n,
                              char (*ids_out)[VD_ID_LEN + 1], vd_error *err);
    /* The most items one enqueue_many takes (0: VD_ENQUEUE_MANY_MAX), for a backend whose
     * larger batch holds up nobody (vd_queue_enqueue_many_max). */
    size_t enqueue_many_max;
    vd_status (*reserve)(vd_queue *q, const char *worker_id, int64_t lease_ms,
                         const char *const *types, size_t ntypes, vd_job *job, vd_error *err);
    vd_status (*heartbeat)(vd_queue *q, const char *id, const char *worker_id, int64_t lease_ms,
                           vd_error *err);
    vd_status (*progress)(vd_queue *q, const char *id, int64_t done, int64_t total, vd_error *err);
    vd_status (*complete)(vd_queue *q, const char *id, const char *worker_id, const char *result,
                          vd_error *err);
    /* Optional (NULL: queue.c completes, then reserves): vd_queue_complete_reserve in one
     * transaction; result already checked by queue.c. */
    vd_status (*complete_reserve)(vd_queue *q, const char *id, const char *worker_id,
                                  const char *result, int64_t lease_ms, const char *const *types,
                                  size_t ntypes, vd_job *next, int *reserved, vd_error *err);
    vd_status (*fail)(vd_queue *q, const char *id, const char *worker_id, const char *message,
                      int retryable, vd_error *err);
    vd_status (*release)(vd_queue *q, const char *id, const char *worker_id, const char *reason,
                         vd_error *err);
    vd_status (*cancel)(vd_queue *q, const char *id, vd_error *err);
    vd_status (*requeue)(vd_queue *q, const char *id, vd_error *err);
    vd_status (*get)(vd_queue *q, const char *id, vd_job *job, vd_error *err);
    vd_status (*list)(vd_queue *q, const vd_list_opts *o, vd_job **jobs, size_t *n, vd_error *err);
    vd_status (*counts)(vd_queue *q, int64_t counts[VD_JOB__NSTATES], vd_error *err);
    vd_status (*maintain)(vd_queue *q, int *changed, vd_error *err);
    vd_status (*purge)(vd_queue *q, int state, int64_t older_than_ms, int64_t *deleted,
                       vd_error *err);
    /* Optional (NULL: the backend cannot announce jobs; callers poll): vd_queue_wake_fd and
     * vd_queue_woken. */
    int (*wake_fd)(vd_queue *q);
    int (*woken)(vd_queue *q);
} vd_queue_ops;

/* Every backend's handle starts with this header. */
struct vd_queue {
    const vd_queue_ops *ops;
};

#endif
