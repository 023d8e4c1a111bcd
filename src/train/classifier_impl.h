/* classifier_impl.h: the classifier object, shared by classifier.c (training, prediction)
 * and classifier_blob.c (serialisation). Private to src/train. */
#ifndef VD_TRAIN_CLASSIFIER_IMPL_H
#define VD_TRAIN_CLASSIFIER_IMPL_H

#include <linear.h>
#include <stddef.h>

#include "train/classifier.h"

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

#endif
