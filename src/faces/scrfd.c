/* scrfd.c: SCRFD outputs -> faces (see scrfd.h). */
#include "faces/scrfd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NSTRIDE 3
static const int STRIDES[NSTRIDE] = {8, 16, 32};

/* One stride's outputs. */
typedef struct {
    const vd_tensor *score, *box, *kps;
    int64_t n; /* anchors: (H/s) * (W/s) * 2 */
} level;

/* The anchor count of t when its last dim is c (rank 2 [N,c], or rank 3
 * [B,N,c] with B > b); 0 otherwise. */
static int64_t anchors_of(const vd_tensor *t, int64_t c, size_t b)
{
    if (t->rank == 2 && t->shape[1] == c && b == 0) return t->shape[0];
    if (t->rank == 3 && t->shape[2] == c && t->shape[0] > (int64_t)b) return t->shape[1];
    return 0;
}

/* Finds each stride's three outputs by shape. */
static vd_status find_levels(const vd_tensor *outs, size_t nouts, size_t b, int w, int h,
                             level lv[NSTRIDE], vd_error *err)
{
    if (w <= 0 || h <= 0 || w % 32 || h % 32)
        return vd_error_set(err, VD_ERR_INVALID, "SCRFD input %dx%d: sides must be multiples of 32",
                            w, h);
    for (int s = 0; s < NSTRIDE; s++) {
        int64_t n = (int64_t)(w / STRIDES[s]) * (h / STRIDES[s]) * 2;
        lv[s] = (level){NULL, NULL, NULL, n};
        for (size_t i = 0; i < nouts; i++) {
            if (anchors_of(&outs[i], 1, b) == n) lv[s].score = &outs[i];
            if (anchors_of(&outs[i], 4, b) == n) lv[s].box = &outs[i];
            if (anchors_of(&outs[i], 10, b) == n) lv[s].kps = &outs[i];
        }
        if (!lv[s].score || !lv[s].box || !lv[s].kps)
            return vd_error_set(err, VD_ERR_INVALID,
                                "not SCRFD outputs for a %dx%d input: stride %d needs [%lld,1], "
                                "[%lld,4] and [%lld,10]",
                                w, h, STRIDES[s], (long long)n, (long long)n, (long long)n);
    }
    return VD_OK;
}

/* The five landmarks' slots in vd_face_det's BlazeFace keypoints. */
static void fill_keypoints(vd_face_det *d)
{
    d->has_lm5 = 1;
    memcpy(d->kp[VD_KP_RIGHT_EYE], d->lm5[0], sizeof d->lm5[0]);
    memcpy(d->kp[VD_KP_LEFT_EYE], d->lm5[1], sizeof d->lm5[1]);
    memcpy(d->kp[VD_KP_NOSE], d->lm5[2], sizeof d->lm5[2]);
    d->kp[VD_KP_MOUTH][0] = (d->lm5[3][0] + d->lm5[4][0]) / 2;
    d->kp[VD_KP_MOUTH][1] = (d->lm5[3][1] + d->lm5[4][1]) / 2;
    memcpy(d->kp[VD_KP_RIGHT_EAR], d->lm5[0], sizeof d->lm5[0]);
    memcpy(d->kp[VD_KP_LEFT_EAR], d->lm5[1], sizeof d->lm5[1]);
}

/* Appends one stride's anchors scoring >= thr to cand (room is the caller's). */
static size_t decode_level(const level *l, int stride, int w, size_t b, float thr,
                           vd_face_det *cand)
{
    const float *sc = l->score->data + b * (size_t)l->n;
    const float *bx = l->box->data + b * (size_t)l->n * 4;
    const float *kp = l->kps->data + b * (size_t)l->n * 10;
    int cols = w / stride;
    size_t nc = 0;
    for (int64_t i = 0; i < l->n; i++) {
        if (!(sc[i] >= thr)) continue;
        int64_t loc = i / 2;
        /* index coordinates, as InsightFace decodes them; + 0.5: continuous */
        float cx = (float)((loc % cols) * stride) + 0.5f,
              cy = (float)((loc / cols) * stride) + 0.5f;
        const float *d4 = bx + i * 4, *o = kp + i * 10;
        vd_face_det *d = &cand[nc++];
        *d = (vd_face_det){.score = sc[i]};
        d->x0 = cx - d4[0] * stride, d->y0 = cy - d4[1] * stride;
        d->x1 = cx + d4[2] * stride, d->y1 = cy + d4[3] * stride;
        for (int k = 0; k < 5; k++) {
            d->lm5[k][0] = cx + o[2 * k] * stride;
            d->lm5[k][1] = cy + o[2 * k + 1] * stride;
        }
    }
    return nc;
}

static int by_score_desc(const void *pa, const void *pb)
{
    const vd_face_det *a = pa, *b = pb;
    return (a->score < b->score) - (a->score > b->score);
}

/* IoU with InsightFace's pixel areas ((x1 - x0 + 1) * (y1 - y0 + 1)). */
static float iou_plus1(const vd_face_det *a, const vd_face_det *b)
{
    float iw = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0) + 1;
    float ih = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0) + 1;
    if (!(iw > 0) || !(ih > 0)) return 0;
    float inter = iw * ih;
    float aa = (a->x1 - a->x0 + 1) * (a->y1 - a->y0 + 1);
    float ab = (b->x1 - b->x0 + 1) * (b->y1 - b->y0 + 1);
    return inter / (aa + ab - inter);
}

static void to_image(const vd_prep_map *map, vd_face_det *d)
{
    double x, y;
    vd_prep_map_to_image(map, d->x0, d->y0, &x, &y);
    d->x0 = (float)x, d->y0 = (float)y;
    vd_prep_map_to_image(map, d->x1, d->y1, &x, &y);
    d->x1 = (float)x, d->y1 = (float)y;
    for (int k = 0; k < 5; k++) {
        vd_prep_map_to_image(map, d->lm5[k][0], d->lm5[k][1], &x, &y);
        d->lm5[k][0] = (float)x, d->lm5[k][1] = (float)y;
    }
}

vd_status vd_scrfd_decode(const vd_tensor *outs, size_t nouts, size_t b, int input_w, int input_h,
                          const vd_scrfd_opts *opts, const vd_prep_map *map, vd_face_det **faces,
                          size_t *nfaces, vd_error *err)
{
    *faces = NULL;
    *nfaces = 0;
    float thr = opts && opts->score_threshold > 0 ? opts->score_threshold : 0.5f;
    float iou = opts && opts->iou_threshold > 0 ? opts->iou_threshold : 0.4f;
    size_t max_faces = opts && opts->max_faces > 0 ? (size_t)opts->max_faces : 64;
    level lv[NSTRIDE];
    vd_status st = find_levels(outs, nouts, b, input_w, input_h, lv, err);
    if (st != VD_OK) return st;
    size_t total = 0;
    for (int s = 0; s < NSTRIDE; s++)
        total += (size_t)lv[s].n;
    vd_face_det *cand = malloc(sizeof *cand * total);
    if (!cand) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    size_t nc = 0;
    for (int s = 0; s < NSTRIDE; s++)
        nc += decode_level(&lv[s], STRIDES[s], input_w, b, thr, cand + nc);
    qsort(cand, nc, sizeof *cand, by_score_desc);
    size_t nk = 0; /* hard NMS in place: cand[0..nk) are kept */
    for (size_t i = 0; i < nc && nk < max_faces; i++) {
        int suppressed = 0;
        for (size_t j = 0; j < nk && !suppressed; j++)
            suppressed = iou_plus1(&cand[j], &cand[i]) > iou;
        if (!suppressed) cand[nk++] = cand[i];
    }
    for (size_t i = 0; i < nk; i++) {
        if (map) to_image(map, &cand[i]);
        fill_keypoints(&cand[i]);
    }
    if (nk == 0) {
        free(cand);
        cand = NULL;
    }
    *faces = cand;
    *nfaces = nk;
    return VD_OK;
}
