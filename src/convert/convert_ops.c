/* convert_ops.c: the op table, the one place that says which TF ops the converter supports
 * and which lowering function (and variant) each one goes through. docs/convert.md lists
 * the same ops; tests/unit/test_convert.c checks that every entry is reachable, that no
 * name is given twice and that the docs name them all. */
#include <stddef.h>
#include <string.h>

#include "convert/convert_impl.h"

static const cv_op OPS[] = {
    /* graph sources */
    {"Placeholder", cv_op_placeholder, NULL, 0},
    {"Const", cv_op_const, NULL, 0},
    {"Identity", cv_op_identity, NULL, 0},
    {"StopGradient", cv_op_identity, NULL, 0},
    {"Snapshot", cv_op_identity, NULL, 0},
    /* convolutions, pools, MatMul, batch norm (convert_nn.c) */
    {"Conv2D", cv_op_conv, NULL, 0},
    {"_FusedConv2D", cv_op_conv, NULL, CV_FUSED},
    {"DepthwiseConv2dNative", cv_op_conv, NULL, CV_DEPTHWISE},
    {"FusedDepthwiseConv2dNative", cv_op_conv, NULL, CV_DEPTHWISE | CV_FUSED},
    {"MaxPool", cv_op_pool, "MaxPool", 0},
    {"AvgPool", cv_op_pool, "AveragePool", 0},
    {"MatMul", cv_op_matmul, NULL, 0},
    {"_FusedMatMul", cv_op_matmul, NULL, CV_FUSED},
    {"FusedBatchNorm", cv_op_batchnorm, NULL, 0},
    {"FusedBatchNormV2", cv_op_batchnorm, NULL, 0},
    {"FusedBatchNormV3", cv_op_batchnorm, NULL, 0},
    /* elementwise, two inputs (convert_math.c) */
    {"Add", cv_op_binary, "Add", 0},
    {"AddV2", cv_op_binary, "Add", 0},
    {"BiasAdd", cv_op_binary, "Add", 0},
    {"Sub", cv_op_binary, "Sub", 0},
    {"Mul", cv_op_binary, "Mul", 0},
    {"RealDiv", cv_op_binary, "Div", 0},
    {"Div", cv_op_binary, "Div", 0},
    {"Maximum", cv_op_binary, "Max", 0},
    {"Minimum", cv_op_binary, "Min", 0},
    {"Pow", cv_op_binary, "Pow", 0},
    /* elementwise, one input: the ONNX op of the same meaning */
    {"Relu", cv_op_unary, "Relu", 0},
    {"Sigmoid", cv_op_unary, "Sigmoid", 0},
    {"Tanh", cv_op_unary, "Tanh", 0},
    {"Elu", cv_op_unary, "Elu", 0},
    {"Selu", cv_op_unary, "Selu", 0},
    {"Exp", cv_op_unary, "Exp", 0},
    {"Log", cv_op_unary, "Log", 0},
    {"Neg", cv_op_unary, "Neg", 0},
    {"Abs", cv_op_unary, "Abs", 0},
    {"Sqrt", cv_op_unary, "Sqrt", 0},
    {"Floor", cv_op_unary, "Floor", 0},
    {"Ceil", cv_op_unary, "Ceil", 0},
    {"Round", cv_op_unary, "Round", 0},
    {"Reciprocal", cv_op_unary, "Reciprocal", 0},
    {"Softplus", cv_op_unary, "Softplus", 0},
    {"Sign", cv_op_unary, "Sign", 0},
    /* ... written out by cv_op_unary (several ONNX nodes, or an activation) */
    {"Relu6", cv_op_unary, "Relu6", 0},
    {"LeakyRelu", cv_op_unary, "LeakyRelu", 0},
    {"Prelu", cv_op_unary, "Prelu", 0},
    {"Rsqrt", cv_op_unary, "Rsqrt", 0},
    {"Square", cv_op_unary, "Square", 0},
    /* ... along the last axis */
    {"Softmax", cv_op_unary, "Softmax", 0},
    {"LogSoftmax", cv_op_unary, "LogSoftmax", 0},
    /* reductions */
    {"Mean", cv_op_reduce, "ReduceMean", 0},
    {"Sum", cv_op_reduce, "ReduceSum", 0},
    {"Max", cv_op_reduce, "ReduceMax", 0},
    {"Min", cv_op_reduce, "ReduceMin", 0},
    {"Prod", cv_op_reduce, "ReduceProd", 0},
    /* shapes (convert_shape.c) */
    {"Squeeze", cv_op_squeeze, NULL, 0},
    {"ExpandDims", cv_op_expand_dims, NULL, 0},
    {"Reshape", cv_op_reshape, NULL, 0},
    {"Pad", cv_op_pad, NULL, 0},
    {"PadV2", cv_op_pad, NULL, 0},
    {"MirrorPad", cv_op_pad, NULL, 0},
    {"ConcatV2", cv_op_concat, NULL, 0},
    {"Transpose", cv_op_transpose, NULL, 0},
};

const cv_op *cv_op_find(const char *name)
{
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (strcmp(OPS[i].tf, name) == 0) return &OPS[i];
    return NULL;
}

const char *vd_convert_op_name(size_t i)
{
    return i < sizeof OPS / sizeof OPS[0] ? OPS[i].tf : NULL;
}
