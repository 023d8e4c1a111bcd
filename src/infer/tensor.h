/* tensor.h: a tensor that owns its data, the unit passed between
 * preprocessing, the inference engine, the wire protocol and the clients.
 *
 * Tensors are float32 unless they say otherwise: a zeroed vd_tensor is a
 * float32 one, and `data` is its float view. Text towers take integer token
 * ids, so an input may also be int32 or int64 (`i32` / `i64`, the same
 * pointer); outputs are always float32 (infer/ort_session.h converts). */
#ifndef VD_TENSOR_H
#define VD_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VD_TENSOR_MAX_RANK 8

typedef enum { VD_DTYPE_FLOAT32 = 0, VD_DTYPE_INT32, VD_DTYPE_INT64 } vd_dtype;

typedef struct {
    union {
        float *data;  /* owned: count() elements, row-major (float32) */
        int32_t *i32; /* the same pointer, for VD_DTYPE_INT32 */
        int64_t *i64; /* the same pointer, for VD_DTYPE_INT64 */
        void *raw;
    };
    /* owned when set: the allocation that holds the data (a received frame the tensor
     * kept instead of a copy; raw points into it). NULL: raw is the allocation. */
    void *block;
    /* 1: the data is not the tensor's (a model-server client's shared region, lent for one
     * call: vd_infer_client_input); vd_tensor_free leaves it alone */
    int borrowed;
    int64_t shape[VD_TENSOR_MAX_RANK];
    size_t rank;
    vd_dtype dtype;
} vd_tensor;

/* Allocates zeroed float32 data for the given shape into *t (which it
 * overwrites). VD_ERR_INVALID for a bad rank or a negative dim, VD_ERR_NOMEM
 * on failure. */
vd_status vd_tensor_alloc(vd_tensor *t, const int64_t *shape, size_t rank, vd_error *err);

/* The same for any dtype. */
vd_status vd_tensor_alloc_dtype(vd_tensor *t, vd_dtype dtype, const int64_t *shape, size_t rank,
                                vd_error *err);

/* The same without zeroing the data, for a caller that writes every element before anything
 * reads one (a copy, a decode): zeroing a large tensor costs as much as copying into it. */
vd_status vd_tensor_alloc_uninit(vd_tensor *t, vd_dtype dtype, const int64_t *shape, size_t rank,
                                 vd_error *err);

/* Returns the number of elements (product of the shape; 1 for rank 0). */
size_t vd_tensor_count(const vd_tensor *t);

/* Bytes of one element of dtype (4 or 8), and of t's data. */
size_t vd_dtype_size(vd_dtype dtype);
size_t vd_tensor_bytes(const vd_tensor *t);

/* "float32", "int32", "int64". */
const char *vd_dtype_name(vd_dtype dtype);

/* Frees t's data (unless borrowed) and zeroes it. Safe on a zeroed tensor. */
void vd_tensor_free(vd_tensor *t);

#endif
