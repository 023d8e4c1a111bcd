/* jobs.h: the pipeline's job types, run by work-horses (docs/pipeline.md).
 *
 *   embed          {"model": "mobilenet_v2", "paths": [...], "mode": "image"|"face"}
 *                  embeds files through the cache (pipeline/embed.h); progress
 *                  counts files; a bad file is a per-file error in the result
 *                  {"model","dim","embeddings":[{"path","sha256","cached"} |
 *                  {"path","error"}],"computed","cached","failed"}. Vectors stay
 *                  in the store.
 *   train_session  {"session_id": ID}: embeds every example of a training
 *                  session (store/sessions.h) through the same cache (image
 *                  sessions: the whole image; face sessions: the largest face,
 *                  or the whole image with the "crop" option), recording
 *                  "embedded n/m" progress and per-example errors in the
 *                  session, then trains (train/classifier.h) and stores the
 *                  classifier and metrics (store/classifiers.h). It stops when the
 *                  session is canceled or deleted. A retried attempt resumes
 *                  cheaply: embedded examples are cache hits.
 *   index          {"assets": [ID...], "model", "face_model"}: the photo
 *                  library's assets (store/library.h): each asset's vector
 *                  through the same cache, every face in it (faces/faces.h),
 *                  stored; a bad file is that asset's error (index.c,
 *                  docs/library.md).
 *   recluster_people {"model", "max_distance", "min_faces"} (all optional): the full
 *                  re-cluster of the library's faces into people (pipeline/people.h).
 * They reach the model server through a vd_runner_client and open the store
 * themselves (one handle per horse). Their payloads are parsed by
 * jobspec/jobspec.h (the same parsers vd_job_check applies at enqueue), and
 * every file is opened through vd_media_read (core/paths.h) under the
 * config's media roots: a path swapped for a symlink out of the roots, a FIFO
 * or a device after the job was enqueued (or after the session was created)
 * is that file's error, never read and never waited on.
 *
 * This module is also where "every job type of this build" is assembled
 * (vd_pipeline_registry_new): pipeline sits above worker (it registers
 * handlers in worker/registry.h), so the aggregate of the worker's built-in
 * test types and the pipeline's types lives here and worker/ includes nothing
 * from pipeline/. Callers that only need names and payload rules (the API,
 * `visiond jobs enqueue`) use jobspec/jobspec.h and pull in no handler. */
#ifndef VD_PIPELINE_JOBS_H
#define VD_PIPELINE_JOBS_H

#include "core/err.h"
#include "core/paths.h"
#include "pipeline/embed.h"
#include "store/sessions.h"
#include "worker/registry.h"

/* Where the jobs find their services. NULL fields take the defaults: the
 * store at vd_store_default_path, the model server at
 * vd_infer_default_address, metadata from the model server. */
typedef struct {
    const char *store_path;
    const char *model_server;
    const char *models_path;
    /* Media roots every file is opened under (borrowed; `visiond worker
     * --media-root`). NULL = none: files are opened as named (regular files
     * only, capped, bounded in time), as for the CLI. */
    const vd_media_roots *roots;
} vd_pipeline_config;

/* Opens the store of cfg (the default one when cfg or its store_path is NULL). */
vd_status vd_pipeline_open_store(const vd_pipeline_config *cfg, vd_store **store, vd_error *err);

/* The default embedding model of a session kind ("mobilenet_v2", "faceres"). */
const char *vd_pipeline_default_model(vd_session_kind kind);

/* How a session's examples (and predict inputs) are embedded: *mode from the
 * kind and the options ({"crop": true} face sessions embed whole images). */
vd_embed_mode vd_pipeline_session_mode(const vd_session *s);

/* Starts, in the worker before it forks any horse, what each horse of these
 * job types would otherwise start on its own: libvips (vd_image_init, ~2 ms of
 * CPU per process on a 2-core VM, 2026-12-06) and libcrypto
 * (vd_sha256_prepare, ~0.8 ms). Every horse then inherits them started.
 * Neither starts a thread, so the worker may still fork
 * (tests/integration/worker_basic.sh checks the supervisor has one thread). */
vd_status vd_pipeline_prepare_worker(vd_error *err);

/* Builds the registry of every job type this build runs: the light fork
 * server's (pipeline/light.h: the built-in test types of worker/registry.h
 * when test_jobs (vd_job_test_types_enabled()), recluster_people), then
 * embed, train_session and index, with cfg (borrowed; NULL = defaults). Each type's
 * default timeout comes from jobspec/jobspec.h. Free with vd_registry_free. */
vd_status vd_pipeline_registry_new(const vd_pipeline_config *cfg, int test_jobs, vd_registry **out,
                                   vd_error *err);

#endif
