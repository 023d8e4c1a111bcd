/* classifiers.h: trained classifiers (train/classifier.h) kept in the store,
 * for the training-session job and predict.
 *
 * A training job calls, in order: vd_session_train_opts (the defaults for an
 * image or a face session), vd_train (train/classifier.h) on the embedded
 * examples, then vd_store_classifier_save, which stores the classifier and
 * ends the session succeeded with its metrics and threshold, atomically.
 * Predict (service/training.h) calls vd_store_classifier_load. The rows
 * themselves are store/sessions.h's vd_store_classifier_put/get; train/
 * knows nothing of the store. */
#ifndef VD_STORE_CLASSIFIERS_H
#define VD_STORE_CLASSIFIERS_H

#include "core/err.h"
#include "store/sessions.h"
#include "store/store.h"
#include "train/classifier.h"

/* Fills *o with the defaults for a session kind: automatic algorithm, 5
 * folds, and for face sessions (identities) an "unknown" threshold chosen
 * from the CV scores; image sessions never answer "unknown". */
void vd_session_train_opts(vd_train_opts *o, vd_session_kind kind);

/* Stores r's classifier (serialised, with its labels) for session_id and
 * ends the session succeeded with r's metrics and threshold, in one
 * transaction. VD_ERR_NOT_FOUND for no such session; VD_ERR_STATE when the
 * session has already ended (canceled meanwhile): then nothing is stored. */
vd_status vd_store_classifier_save(vd_store *s, const char *session_id, const vd_train_result *r,
                                   vd_error *err);

/* Loads the classifier of a session (after a restart too). *out is owned by
 * the caller (vd_classifier_free). VD_ERR_NOT_FOUND when the session has no
 * classifier (not trained yet, failed, or no such session); VD_ERR_INVALID
 * when the stored blob cannot be read. */
vd_status vd_store_classifier_load(vd_store *s, const char *session_id, vd_classifier **out,
                                   vd_error *err);

#endif
