/* vindex.h: an in-memory index of embedding vectors by 64-bit id, searched by
 * cosine similarity (the inner product of L2-normalised vectors), exact or
 * approximate, saved to and loaded from one file. docs/vindex.md.
 *
 * Two kinds behind one contract:
 *  - VD_VINDEX_EXACT: the vectors in one contiguous float matrix, an id array
 *    and an id -> row map; a search scores every row (a tight SIMD loop, no
 *    BLAS: see docs/vindex.md) and keeps the best k with a heap. Removal swaps
 *    the last row into the hole.
 *  - VD_VINDEX_APPROX: an HNSW graph (hnswlib, through src/vindex/hnsw_shim.cpp);
 *    a removed id is a tombstone that no search returns, and the graph is
 *    rebuilt from its live vectors when tombstones pass a quarter of it.
 * vd_vindex_kind_for says which kind to use for a size (the crossover measured
 * by bench/search, docs/benchmarks.md).
 *
 * Threads: a vd_vindex is not thread-safe; callers lock (one writer or many
 * readers: search, pairs, count and save only read). The module links no BLAS
 * or OpenMP runtime and starts no thread, except inside a vd_vindex_add (or
 * the compaction of a vd_vindex_remove, or a vd_vindex_convert) of an
 * approximate index whose vd_vindex_set_threads is not 1: those threads are
 * started and joined within the call. A process that never asks for threads
 * (the forking worker supervisor) never has one of ours.
 *
 * Errors: bad arguments and malformed vectors are VD_ERR_INVALID; a file that
 * is not a complete, intact index file is VD_ERR_INVALID too (the project's
 * code for malformed input: the caller rebuilds from the store); a missing
 * file is VD_ERR_NOT_FOUND; other file errors VD_ERR_IO; allocation
 * VD_ERR_NOMEM. On error nothing was changed, except that an allocation
 * failure in the middle of an approximate add may leave part of the batch in. */
#ifndef VD_VINDEX_H
#define VD_VINDEX_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* not thread-safe: callers lock (one writer or many readers) */
typedef struct vd_vindex vd_vindex;
typedef enum { VD_VINDEX_EXACT = 0, VD_VINDEX_APPROX = 1 } vd_vindex_kind;
/* score = cosine similarity (inner product of L2-normalised vectors) */
typedef struct {
    int64_t id;
    float score;
} vd_vindex_hit;

/* Largest k of vd_vindex_search, and largest dimension of an index. */
#define VD_VINDEX_MAX_K   1000
#define VD_VINDEX_MAX_DIM 65536

/* A new, empty index of dim (1..VD_VINDEX_MAX_DIM) floats per vector. */
vd_status vd_vindex_new(int dim, vd_vindex_kind kind, vd_vindex **out, vd_error *err);
void vd_vindex_free(vd_vindex *ix);
int vd_vindex_dim(const vd_vindex *ix);
vd_vindex_kind vd_vindex_kind_of(const vd_vindex *ix);
/* live vectors */
size_t vd_vindex_count(const vd_vindex *ix);
/* Whether id is in the index (live). */
int vd_vindex_contains(const vd_vindex *ix, int64_t id);

/* The one check of a vector handed to the index (by add, search, or an API
 * validating a query first): nfloats must equal the index's dim, every value
 * finite, the vector not zero. VD_ERR_INVALID with the reason otherwise. */
vd_status vd_vindex_check(const vd_vindex *ix, const float *vec, size_t nfloats, vd_error *err);
/* The approximate kind's search breadth (HNSW efSearch; default
 * VD_VINDEX_DEFAULT_EF, docs/vindex.md): larger finds more of the exact top k
 * and costs more per search. The exact kind ignores it. A writer's call. */
#define VD_VINDEX_DEFAULT_EF 200
void vd_vindex_set_ef(vd_vindex *ix, size_t ef);

/* The threads the approximate kind's graph inserts use: an add of at least
 * VD_VINDEX_PAR_MIN (256) new ids, and the rebuild that drops tombstones, are
 * spread over them (hnswlib's concurrent insert). 1 (the default): serial and
 * reproducible, the same input giving the same graph; 0: one per online core;
 * capped at 64. A parallel build finds the same vectors (recall within noise
 * of a serial build) but its graph differs run to run. A writer's call; the
 * exact kind keeps it but ignores it. */
void vd_vindex_set_threads(vd_vindex *ix, int threads);

/* L2-normalises v[0..dim) in place; VD_ERR_INVALID (v unchanged) when a value
 * is not finite or the vector is zero. */
vd_status vd_vindex_normalize(float *v, int dim, vd_error *err);

/* Adds n vectors (n*dim floats, L2-normalised by the caller; NaN/Inf or a zero
 * vector is VD_ERR_INVALID and nothing is added); an id already present is
 * replaced (within one call, the last vector of an id wins). */
vd_status vd_vindex_add(vd_vindex *ix, size_t n, const int64_t *ids, const float *vecs,
                        vd_error *err);
/* unknown id: VD_OK, no-op */
vd_status vd_vindex_remove(vd_vindex *ix, int64_t id, vd_error *err);

/* Best k hits, best first (ties: smaller id first), into hits[0..*n); keep (may
 * be NULL) filters ids (a filtered-out id never counts toward k: the index is
 * asked for more until k are kept or it is exhausted). k == 0 or
 * k > VD_VINDEX_MAX_K: VD_ERR_INVALID. The query is checked as by
 * vd_vindex_check (dim floats) and should be L2-normalised. */
vd_status vd_vindex_search(const vd_vindex *ix, const float *query, size_t k,
                           int (*keep)(void *ud, int64_t id), void *ud, vd_vindex_hit *hits,
                           size_t *n, vd_error *err);

/* Every pair (a, b), a < b, with similarity >= min_score, for duplicates and
 * clustering: the neighbours of each vector among its nearest `per_vector`
 * (Immich uses 64; 1..VD_VINDEX_MAX_K). Sorted by (a, b), each pair once.
 * Caller frees *pairs with free() (NULL when *n is 0). */
typedef struct {
    int64_t a, b;
    float score;
} vd_vindex_pair;
vd_status vd_vindex_pairs(const vd_vindex *ix, float min_score, size_t per_vector,
                          vd_vindex_pair **pairs, size_t *n, vd_error *err);

/* A new index of kind with src's live vectors and ids, its ef and threads
 * (the approximate kind's graph built with src's thread setting): the index
 * owner builds a large index exact from the store (cheap, in seq order) and
 * converts it once, in parallel. src is unchanged. */
vd_status vd_vindex_convert(const vd_vindex *src, vd_vindex_kind kind, vd_vindex **out,
                            vd_error *err);

/* Persistence: atomic write (temp file, fsync, rename, fsync dir) with a
 * caller's 64-bit sequence number (the store position the index reflects);
 * load checks magic, version, dim, sizes and a checksum: a truncated or
 * corrupt file is VD_ERR_INVALID and the caller rebuilds from the store. The
 * loaded index has the kind it was saved with. Format: docs/vindex.md. */
vd_status vd_vindex_save(const vd_vindex *ix, const char *path, uint64_t seq, vd_error *err);
vd_status vd_vindex_load(const char *path, vd_vindex **out, uint64_t *seq, vd_error *err);
/* vd_vindex_load from a buffer (the fuzz harness and tests). */
vd_status vd_vindex_load_buffer(const void *buf, size_t len, vd_vindex **out, uint64_t *seq,
                                vd_error *err);

/* The policy, from the benchmark (docs/vindex.md): which kind to use for n
 * vectors of dim. */
vd_vindex_kind vd_vindex_kind_for(size_t n, int dim);

#endif
