/* blobs.c: content-addressed files in the store (store/blobs.h), written once
 * for both backends through store_db.h. */
#include "store/blobs.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/store_impl.h"

int vd_blob_ref_parse(const char *path, char sha[VD_SHA256_HEX_LEN + 1])
{
    size_t np = strlen(VD_BLOB_REF_PREFIX);
    if (!path || strncmp(path, VD_BLOB_REF_PREFIX, np) != 0) return 0;
    const char *h = path + np;
    if (strspn(h, "0123456789abcdef") != VD_SHA256_HEX_LEN) return 0;
    if (h[VD_SHA256_HEX_LEN] != '\0' && h[VD_SHA256_HEX_LEN] != '/') return 0;
    memcpy(sha, h, VD_SHA256_HEX_LEN);
    sha[VD_SHA256_HEX_LEN] = '\0';
    return 1;
}

char *vd_blob_ref_new(const char *sha, const char *name)
{
    size_t nl = name ? strlen(name) : 0;
    if (nl > VD_BLOB_NAME_MAX) nl = VD_BLOB_NAME_MAX;
    size_t np = strlen(VD_BLOB_REF_PREFIX);
    char *r = malloc(np + VD_SHA256_HEX_LEN + 1 + nl + 1);
    if (!r) return NULL;
    memcpy(r, VD_BLOB_REF_PREFIX, np);
    memcpy(r + np, sha, VD_SHA256_HEX_LEN);
    size_t o = np + VD_SHA256_HEX_LEN;
    if (nl) {
        r[o++] = '/';
        for (size_t i = 0; i < nl; i++) {
            unsigned char c = (unsigned char)name[i];
            r[o++] = c == '/' || c < 0x20 || c == 0x7f ? '_' : (char)c;
        }
    }
    r[o] = '\0';
    return r;
}

/* Runs an INSERT ... DO NOTHING (insert) or the UPDATE of put_ms: *changed
 * is 1 when a row was written. */
static vd_status put_step(vd_store *s, int insert, const char *sha, const void *data, size_t len,
                          int64_t now, int *changed, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db,
                      insert ? "INSERT INTO blobs (sha256, size, data, put_ms) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT (sha256) DO NOTHING"
                             : "UPDATE blobs SET put_ms = ? WHERE sha256 = ?",
                      VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    if (insert) {
        vd_db_bind_text(st, 1, sha);
        vd_db_bind_int64(st, 2, (int64_t)len);
        vd_db_bind_blob(st, 3, data, len); /* an empty file: NULL, read back as 0 bytes */
        vd_db_bind_int64(st, 4, now);
    } else {
        vd_db_bind_int64(st, 1, now);
        vd_db_bind_text(st, 2, sha);
    }
    rc = vd_db_run(st, insert ? "put blob" : "refresh blob", err);
    *changed = rc == VD_OK && vd_db_changes(st) > 0;
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_blob_put(vd_store *s, const void *data, size_t len,
                            char sha[VD_SHA256_HEX_LEN + 1], int *added, vd_error *err)
{
    if (added) *added = 0;
    if (len > VD_BLOB_MAX_BYTES)
        return vd_error_set(err, VD_ERR_LIMIT, "file too large to keep: %zu > %zu bytes", len,
                            (size_t)VD_BLOB_MAX_BYTES);
    uint8_t dig[VD_SHA256_LEN];
    vd_sha256(data, len, dig);
    vd_sha256_hex(dig, sha);
    /* Both steps are safe to run twice. A GC may delete a kept row between
     * the insert that found it and the refresh: then insert again. */
    for (int tries = 0; tries < 3; tries++) {
        int64_t now = vd_now_ms();
        int changed = 0;
        vd_status rc = put_step(s, 1, sha, data, len, now, &changed, err);
        if (rc != VD_OK) return rc;
        if (changed) {
            if (added) *added = 1;
            return VD_OK;
        }
        if ((rc = put_step(s, 0, sha, NULL, 0, now, &changed, err)) != VD_OK) return rc;
        if (changed) return VD_OK;
    }
    return vd_error_set(err, VD_ERR_DB, "put blob %.12s: deleted while it was put, 3 times", sha);
}

vd_status vd_store_blob_get(vd_store *s, const char *sha, size_t max_bytes, uint8_t **data,
                            size_t *len, vd_error *err)
{
    *data = NULL;
    *len = 0;
    if (!max_bytes) max_bytes = VD_BLOB_MAX_BYTES;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(s->db, "SELECT size, data FROM blobs WHERE sha256 = ?",
                                 VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_text(st, 1, sha);
    int row = 0;
    rc = vd_db_step(st, &row, "get blob", err);
    if (rc == VD_OK && !row)
        rc = vd_error_set(err, VD_ERR_NOT_FOUND,
                          "uploaded file %s%.64s is not in the store (deleted, or never uploaded)",
                          VD_BLOB_REF_PREFIX, sha);
    size_t n = 0;
    const void *b = rc == VD_OK ? vd_db_col_blob(st, 1, &n) : NULL;
    if (rc == VD_OK && (int64_t)n != vd_db_col_int64(st, 0))
        rc = vd_error_set(err, VD_ERR_DB, "blob %.12s: %zu bytes stored, %lld expected", sha, n,
                          (long long)vd_db_col_int64(st, 0));
    if (rc == VD_OK && n > max_bytes)
        rc = vd_error_set(err, VD_ERR_LIMIT, "file too large: %zu > %zu bytes", n, max_bytes);
    if (rc == VD_OK && !(*data = malloc(n ? n : 1)))
        rc = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (rc == VD_OK) {
        if (n) memcpy(*data, b, n);
        *len = n;
    }
    vd_db_finalize(st);
    if (rc != VD_OK) return rc;
    uint8_t dig[VD_SHA256_LEN];
    char hex[VD_SHA256_HEX_LEN + 1];
    vd_sha256(*data, *len, dig);
    vd_sha256_hex(dig, hex);
    if (strcmp(hex, sha) != 0) {
        free(*data);
        *data = NULL;
        *len = 0;
        return vd_error_set(err, VD_ERR_DB, "blob %.12s: the stored bytes hash to %.12s", sha, hex);
    }
    return VD_OK;
}

vd_status vd_store_blobs_gc(vd_store *s, int64_t grace_ms, size_t *removed, vd_error *err)
{
    if (removed) *removed = 0;
    vd_db_stmt *st;
    vd_status rc = vd_db_prepare(
        s->db,
        "DELETE FROM blobs WHERE put_ms <= ? AND NOT EXISTS "
        "(SELECT 1 FROM examples e WHERE e.sha256 = blobs.sha256 AND e.path LIKE 'blob:%')"
        " AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.sha256 = blobs.sha256"
        " AND a.path LIKE 'blob:%' AND a.deleted_ms IS NULL)",
        VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    vd_db_bind_int64(st, 1, vd_now_ms() - (grace_ms > 0 ? grace_ms : 0));
    rc = vd_db_run(st, "collect blobs", err);
    if (rc == VD_OK && removed) *removed = (size_t)vd_db_changes(st);
    vd_db_finalize(st);
    return rc;
}

vd_status vd_store_blobs_count(vd_store *s, int64_t *n, int64_t *bytes, vd_error *err)
{
    vd_db_stmt *st;
    vd_status rc =
        vd_db_prepare(s->db, "SELECT count(*), CAST(coalesce(sum(size), 0) AS BIGINT) FROM blobs",
                      VD_DB_RETRY, &st, err);
    if (rc != VD_OK) return rc;
    int row = 0;
    rc = vd_db_step(st, &row, "count blobs", err);
    if (rc == VD_OK && n) *n = row ? vd_db_col_int64(st, 0) : 0;
    if (rc == VD_OK && bytes) *bytes = row ? vd_db_col_int64(st, 1) : 0;
    vd_db_finalize(st);
    return rc;
}
