/* library.h: the photo library in the store (store/store.h, schema v3;
 * docs/library.md): assets, their image vectors, the faces found in them,
 * and people (groups of faces).
 *
 * Assets. An asset is one image, keyed by the SHA-256 of its bytes: the
 * same bytes registered twice (under another path too) are one asset, and
 * registering them again adds nothing. Ids are assigned in increasing order
 * and never reused. An asset is 'pending' until the index job stores its
 * vector and faces ('indexed'), or 'error' with the per-file message. A
 * deleted asset is kept as a tombstone (its row, with deleted = 1) so that
 * its id is never reused; its vectors and faces are removed, its faces leave
 * their people, and registering the same bytes again brings it back as
 * 'pending' (to be indexed again).
 *
 * Vectors and faces for the index owners. Every write of a vector or a face
 * (insert or replace) takes the next value of one store-wide counter, its
 * seq; so does every removal (an asset deleted, a face replaced), recorded
 * in the removals log. A reader that keeps the highest seq it has seen asks
 * for what came after it (vd_store_asset_vectors_since,
 * vd_store_library_faces_since, vd_store_library_removed_since) and never
 * misses a row: the counter is a row of the store taken in the writer's
 * transaction, so writers take their numbers one transaction after another,
 * and a seq becomes visible only after every smaller one is (committed or
 * rolled back). Vectors are stored L2-normalised (the put normalises; a
 * vector with NaN, infinity or norm 0 is VD_ERR_INVALID) as little-endian
 * float32.
 *
 * People. A person is a row (name NULL until named, hidden, a cover face);
 * a face belongs to at most one person, assigned 'auto' (by clustering) or
 * 'user' (by a person's hand: a clustering must not undo it). These are the
 * row operations only; clustering lives above (service/).
 *
 * Errors: VD_ERR_INVALID for a bad argument (named in err), VD_ERR_NOT_FOUND
 * for an unknown (or deleted) asset, face or person, else the store's
 * (store_db.h). Every write is atomic on its own (a transaction of its own
 * unless the caller holds one with vd_store_begin). Owned strings and arrays
 * of the results are freed with the matching *_clear / *_free. */
#ifndef VD_STORE_LIBRARY_H
#define VD_STORE_LIBRARY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "store/store.h"
#include "store/vectors.h"

#define VD_LIBRARY_LIST_MAX 1000 /* most rows one list or "since" call returns */

typedef enum {
    VD_ASSET_PENDING = 0,
    VD_ASSET_INDEXED,
    VD_ASSET_ERROR,
    VD_ASSET__NSTATES
} vd_asset_state;

/* Who put a face into its person. */
typedef enum { VD_ASSIGN_NONE = 0, VD_ASSIGN_AUTO, VD_ASSIGN_USER } vd_assign_by;

/* "pending", "indexed", "error"; and back (-1: not a state). */
const char *vd_asset_state_name(vd_asset_state st);
int vd_asset_state_parse(const char *name);
/* NULL, "auto", "user"; and back ("" or NULL: NONE; -1: neither). */
const char *vd_assign_by_name(vd_assign_by by);
int vd_assign_by_parse(const char *name);

/* One asset as stored. Owned fields are freed by vd_asset_clear. */
typedef struct {
    int64_t id;
    char sha256[65];
    char *path;        /* owned: as registered (a media path or "blob:SHA/NAME") */
    char *folder;      /* owned: its parent directory ("" for an upload) */
    int width, height; /* pixels of the original, 0 until indexed */
    vd_asset_state state;
    char *error; /* owned: the per-file message when state is error, else NULL */
    int64_t created_ms;
    int64_t indexed_ms; /* 0 until indexed */
    int deleted;
    int64_t deleted_ms; /* 0 unless deleted */
} vd_asset;

void vd_asset_clear(vd_asset *a);
void vd_asset_list_free(vd_asset *list, size_t n);

/* Registers the image whose bytes hash to sha256 (64 lowercase hex), found at
 * path (non-empty) in folder (may be ""). *id gets the asset's id; *existed
 * (may be NULL) is 1 when a live asset had these bytes already (then nothing
 * changes: its first path stays), 0 when it is new or was deleted and is back
 * (then as 'pending', at this path). *state (may be NULL) gets its state. */
vd_status vd_store_asset_register(vd_store *s, const char *sha256, const char *path,
                                  const char *folder, int64_t *id, int *existed,
                                  vd_asset_state *state, vd_error *err);

/* Reads asset id into *out (cleared first). with_deleted = 0: a deleted
 * asset is VD_ERR_NOT_FOUND like an unknown one. */
vd_status vd_store_asset_get(vd_store *s, int64_t id, int with_deleted, vd_asset *out,
                             vd_error *err);

/* Which assets vd_store_asset_list returns: live ones with id > after_id, in
 * id order, at most limit (1..VD_LIBRARY_LIST_MAX; 0 = 100). folder (NULL or
 * "" or "/": any) keeps the assets in that folder or below it ("/a/b" and
 * "/a/b/" keep "/a/b" and "/a/b/c", not "/a/bc"); state < 0: any. */
typedef struct {
    int64_t after_id;
    int limit;
    const char *folder;
    int state;
} vd_asset_filter;

/* Lists assets (see vd_asset_filter) into *out (malloc'd, NULL when n is 0). */
vd_status vd_store_asset_list(vd_store *s, const vd_asset_filter *f, vd_asset **out, size_t *n,
                              vd_error *err);

/* Counts live assets by state: counts[VD_ASSET_PENDING..ERROR]. */
vd_status vd_store_asset_count(vd_store *s, int64_t counts[VD_ASSET__NSTATES], vd_error *err);

/* Soft-deletes asset id: removes its vectors and faces (logged as removals),
 * takes its faces out of their people (and as covers). VD_ERR_NOT_FOUND when
 * unknown or already deleted. */
vd_status vd_store_asset_delete(vd_store *s, int64_t id, vd_error *err);

/* Sets the state of a live asset: indexed (with its size, and the time),
 * error (error: the message, required), pending. VD_ERR_NOT_FOUND when
 * unknown or deleted. */
vd_status vd_store_asset_set_state(vd_store *s, int64_t id, vd_asset_state state, const char *error,
                                   int width, int height, vd_error *err);

/* Puts the vector of asset id for model (replacing one there), normalised;
 * *seq (may be NULL) gets its seq. VD_ERR_NOT_FOUND for an unknown or deleted
 * asset. */
vd_status vd_store_asset_vector_put(vd_store *s, int64_t id, const char *model, const float *vector,
                                    int dim, int64_t *seq, vd_error *err);

/* One vector read back. */
typedef struct {
    int64_t asset_id;
    int64_t seq;
    int dim;
    float *vector; /* owned */
} vd_asset_vector;

void vd_asset_vector_list_free(vd_asset_vector *list, size_t n);

/* The vectors of model with seq > after_seq of live assets, in seq order, at
 * most limit (1..VD_LIBRARY_LIST_MAX; 0 = VD_LIBRARY_LIST_MAX). */
vd_status vd_store_asset_vectors_since(vd_store *s, const char *model, int64_t after_seq, int limit,
                                       vd_asset_vector **out, size_t *n, vd_error *err);

/* Reads the vector of asset id for model (VD_ERR_NOT_FOUND when none). */
vd_status vd_store_asset_vector_get(vd_store *s, int64_t id, const char *model,
                                    vd_asset_vector *out, vd_error *err);

/* The highest seq given so far (0 on a new store). */
vd_status vd_store_library_max_seq(vd_store *s, int64_t *seq, vd_error *err);

/* One removal: an asset deleted (all its vectors and faces) or one face
 * removed (its asset's faces were replaced, or the asset deleted). */
typedef enum { VD_REMOVED_ASSET = 0, VD_REMOVED_FACE } vd_removed_kind;
typedef struct {
    int64_t seq;
    vd_removed_kind kind;
    int64_t id; /* the asset's or the face's */
} vd_library_removal;

/* Removals with seq > after_seq, in seq order, at most limit (as above);
 * *out is malloc'd (free()). */
vd_status vd_store_library_removed_since(vd_store *s, int64_t after_seq, int limit,
                                         vd_library_removal **out, size_t *n, vd_error *err);

/* One face of the library. */
typedef struct {
    int64_t id;
    int64_t asset_id;
    int64_t seq;
    float box[4]; /* x, y, w, h in pixels of the original image */
    float score;
    int n_keypoints;
    float keypoints[VD_FACE_MAX_KEYPOINTS][2];
    int dim;
    float *vector;     /* owned; NULL when the face has none */
    int64_t person_id; /* 0: unassigned */
    vd_assign_by assigned_by;
    int64_t created_ms;
} vd_library_face;

void vd_library_face_list_free(vd_library_face *list, size_t n);

/* Replaces the faces of asset id for model (face_model) with faces[0..n) (n
 * may be 0), in one transaction: the old ones are removed (logged), the new
 * ones get new ids and seqs (unassigned). *ids (may be NULL) gets a malloc'd
 * array of the n new ids. A face's vector (when there) must be finite and
 * not zero. VD_ERR_NOT_FOUND for an unknown or deleted asset. */
vd_status vd_store_asset_faces_put(vd_store *s, int64_t id, const char *model,
                                   const vd_stored_face *faces, size_t n, int64_t **ids,
                                   vd_error *err);

/* The faces of model with seq > after_seq (live assets), in seq order, at
 * most limit (as above). */
vd_status vd_store_library_faces_since(vd_store *s, const char *model, int64_t after_seq, int limit,
                                       vd_library_face **out, size_t *n, vd_error *err);

/* The faces of asset id (any model when model is NULL), in id order, with
 * their vectors when with_vectors. An asset without faces gives n = 0. */
vd_status vd_store_asset_faces(vd_store *s, int64_t id, const char *model, int with_vectors,
                               vd_library_face **out, size_t *n, vd_error *err);

/* Reads face id (with its vector) into *out. */
vd_status vd_store_library_face_get(vd_store *s, int64_t id, vd_library_face *out, vd_error *err);

/* The faces of person id, with face id > after_id, in id order, at most limit. */
vd_status vd_store_person_faces(vd_store *s, int64_t person_id, int64_t after_id, int limit,
                                int with_vectors, vd_library_face **out, size_t *n, vd_error *err);

/* One person. name is owned (NULL until named). */
typedef struct {
    int64_t id;
    char *name;
    int hidden;
    int64_t cover_face_id; /* 0: none */
    int64_t n_faces;       /* faces assigned to it (in lists and get) */
    int64_t created_ms, updated_ms;
} vd_person;

void vd_person_clear(vd_person *p);
void vd_person_list_free(vd_person *list, size_t n);

/* Creates a person (name may be NULL) and writes its id. */
vd_status vd_store_person_create(vd_store *s, const char *name, int64_t *id, vd_error *err);

/* Reads person id with its face count. */
vd_status vd_store_person_get(vd_store *s, int64_t id, vd_person *out, vd_error *err);

/* People with id > after_id, in id order, at most limit (1..VD_LIBRARY_LIST_MAX;
 * 0 = 100), hidden ones only when with_hidden, each with its face count. */
vd_status vd_store_person_list(vd_store *s, int64_t after_id, int limit, int with_hidden,
                               vd_person **out, size_t *n, vd_error *err);

/* Changes a person: its name when set_name (name NULL or "" clears it),
 * hidden when hidden >= 0, its cover when cover_face_id >= 0 (0 clears; a
 * face of another person is VD_ERR_INVALID). */
typedef struct {
    int set_name;
    const char *name;
    int hidden;            /* -1: keep */
    int64_t cover_face_id; /* -1: keep */
} vd_person_update;

vd_status vd_store_person_update(vd_store *s, int64_t id, const vd_person_update *u, vd_error *err);

/* Puts face face_id into person person_id (0: takes it out of its person),
 * assigned by `by` (NONE only with person 0). A face leaving a person that
 * had it as cover leaves the cover empty. */
vd_status vd_store_face_set_person(vd_store *s, int64_t face_id, int64_t person_id, vd_assign_by by,
                                   vd_error *err);

/* Moves every face of person from_id into into_id (assigned by `by`: AUTO or
 * USER), gives into from's name and cover where into has none, and deletes
 * from_id. VD_ERR_INVALID when
 * they are the same person. */
vd_status vd_store_person_merge(vd_store *s, int64_t into_id, int64_t from_id, vd_assign_by by,
                                vd_error *err);

/* Deletes person id; its faces become unassigned. */
vd_status vd_store_person_delete(vd_store *s, int64_t id, vd_error *err);

#endif
