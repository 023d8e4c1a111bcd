/* test_preprocess.c: model-input numerics checked by hand on tiny images,
 * and the affine warp. */
#include <math.h>
#include <string.h>

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

static vd_model_meta meta_of(int w, int h, int c, vd_resize_mode resize)
{
    vd_model_meta m;
    memset(&m, 0, sizeof m);
    m.width = w, m.height = h, m.channels = c;
    m.resize = resize;
    m.scale = 1;
    for (int i = 0; i < 3; i++)
        m.mean[i] = 0, m.std[i] = 1;
    return m;
}

/* An image from literal RGB bytes (borrowed pixels: do not free). */
static vd_image lit(uint8_t *px, int w, int h)
{
    vd_image im = {.pixels = px, .width = w, .height = h, .src_width = w, .src_height = h};
    return im;
}

VD_TEST(stretch_downscale_averages_the_covered_area)
{
    vd_error err;
    /* 4x2 -> 2x1: each output pixel is the mean of a 2x2 block. */
    uint8_t px[4 * 2 * 3] = {
        0, 10, 20, 40, 50, 60, 100, 110, 120, 200, 210, 220, /* row 0 */
        4, 14, 24, 44, 54, 64, 104, 114, 124, 204, 214, 224, /* row 1 */
    };
    vd_image im = lit(px, 4, 2);
    vd_model_meta m = meta_of(2, 1, 3, VD_RESIZE_STRETCH);
    float out[6];
    vd_prep_map map;
    CHECK_OK(vd_preprocess_into(&im, &m, out, &map, &err));
    CHECK_NEAR(out[0], (0 + 40 + 4 + 44) / 4.0, 1e-4);
    CHECK_NEAR(out[1], (10 + 50 + 14 + 54) / 4.0, 1e-4);
    CHECK_NEAR(out[2], (20 + 60 + 24 + 64) / 4.0, 1e-4);
    CHECK_NEAR(out[3], (100 + 200 + 104 + 204) / 4.0, 1e-4);
    CHECK_NEAR(out[5], (120 + 220 + 124 + 224) / 4.0, 1e-4);
    CHECK_NEAR(map.sx, 0.5, 1e-12);
    CHECK_NEAR(map.sy, 0.5, 1e-12);
    CHECK_NEAR(map.ox, 0, 1e-12);

    /* 3x1 -> 2x1: a step of 1.5 source pixels: weights 1 and 0.5. */
    uint8_t p3[9] = {30, 0, 0, 60, 0, 0, 90, 0, 0};
    im = lit(p3, 3, 1);
    m = meta_of(2, 1, 3, VD_RESIZE_STRETCH);
    CHECK_OK(vd_preprocess_into(&im, &m, out, NULL, &err));
    CHECK_NEAR(out[0], (30 * 1 + 60 * 0.5) / 1.5, 1e-4);
    CHECK_NEAR(out[3], (60 * 0.5 + 90 * 1) / 1.5, 1e-4);
}

VD_TEST(stretch_upscale_is_bilinear_on_centres)
{
    vd_error err;
    uint8_t px[6] = {0, 0, 0, 100, 0, 0};
    vd_image im = lit(px, 2, 1);
    vd_model_meta m = meta_of(4, 1, 3, VD_RESIZE_STRETCH);
    float out[12];
    CHECK_OK(vd_preprocess_into(&im, &m, out, NULL, &err));
    /* Output centres map to source x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped). */
    CHECK_NEAR(out[0], 0, 1e-4);
    CHECK_NEAR(out[3], 25, 1e-4);
    CHECK_NEAR(out[6], 75, 1e-4);
    CHECK_NEAR(out[9], 100, 1e-4);
    /* Same size is an exact copy. */
    m = meta_of(2, 1, 3, VD_RESIZE_STRETCH);
    CHECK_OK(vd_preprocess_into(&im, &m, out, NULL, &err));
    CHECK_NEAR(out[0], 0, 0);
    CHECK_NEAR(out[3], 100, 0);
}

VD_TEST(letterbox_pads_with_normalised_black_and_maps_back)
{
    vd_error err;
    uint8_t px[4 * 2 * 3];
    for (int i = 0; i < 24; i++)
        px[i] = (uint8_t)(10 * i);
    vd_image im = lit(px, 4, 2);
    vd_model_meta m = meta_of(4, 4, 3, VD_RESIZE_LETTERBOX);
    m.scale = 1 / 127.5f; /* BlazeFace: x / 127.5 - 1 */
    m.mean[0] = m.mean[1] = m.mean[2] = 1;
    float out[4 * 4 * 3];
    vd_prep_map map;
    CHECK_OK(vd_preprocess_into(&im, &m, out, &map, &err));
    /* Rows 0 and 3 are padding (black -> -1); rows 1-2 are the image. */
    for (int x = 0; x < 12; x++) {
        CHECK_NEAR(out[x], -1, 1e-6);
        CHECK_NEAR(out[36 + x], -1, 1e-6);
    }
    for (int i = 0; i < 24; i++)
        CHECK_NEAR(out[12 + i], 10 * i / 127.5 - 1, 1e-5);
    CHECK_NEAR(map.sx, 1, 1e-12);
    CHECK_NEAR(map.oy, 1, 1e-12);
    double x, y;
    vd_prep_map_to_image(&map, 2.0, 3.0, &x, &y);
    CHECK_NEAR(x, 2, 1e-12);
    CHECK_NEAR(y, 2, 1e-12);

    /* Tall image into a square: columns are padded, centred. 2x4 -> 2x2 box of 4x4. */
    uint8_t tall[2 * 4 * 3];
    memset(tall, 200, sizeof tall);
    im = lit(tall, 2, 4);
    m = meta_of(4, 4, 3, VD_RESIZE_LETTERBOX);
    CHECK_OK(vd_preprocess_into(&im, &m, out, &map, &err));
    for (int y2 = 0; y2 < 4; y2++)
        for (int x2 = 0; x2 < 4; x2++)
            CHECK_NEAR(out[(y2 * 4 + x2) * 3], (x2 == 1 || x2 == 2) ? 200 : 0, 1e-4);
    CHECK_NEAR(map.ox, 1, 1e-12);
}

VD_TEST(center_crop_keeps_the_middle)
{
    vd_error err;
    uint8_t px[4 * 2 * 3];
    for (int i = 0; i < 24; i++)
        px[i] = (uint8_t)(i + 1);
    vd_image im = lit(px, 4, 2);
    vd_model_meta m = meta_of(2, 2, 3, VD_RESIZE_CENTER_CROP);
    float out[12];
    vd_prep_map map;
    CHECK_OK(vd_preprocess_into(&im, &m, out, &map, &err));
    /* Columns 1 and 2 of both rows, untouched. */
    int want[12] = {4, 5, 6, 7, 8, 9, 16, 17, 18, 19, 20, 21};
    for (int i = 0; i < 12; i++)
        CHECK_NEAR(out[i], want[i], 1e-5);
    CHECK_NEAR(map.ox, -1, 1e-12);
    CHECK_NEAR(map.sx, 1, 1e-12);
}

VD_TEST(layout_colour_order_and_normalisation)
{
    vd_error err;
    uint8_t px[2 * 1 * 3] = {10, 20, 30, 40, 50, 60};
    vd_image im = lit(px, 2, 1);
    vd_model_meta m = meta_of(2, 1, 3, VD_RESIZE_STRETCH);
    m.layout = VD_LAYOUT_NCHW;
    m.color = VD_COLOR_BGR;
    m.scale = 0.5f;
    m.mean[0] = 1, m.mean[1] = 2, m.mean[2] = 3;
    m.std[0] = 2, m.std[1] = 4, m.std[2] = 5;
    float out[6];
    CHECK_OK(vd_preprocess_into(&im, &m, out, NULL, &err));
    /* Plane 0 is blue, plane 2 red; (p * 0.5 - mean[c]) / std[c]. */
    CHECK_NEAR(out[0], (30 * 0.5 - 1) / 2, 1e-5);
    CHECK_NEAR(out[1], (60 * 0.5 - 1) / 2, 1e-5);
    CHECK_NEAR(out[2], (20 * 0.5 - 2) / 4, 1e-5);
    CHECK_NEAR(out[3], (50 * 0.5 - 2) / 4, 1e-5);
    CHECK_NEAR(out[4], (10 * 0.5 - 3) / 5, 1e-5);
    CHECK_NEAR(out[5], (40 * 0.5 - 3) / 5, 1e-5);

    /* One channel: BT.601 luma. */
    m = meta_of(2, 1, 1, VD_RESIZE_STRETCH);
    CHECK_OK(vd_preprocess_into(&im, &m, out, NULL, &err));
    CHECK_NEAR(out[0], 0.299 * 10 + 0.587 * 20 + 0.114 * 30, 1e-4);
    CHECK_NEAR(out[1], 0.299 * 40 + 0.587 * 50 + 0.114 * 60, 1e-4);

    m = meta_of(2, 1, 2, VD_RESIZE_STRETCH);
    CHECK_EQ_INT(vd_preprocess_into(&im, &m, out, NULL, &err), VD_ERR_INVALID);
}

VD_TEST(batch_stacks_images_with_their_maps)
{
    vd_error err;
    uint8_t a[2 * 2 * 3], b[4 * 2 * 3];
    memset(a, 100, sizeof a);
    memset(b, 50, sizeof b);
    vd_image ims[2] = {lit(a, 2, 2), lit(b, 4, 2)};
    vd_model_meta m = meta_of(2, 2, 3, VD_RESIZE_LETTERBOX);
    m.layout = VD_LAYOUT_NCHW;
    vd_tensor t;
    vd_prep_map maps[2];
    CHECK_OK(vd_preprocess_for(NULL, ims, 2, &m, &t, maps, &err));
    CHECK_EQ_INT(t.rank, 4);
    CHECK_EQ_INT(t.shape[0], 2);
    CHECK_EQ_INT(t.shape[1], 3);
    CHECK_EQ_INT(t.shape[2], 2);
    CHECK_EQ_INT(t.shape[3], 2);
    for (int i = 0; i < 12; i++)
        CHECK_NEAR(t.data[i], 100, 1e-5);
    /* Second image: 4x2 -> 2x1 centred in row... 2x2 with dy = 0 (rounded down). */
    CHECK_NEAR(maps[1].sx, 0.5, 1e-12);
    CHECK_NEAR(t.data[12], 50, 1e-5);
    CHECK_NEAR(t.data[12 + 2], 0, 1e-5);
    vd_tensor_free(&t);
    CHECK_EQ_INT(vd_preprocess_for(NULL, ims, 0, &m, &t, NULL, &err), VD_ERR_INVALID);
}

VD_TEST(real_photo_letterboxed_for_blazeface)
{
    vd_error err;
    char path[512];
    vd_image img;
    CHECK_OK(vd_image_decode_file(imgtest_sample(path, sizeof path, 1), NULL, &img, NULL, &err));
    vd_model_meta m;
    CHECK_OK(vd_model_meta_load(VISIOND_SOURCE_DIR "/models/blazeface_back.json", &m, &err));
    vd_tensor t;
    vd_prep_map map;
    CHECK_OK(vd_preprocess_for(NULL, &img, 1, &m, &t, &map, &err));
    CHECK_EQ_INT(t.shape[1], 256);
    CHECK_EQ_INT(t.shape[3], 3);
    /* 1920x1280 -> 256x171 centred: rows 0..41 are padding (-1). */
    CHECK_NEAR(map.sx, 256.0 / 1920, 1e-9);
    CHECK_NEAR(map.oy, (256 - 171) / 2, 1e-9);
    for (int i = 0; i < 256 * 3 * 42; i++)
        CHECK_NEAR(t.data[i], -1, 1e-6);
    float lo = 2, hi = -2;
    for (size_t i = 0; i < vd_tensor_count(&t); i++) {
        lo = fminf(lo, t.data[i]);
        hi = fmaxf(hi, t.data[i]);
    }
    CHECK(lo >= -1.0001f && hi <= 1.0001f && hi > 0.5f);
    vd_tensor_free(&t);
    vd_image_free(&img);
}

VD_TEST(warp_affine_identity_translation_rotation_scale)
{
    vd_error err;
    uint8_t px[3 * 3 * 3];
    for (int i = 0; i < 27; i++)
        px[i] = (uint8_t)(i * 9);
    vd_image src = lit(px, 3, 3), out;

    double id[6] = {1, 0, 0, 0, 1, 0};
    CHECK_OK(vd_image_warp_affine(&src, id, 3, 3, &out, &err));
    CHECK(memcmp(out.pixels, px, 27) == 0);
    vd_image_free(&out);

    /* Shift right by one: column 0 is black, then columns 0 and 1. */
    double tr[6] = {1, 0, 1, 0, 1, 0};
    CHECK_OK(vd_image_warp_affine(&src, tr, 3, 3, &out, &err));
    for (int y = 0; y < 3; y++) {
        CHECK_EQ_INT(out.pixels[(y * 3 + 0) * 3], 0);
        CHECK(memcmp(out.pixels + (y * 3 + 1) * 3, px + (y * 3 + 0) * 3, 6) == 0);
    }
    vd_image_free(&out);

    /* Quarter turn clockwise about the centre (1.5, 1.5): (x,y) -> (3-y, x). */
    double rot[6] = {0, -1, 3, 1, 0, 0};
    CHECK_OK(vd_image_warp_affine(&src, rot, 3, 3, &out, &err));
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 3; x++) /* output (x,y) came from source (y, 2-x) */
            CHECK(memcmp(out.pixels + (y * 3 + x) * 3, px + ((2 - x) * 3 + y) * 3, 3) == 0);
    vd_image_free(&out);

    /* Twice as big: output pixel centres (i+0.5)/2 in the source. */
    uint8_t two[6] = {0, 0, 0, 200, 0, 0};
    vd_image s2 = lit(two, 2, 1);
    double up[6] = {2, 0, 0, 0, 2, 0};
    CHECK_OK(vd_image_warp_affine(&s2, up, 4, 2, &out, &err));
    /* Centres at x = 0.25, 0.75, 1.25, 1.75: 0, 50, 150, 200. */
    CHECK_EQ_INT(out.pixels[3 * 1], 50);
    CHECK_EQ_INT(out.pixels[3 * 2], 150);
    CHECK_EQ_INT(out.pixels[3 * 3], 200);
    CHECK_EQ_INT(out.pixels[3 * 4 + 3], 50);
    vd_image_free(&out);

    /* Shrinking by 4 averages a 4x4 grid of samples: a flat image stays flat. */
    uint8_t *flat = malloc(16 * 16 * 3);
    memset(flat, 77, 16 * 16 * 3);
    vd_image sf = lit(flat, 16, 16);
    double down[6] = {0.25, 0, 0, 0, 0.25, 0};
    CHECK_OK(vd_image_warp_affine(&sf, down, 4, 4, &out, &err));
    CHECK_EQ_INT(out.pixels[3 * 5], 77);
    vd_image_free(&out);
    free(flat);

    double sing[6] = {1, 2, 0, 2, 4, 0};
    CHECK_EQ_INT(vd_image_warp_affine(&src, sing, 3, 3, &out, &err), VD_ERR_INVALID);
}

/* The exact warp (cv2.warpAffine's rule, for ArcFace crops): one bilinear
 * sample per pixel however much it shrinks, black beyond the border blended
 * in over the one-pixel band, where the anti-aliased warp clamps. */
VD_TEST(warp_affine_exact_is_opencvs_bilinear)
{
    vd_error err;
    vd_image out;
    /* 4 x 1: 0, 100, 200, 40. Half size: output centre 0.5 -> source 1.0 (index 0.5):
     * the mean of pixels 0 and 1 (50); the anti-aliased warp averages 2 x 2 samples. */
    uint8_t row[12] = {0, 0, 0, 100, 0, 0, 200, 0, 0, 40, 0, 0};
    vd_image src = lit(row, 4, 1);
    double half[6] = {0.5, 0, 0, 0, 1, 0};
    CHECK_OK(vd_image_warp_affine_exact(&src, half, 2, 1, &out, &err));
    CHECK_EQ_INT(out.pixels[0], 50);
    CHECK_EQ_INT(out.pixels[3], 120); /* source index 2.5: (200 + 40) / 2 */
    vd_image_free(&out);
    /* Shift left by a quarter pixel: output pixel 3's centre (3.5) samples source 3.75
     * (index 3.25): 75 % of pixel 3 and 25 % of the black beyond. */
    double shift[6] = {1, 0, -0.25, 0, 1, 0};
    CHECK_OK(vd_image_warp_affine_exact(&src, shift, 4, 1, &out, &err));
    CHECK_EQ_INT(out.pixels[9], 30);
    CHECK_EQ_INT(out.pixels[3], 125); /* index 1.25: 0.75 * 100 + 0.25 * 200 */
    vd_image_free(&out);
    CHECK_OK(vd_image_warp_affine(&src, shift, 4, 1, &out, &err));
    CHECK_EQ_INT(out.pixels[9], 40); /* the anti-aliased warp clamps at the edge */
    vd_image_free(&out);
}

/* A runner that only lends its input: a buffer full of NaN, as a reused shared region holds
 * whatever the last request left there. */
typedef struct {
    vd_runner base;
    float buf[2 * 3 * 4 * 4];
    int lent;
} lending_runner;

static vd_status lend(vd_runner *r, const int64_t *shape, size_t rank, vd_tensor *t, vd_error *err)
{
    lending_runner *l = (lending_runner *)r;
    memset(t, 0, sizeof *t);
    size_t n = 1;
    for (size_t i = 0; i < rank; i++)
        n *= (size_t)shape[i];
    if (n > sizeof l->buf / sizeof l->buf[0]) return vd_error_set(err, VD_ERR_LIMIT, "too big");
    for (size_t i = 0; i < n; i++)
        l->buf[i] = NAN;
    t->data = l->buf;
    t->borrowed = 1;
    memcpy(t->shape, shape, rank * sizeof *shape);
    t->rank = rank;
    l->lent++;
    return VD_OK;
}

/* vd_preprocess_for writes every value of the input the runner lends (letterbox padding
 * included), the same as into a tensor of its own (r NULL), and leaves the lent memory
 * alone when the tensor is freed. */
VD_TEST(preprocessing_into_a_lent_input_writes_every_value)
{
    static const vd_runner_ops ops = {NULL, NULL, NULL, lend};
    lending_runner r = {.base = {&ops}};
    vd_error err;
    uint8_t a[4 * 2 * 3], b[2 * 4 * 3];
    for (size_t i = 0; i < sizeof a; i++)
        a[i] = (uint8_t)(i * 37), b[i] = (uint8_t)(i * 11);
    vd_image ims[2] = {lit(a, 4, 2), lit(b, 2, 4)}; /* wide and tall: padded both ways */
    vd_model_meta m = meta_of(4, 4, 3, VD_RESIZE_LETTERBOX);
    m.mean[0] = 0.5f; /* padding is not 0 */
    vd_tensor want, got;
    vd_prep_map wm[2], gm[2];
    CHECK_OK(vd_preprocess_for(NULL, ims, 2, &m, &want, wm, &err));
    CHECK_OK(vd_preprocess_for(&r.base, ims, 2, &m, &got, gm, &err));
    CHECK(got.borrowed && got.data == r.buf && r.lent == 1);
    CHECK(memcmp(got.shape, want.shape, sizeof want.shape) == 0);
    for (size_t i = 0; i < vd_tensor_count(&want); i++)
        CHECK_NEAR(got.data[i], want.data[i], 0);
    CHECK(memcmp(gm, wm, sizeof wm) == 0);
    vd_tensor_free(&got);
    CHECK(got.data == NULL);
    CHECK_NEAR(r.buf[0], want.data[0], 0); /* not freed, still what was written */
    vd_tensor_free(&want);
}

int main(void)
{
    vd_error err;
    if (vd_image_init("test_preprocess", &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = vd_test_run_all();
    vd_image_shutdown();
    return rc;
}
