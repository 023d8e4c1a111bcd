/* routes_people.c: people and their faces over HTTP (docs/api.md, docs/people.md).
 *
 *   GET   /people                  people with face count and cover (?with_hidden=1,
 *                                   ?after=ID&limit=N)
 *   GET   /people/{id}             one person
 *   GET   /people/{id}/faces       its faces (?after=ID&limit=N)
 *   PATCH /people/{id}             {"name": TEXT|null, "hidden": BOOL}
 *   POST  /people/{id}/merge       {"from": [ID, ...]}: those people into this one
 *   POST  /people/recluster        {"model", "max_distance", "min_faces"} (optional): 202 + job
 *   PATCH /faces/{id}              {"person_id": ID|null}: the user moves a face
 *   GET   /faces/{id}/crop         a JPEG of the face (?size=N, default 160)
 * Thin: the rules live in service/people.h and store/library.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_impl.h"
#include "service/people.h"
#include "store/library.h"

#define PEOPLE_LIST_DEFAULT 100
#define CROP_DEFAULT_SIZE   160

/* HTTP status of a refusal by the service. */
static void reply_refusal(vd_http_resp *resp, const char *why, vd_status st, const vd_error *err)
{
    if (!why || strcmp(why, "store") == 0) {
        if (st == VD_ERR_DB || st == VD_ERR_CONN || st == VD_ERR_BUSY)
            vd_http_reply_error(resp, 503, "store_unavailable", "%s", vd_error_text(err));
        else
            vd_http_reply_status(resp, st, NULL, err);
        return;
    }
    int code = 422;
    if (strcmp(why, "person_not_found") == 0 || strcmp(why, "face_not_found") == 0 ||
        strcmp(why, "image_not_found") == 0)
        code = 404;
    else if (strcmp(why, "merge_into_itself") == 0)
        code = 409;
    else if (strcmp(why, "image") == 0) {
        code = vd_http_status_for(st);
        why = "bad_image";
    }
    vd_http_reply_error(resp, code, why, "%s", vd_error_text(err));
}

/* The {id} of the path as a positive integer; 0 after answering 404 (code). */
static int64_t path_id(vd_http_req *req, vd_http_resp *resp, const char *code)
{
    const char *s = vd_http_param(req, "id");
    char *end = NULL;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || v <= 0) {
        vd_http_reply_error(resp, 404, code, "no such id: %.64s", s ? s : "");
        return 0;
    }
    return (int64_t)v;
}

static json_t *face_json(const vd_library_face *f)
{
    json_t *o = json_pack("{s:I, s:I, s:[f,f,f,f], s:f}", "id", (json_int_t)f->id, "asset_id",
                          (json_int_t)f->asset_id, "box", (double)f->box[0], (double)f->box[1],
                          (double)f->box[2], (double)f->box[3], "score", (double)f->score);
    if (!o) return NULL;
    json_object_set_new(o, "person_id", f->person_id ? json_integer(f->person_id) : json_null());
    const char *by = vd_assign_by_name(f->assigned_by);
    json_object_set_new(o, "assigned_by", by ? json_string(by) : json_null());
    return o;
}

/* A person as answered; the cover is its cover face, else its first face. */
static json_t *person_json(vd_store *s, const vd_person *p, vd_status *st, vd_error *err)
{
    int64_t cover = p->cover_face_id;
    if (!cover && p->n_faces > 0) {
        vd_library_face *f = NULL;
        size_t n = 0;
        *st = vd_store_person_faces(s, p->id, 0, 1, 0, &f, &n, err);
        if (*st != VD_OK) return NULL;
        if (n) cover = f[0].id;
        vd_library_face_list_free(f, n);
    }
    json_t *o = json_pack("{s:I, s:b, s:I}", "id", (json_int_t)p->id, "hidden", p->hidden,
                          "face_count", (json_int_t)p->n_faces);
    if (!o) return NULL;
    json_object_set_new(o, "name", p->name ? json_string(p->name) : json_null());
    json_object_set_new(o, "cover_face_id", cover ? json_integer(cover) : json_null());
    return o;
}

static void people_list(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t after = 0, limit = PEOPLE_LIST_DEFAULT, hidden = 0;
    if (!vd_api_query_int(resp, req, "after", 0, INT64_MAX, &after) ||
        !vd_api_query_int(resp, req, "limit", 1, VD_LIBRARY_LIST_MAX, &limit) ||
        !vd_api_query_int(resp, req, "with_hidden", 0, 1, &hidden))
        return;
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return;
    vd_error err;
    vd_person *list = NULL;
    size_t n = 0;
    vd_status st = vd_store_person_list(s, after, (int)limit, (int)hidden, &list, &n, &err);
    json_t *arr = json_array();
    for (size_t i = 0; st == VD_OK && i < n; i++)
        json_array_append_new(arr, person_json(s, &list[i], &st, &err));
    vd_person_list_free(list, n);
    vd_api_store_put(api, s, st);
    if (st != VD_OK) {
        json_decref(arr);
        reply_refusal(resp, "store", st, &err);
        return;
    }
    json_t *o = json_pack("{s:o}", "people", arr);
    if (n == (size_t)limit && n > 0)
        json_object_set_new(
            o, "next_after",
            json_integer(json_integer_value(json_object_get(json_array_get(arr, n - 1), "id"))));
    vd_http_reply_json(resp, 200, o);
}

static void person_get(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t id = path_id(req, resp, "person_not_found");
    if (!id) return;
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return;
    vd_error err;
    vd_person p;
    memset(&p, 0, sizeof p);
    vd_status st = vd_store_person_get(s, id, &p, &err);
    json_t *o = st == VD_OK ? person_json(s, &p, &st, &err) : NULL;
    vd_person_clear(&p);
    vd_api_store_put(api, s, st == VD_ERR_NOT_FOUND ? VD_OK : st);
    if (st != VD_OK) {
        json_decref(o);
        reply_refusal(resp, st == VD_ERR_NOT_FOUND ? "person_not_found" : "store", st, &err);
        return;
    }
    vd_http_reply_json(resp, 200, o);
}

static void person_faces(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t id = path_id(req, resp, "person_not_found"), after = 0, limit = PEOPLE_LIST_DEFAULT;
    if (!id || !vd_api_query_int(resp, req, "after", 0, INT64_MAX, &after) ||
        !vd_api_query_int(resp, req, "limit", 1, VD_LIBRARY_LIST_MAX, &limit))
        return;
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return;
    vd_error err;
    vd_person p;
    memset(&p, 0, sizeof p);
    vd_library_face *f = NULL;
    size_t n = 0;
    vd_status st = vd_store_person_get(s, id, &p, &err);
    vd_person_clear(&p);
    if (st == VD_OK) st = vd_store_person_faces(s, id, after, (int)limit, 0, &f, &n, &err);
    vd_api_store_put(api, s, st == VD_ERR_NOT_FOUND ? VD_OK : st);
    if (st != VD_OK) {
        reply_refusal(resp, st == VD_ERR_NOT_FOUND ? "person_not_found" : "store", st, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, face_json(&f[i]));
    json_t *o = json_pack("{s:I, s:o}", "person_id", (json_int_t)id, "faces", arr);
    if (n == (size_t)limit && n > 0)
        json_object_set_new(o, "next_after", json_integer(f[n - 1].id));
    vd_library_face_list_free(f, n);
    vd_http_reply_json(resp, 200, o);
}

static void person_patch(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"name", "hidden", NULL};
    int64_t id = path_id(req, resp, "person_not_found");
    if (!id || !vd_api_only_fields(resp, req->json, fields)) return;
    vd_person_update u = {.hidden = -1, .cover_face_id = -1};
    json_t *jn = json_object_get(req->json, "name");
    if (jn && !json_is_null(jn)) {
        if (!vd_api_get_string(resp, req->json, "name", 0, &u.name)) return;
        if (strlen(u.name) > 200) {
            vd_http_reply_error(resp, 422, "invalid_value", "name: at most 200 bytes");
            return;
        }
    }
    u.set_name = jn != NULL;
    if (!vd_api_get_bool(resp, req->json, "hidden", &u.hidden)) return;
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return;
    vd_error err;
    vd_status st = vd_store_person_update(s, id, &u, &err);
    vd_api_store_put(api, s, st == VD_ERR_NOT_FOUND ? VD_OK : st);
    if (st != VD_OK) {
        reply_refusal(resp, st == VD_ERR_NOT_FOUND ? "person_not_found" : "store", st, &err);
        return;
    }
    person_get(ctx, req, resp);
}

static void person_merge(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"from", NULL};
    int64_t id = path_id(req, resp, "person_not_found");
    if (!id || !vd_api_only_fields(resp, req->json, fields)) return;
    json_t *jf = json_object_get(req->json, "from");
    if (!json_is_array(jf)) {
        vd_http_reply_error(resp, jf ? 400 : 422, jf ? "invalid_type" : "missing_field",
                            "field 'from' must be an array of person ids");
        return;
    }
    size_t n = json_array_size(jf);
    int64_t from[VD_PEOPLE_MERGE_MAX];
    for (size_t i = 0; i < n && i < VD_PEOPLE_MERGE_MAX; i++) {
        json_t *v = json_array_get(jf, i);
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            vd_http_reply_error(resp, 400, "invalid_type", "from[%zu] must be a person id", i);
            return;
        }
        from[i] = json_integer_value(v);
    }
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return;
    vd_error err;
    const char *why = NULL;
    vd_status st = vd_people_merge(s, id, from, n, &why, &err); /* refuses n over the max */
    vd_api_store_put(api, s, why && strcmp(why, "store") == 0 ? st : VD_OK);
    if (st != VD_OK) {
        reply_refusal(resp, why, st, &err);
        return;
    }
    person_get(ctx, req, resp);
}

static void recluster(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"model", "max_distance", "min_faces", NULL};
    const char *model = NULL;
    int64_t min_faces = 0;
    double max_distance = 0.0;
    json_t *body = req->json;
    if (body && (!vd_api_only_fields(resp, body, fields) ||
                 !vd_api_get_string(resp, body, "model", 0, &model) ||
                 !vd_api_get_int(resp, body, "min_faces", 1, VD_CLUSTER_MIN_FACES_MAX, &min_faces)))
        return;
    json_t *jd = body ? json_object_get(body, "max_distance") : NULL;
    if (jd && !json_is_number(jd)) {
        vd_http_reply_error(resp, 400, "invalid_type", "field 'max_distance' must be a number");
        return;
    }
    if (jd) max_distance = json_number_value(jd);
    vd_error err;
    const char *why = NULL;
    vd_cluster_params p;
    vd_status st = vd_people_params(max_distance, (int)min_faces, &p, &why, &err);
    if (st == VD_OK && jd && max_distance == 0.0)
        st = vd_error_set(&err, VD_ERR_INVALID, "max_distance must be in (0, 2), got 0");
    if (st != VD_OK) {
        reply_refusal(resp, "invalid_parameters", st, &err);
        return;
    }
    vd_queue *q = vd_api_queue_get(api, resp);
    if (!q) return;
    char jid[VD_ID_LEN + 1];
    st = vd_people_recluster_enqueue(q, model, &p, jid, &err);
    vd_api_queue_put(api, q, st);
    if (st != VD_OK) {
        vd_api_reply_queue_error(resp, st, &err);
        return;
    }
    vd_http_reply_json(resp, 202,
                       json_pack("{s:s, s:f, s:i}", "job_id", jid, "max_distance",
                                 (double)p.max_distance, "min_faces", p.min_faces));
}

static void face_patch(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    static const char *const fields[] = {"person_id", NULL};
    int64_t id = path_id(req, resp, "face_not_found");
    if (!id || !vd_api_only_fields(resp, req->json, fields)) return;
    json_t *jp = json_object_get(req->json, "person_id");
    if (!jp || (!json_is_null(jp) && (!json_is_integer(jp) || json_integer_value(jp) <= 0))) {
        vd_http_reply_error(resp, jp ? 400 : 422, jp ? "invalid_type" : "missing_field",
                            "field 'person_id' must be a person id or null");
        return;
    }
    int64_t person = json_is_null(jp) ? 0 : json_integer_value(jp);
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return;
    vd_error err;
    const char *why = NULL;
    vd_status st = vd_people_move_face(s, id, person, &why, &err);
    vd_library_face f;
    memset(&f, 0, sizeof f);
    if (st == VD_OK) st = vd_store_library_face_get(s, id, &f, &err);
    vd_api_store_put(api, s, why && strcmp(why, "store") == 0 ? st : VD_OK);
    if (st != VD_OK) {
        reply_refusal(resp, why ? why : "store", st, &err);
        return;
    }
    json_t *o = face_json(&f);
    free(f.vector);
    vd_http_reply_json(resp, 200, o);
}

static void face_crop(void *ctx, vd_http_req *req, vd_http_resp *resp)
{
    vd_api *api = ctx;
    int64_t id = path_id(req, resp, "face_not_found"), size = CROP_DEFAULT_SIZE;
    if (!id || !vd_api_query_int(resp, req, "size", 1, VD_PEOPLE_CROP_MAX, &size)) return;
    vd_store *s = vd_api_store_get(api, resp);
    if (!s) return;
    vd_error err;
    const char *why = NULL;
    uint8_t *jpeg = NULL;
    size_t len = 0;
    vd_status st = vd_people_face_crop(s, api->roots, id, (int)size, &jpeg, &len, &why, &err);
    vd_api_store_put(api, s, why && strcmp(why, "store") == 0 ? st : VD_OK);
    if (st != VD_OK) {
        reply_refusal(resp, why, st, &err);
        return;
    }
    vd_http_add_header(resp, "Cache-Control", "private, max-age=60");
    vd_http_reply_text(resp, 200, "image/jpeg", (char *)jpeg, len);
}

vd_status vd_api_routes_people(vd_api *api, vd_router *r, vd_error *err)
{
    const vd_route routes[] = {
        {"GET", "/people", people_list, api, 0},
        {"GET", "/people/{id}", person_get, api, 0},
        {"GET", "/people/{id}/faces", person_faces, api, 0},
        {"PATCH", "/people/{id}", person_patch, api, VD_ROUTE_BODY_JSON},
        {"POST", "/people/{id}/merge", person_merge, api, VD_ROUTE_BODY_JSON},
        {"POST", "/people/recluster", recluster, api, VD_ROUTE_BODY_JSON | VD_ROUTE_BODY_OPTIONAL},
        {"PATCH", "/faces/{id}", face_patch, api, VD_ROUTE_BODY_JSON},
        {"GET", "/faces/{id}/crop", face_crop, api, 0},
    };
    vd_status st = VD_OK;
    for (size_t i = 0; st == VD_OK && i < sizeof routes / sizeof routes[0]; i++)
        st = vd_router_add(r, &routes[i], err);
    return st;
}
