/* decode.h: image files (or bytes) in, 8-bit sRGB RGB pixels out, with libvips.
 *
 * Every image the service looks at goes through here. The promises:
 *  - output is always 3 bands of 8-bit RGB, rows top to bottom, no padding:
 *    grey is replicated, CMYK is converted through an ICC profile (embedded,
 *    else libvips's built-in one), 16-bit and float are scaled to 8 bits, and
 *    alpha is flattened onto white. RGB images are NOT colour-managed (pixel
 *    values are kept, as TensorFlow's and PIL's decoders do for training data);
 *  - the EXIF orientation is applied (the output is upright as a viewer shows it);
 *  - limits are checked before pixels are decoded: the byte size before
 *    reading (files) and the pixel count from the header, so a 60000x60000 PNG
 *    is refused in milliseconds;
 *  - truncated or corrupt files are errors, never grey or half-decoded pictures:
 *    libvips's fail_on=error, and for JPEGs fail_on=warning plus libjpeg's
 *    warning count when the loader closes (a scan that is damaged or ends
 *    before the header's last row), plus a check that the decoded size is
 *    the header's;
 *  - decoded pixels are held against a process-wide budget (below): a decode
 *    waits, boundedly, until the pixels it will hold fit;
 *  - formats: JPEG, PNG, WebP, GIF (first frame), TIFF (first page), PGM/PPM/PBM
 *    and HEIF/AVIF (where the installed libvips reads them). Anything else that
 *    libvips could read (SVG, FITS, vips files, CSV ...) is refused as
 *    "unsupported format: NAME", so hostile inputs never reach those loaders;
 *    libvips' modules other than HEIF's (ImageMagick, PDF, OpenSlide, JPEG XL)
 *    are not loaded at all (vd_image_init), so those files are "not an image";
 *  - errors are per image, specific and never printed: "empty file",
 *    "not an image", "unsupported format: svg", "truncated JPEG",
 *    "corrupt JPEG: ...", "truncated PNG", "corrupt image: <libvips message>",
 *    "too many pixels: 3600000000 > 100000000", "file too large: N > M bytes",
 *    "decode budget busy: ...".
 *
 * Process setup: libvips must be initialised once per process, before any
 * thread that decodes starts: `main` (and each test program's main) calls
 * vd_image_init. The only state kept here is the decode budget (process-wide,
 * thread-safe) and a per-thread count of libjpeg warnings; libvips's error
 * buffer is process-wide, so messages from decodes running at the same time in
 * several threads may mix (the status codes stay right). */
#ifndef VD_IMAGE_DECODE_H
#define VD_IMAGE_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/sha256.h"

#define VD_IMAGE_MAX_FILE_BYTES ((size_t)64 << 20) /* default file size limit: 64 MiB */
#define VD_IMAGE_MAX_PIXELS     100000000LL        /* default pixel limit: 100 Mpx */
#define VD_IMAGE_PIXEL_BUDGET   200000000LL /* default decode budget: 200 Mpx (600 MB of RGB) */
#define VD_IMAGE_BUDGET_WAIT_MS 30000       /* default bound on waiting for the budget */

typedef struct {
    uint8_t *pixels;   /* owned (vd_image_free): height*width*3 bytes, RGB */
    int width, height; /* of pixels */
    int src_width;     /* the full image's size, upright, before any shrink-on-load: */
    int src_height;    /*   pixel (x,y) here is (x*src_width/width, ...) in the original */
    int orientation;   /* the EXIF orientation found (1..8, 1 = none) and applied */
    char format[8];    /* "jpeg", "png", "webp", "gif", "tiff", "ppm" or "heif" */
    int64_t budget_px; /* pixels this image holds of the decode budget (0 = none) */
} vd_image;

typedef struct {
    size_t max_file_bytes; /* 0 = VD_IMAGE_MAX_FILE_BYTES */
    int64_t max_pixels;    /* 0 = VD_IMAGE_MAX_PIXELS; checked on the header's full size */
    /* Shrink-on-load: when > 0, JPEGs are decoded at 1/2, 1/4 or 1/8 scale and
     * WebPs at any scale, as long as the result (upright) stays at least
     * target_width x target_height (a 0 leaves that side unconstrained). Other
     * formats decode at full size. The caller resizes exactly afterwards. */
    int target_width, target_height;
} vd_decode_opts;

/* Initialises libvips for this process (VIPS_INIT) without its modules (HEIF's
 * comes with the first HEIF input, vd_image_heif_ready; a VIPSHOME the user set
 * is kept, else this sets and removes that variable around the start:
 * docs/images.md "Modules"), turns off libvips's operation cache (decodes are
 * one-shot) and routes libvips's warnings to vd_log at debug level instead of
 * stderr. Call from main before any thread starts; a later call does nothing.
 * argv0 may be NULL. VD_ERR_INTERNAL with libvips's message if the library
 * cannot start (wrong ABI). */
vd_status vd_image_init(const char *argv0, vd_error *err);

/* Loads libvips' HEIF module (HEIF/AVIF load and save) if it is not loaded yet; a decode
 * does so itself when its input starts like an ISO base media file. Thread-safe; costs
 * 6-10 ms the first time. Returns 1 when this libvips reads HEIF. */
int vd_image_heif_ready(void);

/* The decode budget: the decoded pixels every image of this process holds,
 * from the start of its decode until vd_image_free, count against one total
 * (the output size after shrink-on-load; twice that for an EXIF-rotated
 * image, which libvips decodes whole before turning). A decode whose pixels
 * do not fit waits until they do, at most wait_ms, then fails with
 * VD_ERR_BUSY "decode budget busy: ..."; an image larger than the whole
 * budget fails at once with VD_ERR_LIMIT "decode budget: ...". vd_image_init
 * reads the defaults from VISIOND_DECODE_BUDGET (pixels) and
 * VISIOND_DECODE_WAIT_MS, else VD_IMAGE_PIXEL_BUDGET / VD_IMAGE_BUDGET_WAIT_MS;
 * vd_image_budget_set overrides them (pixels <= 0 / wait_ms < 0: the
 * defaults). Thread-safe. */
void vd_image_budget_set(int64_t pixels, int64_t wait_ms);
/* Reads the budget's total, the pixels in use and the wait bound (any may be NULL). */
void vd_image_budget_get(int64_t *total, int64_t *used, int64_t *wait_ms);

/* Releases libvips's process-wide resources (vips_shutdown); for the end of
 * tests and tools. No decode may run afterwards. */
void vd_image_shutdown(void);

/* Decodes len bytes at data (borrowed, only read during the call) into *out
 * (overwritten; free it with vd_image_free). opts may be NULL for defaults.
 * Errors: VD_ERR_IMAGE (empty, not an image, truncated, corrupt),
 * VD_ERR_UNSUPPORTED (a format outside the list above), VD_ERR_LIMIT,
 * VD_ERR_BUSY (the decode budget could not be had in time). */
vd_status vd_image_decode_buffer(const void *data, size_t len, const vd_decode_opts *opts,
                                 vd_image *out, vd_error *err);

/* Reads the file at path (refusing one larger than the limit from its size,
 * before reading), optionally writes the SHA-256 of its bytes to sha256 (may
 * be NULL), and decodes it as vd_image_decode_buffer does. The digest is
 * written whenever the file could be read, even if decoding then fails.
 * Adds VD_ERR_NOT_FOUND / VD_ERR_IO (with the path), VD_ERR_INVALID (not a
 * regular file: vd_image_read_file) to the errors above. */
vd_status vd_image_decode_file(const char *path, const vd_decode_opts *opts, vd_image *out,
                               uint8_t sha256[VD_SHA256_LEN], vd_error *err);

/* Reads a whole file into *data (owned: free()), refusing files over max_bytes
 * (0 = VD_IMAGE_MAX_FILE_BYTES) from their size before reading: VD_ERR_LIMIT
 * "file too large: N > M bytes". For callers that hash before decoding. It is
 * vd_media_read (core/paths.h) without media roots: opened non-blocking,
 * anything but a regular file (FIFO, /dev/zero, directory) refused with
 * VD_ERR_INVALID before a byte is read, reading bounded in time. Callers that
 * have media roots call vd_media_read with them. */
vd_status vd_image_read_file(const char *path, size_t max_bytes, uint8_t **data, size_t *len,
                             vd_error *err);

/* Allocates an uninitialised width x height RGB image into *out (src size =
 * size, orientation 1, format ""). VD_ERR_INVALID for a bad size,
 * VD_ERR_NOMEM. */
vd_status vd_image_alloc(vd_image *out, int width, int height, vd_error *err);

/* Frees the pixels, gives back its share of the decode budget and zeroes
 * *img. Safe on a zeroed image. An image owns its budget share: move it
 * (struct copy, then forget the original), never copy it. */
void vd_image_free(vd_image *img);

#endif
