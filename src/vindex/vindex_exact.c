/* vindex_exact.c: the exact kind: a contiguous matrix scored row by row with
 * vindex/dot.h (no BLAS: OpenBLAS's pthread build starts its thread pool when the
 * library is loaded, in every process that links it; docs/vindex.md), a
 * bounded heap for the best k, an id -> row map, removal by swapping the last
 * row into the hole. */
#include <stdlib.h>
#include <string.h>

#include "vindex/dot.h"
#include "vindex/vindex_int.h"

#define EMPTY_ROW UINT32_MAX
#define CHUNK     1024 /* rows scored per pass of a search */

/* ---- top k ---- */

/* Whether x is a worse hit than y (lower score; at equal score, larger id). */
static int worse(const vd_vindex_hit *x, const vd_vindex_hit *y)
{
    return x->score < y->score || (x->score == y->score && x->id > y->id);
}

static void sift_down(vd_vindex_hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        if (l < n && worse(&h[l], &h[m])) m = l;
        if (l + 1 < n && worse(&h[l + 1], &h[m])) m = l + 1;
        if (m == i) return;
        vd_vindex_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void vd_topk_push(vd_topk *t, int64_t id, float score)
{
    vd_vindex_hit x = {id, score};
    if (t->n < t->k) {
        size_t i = t->n++;
        t->h[i] = x;
        while (i > 0 && worse(&t->h[i], &t->h[(i - 1) / 2])) {
            vd_vindex_hit tmp = t->h[i];
            t->h[i] = t->h[(i - 1) / 2];
            t->h[(i - 1) / 2] = tmp;
            i = (i - 1) / 2;
        }
    } else if (t->k > 0 && worse(&t->h[0], &x)) {
        t->h[0] = x;
        sift_down(t->h, t->n, 0);
    }
}

void vd_topk_sort(vd_topk *t)
{
    /* heap sort: the worst goes to the end each step, leaving best first */
    for (size_t n = t->n; n > 1; n--) {
        vd_vindex_hit tmp = t->h[0];
        t->h[0] = t->h[n - 1];
        t->h[n - 1] = tmp;
        sift_down(t->h, n - 1, 0);
    }
}

/* ---- id -> row ---- */

static size_t slot_of(int64_t id, size_t cap)
{
    uint64_t x = (uint64_t)id;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t)x & (cap - 1);
}

static size_t map_find(const vd_idmap *m, int64_t id)
{
    if (m->cap == 0) return SIZE_MAX;
    for (size_t s = slot_of(id, m->cap);; s = (s + 1) & (m->cap - 1)) {
        if (m->rows[s] == EMPTY_ROW) return SIZE_MAX;
        if (m->keys[s] == id) return s;
    }
}

static void map_set(vd_idmap *m, int64_t id, uint32_t row)
{
    size_t s = slot_of(id, m->cap);
    while (m->rows[s] != EMPTY_ROW && m->keys[s] != id)
        s = (s + 1) & (m->cap - 1);
    if (m->rows[s] == EMPTY_ROW) m->used++;
    m->keys[s] = id;
    m->rows[s] = row;
}

/* Deletes slot s, moving later entries of its probe run back (no tombstones). */
static void map_del(vd_idmap *m, size_t s)
{
    size_t mask = m->cap - 1;
    m->rows[s] = EMPTY_ROW;
    m->used--;
    for (size_t j = (s + 1) & mask; m->rows[j] != EMPTY_ROW; j = (j + 1) & mask) {
        size_t home = slot_of(m->keys[j], m->cap);
        /* j's entry may fill s when s lies cyclically in [home, j) */
        if (((j - home) & mask) >= ((j - s) & mask)) {
            m->keys[s] = m->keys[j];
            m->rows[s] = m->rows[j];
            m->rows[j] = EMPTY_ROW;
            s = j;
        }
    }
}

static vd_status map_grow(vd_idmap *m, size_t want, vd_error *err)
{
    if (want * 2 <= m->cap) return VD_OK;
    size_t cap = m->cap ? m->cap : 64;
    while (cap < want * 2)
        cap *= 2;
    vd_idmap nm = {malloc(cap * sizeof(int64_t)), malloc(cap * sizeof(uint32_t)), cap, 0};
    if (!nm.keys || !nm.rows) {
        free(nm.keys);
        free(nm.rows);
        return vd_error_set(err, VD_ERR_NOMEM, "vindex: id map of %zu slots", cap);
    }
    memset(nm.rows, 0xff, cap * sizeof(uint32_t));
    for (size_t s = 0; s < m->cap; s++)
        if (m->rows[s] != EMPTY_ROW) map_set(&nm, m->keys[s], m->rows[s]);
    free(m->keys);
    free(m->rows);
    *m = nm;
    return VD_OK;
}

/* ---- the exact kind ---- */

vd_status vd_exact_reserve(vd_vindex *ix, size_t more, vd_error *err)
{
    size_t want = ix->n + more;
    if (want >= EMPTY_ROW || want > SIZE_MAX / sizeof(float) / (size_t)ix->dim)
        return vd_error_set(err, VD_ERR_LIMIT, "vindex: %zu vectors is too many", want);
    vd_status st = map_grow(&ix->map, want, err);
    if (st != VD_OK) return st;
    if (want <= ix->cap) return VD_OK;
    size_t cap = ix->cap ? ix->cap : 256;
    while (cap < want)
        cap = cap / 2 * 3;
    float *mat = realloc(ix->mat, cap * (size_t)ix->dim * sizeof(float));
    if (!mat) return vd_error_set(err, VD_ERR_NOMEM, "vindex: %zu vectors", cap);
    ix->mat = mat;
    int64_t *ids = realloc(ix->ids, cap * sizeof(int64_t));
    if (!ids) return vd_error_set(err, VD_ERR_NOMEM, "vindex: %zu ids", cap);
    ix->ids = ids;
    ix->cap = cap;
    return VD_OK;
}

vd_status vd_exact_put(vd_vindex *ix, int64_t id, const float *v, vd_error *err)
{
    size_t s = map_find(&ix->map, id);
    size_t row = s != SIZE_MAX ? ix->map.rows[s] : ix->n;
    if (row == ix->n) {
        if (ix->n >= ix->cap) return vd_error_set(err, VD_ERR_INTERNAL, "vindex: no room reserved");
        map_set(&ix->map, id, (uint32_t)row);
        ix->ids[row] = id;
        ix->n++;
    }
    memcpy(ix->mat + row * (size_t)ix->dim, v, (size_t)ix->dim * sizeof(float));
    return VD_OK;
}

void vd_exact_remove(vd_vindex *ix, int64_t id)
{
    size_t s = map_find(&ix->map, id);
    if (s == SIZE_MAX) return;
    size_t row = ix->map.rows[s], last = ix->n - 1;
    map_del(&ix->map, s);
    if (row != last) {
        memcpy(ix->mat + row * (size_t)ix->dim, ix->mat + last * (size_t)ix->dim,
               (size_t)ix->dim * sizeof(float));
        ix->ids[row] = ix->ids[last];
        map_set(&ix->map, ix->ids[row], (uint32_t)row);
    }
    ix->n--;
}

int vd_exact_contains(const vd_vindex *ix, int64_t id)
{
    return map_find(&ix->map, id) != SIZE_MAX;
}

void vd_exact_free(vd_vindex *ix)
{
    free(ix->mat);
    free(ix->ids);
    free(ix->map.keys);
    free(ix->map.rows);
}

vd_status vd_exact_search(const vd_vindex *ix, const float *q, size_t k,
                          int (*keep)(void *, int64_t), void *ud, vd_vindex_hit *hits, size_t *n,
                          vd_error *err)
{
    (void)err;
    float scores[CHUNK];
    vd_topk t = {hits, 0, k};
    for (size_t r0 = 0; r0 < ix->n; r0 += CHUNK) {
        size_t rows = ix->n - r0 < CHUNK ? ix->n - r0 : CHUNK;
        vd_dots(ix->mat + r0 * (size_t)ix->dim, rows, (size_t)ix->dim, q, scores);
        for (size_t r = 0; r < rows; r++) {
            int64_t id = ix->ids[r0 + r];
            if (t.n == k && scores[r] < t.h[0].score) continue;
            if (keep && !keep(ud, id)) continue;
            vd_topk_push(&t, id, scores[r]);
        }
    }
    vd_topk_sort(&t);
    *n = t.n;
    return VD_OK;
}

#define BLOCK 16

vd_status vd_exact_neighbours(const vd_vindex *ix, float min_score, size_t per,
                              vd_vindex_pair **out, size_t *n, size_t *cap, vd_error *err)
{
    size_t k = per + 1; /* a vector is its own nearest */
    float *scores = malloc(BLOCK * CHUNK * sizeof(float));
    vd_vindex_hit *heap = malloc(BLOCK * k * sizeof(vd_vindex_hit));
    vd_status st = VD_OK;
    if (!scores || !heap) st = vd_error_set(err, VD_ERR_NOMEM, "vindex: pairs buffers");
    for (size_t q0 = 0; st == VD_OK && q0 < ix->n; q0 += BLOCK) {
        size_t nq = ix->n - q0 < BLOCK ? ix->n - q0 : BLOCK;
        vd_topk t[BLOCK];
        for (size_t j = 0; j < nq; j++)
            t[j] = (vd_topk){heap + j * k, 0, k};
        const float *qs = ix->mat + q0 * (size_t)ix->dim;
        for (size_t r0 = 0; r0 < ix->n; r0 += CHUNK) {
            size_t rows = ix->n - r0 < CHUNK ? ix->n - r0 : CHUNK;
            vd_dots_block(ix->mat + r0 * (size_t)ix->dim, rows, (size_t)ix->dim, qs, nq, scores);
            for (size_t j = 0; j < nq; j++)
                for (size_t r = 0; r < rows; r++) {
                    float s = scores[j * rows + r];
                    if (s >= min_score) vd_topk_push(&t[j], ix->ids[r0 + r], s);
                }
        }
        for (size_t j = 0; j < nq && st == VD_OK; j++) {
            int64_t a = ix->ids[q0 + j];
            size_t taken = 0;
            vd_topk_sort(&t[j]);
            for (size_t i = 0; i < t[j].n && taken < per && st == VD_OK; i++) {
                if (t[j].h[i].id == a) continue;
                taken++;
                st = vd_pairs_push(out, n, cap, a, t[j].h[i].id, t[j].h[i].score, err);
            }
        }
    }
    free(scores);
    free(heap);
    return st;
}
