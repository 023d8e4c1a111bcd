/* fewshot.c: few examples per label, held-out accuracy of the session classifiers
 * (src/train) with and without test-time flips. Reads "LABEL PATH" lines for a
 * training pool (TRAIN.txt) and a test set (TEST.txt), embeds every image and its
 * horizontal mirror in-process (vd_runner_ort, the model's own preprocessing; the
 * mirror is taken of the preprocessed NHWC tensor, the same as mirroring the image
 * for a stretch resize), then for each N per label and seed draws N training
 * examples per label from the pool and measures accuracy on the whole test set:
 *   centroid, logreg, auto (vd_train's CV choice), each on plain vectors and on
 *   "flip" vectors (the mean of the L2-normalised vectors of an image and its
 *   mirror, for training and prediction).
 * Prints one line per (N, variant): mean and min/max accuracy over the seeds, and
 * how often auto picked logreg.
 *   fewshot MODELS_DIR MODEL TRAIN.txt TEST.txt "2,5,10,20" SEEDS */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "infer/runner.h"
#include "train/classifier.h"

typedef struct {
    size_t n, dim;
    char **labels;
    float *plain, *flip;
} set;

static void die(const char *what, const vd_error *err)
{
    fprintf(stderr, "fewshot: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static void normalise(float *v, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += (double)v[i] * v[i];
    s = s > 0 ? 1 / sqrt(s) : 0;
    for (size_t i = 0; i < d; i++)
        v[i] = (float)(v[i] * s);
}

/* Embeds the images of list into s: plain and flip (mean of image + mirror). */
static void load(vd_runner *r, const char *model, const char *list, set *s)
{
    vd_error err;
    vd_model_meta m;
    if (vd_runner_meta(r, model, &m, &err) != VD_OK) die(model, &err);
    if (m.layout != VD_LAYOUT_NHWC) die("NHWC models only", NULL);
    FILE *f = fopen(list, "r");
    if (!f) die(list, NULL);
    char lab[256], path[4096];
    size_t cap = 0;
    memset(s, 0, sizeof *s);
    char **paths = NULL;
    while (fscanf(f, "%255s %4095s", lab, path) == 2) {
        if (s->n == cap) {
            cap = cap ? 2 * cap : 256;
            s->labels = realloc(s->labels, cap * sizeof *s->labels);
            paths = realloc(paths, cap * sizeof *paths);
        }
        s->labels[s->n] = strdup(lab);
        paths[s->n++] = strdup(path);
    }
    fclose(f);
    size_t per = vd_model_meta_input_len(&m), B = 16, H = m.height, W = m.width, C = m.channels;
    for (size_t b = 0; b < s->n; b += B) {
        size_t k = s->n - b < B ? s->n - b : B;
        int64_t shape[4] = {(int64_t)(2 * k), m.height, m.width, m.channels};
        vd_tensor in, outs[VD_MODEL_MAX_OUTPUT];
        size_t nouts;
        if (vd_tensor_alloc(&in, shape, 4, &err) != VD_OK) die("alloc", &err);
        for (size_t i = 0; i < k; i++) {
            vd_image img;
            vd_decode_opts o = {.target_width = m.width, .target_height = m.height};
            if (vd_image_decode_file(paths[b + i], &o, &img, NULL, &err) != VD_OK)
                die(paths[b + i], &err);
            float *a = in.data + i * per, *mir = in.data + (k + i) * per;
            if (vd_preprocess_into(&img, &m, a, NULL, &err) != VD_OK) die("preprocess", &err);
            vd_image_free(&img);
            for (size_t y = 0; y < H; y++)
                for (size_t x = 0; x < W; x++)
                    memcpy(mir + (y * W + x) * C, a + (y * W + (W - 1 - x)) * C, C * sizeof *a);
        }
        if (vd_runner_run(r, model, &in, outs, VD_MODEL_MAX_OUTPUT, &nouts, &err) != VD_OK)
            die("run", &err);
        size_t d = (size_t)outs[0].shape[1];
        if (!s->dim) {
            s->dim = d;
            s->plain = malloc(s->n * d * sizeof(float));
            s->flip = malloc(s->n * d * sizeof(float));
        }
        for (size_t i = 0; i < k; i++) {
            float *p = s->plain + (b + i) * d, *q = s->flip + (b + i) * d, t[8192];
            memcpy(p, outs[0].data + i * d, d * sizeof *p);
            memcpy(t, outs[0].data + (k + i) * d, d * sizeof *t);
            normalise(p, d);
            normalise(t, d);
            for (size_t j = 0; j < d; j++)
                q[j] = (p[j] + t[j]) / 2;
        }
        for (size_t o = 0; o < nouts; o++)
            vd_tensor_free(&outs[o]);
        vd_tensor_free(&in);
    }
    for (size_t i = 0; i < s->n; i++)
        free(paths[i]);
    free(paths);
}

static uint64_t rnd(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 17;
}

/* Trains on the chosen rows of tr (plain or flip), returns the test accuracy. */
static double run(const set *tr, const set *te, const size_t *rows, size_t n, int flip,
                  vd_clf_algorithm alg, uint64_t seed, int *picked_logreg)
{
    vd_error err;
    size_t d = tr->dim;
    float *x = malloc(n * d * sizeof *x);
    const char **lab = malloc(n * sizeof *lab);
    for (size_t i = 0; i < n; i++) {
        memcpy(x + i * d, (flip ? tr->flip : tr->plain) + rows[i] * d, d * sizeof *x);
        lab[i] = tr->labels[rows[i]];
    }
    vd_train_opts o = {.algorithm = alg, .seed = seed};
    vd_train_result r;
    if (vd_train(x, n, d, lab, &o, &r, &err) != VD_OK) die("train", &err);
    *picked_logreg = r.algorithm == VD_CLF_LOGREG;
    size_t ok = 0;
    for (size_t i = 0; i < te->n; i++) {
        vd_prediction p;
        if (vd_classifier_predict(r.classifier, (flip ? te->flip : te->plain) + i * d, d, &p, NULL,
                                  &err) != VD_OK)
            die("predict", &err);
        ok += strcmp(vd_classifier_label(r.classifier, (size_t)p.top), te->labels[i]) == 0;
    }
    vd_train_result_clear(&r);
    free(x);
    free(lab);
    return (double)ok / (double)te->n;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: fewshot MODELS_DIR MODEL TRAIN.txt TEST.txt N,N,... SEEDS\n");
        return 2;
    }
    vd_error err;
    vd_runner *r;
    if (vd_image_init(argv[0], &err) != VD_OK) die("vips", &err);
    if (vd_runner_ort_new(argv[1], 1, &r, &err) != VD_OK) die("runner", &err);
    set tr, te;
    load(r, argv[2], argv[3], &tr);
    load(r, argv[2], argv[4], &te);
    int seeds = atoi(argv[6]);
    printf("model %s, dim %zu, pool %zu, test %zu, seeds %d\n", argv[2], tr.dim, tr.n, te.n, seeds);
    printf(
        "| N per label | centroid | logreg | auto (CV choice) | auto picked logreg | "
        "centroid + flips | logreg + flips | auto + flips |\n|---|---|---|---|---|---|---|---|\n");
    char *ns = strdup(argv[5]), *save = NULL;
    size_t *rows = malloc(tr.n * sizeof *rows), *perm = malloc(tr.n * sizeof *perm);
    for (char *t = strtok_r(ns, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t N = (size_t)atoi(t);
        double acc[6][3] = {{0}}; /* mean, min, max */
        int picks[2] = {0, 0};
        for (int s = 1; s <= seeds; s++) {
            uint64_t st = (uint64_t)s * 7919u;
            for (size_t i = 0; i < tr.n; i++)
                perm[i] = i;
            for (size_t i = tr.n; i > 1; i--) {
                size_t j = rnd(&st) % i, q = perm[i - 1];
                perm[i - 1] = perm[j];
                perm[j] = q;
            }
            size_t n = 0; /* the first N of each label in the shuffled pool */
            for (size_t i = 0; i < tr.n; i++) {
                size_t have = 0;
                for (size_t j = 0; j < n; j++)
                    have += strcmp(tr.labels[rows[j]], tr.labels[perm[i]]) == 0;
                if (have < N) rows[n++] = perm[i];
            }
            for (int v = 0; v < 6; v++) {
                vd_clf_algorithm alg = v % 3 == 0   ? VD_CLF_CENTROID
                                       : v % 3 == 1 ? VD_CLF_LOGREG
                                                    : VD_CLF_AUTO;
                int pl;
                double a = run(&tr, &te, rows, n, v >= 3, alg, (uint64_t)s, &pl);
                if (v % 3 == 2) picks[v / 3] += pl;
                acc[v][0] += a / seeds;
                if (s == 1 || a < acc[v][1]) acc[v][1] = a;
                if (s == 1 || a > acc[v][2]) acc[v][2] = a;
            }
        }
        printf("| %zu |", N);
        for (int v = 0; v < 6; v++) {
            printf(" %.3f (%.3f–%.3f) |", acc[v][0], acc[v][1], acc[v][2]);
            if (v == 2) printf(" %d/%d |", picks[0], seeds);
        }
        printf("\n");
        fflush(stdout);
    }
    free(ns);
    free(rows);
    free(perm);
    vd_runner_free(r);
    return 0;
}
