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

vd_example_status vd_example_status_parse(const char *name)
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

static vd_status prep(vd_store *s, const char *sql, int flags, vd_db_stmt **st, vd_error *err)
{
    return vd_db_prepare(s->db, sql, flags, st, err);
}

/* Runs a prepared statement that changes one row and finalizes it;
 * NOT_FOUND when none changed. */
static vd_status run_change(vd_db_stmt *st, const char *what, const char *id, vd_error *err)
{
    vd_status rc = vd_db_run(st, what, err);
    int64_t changed = vd_db_changes(st);
    vd_db_finalize(st);
    if (rc != VD_OK) return rc;
    if (changed == 0) return vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", id);
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
    vd_db_stmt *st;
    /* Not VD_DB_RETRY: run twice, it would answer "exists" to its own row. */
    vd_status rc =
        prep(s,
             "INSERT INTO sessions (id, name, kind, model, state, options, job_id, created_ms,"
             " updated_ms) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
             0, &st, err);
    if (rc != VD_OK) return rc;
    int64_t now = vd_now_ms();
    vd_db_bind_text(st, 1, id);
    vd_db_bind_text(st, 2, in->name);
    vd_db_bind_text(st, 3, vd_session_kind_name(in->kind));
    vd_db_bind_text(st, 4, in->model);
    vd_db_bind_text(st, 5, opts);
    vd_db_bind_text(st, 6, in->job_id ? in->job_id : "");
    vd_db_bind_int64(st, 7, now);
    vd_db_bind_int64(st, 8, now);
    rc = vd_db_run(st, "create session", err);
    vd_db_finalize(st);
    if (rc == VD_ERR_STATE)
        return vd_error_set(err, VD_ERR_STATE, "a session with id %s exists", id);
    if (rc != VD_OK) return rc;
    if (id_out) memcpy(id_out, id, sizeof id);
    return VD_OK;
}

#define SESSION_COLUMNS                                                                            \
    "id, name, kind, model, state, progress_done, progress_total, errors, metrics, options,"       \
    " message, threshold, job_id, created_ms, updated_ms"

static const char *col_text0(vd_db_stmt *st, int i)
{
    const char *t = vd_db_col_text(st, i);
    return t ? t : "";
}

static vd_status read_session(vd_db_stmt *st, vd_session *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_strlcpy(out->id, col_text0(st, 0), sizeof out->id);
    out->name = vd_db_col_strdup(st, 1);
    vd_session_kind_parse(vd_db_col_text(st, 2), &out->kind);
    out->model = vd_db_col_strdup(st, 3);
    vd_session_state_parse(vd_db_col_text(st, 4), &out->state);
    out->progress_done = vd_db_col_int64(st, 5);
    out->progress_total = vd_db_col_int64(st, 6);
    out->errors_json = vd_db_col_strdup(st, 7);
    out->metrics_json = vd_db_col_strdup(st, 8);
    out->options_json = vd_db_col_strdup(st, 9);
    out->message = vd_db_col_strdup(st, 10);
    out->threshold = vd_db_col_double(st, 11);
    vd_strlcpy(out->job_id, col_text0(st, 12), sizeof out->job_id);
    out->created_ms = vd_db_col_int64(st, 13);
    out->updated_ms = vd_db_col_int64(st, 14);
    if (!out->name || !out->model || !out->errors_json || !out->options_json ||
        (!vd_db_col_null(st, 8) && !out->metrics_json) ||
        (!vd_db_col_null(st, 10) && !out->message)) {
        vd_session_clear(out);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    return VD_OK;
}

vd_status vd_store_session_get(vd_store *s, const char *id, vd_session *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_db_stmt *st;
    vd_status rc =
        prep(s, "SELECT " SESSION_COLUMNS " FROM sessions WHERE id = ?", VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, id);
    int row = 0;
    rc = vd_db_step(st, &row, "get session", err);
    if (rc == VD_OK && row)
        rc = read_session(st, out, err);
    else if (rc == VD_OK)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no such session: %s", id);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_session_list(vd_store *s, size_t limit, vd_session **out, size_t *n,
                                vd_error *err)
{
    *out = NULL;
    *n = 0;
    vd_db_stmt *st;
    vd_status rc =
        prep(s, "SELECT " SESSION_COLUMNS " FROM sessions ORDER BY created_ms DESC, id LIMIT ?",
             VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, limit && limit < (size_t)INT64_MAX ? (int64_t)limit : INT64_MAX);
    vd_session *list = NULL;
    size_t cnt = 0, cap = 0;
    int row = 0;
    while ((rc = vd_db_step(st, &row, "list sessions", err)) == VD_OK && row) {
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
    vd_db_finalize(st);
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
    vd_db_stmt *st;
    vd_status rc = prep(s, "UPDATE sessions SET job_id = ?, updated_ms = ? WHERE id = ?",
                        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, job_id ? job_id : "");
    vd_db_bind_int64(st, 2, vd_now_ms());
    vd_db_bind_text(st, 3, id);
    return run_change(st, "set job", id, err);
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
    vd_db_stmt *st;
    vd_status rc = prep(s,
                        "UPDATE sessions SET state = ?, updated_ms = ? WHERE id = ?"
                        " AND state IN ('queued', 'running')",
                        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, vd_session_state_name(state));
    vd_db_bind_int64(st, 2, vd_now_ms());
    vd_db_bind_text(st, 3, id);
    rc = run_change(st, "set state", id, err);
    return rc == VD_ERR_NOT_FOUND ? why_unchanged(s, id, err) : rc;
}

vd_status vd_store_session_set_progress(vd_store *s, const char *id, int64_t done, int64_t total,
                                        vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = prep(
        s, "UPDATE sessions SET progress_done = ?, progress_total = ?, updated_ms = ? WHERE id = ?",
        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, done);
    vd_db_bind_int64(st, 2, total);
    vd_db_bind_int64(st, 3, vd_now_ms());
    vd_db_bind_text(st, 4, id);
    return run_change(st, "set progress", id, err);
}

/* Appending to the JSON array in one UPDATE (atomic against other
 * appenders) needs each backend's JSON functions: the one dialect choice of
 * the session queries. */
static const char *const add_error_sql[] = {
    [VD_DB_SQLITE] = "UPDATE sessions SET errors = json_insert(errors, '$[#]', json_object('path',"
                     " ?, 'error', ?)), updated_ms = ? WHERE id = ?",
    [VD_DB_PG] = "UPDATE sessions SET errors = (errors::jsonb || jsonb_build_array("
                 "jsonb_build_object('path', ?::text, 'error', ?::text)))::text,"
                 " updated_ms = ? WHERE id = ?",
};

vd_status vd_store_session_add_error(vd_store *s, const char *id, const char *path,
                                     const char *message, vd_error *err)
{
    vd_db_stmt *st;
    /* Not VD_DB_RETRY: run twice, it would append twice. */
    vd_status rc = prep(s, add_error_sql[vd_db_kind_of(s->db)], 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, path ? path : "");
    vd_db_bind_text(st, 2, message ? message : "");
    vd_db_bind_int64(st, 3, vd_now_ms());
    vd_db_bind_text(st, 4, id);
    return run_change(st, "add error", id, err);
}

vd_status vd_store_session_finish(vd_store *s, const char *id, vd_session_state state,
                                  const char *metrics_json, double threshold, const char *message,
                                  vd_error *err)
{
    if (!vd_session_state_is_final(state))
        return vd_error_set(err, VD_ERR_INVALID, "finish takes succeeded, failed or canceled");
    if (metrics_json && !json_is_kind(metrics_json, 1))
        return vd_error_set(err, VD_ERR_INVALID, "metrics must be a JSON object");
    vd_db_stmt *st;
    /* Not VD_DB_RETRY: run twice, the second run would find the session ended. */
    vd_status rc = prep(s,
                        "UPDATE sessions SET state = ?, metrics = ?, threshold = ?, message = ?,"
                        " updated_ms = ? WHERE id = ? AND state IN ('queued', 'running')",
                        0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, vd_session_state_name(state));
    vd_db_bind_text(st, 2, metrics_json);
    vd_db_bind_double(st, 3, threshold);
    vd_db_bind_text(st, 4, message);
    vd_db_bind_int64(st, 5, vd_now_ms());
    vd_db_bind_text(st, 6, id);
    rc = run_change(st, "finish session", id, err);
    return rc == VD_ERR_NOT_FOUND ? why_unchanged(s, id, err) : rc;
}

vd_status vd_store_session_delete(vd_store *s, const char *id, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = prep(s, "DELETE FROM sessions WHERE id = ?", 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, id);
    return run_change(st, "delete session", id, err);
}
