/* jobspec.h: the job types of this build, what their payloads must hold and
 * how long one attempt may run, without the code that runs them.
 *
 * Layering (why this module exists): core < jobspec < worker < pipeline < api, cli.
 *   - The API (POST /jobs) and `visiond jobs enqueue` must refuse an unknown
 *     type, a test type, or a payload the job would refuse, before enqueue;
 *     they need names and payload rules, not handlers (image decoding,
 *     inference, training).
 *   - The worker's handler registry (worker/registry.h) takes each type's
 *     default timeout from here; the pipeline's handlers (pipeline/jobs.h)
 *     parse their payloads with the parsers here, so the rule checked at
 *     enqueue and the rule applied when the job runs are the same code.
 *   - The aggregate that binds every name to its handler
 *     (vd_pipeline_registry_new, pipeline/jobs.h) sits above worker and
 *     pipeline; worker/ includes nothing from pipeline/.
 * Depends on core/ and jansson only.
 *
 * Test job types (noop, sleep, fail, crash, progress, count, alloc:
 * worker/registry.h) exist only when the environment has VISIOND_TEST_JOBS=1:
 * without it the API and the CLI refuse to enqueue them ("test_job_type")
 * and workers do not register their handlers (so one in the queue is never
 * run). `count` opens any SQLite file named in its payload and `alloc` and
 * `crash` take a work-horse down: they must not reach a production server. */
#ifndef VD_JOBSPEC_JOBSPEC_H
#define VD_JOBSPEC_JOBSPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/paths.h"

#define VD_EMBED_MAX_PATHS  100000 /* paths in one embed job */
#define VD_INDEX_MAX_ASSETS 100000 /* assets in one index job */

typedef struct {
    const char *name;
    int test_only;              /* only with VISIOND_TEST_JOBS=1 */
    int64_t default_timeout_ms; /* applied by the worker when the job gives none (timeout 0) */
    const char *payload;        /* the payload's shape, for messages and --list-types */
} vd_job_spec;

/* The table: every job type of this build, test types included. */
size_t vd_job_spec_count(void);
const vd_job_spec *vd_job_spec_at(size_t i);

/* Returns the spec of type (test types too), or NULL for an unknown type. */
const vd_job_spec *vd_job_spec_find(const char *type);

/* Returns 1 when $VISIOND_TEST_JOBS is "1": test job types may be enqueued and run. */
int vd_job_test_types_enabled(void);

/* Why vd_job_check refused. */
typedef struct {
    const char *code;        /* static snake_case: "unknown_job_type", "test_job_type",
                                "invalid_payload", or a path problem's name (paths.h) */
    vd_path_problem problem; /* the refused path's problem, VD_PATH_OK otherwise */
} vd_job_refusal;

typedef struct {
    /* Paths in payloads are checked against these roots (vd_media_roots_check:
     * confined, existing, regular file). NULL = shape only (absolute, no "..")
     * for callers that know no roots (the CLI without --media-root); a root
     * set with no roots refuses every path. */
    const vd_media_roots *roots;
    int test_jobs; /* test types allowed (vd_job_test_types_enabled()) */
    int any_type;  /* an unknown (but well-formed) type is accepted, unchecked */
} vd_job_check_opts;

/* Checks that a job of type with payload (JSON text; NULL or "" = {}) may be
 * enqueued. VD_OK, or a refusal: VD_ERR_INVALID (unknown or test type,
 * malformed payload, a path refused), VD_ERR_NOT_FOUND (a path inside the
 * roots that does not exist), with err's message and *why (may be NULL) set.
 * A path outside the roots is refused the same way whether it exists or not. */
vd_status vd_job_check(const char *type, const char *payload, const vd_job_check_opts *o,
                       vd_job_refusal *why, vd_error *err);

/* ---- Payload parsers, shared by vd_job_check and the handlers ---- */

/* embed: {"paths": [PATH, ...] (1..VD_EMBED_MAX_PATHS strings), "model": NAME
 * (absent: model is NULL and the handler takes the mode's default,
 * vd_embed_default_model), "mode": "image"|"face" (default "image")}; no
 * other field. Pointers borrow from obj. VD_ERR_INVALID naming the field. */
typedef struct {
    const char *model;
    int face; /* mode "face" */
    json_t *paths;
    size_t npaths;
} vd_embed_payload;
vd_status vd_embed_payload_parse(json_t *obj, vd_embed_payload *out, vd_error *err);

/* train_session: {"session_id": ID} (1..VD_ID_LEN characters of
 * [A-Za-z0-9_-]); no other field. *sid borrows from obj. */
vd_status vd_train_payload_parse(json_t *obj, const char **sid, vd_error *err);

/* recluster_people: {"model": NAME (the face model; absent: NULL, the library's),
 * "max_distance": F, "min_faces": N} (absent: 0, the defaults of faces/cluster.h); no other
 * field. The shape only: the values' ranges have their one home in
 * vd_cluster_params_check (faces/cluster.h), applied by POST /people/recluster before it
 * enqueues and by the handler (an out-of-range value fails the job, not retried). */
typedef struct {
    const char *model;   /* borrows from obj */
    double max_distance; /* 0 = default */
    int min_faces;       /* 0 = default */
} vd_recluster_payload;
vd_status vd_recluster_payload_parse(json_t *obj, vd_recluster_payload *out, vd_error *err);
/* index: {"assets": [ID, ...] (1..VD_INDEX_MAX_ASSETS positive integers),
 * "model": NAME (the library's image model), "face_model": NAME (the face
 * embedding model; "" = no faces)}; no other field. Both names are required
 * (the service that enqueues fills them from its configuration). *assets
 * borrows from obj. */
typedef struct {
    const char *model;
    const char *face_model;
    json_t *assets;
    size_t nassets;
} vd_index_payload;
vd_status vd_index_payload_parse(json_t *obj, vd_index_payload *out, vd_error *err);

#endif
