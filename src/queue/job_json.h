/* job_json.h: a job as JSON, the one shape used by the CLI and the HTTP API.
 *
 *   {"id", "type", "state", "priority", "attempts", "max_retries", "timeout_ms",
 *    "retry_base_ms", "retry_max_ms", "result_ttl_ms", "created_ms", "run_at_ms",
 *    "started_ms", "ended_ms", "lease_until_ms" (null when never/none),
 *    "worker" (null when none), "progress": {"done", "total"},
 *    "payload" (the JSON value), "result" (JSON value or null),
 *    "error" (string or null), "cancel_requested" (bool)}
 *
 * Times are wall-clock milliseconds since the Unix epoch. A payload or result
 * that does not parse (it always should) is given as a JSON string. */
#ifndef VD_JOB_JSON_H
#define VD_JOB_JSON_H

#include <jansson.h>

#include "queue/queue.h"

/* Returns a new JSON object for job (the caller json_decref's it), or NULL
 * when out of memory. */
json_t *vd_job_to_json(const vd_job *job);

/* Returns a new JSON object {"queued": n, ..., "canceled": n} of counts. */
json_t *vd_job_counts_to_json(const int64_t counts[VD_JOB__NSTATES]);

#endif
