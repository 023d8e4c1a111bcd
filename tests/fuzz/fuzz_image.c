/* fuzz_image.c: arbitrary bytes into the image decoder (image/decode.h) with
 * small limits: the format sniffing and refusal list, the size and pixel
 * checks done on the header before any pixel is decoded, and libvips's
 * loaders behind them (fail_on=error).
 *
 * Limits: 256 KiB of input, 256x256 pixels (from the header). An input of odd
 * length also asks for shrink-on-load to at least 8x8. On success the image
 * must respect the limits and have all its pixels; on failure the status must
 * be one of the documented ones and the output must hold nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/decode.h"

#define FUZZ_MAX_BYTES  (256u << 10)
#define FUZZ_MAX_PIXELS (256 * 256)

static void check(int cond)
{
    if (!cond) abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    vd_error e;
    if (vd_image_init(argc && *argc ? (*argv)[0] : NULL, &e) != VD_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vd_decode_opts o = {.max_file_bytes = FUZZ_MAX_BYTES, .max_pixels = FUZZ_MAX_PIXELS};
    if (size & 1) o.target_width = o.target_height = 8;
    vd_image img;
    vd_error e;
    vd_status rc = vd_image_decode_buffer(data, size, &o, &img, &e);
    if (rc == VD_OK) {
        check(size <= FUZZ_MAX_BYTES);
        check(img.pixels != NULL && img.width > 0 && img.height > 0);
        check((int64_t)img.src_width * img.src_height <= FUZZ_MAX_PIXELS);
        check(img.width <= img.src_width && img.height <= img.src_height);
        check(img.orientation >= 1 && img.orientation <= 8);
        check(img.format[0] != 0);
        /* every pixel is there (ASan checks the allocation's size) */
        volatile uint8_t sink = img.pixels[(size_t)img.width * img.height * 3 - 1];
        (void)sink;
        vd_image_free(&img);
    } else {
        check(rc == VD_ERR_IMAGE || rc == VD_ERR_UNSUPPORTED || rc == VD_ERR_LIMIT);
        check(e.code == rc && e.msg[0] != 0);
        check(img.pixels == NULL);
    }
    return 0;
}
