/* test_vindex_parallel.c: the approximate kind's parallel build
 * (vd_vindex_set_threads, vd_vindex_convert): it finds what a serial build
 * finds (recall@10 against exact search within a small tolerance), keeps
 * vd_vindex_add's contract (replace, revive, the last vector of an id in a
 * batch wins), compacts in parallel, and its graph passes the checked loader.
 * Run under ASan by scripts/test.sh like every unit test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdtest.h"
#include "vindex/vindex.h"

#define VINDEX_DATA_SEED 0x2545f4914f6cdd1dULL
#include "vindex_data.h"

static vd_vindex *built(vd_vindex_kind kind, int threads, const float *v, const int64_t *ids,
                        size_t n, int dim)
{
    vd_vindex *ix = NULL;
    vd_error err;
    if (vd_vindex_new(dim, kind, &ix, &err) != VD_OK) return NULL;
    vd_vindex_set_threads(ix, threads);
    if (vd_vindex_add(ix, n, ids, v, &err) != VD_OK) {
        fprintf(stderr, "add: %s\n", err.msg);
        vd_vindex_free(ix);
        return NULL;
    }
    return ix;
}

/* share of the exact top 10 that ix finds, over nq queries */
static double recall10(vd_vindex *ex, vd_vindex *ix, const float *q, size_t nq, int dim)
{
    size_t found = 0;
    for (size_t i = 0; i < nq; i++) {
        vd_vindex_hit he[10], ha[10];
        size_t ne = 0, na = 0;
        vd_error err;
        if (vd_vindex_search(ex, q + i * dim, 10, NULL, NULL, he, &ne, &err) != VD_OK ||
            vd_vindex_search(ix, q + i * dim, 10, NULL, NULL, ha, &na, &err) != VD_OK)
            return -1;
        for (size_t a = 0; a < na; a++)
            for (size_t e = 0; e < ne; e++)
                found += ha[a].id == he[e].id;
    }
    return (double)found / (double)(nq * 10);
}

/* the best hit of v is id, with score ~1 */
static int finds_itself(vd_vindex *ix, const float *v, int64_t id)
{
    vd_vindex_hit h[1];
    size_t n = 0;
    vd_error err;
    if (vd_vindex_search(ix, v, 1, NULL, NULL, h, &n, &err) != VD_OK || n != 1) return 0;
    return h[0].id == id && h[0].score > 0.999f;
}

/* 12k vectors in 120 clusters of 96 dims, built serially and with 4 threads
 * (more threads than the test machine's cores: more interleavings): the
 * parallel graph finds the exact top 10 as well as the serial one does. */
VD_TEST(parallel_build_recall_equals_serial)
{
    const size_t n = 12000, nq = 200;
    const int dim = 96;
    float *v = clustered(n, dim, 120, 0.6f), *q = clustered(nq, dim, 120, 0.6f);
    int64_t *ids = malloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)i * 3 - 1000;
    vd_vindex *ex = built(VD_VINDEX_EXACT, 1, v, ids, n, dim);
    vd_vindex *se = built(VD_VINDEX_APPROX, 1, v, ids, n, dim);
    vd_vindex *pa = built(VD_VINDEX_APPROX, 4, v, ids, n, dim);
    CHECK(ex && se && pa);
    CHECK_EQ_INT(vd_vindex_count(pa), n);
    for (size_t i = 0; i < n; i += 97)
        CHECK(vd_vindex_contains(pa, ids[i]));
    double rs = recall10(ex, se, q, nq, dim), rp = recall10(ex, pa, q, nq, dim);
    printf("recall@10 serial %.4f, 4 threads %.4f\n", rs, rp);
    CHECK(rs >= 0.95);
    CHECK(rp >= rs - 0.02);
    /* threads 0 (one per core) builds a complete index too */
    vd_vindex *all = built(VD_VINDEX_APPROX, 0, v, ids, 2000, dim);
    CHECK(all && vd_vindex_count(all) == 2000);
    vd_vindex_free(all);
    vd_vindex_free(ex);
    vd_vindex_free(se);
    vd_vindex_free(pa);
    free(v);
    free(q);
    free(ids);
}

/* A parallel add keeps vd_vindex_add's contract: an id present is replaced,
 * a removed one revived, and within one batch the last vector of an id wins. */
VD_TEST(parallel_add_replaces_revives_last_wins)
{
    const int dim = 32;
    const size_t n0 = 400, n1 = 700;
    float *v0 = clustered(n0, dim, 8, 0.5f), *v1 = clustered(n1, dim, 8, 0.5f);
    int64_t *i0 = malloc(n0 * sizeof *i0), *i1 = malloc(n1 * sizeof *i1);
    vd_error err;
    for (size_t i = 0; i < n0; i++)
        i0[i] = (int64_t)i;
    vd_vindex *ix = built(VD_VINDEX_APPROX, 3, v0, i0, n0, dim);
    CHECK(ix);
    for (int64_t id = 0; id < 20; id++)
        CHECK_OK(vd_vindex_remove(ix, id, &err));
    /* batch: ids 0..9 (removed: revived), 100..149 (present: replaced), new ids
     * 1000.. where 1000..1049 come twice (the second time wins) */
    for (size_t i = 0; i < n1; i++) {
        if (i < 10)
            i1[i] = (int64_t)i;
        else if (i < 60)
            i1[i] = 100 + (int64_t)(i - 10);
        else if (i < 110)
            i1[i] = 1000 + (int64_t)(i - 60);
        else
            i1[i] = 1000 + (int64_t)(i - 110);
    }
    CHECK_OK(vd_vindex_add(ix, n1, i1, v1, &err));
    /* live: 400 - 20 removed + 10 revived + 590 new (1000..1589) */
    CHECK_EQ_INT(vd_vindex_count(ix), 400 - 20 + 10 + 590);
    for (int64_t id = 0; id < 20; id++)
        CHECK_EQ_INT(vd_vindex_contains(ix, id), id < 10);
    for (size_t i = 0; i < n1; i++) {
        if (i >= 60 && i < 110) continue; /* superseded by i + 50 */
        CHECK(finds_itself(ix, v1 + i * dim, i1[i]));
    }
    for (size_t i = 20; i < n0; i++)
        if (i < 100 || i >= 150) CHECK(finds_itself(ix, v0 + i * dim, i0[i]));
    vd_vindex_free(ix);
    free(v0);
    free(v1);
    free(i0);
    free(i1);
}

#define GONE(i) ((i) % 5 == 1 || (i) % 5 == 2)

/* Removing past a quarter compacts the graph with the index's threads; a
 * parallel-built graph saves and passes the checked loader; convert goes both
 * ways and keeps every live vector. */
VD_TEST(parallel_compact_convert_save_load)
{
    const int dim = 24;
    const size_t n = 1200;
    float *v = clustered(n, dim, 10, 0.5f);
    int64_t *ids = malloc(n * sizeof *ids);
    vd_error err;
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)i + 50;
    vd_vindex *ex = built(VD_VINDEX_EXACT, 2, v, ids, n, dim), *ap = NULL, *back = NULL;
    CHECK(ex);
    for (size_t i = 0; i < n; i += 3)
        CHECK_OK(vd_vindex_remove(ex, ids[i], &err));
    CHECK_OK(vd_vindex_convert(ex, VD_VINDEX_APPROX, &ap, &err));
    CHECK_EQ_INT(vd_vindex_kind_of(ap), VD_VINDEX_APPROX);
    CHECK_EQ_INT(vd_vindex_count(ap), vd_vindex_count(ex));
    for (size_t i = 0; i < n; i++) {
        CHECK_EQ_INT(vd_vindex_contains(ap, ids[i]), i % 3 != 0);
        if (i % 3) CHECK(finds_itself(ap, v + i * dim, ids[i]));
    }
    /* remove another 40 %: the tombstones pass a quarter, the graph is rebuilt */
    for (size_t i = 0; i < n; i++)
        if (i % 3 && GONE(i)) CHECK_OK(vd_vindex_remove(ap, ids[i], &err));
    size_t live = vd_vindex_count(ap);
    for (size_t i = 0; i < n; i++)
        if (i % 3 && !GONE(i)) CHECK(finds_itself(ap, v + i * dim, ids[i]));
    char path[512];
    uint64_t seq = 0;
    snprintf(path, sizeof path, "%s/par.vdx", vd_test_tmpdir());
    CHECK_OK(vd_vindex_save(ap, path, 9, &err));
    CHECK_OK(vd_vindex_load(path, &back, &seq, &err));
    CHECK_EQ_INT(vd_vindex_count(back), live);
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(vd_vindex_contains(back, ids[i]), i % 3 != 0 && !GONE(i));
    vd_vindex_free(back);
    /* and back to exact: the same live vectors */
    CHECK_OK(vd_vindex_convert(ap, VD_VINDEX_EXACT, &back, &err));
    CHECK_EQ_INT(vd_vindex_count(back), live);
    for (size_t i = 0; i < n; i++)
        if (i % 3 && !GONE(i)) CHECK(finds_itself(back, v + i * dim, ids[i]));
    vd_vindex_free(back);
    vd_vindex_free(ap);
    vd_vindex_free(ex);
    free(v);
    free(ids);
}

int main(void)
{
    return vd_test_run_all();
}
