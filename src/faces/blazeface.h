/* blazeface.h: decoding MediaPipe BlazeFace outputs into faces.
 *
 * BlazeFace (models/blazeface_back.json: 256x256, models/blazeface_front.json:
 * 128x128) predicts, for each of 896 SSD anchors, a score logit and 16 numbers:
 * box centre offset, box size and six keypoints, all in input pixels relative
 * to the anchor centre. The anchors are MediaPipe's SsdAnchorsCalculator with
 * fixed anchor size, offset 0.5, aspect ratio 1 plus one interpolated scale
 * (2 anchors per layer), and the strides
 *     front 128: 8, 16, 16, 16  -> 16x16 cells x 2 + 8x8 cells x 6 = 896
 *     back  256: 16, 32, 32, 32 -> 16x16 cells x 2 + 8x8 cells x 6 = 896
 * (layers of equal stride share cells). The models output the two groups
 * separately ([1,512,1]+[1,384,1] scores, [1,512,16]+[1,384,16] boxes), the
 * finer grid first; outputs are recognised by shape, not by order or name.
 *
 * Decoding: score = sigmoid(clamp(logit, +-100)); centre = anchor + (dx, dy) /
 * size; box size = (w, h) / size; keypoint k = anchor + (kx, ky) / size. Then
 * MediaPipe's weighted non-maximum suppression: take the best remaining
 * detection, merge every remaining one overlapping it by IoU > iou_threshold
 * into a score-weighted average (box and keypoints), keep the best score.
 * Finally coordinates go back through the preprocessing map to the image. */
#ifndef VD_BLAZEFACE_H
#define VD_BLAZEFACE_H

#include <stddef.h>

#include "core/err.h"
#include "image/preprocess.h"
#include "infer/tensor.h"

#define VD_BLAZEFACE_ANCHORS 896

/* Keypoints, in MediaPipe's order. "Right" is the subject's right: in an
 * upright, unmirrored photo the right eye has the smaller x. */
enum {
    VD_KP_RIGHT_EYE = 0,
    VD_KP_LEFT_EYE,
    VD_KP_NOSE,
    VD_KP_MOUTH,
    VD_KP_RIGHT_EAR,
    VD_KP_LEFT_EAR,
    VD_KP_COUNT
};

typedef struct {
    float x0, y0, x1, y1;     /* box in image pixels (continuous coordinates) */
    float kp[VD_KP_COUNT][2]; /* keypoints (x, y) in image pixels */
    float score;              /* 0..1 */
    float lm5[5][2];          /* InsightFace's five landmarks (faces/scrfd.h), when has_lm5 */
    int has_lm5;              /* 1 from an SCRFD detector, 0 from BlazeFace */
} vd_face_det;

typedef struct {
    float score_threshold; /* keep detections scoring above this; 0 = 0.5 */
    float iou_threshold;   /* merge overlaps above this; 0 = 0.3 */
    int max_faces;         /* 0 = 64 */
} vd_blazeface_opts;

/* Writes the anchor centres (x, y in 0..1 of the input) for a 128 or 256
 * model into xy[2 * VD_BLAZEFACE_ANCHORS], in output order. Returns the
 * count (896), or 0 for another input size. */
int vd_blazeface_anchors(int input_size, float *xy);

/* Decodes batch item b of a BlazeFace run (outs: its outputs, any order) for
 * an input of input_size pixels, mapping coordinates back to the image with
 * map (NULL = input pixels). *faces (owned: free()) gets *nfaces detections,
 * best first. VD_ERR_INVALID when the outputs are not BlazeFace's. */
vd_status vd_blazeface_decode(const vd_tensor *outs, size_t nouts, size_t b, int input_size,
                              const vd_blazeface_opts *opts, const vd_prep_map *map,
                              vd_face_det **faces, size_t *nfaces, vd_error *err);

/* Intersection over union of two boxes (0 when either is empty). */
float vd_face_iou(const vd_face_det *a, const vd_face_det *b);

#endif
