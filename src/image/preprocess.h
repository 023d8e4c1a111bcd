/* preprocess.h: decoded images to a model's float input, as its metadata says.
 *
 * One function turns vd_images into the input tensor a model expects
 * (src/infer/model_meta.h, docs/models.md): resize (stretch, center_crop or
 * letterbox), colour order, (pixel * scale - mean[c]) / std[c], NHWC or NCHW,
 * batched as [n, ...]. Resampling is ours and deterministic: downscaling
 * averages the covered source area (box filter over the exact footprint, like
 * OpenCV's INTER_AREA), upscaling is bilinear on pixel centres; values are
 * kept as floats, never rounded back to bytes. A one-channel model gets BT.601
 * luma (0.299 R + 0.587 G + 0.114 B).
 *
 * Coordinates here are continuous: pixel (i, j) covers [i, i+1) x [j, j+1) and
 * its centre is (i + 0.5, j + 0.5). Each image's vd_prep_map says where its
 * pixels went in the model input, so detections can be mapped back. */
#ifndef VD_IMAGE_PREPROCESS_H
#define VD_IMAGE_PREPROCESS_H

#include <stddef.h>

#include "core/err.h"
#include "image/decode.h"
#include "infer/model_meta.h"
#include "infer/runner.h"
#include "infer/tensor.h"

/* Image point (x, y) lands at model-input point (x * sx + ox, y * sy + oy). */
typedef struct {
    double sx, sy, ox, oy;
} vd_prep_map;

/* Maps a model-input point back to the image it came from. */
void vd_prep_map_to_image(const vd_prep_map *m, double u, double v, double *x, double *y);

/* Writes one image's input (meta->height * width * channels floats, in meta's
 * layout, without the batch dim) into dst, and its map into *map (may be
 * NULL). VD_ERR_INVALID for a meta without a size or with channels other than
 * 1 or 3, or an empty image; VD_ERR_NOMEM. */
vd_status vd_preprocess_into(const vd_image *img, const vd_model_meta *meta, float *dst,
                             vd_prep_map *map, vd_error *err);

/* Preprocesses n >= 1 images into *out ([n, H, W, C] for NHWC, [n, C, H, W] for NCHW; the
 * caller frees it with vd_tensor_free), writing each image's map into maps[i] when maps is
 * not NULL. *out is the input r gives for its next run (vd_runner_input: the model-server
 * runner lends its shared region, so the batch is written where the server reads it), or,
 * with r NULL, a tensor of its own. Every value is written. Errors as above. */
vd_status vd_preprocess_for(vd_runner *r, const vd_image *imgs, size_t n, const vd_model_meta *meta,
                            vd_tensor *out, vd_prep_map *maps, vd_error *err);

/* Warps src by the 2x3 affine m, which maps SOURCE points to OUTPUT points
 * (u = m[0] x + m[1] y + m[2], v = m[3] x + m[4] y + m[5]), into a new
 * out_w x out_h image *out (free with vd_image_free). Each output pixel is the
 * bilinear sample at its centre's preimage; when the warp shrinks by more
 * than 1.5x, a k x k grid of samples (k <= 4) spread over the pixel is
 * averaged so small crops of big faces do not alias. Outside the source is
 * black. VD_ERR_INVALID for a singular m or a bad size. */
vd_status vd_image_warp_affine(const vd_image *src, const double m[6], int out_w, int out_h,
                               vd_image *out, vd_error *err);

/* The same warp as OpenCV's cv2.warpAffine(src, m, (out_w, out_h)) with
 * INTER_LINEAR and a black constant border computes it (which InsightFace's
 * norm_crop, the ArcFace alignment, uses): one bilinear sample per output
 * pixel, however much the warp shrinks, and source pixels outside the image
 * are black, so the one-pixel band along the border blends with black. m is
 * in continuous coordinates like vd_image_warp_affine's. */
vd_status vd_image_warp_affine_exact(const vd_image *src, const double m[6], int out_w, int out_h,
                                     vd_image *out, vd_error *err);

#endif
