/* convert_nn.c: convolutions, pools, MatMul and batch norm. */
#include "convert/convert_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- spatial ops (conv, depthwise conv, pools) --------------------------- */

typedef struct {
    int64_t strides[2], dilations[2], pads[4]; /* pads: top, left, bottom, right (ONNX order) */
    int same;
} spatial;

static vd_status spatial_attrs(ctx *c, const vd_tfjs_node *n, spatial *sp)
{
    char fmt[32] = "NHWC", pad[32] = "";
    vd_tfjs_attr_string(n, "data_format", fmt, sizeof fmt);
    if (strcmp(fmt, "NHWC") != 0) return cv_unsupported(c, n, "only data_format NHWC is supported");
    int64_t v[8];
    int k = vd_tfjs_attr_ints(n, "strides", v, 8);
    sp->strides[0] = k == 4 ? v[1] : 1;
    sp->strides[1] = k == 4 ? v[2] : 1;
    k = vd_tfjs_attr_ints(n, "dilations", v, 8);
    sp->dilations[0] = k == 4 ? v[1] : 1;
    sp->dilations[1] = k == 4 ? v[2] : 1;
    if (sp->strides[0] < 1 || sp->strides[1] < 1 || sp->dilations[0] < 1 || sp->dilations[1] < 1)
        return cv_unsupported(c, n, "bad strides or dilations");
    memset(sp->pads, 0, sizeof sp->pads);
    sp->same = 0;
    vd_tfjs_attr_string(n, "padding", pad, sizeof pad);
    if (strcmp(pad, "SAME") == 0) {
        sp->same = 1;
    } else if (strcmp(pad, "EXPLICIT") == 0) {
        k = vd_tfjs_attr_ints(n, "explicit_paddings", v, 8);
        if (k != 8) return cv_unsupported(c, n, "EXPLICIT padding needs 8 explicit_paddings");
        sp->pads[0] = v[2];
        sp->pads[2] = v[3];
        sp->pads[1] = v[4];
        sp->pads[3] = v[5];
    } else if (strcmp(pad, "VALID") != 0) {
        return cv_unsupported(c, n, "padding must be SAME, VALID or EXPLICIT");
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

/* Reads fused_ops: requires BiasAdd first (or nothing), returns the activation in act ("" none). */
static vd_status fused_ops(ctx *c, const vd_tfjs_node *n, int *has_bias, char *act, size_t size)
{
    char op0[64] = "", op1[64] = "";
    int k = vd_tfjs_attr_list_string(n, "fused_ops", 0, op0, sizeof op0);
    if (k > 1) vd_tfjs_attr_list_string(n, "fused_ops", 1, op1, sizeof op1);
    *has_bias = 0;
    act[0] = 0;
    if (k == 0) return VD_OK;
    if (k > 2) return cv_unsupported(c, n, "more than two fused ops");
    if (strcmp(op0, "BiasAdd") != 0) {
        char why[160];
        snprintf(why, sizeof why, "fused op %s is not supported (only BiasAdd + activation)", op0);
        return cv_unsupported(c, n, why);
    }
    *has_bias = 1;
    if (k == 2) vd_strlcpy(act, op1, size);
    return VD_OK;
}

vd_status cv_op_conv(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    int depthwise = (op->flags & CV_DEPTHWISE) != 0, fused = (op->flags & CV_FUSED) != 0;
    spatial sp;
    vd_status s = spatial_attrs(c, n, &sp);
    if (s != VD_OK) return s;
    int has_bias = 0;
    char act[64] = "";
    if (fused && (s = fused_ops(c, n, &has_bias, act, sizeof act)) != VD_OK) return s;
    const char *x;
    tval *xv = NULL;
    if ((s = cv_in_nchw(c, n, 0, &x, &xv)) != VD_OK) return s;
    const vd_tfjs_weight *w;
    if ((s = cv_in_const(c, n, 1, "filter", &w)) != VD_OK) return s;
    if (w->rank != 4 || w->dtype != VD_TFJS_F32) return cv_unsupported(c, n, "bad filter");
    int64_t kh = w->shape[0], kw = w->shape[1], cin = w->shape[2], co = w->shape[3];
    int64_t cout = depthwise ? cin * co : co;
    /* TF [kh,kw,cin,cout] -> ONNX [cout,cin,kh,kw]; depthwise [kh,kw,cin,m] -> [cin*m,1,kh,kw] */
    float *wt = malloc(w->count * sizeof *wt);
    if (!wt) return cv_oom(c);
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
    char *wname = cv_init_f32(c, n, "W", wt, wdims, 4, w->count);
    free(wt);
    char *bname = NULL;
    if (has_bias) {
        const vd_tfjs_weight *b;
        if ((s = cv_in_const(c, n, 2, "bias", &b)) != VD_OK) {
            free(wname);
            return s;
        }
        if (b->dtype != VD_TFJS_F32 || (int64_t)b->count != cout) {
            free(wname);
            return cv_unsupported(c, n, "bias length does not match the output channels");
        }
        int64_t bd[1] = {cout};
        bname = cv_init_f32(c, n, "B", b->data, bd, 1, b->count);
    }
    char *conv_out_name = cv_helper(c, n, "conv");
    if (!wname || (has_bias && !bname) || !conv_out_name) {
        free(wname);
        free(bname);
        free(conv_out_name);
        return cv_oom(c);
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
            const vd_tfjs_weight *a;
            if ((s = cv_in_const(c, n, 3, "Prelu alpha", &a)) != VD_OK) {
                free(out);
                return s;
            }
            if ((int64_t)a->count != cout || a->dtype != VD_TFJS_F32) {
                free(out);
                return cv_unsupported(c, n, "Prelu alpha must have one value per channel");
            }
            int64_t ad[3] = {cout, 1, 1};
            alpha = cv_init_f32(c, n, "alpha", a->data, ad, 3, a->count);
        }
        char *o2;
        s = cv_activation(c, n, act, out, alpha, NULL, &o2);
        free(alpha);
        free(out);
        if (s != VD_OK) return s;
        out = o2;
    }
    v->nchw = out;
    v->rank = 4;
    v->dims[0] = xv->rank == 4 ? xv->dims[0] : -1;
    v->dims[1] = xv->rank == 4 ? cv_conv_out(xv->dims[1], kh, sp.strides[0], sp.dilations[0],
                                             sp.same, sp.pads[0], sp.pads[2])
                               : -1;
    v->dims[2] = xv->rank == 4 ? cv_conv_out(xv->dims[2], kw, sp.strides[1], sp.dilations[1],
                                             sp.same, sp.pads[1], sp.pads[3])
                               : -1;
    v->dims[3] = cout;
    return VD_OK;
}

vd_status cv_op_pool(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    const char *onnx_op = op->onnx;
    spatial sp;
    vd_status s = spatial_attrs(c, n, &sp);
    if (s != VD_OK) return s;
    int64_t ks[8];
    if (vd_tfjs_attr_ints(n, "ksize", ks, 8) != 4) return cv_unsupported(c, n, "needs a 4-d ksize");
    const char *x;
    tval *xv = NULL;
    if ((s = cv_in_nchw(c, n, 0, &x, &xv)) != VD_OK) return s;
    char *out = cv_helper(c, n, "pool");
    if (!out) return cv_oom(c);
    vd_onnx_node nd;
    cv_node1(c, onnx_op, out, x, NULL, out, &nd);
    int64_t k2[2] = {ks[1], ks[2]};
    vd_onnx_node_attr_ints(&nd, "kernel_shape", k2, 2);
    spatial_onnx_attrs(&nd, &sp, 0);
    vd_onnx_graph_add_node(&c->g, &nd);
    v->nchw = out;
    cv_copy_shape(v, xv);
    if (v->rank == 4) {
        v->dims[1] =
            cv_conv_out(xv->dims[1], ks[1], sp.strides[0], 1, sp.same, sp.pads[0], sp.pads[2]);
        v->dims[2] =
            cv_conv_out(xv->dims[2], ks[2], sp.strides[1], 1, sp.same, sp.pads[1], sp.pads[3]);
    }
    return VD_OK;
}

/* ---- matmul --------------------------------------------------------------- */

/* MatMul's B operand (input 1), transposed when tb: a folded initializer when it is a float
 * constant, else the tensor (behind a Transpose when tb). *name is its ONNX name, *owned what
 * the caller frees (NULL or *name); *bk, *bn its inner and outer sizes (-1 unknown). */
static vd_status matmul_b(ctx *c, const vd_tfjs_node *n, int tb, const char **name, char **owned,
                          int64_t *bk, int64_t *bn)
{
    static const int64_t swap[2] = {1, 0};
    *name = *owned = NULL;
    *bk = *bn = -1;
    size_t bp;
    vd_status s = cv_input_node(c, n, 1, &bp);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *bw = c->vals[bp].konst;
    if (bw && bw->rank == 2 && bw->dtype == VD_TFJS_F32) {
        int64_t r = bw->shape[0], cl = bw->shape[1];
        if (tb) {
            float *t = malloc(bw->count * sizeof *t);
            if (!t) return cv_oom(c);
            const float *src = bw->data;
            for (int64_t i = 0; i < r; i++)
                for (int64_t j = 0; j < cl; j++)
                    t[j * r + i] = src[i * cl + j];
            int64_t d[2] = {cl, r};
            *owned = cv_init_f32(c, n, "B", t, d, 2, bw->count);
            free(t);
            *bk = cl;
            *bn = r;
        } else {
            *owned = cv_init_f32(c, n, "B", bw->data, bw->shape, 2, bw->count);
            *bk = r;
            *bn = cl;
        }
        *name = *owned;
        return *name ? VD_OK : cv_oom(c);
    }
    const char *bt = cv_want_nhwc(c, bp);
    if (!bt) return cv_oom(c);
    if (tb) {
        *owned = cv_helper(c, n, "Bt");
        if (!*owned) return cv_oom(c);
        cv_emit_transpose(c, bt, *owned, swap, 2);
        *name = *owned;
    } else {
        *name = bt;
    }
    if (c->vals[bp].rank == 2) {
        *bk = c->vals[bp].dims[tb ? 1 : 0];
        *bn = c->vals[bp].dims[tb ? 0 : 1];
    }
    return VD_OK;
}

vd_status cv_op_matmul(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    int fused = (op->flags & CV_FUSED) != 0;
    int ta = vd_tfjs_attr_bool(n, "transpose_a", 0), tb = vd_tfjs_attr_bool(n, "transpose_b", 0);
    int has_bias = 0;
    char act[64] = "";
    vd_status s;
    if (fused && (s = fused_ops(c, n, &has_bias, act, sizeof act)) != VD_OK) return s;
    const char *a;
    tval *av = NULL;
    if ((s = cv_in_tensor(c, n, 0, &a, &av)) != VD_OK) return s;
    if (av->rank != 2 && av->rank != -1) return cv_unsupported(c, n, "only rank-2 MatMul");
    char *aname = NULL;
    static const int64_t swap[2] = {1, 0};
    if (ta) {
        aname = cv_helper(c, n, "At");
        if (!aname) return cv_oom(c);
        cv_emit_transpose(c, a, aname, swap, 2);
        a = aname;
    }
    const char *b;
    char *bname;
    int64_t bk, bn;
    if ((s = matmul_b(c, n, tb, &b, &bname, &bk, &bn)) != VD_OK) {
        free(aname);
        return s;
    }
    int64_t ak = av->rank == 2 ? av->dims[ta ? 0 : 1] : -1;
    if (ak >= 0 && bk >= 0 && ak != bk) {
        free(aname);
        free(bname);
        return vd_error_set(c->err, VD_ERR_INVALID,
                            "node '%s' (op %s): inner dimensions differ (%lld vs %lld)", n->name,
                            n->op, (long long)ak, (long long)bk);
    }
    char *mm = has_bias || act[0] ? cv_helper(c, n, "mm") : vd_strdup(n->name);
    if (!mm) {
        free(aname);
        free(bname);
        free(mm);
        return cv_oom(c);
    }
    cv_emit_simple(c, "MatMul", a, b, mm);
    free(aname);
    free(bname);
    char *cur = mm;
    if (has_bias) {
        const char *bias;
        if ((s = cv_in_tensor(c, n, 2, &bias, NULL)) != VD_OK) {
            free(cur);
            return s;
        }
        char *o = act[0] ? cv_helper(c, n, "bias") : vd_strdup(n->name);
        if (!o) {
            free(cur);
            return cv_oom(c);
        }
        cv_emit_simple(c, "Add", cur, bias, o);
        free(cur);
        cur = o;
    }
    if (act[0]) {
        const char *alpha = NULL;
        if (strcmp(act, "Prelu") == 0 && (s = cv_in_tensor(c, n, 3, &alpha, NULL)) != VD_OK) {
            free(cur);
            return s;
        }
        char *o;
        s = cv_activation(c, n, act, cur, alpha, n->name, &o);
        free(cur);
        if (s != VD_OK) return s;
        cur = o;
    }
    v->nhwc = cur;
    v->rank = 2;
    v->dims[0] = av->rank == 2 ? av->dims[ta ? 1 : 0] : -1;
    v->dims[1] = bn;
    return VD_OK;
}

vd_status cv_op_batchnorm(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    if (vd_tfjs_attr_bool(n, "is_training", 0)) return cv_unsupported(c, n, "training mode");
    char fmt[32] = "NHWC";
    vd_tfjs_attr_string(n, "data_format", fmt, sizeof fmt);
    if (strcmp(fmt, "NHWC") != 0) return cv_unsupported(c, n, "only data_format NHWC");
    const char *x;
    tval *xv = NULL;
    vd_status s = cv_in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *p[4];
    static const char *what[4] = {"scale", "offset", "mean", "variance"};
    for (int i = 0; i < 4; i++)
        if ((s = cv_in_const(c, n, (size_t)i + 1, what[i], &p[i])) != VD_OK) return s;
    size_t ch = p[0]->count;
    for (int i = 0; i < 4; i++)
        if (p[i]->count != ch || p[i]->dtype != VD_TFJS_F32)
            return cv_unsupported(c, n,
                                  "batch-norm parameters must be float vectors of one length");
    double eps = vd_tfjs_attr_float(n, "epsilon", 0.001);
    float *mul = malloc(ch * sizeof *mul), *add = malloc(ch * sizeof *add);
    if (!mul || !add) {
        free(mul);
        free(add);
        return cv_oom(c);
    }
    for (size_t i = 0; i < ch; i++) {
        const float *sc = p[0]->data, *of = p[1]->data, *mn = p[2]->data, *vr = p[3]->data;
        mul[i] = (float)(sc[i] / sqrt((double)vr[i] + eps));
        add[i] = (float)(of[i] - mn[i] * (double)mul[i]);
    }
    int64_t d[1] = {(int64_t)ch};
    char *mn = cv_init_f32(c, n, "bn_mul", mul, d, 1, ch);
    char *an = cv_init_f32(c, n, "bn_add", add, d, 1, ch);
    char *t = cv_helper(c, n, "bn");
    v->nhwc = vd_strdup(n->name);
    free(mul);
    free(add);
    if (!mn || !an || !t || !v->nhwc) {
        free(mn);
        free(an);
        free(t);
        return cv_oom(c);
    }
    cv_emit_simple(c, "Mul", x, mn, t);
    cv_emit_simple(c, "Add", t, an, v->nhwc);
    free(mn);
    free(an);
    free(t);
    cv_copy_shape(v, xv);
    return VD_OK;
}
