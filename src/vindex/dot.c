/* dot.c: dot.h with GCC vector extensions, four accumulators of 8 floats. */
#include "vindex/dot.h"

#include <string.h>

typedef float v8f __attribute__((vector_size(32)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VD_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VD_MULTIVERSION
#endif

/* The 8 floats at p, unaligned (a macro: a function returning a vector type
 * would have a different ABI in each clone). */
#define LOAD8(p)                                                                                   \
    (__extension__({                                                                               \
        v8f v_;                                                                                    \
        memcpy(&v_, (p), sizeof v_);                                                               \
        v_;                                                                                        \
    }))

/* Four accumulators: a multiply-add waits for the previous one into the same
 * accumulator (4 cycles on current x86), so four chains keep both FMA units
 * of a core busy where one or two would leave them idle. */
static inline float dot1(const float *a, const float *b, size_t dim)
{
    v8f s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    size_t i = 0;
    for (; i + 32 <= dim; i += 32) {
        s0 += LOAD8(a + i) * LOAD8(b + i);
        s1 += LOAD8(a + i + 8) * LOAD8(b + i + 8);
        s2 += LOAD8(a + i + 16) * LOAD8(b + i + 16);
        s3 += LOAD8(a + i + 24) * LOAD8(b + i + 24);
    }
    for (; i + 8 <= dim; i += 8)
        s0 += LOAD8(a + i) * LOAD8(b + i);
    s0 += s1;
    s2 += s3;
    s0 += s2;
    float s = 0;
    for (int j = 0; j < 8; j++)
        s += s0[j];
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

VD_MULTIVERSION
float vd_dot(const float *a, const float *b, size_t dim)
{
    return dot1(a, b, dim);
}

VD_MULTIVERSION
void vd_dots(const float *mat, size_t rows, size_t dim, const float *q, float *out)
{
    for (size_t r = 0; r < rows; r++)
        out[r] = dot1(mat + r * dim, q, dim);
}

VD_MULTIVERSION
void vd_dots_block(const float *mat, size_t rows, size_t dim, const float *qs, size_t nq,
                   float *out)
{
    for (size_t r = 0; r < rows; r++) {
        const float *row = mat + r * dim;
        for (size_t j = 0; j < nq; j++)
            out[j * rows + r] = dot1(row, qs + j * dim, dim);
    }
}
