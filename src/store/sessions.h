/* sessions.h: training sessions, their examples and trained classifiers in
 * the store (store/store.h).
 *
 * A session is created queued (usually together with its examples and the
 * id of the job that trains it), moves to running, and ends succeeded (with
 * metrics and a classifier), failed or canceled. Progress (done of total)
 * and per-file errors ([{"path","error"}]) grow while it runs. Deleting a
 * session deletes its examples and classifier (foreign keys, cascade).
 *
 * Example status: "pending" (not embedded yet), "embedded" (its vector is in
 * the embedding cache under sha256), "failed" (error says why: such examples
 * are left out of training). */
#ifndef VD_STORE_SESSIONS_H
#define VD_STORE_SESSIONS_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/util.h"
#include "store/store.h"

typedef enum { VD_SESSION_IMAGE = 0, VD_SESSION_FACE } vd_session_kind;

typedef enum {
    VD_SESSION_QUEUED = 0,
    VD_SESSION_RUNNING,
    VD_SESSION_SUCCEEDED,
    VD_SESSION_FAILED,
    VD_SESSION_CANCELED,
    VD_SESSION__NSTATES
} vd_session_state;

typedef enum { VD_EXAMPLE_PENDING = 0, VD_EXAMPLE_EMBEDDED, VD_EXAMPLE_FAILED } vd_example_status;

#define VD_SHA256_HEX_LEN 64

/* One session as stored. Fields marked "owned" are freed by vd_session_clear. */
typedef struct {
    char id[VD_ID_LEN + 1];
    char *name; /* owned */
    vd_session_kind kind;
    char *model; /* owned: the embedding model's name */
    vd_session_state state;
    int64_t progress_done;
    int64_t progress_total;
    char *errors_json;  /* owned: JSON array [{"path","error"}], never NULL */
    char *metrics_json; /* owned: JSON object, or NULL before training ends */
    char *options_json; /* owned: JSON object of creation options ({"crop": true}), never NULL */
    char *message;      /* owned: why it failed, or NULL */
    double threshold;   /* top-score threshold below which predict answers "unknown" */
    char job_id[VD_ID_LEN + 1]; /* "" when none */
    int64_t created_ms;
    int64_t updated_ms;
} vd_session;

/* What a new session starts with. */
typedef struct {
    const char *id;   /* optional caller-chosen id (VD_ID_LEN hex or shorter); NULL = generated */
    const char *name; /* required, non-empty */
    vd_session_kind kind;
    const char *model;        /* required, non-empty */
    const char *options_json; /* NULL = "{}"; must be a JSON object */
    const char *job_id;       /* NULL = none yet */
} vd_session_new;

/* One training example as stored. */
typedef struct {
    int64_t idx;                        /* position within the session, from 0 */
    char *path;                         /* owned */
    char *label;                        /* owned */
    char sha256[VD_SHA256_HEX_LEN + 1]; /* "" until known */
    vd_example_status status;
    char *error; /* owned: NULL unless failed */
} vd_example;

/* A classifier as stored for a session. */
typedef struct {
    char *algorithm;   /* owned: "logreg" or "centroid" */
    char *labels_json; /* owned: JSON array of the labels, in the classifier's order */
    void *blob;        /* owned: the serialised classifier (train/classifier.h) */
    size_t blob_len;
    int64_t created_ms;
} vd_stored_classifier;

/* Names: "image"/"face"; "queued"/"running"/"succeeded"/"failed"/"canceled";
 * "pending"/"embedded"/"failed". The parsers return VD_ERR_INVALID for an
 * unknown name. */
const char *vd_session_kind_name(vd_session_kind k);
vd_status vd_session_kind_parse(const char *name, vd_session_kind *out);
const char *vd_session_state_name(vd_session_state s);
vd_status vd_session_state_parse(const char *name, vd_session_state *out);
const char *vd_example_status_name(vd_example_status s);
/* An unknown example status name reads as pending. */
vd_example_status vd_example_status_parse(const char *name);

/* Returns 1 for succeeded, failed and canceled. */
int vd_session_state_is_final(vd_session_state s);

/* Frees the owned fields of *s and zeroes it. */
void vd_session_clear(vd_session *s);
/* Frees an array from vd_store_session_list. */
void vd_session_list_free(vd_session *list, size_t n);
/* Frees the owned fields of *e and zeroes it. */
void vd_example_clear(vd_example *e);
/* Frees an array from vd_store_examples_list. */
void vd_example_list_free(vd_example *list, size_t n);
/* Frees the owned fields of *c and zeroes it. */
void vd_stored_classifier_clear(vd_stored_classifier *c);

/* Creates a queued session; writes its id to id_out (may be NULL).
 * VD_ERR_INVALID for a missing name/model or bad options JSON; VD_ERR_STATE
 * when a session with the caller-chosen id exists. */
vd_status vd_store_session_create(vd_store *s, const vd_session_new *in, char id_out[VD_ID_LEN + 1],
                                  vd_error *err);

/* Reads one session into *out (cleared by the caller). VD_ERR_NOT_FOUND. */
vd_status vd_store_session_get(vd_store *s, const char *id, vd_session *out, vd_error *err);

/* Lists sessions, newest first (at most limit; 0 = all). *out is a malloc'd
 * array freed with vd_session_list_free. */
vd_status vd_store_session_list(vd_store *s, size_t limit, vd_session **out, size_t *n,
                                vd_error *err);

/* Records the id of the job that trains the session. VD_ERR_NOT_FOUND. */
vd_status vd_store_session_set_job(vd_store *s, const char *id, const char *job_id, vd_error *err);

/* Moves a session that has not ended to state (queued or running; use
 * vd_store_session_finish to end it). VD_ERR_STATE when it has ended,
 * VD_ERR_NOT_FOUND. */
vd_status vd_store_session_set_state(vd_store *s, const char *id, vd_session_state state,
                                     vd_error *err);

/* Records progress: done of total. VD_ERR_NOT_FOUND. */
vd_status vd_store_session_set_progress(vd_store *s, const char *id, int64_t done, int64_t total,
                                        vd_error *err);

/* Appends {"path": path, "error": message} to the session's errors,
 * atomically (safe against concurrent appenders). VD_ERR_NOT_FOUND. */
vd_status vd_store_session_add_error(vd_store *s, const char *id, const char *path,
                                     const char *message, vd_error *err);

/* Ends a session: state must be succeeded, failed or canceled. metrics_json
 * (a JSON object or NULL) and threshold are stored; message (NULL = none)
 * says why it failed. VD_ERR_STATE when it already ended (a canceled session
 * stays canceled), VD_ERR_NOT_FOUND. */
vd_status vd_store_session_finish(vd_store *s, const char *id, vd_session_state state,
                                  const char *metrics_json, double threshold, const char *message,
                                  vd_error *err);

/* Deletes a session with its examples and classifier. VD_ERR_NOT_FOUND. */
vd_status vd_store_session_delete(vd_store *s, const char *id, vd_error *err);

/* Adds n examples (paths and labels required, non-empty) to a session, in
 * one transaction, numbered after the existing ones, status pending (or
 * what ex[i].status says, with its sha256 and error). VD_ERR_NOT_FOUND for
 * no such session, VD_ERR_INVALID for an empty path or label. */
vd_status vd_store_examples_add(vd_store *s, const char *session_id, const vd_example *ex, size_t n,
                                vd_error *err);

/* Lists a session's examples in idx order. *out is a malloc'd array freed
 * with vd_example_list_free (an empty session gives *n = 0, *out = NULL). */
vd_status vd_store_examples_list(vd_store *s, const char *session_id, vd_example **out, size_t *n,
                                 vd_error *err);

/* Updates one example's sha256 (NULL = keep), status and error (NULL = none).
 * VD_ERR_NOT_FOUND. */
vd_status vd_store_example_update(vd_store *s, const char *session_id, int64_t idx,
                                  const char *sha256, vd_example_status status, const char *error,
                                  vd_error *err);

/* Stores (replacing any earlier one) the session's classifier. */
vd_status vd_store_classifier_put(vd_store *s, const char *session_id, const char *algorithm,
                                  const char *labels_json, const void *blob, size_t blob_len,
                                  vd_error *err);

/* Reads the session's classifier into *out (cleared by the caller).
 * VD_ERR_NOT_FOUND when the session has none. */
vd_status vd_store_classifier_get(vd_store *s, const char *session_id, vd_stored_classifier *out,
                                  vd_error *err);

#endif
