/* imgtest.h: helpers for the image and face unit tests (header-only, static).
 *
 * Fixtures are generated at test time with libvips (no binary files in the
 * repository): synthetic images, files in other formats, EXIF-rotated twins. */
#ifndef VD_IMGTEST_H
#define VD_IMGTEST_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

#include "image/decode.h"

#define FACE_API_DEMO "/opt/visiond/deps/npm/@vladmandic+face-api@1.7.15/demo"

/* Writes len bytes to path; returns 0 on success. */
static inline int imgtest_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = len ? fwrite(data, 1, len, f) : 0;
    return fclose(f) == 0 && n == len ? 0 : -1;
}

/* Returns a new libvips image holding a copy of w x h x bands uchar pixels. */
static inline VipsImage *imgtest_vips_from(const uint8_t *px, int w, int h, int bands)
{
    VipsImage *m =
        vips_image_new_from_memory_copy(px, (size_t)w * h * bands, w, h, bands, VIPS_FORMAT_UCHAR);
    if (m) m->Type = bands >= 3 ? VIPS_INTERPRETATION_sRGB : VIPS_INTERPRETATION_B_W;
    return m;
}

/* Saves a libvips image to path (format from the suffix, options after it as
 * libvips allows: "x.jpg[Q=95]"); returns 0 on success. */
static inline int imgtest_save(VipsImage *im, const char *path)
{
    if (vips_image_write_to_file(im, path, NULL)) {
        fprintf(stdout, "    save %s: %s\n", path, vips_error_buffer());
        vips_error_clear();
        return -1;
    }
    return 0;
}

/* A deterministic w x h RGB test pattern (every pixel distinct enough to
 * catch flips and rotations). Caller frees. */
static inline uint8_t *imgtest_pattern(int w, int h)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            q[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            q[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            q[2] = (uint8_t)((x * 7 + y * 13) % 256);
        }
    return p;
}

/* Mean absolute difference between two same-size images (-1 if sizes differ). */
static inline double imgtest_mad(const vd_image *a, const vd_image *b)
{
    if (a->width != b->width || a->height != b->height) return -1;
    size_t n = (size_t)a->width * a->height * 3;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += abs((int)a->pixels[i] - (int)b->pixels[i]);
    return s / (double)n;
}

/* Path of a face-api demo photo (1..6) in buf; returns buf. */
static inline const char *imgtest_sample(char *buf, size_t n, int i)
{
    snprintf(buf, n, "%s/sample%d.jpg", FACE_API_DEMO, i);
    return buf;
}

#endif
