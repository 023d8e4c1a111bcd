/* queue_pg_impl.h: what the two files of the PostgreSQL backend share (private to src/queue).
 *
 *   queue_pg.c     the queue operations (queue_impl.h) as statements, rows -> jobs
 *   queue_pg_db.c  the database: the statements' SQL, the connection (core/pg.h) and
 *                  reconnecting, schema creation under an advisory lock, LISTEN/NOTIFY */
#ifndef VD_QUEUE_PG_IMPL_H
#define VD_QUEUE_PG_IMPL_H

#include "core/pq.h"
#include <stdint.h>

#include "queue/queue_impl.h"

/* The NOTIFY channel: a job became queued (enqueue, release, requeue, promotion, a
 * lapsed lease given back). */
#define PGQ_CHANNEL "visiond_queue"

/* The statements (their SQL is in queue_pg_db.c), prepared once per connection. */
enum {
    PQ_INSERT,
    PQ_HOUSEKEEP,
    PQ_TAKE,
    PQ_RETAKE,
    PQ_HEARTBEAT,
    PQ_PROBE,
    PQ_PROGRESS,
    PQ_COMPLETE,
    PQ_FAIL_READ,
    PQ_FAIL_WRITE,
    PQ_RELEASE,
    PQ_CANCEL,
    PQ_REQUEUE,
    PQ_GET,
    PQ_LIST,
    PQ_COUNTS,
    PQ_TTL,
    PQ_PURGE,
    PQ__COUNT
};

typedef struct {
    vd_queue base;
    PGconn *c;       /* NULL while disconnected; the next operation connects */
    char *url;       /* owned */
    char shown[512]; /* the url without its password (vd_pg_url_shown) */
    int prepared[PQ__COUNT];
    int listen;    /* vd_queue_wake_fd was asked: LISTEN on every connection */
    int listening; /* LISTEN is in effect on c */
    int woken;     /* a notification came in that no reserve has seen yet */
} pg_queue;

/* Connects q (url already set), creating or checking the schema; used by open. */
vd_status vd_pgq_open(pg_queue *q, vd_error *err);
/* Closes the connection and frees the url (not q itself). */
void vd_pgq_close(pg_queue *q);

/* Makes sure q->c is a live connection, connecting (waiting for a server that is down, up to
 * PGQ_RETRY_MS) when needed. */
vd_status vd_pgq_connect(pg_queue *q, vd_error *err);
/* Forgets the connection (after VD_ERR_CONN): the next vd_pgq_connect makes a new one. */
void vd_pgq_drop(pg_queue *q);

/* Runs statement idx with n text parameters (NULL = SQL NULL). On VD_OK *out (may be NULL
 * when the rows are not wanted) is the result, which the caller PQclears. */
vd_status vd_pgq_run(pg_queue *q, int idx, int n, const char *const *params, PGresult **out,
                     vd_error *err);
/* Runs statement idx and returns the number of rows it touched (or returned) in *rows. */
vd_status vd_pgq_rows(pg_queue *q, int idx, int n, const char *const *params, int64_t *rows,
                      vd_error *err);
/* BEGIN; COMMIT when st is VD_OK, else ROLLBACK (returns st, or the commit's failure). */
vd_status vd_pgq_begin(pg_queue *q, vd_error *err);
vd_status vd_pgq_end(pg_queue *q, vd_status st, vd_error *err);

/* One try of an operation; retry is 0 on the first try, 1 on a try after the connection
 * broke (the earlier try may or may not have taken effect). */
typedef vd_status (*vd_pgq_try_fn)(pg_queue *q, void *arg, int retry, vd_error *err);
/* Runs fn, reconnecting and trying again while it ends in VD_ERR_CONN, for up to
 * PGQ_RETRY_MS in all; then VD_ERR_CONN. */
vd_status vd_pgq_retry(pg_queue *q, vd_pgq_try_fn fn, void *arg, vd_error *err);

/* LISTENs on c when q->listen is set and it does not yet (c must be connected). */
vd_status vd_pgq_listen(pg_queue *q, vd_error *err);
/* Reads notifications that arrived (without waiting); sets q->woken when there was one.
 * Returns 0 when the connection broke (it is dropped). */
int vd_pgq_poll_notify(pg_queue *q);

#endif
