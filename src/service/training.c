/* training.c: session start (check, store, enqueue, roll back) and predict. */
#include "service/training.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "infer/model_meta.h"
#include "pipeline/embed.h"
#include "pipeline/jobs.h"
#include "store/classifiers.h"
#include "train/prediction.h"

static vd_status refused(const char **why, const char *reason, vd_status st)
{
    if (why) *why = reason;
    return st;
}

const char *vd_svc_default_model(vd_session_kind kind)
{
    return vd_pipeline_default_model(kind);
}

vd_status vd_svc_session_check(const vd_svc_session_req *req, vd_svc_session_spec *out,
                               const char **why, vd_error *err)
{
    memset(out, 0, sizeof *out);
    const char *kind = req->kind ? req->kind : "image";
    if (!req->name || !*req->name || strlen(req->name) > VD_SVC_MAX_NAME_LEN) {
        vd_error_set(err, VD_ERR_INVALID, "the name must have 1 to %d characters",
                     VD_SVC_MAX_NAME_LEN);
        return refused(why, "invalid_value", VD_ERR_INVALID);
    }
    if (vd_session_kind_parse(kind, &out->kind) != VD_OK) {
        vd_error_set(err, VD_ERR_INVALID, "kind must be \"image\" or \"face\" (got \"%.40s\")",
                     kind);
        return refused(why, "unknown_kind", VD_ERR_INVALID);
    }
    if (req->crop && out->kind != VD_SESSION_FACE) {
        vd_error_set(err, VD_ERR_INVALID, "crop applies to face sessions only");
        return refused(why, "invalid_value", VD_ERR_INVALID);
    }
    out->model = req->model ? req->model : vd_svc_default_model(out->kind);
    if (!*out->model || strlen(out->model) > VD_SVC_MAX_MODEL_LEN) {
        vd_error_set(err, VD_ERR_INVALID, "bad model name");
        return refused(why, "unknown_model", VD_ERR_INVALID);
    }
    out->name = req->name;
    if (req->prompt_priors && out->kind != VD_SESSION_IMAGE) {
        vd_error_set(err, VD_ERR_INVALID, "prompt_priors applies to image sessions only");
        return refused(why, "invalid_value", VD_ERR_INVALID);
    }
    out->options_json = req->crop            ? "{\"crop\": true}"
                        : req->prompt_priors ? "{\"prompt_priors\": true}"
                                             : "{}";
    return VD_OK;
}

vd_status vd_svc_check_model(vd_runner *runner, const char *model, vd_session_kind kind,
                             const char **why, vd_error *err)
{
    vd_model_meta meta;
    vd_status st = vd_runner_meta(runner, model, &meta, err);
    if (st == VD_ERR_NOT_FOUND) {
        vd_error_set(err, st, "the model server has no model \"%.64s\"", model);
        return refused(why, "unknown_model", st);
    }
    if (st != VD_OK) return refused(why, "model_server", st);
    vd_model_task want = kind == VD_SESSION_FACE ? VD_TASK_FACE_EMBEDDING : VD_TASK_IMAGE_EMBEDDING;
    if (meta.task != want) {
        vd_error_set(err, VD_ERR_INVALID,
                     "model \"%.64s\" is not a %s model; a %s session needs one", model,
                     want == VD_TASK_FACE_EMBEDDING ? "face_embedding" : "image_embedding",
                     vd_session_kind_name(kind));
        return refused(why, "model_kind_mismatch", VD_ERR_INVALID);
    }
    return VD_OK;
}

/* prompt_priors needs the model's CLIP text tower (its metadata's text_model). */
static vd_status check_text_tower(vd_runner *runner, const char *model, const char **why,
                                  vd_error *err)
{
    vd_model_meta meta;
    vd_status st = vd_runner_meta(runner, model, &meta, err);
    if (st != VD_OK) return refused(why, "model_server", st);
    if (meta.text_model[0]) return VD_OK;
    vd_error_set(err, VD_ERR_INVALID,
                 "prompt_priors needs a CLIP image model with a text tower; \"%.64s\" has none",
                 model);
    return refused(why, "no_text_tower", VD_ERR_INVALID);
}

/* Enqueues the session's train_session job. */
static vd_status enqueue(vd_queue *q, const char *sid, char jid[VD_ID_LEN + 1], vd_error *err)
{
    char payload[128];
    snprintf(payload, sizeof payload, "{\"session_id\": \"%s\"}", sid);
    vd_enqueue_opts o = {.type = "train_session",
                         .payload = payload,
                         .max_retries = VD_SVC_TRAIN_RETRIES,
                         .retry_base_ms = VD_SVC_TRAIN_RETRY_MS};
    return vd_queue_enqueue(q, &o, jid, err);
}

vd_status vd_svc_session_start(const vd_svc_backends *b, const vd_svc_session_req *req,
                               vd_svc_examples *ex, const vd_svc_start_hooks *hooks,
                               char sid[VD_ID_LEN + 1], char jid[VD_ID_LEN + 1], const char **why,
                               vd_error *err)
{
    sid[0] = jid[0] = '\0';
    vd_svc_session_spec spec;
    vd_status st = vd_svc_session_check(req, &spec, why, err);
    if (st == VD_OK) st = vd_svc_examples_check(ex, why, err);
    if (st == VD_OK) st = vd_svc_check_model(b->runner, spec.model, spec.kind, why, err);
    if (st == VD_OK && req->prompt_priors) st = check_text_tower(b->runner, spec.model, why, err);
    if (st != VD_OK) return st;
    vd_session_new sn = {.name = spec.name,
                         .kind = spec.kind,
                         .model = spec.model,
                         .options_json = spec.options_json};
    st = vd_store_session_create(b->store, &sn, sid, err);
    if (st != VD_OK) return refused(why, "store", st);
    const char *stage = "store";
    if (hooks && hooks->prepare) st = hooks->prepare(hooks->ud, sid, ex, err);
    if (st == VD_OK) st = vd_store_examples_add(b->store, sid, ex->v, ex->n, err);
    if (st == VD_OK) {
        stage = "queue";
        st = enqueue(b->queue, sid, jid, err);
    }
    if (st == VD_OK) {
        stage = "store";
        st = vd_store_session_set_job(b->store, sid, jid, err);
        if (st != VD_OK) vd_queue_cancel(b->queue, jid, NULL);
    }
    if (st == VD_OK) return VD_OK;
    /* roll back: nothing of a session that cannot run stays behind */
    vd_store_session_delete(b->store, sid, NULL);
    if (hooks && hooks->rolled_back) hooks->rolled_back(hooks->ud, sid);
    sid[0] = jid[0] = '\0';
    return refused(why, stage, st);
}

vd_status vd_svc_session_get(vd_store *store, const char *id, vd_session *s, const char **why,
                             vd_error *err)
{
    memset(s, 0, sizeof *s);
    vd_status st =
        strlen(id) <= VD_ID_LEN ? vd_store_session_get(store, id, s, err) : VD_ERR_NOT_FOUND;
    if (st == VD_ERR_NOT_FOUND) {
        vd_error_set(err, st, "no training session %.40s", id);
        return refused(why, "session_not_found", st);
    }
    return st == VD_OK ? VD_OK : refused(why, "store", st);
}

vd_status vd_svc_session_settle(vd_store *store, vd_queue *q, vd_session *s, vd_error *err)
{
    if (vd_session_state_is_final(s->state) || !s->job_id[0]) return VD_OK;
    vd_job job;
    memset(&job, 0, sizeof job);
    vd_status st = vd_queue_get(q, s->job_id, &job, err);
    if (st != VD_OK && st != VD_ERR_NOT_FOUND) return st;
    if (st == VD_OK && job.state != VD_JOB_FAILED && job.state != VD_JOB_CANCELED) {
        vd_job_clear(&job);
        return VD_OK;
    }
    char msg[512];
    if (st == VD_ERR_NOT_FOUND)
        snprintf(msg, sizeof msg, "its job %s is no longer in the queue", s->job_id);
    else
        snprintf(msg, sizeof msg, "its job %s ended %s without ending the session: %.300s",
                 s->job_id, vd_job_state_name(job.state), job.error ? job.error : "no reason");
    if (st == VD_OK) vd_job_clear(&job);
    vd_session fresh;
    if (vd_store_session_finish(store, s->id, VD_SESSION_FAILED, NULL, 0, msg, NULL) == VD_OK &&
        vd_store_session_get(store, s->id, &fresh, NULL) == VD_OK) {
        vd_session_clear(s);
        *s = fresh;
    }
    return VD_OK;
}

vd_status vd_svc_predict_open(vd_store *store, const char *id, vd_session *s, vd_classifier **clf,
                              const char **why, vd_error *err)
{
    *clf = NULL;
    vd_status st = vd_svc_session_get(store, id, s, why, err);
    if (st != VD_OK) return st;
    if (s->state != VD_SESSION_SUCCEEDED) {
        vd_error_set(err, VD_ERR_STATE, "session %s is %s; predict needs a succeeded session",
                     s->id, vd_session_state_name(s->state));
        return refused(why, "session_not_ready", VD_ERR_STATE);
    }
    st = vd_store_classifier_load(store, s->id, clf, err);
    if (st != VD_OK) return refused(why, st == VD_ERR_NOT_FOUND ? "no_classifier" : "store", st);
    return VD_OK;
}

/* One file's answer: the prediction, or {"path", "error"}. */
static json_t *predict_one(const vd_classifier *clf, const char *name, const vd_embed_item *it,
                           int dim, double *scores)
{
    vd_error perr;
    const char *error = it->status != VD_OK ? (it->error ? it->error : "failed") : NULL;
    if (!error && !scores) error = "out of memory";
    if (!error) {
        vd_prediction p;
        if (vd_classifier_predict(clf, it->vector, (size_t)dim, &p, scores, &perr) == VD_OK)
            return vd_train_prediction_json(clf, name, &p, scores);
        error = vd_error_text(&perr);
    }
    return json_pack("{s:s, s:s}", "path", name, "error", error);
}

vd_status vd_svc_predict(vd_store *store, vd_runner *runner, const vd_session *s,
                         const vd_classifier *clf, const char *const *paths,
                         const char *const *names, size_t n, json_t **out, size_t *failed,
                         const char **why, vd_error *err)
{
    *out = NULL;
    *failed = 0;
    vd_embed_item *items = calloc(n ? n : 1, sizeof *items);
    if (!items) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_embed_opts o = {.runner = runner,
                       .store = store,
                       .model = s->model,
                       .mode = vd_pipeline_session_mode(s),
                       .want_vectors = 1};
    int dim = 0;
    vd_status st = vd_embed_paths(&o, paths, n, items, &dim, NULL, err);
    if (st != VD_OK) {
        refused(why,
                st == VD_ERR_NOT_FOUND ? "unknown_model"
                : st == VD_ERR_DB      ? "store"
                                       : "model_server",
                st);
    } else {
        size_t nl = vd_classifier_nlabels(clf);
        double *scores = calloc(nl ? nl : 1, sizeof *scores);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *j = predict_one(clf, names[i], &items[i], dim, scores);
            if (json_object_get(j, "error")) (*failed)++;
            json_array_append_new(arr, j);
        }
        free(scores);
        *out = arr;
    }
    vd_embed_items_clear(items, n);
    free(items);
    return st;
}
