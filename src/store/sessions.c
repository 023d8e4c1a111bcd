/* sessions.c: training sessions, examples and classifiers in the store. */
#include "store/sessions.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

static const char *const kind_names[] = {"image", "face"};
static const char *const state_names[] = {"queued", "running", "succeeded", "failed", "canceled"};
static const char *const example_names[] = {"pending", "embedded", "failed"};

const char *vd_session_kind_name(vd_session_kind k)
{
    return (unsigned)k < 2 ? kind_names[k] : "unknown";
}

vd_status vd_session_kind_parse(const char *name, vd_session_kind *out)
{
    for (int i = 0; name && i < 2; i++)
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (vd_session_kind)i;
            return VD_OK;
        }
    return VD_ERR_INVALID;
}

const char *vd_session_state_name(vd_session_state s)
{
    return (unsigned)s < VD_SESSION__NSTATES ? state_names[s] : "unknown";
}

vd_status vd_session_state_parse(const char *name, vd_session_state *out)
{
    for (int i = 0; name && i < VD_SESSION__NSTATES; i++)
        if (strcmp(name, state_names[i]) == 0) {
            *out = (vd_session_state)i;
            return VD_OK;
        }
    return VD_ERR_INVALID;
}

const char *vd_example_status_name(vd_example_status s)
{
    return (unsigned)s < 3 ? example_names[s] : "unknown";
}

static vd_example_status example_status_parse(const char *name)
{
    for (int i = 0; name && i < 3; i++)
        if (strcmp(name, example_names[i]) == 0) return (vd_example_status)i;
    return VD_EXAMPLE_PENDING;
}

int vd_session_state_is_final(vd_session_state s)
{
    return s == VD_SESSION_SUCCEEDED || s == VD_SESSION_FAILED || s == VD_SESSION_CANCELED;
}

void vd_session_clear(vd_session *s)
{
    if (!s) return;
    free(s->name);
    free(s->model);
    free(s->errors_json);
    free(s->metrics_json);
    free(s->options_json);
    free(s->message);
    memset(s, 0, sizeof *s);
}

void vd_session_list_free(vd_session *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        vd_session_clear(&list[i]);
    free(list);
}

void vd_example_clear(vd_example *e)
{
    if (!e) return;
    free(e->path);
    free(e->label);
    free(e->error);
    memset(e, 0, sizeof *e);
}

void vd_example_list_free(vd_example *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        vd_example_clear(&list[i]);
    free(list);
}

void vd_stored_classifier_clear(vd_stored_classifier *c)
{
    if (!c) return;
    free(c->algorithm);
    free(c->labels_json);
    free(c->blob);
    memset(c, 0, sizeof *c);
}

static int json_is_kind(const char *text, int want_object)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    int ok = j && (want_object ? json_is_object(j) : json_is_array(j));
    json_decref(j);
    return ok;
}

/* Runs a prepared statement that changes one row; NOT_FOUND when none changed. */
static vd_status step_change(vd_store *s, sqlite3_stmt *st, const char *what, const char *id,
                             vd_error *err)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return vd_store_db_error(s, err, what);
    if (sqlite3_changes(s->db) == 0)
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", id);
    return VD_OK;
}

vd_status vd_store_session_create(vd_store *s, const vd_session_new *in, char id_out[VD_ID_LEN + 1],
                                  vd_error *err)
{
    if (!in->name || !*in->name)
        return vd_error_set(err, VD_ERR_INVALID, "a session needs a non-empty name");
    if (!in->model || !*in->model)
        return vd_error_set(err, VD_ERR_INVALID, "a session needs a model name");
    if ((unsigned)in->kind > VD_SESSION_FACE)
        return vd_error_set(err, VD_ERR_INVALID, "bad session kind %d", (int)in->kind);
    const char *opts = in->options_json ? in->options_json : "{}";
    if (!json_is_kind(opts, 1))
        return vd_error_set(err, VD_ERR_INVALID, "session options must be a JSON object");
    char id[VD_ID_LEN + 1];
    if (in->id) {
        if (!*in->id || strlen(in->id) > VD_ID_LEN)
            return vd_error_set(err, VD_ERR_INVALID, "a session id has 1 to %d characters",
                                VD_ID_LEN);
        vd_strlcpy(id, in->id, sizeof id);
    } else {
        vd_id_new(id);
    }
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(
        s,
        "INSERT INTO sessions (id, name, kind, model, state, options, job_id, created_ms,"
        " updated_ms) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
        &st, err);
    if (rc != VD_OK) return rc;
    int64_t now = vd_now_ms();
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, in->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, vd_session_kind_name(in->kind), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, in->model, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 5, opts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 6, in->job_id ? in->job_id : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 7, now);
    sqlite3_bind_int64(st, 8, now);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_CONSTRAINT)
        return vd_error_set(err, VD_ERR_STATE, "a session with id %s exists", id);
    if (r != SQLITE_DONE) return vd_store_db_error(s, err, "create session");
    if (id_out) memcpy(id_out, id, sizeof id);
    return VD_OK;
}

#define SESSION_COLUMNS                                                                            \
    "id, name, kind, model, state, progress_done, progress_total, errors, metrics, options,"       \
    " message, threshold, job_id, created_ms, updated_ms"

static vd_status read_session(sqlite3_stmt *st, vd_session *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_strlcpy(out->id, (const char *)sqlite3_column_text(st, 0), sizeof out->id);
    out->name = vd_store_col_strdup(st, 1);
    vd_session_kind_parse((const char *)sqlite3_column_text(st, 2), &out->kind);
    out->model = vd_store_col_strdup(st, 3);
    vd_session_state_parse((const char *)sqlite3_column_text(st, 4), &out->state);
    out->progress_done = sqlite3_column_int64(st, 5);
    out->progress_total = sqlite3_column_int64(st, 6);
    out->errors_json = vd_store_col_strdup(st, 7);
    out->metrics_json = vd_store_col_strdup(st, 8);
    out->options_json = vd_store_col_strdup(st, 9);
    out->message = vd_store_col_strdup(st, 10);
    out->threshold = sqlite3_column_double(st, 11);
    vd_strlcpy(out->job_id, (const char *)sqlite3_column_text(st, 12), sizeof out->job_id);
    out->created_ms = sqlite3_column_int64(st, 13);
    out->updated_ms = sqlite3_column_int64(st, 14);
    if (!out->name || !out->model || !out->errors_json || !out->options_json ||
        (sqlite3_column_type(st, 8) != SQLITE_NULL && !out->metrics_json) ||
        (sqlite3_column_type(st, 10) != SQLITE_NULL && !out->message)) {
        vd_session_clear(out);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    return VD_OK;
}

vd_status vd_store_session_get(vd_store *s, const char *id, vd_session *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    vd_status rc =
        vd_store_prepare(s, "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ?", &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        rc = read_session(st, out, err);
    } else if (r == SQLITE_DONE) {
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", id);
    } else {
        rc = vd_store_db_error(s, err, "get session");
    }
    sqlite3_finalize(st);
    return rc;
}

vd_status vd_store_session_list(vd_store *s, size_t limit, vd_session **out, size_t *n,
                                vd_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(
        s, "SELECT " SESSION_COLUMNS " FROM sessions ORDER BY created_ms DESC, id LIMIT ?", &st,
        err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_int64(st, 1, limit ? (int64_t)limit : -1);
    vd_session *list = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            vd_session *bigger = realloc(list, cap * sizeof *list);
            if (!bigger) {
                rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
                break;
            }
            list = bigger;
        }
        if ((rc = read_session(st, &list[cnt], err)) != VD_OK) break;
        cnt++;
    }
    if (rc == VD_OK && r != SQLITE_DONE) rc = vd_store_db_error(s, err, "list sessions");
    sqlite3_finalize(st);
    if (rc != VD_OK) {
        vd_session_list_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}

vd_status vd_store_session_set_job(vd_store *s, const char *id, const char *job_id, vd_error *err)
{
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(
        s, "UPDATE sessions SET job_id = ?, updated_ms = ? WHERE id = ?", &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, job_id ? job_id : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, vd_now_ms());
    sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
    return step_change(s, st, "set job", id, err);
}

/* Distinguishes "no such session" from "it has ended" after an UPDATE
 * guarded by state that changed nothing. */
static vd_status why_unchanged(vd_store *s, const char *id, vd_error *err)
{
    vd_session cur;
    vd_status rc = vd_store_session_get(s, id, &cur, err);
    if (rc != VD_OK) return rc;
    rc = vd_error_set(err, VD_ERR_STATE, "session %s has ended (%s)", id,
                      vd_session_state_name(cur.state));
    vd_session_clear(&cur);
    return rc;
}

vd_status vd_store_session_set_state(vd_store *s, const char *id, vd_session_state state,
                                     vd_error *err)
{
    if (state != VD_SESSION_QUEUED && state != VD_SESSION_RUNNING)
        return vd_error_set(err, VD_ERR_INVALID,
                            "set_state takes queued or running; end a session with finish");
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(s,
                                    "UPDATE sessions SET state = ?, updated_ms = ? WHERE id = ?"
                                    " AND state IN ('queued', 'running')",
                                    &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, vd_session_state_name(state), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, vd_now_ms());
    sqlite3_bind_text(st, 3, id, -1, SQLITE_TRANSIENT);
    rc = step_change(s, st, "set state", id, err);
    return rc == VD_ERR_NOT_FOUND ? why_unchanged(s, id, err) : rc;
}

vd_status vd_store_session_set_progress(vd_store *s, const char *id, int64_t done, int64_t total,
                                        vd_error *err)
{
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(
        s, "UPDATE sessions SET progress_done = ?, progress_total = ?, updated_ms = ? WHERE id = ?",
        &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_int64(st, 1, done);
    sqlite3_bind_int64(st, 2, total);
    sqlite3_bind_int64(st, 3, vd_now_ms());
    sqlite3_bind_text(st, 4, id, -1, SQLITE_TRANSIENT);
    return step_change(s, st, "set progress", id, err);
}

vd_status vd_store_session_add_error(vd_store *s, const char *id, const char *path,
                                     const char *message, vd_error *err)
{
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(
        s,
        "UPDATE sessions SET errors = json_insert(errors, '$[#]', json_object('path', ?,"
        " 'error', ?)), updated_ms = ? WHERE id = ?",
        &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, path ? path : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, message ? message : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, vd_now_ms());
    sqlite3_bind_text(st, 4, id, -1, SQLITE_TRANSIENT);
    return step_change(s, st, "add error", id, err);
}

vd_status vd_store_session_finish(vd_store *s, const char *id, vd_session_state state,
                                  const char *metrics_json, double threshold, const char *message,
                                  vd_error *err)
{
    if (!vd_session_state_is_final(state))
        return vd_error_set(err, VD_ERR_INVALID, "finish takes succeeded, failed or canceled");
    if (metrics_json && !json_is_kind(metrics_json, 1))
        return vd_error_set(err, VD_ERR_INVALID, "metrics must be a JSON object");
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(
        s,
        "UPDATE sessions SET state = ?, metrics = ?, threshold = ?, message = ?, updated_ms = ?"
        " WHERE id = ? AND state IN ('queued', 'running')",
        &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, vd_session_state_name(state), -1, SQLITE_STATIC);
    if (metrics_json)
        sqlite3_bind_text(st, 2, metrics_json, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_double(st, 3, threshold);
    if (message)
        sqlite3_bind_text(st, 4, message, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, vd_now_ms());
    sqlite3_bind_text(st, 6, id, -1, SQLITE_TRANSIENT);
    rc = step_change(s, st, "finish session", id, err);
    return rc == VD_ERR_NOT_FOUND ? why_unchanged(s, id, err) : rc;
}

vd_status vd_store_session_delete(vd_store *s, const char *id, vd_error *err)
{
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(s, "DELETE FROM sessions WHERE id = ?", &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
    return step_change(s, st, "delete session", id, err);
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
    sqlite3_stmt *st = NULL;
    int64_t base = 0;
    if ((rc = vd_store_prepare(s, "SELECT 1 FROM sessions WHERE id = ?", &st, err)) != VD_OK)
        goto out;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if (r == SQLITE_DONE) {
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", session_id);
        goto out;
    }
    if (r != SQLITE_ROW) {
        rc = vd_store_db_error(s, err, "add examples");
        goto out;
    }
    if ((rc = vd_store_prepare(
             s, "SELECT coalesce(max(idx) + 1, 0) FROM examples WHERE session_id = ?", &st, err)))
        goto out;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_ROW) {
        rc = vd_store_db_error(s, err, "add examples");
        goto out;
    }
    base = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = vd_store_prepare(s,
                               "INSERT INTO examples (session_id, idx, path, label, sha256,"
                               " status, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               &st, err)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, session_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, base + (int64_t)i);
        sqlite3_bind_text(st, 3, ex[i].path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, ex[i].label, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, ex[i].sha256, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, vd_example_status_name(ex[i].status), -1, SQLITE_STATIC);
        if (ex[i].error)
            sqlite3_bind_text(st, 7, ex[i].error, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 7);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = vd_store_db_error(s, err, "add example");
            goto out;
        }
    }
out:
    sqlite3_finalize(st);
    return vd_store_txn_end(s, owned, rc, err);
}

vd_status vd_store_examples_list(vd_store *s, const char *session_id, vd_example **out, size_t *n,
                                 vd_error *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(s,
                                    "SELECT idx, path, label, sha256, status, error FROM examples"
                                    " WHERE session_id = ? ORDER BY idx",
                                    &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_TRANSIENT);
    vd_example *list = NULL;
    size_t cnt = 0, cap = 0;
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 64;
            vd_example *bigger = realloc(list, cap * sizeof *list);
            if (!bigger) {
                rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
                break;
            }
            list = bigger;
        }
        vd_example *e = &list[cnt];
        memset(e, 0, sizeof *e);
        e->idx = sqlite3_column_int64(st, 0);
        e->path = vd_store_col_strdup(st, 1);
        e->label = vd_store_col_strdup(st, 2);
        vd_strlcpy(e->sha256, (const char *)sqlite3_column_text(st, 3), sizeof e->sha256);
        e->status = example_status_parse((const char *)sqlite3_column_text(st, 4));
        e->error = vd_store_col_strdup(st, 5);
        cnt++;
        if (!e->path || !e->label || (sqlite3_column_type(st, 5) != SQLITE_NULL && !e->error)) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
    }
    if (rc == VD_OK && r != SQLITE_DONE) rc = vd_store_db_error(s, err, "list examples");
    sqlite3_finalize(st);
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
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(s,
                                    "UPDATE examples SET sha256 = coalesce(?, sha256), status = ?,"
                                    " error = ? WHERE session_id = ? AND idx = ?",
                                    &st, err);
    if (rc != VD_OK) return rc;
    if (sha256)
        sqlite3_bind_text(st, 1, sha256, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, vd_example_status_name(status), -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(st, 3, error, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, session_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, idx);
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) return vd_store_db_error(s, err, "update example");
    if (sqlite3_changes(s->db) == 0)
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
    if (!labels_json || !json_is_kind(labels_json, 0))
        return vd_error_set(err, VD_ERR_INVALID, "classifier labels must be a JSON array");
    if (!blob || blob_len == 0 || blob_len > INT32_MAX)
        return vd_error_set(err, VD_ERR_INVALID, "a classifier blob of %zu bytes", blob_len);
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(s,
                                    "INSERT OR REPLACE INTO classifiers (session_id, algorithm,"
                                    " labels, blob, created_ms) VALUES (?, ?, ?, ?, ?)",
                                    &st, err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, algorithm, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, labels_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 4, blob, (int)blob_len, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, vd_now_ms());
    int r = sqlite3_step(st);
    sqlite3_finalize(st);
    if (r == SQLITE_CONSTRAINT)
        return vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", session_id);
    if (r != SQLITE_DONE) return vd_store_db_error(s, err, "put classifier");
    return VD_OK;
}

vd_status vd_store_classifier_get(vd_store *s, const char *session_id, vd_stored_classifier *out,
                                  vd_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st;
    vd_status rc = vd_store_prepare(
        s, "SELECT algorithm, labels, blob, created_ms FROM classifiers WHERE session_id = ?", &st,
        err);
    if (rc != VD_OK) return rc;
    sqlite3_bind_text(st, 1, session_id, -1, SQLITE_TRANSIENT);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW) {
        out->algorithm = vd_store_col_strdup(st, 0);
        out->labels_json = vd_store_col_strdup(st, 1);
        const void *b = sqlite3_column_blob(st, 2);
        int len = sqlite3_column_bytes(st, 2);
        out->blob = len > 0 ? malloc((size_t)len) : NULL;
        if (out->blob) memcpy(out->blob, b, (size_t)len);
        out->blob_len = (size_t)len;
        out->created_ms = sqlite3_column_int64(st, 3);
        if (!out->algorithm || !out->labels_json || !out->blob) {
            vd_stored_classifier_clear(out);
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
        }
    } else if (r == SQLITE_DONE) {
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "session %s has no classifier", session_id);
    } else {
        rc = vd_store_db_error(s, err, "get classifier");
    }
    sqlite3_finalize(st);
    return rc;
}
