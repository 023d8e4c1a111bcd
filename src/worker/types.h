/* types.h: the registry of every job type this build of visiond can run,
 * used by the worker (to run them) and by the CLI and the api (to refuse an
 * unknown type at enqueue time). */
#ifndef VD_WORKER_TYPES_H
#define VD_WORKER_TYPES_H

#include "core/err.h"
#include "pipeline/jobs.h"
#include "worker/registry.h"

/* Builds a registry with the built-in test types and the pipeline's (embed,
 * train_session). pcfg is kept by the pipeline handlers (NULL = defaults; a
 * registry only used for its names may pass NULL). Free with vd_registry_free. */
vd_status vd_worker_registry_new(const vd_pipeline_config *pcfg, vd_registry **out, vd_error *err);

#endif
