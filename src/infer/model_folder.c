/* model_folder.c: metadata derived from model folders (infer/model_folder.h). */
#include "infer/model_folder.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/util.h"

static const char *const towers[VD_FOLDER_MAX_TOWERS] = {"visual", "textual", "detection",
                                                         "recognition"};
enum { T_VISUAL, T_TEXTUAL, T_DETECTION, T_RECOGNITION };

/* OpenAI CLIP's normalisation, open_clip's default when preprocess_cfg.json gives none. */
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static int is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int is_file(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

size_t vd_model_folder_towers(const char *dir, char paths[][4096], size_t max)
{
    size_t n = 0;
    for (int t = 0; t < VD_FOLDER_MAX_TOWERS && n < max; t++) {
        if (snprintf(paths[n], 4096, "%s/%s", dir, towers[t]) >= 4096) continue;
        if (is_dir(paths[n])) n++;
    }
    return n;
}

/* Reads an optional JSON file: *out NULL when it does not exist. */
static vd_status read_json(const char *path, int required, json_t **out, vd_error *err)
{
    *out = NULL;
    if (!is_file(path)) {
        if (!required) return VD_OK;
        return vd_error_set(err, VD_ERR_NOT_FOUND, "%s: missing", path);
    }
    json_error_t je;
    *out = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return vd_error_set(err, VD_ERR_INVALID, "%s: not a JSON object: %s (line %d)", path,
                            je.text, je.line);
    }
    return VD_OK;
}

/* An integer at a path of keys (a.b), 0 when absent; -1 when present but not a positive integer. */
static long long int_at(json_t *root, const char *a, const char *b)
{
    json_t *v = root ? json_object_get(root, a) : NULL;
    if (v && b) v = json_object_get(v, b);
    if (!v) return 0;
    if (json_is_integer(v) && json_integer_value(v) > 0) return json_integer_value(v);
    if (json_is_array(v) && json_array_size(v) > 0 && json_is_integer(json_array_get(v, 0)) &&
        json_integer_value(json_array_get(v, 0)) > 0)
        return json_integer_value(json_array_get(v, 0)); /* [h, w]: CLIP's are square */
    return -1;
}

/* mean / std: three numbers, or the defaults. */
static vd_status get_triplet(json_t *cfg, const char *key, const char *file, const float *def,
                             float *dst, vd_error *err)
{
    json_t *v = cfg ? json_object_get(cfg, key) : NULL;
    if (!v) {
        memcpy(dst, def, 3 * sizeof *dst);
        return VD_OK;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return vd_error_set(err, VD_ERR_INVALID, "%s: %s: must be 3 numbers", file, key);
    for (size_t i = 0; i < 3; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x)) ||
            (def == clip_std && json_number_value(x) == 0))
            return vd_error_set(err, VD_ERR_INVALID, "%s: %s[%zu]: must be a finite number%s", file,
                                key, i, def == clip_std ? " other than 0" : "");
        dst[i] = (float)json_number_value(x);
    }
    return VD_OK;
}

/* The CLIP image tower: preprocess_cfg.json (size, mean, std, resize_mode) and config.json. */
static vd_status visual_meta(const char *folder, const char *tdir, json_t *cfg, vd_model_meta *m,
                             vd_error *err)
{
    char file[4200];
    snprintf(file, sizeof file, "%s/preprocess_cfg.json", tdir);
    json_t *pp = NULL;
    vd_status rc = read_json(file, 0, &pp, err);
    if (rc != VD_OK) return rc;
    long long size = int_at(pp, "size", NULL);
    if (size == 0) size = int_at(cfg, "vision_cfg", "image_size");
    if (size <= 0 || size > 16384) {
        json_decref(pp);
        return vd_error_set(err, VD_ERR_INVALID,
                            "%s: no image size (\"size\" here, or vision_cfg.image_size in "
                            "%s/config.json)",
                            file, folder);
    }
    m->task = VD_TASK_IMAGE_EMBEDDING;
    vd_strlcpy(m->input_name, "image", sizeof m->input_name);
    m->layout = VD_LAYOUT_NCHW;
    m->height = m->width = (int)size;
    m->channels = 3;
    m->scale = 1.0f / 255.0f;
    m->resize = VD_RESIZE_CENTER_CROP; /* open_clip's resize_mode "shortest" */
    const char *mode = json_string_value(json_object_get(pp, "resize_mode"));
    if (mode && strcmp(mode, "squash") == 0) m->resize = VD_RESIZE_STRETCH;
    if (mode && strcmp(mode, "longest") == 0) m->resize = VD_RESIZE_LETTERBOX;
    if (mode && strcmp(mode, "shortest") != 0 && strcmp(mode, "squash") != 0 &&
        strcmp(mode, "longest") != 0)
        rc = vd_error_set(err, VD_ERR_INVALID,
                          "%s: resize_mode \"%s\" is not shortest, longest or squash", file, mode);
    if (rc == VD_OK) rc = get_triplet(pp, "mean", file, clip_mean, m->mean, err);
    if (rc == VD_OK) rc = get_triplet(pp, "std", file, clip_std, m->std, err);
    json_decref(pp);
    return rc;
}

/* The CLIP text tower: tokenizer.json (required), tokenizer_config.json's pad_token. */
static vd_status textual_meta(const char *tdir, json_t *cfg, vd_model_meta *m, vd_error *err)
{
    m->task = VD_TASK_TEXT_EMBEDDING;
    vd_strlcpy(m->input_name, "text", sizeof m->input_name);
    long long ctx = int_at(cfg, "text_cfg", "context_length");
    m->context_length = ctx > 1 && ctx <= 4096 ? (int)ctx : 77;
    if (snprintf(m->tokenizer_path, sizeof m->tokenizer_path, "%s/tokenizer.json", tdir) >=
        (int)sizeof m->tokenizer_path)
        return vd_error_set(err, VD_ERR_INVALID, "%s: path too long", tdir);
    if (!is_file(m->tokenizer_path))
        return vd_error_set(err, VD_ERR_NOT_FOUND, "%s: missing", m->tokenizer_path);
    m->start_id = m->end_id = -1;
    m->pad_id = 0;
    char file[4200];
    snprintf(file, sizeof file, "%s/tokenizer_config.json", tdir);
    json_t *tc = NULL;
    vd_status rc = read_json(file, 0, &tc, err);
    if (rc != VD_OK) return rc;
    json_t *pad = tc ? json_object_get(tc, "pad_token") : NULL;
    if (pad && json_is_object(pad)) pad = json_object_get(pad, "content"); /* AddedToken form */
    if (pad && (!json_is_string(pad) || strlen(json_string_value(pad)) >= sizeof m->pad_token))
        rc = vd_error_set(err, VD_ERR_INVALID, "%s: pad_token: must be a short string", file);
    else if (pad)
        vd_strlcpy(m->pad_token, json_string_value(pad), sizeof m->pad_token);
    json_decref(tc);
    return rc;
}

/* InsightFace's towers (buffalo_l): SCRFD at 640x640 and ArcFace at 112x112, RGB, NCHW. */
static void face_meta(int tower, vd_model_meta *m)
{
    m->layout = VD_LAYOUT_NCHW;
    m->channels = 3;
    m->scale = 1.0f;
    for (int c = 0; c < 3; c++)
        m->mean[c] = 127.5f;
    if (tower == T_DETECTION) {
        m->task = VD_TASK_FACE_DETECTION;
        m->detector = VD_DETECTOR_SCRFD;
        m->height = m->width = 640;
        m->resize = VD_RESIZE_LETTERBOX;
        for (int c = 0; c < 3; c++)
            m->std[c] = 128.0f;
    } else {
        m->task = VD_TASK_FACE_EMBEDDING;
        m->alignment = VD_ALIGNMENT_ARCFACE;
        m->height = m->width = 112;
        m->l2_normalize = 1;
        for (int c = 0; c < 3; c++)
            m->std[c] = 127.5f;
    }
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= 63 &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

/* Splits tower_dir into the folder, its base name and the tower's index. */
static vd_status split_tower(const char *tower_dir, char *folder, size_t n, const char **base,
                             int *tower, vd_error *err)
{
    vd_strlcpy(folder, tower_dir, n);
    size_t len = strlen(folder);
    while (len > 1 && folder[len - 1] == '/')
        folder[--len] = 0;
    char *slash = strrchr(folder, '/');
    if (!slash)
        return vd_error_set(err, VD_ERR_INVALID, "%s: not a tower of a model folder", tower_dir);
    *tower = -1;
    for (int t = 0; t < VD_FOLDER_MAX_TOWERS; t++)
        if (strcmp(slash + 1, towers[t]) == 0) *tower = t;
    if (*tower < 0)
        return vd_error_set(err, VD_ERR_INVALID,
                            "%s: not a tower of a model folder (visual, textual, detection, "
                            "recognition)",
                            tower_dir);
    *slash = 0;
    const char *b = strrchr(folder, '/');
    *base = b ? b + 1 : folder;
    return VD_OK;
}

vd_status vd_model_meta_from_tower(const char *tower_dir, vd_model_meta *m, vd_error *err)
{
    memset(m, 0, sizeof *m);
    char folder[4096];
    const char *base = "";
    int tower = 0;
    vd_status rc = split_tower(tower_dir, folder, sizeof folder, &base, &tower, err);
    if (rc != VD_OK) return rc;
    static const char *const suffix[] = {"", ".textual", ".detection", ""};
    char name[128];
    snprintf(name, sizeof name, "%s%s", base, suffix[tower]);
    if (!name_ok(name))
        return vd_error_set(err, VD_ERR_INVALID,
                            "%s: the model name '%s' must be 1-63 characters of [A-Za-z0-9_.-] "
                            "(rename the folder)",
                            folder, name);
    vd_strlcpy(m->name, name, sizeof m->name);
    snprintf(m->onnx_path, sizeof m->onnx_path, "%s/%s/model.onnx", folder, towers[tower]);
    if (!is_file(m->onnx_path))
        return vd_error_set(err, VD_ERR_NOT_FOUND, "%s: missing", m->onnx_path);
    m->scale = 1.0f;
    m->std[0] = m->std[1] = m->std[2] = 1.0f;
    m->max_batch = 16;
    m->max_delay_us = 2000;
    if (tower == T_DETECTION || tower == T_RECOGNITION) {
        face_meta(tower, m);
        return VD_OK;
    }
    char file[4200];
    snprintf(file, sizeof file, "%s/config.json", folder);
    json_t *cfg = NULL;
    if ((rc = read_json(file, 0, &cfg, err)) != VD_OK) return rc;
    long long dim = int_at(cfg, "embed_dim", NULL);
    m->dim = dim > 0 && dim <= (1 << 24) ? (int)dim : 0;
    m->l2_normalize = 1; /* Immich's exports normalise; once more changes nothing */
    vd_strlcpy(m->outputs[0], "embedding", sizeof m->outputs[0]);
    m->noutputs = 1;
    char other[4200];
    snprintf(other, sizeof other, "%s/%s", folder, tower == T_VISUAL ? "textual" : "visual");
    if (tower == T_VISUAL) {
        rc = visual_meta(folder, tower_dir, cfg, m, err);
        if (is_dir(other) && strlen(base) + 9 < sizeof m->text_model)
            snprintf(m->text_model, sizeof m->text_model, "%s.textual", base);
    } else {
        rc = textual_meta(tower_dir, cfg, m, err);
        if (is_dir(other)) vd_strlcpy(m->image_model, base, sizeof m->image_model);
    }
    json_decref(cfg);
    return rc;
}

/* name -> FOLDER (base) and tower directory, in dir; 1 when found. */
static int find_in(const char *dir, const char *name, char *path, size_t n)
{
    size_t len = strlen(name);
    char base[VD_MODEL_NAME_MAX];
    const char *cand[2] = {NULL, NULL};
    if (len > 8 && strcmp(name + len - 8, ".textual") == 0) {
        snprintf(base, sizeof base, "%.*s", (int)(len - 8), name);
        cand[0] = "textual";
    } else if (len > 10 && strcmp(name + len - 10, ".detection") == 0) {
        snprintf(base, sizeof base, "%.*s", (int)(len - 10), name);
        cand[0] = "detection";
    } else {
        vd_strlcpy(base, name, sizeof base);
        cand[0] = "visual";
        cand[1] = "recognition";
    }
    for (int i = 0; i < 2 && cand[i]; i++) {
        if ((size_t)snprintf(path, n, "%s/%s/%s", dir, base, cand[i]) >= n) return 0;
        if (is_dir(path)) return 1;
    }
    return 0;
}

int vd_model_folder_find(const char *models_dir, const char *name, char *path, size_t n)
{
    if (!name_ok(name) || name[0] == '.') return 0;
    if ((size_t)snprintf(path, n, "%s/%s.json", models_dir, name) < n && is_file(path)) return 1;
    if (find_in(models_dir, name, path, n)) return 1;
    /* one level down: an Immich cache (clip/NAME, facial-recognition/NAME) */
    DIR *d = opendir(models_dir);
    if (!d) return 0;
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char sub[4096];
        if ((size_t)snprintf(sub, sizeof sub, "%s/%s", models_dir, e->d_name) >= sizeof sub ||
            !is_dir(sub))
            continue;
        char towers_here[1][4096];
        if (vd_model_folder_towers(sub, towers_here, 1) > 0) continue; /* a model folder itself */
        found = find_in(sub, name, path, n);
    }
    closedir(d);
    return found;
}
