/* examples.c: a session's examples and classifier rows in the store
 * (store/sessions.h). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "store/sessions.h"
#include "store/store_impl.h"

/* The next idx of a session's examples, in *base; NOT_FOUND for no such
 * session. Inside the caller's transaction; PostgreSQL locks the session's
 * row (FOR UPDATE) so that two adders take turns, as SQLite's write lock
 * makes them. */
static vd_status next_idx(vd_store *s, const char *session_id, int64_t *base, vd_error *err)
{
    static const char *const lock_sql[] = {
        [VD_DB_SQLITE] = "SELECT 1 FROM sessions WHERE id = ?",
        [VD_DB_PG] = "SELECT 1 FROM sessions WHERE id = ? FOR UPDATE",
    };
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db, lock_sql[vd_db_kind_of(s->db)], 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, session_id);
    int row = 0;
    rc = vd_db_step(st, &row, "add examples", err);
    vd_db_finalize(st);
    if (rc != VD_OK) return rc;
    if (!row) return vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", session_id);
    rc = vd_db_prepare(s->db, "SELECT coalesce(max(idx) + 1, 0) FROM examples WHERE session_id = ?",
                       0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, session_id);
    rc = vd_db_step(st, &row, "add examples", err);
    *base = row ? vd_db_col_int64(st, 0) : 0;
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_examples_add(vd_store *s, const char *session_id, const vd_example *ex, size_t n,
                                vd_error *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!ex[i].path || !*ex[i].path)
            return vd_error_set(err, VD_ERR_INVALID, "example %zu has an empty path", i);
        if (!ex[i].label || !*ex[i].label)
            return vd_error_set(err, VD_ERR_INVALID, "example %zu (%s) has an empty label", i,
                                ex[i].path);
    }
    int owned;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    vd_db_stmt *st = NULL;
    int64_t base = 0;
    if ((rc = next_idx(s, session_id, &base, err)) != VD_OK) goto out;
    if ((rc = vd_db_prepare(s->db,
                            "INSERT INTO examples (session_id, idx, path, label, sha256,"
                            " status, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            0, &st, err)) != VD_OK)
        goto out;
    for (size_t i = 0; i < n && rc == VD_OK; i++) {
        vd_db_reset(st);
        vd_db_bind_text(st, 1, session_id);
        vd_db_bind_int64(st, 2, base + (int64_t)i);
        vd_db_bind_text(st, 3, ex[i].path);
        vd_db_bind_text(st, 4, ex[i].label);
        vd_db_bind_text(st, 5, ex[i].sha256);
        vd_db_bind_text(st, 6, vd_example_status_name(ex[i].status));
        vd_db_bind_text(st, 7, ex[i].error);
        rc = vd_db_run(st, "add example", err);
    }
out:
    vd_db_finalize(st);
    return vd_store_txn_end(s, owned, rc, err);
}

/* Reads the current row into *e; VD_ERR_NOMEM when a copy fails. */
static vd_status read_example(vd_db_stmt *st, vd_example *e, vd_error *err)
{
    memset(e, 0, sizeof *e);
    e->idx = vd_db_col_int64(st, 0);
    e->path = vd_db_col_strdup(st, 1);
    e->label = vd_db_col_strdup(st, 2);
    const char *sha = vd_db_col_text(st, 3);
    vd_strlcpy(e->sha256, sha ? sha : "", sizeof e->sha256);
    e->status = vd_example_status_parse(vd_db_col_text(st, 4));
    e->error = vd_db_col_strdup(st, 5);
    if (!e->path || !e->label || (!vd_db_col_null(st, 5) && !e->error))
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    return VD_OK;
}

vd_status vd_store_examples_list(vd_store *s, const char *session_id, vd_example **out, size_t *n,
                                 vd_error *err)
{
    *out = NULL;
    *n = 0;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "SELECT idx, path, label, sha256, status, error FROM examples"
                                 " WHERE session_id = ? ORDER BY idx",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, session_id);
    vd_example *list = NULL;
    size_t cnt = 0, cap = 0;
    int row = 0;
    while ((rc = vd_db_step(st, &row, "list examples", err)) == VD_OK && row) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            vd_example *bigger = realloc(list, cap * sizeof *list);
            if (!bigger) {
                rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
                break;
            }
            list = bigger;
        }
        rc = read_example(st, &list[cnt++], err);
        if (rc != VD_OK) break;
    }
    vd_db_finalize(st);
    if (rc != VD_OK) {
        vd_example_list_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}

vd_status vd_store_example_update(vd_store *s, const char *session_id, int64_t idx,
                                  const char *sha256, vd_example_status status, const char *error,
                                  vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "UPDATE examples SET sha256 = coalesce(?, sha256), status = ?,"
                                 " error = ? WHERE session_id = ? AND idx = ?",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, sha256);
    vd_db_bind_text(st, 2, vd_example_status_name(status));
    vd_db_bind_text(st, 3, error);
    vd_db_bind_text(st, 4, session_id);
    vd_db_bind_int64(st, 5, idx);
    rc = vd_db_run(st, "update example", err);
    int64_t changed = vd_db_changes(st);
    vd_db_finalize(st);
    if (rc != VD_OK) return rc;
    if (changed == 0)
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no example %lld in session %s", (long long)idx,
                            session_id);
    return VD_OK;
}

vd_status vd_store_classifier_put(vd_store *s, const char *session_id, const char *algorithm,
                                  const char *labels_json, const void *blob, size_t blob_len,
                                  vd_error *err)
{
    if (!algorithm || !*algorithm)
        return vd_error_set(err, VD_ERR_INVALID, "a classifier needs an algorithm name");
    json_t *labels = labels_json ? json_loads(labels_json, JSON_DECODE_ANY, NULL) : NULL;
    int is_array = json_is_array(labels);
    json_decref(labels);
    if (!is_array)
        return vd_error_set(err, VD_ERR_INVALID, "classifier labels must be a JSON array");
    if (!blob || blob_len == 0 || blob_len > INT32_MAX)
        return vd_error_set(err, VD_ERR_INVALID, "a classifier blob of %zu bytes", blob_len);
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db,
        "INSERT INTO classifiers (session_id, algorithm, labels, blob, created_ms)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
        " algorithm = excluded.algorithm, labels = excluded.labels, blob = excluded.blob,"
        " created_ms = excluded.created_ms",
        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, session_id);
    vd_db_bind_text(st, 2, algorithm);
    vd_db_bind_text(st, 3, labels_json);
    vd_db_bind_blob(st, 4, blob, blob_len);
    vd_db_bind_int64(st, 5, vd_now_ms());
    rc = vd_db_run(st, "put classifier", err);
    vd_db_finalize(st);
    if (rc == VD_ERR_STATE) /* the foreign key: no such session */
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", session_id);
    return rc;
}

vd_status vd_store_classifier_get(vd_store *s, const char *session_id, vd_stored_classifier *out,
                                  vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db, "SELECT algorithm, labels, blob, created_ms FROM classifiers WHERE session_id = ?",
        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, session_id);
    int row = 0;
    rc = vd_db_step(st, &row, "get classifier", err);
    if (rc == VD_OK && row) {
        out->algorithm = vd_db_col_strdup(st, 0);
        out->labels_json = vd_db_col_strdup(st, 1);
        size_t len = 0;
        const void *b = vd_db_col_blob(st, 2, &len);
        out->blob = len > 0 ? malloc(len) : NULL;
        if (out->blob) memcpy(out->blob, b, len);
        out->blob_len = len;
        out->created_ms = vd_db_col_int64(st, 3);
        if (!out->algorithm || !out->labels_json || !out->blob) {
            vd_stored_classifier_clear(out);
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
        }
    } else if (rc == VD_OK) {
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "session %s has no classifier", session_id);
    }
    vd_db_finalize(st);
    return rc;
}
