/* test_convert_oracle.c: the shipped TFJS models, converted by `visiond convert`
 * and run in ONNX Runtime, against TensorFlow.js itself (tests/oracle/
 * tfjs_oracle.js, pure JS cpu backend) on the same inputs: a seeded random
 * tensor and real photos (decoded and stretched to the input size by libvips,
 * scaled as each model wants: faceres and faceres-deep raw 0..255 at 224x224,
 * mobilenet_v2_mid [0,1] at 224x224, mobilefacenet raw 0..255 at 112x112).
 *
 * Requires node and the oracle's npm packages (scripts/setup.sh); skipped
 * otherwise. Prints the measured errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vips/vips.h>

#include "convert/convert.h"
#include "core/err.h"
#include "infer/ort_session.h"
#include "infer/tensor.h"
#include "vdtest.h"

#define NPM           "/opt/visiond/deps/npm/"
#define FACERES       NPM "@vladmandic+human@3.3.6/models/faceres.json"
#define MOBILENET     NPM "nsfwjs@4.3.0/dist/models/mobilenet_v2_mid/model.min.js"
#define HUMAN_MODELS  NPM "@vladmandic+human-models@3.0.4/models/"
#define PHOTOS        NPM "@vladmandic+face-api@1.7.15/demo/"
#define TFJS_CORE     "/@tensorflow/tfjs-core/package.json"
#define REL_TOLERANCE 1e-3

static const char *tfjs_modules(void)
{
    const char *m = getenv("VISIOND_TFJS_MODULES");
    return m && *m ? m : "/opt/visiond/deps/node/node_modules";
}

static int have_oracle(const char *model)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", tfjs_modules(), TFJS_CORE);
    if (system("node --version >/dev/null 2>&1") != 0) {
        vd_test_skip("node is not installed");
        return 0;
    }
    if (access(path, R_OK) != 0) {
        vd_test_skip("@tensorflow/tfjs-core is not installed (run scripts/setup.sh)");
        return 0;
    }
    if (access(model, R_OK) != 0) {
        vd_test_skip("the model's npm package is missing (run scripts/setup.sh)");
        return 0;
    }
    return 1;
}

/* Writes image i of the batch: a photo stretched to size x size RGB, times scale. */
static int photo_into(const char *file, int size, float scale, float *dst)
{
    VipsImage *t = NULL;
    if (vips_thumbnail(file, &t, size, "height", size, "size", VIPS_SIZE_FORCE, NULL)) return 0;
    size_t len = 0;
    unsigned char *px = vips_image_write_to_memory(t, &len);
    int bands = vips_image_get_bands(t);
    g_object_unref(t);
    if (!px || bands < 3 || len != (size_t)size * size * bands) {
        g_free(px);
        return 0;
    }
    for (size_t i = 0; i < (size_t)size * size; i++)
        for (int c = 0; c < 3; c++)
            dst[i * 3 + c] = px[i * bands + c] * scale;
    g_free(px);
    return 1;
}

static float *read_f32(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *d = malloc(n > 0 ? (size_t)n : 1);
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *count = (size_t)n / 4;
    return d;
}

typedef struct {
    const char *label, *model, *node, *onnx_name;
    float scale; /* pixel 0..255 times this is the model's input */
    int64_t dim;
    int size; /* input height = width */
} oracle_case;

static double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / (sqrt(aa * bb) + 1e-30);
}

static void run_case(const oracle_case *oc)
{
    if (!have_oracle(oc->model)) return;
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char onnx[512], in_path[512], ref_path[512], cmd[4096];
    snprintf(onnx, sizeof onnx, "%s/model.onnx", dir);
    snprintf(in_path, sizeof in_path, "%s/input.f32", dir);
    snprintf(ref_path, sizeof ref_path, "%s/ref.f32", dir);

    vd_convert_opts o = {.model_path = oc->model, .onnx_path = onnx, .noutputs = 1};
    o.outputs[0] = oc->node;
    o.output_names[0] = oc->onnx_name;
    vd_convert_info info;
    CHECK_OK(vd_convert_tfjs(&o, &info, &err));
    CHECK_EQ_INT(info.noutputs, 1);
    CHECK_EQ_INT(info.outputs[0].rank, 2);
    CHECK_EQ_INT(info.outputs[0].dims[0], -1); /* dynamic batch */
    CHECK_EQ_INT(info.outputs[0].dims[1], oc->dim);

    /* The batch: a seeded random tensor over the model's input range, then photos. */
    static const char *photos[] = {PHOTOS "sample1.jpg", PHOTOS "sample2.jpg",
                                   PHOTOS "sample6.jpg"};
    enum { NPHOTOS = 3, N = NPHOTOS + 1 };
    const size_t PER = (size_t)oc->size * oc->size * 3;
    vd_tensor in;
    int64_t shape[4] = {N, oc->size, oc->size, 3};
    CHECK_OK(vd_tensor_alloc(&in, shape, 4, &err));
    uint32_t seed = 12345;
    for (size_t i = 0; i < PER; i++) {
        seed = seed * 1664525u + 1013904223u;
        in.data[i] = (float)((seed >> 8) / 16777216.0 * 255.0) * oc->scale;
    }
    for (int p = 0; p < NPHOTOS; p++)
        if (!photo_into(photos[p], oc->size, oc->scale, in.data + (size_t)(p + 1) * PER)) {
            vd_tensor_free(&in);
            vd_test_fail_at(__FILE__, __LINE__, "cannot decode %s", photos[p]);
            return;
        }
    FILE *f = fopen(in_path, "wb");
    CHECK(f);
    CHECK(fwrite(in.data, 4, vd_tensor_count(&in), f) == vd_tensor_count(&in));
    fclose(f);

    snprintf(cmd, sizeof cmd,
             "node '%s/tests/oracle/tfjs_oracle.js' --model '%s' --input '%s' --shape %d,%d,%d,3 "
             "--output '%s' --out '%s' 2>'%s/oracle.err' >'%s/oracle.out'",
             VISIOND_SOURCE_DIR, oc->model, in_path, N, oc->size, oc->size, oc->node, ref_path, dir,
             dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/oracle.err' >&2", dir);
        if (system(cmd)) {
        }
        vd_tensor_free(&in);
        vd_test_fail_at(__FILE__, __LINE__, "the oracle failed (exit %d)", rc);
        return;
    }
    size_t nref = 0;
    float *ref = read_f32(ref_path, &nref);
    CHECK(ref);
    if (nref != (size_t)N * (size_t)oc->dim) {
        free(ref);
        vd_tensor_free(&in);
        vd_test_fail_at(__FILE__, __LINE__, "oracle wrote %zu floats", nref);
        return;
    }

    vd_ort_env *env = NULL;
    vd_ort_session *s = NULL;
    vd_tensor out = {0};
    vd_status st = vd_ort_env_new(1, &env, &err);
    if (st == VD_OK) st = vd_ort_session_open(env, onnx, &s, &err);
    const char *names[1] = {oc->onnx_name};
    if (st == VD_OK) st = vd_ort_session_run(s, NULL, &in, names, 1, &out, &err);
    vd_tensor_free(&in);
    if (st != VD_OK) {
        free(ref);
        vd_ort_session_close(s);
        vd_ort_env_free(env);
        vd_test_fail_at(__FILE__, __LINE__, "ORT: %s", vd_error_text(&err));
        return;
    }
    int ok = vd_tensor_count(&out) == nref;
    double worst_rel = 0;
    for (int b = 0; ok && b < N; b++) {
        const float *r = ref + (size_t)b * oc->dim, *g = out.data + (size_t)b * oc->dim;
        double max_abs = 0, max_ref = 0, max_elem_rel = 0;
        for (int64_t i = 0; i < oc->dim; i++)
            if (fabs(r[i]) > max_ref) max_ref = fabs(r[i]);
        for (int64_t i = 0; i < oc->dim; i++) {
            double d = fabs((double)r[i] - g[i]);
            if (d > max_abs) max_abs = d;
            if (fabs(r[i]) > 0.01 * max_ref && d / fabs(r[i]) > max_elem_rel)
                max_elem_rel = d / fabs(r[i]);
        }
        double rel = max_abs / (max_ref > 0 ? max_ref : 1);
        if (rel > worst_rel) worst_rel = rel;
        printf("    %s item %d (%s): max |ref| %.4g, max abs err %.3g, rel (to max |ref|) %.3g, "
               "max elementwise rel (|ref| > 1%% of max) %.3g, cosine %.7f\n",
               oc->label, b, b == 0 ? "random" : photos[b - 1] + strlen(PHOTOS), max_ref, max_abs,
               rel, max_elem_rel, cosine(r, g, (size_t)oc->dim));
    }
    /* The photos' embeddings must differ from each other (a broken model gives near-constant
     * outputs) */
    double c12 = ok ? cosine(ref + oc->dim, ref + 2 * oc->dim, (size_t)oc->dim) : 1;
    printf("    %s: cosine between the embeddings of sample1 and sample2: %.4f\n", oc->label, c12);
    free(ref);
    vd_tensor_free(&out);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
    CHECK(ok);
    CHECK(worst_rel < REL_TOLERANCE);
    CHECK(c12 < 0.995);
}

VD_TEST(faceres_matches_tfjs)
{
    oracle_case oc = {"faceres", FACERES, "global_pooling/Mean", "embedding", 1.0f, 1024, 224};
    run_case(&oc);
}

VD_TEST(mobilenet_v2_mid_matches_tfjs)
{
    oracle_case oc = {
        "mobilenet_v2", MOBILENET, "feature_vector/SpatialSqueeze", "embedding", 1.0f / 255.0f,
        1792,           224};
    run_case(&oc);
}

VD_TEST(faceres_deep_matches_tfjs)
{
    oracle_case oc = {"faceres-deep",
                      HUMAN_MODELS "faceres-deep.json",
                      "global_pooling/Mean",
                      "embedding",
                      1.0f,
                      1024,
                      224};
    run_case(&oc);
}

VD_TEST(mobilefacenet_matches_tfjs)
{
    oracle_case oc = {"mobilefacenet",
                      HUMAN_MODELS "mobilefacenet.json",
                      "embeddings",
                      "embedding",
                      1.0f,
                      192,
                      112};
    run_case(&oc);
}

int main(void)
{
    if (VIPS_INIT("test_convert_oracle")) return 1;
    int rc = vd_test_run_all();
    vips_shutdown();
    return rc;
}
