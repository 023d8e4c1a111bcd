/* light.h: the job types a light work-horse runs (docs/worker.md, "Light horses").
 *
 * A light type's handler needs neither libvips nor the model server: today the
 * worker's built-in test types (worker/registry.h) and recluster_people
 * (pipeline/people.h). `visiond worker` runs them in horses cloned from a
 * fork server that is a separate, small executable (visiond-horse, built from
 * src/horse_main.c), which maps 9 shared objects instead of the ~118 of
 * `visiond`: a clone and an exit cost a fraction as much. This file and the
 * objects it calls reference nothing of image/ or infer/, so a program that
 * links only them does not load libvips or ONNX Runtime; keep it so (the
 * build of visiond-horse is the check: tests/integration/worker_basic.sh
 * looks at what its horses map). */
#ifndef VD_PIPELINE_LIGHT_H
#define VD_PIPELINE_LIGHT_H

#include "core/err.h"
#include "pipeline/jobs.h"
#include "worker/registry.h"

/* Builds the registry of a light fork server: the built-in test types when
 * test_jobs, then the light types (recluster_people) with cfg (borrowed: must
 * outlive the registry). vd_pipeline_registry_new starts from it, so both
 * registries run the same handlers. Free with vd_registry_free. */
vd_status vd_pipeline_light_registry_new(const vd_pipeline_config *cfg, int test_jobs,
                                         vd_registry **out, vd_error *err);

#endif
