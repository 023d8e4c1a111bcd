/* bench_store.c: the store's operations, timed, on the stores named on the
 * command line (one line per operation and store; bench/store/run.sh runs it
 * on a SQLite file and a PostgreSQL database in the same run and prints the
 * ratios). Only the public store API: it links against any build.
 *
 *   bench_store URL...     each URL a fresh, empty store (sqlite:PATH or postgres://...)
 *   BENCH_N=N              examples per session and vectors per pass (default 1000)
 *
 * Operations: insert N examples into a new session (one call, one transaction);
 * put N embeddings of 1280 floats in batches of 32 (the pipeline's batch); get
 * them back in batches of 32; read a session (the session and its N examples)
 * 50 times; 500 progress updates, each its own write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sha256.h"
#include "store/sessions.h"
#include "store/store.h"
#include "store/vectors.h"

enum { DIM = 1280, BATCH = 32, READS = 50, UPDATES = 500 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const vd_error *err)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, err->msg);
    exit(1);
}

static void report(const char *url, const char *op, double n, double secs)
{
    printf("%-10s %-28s %10.0f /s  (%.3f s)\n", strncmp(url, "postgres", 8) == 0 ? "pg" : "sqlite",
           op, n / secs, secs);
}

static void bench(const char *url, int n)
{
    vd_error err;
    vd_store *s;
    if (vd_store_open(url, NULL, &s, &err) != VD_OK) die("open", &err);
    vd_example *ex = calloc((size_t)n, sizeof *ex);
    char(*paths)[64] = calloc((size_t)n, 64);
    char(*shas)[65] = calloc((size_t)n, 65);
    const char **keys = calloc((size_t)n, sizeof *keys);
    for (int i = 0; i < n; i++) {
        snprintf(paths[i], 64, "/media/bench/label%d/img%06d.png", i % 10, i);
        ex[i] = (vd_example){.path = paths[i], .label = paths[i] + 13};
        uint8_t d[VD_SHA256_LEN];
        vd_sha256(paths[i], strlen(paths[i]), d);
        vd_sha256_hex(d, shas[i]);
        keys[i] = shas[i];
    }
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "bench", .model = "mobilenet_v2"};
    double t0 = now_s();
    if (vd_store_session_create(s, &in, id, &err) != VD_OK) die("create", &err);
    if (vd_store_examples_add(s, id, ex, (size_t)n, &err) != VD_OK) die("examples", &err);
    report(url, "insert examples", n, now_s() - t0);

    float *vec = malloc(sizeof(float) * DIM);
    for (int j = 0; j < DIM; j++)
        vec[j] = (float)j / DIM;
    const float *vecs[BATCH];
    for (int b = 0; b < BATCH; b++)
        vecs[b] = vec;
    t0 = now_s();
    for (int i = 0; i < n; i += BATCH) {
        int m = n - i < BATCH ? n - i : BATCH;
        if (vd_store_embeddings_put(s, "mobilenet_v2", (size_t)m, keys + i, vecs, DIM, &err) !=
            VD_OK)
            die("put", &err);
    }
    report(url, "cache put (batches of 32)", n, now_s() - t0);
    t0 = now_s();
    for (int i = 0; i < n; i += BATCH) {
        int m = n - i < BATCH ? n - i : BATCH;
        vd_embedding *e;
        size_t found;
        if (vd_store_embeddings_get(s, "mobilenet_v2", DIM, (size_t)m, keys + i, &e, &found,
                                    &err) != VD_OK)
            die("get", &err);
        if ((int)found != m) {
            fprintf(stderr, "bench_store: %zu of %d found\n", found, m);
            exit(1);
        }
        vd_embedding_list_free(e, (size_t)m);
    }
    report(url, "cache get (batches of 32)", n, now_s() - t0);
    t0 = now_s();
    for (int r = 0; r < READS; r++) {
        vd_session got;
        vd_example *list;
        size_t cnt;
        if (vd_store_session_get(s, id, &got, &err) != VD_OK) die("get session", &err);
        vd_session_clear(&got);
        if (vd_store_examples_list(s, id, &list, &cnt, &err) != VD_OK) die("list", &err);
        vd_example_list_free(list, cnt);
    }
    report(url, "read a session (+examples)", READS, now_s() - t0);
    t0 = now_s();
    for (int u = 0; u < UPDATES; u++)
        if (vd_store_session_set_progress(s, id, u, UPDATES, &err) != VD_OK) die("progress", &err);
    report(url, "progress updates", UPDATES, now_s() - t0);
    vd_store_close(s);
    free(vec);
    free(keys);
    free(shas);
    free(paths);
    free(ex);
}

int main(int argc, char **argv)
{
    const char *e = getenv("BENCH_N");
    int n = e && atoi(e) > 0 ? atoi(e) : 1000;
    for (int i = 1; i < argc; i++)
        bench(argv[i], n);
    return 0;
}
