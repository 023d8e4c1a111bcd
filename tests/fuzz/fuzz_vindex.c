/* fuzz_vindex.c: the index file loader (vindex/vindex.h) against arbitrary
 * bytes.
 *
 * First byte even: the rest is loaded as it is (nearly every input stops at
 * the checksum). First byte odd: the harness first writes the right checksum
 * into the rest's header, so mutations reach the body's checks (sizes, ids,
 * live flags, vectors, the HNSW graph's counts, levels and links). Loading
 * either fails with INVALID or NOMEM, or gives an index that answers a
 * search (best first, at most k hits, every hit contained), lists its
 * pairs (a < b, both contained) and forgets a removed id (the save/load round
 * trip is tests/unit/test_vindex.c's: its fsyncs would slow the fuzzer down). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vindex/vindex.h"
#include "vindex/vindex_int.h"

static void check(int cond)
{
    if (!cond) abort();
}

static void exercise(vd_vindex *ix)
{
    int dim = vd_vindex_dim(ix);
    float *q = calloc((size_t)dim, sizeof(float));
    vd_vindex_hit hits[8];
    size_t n = 0;
    vd_error err;
    check(q != NULL);
    q[0] = 1.0f;
    check(vd_vindex_search(ix, q, 8, NULL, NULL, hits, &n, &err) == VD_OK);
    check(n <= 8 && n <= vd_vindex_count(ix));
    for (size_t i = 0; i < n; i++) {
        check(vd_vindex_contains(ix, hits[i].id));
        if (i > 0) check(hits[i].score <= hits[i - 1].score);
    }
    vd_vindex_pair *pairs = NULL;
    size_t np = 0;
    check(vd_vindex_pairs(ix, -1.0f, 4, &pairs, &np, &err) == VD_OK);
    for (size_t i = 0; i < np; i++) {
        check(pairs[i].a < pairs[i].b);
        check(vd_vindex_contains(ix, pairs[i].a) && vd_vindex_contains(ix, pairs[i].b));
    }
    free(pairs);
    if (n > 0) {
        /* the best hit removed is never returned again */
        int64_t gone = hits[0].id;
        size_t before = vd_vindex_count(ix);
        check(vd_vindex_remove(ix, gone, &err) == VD_OK);
        check(vd_vindex_count(ix) == before - 1 && !vd_vindex_contains(ix, gone));
        check(vd_vindex_search(ix, q, 8, NULL, NULL, hits, &n, &err) == VD_OK);
        for (size_t i = 0; i < n; i++)
            check(hits[i].id != gone);
    }
    free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1000000) return 0;
    size_t len = size - 1;
    unsigned char *buf = malloc(len ? len : 1);
    check(buf != NULL);
    memcpy(buf, data + 1, len);
    if ((data[0] & 1) && len >= 56) {
        uint64_t sum = vd_vindex_file_checksum(buf, len);
        memcpy(buf + VD_VINDEX_FILE_SUM_OFFSET, &sum, 8);
    }
    vd_vindex *ix = NULL;
    uint64_t seq = 0;
    vd_error err;
    vd_status st = vd_vindex_load_buffer(buf, len, &ix, &seq, &err);
    check(st == VD_OK || st == VD_ERR_INVALID || st == VD_ERR_NOMEM);
    check((st == VD_OK) == (ix != NULL));
    if (ix) {
        exercise(ix);
        vd_vindex_free(ix);
    }
    free(buf);
    return 0;
}
