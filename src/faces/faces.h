/* faces.h: image -> faces (box, keypoints, score) -> identity embeddings.
 *
 * The pipeline: letterbox the image into the detector (BlazeFace, by name
 * through a vd_runner), decode and merge detections (faces/blazeface.h), align
 * each face to the embedder's crop (faces/align.h), run the embedder on the
 * batch of crops and L2-normalise each vector. The runner decides where models
 * run (model server client, or in-process ONNX Runtime); the models' metadata
 * decides how they are fed. */
#ifndef VD_FACES_H
#define VD_FACES_H

#include <stddef.h>

#include "core/err.h"
#include "faces/blazeface.h"
#include "image/decode.h"
#include "infer/runner.h"

#define VD_FACES_DETECTOR "blazeface_back"
#define VD_FACES_EMBEDDER "faceres"

typedef struct {
    const char *detector;  /* model name; NULL = VD_FACES_DETECTOR */
    const char *embedder;  /* model name; NULL = VD_FACES_EMBEDDER; "" = detect only */
    vd_blazeface_opts det; /* thresholds (0 = defaults) */
    float min_size;        /* drop faces whose box is smaller (pixels, larger side); 0 = keep */
} vd_faces_opts;

typedef struct {
    vd_face_det det;  /* in the ORIGINAL image's pixels (img->src_width x src_height) */
    float *embedding; /* owned (vd_faces_free): dim floats, unit length; NULL if not embedded */
    int dim;
} vd_face;

/* Detects faces in img; *dets (owned: free()) gets *n detections in img's
 * own pixel coordinates, best first. Errors from the runner pass through;
 * VD_ERR_INVALID when the detector is not a 128/256 BlazeFace. */
vd_status vd_faces_detect(vd_runner *r, const vd_image *img, const vd_faces_opts *opts,
                          vd_face_det **dets, size_t *n, vd_error *err);

/* Aligns the n detections (img coordinates) and embeds them with the model
 * called embedder; writes n * *dim floats (owned: free()) to *vecs, each row
 * L2-normalised. n = 0 gives *vecs NULL, *dim 0. */
vd_status vd_faces_embed(vd_runner *r, const vd_image *img, const vd_face_det *dets, size_t n,
                         const char *embedder, float **vecs, int *dim, vd_error *err);

/* The whole pipeline. *faces (free with vd_faces_free) gets *n faces. */
vd_status vd_faces_run(vd_runner *r, const vd_image *img, const vd_faces_opts *opts,
                       vd_face **faces, size_t *n, vd_error *err);

/* Frees faces from vd_faces_run (NULL is fine). */
void vd_faces_free(vd_face *faces, size_t n);

/* Cosine similarity of two vectors of length dim (dot product when unit length). */
float vd_faces_similarity(const float *a, const float *b, int dim);

#endif
