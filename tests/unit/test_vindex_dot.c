/* test_vindex_dot.c: vindex/dot.h, the inner products of exact search and of
 * the HNSW graph's distance: every length from 0 to 100 (each path of the
 * loop: blocks of 32, of 8, and the scalar tail) and the shipped dimensions
 * agree with a double-precision sum; unaligned inputs give the same; the
 * batched forms agree with vd_dot. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vdtest.h"
#include "vindex/dot.h"

static float rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) / (double)(1ULL << 53)) * 2.0f - 1.0f;
}

static double ref_dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* |x - ref| within float rounding over n terms of magnitude <= 1 */
static int close_to(float x, double ref, size_t n)
{
    return fabs((double)x - ref) <= 1e-6 * (double)(n + 1) * 4;
}

VD_TEST(dot_matches_a_double_sum_for_every_length)
{
    uint64_t s = 7;
    static const size_t shipped[] = {192, 512, 768, 1024, 1792};
    float *a = malloc(2048 * sizeof *a), *b = malloc(2048 * sizeof *b);
    for (size_t i = 0; i < 2048; i++) {
        a[i] = rnd(&s);
        b[i] = rnd(&s);
    }
    for (size_t n = 0; n <= 100; n++)
        CHECK(close_to(vd_dot(a, b, n), ref_dot(a, b, n), n));
    for (size_t k = 0; k < sizeof shipped / sizeof *shipped; k++)
        CHECK(close_to(vd_dot(a, b, shipped[k]), ref_dot(a, b, shipped[k]), shipped[k]));
    /* a vector with itself: the sum of squares, never negative */
    CHECK(close_to(vd_dot(a, a, 1792), ref_dot(a, a, 1792), 1792));
    free(a);
    free(b);
}

VD_TEST(dot_reads_unaligned_inputs)
{
    uint64_t s = 11;
    float *buf = malloc(300 * sizeof *buf);
    for (size_t i = 0; i < 300; i++)
        buf[i] = rnd(&s);
    float copy[2][100];
    for (size_t off = 1; off < 4; off++) {
        memcpy(copy[0], buf + off, sizeof copy[0]);
        memcpy(copy[1], buf + 150 + off, sizeof copy[1]);
        CHECK(vd_dot(buf + off, buf + 150 + off, 100) == vd_dot(copy[0], copy[1], 100));
    }
    free(buf);
}

VD_TEST(batched_dots_equal_single_dots)
{
    enum { ROWS = 37, DIM = 1024, NQ = 5 };
    uint64_t s = 13;
    float *mat = malloc((size_t)ROWS * DIM * sizeof *mat);
    float *qs = malloc((size_t)NQ * DIM * sizeof *qs);
    float out[ROWS], block[NQ * ROWS];
    for (size_t i = 0; i < (size_t)ROWS * DIM; i++)
        mat[i] = rnd(&s);
    for (size_t i = 0; i < (size_t)NQ * DIM; i++)
        qs[i] = rnd(&s);
    vd_dots(mat, ROWS, DIM, qs, out);
    vd_dots_block(mat, ROWS, DIM, qs, NQ, block);
    for (size_t r = 0; r < ROWS; r++) {
        CHECK(out[r] == vd_dot(mat + r * DIM, qs, DIM));
        for (size_t j = 0; j < NQ; j++)
            CHECK(block[j * ROWS + r] == vd_dot(mat + r * DIM, qs + j * DIM, DIM));
    }
    free(mat);
    free(qs);
}

int main(void)
{
    return vd_test_run_all();
}
