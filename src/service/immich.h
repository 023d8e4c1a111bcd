/* immich.h: Immich's machine-learning service (POST /predict) over visiond's
 * models: the one place that knows its request entries, its model names and
 * its answers (docs/immich.md). The HTTP route (api/routes_immich.c) reads
 * the multipart form and calls vd_immich_predict; the models run through a
 * vd_runner (the model server, which batches across requests).
 *
 * A request names what to run as Immich's server sends it, the `entries`
 * form field:
 *   {"clip": {"visual": {"modelName": "ViT-B-32__openai"}}}
 *   {"clip": {"textual": {"modelName": "...", "options": {"language": "en"}}}}
 *   {"facial-recognition": {"detection": {"modelName": "buffalo_l",
 *                                         "options": {"minScore": 0.7}},
 *                           "recognition": {"modelName": "buffalo_l"}}}
 * with an image (any format visiond decodes) or a text. The answer is
 * Immich's: {"clip": "[v0,v1,...]", "imageHeight": H, "imageWidth": W} (no
 * size for a text), or
 * {"facial-recognition": [{"boundingBox": {"x1","y1","x2","y2"}, "score",
 * "embedding": "[...]"}...], "imageHeight", "imageWidth"} (embeddings as
 * JSON text, as Immich serialises them; boxes rounded to whole pixels in
 * InsightFace's pixel-index coordinates).
 *
 * Model names: an Immich name (what follows its last '/', so
 * "immich-app/buffalo_l" is "buffalo_l") maps to a visiond model by the
 * first that exists of: an alias given by the operator (NAME:TYPE=MODEL),
 * the model "NAME.TYPE" (e.g. "buffalo_l.detection"), the model "NAME"
 * itself; its task must fit the entry's type (visual: image_embedding,
 * textual: text_embedding or an image model with a text tower, detection:
 * face_detection, recognition: face_embedding). A model folder (Immich's
 * cache layout) answers to its own name this way. */
#ifndef VD_SERVICE_IMMICH_H
#define VD_SERVICE_IMMICH_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "infer/runner.h"

#define VD_IMMICH_MAX_ALIASES 32

/* One operator-given mapping: Immich's NAME for TYPE is visiond's MODEL. */
typedef struct {
    char name[128]; /* Immich's model name, cleaned ("buffalo_l") */
    char type[16];  /* "visual", "textual", "detection" or "recognition" */
    char model[64]; /* a visiond model name */
} vd_immich_alias;

typedef struct {
    vd_immich_alias alias[VD_IMMICH_MAX_ALIASES];
    size_t n;
} vd_immich_aliases;

/* Parses "NAME:TYPE=MODEL[,NAME:TYPE=MODEL...]" (the serve flag
 * --immich-model, repeatable, and the config key immich_models) into *a,
 * appending. VD_ERR_INVALID naming the bad item. */
vd_status vd_immich_aliases_parse(const char *spec, vd_immich_aliases *a, vd_error *err);

/* How a failed prediction is answered: Immich's HTTP status for it. */
typedef enum {
    VD_IMMICH_BAD_ENTRIES = 422, /* entries malformed, or naming what visiond cannot run */
    VD_IMMICH_BAD_INPUT = 400,   /* no image nor text, or one the entries cannot take */
} vd_immich_refusal;

/* Runs the entries on the image (bytes, len; NULL when none) or the text
 * (NULL when none) and sets *out (owned: json_decref) to Immich's answer.
 * Errors: VD_ERR_INVALID with *refusal set for the request's own faults
 * (the message is the answer's "detail"); VD_ERR_DECODE/LIMIT/BUSY for an
 * image that cannot be decoded; the runner's errors (model server down,
 * busy, a model failing) as they come, *refusal 0. */
vd_status vd_immich_predict(vd_runner *runner, const vd_immich_aliases *aliases,
                            const char *entries, const uint8_t *image, size_t len, const char *text,
                            json_t **out, int *refusal, vd_error *err);

#endif
