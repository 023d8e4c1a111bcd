/* client.h: a blocking client of the model server (docs/protocol.md).
 *
 * One handle = one connection, used by one thread at a time (a handle is not
 * thread-safe: give each thread its own). Every call carries a timeout; the
 * server is told the time left so that it drops a request it could not start
 * in time. A call that fails because the connection broke or could not be
 * made (the server restarting, a SIGKILLed server, a stale socket) reconnects
 * with exponential backoff (10 ms doubling to 500 ms) and resends the request,
 * until its deadline: inference requests are idempotent, so resending is safe.
 * Errors the server answers (unknown model, bad shape, busy, timeout) are
 * returned as they are, without retrying; the one exception is the server's
 * "shutting down" answer (VD_ERR_CONN), which is retried like a broken
 * connection. The connection is made lazily, on the first call.
 *
 * Several servers: an address may list up to VD_INFER_MAX_SERVERS, ','-separated.
 * The handle keeps a connection per server and sends each call to the next
 * healthy one in turn; a server whose connection fails rests for its own
 * backoff (10 ms doubling to 500 ms) while the call is resent to another
 * (docs/protocol.md, "Several servers").
 *
 * Authentication: when $VISIOND_MODEL_SECRET_FILE names a secret file (read
 * by vd_infer_client_new, infer/auth.h), every connection runs the handshake
 * first and the server must prove it holds the same secret. A server that
 * refuses us (wrong or no secret on either side) is VD_ERR_AUTH, logged once
 * per process, and not tried again for 30 s: calls fail at once while every
 * server refuses. */
#ifndef VD_INFER_CLIENT_H
#define VD_INFER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/proto.h"
#include "infer/tensor.h"

typedef struct vd_infer_client vd_infer_client;

#define VD_INFER_DEFAULT_TIMEOUT_MS 30000
#define VD_INFER_MAX_SERVERS        16 /* addresses in one list */

/* Writes the default model-server address into buf: $VISIOND_MODEL_SERVER when
 * set, else "unix:$VISIOND_DATA/model.sock" (./data when unset). Returns buf. */
const char *vd_infer_default_address(char *buf, size_t n);

/* Creates a handle for address: "unix:PATH", "tcp:HOST:PORT", a path (anything
 * with a '/'), or "HOST:PORT"; or several of them, ','-separated. Reads the
 * secret named by $VISIOND_MODEL_SECRET_FILE, if any. Does not connect yet.
 * VD_ERR_INVALID for a malformed address; the errors of vd_auth_secret_load. */
vd_status vd_infer_client_new(const char *address, vd_infer_client **out, vd_error *err);

/* Closes the connection and frees the handle. */
void vd_infer_client_free(vd_infer_client *c);

/* Runs model on input, a float32 tensor [n, ...] of n items (one request, n
 * items, which the server may batch with others), and fills *res with the
 * model's outputs, each [n, ...] (free with vd_infer_result_free). timeout_ms
 * <= 0 means VD_INFER_DEFAULT_TIMEOUT_MS. VD_ERR_TIMEOUT when the deadline
 * passed; VD_ERR_CONN when the server could not be reached before it. */
/* A float32 tensor of shape (its data not initialised) to fill and pass to
 * vd_infer_client_infer on c. Where the input would go through the handle's shared region
 * (a Unix-socket server, 64 KiB or more: docs/protocol.md, "Shared memory") it is lent from
 * the region (t->borrowed), so that the call copies nothing. The region is one: every lent
 * tensor is the same memory, which stays valid (with what it holds) until c is freed or an
 * input larger than the region is asked for or sent. Otherwise the tensor is the caller's
 * own. Free it with vd_tensor_free either way. VD_ERR_INVALID for a bad rank or dim,
 * VD_ERR_NOMEM. */
vd_status vd_infer_client_input(vd_infer_client *c, const int64_t *shape, size_t rank, vd_tensor *t,
                                vd_error *err);

vd_status vd_infer_client_infer(vd_infer_client *c, const char *model, const vd_tensor *input,
                                int64_t timeout_ms, vd_infer_result *res, vd_error *err);

/* Fetches the MODELS answer (every model, its state and statistics) as JSON
 * text into *json (owned: free()). */
vd_status vd_infer_client_models(vd_infer_client *c, int64_t timeout_ms, char **json,
                                 vd_error *err);

/* Fetches the HEALTH answer as JSON text into *json (owned). */
vd_status vd_infer_client_health(vd_infer_client *c, int64_t timeout_ms, char **json,
                                 vd_error *err);

/* Loads (or unloads) a model now; *json (owned, may be NULL) describes it after. */
vd_status vd_infer_client_load(vd_infer_client *c, const char *model, int64_t timeout_ms,
                               char **json, vd_error *err);
vd_status vd_infer_client_unload(vd_infer_client *c, const char *model, int64_t timeout_ms,
                                 char **json, vd_error *err);

/* Returns 1 when the handle holds a connection (to any of its servers) that the server has not
 * closed (checked without blocking or sending anything), 0 when it never
 * connected, dropped its connection after an error, or finds it closed by
 * the server (which it then drops: the next call connects afresh). For a
 * caller that keeps answers from the server while the connection lasts. */
int vd_infer_client_connected(vd_infer_client *c);

/* How many times this handle (re)connected, and how many requests it resent. */
uint64_t vd_infer_client_connects(const vd_infer_client *c);
uint64_t vd_infer_client_resends(const vd_infer_client *c);

#endif
