/* jobs_impl.h: what the pipeline's job files share (not a public header:
 * use pipeline/jobs.h). */
#ifndef VD_PIPELINE_JOBS_IMPL_H
#define VD_PIPELINE_JOBS_IMPL_H

#include "pipeline/jobs.h"
#include "worker/registry.h"

/* Opens what every pipeline job needs: libvips, the store (cfg's, else the
 * default) and a model-server runner. Both are the caller's on VD_OK. */
vd_status vd_pipeline_open_services(const vd_pipeline_config *cfg, vd_store **store,
                                    vd_runner **runner, vd_error *err);

/* Uploads kept in the store, read on the embedding's decode thread through a
 * store handle of that thread's own (a handle is not shared between threads),
 * opened on first need; the caller closes .store once the embedding is done. */
typedef struct {
    const vd_pipeline_config *cfg;
    vd_store *store;
} vd_pipeline_blob_reader;

/* vd_embed_opts.read_blob over a vd_pipeline_blob_reader (ud). */
vd_status vd_pipeline_read_blob(void *ud, const char *sha, uint8_t **data, size_t *len,
                                vd_error *err);

/* The index job (index.c): {"assets": [ID...], "model", "face_model"}. */
vd_status vd_pipeline_job_index(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err);

#endif
