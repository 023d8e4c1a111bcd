/* decode.c: libvips decoding with limits checked from the header, explicit
 * loader allow-listing and vips's error buffer turned into vd_error. */
#include "image/decode.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dlfcn.h>
#include <gmodule.h>
#include <vips/vips.h>

#include "core/log.h"
#include "core/paths.h"
#include "core/util.h"

/* Loaders we accept (libvips's source loaders) and the format names we report. */
static const struct {
    const char *loader;
    const char *format;
} allowed_loaders[] = {
    {"jpegload_source", "jpeg"}, {"pngload_source", "png"},   {"webpload_source", "webp"},
    {"gifload_source", "gif"},   {"tiffload_source", "tiff"}, {"ppmload_source", "ppm"},
    {"heifload_source", "heif"},
};

/* libjpeg's warnings ("Corrupt JPEG data: premature end of data segment",
 * "bad Huffman code") are counted by libvips and reported, when the loader
 * closes, as one g_warning "read gave N warnings" on the thread that drops
 * the last reference: ours (the loader image is unreferenced in
 * vd_image_decode_buffer). That count is how a scan that ended early or went
 * wrong in its last rows is found: libvips's fail_on=warning only looks
 * between strips. */
static _Thread_local int jpeg_warnings;

static void vips_log_to_vd(const gchar *domain, GLogLevelFlags level, const gchar *message,
                           gpointer user)
{
    (void)user;
    (void)level;
    if (domain && strcmp(domain, "VIPS") == 0 && message && strncmp(message, "read gave ", 10) == 0)
        jpeg_warnings++;
    VD_DEBUG("%s: %s", domain ? domain : "glib", message ? message : "");
}

/* ---- the decoded-pixel budget (decode.h) ---- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t total, used, wait_ms;
    int configured;
} budget = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
            VD_IMAGE_PIXEL_BUDGET,     0,
            VD_IMAGE_BUDGET_WAIT_MS,   0};

void vd_image_budget_set(int64_t pixels, int64_t wait_ms)
{
    pthread_mutex_lock(&budget.mu);
    budget.total = pixels > 0 ? pixels : VD_IMAGE_PIXEL_BUDGET;
    budget.wait_ms = wait_ms >= 0 ? wait_ms : VD_IMAGE_BUDGET_WAIT_MS;
    budget.configured = 1;
    pthread_cond_broadcast(&budget.cv);
    pthread_mutex_unlock(&budget.mu);
}

void vd_image_budget_get(int64_t *total, int64_t *used, int64_t *wait_ms)
{
    pthread_mutex_lock(&budget.mu);
    if (total) *total = budget.total;
    if (used) *used = budget.used;
    if (wait_ms) *wait_ms = budget.wait_ms;
    pthread_mutex_unlock(&budget.mu);
}

/* Reads VISIOND_DECODE_BUDGET / VISIOND_DECODE_WAIT_MS once, unless a
 * program set the budget itself. A bad value keeps the default. */
static void budget_from_env(void)
{
    pthread_mutex_lock(&budget.mu);
    int done = budget.configured;
    budget.configured = 1;
    pthread_mutex_unlock(&budget.mu);
    if (done) return;
    const char *b = getenv("VISIOND_DECODE_BUDGET"), *w = getenv("VISIOND_DECODE_WAIT_MS");
    char *end;
    long long px = b && *b ? strtoll(b, &end, 10) : 0;
    if (!b || !*b || *end || px <= 0) px = VD_IMAGE_PIXEL_BUDGET;
    long long ms = w && *w ? strtoll(w, &end, 10) : -1;
    if (!w || !*w || *end || ms < 0) ms = VD_IMAGE_BUDGET_WAIT_MS;
    vd_image_budget_set(px, ms);
}

/* Takes px pixels from the budget, waiting up to its bound. */
static vd_status budget_take(int64_t px, vd_error *err)
{
    pthread_mutex_lock(&budget.mu);
    if (px > budget.total) {
        int64_t total = budget.total;
        pthread_mutex_unlock(&budget.mu);
        return vd_error_set(err, VD_ERR_LIMIT,
                            "decode budget: the image needs %lld pixels, the budget is %lld",
                            (long long)px, (long long)total);
    }
    int64_t due = vd_mono_us() + budget.wait_ms * 1000;
    while (budget.used + px > budget.total) {
        int64_t now = vd_mono_us();
        if (now >= due) {
            int64_t used = budget.used, total = budget.total, waited = budget.wait_ms;
            pthread_mutex_unlock(&budget.mu);
            return vd_error_set(err, VD_ERR_BUSY,
                                "decode budget busy: the image needs %lld pixels, %lld of %lld "
                                "are in use; waited %lld ms",
                                (long long)px, (long long)used, (long long)total,
                                (long long)waited);
        }
        /* The condition variable uses the realtime clock: wait in short
         * slices so that a clock step cannot stretch the bound. */
        int64_t slice = due - now < 100000 ? due - now : 100000;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + slice * 1000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&budget.cv, &budget.mu, &ts);
    }
    budget.used += px;
    pthread_mutex_unlock(&budget.mu);
    return VD_OK;
}

static void budget_give(int64_t px)
{
    if (px <= 0) return;
    pthread_mutex_lock(&budget.mu);
    budget.used -= px;
    if (budget.used < 0) budget.used = 0;
    pthread_cond_broadcast(&budget.cv);
    pthread_mutex_unlock(&budget.mu);
}

/* The one libvips module this service reads with (HEIF/AVIF); its other modules hold loaders
 * it refuses (decode.h: ImageMagick, PDF, OpenSlide, JPEG XL). */
#define HEIF_MODULE "vips-heif.so"

/* Loads libvips' HEIF module from the directory libvips itself was loaded from, unless a
 * HEIF loader is there already (a user's VIPSHOME brought the modules). Once per process. */
static void heif_module_load(void)
{
    if (g_type_from_name("VipsForeignLoadHeifSource")) return;
    Dl_info info;
    char dir[4096], path[4200];
    if (!dladdr((void *)vips_init, &info) || !info.dli_fname) return;
    vd_strlcpy(dir, info.dli_fname, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (!slash) return;
    *slash = 0;
    snprintf(path, sizeof path, "%s/vips-modules-%d.%d/" HEIF_MODULE, dir, VIPS_MAJOR_VERSION,
             VIPS_MINOR_VERSION);
    if (access(path, R_OK) != 0) return;          /* a libvips without the module: no HEIF here */
    if (!g_module_open(path, G_MODULE_BIND_LAZY)) /* resident once open: never closed */
        VD_WARN("image: cannot load libvips' HEIF module %s: %s", path, g_module_error());
}

int vd_image_heif_ready(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, heif_module_load);
    return g_type_from_name("VipsForeignLoadHeifSource") != 0;
}

/* An ISO base media file ('ftyp' box first): HEIF, AVIF, or a video libvips refuses. */
static int looks_like_heif(const uint8_t *data, size_t len)
{
    return len >= 12 && memcmp(data + 4, "ftyp", 4) == 0;
}

/* Starts libvips without its modules directory. libvips loads every module there at start:
 * ImageMagick, poppler, OpenSlide, libjxl and libheif with their ~30 libraries, 25-30 ms of
 * a 30-38 ms start on the test VM, paid by every work-horse that decodes (each starts
 * libvips afresh). Only HEIF's reads a format this service accepts; it is loaded by the
 * first input that may be one (vd_image_heif_ready: 6-10 ms). VIPSHOME (libvips' prefix,
 * where it looks for modules) is pointed at a directory that does not exist for the start,
 * then removed again; a user's own VIPSHOME is kept, and with it whatever modules it names.
 * Called before any thread of this process reads the environment concurrently (decode.h:
 * before any thread that decodes starts). */
static int start_without_modules(const char *argv0)
{
    if (getenv("VIPSHOME")) return VIPS_INIT(argv0);
    if (setenv("VIPSHOME", "/nonexistent/visiond-no-vips-modules", 1) != 0) return VIPS_INIT(argv0);
    int rc = VIPS_INIT(argv0);
    unsetenv("VIPSHOME");
    return rc;
}

vd_status vd_image_init(const char *argv0, vd_error *err)
{
    /* once per process: a later call must not touch the environment again (other threads
     * may be reading it by then) */
    static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
    static int started;
    pthread_mutex_lock(&once);
    int rc = started ? 0 : start_without_modules(argv0 ? argv0 : "visiond");
    int first = !started && rc == 0;
    if (rc == 0) started = 1;
    pthread_mutex_unlock(&once);
    if (rc != 0) {
        vd_status st =
            vd_error_set(err, VD_ERR_INTERNAL, "libvips failed to start: %s", vips_error_buffer());
        vips_error_clear();
        return st;
    }
    if (!first) return VD_OK;
    VD_DEBUG("libvips %s started (no modules loaded)", vips_version_string());
    /* Every decode is one-shot: caching operations would only keep sources
     * (and the caller's buffers) referenced. */
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    /* One worker thread per libvips pipeline (unless the user set VIPS_CONCURRENCY).
     * libvips 8.14 (Debian 12) has a race in its thread pool's error handling, fixed in
     * 8.15: when one worker fails on a broken file while another asks for work, the second
     * aborts the process ("vips_worker_allocate: assertion failed: (!pool->stop)"; fuzz_image
     * hit it once in CI). With one worker there is no second one. Our decodes do not use
     * the others: bench/image_prep.c, shrink-on-load + vd_preprocess, 8.30-8.73 ms per photo
     * with libvips' default (2 here) and 8.33-8.80 ms with 1 (docs/images.md). */
    if (!getenv("VIPS_CONCURRENCY")) vips_concurrency_set(1);
    /* libvips reports recoverable problems ("error in tile", libjpeg
     * warnings) with g_warning: keep them out of stderr. */
    g_log_set_handler(
        "VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG,
        vips_log_to_vd, NULL);
    /* A loader that meets a 0x0 header (a PPM "P6 0 0") sets out-of-range
     * GObject properties: GLib-GObject warns on stderr (found by fuzz_image). */
    g_log_set_handler("GLib-GObject", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE, vips_log_to_vd,
                      NULL);
    budget_from_env();
    return VD_OK;
}

void vd_image_shutdown(void)
{
    vips_shutdown();
}

vd_status vd_image_alloc(vd_image *out, int width, int height, vd_error *err)
{
    memset(out, 0, sizeof *out);
    if (width <= 0 || height <= 0 || (int64_t)width * height > ((int64_t)1 << 40) / 3)
        return vd_error_set(err, VD_ERR_INVALID, "bad image size %dx%d", width, height);
    out->pixels = malloc((size_t)width * (size_t)height * 3);
    if (!out->pixels)
        return vd_error_set(err, VD_ERR_NOMEM, "no memory for a %dx%d image", width, height);
    out->width = out->src_width = width;
    out->height = out->src_height = height;
    out->orientation = 1;
    return VD_OK;
}

void vd_image_free(vd_image *img)
{
    if (!img) return;
    budget_give(img->budget_px);
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* Copies libvips's error buffer (trimmed to one line) into msg and clears it. */
static void take_vips_error(char *msg, size_t n)
{
    const char *buf = vips_error_buffer();
    size_t j = 0;
    for (const char *p = buf; *p && j + 1 < n; p++) {
        char c = *p == '\n' ? ' ' : *p;
        if (c == ' ' && (j == 0 || msg[j - 1] == ' ')) continue;
        msg[j++] = c;
    }
    while (j > 0 && msg[j - 1] == ' ')
        j--;
    msg[j] = '\0';
    if (j == 0) snprintf(msg, n, "unknown libvips error");
    vips_error_clear();
}

/* Did a PNG stream end properly (with its IEND chunk)? */
static int png_has_iend(const uint8_t *data, size_t len)
{
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
    /* Trailing bytes after IEND are tolerated by decoders: look near the end. */
    size_t from = len > 4096 ? len - 4096 : 0;
    for (size_t i = len >= 12 ? len - 12 + 1 : 0; i-- > from;)
        if (memcmp(data + i, iend, 12) == 0) return 1;
    return 0;
}

/* Turns a libvips failure into a specific vd_error. */
static vd_status decode_error(vd_error *err, const char *format, const uint8_t *data, size_t len)
{
    char msg[VD_ERROR_MSG_MAX - 32];
    take_vips_error(msg, sizeof msg);
    int jpeg = strcmp(format, "jpeg") == 0;
    /* libjpeg: "Premature end of input file" / "of JPEG file" is the bytes
     * running out; "Corrupt JPEG data: ..." is a scan that is damaged or ends
     * before the header's last row ("premature end of data segment"). */
    if (jpeg && (strstr(msg, "Premature end of input") || strstr(msg, "Premature end of JPEG")))
        return vd_error_set(err, VD_ERR_IMAGE, "truncated JPEG: %s", msg);
    if (jpeg && strstr(msg, "Corrupt JPEG"))
        return vd_error_set(err, VD_ERR_IMAGE, "corrupt JPEG: %s", msg);
    if (strcmp(format, "png") == 0 && !png_has_iend(data, len))
        return vd_error_set(err, VD_ERR_IMAGE, "truncated PNG: %s", msg);
    if (strstr(msg, "truncated") || strstr(msg, "Truncated"))
        return vd_error_set(err, VD_ERR_IMAGE, "truncated image: %s", msg);
    return vd_error_set(err, VD_ERR_IMAGE, "corrupt image: %s", msg);
}

/* Opens the image lazily (header only) with the given loader options.
 * JPEGs fail on libjpeg's warnings ("Corrupt JPEG data: premature end of
 * data segment", "bad Huffman code"): for libjpeg those are what a damaged
 * or short scan gives, and it would fill the rest with grey. Other formats
 * fail on errors (truncation included): PNG's warnings (an odd ICC profile,
 * a bad ancillary chunk) leave the pixels intact. */
static VipsImage *open_image(VipsSource *src, const char *format, VipsAccess access,
                             int jpeg_shrink, double webp_scale)
{
    int jpeg = strcmp(format, "jpeg") == 0;
    VipsFailOn fail = jpeg ? VIPS_FAIL_ON_WARNING : VIPS_FAIL_ON_ERROR;
    if (jpeg && jpeg_shrink > 1)
        return vips_image_new_from_source(src, "", "access", access, "fail_on", fail, "shrink",
                                          jpeg_shrink, NULL);
    if (strcmp(format, "webp") == 0 && webp_scale > 0 && webp_scale < 1)
        return vips_image_new_from_source(src, "", "access", access, "fail_on", fail, "scale",
                                          webp_scale, NULL);
    return vips_image_new_from_source(src, "", "access", access, "fail_on", fail, NULL);
}

/* Converts any libvips image to 8-bit, 3-band sRGB; *out is a new reference.
 * Intermediate images belong to ctx. Returns 0 or -1 (vips error set). */
static int to_srgb8(VipsObject *ctx, VipsImage *in, VipsImage **out)
{
    VipsImage **t = (VipsImage **)vips_object_local_array(ctx, 8);
    VipsImage *x = in;
    VipsInterpretation interp = vips_image_guess_interpretation(x);

    if (interp == VIPS_INTERPRETATION_CMYK) {
        /* The embedded profile when there is one, else libvips's CMYK default. */
        if (vips_icc_transform(x, &t[0], "srgb", "embedded", TRUE, "depth", 8, NULL)) {
            vips_error_clear();
            if (vips_colourspace(x, &t[0], VIPS_INTERPRETATION_sRGB, NULL)) return -1;
        }
        x = t[0];
    } else if (interp != VIPS_INTERPRETATION_sRGB && vips_colourspace_issupported(x)) {
        /* B_W, GREY16, RGB16, Lab, XYZ, scRGB ... */
        if (vips_colourspace(x, &t[0], VIPS_INTERPRETATION_sRGB, NULL)) return -1;
        x = t[0];
    }
    if (vips_image_hasalpha(x)) {
        /* Onto white, whatever the depth: max_alpha follows the format. */
        double white = x->BandFmt == VIPS_FORMAT_USHORT ? 65535.0
                       : (x->BandFmt == VIPS_FORMAT_FLOAT || x->BandFmt == VIPS_FORMAT_DOUBLE)
                           ? 1.0
                           : 255.0;
        VipsArrayDouble *bg = vips_array_double_newv(1, white);
        int rc = vips_flatten(x, &t[1], "background", bg, NULL);
        vips_area_unref(VIPS_AREA(bg));
        if (rc) return -1;
        x = t[1];
    }
    if (x->BandFmt != VIPS_FORMAT_UCHAR) {
        if (x->BandFmt == VIPS_FORMAT_USHORT) {
            if (vips_rshift_const1(x, &t[2], 8, NULL)) return -1;
            x = t[2];
        } else if (x->BandFmt == VIPS_FORMAT_FLOAT || x->BandFmt == VIPS_FORMAT_DOUBLE) {
            /* Unmanaged float data: assume 0..1 as TIFF float images mostly are. */
            if (vips_linear1(x, &t[2], 255.0, 0.0, NULL)) return -1;
            x = t[2];
        }
        if (vips_cast(x, &t[3], VIPS_FORMAT_UCHAR, NULL)) return -1;
        x = t[3];
    }
    if (x->Bands == 1 || x->Bands == 2) {
        VipsImage *grey = x;
        if (x->Bands == 2) {
            if (vips_extract_band(x, &t[4], 0, NULL)) return -1;
            grey = t[4];
        }
        VipsImage *three[3] = {grey, grey, grey};
        if (vips_bandjoin(three, &t[5], 3, NULL)) return -1;
        x = t[5];
    } else if (x->Bands > 3) {
        if (vips_extract_band(x, &t[6], 0, "n", 3, NULL)) return -1;
        x = t[6];
    }
    g_object_ref(x);
    *out = x;
    return 0;
}

static int pick_jpeg_shrink(int w, int h, int tw, int th)
{
    if (tw <= 0 && th <= 0) return 1;
    for (int s = 8; s > 1; s /= 2)
        if ((tw <= 0 || w / s >= tw) && (th <= 0 || h / s >= th)) return s;
    return 1;
}

/* Returns 1 when a PNM header ("P1".."P7", whitespace and # comments, then
 * width and height) gives a width and a height > 0. */
static int pnm_size_ok(const uint8_t *p, size_t len)
{
    size_t i = 2; /* past "Pn" */
    long dims[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        while (i < len && (isspace(p[i]) || p[i] == '#')) {
            if (p[i] == '#')
                while (i < len && p[i] != '\n')
                    i++;
            else
                i++;
        }
        if (i >= len || !isdigit(p[i])) return 0;
        while (i < len && isdigit(p[i]) && dims[k] < 1000000000L)
            dims[k] = dims[k] * 10 + (p[i++] - '0');
    }
    return dims[0] > 0 && dims[1] > 0;
}

/* What the header says, before any pixel is decoded. */
typedef struct {
    const char *format;
    int w, h, orientation;
} header;

/* Finds the loader (allow-listed) and reads the header. On failure *err is
 * set and src stays the caller's. */
static vd_status read_header(VipsSource *src, const uint8_t *data, size_t len, header *hd,
                             vd_error *err)
{
    if (looks_like_heif(data, len)) vd_image_heif_ready();
    /* libvips names the loader by its type ("VipsForeignLoadJpegSource"). */
    const char *loader_type = vips_foreign_find_load_source(src);
    const char *loader = loader_type ? vips_nickname_find(g_type_from_name(loader_type)) : NULL;
    if (!loader) {
        vips_error_clear();
        return vd_error_set(err, VD_ERR_IMAGE, "not an image");
    }
    hd->format = NULL;
    for (size_t i = 0; i < sizeof allowed_loaders / sizeof allowed_loaders[0]; i++)
        if (strcmp(loader, allowed_loaders[i].loader) == 0) hd->format = allowed_loaders[i].format;
    if (!hd->format) {
        char name[64];
        snprintf(name, sizeof name, "%s", loader);
        char *cut = strstr(name, "load");
        if (cut) *cut = '\0';
        return vd_error_set(err, VD_ERR_UNSUPPORTED, "unsupported format: %s", name);
    }
    /* libvips's PPM loader cannot refuse a zero width or height: the out-of-range
     * property is not set and the loader goes on with a default size. */
    if (strcmp(hd->format, "ppm") == 0 && !pnm_size_ok(data, len))
        return vd_error_set(err, VD_ERR_IMAGE,
                            "corrupt image: PNM header without a width and height > 0");
    /* Header only: nothing is decoded until pixels are asked for. */
    VipsImage *head = open_image(src, hd->format, VIPS_ACCESS_SEQUENTIAL, 1, 0);
    if (!head) return decode_error(err, hd->format, data, len);
    hd->w = head->Xsize;
    hd->h = head->Ysize;
    hd->orientation = vips_image_get_orientation(head);
    g_object_unref(head);
    if (hd->orientation < 1 || hd->orientation > 8) hd->orientation = 1;
    return VD_OK;
}

/* Decodes the pixels (shrink / scale as chosen, upright, 8-bit RGB) into
 * *mem (g_malloc'd) and their size into *ow x *oh. */
static vd_status decode_pixels(VipsSource *src, const header *hd, int shrink, double scale,
                               const uint8_t *data, size_t len, void **mem, int *ow, int *oh,
                               vd_error *err)
{
    /* Rotating needs random access; plain images stream. */
    VipsAccess access = hd->orientation == 1 ? VIPS_ACCESS_SEQUENTIAL : VIPS_ACCESS_RANDOM;
    VipsObject *ctx = VIPS_OBJECT(vips_image_new());
    VipsImage **t = (VipsImage **)vips_object_local_array(ctx, 4);
    vd_status st = VD_OK;
    size_t memlen = 0;
    *mem = NULL;
    jpeg_warnings = 0;
    t[0] = open_image(src, hd->format, access, shrink, scale);
    if (!t[0]) {
        st = decode_error(err, hd->format, data, len);
        goto done;
    }
    VipsImage *x = t[0];
    if (hd->orientation != 1) {
        if (vips_autorot(x, &t[1], NULL)) {
            st = decode_error(err, hd->format, data, len);
            goto done;
        }
        x = t[1];
    }
    if (to_srgb8(ctx, x, &t[2])) {
        st = decode_error(err, hd->format, data, len);
        goto done;
    }
    x = t[2];
    /* Decoding happens here: truncation and corruption surface now. */
    *mem = vips_image_write_to_memory(x, &memlen);
    if (!*mem) {
        st = decode_error(err, hd->format, data, len);
        goto done;
    }
    *ow = x->Xsize;
    *oh = x->Ysize;
    if (memlen != (size_t)x->Xsize * (size_t)x->Ysize * 3)
        st = vd_error_set(err, VD_ERR_INTERNAL, "decoded %zu bytes for %dx%d RGB", memlen, x->Xsize,
                          x->Ysize);
done:
    g_object_unref(ctx); /* closes the loader: libjpeg's warning count is reported now */
    if (st == VD_OK && jpeg_warnings > 0) {
        char msg[VD_ERROR_MSG_MAX - 64];
        take_vips_error(msg, sizeof msg);
        st = vd_error_set(err, VD_ERR_IMAGE,
                          "corrupt JPEG: the scan data is damaged or ends "
                          "early (libjpeg: %s)",
                          msg);
    }
    if (st != VD_OK) {
        g_free(*mem);
        *mem = NULL;
    }
    return st;
}

/* The size the decode will have: the header's, shrunk on load (libvips
 * rounds a JPEG's down, a WebP's to nearest), upright. */
static void decoded_size(const header *hd, int shrink, double scale, int *w, int *h)
{
    *w = hd->w, *h = hd->h;
    if (shrink > 1) {
        *w = hd->w / shrink;
        *h = hd->h / shrink;
    } else if (scale > 0 && scale < 1) {
        *w = (int)(hd->w * scale + 0.5);
        *h = (int)(hd->h * scale + 0.5);
    }
    if (*w < 1) *w = 1;
    if (*h < 1) *h = 1;
    if (hd->orientation >= 5) {
        int tmp = *w;
        *w = *h;
        *h = tmp;
    }
}

vd_status vd_image_decode_buffer(const void *data, size_t len, const vd_decode_opts *opts,
                                 vd_image *out, vd_error *err)
{
    vd_decode_opts defaults = {0};
    if (!opts) opts = &defaults;
    size_t max_bytes = opts->max_file_bytes ? opts->max_file_bytes : VD_IMAGE_MAX_FILE_BYTES;
    int64_t max_pixels = opts->max_pixels > 0 ? opts->max_pixels : VD_IMAGE_MAX_PIXELS;
    memset(out, 0, sizeof *out);

    if (len == 0) return vd_error_set(err, VD_ERR_IMAGE, "empty file");
    if (len > max_bytes)
        return vd_error_set(err, VD_ERR_LIMIT, "file too large: %zu > %zu bytes", len, max_bytes);
    VipsSource *src = vips_source_new_from_memory(data, len);
    if (!src) return decode_error(err, "", data, len);
    header hd = {0};
    vd_status st = read_header(src, data, len, &hd, err);
    if (st != VD_OK) {
        g_object_unref(src);
        return st;
    }
    int64_t npix = (int64_t)hd.w * (int64_t)hd.h;
    if (npix > max_pixels) {
        g_object_unref(src);
        return vd_error_set(err, VD_ERR_LIMIT, "too many pixels: %lld > %lld", (long long)npix,
                            (long long)max_pixels);
    }
    int swap = hd.orientation >= 5;
    int tw = swap ? opts->target_height : opts->target_width;
    int th = swap ? opts->target_width : opts->target_height;
    int shrink = strcmp(hd.format, "jpeg") == 0 ? pick_jpeg_shrink(hd.w, hd.h, tw, th) : 1;
    double scale = 0;
    if (strcmp(hd.format, "webp") == 0 && (tw > 0 || th > 0)) {
        double sx = tw > 0 ? (double)tw / hd.w : 0, sy = th > 0 ? (double)th / hd.h : 0;
        scale = sx > sy ? sx : sy;
    }
    int want_w, want_h;
    decoded_size(&hd, shrink, scale, &want_w, &want_h);
    /* The pixels held while decoding, and after by the caller (released by
     * vd_image_free); a rotated image is decoded whole before it is turned. */
    int64_t charge = (int64_t)want_w * want_h * (hd.orientation != 1 ? 2 : 1);
    st = budget_take(charge, err);
    if (st != VD_OK) {
        g_object_unref(src);
        return st;
    }
    void *mem = NULL;
    int ow = 0, oh = 0;
    st = decode_pixels(src, &hd, shrink, scale, data, len, &mem, &ow, &oh, err);
    g_object_unref(src);
    /* What was decoded must be what the header announced. */
    int slack = scale > 0 && scale < 1 ? 1 : 0; /* a scaled WebP may round either way */
    if (st == VD_OK && (abs(ow - want_w) > slack || abs(oh - want_h) > slack))
        st = vd_error_set(err, VD_ERR_IMAGE, "corrupt image: decoded %dx%d, the header says %dx%d",
                          ow, oh, want_w, want_h);
    if (st != VD_OK) {
        g_free(mem);
        budget_give(charge);
        return st;
    }
    /* glib's g_malloc is the system malloc (glib >= 2.46): free() releases it. */
    out->pixels = mem;
    out->width = ow;
    out->height = oh;
    out->src_width = swap ? hd.h : hd.w;
    out->src_height = swap ? hd.w : hd.h;
    out->orientation = hd.orientation;
    out->budget_px = charge;
    snprintf(out->format, sizeof out->format, "%s", hd.format);
    return VD_OK;
}

vd_status vd_image_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                             vd_error *err)
{
    /* The one open-and-read of media files (core/paths.h): non-blocking open,
     * regular files only, the byte cap, the read deadline; no roots here. */
    vd_media_limits lim = {.max_bytes = max_bytes ? max_bytes : VD_IMAGE_MAX_FILE_BYTES};
    return vd_media_read(NULL, path, &lim, data, len, NULL, err);
}

vd_status vd_image_decode_file(const char *path, const vd_decode_opts *opts, vd_image *out,
                               uint8_t sha256[VD_SHA256_LEN], vd_error *err)
{
    memset(out, 0, sizeof *out);
    uint8_t *data;
    size_t len;
    vd_status st = vd_image_read_file(path, opts ? opts->max_file_bytes : 0, &data, &len, err);
    if (st != VD_OK) return st;
    if (sha256) vd_sha256(data, len, sha256);
    st = vd_image_decode_buffer(data, len, opts, out, err);
    free(data);
    return st;
}
