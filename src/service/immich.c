/* immich.c: Immich's POST /predict over visiond's models (see immich.h). */
#include "service/immich.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "faces/faces.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "pipeline/embed.h"
#include "pipeline/text_embed.h"

#define TASK_CLIP  "clip"
#define TASK_FACES "facial-recognition"

/* What the entries ask for, once parsed. */
typedef struct {
    char visual[64], textual[64]; /* visiond models; "" = not asked */
    char detection[64], recognition[64];
    double min_score; /* detection's options.minScore; 0 = Immich's default */
} plan;

static vd_status refuse(int *refusal, int code, vd_error *err, const char *fmt, const char *a,
                        const char *b)
{
    *refusal = code;
    return vd_error_set(err, VD_ERR_INVALID, fmt, a, b);
}

/* Immich's clean name: what follows the last '/'. */
static const char *clean_name(const char *name)
{
    const char *slash = strrchr(name, '/');
    return slash ? slash + 1 : name;
}

vd_status vd_immich_aliases_parse(const char *spec, vd_immich_aliases *a, vd_error *err)
{
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, ",");
        char item[256];
        if (len >= sizeof item || a->n == VD_IMMICH_MAX_ALIASES)
            return vd_error_set(err, VD_ERR_INVALID,
                                "immich model alias '%.*s': too long or too many",
                                (int)(len > 60 ? 60 : len), p);
        memcpy(item, p, len);
        item[len] = 0;
        char *colon = strchr(item, ':'), *eq = strchr(item, '=');
        vd_immich_alias *al = &a->alias[a->n];
        if (!colon || !eq || eq < colon || colon == item || !eq[1] ||
            (size_t)(eq - colon - 1) >= sizeof al->type || strlen(eq + 1) >= sizeof al->model ||
            (size_t)(colon - item) >= sizeof al->name)
            return vd_error_set(err, VD_ERR_INVALID,
                                "immich model alias '%s': want NAME:TYPE=MODEL", item);
        *colon = *eq = 0;
        if (strcmp(colon + 1, "visual") && strcmp(colon + 1, "textual") &&
            strcmp(colon + 1, "detection") && strcmp(colon + 1, "recognition"))
            return vd_error_set(err, VD_ERR_INVALID,
                                "immich model alias '%s': type '%s' is not visual, textual, "
                                "detection or recognition",
                                item, colon + 1);
        vd_strlcpy(al->name, clean_name(item), sizeof al->name);
        vd_strlcpy(al->type, colon + 1, sizeof al->type);
        vd_strlcpy(al->model, eq + 1, sizeof al->model);
        a->n++;
        p += len;
        if (*p == ',') p++;
    }
    return VD_OK;
}

/* The task a model of an entry's type must have. */
static vd_model_task task_for(const char *type)
{
    if (strcmp(type, "visual") == 0) return VD_TASK_IMAGE_EMBEDDING;
    if (strcmp(type, "detection") == 0) return VD_TASK_FACE_DETECTION;
    if (strcmp(type, "textual") == 0) return VD_TASK_TEXT_EMBEDDING;
    return VD_TASK_FACE_EMBEDDING;
}

/* Whether model cand can serve an entry of type: its task fits (a textual
 * entry also takes an image model with a text tower). Other statuses than
 * VD_OK and VD_ERR_NOT_FOUND are the runner's failures. */
static vd_status fits(vd_runner *r, const char *cand, const char *type, vd_error *err)
{
    vd_model_meta meta;
    vd_error e;
    vd_status st = strcmp(type, "textual") == 0 ? vd_text_model_resolve(r, cand, &meta, &e)
                                                : vd_runner_meta(r, cand, &meta, &e);
    if (st == VD_OK && meta.task != task_for(type)) st = VD_ERR_NOT_FOUND;
    if (st == VD_ERR_INVALID || st == VD_ERR_UNSUPPORTED) st = VD_ERR_NOT_FOUND;
    if (st != VD_OK && st != VD_ERR_NOT_FOUND) *err = e;
    return st;
}

/* Resolves Immich's name for type to a visiond model (immich.h) into out. */
static vd_status resolve(vd_runner *r, const vd_immich_aliases *al, const char *name,
                         const char *type, char *out, size_t n, int *refusal, vd_error *err)
{
    const char *clean = clean_name(name);
    char cand[3][192];
    int nc = 0;
    for (size_t i = 0; al && i < al->n; i++)
        if (strcmp(al->alias[i].name, clean) == 0 && strcmp(al->alias[i].type, type) == 0)
            snprintf(cand[nc++], sizeof cand[0], "%s", al->alias[i].model);
    if (nc == 0) {
        snprintf(cand[nc++], sizeof cand[0], "%s.%s", clean, type);
        snprintf(cand[nc++], sizeof cand[0], "%s", clean);
    }
    for (int i = 0; i < nc; i++) {
        vd_status st = fits(r, cand[i], type, err);
        if (st == VD_ERR_NOT_FOUND) continue;
        if (st != VD_OK) return st;
        if (strlen(cand[i]) >= n) break;
        vd_strlcpy(out, cand[i], n);
        return VD_OK;
    }
    return refuse(refusal, VD_IMMICH_BAD_ENTRIES, err,
                  "Unknown model '%s' for %s: no visiond model of that name and task (see "
                  "docs/immich.md)",
                  name, type);
}

/* One entry (task, type, {"modelName", "options"}) into *p. */
static vd_status parse_entry(vd_runner *r, const vd_immich_aliases *al, const char *task,
                             const char *type, json_t *entry, plan *p, int *refusal, vd_error *err)
{
    json_t *name = json_is_object(entry) ? json_object_get(entry, "modelName") : NULL;
    json_t *opts = json_is_object(entry) ? json_object_get(entry, "options") : NULL;
    if (!json_is_string(name) || (opts && !json_is_object(opts) && !json_is_null(opts)))
        return refuse(refusal, VD_IMMICH_BAD_ENTRIES, err,
                      "Invalid request format: %s.%s needs a string modelName", task, type);
    char *slot = NULL;
    if (strcmp(task, TASK_CLIP) == 0 && strcmp(type, "visual") == 0) slot = p->visual;
    if (strcmp(task, TASK_CLIP) == 0 && strcmp(type, "textual") == 0) slot = p->textual;
    if (strcmp(task, TASK_FACES) == 0 && strcmp(type, "detection") == 0) slot = p->detection;
    if (strcmp(task, TASK_FACES) == 0 && strcmp(type, "recognition") == 0) slot = p->recognition;
    if (!slot)
        return refuse(refusal, VD_IMMICH_BAD_ENTRIES, err, "Unknown model combination: %s, %s",
                      task, type);
    json_t *ms = opts ? json_object_get(opts, "minScore") : NULL;
    if (slot == p->detection && ms) {
        double v = json_number_value(ms);
        if (!json_is_number(ms) || !(v > 0 && v < 1))
            return refuse(refusal, VD_IMMICH_BAD_ENTRIES, err,
                          "Invalid request format: %s.%s minScore must be a number in (0, 1)", task,
                          type);
        p->min_score = v;
    }
    return resolve(r, al, json_string_value(name), type, slot, 64, refusal, err);
}

/* Parses the entries form field into *p. */
static vd_status parse_entries(vd_runner *r, const vd_immich_aliases *al, const char *entries,
                               plan *p, int *refusal, vd_error *err)
{
    memset(p, 0, sizeof *p);
    json_error_t je;
    json_t *root = entries ? json_loads(entries, JSON_REJECT_DUPLICATES, &je) : NULL;
    vd_status st = VD_OK;
    if (!json_is_object(root) || json_object_size(root) == 0)
        st = refuse(refusal, VD_IMMICH_BAD_ENTRIES, err,
                    "Invalid request format: entries must be a JSON object of tasks%s%s",
                    root ? "" : ": ", root ? "" : (entries ? je.text : "none given"));
    const char *task, *type;
    json_t *types, *entry;
    json_object_foreach(root, task, types)
    {
        if (st != VD_OK) break;
        if (!json_is_object(types) || json_object_size(types) == 0) {
            st = refuse(refusal, VD_IMMICH_BAD_ENTRIES, err,
                        "Invalid request format: %s must map model types to entries%s", task, "");
            break;
        }
        json_object_foreach(types, type, entry)
        {
            if ((st = parse_entry(r, al, task, type, entry, p, refusal, err)) != VD_OK) break;
        }
    }
    json_decref(root);
    if (st == VD_OK && p->textual[0] && (p->visual[0] || p->detection[0]))
        st = refuse(refusal, VD_IMMICH_BAD_INPUT, err,
                    "Invalid input: %s entries cannot go with %s ones (one input per request)",
                    "text", "image");
    if (st == VD_OK && p->recognition[0] && !p->detection[0])
        st = refuse(refusal, VD_IMMICH_BAD_INPUT, err,
                    "Task %s of type %s depends on output of detection", TASK_FACES, "recognition");
    return st;
}

/* Immich's serialisation of a vector: JSON text of its numbers. */
static json_t *vector_text(const float *v, int dim)
{
    size_t cap = (size_t)dim * 18 + 3, len = 0;
    char *s = malloc(cap);
    if (!s) return NULL;
    s[len++] = '[';
    for (int i = 0; i < dim; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%.9g", i ? "," : "", (double)v[i]);
    s[len++] = ']';
    s[len] = 0;
    json_t *j = json_string(s);
    free(s);
    return j;
}

/* The clip visual embedding of img with model (L2-normalised when its metadata says so). */
static vd_status clip_visual(vd_runner *r, const char *model, const vd_image *img, json_t *out,
                             vd_error *err)
{
    vd_model_meta meta;
    vd_status st = vd_runner_meta(r, model, &meta, err);
    vd_tensor in = {0}, outs[VD_MODEL_MAX_OUTPUT];
    size_t nouts = 0;
    if (st == VD_OK) st = vd_preprocess_for(r, img, 1, &meta, &in, NULL, err);
    if (st == VD_OK) st = vd_runner_run(r, model, &in, outs, VD_MODEL_MAX_OUTPUT, &nouts, err);
    vd_tensor_free(&in);
    if (st != VD_OK) return st;
    size_t dim = nouts ? vd_tensor_count(&outs[0]) : 0;
    if (dim == 0) st = vd_error_set(err, VD_ERR_MODEL, "model %s: no embedding output", model);
    if (st == VD_OK && meta.l2_normalize) {
        double s = 0;
        for (size_t i = 0; i < dim; i++)
            s += (double)outs[0].data[i] * outs[0].data[i];
        for (size_t i = 0; s > 0 && i < dim; i++)
            outs[0].data[i] = (float)(outs[0].data[i] / sqrt(s));
    }
    if (st == VD_OK) json_object_set_new(out, TASK_CLIP, vector_text(outs[0].data, (int)dim));
    for (size_t i = 0; i < nouts; i++)
        vd_tensor_free(&outs[i]);
    return st;
}

/* Immich's rounding of InsightFace's boxes (numpy's round: half to even),
 * from visiond's continuous coordinates (pixel index + 0.5). */
static json_int_t px(float continuous)
{
    return (json_int_t)nearbyint((double)continuous - 0.5);
}

static json_t *box_json(const vd_face_det *d)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "x1", px(d->x0), "y1", px(d->y0), "x2", px(d->x1),
                     "y2", px(d->y1));
}

/* Detection alone: InsightFace's detector output as Immich answers it. */
static json_t *detections_json(const vd_face *f, size_t n)
{
    json_t *boxes = json_array(), *scores = json_array(), *lms = json_array();
    for (size_t i = 0; i < n; i++) {
        const vd_face_det *d = &f[i].det;
        json_array_append_new(
            boxes, json_pack("[I, I, I, I]", px(d->x0), px(d->y0), px(d->x1), px(d->y1)));
        json_array_append_new(scores, json_real(d->score));
        json_t *lm = json_array();
        for (int k = 0; k < 5; k++) /* BlazeFace's eyes, nose, mouth when no landmarks */
            json_array_append_new(
                lm, json_pack("[f, f]", (d->has_lm5 ? d->lm5[k][0] : d->kp[k < 4 ? k : 3][0]) - 0.5,
                              (d->has_lm5 ? d->lm5[k][1] : d->kp[k < 4 ? k : 3][1]) - 0.5));
        json_array_append_new(lms, lm);
    }
    return json_pack("{s:o, s:o, s:o}", "boxes", boxes, "scores", scores, "landmarks", lms);
}

static vd_status facial(vd_runner *r, const plan *p, const vd_image *img, json_t *out,
                        vd_error *err)
{
    vd_faces_opts fo = {.detector = p->detection, .embedder = p->recognition};
    fo.det.score_threshold = (float)(p->min_score > 0 ? p->min_score : 0.7);
    vd_face *f = NULL;
    size_t n = 0;
    vd_status st = vd_faces_run(r, img, &fo, &f, &n, err);
    if (st != VD_OK) return st;
    json_t *arr = p->recognition[0] ? json_array() : detections_json(f, n);
    for (size_t i = 0; p->recognition[0] && i < n; i++)
        json_array_append_new(arr, json_pack("{s:o, s:o, s:f}", "boundingBox", box_json(&f[i].det),
                                             "embedding", vector_text(f[i].embedding, f[i].dim),
                                             "score", (double)f[i].det.score));
    json_object_set_new(out, TASK_FACES, arr);
    vd_faces_free(f, n);
    return VD_OK;
}

/* The clip textual embedding of text: {"clip": "[...]"} (no image size). */
static vd_status clip_text(vd_runner *r, const char *model, const char *text, json_t **out,
                           vd_error *err)
{
    vd_text_opts o = {.runner = r, .store = NULL, .model = model};
    vd_text_item item;
    int dim = 0;
    vd_status st = vd_text_embed(&o, &text, 1, &item, &dim, NULL, err);
    if (st != VD_OK) return st;
    *out = json_pack("{s:o}", TASK_CLIP, vector_text(item.vector, dim));
    vd_text_items_clear(&item, 1);
    return VD_OK;
}

vd_status vd_immich_predict(vd_runner *runner, const vd_immich_aliases *aliases,
                            const char *entries, const uint8_t *image, size_t len, const char *text,
                            json_t **out, int *refusal, vd_error *err)
{
    *out = NULL;
    *refusal = 0;
    plan p;
    vd_status st = parse_entries(runner, aliases, entries, &p, refusal, err);
    if (st != VD_OK) return st;
    if (p.textual[0] && text && !image) return clip_text(runner, p.textual, text, out, err);
    if (p.textual[0] && image)
        return refuse(refusal, VD_IMMICH_BAD_INPUT, err,
                      "%s%s: these entries take a text, not an image", "Invalid input", "");
    if (!image && text)
        return refuse(refusal, VD_IMMICH_BAD_INPUT, err,
                      "%s%s: these entries take an image, not a text", "Invalid input", "");
    if (!image)
        return refuse(refusal, VD_IMMICH_BAD_INPUT, err, "%s%s",
                      "Either image or text must be provided", "");
    vd_decode_opts dopts = {0}; /* faces: full size (as POST /faces); clip alone: as embeddings */
    vd_model_meta vmeta;
    if (p.visual[0] && !p.detection[0]) {
        if ((st = vd_runner_meta(runner, p.visual, &vmeta, err)) != VD_OK) return st;
        vd_embed_decode_opts(&vmeta, &dopts);
    }
    vd_image img;
    if ((st = vd_image_decode_buffer(image, len, &dopts, &img, err)) != VD_OK) return st;
    json_t *j = json_object();
    if (p.visual[0]) st = clip_visual(runner, p.visual, &img, j, err);
    if (st == VD_OK && p.detection[0]) st = facial(runner, &p, &img, j, err);
    if (st == VD_OK) {
        json_object_set_new(j, "imageHeight", json_integer(img.src_height));
        json_object_set_new(j, "imageWidth", json_integer(img.src_width));
        *out = j;
    } else {
        json_decref(j);
    }
    vd_image_free(&img);
    return st;
}
