/* routes_infer.c: synchronous inference over HTTP (docs/api.md).
 *
 *   POST /embeddings   {"model", "paths", "vectors", "mode"} or an upload:
 *                      vectors through the store's cache and the model server;
 *                      {"model", "texts", "vectors"}: text vectors (CLIP)
 *   POST /classify     {"model", "labels", "paths", "template"}: CLIP zero-shot scores
 *   POST /faces        {"path", "embed"} or an upload of one image: faces
 *                      (box, score, keypoints, and vectors when asked), cached
 * (GET /models is routes_models.c's.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "api/form.h"
#include "core/util.h"
#include "faces/faces.h"
#include "image/decode.h"
#include "pipeline/embed.h"
#include "pipeline/text_embed.h"
#include "pipeline/zeroshot.h"
#include "store/vectors.h"

#define MAX_EMBED_PATHS 256

static json_t *vector_json(const float *v, int dim)
{
    json_t *a = json_array();
    for (int i = 0; i < dim; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

/* Maps vd_text_embed's refusals to their HTTP answers (docs/api.md). */
static void reply_text_error(vd_http_resp *resp, vd_status st, const vd_error *err)
{
    const char *msg = vd_error_text(err);
    if (st == VD_ERR_UNSUPPORTED)
        vd_http_reply_error(resp, 422, "model_task_mismatch", "%s", msg);
    else if (st == VD_ERR_INVALID)
        vd_http_reply_error(resp, 422, "invalid_text", "%s", msg);
    else if (st == VD_ERR_LIMIT)
        vd_http_reply_error(resp, 413, "text_too_long", "%s", msg);
    else
        vd_api_reply_embed_error(resp, st, err);
}

/* Reads "texts": an array of 1..VD_TEXT_MAX_TEXTS strings. */
static int get_texts(vd_http_resp *resp, const char *field, json_t *arr, const char ***texts,
                     size_t *n)
{
    *texts = NULL;
    *n = 0;
    if (!json_is_array(arr)) {
        vd_http_reply_error(resp, 422, "invalid_text", "%s must be an array of strings", field);
        return 0;
    }
    size_t k = json_array_size(arr);
    if (k == 0) {
        vd_http_reply_error(resp, 422, "no_texts", "%s is empty: give at least one", field);
        return 0;
    }
    if (k > VD_TEXT_MAX_TEXTS) {
        vd_http_reply_error(resp, 413, "too_many_texts", "%zu %s; at most %d a request", k, field,
                            VD_TEXT_MAX_TEXTS);
        return 0;
    }
    *texts = calloc(k, sizeof **texts);
    if (!*texts) {
        vd_http_reply_error(resp, 500, "nomem", "out of memory");
        return 0;
    }
    for (size_t i = 0; i < k; i++) {
        json_t *t = json_array_get(arr, i);
        if (!json_is_string(t) || strlen(json_string_value(t)) != json_string_length(t)) {
            vd_http_reply_error(resp, 422, "invalid_text",
                                "%s[%zu] must be a string without NUL characters", field, i);
            free(*texts);
            *texts = NULL;
            return 0;
        }
        (*texts)[i] = json_string_value(t);
    }
    *n = k;
    return 1;
}

/* POST /embeddings {"model", "texts", "vectors"}: text vectors through vd_text_embed. */
static void embed_texts(vd_api *api, vd_http_resp *resp, const char *model, json_t *arr,
                        int vectors)
{
    const char **texts;
    size_t n;
    if (!model || !*model) {
        vd_http_reply_error(resp, 422, "unknown_model",
                            "texts need a model: a text model or a CLIP image model with a text "
                            "tower");
        return;
    }
    if (!get_texts(resp, "texts", arr, &texts, &n)) return;
    vd_text_item *items = calloc(n, sizeof *items);
    vd_store *store = items ? vd_api_store_get(api, resp) : NULL;
    vd_runner *runner = store ? vd_api_runner_get(api, resp) : NULL;
    vd_status st = VD_OK;
    if (!items) vd_http_reply_error(resp, 500, "nomem", "out of memory");
    if (runner) {
        vd_text_opts o = {.runner = runner, .store = store, .model = model};
        char used[VD_MODEL_NAME_MAX];
        int dim = 0;
        vd_error err;
        vd_error_clear(&err);
        st = vd_text_embed(&o, texts, n, items, &dim, used, &err);
        if (st != VD_OK) {
            reply_text_error(resp, st, &err);
        } else {
            json_t *j = json_object(), *out = json_array();
            size_t cached = 0;
            json_object_set_new(j, "model", json_string(model));
            json_object_set_new(j, "text_model", json_string(used));
            json_object_set_new(j, "dim", json_integer(dim));
            for (size_t i = 0; i < n; i++) {
                json_t *e = json_pack("{s:s, s:b, s:b, s:I}", "text", texts[i], "cached",
                                      items[i].cached, "truncated", items[i].truncated, "tokens",
                                      (json_int_t)items[i].tokens);
                if (vectors) json_object_set_new(e, "vector", vector_json(items[i].vector, dim));
                cached += (size_t)items[i].cached;
                json_array_append_new(out, e);
            }
            json_object_set_new(j, "embeddings", out);
            json_object_set_new(j, "computed", json_integer((json_int_t)(n - cached)));
            json_object_set_new(j, "cached", json_integer((json_int_t)cached));
            vd_http_reply_json(resp, 200, j);
        }
        /* refusals of the request are not the model server's or the store's failures */
        if (st == VD_ERR_UNSUPPORTED || st == VD_ERR_INVALID || st == VD_ERR_LIMIT ||
            st == VD_ERR_NOT_FOUND || st == VD_ERR_MODEL)
            st = VD_OK;
    }
    if (items) vd_text_items_clear(items, n);
    free(items);
    free(texts);
    vd_api_runner_put(api, runner, st);
    vd_api_store_put(api, store, st);
}

static void embeddings(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"model", "paths", "vectors", "mode", "texts", NULL};
    const char *model = NULL, *mode_s = "image";
    int vectors = 1;
    if (req->json) {
        if (!vd_api_only_fields(resp, req->json, fields) ||
            !vd_api_get_string(resp, req->json, "model", 0, &model) ||
            !vd_api_get_string(resp, req->json, "mode", 0, &mode_s) ||
            !vd_api_get_bool(resp, req->json, "vectors", &vectors))
            return;
        json_t *texts = json_object_get(req->json, "texts");
        if (texts && (json_object_get(req->json, "paths") || json_object_get(req->json, "mode"))) {
            vd_http_reply_error(resp, 422, "invalid_value",
                                "give texts or paths (with a mode), not both");
            return;
        }
        if (texts) {
            embed_texts(api, resp, model, texts, vectors);
            return;
        }
    } else if (req->parts) {
        static const char *const form_fields[] = {"model", "vectors", "mode", NULL};
        if (!vd_form_check(req, resp, form_fields) || !vd_form_bool(req, resp, "vectors", &vectors))
            return;
        const char *m = vd_api_form_value(req, "model");
        if (m) model = m;
        const char *md = vd_api_form_value(req, "mode");
        if (md) mode_s = md;
    }
    if (strcmp(mode_s, "image") != 0 && strcmp(mode_s, "face") != 0) {
        vd_http_reply_error(resp, 422, "invalid_value", "mode must be \"image\" or \"face\"");
        return;
    }
    vd_embed_mode mode = strcmp(mode_s, "face") == 0 ? VD_EMBED_FACE : VD_EMBED_IMAGE;
    if (!model) model = vd_embed_default_model(mode);
    if (!*model) {
        vd_http_reply_error(resp, 422, "unknown_model", "model is empty");
        return;
    }
    vd_api_inputs in;
    if (!vd_api_inputs_get(api, req, resp, MAX_EMBED_PATHS, &in)) return;
    vd_store *store = vd_api_store_get(api, resp);
    vd_runner *runner = store ? vd_api_runner_get(api, resp) : NULL;
    vd_embed_item *items = calloc(in.n, sizeof *items);
    vd_status st = VD_OK;
    if (!runner || !items) {
        if (!items && runner) vd_http_reply_error(resp, 500, "nomem", "out of memory");
        goto out;
    }
    vd_embed_opts o = {.runner = runner,
                       .store = store,
                       .model = model,
                       .mode = mode,
                       .roots = in.roots,
                       .want_vectors = vectors};
    int dim = 0;
    vd_embed_stats stats;
    vd_error err;
    /* the pipeline's rule (vd_embed_paths applies it too), asked first for its own answer */
    st = vd_embed_check_model(runner, model, mode, NULL, &err);
    if (st == VD_ERR_UNSUPPORTED) {
        vd_http_reply_error(resp, 422, "model_task_mismatch", "%s", vd_error_text(&err));
        st = VD_OK; /* the runner is fine */
        goto out;
    }
    if (st == VD_OK)
        st = vd_embed_paths(&o, (const char *const *)in.paths, in.n, items, &dim, &stats, &err);
    if (st != VD_OK) {
        vd_api_reply_embed_error(resp, st, &err);
        goto out;
    }
    json_t *j = json_object(), *arr = json_array();
    json_object_set_new(j, "model", json_string(model));
    json_object_set_new(j, "dim", json_integer(dim));
    for (size_t i = 0; i < in.n; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "path", json_string(in.names[i]));
        if (items[i].status == VD_OK) {
            json_object_set_new(e, "sha256", json_string(items[i].sha256));
            json_object_set_new(e, "cached", json_boolean(items[i].cached));
            if (vectors && items[i].vector)
                json_object_set_new(e, "vector", vector_json(items[i].vector, dim));
        } else {
            json_object_set_new(e, "error", json_string(items[i].error));
            json_object_set_new(e, "code", json_string(vd_status_name(items[i].status)));
        }
        json_array_append_new(arr, e);
    }
    json_object_set_new(j, "embeddings", arr);
    json_object_set_new(j, "computed", json_integer((json_int_t)stats.computed));
    json_object_set_new(j, "cached", json_integer((json_int_t)stats.cached));
    json_object_set_new(j, "failed", json_integer((json_int_t)stats.failed));
    vd_http_reply_json(resp, 200, j);
out:
    if (items) vd_embed_items_clear(items, in.n);
    free(items);
    vd_api_runner_put(api, runner, st);
    vd_api_store_put(api, store, st);
    vd_api_inputs_free(&in);
}

/* The faces cache's model key: the detector, plus the embedder when vectors are wanted. */
static void faces_key(int embed, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s", VD_FACES_DETECTOR, embed ? "+" : "", embed ? VD_FACES_EMBEDDER : "");
}

static json_t *face_json(const float box[4], float score, const float (*kp)[2], int nkp,
                         const float *vec, int dim)
{
    json_t *f = json_object();
    json_object_set_new(f, "box", json_pack("[f,f,f,f]", box[0], box[1], box[2], box[3]));
    json_object_set_new(f, "score", json_real(score));
    json_t *k = json_array();
    for (int i = 0; i < nkp; i++)
        json_array_append_new(k, json_pack("[f,f]", kp[i][0], kp[i][1]));
    json_object_set_new(f, "keypoints", k);
    if (vec && dim > 0) json_object_set_new(f, "vector", vector_json(vec, dim));
    return f;
}

/* What POST /faces was asked: the file (an upload's temp file, or a client
 * path checked against the media roots), the name to quote in errors, and
 * whether to embed each face. */
typedef struct {
    char *path;       /* owned */
    const char *name; /* borrowed from the request */
    int embed;
    int upload; /* the file is our own temp file: opened without the roots */
} faces_input;

/* Parses the multipart or JSON form of the request into *in; on refusal
 * answers and returns 0. */
static int faces_parse(vd_api *api, vd_http_req *req, vd_http_resp *resp, faces_input *in)
{
    static const char *const fields[] = {"path", "embed", NULL};
    if (!req->parts) {
        vd_path_problem prob;
        vd_error perr;
        if (!vd_api_only_fields(resp, req->json, fields) ||
            !vd_api_get_string(resp, req->json, "path", 1, &in->name) ||
            !vd_api_get_bool(resp, req->json, "embed", &in->embed))
            return 0;
        if (vd_media_roots_check(api->roots, in->name, VD_PATH_WANT_FILE, &in->path, &prob,
                                 &perr) != VD_OK) {
            vd_api_reply_path_error(resp, "path", prob, &perr);
            return 0;
        }
        return 1;
    }
    static const char *const form_fields[] = {"embed", NULL};
    if (!vd_form_check(req, resp, form_fields) || !vd_form_bool(req, resp, "embed", &in->embed))
        return 0;
    if (vd_form_files(req) > 1) {
        vd_http_reply_error(resp, 422, "invalid_value", "upload one image, not %zu",
                            vd_form_files(req));
        return 0;
    }
    for (size_t i = 0; i < req->nparts && !in->path; i++)
        if (req->parts[i].path) {
            in->path = vd_strdup(req->parts[i].path);
            in->name = req->parts[i].filename ? req->parts[i].filename : req->parts[i].name;
        }
    if (!in->path) {
        vd_http_reply_error(resp, 422, "no_paths", "the upload has no file part");
        return 0;
    }
    in->upload = 1;
    return 1;
}

/* Reads the file once, through the confined open (core/paths.h: beneath the
 * media roots at the moment of the open, regular files only, the byte cap,
 * the read deadline); the bytes are hashed and decoded from memory, so what
 * is hashed is what is decoded. On refusal answers and returns 0. */
static int faces_read(vd_api *api, const faces_input *in, vd_http_resp *resp, uint8_t **data,
                      size_t *len)
{
    vd_media_limits lim = {.max_bytes = VD_IMAGE_MAX_FILE_BYTES};
    vd_path_problem prob = VD_PATH_OK;
    vd_error err;
    vd_status st =
        vd_media_read(in->upload ? NULL : api->roots, in->path, &lim, data, len, &prob, &err);
    if (st == VD_OK) return 1;
    if (prob != VD_PATH_OK)
        vd_api_reply_path_error(resp, "path", prob, &err);
    else if (st == VD_ERR_LIMIT)
        vd_http_reply_error(resp, 413, "limit", "%s: %s", in->name, vd_error_text(&err));
    else
        vd_http_reply_error(resp, 422, "unreadable", "%s", vd_error_text(&err));
    return 0;
}

/* Answers from the store's cache when it has this file's faces; returns 1 then. */
static int faces_cached(vd_store *store, const char *hex, const char *key, vd_http_resp *resp,
                        vd_status *sst)
{
    vd_stored_face *cached = NULL;
    size_t nc = 0;
    if ((*sst = vd_store_faces_get(store, hex, key, &cached, &nc, NULL)) != VD_OK) return 0;
    json_t *arr = json_array();
    for (size_t i = 0; i < nc; i++)
        json_array_append_new(
            arr, face_json(cached[i].box, cached[i].score, (const float(*)[2])cached[i].keypoints,
                           cached[i].n_keypoints, cached[i].vector, cached[i].dim));
    vd_stored_face_list_free(cached, nc);
    vd_http_reply_json(resp, 200,
                       json_pack("{s:o, s:s, s:b}", "faces", arr, "sha256", hex, "cached", 1));
    return 1;
}

/* Decodes the bytes; on failure answers (503 busy with Retry-After when the
 * decode budget was not had in time, 413 limit, 422 otherwise) and returns 0. */
static int faces_decode(const faces_input *in, const uint8_t *data, size_t len, vd_image *img,
                        vd_http_resp *resp)
{
    vd_error err;
    vd_status st = vd_image_decode_buffer(data, len, NULL, img, &err);
    if (st == VD_OK) return 1;
    if (st == VD_ERR_BUSY) { /* the decode budget (docs/images.md): try again soon */
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "busy", "%s: %s", in->name, vd_error_text(&err));
    } else {
        /* 413 "limit" (too many pixels, too many bytes) as docs/api.md names it */
        vd_http_reply_error(resp, st == VD_ERR_LIMIT ? 413 : 422,
                            st == VD_ERR_LIMIT ? "limit" : vd_status_name(st), "%s: %s", in->name,
                            vd_error_text(&err));
    }
    return 0;
}

/* Answers the faces found and puts them in the store's cache (best effort:
 * the put's status goes into *sst for the store pool). */
static void faces_reply(vd_store *store, const char *hex, const char *key, const vd_face *found,
                        size_t nf, vd_http_resp *resp, vd_status *sst)
{
    json_t *arr = json_array();
    vd_stored_face *put = calloc(nf ? nf : 1, sizeof *put);
    for (size_t i = 0; i < nf; i++) {
        const vd_face_det *d = &found[i].det;
        float box[4] = {d->x0, d->y0, d->x1 - d->x0, d->y1 - d->y0};
        json_array_append_new(arr, face_json(box, d->score, (const float(*)[2])d->kp, VD_KP_COUNT,
                                             found[i].embedding, found[i].dim));
        if (put) {
            memcpy(put[i].box, box, sizeof box);
            put[i].score = d->score;
            put[i].n_keypoints = VD_KP_COUNT;
            memcpy(put[i].keypoints, d->kp, sizeof d->kp);
            put[i].dim = found[i].embedding ? found[i].dim : 0;
            put[i].vector = found[i].embedding; /* borrowed for the put */
        }
    }
    if (put) *sst = vd_store_faces_put(store, hex, key, put, nf, NULL);
    free(put);
    vd_http_reply_json(resp, 200,
                       json_pack("{s:o, s:s, s:b}", "faces", arr, "sha256", hex, "cached", 0));
}

static void faces(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    faces_input in = {0};
    uint8_t *data = NULL;
    size_t len = 0;
    vd_store *store = NULL;
    vd_runner *runner = NULL;
    vd_status sst = VD_OK, rst = VD_OK; /* the store's and the runner's last failure */
    vd_image img;
    memset(&img, 0, sizeof img);
    vd_face *found = NULL;
    size_t nf = 0;
    if (!faces_parse(api, req, resp, &in) || !(store = vd_api_store_get(api, resp)) ||
        !faces_read(api, &in, resp, &data, &len))
        goto out;
    char key[128];
    faces_key(in.embed, key, sizeof key);
    uint8_t dig[VD_SHA256_LEN];
    char hex[VD_SHA256_HEX_LEN + 1];
    vd_sha256(data, len, dig);
    vd_sha256_hex(dig, hex);
    if (faces_cached(store, hex, key, resp, &sst) || !faces_decode(&in, data, len, &img, resp))
        goto out;
    free(data);
    data = NULL;
    if (!(runner = vd_api_runner_get(api, resp))) goto out;
    vd_faces_opts fo = {0};
    fo.embedder = in.embed ? VD_FACES_EMBEDDER : "";
    vd_error err;
    rst = vd_faces_run(runner, &img, &fo, &found, &nf, &err);
    if (rst != VD_OK)
        vd_api_reply_embed_error(resp, rst, &err);
    else
        faces_reply(store, hex, key, found, nf, resp, &sst);
out:
    free(data);
    vd_faces_free(found, nf);
    vd_image_free(&img);
    vd_api_runner_put(api, runner, rst);
    vd_api_store_put(api, store, sst);
    free(in.path);
}

/* The 200 answer of POST /classify. */
static json_t *classify_json(const char *model, const char *txt, const char *tpl,
                             const char **labels, size_t nl, const vd_api_inputs *in,
                             const vd_zeroshot_item *items)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "model", model, "text_model", txt, "template", tpl);
    json_t *ls = json_array(), *res = json_array();
    for (size_t k = 0; k < nl; k++)
        json_array_append_new(ls, json_string(labels[k]));
    for (size_t i = 0; i < in->n; i++) {
        json_t *e = json_pack("{s:s}", "path", in->names[i]);
        if (items[i].status == VD_OK) {
            json_t *sc = json_array();
            for (size_t k = 0; k < nl; k++)
                json_array_append_new(sc, json_real(items[i].scores[k]));
            json_object_set_new(e, "sha256", json_string(items[i].sha256));
            json_object_set_new(e, "cached", json_boolean(items[i].cached));
            json_object_set_new(e, "label", json_string(labels[items[i].best]));
            json_object_set_new(e, "scores", sc);
        } else {
            json_object_set_new(e, "error", json_string(items[i].error ? items[i].error : ""));
            json_object_set_new(e, "code", json_string(vd_status_name(items[i].status)));
        }
        json_array_append_new(res, e);
    }
    json_object_set_new(j, "labels", ls);
    json_object_set_new(j, "results", res);
    return j;
}

/* POST /classify: zero-shot labels per image (pipeline/zeroshot.h). */
static void classify(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"model", "labels", "paths", "template", NULL};
    const char *model = NULL, *tpl = VD_ZEROSHOT_TEMPLATE, **labels = NULL;
    size_t nl = 0;
    if (!req->json || !vd_api_only_fields(resp, req->json, fields) ||
        !vd_api_get_string(resp, req->json, "model", 1, &model) ||
        !vd_api_get_string(resp, req->json, "template", 0, &tpl))
        return;
    json_t *la = json_object_get(req->json, "labels");
    if (json_is_array(la) && json_array_size(la) < 2) {
        vd_http_reply_error(resp, 422, "too_few_labels",
                            "labels: give at least two (one label is no choice)");
        return;
    }
    if (!get_texts(resp, "labels", la, &labels, &nl)) return;
    vd_api_inputs in;
    if (!vd_api_inputs_get(api, req, resp, MAX_EMBED_PATHS, &in)) {
        free(labels);
        return;
    }
    vd_zeroshot_item *items = calloc(in.n, sizeof *items);
    vd_store *store = items ? vd_api_store_get(api, resp) : NULL;
    vd_runner *runner = store ? vd_api_runner_get(api, resp) : NULL;
    vd_status st = VD_OK;
    if (!items) vd_http_reply_error(resp, 500, "nomem", "out of memory");
    if (runner) {
        vd_zeroshot_opts o = {.runner = runner,
                              .store = store,
                              .model = model,
                              .template_text = tpl,
                              .roots = in.roots};
        char img[VD_MODEL_NAME_MAX], txt[VD_MODEL_NAME_MAX];
        vd_error err;
        vd_error_clear(&err);
        st = vd_zeroshot_classify(&o, labels, nl, (const char *const *)in.paths, in.n, items, img,
                                  txt, &err);
        if (st == VD_OK)
            vd_http_reply_json(resp, 200, classify_json(img, txt, tpl, labels, nl, &in, items));
        else if (st == VD_ERR_INVALID) /* the template, an empty label */
            vd_http_reply_error(resp, 422, "invalid_value", "%s", vd_error_text(&err));
        else
            reply_text_error(resp, st, &err);
        if (st == VD_ERR_UNSUPPORTED || st == VD_ERR_INVALID || st == VD_ERR_LIMIT ||
            st == VD_ERR_NOT_FOUND || st == VD_ERR_MODEL)
            st = VD_OK;
    }
    if (items) vd_zeroshot_items_clear(items, in.n);
    free(items);
    free(labels);
    vd_api_runner_put(api, runner, st);
    vd_api_store_put(api, store, st);
    vd_api_inputs_free(&in);
}

vd_status vd_api_routes_infer(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"POST", "/embeddings", embeddings, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD},
        {"POST", "/faces", faces, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_UPLOAD},
        {"POST", "/classify", classify, api, VD_ROUTE_BODY_JSON},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        vd_status st = vd_router_add(r, &routes[i], err);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}
