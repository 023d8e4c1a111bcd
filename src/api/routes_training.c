/* routes_training.c: training sessions over HTTP (docs/api.md).
 *
 *   POST   /training/sessions               create + enqueue a train_session job (202)
 *   GET    /training/sessions               list, newest first (?limit=)
 *   GET    /training/sessions/{id}          state, progress, errors, metrics
 *   DELETE /training/sessions/{id}          cancel its job and delete it
 *   POST   /training/sessions/{id}/predict  classify images with its classifier
 * Examples come as {"examples": [{"path", "label"}]}, as {"folder": DIR} (one
 * sub-folder per label) or as a multipart upload (each file part's field name
 * is its label). Paths must lie under the media roots. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "api/form.h"
#include "core/util.h"
#include "service/people.h"
#include "service/training.h"
#include "store/sessions.h"
#include "train/classifier.h"

/* HTTP status of a refusal by the service (service/training.h). */
static int refusal_status(const char *why)
{
    if (strcmp(why, "too_many_examples") == 0 || strcmp(why, "file_too_large") == 0) return 413;
    if (strcmp(why, "path_not_found") == 0 || strcmp(why, "session_not_found") == 0 ||
        strcmp(why, "no_classifier") == 0 || strcmp(why, "person_not_found") == 0)
        return 404;
    if (strcmp(why, "session_not_ready") == 0) return 409;
    return 422;
}

/* Answers a failed service call: a refusal with its rule as the code, a
 * backend failure as that backend's reply. */
static void reply_svc_error(vd_http_resp *resp, const char *why, vd_status st, const vd_error *err)
{
    if ((!why || strcmp(why, "store") == 0) && st == VD_ERR_DB)
        vd_api_reply_embed_error(resp, st, err); /* 503 store_unavailable */
    else if (!why || strcmp(why, "store") == 0)
        vd_http_reply_status(resp, st, NULL, err);
    else if (strcmp(why, "queue") == 0)
        vd_api_reply_queue_error(resp, st, err);
    else if (strcmp(why, "model_server") == 0)
        vd_api_reply_infer_error(resp, st, err);
    else
        vd_http_reply_error(resp, refusal_status(why), why, "%s", vd_error_text(err));
}

/* The service's path check: the media roots. */
static vd_status roots_check(void *ud, const char *path, int want_dir, char **resolved,
                             const char **why, vd_error *err)
{
    vd_api *api = ud;
    vd_path_problem prob = VD_PATH_OK;
    vd_status st = vd_media_roots_check(
        api->roots, path, want_dir ? VD_PATH_WANT_DIR : VD_PATH_WANT_FILE, resolved, &prob, err);
    if (st != VD_OK && why) *why = vd_path_problem_name(prob);
    return st;
}

static vd_status examples_from_json(vd_api *api, json_t *arr, vd_http_resp *resp,
                                    vd_svc_examples *out, const char **why, vd_error *err)
{
    if (!json_is_array(arr)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field 'examples' must be an array");
        return VD_ERR_INVALID;
    }
    vd_status st = vd_svc_examples_reserve(out, json_array_size(arr), why, err);
    for (size_t i = 0; st == VD_OK && i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        char where[48];
        snprintf(where, sizeof where, "examples[%zu]", i);
        static const char *const fields[] = {"path", "label", NULL};
        const char *path = NULL, *label = NULL;
        if (!json_is_object(e)) {
            vd_http_reply_error(resp, 400, "invalid_type", "%s must be an object {path, label}",
                                where);
            return VD_ERR_INVALID;
        }
        if (!vd_api_only_fields(resp, e, fields) || !vd_api_get_string(resp, e, "path", 1, &path) ||
            !vd_api_get_string(resp, e, "label", 1, &label))
            return VD_ERR_INVALID;
        char *resolved = NULL;
        st = roots_check(api, path, 0, &resolved, why, err);
        if (st == VD_OK) st = vd_svc_examples_add(out, resolved, label, where, why, err);
    }
    return st;
}

static vd_status examples_from_upload(vd_http_req *req, vd_svc_examples *out, const char **why,
                                      vd_error *err)
{
    vd_status st = VD_OK;
    for (size_t i = 0; st == VD_OK && i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        if (!p->path) continue;
        char where[160];
        snprintf(where, sizeof where, "file part %zu (%.100s)", i, p->filename ? p->filename : "");
        char *path = vd_strdup(p->path);
        st = path ? vd_svc_examples_add(out, path, p->name, where, why, err)
                  : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    return st;
}

/* What session start's prepare hook needs to keep a request's uploads. */
typedef struct {
    vd_store *store;
    const vd_http_req *req;
    const char **why;
} upload_ctx;

/* Keeps the uploaded example files in the store (every host reads them
 * there): session start's prepare hook. Examples are the file parts, in
 * order (examples_from_upload). */
static vd_status keep_uploads(void *ud, const char *sid, vd_svc_examples *ex, vd_error *err)
{
    (void)sid;
    upload_ctx *u = ud;
    const char **names = calloc(ex->n ? ex->n : 1, sizeof *names);
    if (!names) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < u->req->nparts && k < ex->n; i++)
        if (u->req->parts[i].path) names[k++] = u->req->parts[i].filename;
    vd_status st = vd_svc_uploads_keep(u->store, ex, names, u->why, err);
    free(names);
    return st;
}

/* Reads the fields of a JSON body or a multipart form into *req; answers and
 * returns 0 when one is missing or of the wrong type. */
static int create_parse(vd_http_req *req, vd_http_resp *resp, vd_svc_session_req *sr,
                        json_t **examples, const char **folder, json_t **people)
{
    static const char *const fields[] = {"name", "kind",   "model",         "examples", "folder",
                                         "crop", "people", "prompt_priors", NULL};
    if (req->parts) {
        static const char *const form_fields[] = {"name", "kind",          "model",
                                                  "crop", "prompt_priors", NULL};
        if (!vd_form_check(req, resp, form_fields) || !vd_form_bool(req, resp, "crop", &sr->crop) ||
            !vd_form_bool(req, resp, "prompt_priors", &sr->prompt_priors))
            return 0;
        sr->name = vd_api_form_value(req, "name");
        sr->kind = vd_api_form_value(req, "kind");
        sr->model = vd_api_form_value(req, "model");
        if (!sr->name) vd_http_reply_error(resp, 422, "missing_field", "field 'name' is required");
        return sr->name != NULL;
    }
    json_t *b = req->json;
    if (!vd_api_only_fields(resp, b, fields) || !vd_api_get_string(resp, b, "name", 1, &sr->name) ||
        !vd_api_get_string(resp, b, "kind", 0, &sr->kind) ||
        !vd_api_get_string(resp, b, "model", 0, &sr->model) ||
        !vd_api_get_string(resp, b, "folder", 0, folder) ||
        !vd_api_get_bool(resp, b, "crop", &sr->crop) ||
        !vd_api_get_bool(resp, b, "prompt_priors", &sr->prompt_priors))
        return 0;
    *examples = json_object_get(b, "examples");
    if (*examples && json_is_null(*examples)) *examples = NULL;
    *people = json_object_get(b, "people");
    if (*people && json_is_null(*people)) *people = NULL;
    if ((*examples != NULL) + (*folder != NULL) + (*people != NULL) > 1) {
        vd_http_reply_error(resp, 422, "examples_and_folder",
                            "give one of 'examples', 'folder' or 'people'");
        return 0;
    }
    if (*people && !json_is_array(*people)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field 'people' must be an array of ids");
        return 0;
    }
    if (!*examples && !*folder && !*people) {
        vd_http_reply_error(resp, 422, "missing_field",
                            "give 'examples' ([{path, label}]), 'folder' (one sub-folder "
                            "per label) or 'people' (face sessions), or upload files");
        return 0;
    }
    return 1;
}

/* Examples from named people (service/people.h): their ids, then their confirmed faces. */
static vd_status examples_from_people(vd_api *api, json_t *arr, vd_session_kind kind,
                                      vd_http_resp *resp, vd_svc_examples *out, const char **why,
                                      vd_error *err)
{
    int64_t ids[VD_PEOPLE_MERGE_MAX];
    size_t n = json_array_size(arr);
    for (size_t i = 0; i < n && i < VD_PEOPLE_MERGE_MAX; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            vd_http_reply_error(resp, 400, "invalid_type", "people[%zu] must be a person id", i);
            return VD_ERR_INVALID;
        }
        ids[i] = json_integer_value(v);
    }
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return VD_ERR_DB;
    vd_status st = vd_people_examples(s, kind, ids, n, out, why, err);
    vd_api_store_put(api, s, *why && strcmp(*why, "store") == 0 ? st : VD_OK);
    return st;
}

static void create(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    vd_svc_session_req sr = {0};
    json_t *examples = NULL, *people = NULL;
    const char *folder = NULL, *why = NULL;
    if (!create_parse(req, resp, &sr, &examples, &folder, &people)) return;
    vd_svc_session_spec spec;
    vd_svc_examples ex = {0};
    vd_svc_backends b = {0};
    vd_error err;
    char sid[VD_ID_LEN + 1], jid[VD_ID_LEN + 1];
    vd_status st = vd_svc_session_check(&sr, &spec, &why, &err);
    if (st == VD_OK)
        st = req->parts ? examples_from_upload(req, &ex, &why, &err)
             : examples ? examples_from_json(api, examples, resp, &ex, &why, &err)
             : people   ? examples_from_people(api, people, spec.kind, resp, &ex, &why, &err)
                        : vd_svc_examples_scan(folder, roots_check, api, &ex, &why, &err);
    if (st == VD_OK) st = vd_svc_examples_check(&ex, &why, &err);
    if (st != VD_OK) {
        if (!resp->body) /* the adapter answered a malformed field itself */
            reply_svc_error(resp, why, st, &err);
        goto out;
    }
    if (!(b.runner = vd_api_runner_get(api, resp)) || !(b.store = vd_api_store_get(api, resp)) ||
        !(b.queue = vd_api_queue_get(api, resp)))
        goto out;
    const char *upload_why = NULL;
    upload_ctx uc = {.store = b.store, .req = req, .why = &upload_why};
    vd_svc_start_hooks hooks = {.prepare = req->parts ? keep_uploads : NULL, .ud = &uc};
    st = vd_svc_session_start(&b, &sr, &ex, &hooks, sid, jid, &why, &err);
    if (st != VD_OK && upload_why) why = upload_why; /* the hook's refusal, not "store" */
    if (st != VD_OK) {
        reply_svc_error(resp, why, st, &err);
        goto out;
    }
    char loc[80];
    snprintf(loc, sizeof loc, "/training/sessions/%s", sid);
    vd_http_add_header(resp, "Location", loc);
    vd_http_reply_json(resp, 202,
                       json_pack("{s:s, s:s, s:s, s:I}", "id", sid, "job_id", jid, "state",
                                 "queued", "examples", (json_int_t)ex.n));
out:
    vd_api_runner_put(api, b.runner, why && strcmp(why, "model_server") == 0 ? st : VD_OK);
    vd_api_store_put(api, b.store, why && strcmp(why, "store") == 0 ? st : VD_OK);
    vd_api_queue_put(api, b.queue, why && strcmp(why, "queue") == 0 ? st : VD_OK);
    vd_svc_examples_free(&ex);
}

static json_t *session_json(const vd_session *s, int full)
{
    json_t *j = json_object();
    json_object_set_new(j, "id", json_string(s->id));
    json_object_set_new(j, "name", json_string(s->name));
    json_object_set_new(j, "kind", json_string(vd_session_kind_name(s->kind)));
    json_object_set_new(j, "model", json_string(s->model));
    json_object_set_new(j, "state", json_string(vd_session_state_name(s->state)));
    json_object_set_new(j, "progress",
                        json_pack("{s:I, s:I}", "done", (json_int_t)s->progress_done, "total",
                                  (json_int_t)s->progress_total));
    json_t *errors = json_loads(s->errors_json ? s->errors_json : "[]", 0, NULL);
    if (!errors) errors = json_array();
    if (full)
        json_object_set_new(j, "errors", errors);
    else {
        json_object_set_new(j, "error_count", json_integer((json_int_t)json_array_size(errors)));
        json_decref(errors);
    }
    json_t *metrics = s->metrics_json ? json_loads(s->metrics_json, 0, NULL) : NULL;
    json_object_set_new(j, "metrics", metrics ? metrics : json_null());
    json_t *opts = json_loads(s->options_json ? s->options_json : "{}", 0, NULL);
    json_object_set_new(j, "options", opts ? opts : json_object());
    if (s->state == VD_SESSION_SUCCEEDED)
        json_object_set_new(j, "threshold", json_real(s->threshold));
    json_object_set_new(j, "message", s->message ? json_string(s->message) : json_null());
    json_object_set_new(j, "job_id", s->job_id[0] ? json_string(s->job_id) : json_null());
    json_object_set_new(j, "created_ms", json_integer(s->created_ms));
    json_object_set_new(j, "updated_ms", json_integer(s->updated_ms));
    return j;
}

/* Reads session id into *s (VD_OK); otherwise answers 404 session_not_found
 * (or 503) and returns the store's status. */
static vd_status get_session(vd_store *store, const char *id, vd_session *s, vd_http_resp *resp)
{
    const char *why = NULL;
    vd_error err;
    vd_status st = vd_svc_session_get(store, id, s, &why, &err);
    if (st != VD_OK) reply_svc_error(resp, why, st, &err);
    return st;
}

/* vd_svc_session_settle with a borrowed queue; one that cannot be borrowed
 * leaves the session as stored. */
static void settle_orphan(vd_api *api, vd_store *store, vd_session *s)
{
    if (vd_session_state_is_final(s->state) || !s->job_id[0]) return;
    vd_queue *q = NULL;
    vd_error err;
    if (vd_api_queue_borrow(api, &q, &err) != VD_OK) return;
    vd_api_queue_put(api, q, vd_svc_session_settle(store, q, s, &err));
}

static void show(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    vd_store *store = vd_api_store_get(api, resp);
    if (!store) return;
    vd_session s;
    vd_status st = get_session(store, vd_http_param(req, "id"), &s, resp);
    if (st == VD_OK) {
        settle_orphan(api, store, &s);
        vd_http_reply_json(resp, 200, session_json(&s, 1));
    }
    vd_session_clear(&s);
    vd_api_store_put(api, store, st);
}

static void list(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t limit = 100;
    if (!vd_api_query_int(resp, req, "limit", 1, 1000, &limit)) return;
    vd_store *store = vd_api_store_get(api, resp);
    if (!store) return;
    vd_session *v = NULL;
    size_t n = 0;
    vd_error err;
    vd_status st = vd_store_session_list(store, (size_t)limit, &v, &n, &err);
    vd_api_store_put(api, store, st);
    if (st != VD_OK) {
        vd_api_reply_embed_error(resp, st, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, session_json(&v[i], 0));
    vd_session_list_free(v, n);
    vd_http_reply_json(resp, 200, json_pack("{s:o}", "sessions", arr));
}

static void delete_session(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    vd_store *store = vd_api_store_get(api, resp);
    if (!store) return;
    vd_session s;
    vd_status gst = get_session(store, vd_http_param(req, "id"), &s, resp);
    if (gst != VD_OK) {
        vd_api_store_put(api, store, gst);
        return;
    }
    int was_running = !vd_session_state_is_final(s.state);
    vd_error err;
    /* Mark it canceled first: a horse embedding it sees that and stops. */
    if (was_running)
        vd_store_session_finish(store, s.id, VD_SESSION_CANCELED, NULL, 0, "deleted", NULL);
    int job_canceled = 0;
    if (s.job_id[0] && was_running) {
        vd_queue *q = vd_api_queue_get(api, resp);
        if (!q) {
            vd_session_clear(&s);
            vd_api_store_put(api, store, VD_OK);
            return;
        }
        vd_status st = vd_queue_cancel(q, s.job_id, &err);
        job_canceled = st == VD_OK;
        vd_api_queue_put(api, q, st);
    }
    vd_status st = vd_store_session_delete(store, s.id, &err);
    if (st == VD_OK) /* its uploads go once no session refers to them (a failure: next time) */
        vd_svc_uploads_gc(store, NULL, NULL);
    vd_api_store_put(api, store, st);
    if (st != VD_OK && st != VD_ERR_NOT_FOUND) {
        vd_session_clear(&s);
        vd_api_reply_embed_error(resp, st, &err);
        return;
    }
    vd_http_reply_json(resp, 200,
                       json_pack("{s:s, s:b, s:s, s:b}", "id", s.id, "deleted", 1, "state",
                                 vd_session_state_name(s.state), "job_canceled", job_canceled));
    vd_session_clear(&s);
}

static void predict(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"paths", NULL}, *const no_fields[] = {NULL};
    if (req->json && !vd_api_only_fields(resp, req->json, fields)) return;
    if (req->parts && !vd_form_check(req, resp, no_fields)) return;
    vd_store *store = vd_api_store_get(api, resp);
    if (!store) return;
    vd_session s;
    vd_classifier *clf = NULL;
    vd_runner *runner = NULL;
    vd_api_inputs in = {0};
    vd_error err;
    const char *why = NULL;
    json_t *preds = NULL;
    size_t failed = 0;
    vd_status st = vd_svc_predict_open(store, vd_http_param(req, "id"), &s, &clf, &why, &err);
    if (st != VD_OK) {
        reply_svc_error(resp, why, st, &err);
        goto out;
    }
    if (!vd_api_inputs_get(api, req, resp, VD_SVC_MAX_PREDICT_PATHS, &in)) goto out;
    runner = vd_api_runner_get(api, resp);
    if (!runner) goto out;
    st = vd_svc_predict(store, runner, &s, clf, (const char *const *)in.paths,
                        (const char *const *)in.names, in.n, &preds, &failed, &why, &err);
    if (st != VD_OK)
        vd_api_reply_embed_error(resp, st, &err);
    else
        vd_http_reply_json(resp, 200,
                           json_pack("{s:o, s:s}", "predictions", preds, "session_id", s.id));
out:
    vd_api_inputs_free(&in);
    vd_api_runner_put(api, runner, st);
    vd_classifier_free(clf);
    vd_session_clear(&s);
    vd_api_store_put(api, store, st);
}

vd_status vd_api_routes_training(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"POST", "/training/sessions", create, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD},
        {"GET", "/training/sessions", list, api, 0},
        {"GET", "/training/sessions/{id}", show, api, 0},
        {"DELETE", "/training/sessions/{id}", delete_session, api, 0},
        {"POST", "/training/sessions/{id}/predict", predict, api,
         VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
