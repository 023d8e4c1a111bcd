/* convert.h: `visiond convert`, TensorFlow.js graph models to ONNX.
 *
 * Loads a TFJS graph model (tfjs.h), keeps only the nodes the requested
 * outputs depend on, maps each TF op to ONNX ops (opset 13) and writes an
 * ONNX file (onnx_writer.h). The ONNX model keeps TF's layout at its edges:
 * its input is the TF Placeholder, NHWC float32, with a dynamic batch
 * dimension named "N" (whatever the Placeholder or input_shape says about
 * dim 0) so that the model server can batch; convolutions and pools run in
 * NCHW inside, between Transposes. Constant operands (filters, biases, axes,
 * paddings) are folded into initializers.
 *
 * An op with no mapping is VD_ERR_UNSUPPORTED naming the op and the node;
 * see docs/convert.md for the list of supported ops (vd_convert_op_name). */
#ifndef VD_CONVERT_H
#define VD_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VD_CONVERT_MAX_OUTPUTS 8
#define VD_CONVERT_MAX_RANK    8
#define VD_CONVERT_NAME_MAX    256

typedef struct {
    const char *model_path; /* model JSON, or a JS module exporting it (model.min.js) */
    /* TF node names to expose as graph outputs: the exact name, or a unique
     * suffix after a '/' ("feature_vector/SpatialSqueeze"); ":0" is allowed. */
    const char *outputs[VD_CONVERT_MAX_OUTPUTS];
    /* ONNX names for them (NULL = the TF node's full name). */
    const char *output_names[VD_CONVERT_MAX_OUTPUTS];
    size_t noutputs;
    /* Overrides the Placeholders' shape (dims >= 0 replace, -1 keeps); 0 = none.
     * Dim 0 stays dynamic regardless. */
    int64_t input_shape[VD_CONVERT_MAX_RANK];
    int input_rank;
    const char *onnx_path; /* written atomically */
} vd_convert_opts;

typedef struct {
    char name[VD_CONVERT_NAME_MAX];
    int rank;                          /* -1 = unknown */
    int64_t dims[VD_CONVERT_MAX_RANK]; /* -1 = dynamic or unknown */
} vd_convert_value;

typedef struct {
    size_t ninputs, noutputs;
    vd_convert_value inputs[VD_CONVERT_MAX_OUTPUTS]; /* the graph inputs (Placeholders used) */
    vd_convert_value outputs[VD_CONVERT_MAX_OUTPUTS];
    size_t tf_nodes_used; /* TF nodes the outputs depend on (incl. Const) */
    size_t onnx_nodes, onnx_initializers;
} vd_convert_info;

/* Converts opts->model_path to opts->onnx_path; fills *info (may be NULL)
 * with the graph's inputs and outputs (shapes as inferred by the converter). */
vd_status vd_convert_tfjs(const vd_convert_opts *opts, vd_convert_info *info, vd_error *err);

/* The supported TF ops, by index: the name of op i, NULL past the last one. */
const char *vd_convert_op_name(size_t i);

#endif
