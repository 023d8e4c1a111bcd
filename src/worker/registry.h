/* registry.h: job types and their handlers.
 *
 * A job handler is a plain C function registered under a type name. The
 * worker builds one registry at start (no globals), registers every type it
 * can run, and only reserves jobs of those types. A handler runs in a forked
 * work-horse (or inline with `visiond worker --no-fork`); it receives the
 * job's JSON payload and a context through which it reports progress and
 * learns that it should stop (the job was canceled, timed out, or the worker
 * is shutting down).
 *
 * A handler returns VD_OK and may set *result_json_out to a malloc'd JSON
 * text (owned by the caller, NULL = no result); or it returns an error status
 * with a message in *err. A failure is retried (when the job has attempts
 * left) unless the handler calls vd_job_ctx_set_retryable(ctx, 0) or returns
 * VD_ERR_INVALID / VD_ERR_UNSUPPORTED (bad input does not get better).
 * Handlers must be idempotent: delivery is at-least-once. */
#ifndef VD_WORKER_REGISTRY_H
#define VD_WORKER_REGISTRY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "queue/queue.h"

typedef struct vd_job_ctx vd_job_ctx;
typedef struct vd_registry vd_registry;

typedef vd_status (*vd_job_handler)(vd_job_ctx *ctx, const char *payload_json,
                                    char **result_json_out, vd_error *err);

/* Returns a new empty registry (NULL when out of memory); free with vd_registry_free. */
vd_registry *vd_registry_new(void);
void vd_registry_free(vd_registry *reg);

/* Registers handler fn under type (a valid job type name: 1-63 characters of
 * [A-Za-z0-9_.-]); userdata is handed to the handler through
 * vd_job_ctx_userdata. The type's default timeout is its jobspec's
 * (jobspec/jobspec.h; none for a type jobspec does not know, such as a unit
 * test's own). VD_ERR_INVALID for a bad name, VD_ERR_STATE when the type is
 * already registered. */
vd_status vd_registry_add(vd_registry *reg, const char *type, vd_job_handler fn, void *userdata,
                          vd_error *err);

/* Returns how long one attempt of job may run: its own timeout_ms when it
 * has one, else its type's default (jobspec/jobspec.h), else 0 (none). The
 * supervisor applies it, so that no job of a known type holds a slot
 * forever, whoever enqueued it and however. */
int64_t vd_registry_timeout_ms(const vd_registry *reg, const vd_job *job);

/* Registers the built-in types used by tests and benchmarks (only when
 * VISIOND_TEST_JOBS=1 in a worker: vd_pipeline_registry_new):
 *   noop      does nothing
 *   sleep     {"ms": N}: sleeps N ms, stopping early when asked to stop
 *   fail      {"message": "...", "retryable": bool}: fails with that message
 *   crash     {"signal": "SEGV"|"KILL"|"ABRT"}: really dies by that signal;
 *             {"exit": N}: _exit(N) without reporting anything
 *   progress  {"steps": N, "ms": M}: N steps of M ms, reporting i/N after each
 *   count     {"db": PATH}: inserts (job id, attempt, pid) into table runs of
 *             the SQLite file PATH (which must exist with that table)
 *   alloc     {"mb": N}: allocates and touches N MiB (tests memory limits) */
vd_status vd_registry_add_builtin(vd_registry *reg, vd_error *err);

/* Returns 1 when type is registered, 0 otherwise. */
int vd_registry_has(const vd_registry *reg, const char *type);

/* Returns the handler of type (and its userdata into *userdata when non-NULL),
 * or NULL when the type is not registered. */
vd_job_handler vd_registry_get(const vd_registry *reg, const char *type, void **userdata);

/* Returns how many types are registered, and the i-th name (borrowed, valid
 * while the registry lives), in registration order. */
size_t vd_registry_count(const vd_registry *reg);
const char *vd_registry_name(const vd_registry *reg, size_t i);

/* ---- What a handler may ask its context. ---- */

/* The job's id, type, attempt number (1-based) and the allowed attempts
 * (1 + max_retries). Strings are borrowed for the duration of the call. */
const char *vd_job_ctx_id(const vd_job_ctx *ctx);
const char *vd_job_ctx_type(const vd_job_ctx *ctx);
int vd_job_ctx_attempt(const vd_job_ctx *ctx);
int vd_job_ctx_max_attempts(const vd_job_ctx *ctx);

/* The userdata given to vd_registry_add for this type. */
void *vd_job_ctx_userdata(const vd_job_ctx *ctx);

/* Reports progress: done of total units. Cheap; may be called often (the
 * worker coalesces updates). */
vd_status vd_job_ctx_progress(vd_job_ctx *ctx, int64_t done, int64_t total);

/* Returns 1 when the handler should stop as soon as it can (the job was
 * canceled or timed out, or the worker is shutting down); it then returns
 * VD_ERR_CANCELED. A handler that never asks is stopped by SIGKILL after the
 * worker's kill grace period. */
int vd_job_ctx_should_stop(vd_job_ctx *ctx);

/* Marks the failure the handler is about to return as retryable (1, the
 * default) or permanent (0). */
void vd_job_ctx_set_retryable(vd_job_ctx *ctx, int retryable);

/* For handlers: parses a payload that must be a JSON object ("" or NULL
 * means {}) into *out, which the caller json_decref's. VD_ERR_INVALID
 * ("payload must be a JSON object") otherwise. */
vd_status vd_job_payload_object(const char *payload, json_t **out, vd_error *err);

#endif
