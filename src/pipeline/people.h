/* people.h: the full re-cluster of the library's faces into people (docs/people.md), run by
 * the recluster_people job in a work-horse.
 *
 * It reads every face of the face model with its vector and its person (store/library.h),
 * builds a temporary vector index (vindex/vindex.h; the horse exits afterwards, so the index
 * and whatever threads a kind may use never meet a fork), asks it for each face's nearest
 * faces, re-clusters (faces/cluster.h: user decisions kept) and writes the changes with the
 * conditional updates of store/people.h: a face the user moved, or another process
 * assigned, while the job ran keeps what they did. People the re-cluster emptied and nobody
 * named are deleted. */
#ifndef VD_PIPELINE_PEOPLE_H
#define VD_PIPELINE_PEOPLE_H

#include <stddef.h>

#include "core/err.h"
#include "faces/cluster.h"
#include "store/store.h"
#include "worker/registry.h"

/* Nearest faces asked of the index for each face (the neighbourhood cap). */
#define VD_PEOPLE_NEIGHBOURS 32

typedef struct {
    size_t faces;      /* faces with a vector */
    size_t new_people; /* people founded */
    size_t moved;      /* automatic faces that changed person (unassigned ones included) */
    size_t unassigned; /* faces in no person afterwards */
    size_t kept;       /* updates skipped: the face changed meanwhile */
    size_t pruned;     /* empty unnamed people deleted */
} vd_people_recluster_stats;

/* Re-clusters the faces of model (NULL: faces/faces.h's embedder) with p (checked:
 * VD_ERR_INVALID). ctx (may be NULL) gets progress: faces read, then faces placed. */
vd_status vd_people_recluster(vd_store *s, const char *model, const vd_cluster_params *p,
                              vd_job_ctx *ctx, vd_people_recluster_stats *out, vd_error *err);

/* The recluster_people handler (payload: jobspec/jobspec.h); ud is the vd_pipeline_config. */
vd_status vd_people_job(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err);

#endif
