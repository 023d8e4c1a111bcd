/* convert.c: TF ops (as TFJS graph models use them) to ONNX opset 13. */
#include "convert/convert.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/onnx_writer.h"
#include "convert/tfjs.h"
#include "core/util.h"

#define OPSET   13
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

static const int64_t PERM_TO_NCHW[4] = {0, 3, 1, 2};
static const int64_t PERM_TO_NHWC[4] = {0, 2, 3, 1};

static size_t idx_of(const ctx *c, const vd_tfjs_node *n)
{
    return (size_t)(n - c->m->nodes);
}

static char *fmt_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *fmt_name(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* A fresh helper tensor name derived from a node's name. */
static char *helper(ctx *c, const vd_tfjs_node *n, const char *what)
{
    return fmt_name("%s/__%s_%u", n->name, what, c->counter++);
}

static vd_status oom(ctx *c)
{
    return vd_error_set(c->err, VD_ERR_NOMEM, "out of memory");
}

static vd_status unsupported(ctx *c, const vd_tfjs_node *n, const char *why)
{
    return vd_error_set(c->err, VD_ERR_UNSUPPORTED, "node '%s' (op %s): %s", n->name, n->op, why);
}

/* ---- emitting ONNX nodes -------------------------------------------------- */

static void node1(ctx *c, const char *op, const char *name, const char *in0, const char *in1,
                  const char *out, vd_onnx_node *nd)
{
    vd_onnx_node_begin(nd, op, name);
    vd_onnx_node_input(nd, in0);
    if (in1) vd_onnx_node_input(nd, in1);
    vd_onnx_node_output(nd, out);
    (void)c;
}

static void emit_simple(ctx *c, const char *op, const char *in0, const char *in1, const char *out)
{
    vd_onnx_node nd;
    node1(c, op, out, in0, in1, out, &nd);
    vd_onnx_graph_add_node(&c->g, &nd);
}

static void emit_transpose(ctx *c, const char *in, const char *out, const int64_t *perm, int rank)
{
    vd_onnx_node nd;
    node1(c, "Transpose", out, in, NULL, out, &nd);
    vd_onnx_node_attr_ints(&nd, "perm", perm, (size_t)rank);
    vd_onnx_graph_add_node(&c->g, &nd);
}

static char *add_init_f32(ctx *c, const vd_tfjs_node *n, const char *what, const float *data,
                          const int64_t *dims, int rank, size_t count)
{
    char *name = helper(c, n, what);
    if (name)
        vd_onnx_graph_add_initializer(&c->g, name, VD_ONNX_FLOAT, dims, rank, data, count * 4);
    return name;
}

static char *add_init_i64(ctx *c, const vd_tfjs_node *n, const char *what, const int64_t *data,
                          const int64_t *dims, int rank, size_t count)
{
    char *name = helper(c, n, what);
    if (name)
        vd_onnx_graph_add_initializer(&c->g, name, VD_ONNX_INT64, dims, rank, data, count * 8);
    return name;
}

static char *scalar_f32(ctx *c, const vd_tfjs_node *n, const char *what, float v)
{
    return add_init_f32(c, n, what, &v, NULL, 0, 1);
}

/* ---- values --------------------------------------------------------------- */

#define VD_CONVERT_MAX_DEPTH 4000 /* longest input chain followed from an output */

static vd_status visit(ctx *c, size_t i, int depth);

/* Resolves input k of n to the producing node (visited). Control inputs are skipped by callers.
 * Not inlined: its 2 KB of buffers must stay out of visit's recursive frame. */
__attribute__((noinline)) static vd_status input_node(ctx *c, const vd_tfjs_node *n, size_t k,
                                                      size_t *out)
{
    if (k >= n->ninputs) return unsupported(c, n, "too few inputs");
    const char *in = n->inputs[k];
    char name[1024];
    vd_strlcpy(name, in, sizeof name);
    char *colon = strrchr(name, ':');
    if (colon) {
        if (strcmp(colon, ":0") != 0) {
            char why[1200];
            snprintf(why, sizeof why, "input '%s' uses an output other than 0", in);
            return unsupported(c, n, why);
        }
        *colon = 0;
    }
    const vd_tfjs_node *p = vd_tfjs_node_find(c->m, name);
    if (!p)
        return vd_error_set(c->err, VD_ERR_INVALID, "node '%s': input '%s' is not in the graph",
                            n->name, in);
    *out = idx_of(c, p);
    return VD_OK;
}

/* The number of data inputs (control inputs "^x" come last in a GraphDef). */
static size_t ndata(const vd_tfjs_node *n)
{
    size_t k = 0;
    while (k < n->ninputs && n->inputs[k][0] != '^')
        k++;
    return k;
}

/* Makes sure value i exists in TF layout and returns its ONNX name (borrowed). */
static const char *want_nhwc(ctx *c, size_t i)
{
    tval *v = &c->vals[i];
    if (v->nhwc) return v->nhwc;
    const vd_tfjs_node *n = &c->m->nodes[i];
    if (v->konst) {
        const vd_tfjs_weight *w = v->konst;
        v->nhwc = vd_strdup(n->name);
        if (!v->nhwc) return NULL;
        if (w->dtype == VD_TFJS_F32) {
            vd_onnx_graph_add_initializer(&c->g, v->nhwc, VD_ONNX_FLOAT, w->shape, w->rank, w->data,
                                          w->count * 4);
        } else {
            vd_onnx_graph_add_initializer(&c->g, v->nhwc, VD_ONNX_INT32, w->shape, w->rank, w->data,
                                          w->count * 4);
        }
        return v->nhwc;
    }
    if (v->nchw) {
        v->nhwc = vd_strdup(n->name);
        if (!v->nhwc) return NULL;
        emit_transpose(c, v->nchw, v->nhwc, PERM_TO_NHWC, 4);
        return v->nhwc;
    }
    return NULL; /* not reached: every visited non-const value has a form */
}

/* Makes sure value i exists in NCHW (it must be rank 4) and returns its name. */
static const char *want_nchw(ctx *c, size_t i)
{
    tval *v = &c->vals[i];
    if (v->nchw) return v->nchw;
    const char *src = want_nhwc(c, i);
    if (!src) return NULL;
    v->nchw = fmt_name("%s/__nchw", c->m->nodes[i].name);
    if (!v->nchw) return NULL;
    emit_transpose(c, src, v->nchw, PERM_TO_NCHW, 4);
    return v->nchw;
}

/* Input k of n as a tensor in TF layout. */
static vd_status in_tensor(ctx *c, const vd_tfjs_node *n, size_t k, const char **name, tval **val)
{
    size_t p;
    vd_status s = input_node(c, n, k, &p);
    if (s != VD_OK) return s;
    *name = want_nhwc(c, p);
    if (!*name) return oom(c);
    if (val) *val = &c->vals[p];
    return VD_OK;
}

/* Input k of n as a rank-4 NCHW tensor. */
static vd_status in_nchw(ctx *c, const vd_tfjs_node *n, size_t k, const char **name, tval **val)
{
    size_t p;
    vd_status s = input_node(c, n, k, &p);
    if (s != VD_OK) return s;
    if (c->vals[p].rank != 4 && c->vals[p].rank != -1)
        return unsupported(c, n, "expects a rank-4 NHWC input");
    *name = want_nchw(c, p);
    if (!*name) return oom(c);
    if (val) *val = &c->vals[p];
    return VD_OK;
}

/* Input k of n as a constant (its weight), or NULL with an error set. */
static const vd_tfjs_weight *in_const(ctx *c, const vd_tfjs_node *n, size_t k, const char *what)
{
    size_t p;
    if (input_node(c, n, k, &p) != VD_OK) return NULL;
    if (!c->vals[p].konst) {
        char why[256];
        snprintf(why, sizeof why, "the %s must be a constant", what);
        unsupported(c, n, why);
        return NULL;
    }
    return c->vals[p].konst;
}

/* Reads a constant as int64s (int32 or integral float32). Returns the count, -1 on error. */
static int const_ints(ctx *c, const vd_tfjs_node *n, const vd_tfjs_weight *w, int64_t *out, int max)
{
    if ((int)w->count > max) {
        unsupported(c, n, "constant operand too long");
        return -1;
    }
    for (size_t i = 0; i < w->count; i++)
        out[i] = w->dtype == VD_TFJS_I32 ? ((int32_t *)w->data)[i]
                                         : (int64_t)llroundf(((float *)w->data)[i]);
    return (int)w->count;
}

static void set_shape(tval *v, const int64_t *dims, int rank)
{
    v->rank = rank;
    for (int i = 0; i < rank && i < MAXR; i++)
        v->dims[i] = dims[i];
}

static void copy_shape(tval *dst, const tval *src)
{
    set_shape(dst, src->dims, src->rank);
}

/* ---- shapes --------------------------------------------------------------- */

static void broadcast_shape(tval *out, const tval *a, const tval *b)
{
    if (a->rank < 0 || b->rank < 0) {
        out->rank = -1;
        return;
    }
    int r = a->rank > b->rank ? a->rank : b->rank;
    out->rank = r;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da == 1)
            out->dims[i] = db;
        else if (db == 1)
            out->dims[i] = da;
        else if (da < 0)
            out->dims[i] = db;
        else
            out->dims[i] = da;
    }
}

static int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int same, int64_t pb,
                        int64_t pe)
{
    if (in < 0) return -1;
    if (same) return (in + s - 1) / s;
    int64_t eff = (k - 1) * d + 1;
    int64_t v = (in + pb + pe - eff) / s + 1;
    return v < 0 ? 0 : v;
}

/* ---- spatial ops (conv, depthwise conv, pools) --------------------------- */

typedef struct {
    int64_t strides[2], dilations[2], pads[4]; /* pads: top, left, bottom, right (ONNX order) */
    int same;
} spatial;

static vd_status spatial_attrs(ctx *c, const vd_tfjs_node *n, spatial *sp)
{
    char fmt[32] = "NHWC", pad[32] = "";
    vd_tfjs_attr_string(n, "data_format", fmt, sizeof fmt);
    if (strcmp(fmt, "NHWC") != 0) return unsupported(c, n, "only data_format NHWC is supported");
    int64_t v[8];
    int k = vd_tfjs_attr_ints(n, "strides", v, 8);
    sp->strides[0] = k == 4 ? v[1] : 1;
    sp->strides[1] = k == 4 ? v[2] : 1;
    k = vd_tfjs_attr_ints(n, "dilations", v, 8);
    sp->dilations[0] = k == 4 ? v[1] : 1;
    sp->dilations[1] = k == 4 ? v[2] : 1;
    if (sp->strides[0] < 1 || sp->strides[1] < 1 || sp->dilations[0] < 1 || sp->dilations[1] < 1)
        return unsupported(c, n, "bad strides or dilations");
    memset(sp->pads, 0, sizeof sp->pads);
    sp->same = 0;
    vd_tfjs_attr_string(n, "padding", pad, sizeof pad);
    if (strcmp(pad, "SAME") == 0) {
        sp->same = 1;
    } else if (strcmp(pad, "EXPLICIT") == 0) {
        k = vd_tfjs_attr_ints(n, "explicit_paddings", v, 8);
        if (k != 8) return unsupported(c, n, "EXPLICIT padding needs 8 explicit_paddings");
        sp->pads[0] = v[2];
        sp->pads[2] = v[3];
        sp->pads[1] = v[4];
        sp->pads[3] = v[5];
    } else if (strcmp(pad, "VALID") != 0) {
        return unsupported(c, n, "padding must be SAME, VALID or EXPLICIT");
    }
    return VD_OK;
}

static void spatial_onnx_attrs(vd_onnx_node *nd, const spatial *sp, int dilations)
{
    vd_onnx_node_attr_ints(nd, "strides", sp->strides, 2);
    if (dilations) vd_onnx_node_attr_ints(nd, "dilations", sp->dilations, 2);
    if (sp->same)
        vd_onnx_node_attr_string(nd, "auto_pad", "SAME_UPPER");
    else
        vd_onnx_node_attr_ints(nd, "pads", sp->pads, 4);
}

/* Applies a fused/standalone activation named act to tensor `in` (any
 * layout for elementwise ones; alpha, for Prelu, is given in the right
 * shape by the caller). Returns the output name (owned) or NULL on error. */
static char *activation(ctx *c, const vd_tfjs_node *n, const char *act, const char *in,
                        const char *alpha, const char *out_name)
{
    char *out = out_name ? vd_strdup(out_name) : helper(c, n, act);
    if (!out) return NULL;
    vd_onnx_node nd;
    if (strcmp(act, "Relu") == 0 || strcmp(act, "Sigmoid") == 0 || strcmp(act, "Tanh") == 0 ||
        strcmp(act, "Elu") == 0 || strcmp(act, "Selu") == 0) {
        emit_simple(c, act, in, NULL, out);
    } else if (strcmp(act, "Relu6") == 0) {
        char *lo = scalar_f32(c, n, "zero", 0), *hi = scalar_f32(c, n, "six", 6);
        if (!lo || !hi) {
            free(lo);
            free(hi);
            free(out);
            return NULL;
        }
        vd_onnx_node_begin(&nd, "Clip", out);
        vd_onnx_node_input(&nd, in);
        vd_onnx_node_input(&nd, lo);
        vd_onnx_node_input(&nd, hi);
        vd_onnx_node_output(&nd, out);
        vd_onnx_graph_add_node(&c->g, &nd);
        free(lo);
        free(hi);
    } else if (strcmp(act, "LeakyRelu") == 0) {
        node1(c, "LeakyRelu", out, in, NULL, out, &nd);
        double a = vd_tfjs_attr_float(n, "leakyrelu_alpha", vd_tfjs_attr_float(n, "alpha", 0.2));
        vd_onnx_node_attr_float(&nd, "alpha", (float)a);
        vd_onnx_graph_add_node(&c->g, &nd);
    } else if (strcmp(act, "Prelu") == 0 && alpha) {
        emit_simple(c, "PRelu", in, alpha, out);
    } else {
        char why[128];
        snprintf(why, sizeof why, "fused activation %s is not supported", act);
        unsupported(c, n, why);
        free(out);
        return NULL;
    }
    return out;
}

/* Reads fused_ops: requires BiasAdd first (or nothing), returns the activation in act ("" none). */
static vd_status fused_ops(ctx *c, const vd_tfjs_node *n, int *has_bias, char *act, size_t size)
{
    char op0[64] = "", op1[64] = "";
    int k = vd_tfjs_attr_list_string(n, "fused_ops", 0, op0, sizeof op0);
    if (k > 1) vd_tfjs_attr_list_string(n, "fused_ops", 1, op1, sizeof op1);
    *has_bias = 0;
    act[0] = 0;
    if (k == 0) return VD_OK;
    if (k > 2) return unsupported(c, n, "more than two fused ops");
    if (strcmp(op0, "BiasAdd") != 0) {
        char why[160];
        snprintf(why, sizeof why, "fused op %s is not supported (only BiasAdd + activation)", op0);
        return unsupported(c, n, why);
    }
    *has_bias = 1;
    if (k == 2) vd_strlcpy(act, op1, size);
    return VD_OK;
}

static vd_status op_conv(ctx *c, const vd_tfjs_node *n, tval *v, int depthwise, int fused)
{
    spatial sp;
    vd_status s = spatial_attrs(c, n, &sp);
    if (s != VD_OK) return s;
    int has_bias = 0;
    char act[64] = "";
    if (fused && (s = fused_ops(c, n, &has_bias, act, sizeof act)) != VD_OK) return s;
    const char *x;
    tval *xv = NULL;
    if ((s = in_nchw(c, n, 0, &x, &xv)) != VD_OK) return s;
    const vd_tfjs_weight *w = in_const(c, n, 1, "filter");
    if (!w) return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    if (w->rank != 4 || w->dtype != VD_TFJS_F32) return unsupported(c, n, "bad filter");
    int64_t kh = w->shape[0], kw = w->shape[1], cin = w->shape[2], co = w->shape[3];
    int64_t cout = depthwise ? cin * co : co;
    /* TF [kh,kw,cin,cout] -> ONNX [cout,cin,kh,kw]; depthwise [kh,kw,cin,m] -> [cin*m,1,kh,kw] */
    float *wt = malloc(w->count * sizeof *wt);
    if (!wt) return oom(c);
    const float *src = w->data;
    for (int64_t y = 0; y < kh; y++)
        for (int64_t x2 = 0; x2 < kw; x2++)
            for (int64_t ci = 0; ci < cin; ci++)
                for (int64_t o = 0; o < co; o++) {
                    float val = src[((y * kw + x2) * cin + ci) * co + o];
                    size_t dst = depthwise ? (size_t)((((ci * co + o) * 1 + 0) * kh + y) * kw + x2)
                                           : (size_t)(((o * cin + ci) * kh + y) * kw + x2);
                    wt[dst] = val;
                }
    int64_t wdims[4] = {cout, depthwise ? 1 : cin, kh, kw};
    char *wname = add_init_f32(c, n, "W", wt, wdims, 4, w->count);
    free(wt);
    char *bname = NULL;
    if (has_bias) {
        const vd_tfjs_weight *b = in_const(c, n, 2, "bias");
        if (!b) {
            free(wname);
            return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
        }
        if (b->dtype != VD_TFJS_F32 || (int64_t)b->count != cout) {
            free(wname);
            return unsupported(c, n, "bias length does not match the output channels");
        }
        int64_t bd[1] = {cout};
        bname = add_init_f32(c, n, "B", b->data, bd, 1, b->count);
    }
    char *conv_out_name = helper(c, n, "conv");
    if (!wname || (has_bias && !bname) || !conv_out_name) {
        free(wname);
        free(bname);
        free(conv_out_name);
        return oom(c);
    }
    vd_onnx_node nd;
    vd_onnx_node_begin(&nd, "Conv", conv_out_name);
    vd_onnx_node_input(&nd, x);
    vd_onnx_node_input(&nd, wname);
    if (bname) vd_onnx_node_input(&nd, bname);
    vd_onnx_node_output(&nd, conv_out_name);
    int64_t ks[2] = {kh, kw};
    vd_onnx_node_attr_ints(&nd, "kernel_shape", ks, 2);
    if (depthwise) vd_onnx_node_attr_int(&nd, "group", cin);
    spatial_onnx_attrs(&nd, &sp, 1);
    vd_onnx_graph_add_node(&c->g, &nd);
    free(wname);
    free(bname);

    char *out = conv_out_name;
    if (act[0]) {
        char *alpha = NULL;
        if (strcmp(act, "Prelu") == 0) {
            const vd_tfjs_weight *a = in_const(c, n, 3, "Prelu alpha");
            if (!a) {
                free(out);
                return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
            }
            if ((int64_t)a->count != cout || a->dtype != VD_TFJS_F32) {
                free(out);
                return unsupported(c, n, "Prelu alpha must have one value per channel");
            }
            int64_t ad[3] = {cout, 1, 1};
            alpha = add_init_f32(c, n, "alpha", a->data, ad, 3, a->count);
        }
        char *o2 = activation(c, n, act, out, alpha, NULL);
        free(alpha);
        free(out);
        if (!o2) return c->err && c->err->code ? c->err->code : oom(c);
        out = o2;
    }
    v->nchw = out;
    v->rank = 4;
    v->dims[0] = xv->rank == 4 ? xv->dims[0] : -1;
    v->dims[1] = xv->rank == 4 ? conv_out(xv->dims[1], kh, sp.strides[0], sp.dilations[0], sp.same,
                                          sp.pads[0], sp.pads[2])
                               : -1;
    v->dims[2] = xv->rank == 4 ? conv_out(xv->dims[2], kw, sp.strides[1], sp.dilations[1], sp.same,
                                          sp.pads[1], sp.pads[3])
                               : -1;
    v->dims[3] = cout;
    return VD_OK;
}

static vd_status op_pool(ctx *c, const vd_tfjs_node *n, tval *v, const char *onnx_op)
{
    spatial sp;
    vd_status s = spatial_attrs(c, n, &sp);
    if (s != VD_OK) return s;
    int64_t ks[8];
    if (vd_tfjs_attr_ints(n, "ksize", ks, 8) != 4) return unsupported(c, n, "needs a 4-d ksize");
    const char *x;
    tval *xv = NULL;
    if ((s = in_nchw(c, n, 0, &x, &xv)) != VD_OK) return s;
    char *out = helper(c, n, "pool");
    if (!out) return oom(c);
    vd_onnx_node nd;
    node1(c, onnx_op, out, x, NULL, out, &nd);
    int64_t k2[2] = {ks[1], ks[2]};
    vd_onnx_node_attr_ints(&nd, "kernel_shape", k2, 2);
    spatial_onnx_attrs(&nd, &sp, 0);
    vd_onnx_graph_add_node(&c->g, &nd);
    v->nchw = out;
    copy_shape(v, xv);
    if (v->rank == 4) {
        v->dims[1] =
            conv_out(xv->dims[1], ks[1], sp.strides[0], 1, sp.same, sp.pads[0], sp.pads[2]);
        v->dims[2] =
            conv_out(xv->dims[2], ks[2], sp.strides[1], 1, sp.same, sp.pads[1], sp.pads[3]);
    }
    return VD_OK;
}

/* ---- matmul --------------------------------------------------------------- */

static vd_status op_matmul(ctx *c, const vd_tfjs_node *n, tval *v, int fused)
{
    int ta = vd_tfjs_attr_bool(n, "transpose_a", 0), tb = vd_tfjs_attr_bool(n, "transpose_b", 0);
    int has_bias = 0;
    char act[64] = "";
    vd_status s;
    if (fused && (s = fused_ops(c, n, &has_bias, act, sizeof act)) != VD_OK) return s;
    const char *a;
    tval *av = NULL;
    if ((s = in_tensor(c, n, 0, &a, &av)) != VD_OK) return s;
    if (av->rank != 2 && av->rank != -1) return unsupported(c, n, "only rank-2 MatMul");
    char *aname = NULL;
    static const int64_t swap[2] = {1, 0};
    if (ta) {
        aname = helper(c, n, "At");
        if (!aname) return oom(c);
        emit_transpose(c, a, aname, swap, 2);
        a = aname;
    }
    size_t bp;
    if ((s = input_node(c, n, 1, &bp)) != VD_OK) {
        free(aname);
        return s;
    }
    const vd_tfjs_weight *bw = c->vals[bp].konst;
    char *bname = NULL;
    const char *b;
    int64_t bk = -1, bn = -1;
    if (bw && bw->rank == 2 && bw->dtype == VD_TFJS_F32) {
        int64_t r = bw->shape[0], cl = bw->shape[1];
        if (tb) {
            float *t = malloc(bw->count * sizeof *t);
            if (!t) {
                free(aname);
                return oom(c);
            }
            const float *src = bw->data;
            for (int64_t i = 0; i < r; i++)
                for (int64_t j = 0; j < cl; j++)
                    t[j * r + i] = src[i * cl + j];
            int64_t d[2] = {cl, r};
            bname = add_init_f32(c, n, "B", t, d, 2, bw->count);
            free(t);
            bk = cl;
            bn = r;
        } else {
            bname = add_init_f32(c, n, "B", bw->data, bw->shape, 2, bw->count);
            bk = r;
            bn = cl;
        }
        b = bname;
    } else {
        const char *bt = want_nhwc(c, bp);
        if (!bt) {
            free(aname);
            return oom(c);
        }
        if (tb) {
            bname = helper(c, n, "Bt");
            if (bname) emit_transpose(c, bt, bname, swap, 2);
            b = bname;
        } else {
            b = bt;
        }
        if (c->vals[bp].rank == 2) {
            bk = c->vals[bp].dims[tb ? 1 : 0];
            bn = c->vals[bp].dims[tb ? 0 : 1];
        }
    }
    int64_t ak = av->rank == 2 ? av->dims[ta ? 0 : 1] : -1;
    if (ak >= 0 && bk >= 0 && ak != bk) {
        free(aname);
        free(bname);
        return vd_error_set(c->err, VD_ERR_INVALID,
                            "node '%s' (op %s): inner dimensions differ (%lld vs %lld)", n->name,
                            n->op, (long long)ak, (long long)bk);
    }
    char *mm = has_bias || act[0] ? helper(c, n, "mm") : vd_strdup(n->name);
    if (!b || !mm) {
        free(aname);
        free(bname);
        free(mm);
        return oom(c);
    }
    emit_simple(c, "MatMul", a, b, mm);
    free(aname);
    free(bname);
    char *cur = mm;
    if (has_bias) {
        const char *bias;
        if ((s = in_tensor(c, n, 2, &bias, NULL)) != VD_OK) {
            free(cur);
            return s;
        }
        char *o = act[0] ? helper(c, n, "bias") : vd_strdup(n->name);
        if (!o) {
            free(cur);
            return oom(c);
        }
        emit_simple(c, "Add", cur, bias, o);
        free(cur);
        cur = o;
    }
    if (act[0]) {
        const char *alpha = NULL;
        if (strcmp(act, "Prelu") == 0 && (s = in_tensor(c, n, 3, &alpha, NULL)) != VD_OK) {
            free(cur);
            return s;
        }
        char *o = activation(c, n, act, cur, alpha, n->name);
        free(cur);
        if (!o) return c->err && c->err->code ? c->err->code : oom(c);
        cur = o;
    }
    v->nhwc = cur;
    v->rank = 2;
    v->dims[0] = av->rank == 2 ? av->dims[ta ? 1 : 0] : -1;
    v->dims[1] = bn;
    return VD_OK;
}

/* ---- the op table ---------------------------------------------------------- */

static const struct {
    const char *tf, *onnx;
} BINARY[] = {
    {"Add", "Add"},     {"AddV2", "Add"}, {"BiasAdd", "Add"}, {"Sub", "Sub"},     {"Mul", "Mul"},
    {"RealDiv", "Div"}, {"Div", "Div"},   {"Maximum", "Max"}, {"Minimum", "Min"}, {"Pow", "Pow"},
};

static const struct {
    const char *tf, *onnx;
} UNARY[] = {
    {"Relu", "Relu"},         {"Sigmoid", "Sigmoid"},
    {"Tanh", "Tanh"},         {"Elu", "Elu"},
    {"Selu", "Selu"},         {"Exp", "Exp"},
    {"Log", "Log"},           {"Neg", "Neg"},
    {"Abs", "Abs"},           {"Sqrt", "Sqrt"},
    {"Floor", "Floor"},       {"Ceil", "Ceil"},
    {"Round", "Round"},       {"Reciprocal", "Reciprocal"},
    {"Softplus", "Softplus"}, {"Sign", "Sign"},
};

/* ---- elementwise ops, in whichever layout their input already has -------- */

/* A value lives only in NCHW so far: elementwise ops on it stay in NCHW, which
 * saves a Transpose pair per op (conv -> bias -> relu -> clip -> conv chains). */
static int nchw_only(const tval *v)
{
    return !v->konst && v->rank == 4 && v->nchw && !v->nhwc;
}

/* A constant that broadcasts in NCHW once reshaped: a scalar (any rank, one
 * value) or a per-channel vector [C] (TF broadcasts it over the last axis). */
static int nchw_const(const tval *v)
{
    const vd_tfjs_weight *w = v->konst;
    return w && w->dtype == VD_TFJS_F32 && (w->count == 1 || w->rank == 1);
}

/* The constant operand as an NCHW-broadcastable initializer ([C,1,1] or a scalar). */
static char *nchw_const_name(ctx *c, const vd_tfjs_node *n, const tval *v)
{
    const vd_tfjs_weight *w = v->konst;
    if (w->count == 1) return scalar_f32(c, n, "k", ((const float *)w->data)[0]);
    int64_t d[3] = {(int64_t)w->count, 1, 1};
    return add_init_f32(c, n, "kc", w->data, d, 3, w->count);
}

/* The producer of input k of n, without reporting errors; -1 when unknown. */
static long producer_quiet(const ctx *c, const vd_tfjs_node *n, size_t k)
{
    char name[1024];
    vd_strlcpy(name, n->inputs[k], sizeof name);
    char *colon = strrchr(name, ':');
    if (colon) {
        if (strcmp(colon, ":0") != 0) return -1;
        *colon = 0;
    }
    const vd_tfjs_node *p = vd_tfjs_node_find(c->m, name);
    return p ? (long)idx_of(c, p) : -1;
}

/* 1 when node i is a float Const holding a single value (written to *out). */
static int scalar_const_node(const ctx *c, long i, float *out)
{
    if (i < 0 || strcmp(c->m->nodes[i].op, "Const") != 0) return 0;
    const vd_tfjs_weight *w = vd_tfjs_weight_find(c->m, c->m->nodes[i].name);
    if (!w || w->dtype != VD_TFJS_F32 || w->count != 1) return 0;
    *out = ((const float *)w->data)[0];
    return 1;
}

/* Minimum(x, hi) -> Maximum(., lo) with scalar constants, the Minimum read only
 * by the Maximum: defers the Minimum (see tval.deferred_min). Returns 1 if deferred. */
static int defer_min(ctx *c, const vd_tfjs_node *n, tval *v)
{
    if (strcmp(n->op, "Minimum") != 0 || ndata(n) != 2 || v->consumers != 1) return 0;
    long a = producer_quiet(c, n, 0), b = producer_quiet(c, n, 1);
    float hi, lo;
    long x;
    if (scalar_const_node(c, b, &hi))
        x = a;
    else if (scalar_const_node(c, a, &hi))
        x = b;
    else
        return 0;
    if (x < 0 || c->vals[x].konst || v->last_consumer < 0) return 0;
    const vd_tfjs_node *mx = &c->m->nodes[v->last_consumer];
    if (strcmp(mx->op, "Maximum") != 0 || ndata(mx) != 2) return 0;
    long m0 = producer_quiet(c, mx, 0), m1 = producer_quiet(c, mx, 1);
    long self = (long)idx_of(c, n);
    if (!((m0 == self && scalar_const_node(c, m1, &lo)) ||
          (m1 == self && scalar_const_node(c, m0, &lo))))
        return 0;
    v->deferred_min = 1;
    v->clip_src = (size_t)x;
    v->clip_hi = hi;
    copy_shape(v, &c->vals[x]);
    return 1;
}

/* Maximum(deferred Minimum(x, hi), lo) -> Clip(x, lo, hi), in x's layout. */
static vd_status emit_clip(ctx *c, const vd_tfjs_node *n, tval *v, const tval *mn, float lo)
{
    tval *src = &c->vals[mn->clip_src];
    int in_nchw = nchw_only(src);
    const char *x = in_nchw ? src->nchw : want_nhwc(c, mn->clip_src);
    char *out = in_nchw ? fmt_name("%s/__nchw", n->name) : vd_strdup(n->name);
    char *lo_n = scalar_f32(c, n, "lo", lo), *hi_n = scalar_f32(c, n, "hi", mn->clip_hi);
    if (!x || !out || !lo_n || !hi_n) {
        free(out);
        free(lo_n);
        free(hi_n);
        return oom(c);
    }
    vd_onnx_node nd;
    vd_onnx_node_begin(&nd, "Clip", out);
    vd_onnx_node_input(&nd, x);
    vd_onnx_node_input(&nd, lo_n);
    vd_onnx_node_input(&nd, hi_n);
    vd_onnx_node_output(&nd, out);
    vd_onnx_graph_add_node(&c->g, &nd);
    free(lo_n);
    free(hi_n);
    if (in_nchw)
        v->nchw = out;
    else
        v->nhwc = out;
    copy_shape(v, src);
    return VD_OK;
}

static vd_status op_binary(ctx *c, const vd_tfjs_node *n, tval *v, const char *onnx_op)
{
    if (defer_min(c, n, v)) return VD_OK;
    if (ndata(n) != 2) return unsupported(c, n, "needs two inputs");
    if (strcmp(n->op, "BiasAdd") == 0) {
        char fmt[32] = "NHWC";
        vd_tfjs_attr_string(n, "data_format", fmt, sizeof fmt);
        if (strcmp(fmt, "NHWC") != 0) return unsupported(c, n, "only data_format NHWC");
    }
    size_t p[2];
    vd_status s;
    if ((s = input_node(c, n, 0, &p[0])) != VD_OK) return s;
    if ((s = input_node(c, n, 1, &p[1])) != VD_OK) return s;
    tval *av = &c->vals[p[0]], *bv = &c->vals[p[1]];
    if (strcmp(n->op, "Maximum") == 0) {
        float lo;
        if (av->deferred_min && bv->konst && scalar_const_node(c, (long)p[1], &lo))
            return emit_clip(c, n, v, av, lo);
        if (bv->deferred_min && av->konst && scalar_const_node(c, (long)p[0], &lo))
            return emit_clip(c, n, v, bv, lo);
    }
    if (av->deferred_min || bv->deferred_min)
        return vd_error_set(c->err, VD_ERR_INTERNAL, "node '%s': a deferred Minimum", n->name);
    int any_nchw = nchw_only(av) || nchw_only(bv);
    int fits = 1;
    for (int k = 0; k < 2; k++) {
        const tval *x = &c->vals[p[k]];
        fits &= (!x->konst && x->rank == 4) || nchw_const(x);
    }
    if (any_nchw && fits) {
        const char *names[2];
        char *owned[2] = {NULL, NULL};
        for (int k = 0; k < 2; k++) {
            if (c->vals[p[k]].konst) {
                names[k] = owned[k] = nchw_const_name(c, n, &c->vals[p[k]]);
            } else {
                names[k] = want_nchw(c, p[k]);
            }
        }
        v->nchw = fmt_name("%s/__nchw", n->name);
        if (names[0] && names[1] && v->nchw) emit_simple(c, onnx_op, names[0], names[1], v->nchw);
        free(owned[0]);
        free(owned[1]);
        if (!names[0] || !names[1] || !v->nchw) return oom(c);
        broadcast_shape(v, av, bv);
        return VD_OK;
    }
    const char *a = want_nhwc(c, p[0]), *b = want_nhwc(c, p[1]);
    v->nhwc = vd_strdup(n->name);
    if (!a || !b || !v->nhwc) return oom(c);
    emit_simple(c, onnx_op, a, b, v->nhwc);
    broadcast_shape(v, av, bv);
    return VD_OK;
}

static vd_status op_unary(ctx *c, const vd_tfjs_node *n, tval *v, const char *onnx_op)
{
    size_t p;
    vd_status s = input_node(c, n, 0, &p);
    if (s != VD_OK) return s;
    tval *xv = &c->vals[p];
    int layout_free = strcmp(onnx_op, "Softmax") != 0 && strcmp(onnx_op, "LogSoftmax") != 0;
    int in_nchw = layout_free && nchw_only(xv);
    char *alpha_owned = NULL;
    const char *alpha = NULL;
    if (strcmp(n->op, "Prelu") == 0) {
        size_t ap;
        if ((s = input_node(c, n, 1, &ap)) != VD_OK) return s;
        if (in_nchw && !nchw_const(&c->vals[ap])) in_nchw = 0;
        if (in_nchw) {
            alpha = alpha_owned = nchw_const_name(c, n, &c->vals[ap]);
        } else {
            alpha = want_nhwc(c, ap);
        }
        if (!alpha) return oom(c);
    }
    const char *x = in_nchw ? xv->nchw : want_nhwc(c, p);
    char *out = in_nchw ? fmt_name("%s/__nchw", n->name) : vd_strdup(n->name);
    if (!x || !out) {
        free(out);
        free(alpha_owned);
        return oom(c);
    }
    copy_shape(v, xv);
    if (in_nchw)
        v->nchw = out;
    else
        v->nhwc = out;
    if (strcmp(n->op, "Rsqrt") == 0) {
        char *t = helper(c, n, "sqrt");
        if (!t) return oom(c);
        emit_simple(c, "Sqrt", x, NULL, t);
        emit_simple(c, "Reciprocal", t, NULL, out);
        free(t);
        return VD_OK;
    }
    if (strcmp(n->op, "Square") == 0) {
        emit_simple(c, "Mul", x, x, out);
        return VD_OK;
    }
    if (strcmp(n->op, "Relu6") == 0 || strcmp(n->op, "LeakyRelu") == 0 ||
        strcmp(n->op, "Prelu") == 0) {
        char *o = activation(c, n, n->op, x, alpha, out);
        free(alpha_owned);
        if (!o) return c->err && c->err->code ? c->err->code : oom(c);
        free(o); /* the same name as out */
        return VD_OK;
    }
    vd_onnx_node nd;
    node1(c, onnx_op, out, x, NULL, out, &nd);
    if (!layout_free) vd_onnx_node_attr_int(&nd, "axis", -1);
    vd_onnx_graph_add_node(&c->g, &nd);
    return VD_OK;
}

static vd_status op_reduce(ctx *c, const vd_tfjs_node *n, tval *v, const char *onnx_op)
{
    size_t p;
    vd_status s = input_node(c, n, 0, &p);
    if (s != VD_OK) return s;
    tval *xv = &c->vals[p];
    const vd_tfjs_weight *aw = in_const(c, n, 1, "reduction axes");
    if (!aw) return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    int64_t axes[MAXR], onnx_axes[MAXR];
    int na = const_ints(c, n, aw, axes, MAXR);
    if (na < 0) return c->err->code;
    int keep = vd_tfjs_attr_bool(n, "keep_dims", vd_tfjs_attr_bool(n, "keepdims", 0));
    /* On an NCHW-only value, reduce in NCHW when the result's layout is known:
     * with keep_dims it is NCHW; without, when the kept axes keep their order
     * (e.g. a global pool over H, W leaves [N, C] either way). */
    int use_nchw = nchw_only(xv), drop4[4] = {0, 0, 0, 0};
    static const int64_t TO_NCHW_AXIS[4] = {0, 2, 3, 1};
    for (int i = 0; i < na && use_nchw; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + 4 : axes[i];
        if (a < 0 || a > 3) {
            use_nchw = 0;
            break;
        }
        onnx_axes[i] = TO_NCHW_AXIS[a];
        drop4[a] = 1;
    }
    if (use_nchw && !keep) {
        int64_t last = -1;
        for (int a = 0; a < 4; a++)
            if (!drop4[a]) {
                if (TO_NCHW_AXIS[a] < last) use_nchw = 0;
                last = TO_NCHW_AXIS[a];
            }
    }
    if (!use_nchw)
        for (int i = 0; i < na; i++)
            onnx_axes[i] = axes[i];
    const char *x = use_nchw ? xv->nchw : want_nhwc(c, p);
    char *out = use_nchw && keep ? fmt_name("%s/__nchw", n->name) : vd_strdup(n->name);
    if (!x || !out) {
        free(out);
        return oom(c);
    }
    if (use_nchw && keep)
        v->nchw = out;
    else
        v->nhwc = out;
    vd_onnx_node nd;
    node1(c, onnx_op, out, x, NULL, out, &nd);
    if (strcmp(onnx_op, "ReduceSum") == 0) {
        int64_t d[1] = {na};
        char *an = add_init_i64(c, n, "axes", onnx_axes, d, 1, (size_t)na);
        if (!an) {
            vd_pb_free(&nd.pb);
            return oom(c);
        }
        vd_onnx_node_input(&nd, an);
        free(an);
    } else {
        vd_onnx_node_attr_ints(&nd, "axes", onnx_axes, (size_t)na);
    }
    vd_onnx_node_attr_int(&nd, "keepdims", keep);
    vd_onnx_graph_add_node(&c->g, &nd);
    if (xv->rank < 0) {
        v->rank = -1;
        return VD_OK;
    }
    int drop[MAXR] = {0};
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + xv->rank : axes[i];
        if (a < 0 || a >= xv->rank) return unsupported(c, n, "reduction axis out of range");
        drop[a] = 1;
    }
    v->rank = 0;
    for (int i = 0; i < xv->rank; i++) {
        if (!drop[i])
            v->dims[v->rank++] = xv->dims[i];
        else if (keep)
            v->dims[v->rank++] = 1;
    }
    return VD_OK;
}

static vd_status op_squeeze(ctx *c, const vd_tfjs_node *n, tval *v)
{
    const char *x;
    tval *xv = NULL;
    vd_status s = in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    int64_t axes[MAXR];
    int na = vd_tfjs_attr_ints(n, "squeeze_dims", axes, MAXR);
    if (na < 0) na = vd_tfjs_attr_ints(n, "axis", axes, MAXR);
    if (na < 0) na = 0;
    if (na == 0) {
        /* squeeze every size-1 dim: needs a known shape (the batch must stay) */
        if (xv->rank < 0) return unsupported(c, n, "Squeeze without axes needs a known shape");
        for (int i = 1; i < xv->rank; i++)
            if (xv->dims[i] == 1) axes[na++] = i;
    }
    v->nhwc = vd_strdup(n->name);
    int64_t d[1] = {na};
    char *an = add_init_i64(c, n, "axes", axes, d, 1, (size_t)na);
    if (!v->nhwc || !an) {
        free(an);
        return oom(c);
    }
    emit_simple(c, "Squeeze", x, an, v->nhwc);
    free(an);
    if (xv->rank < 0) {
        v->rank = -1;
        return VD_OK;
    }
    int drop[MAXR] = {0};
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + xv->rank : axes[i];
        if (a < 0 || a >= xv->rank) return unsupported(c, n, "squeeze axis out of range");
        drop[a] = 1;
    }
    v->rank = 0;
    for (int i = 0; i < xv->rank; i++)
        if (!drop[i]) v->dims[v->rank++] = xv->dims[i];
    return VD_OK;
}

static vd_status op_expand_dims(ctx *c, const vd_tfjs_node *n, tval *v)
{
    const char *x;
    tval *xv = NULL;
    vd_status s = in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *aw = in_const(c, n, 1, "axis");
    if (!aw) return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    int64_t axis[1];
    if (const_ints(c, n, aw, axis, 1) != 1) return unsupported(c, n, "needs one axis");
    int64_t d[1] = {1};
    v->nhwc = vd_strdup(n->name);
    char *an = add_init_i64(c, n, "axes", axis, d, 1, 1);
    if (!v->nhwc || !an) {
        free(an);
        return oom(c);
    }
    emit_simple(c, "Unsqueeze", x, an, v->nhwc);
    free(an);
    v->rank = -1;
    if (xv->rank >= 0 && xv->rank < MAXR) {
        int64_t a = axis[0] < 0 ? axis[0] + xv->rank + 1 : axis[0];
        if (a < 0 || a > xv->rank) return unsupported(c, n, "axis out of range");
        v->rank = xv->rank + 1;
        for (int i = 0, j = 0; i < v->rank; i++)
            v->dims[i] = i == a ? 1 : xv->dims[j++];
    }
    return VD_OK;
}

static vd_status op_reshape(ctx *c, const vd_tfjs_node *n, tval *v)
{
    const char *x;
    tval *xv = NULL;
    vd_status s = in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *sw = in_const(c, n, 1, "shape");
    if (!sw) return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    int64_t shape[MAXR];
    int r = const_ints(c, n, sw, shape, MAXR);
    if (r < 0) return c->err->code;
    /* Keep the batch dynamic: a leading 1 or -1 copies dim 0 (ONNX 0 = copy). */
    int64_t onnx_shape[MAXR];
    for (int i = 0; i < r; i++)
        onnx_shape[i] = shape[i];
    if (r > 0 && xv->rank > 0 && xv->dims[0] < 0 && (shape[0] == -1 || shape[0] == 1)) {
        int other_minus = 0;
        for (int i = 1; i < r; i++)
            other_minus |= shape[i] == -1;
        if (shape[0] == 1 || !other_minus) onnx_shape[0] = 0;
    }
    int64_t d[1] = {r};
    v->nhwc = vd_strdup(n->name);
    char *sn = add_init_i64(c, n, "shape", onnx_shape, d, 1, (size_t)r);
    if (!v->nhwc || !sn) {
        free(sn);
        return oom(c);
    }
    emit_simple(c, "Reshape", x, sn, v->nhwc);
    free(sn);
    v->rank = r;
    for (int i = 0; i < r; i++)
        v->dims[i] = onnx_shape[i] == 0 ? xv->dims[0] : shape[i];
    return VD_OK;
}

static vd_status op_pad(ctx *c, const vd_tfjs_node *n, tval *v)
{
    const char *x;
    tval *xv = NULL;
    vd_status s = in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *pw = in_const(c, n, 1, "paddings");
    if (!pw) return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    int64_t p[2 * MAXR];
    int np = const_ints(c, n, pw, p, 2 * MAXR);
    if (np < 0 || np % 2) return unsupported(c, n, "paddings must be [rank, 2]");
    int r = np / 2;
    int64_t pads[2 * MAXR];
    for (int i = 0; i < r; i++) {
        pads[i] = p[2 * i];
        pads[r + i] = p[2 * i + 1];
    }
    const char *mode = "constant";
    char tfmode[32] = "";
    if (strcmp(n->op, "MirrorPad") == 0) {
        vd_tfjs_attr_string(n, "mode", tfmode, sizeof tfmode);
        if (strcmp(tfmode, "REFLECT") != 0) return unsupported(c, n, "only REFLECT MirrorPad");
        mode = "reflect";
    }
    int64_t d[1] = {np};
    v->nhwc = vd_strdup(n->name);
    char *pn = add_init_i64(c, n, "pads", pads, d, 1, (size_t)np);
    char *cv = NULL;
    if (strcmp(n->op, "PadV2") == 0) {
        const vd_tfjs_weight *cw = in_const(c, n, 2, "constant value");
        if (!cw) {
            free(pn);
            return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
        }
        if (cw->count != 1 || cw->dtype != VD_TFJS_F32) {
            free(pn);
            return unsupported(c, n, "PadV2 value must be a float scalar");
        }
        cv = scalar_f32(c, n, "value", ((float *)cw->data)[0]);
    }
    if (!v->nhwc || !pn || (strcmp(n->op, "PadV2") == 0 && !cv)) {
        free(pn);
        free(cv);
        return oom(c);
    }
    vd_onnx_node nd;
    vd_onnx_node_begin(&nd, "Pad", v->nhwc);
    vd_onnx_node_input(&nd, x);
    vd_onnx_node_input(&nd, pn);
    if (cv) vd_onnx_node_input(&nd, cv);
    vd_onnx_node_output(&nd, v->nhwc);
    vd_onnx_node_attr_string(&nd, "mode", mode);
    vd_onnx_graph_add_node(&c->g, &nd);
    free(pn);
    free(cv);
    copy_shape(v, xv);
    if (v->rank == r)
        for (int i = 0; i < r; i++)
            if (v->dims[i] >= 0) v->dims[i] += pads[i] + pads[r + i];
    return VD_OK;
}

static vd_status op_concat(ctx *c, const vd_tfjs_node *n, tval *v)
{
    size_t nd_in = ndata(n);
    if (nd_in < 2) return unsupported(c, n, "needs inputs and an axis");
    const vd_tfjs_weight *aw = in_const(c, n, nd_in - 1, "axis");
    if (!aw) return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    int64_t axis[1];
    if (const_ints(c, n, aw, axis, 1) != 1) return unsupported(c, n, "needs one axis");
    v->nhwc = vd_strdup(n->name);
    if (!v->nhwc) return oom(c);
    vd_onnx_node nd;
    vd_onnx_node_begin(&nd, "Concat", v->nhwc);
    v->rank = -1;
    int64_t total = 0;
    for (size_t k = 0; k + 1 < nd_in; k++) {
        const char *x;
        tval *xv = NULL;
        vd_status s = in_tensor(c, n, k, &x, &xv);
        if (s != VD_OK) {
            vd_pb_free(&nd.pb);
            return s;
        }
        vd_onnx_node_input(&nd, x);
        if (k == 0) copy_shape(v, xv);
        int64_t a = axis[0] < 0 ? axis[0] + xv->rank : axis[0];
        if (xv->rank < 0 || a < 0 || a >= xv->rank || total < 0 || xv->dims[a] < 0)
            total = -1;
        else
            total += xv->dims[a];
    }
    vd_onnx_node_output(&nd, v->nhwc);
    vd_onnx_node_attr_int(&nd, "axis", axis[0]);
    vd_onnx_graph_add_node(&c->g, &nd);
    if (v->rank > 0) {
        int64_t a = axis[0] < 0 ? axis[0] + v->rank : axis[0];
        if (a >= 0 && a < v->rank) v->dims[a] = total;
    }
    return VD_OK;
}

static vd_status op_transpose(ctx *c, const vd_tfjs_node *n, tval *v)
{
    const char *x;
    tval *xv = NULL;
    vd_status s = in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *pw = in_const(c, n, 1, "perm");
    if (!pw) return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    int64_t perm[MAXR];
    int r = const_ints(c, n, pw, perm, MAXR);
    if (r < 0) return c->err->code;
    v->nhwc = vd_strdup(n->name);
    if (!v->nhwc) return oom(c);
    emit_transpose(c, x, v->nhwc, perm, r);
    v->rank = xv->rank == r ? r : -1;
    for (int i = 0; i < v->rank; i++) {
        if (perm[i] < 0 || perm[i] >= r) return unsupported(c, n, "bad perm");
        v->dims[i] = xv->dims[perm[i]];
    }
    return VD_OK;
}

static vd_status op_batchnorm(ctx *c, const vd_tfjs_node *n, tval *v)
{
    if (vd_tfjs_attr_bool(n, "is_training", 0)) return unsupported(c, n, "training mode");
    char fmt[32] = "NHWC";
    vd_tfjs_attr_string(n, "data_format", fmt, sizeof fmt);
    if (strcmp(fmt, "NHWC") != 0) return unsupported(c, n, "only data_format NHWC");
    const char *x;
    tval *xv = NULL;
    vd_status s = in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *p[4];
    static const char *what[4] = {"scale", "offset", "mean", "variance"};
    for (int i = 0; i < 4; i++)
        if (!(p[i] = in_const(c, n, (size_t)i + 1, what[i])))
            return c->err ? c->err->code : VD_ERR_UNSUPPORTED;
    size_t ch = p[0]->count;
    for (int i = 0; i < 4; i++)
        if (p[i]->count != ch || p[i]->dtype != VD_TFJS_F32)
            return unsupported(c, n, "batch-norm parameters must be float vectors of one length");
    double eps = vd_tfjs_attr_float(n, "epsilon", 0.001);
    float *mul = malloc(ch * sizeof *mul), *add = malloc(ch * sizeof *add);
    if (!mul || !add) {
        free(mul);
        free(add);
        return oom(c);
    }
    for (size_t i = 0; i < ch; i++) {
        const float *sc = p[0]->data, *of = p[1]->data, *mn = p[2]->data, *vr = p[3]->data;
        mul[i] = (float)(sc[i] / sqrt((double)vr[i] + eps));
        add[i] = (float)(of[i] - mn[i] * (double)mul[i]);
    }
    int64_t d[1] = {(int64_t)ch};
    char *mn = add_init_f32(c, n, "bn_mul", mul, d, 1, ch);
    char *an = add_init_f32(c, n, "bn_add", add, d, 1, ch);
    char *t = helper(c, n, "bn");
    v->nhwc = vd_strdup(n->name);
    free(mul);
    free(add);
    if (!mn || !an || !t || !v->nhwc) {
        free(mn);
        free(an);
        free(t);
        return oom(c);
    }
    emit_simple(c, "Mul", x, mn, t);
    emit_simple(c, "Add", t, an, v->nhwc);
    free(mn);
    free(an);
    free(t);
    copy_shape(v, xv);
    return VD_OK;
}

static vd_status op_placeholder(ctx *c, const vd_tfjs_node *n, tval *v)
{
    char dt[64] = "";
    json_t *dtype = n->attr ? json_object_get(n->attr, "dtype") : NULL;
    const char *t = dtype ? json_string_value(json_object_get(dtype, "type")) : NULL;
    if (t) vd_strlcpy(dt, t, sizeof dt);
    if (dt[0] && strcmp(dt, "DT_FLOAT") != 0) return unsupported(c, n, "inputs must be float32");
    if (c->info.ninputs >= VD_CONVERT_MAX_OUTPUTS) return unsupported(c, n, "too many inputs");
    int64_t dims[MAXR];
    int r = vd_tfjs_attr_shape(n, "shape", dims, MAXR);
    const vd_convert_opts *o = c->opts;
    if (o->input_rank > 0) {
        if (r >= 0 && r != o->input_rank) {
            char why[128];
            snprintf(why, sizeof why, "--input-shape has rank %d, the placeholder %d",
                     o->input_rank, r);
            return unsupported(c, n, why);
        }
        for (int i = 0; i < o->input_rank; i++)
            if (r < 0 || o->input_shape[i] >= 0) dims[i] = o->input_shape[i];
        r = o->input_rank;
    }
    if (r > 0) dims[0] = -1; /* the batch is always dynamic */
    set_shape(v, dims, r);
    v->nhwc = vd_strdup(n->name);
    if (!v->nhwc) return oom(c);
    v->input_index = (int)c->info.ninputs;
    vd_convert_value *iv = &c->info.inputs[c->info.ninputs++];
    vd_strlcpy(iv->name, n->name, sizeof iv->name);
    iv->rank = r;
    for (int i = 0; i < r; i++)
        iv->dims[i] = dims[i];
    vd_onnx_graph_add_input(&c->g, n->name, VD_ONNX_FLOAT, dims, r, BATCH_N);
    return VD_OK;
}

/* Not inlined: its locals must stay out of visit's recursive frame. */
__attribute__((noinline)) static vd_status emit(ctx *c, const vd_tfjs_node *n, tval *v)
{
    const char *op = n->op;
    if (strcmp(op, "Placeholder") == 0) return op_placeholder(c, n, v);
    if (strcmp(op, "Const") == 0) {
        v->konst = vd_tfjs_weight_find(c->m, n->name);
        if (!v->konst) return unsupported(c, n, "constant has no entry in the weights manifest");
        set_shape(v, v->konst->shape, v->konst->rank);
        return VD_OK;
    }
    if (strcmp(op, "Identity") == 0 || strcmp(op, "StopGradient") == 0 ||
        strcmp(op, "Snapshot") == 0) {
        size_t p;
        vd_status s = input_node(c, n, 0, &p);
        if (s != VD_OK) return s;
        if (c->vals[p].konst) {
            v->konst = c->vals[p].konst;
            copy_shape(v, &c->vals[p]);
            return VD_OK;
        }
        const char *x = want_nhwc(c, p);
        v->nhwc = vd_strdup(n->name);
        if (!x || !v->nhwc) return oom(c);
        emit_simple(c, "Identity", x, NULL, v->nhwc);
        copy_shape(v, &c->vals[p]);
        return VD_OK;
    }
    if (strcmp(op, "Conv2D") == 0) return op_conv(c, n, v, 0, 0);
    if (strcmp(op, "_FusedConv2D") == 0) return op_conv(c, n, v, 0, 1);
    if (strcmp(op, "DepthwiseConv2dNative") == 0) return op_conv(c, n, v, 1, 0);
    if (strcmp(op, "FusedDepthwiseConv2dNative") == 0) return op_conv(c, n, v, 1, 1);
    if (strcmp(op, "MaxPool") == 0) return op_pool(c, n, v, "MaxPool");
    if (strcmp(op, "AvgPool") == 0) return op_pool(c, n, v, "AveragePool");
    if (strcmp(op, "MatMul") == 0) return op_matmul(c, n, v, 0);
    if (strcmp(op, "_FusedMatMul") == 0) return op_matmul(c, n, v, 1);
    for (size_t i = 0; i < sizeof BINARY / sizeof BINARY[0]; i++)
        if (strcmp(op, BINARY[i].tf) == 0) return op_binary(c, n, v, BINARY[i].onnx);
    for (size_t i = 0; i < sizeof UNARY / sizeof UNARY[0]; i++)
        if (strcmp(op, UNARY[i].tf) == 0) return op_unary(c, n, v, UNARY[i].onnx);
    if (strcmp(op, "Relu6") == 0 || strcmp(op, "LeakyRelu") == 0 || strcmp(op, "Prelu") == 0 ||
        strcmp(op, "Rsqrt") == 0 || strcmp(op, "Square") == 0)
        return op_unary(c, n, v, op);
    if (strcmp(op, "Softmax") == 0) return op_unary(c, n, v, "Softmax");
    if (strcmp(op, "LogSoftmax") == 0) return op_unary(c, n, v, "LogSoftmax");
    if (strcmp(op, "Mean") == 0) return op_reduce(c, n, v, "ReduceMean");
    if (strcmp(op, "Sum") == 0) return op_reduce(c, n, v, "ReduceSum");
    if (strcmp(op, "Max") == 0) return op_reduce(c, n, v, "ReduceMax");
    if (strcmp(op, "Min") == 0) return op_reduce(c, n, v, "ReduceMin");
    if (strcmp(op, "Prod") == 0) return op_reduce(c, n, v, "ReduceProd");
    if (strcmp(op, "Squeeze") == 0) return op_squeeze(c, n, v);
    if (strcmp(op, "ExpandDims") == 0) return op_expand_dims(c, n, v);
    if (strcmp(op, "Reshape") == 0) return op_reshape(c, n, v);
    if (strcmp(op, "Pad") == 0 || strcmp(op, "PadV2") == 0 || strcmp(op, "MirrorPad") == 0)
        return op_pad(c, n, v);
    if (strcmp(op, "ConcatV2") == 0) return op_concat(c, n, v);
    if (strcmp(op, "Transpose") == 0) return op_transpose(c, n, v);
    if (strcmp(op, "FusedBatchNorm") == 0 || strcmp(op, "FusedBatchNormV2") == 0 ||
        strcmp(op, "FusedBatchNormV3") == 0)
        return op_batchnorm(c, n, v);
    return vd_error_set(c->err, VD_ERR_UNSUPPORTED,
                        "unsupported op %s (node '%s'); see docs/convert.md for the supported ops",
                        op, n->name);
}

static vd_status visit(ctx *c, size_t i, int depth)
{
    tval *v = &c->vals[i];
    const vd_tfjs_node *n = &c->m->nodes[i];
    if (v->state == 2) return VD_OK;
    if (v->state == 1)
        return vd_error_set(c->err, VD_ERR_INVALID, "the graph has a cycle through node '%s'",
                            n->name);
    /* Recursion: each level costs visit's own frame (input_node and emit are
     * kept out of it), a few hundred bytes, more under ASan. 20000 levels with
     * input_node's buffers inlined overflowed an 8 MiB stack (found by
     * tests/fuzz/fuzz_convert). Real graphs are a few hundred nodes deep. */
    if (depth > VD_CONVERT_MAX_DEPTH)
        return vd_error_set(c->err, VD_ERR_LIMIT,
                            "the graph is more than %d nodes deep at node '%s'",
                            VD_CONVERT_MAX_DEPTH, n->name);
    v->state = 1;
    /* Visit the data inputs first, so that their values exist. */
    size_t nd = ndata(n);
    for (size_t k = 0; k < nd; k++) {
        size_t p;
        vd_status s = input_node(c, n, k, &p);
        if (s == VD_OK) s = visit(c, p, depth + 1);
        if (s != VD_OK) return s;
    }
    vd_status s = emit(c, n, v);
    if (s != VD_OK) return s;
    v->state = 2;
    c->used++;
    return VD_OK;
}

/* Finds an output node by exact name, then by unique "/suffix"; tolerates ":0". */
static vd_status find_output(ctx *c, const char *want, size_t *out)
{
    char name[1024];
    vd_strlcpy(name, want, sizeof name);
    size_t len = strlen(name);
    if (len > 2 && strcmp(name + len - 2, ":0") == 0) name[len -= 2] = 0;
    const vd_tfjs_node *n = vd_tfjs_node_find(c->m, name);
    if (n) {
        *out = idx_of(c, n);
        return VD_OK;
    }
    size_t found = 0, hits = 0;
    for (size_t i = 0; i < c->m->nnodes; i++) {
        const char *nm = c->m->nodes[i].name;
        size_t nl = strlen(nm);
        if (nl > len && nm[nl - len - 1] == '/' && strcmp(nm + nl - len, name) == 0) {
            found = i;
            hits++;
        }
    }
    if (hits == 1) {
        *out = found;
        return VD_OK;
    }
    if (hits > 1)
        return vd_error_set(c->err, VD_ERR_INVALID,
                            "output '%s' matches %zu nodes; give the full node name", want, hits);
    return vd_error_set(c->err, VD_ERR_NOT_FOUND, "output node '%s' is not in the graph", want);
}

vd_status vd_convert_tfjs(const vd_convert_opts *opts, vd_convert_info *info, vd_error *err)
{
    vd_error local;
    if (!err) err = &local;
    vd_error_clear(err);
    if (info) memset(info, 0, sizeof *info);
    if (!opts->model_path || !opts->onnx_path)
        return vd_error_set(err, VD_ERR_INVALID, "a model path and an ONNX path are required");
    if (opts->noutputs == 0 || opts->noutputs > VD_CONVERT_MAX_OUTPUTS)
        return vd_error_set(err, VD_ERR_INVALID, "give 1 to %d output nodes",
                            VD_CONVERT_MAX_OUTPUTS);
    if (opts->input_rank < 0 || opts->input_rank > MAXR)
        return vd_error_set(err, VD_ERR_INVALID, "bad input shape rank %d", opts->input_rank);

    ctx c = {.opts = opts, .err = err};
    vd_status s = vd_tfjs_load(opts->model_path, &c.m, err);
    if (s != VD_OK) return s;
    vd_onnx_graph_init(&c.g);
    c.vals = calloc(c.m->nnodes + 1, sizeof *c.vals);
    if (!c.vals) {
        s = oom(&c);
        goto done;
    }
    for (size_t i = 0; i < c.m->nnodes; i++) {
        c.vals[i].rank = -1;
        c.vals[i].input_index = -1;
        c.vals[i].last_consumer = -1;
    }
    for (size_t i = 0; i < c.m->nnodes; i++)
        for (size_t k = 0; k < ndata(&c.m->nodes[i]); k++) {
            long p = producer_quiet(&c, &c.m->nodes[i], k);
            if (p < 0) continue;
            c.vals[p].consumers++;
            c.vals[p].last_consumer = (long)i;
        }
    size_t outs[VD_CONVERT_MAX_OUTPUTS];
    for (size_t k = 0; k < opts->noutputs; k++) {
        if ((s = find_output(&c, opts->outputs[k], &outs[k])) != VD_OK) goto done;
        c.vals[outs[k]].consumers++; /* a requested output is read too */
    }
    for (size_t k = 0; k < opts->noutputs; k++)
        if ((s = visit(&c, outs[k], 0)) != VD_OK) goto done;
    if (c.info.ninputs == 0) {
        s = vd_error_set(err, VD_ERR_INVALID, "the outputs do not depend on any Placeholder input");
        goto done;
    }
    for (size_t k = 0; k < opts->noutputs; k++) {
        tval *v = &c.vals[outs[k]];
        const vd_tfjs_node *n = &c.m->nodes[outs[k]];
        if (v->konst) {
            s = vd_error_set(err, VD_ERR_INVALID, "output '%s' is a constant", n->name);
            goto done;
        }
        const char *t = want_nhwc(&c, outs[k]);
        if (!t) {
            s = oom(&c);
            goto done;
        }
        const char *want = opts->output_names[k] ? opts->output_names[k] : n->name;
        for (size_t j = 0; j < k; j++)
            if (strcmp(c.info.outputs[j].name, want) == 0) {
                s = vd_error_set(err, VD_ERR_INVALID, "output name '%s' given twice", want);
                goto done;
            }
        /* A graph input cannot also be an output under the same name, and an
         * alias needs its own node. */
        if (strcmp(t, want) != 0 || v->input_index >= 0) {
            if (v->input_index >= 0 && strcmp(t, want) == 0) {
                s = vd_error_set(err, VD_ERR_INVALID,
                                 "output '%s' is the input itself; give it another name", want);
                goto done;
            }
            emit_simple(&c, "Identity", t, NULL, want);
        }
        vd_convert_value *ov = &c.info.outputs[c.info.noutputs++];
        vd_strlcpy(ov->name, want, sizeof ov->name);
        ov->rank = v->rank;
        for (int i = 0; i < v->rank && i < MAXR; i++)
            ov->dims[i] = v->dims[i];
        vd_onnx_graph_add_output(&c.g, want, VD_ONNX_FLOAT, v->dims, v->rank, BATCH_N);
    }
    char doc[512];
    snprintf(doc, sizeof doc, "converted by visiond convert from %s", opts->model_path);
    s = vd_onnx_write(&c.g, "visiond_converted", OPSET, "visiond convert", doc, opts->onnx_path,
                      err);
    c.info.tf_nodes_used = c.used;
    c.info.onnx_nodes = c.g.nnodes;
    c.info.onnx_initializers = c.g.ninitializers;
    if (s == VD_OK && info) *info = c.info;
done:
    if (c.vals)
        for (size_t i = 0; i < c.m->nnodes; i++) {
            free(c.vals[i].nhwc);
            free(c.vals[i].nchw);
        }
    free(c.vals);
    vd_onnx_graph_free(&c.g);
    vd_tfjs_free(c.m);
    return s;
}
