/* model_meta.c: parsing and checking a model's metadata file (docs/models.md). */
#include "infer/model_meta.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/util.h"
#include "infer/model_folder.h"

#define META_FILE_MAX (1 << 20) /* a metadata file is small; refuse anything big */

static const char *const top_keys[] = {
    "name",      "onnx",         "task",       "input",       "outputs", "dim",    "l2_normalize",
    "max_batch", "max_delay_us", "preload",    "description", "license", "source", "version",
    "detector",  "alignment",    "text_model", "image_model", NULL};
static const char *const input_keys[] = {"name",   "layout", "height", "width", "channels", "color",
                                         "resize", "scale",  "mean",   "std",   NULL};
static const char *const text_input_keys[] = {"name",      "context_length", "tokenizer", "pad_id",
                                              "pad_token", "start_id",       "end_id",    NULL};

static int key_known(const char *key, const char *const *known)
{
    if (key[0] == '_' || strncmp(key, "x-", 2) == 0) return 1; /* free-form annotations */
    for (size_t i = 0; known[i]; i++)
        if (strcmp(key, known[i]) == 0) return 1;
    return 0;
}

static vd_status check_keys(json_t *obj, const char *const *known, const char *prefix,
                            vd_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        (void)v;
        if (!key_known(key, known))
            return vd_error_set(err, VD_ERR_INVALID, "%s%s: unknown key", prefix, key);
    }
    return VD_OK;
}

/* Reads an optional string into dst (size n); a wrong type or an over-long
 * value is an error naming the key. */
static vd_status get_str(json_t *obj, const char *key, const char *label, char *dst, size_t n,
                         int *present, vd_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (present) *present = v != NULL;
    if (!v) return VD_OK;
    if (!json_is_string(v)) return vd_error_set(err, VD_ERR_INVALID, "%s: must be a string", label);
    const char *s = json_string_value(v);
    if (strlen(s) >= n)
        return vd_error_set(err, VD_ERR_INVALID, "%s: longer than %zu characters", label, n - 1);
    vd_strlcpy(dst, s, n);
    return VD_OK;
}

static vd_status get_int(json_t *obj, const char *key, const char *label, long long lo,
                         long long hi, long long *dst, int required, vd_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) return vd_error_set(err, VD_ERR_INVALID, "%s: required", label);
        return VD_OK;
    }
    long long x;
    if (json_is_integer(v)) {
        x = (long long)json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
               fabs(json_real_value(v)) < 9e15) {
        x = (long long)json_real_value(v);
    } else {
        return vd_error_set(err, VD_ERR_INVALID, "%s: must be an integer", label);
    }
    if (x < lo || x > hi)
        return vd_error_set(err, VD_ERR_INVALID, "%s: %lld is out of range [%lld, %lld]", label, x,
                            lo, hi);
    *dst = x;
    return VD_OK;
}

static vd_status get_bool(json_t *obj, const char *key, int *dst, vd_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return VD_OK;
    if (!json_is_boolean(v))
        return vd_error_set(err, VD_ERR_INVALID, "%s: must be true or false", key);
    *dst = json_is_true(v);
    return VD_OK;
}

/* Maps an optional string key onto one of names[] (index written to *dst). */
static vd_status get_enum(json_t *obj, const char *key, const char *label, const char *const *names,
                          int *dst, vd_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return VD_OK;
    if (json_is_string(v))
        for (int i = 0; names[i]; i++)
            if (strcmp(json_string_value(v), names[i]) == 0) {
                *dst = i;
                return VD_OK;
            }
    char allowed[256] = "";
    for (int i = 0; names[i]; i++) {
        if (i) strncat(allowed, ", ", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, names[i], sizeof allowed - strlen(allowed) - 1);
    }
    return vd_error_set(err, VD_ERR_INVALID, "%s: must be one of %s", label, allowed);
}

static vd_status get_number(json_t *obj, const char *key, const char *label, float *dst,
                            vd_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return VD_OK;
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return vd_error_set(err, VD_ERR_INVALID, "%s: must be a finite number", label);
    *dst = (float)json_number_value(v);
    return VD_OK;
}

/* mean/std: an array of `channels` numbers, or of one number used for every channel. */
static vd_status get_per_channel(json_t *obj, const char *key, int channels, int nonzero,
                                 float *dst, vd_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) return VD_OK;
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (!json_is_array(v) || (n != (size_t)channels && n != 1))
        return vd_error_set(err, VD_ERR_INVALID,
                            "input.%s: must be an array of %d number%s (one per channel)", key,
                            channels, channels == 1 ? "" : "s");
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x)))
            return vd_error_set(err, VD_ERR_INVALID, "input.%s[%zu]: must be a finite number", key,
                                i);
        if (nonzero && json_number_value(x) == 0)
            return vd_error_set(err, VD_ERR_INVALID, "input.%s[%zu]: must not be 0", key, i);
    }
    for (int c = 0; c < 3; c++)
        dst[c] = (float)json_number_value(
            json_array_get(v, n == 1 ? 0 : (size_t)(c < channels ? c : 0)));
    return VD_OK;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63) return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") == n;
}

static const char *const task_names[] = {"other",          "image_embedding", "face_detection",
                                         "face_embedding", "text_embedding",  NULL};

/* dir + "/" + rel into dst (rel itself when absolute or no dir). */
static vd_status resolve_path(const char *dir, const char *rel, const char *label, char *dst,
                              size_t n, vd_error *err)
{
    if (rel[0] == '/' || !dir || !*dir) {
        if (strlen(rel) >= n)
            return vd_error_set(err, VD_ERR_INVALID, "%s: the path is too long", label);
        vd_strlcpy(dst, rel, n);
        return VD_OK;
    }
    if (strlen(dir) + 1 + strlen(rel) >= n)
        return vd_error_set(err, VD_ERR_INVALID, "%s: the resolved path is too long", label);
    size_t dl = strlen(dir);
    memcpy(dst, dir, dl);
    dst[dl] = '/';
    memcpy(dst + dl + 1, rel, strlen(rel) + 1);
    return VD_OK;
}

/* A text model's input: context_length (required), tokenizer, pad/start/end ids. */
static vd_status parse_text_input(json_t *in, const char *dir, vd_model_meta *m, vd_error *err)
{
    vd_status rc;
    if ((rc = check_keys(in, text_input_keys, "input.", err)) != VD_OK) return rc;
    long long x = 0;
    if ((rc = get_int(in, "context_length", "input.context_length", 2, 4096, &x, 1, err)) != VD_OK)
        return rc;
    m->context_length = (int)x;
    char tok[2048];
    int present = 0;
    if ((rc = get_str(in, "tokenizer", "input.tokenizer", tok, sizeof tok, &present, err)) != VD_OK)
        return rc;
    if (!present || !tok[0])
        return vd_error_set(err, VD_ERR_INVALID, "input.tokenizer: required (the tokenizer.json)");
    if ((rc = resolve_path(dir, tok, "input.tokenizer", m->tokenizer_path, sizeof m->tokenizer_path,
                           err)) != VD_OK)
        return rc;
    const char *ids[3] = {"pad_id", "start_id", "end_id"};
    int32_t *dst[3] = {&m->pad_id, &m->start_id, &m->end_id};
    m->pad_id = 0;
    m->start_id = m->end_id = -1;
    for (int i = 0; i < 3; i++) {
        char label[32];
        snprintf(label, sizeof label, "input.%s", ids[i]);
        x = *dst[i];
        if ((rc = get_int(in, ids[i], label, 0, INT32_MAX, &x, 0, err)) != VD_OK) return rc;
        *dst[i] = (int32_t)x;
    }
    return get_str(in, "pad_token", "input.pad_token", m->pad_token, sizeof m->pad_token, NULL,
                   err);
}

/* An image model's input: size, layout, colour, resize, normalisation. */
static vd_status parse_image_input(json_t *in, vd_model_meta *m, vd_error *err)
{
    vd_status rc;
    if ((rc = check_keys(in, input_keys, "input.", err)) != VD_OK) return rc;
    static const char *const layouts[] = {"NHWC", "NCHW", NULL};
    static const char *const colors[] = {"RGB", "BGR", NULL};
    static const char *const resizes[] = {"stretch", "center_crop", "letterbox", NULL};
    int e = 0;
    if ((rc = get_enum(in, "layout", "input.layout", layouts, &e, err)) != VD_OK) return rc;
    m->layout = (vd_layout)e;
    e = 0;
    if ((rc = get_enum(in, "color", "input.color", colors, &e, err)) != VD_OK) return rc;
    m->color = (vd_color_order)e;
    e = 0;
    if ((rc = get_enum(in, "resize", "input.resize", resizes, &e, err)) != VD_OK) return rc;
    m->resize = (vd_resize_mode)e;
    long long x = 0;
    if ((rc = get_int(in, "height", "input.height", 1, 16384, &x, 1, err)) != VD_OK) return rc;
    m->height = (int)x;
    if ((rc = get_int(in, "width", "input.width", 1, 16384, &x, 1, err)) != VD_OK) return rc;
    m->width = (int)x;
    if ((rc = get_int(in, "channels", "input.channels", 1, 3, &x, 1, err)) != VD_OK) return rc;
    if (x == 2) return vd_error_set(err, VD_ERR_INVALID, "input.channels: must be 1 or 3, got 2");
    m->channels = (int)x;
    if ((rc = get_number(in, "scale", "input.scale", &m->scale, err)) != VD_OK) return rc;
    if ((rc = get_per_channel(in, "mean", m->channels, 0, m->mean, err)) != VD_OK) return rc;
    if ((rc = get_per_channel(in, "std", m->channels, 1, m->std, err)) != VD_OK) return rc;
    return VD_OK;
}

/* text_model / image_model: the other tower of a CLIP pair. */
static vd_status get_pair(json_t *root, vd_model_meta *m, vd_error *err)
{
    vd_status rc;
    if ((rc = get_str(root, "text_model", "text_model", m->text_model, sizeof m->text_model, NULL,
                      err)) != VD_OK ||
        (rc = get_str(root, "image_model", "image_model", m->image_model, sizeof m->image_model,
                      NULL, err)) != VD_OK)
        return rc;
    if (m->text_model[0] && m->task != VD_TASK_IMAGE_EMBEDDING)
        return vd_error_set(err, VD_ERR_INVALID, "text_model: only for task image_embedding");
    if (m->image_model[0] && m->task != VD_TASK_TEXT_EMBEDDING)
        return vd_error_set(err, VD_ERR_INVALID, "image_model: only for task text_embedding");
    return VD_OK;
}

/* `detector` (face_detection) and `alignment` (face_embedding). */
static vd_status get_face_kinds(json_t *root, vd_model_meta *m, vd_error *err)
{
    static const char *const detectors[] = {"blazeface", "scrfd", NULL};
    static const char *const alignments[] = {"faceres", "arcface", NULL};
    vd_status rc;
    int e = 0;
    if (json_object_get(root, "detector") && m->task != VD_TASK_FACE_DETECTION)
        return vd_error_set(err, VD_ERR_INVALID, "detector: only for task face_detection");
    if ((rc = get_enum(root, "detector", "detector", detectors, &e, err)) != VD_OK) return rc;
    m->detector = (vd_face_detector)e;
    e = 0;
    if (json_object_get(root, "alignment") && m->task != VD_TASK_FACE_EMBEDDING)
        return vd_error_set(err, VD_ERR_INVALID, "alignment: only for task face_embedding");
    if ((rc = get_enum(root, "alignment", "alignment", alignments, &e, err)) != VD_OK) return rc;
    m->alignment = (vd_face_alignment)e;
    return VD_OK;
}

static vd_status parse_root(json_t *root, const char *dir, const char *stem, vd_model_meta *m,
                            vd_error *err)
{
    vd_status rc;
    memset(m, 0, sizeof *m);
    m->scale = 1.0f;
    m->std[0] = m->std[1] = m->std[2] = 1.0f;
    m->max_batch = 16;
    m->max_delay_us = 2000;
    m->task = VD_TASK_OTHER;

    if (!json_is_object(root))
        return vd_error_set(err, VD_ERR_INVALID, "model metadata must be a JSON object");
    if ((rc = check_keys(root, top_keys, "", err)) != VD_OK) return rc;

    int present = 0;
    if ((rc = get_str(root, "name", "name", m->name, sizeof m->name, &present, err)) != VD_OK)
        return rc;
    if (!present) {
        if (!stem || !*stem)
            return vd_error_set(err, VD_ERR_INVALID,
                                "name: required (no file name to default from)");
        if (strlen(stem) >= sizeof m->name)
            return vd_error_set(err, VD_ERR_INVALID, "name: the file name '%s' is too long", stem);
        vd_strlcpy(m->name, stem, sizeof m->name);
    }
    if (!name_ok(m->name))
        return vd_error_set(err, VD_ERR_INVALID,
                            "name: '%s' must be 1-63 characters of [A-Za-z0-9_.-]", m->name);

    char onnx[2048];
    if ((rc = get_str(root, "onnx", "onnx", onnx, sizeof onnx, &present, err)) != VD_OK) return rc;
    if (!present) snprintf(onnx, sizeof onnx, "%s.onnx", m->name);
    if (!onnx[0]) return vd_error_set(err, VD_ERR_INVALID, "onnx: must not be empty");
    if ((rc = resolve_path(dir, onnx, "onnx", m->onnx_path, sizeof m->onnx_path, err)) != VD_OK)
        return rc;

    int e = 0;
    if ((rc = get_enum(root, "task", "task", task_names, &e, err)) != VD_OK) return rc;
    m->task = (vd_model_task)e;

    json_t *in = json_object_get(root, "input");
    int text = m->task == VD_TASK_TEXT_EMBEDDING;
    if (!in)
        return vd_error_set(err, VD_ERR_INVALID, "input: required (an object with %s)",
                            text ? "context_length and tokenizer" : "height, width, channels");
    if (!json_is_object(in)) return vd_error_set(err, VD_ERR_INVALID, "input: must be an object");
    if ((rc = get_str(in, "name", "input.name", m->input_name, sizeof m->input_name, NULL, err)) !=
        VD_OK)
        return rc;
    rc = text ? parse_text_input(in, dir, m, err) : parse_image_input(in, m, err);
    if (rc != VD_OK) return rc;
    if ((rc = get_pair(root, m, err)) != VD_OK) return rc;

    json_t *outs = json_object_get(root, "outputs");
    if (outs) {
        if (!json_is_array(outs) || json_array_size(outs) == 0 ||
            json_array_size(outs) > VD_MODEL_MAX_OUTPUT)
            return vd_error_set(err, VD_ERR_INVALID, "outputs: must be an array of 1 to %d names",
                                VD_MODEL_MAX_OUTPUT);
        for (size_t i = 0; i < json_array_size(outs); i++) {
            json_t *o = json_array_get(outs, i);
            if (!json_is_string(o) || !json_string_value(o)[0] ||
                strlen(json_string_value(o)) >= sizeof m->outputs[0])
                return vd_error_set(err, VD_ERR_INVALID,
                                    "outputs[%zu]: must be a non-empty string under %zu characters",
                                    i, sizeof m->outputs[0]);
            vd_strlcpy(m->outputs[i], json_string_value(o), sizeof m->outputs[i]);
        }
        m->noutputs = (int)json_array_size(outs);
    }

    long long x = 0;
    if ((rc = get_int(root, "dim", "dim", 0, 1 << 24, &x, 0, err)) != VD_OK) return rc;
    m->dim = (int)x;
    if ((rc = get_bool(root, "l2_normalize", &m->l2_normalize, err)) != VD_OK) return rc;
    if ((rc = get_bool(root, "preload", &m->preload, err)) != VD_OK) return rc;
    x = m->max_batch;
    if ((rc = get_int(root, "max_batch", "max_batch", 1, 4096, &x, 0, err)) != VD_OK) return rc;
    m->max_batch = (int)x;
    x = m->max_delay_us;
    if ((rc = get_int(root, "max_delay_us", "max_delay_us", 0, 10000000, &x, 0, err)) != VD_OK)
        return rc;
    m->max_delay_us = x;
    if ((rc = get_face_kinds(root, m, err)) != VD_OK) return rc;
    json_t *d = json_object_get(root, "description");
    if (d && !json_is_string(d))
        return vd_error_set(err, VD_ERR_INVALID, "description: must be a string");
    return VD_OK;
}

vd_status vd_model_meta_parse(const char *json_text, const char *dir, vd_model_meta *meta,
                              vd_error *err)
{
    json_error_t je;
    json_t *root = json_loads(json_text, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        memset(meta, 0, sizeof *meta);
        return vd_error_set(err, VD_ERR_INVALID, "model metadata is not valid JSON: %s (line %d)",
                            je.text, je.line);
    }
    vd_status rc = parse_root(root, dir, NULL, meta, err);
    json_decref(root);
    return rc;
}

vd_status vd_model_meta_load(const char *path, vd_model_meta *meta, vd_error *err)
{
    memset(meta, 0, sizeof *meta);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return vd_model_meta_from_tower(path, meta, err);
    FILE *f = fopen(path, "rb");
    if (!f)
        return vd_error_set(err, errno == ENOENT ? VD_ERR_NOT_FOUND : VD_ERR_IO, "%s: %s", path,
                            strerror(errno));
    char *buf = malloc(META_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    size_t n = fread(buf, 1, META_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return vd_error_set(err, VD_ERR_IO, "%s: read error", path);
    }
    if (n > META_FILE_MAX) {
        free(buf);
        return vd_error_set(err, VD_ERR_LIMIT, "%s: larger than %d bytes", path, META_FILE_MAX);
    }
    buf[n] = 0;

    /* dir = the file's directory; stem = its name without ".json". */
    char dir[4096], stem[256];
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t dl = (size_t)(slash - path);
        if (dl >= sizeof dir) dl = sizeof dir - 1;
        memcpy(dir, path, dl);
        dir[dl] = 0;
        if (dl == 0) vd_strlcpy(dir, "/", sizeof dir);
    } else {
        vd_strlcpy(dir, ".", sizeof dir);
    }
    vd_strlcpy(stem, slash ? slash + 1 : path, sizeof stem);
    size_t sl = strlen(stem);
    if (sl > 5 && strcmp(stem + sl - 5, ".json") == 0) stem[sl - 5] = 0;

    json_error_t je;
    json_t *root = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &je);
    free(buf);
    if (!root)
        return vd_error_set(err, VD_ERR_INVALID, "%s: not valid JSON: %s (line %d)", path, je.text,
                            je.line);
    vd_status rc = parse_root(root, dir, stem, meta, err);
    json_decref(root);
    if (rc != VD_OK && err) {
        char tmp[VD_ERROR_MSG_MAX];
        vd_strlcpy(tmp, err->msg, sizeof tmp);
        vd_error_set(err, rc, "%.200s: %.300s", path, tmp);
    }
    return rc;
}

size_t vd_model_meta_input_len(const vd_model_meta *meta)
{
    if (meta->task == VD_TASK_TEXT_EMBEDDING) return (size_t)meta->context_length;
    return (size_t)meta->height * (size_t)meta->width * (size_t)meta->channels;
}

size_t vd_model_meta_input_shape(const vd_model_meta *meta, int64_t n, int64_t *shape,
                                 vd_dtype *dtype)
{
    shape[0] = n;
    if (meta->task == VD_TASK_TEXT_EMBEDDING) {
        shape[1] = meta->context_length;
        if (dtype) *dtype = VD_DTYPE_INT32;
        return 2;
    }
    if (dtype) *dtype = VD_DTYPE_FLOAT32;
    if (meta->layout == VD_LAYOUT_NCHW) {
        shape[1] = meta->channels, shape[2] = meta->height, shape[3] = meta->width;
    } else {
        shape[1] = meta->height, shape[2] = meta->width, shape[3] = meta->channels;
    }
    return 4;
}

const char *vd_model_task_name(vd_model_task t)
{
    if ((unsigned)t > VD_TASK_TEXT_EMBEDDING) return "other";
    return task_names[t];
}

int vd_model_task_embeds(vd_model_task t)
{
    return t == VD_TASK_IMAGE_EMBEDDING || t == VD_TASK_FACE_EMBEDDING ||
           t == VD_TASK_TEXT_EMBEDDING;
}

/* Formats a shape as "[N,32]" (-1 as N for the first dim, ? after). */
static const char *shape_text(const int64_t *shape, size_t rank, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < rank && used < n; i++) {
        const char *sep = i ? "," : "";
        if (shape[i] >= 0)
            used += (size_t)snprintf(buf + used, n - used, "%s%lld", sep, (long long)shape[i]);
        else
            used += (size_t)snprintf(buf + used, n - used, "%s%s", sep, i ? "?" : "N");
    }
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

vd_status vd_model_meta_graph_dim(const vd_model_meta *meta, const char *meta_path,
                                  const char *output, const int64_t *shape, size_t rank, int *dim,
                                  vd_error *err)
{
    char sh[160];
    const char *file = meta_path && *meta_path ? meta_path : meta->name;
    *dim = 0;
    if (vd_model_task_embeds(meta->task) && rank != 0 && rank != 2)
        return vd_error_set(err, VD_ERR_MODEL,
                            "%.300s: the %s model's output '%.100s' is %s; an embedding output "
                            "must be [batch, dim]",
                            file, vd_model_task_name(meta->task), output,
                            shape_text(shape, rank, sh, sizeof sh));
    int graph =
        rank >= 1 && shape[rank - 1] > 0 && shape[rank - 1] <= INT32_MAX ? (int)shape[rank - 1] : 0;
    if (meta->dim > 0 && graph > 0 && meta->dim != graph)
        return vd_error_set(err, VD_ERR_MODEL,
                            "%.300s: dim %d does not match the graph's output '%.100s' %s (dim %d)",
                            file, meta->dim, output, shape_text(shape, rank, sh, sizeof sh), graph);
    *dim = meta->dim > 0 ? meta->dim : graph;
    return VD_OK;
}

vd_status vd_model_meta_check_output(const vd_model_meta *meta, const char *output,
                                     const vd_tensor *t, size_t n, int *dim, vd_error *err)
{
    if (!vd_model_task_embeds(meta->task)) return VD_OK;
    char sh[160];
    if (t->rank != 2 || t->shape[0] != (int64_t)n || t->shape[1] <= 0 || t->shape[1] > INT32_MAX ||
        (*dim > 0 && t->shape[1] != *dim)) {
        char want[64];
        if (*dim > 0)
            snprintf(want, sizeof want, "[%zu,%d]", n, *dim);
        else
            snprintf(want, sizeof want, "[%zu, dim > 0]", n);
        return vd_error_set(err, VD_ERR_MODEL,
                            "model '%s': output '%.100s' of a run of %zu is %s, not %s: no "
                            "vector is returned",
                            meta->name, output, n, shape_text(t->shape, t->rank, sh, sizeof sh),
                            want);
    }
    if (*dim <= 0) *dim = (int)t->shape[1];
    return VD_OK;
}
