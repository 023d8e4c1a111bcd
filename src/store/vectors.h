/* vectors.h: the embedding and face caches in the store (store/store.h).
 *
 * Embeddings are keyed by (sha256, model): the SHA-256 (lowercase hex) of
 * the image file's bytes and the name of the model that embedded it, so the
 * same picture under another path, or a retried job, is not embedded twice.
 * A vector is stored as a BLOB of dim little-endian float32.
 *
 * Faces are cached the same way: for (sha256, model) the list of faces found
 * (possibly empty: "this image has no face" is cached too), each with its box
 * (x, y, w, h in pixels of the original image), detection score, keypoints
 * and, when computed, its identity vector.
 *
 * Puts replace; batched puts run in one transaction (all or nothing). */
#ifndef VD_STORE_VECTORS_H
#define VD_STORE_VECTORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"

#define VD_FACE_MAX_KEYPOINTS 32

/* One cached embedding. vector is owned (freed by vd_embedding_clear). */
typedef struct {
    int found; /* 0 when the cache has no entry; then vector is NULL */
    int dim;
    float *vector; /* owned */
} vd_embedding;

/* One face. vector is owned (freed by vd_stored_face_clear), NULL when not computed. */
typedef struct {
    float box[4]; /* x, y, w, h */
    float score;
    int n_keypoints;
    float keypoints[VD_FACE_MAX_KEYPOINTS][2];
    int dim;
    float *vector;
} vd_stored_face;

void vd_embedding_clear(vd_embedding *e);
/* Frees an array of n embeddings (from vd_store_embeddings_get). */
void vd_embedding_list_free(vd_embedding *list, size_t n);
void vd_stored_face_clear(vd_stored_face *f);
/* Frees an array of n faces (from vd_store_faces_get). */
void vd_stored_face_list_free(vd_stored_face *list, size_t n);

/* Stores one embedding (replacing). VD_ERR_INVALID for a bad sha256 (not 64
 * lowercase hex), an empty model, a NULL vector or dim <= 0: an empty vector
 * is never stored. */
vd_status vd_store_embedding_put(vd_store *s, const char *sha256, const char *model,
                                 const float *vector, int dim, vd_error *err);

/* Stores n embeddings of one model and dimension in one transaction:
 * vectors[i] belongs to sha256s[i]. */
vd_status vd_store_embeddings_put(vd_store *s, const char *model, size_t n,
                                  const char *const *sha256s, const float *const *vectors, int dim,
                                  vd_error *err);

/* Looks up n keys of one model in one read transaction. *out is a malloc'd
 * array of n entries (entry i for sha256s[i], found = 0 when missing), freed
 * with vd_embedding_list_free. *nfound (may be NULL) counts the hits. With
 * dim > 0, an entry of another length is not returned (found = 0: it came
 * from another version of the model); dim 0 takes any. A returned vector
 * always has dim > 0 floats (an entry whose BLOB does not is VD_ERR_DB). */
vd_status vd_store_embeddings_get(vd_store *s, const char *model, int dim, size_t n,
                                  const char *const *sha256s, vd_embedding **out, size_t *nfound,
                                  vd_error *err);

/* Replaces the cached faces of (sha256, model) with faces[0..n) (n may be 0:
 * "no faces"), in one transaction. */
vd_status vd_store_faces_put(vd_store *s, const char *sha256, const char *model,
                             const vd_stored_face *faces, size_t n, vd_error *err);

/* Reads the cached faces of (sha256, model), in the order they were put.
 * *out is a malloc'd array (NULL when n is 0) freed with vd_stored_face_list_free.
 * VD_ERR_NOT_FOUND when nothing is cached (which differs from "no faces"). */
vd_status vd_store_faces_get(vd_store *s, const char *sha256, const char *model,
                             vd_stored_face **out, size_t *n, vd_error *err);

/* Returns 1 when s is 64 lowercase hex characters. */
int vd_sha256_hex_valid(const char *s);

#endif
