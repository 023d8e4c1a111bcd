/* model_meta.h: a model's metadata file (docs/models.md), parsed and checked.
 *
 * The metadata says how to feed a model (input name, size, layout, colour
 * order, normalisation) and what it returns (outputs, embedding dim), so that
 * a new ONNX model needs a JSON file and no code. Preprocessing (image/) and
 * the model server (infer/) both read it. */
#ifndef VD_MODEL_META_H
#define VD_MODEL_META_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/tensor.h"

#define VD_MODEL_NAME_MAX   64
#define VD_MODEL_MAX_OUTPUT 16

typedef enum {
    VD_TASK_OTHER = 0,
    VD_TASK_IMAGE_EMBEDDING,
    VD_TASK_FACE_DETECTION,
    VD_TASK_FACE_EMBEDDING,
    VD_TASK_TEXT_EMBEDDING /* a CLIP text tower: token ids [n, context_length] in */
} vd_model_task;

typedef enum { VD_LAYOUT_NHWC = 0, VD_LAYOUT_NCHW } vd_layout;
/* How a face detector's outputs are decoded (faces/): `detector` in the metadata. */
typedef enum { VD_DETECTOR_BLAZEFACE = 0, VD_DETECTOR_SCRFD } vd_face_detector;
/* How a face is aligned for a face embedder (faces/align.h): `alignment`. */
typedef enum { VD_ALIGNMENT_FACERES = 0, VD_ALIGNMENT_ARCFACE } vd_face_alignment;
typedef enum { VD_COLOR_RGB = 0, VD_COLOR_BGR } vd_color_order;
typedef enum { VD_RESIZE_STRETCH = 0, VD_RESIZE_CENTER_CROP, VD_RESIZE_LETTERBOX } vd_resize_mode;

typedef struct {
    char name[VD_MODEL_NAME_MAX];
    char onnx_path[4096]; /* absolute, or relative to the process's cwd */
    vd_model_task task;
    char input_name[128]; /* "" = the graph's first input */
    vd_layout layout;
    int height, width, channels;
    vd_color_order color;
    vd_resize_mode resize;
    float scale;
    float mean[3], std[3];
    int noutputs; /* 0 = every graph output */
    char outputs[VD_MODEL_MAX_OUTPUT][128];
    int dim; /* declared; 0 = from the graph at load, or from the first run */
    int l2_normalize;
    int max_batch;
    int64_t max_delay_us;
    int preload;
    vd_face_detector detector;   /* face_detection models only */
    vd_face_alignment alignment; /* face_embedding models only */
    /* text_embedding models only (input.context_length ... input.end_id) */
    int context_length;        /* tokens per text, start and end included */
    char tokenizer_path[4096]; /* the tokenizer.json, resolved like onnx */
    int32_t pad_id;            /* fills the ids after the end token (default 0) */
    int32_t start_id, end_id;  /* -1 = the tokenizer's <|startoftext|> / <|endoftext|> */
    char pad_token[32];        /* when set, pad_id is this token's id in the tokenizer */
    /* a CLIP pair: an image model's text tower, a text model's image tower ("" = none) */
    char text_model[VD_MODEL_NAME_MAX];
    char image_model[VD_MODEL_NAME_MAX];
} vd_model_meta;

/* Parses the metadata file at path into *meta, resolving `onnx` relative to
 * the file's directory. VD_ERR_INVALID with a message naming the bad key.
 * A directory is a tower of a model folder (FOLDER/visual, FOLDER/textual,
 * ...): its metadata is derived from the folder's files
 * (infer/model_folder.h). */
vd_status vd_model_meta_load(const char *path, vd_model_meta *meta, vd_error *err);

/* Parses metadata from JSON text; dir resolves a relative `onnx` (may be NULL). */
vd_status vd_model_meta_parse(const char *json_text, const char *dir, vd_model_meta *meta,
                              vd_error *err);

/* Returns how many values one input item holds (height*width*channels, or
 * context_length for a text model). */
size_t vd_model_meta_input_len(const vd_model_meta *meta);

/* The one home of a model's input tensor: the shape of n items ([n, H, W, C]
 * NHWC, [n, C, H, W] NCHW, [n, context_length] for text) into shape[4], its
 * rank returned; *dtype (may be NULL) gets what clients send (float32, int32
 * token ids for text; the model server also takes int64 ids). */
size_t vd_model_meta_input_shape(const vd_model_meta *meta, int64_t n, int64_t *shape,
                                 vd_dtype *dtype);

/* Returns 1 for the tasks whose first output is an embedding
 * (image_embedding, face_embedding, text_embedding). */
int vd_model_task_embeds(vd_model_task t);

/* The embedding dim of a loaded graph, at load: shape/rank are the graph's
 * first returned output (named output; -1 for a dim the graph leaves open,
 * rank 0 when even the rank is unknown). For an embedding task the output
 * must be [batch, dim] (rank 2); for any task a declared `dim` must equal a
 * last dim the graph fixes. *dim gets the declared dim, else the graph's,
 * else 0 (known only when the model runs: vd_model_meta_check_output).
 * VD_ERR_MODEL "META_PATH: ..." naming the metadata file (meta_path may be
 * NULL) when the graph contradicts the metadata. */
vd_status vd_model_meta_graph_dim(const vd_model_meta *meta, const char *meta_path,
                                  const char *output, const int64_t *shape, size_t rank, int *dim,
                                  vd_error *err);

/* The same rule on a run's first output t for n items: for an embedding task
 * it must be [n, d] with d > 0, and d must be *dim when *dim > 0; a *dim of
 * 0 (the graph left it open) is set to d by the first run. Other tasks are
 * not checked. VD_ERR_MODEL naming the model, the output and both shapes. */
vd_status vd_model_meta_check_output(const vd_model_meta *meta, const char *output,
                                     const vd_tensor *t, size_t n, int *dim, vd_error *err);

/* Returns "image_embedding", "face_detection", "face_embedding", "text_embedding" or "other". */
const char *vd_model_task_name(vd_model_task t);

#endif
