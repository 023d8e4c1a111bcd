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

#define VD_MODEL_NAME_MAX   64
#define VD_MODEL_MAX_OUTPUT 8

typedef enum {
    VD_TASK_OTHER = 0,
    VD_TASK_IMAGE_EMBEDDING,
    VD_TASK_FACE_DETECTION,
    VD_TASK_FACE_EMBEDDING
} vd_model_task;

typedef enum { VD_LAYOUT_NHWC = 0, VD_LAYOUT_NCHW } vd_layout;
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
    int dim; /* 0 = unknown until loaded */
    int l2_normalize;
    int max_batch;
    int64_t max_delay_us;
    int preload;
} vd_model_meta;

/* Parses the metadata file at path into *meta, resolving `onnx` relative to
 * the file's directory. VD_ERR_INVALID with a message naming the bad key. */
vd_status vd_model_meta_load(const char *path, vd_model_meta *meta, vd_error *err);

/* Parses metadata from JSON text; dir resolves a relative `onnx` (may be NULL). */
vd_status vd_model_meta_parse(const char *json_text, const char *dir, vd_model_meta *meta,
                              vd_error *err);

/* Returns how many floats one preprocessed input holds (height*width*channels). */
size_t vd_model_meta_input_len(const vd_model_meta *meta);

/* Returns "image_embedding", "face_detection", "face_embedding" or "other". */
const char *vd_model_task_name(vd_model_task t);

#endif
