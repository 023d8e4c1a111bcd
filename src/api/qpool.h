/* qpool.h: the API threads' pool of queue handles (a core/pool.h pool of
 * vd_queue handles on one url; the API's other handles use core/pool.h directly).
 *
 * A vd_queue handle is not thread-safe, so each request borrows one with
 * vd_qpool_get and returns it with vd_qpool_put. Up to `max` handles are
 * opened, lazily; a borrower waits when all are in use. A handle that failed
 * with a connection or store error is returned as broken: it is closed and a
 * fresh one is opened on a later get, so a restarted Redis or a replaced
 * database file is picked up without restarting the API. */
#ifndef VD_API_QPOOL_H
#define VD_API_QPOOL_H

#include <stddef.h>

#include "core/err.h"
#include "queue/queue.h"

typedef struct vd_qpool vd_qpool;

/* Creates a pool for url with at most max handles (0 = 4) and opens one at
 * once so that a bad url or an unreachable backend is reported here. *out is
 * owned by the caller and freed with vd_qpool_free (after every handle is back). */
vd_status vd_qpool_new(const char *url, size_t max, vd_qpool **out, vd_error *err);
void vd_qpool_free(vd_qpool *p);

/* Borrows a handle, opening one when none is idle and fewer than max exist,
 * else waiting for one. Fails (VD_ERR_CONN, VD_ERR_DB, ...) when a new handle
 * cannot be opened; nothing is borrowed then. */
vd_status vd_qpool_get(vd_qpool *p, vd_queue **q, vd_error *err);

/* Returns a borrowed handle; broken != 0 closes it instead of keeping it. */
void vd_qpool_put(vd_qpool *p, vd_queue *q, int broken);

/* Returns the pool's queue url (borrowed). */
const char *vd_qpool_url(const vd_qpool *p);

#endif
