/* tfjs.c: TensorFlow.js graph-model loading (model JSON, shards, dequantisation). */
#include "convert/tfjs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/jsmodule.h"

static vd_status read_file(const char *path, char **data, size_t *len, vd_error *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return vd_error_set(err, VD_ERR_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return vd_error_set(err, VD_ERR_IO, "%s is not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory reading %s (%zu bytes)", path, n);
    }
    size_t got = fread(buf, 1, n, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != n) {
        free(buf);
        return vd_error_set(err, VD_ERR_IO, "cannot read %s", path);
    }
    buf[n] = 0;
    *data = buf;
    *len = n;
    return VD_OK;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 2);
    if (!d) return NULL;
    if (n == 0) {
        strcpy(d, "/");
    } else {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

/* Appends the bytes of one shard (binary, or a JS module with base64) to *buf. */
static vd_status load_shard(const char *dir, const char *rel, uint8_t **buf, size_t *len,
                            vd_error *err)
{
    static const char *const suffixes[] = {"", ".min.js", ".js"};
    char path[4096];
    struct stat st;
    int found = 0;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0] && !found; i++) {
        if (rel[0] == '/')
            snprintf(path, sizeof path, "%s%s", rel, suffixes[i]);
        else
            snprintf(path, sizeof path, "%s/%s%s", dir, rel, suffixes[i]);
        found = stat(path, &st) == 0 && S_ISREG(st.st_mode);
    }
    if (!found)
        return vd_error_set(err, VD_ERR_NOT_FOUND, "weights shard %s not found in %s", rel, dir);
    char *raw;
    size_t n;
    vd_status s = read_file(path, &raw, &n, err);
    if (s != VD_OK) return s;
    uint8_t *bytes;
    size_t nbytes;
    if (vd_jsmodule_is_js(path)) {
        s = vd_jsmodule_base64_bytes(raw, n, &bytes, &nbytes, err);
        free(raw);
        if (s != VD_OK) {
            char msg[VD_ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            return vd_error_set(err, s, "%s: %s", path, msg);
        }
    } else {
        bytes = (uint8_t *)raw;
        nbytes = n;
    }
    uint8_t *grown = realloc(*buf, *len + nbytes + 1);
    if (!grown) {
        free(bytes);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    memcpy(grown + *len, bytes, nbytes);
    *buf = grown;
    *len += nbytes;
    free(bytes);
    return VD_OK;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    int exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)mant, -24); /* zero or subnormal */
    } else if (exp == 31) {
        f = mant ? NAN : INFINITY;
    } else {
        uint32_t bits = ((uint32_t)(exp - 15 + 127) << 23) | (mant << 13);
        memcpy(&f, &bits, 4);
    }
    uint32_t u;
    memcpy(&u, &f, 4);
    u |= sign;
    memcpy(&f, &u, 4);
    return f;
}

static int64_t json_int(const json_t *v, int64_t dflt)
{
    if (json_is_integer(v)) return json_integer_value(v);
    if (json_is_string(v)) {
        char *e;
        long long x = strtoll(json_string_value(v), &e, 10);
        if (*e == 0 && e != json_string_value(v)) return x;
    }
    if (json_is_real(v)) return (int64_t)json_real_value(v);
    return dflt;
}

/* Decodes one manifest entry's bytes at src into w. */
static vd_status decode_weight(const json_t *entry, const uint8_t *src, size_t avail, size_t *used,
                               vd_tfjs_weight *w, vd_error *err)
{
    const char *dtype = json_string_value(json_object_get(entry, "dtype"));
    const json_t *q = json_object_get(entry, "quantization");
    const char *qtype = q ? json_string_value(json_object_get(q, "dtype")) : NULL;
    if (!dtype) return vd_error_set(err, VD_ERR_INVALID, "weight %s: no dtype", w->name);
    if (strcmp(dtype, "float32") == 0)
        w->dtype = VD_TFJS_F32;
    else if (strcmp(dtype, "int32") == 0)
        w->dtype = VD_TFJS_I32;
    else
        return vd_error_set(err, VD_ERR_UNSUPPORTED, "weight %s: dtype %s is not supported",
                            w->name, dtype);
    size_t esize = 4;
    if (qtype) {
        if (strcmp(qtype, "uint8") == 0)
            esize = 1;
        else if (strcmp(qtype, "uint16") == 0 || strcmp(qtype, "float16") == 0)
            esize = 2;
        else
            return vd_error_set(err, VD_ERR_UNSUPPORTED,
                                "weight %s: quantization dtype %s is not supported", w->name,
                                qtype);
    }
    if (w->count > SIZE_MAX / 4 / esize)
        return vd_error_set(err, VD_ERR_LIMIT, "weight %s is too large", w->name);
    size_t need = w->count * esize;
    if (need > avail)
        return vd_error_set(err, VD_ERR_INVALID,
                            "weights truncated: %s needs %zu bytes, only %zu left in the shards",
                            w->name, need, avail);
    *used = need;
    float *f = NULL;
    int32_t *iv = NULL;
    void *data = malloc(w->count ? w->count * 4 : 1);
    if (!data) return vd_error_set(err, VD_ERR_NOMEM, "out of memory for weight %s", w->name);
    if (w->dtype == VD_TFJS_F32)
        f = data;
    else
        iv = data;
    double scale = 1, minv = 0;
    if (qtype && strcmp(qtype, "float16") != 0) {
        scale = json_number_value(json_object_get(q, "scale"));
        minv = json_number_value(json_object_get(q, "min"));
    }
    for (size_t i = 0; i < w->count; i++) {
        double v;
        if (!qtype) {
            uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                         (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
            if (f) {
                memcpy(&f[i], &u, 4);
            } else {
                int32_t s32;
                memcpy(&s32, &u, 4);
                iv[i] = s32;
            }
            continue;
        } else if (esize == 1) {
            v = minv + scale * src[i];
        } else if (strcmp(qtype, "float16") == 0) {
            v = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
        } else {
            v = minv + scale * (src[2 * i] | src[2 * i + 1] << 8);
        }
        if (f)
            f[i] = (float)v;
        else
            iv[i] = (int32_t)lround(v);
    }
    w->data = data;
    return VD_OK;
}

static vd_status load_weights(vd_tfjs_model *m, const char *dir, vd_error *err)
{
    json_t *manifest = json_object_get(m->root, "weightsManifest");
    if (!json_is_array(manifest))
        return vd_error_set(err, VD_ERR_INVALID, "model JSON has no weightsManifest array");
    size_t total = 0, gi;
    json_t *group;
    json_array_foreach(manifest, gi, group) total +=
        json_array_size(json_object_get(group, "weights"));
    m->weights = calloc(total ? total : 1, sizeof *m->weights);
    if (!m->weights) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    json_array_foreach(manifest, gi, group)
    {
        json_t *paths = json_object_get(group, "paths");
        json_t *weights = json_object_get(group, "weights");
        if (!json_is_array(paths) || !json_is_array(weights))
            return vd_error_set(err, VD_ERR_INVALID,
                                "weightsManifest[%zu]: needs 'paths' and 'weights' arrays", gi);
        uint8_t *buf = NULL;
        size_t len = 0, pi;
        json_t *p;
        json_array_foreach(paths, pi, p)
        {
            if (!json_is_string(p)) {
                free(buf);
                return vd_error_set(err, VD_ERR_INVALID, "weightsManifest[%zu]: bad path", gi);
            }
            vd_status s = load_shard(dir, json_string_value(p), &buf, &len, err);
            if (s != VD_OK) {
                free(buf);
                return s;
            }
        }
        size_t off = 0, wi;
        json_t *entry;
        json_array_foreach(weights, wi, entry)
        {
            vd_tfjs_weight *w = &m->weights[m->nweights];
            w->name = json_string_value(json_object_get(entry, "name"));
            json_t *shape = json_object_get(entry, "shape");
            if (!w->name || !json_is_array(shape) || json_array_size(shape) > VD_TFJS_MAX_RANK) {
                free(buf);
                return vd_error_set(err, VD_ERR_INVALID,
                                    "weightsManifest[%zu].weights[%zu]: needs a name and a shape "
                                    "of rank <= %d",
                                    gi, wi, VD_TFJS_MAX_RANK);
            }
            w->rank = (int)json_array_size(shape);
            w->count = 1;
            for (int d = 0; d < w->rank; d++) {
                int64_t v = json_int(json_array_get(shape, (size_t)d), -1);
                if (v < 0 || v > (1 << 30) || (v && w->count > (SIZE_MAX >> 31))) {
                    free(buf);
                    return vd_error_set(err, VD_ERR_INVALID, "weight %s: bad shape", w->name);
                }
                w->shape[d] = v;
                w->count *= (size_t)v;
            }
            size_t used = 0;
            vd_status s = decode_weight(entry, buf ? buf + off : NULL, len - off, &used, w, err);
            if (s != VD_OK) {
                free(buf);
                return s;
            }
            off += used;
            m->nweights++;
        }
        free(buf);
    }
    return VD_OK;
}

static vd_status load_nodes(vd_tfjs_model *m, vd_error *err)
{
    json_t *nodes = json_object_get(json_object_get(m->root, "modelTopology"), "node");
    if (!json_is_array(nodes))
        return vd_error_set(err, VD_ERR_INVALID, "model JSON has no modelTopology.node array");
    m->nodes = calloc(json_array_size(nodes) + 1, sizeof *m->nodes);
    if (!m->nodes) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        vd_tfjs_node *node = &m->nodes[m->nnodes];
        node->name = json_string_value(json_object_get(n, "name"));
        node->op = json_string_value(json_object_get(n, "op"));
        if (!node->name || !node->op)
            return vd_error_set(err, VD_ERR_INVALID, "modelTopology.node[%zu]: needs name and op",
                                i);
        m->nnodes++; /* counted before its inputs are allocated: vd_tfjs_free frees them */
        node->attr = json_object_get(n, "attr");
        json_t *inputs = json_object_get(n, "input");
        if (json_is_array(inputs) && json_array_size(inputs)) {
            node->inputs = calloc(json_array_size(inputs), sizeof *node->inputs);
            if (!node->inputs) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            size_t k;
            json_t *in;
            json_array_foreach(inputs, k, in)
            {
                if (!json_is_string(in))
                    return vd_error_set(err, VD_ERR_INVALID, "node %s: input %zu is not a string",
                                        node->name, k);
                node->inputs[node->ninputs++] = json_string_value(in);
            }
        }
    }
    return VD_OK;
}

vd_status vd_tfjs_load(const char *path, vd_tfjs_model **out, vd_error *err)
{
    *out = NULL;
    char *text;
    size_t n;
    vd_status s = read_file(path, &text, &n, err);
    if (s != VD_OK) return s;
    if (vd_jsmodule_is_js(path)) {
        char *json;
        s = vd_jsmodule_object_json(text, n, &json, err);
        free(text);
        if (s != VD_OK) return s;
        text = json;
        n = strlen(json);
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, n, 0, &jerr);
    free(text);
    if (!root)
        return vd_error_set(err, VD_ERR_INVALID, "%s: bad JSON at line %d: %s", path, jerr.line,
                            jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return vd_error_set(err, VD_ERR_INVALID, "%s: the model JSON is not an object", path);
    }
    vd_tfjs_model *m = calloc(1, sizeof *m);
    char *dir = dir_of(path);
    if (!m || !dir) {
        free(m);
        free(dir);
        json_decref(root);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    m->root = root;
    s = load_nodes(m, err);
    if (s == VD_OK) s = load_weights(m, dir, err);
    free(dir);
    if (s != VD_OK) {
        vd_tfjs_free(m);
        return s;
    }
    *out = m;
    return VD_OK;
}

void vd_tfjs_free(vd_tfjs_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nnodes; i++)
        free(m->nodes[i].inputs);
    free(m->nodes);
    for (size_t i = 0; i < m->nweights; i++)
        free(m->weights[i].data);
    free(m->weights);
    json_decref(m->root);
    free(m);
}

const vd_tfjs_node *vd_tfjs_node_find(const vd_tfjs_model *m, const char *name)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].name, name) == 0) return &m->nodes[i];
    return NULL;
}

const vd_tfjs_weight *vd_tfjs_weight_find(const vd_tfjs_model *m, const char *name)
{
    for (size_t i = 0; i < m->nweights; i++)
        if (strcmp(m->weights[i].name, name) == 0) return &m->weights[i];
    return NULL;
}

static json_t *attr(const vd_tfjs_node *n, const char *key)
{
    return n->attr ? json_object_get(n->attr, key) : NULL;
}

int64_t vd_tfjs_attr_int(const vd_tfjs_node *n, const char *key, int64_t dflt)
{
    json_t *a = attr(n, key);
    return a ? json_int(json_object_get(a, "i"), dflt) : dflt;
}

double vd_tfjs_attr_float(const vd_tfjs_node *n, const char *key, double dflt)
{
    json_t *a = attr(n, key);
    json_t *f = a ? json_object_get(a, "f") : NULL;
    return json_is_number(f) ? json_number_value(f) : dflt;
}

int vd_tfjs_attr_bool(const vd_tfjs_node *n, const char *key, int dflt)
{
    json_t *a = attr(n, key);
    json_t *b = a ? json_object_get(a, "b") : NULL;
    return json_is_boolean(b) ? json_is_true(b) : dflt;
}

/* attr strings are base64 in TFJS JSON; a hand-written model may give plain
 * text ("SAME"), which is kept when its decoding is not printable text. */
static int b64_to_buf(const char *s, char *buf, size_t size)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    int printable = vd_base64_decode(s, strlen(s), &bytes, &len, NULL) == VD_OK && len > 0;
    for (size_t i = 0; printable && i < len; i++)
        printable = bytes[i] >= 0x20 && bytes[i] < 0x7f;
    const char *src = printable ? (const char *)bytes : s;
    size_t n = printable ? len : strlen(s);
    if (size) {
        size_t k = n < size - 1 ? n : size - 1;
        memcpy(buf, src, k);
        buf[k] = 0;
    }
    free(bytes);
    return 1;
}

int vd_tfjs_attr_string(const vd_tfjs_node *n, const char *key, char *buf, size_t size)
{
    json_t *a = attr(n, key);
    const char *s = a ? json_string_value(json_object_get(a, "s")) : NULL;
    return s ? b64_to_buf(s, buf, size) : 0;
}

int vd_tfjs_attr_ints(const vd_tfjs_node *n, const char *key, int64_t *out, int max)
{
    json_t *a = attr(n, key);
    json_t *list = a ? json_object_get(a, "list") : NULL;
    if (!json_is_object(list)) return -1;
    json_t *ints = json_object_get(list, "i");
    if (!ints) return 0; /* an empty list */
    if (!json_is_array(ints) || json_array_size(ints) > (size_t)max) return -1;
    size_t i;
    json_t *v;
    json_array_foreach(ints, i, v) out[i] = json_int(v, 0);
    return (int)json_array_size(ints);
}

int vd_tfjs_attr_list_string(const vd_tfjs_node *n, const char *key, int i, char *buf, size_t size)
{
    json_t *a = attr(n, key);
    json_t *list = a ? json_object_get(a, "list") : NULL;
    json_t *s = list ? json_object_get(list, "s") : NULL;
    if (!json_is_array(s)) return 0;
    if (i >= 0 && (size_t)i < json_array_size(s)) {
        const char *v = json_string_value(json_array_get(s, (size_t)i));
        if (!v || !b64_to_buf(v, buf, size)) buf[0] = 0;
    }
    return (int)json_array_size(s);
}

int vd_tfjs_attr_shape(const vd_tfjs_node *n, const char *key, int64_t *dims, int max)
{
    json_t *a = attr(n, key);
    json_t *shape = a ? json_object_get(a, "shape") : NULL;
    if (!json_is_object(shape) || json_is_true(json_object_get(shape, "unknownRank"))) return -1;
    json_t *dim = json_object_get(shape, "dim");
    if (!dim) return 0;
    if (!json_is_array(dim) || json_array_size(dim) > (size_t)max) return -1;
    size_t i;
    json_t *d;
    json_array_foreach(dim, i, d) dims[i] = json_int(json_object_get(d, "size"), -1);
    return (int)json_array_size(dim);
}
