/* convert.c: TF ops (as TFJS graph models use them) to ONNX opset 13: the graph walk, the
 * driver and the graph's sources (Placeholder, Const, Identity). The ops themselves are
 * lowered through the op table (convert_ops.c); see convert_impl.h for the files. */
#include "convert/convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert/convert_impl.h"
#include "core/util.h"

#define OPSET 13

#define VD_CONVERT_MAX_DEPTH 4000 /* longest input chain followed from an output */

vd_status cv_op_placeholder(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    char dt[64] = "";
    json_t *dtype = n->attr ? json_object_get(n->attr, "dtype") : NULL;
    const char *t = dtype ? json_string_value(json_object_get(dtype, "type")) : NULL;
    if (t) vd_strlcpy(dt, t, sizeof dt);
    if (dt[0] && strcmp(dt, "DT_FLOAT") != 0) return cv_unsupported(c, n, "inputs must be float32");
    if (c->info.ninputs >= VD_CONVERT_MAX_OUTPUTS) return cv_unsupported(c, n, "too many inputs");
    int64_t dims[MAXR];
    int r = vd_tfjs_attr_shape(n, "shape", dims, MAXR);
    const vd_convert_opts *o = c->opts;
    if (o->input_rank > 0) {
        if (r >= 0 && r != o->input_rank) {
            char why[128];
            snprintf(why, sizeof why, "--input-shape has rank %d, the placeholder %d",
                     o->input_rank, r);
            return cv_unsupported(c, n, why);
        }
        for (int i = 0; i < o->input_rank; i++)
            if (r < 0 || o->input_shape[i] >= 0) dims[i] = o->input_shape[i];
        r = o->input_rank;
    }
    if (r > 0) dims[0] = -1; /* the batch is always dynamic */
    cv_set_shape(v, dims, r);
    v->nhwc = vd_strdup(n->name);
    if (!v->nhwc) return cv_oom(c);
    v->input_index = (int)c->info.ninputs;
    vd_convert_value *iv = &c->info.inputs[c->info.ninputs++];
    vd_strlcpy(iv->name, n->name, sizeof iv->name);
    iv->rank = r;
    for (int i = 0; i < r; i++)
        iv->dims[i] = dims[i];
    vd_onnx_graph_add_input(&c->g, n->name, VD_ONNX_FLOAT, dims, r, BATCH_N);
    return VD_OK;
}

vd_status cv_op_const(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    v->konst = vd_tfjs_weight_find(c->m, n->name);
    if (!v->konst) return cv_unsupported(c, n, "constant has no entry in the weights manifest");
    cv_set_shape(v, v->konst->shape, v->konst->rank);
    return VD_OK;
}

/* Identity of a constant is that constant; of a tensor, an ONNX Identity. */
vd_status cv_op_identity(ctx *c, const vd_tfjs_node *n, tval *v, const cv_op *op)
{
    (void)op;
    size_t p;
    vd_status s = cv_input_node(c, n, 0, &p);
    if (s != VD_OK) return s;
    if (c->vals[p].konst) {
        v->konst = c->vals[p].konst;
        cv_copy_shape(v, &c->vals[p]);
        return VD_OK;
    }
    const char *x = cv_want_nhwc(c, p);
    v->nhwc = vd_strdup(n->name);
    if (!x || !v->nhwc) return cv_oom(c);
    cv_emit_simple(c, "Identity", x, NULL, v->nhwc);
    cv_copy_shape(v, &c->vals[p]);
    return VD_OK;
}

/* Lowers node n through the op table. Not inlined: its locals must stay out of visit's
 * recursive frame. */
__attribute__((noinline)) static vd_status emit(ctx *c, const vd_tfjs_node *n, tval *v)
{
    const cv_op *op = cv_op_find(n->op);
    if (!op)
        return vd_error_set(
            c->err, VD_ERR_UNSUPPORTED,
            "unsupported op %s (node '%s'); see docs/convert.md for the supported ops", n->op,
            n->name);
    return op->lower(c, n, v, op);
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
    size_t nd = cv_ndata(n);
    for (size_t k = 0; k < nd; k++) {
        size_t p;
        vd_status s = cv_input_node(c, n, k, &p);
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
        *out = cv_idx_of(c, n);
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
        s = cv_oom(&c);
        goto done;
    }
    for (size_t i = 0; i < c.m->nnodes; i++) {
        c.vals[i].rank = -1;
        c.vals[i].input_index = -1;
        c.vals[i].last_consumer = -1;
    }
    for (size_t i = 0; i < c.m->nnodes; i++)
        for (size_t k = 0; k < cv_ndata(&c.m->nodes[i]); k++) {
            long p = cv_producer_quiet(&c, &c.m->nodes[i], k);
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
        const char *t = cv_want_nhwc(&c, outs[k]);
        if (!t) {
            s = cv_oom(&c);
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
            cv_emit_simple(&c, "Identity", t, NULL, want);
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
