/* convert_math.c: elementwise ops (binary, unary, activations) and reductions. */
#include "convert/convert_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

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
    if (w->count == 1) return cv_scalar_f32(c, n, "k", ((const float *)w->data)[0]);
    int64_t d[3] = {(int64_t)w->count, 1, 1};
    return cv_init_f32(c, n, "kc", w->data, d, 3, w->count);
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
    if (strcmp(n->op, "Minimum") != 0 || cv_ndata(n) != 2 || v->consumers != 1) return 0;
    long a = cv_producer_quiet(c, n, 0), b = cv_producer_quiet(c, n, 1);
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
    if (strcmp(mx->op, "Maximum") != 0 || cv_ndata(mx) != 2) return 0;
    long m0 = cv_producer_quiet(c, mx, 0), m1 = cv_producer_quiet(c, mx, 1);
    long self = (long)cv_idx_of(c, n);
    if (!((m0 == self && scalar_const_node(c, m1, &lo)) ||
          (m1 == self && scalar_const_node(c, m0, &lo))))
        return 0;
    v->deferred_min = 1;
    v->clip_src = (size_t)x;
    v->clip_hi = hi;
    cv_copy_shape(v, &c->vals[x]);
    return 1;
}

/* Maximum(deferred Minimum(x, hi), lo) -> Clip(x, lo, hi), in x's layout. */
static vd_status emit_clip(ctx *c, const vd_tfjs_node *n, tval *v, const tval *mn, float lo)
{
    tval *src = &c->vals[mn->clip_src];
    int in_nchw = nchw_only(src);
    const char *x = in_nchw ? src->nchw : cv_want_nhwc(c, mn->clip_src);
    char *out = in_nchw ? cv_fmt_name("%s/__nchw", n->name) : vd_strdup(n->name);
    char *lo_n = cv_scalar_f32(c, n, "lo", lo), *hi_n = cv_scalar_f32(c, n, "hi", mn->clip_hi);
    if (!x || !out || !lo_n || !hi_n) {
        free(out);
        free(lo_n);
        free(hi_n);
        return cv_oom(c);
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
    cv_copy_shape(v, src);
    return VD_OK;
}

vd_status cv_op_binary(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    const char *onnx_op = op->onnx;
    if (defer_min(c, n, v)) return VD_OK;
    if (cv_ndata(n) != 2) return cv_unsupported(c, n, "needs two inputs");
    if (strcmp(n->op, "BiasAdd") == 0) {
        char fmt[32] = "NHWC";
        vd_tfjs_attr_string(n, "data_format", fmt, sizeof fmt);
        if (strcmp(fmt, "NHWC") != 0) return cv_unsupported(c, n, "only data_format NHWC");
    }
    size_t p[2];
    vd_status s;
    if ((s = cv_input_node(c, n, 0, &p[0])) != VD_OK) return s;
    if ((s = cv_input_node(c, n, 1, &p[1])) != VD_OK) return s;
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
                names[k] = cv_want_nchw(c, p[k]);
            }
        }
        v->nchw = cv_fmt_name("%s/__nchw", n->name);
        if (names[0] && names[1] && v->nchw)
            cv_emit_simple(c, onnx_op, names[0], names[1], v->nchw);
        free(owned[0]);
        free(owned[1]);
        if (!names[0] || !names[1] || !v->nchw) return cv_oom(c);
        cv_broadcast_shape(v, av, bv);
        return VD_OK;
    }
    const char *a = cv_want_nhwc(c, p[0]), *b = cv_want_nhwc(c, p[1]);
    v->nhwc = vd_strdup(n->name);
    if (!a || !b || !v->nhwc) return cv_oom(c);
    cv_emit_simple(c, onnx_op, a, b, v->nhwc);
    cv_broadcast_shape(v, av, bv);
    return VD_OK;
}

vd_status cv_op_unary(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    const char *onnx_op = op->onnx;
    size_t p;
    vd_status s = cv_input_node(c, n, 0, &p);
    if (s != VD_OK) return s;
    tval *xv = &c->vals[p];
    int layout_free = strcmp(onnx_op, "Softmax") != 0 && strcmp(onnx_op, "LogSoftmax") != 0;
    int in_nchw = layout_free && nchw_only(xv);
    char *alpha_owned = NULL;
    const char *alpha = NULL;
    if (strcmp(n->op, "Prelu") == 0) {
        size_t ap;
        if ((s = cv_input_node(c, n, 1, &ap)) != VD_OK) return s;
        if (in_nchw && !nchw_const(&c->vals[ap])) in_nchw = 0;
        if (in_nchw) {
            alpha = alpha_owned = nchw_const_name(c, n, &c->vals[ap]);
        } else {
            alpha = cv_want_nhwc(c, ap);
        }
        if (!alpha) return cv_oom(c);
    }
    const char *x = in_nchw ? xv->nchw : cv_want_nhwc(c, p);
    char *out = in_nchw ? cv_fmt_name("%s/__nchw", n->name) : vd_strdup(n->name);
    if (!x || !out) {
        free(out);
        free(alpha_owned);
        return cv_oom(c);
    }
    cv_copy_shape(v, xv);
    if (in_nchw)
        v->nchw = out;
    else
        v->nhwc = out;
    if (strcmp(n->op, "Rsqrt") == 0) {
        char *t = cv_helper(c, n, "sqrt");
        if (!t) return cv_oom(c);
        cv_emit_simple(c, "Sqrt", x, NULL, t);
        cv_emit_simple(c, "Reciprocal", t, NULL, out);
        free(t);
        return VD_OK;
    }
    if (strcmp(n->op, "Square") == 0) {
        cv_emit_simple(c, "Mul", x, x, out);
        return VD_OK;
    }
    if (strcmp(n->op, "Relu6") == 0 || strcmp(n->op, "LeakyRelu") == 0 ||
        strcmp(n->op, "Prelu") == 0) {
        char *o;
        s = cv_activation(c, n, n->op, x, alpha, out, &o);
        free(alpha_owned);
        if (s != VD_OK) return s;
        free(o); /* the same name as out */
        return VD_OK;
    }
    vd_onnx_node nd;
    cv_node1(c, onnx_op, out, x, NULL, out, &nd);
    if (!layout_free) vd_onnx_node_attr_int(&nd, "axis", -1);
    vd_onnx_graph_add_node(&c->g, &nd);
    return VD_OK;
}

vd_status cv_op_reduce(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    const char *onnx_op = op->onnx;
    size_t p;
    vd_status s = cv_input_node(c, n, 0, &p);
    if (s != VD_OK) return s;
    tval *xv = &c->vals[p];
    const vd_tfjs_weight *aw;
    if ((s = cv_in_const(c, n, 1, "reduction axes", &aw)) != VD_OK) return s;
    int64_t axes[MAXR], onnx_axes[MAXR];
    int na;
    if ((s = cv_const_ints(c, n, aw, axes, MAXR, &na)) != VD_OK) return s;
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
    const char *x = use_nchw ? xv->nchw : cv_want_nhwc(c, p);
    char *out = use_nchw && keep ? cv_fmt_name("%s/__nchw", n->name) : vd_strdup(n->name);
    if (!x || !out) {
        free(out);
        return cv_oom(c);
    }
    if (use_nchw && keep)
        v->nchw = out;
    else
        v->nhwc = out;
    vd_onnx_node nd;
    cv_node1(c, onnx_op, out, x, NULL, out, &nd);
    if (strcmp(onnx_op, "ReduceSum") == 0) {
        int64_t d[1] = {na};
        char *an = cv_init_i64(c, n, "axes", onnx_axes, d, 1, (size_t)na);
        if (!an) {
            vd_pb_free(&nd.pb);
            return cv_oom(c);
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
        if (a < 0 || a >= xv->rank) return cv_unsupported(c, n, "reduction axis out of range");
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
