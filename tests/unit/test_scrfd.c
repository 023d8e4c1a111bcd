/* test_scrfd.c: the SCRFD decoder (faces/scrfd.h) on outputs crafted to place
 * known faces, and the ArcFace alignment (faces/align.h) that uses its five
 * landmarks. A 64 x 64 input has 128 anchors at stride 8 (8 x 8 locations x
 * 2), 32 at 16 and 8 at 32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "faces/align.h"
#include "faces/scrfd.h"
#include "vdtest.h"

#define W 64
#define H 64

static const int STRIDE[3] = {8, 16, 32};

static int64_t anchors(int s)
{
    return (int64_t)(W / STRIDE[s]) * (H / STRIDE[s]) * 2;
}

/* Nine zeroed outputs in a shuffled order (kps, scores, boxes), with a
 * batch dim of 2 when batched; out_of[s][k] points at stride s's output k
 * (0 score, 1 box, 2 kps). */
static int make_outputs(vd_tensor outs[9], vd_tensor *out_of[3][3], int batched)
{
    static const int order[9][2] = {{2, 2}, {0, 1}, {1, 0}, {0, 0}, {2, 1},
                                    {1, 2}, {2, 0}, {0, 2}, {1, 1}};
    static const int64_t last[3] = {1, 4, 10};
    for (int i = 0; i < 9; i++) {
        int s = order[i][0], k = order[i][1];
        int64_t shape[3] = {2, anchors(s), last[k]};
        if (vd_tensor_alloc(&outs[i], batched ? shape : shape + 1, batched ? 3 : 2, NULL) != VD_OK)
            return -1;
        out_of[s][k] = &outs[i];
    }
    return 0;
}

/* Puts a face at stride s, grid location (x, y), anchor a, batch item b. */
static void place(vd_tensor *out_of[3][3], int s, int x, int y, int a, int b, float score,
                  const float d[4], const float kp[10])
{
    int64_t n = anchors(s), i = ((int64_t)y * (W / STRIDE[s]) + x) * 2 + a;
    out_of[s][0]->data[b * n + i] = score;
    memcpy(out_of[s][1]->data + (b * n + i) * 4, d, 4 * sizeof *d);
    memcpy(out_of[s][2]->data + (b * n + i) * 10, kp, 10 * sizeof *kp);
}

static void free_all(vd_tensor outs[9])
{
    for (int i = 0; i < 9; i++)
        vd_tensor_free(&outs[i]);
}

static int near(float a, float b)
{
    return fabsf(a - b) < 1e-4f;
}

VD_TEST(places_a_face_where_the_outputs_say)
{
    vd_tensor outs[9], *of[3][3];
    CHECK(make_outputs(outs, of, 1) == 0);
    const float d[4] = {1, 1.5f, 2, 2.5f};
    const float kp[10] = {-1, -1, 1, -1, 0, 0, -0.5f, 1, 0.5f, 1};
    place(of, 0, 3, 2, 1, 1, 0.9f, d, kp); /* batch item 1 */
    vd_face_det *f = NULL;
    size_t n = 0;
    vd_error err;
    CHECK_OK(vd_scrfd_decode(outs, 9, 1, W, H, NULL, NULL, &f, &n, &err));
    CHECK_EQ_INT(n, 1);
    /* anchor (3*8, 2*8) + 0.5, distances times 8 */
    CHECK(near(f[0].x0, 24.5f - 8) && near(f[0].y0, 16.5f - 12));
    CHECK(near(f[0].x1, 24.5f + 16) && near(f[0].y1, 16.5f + 20));
    CHECK(near(f[0].score, 0.9f));
    CHECK(f[0].has_lm5);
    CHECK(near(f[0].lm5[0][0], 16.5f) && near(f[0].lm5[0][1], 8.5f));
    CHECK(near(f[0].lm5[4][0], 28.5f) && near(f[0].lm5[4][1], 24.5f));
    /* BlazeFace slots: eyes, nose, mouth centre */
    CHECK(near(f[0].kp[VD_KP_LEFT_EYE][0], 32.5f) && near(f[0].kp[VD_KP_NOSE][0], 24.5f));
    CHECK(near(f[0].kp[VD_KP_MOUTH][0], 24.5f) && near(f[0].kp[VD_KP_MOUTH][1], 24.5f));
    free(f);
    /* item 0 of the batch holds nothing */
    CHECK_OK(vd_scrfd_decode(outs, 9, 0, W, H, NULL, NULL, &f, &n, &err));
    CHECK_EQ_INT(n, 0);
    free_all(outs);
}

VD_TEST(suppresses_overlaps_and_keeps_the_threshold)
{
    vd_tensor outs[9], *of[3][3];
    CHECK(make_outputs(outs, of, 0) == 0);
    const float d[4] = {2, 2, 2, 2}, small[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    const float kp[10] = {0};
    place(of, 0, 4, 4, 0, 0, 0.8f, d, kp);      /* 32.5 +- 16 */
    place(of, 0, 4, 4, 1, 0, 0.85f, d, kp);     /* the same box, better: wins */
    place(of, 0, 5, 4, 0, 0, 0.7f, d, kp);      /* shifted 8 px: IoU 0.6 > 0.4, dropped */
    place(of, 2, 0, 0, 0, 0, 0.95f, small, kp); /* stride 32 at (0.5, 0.5), apart: kept */
    place(of, 1, 3, 3, 0, 0, 0.49f, small, kp); /* under 0.5: dropped */
    vd_face_det *f = NULL;
    size_t n = 0;
    vd_error err;
    CHECK_OK(vd_scrfd_decode(outs, 9, 0, W, H, NULL, NULL, &f, &n, &err));
    CHECK_EQ_INT(n, 2);
    CHECK(near(f[0].score, 0.95f) && near(f[0].x0, 0.5f - 16));
    CHECK(near(f[1].score, 0.85f) && near(f[1].x0, 32.5f - 16));
    free(f);
    vd_scrfd_opts o = {.score_threshold = 0.4f, .iou_threshold = 0.7f, .max_faces = 3};
    CHECK_OK(vd_scrfd_decode(outs, 9, 0, W, H, &o, NULL, &f, &n, &err));
    CHECK_EQ_INT(n, 3); /* the shifted one survives at IoU 0.7; max_faces caps the rest */
    free(f);
    free_all(outs);
}

VD_TEST(maps_back_to_the_image)
{
    vd_tensor outs[9], *of[3][3];
    CHECK(make_outputs(outs, of, 0) == 0);
    const float d[4] = {1, 1, 1, 1}, kp[10] = {0};
    place(of, 1, 1, 1, 0, 0, 0.9f, d, kp);                      /* (16.5, 16.5) +- 16 */
    vd_prep_map map = {.sx = 0.5, .sy = 0.5, .ox = 0, .oy = 8}; /* a 128 x 96 image, letterboxed */
    vd_face_det *f = NULL;
    size_t n = 0;
    vd_error err;
    CHECK_OK(vd_scrfd_decode(outs, 9, 0, W, H, NULL, &map, &f, &n, &err));
    CHECK_EQ_INT(n, 1);
    CHECK(near(f[0].x0, 1.0f) && near(f[0].y0, (0.5f - 8) * 2));
    CHECK(near(f[0].lm5[2][0], 33.0f) && near(f[0].lm5[2][1], (16.5f - 8) * 2));
    free(f);
    free_all(outs);
}

VD_TEST(refuses_what_is_not_scrfd)
{
    vd_tensor outs[9], *of[3][3];
    CHECK(make_outputs(outs, of, 0) == 0);
    vd_face_det *f = NULL;
    size_t n = 0;
    vd_error err;
    CHECK_EQ_INT(vd_scrfd_decode(outs, 9, 0, 60, 64, NULL, NULL, &f, &n, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_scrfd_decode(outs, 9, 0, 96, 64, NULL, NULL, &f, &n, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "stride 8") != NULL);
    CHECK_EQ_INT(vd_scrfd_decode(outs, 8, 0, W, H, NULL, NULL, &f, &n, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_scrfd_decode(outs, 9, 1, W, H, NULL, NULL, &f, &n, &err), VD_ERR_INVALID);
    CHECK(f == NULL && n == 0);
    free_all(outs);
}

/* Applies m to (x, y). */
static void apply(const double m[6], float x, float y, float *u, float *v)
{
    *u = (float)(m[0] * x + m[1] * y + m[2]);
    *v = (float)(m[3] * x + m[4] * y + m[5]);
}

VD_TEST(arcface_alignment_puts_the_landmarks_on_the_template)
{
    vd_face_det d = {.has_lm5 = 1};
    /* the template, twice as big, turned 90 degrees, moved: any similarity */
    for (int i = 0; i < 5; i++) {
        float x = VD_ARCFACE_TEMPLATE[i][0] + 0.5f, y = VD_ARCFACE_TEMPLATE[i][1] + 0.5f;
        d.lm5[i][0] = 300 - 2 * y, d.lm5[i][1] = 40 + 2 * x;
    }
    double m[6];
    vd_error err;
    CHECK_OK(vd_face_align_arcface_matrix(&d, 112, m, &err));
    for (int i = 0; i < 5; i++) {
        float u, v;
        apply(m, d.lm5[i][0], d.lm5[i][1], &u, &v);
        CHECK(fabsf(u - (VD_ARCFACE_TEMPLATE[i][0] + 0.5f)) < 1e-3f);
        CHECK(fabsf(v - (VD_ARCFACE_TEMPLATE[i][1] + 0.5f)) < 1e-3f);
    }
    /* 128: InsightFace's rule scales by 128/128 and shifts x by 8 */
    CHECK_OK(vd_face_align_arcface_matrix(&d, 128, m, &err));
    float u, v;
    apply(m, d.lm5[2][0], d.lm5[2][1], &u, &v);
    CHECK(fabsf(u - (VD_ARCFACE_TEMPLATE[2][0] + 8.5f)) < 1e-3f);
    CHECK(fabsf(v - (VD_ARCFACE_TEMPLATE[2][1] + 0.5f)) < 1e-3f);
    /* a BlazeFace detection has no mouth corners */
    d.has_lm5 = 0;
    CHECK_EQ_INT(vd_face_align_arcface_matrix(&d, 112, m, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "SCRFD") != NULL);
}

int main(void)
{
    return vd_test_run_all();
}
