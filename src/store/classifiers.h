/* persist.h: the glue between trained classifiers and the store, for the
 * training-session job and the predict route.
 *
 * A training job calls, in order: vd_train_opts_for_kind (the defaults for
 * an image or a face session), vd_train (train/classifier.h) on the
 * embedded examples, then vd_train_save, which stores the classifier and
 * ends the session succeeded with its metrics and threshold, atomically.
 * The predict route calls vd_train_load and then vd_classifier_predict and
 * vd_train_prediction_json for each input. */
#ifndef VD_TRAIN_PERSIST_H
#define VD_TRAIN_PERSIST_H

#include <jansson.h>

#include "core/err.h"
#include "store/sessions.h"
#include "store/store.h"
#include "train/classifier.h"

/* Fills *o with the defaults for a session kind: automatic algorithm, 5
 * folds, and for face sessions (identities) an "unknown" threshold chosen
 * from the CV scores; image sessions never answer "unknown". */
void vd_train_opts_for_kind(vd_train_opts *o, vd_session_kind kind);

/* Stores r's classifier (serialised, with its labels) for session_id and
 * ends the session succeeded with r's metrics and threshold, in one
 * transaction. VD_ERR_NOT_FOUND for no such session; VD_ERR_STATE when the
 * session has already ended (canceled meanwhile): then nothing is stored. */
vd_status vd_train_save(vd_store *s, const char *session_id, const vd_train_result *r,
                        vd_error *err);

/* Loads the classifier of a session (after a restart too). *out is owned by
 * the caller (vd_classifier_free). VD_ERR_NOT_FOUND when the session has no
 * classifier (not trained yet, failed, or no such session); VD_ERR_INVALID
 * when the stored blob cannot be read. */
vd_status vd_train_load(vd_store *s, const char *session_id, vd_classifier **out, vd_error *err);

/* Returns a new JSON object {"path", "label", "score", "scores": {label: p}}
 * for one prediction (path may be NULL: then no "path"), or NULL when out
 * of memory. scores holds vd_classifier_nlabels(c) values. */
json_t *vd_train_prediction_json(const vd_classifier *c, const char *path, const vd_prediction *p,
                                 const double *scores);

#endif
