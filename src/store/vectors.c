/* vectors.c: the embedding and face caches in the store. */
#include "store/vectors.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/store_impl.h"

int vd_sha256_hex_valid(const char *s)
{
    if (!s) return 0;
    size_t n = strspn(s, "0123456789abcdef");
    return n == 64 && s[64] == 0;
}

void vd_embedding_clear(vd_embedding *e)
{
    if (!e) return;
    free(e->vector);
    memset(e, 0, sizeof *e);
}

void vd_embedding_list_free(vd_embedding *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        vd_embedding_clear(&list[i]);
    free(list);
}

void vd_stored_face_clear(vd_stored_face *f)
{
    if (!f) return;
    free(f->vector);
    memset(f, 0, sizeof *f);
}

void vd_stored_face_list_free(vd_stored_face *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        vd_stored_face_clear(&list[i]);
    free(list);
}

/* Floats are stored little-endian whatever the host. */
static void floats_to_le(const float *in, size_t n, unsigned char *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &in[i], 4);
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
}

void vd_store_floats_from_le(const unsigned char *in, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u = 0;
        for (int b = 0; b < 4; b++)
            u |= (uint32_t)in[4 * i + b] << (8 * b);
        memcpy(&out[i], &u, 4);
    }
}

vd_status vd_store_bind_floats(vd_db_stmt *st, int col, const float *v, size_t n)
{
    if (!v || n == 0) return vd_db_bind_null(st, col);
    unsigned char stackbuf[4096];
    unsigned char *buf = 4 * n <= sizeof stackbuf ? stackbuf : malloc(4 * n);
    if (!buf) return VD_ERR_NOMEM;
    floats_to_le(v, n, buf);
    vd_status rc = vd_db_bind_blob(st, col, buf, 4 * n);
    if (buf != stackbuf) free(buf);
    return rc;
}

float *vd_store_col_floats(vd_db_stmt *st, int col, size_t want)
{
    size_t len = 0;
    const unsigned char *b = vd_db_col_blob(st, col, &len);
    if (want == 0 || len != 4 * want) return NULL;
    float *v = malloc(4 * want);
    if (v && b) vd_store_floats_from_le(b, want, v);
    return v;
}

static vd_status check_key(const char *sha256, const char *model, vd_error *err)
{
    if (!vd_sha256_hex_valid(sha256))
        return vd_error_set(err, VD_ERR_INVALID, "not a lowercase hex SHA-256: '%.80s'",
                            sha256 ? sha256 : "(null)");
    if (!model || !*model) return vd_error_set(err, VD_ERR_INVALID, "empty model name");
    return VD_OK;
}

vd_status vd_store_embedding_put(vd_store *s, const char *sha256, const char *model,
                                 const float *vector, int dim, vd_error *err)
{
    const float *vecs[1] = {vector};
    return vd_store_embeddings_put(s, model, 1, &sha256, vecs, dim, err);
}

vd_status vd_store_embeddings_put(vd_store *s, const char *model, size_t n,
                                  const char *const *sha256s, const float *const *vectors, int dim,
                                  vd_error *err)
{
    if (dim <= 0 || dim > (1 << 24))
        return vd_error_set(err, VD_ERR_INVALID, "bad embedding dimension %d", dim);
    for (size_t i = 0; i < n; i++) {
        vd_status rc = check_key(sha256s[i], model, err);
        if (rc != VD_OK) return rc;
        if (!vectors[i]) return vd_error_set(err, VD_ERR_INVALID, "embedding %zu is NULL", i);
    }
    if (n == 0) return VD_OK;
    int owned;
    vd_status rc = vd_store_txn_begin(s, &owned, err);
    if (rc != VD_OK) return rc;
    vd_db_stmt *st;
    if ((rc = vd_db_prepare(s->db,
                            "INSERT INTO embeddings (sha256, model, dim, vector, created_ms)"
                            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha256, model) DO UPDATE SET"
                            " dim = excluded.dim, vector = excluded.vector,"
                            " created_ms = excluded.created_ms",
                            VD_DB_RETRY, &st, err)) != VD_OK)
        return vd_store_txn_end(s, owned, rc, err);
    int64_t now = vd_now_ms();
    for (size_t i = 0; i < n && rc == VD_OK; i++) {
        vd_db_reset(st);
        vd_db_bind_text(st, 1, sha256s[i]);
        vd_db_bind_text(st, 2, model);
        vd_db_bind_int64(st, 3, dim);
        if (vd_store_bind_floats(st, 4, vectors[i], (size_t)dim) != VD_OK) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        vd_db_bind_int64(st, 5, now);
        rc = vd_db_run(st, "put embedding", err);
    }
    vd_db_finalize(st);
    return vd_store_txn_end(s, owned, rc, err);
}

vd_status vd_store_embeddings_get(vd_store *s, const char *model, int dim_wanted, size_t n,
                                  const char *const *sha256s, vd_embedding **out, size_t *nfound,
                                  vd_error *err)
{
    *out = NULL;
    if (nfound) *nfound = 0;
    if (!model || !*model) return vd_error_set(err, VD_ERR_INVALID, "empty model name");
    vd_embedding *list = calloc(n ? n : 1, sizeof *list);
    if (!list) return vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db, "SELECT dim, vector FROM embeddings WHERE sha256 = ? AND model = ?",
                      VD_DB_RETRY, &st, err);
    if (rc != VD_OK) {
        free(list);
        return rc;
    }
    /* One read transaction: a consistent snapshot, and one lock for the batch. */
    int own_read;
    vd_db_read_begin(s->db, &own_read);
    size_t hits = 0;
    for (size_t i = 0; i < n && rc == VD_OK; i++) {
        if (!sha256s[i]) continue;
        vd_db_reset(st);
        vd_db_bind_text(st, 1, sha256s[i]);
        vd_db_bind_text(st, 2, model);
        int row = 0;
        rc = vd_db_step(st, &row, "get embedding", err);
        if (rc != VD_OK || !row) continue;
        int dim = (int)vd_db_col_int64(st, 0);
        if (dim_wanted > 0 && dim != dim_wanted) continue; /* stale: another length */
        float *v = vd_store_col_floats(st, 1, dim > 0 ? (size_t)dim : 0);
        if (!v) {
            rc = vd_error_set(err, VD_ERR_DB, "store: embedding %s/%s is damaged", sha256s[i],
                              model);
            break;
        }
        list[i] = (vd_embedding){.found = 1, .dim = dim, .vector = v};
        hits++;
    }
    vd_db_finalize(st);
    vd_db_read_end(s->db, own_read);
    if (rc != VD_OK) {
        vd_embedding_list_free(list, n);
        return rc;
    }
    *out = list;
    if (nfound) *nfound = hits;
    return VD_OK;
}

/* Puts the scan row of (sha256, model) with n faces, replacing the earlier
 * scan and its faces (the delete cascades). */
static vd_status put_scan(vd_store *s, const char *sha256, const char *model, size_t n,
                          vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db, "DELETE FROM face_scans WHERE sha256 = ? AND model = ?", 0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, sha256);
    vd_db_bind_text(st, 2, model);
    rc = vd_db_run(st, "put faces", err);
    vd_db_finalize(st);
    if (rc != VD_OK) return rc;
    rc = vd_db_prepare(s->db,
                       "INSERT INTO face_scans (sha256, model, n_faces, created_ms)"
                       " VALUES (?, ?, ?, ?)",
                       0, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, sha256);
    vd_db_bind_text(st, 2, model);
    vd_db_bind_int64(st, 3, (int64_t)n);
    vd_db_bind_int64(st, 4, vd_now_ms());
    rc = vd_db_run(st, "put faces", err);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_faces_put(vd_store *s, const char *sha256, const char *model,
                             const vd_stored_face *faces, size_t n, vd_error *err)
{
    vd_status rc = check_key(sha256, model, err);
    if (rc != VD_OK) return rc;
    for (size_t i = 0; i < n; i++) {
        if (faces[i].n_keypoints < 0 || faces[i].n_keypoints > VD_FACE_MAX_KEYPOINTS)
            return vd_error_set(err, VD_ERR_INVALID, "face %zu has %d keypoints (at most %d)", i,
                                faces[i].n_keypoints, VD_FACE_MAX_KEYPOINTS);
        if (faces[i].vector && faces[i].dim <= 0)
            return vd_error_set(err, VD_ERR_INVALID, "face %zu has a vector of dimension %d", i,
                                faces[i].dim);
    }
    int owned;
    if ((rc = vd_store_txn_begin(s, &owned, err)) != VD_OK) return rc;
    vd_db_stmt *st = NULL;
    if ((rc = put_scan(s, sha256, model, n, err)) != VD_OK) goto out;
    if ((rc = vd_db_prepare(s->db,
                            "INSERT INTO faces (sha256, model, idx, x, y, w, h, score,"
                            " keypoints, dim, vector) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            0, &st, err)) != VD_OK)
        goto out;
    for (size_t i = 0; i < n && rc == VD_OK; i++) {
        const vd_stored_face *f = &faces[i];
        vd_db_reset(st);
        vd_db_bind_text(st, 1, sha256);
        vd_db_bind_text(st, 2, model);
        vd_db_bind_int64(st, 3, (int64_t)i);
        for (int k = 0; k < 4; k++)
            vd_db_bind_double(st, 4 + k, f->box[k]);
        vd_db_bind_double(st, 8, f->score);
        vd_status ok = vd_store_bind_floats(st, 9, &f->keypoints[0][0], 2 * (size_t)f->n_keypoints);
        vd_db_bind_int64(st, 10, f->vector ? f->dim : 0);
        if (ok == VD_OK)
            ok = vd_store_bind_floats(st, 11, f->vector, f->vector ? (size_t)f->dim : 0);
        if (ok != VD_OK) {
            rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
            break;
        }
        rc = vd_db_run(st, "put face", err);
    }
out:
    vd_db_finalize(st);
    return vd_store_txn_end(s, owned, rc, err);
}

/* Reads the current row (a face) into *f; VD_ERR_DB when it is damaged. */
static vd_status read_face(vd_db_stmt *st, vd_stored_face *f, const char *sha256, const char *model,
                           vd_error *err)
{
    for (int k = 0; k < 4; k++)
        f->box[k] = (float)vd_db_col_double(st, 2 + k);
    f->score = (float)vd_db_col_double(st, 6);
    size_t kpb = 0;
    const unsigned char *kp = vd_db_col_blob(st, 7, &kpb);
    if (kpb % 8 != 0 || kpb / 8 > VD_FACE_MAX_KEYPOINTS)
        return vd_error_set(err, VD_ERR_DB, "store: keypoints of %s/%s are damaged", sha256, model);
    f->n_keypoints = (int)(kpb / 8);
    for (int k = 0; kp && k < f->n_keypoints; k++) /* row by row: each is its own array */
        vd_store_floats_from_le(kp + 8 * k, 2, f->keypoints[k]);
    int dim = (int)vd_db_col_int64(st, 8);
    if (dim > 0) {
        f->vector = vd_store_col_floats(st, 9, (size_t)dim);
        if (!f->vector)
            return vd_error_set(err, VD_ERR_DB, "store: a face vector of %s/%s is damaged", sha256,
                                model);
        f->dim = dim;
    }
    return VD_OK;
}

vd_status vd_store_faces_get(vd_store *s, const char *sha256, const char *model,
                             vd_stored_face **out, size_t *n, vd_error *err)
{
    *out = NULL;
    *n = 0;
    vd_status rc = check_key(sha256, model, err);
    if (rc != VD_OK) return rc;
    vd_db_stmt *st;
    if ((rc = vd_db_prepare(s->db,
                            "SELECT n_faces, idx, x, y, w, h, score, keypoints, dim, vector"
                            " FROM face_scans LEFT JOIN faces USING (sha256, model)"
                            " WHERE sha256 = ? AND model = ? ORDER BY idx",
                            VD_DB_RETRY, &st, err)) != VD_OK)
        return rc;
    vd_db_bind_text(st, 1, sha256);
    vd_db_bind_text(st, 2, model);
    vd_stored_face *list = NULL;
    size_t cnt = 0, expect = 0;
    int row = 0, scanned = 0;
    while ((rc = vd_db_step(st, &row, "get faces", err)) == VD_OK && row) {
        if (!scanned) {
            scanned = 1;
            expect = (size_t)vd_db_col_int64(st, 0);
            if (expect && !(list = calloc(expect, sizeof *list))) {
                rc = vd_error_set(err, VD_ERR_NOMEM, "store: out of memory");
                break;
            }
        }
        if (vd_db_col_null(st, 1)) continue; /* a scan with no faces */
        if (cnt >= expect) {
            rc = vd_error_set(err, VD_ERR_DB, "store: faces of %s/%s are damaged", sha256, model);
            break;
        }
        if ((rc = read_face(st, &list[cnt++], sha256, model, err)) != VD_OK) break;
    }
    if (rc == VD_OK && !scanned)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND, "no faces cached for %s/%s", sha256, model);
    if (rc == VD_OK && cnt != expect)
        rc = vd_error_set(err, VD_ERR_DB, "store: faces of %s/%s are damaged", sha256, model);
    vd_db_finalize(st);
    if (rc != VD_OK) {
        vd_stored_face_list_free(list, expect);
        return rc;
    }
    *out = list;
    *n = cnt;
    return VD_OK;
}
