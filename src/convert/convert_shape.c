/* convert_shape.c: Squeeze, ExpandDims, Reshape, Pad, ConcatV2, Transpose. */
#include "convert/convert_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

vd_status cv_op_squeeze(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    const char *x;
    tval *xv = NULL;
    vd_status s = cv_in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    int64_t axes[MAXR];
    int na = vd_tfjs_attr_ints(n, "squeeze_dims", axes, MAXR);
    if (na < 0) na = vd_tfjs_attr_ints(n, "axis", axes, MAXR);
    if (na < 0) na = 0;
    if (na == 0) {
        /* squeeze every size-1 dim: needs a known shape (the batch must stay) */
        if (xv->rank < 0) return cv_unsupported(c, n, "Squeeze without axes needs a known shape");
        for (int i = 1; i < xv->rank; i++)
            if (xv->dims[i] == 1) axes[na++] = i;
    }
    v->nhwc = vd_strdup(n->name);
    int64_t d[1] = {na};
    char *an = cv_init_i64(c, n, "axes", axes, d, 1, (size_t)na);
    if (!v->nhwc || !an) {
        free(an);
        return cv_oom(c);
    }
    cv_emit_simple(c, "Squeeze", x, an, v->nhwc);
    free(an);
    if (xv->rank < 0) {
        v->rank = -1;
        return VD_OK;
    }
    int drop[MAXR] = {0};
    for (int i = 0; i < na; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + xv->rank : axes[i];
        if (a < 0 || a >= xv->rank) return cv_unsupported(c, n, "squeeze axis out of range");
        drop[a] = 1;
    }
    v->rank = 0;
    for (int i = 0; i < xv->rank; i++)
        if (!drop[i]) v->dims[v->rank++] = xv->dims[i];
    return VD_OK;
}

vd_status cv_op_expand_dims(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    const char *x;
    tval *xv = NULL;
    vd_status s = cv_in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *aw;
    if ((s = cv_in_const(c, n, 1, "axis", &aw)) != VD_OK) return s;
    int64_t axis[1];
    int na;
    if (cv_const_ints(c, n, aw, axis, 1, &na) != VD_OK || na != 1)
        return cv_unsupported(c, n, "needs one axis");
    int64_t d[1] = {1};
    v->nhwc = vd_strdup(n->name);
    char *an = cv_init_i64(c, n, "axes", axis, d, 1, 1);
    if (!v->nhwc || !an) {
        free(an);
        return cv_oom(c);
    }
    cv_emit_simple(c, "Unsqueeze", x, an, v->nhwc);
    free(an);
    v->rank = -1;
    if (xv->rank >= 0 && xv->rank < MAXR) {
        int64_t a = axis[0] < 0 ? axis[0] + xv->rank + 1 : axis[0];
        if (a < 0 || a > xv->rank) return cv_unsupported(c, n, "axis out of range");
        v->rank = xv->rank + 1;
        for (int i = 0, j = 0; i < v->rank; i++)
            v->dims[i] = i == a ? 1 : xv->dims[j++];
    }
    return VD_OK;
}

vd_status cv_op_reshape(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    const char *x;
    tval *xv = NULL;
    vd_status s = cv_in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *sw;
    if ((s = cv_in_const(c, n, 1, "shape", &sw)) != VD_OK) return s;
    int64_t shape[MAXR];
    int r;
    if ((s = cv_const_ints(c, n, sw, shape, MAXR, &r)) != VD_OK) return s;
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
    char *sn = cv_init_i64(c, n, "shape", onnx_shape, d, 1, (size_t)r);
    if (!v->nhwc || !sn) {
        free(sn);
        return cv_oom(c);
    }
    cv_emit_simple(c, "Reshape", x, sn, v->nhwc);
    free(sn);
    v->rank = r;
    for (int i = 0; i < r; i++)
        v->dims[i] = onnx_shape[i] == 0 ? xv->dims[0] : shape[i];
    return VD_OK;
}

vd_status cv_op_pad(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    const char *x;
    tval *xv = NULL;
    vd_status s = cv_in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *pw;
    if ((s = cv_in_const(c, n, 1, "paddings", &pw)) != VD_OK) return s;
    int64_t p[2 * MAXR];
    int np;
    if (cv_const_ints(c, n, pw, p, 2 * MAXR, &np) != VD_OK || np % 2)
        return cv_unsupported(c, n, "paddings must be [rank, 2]");
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
        if (strcmp(tfmode, "REFLECT") != 0) return cv_unsupported(c, n, "only REFLECT MirrorPad");
        mode = "reflect";
    }
    int64_t d[1] = {np};
    v->nhwc = vd_strdup(n->name);
    char *pn = cv_init_i64(c, n, "pads", pads, d, 1, (size_t)np);
    char *cv = NULL;
    if (strcmp(n->op, "PadV2") == 0) {
        const vd_tfjs_weight *cw;
        if ((s = cv_in_const(c, n, 2, "constant value", &cw)) != VD_OK) {
            free(pn);
            return s;
        }
        if (cw->count != 1 || cw->dtype != VD_TFJS_F32) {
            free(pn);
            return cv_unsupported(c, n, "PadV2 value must be a float scalar");
        }
        cv = cv_scalar_f32(c, n, "value", ((float *)cw->data)[0]);
    }
    if (!v->nhwc || !pn || (strcmp(n->op, "PadV2") == 0 && !cv)) {
        free(pn);
        free(cv);
        return cv_oom(c);
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
    cv_copy_shape(v, xv);
    if (v->rank == r)
        for (int i = 0; i < r; i++)
            if (v->dims[i] >= 0) v->dims[i] += pads[i] + pads[r + i];
    return VD_OK;
}

vd_status cv_op_concat(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    size_t nd_in = cv_ndata(n);
    if (nd_in < 2) return cv_unsupported(c, n, "needs inputs and an axis");
    vd_status s;
    const vd_tfjs_weight *aw;
    if ((s = cv_in_const(c, n, nd_in - 1, "axis", &aw)) != VD_OK) return s;
    int64_t axis[1];
    int na;
    if (cv_const_ints(c, n, aw, axis, 1, &na) != VD_OK || na != 1)
        return cv_unsupported(c, n, "needs one axis");
    v->nhwc = vd_strdup(n->name);
    if (!v->nhwc) return cv_oom(c);
    vd_onnx_node nd;
    vd_onnx_node_begin(&nd, "Concat", v->nhwc);
    v->rank = -1;
    int64_t total = 0;
    for (size_t k = 0; k + 1 < nd_in; k++) {
        const char *x;
        tval *xv = NULL;
        vd_status s = cv_in_tensor(c, n, k, &x, &xv);
        if (s != VD_OK) {
            vd_pb_free(&nd.pb);
            return s;
        }
        vd_onnx_node_input(&nd, x);
        if (k == 0) cv_copy_shape(v, xv);
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

vd_status cv_op_transpose(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    const char *x;
    tval *xv = NULL;
    vd_status s = cv_in_tensor(c, n, 0, &x, &xv);
    if (s != VD_OK) return s;
    const vd_tfjs_weight *pw;
    if ((s = cv_in_const(c, n, 1, "perm", &pw)) != VD_OK) return s;
    int64_t perm[MAXR];
    int r;
    if ((s = cv_const_ints(c, n, pw, perm, MAXR, &r)) != VD_OK) return s;
    v->nhwc = vd_strdup(n->name);
    if (!v->nhwc) return cv_oom(c);
    cv_emit_transpose(c, x, v->nhwc, perm, r);
    v->rank = xv->rank == r ? r : -1;
    for (int i = 0; i < v->rank; i++) {
        if (perm[i] < 0 || perm[i] >= r) return cv_unsupported(c, n, "bad perm");
        v->dims[i] = xv->dims[perm[i]];
    }
    return VD_OK;
}
