/* vindex.c: the contract of vindex.h: argument checks, the two kinds behind
 * one interface, filtered search, pairs, the size policy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vindex/vindex_int.h"

static vd_status shim_status(int rc, const char *what, const char *msg, vd_error *err)
{
    if (rc == 0) return VD_OK;
    return vd_error_set(err, rc == -1 ? VD_ERR_NOMEM : VD_ERR_INTERNAL, "vindex: %s: %s", what,
                        msg[0] ? msg : "failed");
}

vd_status vd_vindex_new(int dim, vd_vindex_kind kind, vd_vindex **out, vd_error *err)
{
    *out = NULL;
    if (dim < 1 || dim > VD_VINDEX_MAX_DIM)
        return vd_error_set(err, VD_ERR_INVALID, "vindex: dimension %d is not in 1..%d", dim,
                            VD_VINDEX_MAX_DIM);
    if (kind != VD_VINDEX_EXACT && kind != VD_VINDEX_APPROX)
        return vd_error_set(err, VD_ERR_INVALID, "vindex: unknown kind %d", (int)kind);
    vd_vindex *ix = calloc(1, sizeof *ix);
    if (!ix) return vd_error_set(err, VD_ERR_NOMEM, "vindex: out of memory");
    ix->dim = dim;
    ix->kind = kind;
    ix->ef = VD_VINDEX_DEFAULT_EF;
    ix->threads = 1;
    if (kind == VD_VINDEX_APPROX) {
        char msg[256] = "";
        int rc =
            vd_hnsw_new(dim, 1024, VD_VINDEX_HNSW_M, VD_VINDEX_HNSW_EFC, ix->ef, &ix->hnsw, msg);
        if (rc != 0) {
            free(ix);
            return shim_status(rc, "new HNSW index", msg, err);
        }
    }
    *out = ix;
    return VD_OK;
}

void vd_vindex_free(vd_vindex *ix)
{
    if (!ix) return;
    vd_exact_free(ix);
    vd_hnsw_free(ix->hnsw);
    free(ix);
}

int vd_vindex_dim(const vd_vindex *ix)
{
    return ix->dim;
}

void vd_vindex_set_ef(vd_vindex *ix, size_t ef)
{
    ix->ef = ef < 1 ? 1 : ef;
    if (ix->hnsw) vd_hnsw_set_ef(ix->hnsw, ix->ef);
}

void vd_vindex_set_threads(vd_vindex *ix, int threads)
{
    ix->threads = threads < 0                       ? 1
                  : threads > VD_VINDEX_MAX_THREADS ? VD_VINDEX_MAX_THREADS
                                                    : threads;
}

/* The threads a graph build uses now (0 resolved to the online cores). */
static int build_threads(const vd_vindex *ix)
{
    if (ix->threads != 0) return ix->threads;
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : c > VD_VINDEX_MAX_THREADS ? VD_VINDEX_MAX_THREADS : (int)c;
}

vd_vindex_kind vd_vindex_kind_of(const vd_vindex *ix)
{
    return ix->kind;
}

size_t vd_vindex_count(const vd_vindex *ix)
{
    return ix->kind == VD_VINDEX_EXACT ? ix->n : vd_hnsw_live(ix->hnsw);
}

int vd_vindex_contains(const vd_vindex *ix, int64_t id)
{
    return ix->kind == VD_VINDEX_EXACT ? vd_exact_contains(ix, id) : vd_hnsw_contains(ix->hnsw, id);
}

static vd_status check_values(const float *v, int dim, double *norm2, vd_error *err)
{
    double s = 0;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(v[i]))
            return vd_error_set(err, VD_ERR_INVALID, "vector value %d is not a finite number", i);
        s += (double)v[i] * v[i];
    }
    if (!(s > 0)) return vd_error_set(err, VD_ERR_INVALID, "vector is zero");
    *norm2 = s;
    return VD_OK;
}

vd_status vd_vindex_check(const vd_vindex *ix, const float *vec, size_t nfloats, vd_error *err)
{
    double n2;
    if (nfloats != (size_t)ix->dim)
        return vd_error_set(err, VD_ERR_INVALID, "vector has %zu values, the index takes %d",
                            nfloats, ix->dim);
    if (!vec) return vd_error_set(err, VD_ERR_INVALID, "no vector");
    return check_values(vec, ix->dim, &n2, err);
}

vd_status vd_vindex_normalize(float *v, int dim, vd_error *err)
{
    double n2;
    if (dim < 1) return vd_error_set(err, VD_ERR_INVALID, "vector has no values");
    vd_status st = check_values(v, dim, &n2, err);
    if (st != VD_OK) return st;
    double inv = 1.0 / sqrt(n2);
    for (int i = 0; i < dim; i++)
        v[i] = (float)(v[i] * inv);
    return VD_OK;
}

static vd_status compact(vd_vindex *ix, vd_error *err);

typedef struct {
    int64_t id;
    size_t pos;
} id_pos;

static int id_pos_cmp(const void *x, const void *y)
{
    const id_pos *a = x, *b = y;
    if (a->id != b->id) return a->id < b->id ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int size_cmp(const void *x, const void *y)
{
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return a < b ? -1 : a > b;
}

/* The approximate kind's add: one by one when serial (or a small batch);
 * else the ids new to the graph (each id's last vector in the batch) over the
 * index's threads, and replacements and revivals one by one before them. */
static vd_status approx_add(vd_vindex *ix, size_t n, const int64_t *ids, const float *vecs,
                            vd_error *err)
{
    char msg[256] = "";
    vd_status st;
    const size_t dim = (size_t)ix->dim;
    if ((st = shim_status(vd_hnsw_reserve(ix->hnsw, n, msg), "reserve", msg, err)) != VD_OK)
        return st;
    int threads = build_threads(ix);
    if (threads <= 1 || n < VD_VINDEX_PAR_MIN) {
        for (size_t i = 0; i < n && st == VD_OK; i++)
            st = shim_status(vd_hnsw_add(ix->hnsw, ids[i], vecs + i * dim, msg), "add", msg, err);
        return st;
    }
    id_pos *ord = malloc(n * sizeof *ord);
    size_t *fresh = malloc(n * sizeof *fresh), nf = 0;
    if (!ord || !fresh) {
        free(ord);
        free(fresh);
        return vd_error_set(err, VD_ERR_NOMEM, "vindex: add of %zu", n);
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = (id_pos){ids[i], i};
    qsort(ord, n, sizeof *ord, id_pos_cmp);
    for (size_t i = 0; i < n && st == VD_OK; i++) {
        if (i + 1 < n && ord[i + 1].id == ord[i].id) continue; /* a later vector wins */
        size_t r = ord[i].pos;
        if (!vd_hnsw_known(ix->hnsw, ids[r]))
            fresh[nf++] = r;
        else
            st = shim_status(vd_hnsw_add(ix->hnsw, ids[r], vecs + r * dim, msg), "add", msg, err);
    }
    free(ord);
    qsort(fresh, nf, sizeof *fresh, size_cmp); /* the caller's order: memory read in sequence */
    if (st == VD_OK)
        st = shim_status(vd_hnsw_add_parallel(ix->hnsw, nf, ids, vecs, fresh,
                                              nf < VD_VINDEX_PAR_MIN ? 1 : threads, msg),
                         "add", msg, err);
    free(fresh);
    return st;
}

vd_status vd_vindex_add(vd_vindex *ix, size_t n, const int64_t *ids, const float *vecs,
                        vd_error *err)
{
    if (n == 0) return VD_OK;
    if (!ids || !vecs) return vd_error_set(err, VD_ERR_INVALID, "vindex: no ids or vectors");
    for (size_t i = 0; i < n; i++) {
        vd_status st = vd_vindex_check(ix, vecs + i * (size_t)ix->dim, (size_t)ix->dim, err);
        if (st != VD_OK) {
            char why[VD_ERROR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err ? err->msg : "");
            return vd_error_set(err, st, "vindex: id %lld: %s", (long long)ids[i], why);
        }
    }
    vd_status st;
    if (ix->kind == VD_VINDEX_EXACT) {
        if ((st = vd_exact_reserve(ix, n, err)) != VD_OK) return st;
        for (size_t i = 0; i < n; i++)
            if ((st = vd_exact_put(ix, ids[i], vecs + i * (size_t)ix->dim, err)) != VD_OK)
                return st;
        return VD_OK;
    }
    return approx_add(ix, n, ids, vecs, err);
}

vd_status vd_vindex_remove(vd_vindex *ix, int64_t id, vd_error *err)
{
    if (ix->kind == VD_VINDEX_EXACT) {
        vd_exact_remove(ix, id);
        return VD_OK;
    }
    if (vd_hnsw_remove(ix->hnsw, id) != 0) return VD_OK;
    size_t dead = vd_hnsw_deleted(ix->hnsw);
    if (dead >= VD_VINDEX_TOMB_MIN && dead * VD_VINDEX_TOMB_SHARE > vd_hnsw_slots(ix->hnsw))
        (void)compact(ix, err); /* on failure the tombstoned graph stays, still correct */
    vd_error_clear(err);
    return VD_OK;
}

/* Rebuilds the HNSW graph from its live vectors (drops the tombstones). */
static vd_status compact(vd_vindex *ix, vd_error *err)
{
    char msg[256] = "";
    vd_hnsw *h = NULL;
    int rc = vd_hnsw_rebuild(ix->hnsw, build_threads(ix), &h, msg);
    if (rc != 0) /* the tombstoned index still answers correctly: keep it */
        return shim_status(rc, "compact", msg, err);
    vd_hnsw_free(ix->hnsw);
    ix->hnsw = h;
    return VD_OK;
}

vd_status vd_vindex_convert(const vd_vindex *src, vd_vindex_kind kind, vd_vindex **out,
                            vd_error *err)
{
    *out = NULL;
    vd_vindex *ix = NULL;
    vd_status st = vd_vindex_new(src->dim, kind, &ix, err);
    if (st != VD_OK) return st;
    vd_vindex_set_ef(ix, src->ef);
    ix->threads = src->threads;
    if (src->kind == VD_VINDEX_EXACT) {
        st = vd_vindex_add(ix, src->n, src->ids, src->mat, err);
    } else {
        size_t live = vd_hnsw_live(src->hnsw), n = 0, dim = (size_t)src->dim;
        int64_t *ids = malloc((live + 1) * sizeof *ids);
        float *vecs = malloc((live + 1) * dim * sizeof *vecs);
        if (!ids || !vecs) st = vd_error_set(err, VD_ERR_NOMEM, "vindex: convert %zu", live);
        for (size_t i = 0; st == VD_OK && i < vd_hnsw_slots(src->hnsw); i++) {
            const float *v;
            if (!vd_hnsw_slot(src->hnsw, i, &ids[n], &v)) continue;
            memcpy(vecs + n++ * dim, v, dim * sizeof *vecs);
        }
        if (st == VD_OK) st = vd_vindex_add(ix, n, ids, vecs, err);
        free(ids);
        free(vecs);
    }
    if (st != VD_OK) {
        vd_vindex_free(ix);
        return st;
    }
    *out = ix;
    return VD_OK;
}

/* The approximate kind's filtered search: asks the graph for more until k are
 * kept or it has nothing more to give. */
static vd_status approx_search(const vd_vindex *ix, const float *q, size_t k,
                               int (*keep)(void *, int64_t), void *ud, vd_vindex_hit *hits,
                               size_t *n, vd_error *err)
{
    size_t live = vd_hnsw_live(ix->hnsw), want = keep ? 2 * k : k;
    vd_status st = VD_OK;
    for (;;) {
        if (want > live) want = live;
        int64_t *labels = malloc((want + 1) * sizeof(int64_t));
        float *scores = malloc((want + 1) * sizeof(float));
        size_t got = 0, kept = 0;
        char msg[256] = "";
        if (!labels || !scores) {
            st = vd_error_set(err, VD_ERR_NOMEM, "vindex: search of %zu", want);
        } else {
            st = shim_status(vd_hnsw_search(ix->hnsw, q, want, labels, scores, &got, msg), "search",
                             msg, err);
            for (size_t i = 0; st == VD_OK && i < got && kept < k; i++)
                if (!keep || keep(ud, labels[i]))
                    hits[kept++] = (vd_vindex_hit){labels[i], scores[i]};
        }
        free(labels);
        free(scores);
        if (st != VD_OK) return st;
        if (kept == k || got < want || want >= live) {
            /* the graph gives best first; equal scores by id, as the exact kind */
            for (size_t i = 1; i < kept; i++)
                for (size_t j = i;
                     j > 0 && hits[j - 1].score == hits[j].score && hits[j - 1].id > hits[j].id;
                     j--) {
                    vd_vindex_hit x = hits[j];
                    hits[j] = hits[j - 1];
                    hits[j - 1] = x;
                }
            *n = kept;
            return VD_OK;
        }
        want *= 4;
    }
}

vd_status vd_vindex_search(const vd_vindex *ix, const float *query, size_t k,
                           int (*keep)(void *ud, int64_t id), void *ud, vd_vindex_hit *hits,
                           size_t *n, vd_error *err)
{
    *n = 0;
    if (k == 0 || k > VD_VINDEX_MAX_K)
        return vd_error_set(err, VD_ERR_INVALID, "k must be in 1..%d, not %zu", VD_VINDEX_MAX_K, k);
    vd_status st = vd_vindex_check(ix, query, (size_t)ix->dim, err);
    if (st != VD_OK) return st;
    if (vd_vindex_count(ix) == 0) return VD_OK;
    if (ix->kind == VD_VINDEX_EXACT) return vd_exact_search(ix, query, k, keep, ud, hits, n, err);
    return approx_search(ix, query, k, keep, ud, hits, n, err);
}

vd_status vd_pairs_push(vd_vindex_pair **out, size_t *n, size_t *cap, int64_t a, int64_t b,
                        float score, vd_error *err)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        vd_vindex_pair *p = realloc(*out, nc * sizeof *p);
        if (!p) return vd_error_set(err, VD_ERR_NOMEM, "vindex: %zu pairs", nc);
        *out = p;
        *cap = nc;
    }
    (*out)[(*n)++] = a < b ? (vd_vindex_pair){a, b, score} : (vd_vindex_pair){b, a, score};
    return VD_OK;
}

static vd_status approx_neighbours(const vd_vindex *ix, float min_score, size_t per,
                                   vd_vindex_pair **out, size_t *n, size_t *cap, vd_error *err)
{
    size_t want = per + 1;
    int64_t *labels = malloc(want * sizeof(int64_t));
    float *scores = malloc(want * sizeof(float));
    vd_status st = VD_OK;
    if (!labels || !scores) st = vd_error_set(err, VD_ERR_NOMEM, "vindex: pairs buffers");
    for (size_t i = 0; st == VD_OK && i < vd_hnsw_slots(ix->hnsw); i++) {
        int64_t a;
        const float *v;
        size_t got = 0, taken = 0;
        char msg[256] = "";
        if (!vd_hnsw_slot(ix->hnsw, i, &a, &v)) continue;
        st = shim_status(vd_hnsw_search(ix->hnsw, v, want, labels, scores, &got, msg), "search",
                         msg, err);
        for (size_t j = 0; st == VD_OK && j < got && taken < per; j++) {
            if (labels[j] == a) continue;
            taken++;
            if (scores[j] >= min_score)
                st = vd_pairs_push(out, n, cap, a, labels[j], scores[j], err);
        }
    }
    free(labels);
    free(scores);
    return st;
}

static int pair_cmp(const void *x, const void *y)
{
    const vd_vindex_pair *a = x, *b = y;
    if (a->a != b->a) return a->a < b->a ? -1 : 1;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return 0;
}

vd_status vd_vindex_pairs(const vd_vindex *ix, float min_score, size_t per_vector,
                          vd_vindex_pair **pairs, size_t *n, vd_error *err)
{
    *pairs = NULL;
    *n = 0;
    if (per_vector == 0 || per_vector > VD_VINDEX_MAX_K || isnan(min_score))
        return vd_error_set(err, VD_ERR_INVALID, "vindex: per_vector must be in 1..%d",
                            VD_VINDEX_MAX_K);
    vd_vindex_pair *out = NULL;
    size_t len = 0, cap = 0;
    vd_status st = ix->kind == VD_VINDEX_EXACT
                       ? vd_exact_neighbours(ix, min_score, per_vector, &out, &len, &cap, err)
                       : approx_neighbours(ix, min_score, per_vector, &out, &len, &cap, err);
    if (st != VD_OK) {
        free(out);
        return st;
    }
    if (len > 1) qsort(out, len, sizeof *out, pair_cmp);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        if (w > 0 && out[w - 1].a == out[i].a && out[w - 1].b == out[i].b) {
            /* both directions found it: keep the higher of the two float sums */
            if (out[i].score > out[w - 1].score) out[w - 1].score = out[i].score;
            continue;
        }
        out[w++] = out[i];
    }
    if (w == 0) {
        free(out);
        out = NULL;
    }
    *pairs = out;
    *n = w;
    return VD_OK;
}

vd_vindex_kind vd_vindex_kind_for(size_t n, int dim)
{
    /* Exact while one search scans at most 32 M floats (128 MB): ~18k vectors
     * of 1792, ~32k of 1024. From bench/search (docs/vindex.md, "The size
     * policy"; numbers in docs/benchmarks.md). */
    const size_t max_scan = (size_t)32 << 20;
    size_t d = dim > 0 ? (size_t)dim : 1;
    return n <= max_scan / d ? VD_VINDEX_EXACT : VD_VINDEX_APPROX;
}
