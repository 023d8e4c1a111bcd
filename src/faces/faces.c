/* faces.c: the detect -> align -> embed pipeline over a vd_runner. */
#include "faces/faces.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "faces/align.h"
#include "faces/scrfd.h"
#include "image/preprocess.h"

/* The input a detector's decoder can take: BlazeFace 128 or 256 square,
 * SCRFD sides that are multiples of 32; three channels. */
static vd_status check_detector(const char *name, const vd_model_meta *m, vd_error *err)
{
    if (m->detector == VD_DETECTOR_SCRFD) {
        if (m->width % 32 == 0 && m->height % 32 == 0 && m->channels == 3) return VD_OK;
        return vd_error_set(err, VD_ERR_INVALID,
                            "model %s: input %dx%dx%d is not an SCRFD's (sides multiples of 32, "
                            "3 channels)",
                            name, m->width, m->height, m->channels);
    }
    if (m->width == m->height && (m->width == 128 || m->width == 256) && m->channels == 3)
        return VD_OK;
    return vd_error_set(err, VD_ERR_INVALID,
                        "model %s: input %dx%dx%d is not a BlazeFace 128 or 256", name, m->width,
                        m->height, m->channels);
}

vd_status vd_faces_detect(vd_runner *r, const vd_image *img, const vd_faces_opts *opts,
                          vd_face_det **dets, size_t *n, vd_error *err)
{
    *dets = NULL;
    *n = 0;
    const char *name = opts && opts->detector ? opts->detector : VD_FACES_DETECTOR;
    vd_model_meta meta;
    vd_status st = vd_runner_meta(r, name, &meta, err);
    if (st != VD_OK) return st;
    if ((st = check_detector(name, &meta, err)) != VD_OK) return st;
    vd_tensor in;
    vd_prep_map map;
    st = vd_preprocess_for(r, img, 1, &meta, &in, &map, err);
    if (st != VD_OK) return st;
    vd_tensor outs[VD_MODEL_MAX_OUTPUT];
    size_t nouts = 0;
    st = vd_runner_run(r, name, &in, outs, VD_MODEL_MAX_OUTPUT, &nouts, err);
    vd_tensor_free(&in);
    if (st != VD_OK) return st;
    if (meta.detector == VD_DETECTOR_SCRFD) {
        vd_scrfd_opts so = {0};
        if (opts)
            so = (vd_scrfd_opts){opts->det.score_threshold, opts->det.iou_threshold,
                                 opts->det.max_faces};
        st = vd_scrfd_decode(outs, nouts, 0, meta.width, meta.height, &so, &map, dets, n, err);
    } else {
        st = vd_blazeface_decode(outs, nouts, 0, meta.width, opts ? &opts->det : NULL, &map, dets,
                                 n, err);
    }
    for (size_t i = 0; i < nouts; i++)
        vd_tensor_free(&outs[i]);
    if (st != VD_OK || !opts || opts->min_size <= 0) return st;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        vd_face_det *d = &(*dets)[i];
        if (fmaxf(d->x1 - d->x0, d->y1 - d->y0) >= opts->min_size) (*dets)[k++] = *d;
    }
    *n = k;
    return VD_OK;
}

vd_status vd_faces_embed(vd_runner *r, const vd_image *img, const vd_face_det *dets, size_t n,
                         const char *embedder, float **vecs, int *dim, vd_error *err)
{
    *vecs = NULL;
    *dim = 0;
    if (n == 0) return VD_OK;
    vd_model_meta meta;
    vd_status st = vd_runner_meta(r, embedder, &meta, err);
    if (st != VD_OK) return st;
    if (meta.width <= 0 || meta.width != meta.height)
        return vd_error_set(err, VD_ERR_INVALID, "model %s: input %dx%d is not square", embedder,
                            meta.width, meta.height);
    vd_image *crops = calloc(n, sizeof *crops);
    if (!crops) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    for (size_t i = 0; i < n && st == VD_OK; i++)
        st = vd_face_align_as(img, &dets[i], meta.width,
                              meta.alignment == VD_ALIGNMENT_ARCFACE ? VD_ALIGN_ARCFACE
                                                                     : VD_ALIGN_FACERES,
                              &crops[i], NULL, err);
    vd_tensor in = {0};
    if (st == VD_OK) st = vd_preprocess_for(r, crops, n, &meta, &in, NULL, err);
    for (size_t i = 0; i < n; i++)
        vd_image_free(&crops[i]);
    free(crops);
    if (st != VD_OK) return st;
    vd_tensor outs[VD_MODEL_MAX_OUTPUT];
    size_t nouts = 0;
    st = vd_runner_run(r, embedder, &in, outs, VD_MODEL_MAX_OUTPUT, &nouts, err);
    vd_tensor_free(&in);
    if (st != VD_OK) return st;
    /* The embedding is the first output: [n, dim] (or [n, 1, 1, dim]). */
    size_t total = nouts ? vd_tensor_count(&outs[0]) : 0;
    if (nouts == 0 || outs[0].shape[0] != (int64_t)n || total % n != 0 || total == 0) {
        for (size_t i = 0; i < nouts; i++)
            vd_tensor_free(&outs[i]);
        return vd_error_set(err, VD_ERR_MODEL, "model %s: unexpected embedding output", embedder);
    }
    int d = (int)(total / n);
    float *v = outs[0].data;
    outs[0].data = NULL;
    for (size_t i = 0; i < nouts; i++)
        vd_tensor_free(&outs[i]);
    for (size_t i = 0; i < n; i++) {
        float *row = v + i * (size_t)d;
        double s = 0;
        for (int j = 0; j < d; j++)
            s += (double)row[j] * row[j];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (int j = 0; j < d; j++)
                row[j] *= inv;
        }
    }
    *vecs = v;
    *dim = d;
    return VD_OK;
}

vd_status vd_faces_run(vd_runner *r, const vd_image *img, const vd_faces_opts *opts,
                       vd_face **faces, size_t *n, vd_error *err)
{
    *faces = NULL;
    *n = 0;
    vd_face_det *dets;
    size_t nd;
    vd_status st = vd_faces_detect(r, img, opts, &dets, &nd, err);
    if (st != VD_OK) return st;
    const char *emb = opts && opts->embedder ? opts->embedder : VD_FACES_EMBEDDER;
    float *vecs = NULL;
    int dim = 0;
    if (emb[0] && nd > 0) {
        st = vd_faces_embed(r, img, dets, nd, emb, &vecs, &dim, err);
        if (st != VD_OK) {
            free(dets);
            return st;
        }
    }
    vd_face *out = nd ? calloc(nd, sizeof *out) : NULL;
    if (nd && !out) {
        free(dets);
        free(vecs);
        return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    }
    /* Back to the original image's pixels (shrink-on-load). */
    float kx = (float)img->src_width / img->width, ky = (float)img->src_height / img->height;
    for (size_t i = 0; i < nd && st == VD_OK; i++) {
        vd_face_det d = dets[i];
        d.x0 *= kx, d.x1 *= kx, d.y0 *= ky, d.y1 *= ky;
        for (int k = 0; k < VD_KP_COUNT; k++)
            d.kp[k][0] *= kx, d.kp[k][1] *= ky;
        for (int k = 0; d.has_lm5 && k < 5; k++)
            d.lm5[k][0] *= kx, d.lm5[k][1] *= ky;
        out[i].det = d;
        if (vecs) {
            out[i].embedding = malloc(sizeof(float) * (size_t)dim);
            if (!out[i].embedding) {
                st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
                break;
            }
            memcpy(out[i].embedding, vecs + i * (size_t)dim, sizeof(float) * (size_t)dim);
            out[i].dim = dim;
        }
    }
    free(dets);
    free(vecs);
    if (st != VD_OK) {
        vd_faces_free(out, nd);
        return st;
    }
    *faces = out;
    *n = nd;
    return VD_OK;
}

void vd_faces_free(vd_face *faces, size_t n)
{
    if (!faces) return;
    for (size_t i = 0; i < n; i++)
        free(faces[i].embedding);
    free(faces);
}

float vd_faces_similarity(const float *a, const float *b, int dim)
{
    double dot = 0, na = 0, nb = 0;
    for (int i = 0; i < dim; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
    }
    if (na <= 0 || nb <= 0) return 0;
    return (float)(dot / sqrt(na * nb));
}
