/* bench_search.c: the vector index (src/vindex) on synthetic clustered
 * vectors: build time, memory (RSS delta), exact and approximate search
 * latency (p50/p99, one query at a time, k = 10) and the approximate kind's
 * recall@10 against exact search, for each efSearch given. Writes the
 * vectors, the queries and the exact top 10 under --dump DIR for the Python
 * peer (bench/search/peer.py: NumPy, FAISS) and its own numbers as JSON to
 * DIR/vindex.json. See bench/search/run.sh.
 *
 * Data: `clusters` random unit centres (default n / 50), each vector a centre
 * plus isotropic gaussian noise of norm ~spread (default 0.75: a member's
 * cosine to its centre ~0.8), normalised; queries drawn the same way.
 *
 * The approximate index is built with --threads T (vd_vindex_set_threads;
 * default 0: one per core); build time is wall and CPU (user + system of the
 * process), memory the RSS the build added and the process's peak RSS.
 *
 *   bench_search --n N --dim D [--clusters C] [--spread S] [--queries Q]
 *                [--ef 50,100,200,400] [--threads T] [--no-approx] --dump DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "vindex/vindex.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double unif(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}
static float gauss(void)
{
    double u = unif() + 1e-12, v = unif();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double peak_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

static double load1(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static double rss_mb(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (double)res * (double)sysconf(_SC_PAGESIZE) / 1048576.0;
}

/* n points: a centre (one of c, or none) plus gaussian noise of expected norm
 * `spread`, normalised */
static float *gen(size_t n, int dim, const float *centres, size_t c, float spread)
{
    float s = spread / (float)sqrt((double)dim);
    float *v = malloc(n * (size_t)dim * sizeof(float));
    vd_error err;
    if (!v) return NULL;
    for (size_t i = 0; i < n; i++) {
        const float *ci = centres ? centres + (size_t)(unif() * (double)c) % c * (size_t)dim : NULL;
        float *vi = v + i * (size_t)dim;
        for (int j = 0; j < dim; j++)
            vi[j] = (ci ? ci[j] : 0.0f) + s * gauss();
        vd_vindex_normalize(vi, dim, &err);
    }
    return v;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *t, size_t n, double p)
{
    qsort(t, n, sizeof *t, cmp_d);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return t[i];
}

typedef struct {
    double p50_ms, p99_ms, recall;
} run_stats;

/* Runs every query once (k = 10); fills ids (q x 10) and the latencies. */
static run_stats run_queries(vd_vindex *ix, const float *qs, size_t nq, int dim, int64_t *ids,
                             const int64_t *truth)
{
    double *t = malloc(nq * sizeof(double));
    size_t found = 0;
    for (size_t i = 0; i < nq; i++) {
        vd_vindex_hit hits[10];
        size_t n = 0;
        vd_error err;
        double t0 = now_s();
        if (vd_vindex_search(ix, qs + i * (size_t)dim, 10, NULL, NULL, hits, &n, &err) != VD_OK) {
            fprintf(stderr, "search: %s\n", err.msg);
            exit(1);
        }
        t[i] = (now_s() - t0) * 1000.0;
        for (size_t j = 0; j < 10; j++)
            ids[i * 10 + j] = j < n ? hits[j].id : -1;
        if (truth)
            for (size_t j = 0; j < n; j++)
                for (size_t e = 0; e < 10; e++)
                    found += hits[j].id == truth[i * 10 + e];
    }
    run_stats s = {pct(t, nq, 0.5), pct(t, nq, 0.99), truth ? (double)found / (nq * 10.0) : 1.0};
    free(t);
    return s;
}

typedef struct {
    double wall_s, cpu_s, mb;
} build_stats;

/* One vd_vindex_add of all n (ids 0..n): the approximate kind spreads it over
 * `threads` (vd_vindex_set_threads) */
static vd_vindex *build(vd_vindex_kind kind, const float *v, size_t n, int dim, int threads,
                        build_stats *bs)
{
    vd_vindex *ix = NULL;
    vd_error err;
    int64_t *ids = malloc(n * sizeof *ids);
    if (!ids) exit(1);
    for (size_t i = 0; i < n; i++)
        ids[i] = (int64_t)i;
    double m0 = rss_mb(), t0 = now_s(), c0 = cpu_s();
    if (vd_vindex_new(dim, kind, &ix, &err) != VD_OK) exit(1);
    vd_vindex_set_threads(ix, threads);
    /* in 20 steps, each one parallel add, with progress on stderr (a run too
     * long for its machine still gives its rate) */
    size_t step = kind == VD_VINDEX_APPROX && n >= 20000 ? n / 20 : n;
    for (size_t i = 0; i < n; i += step) {
        size_t b = n - i < step ? n - i : step;
        if (vd_vindex_add(ix, b, ids + i, v + i * (size_t)dim, &err) != VD_OK) {
            fprintf(stderr, "add: %s\n", err.msg);
            exit(1);
        }
        if (step < n)
            fprintf(stderr, "  hnsw build: %zu of %zu after %.1f s wall, %.1f s CPU, load %.2f\n",
                    i + b, n, now_s() - t0, cpu_s() - c0, load1());
    }
    bs->wall_s = now_s() - t0;
    bs->cpu_s = cpu_s() - c0;
    bs->mb = rss_mb() - m0;
    free(ids);
    return ix;
}

static void dump(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

int main(int argc, char **argv)
{
    size_t n = 10000, nq = 200, clusters = 0;
    int dim = 1792, approx = 1, threads = 0;
    float spread = 0.75f;
    const char *dir = NULL, *efs = "50,100,200,400";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--n"))
            n = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--dim"))
            dim = atoi(v), i++;
        else if (!strcmp(a, "--clusters"))
            clusters = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--spread"))
            spread = strtof(v, NULL), i++;
        else if (!strcmp(a, "--queries"))
            nq = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--ef"))
            efs = v, i++;
        else if (!strcmp(a, "--threads"))
            threads = atoi(v), i++;
        else if (!strcmp(a, "--dump"))
            dir = v, i++;
        else if (!strcmp(a, "--no-approx"))
            approx = 0;
        else {
            fprintf(stderr, "bench_search: unknown argument %s\n", a);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "bench_search: --dump DIR is required\n");
        return 2;
    }
    if (!clusters) clusters = n / 50 > 0 ? n / 50 : 1;
    /* centres: random unit vectors; members: centre + noise of norm ~spread */
    float *centres = gen(clusters, dim, NULL, 0, 1.0f);
    float *v = gen(n, dim, centres, clusters, spread),
          *qs = gen(nq, dim, centres, clusters, spread);
    int64_t *truth = malloc(nq * 10 * sizeof(int64_t)), *got = malloc(nq * 10 * sizeof(int64_t));
    double tg = now_s();
    build_stats bs;
    vd_vindex *ex = build(VD_VINDEX_EXACT, v, n, dim, 1, &bs);
    run_stats es = run_queries(ex, qs, nq, dim, truth, NULL);
    vd_vindex_free(ex);
    char path[1024];
    snprintf(path, sizeof path, "%s/vindex.json", dir);
    FILE *out = fopen(path, "w");
    fprintf(out,
            "{\"n\":%zu,\"dim\":%d,\"clusters\":%zu,\"spread\":%g,\"queries\":%zu,\n"
            " \"exact\":{\"build_s\":%.3f,\"mem_mb\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f},\n"
            " \"approx\":[",
            n, dim, clusters, spread, nq, bs.wall_s, bs.mb, es.p50_ms, es.p99_ms);
    printf("vindex exact : n %zu dim %d (%zu clusters): build %.2f s, +%.0f MB, p50 %.3f ms, "
           "p99 %.3f ms (data and truth: %.0f s)\n",
           n, dim, clusters, bs.wall_s, bs.mb, es.p50_ms, es.p99_ms, now_s() - tg);
    fflush(stdout);
    if (approx) {
        vd_vindex *ap = build(VD_VINDEX_APPROX, v, n, dim, threads, &bs);
        printf("vindex hnsw  : build %.2f s wall, %.2f s CPU (threads %d), +%.0f MB, peak RSS "
               "%.0f MB, load %.2f\n",
               bs.wall_s, bs.cpu_s, threads, bs.mb, peak_mb(), load1());
        fflush(stdout);
        int first = 1;
        for (const char *p = efs; *p;) {
            size_t ef = strtoull(p, NULL, 10);
            vd_vindex_set_ef(ap, ef);
            run_stats s = run_queries(ap, qs, nq, dim, got, truth);
            fprintf(out,
                    "%s\n  {\"ef\":%zu,\"build_s\":%.3f,\"build_cpu_s\":%.3f,\"threads\":%d,"
                    "\"mem_mb\":%.1f,\"p50_ms\":%.4f,\"p99_ms\":%.4f,\"recall\":%.4f}",
                    first ? "" : ",", ef, bs.wall_s, bs.cpu_s, threads, bs.mb, s.p50_ms, s.p99_ms,
                    s.recall);
            printf("vindex hnsw  : ef %zu: p50 %.3f ms, p99 %.3f ms, recall@10 %.4f\n", ef,
                   s.p50_ms, s.p99_ms, s.recall);
            fflush(stdout);
            first = 0;
            p = strchr(p, ',');
            if (!p) break;
            p++;
        }
        vd_vindex_free(ap);
    }
    fprintf(out, "]}\n");
    fclose(out);
    dump(dir, "vecs.f32", v, n * (size_t)dim * sizeof(float));
    dump(dir, "queries.f32", qs, nq * (size_t)dim * sizeof(float));
    dump(dir, "exact_ids.i64", truth, nq * 10 * sizeof(int64_t));
    free(v);
    free(qs);
    free(centres);
    free(truth);
    free(got);
    return 0;
}
