/* uploads.c: uploaded examples kept in the store as content-addressed blobs
 * (service/training.h, store/blobs.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/paths.h"
#include "service/training.h"

vd_status vd_svc_uploads_keep(vd_store *store, vd_svc_examples *ex, const char *const *names,
                              const char **why, vd_error *err)
{
    vd_media_limits lim = {.max_bytes = VD_BLOB_MAX_BYTES};
    for (size_t i = 0; i < ex->n; i++) {
        const char *name = names ? names[i] : NULL;
        uint8_t *data = NULL;
        size_t len = 0;
        vd_error rerr;
        /* our own temporary file: no media roots */
        vd_status st = vd_media_read(NULL, ex->v[i].path, &lim, &data, &len, NULL, &rerr);
        if (st == VD_ERR_LIMIT) {
            vd_error_set(err, st, "uploaded file %zu (%.100s): larger than %zu bytes", i,
                         name ? name : "", (size_t)VD_BLOB_MAX_BYTES);
            if (why) *why = "file_too_large";
            return st;
        }
        if (st != VD_OK) {
            vd_error_set(err, st, "uploaded file %zu (%.100s): %s", i, name ? name : "",
                         vd_error_text(&rerr));
            if (why) *why = "store";
            return st;
        }
        char sha[VD_SHA256_HEX_LEN + 1];
        st = vd_store_blob_put(store, data, len, sha, NULL, err);
        free(data);
        if (st != VD_OK) {
            if (why) *why = "store";
            return st;
        }
        char *ref = vd_blob_ref_new(sha, name);
        if (!ref) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        free(ex->v[i].path);
        ex->v[i].path = ref;
        memcpy(ex->v[i].sha256, sha, sizeof ex->v[i].sha256);
    }
    return VD_OK;
}

vd_status vd_svc_uploads_gc(vd_store *store, size_t *removed, vd_error *err)
{
    return vd_store_blobs_gc(store, VD_BLOB_GC_GRACE_MS, removed, err);
}
