/* library.h: the photo library's use case, once, for every adapter
 * (docs/library.md): registering images as assets and enqueueing the one
 * `index` job that embeds them and finds their faces. POST /assets (src/api)
 * and `visiond index FOLDER` (src/cli) are thin adapters over
 * vd_svc_assets_register.
 *
 * Input: client paths, or one folder (its image files, recursively, in name
 * order; hidden files and folders left out), or uploaded files (the
 * adapter's temporary files: kept in the store as blobs, store/blobs.h, and
 * registered as "blob:SHA/NAME"). Every path is checked with the media roots
 * when the adapter has some (core/paths.h; the worker checks again when it
 * opens the file), then read and hashed (SHA-256): the same bytes are one
 * asset (store/library.h). One index job (VD_SVC_INDEX_RETRIES retries) is
 * enqueued for the assets still pending (or indexed without a vector of the
 * library's model), with the library's models.
 *
 * Per-file errors (a path outside the roots, not found, not a regular file,
 * too large, unreadable) are outcomes with their code (the path problem's
 * name, core/paths.h: path_outside_media_roots, path_not_found,
 * path_not_file, file_too_large, ...), and the rest go on. The request as a
 * whole is refused, with *why (static snake_case, the API's error code and
 * the CLI's message) set:
 *   empty_list        no path, a folder without image files, no upload
 *   too_many_paths    more than VD_SVC_LIBRARY_MAX_FILES (VD_ERR_LIMIT)
 *   paths_and_folder  more than one of paths, folder, uploads
 *   path_*            the folder refused by the roots check
 *   unreadable_folder the folder (or a folder below it) cannot be listed
 *   (a file's code)   every file had a per-file error: the request fails
 *                     with the first one's code and message (the outcomes
 *                     say the rest), e.g. path_outside_media_roots
 * and the backends: "store", "queue". */
#ifndef VD_SERVICE_LIBRARY_H
#define VD_SERVICE_LIBRARY_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/paths.h"
#include "core/util.h"
#include "queue/queue.h"
#include "store/library.h"

#define VD_SVC_LIBRARY_MAX_FILES  10000 /* paths, folder files or uploads per request */
#define VD_SVC_INDEX_RETRIES      3     /* retries of an index job */
#define VD_SVC_INDEX_RETRY_MS     2000  /* its first retry's back-off */
#define VD_SVC_LIBRARY_MAX_OUTPUT 100   /* outcomes listed per kind in a reply (the CLI's too) */

/* Where registering works (borrowed). */
typedef struct {
    vd_store *store;
    vd_queue *queue;
    const vd_media_roots *roots; /* NULL: paths as they are (the CLI without --media-root) */
    const char *model;           /* the library's image model (config library_model) */
    const char *face_model;      /* its face model (library_face_model; "" = no faces) */
} vd_svc_library;

/* One request: exactly one of paths, folder, uploads (borrowed). */
typedef struct {
    const char *const *paths;
    size_t npaths;
    const char *folder;
    const char *const *uploads; /* temporary files of the upload */
    const char *const *names;   /* their client names (may be NULL, or hold NULLs) */
    size_t nuploads;
} vd_svc_assets_req;

/* What became of one file. */
typedef struct {
    char *path;       /* owned: as the client named it (an upload: its name) */
    int64_t asset_id; /* 0 when it had an error */
    int existed;      /* the same bytes were an asset already */
    const char *code; /* static: NULL, or the per-file error's code */
    char *error;      /* owned: the message, with code */
} vd_svc_asset_outcome;

typedef struct {
    vd_svc_asset_outcome *v; /* owned, n of them, in the request's order */
    size_t n, cap;
    size_t added, known, failed; /* outcomes by kind */
    size_t queued;               /* assets the job indexes */
    char job_id[VD_ID_LEN + 1];  /* "" when nothing needed indexing */
} vd_svc_assets_result;

void vd_svc_assets_result_free(vd_svc_assets_result *r);

/* Registers the request's files (see above) into *out (zeroed first; free
 * with vd_svc_assets_result_free, also on failure) and enqueues the index
 * job of those to index. */
vd_status vd_svc_assets_register(const vd_svc_library *lib, const vd_svc_assets_req *req,
                                 vd_svc_assets_result *out, const char **why, vd_error *err);

/* Deletes asset id (store/library.h: soft delete, its vectors and faces
 * gone) and then the uploaded files nothing refers to any more (after
 * VD_BLOB_GC_GRACE_MS; a failure there is left for next time).
 * VD_ERR_NOT_FOUND for an unknown or deleted asset. */
vd_status vd_svc_asset_delete(vd_store *store, int64_t id, vd_error *err);

/* The library's models when the adapter is not told (the config's
 * defaults: "mobilenet_v2", "faceres"). */
const char *vd_svc_library_model(void);
const char *vd_svc_library_face_model(void);

#endif
