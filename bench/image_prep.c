/* image_prep.c: file -> BlazeFace input tensor (256x256 letterbox), three ways,
 * in the same run, on the face-api photos:
 *   full    decode at full size, then our area-average resize (vd_preprocess)
 *   shrink  decode with shrink-on-load (target 256x256), then vd_preprocess
 *   vips    the peer: libvips's vips_thumbnail_buffer to 256 (its own
 *           shrink-on-load + lanczos3), then the same normalisation
 * Prints ms per image for each and the ratios to the peer, plus the mean
 * absolute difference between the tensors (in input units, range 2).
 *
 *   cc -O2 -std=gnu17 -D_GNU_SOURCE -Isrc -I/opt/visiond/deps/onnxruntime/include \
 *      $(pkg-config --cflags vips) bench/image_prep.c build/libvisiond.a \
 *      $(pkg-config --libs vips jansson) -lm -o build/image_prep
 *   build/image_prep [ROUNDS] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "core/util.h"
#include "image/decode.h"
#include "image/preprocess.h"

#define DEMO "/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo"

static vd_model_meta blazeface_meta(void)
{
    vd_model_meta m;
    memset(&m, 0, sizeof m);
    m.width = m.height = 256;
    m.channels = 3;
    m.resize = VD_RESIZE_LETTERBOX;
    m.scale = 1 / 127.5f;
    for (int c = 0; c < 3; c++)
        m.mean[c] = 1, m.std[c] = 1;
    return m;
}

static void die(const char *what, const vd_error *err)
{
    fprintf(stderr, "%s: %s\n", what, err ? err->msg : vips_error_buffer());
    exit(1);
}

/* Our path: decode (optionally shrinking on load), then vd_preprocess_into. */
static void ours(const uint8_t *data, size_t len, int shrink, const vd_model_meta *m, float *out)
{
    vd_error err;
    vd_image img;
    vd_decode_opts o = {.target_width = shrink ? 256 : 0, .target_height = shrink ? 256 : 0};
    if (vd_image_decode_buffer(data, len, &o, &img, &err) != VD_OK) die("decode", &err);
    if (vd_preprocess_into(&img, m, out, NULL, &err) != VD_OK) die("preprocess", &err);
    vd_image_free(&img);
}

/* The peer: vips_thumbnail to fit 256x256, then letterbox + normalise here. */
static void peer(const uint8_t *data, size_t len, float *out)
{
    VipsImage *t = NULL;
    if (vips_thumbnail_buffer((void *)data, len, &t, 256, "height", 256, NULL)) die("thumb", NULL);
    size_t n;
    uint8_t *px = vips_image_write_to_memory(t, &n);
    int w = t->Xsize, h = t->Ysize;
    g_object_unref(t);
    int dx = (256 - w) / 2, dy = (256 - h) / 2;
    for (int i = 0; i < 256 * 256 * 3; i++)
        out[i] = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 3; x++)
            out[((size_t)(y + dy) * 256 + dx) * 3 + x] = px[(size_t)y * w * 3 + x] / 127.5f - 1;
    g_free(px);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 3;
    vd_error err;
    if (vd_image_init(argv[0], &err) != VD_OK) die("init", &err);
    vd_model_meta m = blazeface_meta();
    float *a = malloc(sizeof(float) * 256 * 256 * 3), *b = malloc(sizeof(float) * 256 * 256 * 3),
          *c = malloc(sizeof(float) * 256 * 256 * 3);
    double t_full = 0, t_shrink = 0, t_peer = 0, d_full = 0, d_shrink = 0;
    int n = 0;
    for (int r = 0; r < rounds; r++)
        for (int i = 1; i <= 6; i++) {
            char path[512];
            snprintf(path, sizeof path, "%s/sample%d.jpg", DEMO, i);
            uint8_t *data;
            size_t len;
            if (vd_image_read_file(path, 0, &data, &len, &err) != VD_OK) die(path, &err);
            int64_t t0 = vd_mono_us();
            ours(data, len, 0, &m, a);
            int64_t t1 = vd_mono_us();
            ours(data, len, 1, &m, b);
            int64_t t2 = vd_mono_us();
            peer(data, len, c);
            int64_t t3 = vd_mono_us();
            t_full += (double)(t1 - t0), t_shrink += (double)(t2 - t1), t_peer += (double)(t3 - t2);
            double sa = 0, sb = 0;
            for (int k = 0; k < 256 * 256 * 3; k++)
                sa += fabs(a[k] - c[k]), sb += fabs(b[k] - c[k]);
            d_full += sa / (256 * 256 * 3), d_shrink += sb / (256 * 256 * 3);
            n++;
            free(data);
        }
    printf("file -> 256x256 letterboxed tensor, %d images (1920 px wide JPEGs)\n", n);
    printf("  full decode + vd_preprocess:   %7.2f ms  (%.2fx the peer)  mean |diff| %.4f\n",
           t_full / n / 1000, t_full / t_peer, d_full / n);
    printf("  shrink-on-load + vd_preprocess: %7.2f ms  (%.2fx the peer)  mean |diff| %.4f\n",
           t_shrink / n / 1000, t_shrink / t_peer, d_shrink / n);
    printf("  peer: vips_thumbnail_buffer:    %7.2f ms\n", t_peer / n / 1000);
    free(a);
    free(b);
    free(c);
    vd_image_shutdown();
    return 0;
}
