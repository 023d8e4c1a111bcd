/* test_vindex.c: the vector index (vindex/vindex.h), both kinds.
 *
 * Exact search is compared with a brute-force reference written here (double
 * sums, a full sort); the approximate kind with the exact kind on a clustered
 * set (recall@10, a quality bound, not a timing). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdtest.h"
#include "vindex/vindex.h"

#include "vindex_data.h"

static int64_t *seq_ids(size_t n, int64_t base)
{
    int64_t *ids = malloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++)
        ids[i] = base + (int64_t)i * 7;
    return ids;
}

typedef struct {
    int64_t id;
    double s;
} ref_hit;
static int ref_cmp(const void *x, const void *y)
{
    const ref_hit *a = x, *b = y;
    if (a->s != b->s) return a->s < b->s ? 1 : -1;
    return a->id < b->id ? -1 : a->id > b->id;
}
/* brute force: every score in double, sorted */
static ref_hit *brute(const float *v, const int64_t *ids, size_t n, int dim, const float *q)
{
    ref_hit *r = malloc(n * sizeof *r);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < dim; j++)
            s += (double)v[i * dim + j] * q[j];
        r[i] = (ref_hit){ids[i], s};
    }
    qsort(r, n, sizeof *r, ref_cmp);
    return r;
}

static vd_vindex *filled(vd_vindex_kind kind, const float *v, const int64_t *ids, size_t n, int dim)
{
    vd_vindex *ix = NULL;
    vd_error err;
    if (vd_vindex_new(dim, kind, &ix, &err) != VD_OK) return NULL;
    if (vd_vindex_add(ix, n, ids, v, &err) != VD_OK) {
        fprintf(stderr, "add: %s\n", err.msg);
        vd_vindex_free(ix);
        return NULL;
    }
    return ix;
}

VD_TEST(exact_equals_brute_force)
{
    const size_t n = 3000;
    const int dims[] = {1, 7, 64, 133};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        int dim = dims[d];
        float *v = clustered(n, dim, 20, 0.5f), *q = clustered(5, dim, 3, 1.0f);
        int64_t *ids = seq_ids(n, -500);
        vd_vindex *ix = filled(VD_VINDEX_EXACT, v, ids, n, dim);
        CHECK(ix);
        CHECK_EQ_INT(vd_vindex_count(ix), n);
        for (int t = 0; t < 5; t++) {
            vd_vindex_hit hits[50];
            size_t got = 0;
            vd_error err;
            CHECK_OK(vd_vindex_search(ix, q + t * dim, 50, NULL, NULL, hits, &got, &err));
            CHECK_EQ_INT(got, 50);
            ref_hit *r = brute(v, ids, n, dim, q + t * dim);
            for (size_t i = 0; i < got; i++) {
                /* same scores in order; ids equal unless two scores tie within rounding */
                CHECK(fabs(hits[i].score - r[i].s) < 1e-4);
                if (i + 1 < got && i > 0 && r[i].s - r[i + 1].s > 1e-4 &&
                    r[i - 1].s - r[i].s > 1e-4)
                    CHECK_EQ_INT(hits[i].id, r[i].id);
            }
            free(r);
        }
        vd_vindex_free(ix);
        free(v);
        free(q);
        free(ids);
    }
}

static void duplicate_first(vd_vindex_kind kind)
{
    const size_t n = 2000;
    const int dim = 96;
    float *v = clustered(n, dim, 10, 0.3f);
    int64_t *ids = seq_ids(n, 1);
    vd_vindex *ix = filled(kind, v, ids, n, dim);
    CHECK(ix);
    for (size_t i = 0; i < n; i += 97) {
        vd_vindex_hit hits[5];
        size_t got;
        vd_error err;
        CHECK_OK(vd_vindex_search(ix, v + i * dim, 5, NULL, NULL, hits, &got, &err));
        CHECK_EQ_INT(got, 5);
        CHECK_EQ_INT(hits[0].id, ids[i]);
        CHECK(fabsf(hits[0].score - 1.0f) < 1e-4f);
        for (size_t j = 1; j < got; j++)
            CHECK(hits[j].score <= hits[j - 1].score);
    }
    vd_vindex_free(ix);
    free(v);
    free(ids);
}

VD_TEST(exact_duplicate_is_first)
{
    duplicate_first(VD_VINDEX_EXACT);
}

VD_TEST(approx_duplicate_is_first)
{
    duplicate_first(VD_VINDEX_APPROX);
}

static void replace_and_remove(vd_vindex_kind kind)
{
    const size_t n = 500;
    const int dim = 32;
    float *v = clustered(n, dim, 5, 0.5f), *w = clustered(1, dim, 1, 1.0f);
    int64_t *ids = seq_ids(n, 10);
    vd_vindex *ix = filled(kind, v, ids, n, dim);
    vd_error err;
    vd_vindex_hit hits[10];
    size_t got;
    CHECK(ix);
    /* replace id ids[3] by w: found first for w, count unchanged */
    CHECK_OK(vd_vindex_add(ix, 1, &ids[3], w, &err));
    CHECK_EQ_INT(vd_vindex_count(ix), n);
    CHECK_OK(vd_vindex_search(ix, w, 1, NULL, NULL, hits, &got, &err));
    CHECK_EQ_INT(hits[0].id, ids[3]);
    CHECK(fabsf(hits[0].score - 1.0f) < 1e-4f);
    /* remove: never returned, count down, unknown id a no-op; add again revives */
    for (size_t i = 0; i < n; i += 3)
        CHECK_OK(vd_vindex_remove(ix, ids[i], &err));
    CHECK_OK(vd_vindex_remove(ix, 999999, &err));
    CHECK_EQ_INT(vd_vindex_count(ix), n - (n + 2) / 3);
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(vd_vindex_contains(ix, ids[i]), i % 3 != 0);
        if (i % 25 != 0) continue;
        CHECK_OK(vd_vindex_search(ix, v + i * dim, 10, NULL, NULL, hits, &got, &err));
        CHECK_EQ_INT(got, 10);
        for (size_t j = 0; j < got; j++)
            CHECK((hits[j].id - 10) / 7 % 3 != 0);
    }
    CHECK_OK(vd_vindex_add(ix, 1, &ids[0], v, &err));
    CHECK_OK(vd_vindex_search(ix, v, 1, NULL, NULL, hits, &got, &err));
    CHECK_EQ_INT(hits[0].id, ids[0]);
    /* remove everything: searches answer nothing */
    for (size_t i = 0; i < n; i++)
        CHECK_OK(vd_vindex_remove(ix, ids[i], &err));
    CHECK_EQ_INT(vd_vindex_count(ix), 0);
    CHECK_OK(vd_vindex_search(ix, v, 10, NULL, NULL, hits, &got, &err));
    CHECK_EQ_INT(got, 0);
    vd_vindex_free(ix);
    free(v);
    free(w);
    free(ids);
}

VD_TEST(exact_replace_and_remove)
{
    replace_and_remove(VD_VINDEX_EXACT);
}

VD_TEST(approx_replace_and_remove)
{
    replace_and_remove(VD_VINDEX_APPROX);
}

static int keep_odd(void *ud, int64_t id)
{
    (*(int *)ud)++;
    return (id & 1) != 0;
}
static int keep_rare(void *ud, int64_t id)
{
    (void)ud;
    return id % 1000 == 0;
}

static void keep_filter(vd_vindex_kind kind)
{
    const size_t n = 4000;
    const int dim = 48;
    float *v = clustered(n, dim, 8, 0.4f);
    int64_t *ids = malloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)i;
    vd_vindex *ix = filled(kind, v, ids, n, dim);
    vd_error err;
    vd_vindex_hit hits[20];
    size_t got;
    int calls = 0;
    CHECK(ix);
    CHECK_OK(vd_vindex_search(ix, v, 20, keep_odd, &calls, hits, &got, &err));
    CHECK_EQ_INT(got, 20);
    CHECK(calls >= 20);
    for (size_t j = 0; j < got; j++)
        CHECK(hits[j].id & 1);
    /* a filter keeping 4 ids of 4000: all 4 found even though k is 20 */
    CHECK_OK(vd_vindex_search(ix, v + 5 * dim, 20, keep_rare, NULL, hits, &got, &err));
    CHECK_EQ_INT(got, 4);
    for (size_t j = 0; j < got; j++)
        CHECK(hits[j].id % 1000 == 0);
    vd_vindex_free(ix);
    free(v);
    free(ids);
}

VD_TEST(exact_keep_filter_fills_k)
{
    keep_filter(VD_VINDEX_EXACT);
}

VD_TEST(approx_keep_filter_fills_k)
{
    keep_filter(VD_VINDEX_APPROX);
}

static void pairs_found(vd_vindex_kind kind)
{
    /* 300 random vectors; ids 1000+i are near copies of i for i < 40 */
    const size_t base = 300, dup = 40;
    const int dim = 64;
    float *v = malloc((base + dup) * dim * sizeof(float));
    int64_t *ids = malloc((base + dup) * sizeof(int64_t));
    vd_error err;
    for (size_t i = 0; i < base * dim; i++)
        v[i] = gauss();
    for (size_t i = 0; i < base; i++) {
        vd_vindex_normalize(v + i * dim, dim, &err);
        ids[i] = (int64_t)i;
    }
    for (size_t i = 0; i < dup; i++) {
        for (int j = 0; j < dim; j++)
            v[(base + i) * dim + j] = v[i * dim + j] + 0.01f * gauss();
        vd_vindex_normalize(v + (base + i) * dim, dim, &err);
        ids[base + i] = 1000 + (int64_t)i;
    }
    vd_vindex *ix = filled(kind, v, ids, base + dup, dim);
    vd_vindex_pair *p = NULL;
    size_t np = 0;
    CHECK(ix);
    CHECK_OK(vd_vindex_pairs(ix, 0.95f, 8, &p, &np, &err));
    CHECK_EQ_INT(np, dup);
    for (size_t i = 0; i < np; i++) {
        CHECK_EQ_INT(p[i].a, (int64_t)i);
        CHECK_EQ_INT(p[i].b, 1000 + (int64_t)i);
        CHECK(p[i].score > 0.95f && p[i].score <= 1.0001f);
    }
    free(p);
    /* every pair at min_score -1 with per_vector 1: each vector's nearest */
    CHECK_OK(vd_vindex_pairs(ix, -1.0f, 1, &p, &np, &err));
    CHECK(np >= dup && np <= base + dup);
    for (size_t i = 1; i < np; i++)
        CHECK(p[i - 1].a < p[i].a || (p[i - 1].a == p[i].a && p[i - 1].b < p[i].b));
    free(p);
    CHECK_EQ_INT(vd_vindex_pairs(ix, 0.5f, 0, &p, &np, &err), VD_ERR_INVALID);
    vd_vindex_free(ix);
    free(v);
    free(ids);
}

/* No pair at all (empty index, or none close enough): *pairs NULL, *n 0 (the
 * sort of nothing was a null pointer to qsort: UBSan, found by fuzz_vindex). */
VD_TEST(pairs_none)
{
    for (int kind = 0; kind < 2; kind++) {
        vd_vindex *ix = NULL;
        vd_vindex_pair *p = (vd_vindex_pair *)&kind;
        size_t np = 7;
        vd_error err;
        float v[8] = {1, 0, 0, 0, 0, 1, 0, 0};
        int64_t ids[2] = {1, 2};
        CHECK_OK(vd_vindex_new(4, (vd_vindex_kind)kind, &ix, &err));
        CHECK_OK(vd_vindex_pairs(ix, 0.5f, 4, &p, &np, &err));
        CHECK(p == NULL && np == 0);
        CHECK_OK(vd_vindex_add(ix, 2, ids, v, &err));
        CHECK_OK(vd_vindex_pairs(ix, 0.5f, 4, &p, &np, &err));
        CHECK(p == NULL && np == 0);
        vd_vindex_free(ix);
    }
}

VD_TEST(exact_pairs)
{
    pairs_found(VD_VINDEX_EXACT);
}

VD_TEST(approx_pairs)
{
    pairs_found(VD_VINDEX_APPROX);
}

VD_TEST(bad_vectors_rejected)
{
    const int dim = 4;
    vd_vindex *ix = NULL;
    vd_error err;
    CHECK_OK(vd_vindex_new(dim, VD_VINDEX_EXACT, &ix, &err));
    int64_t ids[3] = {1, 2, 3};
    float good[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    float bad[12];
    memcpy(bad, good, sizeof bad);
    bad[9] = NAN;
    CHECK_EQ_INT(vd_vindex_add(ix, 3, ids, bad, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_vindex_count(ix), 0);
    bad[9] = INFINITY;
    CHECK_EQ_INT(vd_vindex_add(ix, 3, ids, bad, &err), VD_ERR_INVALID);
    memset(bad + 8, 0, 4 * sizeof(float));
    CHECK_EQ_INT(vd_vindex_add(ix, 3, ids, bad, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_vindex_count(ix), 0);
    CHECK_OK(vd_vindex_add(ix, 3, ids, good, &err));
    /* wrong count of values: the one check the API uses */
    CHECK_EQ_INT(vd_vindex_check(ix, good, 3, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_vindex_check(ix, good, 5, &err), VD_ERR_INVALID);
    CHECK_OK(vd_vindex_check(ix, good, 4, &err));
    vd_vindex_hit hits[2];
    size_t got;
    CHECK_EQ_INT(vd_vindex_search(ix, good, 0, NULL, NULL, hits, &got, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_vindex_search(ix, good, VD_VINDEX_MAX_K + 1, NULL, NULL, hits, &got, &err),
                 VD_ERR_INVALID);
    CHECK_EQ_INT(vd_vindex_search(ix, bad + 8, 1, NULL, NULL, hits, &got, &err), VD_ERR_INVALID);
    CHECK_OK(vd_vindex_search(ix, good + 4, 2, NULL, NULL, hits, &got, &err));
    CHECK_EQ_INT(got, 2);
    CHECK_EQ_INT(hits[0].id, 2);
    vd_vindex_free(ix);
    CHECK_EQ_INT(vd_vindex_new(0, VD_VINDEX_EXACT, &ix, &err), VD_ERR_INVALID);
    CHECK(ix == NULL);
    float z[3] = {0, 0, 0};
    CHECK_EQ_INT(vd_vindex_normalize(z, 3, &err), VD_ERR_INVALID);
}

static int same_results(vd_vindex *a, vd_vindex *b, const float *qs, size_t nq, int dim)
{
    for (size_t i = 0; i < nq; i++) {
        vd_vindex_hit ha[10], hb[10];
        size_t na, nb;
        vd_error err;
        if (vd_vindex_search(a, qs + i * dim, 10, NULL, NULL, ha, &na, &err) != VD_OK) return 0;
        if (vd_vindex_search(b, qs + i * dim, 10, NULL, NULL, hb, &nb, &err) != VD_OK) return 0;
        if (na != nb) return 0;
        for (size_t j = 0; j < na; j++)
            if (ha[j].id != hb[j].id || ha[j].score != hb[j].score) return 0;
    }
    return 1;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(*len ? *len : 1);
    if (fread(b, 1, *len, f) != *len) *len = 0;
    fclose(f);
    return b;
}

static void spit(const char *path, const char *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
}

static void round_trip(vd_vindex_kind kind)
{
    const size_t n = 1500;
    const int dim = 40;
    float *v = clustered(n, dim, 12, 0.4f), *q = clustered(30, dim, 5, 0.8f);
    int64_t *ids = seq_ids(n, -3);
    vd_vindex *ix = filled(kind, v, ids, n, dim), *back = NULL;
    vd_error err;
    char path[512], bad[512];
    uint64_t seq = 0;
    CHECK(ix);
    for (size_t i = 0; i < n; i += 5)
        CHECK_OK(vd_vindex_remove(ix, ids[i], &err));
    snprintf(path, sizeof path, "%s/ix.vdx", vd_test_tmpdir());
    snprintf(bad, sizeof bad, "%s/bad.vdx", vd_test_tmpdir());
    CHECK_OK(vd_vindex_save(ix, path, 0x1234567890abcdefULL, &err));
    CHECK_OK(vd_vindex_load(path, &back, &seq, &err));
    CHECK(seq == 0x1234567890abcdefULL);
    CHECK_EQ_INT(vd_vindex_kind_of(back), kind);
    CHECK_EQ_INT(vd_vindex_dim(back), dim);
    CHECK_EQ_INT(vd_vindex_count(back), vd_vindex_count(ix));
    CHECK(same_results(ix, back, q, 30, dim));
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(vd_vindex_contains(back, ids[i]), i % 5 != 0);
    /* the loaded index keeps working: add, remove, save again */
    CHECK_OK(vd_vindex_add(back, 1, &ids[0], v, &err));
    CHECK_OK(vd_vindex_remove(back, ids[1], &err));
    CHECK_OK(vd_vindex_save(back, path, 2, &err));
    vd_vindex_free(back);
    CHECK_OK(vd_vindex_load(path, &back, &seq, &err));
    CHECK_EQ_INT(seq, 2);
    CHECK(vd_vindex_contains(back, ids[0]) && !vd_vindex_contains(back, ids[1]));
    vd_vindex_free(back);
    /* truncated anywhere, or one bit flipped anywhere: refused as invalid */
    size_t len = 0;
    char *b = slurp(path, &len);
    CHECK(b && len > 100);
    size_t cuts[] = {0, 10, 55, 56, 57, len / 2, len - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        spit(bad, b, cuts[i]);
        CHECK_EQ_INT(vd_vindex_load(bad, &back, &seq, &err), VD_ERR_INVALID);
        CHECK(back == NULL);
    }
    for (size_t off = 0; off < len; off += len / 97 + 1) {
        b[off] ^= 0x10;
        CHECK_EQ_INT(vd_vindex_load_buffer(b, len, &back, &seq, &err), VD_ERR_INVALID);
        b[off] ^= 0x10;
    }
    CHECK_OK(vd_vindex_load_buffer(b, len, &back, &seq, &err));
    vd_vindex_free(back);
    free(b);
    snprintf(bad, sizeof bad, "%s/none.vdx", vd_test_tmpdir());
    CHECK_EQ_INT(vd_vindex_load(bad, &back, &seq, &err), VD_ERR_NOT_FOUND);
    vd_vindex_free(ix);
    free(v);
    free(q);
    free(ids);
}

VD_TEST(exact_save_load)
{
    round_trip(VD_VINDEX_EXACT);
}

VD_TEST(approx_save_load)
{
    round_trip(VD_VINDEX_APPROX);
}

VD_TEST(empty_save_load)
{
    for (int kind = 0; kind < 2; kind++) {
        vd_vindex *ix = NULL, *back = NULL;
        vd_error err;
        char path[512];
        uint64_t seq;
        snprintf(path, sizeof path, "%s/empty%d.vdx", vd_test_tmpdir(), kind);
        CHECK_OK(vd_vindex_new(8, (vd_vindex_kind)kind, &ix, &err));
        CHECK_OK(vd_vindex_save(ix, path, 7, &err));
        CHECK_OK(vd_vindex_load(path, &back, &seq, &err));
        CHECK_EQ_INT(vd_vindex_count(back), 0);
        vd_vindex_free(ix);
        vd_vindex_free(back);
    }
}

/* 20k vectors in 200 clusters of 128 dims: the approximate kind finds at
 * least 95% of the exact top 10 (averaged over 200 queries near the data). */
VD_TEST(approx_recall_at_10)
{
    const size_t n = 20000, nq = 200;
    const int dim = 128;
    float *v = clustered(n, dim, 200, 0.6f), *q = clustered(nq, dim, 200, 0.6f);
    int64_t *ids = seq_ids(n, 0);
    vd_vindex *ex = filled(VD_VINDEX_EXACT, v, ids, n, dim);
    vd_vindex *ap = filled(VD_VINDEX_APPROX, v, ids, n, dim);
    size_t found = 0;
    CHECK(ex && ap);
    for (size_t i = 0; i < nq; i++) {
        vd_vindex_hit he[10], ha[10];
        size_t ne, na;
        vd_error err;
        CHECK_OK(vd_vindex_search(ex, q + i * dim, 10, NULL, NULL, he, &ne, &err));
        CHECK_OK(vd_vindex_search(ap, q + i * dim, 10, NULL, NULL, ha, &na, &err));
        for (size_t a = 0; a < na; a++)
            for (size_t e = 0; e < ne; e++)
                found += ha[a].id == he[e].id;
    }
    double recall = (double)found / (double)(nq * 10);
    printf("approx recall@10 %.4f\n", recall);
    CHECK(recall >= 0.95);
    vd_vindex_free(ex);
    vd_vindex_free(ap);
    free(v);
    free(q);
    free(ids);
}

VD_TEST(kind_policy)
{
    /* the crossover of docs/vindex.md: 32 M floats scanned per search */
    CHECK_EQ_INT(vd_vindex_kind_for(0, 1792), VD_VINDEX_EXACT);
    CHECK_EQ_INT(vd_vindex_kind_for(10000, 1792), VD_VINDEX_EXACT);
    CHECK_EQ_INT(vd_vindex_kind_for(18724, 1792), VD_VINDEX_EXACT);
    CHECK_EQ_INT(vd_vindex_kind_for(18725, 1792), VD_VINDEX_APPROX);
    CHECK_EQ_INT(vd_vindex_kind_for(30000, 1024), VD_VINDEX_EXACT);
    CHECK_EQ_INT(vd_vindex_kind_for(100000, 1024), VD_VINDEX_APPROX);
    CHECK_EQ_INT(vd_vindex_kind_for(1000000, 128), VD_VINDEX_APPROX);
}

int main(void)
{
    return vd_test_run_all();
}
