/* convert_lower.c: the helpers every lowering function uses (convert_impl.h). */
#include "convert/convert_impl.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

const int64_t CV_PERM_TO_NCHW[4] = {0, 3, 1, 2};
const int64_t CV_PERM_TO_NHWC[4] = {0, 2, 3, 1};

size_t cv_idx_of(const ctx *c, const vd_tfjs_node *n)
{
    return (size_t)(n - c->m->nodes);
}

char *cv_fmt_name(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

/* A fresh helper tensor name derived from a node's name. */
char *cv_helper(ctx *c, const vd_tfjs_node *n, const char *what)
{
    return cv_fmt_name("%s/__%s_%u", n->name, what, c->counter++);
}

vd_status cv_oom(ctx *c)
{
    return vd_error_set(c->err, VD_ERR_NOMEM, "out of memory");
}

vd_status cv_unsupported(ctx *c, const vd_tfjs_node *n, const char *why)
{
    return vd_error_set(c->err, VD_ERR_UNSUPPORTED, "node '%s' (op %s): %s", n->name, n->op, why);
}

/* ---- emitting ONNX nodes -------------------------------------------------- */

void cv_node1(ctx *c, const char *op, const char *name, const char *in0, const char *in1,
              const char *out, vd_onnx_node *nd)
{
    vd_onnx_node_begin(nd, op, name);
    vd_onnx_node_input(nd, in0);
    if (in1) vd_onnx_node_input(nd, in1);
    vd_onnx_node_output(nd, out);
    (void)c;
}

void cv_emit_simple(ctx *c, const char *op, const char *in0, const char *in1, const char *out)
{
    vd_onnx_node nd;
    cv_node1(c, op, out, in0, in1, out, &nd);
    vd_onnx_graph_add_node(&c->g, &nd);
}

void cv_emit_transpose(ctx *c, const char *in, const char *out, const int64_t *perm, int rank)
{
    vd_onnx_node nd;
    cv_node1(c, "Transpose", out, in, NULL, out, &nd);
    vd_onnx_node_attr_ints(&nd, "perm", perm, (size_t)rank);
    vd_onnx_graph_add_node(&c->g, &nd);
}

char *cv_init_f32(ctx *c, const vd_tfjs_node *n, const char *what, const float *data,
                  const int64_t *dims, int rank, size_t count)
{
    char *name = cv_helper(c, n, what);
    if (name)
        vd_onnx_graph_add_initializer(&c->g, name, VD_ONNX_FLOAT, dims, rank, data, count * 4);
    return name;
}

char *cv_init_i64(ctx *c, const vd_tfjs_node *n, const char *what, const int64_t *data,
                  const int64_t *dims, int rank, size_t count)
{
    char *name = cv_helper(c, n, what);
    if (name)
        vd_onnx_graph_add_initializer(&c->g, name, VD_ONNX_INT64, dims, rank, data, count * 8);
    return name;
}

char *cv_scalar_f32(ctx *c, const vd_tfjs_node *n, const char *what, float v)
{
    return cv_init_f32(c, n, what, &v, NULL, 0, 1);
}

/* ---- values --------------------------------------------------------------- */

/* Resolves input k of n to the producing node (visited). Control inputs are skipped by callers.
 * Not inlined: its 2 KB of buffers must stay out of visit's recursive frame. */
__attribute__((noinline)) vd_status cv_input_node(ctx *c, const vd_tfjs_node *n, size_t k,
                                                  size_t *out)
{
    if (k >= n->ninputs) return cv_unsupported(c, n, "too few inputs");
    const char *in = n->inputs[k];
    char name[1024];
    vd_strlcpy(name, in, sizeof name);
    char *colon = strrchr(name, ':');
    if (colon) {
        if (strcmp(colon, ":0") != 0) {
            char why[1200];
            snprintf(why, sizeof why, "input '%s' uses an output other than 0", in);
            return cv_unsupported(c, n, why);
        }
        *colon = 0;
    }
    const vd_tfjs_node *p = vd_tfjs_node_find(c->m, name);
    if (!p)
        return vd_error_set(c->err, VD_ERR_INVALID, "node '%s': input '%s' is not in the graph",
                            n->name, in);
    *out = cv_idx_of(c, p);
    return VD_OK;
}

/* The producer of input k of n, without reporting errors; -1 when unknown. */
long cv_producer_quiet(const ctx *c, const vd_tfjs_node *n, size_t k)
{
    char name[1024];
    vd_strlcpy(name, n->inputs[k], sizeof name);
    char *colon = strrchr(name, ':');
    if (colon) {
        if (strcmp(colon, ":0") != 0) return -1;
        *colon = 0;
    }
    const vd_tfjs_node *p = vd_tfjs_node_find(c->m, name);
    return p ? (long)cv_idx_of(c, p) : -1;
}

/* The number of data inputs (control inputs "^x" come last in a GraphDef). */
size_t cv_ndata(const vd_tfjs_node *n)
{
    size_t k = 0;
    while (k < n->ninputs && n->inputs[k][0] != '^')
        k++;
    return k;
}

/* Makes sure value i exists in TF layout and returns its ONNX name (borrowed). */
const char *cv_want_nhwc(ctx *c, size_t i)
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
        cv_emit_transpose(c, v->nchw, v->nhwc, CV_PERM_TO_NHWC, 4);
        return v->nhwc;
    }
    return NULL; /* not reached: every visited non-const value has a form */
}

/* Makes sure value i exists in NCHW (it must be rank 4) and returns its name. */
const char *cv_want_nchw(ctx *c, size_t i)
{
    tval *v = &c->vals[i];
    if (v->nchw) return v->nchw;
    const char *src = cv_want_nhwc(c, i);
    if (!src) return NULL;
    v->nchw = cv_fmt_name("%s/__nchw", c->m->nodes[i].name);
    if (!v->nchw) return NULL;
    cv_emit_transpose(c, src, v->nchw, CV_PERM_TO_NCHW, 4);
    return v->nchw;
}

/* Input k of n as a tensor in TF layout. */
vd_status cv_in_tensor(ctx *c, const vd_tfjs_node *n, size_t k, const char **name, tval **val)
{
    size_t p;
    vd_status s = cv_input_node(c, n, k, &p);
    if (s != VD_OK) return s;
    *name = cv_want_nhwc(c, p);
    if (!*name) return cv_oom(c);
    if (val) *val = &c->vals[p];
    return VD_OK;
}

/* Input k of n as a rank-4 NCHW tensor. */
vd_status cv_in_nchw(ctx *c, const vd_tfjs_node *n, size_t k, const char **name, tval **val)
{
    size_t p;
    vd_status s = cv_input_node(c, n, k, &p);
    if (s != VD_OK) return s;
    if (c->vals[p].rank != 4 && c->vals[p].rank != -1)
        return cv_unsupported(c, n, "expects a rank-4 NHWC input");
    *name = cv_want_nchw(c, p);
    if (!*name) return cv_oom(c);
    if (val) *val = &c->vals[p];
    return VD_OK;
}

/* Input k of n as a constant (its weight). */
vd_status cv_in_const(ctx *c, const vd_tfjs_node *n, size_t k, const char *what,
                      const vd_tfjs_weight **w)
{
    size_t p;
    *w = NULL;
    vd_status s = cv_input_node(c, n, k, &p);
    if (s != VD_OK) return s;
    if (!c->vals[p].konst) {
        char why[256];
        snprintf(why, sizeof why, "the %s must be a constant", what);
        return cv_unsupported(c, n, why);
    }
    *w = c->vals[p].konst;
    return VD_OK;
}

/* Reads a constant as int64s (int32 or integral float32). */
vd_status cv_const_ints(ctx *c, const vd_tfjs_node *n, const vd_tfjs_weight *w, int64_t *out,
                        int max, int *count)
{
    *count = 0;
    if ((int)w->count > max) return cv_unsupported(c, n, "constant operand too long");
    for (size_t i = 0; i < w->count; i++)
        out[i] = w->dtype == VD_TFJS_I32 ? ((int32_t *)w->data)[i]
                                         : (int64_t)llroundf(((float *)w->data)[i]);
    *count = (int)w->count;
    return VD_OK;
}

void cv_set_shape(tval *v, const int64_t *dims, int rank)
{
    v->rank = rank;
    for (int i = 0; i < rank && i < MAXR; i++)
        v->dims[i] = dims[i];
}

void cv_copy_shape(tval *dst, const tval *src)
{
    cv_set_shape(dst, src->dims, src->rank);
}

/* ---- shapes --------------------------------------------------------------- */

void cv_broadcast_shape(tval *out, const tval *a, const tval *b)
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

int64_t cv_conv_out(int64_t in, int64_t k, int64_t s, int64_t d, int same, int64_t pb, int64_t pe)
{
    if (in < 0) return -1;
    if (same) return (in + s - 1) / s;
    int64_t eff = (k - 1) * d + 1;
    int64_t v = (in + pb + pe - eff) / s + 1;
    return v < 0 ? 0 : v;
}

/* Applies a fused/standalone activation named act to tensor `in` (any
 * layout for elementwise ones; alpha, for Prelu, is given in the right
 * shape by the caller). *out is the output name (owned). */
vd_status cv_activation(ctx *c, const vd_tfjs_node *n, const char *act, const char *in,
                        const char *alpha, const char *out_name, char **out)
{
    *out = NULL;
    char *o = out_name ? vd_strdup(out_name) : cv_helper(c, n, act);
    if (!o) return cv_oom(c);
    vd_onnx_node nd;
    if (strcmp(act, "Relu") == 0 || strcmp(act, "Sigmoid") == 0 || strcmp(act, "Tanh") == 0 ||
        strcmp(act, "Elu") == 0 || strcmp(act, "Selu") == 0) {
        cv_emit_simple(c, act, in, NULL, o);
    } else if (strcmp(act, "Relu6") == 0) {
        char *lo = cv_scalar_f32(c, n, "zero", 0), *hi = cv_scalar_f32(c, n, "six", 6);
        if (!lo || !hi) {
            free(lo);
            free(hi);
            free(o);
            return cv_oom(c);
        }
        vd_onnx_node_begin(&nd, "Clip", o);
        vd_onnx_node_input(&nd, in);
        vd_onnx_node_input(&nd, lo);
        vd_onnx_node_input(&nd, hi);
        vd_onnx_node_output(&nd, o);
        vd_onnx_graph_add_node(&c->g, &nd);
        free(lo);
        free(hi);
    } else if (strcmp(act, "LeakyRelu") == 0) {
        cv_node1(c, "LeakyRelu", o, in, NULL, o, &nd);
        double a = vd_tfjs_attr_float(n, "leakyrelu_alpha", vd_tfjs_attr_float(n, "alpha", 0.2));
        vd_onnx_node_attr_float(&nd, "alpha", (float)a);
        vd_onnx_graph_add_node(&c->g, &nd);
    } else if (strcmp(act, "Prelu") == 0 && alpha) {
        cv_emit_simple(c, "PRelu", in, alpha, o);
    } else {
        free(o);
        char why[128];
        snprintf(why, sizeof why, "fused activation %s is not supported", act);
        return cv_unsupported(c, n, why);
    }
    *out = o;
    return VD_OK;
}
