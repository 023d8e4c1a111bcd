/* blazeface.c: SSD anchors, box/keypoint decoding and weighted NMS. */
#include "faces/blazeface.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int vd_blazeface_anchors(int input_size, float *xy)
{
    static const int strides_front[4] = {8, 16, 16, 16};
    static const int strides_back[4] = {16, 32, 32, 32};
    const int *strides;
    if (input_size == 128)
        strides = strides_front;
    else if (input_size == 256)
        strides = strides_back;
    else
        return 0;
    int n = 0, layer = 0;
    while (layer < 4) {
        /* Layers with the same stride share one grid: 2 anchors each
         * (aspect ratio 1, plus the interpolated scale). */
        int last = layer, per_cell = 0;
        while (last < 4 && strides[last] == strides[layer]) {
            per_cell += 2;
            last++;
        }
        int cells = (input_size + strides[layer] - 1) / strides[layer];
        for (int y = 0; y < cells; y++)
            for (int x = 0; x < cells; x++)
                for (int a = 0; a < per_cell; a++) {
                    if (n >= VD_BLAZEFACE_ANCHORS) return 0;
                    xy[2 * n] = (x + 0.5f) / cells;
                    xy[2 * n + 1] = (y + 0.5f) / cells;
                    n++;
                }
        layer = last;
    }
    return n;
}

float vd_face_iou(const vd_face_det *a, const vd_face_det *b)
{
    float aa = (a->x1 - a->x0) * (a->y1 - a->y0), ab = (b->x1 - b->x0) * (b->y1 - b->y0);
    if (!(aa > 0) || !(ab > 0)) return 0;
    float ix = fminf(a->x1, b->x1) - fmaxf(a->x0, b->x0);
    float iy = fminf(a->y1, b->y1) - fmaxf(a->y0, b->y0);
    if (ix <= 0 || iy <= 0) return 0;
    float inter = ix * iy;
    return inter / (aa + ab - inter);
}

static int by_score_desc(const void *pa, const void *pb)
{
    const vd_face_det *a = pa, *b = pb;
    return (a->score < b->score) - (a->score > b->score);
}

/* A (scores, boxes) pair of outputs for n anchors. */
typedef struct {
    const vd_tensor *scores, *boxes;
    int64_t n;
} group;

static int64_t anchors_of(const vd_tensor *t, int64_t last)
{
    if (t->rank == 3 && t->shape[2] == last) return t->shape[1];
    if (t->rank == 2 && last == 1) return t->shape[1];
    return -1;
}

/* Weighted non-maximum suppression over cand (sorted by score, best first):
 * each kept face is the score-weighted mean of the candidates that overlap it
 * by more than iou; at most max_faces into *out (malloc'd, owned by the caller). */
static vd_status weighted_nms(const vd_face_det *cand, size_t nc, float iou, size_t max_faces,
                              vd_face_det **out, size_t *nout, vd_error *err)
{
    vd_face_det *res = malloc(sizeof *res * (nc ? nc : 1));
    char *used = calloc(nc ? nc : 1, 1);
    if (!res || !used) {
        free(res);
        free(used);
        return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    }
    size_t nr = 0;
    for (size_t i = 0; i < nc && nr < max_faces; i++) {
        if (used[i]) continue;
        double acc[4 + 2 * VD_KP_COUNT] = {0}, wsum = 0;
        for (size_t j = i; j < nc; j++) {
            if (used[j] || (j != i && !(vd_face_iou(&cand[i], &cand[j]) > iou))) continue;
            used[j] = 1;
            double w = cand[j].score;
            acc[0] += w * cand[j].x0, acc[1] += w * cand[j].y0;
            acc[2] += w * cand[j].x1, acc[3] += w * cand[j].y1;
            for (int k = 0; k < VD_KP_COUNT; k++) {
                acc[4 + 2 * k] += w * cand[j].kp[k][0];
                acc[5 + 2 * k] += w * cand[j].kp[k][1];
            }
            wsum += w;
        }
        vd_face_det *d = &res[nr++];
        *d = (vd_face_det){.has_lm5 = 0};
        d->x0 = (float)(acc[0] / wsum), d->y0 = (float)(acc[1] / wsum);
        d->x1 = (float)(acc[2] / wsum), d->y1 = (float)(acc[3] / wsum);
        for (int k = 0; k < VD_KP_COUNT; k++) {
            d->kp[k][0] = (float)(acc[4 + 2 * k] / wsum);
            d->kp[k][1] = (float)(acc[5 + 2 * k] / wsum);
        }
        d->score = cand[i].score;
    }
    free(used);
    *out = res;
    *nout = nr;
    return VD_OK;
}

/* Maps a detection from model-input pixels back to the source image's. */
static void det_to_image(const vd_prep_map *map, vd_face_det *d)
{
    double x, y;
    vd_prep_map_to_image(map, d->x0, d->y0, &x, &y);
    d->x0 = (float)x, d->y0 = (float)y;
    vd_prep_map_to_image(map, d->x1, d->y1, &x, &y);
    d->x1 = (float)x, d->y1 = (float)y;
    for (int k = 0; k < VD_KP_COUNT; k++) {
        vd_prep_map_to_image(map, d->kp[k][0], d->kp[k][1], &x, &y);
        d->kp[k][0] = (float)x, d->kp[k][1] = (float)y;
    }
}

vd_status vd_blazeface_decode(const vd_tensor *outs, size_t nouts, size_t b, int input_size,
                              const vd_blazeface_opts *opts, const vd_prep_map *map,
                              vd_face_det **faces, size_t *nfaces, vd_error *err)
{
    *faces = NULL;
    *nfaces = 0;
    float thr = opts && opts->score_threshold > 0 ? opts->score_threshold : 0.5f;
    float iou = opts && opts->iou_threshold > 0 ? opts->iou_threshold : 0.3f;
    int max_faces = opts && opts->max_faces > 0 ? opts->max_faces : 64;
    float anchors[2 * VD_BLAZEFACE_ANCHORS];
    if (vd_blazeface_anchors(input_size, anchors) != VD_BLAZEFACE_ANCHORS)
        return vd_error_set(err, VD_ERR_INVALID, "BlazeFace input size %d (128 or 256)",
                            input_size);

    /* Pair score and box outputs by anchor count; the bigger group is the
     * finer grid, which comes first in anchor order. */
    group g[4];
    int ng = 0;
    for (size_t i = 0; i < nouts; i++) {
        int64_t n = anchors_of(&outs[i], 1);
        if (n <= 0 || outs[i].shape[0] <= (int64_t)b) continue;
        for (size_t j = 0; j < nouts; j++)
            if (anchors_of(&outs[j], 16) == n && outs[j].shape[0] > (int64_t)b && ng < 4) {
                g[ng++] = (group){&outs[i], &outs[j], n};
                break;
            }
    }
    if (ng == 2 && g[0].n < g[1].n) {
        group t = g[0];
        g[0] = g[1];
        g[1] = t;
    }
    int64_t total = 0;
    for (int i = 0; i < ng; i++)
        total += g[i].n;
    if (total != VD_BLAZEFACE_ANCHORS)
        return vd_error_set(err, VD_ERR_INVALID,
                            "not BlazeFace outputs: %d score/box pairs covering %lld anchors "
                            "(want 896)",
                            ng, (long long)total);

    vd_face_det *cand = malloc(sizeof *cand * VD_BLAZEFACE_ANCHORS);
    if (!cand) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    size_t nc = 0;
    float S = (float)input_size;
    int a = 0;
    for (int gi = 0; gi < ng; gi++) {
        const float *sc = g[gi].scores->data + b * (size_t)g[gi].n;
        const float *bx = g[gi].boxes->data + b * (size_t)g[gi].n * 16;
        for (int64_t i = 0; i < g[gi].n; i++, a++) {
            float logit = sc[i];
            if (logit > 100) logit = 100;
            if (logit < -100) logit = -100;
            float score = 1.0f / (1.0f + expf(-logit));
            if (!(score > thr)) continue;
            const float *r = bx + i * 16;
            float ax = anchors[2 * a], ay = anchors[2 * a + 1];
            /* In input pixels. */
            float cx = (ax + r[0] / S) * S, cy = (ay + r[1] / S) * S;
            vd_face_det *d = &cand[nc++];
            d->x0 = cx - r[2] / 2, d->x1 = cx + r[2] / 2;
            d->y0 = cy - r[3] / 2, d->y1 = cy + r[3] / 2;
            for (int k = 0; k < VD_KP_COUNT; k++) {
                d->kp[k][0] = ax * S + r[4 + 2 * k];
                d->kp[k][1] = ay * S + r[5 + 2 * k];
            }
            d->score = score;
        }
    }
    qsort(cand, nc, sizeof *cand, by_score_desc);

    vd_face_det *res = NULL;
    size_t nr = 0;
    vd_status st = weighted_nms(cand, nc, iou, (size_t)max_faces, &res, &nr, err);
    free(cand);
    if (st != VD_OK) return st;
    if (map)
        for (size_t i = 0; i < nr; i++)
            det_to_image(map, &res[i]);
    if (nr == 0) {
        free(res);
        res = NULL;
    }
    *faces = res;
    *nfaces = nr;
    return VD_OK;
}
