/* align.h: from a detected face to the upright crop the embedder expects.
 *
 * A least-squares similarity transform (rotation, uniform scale, translation;
 * no reflection: Umeyama's method in 2-D) maps four BlazeFace keypoints
 * (both eyes, nose tip, mouth centre) onto fixed template positions in a
 * size x size crop, and the image is warped into it (image/preprocess.h).
 *
 * The template (VD_FACE_TEMPLATE, for a 224 crop; scaled for other sizes)
 * reproduces the crop faceres was used with in @vladmandic/human: the
 * BlazeFace box enlarged 1.4x, squared, resized to the model input; here the
 * positions of the keypoints inside such crops were measured on upright faces
 * of the face-api sample photos (docs/faces.md), averaged and made
 * left/right symmetric. Aligning on keypoints instead of the box also undoes
 * in-plane rotation, so a tilted head gives the same crop as an upright one. */
#ifndef VD_FACES_ALIGN_H
#define VD_FACES_ALIGN_H

#include "core/err.h"
#include "faces/blazeface.h"
#include "image/decode.h"

#define VD_FACE_CROP 224 /* faceres's input size */

/* Template (x, y) in a 224 x 224 crop for: right eye, left eye, nose, mouth. */
extern const float VD_FACE_TEMPLATE[4][2];

/* InsightFace's ArcFace template: (x, y) of its five landmarks (faces/scrfd.h
 * order) in a 112 x 112 crop, in pixel-index coordinates as InsightFace
 * states them (continuous coordinates are 0.5 more). */
extern const float VD_ARCFACE_TEMPLATE[5][2];

/* How a face is aligned for an embedder (the model's metadata chooses). */
typedef enum {
    VD_ALIGN_FACERES = 0, /* four BlazeFace keypoints onto VD_FACE_TEMPLATE */
    VD_ALIGN_ARCFACE      /* SCRFD's five landmarks onto VD_ARCFACE_TEMPLATE */
} vd_align_mode;

/* Fits the similarity that best maps src[i] onto dst[i] (n >= 2 points, not
 * all equal) in the least-squares sense, as a 2x3 affine m (u = m0 x + m1 y +
 * m2, v = m3 x + m4 y + m5). VD_ERR_INVALID for degenerate points. */
vd_status vd_similarity_fit(const float (*src)[2], const float (*dst)[2], int n, double m[6],
                            vd_error *err);

/* The transform from image coordinates to a size x size aligned crop for det. */
vd_status vd_face_align_matrix(const vd_face_det *det, int size, double m[6], vd_error *err);

/* The transform from image coordinates to a size x size ArcFace crop for
 * det, as InsightFace's norm_crop estimates it: the template scaled by
 * size/112 when size is a multiple of 112, else by size/128 and shifted
 * right by 8 * size/128. VD_ERR_INVALID when det has no five landmarks
 * (a BlazeFace detection: its mouth corners are unknown). */
vd_status vd_face_align_arcface_matrix(const vd_face_det *det, int size, double m[6],
                                       vd_error *err);

/* Writes the aligned size x size crop of det from img into *crop (owned:
 * vd_image_free); m (may be NULL) receives the transform used. */
vd_status vd_face_align(const vd_image *img, const vd_face_det *det, int size, vd_image *crop,
                        double m[6], vd_error *err);

/* The same with the alignment of mode. */
vd_status vd_face_align_as(const vd_image *img, const vd_face_det *det, int size,
                           vd_align_mode mode, vd_image *crop, double m[6], vd_error *err);

#endif
