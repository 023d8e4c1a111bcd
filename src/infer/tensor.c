/* tensor.c: allocation and bookkeeping for vd_tensor. */
#include "infer/tensor.h"

#include <stdlib.h>
#include <string.h>

size_t vd_dtype_size(vd_dtype dtype)
{
    return dtype == VD_DTYPE_INT64 ? 8 : 4;
}

const char *vd_dtype_name(vd_dtype dtype)
{
    return dtype == VD_DTYPE_INT64 ? "int64" : dtype == VD_DTYPE_INT32 ? "int32" : "float32";
}

static vd_status tensor_alloc(vd_tensor *t, vd_dtype dtype, const int64_t *shape, size_t rank,
                              int zero, vd_error *err)
{
    memset(t, 0, sizeof *t);
    if (rank > VD_TENSOR_MAX_RANK)
        return vd_error_set(err, VD_ERR_INVALID, "tensor rank %zu exceeds %d", rank,
                            VD_TENSOR_MAX_RANK);
    size_t count = 1, esz = vd_dtype_size(dtype);
    for (size_t i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return vd_error_set(err, VD_ERR_INVALID, "tensor dim %zu is negative (%lld)", i,
                                (long long)shape[i]);
        if (shape[i] > 0 && count > SIZE_MAX / esz / (size_t)shape[i])
            return vd_error_set(err, VD_ERR_LIMIT, "tensor shape too large");
        count *= (size_t)shape[i];
    }
    /* calloc(0) may return NULL: always allocate at least one element. */
    void *data = zero ? calloc(count ? count : 1, esz) : malloc((count ? count : 1) * esz);
    if (!data)
        return vd_error_set(err, VD_ERR_NOMEM, "cannot allocate a tensor of %zu elements", count);
    t->raw = data;
    t->rank = rank;
    t->dtype = dtype;
    for (size_t i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    return VD_OK;
}

vd_status vd_tensor_alloc_dtype(vd_tensor *t, vd_dtype dtype, const int64_t *shape, size_t rank,
                                vd_error *err)
{
    return tensor_alloc(t, dtype, shape, rank, 1, err);
}

vd_status vd_tensor_alloc_uninit(vd_tensor *t, vd_dtype dtype, const int64_t *shape, size_t rank,
                                 vd_error *err)
{
    return tensor_alloc(t, dtype, shape, rank, 0, err);
}

vd_status vd_tensor_alloc(vd_tensor *t, const int64_t *shape, size_t rank, vd_error *err)
{
    return vd_tensor_alloc_dtype(t, VD_DTYPE_FLOAT32, shape, rank, err);
}

size_t vd_tensor_count(const vd_tensor *t)
{
    size_t n = 1;
    for (size_t i = 0; i < t->rank; i++)
        n *= (size_t)(t->shape[i] < 0 ? 0 : t->shape[i]);
    return n;
}

size_t vd_tensor_bytes(const vd_tensor *t)
{
    return vd_tensor_count(t) * vd_dtype_size(t->dtype);
}

void vd_tensor_free(vd_tensor *t)
{
    if (!t) return;
    if (!t->borrowed) free(t->block ? t->block : t->raw);
    memset(t, 0, sizeof *t);
}
