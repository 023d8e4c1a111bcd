/* vindex_int.h: what the files of src/vindex/ share (not part of the contract). */
#ifndef VD_VINDEX_INT_H
#define VD_VINDEX_INT_H

#include <stddef.h>
#include <stdint.h>

#include "vindex/hnsw_shim.h"
#include "vindex/vindex.h"

/* id -> row, open addressing with linear probing (rows < UINT32_MAX). */
typedef struct {
    int64_t *keys;
    uint32_t *rows; /* UINT32_MAX: empty slot */
    size_t cap;     /* a power of two, or 0 */
    size_t used;
} vd_idmap;

struct vd_vindex {
    int dim;
    vd_vindex_kind kind;
    /* exact */
    float *mat;   /* n rows of dim floats */
    int64_t *ids; /* ids[row] */
    size_t n, cap;
    vd_idmap map;
    /* approximate */
    vd_hnsw *hnsw;
    size_t ef;
    int threads; /* vd_vindex_set_threads: 1 by default, 0 = one per online core */
};

/* HNSW parameters (docs/vindex.md: chosen with bench/search). */
#define VD_VINDEX_HNSW_M   16
#define VD_VINDEX_HNSW_EFC 200
/* A batch of fewer new vectors than this is inserted serially whatever the
 * thread setting (thread start-up would cost more than it saves). */
#define VD_VINDEX_PAR_MIN     256
#define VD_VINDEX_MAX_THREADS 64
/* Tombstones are compacted away when they pass this share (1/N) of the graph. */
#define VD_VINDEX_TOMB_SHARE 4
#define VD_VINDEX_TOMB_MIN   64

/* A bounded heap of the best hits (worst on top). */
typedef struct {
    vd_vindex_hit *h;
    size_t n, k;
} vd_topk;
void vd_topk_push(vd_topk *t, int64_t id, float score);
/* Sorts t->h[0..n) best first (ties: smaller id first). */
void vd_topk_sort(vd_topk *t);

/* exact kind (vindex_exact.c) */
vd_status vd_exact_reserve(vd_vindex *ix, size_t more, vd_error *err);
/* Adds or replaces one vector; capacity reserved before. */
vd_status vd_exact_put(vd_vindex *ix, int64_t id, const float *v, vd_error *err);
void vd_exact_remove(vd_vindex *ix, int64_t id);
int vd_exact_contains(const vd_vindex *ix, int64_t id);
void vd_exact_free(vd_vindex *ix);
vd_status vd_exact_search(const vd_vindex *ix, const float *q, size_t k,
                          int (*keep)(void *, int64_t), void *ud, vd_vindex_hit *hits, size_t *n,
                          vd_error *err);
/* Each vector's `per` nearest others with score >= min_score, as (a, b) with
 * a < b (unsorted, may repeat) appended to *out (len *n, capacity *cap). */
vd_status vd_exact_neighbours(const vd_vindex *ix, float min_score, size_t per,
                              vd_vindex_pair **out, size_t *n, size_t *cap, vd_error *err);

/* Appends one pair (a < b ordering done here) to a growing array. */
vd_status vd_pairs_push(vd_vindex_pair **out, size_t *n, size_t *cap, int64_t a, int64_t b,
                        float score, vd_error *err);

/* The checksum of a whole index file (its header's bytes 0..48 and its body),
 * as stored at bytes 48..56; 0 for a file shorter than the header. Exposed
 * for the fuzz harness, which repairs it to reach the body's checks. */
#define VD_VINDEX_FILE_SUM_OFFSET 48
uint64_t vd_vindex_file_checksum(const void *file, size_t len);

#endif
