/* onnx_writer.h: builds an ONNX ModelProto (one graph, default domain) and
 * writes it to a file, through the protobuf writer in pb.h.
 *
 * Nodes are appended in the order given, which must be topological (each
 * node's inputs produced by a graph input, an initializer or an earlier node).
 * Tensor data is copied on the call; nothing the caller passes is kept. Like
 * vd_pb_buf, the writer remembers an allocation failure and reports it at
 * vd_onnx_write. */
#ifndef VD_ONNX_WRITER_H
#define VD_ONNX_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "convert/pb.h"
#include "core/err.h"

/* ONNX TensorProto.DataType values we use. */
enum { VD_ONNX_FLOAT = 1, VD_ONNX_INT32 = 6, VD_ONNX_INT64 = 7 };

typedef struct {
    vd_pb_buf nodes;        /* encoded NodeProto fields of the graph */
    vd_pb_buf initializers; /* encoded TensorProto fields of the graph */
    vd_pb_buf inputs;       /* encoded ValueInfoProto fields */
    vd_pb_buf outputs;
    size_t nnodes, ninitializers;
} vd_onnx_graph;

/* One node under construction: fill it with vd_onnx_node_* and hand it to
 * vd_onnx_graph_add_node, which frees it. */
typedef struct {
    vd_pb_buf pb;
} vd_onnx_node;

void vd_onnx_graph_init(vd_onnx_graph *g);
void vd_onnx_graph_free(vd_onnx_graph *g);

/* Adds an initializer (a constant tensor) of `dtype` with the given dims;
 * data holds nbytes little-endian bytes. */
void vd_onnx_graph_add_initializer(vd_onnx_graph *g, const char *name, int dtype,
                                   const int64_t *dims, int rank, const void *data, size_t nbytes);

/* Adds a graph input or output of element type dtype. rank < 0: shape unknown
 * (none written). A dim < 0 is unknown: dim 0 is then named batch_param when
 * that is non-NULL (e.g. "N"); other unknown dims are left free. */
void vd_onnx_graph_add_input(vd_onnx_graph *g, const char *name, int dtype, const int64_t *dims,
                             int rank, const char *batch_param);
void vd_onnx_graph_add_output(vd_onnx_graph *g, const char *name, int dtype, const int64_t *dims,
                              int rank, const char *batch_param);

/* Starts a node of type op named name. */
void vd_onnx_node_begin(vd_onnx_node *n, const char *op, const char *name);
void vd_onnx_node_input(vd_onnx_node *n, const char *tensor); /* "" = an omitted optional input */
void vd_onnx_node_output(vd_onnx_node *n, const char *tensor);
void vd_onnx_node_attr_int(vd_onnx_node *n, const char *name, int64_t v);
void vd_onnx_node_attr_float(vd_onnx_node *n, const char *name, float v);
void vd_onnx_node_attr_string(vd_onnx_node *n, const char *name, const char *v);
void vd_onnx_node_attr_ints(vd_onnx_node *n, const char *name, const int64_t *v, size_t count);

/* Appends the node to the graph and frees the node's buffer. */
void vd_onnx_graph_add_node(vd_onnx_graph *g, vd_onnx_node *n);

/* Writes a ModelProto (IR version 7, the default domain at `opset`) holding
 * the graph named graph_name to path, atomically (a temporary file renamed
 * into place). VD_ERR_NOMEM if any earlier step ran out of memory,
 * VD_ERR_IO when the file cannot be written. */
vd_status vd_onnx_write(const vd_onnx_graph *g, const char *graph_name, int opset,
                        const char *producer, const char *doc, const char *path, vd_error *err);

#endif
