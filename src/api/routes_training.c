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
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api_impl.h"
#include "core/util.h"
#include "infer/runner_client.h"
#include "pipeline/embed.h"
#include "pipeline/jobs.h"
#include "store/sessions.h"
#include "train/classifier.h"
#include "train/persist.h"

#define MAX_EXAMPLES      10000
#define MAX_LABEL_LEN     100
#define MAX_NAME_LEN      200
#define MAX_PREDICT_PATHS 256
#define TRAIN_RETRIES     3

typedef struct {
    char *path;  /* owned: what the job opens (resolved, or the kept upload) */
    char *label; /* owned */
} ex_in;

typedef struct {
    ex_in *v;
    size_t n, cap;
} ex_list;

static void ex_list_free(ex_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].path);
        free(l->v[i].label);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Takes path (owned) and copies label. 0 when out of memory. */
static int ex_push(ex_list *l, char *path, const char *label)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        ex_in *v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            free(path);
            return 0;
        }
        l->v = v, l->cap = cap;
    }
    char *lab = vd_strdup(label);
    if (!lab) {
        free(path);
        return 0;
    }
    l->v[l->n].path = path;
    l->v[l->n++].label = lab;
    return 1;
}

/* Checks one label; answers and returns 0 when it is bad. */
static int check_label(vd_http_resp *resp, const char *label, const char *where)
{
    if (!*label) {
        vd_http_reply_error(resp, 422, "empty_label", "%s: the label is empty", where);
        return 0;
    }
    if (strlen(label) > MAX_LABEL_LEN) {
        vd_http_reply_error(resp, 422, "label_too_long", "%s: labels have at most %d characters",
                            where, MAX_LABEL_LEN);
        return 0;
    }
    if (strcmp(label, VD_UNKNOWN_LABEL) == 0) {
        vd_http_reply_error(resp, 422, "reserved_label",
                            "%s: the label \"unknown\" is reserved (predict answers it below the "
                            "threshold)",
                            where);
        return 0;
    }
    return 1;
}

static int too_many(vd_http_resp *resp, size_t n)
{
    if (n <= MAX_EXAMPLES) return 0;
    vd_http_reply_error(resp, 413, "too_many_examples", "at most %d examples per session",
                        MAX_EXAMPLES);
    return 1;
}

static int examples_from_json(vd_api *api, json_t *arr, vd_http_resp *resp, ex_list *out)
{
    if (!json_is_array(arr)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field 'examples' must be an array");
        return 0;
    }
    size_t n = json_array_size(arr);
    if (n == 0) {
        vd_http_reply_error(resp, 422, "no_examples", "field 'examples' is empty");
        return 0;
    }
    if (too_many(resp, n)) return 0;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(arr, i);
        char where[48];
        snprintf(where, sizeof where, "examples[%zu]", i);
        if (!json_is_object(e)) {
            vd_http_reply_error(resp, 400, "invalid_type", "%s must be an object {path, label}",
                                where);
            return 0;
        }
        static const char *const fields[] = {"path", "label", NULL};
        const char *path = NULL, *label = NULL;
        if (!vd_api_only_fields(resp, e, fields) || !vd_api_get_string(resp, e, "path", 1, &path) ||
            !vd_api_get_string(resp, e, "label", 1, &label) || !check_label(resp, label, where))
            return 0;
        char *resolved = NULL;
        vd_path_problem prob;
        vd_error err;
        if (vd_media_roots_check(api->roots, path, VD_PATH_WANT_FILE, &resolved, &prob, &err) !=
            VD_OK) {
            vd_api_reply_path_error(resp, where, prob, &err);
            return 0;
        }
        if (!ex_push(out, resolved, label)) {
            vd_http_reply_error(resp, 500, "nomem", "out of memory");
            return 0;
        }
    }
    return 1;
}

static int visible_entry(const struct dirent *d)
{
    return d->d_name[0] != '.';
}

/* One sub-folder per label; the regular files inside are its examples. */
static int examples_from_folder(vd_api *api, const char *folder, vd_http_resp *resp, ex_list *out)
{
    char *dir = NULL;
    vd_path_problem prob;
    vd_error err;
    if (vd_media_roots_check(api->roots, folder, VD_PATH_WANT_DIR, &dir, &prob, &err) != VD_OK) {
        vd_api_reply_path_error(resp, "folder", prob, &err);
        return 0;
    }
    struct dirent **labels = NULL;
    int nl = scandir(dir, &labels, visible_entry, alphasort);
    int ok = 1;
    if (nl < 0) {
        vd_http_reply_error(resp, 422, "unreadable_folder", "folder: cannot list %s: %s", folder,
                            strerror(errno));
        free(dir);
        return 0;
    }
    for (int i = 0; i < nl && ok; i++) {
        char sub[4096];
        struct stat sb;
        if (snprintf(sub, sizeof sub, "%s/%s", dir, labels[i]->d_name) >= (int)sizeof sub ||
            stat(sub, &sb) != 0 || !S_ISDIR(sb.st_mode))
            continue;
        char where[300];
        snprintf(where, sizeof where, "folder %s/%s", folder, labels[i]->d_name);
        if (!check_label(resp, labels[i]->d_name, where)) {
            ok = 0;
            break;
        }
        struct dirent **files = NULL;
        int nf = scandir(sub, &files, visible_entry, alphasort);
        for (int k = 0; k < nf; k++) {
            char file[4096];
            if (ok &&
                snprintf(file, sizeof file, "%s/%s", sub, files[k]->d_name) < (int)sizeof file &&
                stat(file, &sb) == 0 && S_ISREG(sb.st_mode)) {
                char *resolved = NULL;
                /* the folder is under a root; a symlink inside it must be too */
                if (vd_media_roots_check(api->roots, file, VD_PATH_WANT_FILE, &resolved, &prob,
                                         &err) != VD_OK) {
                    vd_api_reply_path_error(resp, where, prob, &err);
                    ok = 0;
                } else if (!ex_push(out, resolved, labels[i]->d_name)) {
                    vd_http_reply_error(resp, 500, "nomem", "out of memory");
                    ok = 0;
                } else if (too_many(resp, out->n)) {
                    ok = 0;
                }
            }
            free(files[k]);
        }
        free(files);
    }
    for (int i = 0; i < nl; i++)
        free(labels[i]);
    free(labels);
    free(dir);
    if (ok && out->n == 0) {
        vd_http_reply_error(resp, 422, "no_examples",
                            "folder %s has no sub-folder with files (one sub-folder per label)",
                            folder);
        ok = 0;
    }
    return ok;
}

static int examples_from_upload(vd_http_req *req, vd_http_resp *resp, ex_list *out)
{
    for (size_t i = 0; i < req->nparts; i++) {
        const vd_http_part *p = &req->parts[i];
        if (!p->path) continue;
        char where[160];
        snprintf(where, sizeof where, "file part %zu (%.100s)", i, p->filename ? p->filename : "");
        if (!check_label(resp, p->name, where)) return 0;
        char *path = vd_strdup(p->path);
        if (!path || !ex_push(out, path, p->name)) {
            vd_http_reply_error(resp, 500, "nomem", "out of memory");
            return 0;
        }
        if (too_many(resp, out->n)) return 0;
    }
    if (out->n == 0) {
        vd_http_reply_error(resp, 422, "no_examples", "the upload has no file part");
        return 0;
    }
    return 1;
}

/* Checks that model is served and fits the kind; answers and returns 0 otherwise. */
static int check_model(vd_api *api, const char *model, vd_session_kind kind, vd_http_resp *resp)
{
    vd_runner *r = vd_api_runner_get(api, resp);
    if (!r) return 0;
    char *text = NULL;
    vd_error err;
    vd_status st = vd_runner_client_models(r, &text, &err);
    vd_api_runner_put(api, r, st);
    if (st != VD_OK) {
        vd_api_reply_infer_error(resp, st, &err);
        return 0;
    }
    json_t *j = json_loads(text, 0, NULL);
    free(text);
    json_t *m, *found = NULL;
    size_t i;
    json_array_foreach(json_object_get(j, "models"), i, m)
    {
        const char *n = json_string_value(json_object_get(m, "name"));
        if (n && strcmp(n, model) == 0) found = m;
    }
    const char *task = found ? json_string_value(json_object_get(found, "task")) : NULL;
    const char *want = kind == VD_SESSION_FACE ? "face_embedding" : "image_embedding";
    int ok = 1;
    if (!found) {
        vd_http_reply_error(resp, 422, "unknown_model", "the model server has no model \"%.64s\"",
                            model);
        ok = 0;
    } else if (!task || strcmp(task, want) != 0) {
        vd_http_reply_error(resp, 422, "model_kind_mismatch",
                            "model \"%.64s\" is a %s model; a %s session needs a %s model", model,
                            task ? task : "?", vd_session_kind_name(kind), want);
        ok = 0;
    }
    json_decref(j);
    return ok;
}

/* Moves uploaded example files under DATA/uploads/sessions/SID (they outlive the request). */
static int keep_uploads(vd_api *api, const char *sid, ex_list *ex, vd_http_resp *resp)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sessions", api->upload_dir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/sessions/%s", api->upload_dir, sid);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        vd_http_reply_error(resp, 500, "io", "cannot create %s: %s", dir, strerror(errno));
        return 0;
    }
    for (size_t i = 0; i < ex->n; i++) {
        char dst[4200];
        snprintf(dst, sizeof dst, "%s/%06zu", dir, i);
        if (rename(ex->v[i].path, dst) != 0) {
            vd_http_reply_error(resp, 500, "io", "cannot keep upload: %s", strerror(errno));
            return 0;
        }
        char *p = vd_strdup(dst);
        if (!p) {
            vd_http_reply_error(resp, 500, "nomem", "out of memory");
            return 0;
        }
        free(ex->v[i].path);
        ex->v[i].path = p;
    }
    return 1;
}

static void remove_uploads(vd_api *api, const char *sid)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/sessions/%s", api->upload_dir, sid);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char f[4400];
        snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
        unlink(f);
    }
    closedir(d);
    rmdir(dir);
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

static void create(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"name",   "kind", "model", "examples",
                                         "folder", "crop", NULL};
    const char *name = NULL, *kind_s = "image", *model = NULL, *folder = NULL;
    int crop = 0, upload = req->parts != NULL;
    json_t *examples = NULL;
    if (upload) {
        name = vd_api_form_value(req, "name");
        if (vd_api_form_value(req, "kind")) kind_s = vd_api_form_value(req, "kind");
        model = vd_api_form_value(req, "model");
        const char *c = vd_api_form_value(req, "crop");
        crop = c && (strcmp(c, "true") == 0 || strcmp(c, "1") == 0);
        if (!name) {
            vd_http_reply_error(resp, 422, "missing_field", "field 'name' is required");
            return;
        }
    } else {
        json_t *b = req->json;
        if (!vd_api_only_fields(resp, b, fields) || !vd_api_get_string(resp, b, "name", 1, &name) ||
            !vd_api_get_string(resp, b, "kind", 0, &kind_s) ||
            !vd_api_get_string(resp, b, "model", 0, &model) ||
            !vd_api_get_string(resp, b, "folder", 0, &folder) ||
            !vd_api_get_bool(resp, b, "crop", &crop))
            return;
        examples = json_object_get(b, "examples");
        if (examples && json_is_null(examples)) examples = NULL;
        if (examples && folder) {
            vd_http_reply_error(resp, 422, "examples_and_folder",
                                "give either 'examples' or 'folder', not both");
            return;
        }
        if (!examples && !folder) {
            vd_http_reply_error(resp, 422, "missing_field",
                                "give 'examples' ([{path, label}]) or 'folder' (one sub-folder "
                                "per label), or upload files");
            return;
        }
    }
    if (!*name || strlen(name) > MAX_NAME_LEN) {
        vd_http_reply_error(resp, 422, "invalid_value", "field 'name' must have 1 to %d characters",
                            MAX_NAME_LEN);
        return;
    }
    vd_session_kind kind;
    if (vd_session_kind_parse(kind_s, &kind) != VD_OK) {
        vd_http_reply_error(resp, 422, "unknown_kind",
                            "kind must be \"image\" or \"face\" (got \"%.40s\")", kind_s);
        return;
    }
    if (crop && kind != VD_SESSION_FACE) {
        vd_http_reply_error(resp, 422, "invalid_value", "'crop' applies to face sessions only");
        return;
    }
    if (!model) model = vd_pipeline_default_model(kind);
    if (!*model || strlen(model) >= 64) {
        vd_http_reply_error(resp, 422, "unknown_model", "bad model name");
        return;
    }

    ex_list ex = {0};
    int ok = upload     ? examples_from_upload(req, resp, &ex)
             : examples ? examples_from_json(api, examples, resp, &ex)
                        : examples_from_folder(api, folder, resp, &ex);
    if (!ok) goto out;
    const char *first = ex.v[0].label;
    int two = 0;
    for (size_t i = 1; i < ex.n && !two; i++)
        two = strcmp(ex.v[i].label, first) != 0;
    if (!two) {
        vd_http_reply_error(resp, 422, "one_label",
                            "a session needs at least 2 distinct labels, but every example is "
                            "labelled \"%.100s\"",
                            first);
        goto out;
    }
    if (!check_model(api, model, kind, resp)) goto out;

    vd_store *store = vd_api_store_get(api, resp);
    if (!store) goto out;
    vd_error err;
    char sid[VD_ID_LEN + 1];
    vd_session_new sn = {.name = name,
                         .kind = kind,
                         .model = model,
                         .options_json = crop ? "{\"crop\": true}" : "{}"};
    vd_status st = vd_store_session_create(store, &sn, sid, &err);
    if (st != VD_OK) {
        vd_api_store_put(api, store, st);
        vd_http_reply_status(resp, st, NULL, &err);
        goto out;
    }
    if (upload && !keep_uploads(api, sid, &ex, resp)) {
        vd_api_store_put(api, store, vd_store_session_delete(store, sid, NULL));
        remove_uploads(api, sid);
        goto out;
    }
    vd_example *rows = calloc(ex.n, sizeof *rows);
    if (!rows) {
        st = vd_error_set(&err, VD_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < ex.n; i++) {
            rows[i].path = ex.v[i].path;
            rows[i].label = ex.v[i].label;
        }
        st = vd_store_examples_add(store, sid, rows, ex.n, &err);
        free(rows);
    }
    char jid[VD_ID_LEN + 1] = "";
    if (st == VD_OK) {
        vd_queue *q = vd_api_queue_get(api, resp);
        if (!q) {
            vd_api_store_put(api, store, vd_store_session_delete(store, sid, NULL));
            if (upload) remove_uploads(api, sid);
            goto out;
        }
        char payload[128];
        snprintf(payload, sizeof payload, "{\"session_id\": \"%s\"}", sid);
        vd_enqueue_opts o = {.type = "train_session",
                             .payload = payload,
                             .max_retries = TRAIN_RETRIES,
                             .retry_base_ms = 1000};
        st = vd_queue_enqueue(q, &o, jid, &err);
        vd_api_queue_put(api, q, st);
        if (st != VD_OK) {
            vd_api_store_put(api, store, vd_store_session_delete(store, sid, NULL));
            if (upload) remove_uploads(api, sid);
            vd_api_reply_queue_error(resp, st, &err);
            goto out;
        }
        st = vd_store_session_set_job(store, sid, jid, &err);
    }
    vd_api_store_put(api, store, st);
    if (st != VD_OK) {
        vd_http_reply_status(resp, st, NULL, &err);
        goto out;
    }
    char loc[80];
    snprintf(loc, sizeof loc, "/training/sessions/%s", sid);
    vd_http_add_header(resp, "Location", loc);
    vd_http_reply_json(resp, 202,
                       json_pack("{s:s, s:s, s:s, s:I}", "id", sid, "job_id", jid, "state",
                                 "queued", "examples", (json_int_t)ex.n));
out:
    ex_list_free(&ex);
}

/* Reads session id into *s (VD_OK); otherwise answers 404 session_not_found
 * (or 503) and returns the store's status. */
static vd_status get_session(vd_store *store, const char *id, vd_session *s, vd_http_resp *resp)
{
    memset(s, 0, sizeof *s);
    vd_error err;
    vd_status st =
        strlen(id) <= VD_ID_LEN ? vd_store_session_get(store, id, s, &err) : VD_ERR_NOT_FOUND;
    if (st == VD_OK) return VD_OK;
    if (st == VD_ERR_NOT_FOUND)
        vd_http_reply_error(resp, 404, "session_not_found", "no training session %.40s", id);
    else
        vd_api_reply_embed_error(resp, st, &err);
    return st;
}

/* Ends a session whose job ended without ending it: the job's last attempt
 * was killed (work-horse or worker SIGKILLed, lease lapsed with no attempts
 * left), so no handler was left to say so and the session would stay running
 * for ever. It ends failed with the job's error. A queue that cannot be
 * reached leaves the session as stored. */
static void settle_orphan(vd_api *api, vd_store *store, vd_session *s)
{
    if (vd_session_state_is_final(s->state) || !s->job_id[0]) return;
    vd_queue *q = NULL;
    vd_error err;
    if (vd_qpool_get(api->qpool, &q, &err) != VD_OK) return;
    vd_job job;
    memset(&job, 0, sizeof job);
    vd_status st = vd_queue_get(q, s->job_id, &job, &err);
    vd_api_queue_put(api, q, st);
    if (st != VD_OK && st != VD_ERR_NOT_FOUND) return;
    if (st == VD_OK && job.state != VD_JOB_FAILED && job.state != VD_JOB_CANCELED) {
        vd_job_clear(&job);
        return;
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
    vd_api_store_put(api, store, st);
    if (st != VD_OK && st != VD_ERR_NOT_FOUND) {
        vd_session_clear(&s);
        vd_api_reply_embed_error(resp, st, &err);
        return;
    }
    remove_uploads(api, s.id);
    vd_http_reply_json(resp, 200,
                       json_pack("{s:s, s:b, s:s, s:b}", "id", s.id, "deleted", 1, "state",
                                 vd_session_state_name(s.state), "job_canceled", job_canceled));
    vd_session_clear(&s);
}

static void predict(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"paths", NULL};
    if (req->json && !vd_api_only_fields(resp, req->json, fields)) return;
    vd_store *store = vd_api_store_get(api, resp);
    if (!store) return;
    vd_session s;
    vd_classifier *clf = NULL;
    vd_runner *runner = NULL;
    vd_embed_item *items = NULL;
    vd_api_inputs in = {0};
    vd_error err;
    vd_status st = get_session(store, vd_http_param(req, "id"), &s, resp);
    if (st != VD_OK) goto out;
    if (s.state != VD_SESSION_SUCCEEDED) {
        vd_http_reply_error(resp, 409, "session_not_ready",
                            "session %s is %s; predict needs a succeeded session", s.id,
                            vd_session_state_name(s.state));
        goto out;
    }
    st = vd_train_load(store, s.id, &clf, &err);
    if (st != VD_OK) {
        vd_http_reply_status(resp, st, st == VD_ERR_NOT_FOUND ? "no_classifier" : NULL, &err);
        goto out;
    }
    if (!vd_api_inputs_get(api, req, resp, MAX_PREDICT_PATHS, &in)) goto out;
    runner = vd_api_runner_get(api, resp);
    if (!runner) goto out;
    items = calloc(in.n, sizeof *items);
    if (!items) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        goto out;
    }
    vd_embed_opts o = {.runner = runner,
                       .store = store,
                       .model = s.model,
                       .mode = vd_pipeline_session_mode(&s),
                       .roots = in.roots,
                       .want_vectors = 1};
    int dim = 0;
    st = vd_embed_paths(&o, (const char *const *)in.paths, in.n, items, &dim, NULL, &err);
    if (st != VD_OK) {
        vd_api_reply_embed_error(resp, st, &err);
        goto out;
    }
    size_t nl = vd_classifier_nlabels(clf);
    double *scores = calloc(nl ? nl : 1, sizeof *scores);
    json_t *arr = json_array();
    for (size_t i = 0; i < in.n; i++) {
        json_t *e = NULL;
        if (items[i].status == VD_OK && scores) {
            vd_prediction p;
            vd_error perr;
            if (vd_classifier_predict(clf, items[i].vector, (size_t)dim, &p, scores, &perr) ==
                VD_OK)
                e = vd_train_prediction_json(clf, in.names[i], &p, scores);
            else
                e = json_pack("{s:s, s:s}", "path", in.names[i], "error", vd_error_text(&perr));
        } else {
            e = json_pack("{s:s, s:s}", "path", in.names[i], "error",
                          items[i].error ? items[i].error : "out of memory");
        }
        json_array_append_new(arr, e);
    }
    free(scores);
    vd_http_reply_json(resp, 200, json_pack("{s:o, s:s}", "predictions", arr, "session_id", s.id));
out:
    if (items) vd_embed_items_clear(items, in.n);
    free(items);
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
