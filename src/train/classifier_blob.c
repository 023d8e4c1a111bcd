/* classifier_blob.c: a classifier as a self-contained little-endian blob and back
 * (classifier.h: vd_classifier_serialize, vd_classifier_deserialize). */
#include <jansson.h>
#include <linear.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "train/classifier_impl.h"

#define BLOB_MAGIC   "VDCLF\0\0\1"
#define BLOB_VERSION 1u

/* ---- serialisation --------------------------------------------------------- */
/* Layout (little-endian): magic[8] "VDCLF\0\0\1", u32 version, u32 algorithm,
 * u32 k, u32 dim, f64 threshold, f64 C, k x (u32 len, bytes) labels, then
 *   logreg:   i32 nr_class, i32 nr_feature, f64 bias, nr_class x i32 label,
 *             u32 nr_w, (nr_feature + 1) * nr_w x f64 w
 *   centroid: k * dim x f64 centroids. */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    int oom;
} wbuf;

static void put_bytes(wbuf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u64(wbuf *b, uint64_t v, int bytes)
{
    unsigned char t[8];
    for (int i = 0; i < bytes; i++)
        t[i] = (unsigned char)(v >> (8 * i));
    put_bytes(b, t, (size_t)bytes);
}

static void put_u32(wbuf *b, uint32_t v)
{
    put_u64(b, v, 4);
}

static void put_f64(wbuf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    put_u64(b, u, 8);
}

vd_status vd_classifier_serialize(const vd_classifier *c, void **blob, size_t *len, vd_error *err)
{
    wbuf b = {0};
    put_bytes(&b, BLOB_MAGIC, 8);
    put_u32(&b, BLOB_VERSION);
    put_u32(&b, (uint32_t)c->algorithm);
    put_u32(&b, (uint32_t)c->k);
    put_u32(&b, (uint32_t)c->dim);
    put_f64(&b, c->threshold);
    put_f64(&b, c->C);
    for (size_t i = 0; i < c->k; i++) {
        size_t l = strlen(c->labels[i]);
        put_u32(&b, (uint32_t)l);
        put_bytes(&b, c->labels[i], l);
    }
    if (c->algorithm == VD_CLF_LOGREG) {
        const struct model *m = c->model;
        put_u32(&b, (uint32_t)m->nr_class);
        put_u32(&b, (uint32_t)m->nr_feature);
        put_f64(&b, m->bias);
        for (int i = 0; i < m->nr_class; i++)
            put_u32(&b, (uint32_t)m->label[i]);
        uint32_t nr_w = m->nr_class == 2 ? 1 : (uint32_t)m->nr_class;
        put_u32(&b, nr_w);
        size_t nw = (size_t)(m->nr_feature + 1) * nr_w;
        for (size_t i = 0; i < nw; i++)
            put_f64(&b, m->w[i]);
    } else {
        for (size_t i = 0; i < c->k * c->dim; i++)
            put_f64(&b, c->centroids[i]);
    }
    if (b.oom) {
        free(b.p);
        return vd_error_set(err, VD_ERR_NOMEM, "serialize: out of memory");
    }
    *blob = b.p;
    *len = b.len;
    return VD_OK;
}

typedef struct {
    const unsigned char *p;
    size_t len, off;
    int bad;
} rbuf;

static uint64_t get_u64(rbuf *b, int bytes)
{
    if (b->bad || b->len - b->off < (size_t)bytes) {
        b->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)b->p[b->off + (size_t)i] << (8 * i);
    b->off += (size_t)bytes;
    return v;
}

static uint32_t get_u32(rbuf *b)
{
    return (uint32_t)get_u64(b, 4);
}

static double get_f64(rbuf *b)
{
    uint64_t u = get_u64(b, 8);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

vd_status vd_classifier_deserialize(const void *blob, size_t len, vd_classifier **out,
                                    vd_error *err)
{
    *out = NULL;
    rbuf b = {.p = blob, .len = len};
    if (!blob || len < 8 || memcmp(blob, BLOB_MAGIC, 8) != 0)
        return vd_error_set(err, VD_ERR_INVALID, "classifier blob: bad magic");
    b.off = 8;
    uint32_t version = get_u32(&b);
    if (!b.bad && version != BLOB_VERSION)
        return vd_error_set(err, VD_ERR_INVALID, "classifier blob: version %u, expected %u",
                            version, BLOB_VERSION);
    uint32_t alg = get_u32(&b), k = get_u32(&b), dim = get_u32(&b);
    double threshold = get_f64(&b), C = get_f64(&b);
    if (b.bad) return vd_error_set(err, VD_ERR_INVALID, "classifier blob: truncated header");
    if ((alg != VD_CLF_LOGREG && alg != VD_CLF_CENTROID) || k < 2 || dim == 0 || dim > (1u << 24) ||
        k > len || !isfinite(threshold) || !isfinite(C))
        return vd_error_set(err, VD_ERR_INVALID,
                            "classifier blob: bad header (algorithm %u, %u labels, dim %u)", alg, k,
                            dim);
    vd_classifier *c = calloc(1, sizeof *c);
    if (!c) return vd_error_set(err, VD_ERR_NOMEM, "deserialize: out of memory");
    c->algorithm = (vd_clf_algorithm)alg;
    c->dim = dim;
    c->threshold = threshold;
    c->C = C;
    c->labels = calloc(k, sizeof *c->labels);
    if (!c->labels) goto nomem;
    c->k = k;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t l = get_u32(&b);
        if (b.bad || l == 0 || b.len - b.off < l) goto bad;
        c->labels[i] = malloc((size_t)l + 1);
        if (!c->labels[i]) goto nomem;
        memcpy(c->labels[i], b.p + b.off, l);
        c->labels[i][l] = 0;
        b.off += l;
        if (strlen(c->labels[i]) != l || (i > 0 && strcmp(c->labels[i - 1], c->labels[i]) >= 0))
            goto bad;
    }
    if (alg == VD_CLF_LOGREG) {
        struct model *m = calloc(1, sizeof *m);
        if (!m) goto nomem;
        c->model = m;
        m->param.solver_type = L2R_LR;
        m->nr_class = (int)get_u32(&b);
        m->nr_feature = (int)get_u32(&b);
        m->bias = get_f64(&b);
        if (b.bad || m->nr_class != (int)k || m->nr_feature != (int)dim || m->bias != 1.0) goto bad;
        m->label = malloc(k * sizeof *m->label);
        if (!m->label) goto nomem;
        unsigned char *seen = calloc(k, 1);
        if (!seen) goto nomem;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t l = get_u32(&b);
            if (l >= k || seen[l]) b.bad = 1;
            if (!b.bad) seen[l] = 1;
            m->label[i] = (int)l;
        }
        free(seen);
        uint32_t nr_w = get_u32(&b);
        if (b.bad || nr_w != (k == 2 ? 1 : k)) goto bad;
        size_t nw = ((size_t)dim + 1) * nr_w;
        if ((b.len - b.off) / 8 < nw) goto bad;
        m->w = malloc(nw * sizeof *m->w);
        if (!m->w) goto nomem;
        for (size_t i = 0; i < nw; i++)
            if (!isfinite(m->w[i] = get_f64(&b))) goto bad;
    } else {
        size_t nc = (size_t)k * dim;
        if ((b.len - b.off) / 8 < nc) goto bad;
        c->centroids = malloc(nc * sizeof *c->centroids);
        if (!c->centroids) goto nomem;
        for (size_t i = 0; i < nc; i++)
            if (!isfinite(c->centroids[i] = get_f64(&b))) goto bad;
    }
    if (b.bad || b.off != b.len) goto bad;
    *out = c;
    return VD_OK;
bad:
    vd_classifier_free(c);
    return vd_error_set(err, VD_ERR_INVALID, "classifier blob: malformed or truncated");
nomem:
    vd_classifier_free(c);
    return vd_error_set(err, VD_ERR_NOMEM, "deserialize: out of memory");
}
