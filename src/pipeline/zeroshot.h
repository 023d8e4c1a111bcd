/* zeroshot.h: zero-shot classification with a CLIP pair (POST /classify).
 *
 * Each label becomes a prompt (the template with "{label}" replaced, default
 * "a photo of a {label}"), embedded by the pair's text tower through
 * vd_text_embed (so the prompts' vectors are cached in the store: key
 * SHA-256 of the prompt + "TEXT_MODEL+text"); each image is embedded by the
 * image tower through vd_embed_paths (cached by the file's SHA-256); an
 * image's scores are the softmax over labels of 100 x the cosine of its
 * vector and each prompt's, as CLIP's zero-shot does (100: CLIP's learned
 * logit scale, which OpenCLIP caps at 100). */
#ifndef VD_PIPELINE_ZEROSHOT_H
#define VD_PIPELINE_ZEROSHOT_H

#include <stddef.h>

#include "core/err.h"
#include "core/paths.h"
#include "core/sha256.h"
#include "infer/runner.h"
#include "store/store.h"

#define VD_ZEROSHOT_TEMPLATE   "a photo of a {label}"
#define VD_ZEROSHOT_MAX_LABELS 256
#define VD_ZEROSHOT_SCALE      100.0f

typedef struct {
    vd_runner *runner; /* required */
    vd_store *store;   /* NULL = no cache */
    const char *model; /* the image model (with text_model) or the text model (with image_model) */
    const char *template_text;   /* NULL = VD_ZEROSHOT_TEMPLATE; must hold "{label}" */
    const vd_media_roots *roots; /* as vd_embed_opts.roots */
} vd_zeroshot_opts;

typedef struct {
    char sha256[VD_SHA256_HEX_LEN + 1];
    int cached;       /* the image's vector came from the cache */
    float *scores;    /* owned: one per label, summing to 1 (NULL when status != VD_OK) */
    size_t best;      /* the index of the highest score */
    vd_status status; /* VD_OK or the image's own error (not found, not an image...) */
    char *error;      /* owned */
} vd_zeroshot_item;

/* Classifies the n images at paths among labels[0..nlabels). *image_model and
 * *text_model (may be NULL, VD_MODEL_NAME_MAX bytes each) get the pair used.
 * VD_ERR_INVALID for fewer than 2 labels (a label list of one is no
 * choice), an empty label, a template without "{label}"; VD_ERR_LIMIT for
 * more than VD_ZEROSHOT_MAX_LABELS; VD_ERR_UNSUPPORTED when model is not
 * one tower of a CLIP pair; VD_ERR_NOT_FOUND for an unknown model; the
 * pipelines' errors otherwise. Per-image errors are in items. */
vd_status vd_zeroshot_classify(const vd_zeroshot_opts *o, const char *const *labels, size_t nlabels,
                               const char *const *paths, size_t n, vd_zeroshot_item *items,
                               char *image_model, char *text_model, vd_error *err);

void vd_zeroshot_items_clear(vd_zeroshot_item *items, size_t n);

/* The prompt vectors of labels[0..n) (VD_ZEROSHOT_TEMPLATE, the text tower
 * of o->model, cached as above): *vectors gets n rows of *dim floats
 * (malloc'd, caller frees). Used as a training session's priors
 * (train/classifier.h vd_train_opts.priors). VD_ERR_UNSUPPORTED when
 * o->model has no text tower; VD_ERR_MODEL when the tower's vectors are
 * not of the image model's dim (when known: image_dim > 0). */
vd_status vd_zeroshot_prompt_vectors(const vd_zeroshot_opts *o, const char *const *labels, size_t n,
                                     int image_dim, float **vectors, int *dim, vd_error *err);

#endif
