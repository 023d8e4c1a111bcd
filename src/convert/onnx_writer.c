/* onnx_writer.c: ONNX ModelProto encoding (field numbers from onnx.proto). */
#include "convert/onnx_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* onnx.proto field numbers */
enum {
    MODEL_IR_VERSION = 1,
    MODEL_PRODUCER_NAME = 2,
    MODEL_PRODUCER_VERSION = 3,
    MODEL_DOC = 6,
    MODEL_GRAPH = 7,
    MODEL_OPSET_IMPORT = 8,
    OPSET_DOMAIN = 1,
    OPSET_VERSION = 2,
    GRAPH_NODE = 1,
    GRAPH_NAME = 2,
    GRAPH_INITIALIZER = 5,
    GRAPH_INPUT = 11,
    GRAPH_OUTPUT = 12,
    NODE_INPUT = 1,
    NODE_OUTPUT = 2,
    NODE_NAME = 3,
    NODE_OP_TYPE = 4,
    NODE_ATTRIBUTE = 5,
    ATTR_NAME = 1,
    ATTR_F = 2,
    ATTR_I = 3,
    ATTR_S = 4,
    ATTR_INTS = 8,
    ATTR_TYPE = 20,
    TENSOR_DIMS = 1,
    TENSOR_DATA_TYPE = 2,
    TENSOR_NAME = 8,
    TENSOR_RAW_DATA = 9,
    VALUE_INFO_NAME = 1,
    VALUE_INFO_TYPE = 2,
    TYPE_TENSOR = 1,
    TYPE_TENSOR_ELEM_TYPE = 1,
    TYPE_TENSOR_SHAPE = 2,
    SHAPE_DIM = 1,
    DIM_VALUE = 1,
    DIM_PARAM = 2,
};
/* AttributeProto.AttributeType */
enum { ATTR_TYPE_FLOAT = 1, ATTR_TYPE_INT = 2, ATTR_TYPE_STRING = 3, ATTR_TYPE_INTS = 7 };

void vd_onnx_graph_init(vd_onnx_graph *g)
{
    memset(g, 0, sizeof *g);
    vd_pb_init(&g->nodes);
    vd_pb_init(&g->initializers);
    vd_pb_init(&g->inputs);
    vd_pb_init(&g->outputs);
}

void vd_onnx_graph_free(vd_onnx_graph *g)
{
    vd_pb_free(&g->nodes);
    vd_pb_free(&g->initializers);
    vd_pb_free(&g->inputs);
    vd_pb_free(&g->outputs);
}

void vd_onnx_graph_add_initializer(vd_onnx_graph *g, const char *name, int dtype,
                                   const int64_t *dims, int rank, const void *data, size_t nbytes)
{
    vd_pb_buf t;
    vd_pb_init(&t);
    for (int i = 0; i < rank; i++)
        vd_pb_varint(&t, TENSOR_DIMS, dims[i]);
    vd_pb_varint(&t, TENSOR_DATA_TYPE, dtype);
    vd_pb_string(&t, TENSOR_NAME, name);
    vd_pb_bytes(&t, TENSOR_RAW_DATA, data, nbytes);
    vd_pb_message(&g->initializers, GRAPH_INITIALIZER, &t);
    vd_pb_free(&t);
    g->ninitializers++;
}

static void value_info(vd_pb_buf *out, int field, const char *name, int dtype, const int64_t *dims,
                       int rank, const char *batch_param)
{
    vd_pb_buf vi, type, tensor, shape, dim;
    vd_pb_init(&vi);
    vd_pb_init(&type);
    vd_pb_init(&tensor);
    vd_pb_init(&shape);
    vd_pb_string(&vi, VALUE_INFO_NAME, name);
    vd_pb_varint(&tensor, TYPE_TENSOR_ELEM_TYPE, dtype);
    if (rank >= 0) {
        for (int i = 0; i < rank; i++) {
            vd_pb_init(&dim);
            if (dims[i] >= 0)
                vd_pb_varint(&dim, DIM_VALUE, dims[i]);
            else if (i == 0 && batch_param)
                vd_pb_string(&dim, DIM_PARAM, batch_param);
            vd_pb_message(&shape, SHAPE_DIM, &dim);
            vd_pb_free(&dim);
        }
        vd_pb_message(&tensor, TYPE_TENSOR_SHAPE, &shape);
    }
    vd_pb_message(&type, TYPE_TENSOR, &tensor);
    vd_pb_message(&vi, VALUE_INFO_TYPE, &type);
    vd_pb_message(out, field, &vi);
    vd_pb_free(&vi);
    vd_pb_free(&type);
    vd_pb_free(&tensor);
    vd_pb_free(&shape);
}

void vd_onnx_graph_add_input(vd_onnx_graph *g, const char *name, int dtype, const int64_t *dims,
                             int rank, const char *batch_param)
{
    value_info(&g->inputs, GRAPH_INPUT, name, dtype, dims, rank, batch_param);
}

void vd_onnx_graph_add_output(vd_onnx_graph *g, const char *name, int dtype, const int64_t *dims,
                              int rank, const char *batch_param)
{
    value_info(&g->outputs, GRAPH_OUTPUT, name, dtype, dims, rank, batch_param);
}

void vd_onnx_node_begin(vd_onnx_node *n, const char *op, const char *name)
{
    vd_pb_init(&n->pb);
    vd_pb_string(&n->pb, NODE_OP_TYPE, op);
    vd_pb_string(&n->pb, NODE_NAME, name);
}

void vd_onnx_node_input(vd_onnx_node *n, const char *tensor)
{
    vd_pb_string(&n->pb, NODE_INPUT, tensor);
}

void vd_onnx_node_output(vd_onnx_node *n, const char *tensor)
{
    vd_pb_string(&n->pb, NODE_OUTPUT, tensor);
}

static void attr_done(vd_onnx_node *n, vd_pb_buf *a)
{
    vd_pb_message(&n->pb, NODE_ATTRIBUTE, a);
    vd_pb_free(a);
}

void vd_onnx_node_attr_int(vd_onnx_node *n, const char *name, int64_t v)
{
    vd_pb_buf a;
    vd_pb_init(&a);
    vd_pb_string(&a, ATTR_NAME, name);
    vd_pb_varint(&a, ATTR_TYPE, ATTR_TYPE_INT);
    vd_pb_varint(&a, ATTR_I, v);
    attr_done(n, &a);
}

void vd_onnx_node_attr_float(vd_onnx_node *n, const char *name, float v)
{
    vd_pb_buf a;
    vd_pb_init(&a);
    vd_pb_string(&a, ATTR_NAME, name);
    vd_pb_varint(&a, ATTR_TYPE, ATTR_TYPE_FLOAT);
    vd_pb_float(&a, ATTR_F, v);
    attr_done(n, &a);
}

void vd_onnx_node_attr_string(vd_onnx_node *n, const char *name, const char *v)
{
    vd_pb_buf a;
    vd_pb_init(&a);
    vd_pb_string(&a, ATTR_NAME, name);
    vd_pb_varint(&a, ATTR_TYPE, ATTR_TYPE_STRING);
    vd_pb_string(&a, ATTR_S, v);
    attr_done(n, &a);
}

void vd_onnx_node_attr_ints(vd_onnx_node *n, const char *name, const int64_t *v, size_t count)
{
    vd_pb_buf a;
    vd_pb_init(&a);
    vd_pb_string(&a, ATTR_NAME, name);
    vd_pb_varint(&a, ATTR_TYPE, ATTR_TYPE_INTS);
    for (size_t i = 0; i < count; i++)
        vd_pb_varint(&a, ATTR_INTS, v[i]);
    attr_done(n, &a);
}

void vd_onnx_graph_add_node(vd_onnx_graph *g, vd_onnx_node *n)
{
    vd_pb_message(&g->nodes, GRAPH_NODE, &n->pb);
    vd_pb_free(&n->pb);
    g->nnodes++;
}

static void append_raw(vd_pb_buf *dst, const vd_pb_buf *src)
{
    /* The graph's repeated fields are already encoded with their tags:
     * concatenating encoded fields is concatenating messages. */
    if (src->oom) dst->oom = 1;
    if (dst->oom || !src->len) return;
    size_t need = dst->len + src->len;
    if (need > dst->cap) {
        uint8_t *p = realloc(dst->data, need);
        if (!p) {
            dst->oom = 1;
            return;
        }
        dst->data = p;
        dst->cap = need;
    }
    memcpy(dst->data + dst->len, src->data, src->len);
    dst->len += src->len;
}

vd_status vd_onnx_write(const vd_onnx_graph *g, const char *graph_name, int opset,
                        const char *producer, const char *doc, const char *path, vd_error *err)
{
    vd_pb_buf graph, model, op;
    vd_pb_init(&graph);
    vd_pb_init(&model);
    vd_pb_init(&op);
    append_raw(&graph, &g->nodes);
    vd_pb_string(&graph, GRAPH_NAME, graph_name);
    append_raw(&graph, &g->initializers);
    append_raw(&graph, &g->inputs);
    append_raw(&graph, &g->outputs);

    vd_pb_varint(&model, MODEL_IR_VERSION, 7);
    vd_pb_string(&op, OPSET_DOMAIN, "");
    vd_pb_varint(&op, OPSET_VERSION, opset);
    vd_pb_message(&model, MODEL_OPSET_IMPORT, &op);
    vd_pb_string(&model, MODEL_PRODUCER_NAME, producer ? producer : "visiond");
    vd_pb_string(&model, MODEL_PRODUCER_VERSION, VISIOND_VERSION);
    if (doc) vd_pb_string(&model, MODEL_DOC, doc);
    vd_pb_message(&model, MODEL_GRAPH, &graph);
    vd_pb_free(&graph);
    vd_pb_free(&op);
    if (model.oom) {
        vd_pb_free(&model);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory while encoding the ONNX model");
    }

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 32);
    if (!tmp) {
        vd_pb_free(&model);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    snprintf(tmp, plen + 32, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        vd_status st = vd_error_set(err, VD_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
        free(tmp);
        vd_pb_free(&model);
        return st;
    }
    size_t wrote = fwrite(model.data, 1, model.len, f);
    int bad = wrote != model.len || ferror(f);
    if (fclose(f) != 0) bad = 1;
    vd_pb_free(&model);
    if (bad || rename(tmp, path) != 0) {
        vd_status st = vd_error_set(err, VD_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return VD_OK;
}
