/* hnsw_shim.h: the C face of hnswlib's HierarchicalNSW (header-only C++,
 * Debian libhnswlib-dev 0.6.2), inner-product space, labels = our int64 ids.
 * Internal to src/vindex/; implemented in hnsw_shim.cpp, which catches every
 * C++ exception. Returns 0 on success, -1 out of memory, -2 another failure
 * (the message, when msg is non-NULL, goes to msg[0..256)). */
#ifndef VD_HNSW_SHIM_H
#define VD_HNSW_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vd_hnsw vd_hnsw;

int vd_hnsw_new(int dim, size_t capacity, size_t m, size_t ef_construction, size_t ef,
                vd_hnsw **out, char *msg);
void vd_hnsw_free(vd_hnsw *h);
void vd_hnsw_set_ef(vd_hnsw *h, size_t ef);
/* Makes room for `more` new vectors (the graph grows by at least half). */
int vd_hnsw_reserve(vd_hnsw *h, size_t more, char *msg);
/* Adds a vector, or replaces the one of label (reviving a removed one). */
int vd_hnsw_add(vd_hnsw *h, int64_t label, const float *v, char *msg);
/* Whether label has a slot (live or removed). */
int vd_hnsw_known(const vd_hnsw *h, int64_t label);
/* Adds n vectors with `threads` threads (started and joined inside this call;
 * the calling thread is one of them): item j is labels[r], vecs[r*dim..] with
 * r = rows ? rows[j] : j. Every label must be new to the graph (no slot, see
 * vd_hnsw_known) and appear once: hnswlib's concurrent insert (a lock per
 * node, as its Python bindings' ParallelFor) is safe only for those. The
 * graph's shape depends on the threads' interleaving: not reproducible run to
 * run unless threads is 1. On failure, part of the items may be in. */
int vd_hnsw_add_parallel(vd_hnsw *h, size_t n, const int64_t *labels, const float *vecs,
                         const size_t *rows, int threads, char *msg);
/* A new graph of old's live vectors (same parameters), built with `threads`
 * threads: the tombstones dropped. old is unchanged. */
int vd_hnsw_rebuild(const vd_hnsw *old, int threads, vd_hnsw **out, char *msg);
/* Marks label removed; 1 when it was not there (live). */
int vd_hnsw_remove(vd_hnsw *h, int64_t label);
int vd_hnsw_contains(const vd_hnsw *h, int64_t label);
size_t vd_hnsw_live(const vd_hnsw *h);
size_t vd_hnsw_deleted(const vd_hnsw *h);
/* Nearest min(k, live) by inner product, best first: labels[i], score[i] = <q, v>. */
int vd_hnsw_search(const vd_hnsw *h, const float *q, size_t k, int64_t *labels, float *scores,
                   size_t *n, char *msg);
/* Slots 0..vd_hnsw_slots(): *label and *vec of slot i; returns 1 when live, 0 when removed. */
size_t vd_hnsw_slots(const vd_hnsw *h);
int vd_hnsw_slot(const vd_hnsw *h, size_t i, int64_t *label, const float **vec);

/* The graph (links of every slot, levels, entry point) as bytes, for
 * vindex's file body; the vectors and labels are written by the caller from
 * vd_hnsw_slot. graph_size gives the length first. */
size_t vd_hnsw_graph_size(const vd_hnsw *h);
void vd_hnsw_graph_write(const vd_hnsw *h, unsigned char *out);
/* Rebuilds an index from slots (labels[i], vecs[i*dim], live[i]) and a graph
 * written by vd_hnsw_graph_write, checking every count and link: -2 when the
 * graph is inconsistent. */
int vd_hnsw_from_graph(int dim, size_t m, size_t ef_construction, size_t ef, size_t nslots,
                       const int64_t *labels, const float *vecs, const unsigned char *live,
                       const unsigned char *graph, size_t graph_len, vd_hnsw **out, char *msg);

#ifdef __cplusplus
}
#endif

#endif
