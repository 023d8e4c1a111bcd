/* library_index.h: the index owner: the library's vector indexes, kept in
 * the API process (docs/search.md).
 *
 * One vd_vindex (vindex/vindex.h) per image model (asset vectors, id = asset
 * id) and per face model (face vectors, id = face id), filled from the store
 * (store/library.h), which stays the truth:
 *   - at start, each index is loaded from its file DIR/image-MODEL.vindex or
 *     DIR/face-MODEL.vindex when that file is intact, else rebuilt from the
 *     store; then it catches up with what the store has after the file's
 *     sequence number;
 *   - a background thread catches up every poll_ms (one cheap read of the
 *     store's highest seq when nothing changed), at once after
 *     vd_libindex_poke, applying vectors and removals in seq order (a
 *     deleted asset or a replaced face leaves the index when its removal is
 *     seen; a replaced vector replaces);
 *   - each index is saved (vd_vindex_save with its seq) every persist_ms when
 *     it changed, and on vd_libindex_stop. A save holds the read lock only,
 *     so searches go on; a kill -9 loses nothing: the next start loads the
 *     last file and catches up from its seq.
 * The kind of each index follows vd_vindex_kind_for: when its count crosses
 * the policy, a new index of the other kind is built from the store (outside
 * the lock) and swapped in.
 * Models tracked: the configured ones, every one with a file in DIR, and any
 * model a search asks for that has vectors in the store (built on that first
 * request).
 *
 * Several API processes each keep their own copy; they agree because they
 * all follow the same store.
 *
 * Threads: every function is thread-safe. Searches and pairs take a read
 * lock (many at once); catch-up steps take the write lock only to apply what
 * they read (the store reads happen before, without it).
 * The owner never forks and must not be used across fork(). */
#ifndef VD_SERVICE_LIBRARY_INDEX_H
#define VD_SERVICE_LIBRARY_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/err.h"
#include "store/store.h"
#include "vindex/vindex.h"

#define VD_LIBINDEX_MAX_MODELS    16  /* indexes one owner keeps (image + face) */
#define VD_LIBINDEX_POLL_MS       300 /* default background catch-up period */
#define VD_LIBINDEX_PERSIST_MS    30000
#define VD_LIBINDEX_MAX_MODEL_LEN 63
#define VD_LIBINDEX_FILE_SUFFIX   ".vindex"

typedef enum { VD_LIBINDEX_IMAGE = 0, VD_LIBINDEX_FACE = 1 } vd_libindex_space;

typedef struct vd_libindex vd_libindex;

typedef struct {
    const char *store_url;           /* the store to follow (its own handle is opened) */
    const char *dir;                 /* where the index files live (created) */
    const char *const *image_models; /* tracked from the start (may be NULL) */
    size_t n_image_models;
    const char *const *face_models;
    size_t n_face_models;
    int poll_ms;    /* 0 = VD_LIBINDEX_POLL_MS; < 0: no background thread
                       (tests call vd_libindex_catch_up themselves) */
    int persist_ms; /* 0 = VD_LIBINDEX_PERSIST_MS */
    int read_only;  /* never save (a CLI reading the API's files) */
} vd_libindex_config;

/* Called after a catch-up step that added face vectors to face_model's
 * index, with the write lock released and the owner's catch-up paused (no
 * other step runs meanwhile; searches may): face_index is that index, which
 * the callback may read but must not change or keep; new_face_ids are the
 * faces added in the step. For incremental people clustering. */
typedef void (*vd_libindex_faces_cb)(void *ud, vd_vindex *face_index, const char *face_model,
                                     const int64_t *new_face_ids, size_t n);

/* Counters of one index (for logs, /metrics and tests). */
typedef struct {
    char model[VD_LIBINDEX_MAX_MODEL_LEN + 1];
    vd_libindex_space space;
    int dim; /* 0 while empty */
    vd_vindex_kind kind;
    size_t count;              /* live vectors */
    int64_t seq;               /* the store position it reflects */
    uint64_t loaded_from_file; /* vectors read from its file at start */
    uint64_t caught_up;        /* vectors added from the store since start */
    uint64_t removed;          /* removals applied since start */
    uint64_t saves;            /* files written */
    uint64_t rebuilds;         /* kind changes */
} vd_libindex_stats;

/* Starts the owner. With poll_ms >= 0 the background thread does the first
 * step (opens the store, loads or rebuilds every tracked index, catches up),
 * retrying while the store is down, so a store that is down does not hold
 * the caller; a search before then builds its model's index itself. With
 * poll_ms < 0 that first step runs here and its failure is returned. Fails
 * when dir cannot be created; an unreadable index file is rebuilt (logged),
 * not an error. The model names of cfg must outlive the owner. */
vd_status vd_libindex_start(const vd_libindex_config *cfg, vd_libindex **out, vd_error *err);

/* Stops the thread, saves every changed index, frees everything. NULL is fine. */
void vd_libindex_stop(vd_libindex *li);

/* Asks the background thread to catch up now (after the API registered or
 * deleted assets). Cheap, never blocks. */
void vd_libindex_poke(vd_libindex *li);

/* One catch-up step of every index, on the calling thread (the background
 * thread's work; tests call it). *added (may be NULL) counts vectors added. */
vd_status vd_libindex_catch_up(vd_libindex *li, size_t *added, vd_error *err);

/* Saves every index that changed since its last save. */
vd_status vd_libindex_persist(vd_libindex *li, vd_error *err);

/* Sets the faces hook (NULL clears it). */
void vd_libindex_set_faces_cb(vd_libindex *li, vd_libindex_faces_cb cb, void *ud);

/* Searches model's index of space: as vd_vindex_search under the read lock.
 * The model is tracked from now on when the store has vectors of it (its
 * index built first); VD_ERR_NOT_FOUND when it has none ("no index for
 * model"). *dim (may be NULL) gets the index's dimension. A query of
 * another dimension is VD_ERR_INVALID (vd_vindex_check's message). */
vd_status vd_libindex_search(vd_libindex *li, vd_libindex_space space, const char *model,
                             const float *query, size_t k, int (*keep)(void *ud, int64_t id),
                             void *ud, vd_vindex_hit *hits, size_t *n, vd_error *err);

/* The dimension of model's index (VD_ERR_NOT_FOUND as above). */
vd_status vd_libindex_dim(vd_libindex *li, vd_libindex_space space, const char *model, int *dim,
                          vd_error *err);

/* vd_vindex_pairs of model's index under the read lock (NOT_FOUND as above). */
vd_status vd_libindex_pairs(vd_libindex *li, vd_libindex_space space, const char *model,
                            float min_score, size_t per_vector, vd_vindex_pair **pairs, size_t *n,
                            vd_error *err);

/* Copies the counters of up to max indexes into out; returns how many there are. */
size_t vd_libindex_stats_get(vd_libindex *li, vd_libindex_stats *out, size_t max);

/* Writes the counters in Prometheus text format (docs/api.md, GET /metrics):
 * visiond_library_index_vectors{space,model} (gauge),
 * visiond_library_index_seq{space,model} (gauge),
 * visiond_library_index_loaded_from_file{space,model} (gauge: at start),
 * visiond_library_index_caught_up_total, _removed_total, _saves_total,
 * _rebuilds_total{space,model} (counters). */
void vd_libindex_write_prometheus(vd_libindex *li, FILE *f);

/* Writes the index file path of (space, model) under dir into buf. VD_ERR_INVALID
 * for a model name that is not [A-Za-z0-9_.+-]{1,63} (it becomes a file name). */
vd_status vd_libindex_file(const char *dir, vd_libindex_space space, const char *model, char *buf,
                           size_t n, vd_error *err);

#endif
