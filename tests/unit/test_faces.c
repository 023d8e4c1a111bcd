/* test_faces.c: BlazeFace anchors and decoding (synthetic outputs checked by
 * hand), weighted NMS, similarity fits, and the real pipeline on real photos:
 * face counts by eye, the EXIF-rotated twin, shrink-on-load, the 128 model,
 * alignment, and (when the converted faceres model is there) embeddings. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "faces/align.h"
#include "faces/blazeface.h"
#include "faces/faces.h"
#include "image/preprocess.h"
#include "imgtest.h"
#include "vdtest.h"

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            vd_test_fail_at(__FILE__, __LINE__, "%s ~= %s: %.6f != %.6f", #a, #b, a_, b_);         \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* Model search path for the tests: the models scripts/models.sh made (when it
 * ran), then the shipped metadata (BlazeFace points at the npm package). */
#define MODELS_PATH VISIOND_SOURCE_DIR "/data/models:" VISIOND_SOURCE_DIR "/models"

/* Faces counted by eye in the face-api demo photos (sample2's left woman is
 * in profile; all are found by the back model). */
static const int sample_faces[7] = {0, 3, 3, 3, 4, 5, 4};

static vd_runner *runner;

static int runner_ready(void)
{
    vd_error err;
    if (runner) return 1;
    if (vd_runner_ort_new(MODELS_PATH, 1, &runner, &err) != VD_OK) {
        printf("    runner: %s\n", err.msg);
        return 0;
    }
    return 1;
}

VD_TEST(anchors_follow_mediapipe_ssd_layout)
{
    float xy[2 * VD_BLAZEFACE_ANCHORS];
    for (int size = 128; size <= 256; size += 128) {
        CHECK_EQ_INT(vd_blazeface_anchors(size, xy), 896);
        /* 16x16 cells, 2 anchors each, row-major; then 8x8 cells, 6 each. */
        CHECK_NEAR(xy[0], 0.5 / 16, 1e-7);
        CHECK_NEAR(xy[1], 0.5 / 16, 1e-7);
        CHECK_NEAR(xy[2], 0.5 / 16, 1e-7);
        CHECK_NEAR(xy[4], 1.5 / 16, 1e-7);
        CHECK_NEAR(xy[2 * 32], 0.5 / 16, 1e-7);
        CHECK_NEAR(xy[2 * 32 + 1], 1.5 / 16, 1e-7);
        CHECK_NEAR(xy[2 * 511], 15.5 / 16, 1e-7);
        CHECK_NEAR(xy[2 * 512], 0.5 / 8, 1e-7);
        CHECK_NEAR(xy[2 * 517], 0.5 / 8, 1e-7);
        CHECK_NEAR(xy[2 * 518], 1.5 / 8, 1e-7);
        CHECK_NEAR(xy[2 * 895], 7.5 / 8, 1e-7);
        CHECK_NEAR(xy[2 * 895 + 1], 7.5 / 8, 1e-7);
    }
    CHECK_EQ_INT(vd_blazeface_anchors(192, xy), 0);
}

/* Fake BlazeFace outputs: every logit -20 (score ~0) unless set. */
typedef struct {
    vd_tensor s1, s2, b1, b2;
} fake_outs;

static void fake_new(fake_outs *f)
{
    vd_error err;
    int64_t s1[3] = {1, 512, 1}, s2[3] = {1, 384, 1}, b1[3] = {1, 512, 16}, b2[3] = {1, 384, 16};
    vd_tensor_alloc(&f->s1, s1, 3, &err);
    vd_tensor_alloc(&f->s2, s2, 3, &err);
    vd_tensor_alloc(&f->b1, b1, 3, &err);
    vd_tensor_alloc(&f->b2, b2, 3, &err);
    for (int i = 0; i < 512; i++)
        f->s1.data[i] = -20;
    for (int i = 0; i < 384; i++)
        f->s2.data[i] = -20;
}

static void fake_set(fake_outs *f, int anchor, float logit, const float r[16])
{
    vd_tensor *s = anchor < 512 ? &f->s1 : &f->s2, *b = anchor < 512 ? &f->b1 : &f->b2;
    int i = anchor < 512 ? anchor : anchor - 512;
    s->data[i] = logit;
    memcpy(b->data + 16 * i, r, 16 * sizeof(float));
}

static void fake_free(fake_outs *f)
{
    vd_tensor_free(&f->s1);
    vd_tensor_free(&f->s2);
    vd_tensor_free(&f->b1);
    vd_tensor_free(&f->b2);
}

VD_TEST(decode_boxes_keypoints_and_weighted_nms_by_hand)
{
    vd_error err;
    fake_outs f;
    fake_new(&f);
    /* Anchor 34 = cell (1, 1) of the 16x16 grid on a 256 input: centre
     * (1.5/16*256, 1.5/16*256) = (24, 24). Offsets are in input pixels. */
    float r1[16] = {2, -4, 40, 50, -10, -8, 10, -8, 0, 0, 0, 12, -20, 0, 20, 0};
    fake_set(&f, 34, 0.0f, r1); /* sigmoid(0) = 0.5: not above the 0.5 threshold */
    vd_tensor outs[4] = {f.b2, f.s1, f.b1, f.s2}; /* any order */
    vd_face_det *d;
    size_t n;
    CHECK_OK(vd_blazeface_decode(outs, 4, 0, 256, NULL, NULL, &d, &n, &err));
    CHECK_EQ_INT(n, 0);
    CHECK(d == NULL);

    f.s1.data[34] = logf(3.0f); /* sigmoid = 0.75 */
    outs[1] = f.s1;
    CHECK_OK(vd_blazeface_decode(outs, 4, 0, 256, NULL, NULL, &d, &n, &err));
    CHECK_EQ_INT(n, 1);
    CHECK_NEAR(d[0].score, 0.75, 1e-6);
    CHECK_NEAR(d[0].x0, 24 + 2 - 20, 1e-4);
    CHECK_NEAR(d[0].x1, 24 + 2 + 20, 1e-4);
    CHECK_NEAR(d[0].y0, 24 - 4 - 25, 1e-4);
    CHECK_NEAR(d[0].y1, 24 - 4 + 25, 1e-4);
    CHECK_NEAR(d[0].kp[VD_KP_RIGHT_EYE][0], 14, 1e-4);
    CHECK_NEAR(d[0].kp[VD_KP_LEFT_EYE][0], 34, 1e-4);
    CHECK_NEAR(d[0].kp[VD_KP_MOUTH][1], 36, 1e-4);
    free(d);

    /* A second detection at the neighbouring anchor (35: same cell), shifted
     * 4 pixels right, score 0.25/(0.25+0.75)... logit log(1) -> 0.5 is not
     * kept, so use sigmoid = 0.6 (logit log 1.5): merged by weight. */
    float r2[16] = {6, -4, 40, 50, -6, -8, 14, -8, 4, 0, 4, 12, -16, 0, 24, 0};
    fake_set(&f, 35, logf(1.5f), r2);
    /* And a separate face far away in the coarse grid: anchor 512 + 6*9 = cell (1,1) of 8x8,
     * centre (48, 48) on 256. */
    float r3[16] = {100, 100, 30, 30, 0};
    fake_set(&f, 512 + 54, 5.0f, r3);
    vd_tensor outs2[4] = {f.s1, f.s2, f.b1, f.b2};
    CHECK_OK(vd_blazeface_decode(outs2, 4, 0, 256, NULL, NULL, &d, &n, &err));
    CHECK_EQ_INT(n, 2);
    /* Best first: the far face (sigmoid(5)). */
    CHECK_NEAR(d[0].score, 1 / (1 + exp(-5.0)), 1e-6);
    CHECK_NEAR(d[0].x0, 48 + 100 - 15, 1e-3);
    /* The merged pair: weights 0.75 and 0.6, x centre (26*0.75 + 30*0.6)/1.35. */
    CHECK_NEAR(d[1].score, 0.75, 1e-6);
    double cx = (26 * 0.75 + 30 * 0.6) / 1.35;
    CHECK_NEAR((d[1].x0 + d[1].x1) / 2, cx, 1e-3);
    CHECK_NEAR(d[1].kp[VD_KP_RIGHT_EYE][0], (14 * 0.75 + 18 * 0.6) / 1.35, 1e-3);
    free(d);

    /* With a map (letterbox of a 512x256 image into 256: scale 0.5, oy 64). */
    vd_prep_map map = {.sx = 0.5, .sy = 0.5, .ox = 0, .oy = 64};
    vd_blazeface_opts o = {.score_threshold = 0.9f};
    CHECK_OK(vd_blazeface_decode(outs2, 4, 0, 256, &o, &map, &d, &n, &err));
    CHECK_EQ_INT(n, 1);
    CHECK_NEAR(d[0].x0, (48 + 100 - 15) * 2, 1e-3);
    CHECK_NEAR(d[0].y0, (48 + 100 - 15 - 64) * 2, 1e-3);
    free(d);

    /* Not BlazeFace: missing the second pair. */
    CHECK_EQ_INT(vd_blazeface_decode(outs2, 2, 0, 256, NULL, NULL, &d, &n, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_blazeface_decode(outs2, 4, 0, 200, NULL, NULL, &d, &n, &err), VD_ERR_INVALID);
    fake_free(&f);
}

VD_TEST(similarity_fit_recovers_a_known_transform)
{
    vd_error err;
    double ang = 0.5, s = 1.7, tx = 30, ty = -12;
    float src[4][2] = {{10, 20}, {50, 22}, {31, 40}, {29, 60}}, dst[4][2];
    for (int i = 0; i < 4; i++) {
        dst[i][0] = (float)(s * (cos(ang) * src[i][0] - sin(ang) * src[i][1]) + tx);
        dst[i][1] = (float)(s * (sin(ang) * src[i][0] + cos(ang) * src[i][1]) + ty);
    }
    double m[6];
    CHECK_OK(vd_similarity_fit((const float(*)[2])src, (const float(*)[2])dst, 4, m, &err));
    CHECK_NEAR(m[0], s * cos(ang), 1e-4);
    CHECK_NEAR(m[1], -s * sin(ang), 1e-4);
    CHECK_NEAR(m[3], s * sin(ang), 1e-4);
    CHECK_NEAR(m[2], tx, 1e-3);
    CHECK_NEAR(m[5], ty, 1e-3);
    float same[2][2] = {{5, 5}, {5, 5}};
    CHECK_EQ_INT(vd_similarity_fit((const float(*)[2])same, (const float(*)[2])dst, 2, m, &err),
                 VD_ERR_INVALID);
}

static vd_status detect_file(const char *path, const vd_decode_opts *dopts, const char *model,
                             vd_face **faces, size_t *n, vd_image *img_out, vd_error *err)
{
    vd_image img;
    vd_status st = vd_image_decode_file(path, dopts, &img, NULL, err);
    if (st != VD_OK) return st;
    vd_faces_opts o = {.detector = model, .embedder = ""};
    st = vd_faces_run(runner, &img, &o, faces, n, err);
    if (img_out)
        *img_out = img;
    else
        vd_image_free(&img);
    return st;
}

VD_TEST(sample_photos_have_the_faces_counted_by_eye)
{
    vd_error err;
    if (!runner_ready()) {
        vd_test_skip("no ONNX Runtime runner");
        return;
    }
    for (int i = 1; i <= 6; i++) {
        char path[512];
        vd_face *faces;
        size_t n;
        vd_image img;
        int64_t t0 = vd_mono_us();
        CHECK_OK(detect_file(imgtest_sample(path, sizeof path, i), NULL, "blazeface_back", &faces,
                             &n, &img, &err));
        printf("    sample%d: %zu faces (by eye %d), %.1f ms:", i, n, sample_faces[i],
               (vd_mono_us() - t0) / 1000.0);
        for (size_t k = 0; k < n; k++)
            printf(" %.2f", faces[k].det.score);
        printf("\n");
        CHECK_EQ_INT(n, sample_faces[i]);
        for (size_t k = 0; k < n; k++) {
            const vd_face_det *d = &faces[k].det;
            float w = d->x1 - d->x0, h = d->y1 - d->y0;
            /* Boxes are face sized (these photos: 130..300 px) and inside the image. */
            CHECK(w > 100 && w < 350 && h > 100 && h < 350);
            CHECK(d->x0 > -w / 4 && d->x1 < img.width + w / 4);
            CHECK(d->y0 > -h / 4 && d->y1 < img.height + h / 4);
            /* Keypoints inside the box; mouth below the eyes (all upright-ish). */
            for (int j = 0; j < 4; j++) {
                CHECK(d->kp[j][0] > d->x0 - 2 && d->kp[j][0] < d->x1 + 2);
                CHECK(d->kp[j][1] > d->y0 - 2 && d->kp[j][1] < d->y1 + 2);
            }
            CHECK(d->kp[VD_KP_MOUTH][1] > d->kp[VD_KP_RIGHT_EYE][1]);
            CHECK(faces[k].embedding == NULL);
            /* No two faces overlap. */
            for (size_t j = 0; j < k; j++)
                CHECK(vd_face_iou(d, &faces[j].det) < 0.1f);
        }
        vd_faces_free(faces, n);
        vd_image_free(&img);
    }
}

/* Matches each face of a to a face of b by IoU; returns the smallest best IoU. */
static float worst_match(const vd_face *a, size_t na, const vd_face *b, size_t nb)
{
    float worst = 1;
    for (size_t i = 0; i < na; i++) {
        float best = 0;
        for (size_t j = 0; j < nb; j++)
            best = fmaxf(best, vd_face_iou(&a[i].det, &b[j].det));
        worst = fminf(worst, best);
    }
    return worst;
}

VD_TEST(exif_rotated_twin_gives_the_same_faces)
{
    vd_error err;
    if (!runner_ready()) {
        vd_test_skip("no ONNX Runtime runner");
        return;
    }
    for (int i = 1; i <= 6; i += 5) {
        char path[512], twin[600];
        imgtest_sample(path, sizeof path, i);
        VipsImage *in = vips_image_new_from_file(path, NULL), *rot = NULL;
        CHECK(in != NULL);
        /* Pixels turned a quarter right, tagged "rotate 90 CCW to view" (8). */
        CHECK(vips_rot(in, &rot, VIPS_ANGLE_D90, NULL) == 0);
        g_object_unref(in);
        vips_image_set_int(rot, VIPS_META_ORIENTATION, 8);
        snprintf(twin, sizeof twin, "%s/twin%d.jpg[Q=95]", vd_test_tmpdir(), i);
        CHECK(imgtest_save(rot, twin) == 0);
        g_object_unref(rot);
        *strchr(twin, '[') = '\0';

        vd_face *fa, *fb;
        size_t na, nb;
        vd_image a, b;
        CHECK_OK(detect_file(path, NULL, NULL, &fa, &na, &a, &err));
        CHECK_OK(detect_file(twin, NULL, NULL, &fb, &nb, &b, &err));
        double mad = imgtest_mad(&a, &b);
        float iou = worst_match(fa, na, fb, nb);
        printf("    sample%d: %zu vs %zu faces, worst IoU %.3f, pixel mean abs diff %.2f\n", i, na,
               nb, iou, mad);
        CHECK_EQ_INT(b.orientation, 8);
        CHECK(mad >= 0 && mad < 3);
        CHECK_EQ_INT(na, nb);
        CHECK(iou > 0.9f);
        vd_faces_free(fa, na);
        vd_faces_free(fb, nb);
        vd_image_free(&a);
        vd_image_free(&b);
    }
}

VD_TEST(shrink_on_load_reports_original_coordinates)
{
    vd_error err;
    if (!runner_ready()) {
        vd_test_skip("no ONNX Runtime runner");
        return;
    }
    char path[512];
    imgtest_sample(path, sizeof path, 5);
    vd_face *fa, *fb;
    size_t na, nb;
    vd_image small;
    vd_decode_opts o = {.target_width = 256, .target_height = 256};
    CHECK_OK(detect_file(path, NULL, NULL, &fa, &na, NULL, &err));
    CHECK_OK(detect_file(path, &o, NULL, &fb, &nb, &small, &err));
    CHECK(small.width < 1920 / 2);
    float iou = worst_match(fa, na, fb, nb);
    printf("    full vs %dx%d shrink-on-load: %zu vs %zu faces, worst IoU %.3f\n", small.width,
           small.height, na, nb, iou);
    CHECK_EQ_INT(na, nb);
    CHECK(iou > 0.8f);
    vd_faces_free(fa, na);
    vd_faces_free(fb, nb);
    vd_image_free(&small);
}

VD_TEST(front_128_model_finds_a_close_face)
{
    vd_error err;
    if (!runner_ready()) {
        vd_test_skip("no ONNX Runtime runner");
        return;
    }
    /* The short-range model wants big faces: crop around one face of sample6. */
    char path[512];
    vd_image img;
    CHECK_OK(vd_image_decode_file(imgtest_sample(path, sizeof path, 6), NULL, &img, NULL, &err));
    vd_faces_opts o = {.embedder = ""};
    vd_face *all;
    size_t nall;
    CHECK_OK(vd_faces_run(runner, &img, &o, &all, &nall, &err));
    CHECK(nall >= 1);
    vd_face_det ref = all[0].det;
    vd_faces_free(all, nall);
    float cx = (ref.x0 + ref.x1) / 2, cy = (ref.y0 + ref.y1) / 2;
    float side = 2.5f * (ref.x1 - ref.x0);
    double m[6] = {1, 0, -(cx - side / 2), 0, 1, -(cy - side / 2)};
    vd_image crop;
    CHECK_OK(vd_image_warp_affine(&img, m, (int)side, (int)side, &crop, &err));
    o.detector = "blazeface_front";
    vd_face_det *d;
    size_t n;
    CHECK_OK(vd_faces_detect(runner, &crop, &o, &d, &n, &err));
    printf("    front model on a %dx%d crop: %zu face(s)\n", crop.width, crop.height, n);
    CHECK_EQ_INT(n, 1);
    /* Same face as the back model's, in crop coordinates. */
    vd_face_det moved = ref;
    moved.x0 += (float)m[2], moved.x1 += (float)m[2];
    moved.y0 += (float)m[5], moved.y1 += (float)m[5];
    printf("    IoU with the back model's box: %.3f\n", vd_face_iou(&moved, &d[0]));
    CHECK(vd_face_iou(&moved, &d[0]) > 0.6f);
    free(d);
    vd_image_free(&crop);
    vd_image_free(&img);
}

VD_TEST(aligned_crops_put_keypoints_on_the_template)
{
    vd_error err;
    if (!runner_ready()) {
        vd_test_skip("no ONNX Runtime runner");
        return;
    }
    char path[512];
    vd_image img;
    CHECK_OK(vd_image_decode_file(imgtest_sample(path, sizeof path, 3), NULL, &img, NULL, &err));
    vd_faces_opts o = {.embedder = ""};
    vd_face_det *d;
    size_t n;
    CHECK_OK(vd_faces_detect(runner, &img, &o, &d, &n, &err));
    CHECK_EQ_INT(n, 3);
    for (size_t k = 0; k < n; k++) {
        vd_image crop;
        double m[6];
        CHECK_OK(vd_face_align(&img, &d[k], VD_FACE_CROP, &crop, m, &err));
        CHECK_EQ_INT(crop.width, 224);
        /* The eyes land within a few pixels of the template (4-point fit). */
        for (int j = 0; j < 2; j++) {
            double u = m[0] * d[k].kp[j][0] + m[1] * d[k].kp[j][1] + m[2];
            double v = m[3] * d[k].kp[j][0] + m[4] * d[k].kp[j][1] + m[5];
            CHECK(fabs(u - VD_FACE_TEMPLATE[j][0]) < 15 && fabs(v - VD_FACE_TEMPLATE[j][1]) < 15);
        }
        /* Detecting again on the aligned crop finds the face there, centred. */
        vd_face_det *again;
        size_t na;
        o.detector = "blazeface_front";
        CHECK_OK(vd_faces_detect(runner, &crop, &o, &again, &na, &err));
        o.detector = NULL;
        CHECK(na >= 1);
        if (na >= 1) {
            float cx = (again[0].x0 + again[0].x1) / 2, cy = (again[0].y0 + again[0].y1) / 2;
            printf("    face %zu: re-detected in its crop at (%.0f, %.0f), score %.2f\n", k, cx, cy,
                   again[0].score);
            CHECK(fabs(cx - 112) < 25 && fabs(cy - 112) < 35);
        }
        free(again);
        vd_image_free(&crop);
    }

    /* Rotating the photo 20 degrees does not change the aligned crop much. */
    double a = 20 * M_PI / 180, c = cos(a), s = sin(a);
    double cx = img.width / 2.0, cy = img.height / 2.0;
    double rot[6] = {c, -s, cx - c * cx + s * cy, s, c, cy - s * cx - c * cy};
    vd_image turned;
    CHECK_OK(vd_image_warp_affine(&img, rot, img.width, img.height, &turned, &err));
    vd_face_det *dt;
    size_t nt;
    CHECK_OK(vd_faces_detect(runner, &turned, &o, &dt, &nt, &err));
    printf("    rotated 20 degrees: %zu faces\n", nt);
    CHECK(nt >= 1);
    /* Match the best face of the original with its rotated twin. */
    double bx = rot[0] * (d[0].x0 + d[0].x1) / 2 + rot[1] * (d[0].y0 + d[0].y1) / 2 + rot[2];
    double by = rot[3] * (d[0].x0 + d[0].x1) / 2 + rot[4] * (d[0].y0 + d[0].y1) / 2 + rot[5];
    size_t best = 0;
    double bestd = 1e9;
    for (size_t k = 0; k < nt; k++) {
        double dx = (dt[k].x0 + dt[k].x1) / 2 - bx, dy = (dt[k].y0 + dt[k].y1) / 2 - by;
        if (hypot(dx, dy) < bestd) bestd = hypot(dx, dy), best = k;
    }
    CHECK(bestd < 40);
    vd_image c1, c2;
    CHECK_OK(vd_face_align(&img, &d[0], 112, &c1, NULL, &err));
    CHECK_OK(vd_face_align(&turned, &dt[best], 112, &c2, NULL, &err));
    double mad = imgtest_mad(&c1, &c2);
    /* The peer: the same box-centred crop without rotation correction. */
    const vd_face_det *t = &dt[best];
    double side = 1.4 * fmax(t->x1 - t->x0, t->y1 - t->y0), k = 112 / side;
    double naive[6] = {k, 0, -k * ((t->x0 + t->x1) / 2 - side / 2),
                       0, k, -k * ((t->y0 + t->y1) / 2 - side / 2)};
    vd_image c3;
    CHECK_OK(vd_image_warp_affine(&turned, naive, 112, 112, &c3, &err));
    double mad_naive = imgtest_mad(&c1, &c3);
    printf("    aligned crop, upright vs rotated photo: mean abs diff %.1f (unaligned crop: %.1f, "
           "ratio %.2f)\n",
           mad, mad_naive, mad / mad_naive);
    CHECK(mad >= 0 && mad < 0.7 * mad_naive);
    vd_image_free(&c1);
    vd_image_free(&c2);
    vd_image_free(&c3);
    free(dt);
    vd_image_free(&turned);
    free(d);
    vd_image_free(&img);
}

VD_TEST(face_embeddings_are_unit_vectors_stable_across_decodes)
{
    vd_error err;
    if (!runner_ready()) {
        vd_test_skip("no ONNX Runtime runner");
        return;
    }
    vd_model_meta meta;
    if (vd_runner_meta(runner, VD_FACES_EMBEDDER, &meta, &err) != VD_OK) {
        printf("    %s\n", err.msg);
        vd_test_skip("faceres not converted (data/models/faceres.json): run scripts/models.sh");
        return;
    }
    char path[512];
    imgtest_sample(path, sizeof path, 1);
    vd_face *fa, *fb;
    size_t na, nb;
    vd_image img;
    CHECK_OK(vd_image_decode_file(path, NULL, &img, NULL, &err));
    int64_t t0 = vd_mono_us();
    CHECK_OK(vd_faces_run(runner, &img, NULL, &fa, &na, &err));
    printf("    detect + align + embed %zu faces: %.1f ms\n", na, (vd_mono_us() - t0) / 1000.0);
    vd_image_free(&img);
    vd_decode_opts o = {.target_width = 800, .target_height = 0};
    CHECK_OK(vd_image_decode_file(path, &o, &img, NULL, &err));
    CHECK(img.width == 960);
    CHECK_OK(vd_faces_run(runner, &img, NULL, &fb, &nb, &err));
    vd_image_free(&img);
    CHECK_EQ_INT(na, 3);
    CHECK_EQ_INT(nb, 3);
    CHECK_EQ_INT(fa[0].dim, 1024);
    for (size_t i = 0; i < na; i++) {
        double s = 0;
        for (int j = 0; j < fa[i].dim; j++)
            s += fa[i].embedding[j] * fa[i].embedding[j];
        CHECK_NEAR(s, 1, 1e-4);
    }
    /* Same face from the full and the half-size decode: more alike than any
     * two different people. */
    float worst_same = 1, best_diff = -1;
    for (size_t i = 0; i < na; i++) {
        size_t j = 0;
        float bi = -1;
        for (size_t k = 0; k < nb; k++)
            if (vd_face_iou(&fa[i].det, &fb[k].det) > bi)
                bi = vd_face_iou(&fa[i].det, &fb[k].det), j = k;
        float same = vd_faces_similarity(fa[i].embedding, fb[j].embedding, 1024);
        worst_same = fminf(worst_same, same);
        for (size_t k = 0; k < na; k++)
            if (k != i)
                best_diff =
                    fmaxf(best_diff, vd_faces_similarity(fa[i].embedding, fa[k].embedding, 1024));
    }
    printf("    same face, two decodes: worst cosine %.3f; different people: best %.3f\n",
           worst_same, best_diff);
    CHECK(worst_same > best_diff);
    CHECK(worst_same > 0.9f);
    vd_faces_free(fa, na);
    vd_faces_free(fb, nb);
}

/* Finds, for each face of a, the face of b whose box centre is nearest to
 * a's centre moved by the affine m (a's image -> b's image). */
static size_t nearest_face(const vd_face *f, const double m[6], const vd_face *b, size_t nb)
{
    double cx = (f->det.x0 + f->det.x1) / 2, cy = (f->det.y0 + f->det.y1) / 2;
    double u = m[0] * cx + m[1] * cy + m[2], v = m[3] * cx + m[4] * cy + m[5];
    size_t best = 0;
    double bd = 1e18;
    for (size_t k = 0; k < nb; k++) {
        double d = hypot((b[k].det.x0 + b[k].det.x1) / 2 - u, (b[k].det.y0 + b[k].det.y1) / 2 - v);
        if (d < bd) bd = d, best = k;
    }
    return best;
}

VD_TEST(same_person_mirrored_or_tilted_is_recognised)
{
    vd_error err;
    vd_model_meta meta;
    if (!runner_ready() || vd_runner_meta(runner, VD_FACES_EMBEDDER, &meta, &err) != VD_OK) {
        vd_test_skip("faceres not converted (data/models/faceres.json): run scripts/models.sh");
        return;
    }
    for (int sample = 3; sample <= 6; sample += 3) {
        char path[512];
        vd_image img;
        CHECK_OK(vd_image_decode_file(imgtest_sample(path, sizeof path, sample), NULL, &img, NULL,
                                      &err));
        double W = img.width, H = img.height, a = 15 * M_PI / 180;
        double views[2][6] = {
            {-1, 0, W, 0, 1, 0}, /* mirrored */
            {cos(a), -sin(a), W / 2 - cos(a) * W / 2 + sin(a) * H / 2, sin(a), cos(a),
             H / 2 - sin(a) * W / 2 - cos(a) * H / 2}, /* tilted 15 degrees */
        };
        vd_face *f0;
        size_t n0;
        CHECK_OK(vd_faces_run(runner, &img, NULL, &f0, &n0, &err));
        CHECK_EQ_INT(n0, sample_faces[sample]);
        for (int v = 0; v < 2; v++) {
            vd_image alt;
            CHECK_OK(vd_image_warp_affine(&img, views[v], img.width, img.height, &alt, &err));
            vd_face *f1;
            size_t n1;
            CHECK_OK(vd_faces_run(runner, &alt, NULL, &f1, &n1, &err));
            vd_image_free(&alt);
            CHECK(n1 >= 1);
            int right = 0;
            float worst_same = 1, best_diff = -1;
            for (size_t i = 0; i < n0; i++) {
                size_t j = nearest_face(&f0[i], views[v], f1, n1);
                /* Who does the face in the other view look most like? */
                size_t who = 0;
                float best = -2;
                for (size_t k = 0; k < n0; k++) {
                    float sim = vd_faces_similarity(f1[j].embedding, f0[k].embedding, 1024);
                    if (sim > best) best = sim, who = k;
                    if (k == i) worst_same = fminf(worst_same, sim);
                    if (k != i) best_diff = fmaxf(best_diff, sim);
                }
                right += who == i;
            }
            printf("    sample%d %s: %d/%zu faces recognised; same person worst %.3f, others "
                   "best %.3f\n",
                   sample, v ? "tilted" : "mirrored", right, n0, worst_same, best_diff);
            CHECK_EQ_INT(right, (int)n0);
            vd_faces_free(f1, n1);
        }
        vd_faces_free(f0, n0);
        vd_image_free(&img);
    }
}

VD_TEST(batched_detection_matches_one_by_one)
{
    vd_error err;
    if (!runner_ready()) {
        vd_test_skip("no ONNX Runtime runner");
        return;
    }
    /* BlazeFace has a fixed batch of 1: the ORT runner splits a batch of 2
     * and stacks the outputs; item 1 must decode to sample4's own faces. */
    vd_image imgs[2];
    char path[512];
    CHECK_OK(
        vd_image_decode_file(imgtest_sample(path, sizeof path, 2), NULL, &imgs[0], NULL, &err));
    CHECK_OK(
        vd_image_decode_file(imgtest_sample(path, sizeof path, 4), NULL, &imgs[1], NULL, &err));
    vd_model_meta meta;
    CHECK_OK(vd_runner_meta(runner, "blazeface_back", &meta, &err));
    vd_tensor in, outs[8];
    vd_prep_map maps[2];
    size_t nouts;
    CHECK_OK(vd_preprocess_for(NULL, imgs, 2, &meta, &in, maps, &err));
    CHECK_OK(vd_runner_run(runner, "blazeface_back", &in, outs, 8, &nouts, &err));
    vd_tensor_free(&in);
    CHECK_EQ_INT(nouts, 4);
    CHECK_EQ_INT(outs[0].shape[0], 2);
    for (size_t b = 0; b < 2; b++) {
        vd_face_det *d, *single;
        size_t n, ns;
        CHECK_OK(vd_blazeface_decode(outs, nouts, b, 256, NULL, &maps[b], &d, &n, &err));
        vd_faces_opts o = {.embedder = ""};
        CHECK_OK(vd_faces_detect(runner, &imgs[b], &o, &single, &ns, &err));
        CHECK_EQ_INT(n, ns);
        CHECK_EQ_INT(n, sample_faces[b ? 4 : 2]);
        for (size_t k = 0; k < n; k++) {
            CHECK_NEAR(d[k].x0, single[k].x0, 1e-2);
            CHECK_NEAR(d[k].score, single[k].score, 1e-5);
        }
        free(d);
        free(single);
    }
    for (size_t i = 0; i < nouts; i++)
        vd_tensor_free(&outs[i]);
    vd_image_free(&imgs[0]);
    vd_image_free(&imgs[1]);
}

int main(void)
{
    vd_error err;
    if (vd_image_init("test_faces", &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = vd_test_run_all();
    vd_runner_free(runner);
    vd_image_shutdown();
    return rc;
}
