/* embed.h: image files in, embedding vectors out, through the store's cache.
 *
 * The one embedding path of the service, used by the `embed` and
 * `train_session` jobs, the API's /embeddings and predict routes and the
 * CLI. For each file:
 *   1. the SHA-256 of its bytes is the cache key, with the cache model name
 *      (vd_embed_cache_model: the model's name for whole images, NAME+face
 *      for "largest face of the image");
 *   2. the store's embedding cache is asked for every key in one read; hits
 *      are done (no decoding, no inference);
 *   3. misses are read, decoded and preprocessed by a decode thread that
 *      works one batch ahead of inference (a bounded hand-off of two
 *      batches), while the calling thread sends the current batch to the
 *      runner (the model server) and stores its vectors: decoding and
 *      inference overlap;
 *   4. vectors are L2-normalised when the model's metadata says so (face
 *      vectors always are), and stored in the cache, one transaction per
 *      batch, so a job killed half-way keeps what it computed.
 * The model must fit the mode (vd_embed_check_model). Every vector returned,
 * stored or taken from the cache has the model's dim (its metadata's, else
 * the first vector's): an empty vector or one of another length is never an
 * answer. A computed one is a per-file VD_ERR_MODEL error instead; a cached
 * one of another length (an older model under the same name) is computed
 * again.
 * Errors are per file (not found, not an image, no face...) and never stop
 * the others; only a runner or store failure, or a stop request, fails the
 * whole call. The runner and the store are used from the calling thread
 * only. The process must have called vd_image_init. */
#ifndef VD_PIPELINE_EMBED_H
#define VD_PIPELINE_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/paths.h"
#include "core/sha256.h"
#include "image/decode.h"
#include "infer/runner.h"
#include "store/store.h"

typedef enum {
    VD_EMBED_IMAGE = 0, /* the whole image through an image-embedding model */
    VD_EMBED_FACE       /* detect faces, align the largest, embed it with a face model */
} vd_embed_mode;

/* The outcome for one file. Owned fields are freed by vd_embed_items_clear. */
typedef struct {
    char sha256[VD_SHA256_HEX_LEN + 1]; /* "" when the file could not be read */
    int cached;                         /* 1: the vector came from the cache */
    float *vector;                      /* owned: dim floats (only with want_vectors) */
    int dim;                            /* the vector's length (> 0) when status is VD_OK */
    vd_status status;                   /* VD_OK or the file's own error */
    char *error;                        /* owned: the message when status != VD_OK */
    /* the image's whole size, upright (image/decode.h src_width/src_height), when this call
     * decoded it (status VD_OK or a model's error); 0 x 0 for a cached vector */
    int src_width, src_height;
} vd_embed_item;

typedef struct {
    vd_runner *runner; /* required */
    vd_store *store;   /* NULL = no cache (nothing read or stored) */
    const char *model; /* the embedding model's name */
    vd_embed_mode mode;
    /* Files are opened with vd_media_read under these roots (core/paths.h):
     * a path outside them, a symlink swapped in, a FIFO or a device is that
     * file's error. NULL = no confinement (still regular files only, capped). */
    const vd_media_roots *roots;
    /* Paths that are blob references ("blob:SHA256/NAME": uploads kept in the
     * store, store/blobs.h) are not files: their SHA-256 is the reference's
     * (no read for a cache hit) and their bytes come from read_blob, called
     * on the decode thread only (never the calling thread), checked against
     * that SHA-256. NULL: such a path is that file's error. */
    vd_status (*read_blob)(void *blob_ud, const char *sha, uint8_t **data, size_t *len,
                           vd_error *err);
    void *blob_ud;
    int want_vectors; /* fill items[i].vector */
    size_t batch;     /* images per inference request; 0 = the model's max_batch (<= 32) */
    /* Called on the calling thread as each item is done (any order). */
    void (*on_item)(void *ud, size_t i, const vd_embed_item *item);
    /* Asked between batches: nonzero stops the call with VD_ERR_CANCELED. */
    int (*should_stop)(void *ud);
    void *ud;
} vd_embed_opts;

typedef struct {
    size_t cached, computed, failed; /* files by outcome */
    size_t batches;                  /* inference requests sent */
    int64_t decode_us, infer_us;     /* time spent in each stage (they overlap) */
} vd_embed_stats;

/* How an image is decoded for a whole-image embedding with meta's model:
 * shrink-on-load down to (not below) the model's input size (decode.h). */
void vd_embed_decode_opts(const vd_model_meta *meta, vd_decode_opts *opts);

/* The model a mode uses when the caller names none: "mobilenet_v2" for
 * VD_EMBED_IMAGE, "faceres" for VD_EMBED_FACE (docs/api.md). */
const char *vd_embed_default_model(vd_embed_mode mode);

/* The one rule deciding whether a model can embed in a mode, for the CLI,
 * the API and the jobs: reads model's metadata through runner into *meta
 * (may be NULL) and checks its task. VD_EMBED_IMAGE takes an
 * image_embedding or a face_embedding model (the latter for images that are
 * face crops), VD_EMBED_FACE a face_embedding model. VD_ERR_NOT_FOUND for an
 * unknown model (the runner's error), VD_ERR_UNSUPPORTED "model X is a
 * face_detection model: ..." for any other task. vd_embed_paths calls it. */
vd_status vd_embed_check_model(vd_runner *runner, const char *model, vd_embed_mode mode,
                               vd_model_meta *meta, vd_error *err);

/* Writes the cache's model key for (model, mode) into buf: model itself for
 * VD_EMBED_IMAGE, "MODEL+face" for VD_EMBED_FACE. Returns buf. */
const char *vd_embed_cache_model(const char *model, vd_embed_mode mode, char *buf, size_t n);

/* Embeds the n files at paths into items[0..n) (zeroed first; clear them
 * with vd_embed_items_clear) and writes the vector dimension to *dim (0
 * when nothing was embedded). stats may be NULL. Returns VD_OK when every
 * file has an outcome, even if all failed; VD_ERR_CANCELED when should_stop
 * said so; the runner's or store's error otherwise (items done so far keep
 * their outcome). */
vd_status vd_embed_paths(const vd_embed_opts *o, const char *const *paths, size_t n,
                         vd_embed_item *items, int *dim, vd_embed_stats *stats, vd_error *err);

/* Frees the owned fields of n items. */
void vd_embed_items_clear(vd_embed_item *items, size_t n);

#endif
