/* crop.c: a region of a decoded image as a JPEG (image/crop.h). */
#include "image/crop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <vips/vips.h>

/* The crop rectangle in img's own pixels; 0 when it is empty. */
static int crop_rect(const vd_image *img, const float box[4], float margin, int r[4])
{
    double sx = img->src_width > 0 ? (double)img->width / img->src_width : 1.0;
    double sy = img->src_height > 0 ? (double)img->height / img->src_height : 1.0;
    double side = fmax(box[2], box[3]) * (1.0 + 2.0 * margin);
    double cx = box[0] + box[2] / 2.0, cy = box[1] + box[3] / 2.0;
    double x0 = fmax(0.0, (cx - side / 2) * sx), y0 = fmax(0.0, (cy - side / 2) * sy);
    double x1 = fmin(img->width, (cx + side / 2) * sx),
           y1 = fmin(img->height, (cy + side / 2) * sy);
    if (!(x1 - x0 >= 1.0 && y1 - y0 >= 1.0)) return 0;
    r[0] = (int)x0;
    r[1] = (int)y0;
    r[2] = (int)(x1 - x0);
    r[3] = (int)(y1 - y0);
    if (r[0] + r[2] > img->width) r[2] = img->width - r[0];
    if (r[1] + r[3] > img->height) r[3] = img->height - r[1];
    return r[2] > 0 && r[3] > 0;
}

vd_status vd_image_crop_jpeg(const vd_image *img, const float box[4], float margin, int size,
                             uint8_t **jpeg, size_t *len, vd_error *err)
{
    *jpeg = NULL;
    *len = 0;
    if (size < 1 || size > 4096 || !(margin >= 0.0f && margin <= 4.0f))
        return vd_error_set(err, VD_ERR_INVALID, "crop: size must be 1..4096, got %d", size);
    for (int i = 0; i < 4; i++)
        if (!isfinite(box[i])) return vd_error_set(err, VD_ERR_INVALID, "crop: box not finite");
    int r[4];
    if (!img->pixels || !crop_rect(img, box, margin, r))
        return vd_error_set(err, VD_ERR_INVALID, "crop: the box lies outside the image");
    VipsImage *base = vips_image_new_from_memory(img->pixels, (size_t)img->width * img->height * 3,
                                                 img->width, img->height, 3, VIPS_FORMAT_UCHAR);
    VipsImage *cut = NULL, *small = NULL;
    void *buf = NULL;
    size_t n = 0;
    double scale = fmin(1.0, (double)size / (r[2] > r[3] ? r[2] : r[3]));
    int bad = !base || vips_extract_area(base, &cut, r[0], r[1], r[2], r[3], NULL) ||
              vips_resize(cut, &small, scale, NULL) ||
              vips_jpegsave_buffer(small, &buf, &n, "Q", VD_CROP_JPEG_QUALITY, "strip", TRUE, NULL);
    vd_status st = VD_OK;
    if (bad) {
        st = vd_error_set(err, VD_ERR_IMAGE, "crop: libvips: %.200s", vips_error_buffer());
        vips_error_clear();
    } else if (!(*jpeg = malloc(n))) {
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    } else {
        memcpy(*jpeg, buf, n);
        *len = n;
    }
    g_free(buf);
    if (small) g_object_unref(small);
    if (cut) g_object_unref(cut);
    if (base) g_object_unref(base);
    return st;
}
