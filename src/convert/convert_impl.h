/* convert_impl.h: what the files of src/convert/ that lower TF ops share (private to the
 * module; the public contract is convert.h).
 *
 *   convert.c        the graph walk and the driver (vd_convert_tfjs), graph sources
 *                    (Placeholder, Const, Identity)
 *   convert_lower.c  shared lowering helpers: names, ONNX nodes and initializers, input
 *                    resolution and layout (NHWC/NCHW), constants, shapes, activations
 *   convert_ops.c    THE op table: TF op name -> lowering function and its variant
 *   convert_nn.c     convolutions, pools, MatMul, batch norm
 *   convert_math.c   elementwise (binary, unary, activations) and reductions
 *   convert_shape.c  Squeeze, ExpandDims, Reshape, Pad, ConcatV2, Transpose
 *
 * A lowering function reads node n (its inputs are visited already), emits ONNX nodes into
 * c->g and fills v (the node's value: its ONNX name in one layout or both, or its constant,
 * and its shape). Errors are set on c->err and returned. */
#ifndef VD_CONVERT_IMPL_H
#define VD_CONVERT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "convert/convert.h"
#include "convert/onnx_writer.h"
#include "convert/tfjs.h"

#define MAXR    VD_CONVERT_MAX_RANK
#define BATCH_N "N"

/* What the converter knows about one TF node's output 0. */
typedef struct {
    int state;  /* 0 unvisited, 1 in progress, 2 done */
    char *nhwc; /* owned: ONNX tensor in TF layout, NULL until emitted */
    char *nchw; /* owned: ONNX tensor transposed to NCHW (rank 4), NULL until emitted */
    int rank;   /* -1 unknown */
    int64_t dims[MAXR];
    const vd_tfjs_weight *konst; /* for Const (and Identity of a Const) */
    int input_index;             /* >= 0 for Placeholders used as graph inputs */
    int consumers;               /* data inputs (and requested outputs) that read this value */
    long last_consumer;          /* the node index of one of them, -1 none */
    /* Minimum(x, hi) whose only reader is a Maximum(., lo): emitted by that
     * Maximum as one Clip(x, lo, hi) (Relu6 written out, as Keras exports it) */
    int deferred_min;
    size_t clip_src;
    float clip_hi;
} tval;

typedef struct {
    const vd_convert_opts *opts;
    vd_tfjs_model *m;
    vd_onnx_graph g;
    tval *vals;
    vd_error *err;
    unsigned counter;
    vd_convert_info info;
    size_t used;
} ctx;

/* ---- the op table (convert_ops.c) ---------------------------------------- */

typedef struct cv_op cv_op;
typedef vd_status (*cv_lower_fn)(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);

/* Variants of one lowering function (cv_op.flags). */
#define CV_DEPTHWISE 1 /* convolution: depthwise (group = input channels) */
#define CV_FUSED     2 /* _Fused*: reads the fused_ops attribute (BiasAdd + activation) */

struct cv_op {
    const char *tf;    /* the TF op name */
    cv_lower_fn lower; /* the function that lowers it */
    const char *onnx;  /* variant: the ONNX op it becomes (NULL where the function decides) */
    int flags;         /* variant: CV_* */
};

/* The entry for TF op `name`, NULL when it is not supported. */
const cv_op *cv_op_find(const char *name);

/* ---- shared lowering helpers (convert_lower.c) ---------------------------- */

extern const int64_t CV_PERM_TO_NCHW[4], CV_PERM_TO_NHWC[4];

size_t cv_idx_of(const ctx *c, const vd_tfjs_node *n);
/* A malloc'd string (NULL when out of memory). */
char *cv_fmt_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A fresh helper tensor name derived from a node's name (owned; NULL when out of memory). */
char *cv_helper(ctx *c, const vd_tfjs_node *n, const char *what);
vd_status cv_oom(ctx *c);
/* VD_ERR_UNSUPPORTED naming the node and its op. */
vd_status cv_unsupported(ctx *c, const vd_tfjs_node *n, const char *why);

void cv_node1(ctx *c, const char *op, const char *name, const char *in0, const char *in1,
              const char *out, vd_onnx_node *nd);
void cv_emit_simple(ctx *c, const char *op, const char *in0, const char *in1, const char *out);
void cv_emit_transpose(ctx *c, const char *in, const char *out, const int64_t *perm, int rank);
/* Initializers named after n and `what`; the name is returned (owned), NULL when out of memory. */
char *cv_init_f32(ctx *c, const vd_tfjs_node *n, const char *what, const float *data,
                  const int64_t *dims, int rank, size_t count);
char *cv_init_i64(ctx *c, const vd_tfjs_node *n, const char *what, const int64_t *data,
                  const int64_t *dims, int rank, size_t count);
char *cv_scalar_f32(ctx *c, const vd_tfjs_node *n, const char *what, float v);

/* Input k of n -> the index of its producing node. */
vd_status cv_input_node(ctx *c, const vd_tfjs_node *n, size_t k, size_t *out);
/* The producer of input k of n, without reporting errors; -1 when unknown. */
long cv_producer_quiet(const ctx *c, const vd_tfjs_node *n, size_t k);
/* The number of data inputs (control inputs "^x" come last in a GraphDef). */
size_t cv_ndata(const vd_tfjs_node *n);
/* Value i in TF layout / in NCHW (rank 4): its ONNX name (borrowed), NULL when out of memory. */
const char *cv_want_nhwc(ctx *c, size_t i);
const char *cv_want_nchw(ctx *c, size_t i);
/* Input k of n as a tensor in TF layout / as a rank-4 NCHW tensor; *val (may be NULL) its value. */
vd_status cv_in_tensor(ctx *c, const vd_tfjs_node *n, size_t k, const char **name, tval **val);
vd_status cv_in_nchw(ctx *c, const vd_tfjs_node *n, size_t k, const char **name, tval **val);
/* Input k of n as a constant: *w is its weight (borrowed); `what` names it in the error. */
vd_status cv_in_const(ctx *c, const vd_tfjs_node *n, size_t k, const char *what,
                      const vd_tfjs_weight **w);
/* A constant as int64s (int32 or integral float32), at most max of them; *count is how many. */
vd_status cv_const_ints(ctx *c, const vd_tfjs_node *n, const vd_tfjs_weight *w, int64_t *out,
                        int max, int *count);
void cv_set_shape(tval *v, const int64_t *dims, int rank);
void cv_copy_shape(tval *dst, const tval *src);
/* numpy broadcasting of a and b's shapes into out. */
void cv_broadcast_shape(tval *out, const tval *a, const tval *b);
/* The output size of a convolution or pool along one axis (-1 unknown). */
int64_t cv_conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int same, int64_t pb, int64_t pe);
/* Applies activation act (Relu, Relu6, LeakyRelu, Prelu with alpha, ...) to tensor `in`;
 * *out is the output name (owned): out_name, or a helper name when out_name is NULL. */
vd_status cv_activation(ctx *c, const vd_tfjs_node *n, const char *act, const char *in,
                        const char *alpha, const char *out_name, char **out);

/* ---- lowering functions (the op table's entries) -------------------------- */

/* convert.c */
vd_status cv_op_placeholder(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_const(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_identity(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
/* convert_nn.c */
vd_status cv_op_conv(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_pool(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_matmul(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_batchnorm(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
/* convert_math.c */
vd_status cv_op_binary(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_unary(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_reduce(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
/* convert_shape.c */
vd_status cv_op_squeeze(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_expand_dims(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_reshape(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_pad(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_concat(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);
vd_status cv_op_transpose(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op);

#endif
