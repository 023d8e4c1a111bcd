/* classifiers.c: storing and loading trained classifiers. */
#include "store/classifiers.h"

#include <stdlib.h>
#include <string.h>

void vd_session_train_opts(vd_train_opts *o, vd_session_kind kind)
{
    memset(o, 0, sizeof *o);
    o->algorithm = VD_CLF_AUTO;
    o->unknown_threshold = kind == VD_SESSION_FACE;
}

vd_status vd_store_classifier_save(vd_store *s, const char *session_id, const vd_train_result *r,
                                   vd_error *err)
{
    if (!r->classifier || !r->metrics_json)
        return vd_error_set(err, VD_ERR_INVALID, "classifier_save: no trained classifier");
    void *blob = NULL;
    size_t len = 0;
    char *labels = vd_classifier_labels_json(r->classifier);
    if (!labels) return vd_error_set(err, VD_ERR_NOMEM, "classifier_save: out of memory");
    vd_status rc = vd_classifier_serialize(r->classifier, &blob, &len, err);
    if (rc == VD_OK) rc = vd_store_begin(s, err);
    if (rc == VD_OK) {
        /* Finish first: a session canceled meanwhile refuses (VD_ERR_STATE),
         * and the rollback leaves no classifier behind. */
        rc = vd_store_session_finish(s, session_id, VD_SESSION_SUCCEEDED, r->metrics_json,
                                     r->threshold, NULL, err);
        if (rc == VD_OK)
            rc = vd_store_classifier_put(s, session_id, vd_clf_algorithm_name(r->algorithm), labels,
                                         blob, len, err);
        if (rc == VD_OK)
            rc = vd_store_commit(s, err);
        else
            vd_store_rollback(s);
    }
    free(blob);
    free(labels);
    return rc;
}

vd_status vd_store_classifier_load(vd_store *s, const char *session_id, vd_classifier **out,
                                   vd_error *err)
{
    *out = NULL;
    vd_stored_classifier sc;
    vd_status rc = vd_store_classifier_get(s, session_id, &sc, err);
    if (rc) return rc;
    rc = vd_classifier_deserialize(sc.blob, sc.blob_len, out, err);
    vd_stored_classifier_clear(&sc);
    return rc;
}
