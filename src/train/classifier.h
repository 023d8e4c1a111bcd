/* classifier.h: classifiers trained on embedding vectors (training sessions).
 *
 * vd_train takes n vectors of one dimension with a label each and returns a
 * classifier plus metrics measured by stratified k-fold cross-validation
 * (docs/training.md has the details and measured numbers):
 *
 *   - "logreg": L2-regularised logistic regression (liblinear's L2R_LR).
 *     liblinear 2.3 has no multinomial solver: with more than two labels it
 *     trains one-vs-rest binary models, and probabilities are its
 *     predict_probability's: each class's sigmoid, divided by their sum.
 *     C is chosen from a grid (default 0.01, 0.1, 1, 10, 100) by CV accuracy,
 *     ties broken by the lower CV log-loss.
 *   - "centroid": nearest centroid by cosine similarity; scores are a
 *     softmax of the similarities divided by a temperature of 0.1.
 *
 * Optional priors (vd_train_opts.priors) pull each label's centroid
 * toward a given vector, e.g. its prompt's text embedding when examples
 * are few (docs/training.md "Prompt priors").
 *
 * AUTO (the default) cross-validates both on the same folds and keeps
 * logreg only when its CV accuracy is strictly higher than the centroid's
 * (a tie, or CV impossible because a label has one example: centroid).
 *
 * Every vector is L2-normalised first (the same at training and prediction
 * time; nothing is fitted, so nothing else needs storing).
 *
 * Predictions give the top label, its score (a probability) and every
 * label's score; the answer is "unknown" when the top score is below the
 * classifier's threshold. With unknown_threshold set (face identity), the
 * threshold is the 5% quantile of the top scores of correctly classified
 * CV examples (so about 95% of known examples are still recognised);
 * otherwise it is 0 (never unknown).
 *
 * A classifier serialises to a self-contained little-endian blob (labels
 * included) that vd_classifier_deserialize reads back after a restart.
 * A vd_classifier is immutable after training (except set_threshold) and
 * may be shared by threads for prediction. vd_train keeps no state between
 * calls; it sets liblinear's process-wide print function to a no-op (the
 * same value every time) to keep liblinear off stdout. */
#ifndef VD_TRAIN_CLASSIFIER_H
#define VD_TRAIN_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define VD_UNKNOWN_LABEL "unknown"

typedef enum { VD_CLF_AUTO = 0, VD_CLF_LOGREG, VD_CLF_CENTROID } vd_clf_algorithm;

typedef struct {
    vd_clf_algorithm algorithm; /* AUTO: the one with the better CV accuracy (see above) */
    int folds;                  /* CV folds; 0 = 5 (fewer when a label has fewer examples) */
    const double *c_grid;       /* logreg C candidates; NULL = 0.01, 0.1, 1, 10, 100 */
    size_t n_c_grid;
    int unknown_threshold;  /* 1: choose the "unknown" threshold from CV scores */
    double reject_quantile; /* share of correct CV answers the threshold may reject; 0 = 0.05 */
    uint64_t seed;          /* fold shuffling (results are deterministic per seed); 0 = 1 */
    /* Priors (a session's label prompts through a CLIP text tower): npriors
     * rows of dim floats, row i for label prior_labels[i]. Each is
     * L2-normalised and added prior_weight times (0 = 1: one example's
     * worth) to its label's centroid sum, in every CV fold and the final
     * fit, so CV measures it; logreg ignores them. A prior for a label no
     * example has is ignored. NULL / 0: none. */
    const float *priors;
    const char *const *prior_labels;
    size_t npriors;
    double prior_weight;
} vd_train_opts;

typedef struct vd_classifier vd_classifier;

/* What vd_train returns. Owned fields are freed by vd_train_result_clear. */
typedef struct {
    vd_classifier *classifier; /* owned: trained on every example */
    char *metrics_json;        /* owned: see docs/training.md for the fields */
    vd_clf_algorithm algorithm;
    int cv_folds;       /* 0 when CV was impossible (a label with 1 example) */
    double cv_accuracy; /* -1 when CV was impossible */
    double macro_f1;    /* -1 when CV was impossible */
    double C;           /* the chosen C (logreg), 0 for centroid */
    double threshold;
} vd_train_result;

/* One prediction. */
typedef struct {
    const char *label; /* borrowed from the classifier, or VD_UNKNOWN_LABEL */
    int index;         /* the top label's index, -1 when unknown */
    int top;           /* the top label's index even when unknown */
    double score;      /* the top label's score (probability) */
} vd_prediction;

/* Returns "auto", "logreg" or "centroid". */
const char *vd_clf_algorithm_name(vd_clf_algorithm a);

/* Trains on vectors (n rows of dim floats, row-major) labelled labels[i].
 * opts may be NULL. VD_ERR_INVALID, with the example's index in the
 * message, for: no examples, dim 0, an empty or NULL label, the reserved
 * label "unknown", a non-finite value, or fewer than two distinct labels;
 * a prior with a NULL label, a non-finite value or all zeros.
 * *out is cleared first; on success the caller owns its fields. */
vd_status vd_train(const float *vectors, size_t n, size_t dim, const char *const *labels,
                   const vd_train_opts *opts, vd_train_result *out, vd_error *err);

/* Frees the owned fields of *r and zeroes it. */
void vd_train_result_clear(vd_train_result *r);

/* Frees a classifier (NULL is fine). */
void vd_classifier_free(vd_classifier *c);

vd_clf_algorithm vd_classifier_algorithm(const vd_classifier *c);
size_t vd_classifier_nlabels(const vd_classifier *c);
size_t vd_classifier_dim(const vd_classifier *c);
/* Returns label i (borrowed), labels sorted by strcmp. */
const char *vd_classifier_label(const vd_classifier *c, size_t i);
double vd_classifier_threshold(const vd_classifier *c);
void vd_classifier_set_threshold(vd_classifier *c, double threshold);

/* Returns the labels as a malloc'd JSON array text (caller frees), or NULL
 * when out of memory. */
char *vd_classifier_labels_json(const vd_classifier *c);

/* Predicts the label of one vector of dim floats. scores (may be NULL)
 * receives nlabels probabilities in label order, summing to 1.
 * VD_ERR_INVALID for a dimension mismatch or a non-finite value. */
vd_status vd_classifier_predict(const vd_classifier *c, const float *x, size_t dim,
                                vd_prediction *out, double *scores, vd_error *err);

/* Serialises the classifier into a malloc'd blob (*blob, *len; caller frees). */
vd_status vd_classifier_serialize(const vd_classifier *c, void **blob, size_t *len, vd_error *err);

/* Reads a blob from vd_classifier_serialize. VD_ERR_INVALID for anything
 * malformed (wrong magic, version, truncated, inconsistent sizes). */
vd_status vd_classifier_deserialize(const void *blob, size_t len, vd_classifier **out,
                                    vd_error *err);

#endif
