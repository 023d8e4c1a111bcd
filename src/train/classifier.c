/* classifier.c: logistic regression (liblinear) and nearest-centroid
 * classifiers on embedding vectors, with stratified k-fold cross-validation
 * and metrics. Serialisation is in classifier_blob.c. */
#include "train/classifier.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "train/classifier_impl.h"
#include "train/liblinear.h"

#define CENTROID_TEMPERATURE 0.1

static const double default_grid[] = {0.01, 0.1, 1, 10, 100};

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
    vd_liblinear()->predict_probability(m, x, tmp);
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
 * use[i] set (use NULL = all), each sum plus w times its label's row of
 * prior (k x dim, normalised or zero; NULL = none). Every label must have
 * a row. */
static void compute_centroids(const double *xs, const int *y, size_t n, size_t dim, size_t k,
                              const unsigned char *use, const double *prior, double w,
                              double *centroids)
{
    memset(centroids, 0, k * dim * sizeof *centroids);
    for (size_t i = 0; i < n; i++) {
        if (use && !use[i]) continue;
        double *c = &centroids[(size_t)y[i] * dim];
        for (size_t j = 0; j < dim; j++)
            c[j] += xs[i * dim + j];
    }
    for (size_t j = 0; prior && j < k * dim; j++)
        centroids[j] += w * prior[j];
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
    const double *prior; /* k x dim centroid priors (zero rows: none), or NULL */
    double prior_w;
} cv_data;

/* Trains liblinear on every row outside fold hold_out (-1: every row); *out is the model. */
static vd_status train_logreg(const cv_data *d, int hold_out, double C, struct model **out,
                              vd_error *err)
{
    *out = NULL;
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->fold[i] != hold_out) m++;
    struct feature_node **x = malloc(m * sizeof *x);
    double *y = malloc(m * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return vd_error_set(err, VD_ERR_NOMEM, "train: out of memory");
    }
    size_t t = 0;
    for (size_t i = 0; i < d->n; i++)
        if (d->fold[i] != hold_out) {
            x[t] = d->rows[i];
            y[t++] = d->y[i];
        }
    struct problem prob = {.l = (int)m, .n = (int)d->dim + 1, .y = y, .x = x, .bias = 1.0};
    struct parameter param = {.solver_type = L2R_LR, .eps = 0.01, .C = C, .p = 0.1};
    const vd_liblinear_table *ll = vd_liblinear();
    const char *bad = ll->check_parameter(&prob, &param);
    vd_status rc = VD_OK;
    if (bad) {
        rc = vd_error_set(err, VD_ERR_INTERNAL, "train: liblinear refused the parameters: %s", bad);
    } else {
        ll->set_print_string_function(quiet);
        *out = ll->train(&prob, &param);
        if (!*out) rc = vd_error_set(err, VD_ERR_NOMEM, "train: liblinear failed");
    }
    free(x);
    free(y);
    return rc;
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
            struct model *m;
            if ((rc = train_logreg(d, f, C, &m, err)) != VD_OK) break;
            for (size_t i = 0; i < d->n; i++)
                if (d->fold[i] == f) logreg_scores(m, d->rows[i], d->k, &oof[i * d->k], tmp);
            vd_liblinear()->free_and_destroy_model(&m);
        } else {
            for (size_t i = 0; i < d->n; i++)
                use[i] = d->fold[i] != f;
            compute_centroids(d->xs, d->y, d->n, d->dim, d->k, use, d->prior, d->prior_w, cent);
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

/* vd_train in named steps over one scratch struct, freed in one place (scratch_free). */
typedef struct {
    vd_train_opts o;
    size_t n, dim, k;
    char **sorted;    /* the distinct labels, sorted (borrowed from the caller) */
    vd_classifier *c; /* the classifier being built; NULL once it is in the result */
    double *xs;       /* n x dim, L2-normalised */
    int *y, *fold;    /* label index and fold per example */
    size_t *counts;   /* examples per label */
    size_t min_count; /* of the least common label */
    vd_clf_algorithm alg;
    int folds;                          /* 0: CV impossible */
    struct feature_node **rows, *nodes; /* liblinear rows (logreg) */
    double *oof, *best_oof; /* n x k out-of-fold scores: the last CV run, the chosen one */
    double *grid_acc;       /* logreg: CV accuracy, then log-loss, per C of the grid */
    double C;
    int selected;     /* AUTO with CV: both algorithms were cross-validated */
    double sel[2][2]; /* [centroid, logreg][CV accuracy, CV log-loss] when selected */
    double *prior;    /* k x dim normalised priors by label index (zero rows: none), or NULL */
    size_t nprior;    /* labels with a prior */
    cv_data d;
} train_scratch;

static vd_status nomem(vd_error *err)
{
    return vd_error_set(err, VD_ERR_NOMEM, "train: out of memory");
}

static vd_train_opts train_defaults(const vd_train_opts *opts)
{
    vd_train_opts o = opts ? *opts : (vd_train_opts){0};
    if (o.folds <= 0) o.folds = 5;
    if (!o.c_grid || o.n_c_grid == 0) {
        o.c_grid = default_grid;
        o.n_c_grid = sizeof default_grid / sizeof default_grid[0];
    }
    if (o.reject_quantile <= 0 || o.reject_quantile >= 1) o.reject_quantile = 0.05;
    if (o.seed == 0) o.seed = 1;
    return o;
}

static vd_status check_examples(const float *vectors, size_t n, size_t dim,
                                const char *const *labels, vd_error *err)
{
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
    return VD_OK;
}

/* The labels (sorted, distinct: at least 2), each example's label index and normalised
 * vector, the algorithm and the number of folds. */
static vd_status index_labels(train_scratch *ts, const float *vectors, const char *const *labels,
                              vd_error *err)
{
    size_t n = ts->n, dim = ts->dim;
    ts->sorted = malloc(n * sizeof *ts->sorted);
    ts->c = calloc(1, sizeof *ts->c);
    ts->xs = malloc(n * dim * sizeof *ts->xs);
    ts->y = malloc(n * sizeof *ts->y);
    ts->fold = malloc(n * sizeof *ts->fold);
    if (!ts->sorted || !ts->c || !ts->xs || !ts->y || !ts->fold) return nomem(err);
    for (size_t i = 0; i < n; i++)
        ts->sorted[i] = (char *)labels[i];
    qsort(ts->sorted, n, sizeof *ts->sorted, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(ts->sorted[k - 1], ts->sorted[i]) != 0)
            ts->sorted[k++] = ts->sorted[i];
    if (k < 2)
        return vd_error_set(err, VD_ERR_INVALID,
                            "train: needs at least 2 distinct labels, but every example is "
                            "labelled '%s'",
                            ts->sorted[0]);
    vd_classifier *c = ts->c;
    c->labels = calloc(k, sizeof *c->labels);
    ts->counts = calloc(k, sizeof *ts->counts);
    if (!c->labels || !ts->counts) return nomem(err);
    c->k = ts->k = k;
    for (size_t i = 0; i < k; i++)
        if (!(c->labels[i] = vd_strdup(ts->sorted[i]))) return nomem(err);
    c->dim = dim;
    for (size_t i = 0; i < n; i++) {
        ts->y[i] = (int)find_label(c->labels, k, labels[i]);
        ts->counts[ts->y[i]]++;
        l2_normalise(&vectors[i * dim], dim, &ts->xs[i * dim]);
    }
    ts->min_count = n;
    for (size_t i = 0; i < k; i++)
        if (ts->counts[i] < ts->min_count) ts->min_count = ts->counts[i];
    ts->folds = (int)(ts->min_count < (size_t)ts->o.folds ? ts->min_count : (size_t)ts->o.folds);
    if (ts->folds < 2) ts->folds = 0;
    /* AUTO: decided by cross-validation (cross_validate_all); without CV, nearest centroid */
    ts->alg = ts->o.algorithm;
    ts->selected = ts->alg == VD_CLF_AUTO && ts->folds;
    if (ts->alg == VD_CLF_AUTO) ts->alg = ts->folds ? VD_CLF_LOGREG : VD_CLF_CENTROID;
    c->algorithm = ts->alg;
    return VD_OK;
}

/* The priors by label index (opts.priors), normalised; ts->prior stays NULL without any. */
static vd_status index_priors(train_scratch *ts, const float *priors, vd_error *err)
{
    const vd_train_opts *o = &ts->o;
    if (!priors || o->npriors == 0) return VD_OK;
    if (!(ts->prior = calloc(ts->k * ts->dim, sizeof *ts->prior))) return nomem(err);
    for (size_t i = 0; i < o->npriors; i++) {
        const float *x = &priors[i * ts->dim];
        double ss = 0;
        for (size_t j = 0; j < ts->dim; j++) {
            if (!isfinite(x[j]))
                return vd_error_set(err, VD_ERR_INVALID, "train: prior %zu is not finite", i);
            ss += (double)x[j] * x[j];
        }
        const char *l = o->prior_labels ? o->prior_labels[i] : NULL;
        if (!l || ss == 0)
            return vd_error_set(err, VD_ERR_INVALID, "train: prior %zu has no label or is zero", i);
        char *const *hit = bsearch(&l, ts->c->labels, ts->k, sizeof *ts->c->labels, cmp_str);
        if (!hit) continue; /* no example has that label */
        size_t y = (size_t)(hit - ts->c->labels);
        ts->nprior += 1;
        l2_normalise(x, ts->dim, &ts->prior[y * ts->dim]);
    }
    return VD_OK;
}

/* Stratified folds: shuffle each label's examples, deal them round-robin. Then the liblinear
 * rows (logreg) and the CV view of it all (ts->d). */
static vd_status assign_folds(train_scratch *ts, vd_error *err)
{
    size_t n = ts->n, dim = ts->dim;
    uint64_t st = ts->o.seed;
    size_t *idx = malloc(n * sizeof *idx);
    if (!idx) return nomem(err);
    for (size_t l = 0; l < ts->k; l++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if ((size_t)ts->y[i] == l) idx[m++] = i;
        for (size_t i = m; i > 1; i--) {
            size_t j = (size_t)(splitmix(&st) % i);
            size_t t = idx[i - 1];
            idx[i - 1] = idx[j];
            idx[j] = t;
        }
        for (size_t i = 0; i < m; i++)
            ts->fold[idx[i]] = ts->folds ? (int)(i % (size_t)ts->folds) : 0;
    }
    free(idx);
    if (ts->alg == VD_CLF_LOGREG) {
        ts->rows = malloc(n * sizeof *ts->rows);
        ts->nodes = malloc(n * (dim + 2) * sizeof *ts->nodes);
        if (!ts->rows || !ts->nodes) return nomem(err);
        for (size_t i = 0; i < n; i++) {
            ts->rows[i] = &ts->nodes[i * (dim + 2)];
            fill_nodes(&ts->xs[i * dim], dim, ts->rows[i]);
        }
    }
    ts->d = (cv_data){.prior = ts->prior,
                      .prior_w = ts->o.prior_weight > 0 ? ts->o.prior_weight : 1,
                      .n = n,
                      .dim = dim,
                      .k = ts->k,
                      .xs = ts->xs,
                      .y = ts->y,
                      .rows = ts->rows,
                      .fold = ts->fold,
                      .folds = ts->folds};
    return VD_OK;
}

/* AUTO with CV: the nearest centroid cross-validated on the same folds as logreg's grid
 * (which has just filled ts->best_oof); logreg is kept only when its CV accuracy is strictly
 * higher (a tie goes to the centroid: it selects nothing, while logreg's grid CV picks C on
 * the very folds that measure it, so its figure is the optimistic one). */
static vd_status select_algorithm(train_scratch *ts, vd_error *err)
{
    size_t nk = ts->n * ts->k;
    vd_status rc = cross_validate(&ts->d, VD_CLF_CENTROID, 0, ts->oof, err);
    if (rc != VD_OK) return rc;
    ts->sel[0][0] = oof_accuracy(&ts->d, ts->oof);
    ts->sel[0][1] = oof_log_loss(&ts->d, ts->oof);
    ts->sel[1][0] = oof_accuracy(&ts->d, ts->best_oof);
    ts->sel[1][1] = oof_log_loss(&ts->d, ts->best_oof);
    if (ts->sel[1][0] > ts->sel[0][0]) return VD_OK;
    ts->alg = ts->c->algorithm = VD_CLF_CENTROID;
    ts->C = 0;
    memcpy(ts->best_oof, ts->oof, nk * sizeof *ts->oof);
    return VD_OK;
}

/* Cross-validation: for logreg, every C of the grid (best accuracy; ties go to the lower
 * log-loss, i.e. better calibrated scores, then to the earlier C); ts->best_oof holds the
 * chosen run's out-of-fold scores. Without CV, logreg uses liblinear's default C = 1. AUTO
 * then compares with the centroid (select_algorithm). */
static vd_status cross_validate_all(train_scratch *ts, vd_error *err)
{
    const vd_train_opts *o = &ts->o;
    size_t nk = ts->n * ts->k;
    ts->C = 0;
    if (!ts->folds) {
        if (ts->alg == VD_CLF_LOGREG) ts->C = 1;
        return VD_OK;
    }
    ts->oof = malloc(nk * sizeof *ts->oof);
    ts->best_oof = malloc(nk * sizeof *ts->best_oof);
    if (!ts->oof || !ts->best_oof) return nomem(err);
    if (ts->alg != VD_CLF_LOGREG) return cross_validate(&ts->d, ts->alg, 0, ts->best_oof, err);
    ts->grid_acc = malloc(2 * o->n_c_grid * sizeof *ts->grid_acc); /* accuracy, log-loss */
    if (!ts->grid_acc) return nomem(err);
    double best = -1, best_loss = INFINITY;
    for (size_t g = 0; g < o->n_c_grid; g++) {
        if (!(o->c_grid[g] > 0))
            return vd_error_set(err, VD_ERR_INVALID, "train: C must be > 0, got %g", o->c_grid[g]);
        vd_status rc = cross_validate(&ts->d, ts->alg, o->c_grid[g], ts->oof, err);
        if (rc != VD_OK) return rc;
        double acc = ts->grid_acc[g] = oof_accuracy(&ts->d, ts->oof);
        double loss = ts->grid_acc[o->n_c_grid + g] = oof_log_loss(&ts->d, ts->oof);
        if (acc > best || (acc == best && loss < best_loss)) {
            best = acc;
            best_loss = loss;
            ts->C = o->c_grid[g];
            memcpy(ts->best_oof, ts->oof, nk * sizeof *ts->oof);
        }
    }
    return ts->selected ? select_algorithm(ts, err) : VD_OK;
}

/* The final classifier, on every example. */
static vd_status fit_final(train_scratch *ts, vd_error *err)
{
    vd_classifier *c = ts->c;
    c->C = ts->C;
    if (ts->alg == VD_CLF_LOGREG) {
        struct model *m;
        vd_status rc = train_logreg(&ts->d, -1, ts->C, &m, err);
        if (rc != VD_OK) return rc;
        c->model = own_model(m);
        vd_liblinear()->free_and_destroy_model(&m);
        return c->model ? VD_OK : nomem(err);
    }
    c->centroids = malloc(ts->k * ts->dim * sizeof *c->centroids);
    if (!c->centroids) return nomem(err);
    compute_centroids(ts->xs, ts->y, ts->n, ts->dim, ts->k, NULL, ts->d.prior, ts->d.prior_w,
                      c->centroids);
    return VD_OK;
}

/* The "unknown" threshold, the metrics, and the result (which takes the classifier). */
static vd_status finish(train_scratch *ts, vd_train_result *out, vd_error *err)
{
    vd_classifier *c = ts->c;
    const vd_train_opts *o = &ts->o;
    const char *rule = "none: predictions are never 'unknown'";
    if (o->unknown_threshold && ts->folds) {
        c->threshold = choose_threshold(&ts->d, ts->best_oof, o->reject_quantile);
        rule = "the reject_quantile quantile of the top scores of correctly classified "
               "cross-validation examples";
    } else if (o->unknown_threshold) {
        rule = "none: cross-validation was impossible, so no threshold could be chosen";
    }
    json_t *metrics =
        build_metrics(&ts->d, c->labels, ts->counts, ts->folds ? ts->best_oof : NULL, ts->alg,
                      o->c_grid, ts->grid_acc, o->n_c_grid, ts->C, c->threshold, rule, out);
    if (!metrics) return nomem(err);
    if (o->unknown_threshold)
        json_object_set_new(metrics, "reject_quantile", json_real(o->reject_quantile));
    if (ts->prior)
        json_object_set_new(metrics, "prompt_priors",
                            json_pack("{s:I,s:f,s:s}", "labels", (json_int_t)ts->nprior, "weight",
                                      ts->d.prior_w, "applies_to", "centroid"));
    if (ts->selected)
        json_object_set_new(metrics, "selection",
                            json_pack("{s:s,s:{s:f,s:f},s:{s:f,s:f}}", "rule",
                                      "higher cv_accuracy; a tie goes to centroid", "centroid",
                                      "cv_accuracy", ts->sel[0][0], "cv_log_loss", ts->sel[0][1],
                                      "logreg", "cv_accuracy", ts->sel[1][0], "cv_log_loss",
                                      ts->sel[1][1]));
    out->metrics_json = json_dumps(metrics, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(metrics);
    if (!out->metrics_json) return nomem(err);
    out->classifier = c;
    out->algorithm = ts->alg;
    out->C = ts->C;
    out->threshold = c->threshold;
    ts->c = NULL;
    return VD_OK;
}

static void scratch_free(train_scratch *ts)
{
    vd_classifier_free(ts->c);
    free(ts->sorted);
    free(ts->xs);
    free(ts->y);
    free(ts->fold);
    free(ts->counts);
    free(ts->oof);
    free(ts->best_oof);
    free(ts->grid_acc);
    free(ts->prior);
    free(ts->rows);
    free(ts->nodes);
}

vd_status vd_train(const float *vectors, size_t n, size_t dim, const char *const *labels,
                   const vd_train_opts *opts, vd_train_result *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    train_scratch ts = {.o = train_defaults(opts), .n = n, .dim = dim};
    vd_status rc = vd_liblinear_load(err);
    if (rc == VD_OK) rc = check_examples(vectors, n, dim, labels, err);
    if (rc == VD_OK) rc = index_labels(&ts, vectors, labels, err);
    if (rc == VD_OK) rc = index_priors(&ts, ts.o.priors, err);
    if (rc == VD_OK) rc = assign_folds(&ts, err);
    if (rc == VD_OK) rc = cross_validate_all(&ts, err);
    if (rc == VD_OK) rc = fit_final(&ts, err);
    if (rc == VD_OK) rc = finish(&ts, out, err);
    if (rc != VD_OK) {
        free(out->metrics_json);
        memset(out, 0, sizeof *out);
    }
    scratch_free(&ts);
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
    if (c->algorithm == VD_CLF_LOGREG) {
        vd_status rc = vd_liblinear_load(err);
        if (rc != VD_OK) return rc;
    }
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
