/* prediction.c: a prediction as JSON. */
#include "train/prediction.h"

json_t *vd_train_prediction_json(const vd_classifier *c, const char *path, const vd_prediction *p,
                                 const double *scores)
{
    json_t *o = json_object(), *sc = json_object();
    if (!o || !sc) {
        json_decref(o);
        json_decref(sc);
        return NULL;
    }
    if (path) json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "label", json_string(p->label));
    json_object_set_new(o, "score", json_real(p->score));
    for (size_t i = 0; i < vd_classifier_nlabels(c); i++)
        json_object_set_new(sc, vd_classifier_label(c, i), json_real(scores[i]));
    json_object_set_new(o, "scores", sc);
    return o;
}
