/* tensor.c: allocation and bookkeeping for vd_tensor. */
#include "infer/tensor.h"

#include <stdlib.h>
#include <string.h>

vd_status vd_tensor_alloc(vd_tensor *t, const int64_t *shape, size_t rank, vd_error *err)
{
    memset(t, 0, sizeof *t);
    if (rank > VD_TENSOR_MAX_RANK)
        return vd_error_set(err, VD_ERR_INVALID, "tensor rank %zu exceeds %d", rank,
                            VD_TENSOR_MAX_RANK);
    size_t count = 1;
    for (size_t i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return vd_error_set(err, VD_ERR_INVALID, "tensor dim %zu is negative (%lld)", i,
                                (long long)shape[i]);
        if (shape[i] > 0 && count > SIZE_MAX / sizeof(float) / (size_t)shape[i])
            return vd_error_set(err, VD_ERR_LIMIT, "tensor shape too large");
        count *= (size_t)shape[i];
    }
    /* calloc(0) may return NULL: always allocate at least one float. */
    float *data = calloc(count ? count : 1, sizeof(float));
    if (!data)
        return vd_error_set(err, VD_ERR_NOMEM, "cannot allocate a tensor of %zu floats", count);
    t->data = data;
    t->rank = rank;
    for (size_t i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    return VD_OK;
}

size_t vd_tensor_count(const vd_tensor *t)
{
    size_t n = 1;
    for (size_t i = 0; i < t->rank; i++)
        n *= (size_t)(t->shape[i] < 0 ? 0 : t->shape[i]);
    return n;
}

void vd_tensor_free(vd_tensor *t)
{
    if (!t) return;
    free(t->data);
    memset(t, 0, sizeof *t);
}
