/* vindex_data.h: reproducible test vectors for the vindex tests: unit
 * Gaussians around random centres, normalised. Each test executable includes it
 * once; define VINDEX_DATA_SEED first to pick the sequence. */
#ifndef VD_TEST_VINDEX_DATA_H
#define VD_TEST_VINDEX_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "vindex/vindex.h"

#ifndef VINDEX_DATA_SEED
#define VINDEX_DATA_SEED 88172645463325252ULL
#endif

/* xorshift64*: reproducible data without touching rand()'s state */
static uint64_t rng_state = VINDEX_DATA_SEED;
static double unif(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}
static float gauss(void)
{
    double u = unif() + 1e-12, v = unif();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

/* n vectors around `clusters` centres (spread s), normalised */
static float *clustered(size_t n, int dim, size_t clusters, float s)
{
    float *c = malloc(clusters * dim * sizeof(float)), *v = malloc(n * dim * sizeof(float));
    vd_error err;
    for (size_t i = 0; i < clusters * dim; i++)
        c[i] = gauss();
    for (size_t i = 0; i < n; i++) {
        const float *ci = c + (size_t)(unif() * clusters) % clusters * dim;
        for (int j = 0; j < dim; j++)
            v[i * dim + j] = ci[j] + s * gauss();
        vd_vindex_normalize(v + i * dim, dim, &err);
    }
    free(c);
    return v;
}

#endif
