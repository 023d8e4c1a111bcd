/* classifier.c: logistic regression (liblinear) and nearest-centroid
 * classifiers on embedding vectors, with stratified k-fold cross-validation,
 * metrics and serialisation. */
#include "train/classifier.h"

#include <jansson.h>
#include <linear.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

#define CENTROID_TEMPERATURE 0.1
#define BLOB_MAGIC           "VDCLF\0\0\1"
#define BLOB_VERSION         1u

static const double default_grid[] = {0.01, 0.1, 1, 10, 100};

struct vd_classifier {
    vd_clf_algorithm algorithm;
    size_t k;      /* labels */
    size_t dim;    /* input dimension */
    char **labels; /* sorted */
    double threshold;
    double C;
    /* logreg: a liblinear model whose labels are our label indices */
    struct model *model;
    /* centroid: k L2-normalised rows of dim */
    double *centroids;
};

const char *vd_clf_algorithm_name(vd_clf_algorithm a)
{
    switch (a) {
    case VD_CLF_AUTO:
        return "auto";
    case VD_CLF_LOGREG:
        return "logreg";
    case VD_CLF_CENTROID:
        return "centroid";
    }
    return "unknown";
}

/* liblinear prints its training progress to stdout unless told otherwise. */
static void quiet(const char *s)
{
    (void)s;
}

/* ---- small helpers ------------------------------------------------------- */

static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Writes the L2-normalised x into out (zeros stay zeros). */
static void l2_normalise(const float *x, size_t dim, double *out)
{
    double ss = 0;
    for (size_t j = 0; j < dim; j++)
        ss += (double)x[j] * x[j];
    double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
    for (size_t j = 0; j < dim; j++)
        out[j] = x[j] * inv;
}

static size_t find_label(char *const *labels, size_t k, const char *l)
{
    char *const *hit = bsearch(&l, labels, k, sizeof *labels, cmp_str);
    return (size_t)(hit - labels);
}

/* ---- classifier objects -------------------------------------------------- */

static void free_model(struct model *m)
{
    if (!m) return;
    free(m->w);
    free(m->label);
    free(m);
}

void vd_classifier_free(vd_classifier *c)
{
    if (!c) return;
    for (size_t i = 0; c->labels && i < c->k; i++)
        free(c->labels[i]);
    free(c->labels);
    free_model(c->model);
    free(c->centroids);
    free(c);
}

vd_clf_algorithm vd_classifier_algorithm(const vd_classifier *c)
{
    return c->algorithm;
}

size_t vd_classifier_nlabels(const vd_classifier *c)
{
    return c->k;
}

size_t vd_classifier_dim(const vd_classifier *c)
{
    return c->dim;
}

const char *vd_classifier_label(const vd_classifier *c, size_t i)
{
    return i < c->k ? c->labels[i] : NULL;
}

double vd_classifier_threshold(const vd_classifier *c)
{
    return c->threshold;
}

void vd_classifier_set_threshold(vd_classifier *c, double threshold)
{
    c->threshold = threshold;
}

char *vd_classifier_labels_json(const vd_classifier *c)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < c->k; i++)
        json_array_append_new(a, json_string(c->labels[i]));
    char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    return s;
}

/* Copies a liblinear model into malloc'd memory that we own and free
 * ourselves (the same layout we deserialise into). */
static struct model *own_model(const struct model *src)
{
    struct model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    *m = *src;
    m->param.nr_weight = 0;
    m->param.weight_label = NULL;
    m->param.weight = NULL;
    m->param.init_sol = NULL;
    int nr_w = (src->nr_class == 2) ? 1 : src->nr_class;
    size_t nw = (size_t)(src->nr_feature + (src->bias >= 0 ? 1 : 0)) * (size_t)nr_w;
    m->w = malloc(nw * sizeof *m->w);
    m->label = malloc((size_t)src->nr_class * sizeof *m->label);
    if (!m->w || !m->label) {
        free_model(m);
        return NULL;
    }
    memcpy(m->w, src->w, nw * sizeof *m->w);
    memcpy(m->label, src->label, (size_t)src->nr_class * sizeof *m->label);
    return m;
}

/* ---- scoring --------------------------------------------------------------- */

/* Fills nodes (dim + 2 entries) with the nonzero features of the normalised
 * x, the bias feature and the terminator. */
static void fill_nodes(const double *xn, size_t dim, struct feature_node *nodes)
{
    size_t t = 0;
    for (size_t j = 0; j < dim; j++)
        if (xn[j] != 0) nodes[t++] = (struct feature_node){(int)j + 1, xn[j]};
    nodes[t++] = (struct feature_node){(int)dim + 1, 1.0};
    nodes[t] = (struct feature_node){-1, 0};
}

/* Scores with a liblinear model: probs[label index] for our k labels. A
 * label the model never saw (a CV fold) gets 0. */
static void logreg_scores(const struct model *m, const struct feature_node *x, size_t k,
                          double *probs, double *tmp)
{
    predict_probability(m, x, tmp);
    for (size_t i = 0; i < k; i++)
        probs[i] = 0;
    for (int j = 0; j < m->nr_class; j++)
        probs[m->label[j]] = tmp[j];
}

/* Centroid scores: softmax of cosine similarity / temperature. */
static void centroid_scores(const double *centroids, size_t k, size_t dim, const double *xn,
                            double *probs)
{
    double mx = -INFINITY;
    for (size_t i = 0; i < k; i++) {
        double dot = 0;
        for (size_t j = 0; j < dim; j++)
            dot += centroids[i * dim + j] * xn[j];
        probs[i] = dot / CENTROID_TEMPERATURE;
        if (probs[i] > mx) mx = probs[i];
    }
    double sum = 0;
    for (size_t i = 0; i < k; i++) {
        probs[i] = exp(probs[i] - mx);
        sum += probs[i];
    }
    for (size_t i = 0; i < k; i++)
        probs[i] /= sum;
}

/* Centroids (L2-normalised means of L2-normalised rows) of the rows with
 * use[i] set (use NULL = all). Every label must have a row. */
static void compute_centroids(const double *xs, const int *y, size_t n, size_t dim, size_t k,
                              const unsigned char *use, double *centroids)
{
    memset(centroids, 0, k * dim * sizeof *centroids);
    for (size_t i = 0; i < n; i++) {
        if (use && !use[i]) continue;
        double *c = &centroids[(size_t)y[i] * dim];
        for (size_t j = 0; j < dim; j++)
            c[j] += xs[i * dim + j];
    }
    for (size_t l = 0; l < k; l++) {
        double ss = 0, *c = &centroids[l * dim];
        for (size_t j = 0; j < dim; j++)
            ss += c[j] * c[j];
        double inv = ss > 0 ? 1.0 / sqrt(ss) : 0;
        for (size_t j = 0; j < dim; j++)
            c[j] *= inv;
    }
}

static size_t argmax(const double *v, size_t k)
{
    size_t b = 0;
    for (size_t i = 1; i < k; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* ---- training -------------------------------------------------------------- */

typedef struct {
    size_t n, dim, k;
    const double *xs;           /* n x dim, normalised */
    const int *y;               /* label index per row */
    struct feature_node **rows; /* liblinear rows (logreg only) */
    const int *fold;            /* fold per row */
    int folds;
} cv_data;

static struct model *train_logreg(const cv_data *d, int hold_out, double C, vd_error *err)
{
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->fold[i] != hold_out) m++;
    struct feature_node **x = malloc(m * sizeof *x);
    double *y = malloc(m * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        vd_error_set(err, VD_ERR_NOMEM, "train: out of memory");
        return NULL;
    }
    size_t t = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->fold[i] != hold_out) {
            x[t] = d->rows[i];
            y[t++] = d->y[i];
        }
    struct problem prob = {.l = (int)m, .n = (int)d->dim + 1, .y = y, .x = x, .bias = 1.0};
    struct parameter param = {.solver_type = L2R_LR, .eps = 0.01, .C = C, .p = 0.1};
    const char *bad = check_parameter(&prob, &param);
    struct model *model = NULL;
    if (bad) {
        vd_error_set(err, VD_ERR_INTERNAL, "train: liblinear refused the parameters: %s", bad);
    } else {
        set_print_string_function(quiet);
        model = train(&prob, &param);
        if (!model) vd_error_set(err, VD_ERR_NOMEM, "train: liblinear failed");
    }
    free(x);
    free(y);
    return model;
}

/* Runs k-fold CV for one configuration, writing out-of-fold scores (n x k). */
static vd_status cross_validate(const cv_data *d, vd_clf_algorithm alg, double C, double *oof,
                                vd_error *err)
{
    double *tmp = malloc(d->k * sizeof *tmp);
    double *cent = alg == VD_CLF_CENTROID ? malloc(d->k * d->dim * sizeof *cent) : NULL;
    unsigned char *use = malloc(d->n);
    if (!tmp || !use || (alg == VD_CLF_CENTROID && !cent)) {
        free(tmp);
        free(cent);
        free(use);
        return vd_error_set(err, VD_ERR_NOMEM, "train: out of memory");
    }
    vd_status rc = VD_OK;
    for (int f = 0; f < d->folds && rc == VD_OK; f++) {
        if (alg == VD_CLF_LOGREG) {
            struct model *m = train_logreg(d, f, C, err);
            if (!m) {
                rc = err ? err->code : VD_ERR_INTERNAL;
                break;
            }
            for (size_t i = 0; i < d->n; i++)
                if (d->fold[i] == f) logreg_scores(m, d->rows[i], d->k, &oof[i * d->k], tmp);
            free_and_destroy_model(&m);
        } else {
            for (size_t i = 0; i < d->n; i++)
                use[i] = d->fold[i] != f;
            compute_centroids(d->xs, d->y, d->n, d->dim, d->k, use, cent);
            for (size_t i = 0; i < d->n; i++)
                if (d->fold[i] == f)
                    centroid_scores(cent, d->k, d->dim, &d->xs[i * d->dim], &oof[i * d->k]);
        }
    }
    free(tmp);
    free(cent);
    free(use);
    return rc;
}

/* Mean cross-entropy of the out-of-fold probabilities (clipped at 1e-15). */
static double oof_log_loss(const cv_data *d, const double *oof)
{
    double sum = 0;
    for (size_t i = 0; i < d->n; i++) {
        double p = oof[i * d->k + (size_t)d->y[i]];
        sum -= log(p > 1e-15 ? p : 1e-15);
    }
    return sum / (double)d->n;
}

static double oof_accuracy(const cv_data *d, const double *oof)
{
    size_t ok = 0;
    for (size_t i = 0; i < d->n; i++)
        if ((int)argmax(&oof[i * d->k], d->k) == d->y[i]) ok++;
    return (double)ok / (double)d->n;
}

/* Builds the metrics JSON and fills r's summary numbers. oof may be NULL
 * (no CV). */
static json_t *build_metrics(const cv_data *d, char *const *labels, const size_t *counts,
                             const double *oof, vd_clf_algorithm alg, const double *grid,
                             const double *grid_acc, size_t ngrid, double C, double threshold,
                             const char *threshold_rule, vd_train_result *r)
{
    json_t *m = json_object();
    json_object_set_new(m, "algorithm", json_string(vd_clf_algorithm_name(alg)));
    json_object_set_new(m, "normalization", json_string("l2"));
    json_object_set_new(m, "n_examples", json_integer((json_int_t)d->n));
    json_object_set_new(m, "dim", json_integer((json_int_t)d->dim));
    json_t *jl = json_array(), *jc = json_object();
    for (size_t i = 0; i < d->k; i++) {
        json_array_append_new(jl, json_string(labels[i]));
        json_object_set_new(jc, labels[i], json_integer((json_int_t)counts[i]));
    }
    json_object_set_new(m, "labels", jl);
    json_object_set_new(m, "counts", jc);
    json_object_set_new(m, "cv_folds", json_integer(oof ? d->folds : 0));
    if (alg == VD_CLF_LOGREG) {
        json_object_set_new(m, "C", json_real(C));
        json_t *g = json_array();
        for (size_t i = 0; i < ngrid && grid_acc; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "C", json_real(grid[i]));
            json_object_set_new(e, "cv_accuracy", json_real(grid_acc[i]));
            json_object_set_new(e, "cv_log_loss", json_real(grid_acc[ngrid + i]));
            json_array_append_new(g, e);
        }
        json_object_set_new(m, "c_grid", g);
    } else {
        json_object_set_new(m, "temperature", json_real(CENTROID_TEMPERATURE));
    }
    json_object_set_new(m, "threshold", json_real(threshold));
    json_object_set_new(m, "threshold_rule", json_string(threshold_rule));
    r->cv_folds = oof ? d->folds : 0;
    r->cv_accuracy = -1;
    r->macro_f1 = -1;
    if (!oof) {
        json_object_set_new(m, "cv_accuracy", json_null());
        json_object_set_new(m, "note",
                            json_string("cross-validation needs at least 2 examples "
                                        "of every label; metrics are not available"));
        return m;
    }
    size_t k = d->k;
    size_t *conf = calloc(k * k, sizeof *conf);
    if (!conf) {
        json_decref(m);
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++)
        conf[(size_t)d->y[i] * k + argmax(&oof[i * k], k)]++;
    size_t correct = 0;
    double f1_sum = 0;
    json_t *pc = json_object(), *cm = json_array();
    for (size_t a = 0; a < k; a++) {
        size_t tp = conf[a * k + a], pred = 0, sup = 0;
        json_t *row = json_array();
        for (size_t b = 0; b < k; b++) {
            pred += conf[b * k + a];
            sup += conf[a * k + b];
            json_array_append_new(row, json_integer((json_int_t)conf[a * k + b]));
        }
        json_array_append_new(cm, row);
        correct += tp;
        double p = pred ? (double)tp / (double)pred : 0;
        double rc = sup ? (double)tp / (double)sup : 0;
        double f1 = p + rc > 0 ? 2 * p * rc / (p + rc) : 0;
        f1_sum += f1;
        json_t *e = json_object();
        json_object_set_new(e, "precision", json_real(p));
        json_object_set_new(e, "recall", json_real(rc));
        json_object_set_new(e, "f1", json_real(f1));
        json_object_set_new(e, "support", json_integer((json_int_t)sup));
        json_object_set_new(pc, labels[a], e);
    }
    free(conf);
    r->cv_accuracy = (double)correct / (double)d->n;
    r->macro_f1 = f1_sum / (double)k;
    json_object_set_new(m, "cv_accuracy", json_real(r->cv_accuracy));
    json_object_set_new(m, "macro_f1", json_real(r->macro_f1));
    json_object_set_new(m, "cv_log_loss", json_real(oof_log_loss(d, oof)));
    json_object_set_new(m, "per_class", pc);
    json_object_set_new(m, "confusion", cm);
    return m;
}

/* The threshold rule (docs/training.md): the reject_quantile quantile of
 * the top scores of correctly classified out-of-fold examples. */
static double choose_threshold(const cv_data *d, const double *oof, double q)
{
    double *s = malloc(d->n * sizeof *s);
    if (!s) return 0;
    size_t c = 0;
    for (size_t i = 0; i < d->n; i++) {
        size_t b = argmax(&oof[i * d->k], d->k);
        if ((int)b == d->y[i]) s[c++] = oof[i * d->k + b];
    }
    double t = 0;
    if (c > 0) {
        qsort(s, c, sizeof *s, cmp_double);
        t = s[(size_t)floor(q * (double)c)];
    }
    free(s);
    return t;
}

void vd_train_result_clear(vd_train_result *r)
{
    if (!r) return;
    vd_classifier_free(r->classifier);
    free(r->metrics_json);
    memset(r, 0, sizeof *r);
}

vd_status vd_train(const float *vectors, size_t n, size_t dim, const char *const *labels,
                   const vd_train_opts *opts, vd_train_result *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_train_opts o = opts ? *opts : (vd_train_opts){0};
    if (o.folds <= 0) o.folds = 5;
    if (o.min_per_label_logreg <= 0) o.min_per_label_logreg = 5;
    if (!o.c_grid || o.n_c_grid == 0) {
        o.c_grid = default_grid;
        o.n_c_grid = sizeof default_grid / sizeof default_grid[0];
    }
    if (o.reject_quantile <= 0 || o.reject_quantile >= 1) o.reject_quantile = 0.05;
    if (o.seed == 0) o.seed = 1;

    if (n == 0) return vd_error_set(err, VD_ERR_INVALID, "train: no examples");
    if (dim == 0 || dim > (1u << 24))
        return vd_error_set(err, VD_ERR_INVALID, "train: bad vector dimension %zu", dim);
    if (n > (size_t)INT32_MAX / 2)
        return vd_error_set(err, VD_ERR_LIMIT, "train: too many examples (%zu)", n);
    for (size_t i = 0; i < n; i++) {
        if (!labels[i] || !*labels[i])
            return vd_error_set(err, VD_ERR_INVALID, "train: example %zu has an empty label", i);
        if (strcmp(labels[i], VD_UNKNOWN_LABEL) == 0)
            return vd_error_set(err, VD_ERR_INVALID,
                                "train: example %zu uses the reserved label '%s'", i,
                                VD_UNKNOWN_LABEL);
        for (size_t j = 0; j < dim; j++)
            if (!isfinite(vectors[i * dim + j]))
                return vd_error_set(err, VD_ERR_INVALID,
                                    "train: example %zu has a non-finite value at %zu", i, j);
    }

    vd_status rc = VD_OK;
    char **sorted = malloc(n * sizeof *sorted);
    vd_classifier *c = calloc(1, sizeof *c);
    double *xs = malloc(n * dim * sizeof *xs);
    int *y = malloc(n * sizeof *y), *fold = malloc(n * sizeof *fold);
    size_t *counts = NULL;
    double *oof = NULL, *best_oof = NULL, *grid_acc = NULL;
    struct feature_node **rows = NULL, *nodes = NULL;
    json_t *metrics = NULL;
    if (!sorted || !c || !xs || !y || !fold) goto nomem;

    /* Labels: sorted, distinct. */
    for (size_t i = 0; i < n; i++)
        sorted[i] = (char *)labels[i];
    qsort(sorted, n, sizeof *sorted, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(sorted[k - 1], sorted[i]) != 0) sorted[k++] = sorted[i];
    if (k < 2) {
        rc = vd_error_set(err, VD_ERR_INVALID,
                          "train: needs at least 2 distinct labels, but every example is "
                          "labelled '%s'",
                          sorted[0]);
        goto done;
    }
    c->labels = calloc(k, sizeof *c->labels);
    counts = calloc(k, sizeof *counts);
    if (!c->labels || !counts) goto nomem;
    c->k = k;
    for (size_t i = 0; i < k; i++)
        if (!(c->labels[i] = vd_strdup(sorted[i]))) goto nomem;
    c->dim = dim;
    for (size_t i = 0; i < n; i++) {
        y[i] = (int)find_label(c->labels, k, labels[i]);
        counts[y[i]]++;
        l2_normalise(&vectors[i * dim], dim, &xs[i * dim]);
    }
    size_t min_count = n;
    for (size_t i = 0; i < k; i++)
        if (counts[i] < min_count) min_count = counts[i];

    vd_clf_algorithm alg = o.algorithm;
    if (alg == VD_CLF_AUTO)
        alg = min_count >= (size_t)o.min_per_label_logreg ? VD_CLF_LOGREG : VD_CLF_CENTROID;
    c->algorithm = alg;
    int folds = (int)(min_count < (size_t)o.folds ? min_count : (size_t)o.folds);
    if (folds < 2) folds = 0;

    /* Stratified folds: shuffle each label's examples, deal them round-robin. */
    {
        uint64_t st = o.seed;
        size_t *idx = malloc(n * sizeof *idx);
        if (!idx) goto nomem;
        for (size_t l = 0; l < k; l++) {
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if ((size_t)y[i] == l) idx[m++] = i;
            for (size_t i = m; i > 1; i--) {
                size_t j = (size_t)(splitmix(&st) % i);
                size_t t = idx[i - 1];
                idx[i - 1] = idx[j];
                idx[j] = t;
            }
            for (size_t i = 0; i < m; i++)
                fold[idx[i]] = folds ? (int)(i % (size_t)folds) : 0;
        }
        free(idx);
    }

    if (alg == VD_CLF_LOGREG) {
        rows = malloc(n * sizeof *rows);
        nodes = malloc(n * (dim + 2) * sizeof *nodes);
        if (!rows || !nodes) goto nomem;
        for (size_t i = 0; i < n; i++) {
            rows[i] = &nodes[i * (dim + 2)];
            fill_nodes(&xs[i * dim], dim, rows[i]);
        }
    }
    cv_data d = {
        .n = n, .dim = dim, .k = k, .xs = xs, .y = y, .rows = rows, .fold = fold, .folds = folds};
    double C = 0;
    if (folds) {
        oof = malloc(n * k * sizeof *oof);
        best_oof = malloc(n * k * sizeof *best_oof);
        if (!oof || !best_oof) goto nomem;
        if (alg == VD_CLF_LOGREG) {
            grid_acc = malloc(2 * o.n_c_grid * sizeof *grid_acc); /* accuracy, log-loss */
            if (!grid_acc) goto nomem;
            double best = -1, best_loss = INFINITY;
            for (size_t g = 0; g < o.n_c_grid; g++) {
                if (!(o.c_grid[g] > 0)) {
                    rc = vd_error_set(err, VD_ERR_INVALID, "train: C must be > 0, got %g",
                                      o.c_grid[g]);
                    goto done;
                }
                if ((rc = cross_validate(&d, alg, o.c_grid[g], oof, err))) goto done;
                grid_acc[g] = oof_accuracy(&d, oof);
                double loss = grid_acc[o.n_c_grid + g] = oof_log_loss(&d, oof);
                /* Best accuracy; ties go to the lower log-loss (better
                 * calibrated scores), then to the earlier C. */
                if (grid_acc[g] > best || (grid_acc[g] == best && loss < best_loss)) {
                    best = grid_acc[g];
                    best_loss = loss;
                    C = o.c_grid[g];
                    memcpy(best_oof, oof, n * k * sizeof *oof);
                }
            }
        } else {
            if ((rc = cross_validate(&d, alg, 0, best_oof, err))) goto done;
        }
    } else if (alg == VD_CLF_LOGREG) {
        C = 1; /* no CV to choose with: liblinear's default */
    }
    c->C = C;

    /* The final classifier, on every example. */
    if (alg == VD_CLF_LOGREG) {
        struct model *m = train_logreg(&d, -1, C, err);
        if (!m) {
            rc = err ? err->code : VD_ERR_INTERNAL;
            goto done;
        }
        c->model = own_model(m);
        free_and_destroy_model(&m);
        if (!c->model) goto nomem;
    } else {
        c->centroids = malloc(k * dim * sizeof *c->centroids);
        if (!c->centroids) goto nomem;
        compute_centroids(xs, y, n, dim, k, NULL, c->centroids);
    }

    const char *rule = "none: predictions are never 'unknown'";
    if (o.unknown_threshold && folds) {
        c->threshold = choose_threshold(&d, best_oof, o.reject_quantile);
        rule = "the reject_quantile quantile of the top scores of correctly classified "
               "cross-validation examples";
    } else if (o.unknown_threshold) {
        rule = "none: cross-validation was impossible, so no threshold could be chosen";
    }
    metrics = build_metrics(&d, c->labels, counts, folds ? best_oof : NULL, alg, o.c_grid, grid_acc,
                            o.n_c_grid, C, c->threshold, rule, out);
    if (!metrics) goto nomem;
    if (o.unknown_threshold)
        json_object_set_new(metrics, "reject_quantile", json_real(o.reject_quantile));
    out->metrics_json = json_dumps(metrics, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (!out->metrics_json) goto nomem;
    out->classifier = c;
    out->algorithm = alg;
    out->C = C;
    out->threshold = c->threshold;
    c = NULL;
    goto done;
nomem:
    rc = vd_error_set(err, VD_ERR_NOMEM, "train: out of memory");
done:
    if (rc) {
        free(out->metrics_json);
        memset(out, 0, sizeof *out);
    }
    json_decref(metrics);
    vd_classifier_free(c);
    free(sorted);
    free(xs);
    free(y);
    free(fold);
    free(counts);
    free(oof);
    free(best_oof);
    free(grid_acc);
    free(rows);
    free(nodes);
    return rc;
}

/* ---- prediction ------------------------------------------------------------ */

vd_status vd_classifier_predict(const vd_classifier *c, const float *x, size_t dim,
                                vd_prediction *out, double *scores, vd_error *err)
{
    if (dim != c->dim)
        return vd_error_set(err, VD_ERR_INVALID,
                            "predict: the classifier takes vectors of %zu, got %zu", c->dim, dim);
    for (size_t j = 0; j < dim; j++)
        if (!isfinite(x[j]))
            return vd_error_set(err, VD_ERR_INVALID, "predict: non-finite value at %zu", j);
    double *xn = malloc(dim * sizeof *xn);
    double *probs = malloc(c->k * sizeof *probs);
    double *tmp = malloc(c->k * sizeof *tmp);
    struct feature_node *nodes =
        c->algorithm == VD_CLF_LOGREG ? malloc((dim + 2) * sizeof *nodes) : NULL;
    if (!xn || !probs || !tmp || (c->algorithm == VD_CLF_LOGREG && !nodes)) {
        free(xn);
        free(probs);
        free(tmp);
        free(nodes);
        return vd_error_set(err, VD_ERR_NOMEM, "predict: out of memory");
    }
    l2_normalise(x, dim, xn);
    if (c->algorithm == VD_CLF_LOGREG) {
        fill_nodes(xn, dim, nodes);
        logreg_scores(c->model, nodes, c->k, probs, tmp);
    } else {
        centroid_scores(c->centroids, c->k, dim, xn, probs);
    }
    size_t b = argmax(probs, c->k);
    out->top = (int)b;
    out->score = probs[b];
    if (probs[b] < c->threshold) {
        out->index = -1;
        out->label = VD_UNKNOWN_LABEL;
    } else {
        out->index = (int)b;
        out->label = c->labels[b];
    }
    if (scores) memcpy(scores, probs, c->k * sizeof *probs);
    free(xn);
    free(probs);
    free(tmp);
    free(nodes);
    return VD_OK;
}

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
