/* runner.h: "run model NAME on this batch", whoever runs it.
 *
 * Pipelines (faces, image embeddings) take their inference through this small
 * vtable so the same code runs in a work-horse (through the model server's
 * client) or in-process (ONNX Runtime, for tests, benchmarks and tools).
 * A runner knows models by name and can say how to feed them (the metadata);
 * run() takes one input batch [n, ...] and returns the model's outputs in the
 * metadata's `outputs` order (every graph output when the list is empty), each
 * with the batch dim first. A runner is used from one thread at a time. */
#ifndef VD_RUNNER_H
#define VD_RUNNER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/model_meta.h"
#include "infer/tensor.h"

typedef struct vd_runner vd_runner;

typedef struct {
    /* Fills *meta for the model called name; VD_ERR_NOT_FOUND when unknown.
     * meta->dim is the embedding dim when known (declared, from the graph, or
     * learned from a run), 0 otherwise. */
    vd_status (*meta)(vd_runner *r, const char *name, vd_model_meta *meta, vd_error *err);
    /* Runs the model on input; writes at most max_outs outputs into outs
     * (each owned by the caller: vd_tensor_free) and their count to *nouts. */
    vd_status (*run)(vd_runner *r, const char *name, const vd_tensor *input, vd_tensor *outs,
                     size_t max_outs, size_t *nouts, vd_error *err);
    /* Frees the runner and everything it holds. */
    void (*free)(vd_runner *r);
    /* Optional (NULL: the caller allocates): a float32 tensor of shape for the caller to
     * fill and pass to the next run, which may be lent by the runner (t->borrowed: the
     * model-server runner's shared region, so the input is not copied on its way). */
    vd_status (*input)(vd_runner *r, const int64_t *shape, size_t rank, vd_tensor *t,
                       vd_error *err);
} vd_runner_ops;

/* Implementations put this first in their own struct. */
struct vd_runner {
    const vd_runner_ops *ops;
};

/* Convenience wrappers over the vtable. */
static inline vd_status vd_runner_meta(vd_runner *r, const char *name, vd_model_meta *meta,
                                       vd_error *err)
{
    return r->ops->meta(r, name, meta, err);
}

static inline vd_status vd_runner_run(vd_runner *r, const char *name, const vd_tensor *input,
                                      vd_tensor *outs, size_t max_outs, size_t *nouts,
                                      vd_error *err)
{
    return r->ops->run(r, name, input, outs, max_outs, nouts, err);
}

/* A float32 tensor of shape, its data not initialised, for the caller to fill and pass to
 * the next vd_runner_run on r (a lent one is the same memory as the next input's). Free it
 * with vd_tensor_free either way. */
static inline vd_status vd_runner_input(vd_runner *r, const int64_t *shape, size_t rank,
                                        vd_tensor *t, vd_error *err)
{
    if (r->ops->input) return r->ops->input(r, shape, rank, t, err);
    return vd_tensor_alloc_uninit(t, VD_DTYPE_FLOAT32, shape, rank, err);
}

static inline void vd_runner_free(vd_runner *r)
{
    if (r) r->ops->free(r);
}

/* An in-process runner over ONNX Runtime. Models are found as NAME.json in
 * the directories of models_path (':'-separated, searched in order), loaded on
 * first use and kept until vd_runner_free. A model whose graph has a fixed
 * batch dim of 1 is run once per item and the outputs concatenated.
 * intra_threads 0 = ORT's default. VD_ERR_MODEL / VD_ERR_UNSUPPORTED when ORT
 * cannot start. The embedding dim follows docs/models.md: from the graph at
 * load (a contradiction with the metadata fails the load, naming its file),
 * else from the first run; every run's embedding output must be [n, dim]. */
vd_status vd_runner_ort_new(const char *models_path, int intra_threads, vd_runner **out,
                            vd_error *err);

/* The runner over the model server is in infer/runner_client.h. */

#endif
