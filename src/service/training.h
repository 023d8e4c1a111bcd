/* training.h: the training use cases, once, for every adapter (docs/training.md).
 *
 * `visiond train` / `visiond predict` (src/cli) and POST /training/sessions,
 * POST /training/sessions/{id}/predict (src/api) are thin adapters over these
 * functions: they parse their input, call one function here and format what it
 * returns. Every rule of a training session lives here and nowhere else: the
 * limits below, the label rules, two distinct labels, the model's fit to the
 * kind, the default model, the job's retries, and the roll-back of a session
 * whose job could not be enqueued.
 *
 * Refusals. Every function returns a vd_status and fills err; when the
 * request broke a rule, *why (when why is non-NULL) is set to the rule's
 * static snake_case name, the same for every adapter (the API answers it as
 * the error code, the CLI prints it):
 *   invalid_value       name empty or longer than VD_SVC_MAX_NAME_LEN; crop
 *                       on an image session; prompt_priors on a face session
 *   no_text_tower       prompt_priors with a model that has no CLIP text tower
 *   unknown_kind        kind other than "image" or "face"
 *   unknown_model       bad model name, or the model server has no such model
 *   model_kind_mismatch the model's task does not fit the kind
 *   empty_label, label_too_long, reserved_label ("unknown")
 *   too_many_examples   more than VD_SVC_MAX_EXAMPLES (VD_ERR_LIMIT)
 *   no_examples         nothing to train on (a folder without labelled files)
 *   one_label           fewer than two distinct labels
 *   unreadable_folder   the folder cannot be listed
 *   session_not_found, session_not_ready, no_classifier (predict)
 *   path_*              a path refused by the adapter's path check (its name)
 * A failure that is not a refusal sets *why to the backend that failed:
 * "store", "queue" or "model_server" (err says why). */
#ifndef VD_SERVICE_TRAINING_H
#define VD_SERVICE_TRAINING_H

#include <jansson.h>
#include <stddef.h>

#include "core/err.h"
#include "infer/runner.h"
#include "queue/queue.h"
#include "store/blobs.h"
#include "store/sessions.h"
#include "train/classifier.h"

#define VD_SVC_MAX_EXAMPLES      10000 /* examples per session */
#define VD_SVC_MAX_LABEL_LEN     100   /* characters per label */
#define VD_SVC_MAX_NAME_LEN      200   /* characters per session name */
#define VD_SVC_MAX_MODEL_LEN     63    /* characters per model name */
#define VD_SVC_MAX_PREDICT_PATHS 256   /* files per predict request */
#define VD_SVC_TRAIN_RETRIES     3     /* retries of a train_session job */
#define VD_SVC_TRAIN_RETRY_MS    1000  /* its first retry's back-off */

/* ---- the request ---- */

/* A session as an adapter received it (all borrowed). */
typedef struct {
    const char *name;  /* required */
    const char *kind;  /* "image" (also for NULL) or "face" */
    const char *model; /* NULL = the kind's default (vd_svc_default_model) */
    int crop;          /* face sessions: the images are already face crops */
    /* image sessions with a CLIP model: the label prompts' text vectors as
     * the centroids' priors (docs/training.md "Prompt priors") */
    int prompt_priors;
} vd_svc_session_req;

/* The request checked: kind parsed, defaults filled (model borrowed from the
 * request or static). */
typedef struct {
    const char *name;
    vd_session_kind kind;
    const char *model;
    const char *options_json; /* static */
} vd_svc_session_spec;

/* Checks name, kind, crop, prompt_priors and model name and fills *out. Refusals:
 * invalid_value, unknown_kind, unknown_model (VD_ERR_INVALID). */
vd_status vd_svc_session_check(const vd_svc_session_req *req, vd_svc_session_spec *out,
                               const char **why, vd_error *err);

/* The default embedding model of a session kind ("mobilenet_v2", "faceres"). */
const char *vd_svc_default_model(vd_session_kind kind);

/* ---- examples ---- */

/* A growing list of examples (path and label owned by the list). */
typedef struct {
    vd_example *v;
    size_t n, cap;
} vd_svc_examples;

void vd_svc_examples_free(vd_svc_examples *l);

/* Refuses (too_many_examples) a list that would hold more than
 * VD_SVC_MAX_EXAMPLES after n more; otherwise makes room for them. */
vd_status vd_svc_examples_reserve(vd_svc_examples *l, size_t n, const char **why, vd_error *err);

/* Checks label (empty_label, label_too_long, reserved_label; where names the
 * example in the message) and appends {path, label}. path is taken (freed on
 * failure too); label is copied. too_many_examples past the limit. */
vd_status vd_svc_examples_add(vd_svc_examples *l, char *path, const char *label, const char *where,
                              const char **why, vd_error *err);

/* An adapter's check of a client path: VD_OK with *resolved (owned) the path
 * to open, or a refusal with *why the problem's name (the API confines
 * paths to its media roots). NULL: paths are taken as they are. */
typedef vd_status (*vd_svc_path_check)(void *ud, const char *path, int want_dir, char **resolved,
                                       const char **why, vd_error *err);

/* Scans folder: one sub-folder per label, its regular files (not hidden)
 * the examples, in name order; each path goes through check (when given).
 * no_examples when nothing is found, unreadable_folder when it cannot be
 * listed, and every vd_svc_examples_add refusal. */
vd_status vd_svc_examples_scan(const char *folder, vd_svc_path_check check, void *ud,
                               vd_svc_examples *l, const char **why, vd_error *err);

/* Checks that l can make a session: no_examples, one_label. */
vd_status vd_svc_examples_check(const vd_svc_examples *l, const char **why, vd_error *err);

/* ---- uploads: kept in the store, for every host (store/blobs.h) ---- */

/* Keeps the uploaded files of ex in the store: ex->v[i].path is the upload's
 * temporary file, names[i] (may be NULL) the client's file name. Each file is
 * read (at most VD_BLOB_MAX_BYTES: file_too_large, VD_ERR_LIMIT), kept as a
 * blob (the same bytes once), and its example's path becomes the blob's
 * reference "blob:SHA256/NAME" with its sha256 filled, so that the worker
 * that trains the session reads it from the store, on any host. "store" when
 * the store fails; the temporary files are left to their owner. */
vd_status vd_svc_uploads_keep(vd_store *store, vd_svc_examples *ex, const char *const *names,
                              const char **why, vd_error *err);

/* Deletes the kept uploads that no session refers to any more and that were
 * not put in the last VD_BLOB_GC_GRACE_MS (a session being created is safe):
 * run after a session is deleted. *removed (may be NULL) counts them. */
vd_status vd_svc_uploads_gc(vd_store *store, size_t *removed, vd_error *err);

/* ---- starting a session ---- */

/* What session start works with (borrowed). */
typedef struct {
    vd_store *store;
    vd_queue *queue;
    vd_runner *runner; /* checks the model (vd_svc_check_model) */
} vd_svc_backends;

/* Optional hooks of session start (an adapter's own files for the session). */
typedef struct {
    /* After the session is created, before its examples are stored: may
     * change the examples' paths (the API moves uploads under the id). */
    vd_status (*prepare)(void *ud, const char *sid, vd_svc_examples *ex, vd_error *err);
    /* After a roll-back deleted the session. */
    void (*rolled_back)(void *ud, const char *sid);
    void *ud;
} vd_svc_start_hooks;

/* Checks that runner serves model and that its task fits kind: unknown_model
 * (VD_ERR_NOT_FOUND), model_kind_mismatch (VD_ERR_INVALID), "model_server"
 * when it cannot be asked. */
vd_status vd_svc_check_model(vd_runner *runner, const char *model, vd_session_kind kind,
                             const char **why, vd_error *err);

/* Starts a training session: checks req and ex (as the functions above do)
 * and the model, creates the session, stores its examples, enqueues its
 * train_session job (VD_SVC_TRAIN_RETRIES retries) and records the job's id.
 * Writes the ids into sid and jid. Any failure after the session was created
 * rolls it back: the session is deleted (its job canceled when it was
 * enqueued) and hooks->rolled_back is called; nothing is left behind. */
vd_status vd_svc_session_start(const vd_svc_backends *b, const vd_svc_session_req *req,
                               vd_svc_examples *ex, const vd_svc_start_hooks *hooks,
                               char sid[VD_ID_LEN + 1], char jid[VD_ID_LEN + 1], const char **why,
                               vd_error *err);

/* ---- reading a session ---- */

/* Reads session id into *s (cleared by the caller, also on failure):
 * session_not_found (VD_ERR_NOT_FOUND), "store". */
vd_status vd_svc_session_get(vd_store *store, const char *id, vd_session *s, const char **why,
                             vd_error *err);

/* Ends a session whose job ended without ending it: the job's last attempt
 * was killed (work-horse or worker SIGKILLed, lease lapsed with no attempts
 * left), or the job was canceled or is gone, so no handler is left to end the
 * session and it would stay queued or running for ever. It ends failed, its
 * message saying what became of the job, and *s is re-read. A session that
 * ended, or whose job still runs or waits, is left as it is. Returns the
 * queue's status (VD_OK also for a job that is gone): a queue that cannot be
 * asked leaves the session as stored. */
vd_status vd_svc_session_settle(vd_store *store, vd_queue *q, vd_session *s, vd_error *err);

/* ---- predict ---- */

/* Reads session id into *s (cleared by the caller, also on failure) and loads
 * its classifier into *clf (vd_classifier_free): session_not_found
 * (VD_ERR_NOT_FOUND), session_not_ready (VD_ERR_STATE: not succeeded),
 * no_classifier (VD_ERR_NOT_FOUND), "store". */
vd_status vd_svc_predict_open(vd_store *store, const char *id, vd_session *s, vd_classifier **clf,
                              const char **why, vd_error *err);

/* Classifies n files (paths: what to open; names: what to call them) with
 * s's classifier, embeddings through the store's cache. *out is a new JSON
 * array with one object per file, in order: {"path": name, "label", "score",
 * "scores"} or {"path", "error"}; *failed counts the error objects. Fails
 * (no *out) only when the embedding as a whole fails: *why "model_server",
 * "store" or unknown_model. */
vd_status vd_svc_predict(vd_store *store, vd_runner *runner, const vd_session *s,
                         const vd_classifier *clf, const char *const *paths,
                         const char *const *names, size_t n, json_t **out, size_t *failed,
                         const char **why, vd_error *err);

#endif
