/* model_folder.h: model folders as users have them (docs/models.md, "Model
 * folders"): the layout Immich's model exporter writes, read without any
 * hand-written metadata.
 *
 *   NAME/config.json                 open_clip's model config (embed_dim,
 *                                    vision_cfg.image_size, text_cfg.context_length)
 *   NAME/visual/model.onnx           image tower: "image" [1,3,S,S] -> "embedding"
 *   NAME/visual/preprocess_cfg.json  size, mean, std, interpolation, resize_mode
 *   NAME/textual/model.onnx          text tower: "text" int32 [1,77] -> "embedding"
 *   NAME/textual/tokenizer.json      the Hugging Face tokenizer (text/bpe.h)
 *   NAME/textual/tokenizer_config.json  its pad_token
 *   NAME/detection/model.onnx        face detector (InsightFace SCRFD, as buffalo_l)
 *   NAME/recognition/model.onnx      face embedder (ArcFace)
 *
 * A folder's towers become models: NAME is its main tower (visual, else
 * recognition), NAME.textual the text tower, NAME.detection the detector. A
 * tower's "metadata path" is its directory (NAME/textual): vd_model_meta_load
 * derives the metadata from the folder's files when given a directory, so
 * the model server, its clients and the in-process runner read it alike. A
 * models directory may hold such folders directly or one level down (Immich's
 * cache: clip/NAME, facial-recognition/NAME). */
#ifndef VD_MODEL_FOLDER_H
#define VD_MODEL_FOLDER_H

#include <stddef.h>

#include "core/err.h"
#include "infer/model_meta.h"

#define VD_FOLDER_MAX_TOWERS 4

/* The tower directories (FOLDER/visual ...) that exist in dir, in a fixed
 * order (visual, textual, detection, recognition), into paths; returns how
 * many (0: dir is not a model folder). */
size_t vd_model_folder_towers(const char *dir, char paths[][4096], size_t max);

/* Derives the metadata of the tower at tower_dir (FOLDER/visual, ...).
 * VD_ERR_INVALID / VD_ERR_NOT_FOUND with a message naming the file that is
 * missing or wrong (FOLDER/textual/model.onnx: missing). */
vd_status vd_model_meta_from_tower(const char *tower_dir, vd_model_meta *meta, vd_error *err);

/* Finds the metadata path of model name in models_dir: NAME.json, else the
 * tower of a folder (NAME -> NAME/visual or NAME/recognition, NAME.textual ->
 * NAME/textual, NAME.detection -> NAME/detection), directly or one level
 * down. Returns 1 and fills path, or 0. */
int vd_model_folder_find(const char *models_dir, const char *name, char *path, size_t n);

#endif
