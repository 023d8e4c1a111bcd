/* people.c: the conditional writes of face clustering (store/people.h). */
#include "store/people.h"

#include <string.h>

#include "core/util.h"
#include "store/store_impl.h"

/* A face the clusterer may take: no person, and not taken out by the user. */
#define FREE_FACE "person_id IS NULL AND assigned_by IS NULL"

vd_status vd_store_faces_people(vd_store *s, const int64_t *ids, size_t n, int64_t *person,
                                int *user, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db, "SELECT person_id, assigned_by FROM library_faces WHERE id = ?",
                      VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    int owned;
    vd_db_read_begin(s->db, &owned);
    for (size_t i = 0; rc == VD_OK && i < n; i++) {
        int row = 0;
        person[i] = 0;
        if (user) user[i] = 0;
        vd_db_reset(st);
        vd_db_bind_int64(st, 1, ids[i]);
        rc = vd_db_step(st, &row, "faces' people", err);
        if (rc == VD_OK && row) {
            person[i] = vd_db_col_int64(st, 0);
            const char *by = vd_db_col_text(st, 1);
            if (user) user[i] = by && strcmp(by, "user") == 0;
        }
    }
    vd_db_read_end(s->db, owned);
    vd_db_finalize(st);
    return rc;
}

static vd_status claim(vd_store *s, int64_t id, int64_t person, int *changed, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db,
        "UPDATE library_faces SET person_id = ?, assigned_by = 'auto' WHERE id = ? AND " FREE_FACE,
        0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, person);
    vd_db_bind_int64(st, 2, id);
    rc = vd_db_run(st, "assign a face", err);
    if (rc == VD_OK && changed) *changed = vd_db_changes(st) > 0;
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_face_claim(vd_store *s, int64_t id, int64_t person, int *changed, vd_error *err)
{
    if (person <= 0)
        return vd_error_set(err, VD_ERR_INVALID, "face %lld: no person to assign it to",
                            (long long)id);
    return claim(s, id, person, changed, err);
}

/* Inserts a person with cover face cover and writes its id. */
static vd_status person_insert(vd_store *s, int64_t cover, int64_t *id, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "INSERT INTO people (name, hidden, cover_face_id, created_ms, "
                                 "updated_ms) VALUES (NULL, 0, ?, ?, ?) RETURNING id",
                                 0, &st, err);
    if (rc != VD_OK) return rc;
    int64_t now = vd_now_ms();
    vd_db_bind_int64(st, 1, cover);
    vd_db_bind_int64(st, 2, now);
    vd_db_bind_int64(st, 3, now);
    int row = 0;
    rc = vd_db_step(st, &row, "create a person", err);
    if (rc == VD_OK && !row) rc = vd_error_set(err, VD_ERR_DB, "store: create a person: no id");
    if (rc == VD_OK) *id = vd_db_col_int64(st, 0);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_person_found(vd_store *s, const int64_t *ids, size_t n, int64_t *person,
                                size_t *taken, vd_error *err)
{
    *person = 0;
    if (taken) *taken = 0;
    if (n == 0) return vd_error_set(err, VD_ERR_INVALID, "a person needs a face");
    int owned, first = 0;
    size_t got = 0;
    int64_t id = 0;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    rc = person_insert(s, ids[0], &id, err);
    if (rc == VD_OK) rc = claim(s, ids[0], id, &first, err);
    for (size_t i = 0; rc == VD_OK && first && i < n; i++) {
        int c = i == 0;
        if (i > 0) rc = claim(s, ids[i], id, &c, err);
        got += (size_t)c;
    }
    if (rc == VD_OK && !first) {
        /* another process took the founder first: create nothing */
        vd_store_txn_end(s, owned, VD_ERR_STATE, NULL);
        return VD_OK;
    }
    rc = vd_store_txn_end(s, owned, rc, err);
    if (rc == VD_OK) {
        *person = id;
        if (taken) *taken = got;
    }
    return rc;
}

vd_status vd_store_face_move_auto(vd_store *s, int64_t id, int64_t from, int64_t to, int *changed,
                                  vd_error *err)
{
    if (from < 0 || to < 0)
        return vd_error_set(err, VD_ERR_INVALID, "face %lld: bad move", (long long)id);
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db,
        "UPDATE library_faces SET person_id = ?, assigned_by = ? WHERE id = ? AND"
        " coalesce(person_id, 0) = ? AND (assigned_by IS NULL OR assigned_by = 'auto')",
        0, &st, err);
    if (rc != VD_OK) return rc;
    if (to > 0)
        vd_db_bind_int64(st, 1, to);
    else
        vd_db_bind_null(st, 1);
    vd_db_bind_text(st, 2, to > 0 ? "auto" : NULL);
    vd_db_bind_int64(st, 3, id);
    vd_db_bind_int64(st, 4, from);
    rc = vd_db_run(st, "move a face", err);
    if (rc == VD_OK && changed) *changed = vd_db_changes(st) > 0;
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_people_prune(vd_store *s, size_t *n, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "DELETE FROM people WHERE name IS NULL AND NOT EXISTS (SELECT 1"
                                 " FROM library_faces f WHERE f.person_id = people.id)",
                                 0, &st, err);
    if (rc != VD_OK) return rc;
    rc = vd_db_run(st, "prune people", err);
    if (rc == VD_OK && n) *n = (size_t)vd_db_changes(st);
    vd_db_finalize(st);
    return rc;
}
