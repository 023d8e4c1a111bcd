/* library_faces.c: the faces of the photo library and people
 * (store/library.h), written once for both backends through store_db.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/library.h"
#include "store/library_impl.h"
#include "store/store_impl.h"

void vd_library_face_list_free(vd_library_face *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i].vector);
    free(list);
}

void vd_person_clear(vd_person *p)
{
    if (!p) return;
    free(p->name);
    memset(p, 0, sizeof *p);
}

void vd_person_list_free(vd_person *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        vd_person_clear(&list[i]);
    free(list);
}

/* Collects the ids of the faces of asset id (of model, or all) into a list. */
static vd_status face_ids_of(vd_store *s, int64_t id, const char *model, int64_t **ids, size_t *n,
                             vd_error *err)
{
    *ids = NULL;
    *n = 0;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "SELECT id FROM library_faces WHERE asset_id = ?"
                                 " AND (? = '' OR model = ?) ORDER BY id",
                                 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    vd_db_bind_text(st, 2, model ? model : "");
    vd_db_bind_text(st, 3, model ? model : "");
    size_t cap = 0;
    int row = 0;
    while ((rc = vd_db_step(st, &row, "read faces", err)) == VD_OK && row) {
        int64_t *g = vd_library_grow(*ids, *n, &cap, sizeof **ids);
        if (!g) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        *ids = g;
        (*ids)[(*n)++] = vd_db_col_int64(st, 0);
    }
    vd_db_finalize(st);
    return rc;
}

vd_status vd_library_faces_remove(vd_store *s, int64_t id, const char *model, vd_error *err)
{
    int64_t *ids = NULL, last = 0;
    size_t n = 0;
    vd_status rc = face_ids_of(s, id, model, &ids, &n, err);
    if (rc == VD_OK && n > 0) rc = vd_library_seq_take(s, (int64_t)n, &last, err);
    for (size_t i = 0; rc == VD_OK && i < n; i++) {
        rc = vd_library_log_removal(s, last - (int64_t)n + 1 + (int64_t)i, "face", ids[i], err);
        if (rc == VD_OK)
            rc = vd_library_run_id(s,
                                   "UPDATE people SET cover_face_id = NULL WHERE cover_face_id = ?",
                                   ids[i], "clear cover", NULL, err);
        if (rc == VD_OK)
            rc = vd_library_run_id(s, "DELETE FROM library_faces WHERE id = ?", ids[i],
                                   "remove face", NULL, err);
    }
    free(ids);
    return rc;
}

/* Checks the faces to put; *norm gets their normalised vectors (NULL where none). */
static vd_status check_faces(const vd_stored_face *faces, size_t n, float ***norm, vd_error *err)
{
    *norm = calloc(n ? n : 1, sizeof **norm);
    if (!*norm) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (faces[i].n_keypoints < 0 || faces[i].n_keypoints > VD_FACE_MAX_KEYPOINTS)
            return vd_error_set(err, VD_ERR_INVALID, "face %zu has %d keypoints (at most %d)", i,
                                faces[i].n_keypoints, VD_FACE_MAX_KEYPOINTS);
        if (!faces[i].vector) continue;
        vd_status rc =
            vd_library_normalised(faces[i].vector, faces[i].dim, "face vector", &(*norm)[i], err);
        if (rc != VD_OK) return rc;
    }
    return VD_OK;
}

static void free_norm(float **norm, size_t n)
{
    for (size_t i = 0; norm && i < n; i++)
        free(norm[i]);
    free(norm);
}

/* Inserts face f (vector v, may be NULL) of asset id with seq; *fid gets its id. */
static vd_status insert_face(vd_db_stmt *st, int64_t id, const char *model, const vd_stored_face *f,
                             const float *v, int64_t seq, int64_t *fid, vd_error *err)
{
    vd_db_reset(st);
    vd_db_bind_int64(st, 1, id);
    vd_db_bind_text(st, 2, model);
    for (int k = 0; k < 4; k++)
        vd_db_bind_double(st, 3 + k, f->box[k]);
    vd_db_bind_double(st, 7, f->score);
    vd_status ok = vd_store_bind_floats(st, 8, &f->keypoints[0][0], 2 * (size_t)f->n_keypoints);
    vd_db_bind_int64(st, 9, v ? f->dim : 0);
    if (ok == VD_OK) ok = vd_store_bind_floats(st, 10, v, v ? (size_t)f->dim : 0);
    if (ok != VD_OK) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    vd_db_bind_int64(st, 11, seq);
    vd_db_bind_int64(st, 12, vd_now_ms());
    int row = 0;
    vd_status rc = vd_db_step(st, &row, "put library face", err);
    if (rc == VD_OK && !row) rc = vd_error_set(err, VD_ERR_DB, "store: a face got no id");
    if (rc == VD_OK) *fid = vd_db_col_int64(st, 0);
    return rc;
}

vd_status vd_store_asset_faces_put(vd_store *s, int64_t id, const char *model,
                                   const vd_stored_face *faces, size_t n, int64_t **ids,
                                   vd_error *err)
{
    if (ids) *ids = NULL;
    if (!model || !*model) return vd_error_set(err, VD_ERR_INVALID, "empty model name");
    float **norm = NULL;
    int64_t *got = calloc(n ? n : 1, sizeof *got), last = 0, lock = 0;
    vd_status rc = got ? check_faces(faces, n, &norm, err)
                       : vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    int owned = 0;
    if (rc == VD_OK) rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) {
        free_norm(norm, n);
        free(got);
        return rc;
    }
    /* The counter first (a lock even for 0 numbers): ordered against deletes. */
    rc = vd_library_seq_take(s, 0, &lock, err);
    if (rc == VD_OK) rc = vd_library_asset_live(s, id, err);
    if (rc == VD_OK) rc = vd_library_faces_remove(s, id, model, err);
    if (rc == VD_OK && n > 0) rc = vd_library_seq_take(s, (int64_t)n, &last, err);
    vd_db_stmt *st = NULL;
    if (rc == VD_OK && n > 0)
        rc = vd_db_prepare(s->db,
                           "INSERT INTO library_faces (asset_id, model, x, y, w, h, score,"
                           " keypoints, dim, vector, seq, created_ms)"
                           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                           0, &st, err);
    for (size_t i = 0; rc == VD_OK && i < n; i++)
        rc = insert_face(st, id, model, &faces[i], norm[i], last - (int64_t)n + 1 + (int64_t)i,
                         &got[i], err);
    vd_db_finalize(st);
    free_norm(norm, n);
    rc = vd_store_txn_end(s, owned, rc, err);
    if (rc == VD_OK && ids)
        *ids = got;
    else
        free(got);
    return rc;
}

#define FACE_COLS                                                                                  \
    "f.id, f.asset_id, f.seq, f.x, f.y, f.w, f.h, f.score, f.keypoints, f.dim, %s,"                \
    " f.person_id, f.assigned_by, f.created_ms"

/* Reads the current row (FACE_COLS) into *f. */
static vd_status read_face(vd_db_stmt *st, vd_library_face *f, int with_vector, vd_error *err)
{
    f->id = vd_db_col_int64(st, 0);
    f->asset_id = vd_db_col_int64(st, 1);
    f->seq = vd_db_col_int64(st, 2);
    for (int k = 0; k < 4; k++)
        f->box[k] = (float)vd_db_col_double(st, 3 + k);
    f->score = (float)vd_db_col_double(st, 7);
    size_t kpb = 0;
    const unsigned char *kp = vd_db_col_blob(st, 8, &kpb);
    if (kpb % 8 != 0 || kpb / 8 > VD_FACE_MAX_KEYPOINTS)
        return vd_error_set(err, VD_ERR_DB, "store: keypoints of face %lld are damaged",
                            (long long)f->id);
    f->n_keypoints = (int)(kpb / 8);
    for (int k = 0; kp && k < f->n_keypoints; k++)
        vd_store_floats_from_le(kp + 8 * k, 2, f->keypoints[k]);
    f->dim = (int)vd_db_col_int64(st, 9);
    if (with_vector && f->dim > 0 && !(f->vector = vd_store_col_floats(st, 10, (size_t)f->dim)))
        return vd_error_set(err, VD_ERR_DB, "store: the vector of face %lld is damaged",
                            (long long)f->id);
    f->person_id = vd_db_col_int64(st, 11);
    int by = vd_assign_by_parse(vd_db_col_text(st, 12));
    f->assigned_by = by < 0 ? VD_ASSIGN_NONE : (vd_assign_by)by;
    f->created_ms = vd_db_col_int64(st, 13);
    return VD_OK;
}

/* Prepares "SELECT FACE_COLS FROM library_faces f <rest>". */
static vd_status prepare_faces(vd_store *s, int with_vector, const char *rest, vd_db_stmt **st,
                               vd_error *err)
{
    char sql[640], cols[256];
    snprintf(cols, sizeof cols, FACE_COLS, with_vector ? "f.vector" : "NULL");
    snprintf(sql, sizeof sql, "SELECT %s FROM library_faces f %s", cols, rest);
    return vd_db_prepare(s->db, sql, VD_DB_RETRY, st, err);
}

/* Reads every row of st into a list of faces. */
static vd_status read_faces(vd_db_stmt *st, int with_vector, vd_library_face **out, size_t *n,
                            vd_error *err)
{
    vd_library_face *list = NULL;
    size_t cnt = 0, cap = 0;
    int row = 0;
    vd_status rc;
    while ((rc = vd_db_step(st, &row, "read library faces", err)) == VD_OK && row) {
        vd_library_face *g = vd_library_grow(list, cnt, &cap, sizeof *list);
        if (!g) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        list = g;
        rc = read_face(st, &list[cnt], with_vector, err);
        cnt++;
        if (rc != VD_OK) break;
    }
    if (rc != VD_OK) {
        vd_library_face_list_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}

vd_status vd_store_library_faces_since(vd_store *s, const char *model, int64_t after_seq, int limit,
                                       vd_library_face **out, size_t *n, vd_error *err)
{
    *out = NULL;
    *n = 0;
    if (!model || !*model) return vd_error_set(err, VD_ERR_INVALID, "empty model name");
    vd_db_stmt *st;
    vd_status rc = prepare_faces(s, 1,
                                 "JOIN assets a ON a.id = f.asset_id WHERE f.model = ?"
                                 " AND f.seq > ? AND a.deleted_ms IS NULL ORDER BY f.seq LIMIT ?",
                                 &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, model);
    vd_db_bind_int64(st, 2, after_seq);
    vd_db_bind_int64(st, 3, vd_library_limit(limit, VD_LIBRARY_LIST_MAX));
    rc = read_faces(st, 1, out, n, err);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_asset_faces(vd_store *s, int64_t id, const char *model, int with_vectors,
                               vd_library_face **out, size_t *n, vd_error *err)
{
    *out = NULL;
    *n = 0;
    vd_db_stmt *st;
    vd_status rc =
        prepare_faces(s, with_vectors,
                      "WHERE f.asset_id = ? AND (? = '' OR f.model = ?) ORDER BY f.id", &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    vd_db_bind_text(st, 2, model ? model : "");
    vd_db_bind_text(st, 3, model ? model : "");
    rc = read_faces(st, with_vectors, out, n, err);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_library_face_get(vd_store *s, int64_t id, vd_library_face *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_db_stmt *st;
    vd_status rc = prepare_faces(s, 1, "WHERE f.id = ?", &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    vd_library_face *list = NULL;
    size_t n = 0;
    rc = read_faces(st, 1, &list, &n, err);
    vd_db_finalize(st);
    if (rc == VD_OK && n == 0)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no face %lld", (long long)id);
    if (rc == VD_OK) {
        *out = list[0];
        list[0].vector = NULL;
    }
    vd_library_face_list_free(list, n);
    return rc;
}

vd_status vd_store_person_faces(vd_store *s, int64_t person_id, int64_t after_id, int limit,
                                int with_vectors, vd_library_face **out, size_t *n, vd_error *err)
{
    *out = NULL;
    *n = 0;
    vd_db_stmt *st;
    vd_status rc = prepare_faces(
        s, with_vectors, "WHERE f.person_id = ? AND f.id > ? ORDER BY f.id LIMIT ?", &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, person_id);
    vd_db_bind_int64(st, 2, after_id);
    vd_db_bind_int64(st, 3, vd_library_limit(limit, 100));
    rc = read_faces(st, with_vectors, out, n, err);
    vd_db_finalize(st);
    return rc;
}

/* ---- people ---- */

vd_status vd_store_person_create(vd_store *s, const char *name, int64_t *id, vd_error *err)
{
    *id = 0;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "INSERT INTO people (name, hidden, created_ms, updated_ms)"
                                 " VALUES (?, 0, ?, ?) RETURNING id",
                                 0, &st, err);
    if (rc != VD_OK) return rc;
    int64_t now = vd_now_ms();
    vd_db_bind_text(st, 1, name && *name ? name : NULL);
    vd_db_bind_int64(st, 2, now);
    vd_db_bind_int64(st, 3, now);
    int row = 0;
    rc = vd_db_step(st, &row, "create person", err);
    if (rc == VD_OK && !row) rc = vd_error_set(err, VD_ERR_DB, "store: a person got no id");
    if (rc == VD_OK) *id = vd_db_col_int64(st, 0);
    vd_db_finalize(st);
    return rc;
}

#define PERSON_SELECT                                                                              \
    "SELECT p.id, p.name, p.hidden, p.cover_face_id, p.created_ms, p.updated_ms,"                  \
    " (SELECT count(*) FROM library_faces f WHERE f.person_id = p.id) FROM people p "

/* Reads every row of st (PERSON_SELECT) into a list. */
static vd_status read_people(vd_db_stmt *st, vd_person **out, size_t *n, vd_error *err)
{
    vd_person *list = NULL;
    size_t cnt = 0, cap = 0;
    int row = 0;
    vd_status rc;
    while ((rc = vd_db_step(st, &row, "read people", err)) == VD_OK && row) {
        vd_person *g = vd_library_grow(list, cnt, &cap, sizeof *list);
        if (!g) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        list = g;
        vd_person *p = &list[cnt++];
        p->id = vd_db_col_int64(st, 0);
        p->name = vd_db_col_strdup(st, 1);
        p->hidden = vd_db_col_int64(st, 2) != 0;
        p->cover_face_id = vd_db_col_int64(st, 3);
        p->created_ms = vd_db_col_int64(st, 4);
        p->updated_ms = vd_db_col_int64(st, 5);
        p->n_faces = vd_db_col_int64(st, 6);
        if (!vd_db_col_null(st, 1) && !p->name) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
    }
    if (rc != VD_OK) {
        vd_person_list_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}

vd_status vd_store_person_get(vd_store *s, int64_t id, vd_person *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db, PERSON_SELECT "WHERE p.id = ?", VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    vd_person *list = NULL;
    size_t n = 0;
    rc = read_people(st, &list, &n, err);
    vd_db_finalize(st);
    if (rc == VD_OK && n == 0)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no person %lld", (long long)id);
    if (rc == VD_OK) {
        *out = list[0];
        list[0].name = NULL;
    }
    vd_person_list_free(list, n);
    return rc;
}

vd_status vd_store_person_list(vd_store *s, int64_t after_id, int limit, int with_hidden,
                               vd_person **out, size_t *n, vd_error *err)
{
    *out = NULL;
    *n = 0;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 PERSON_SELECT "WHERE p.id > ? AND (? = 1 OR p.hidden = 0)"
                                               " ORDER BY p.id LIMIT ?",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, after_id);
    vd_db_bind_int64(st, 2, with_hidden ? 1 : 0);
    vd_db_bind_int64(st, 3, vd_library_limit(limit, 100));
    rc = read_people(st, out, n, err);
    vd_db_finalize(st);
    return rc;
}

/* VD_OK when person id exists, else VD_ERR_NOT_FOUND. */
static vd_status person_exists(vd_store *s, int64_t id, vd_error *err)
{
    int64_t n = 0;
    vd_status rc = vd_library_run_id(s, "UPDATE people SET updated_ms = updated_ms WHERE id = ?",
                                     id, "find person", &n, err);
    if (rc == VD_OK && n == 0)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no person %lld", (long long)id);
    return rc;
}

/* Reads the person of face id into *person (0: none); VD_ERR_NOT_FOUND when no such face. */
static vd_status face_person(vd_store *s, int64_t id, int64_t *person, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db, "SELECT person_id FROM library_faces WHERE id = ?", 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    int row = 0;
    rc = vd_db_step(st, &row, "find face", err);
    if (rc == VD_OK && !row)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no face %lld", (long long)id);
    if (rc == VD_OK) *person = vd_db_col_int64(st, 0);
    vd_db_finalize(st);
    return rc;
}

/* Runs sql with the integer parameters v[0..n) (a name too when text: first). */
static vd_status run_ints(vd_store *s, const char *sql, const char *text, size_t n,
                          const int64_t *v, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db, sql, 0, &st, err);
    if (rc != VD_OK) return rc;
    int at = 1;
    if (text) vd_db_bind_text(st, at++, *text ? text : NULL);
    for (size_t i = 0; i < n; i++)
        vd_db_bind_int64(st, at++, v[i]);
    rc = vd_db_run(st, "update people", err);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_person_update(vd_store *s, int64_t id, const vd_person_update *u, vd_error *err)
{
    int owned;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    rc = person_exists(s, id, err);
    if (rc == VD_OK && u->cover_face_id > 0) {
        int64_t p = 0;
        rc = face_person(s, u->cover_face_id, &p, err);
        if (rc == VD_OK && p != id)
            rc = vd_error_set(err, VD_ERR_INVALID, "face %lld is not a face of person %lld",
                              (long long)u->cover_face_id, (long long)id);
    }
    int64_t now = vd_now_ms();
    if (rc == VD_OK && u->set_name)
        rc = run_ints(s, "UPDATE people SET name = ?, updated_ms = ? WHERE id = ?",
                      u->name ? u->name : "", 2, (int64_t[]){now, id}, err);
    if (rc == VD_OK && u->hidden >= 0)
        rc = run_ints(s, "UPDATE people SET hidden = ?, updated_ms = ? WHERE id = ?", NULL, 3,
                      (int64_t[]){u->hidden ? 1 : 0, now, id}, err);
    if (rc == VD_OK && u->cover_face_id > 0)
        rc = run_ints(s, "UPDATE people SET cover_face_id = ?, updated_ms = ? WHERE id = ?", NULL,
                      3, (int64_t[]){u->cover_face_id, now, id}, err);
    if (rc == VD_OK && u->cover_face_id == 0)
        rc = run_ints(s, "UPDATE people SET cover_face_id = NULL, updated_ms = ? WHERE id = ?",
                      NULL, 2, (int64_t[]){now, id}, err);
    return vd_store_txn_end(s, owned, rc, err);
}

/* Sets person and assigned_by of face id (person 0: NULL). */
static vd_status assign_face(vd_store *s, int64_t face, int64_t person, vd_assign_by by,
                             vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db, "UPDATE library_faces SET person_id = ?, assigned_by = ? WHERE id = ?", 0, &st, err);
    if (rc != VD_OK) return rc;
    if (person > 0)
        vd_db_bind_int64(st, 1, person);
    else
        vd_db_bind_null(st, 1);
    vd_db_bind_text(st, 2, vd_assign_by_name(by));
    vd_db_bind_int64(st, 3, face);
    rc = vd_db_run(st, "assign face", err);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_face_set_person(vd_store *s, int64_t face_id, int64_t person_id, vd_assign_by by,
                                   vd_error *err)
{
    if (by < VD_ASSIGN_NONE || by > VD_ASSIGN_USER || (person_id > 0 && by == VD_ASSIGN_NONE) ||
        person_id < 0)
        return vd_error_set(err, VD_ERR_INVALID, "face %lld: bad assignment (person %lld, by %d)",
                            (long long)face_id, (long long)person_id, (int)by);
    int owned;
    int64_t old = 0;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    rc = face_person(s, face_id, &old, err);
    if (rc == VD_OK && person_id > 0) rc = person_exists(s, person_id, err);
    if (rc == VD_OK) rc = assign_face(s, face_id, person_id, by, err);
    if (rc == VD_OK && old > 0 && old != person_id)
        rc = run_ints(s,
                      "UPDATE people SET cover_face_id = CASE WHEN cover_face_id = ? THEN NULL"
                      " ELSE cover_face_id END, updated_ms = ? WHERE id = ?",
                      NULL, 3, (int64_t[]){face_id, vd_now_ms(), old}, err);
    if (rc == VD_OK && person_id > 0)
        rc = run_ints(s, "UPDATE people SET updated_ms = ? WHERE id = ?", NULL, 2,
                      (int64_t[]){vd_now_ms(), person_id}, err);
    return vd_store_txn_end(s, owned, rc, err);
}

vd_status vd_store_person_merge(vd_store *s, int64_t into_id, int64_t from_id, vd_assign_by by,
                                vd_error *err)
{
    if (into_id == from_id)
        return vd_error_set(err, VD_ERR_INVALID, "person %lld cannot be merged into itself",
                            (long long)into_id);
    if (by != VD_ASSIGN_AUTO && by != VD_ASSIGN_USER)
        return vd_error_set(err, VD_ERR_INVALID, "merge: assigned by must be auto or user");
    int owned;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    rc = person_exists(s, into_id, err);
    if (rc == VD_OK) rc = person_exists(s, from_id, err);
    vd_db_stmt *st = NULL;
    if (rc == VD_OK)
        rc = vd_db_prepare(s->db,
                           "UPDATE library_faces SET person_id = ?, assigned_by = ?"
                           " WHERE person_id = ?",
                           0, &st, err);
    if (rc == VD_OK) {
        vd_db_bind_int64(st, 1, into_id);
        vd_db_bind_text(st, 2, vd_assign_by_name(by));
        vd_db_bind_int64(st, 3, from_id);
        rc = vd_db_run(st, "merge people", err);
    }
    vd_db_finalize(st);
    /* into keeps its own name and cover; takes from's where it has none */
    if (rc == VD_OK)
        rc = run_ints(s,
                      "UPDATE people SET cover_face_id = coalesce(cover_face_id, (SELECT"
                      " q.cover_face_id FROM people q WHERE q.id = ?)), name = coalesce(name,"
                      " (SELECT q.name FROM people q WHERE q.id = ?)), updated_ms = ? WHERE id = ?",
                      NULL, 4, (int64_t[]){from_id, from_id, vd_now_ms(), into_id}, err);
    if (rc == VD_OK)
        rc = vd_library_run_id(s, "DELETE FROM people WHERE id = ?", from_id, "merge people", NULL,
                               err);
    return vd_store_txn_end(s, owned, rc, err);
}

vd_status vd_store_person_delete(vd_store *s, int64_t id, vd_error *err)
{
    int owned;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    rc = person_exists(s, id, err);
    if (rc == VD_OK)
        rc = vd_library_run_id(s,
                               "UPDATE library_faces SET person_id = NULL, assigned_by = NULL"
                               " WHERE person_id = ?",
                               id, "delete person", NULL, err);
    if (rc == VD_OK)
        rc =
            vd_library_run_id(s, "DELETE FROM people WHERE id = ?", id, "delete person", NULL, err);
    return vd_store_txn_end(s, owned, rc, err);
}
