/* scrfd.h: decoding InsightFace SCRFD outputs (the detector of buffalo_l and
 * the other InsightFace packs) into faces.
 *
 * An SCRFD with keypoints has nine outputs: for each stride s of 8, 16 and
 * 32, a score, four box distances and ten keypoint offsets per anchor, with
 * two anchors per location of the (H/s) x (W/s) grid: [N,1], [N,4], [N,10]
 * with N = H/s * W/s * 2 (or with a batch dim in front: [B,N,C]). Outputs
 * are recognised by shape (last dim and N), not by order or name.
 *
 * Decoding, as InsightFace's reference does: the anchor of index i sits at
 * (x*s, y*s) of the input in pixel-index coordinates (x*s + 0.5 in the
 * continuous coordinates of image/preprocess.h, which visiond uses), location i/2 = y*(W/s) + x;
 * the scores are probabilities already; box = (cx - d0*s, cy - d1*s, cx + d2*s, cy + d3*s);
 * keypoint k = (cx + o[2k]*s, cy + o[2k+1]*s). Anchors scoring at least the
 * threshold are kept, sorted best first, and hard non-maximum suppression
 * drops each box overlapping a better one by IoU > iou_threshold (IoU with
 * InsightFace's +1 pixel areas). Coordinates go back to the image through
 * the preprocessing map.
 *
 * The five keypoints are, in image order: the eye on the image's left (the
 * subject's right), the other eye, the nose tip, the mouth corner on the
 * image's left, the other corner. They land in vd_face_det's lm5 (has_lm5
 * = 1) for ArcFace alignment, and in its BlazeFace slots too (eyes, nose,
 * mouth centre = the corners' midpoint; the ears, which SCRFD lacks, are the
 * eyes), so every consumer of a detection works with either detector. */
#ifndef VD_SCRFD_H
#define VD_SCRFD_H

#include <stddef.h>

#include "core/err.h"
#include "faces/blazeface.h"
#include "image/preprocess.h"
#include "infer/tensor.h"

typedef struct {
    float score_threshold; /* keep anchors scoring at least this; 0 = 0.5 */
    float iou_threshold;   /* suppress overlaps above this; 0 = 0.4 */
    int max_faces;         /* 0 = 64 */
} vd_scrfd_opts;

/* Decodes batch item b of an SCRFD run (outs: its nine outputs, any order)
 * for an input of input_w x input_h pixels (multiples of 32), mapping
 * coordinates back to the image with map (NULL = input pixels). *faces
 * (owned: free()) gets *nfaces detections, best first. VD_ERR_INVALID when
 * the outputs are not an SCRFD's for that input size. */
vd_status vd_scrfd_decode(const vd_tensor *outs, size_t nouts, size_t b, int input_w, int input_h,
                          const vd_scrfd_opts *opts, const vd_prep_map *map, vd_face_det **faces,
                          size_t *nfaces, vd_error *err);

#endif
