/* tensor.h: a float32 tensor that owns its data, the unit passed between
 * preprocessing, the inference engine, the wire protocol and the clients. */
#ifndef VD_TENSOR_H
#define VD_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VD_TENSOR_MAX_RANK 8

typedef struct {
    float *data; /* owned: count() floats, row-major */
    int64_t shape[VD_TENSOR_MAX_RANK];
    size_t rank;
} vd_tensor;

/* Allocates zeroed data for the given shape into *t (which it overwrites).
 * VD_ERR_INVALID for a bad rank or a negative dim, VD_ERR_NOMEM on failure. */
vd_status vd_tensor_alloc(vd_tensor *t, const int64_t *shape, size_t rank, vd_error *err);

/* Returns the number of elements (product of the shape; 1 for rank 0). */
size_t vd_tensor_count(const vd_tensor *t);

/* Frees t's data and zeroes it. Safe on a zeroed tensor. */
void vd_tensor_free(vd_tensor *t);

#endif
