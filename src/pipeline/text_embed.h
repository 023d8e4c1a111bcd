/* text_embed.h: texts in, embedding vectors out, through a CLIP text tower.
 *
 * The one text-embedding path of the service (POST /embeddings {"texts"},
 * `visiond embed --text`, the prompts of POST /classify and of sessions'
 * prompt priors, POST /search {"text"}). For each text:
 *   1. the model: a text_embedding model, or an image model whose metadata
 *      names its text tower (`text_model`: a model folder's NAME gives
 *      NAME.textual) - vd_text_model_resolve;
 *   2. the tokenizer its metadata names (input.tokenizer, a Hugging Face
 *      tokenizer.json: text/bpe.h), loaded once per process and shared;
 *   3. the ids: start token, at most context_length - 2 tokens, end token,
 *      then the pad id: a longer text is TRUNCATED as open_clip and Immich
 *      do (the end token kept), not refused; the item says so;
 *   4. the store's embedding cache, keyed by the SHA-256 of "text:" + the
 *      text's bytes under the model key "MODEL+text" (hits skip inference);
 *   5. misses go to the runner (the model server) as int32 ids [k, context],
 *      up to 32 texts a request; vectors are L2-normalised when the model's
 *      metadata says so (CLIP exports already are) and cached.
 * Used from one thread at a time per runner/store, like vd_embed_paths. */
#ifndef VD_PIPELINE_TEXT_EMBED_H
#define VD_PIPELINE_TEXT_EMBED_H

#include <stddef.h>

#include "core/err.h"
#include "infer/runner.h"
#include "store/store.h"

#define VD_TEXT_MAX_TEXTS 256 /* texts in one call; more is VD_ERR_LIMIT */

typedef struct {
    float *vector; /* owned: dim floats (vd_text_items_clear) */
    int cached;    /* 1: from the cache */
    int truncated; /* 1: the text had more tokens than the context holds */
    size_t tokens; /* ids before padding, start and end included */
} vd_text_item;

typedef struct {
    vd_runner *runner; /* required */
    vd_store *store;   /* NULL = no cache */
    const char *model; /* a text model, or an image model with a text tower */
} vd_text_opts;

/* The text tower for model: its metadata into *meta (a text_embedding
 * model, or the `text_model` of an image model). VD_ERR_NOT_FOUND for an
 * unknown model; VD_ERR_UNSUPPORTED "model X is a face_embedding model ..."
 * when it has no text tower. */
vd_status vd_text_model_resolve(vd_runner *runner, const char *model, vd_model_meta *meta,
                                vd_error *err);

/* Checks a text model's tokenizer (it loads, holds pad_token, its start and
 * end ids are the metadata's): the model server runs it on every text model
 * it finds, so that a tokenizer that does not parse is named in its log and
 * that model alone is refused. Other tasks: VD_OK. */
vd_status vd_text_model_check(const vd_model_meta *meta, vd_error *err);

/* Embeds texts[0..n) (NUL-terminated UTF-8) into items (zeroed first; clear
 * with vd_text_items_clear); *dim gets the vectors' length. *model_used
 * (may be NULL, VD_MODEL_NAME_MAX bytes) gets the text model's name.
 * VD_ERR_INVALID for n == 0 or a text that is not UTF-8 (naming its index),
 * VD_ERR_LIMIT for n > VD_TEXT_MAX_TEXTS or a text over 64 KiB, the
 * resolve errors above, the tokenizer's (VD_ERR_MODEL, naming the file), the
 * runner's and the store's. All or nothing: on error no item holds a vector. */
vd_status vd_text_embed(const vd_text_opts *o, const char *const *texts, size_t n,
                        vd_text_item *items, int *dim, char *model_used, vd_error *err);

void vd_text_items_clear(vd_text_item *items, size_t n);

#endif
