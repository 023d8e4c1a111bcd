/* test_image_decode.c: SHA-256 vectors and image decoding (formats, colour,
 * orientation, shrink-on-load, limits and the errors of broken files). */
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <vips/vips.h>

#include "core/sha256.h"
#include "core/util.h"
#include "image/decode.h"
#include "imgtest.h"
#include "vdtest.h"

static void hex_of(const void *data, size_t len, char hex[65])
{
    uint8_t d[VD_SHA256_LEN];
    vd_sha256(data, len, d);
    vd_sha256_hex(d, hex);
}

VD_TEST(sha256_standard_vectors)
{
    char hex[65];
    hex_of("", 0, hex);
    CHECK_EQ_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, hex);
    CHECK_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(two, strlen(two), hex);
    CHECK_EQ_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const char *four = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
                       "ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
    hex_of(four, strlen(four), hex);
    CHECK_EQ_STR(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");

    /* One million 'a', streamed in uneven pieces. */
    vd_sha256_ctx *ctx = vd_sha256_new();
    CHECK(ctx != NULL);
    char block[997];
    memset(block, 'a', sizeof block);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof block ? left : sizeof block;
        vd_sha256_update(ctx, block, n);
        left -= n;
    }
    uint8_t d[VD_SHA256_LEN];
    vd_sha256_final(ctx, d);
    vd_sha256_free(ctx);
    vd_sha256_hex(d, hex);
    CHECK_EQ_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

VD_TEST(sha256_of_file_matches_buffer_and_decode)
{
    vd_error err;
    char path[512];
    imgtest_sample(path, sizeof path, 1);
    uint8_t a[VD_SHA256_LEN], b[VD_SHA256_LEN], c[VD_SHA256_LEN];
    CHECK_OK(vd_sha256_file(path, a, &err));
    uint8_t *data;
    size_t len;
    CHECK_OK(vd_image_read_file(path, 0, &data, &len, &err));
    vd_sha256(data, len, b);
    free(data);
    CHECK(memcmp(a, b, sizeof a) == 0);
    vd_image img;
    CHECK_OK(vd_image_decode_file(path, NULL, &img, c, &err));
    CHECK(memcmp(a, c, sizeof a) == 0);
    vd_image_free(&img);
    CHECK_EQ_INT(vd_sha256_file("/nonexistent/x.jpg", a, &err), VD_ERR_NOT_FOUND);
}

VD_TEST(decodes_sample_photo_full_size)
{
    vd_error err;
    char path[512];
    vd_image img;
    int64_t t0 = vd_mono_us();
    CHECK_OK(vd_image_decode_file(imgtest_sample(path, sizeof path, 1), NULL, &img, NULL, &err));
    printf("    decode 1920x1280 JPEG: %.1f ms\n", (vd_mono_us() - t0) / 1000.0);
    CHECK_EQ_INT(img.width, 1920);
    CHECK_EQ_INT(img.height, 1280);
    CHECK_EQ_INT(img.src_width, 1920);
    CHECK_EQ_INT(img.orientation, 1);
    CHECK_EQ_STR(img.format, "jpeg");
    /* A real photo: not a flat picture. */
    long sum = 0, sum2 = 0;
    for (size_t i = 0; i < (size_t)img.width * img.height * 3; i += 97) {
        sum += img.pixels[i];
        sum2 += (long)img.pixels[i] * img.pixels[i];
    }
    long n = (long)((size_t)img.width * img.height * 3 + 96) / 97;
    double mean = (double)sum / n, var = (double)sum2 / n - mean * mean;
    CHECK(var > 500);
    vd_image_free(&img);
}

VD_TEST(shrink_on_load_keeps_at_least_the_target)
{
    vd_error err;
    char path[512];
    vd_image img;
    vd_decode_opts o = {.target_width = 256, .target_height = 256};
    int64_t t0 = vd_mono_us();
    CHECK_OK(vd_image_decode_file(imgtest_sample(path, sizeof path, 1), &o, &img, NULL, &err));
    printf("    decode with shrink-on-load: %.1f ms\n", (vd_mono_us() - t0) / 1000.0);
    CHECK_EQ_INT(img.width, 480); /* 1920/4: 1/8 would give 160 < 256 */
    CHECK_EQ_INT(img.height, 320);
    CHECK_EQ_INT(img.src_width, 1920);
    CHECK_EQ_INT(img.src_height, 1280);
    vd_image_free(&img);
    o.target_width = 1000;
    o.target_height = 0;
    CHECK_OK(vd_image_decode_file(path, &o, &img, NULL, &err));
    CHECK_EQ_INT(img.width, 1920); /* 1/2 would give 960 < 1000 */
    vd_image_free(&img);
}

/* Saves the pattern in a format and checks the decode against it. */
static void roundtrip(const char *name, const char *saveopts, double max_mad)
{
    vd_error err;
    int w = 64, h = 48;
    uint8_t *px = imgtest_pattern(w, h);
    VipsImage *im = imgtest_vips_from(px, w, h, 3);
    char path[600];
    snprintf(path, sizeof path, "%s/%s%s", vd_test_tmpdir(), name, saveopts);
    CHECK(imgtest_save(im, path) == 0);
    g_object_unref(im);
    char *br = strchr(path, '[');
    if (br) *br = '\0';
    vd_image got, want = {.pixels = px, .width = w, .height = h};
    CHECK_OK(vd_image_decode_file(path, NULL, &got, NULL, &err));
    CHECK_EQ_INT(got.width, w);
    CHECK_EQ_INT(got.height, h);
    double mad = imgtest_mad(&got, &want);
    printf("    %-10s %-5s mean abs diff %.2f\n", name, got.format, mad);
    CHECK(mad >= 0 && mad <= max_mad);
    vd_image_free(&got);
    free(px);
}

/* 1 when a mapping of this process's file names contains needle. */
static int mapped(const char *needle)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

VD_TEST(libvips_starts_without_modules_and_loads_heif_at_the_first_heif)
{
    /* main's vd_image_init ran with VIPSHOME unset: it is unset again after the start */
    CHECK(getenv("VIPSHOME") == NULL);
    /* ImageMagick, poppler, OpenSlide and libjxl never came in with their modules */
    CHECK_EQ_INT(mapped("vips-magick.so"), 0);
    CHECK_EQ_INT(mapped("vips-poppler.so"), 0);
    CHECK_EQ_INT(mapped("vips-openslide.so"), 0);
    CHECK_EQ_INT(mapped("vips-jxl.so"), 0);
    CHECK_EQ_INT(mapped("libMagickCore"), 0);
    /* nor HEIF's yet: the first HEIF input brings it (a HEIC written by the vips command,
     * which loads every module; where it can write one) */
    CHECK_EQ_INT(mapped("vips-heif.so"), 0);
    char src[600], heic[600], cmd[1400];
    snprintf(src, sizeof src, "%s/src.png", vd_test_tmpdir());
    snprintf(heic, sizeof heic, "%s/a.heic", vd_test_tmpdir());
    uint8_t *pat = imgtest_pattern(64, 48);
    VipsImage *im = imgtest_vips_from(pat, 64, 48, 3);
    CHECK(vips_image_write_to_file(im, src, NULL) == 0);
    g_object_unref(im);
    free(pat);
    snprintf(cmd, sizeof cmd, "vips copy '%s' '%s' >/dev/null 2>&1", src, heic);
    if (system(cmd) == 0) {
        vd_image got;
        vd_error err;
        CHECK_OK(vd_image_decode_file(heic, NULL, &got, NULL, &err));
        CHECK(got.width == 64 && got.height == 48 && strcmp(got.format, "heif") == 0);
        vd_image_free(&got);
        CHECK_EQ_INT(mapped("vips-heif.so"), 1);
    } else {
        printf("    the vips command wrote no HEIC here: the lazy HEIF load not checked\n");
    }
    /* a BMP, which only the ImageMagick module read ("unsupported format: magick" before) */
    static const uint8_t bmp[] = {'B', 'M', 58, 0, 0, 0, 0, 0, 0, 0,   54, 0, 0, 0,  40,
                                  0,   0,   0,  1, 0, 0, 0, 1, 0, 0,   0,  1, 0, 24, 0,
                                  0,   0,   0,  0, 4, 0, 0, 0, 0, 0,   0,  0, 0, 0,  0,
                                  0,   0,   0,  0, 0, 0, 0, 0, 0, 255, 0,  0, 0};
    vd_image img;
    vd_error err;
    CHECK_EQ_INT(vd_image_decode_buffer(bmp, sizeof bmp, NULL, &img, &err), VD_ERR_IMAGE);
    CHECK_EQ_STR(err.msg, "not an image");
    /* a second start changes nothing */
    CHECK_OK(vd_image_init(NULL, &err));
    CHECK(getenv("VIPSHOME") == NULL);
}

VD_TEST(formats_roundtrip)
{
    roundtrip("a.png", "", 0);
    if (vd_test_failed()) return;
    roundtrip("a.ppm", "", 0);
    if (vd_test_failed()) return;
    roundtrip("a.tif", "", 0);
    if (vd_test_failed()) return;
    roundtrip("a.webp", "[lossless]", 0);
    if (vd_test_failed()) return;
    roundtrip("a.jpg", "[Q=95]", 4);
    if (vd_test_failed()) return;
    roundtrip("a.gif", "", 12);
    if (vd_test_failed()) return;
    /* HEIF only where this libvips can write it (an encoder is optional). */
    vd_image_heif_ready();
    VipsImage *probe = vips_image_new_from_memory_copy("\0\0\0", 3, 1, 1, 3, VIPS_FORMAT_UCHAR);
    void *buf = NULL;
    size_t len = 0;
    int can_heif = vips_image_write_to_buffer(probe, ".heic", &buf, &len, NULL) == 0;
    vips_error_clear();
    g_free(buf);
    g_object_unref(probe);
    if (can_heif)
        roundtrip("a.heic", "[Q=95]", 8);
    else
        printf("    heif: no encoder here, not checked\n");
}

VD_TEST(grey_16bit_alpha_and_cmyk_become_srgb8)
{
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char path[600];
    int w = 8, h = 4;
    vd_image got;

    /* Grey: replicated into three equal channels. */
    uint8_t grey[32];
    for (int i = 0; i < 32; i++)
        grey[i] = (uint8_t)(i * 8);
    VipsImage *g = imgtest_vips_from(grey, w, h, 1);
    snprintf(path, sizeof path, "%s/grey.png", dir);
    CHECK(imgtest_save(g, path) == 0);
    g_object_unref(g);
    CHECK_OK(vd_image_decode_file(path, NULL, &got, NULL, &err));
    for (int i = 0; i < 32; i++) {
        CHECK_EQ_INT(got.pixels[3 * i], grey[i]);
        CHECK_EQ_INT(got.pixels[3 * i + 1], grey[i]);
        CHECK_EQ_INT(got.pixels[3 * i + 2], grey[i]);
    }
    vd_image_free(&got);

    /* 16-bit RGB: the high byte survives. */
    uint16_t deep[32 * 3];
    for (int i = 0; i < 32 * 3; i++)
        deep[i] = (uint16_t)(i * 2 * 257);
    VipsImage *d = vips_image_new_from_memory_copy(deep, sizeof deep, w, h, 3, VIPS_FORMAT_USHORT);
    d->Type = VIPS_INTERPRETATION_RGB16;
    snprintf(path, sizeof path, "%s/deep.png", dir);
    CHECK(imgtest_save(d, path) == 0);
    g_object_unref(d);
    CHECK_OK(vd_image_decode_file(path, NULL, &got, NULL, &err));
    for (int i = 0; i < 32 * 3; i++)
        CHECK_EQ_INT(got.pixels[i], i * 2);
    vd_image_free(&got);

    /* RGBA: transparent pixels become white, opaque ones keep their colour,
     * half-transparent black becomes mid grey. */
    uint8_t rgba[32 * 4];
    for (int i = 0; i < 32; i++) {
        rgba[4 * i] = 10;
        rgba[4 * i + 1] = 20;
        rgba[4 * i + 2] = 30;
        rgba[4 * i + 3] = i < 16 ? 255 : 0;
    }
    rgba[4 * 31] = rgba[4 * 31 + 1] = rgba[4 * 31 + 2] = 0;
    rgba[4 * 31 + 3] = 128;
    VipsImage *a = vips_image_new_from_memory_copy(rgba, sizeof rgba, w, h, 4, VIPS_FORMAT_UCHAR);
    a->Type = VIPS_INTERPRETATION_sRGB;
    snprintf(path, sizeof path, "%s/alpha.png", dir);
    CHECK(imgtest_save(a, path) == 0);
    g_object_unref(a);
    CHECK_OK(vd_image_decode_file(path, NULL, &got, NULL, &err));
    CHECK_EQ_INT(got.pixels[0], 10);
    CHECK_EQ_INT(got.pixels[2], 30);
    CHECK_EQ_INT(got.pixels[3 * 20], 255);
    CHECK_EQ_INT(got.pixels[3 * 20 + 2], 255);
    CHECK(abs(got.pixels[3 * 31] - 127) <= 1);
    vd_image_free(&got);

    /* CMYK JPEG: converted back to sRGB through a profile (roughly the colours). */
    /* Mid-range colours, inside the CMYK gamut. */
    uint8_t *px = imgtest_pattern(32, 32);
    for (int i = 0; i < 32 * 32 * 3; i++)
        px[i] = (uint8_t)(64 + px[i] / 2);
    VipsImage *rgb = imgtest_vips_from(px, 32, 32, 3), *cmyk = NULL;
    CHECK(vips_colourspace(rgb, &cmyk, VIPS_INTERPRETATION_CMYK, NULL) == 0);
    g_object_unref(rgb);
    CHECK_EQ_INT(cmyk->Bands, 4);
    snprintf(path, sizeof path, "%s/cmyk.jpg[Q=95]", dir);
    CHECK(imgtest_save(cmyk, path) == 0);
    g_object_unref(cmyk);
    snprintf(path, sizeof path, "%s/cmyk.jpg", dir);
    CHECK_OK(vd_image_decode_file(path, NULL, &got, NULL, &err));
    vd_image want = {.pixels = px, .width = 32, .height = 32};
    double mad = imgtest_mad(&got, &want);
    printf("    cmyk jpeg -> srgb mean abs diff %.2f\n", mad);
    CHECK(mad >= 0 && mad < 12);
    vd_image_free(&got);
    free(px);
}

/* Where stored pixel lands for each EXIF orientation: the displayed image's
 * pixel (x,y) comes from stored pixel (sx,sy). Written from the EXIF
 * definitions, independently of libvips. */
static void exif_source(int o, int W, int H, int x, int y, int *sx, int *sy)
{
    switch (o) {
    case 2:
        *sx = W - 1 - x, *sy = y;
        break;
    case 3:
        *sx = W - 1 - x, *sy = H - 1 - y;
        break;
    case 4:
        *sx = x, *sy = H - 1 - y;
        break;
    case 5:
        *sx = y, *sy = x;
        break;
    case 6:
        *sx = y, *sy = H - 1 - x;
        break;
    case 7:
        *sx = W - 1 - y, *sy = H - 1 - x;
        break;
    case 8:
        *sx = W - 1 - y, *sy = x;
        break;
    default:
        *sx = x, *sy = y;
    }
}

VD_TEST(all_eight_exif_orientations_are_applied)
{
    vd_error err;
    int W = 6, H = 4;
    uint8_t *px = imgtest_pattern(W, H);
    for (int o = 1; o <= 8; o++) {
        VipsImage *im = imgtest_vips_from(px, W, H, 3);
        vips_image_set_int(im, VIPS_META_ORIENTATION, o);
        char path[600];
        /* TIFF carries the orientation tag natively (JPEG: see the twin test). */
        snprintf(path, sizeof path, "%s/o%d.tif", vd_test_tmpdir(), o);
        CHECK(imgtest_save(im, path) == 0);
        g_object_unref(im);
        vd_image got;
        CHECK_OK(vd_image_decode_file(path, NULL, &got, NULL, &err));
        CHECK_EQ_INT(got.orientation, o);
        int dw = o >= 5 ? H : W, dh = o >= 5 ? W : H;
        CHECK_EQ_INT(got.width, dw);
        CHECK_EQ_INT(got.height, dh);
        CHECK_EQ_INT(got.src_width, dw);
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                int sx, sy;
                exif_source(o, W, H, x, y, &sx, &sy);
                CHECK(memcmp(got.pixels + ((size_t)y * dw + x) * 3, px + ((size_t)sy * W + sx) * 3,
                             3) == 0);
            }
        vd_image_free(&got);
    }
    free(px);
}

VD_TEST(exif_rotated_jpeg_twin_decodes_upright)
{
    vd_error err;
    char path[512], twin[600];
    imgtest_sample(path, sizeof path, 1);
    /* The twin: pixels turned a quarter left, then tagged "rotate 90 CW". */
    VipsImage *in = vips_image_new_from_file(path, NULL), *rot = NULL;
    CHECK(in != NULL);
    CHECK(vips_rot(in, &rot, VIPS_ANGLE_D270, NULL) == 0);
    g_object_unref(in);
    vips_image_set_int(rot, VIPS_META_ORIENTATION, 6);
    snprintf(twin, sizeof twin, "%s/twin.jpg[Q=95]", vd_test_tmpdir());
    CHECK(imgtest_save(rot, twin) == 0);
    g_object_unref(rot);
    *strchr(twin, '[') = '\0';

    vd_image a, b;
    CHECK_OK(vd_image_decode_file(path, NULL, &a, NULL, &err));
    CHECK_OK(vd_image_decode_file(twin, NULL, &b, NULL, &err));
    CHECK_EQ_INT(b.orientation, 6);
    CHECK_EQ_INT(b.width, a.width);
    CHECK_EQ_INT(b.height, a.height);
    double mad = imgtest_mad(&a, &b);
    printf("    original vs EXIF-rotated twin: mean abs diff %.2f\n", mad);
    CHECK(mad >= 0 && mad < 3); /* only JPEG re-encoding noise */
    vd_image_free(&a);
    vd_image_free(&b);

    /* Shrink-on-load targets are upright sizes too. */
    vd_decode_opts o = {.target_width = 900, .target_height = 600};
    CHECK_OK(vd_image_decode_file(twin, &o, &b, NULL, &err));
    CHECK_EQ_INT(b.width, 960);
    CHECK_EQ_INT(b.height, 640);
    CHECK_EQ_INT(b.src_width, 1920);
    vd_image_free(&b);
}

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8),
    p[3] = (uint8_t)v;
}

/* A PNG whose header declares w x h RGB pixels, with a tiny IDAT and IEND. */
static size_t huge_png(uint8_t *out, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    size_t n = 0;
    memcpy(out, sig, 8);
    n = 8;
    uint8_t ihdr[13];
    put32(ihdr, w);
    put32(ihdr + 4, h);
    ihdr[8] = 8, ihdr[9] = 2, ihdr[10] = 0, ihdr[11] = 0, ihdr[12] = 0;
    const struct {
        const char *type;
        const uint8_t *data;
        uint32_t len;
    } chunks[3] = {{"IHDR", ihdr, 13},
                   {"IDAT", (const uint8_t *)"\x78\x9c\x03\x00\x00\x00\x00\x01", 8},
                   {"IEND", NULL, 0}};
    for (int i = 0; i < 3; i++) {
        put32(out + n, chunks[i].len);
        memcpy(out + n + 4, chunks[i].type, 4);
        if (chunks[i].len) memcpy(out + n + 8, chunks[i].data, chunks[i].len);
        put32(out + n + 8 + chunks[i].len, crc32_of(out + n + 4, 4 + chunks[i].len));
        n += 12 + chunks[i].len;
    }
    return n;
}

VD_TEST(broken_files_give_specific_errors)
{
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char path[600], sample[512];
    imgtest_sample(sample, sizeof sample, 1);
    uint8_t *jpeg;
    size_t jlen;
    CHECK_OK(vd_image_read_file(sample, 0, &jpeg, &jlen, &err));

    struct {
        const char *name;
        size_t len;
        const void *data;
        vd_status code;
        const char *msg_prefix;
    } cases[16];
    int n = 0;
    uint8_t png[256];
    size_t png_len = huge_png(png, 60000, 60000);
    cases[n++] = (__typeof__(cases[0])){"huge.png", png_len, png, VD_ERR_LIMIT,
                                        "too many pixels: 3600000000 > 100000000"};
    cases[n++] = (__typeof__(cases[0])){"empty.jpg", 0, "", VD_ERR_IMAGE, "empty file"};
    const char *text = "hello, this is a text file, not a picture\n";
    cases[n++] =
        (__typeof__(cases[0])){"text.jpg", strlen(text), text, VD_ERR_IMAGE, "not an image"};
    cases[n++] =
        (__typeof__(cases[0])){"trunc.jpg", jlen * 2 / 5, jpeg, VD_ERR_IMAGE, "truncated JPEG"};
    cases[n++] = (__typeof__(cases[0])){"head.jpg", 200, jpeg, VD_ERR_IMAGE, "truncated JPEG"};
    uint8_t garbage[4096];
    memcpy(garbage, jpeg, 4096);
    for (int i = 700; i < 4096; i++)
        garbage[i] = (uint8_t)(i * 31 + 7);
    cases[n++] = (__typeof__(cases[0])){"garbage.jpg", sizeof garbage, garbage, VD_ERR_IMAGE, ""};
    const char *svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>";
    cases[n++] = (__typeof__(cases[0])){"pic.svg", strlen(svg), svg, VD_ERR_UNSUPPORTED,
                                        "unsupported format: svg"};
    const char *csv = "1,2,3\n4,5,6\n";
    cases[n++] = (__typeof__(cases[0])){"pic.csv", strlen(csv), csv, VD_ERR_IMAGE, "not an image"};

    /* A good PNG, then the same PNG cut short. */
    uint8_t *pat = imgtest_pattern(64, 64);
    VipsImage *im = imgtest_vips_from(pat, 64, 64, 3);
    void *goodpng = NULL;
    size_t goodpng_len = 0;
    CHECK(vips_image_write_to_buffer(im, ".png", &goodpng, &goodpng_len, NULL) == 0);
    g_object_unref(im);
    free(pat);
    cases[n++] = (__typeof__(cases[0])){"good.png", goodpng_len, goodpng, VD_OK, ""};
    cases[n++] = (__typeof__(cases[0])){"trunc.png", goodpng_len / 2, goodpng, VD_ERR_IMAGE,
                                        "truncated PNG"};
    cases[n++] = (__typeof__(cases[0])){"good.jpg", jlen, jpeg, VD_OK, ""};

    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        CHECK(imgtest_write(path, cases[i].data, cases[i].len) == 0);
    }
    /* The whole directory, in one go: each file its own outcome. */
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, cases[i].name);
        vd_image img;
        vd_error_clear(&err);
        int64_t t0 = vd_mono_us();
        vd_status st = vd_image_decode_file(path, NULL, &img, NULL, &err);
        printf("    %-12s %-11s %.1f ms  %s\n", cases[i].name, vd_status_name(st),
               (vd_mono_us() - t0) / 1000.0, err.msg);
        CHECK_EQ_INT(st, cases[i].code);
        CHECK(strncmp(err.msg, cases[i].msg_prefix, strlen(cases[i].msg_prefix)) == 0);
        if (st == VD_OK) {
            CHECK(img.width > 0 && img.pixels != NULL);
            vd_image_free(&img);
        } else {
            CHECK(img.pixels == NULL);
        }
    }
    /* The garbage JPEG is some decode error, named as such. */
    g_free(goodpng);
    free(jpeg);
}

VD_TEST(limits_are_checked_before_decoding)
{
    vd_error err;
    char sample[512];
    imgtest_sample(sample, sizeof sample, 1);
    vd_image img;
    vd_decode_opts o = {.max_file_bytes = 1000};
    CHECK_EQ_INT(vd_image_decode_file(sample, &o, &img, NULL, &err), VD_ERR_LIMIT);
    CHECK(strncmp(err.msg, "file too large: ", 16) == 0);
    o = (vd_decode_opts){.max_pixels = 1920 * 1280 - 1};
    CHECK_EQ_INT(vd_image_decode_file(sample, &o, &img, NULL, &err), VD_ERR_LIMIT);
    CHECK_EQ_STR(err.msg, "too many pixels: 2457600 > 2457599");
    o.max_pixels = 1920 * 1280;
    CHECK_OK(vd_image_decode_file(sample, &o, &img, NULL, &err));
    vd_image_free(&img);
    CHECK_EQ_INT(vd_image_decode_file("/nonexistent.jpg", NULL, &img, NULL, &err),
                 VD_ERR_NOT_FOUND);
    /* a directory is refused before any read, as every non-regular file (core/paths.h) */
    CHECK_EQ_INT(vd_image_decode_file(vd_test_tmpdir(), NULL, &img, NULL, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "not a regular file (a directory)") != NULL);
}

VD_TEST(every_truncation_is_an_error_never_a_picture)
{
    vd_error err;
    char sample[512];
    uint8_t *jpeg;
    size_t jlen;
    CHECK_OK(vd_image_read_file(imgtest_sample(sample, sizeof sample, 2), 0, &jpeg, &jlen, &err));
    /* A progressive JPEG and a PNG of the same photo, cut at many places. */
    VipsImage *im = NULL;
    CHECK(vips_jpegload_buffer(jpeg, jlen, &im, NULL) == 0);
    void *prog = NULL, *png = NULL;
    size_t plen = 0, pnglen = 0;
    CHECK(vips_image_write_to_buffer(im, ".jpg[interlace,Q=90]", &prog, &plen, NULL) == 0);
    VipsImage *small = NULL;
    CHECK(vips_resize(im, &small, 0.25, NULL) == 0);
    CHECK(vips_image_write_to_buffer(small, ".png", &png, &pnglen, NULL) == 0);
    g_object_unref(small);
    g_object_unref(im);
    struct {
        const char *name, *want;
        const uint8_t *data;
        size_t len;
    } files[3] = {{"baseline JPEG", "truncated JPEG", jpeg, jlen},
                  {"progressive JPEG", "truncated JPEG", prog, plen},
                  {"PNG", "truncated PNG", png, pnglen}};
    for (int f = 0; f < 3; f++) {
        int errors = 0;
        for (int k = 1; k < 20; k++) {
            size_t cut = files[f].len * (size_t)k / 20;
            vd_image img;
            vd_status st = vd_image_decode_buffer(files[f].data, cut, NULL, &img, &err);
            if (st == VD_OK) vd_image_free(&img);
            CHECK_EQ_INT(st, VD_ERR_IMAGE);
            CHECK(strncmp(err.msg, files[f].want, strlen(files[f].want)) == 0);
            errors++;
        }
        printf("    %s (%zu bytes): 19/19 cuts refused, e.g. \"%s\"\n", files[f].name, files[f].len,
               err.msg);
        CHECK_EQ_INT(errors, 19);
        /* The whole file still decodes. */
        vd_image img;
        CHECK_OK(vd_image_decode_buffer(files[f].data, files[f].len, NULL, &img, &err));
        vd_image_free(&img);
    }
    g_free(prog);
    g_free(png);
    free(jpeg);
}

VD_TEST(webp_shrinks_on_load_too)
{
    vd_error err;
    uint8_t *px = imgtest_pattern(1000, 800);
    VipsImage *im = imgtest_vips_from(px, 1000, 800, 3);
    free(px);
    void *buf = NULL;
    size_t len = 0;
    CHECK(vips_image_write_to_buffer(im, ".webp", &buf, &len, NULL) == 0);
    g_object_unref(im);
    vd_decode_opts o = {.target_width = 250, .target_height = 100};
    vd_image img;
    CHECK_OK(vd_image_decode_buffer(buf, len, &o, &img, &err));
    printf("    1000x800 WebP, target 250x100: decoded %dx%d\n", img.width, img.height);
    CHECK(img.width >= 250 && img.width <= 260 && img.height >= 200 && img.height <= 208);
    CHECK_EQ_INT(img.src_width, 1000);
    vd_image_free(&img);
    g_free(buf);
}

/* Offset of the first marker 0xFF m (m in ms, nms of them) at or after from; 0 if none. */
static size_t find_marker(const uint8_t *d, size_t len, size_t from, const uint8_t *ms, int nms)
{
    for (size_t i = from; i + 1 < len; i++)
        if (d[i] == 0xFF)
            for (int k = 0; k < nms; k++)
                if (d[i + 1] == ms[k]) return i;
    return 0;
}

/* Issue 18 item 6: JPEGs that libjpeg "decodes" by filling grey are refused,
 * each with "corrupt JPEG", while every face-api photo still decodes. */
VD_TEST(half_decoded_and_corrupt_jpegs_are_refused)
{
    vd_error err;
    char sample[512];
    uint8_t *jpeg;
    size_t jlen;
    CHECK_OK(vd_image_read_file(imgtest_sample(sample, sizeof sample, 1), 0, &jpeg, &jlen, &err));
    static const uint8_t sos_m[] = {0xDA}, sof_m[] = {0xC0, 0xC1, 0xC2};
    size_t sos = find_marker(jpeg, jlen, 2, sos_m, 1), sof = find_marker(jpeg, jlen, 2, sof_m, 3);
    CHECK(sos > 0 && sof > 0);
    uint8_t *buf = malloc(jlen + 2);
    struct {
        const char *name;
        size_t len;
    } cases[4];
    int n = 0;
    for (int c = 0; c < 4; c++) {
        memcpy(buf, jpeg, jlen);
        size_t len = jlen;
        if (c == 0) { /* a third of the file, then an end marker */
            len = jlen / 3;
            buf[len++] = 0xFF;
            buf[len++] = 0xD9;
            cases[n++] = (__typeof__(cases[0])){"cut to a third + EOI", len};
        } else if (c == 1) { /* 20 bytes flipped in the scan data */
            for (size_t k = 0; k < 20; k++) {
                size_t at = sos + 200 + k * (jlen - sos - 300) / 20;
                if (buf[at] != 0xFF && (buf[at] ^ 0x5A) != 0xFF) buf[at] ^= 0x5A;
            }
            cases[n++] = (__typeof__(cases[0])){"flipped scan bytes", len};
        } else if (c == 2) { /* the header claims 10000 x 10000 over 1920 x 1280 data */
            buf[sof + 5] = 10000 >> 8, buf[sof + 6] = 10000 & 255;
            buf[sof + 7] = 10000 >> 8, buf[sof + 8] = 10000 & 255;
            cases[n++] = (__typeof__(cases[0])){"header 10000x10000", len};
        } else { /* the same, shrunk on load (the path embeddings take) */
            buf[sof + 5] = 10000 >> 8, buf[sof + 6] = 10000 & 255;
            buf[sof + 7] = 10000 >> 8, buf[sof + 8] = 10000 & 255;
            cases[n++] = (__typeof__(cases[0])){"header 10000x10000, shrink", len};
        }
        vd_decode_opts o = {.target_width = c == 3 ? 224 : 0, .target_height = c == 3 ? 224 : 0};
        vd_image img;
        vd_error_clear(&err);
        int64_t t0 = vd_mono_us();
        vd_status st = vd_image_decode_buffer(buf, len, &o, &img, &err);
        printf("    %-28s %-9s %.1f ms  %s\n", cases[n - 1].name, vd_status_name(st),
               (vd_mono_us() - t0) / 1000.0, err.msg);
        if (st == VD_OK) vd_image_free(&img);
        CHECK_EQ_INT(st, VD_ERR_IMAGE);
        CHECK(strncmp(err.msg, "corrupt JPEG: ", 14) == 0);
    }
    free(buf);
    free(jpeg);
    /* Real photos still decode, whole and shrunk. */
    for (int i = 1; i <= 6; i++) {
        vd_image img;
        CHECK_OK(
            vd_image_decode_file(imgtest_sample(sample, sizeof sample, i), NULL, &img, NULL, &err));
        vd_image_free(&img);
        vd_decode_opts o = {.target_width = 224, .target_height = 224};
        CHECK_OK(vd_image_decode_file(sample, &o, &img, NULL, &err));
        vd_image_free(&img);
    }
}

/* A WebP cut short is an error too (PNG: every_truncation_is_an_error_never_a_picture). */
VD_TEST(truncated_webp_is_an_error)
{
    vd_error err;
    uint8_t *px = imgtest_pattern(300, 200);
    VipsImage *im = imgtest_vips_from(px, 300, 200, 3);
    free(px);
    void *buf = NULL;
    size_t len = 0;
    CHECK(vips_image_write_to_buffer(im, ".webp[Q=90]", &buf, &len, NULL) == 0);
    g_object_unref(im);
    for (int k = 1; k < 10; k++) {
        vd_image img;
        vd_status st = vd_image_decode_buffer(buf, len * (size_t)k / 10, NULL, &img, &err);
        if (st == VD_OK) vd_image_free(&img);
        CHECK_EQ_INT(st, VD_ERR_IMAGE);
        if (k == 5) printf("    WebP cut at half: %s\n", err.msg);
    }
    vd_image img;
    CHECK_OK(vd_image_decode_buffer(buf, len, NULL, &img, &err));
    vd_image_free(&img);
    g_free(buf);
}

/* Issue 18 item 12: decoded pixels count against one budget per process,
 * from the decode until vd_image_free. */
VD_TEST(decoded_pixels_are_held_against_a_budget)
{
    vd_error err;
    char sample[512];
    imgtest_sample(sample, sizeof sample, 1); /* 1920 x 1280 = 2457600 pixels */
    int64_t total0, wait0, used;
    vd_image_budget_get(&total0, &used, &wait0);
    CHECK_EQ_INT(used, 0);
    vd_image_budget_set(3000000, 50);
    vd_image a, b;
    CHECK_OK(vd_image_decode_file(sample, NULL, &a, NULL, &err));
    vd_image_budget_get(NULL, &used, NULL);
    CHECK_EQ_INT(used, 2457600);
    CHECK_EQ_INT(a.budget_px, 2457600);
    /* a second full decode does not fit while the first is held */
    CHECK_EQ_INT(vd_image_decode_file(sample, NULL, &b, NULL, &err), VD_ERR_BUSY);
    printf("    second decode: %s\n", err.msg);
    CHECK(strncmp(err.msg, "decode budget busy: ", 20) == 0);
    CHECK(b.pixels == NULL);
    /* a shrunk one does (480 x 320) */
    vd_decode_opts o = {.target_width = 224, .target_height = 224};
    CHECK_OK(vd_image_decode_file(sample, &o, &b, NULL, &err));
    CHECK_EQ_INT(b.budget_px, 480 * 320);
    vd_image_free(&b);
    vd_image_free(&a);
    vd_image_budget_get(NULL, &used, NULL);
    CHECK_EQ_INT(used, 0);
    CHECK_OK(vd_image_decode_file(sample, NULL, &b, NULL, &err));
    vd_image_free(&b);
    /* an image larger than the whole budget is refused at once */
    vd_image_budget_set(1000000, 60000);
    CHECK_EQ_INT(vd_image_decode_file(sample, NULL, &b, NULL, &err), VD_ERR_LIMIT);
    CHECK_EQ_STR(err.msg, "decode budget: the image needs 2457600 pixels, the budget is 1000000");
    /* failed decodes give back what they took */
    vd_image_budget_set(total0, wait0);
    uint8_t junk[64] = {0xFF, 0xD8, 0xFF};
    CHECK(vd_image_decode_buffer(junk, sizeof junk, NULL, &b, &err) != VD_OK);
    vd_image_budget_get(NULL, &used, NULL);
    CHECK_EQ_INT(used, 0);
}

typedef struct {
    const char *path;
    int ok, busy;
    int64_t max_seen;
} budget_thread;

static void *decode_twice(void *arg)
{
    budget_thread *t = arg;
    for (int i = 0; i < 3; i++) {
        vd_image img;
        vd_error err;
        vd_status st = vd_image_decode_file(t->path, NULL, &img, NULL, &err);
        if (st == VD_OK) {
            int64_t used;
            vd_image_budget_get(NULL, &used, NULL);
            if (used > t->max_seen) t->max_seen = used;
            t->ok++;
            vd_image_free(&img);
        } else if (st == VD_ERR_BUSY) {
            t->busy++;
        }
    }
    return NULL;
}

/* Four threads decoding at once never hold more than the budget. */
VD_TEST(concurrent_decodes_share_the_budget)
{
    char sample[512];
    imgtest_sample(sample, sizeof sample, 1);
    int64_t total0, wait0;
    vd_image_budget_get(&total0, NULL, &wait0);
    vd_image_budget_set(2 * 2457600, 60000); /* room for two */
    budget_thread t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (budget_thread){.path = sample};
        CHECK(pthread_create(&th[i], NULL, decode_twice, &t[i]) == 0);
    }
    int ok = 0;
    int64_t max_seen = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ok += t[i].ok;
        if (t[i].max_seen > max_seen) max_seen = t[i].max_seen;
    }
    printf("    4 threads x 3 decodes: %d ok, at most %lld pixels held at once\n", ok,
           (long long)max_seen);
    CHECK_EQ_INT(ok, 12);
    CHECK(max_seen <= 2 * 2457600);
    int64_t used;
    vd_image_budget_get(NULL, &used, NULL);
    CHECK_EQ_INT(used, 0);
    vd_image_budget_set(total0, wait0);
}

/* libvips 8.14's thread-pool race on errors needs two workers (decode.c): a decode runs on
 * one, unless the user asked for more. */
VD_TEST(libvips_runs_one_worker_per_pipeline)
{
    if (getenv("VIPS_CONCURRENCY")) {
        vd_test_skip("VIPS_CONCURRENCY is set: the user's choice is kept");
        return;
    }
    CHECK_EQ_INT(vips_concurrency_get(), 1);
}

int main(void)
{
    vd_error err;
    if (vd_image_init("test_image_decode", &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = vd_test_run_all();
    vd_image_shutdown();
    return rc;
}
