/* dot.h: the inner products every kind of index scores with (exact search
 * and the HNSW graph's distance), compiled twice: for x86-64-v3 (AVX2 + FMA)
 * and for the baseline, the CPU choosing at load (GCC target_clones). Plain C,
 * no BLAS (docs/vindex.md). Cost: dim multiply-adds per pair, 8 or 16 at a
 * time. */
#ifndef VD_VINDEX_DOT_H
#define VD_VINDEX_DOT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* <a, b> over dim floats. */
float vd_dot(const float *a, const float *b, size_t dim);
/* out[r] = <mat[r], q> for r in [0, rows). */
void vd_dots(const float *mat, size_t rows, size_t dim, const float *q, float *out);
/* out[j * rows + r] = <mat[r], qs[j]> for j < nq (nq <= 16): each row is read
 * once for nq queries. */
void vd_dots_block(const float *mat, size_t rows, size_t dim, const float *qs, size_t nq,
                   float *out);

#ifdef __cplusplus
}
#endif

#endif
