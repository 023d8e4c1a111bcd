/* library.c: the photo library's assets, their vectors, the seq counter and
 * the removals log (store/library.h), written once for both backends through
 * store_db.h. Faces and people: library_faces.c. */
#include "store/library.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/library_impl.h"
#include "store/store_impl.h"

static const char *const state_names[VD_ASSET__NSTATES] = {"pending", "indexed", "error"};

const char *vd_asset_state_name(vd_asset_state st)
{
    return st >= 0 && st < VD_ASSET__NSTATES ? state_names[st] : "?";
}

int vd_asset_state_parse(const char *name)
{
    for (int i = 0; name && i < VD_ASSET__NSTATES; i++)
        if (strcmp(name, state_names[i]) == 0) return i;
    return -1;
}

const char *vd_assign_by_name(vd_assign_by by)
{
    return by == VD_ASSIGN_AUTO ? "auto" : by == VD_ASSIGN_USER ? "user" : NULL;
}

int vd_assign_by_parse(const char *name)
{
    if (!name || !*name) return VD_ASSIGN_NONE;
    if (strcmp(name, "auto") == 0) return VD_ASSIGN_AUTO;
    if (strcmp(name, "user") == 0) return VD_ASSIGN_USER;
    return -1;
}

void vd_asset_clear(vd_asset *a)
{
    if (!a) return;
    free(a->path);
    free(a->folder);
    free(a->error);
    memset(a, 0, sizeof *a);
}

void vd_asset_list_free(vd_asset *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        vd_asset_clear(&list[i]);
    free(list);
}

void vd_asset_vector_list_free(vd_asset_vector *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i].vector);
    free(list);
}

int vd_library_limit(int limit, int dflt)
{
    if (limit <= 0) return dflt;
    return limit > VD_LIBRARY_LIST_MAX ? VD_LIBRARY_LIST_MAX : limit;
}

vd_status vd_library_seq_take(vd_store *s, int64_t n, int64_t *last, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db, "UPDATE library_seq SET seq = seq + ? WHERE id = 1 RETURNING seq", 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, n);
    int row = 0;
    rc = vd_db_step(st, &row, "take library seq", err);
    if (rc == VD_OK && !row) rc = vd_error_set(err, VD_ERR_DB, "store: library_seq has no row");
    if (rc == VD_OK) *last = vd_db_col_int64(st, 0);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_library_log_removal(vd_store *s, int64_t seq, const char *kind, int64_t id,
                                 vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db, "INSERT INTO library_removed (seq, kind, id) VALUES (?, ?, ?)", 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, seq);
    vd_db_bind_text(st, 2, kind);
    vd_db_bind_int64(st, 3, id);
    rc = vd_db_run(st, "log removal", err);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_library_normalised(const float *v, int dim, const char *what, float **out,
                                vd_error *err)
{
    *out = NULL;
    if (!v || dim <= 0 || dim > (1 << 24))
        return vd_error_set(err, VD_ERR_INVALID, "%s: no vector, or a bad dimension %d", what, dim);
    double sum = 0;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(v[i]))
            return vd_error_set(err, VD_ERR_INVALID, "%s: value %d is not finite", what, i);
        sum += (double)v[i] * v[i];
    }
    if (!(sum > 0) || !isfinite(sum))
        return vd_error_set(err, VD_ERR_INVALID, "%s: the vector's norm is 0", what);
    float *n = malloc(sizeof *n * (size_t)dim);
    if (!n) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    double inv = 1.0 / sqrt(sum);
    for (int i = 0; i < dim; i++)
        n[i] = (float)(v[i] * inv);
    *out = n;
    return VD_OK;
}

vd_status vd_library_asset_live(vd_store *s, int64_t id, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db, "SELECT deleted_ms FROM assets WHERE id = ?", VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    int row = 0;
    rc = vd_db_step(st, &row, "get asset", err);
    if (rc == VD_OK && (!row || !vd_db_col_null(st, 0)))
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no asset %lld", (long long)id);
    vd_db_finalize(st);
    return rc;
}

/* Brings back a deleted asset (found by sha256) as pending at path. */
static vd_status revive(vd_store *s, int64_t id, const char *path, const char *folder,
                        vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "UPDATE assets SET path = ?, folder = ?, state = 'pending',"
                                 " error = NULL, width = 0, height = 0, indexed_ms = NULL,"
                                 " deleted_ms = NULL, created_ms = ? WHERE id = ?",
                                 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, path);
    vd_db_bind_text(st, 2, folder);
    vd_db_bind_int64(st, 3, vd_now_ms());
    vd_db_bind_int64(st, 4, id);
    rc = vd_db_run(st, "revive asset", err);
    vd_db_finalize(st);
    return rc;
}

/* Inserts the asset unless its bytes are there: *inserted tells. */
static vd_status insert_asset(vd_store *s, const char *sha256, const char *path, const char *folder,
                              int *inserted, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "INSERT INTO assets (sha256, path, folder, state, created_ms)"
                                 " VALUES (?, ?, ?, 'pending', ?) ON CONFLICT (sha256) DO NOTHING",
                                 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, sha256);
    vd_db_bind_text(st, 2, path);
    vd_db_bind_text(st, 3, folder);
    vd_db_bind_int64(st, 4, vd_now_ms());
    rc = vd_db_run(st, "register asset", err);
    *inserted = rc == VD_OK && vd_db_changes(st) > 0;
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_asset_register(vd_store *s, const char *sha256, const char *path,
                                  const char *folder, int64_t *id, int *existed,
                                  vd_asset_state *state, vd_error *err)
{
    *id = 0;
    if (existed) *existed = 0;
    if (!vd_sha256_hex_valid(sha256))
        return vd_error_set(err, VD_ERR_INVALID, "not a lowercase hex SHA-256: '%.80s'",
                            sha256 ? sha256 : "(null)");
    if (!path || !*path) return vd_error_set(err, VD_ERR_INVALID, "asset: empty path");
    if (!folder) folder = "";
    int owned, inserted = 0;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    rc = insert_asset(s, sha256, path, folder, &inserted, err);
    vd_db_stmt *st = NULL;
    if (rc == VD_OK)
        rc = vd_db_prepare(s->db, "SELECT id, state, deleted_ms FROM assets WHERE sha256 = ?", 0,
                           &st, err);
    int row = 0;
    if (rc == VD_OK) {
        vd_db_bind_text(st, 1, sha256);
        rc = vd_db_step(st, &row, "register asset", err);
    }
    if (rc == VD_OK && !row)
        rc = vd_error_set(err, VD_ERR_DB, "store: asset %.12s vanished", sha256);
    int deleted = 0, was = 0;
    vd_asset_state stt = VD_ASSET_PENDING;
    if (rc == VD_OK) {
        *id = vd_db_col_int64(st, 0);
        int p = vd_asset_state_parse(vd_db_col_text(st, 1));
        stt = p < 0 ? VD_ASSET_PENDING : (vd_asset_state)p;
        deleted = !vd_db_col_null(st, 2);
        was = !inserted && !deleted;
    }
    vd_db_finalize(st);
    if (rc == VD_OK && deleted) {
        rc = revive(s, *id, path, folder, err);
        stt = VD_ASSET_PENDING;
    }
    rc = vd_store_txn_end(s, owned, rc, err);
    if (rc != VD_OK) {
        *id = 0;
        return rc;
    }
    if (existed) *existed = was;
    if (state) *state = stt;
    return VD_OK;
}

#define ASSET_COLS                                                                                 \
    "id, sha256, path, folder, width, height, state, error, created_ms, indexed_ms, deleted_ms"

/* Reads the current row (ASSET_COLS) into *a. */
static vd_status read_asset(vd_db_stmt *st, vd_asset *a, vd_error *err)
{
    memset(a, 0, sizeof *a);
    a->id = vd_db_col_int64(st, 0);
    vd_strlcpy(a->sha256, vd_db_col_text(st, 1) ? vd_db_col_text(st, 1) : "", sizeof a->sha256);
    a->path = vd_db_col_strdup(st, 2);
    a->folder = vd_db_col_strdup(st, 3);
    a->width = (int)vd_db_col_int64(st, 4);
    a->height = (int)vd_db_col_int64(st, 5);
    int p = vd_asset_state_parse(vd_db_col_text(st, 6));
    a->state = p < 0 ? VD_ASSET_PENDING : (vd_asset_state)p;
    a->error = vd_db_col_strdup(st, 7);
    a->created_ms = vd_db_col_int64(st, 8);
    a->indexed_ms = vd_db_col_int64(st, 9);
    a->deleted = !vd_db_col_null(st, 10);
    a->deleted_ms = vd_db_col_int64(st, 10);
    if (!a->path || !a->folder || (!vd_db_col_null(st, 7) && !a->error)) {
        vd_asset_clear(a);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    return VD_OK;
}

vd_status vd_store_asset_get(vd_store *s, int64_t id, int with_deleted, vd_asset *out,
                             vd_error *err)
{
    memset(out, 0, sizeof *out);
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db, "SELECT " ASSET_COLS " FROM assets WHERE id = ?",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    int row = 0;
    rc = vd_db_step(st, &row, "get asset", err);
    if (rc == VD_OK && (!row || (!with_deleted && !vd_db_col_null(st, 10))))
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no asset %lld", (long long)id);
    if (rc == VD_OK) rc = read_asset(st, out, err);
    vd_db_finalize(st);
    return rc;
}

/* Grows *list to hold one more of size sz; the new slot is zeroed. */
void *vd_library_grow(void *list, size_t n, size_t *cap, size_t sz)
{
    if (n < *cap) return list;
    size_t nc = *cap ? *cap * 2 : 16;
    void *p = realloc(list, nc * sz);
    if (!p) return NULL;
    memset((char *)p + n * sz, 0, (nc - n) * sz);
    *cap = nc;
    return p;
}

/* A malloc'd copy of s with c appended (NULL: no memory). */
static char *with_char(const char *s, char c)
{
    size_t n = strlen(s);
    char *r = malloc(n + 2);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = c;
    r[n + 1] = '\0';
    return r;
}

vd_status vd_store_asset_list(vd_store *s, const vd_asset_filter *f, vd_asset **out, size_t *n,
                              vd_error *err)
{
    *out = NULL;
    *n = 0;
    /* "/a/b/" is "/a/b"; "/" (every folder) is no filter */
    size_t flen = f && f->folder ? strlen(f->folder) : 0;
    while (flen > 0 && f->folder[flen - 1] == '/')
        flen--;
    char *folder = flen ? strndup(f->folder, flen) : NULL;
    int state = f ? f->state : -1;
    char *below = folder ? with_char(folder, '/') : NULL;
    char *above = folder ? with_char(folder, '0') : NULL; /* '0' follows '/' */
    if ((flen && !folder) || (folder && (!below || !above))) {
        free(folder);
        free(below);
        free(above);
        return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    }
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db,
                      "SELECT " ASSET_COLS " FROM assets WHERE deleted_ms IS NULL AND id > ?"
                      " AND (? = 0 OR folder = ? OR (folder >= ? AND folder < ?))"
                      " AND (? < 0 OR state = ?) ORDER BY id LIMIT ?",
                      VD_DB_RETRY, &st, err);
    if (rc == VD_OK) {
        vd_db_bind_int64(st, 1, f ? f->after_id : 0);
        vd_db_bind_int64(st, 2, folder != NULL);
        vd_db_bind_text(st, 3, folder ? folder : "");
        vd_db_bind_text(st, 4, below ? below : "");
        vd_db_bind_text(st, 5, above ? above : "");
        vd_db_bind_int64(st, 6, state);
        vd_db_bind_text(st, 7, state >= 0 ? vd_asset_state_name((vd_asset_state)state) : "");
        vd_db_bind_int64(st, 8, vd_library_limit(f ? f->limit : 0, 100));
    }
    free(folder);
    free(below);
    free(above);
    if (rc != VD_OK) return rc;
    vd_asset *list = NULL;
    size_t cnt = 0, cap = 0;
    int row = 0;
    while ((rc = vd_db_step(st, &row, "list assets", err)) == VD_OK && row) {
        vd_asset *g = vd_library_grow(list, cnt, &cap, sizeof *list);
        if (!g) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        list = g;
        if ((rc = read_asset(st, &list[cnt], err)) != VD_OK) break;
        cnt++;
    }
    vd_db_finalize(st);
    if (rc != VD_OK) {
        vd_asset_list_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}

vd_status vd_store_asset_count(vd_store *s, int64_t counts[VD_ASSET__NSTATES], vd_error *err)
{
    for (int i = 0; i < VD_ASSET__NSTATES; i++)
        counts[i] = 0;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db, "SELECT state, count(*) FROM assets WHERE deleted_ms IS NULL GROUP BY state",
        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    int row = 0;
    while ((rc = vd_db_step(st, &row, "count assets", err)) == VD_OK && row) {
        int p = vd_asset_state_parse(vd_db_col_text(st, 0));
        if (p >= 0) counts[p] = vd_db_col_int64(st, 1);
    }
    vd_db_finalize(st);
    return rc;
}

/* Runs sql with the one integer parameter id. */
vd_status vd_library_run_id(vd_store *s, const char *sql, int64_t id, const char *what,
                            int64_t *changes, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db, sql, 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    rc = vd_db_run(st, what, err);
    if (changes) *changes = rc == VD_OK ? vd_db_changes(st) : 0;
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_asset_delete(vd_store *s, int64_t id, vd_error *err)
{
    int owned;
    int64_t seq = 0;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    /* The counter first: it orders this delete against every vector put. */
    rc = vd_library_seq_take(s, 1, &seq, err);
    vd_db_stmt *st = NULL;
    if (rc == VD_OK)
        rc = vd_db_prepare(s->db,
                           "UPDATE assets SET deleted_ms = ? WHERE id = ? AND deleted_ms IS NULL",
                           0, &st, err);
    if (rc == VD_OK) {
        vd_db_bind_int64(st, 1, vd_now_ms());
        vd_db_bind_int64(st, 2, id);
        rc = vd_db_run(st, "delete asset", err);
        if (rc == VD_OK && vd_db_changes(st) == 0)
            rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no asset %lld", (long long)id);
    }
    vd_db_finalize(st);
    if (rc == VD_OK) rc = vd_library_log_removal(s, seq, "asset", id, err);
    if (rc == VD_OK) rc = vd_library_faces_remove(s, id, NULL, err);
    if (rc == VD_OK)
        rc = vd_library_run_id(s, "DELETE FROM asset_vectors WHERE asset_id = ?", id,
                               "delete asset vectors", NULL, err);
    return vd_store_txn_end(s, owned, rc, err);
}

vd_status vd_store_asset_set_state(vd_store *s, int64_t id, vd_asset_state state, const char *error,
                                   int width, int height, vd_error *err)
{
    if (state < 0 || state >= VD_ASSET__NSTATES)
        return vd_error_set(err, VD_ERR_INVALID, "bad asset state %d", (int)state);
    if (state == VD_ASSET_ERROR && (!error || !*error))
        return vd_error_set(err, VD_ERR_INVALID, "asset %lld: an error state needs its message",
                            (long long)id);
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "UPDATE assets SET state = ?, error = ?,"
                                 " width = CASE WHEN ? > 0 THEN ? ELSE width END,"
                                 " height = CASE WHEN ? > 0 THEN ? ELSE height END,"
                                 " indexed_ms = ? WHERE id = ? AND deleted_ms IS NULL",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, vd_asset_state_name(state));
    vd_db_bind_text(st, 2, state == VD_ASSET_ERROR ? error : NULL);
    vd_db_bind_int64(st, 3, width);
    vd_db_bind_int64(st, 4, width);
    vd_db_bind_int64(st, 5, height);
    vd_db_bind_int64(st, 6, height);
    if (state == VD_ASSET_INDEXED)
        vd_db_bind_int64(st, 7, vd_now_ms());
    else
        vd_db_bind_null(st, 7);
    vd_db_bind_int64(st, 8, id);
    rc = vd_db_run(st, "set asset state", err);
    if (rc == VD_OK && vd_db_changes(st) == 0)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no asset %lld", (long long)id);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_asset_vector_put(vd_store *s, int64_t id, const char *model, const float *vector,
                                    int dim, int64_t *seq, vd_error *err)
{
    if (seq) *seq = 0;
    if (!model || !*model) return vd_error_set(err, VD_ERR_INVALID, "empty model name");
    float *v = NULL;
    vd_status rc = vd_library_normalised(vector, dim, "asset vector", &v, err);
    if (rc != VD_OK) return rc;
    int owned;
    int64_t got = 0;
    if ((rc = vd_store_txn_begin(s, &owned, err)) != VD_OK) {
        free(v);
        return rc;
    }
    rc = vd_library_seq_take(s, 1, &got, err);
    if (rc == VD_OK) rc = vd_library_asset_live(s, id, err);
    vd_db_stmt *st = NULL;
    if (rc == VD_OK)
        rc = vd_db_prepare(s->db,
                           "INSERT INTO asset_vectors (asset_id, model, seq, dim, vector)"
                           " VALUES (?, ?, ?, ?, ?) ON CONFLICT (asset_id, model) DO UPDATE SET"
                           " seq = excluded.seq, dim = excluded.dim, vector = excluded.vector",
                           0, &st, err);
    if (rc == VD_OK) {
        vd_db_bind_int64(st, 1, id);
        vd_db_bind_text(st, 2, model);
        vd_db_bind_int64(st, 3, got);
        vd_db_bind_int64(st, 4, dim);
        if (vd_store_bind_floats(st, 5, v, (size_t)dim) != VD_OK)
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
        else
            rc = vd_db_run(st, "put asset vector", err);
    }
    vd_db_finalize(st);
    free(v);
    rc = vd_store_txn_end(s, owned, rc, err);
    if (rc == VD_OK && seq) *seq = got;
    return rc;
}

/* Reads rows (asset_id, seq, dim, vector) of st into a list. */
static vd_status read_vectors(vd_db_stmt *st, vd_asset_vector **out, size_t *n, vd_error *err)
{
    vd_asset_vector *list = NULL;
    size_t cnt = 0, cap = 0;
    int row = 0;
    vd_status rc;
    while ((rc = vd_db_step(st, &row, "read asset vectors", err)) == VD_OK && row) {
        vd_asset_vector *g = vd_library_grow(list, cnt, &cap, sizeof *list);
        if (!g) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        list = g;
        vd_asset_vector *v = &list[cnt];
        v->asset_id = vd_db_col_int64(st, 0);
        v->seq = vd_db_col_int64(st, 1);
        v->dim = (int)vd_db_col_int64(st, 2);
        v->vector = vd_store_col_floats(st, 3, v->dim > 0 ? (size_t)v->dim : 0);
        if (!v->vector) {
            rc = vd_error_set(err, VD_ERR_DB, "store: the vector of asset %lld is damaged",
                              (long long)v->asset_id);
            break;
        }
        cnt++;
    }
    if (rc != VD_OK) {
        vd_asset_vector_list_free(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}

vd_status vd_store_asset_vectors_since(vd_store *s, const char *model, int64_t after_seq, int limit,
                                       vd_asset_vector **out, size_t *n, vd_error *err)
{
    *out = NULL;
    *n = 0;
    if (!model || !*model) return vd_error_set(err, VD_ERR_INVALID, "empty model name");
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "SELECT v.asset_id, v.seq, v.dim, v.vector FROM asset_vectors v"
                                 " JOIN assets a ON a.id = v.asset_id"
                                 " WHERE v.model = ? AND v.seq > ? AND a.deleted_ms IS NULL"
                                 " ORDER BY v.seq LIMIT ?",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, model);
    vd_db_bind_int64(st, 2, after_seq);
    vd_db_bind_int64(st, 3, vd_library_limit(limit, VD_LIBRARY_LIST_MAX));
    rc = read_vectors(st, out, n, err);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_asset_vector_get(vd_store *s, int64_t id, const char *model,
                                    vd_asset_vector *out, vd_error *err)
{
    memset(out, 0, sizeof *out);
    if (!model || !*model) return vd_error_set(err, VD_ERR_INVALID, "empty model name");
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db,
                                 "SELECT v.asset_id, v.seq, v.dim, v.vector FROM asset_vectors v"
                                 " JOIN assets a ON a.id = v.asset_id"
                                 " WHERE v.asset_id = ? AND v.model = ? AND a.deleted_ms IS NULL",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, id);
    vd_db_bind_text(st, 2, model);
    vd_asset_vector *list = NULL;
    size_t n = 0;
    rc = read_vectors(st, &list, &n, err);
    vd_db_finalize(st);
    if (rc == VD_OK && n == 0)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "asset %lld has no vector of model %s",
                          (long long)id, model);
    if (rc == VD_OK) {
        *out = list[0];
        list[0].vector = NULL;
    }
    vd_asset_vector_list_free(list, n);
    return rc;
}

vd_status vd_store_library_max_seq(vd_store *s, int64_t *seq, vd_error *err)
{
    *seq = 0;
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db, "SELECT seq FROM library_seq WHERE id = 1", VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    int row = 0;
    rc = vd_db_step(st, &row, "read library seq", err);
    if (rc == VD_OK && row) *seq = vd_db_col_int64(st, 0);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_library_removed_since(vd_store *s, int64_t after_seq, int limit,
                                         vd_library_removal **out, size_t *n, vd_error *err)
{
    *out = NULL;
    *n = 0;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db, "SELECT seq, kind, id FROM library_removed WHERE seq > ? ORDER BY seq LIMIT ?",
        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, after_seq);
    vd_db_bind_int64(st, 2, vd_library_limit(limit, VD_LIBRARY_LIST_MAX));
    vd_library_removal *list = NULL;
    size_t cnt = 0, cap = 0;
    int row = 0;
    while ((rc = vd_db_step(st, &row, "read removals", err)) == VD_OK && row) {
        vd_library_removal *g = vd_library_grow(list, cnt, &cap, sizeof *list);
        if (!g) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        list = g;
        const char *k = vd_db_col_text(st, 1);
        list[cnt++] = (vd_library_removal){.seq = vd_db_col_int64(st, 0),
                                           .kind = k && strcmp(k, "face") == 0 ? VD_REMOVED_FACE
                                                                               : VD_REMOVED_ASSET,
                                           .id = vd_db_col_int64(st, 2)};
    }
    vd_db_finalize(st);
    if (rc != VD_OK) {
        free(list);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}
