/* prediction.h: one prediction of a classifier (train/classifier.h) as the
 * JSON object that `visiond predict` prints and the predict route answers. */
#ifndef VD_TRAIN_PREDICTION_H
#define VD_TRAIN_PREDICTION_H

#include <jansson.h>

#include "train/classifier.h"

/* Returns a new JSON object {"path", "label", "score", "scores": {label: p}}
 * for one prediction (path may be NULL: then no "path"), or NULL when out
 * of memory. scores holds vd_classifier_nlabels(c) values. */
json_t *vd_train_prediction_json(const vd_classifier *c, const char *path, const vd_prediction *p,
                                 const double *scores);

#endif
