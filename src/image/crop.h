/* crop.h: a region of a decoded image as a small JPEG (face thumbnails, docs/people.md). */
#ifndef VD_IMAGE_CROP_H
#define VD_IMAGE_CROP_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "image/decode.h"

#define VD_CROP_JPEG_QUALITY 85

/* Crops img to box (x, y, w, h in the ORIGINAL image's upright pixels: img->src_width x
 * src_height, as faces are stored), grown by `margin` times its larger side on each side
 * and squared, clipped to the image, and encodes it as a JPEG whose larger side is at most
 * size pixels (1..4096; never enlarged). *jpeg (malloc'd) and *len. VD_ERR_INVALID for a
 * box outside the image or a bad size; VD_ERR_IMAGE when libvips fails. */
vd_status vd_image_crop_jpeg(const vd_image *img, const float box[4], float margin, int size,
                             uint8_t **jpeg, size_t *len, vd_error *err);

#endif
