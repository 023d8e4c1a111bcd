/* align.c: least-squares similarity fit and the aligned face crop. */
#include "faces/align.h"

#include <math.h>
#include <stddef.h>

#include "image/preprocess.h"

/* Measured: see align.h and docs/faces.md. */
const float VD_FACE_TEMPLATE[4][2] = {
    {79.3f, 79.4f},   /* right eye (image left) */
    {144.7f, 79.4f},  /* left eye */
    {112.0f, 119.8f}, /* nose tip */
    {112.0f, 151.4f}, /* mouth centre */
};

/* InsightFace's arcface_dst (public constants of its face_align module). */
const float VD_ARCFACE_TEMPLATE[5][2] = {
    {38.2946f, 51.6963f}, /* eye on the image's left */
    {73.5318f, 51.5014f}, /* other eye */
    {56.0252f, 71.7366f}, /* nose tip */
    {41.5493f, 92.3655f}, /* mouth corner on the image's left */
    {70.7299f, 92.2041f}, /* other corner */
};

static const int template_kp[4] = {VD_KP_RIGHT_EYE, VD_KP_LEFT_EYE, VD_KP_NOSE, VD_KP_MOUTH};

vd_status vd_similarity_fit(const float (*src)[2], const float (*dst)[2], int n, double m[6],
                            vd_error *err)
{
    if (n < 2) return vd_error_set(err, VD_ERR_INVALID, "similarity fit needs 2 points, got %d", n);
    double ps[2] = {0, 0}, qs[2] = {0, 0};
    for (int i = 0; i < n; i++) {
        ps[0] += src[i][0], ps[1] += src[i][1];
        qs[0] += dst[i][0], qs[1] += dst[i][1];
    }
    ps[0] /= n, ps[1] /= n, qs[0] /= n, qs[1] /= n;
    double sxx = 0, dot = 0, cross = 0;
    for (int i = 0; i < n; i++) {
        double px = src[i][0] - ps[0], py = src[i][1] - ps[1];
        double qx = dst[i][0] - qs[0], qy = dst[i][1] - qs[1];
        sxx += px * px + py * py;
        dot += px * qx + py * qy;
        cross += px * qy - py * qx;
    }
    if (!(sxx > 1e-9) || !isfinite(sxx))
        return vd_error_set(err, VD_ERR_INVALID, "similarity fit: points coincide");
    double a = dot / sxx, b = cross / sxx;
    if (!(a * a + b * b > 1e-18))
        return vd_error_set(err, VD_ERR_INVALID, "similarity fit: degenerate target");
    m[0] = a, m[1] = -b, m[2] = qs[0] - (a * ps[0] - b * ps[1]);
    m[3] = b, m[4] = a, m[5] = qs[1] - (b * ps[0] + a * ps[1]);
    return VD_OK;
}

vd_status vd_face_align_matrix(const vd_face_det *det, int size, double m[6], vd_error *err)
{
    if (size <= 0) return vd_error_set(err, VD_ERR_INVALID, "crop size %d", size);
    float src[4][2], dst[4][2];
    float k = (float)size / VD_FACE_CROP;
    for (int i = 0; i < 4; i++) {
        src[i][0] = det->kp[template_kp[i]][0];
        src[i][1] = det->kp[template_kp[i]][1];
        dst[i][0] = VD_FACE_TEMPLATE[i][0] * k;
        dst[i][1] = VD_FACE_TEMPLATE[i][1] * k;
    }
    return vd_similarity_fit((const float(*)[2])src, (const float(*)[2])dst, 4, m, err);
}

vd_status vd_face_align_arcface_matrix(const vd_face_det *det, int size, double m[6], vd_error *err)
{
    if (size <= 0) return vd_error_set(err, VD_ERR_INVALID, "crop size %d", size);
    if (!det->has_lm5)
        return vd_error_set(err, VD_ERR_INVALID,
                            "ArcFace alignment needs five landmarks (an SCRFD detector), not "
                            "BlazeFace keypoints");
    float dst[5][2];
    float ratio = size % 112 == 0 ? (float)size / 112 : (float)size / 128;
    float shift = size % 112 == 0 ? 0 : 8 * ratio;
    for (int i = 0; i < 5; i++) {
        /* index coordinates -> continuous ones, like the landmarks (scrfd.h) */
        dst[i][0] = (VD_ARCFACE_TEMPLATE[i][0] * ratio + shift) + 0.5f;
        dst[i][1] = VD_ARCFACE_TEMPLATE[i][1] * ratio + 0.5f;
    }
    return vd_similarity_fit((const float(*)[2])det->lm5, (const float(*)[2])dst, 5, m, err);
}

vd_status vd_face_align(const vd_image *img, const vd_face_det *det, int size, vd_image *crop,
                        double m[6], vd_error *err)
{
    return vd_face_align_as(img, det, size, VD_ALIGN_FACERES, crop, m, err);
}

vd_status vd_face_align_as(const vd_image *img, const vd_face_det *det, int size,
                           vd_align_mode mode, vd_image *crop, double m[6], vd_error *err)
{
    double mm[6];
    vd_status st = mode == VD_ALIGN_ARCFACE ? vd_face_align_arcface_matrix(det, size, mm, err)
                                            : vd_face_align_matrix(det, size, mm, err);
    if (st != VD_OK) return st;
    if (m)
        for (int i = 0; i < 6; i++)
            m[i] = mm[i];
    /* ArcFace: InsightFace's norm_crop, exactly (cv2.warpAffine); faceres: anti-aliased */
    return mode == VD_ALIGN_ARCFACE ? vd_image_warp_affine_exact(img, mm, size, size, crop, err)
                                    : vd_image_warp_affine(img, mm, size, size, crop, err);
}
