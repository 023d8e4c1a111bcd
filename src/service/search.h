/* search.h: the library's search and duplicates use cases, once, for every
 * adapter (POST /search, GET /duplicates, `visiond search`; docs/search.md).
 *
 * Both read the index owner (service/library_index.h) and the store (paths,
 * deleted assets): a deleted asset is never returned, even in the moment
 * before the owner saw its removal (every hit is read back from the store).
 *
 * Refusals. Every function returns a vd_status and fills err; when the
 * request broke a rule, *why is its static snake_case name, the same for
 * every adapter (the API answers it as the error code, with the HTTP status
 * of vd_svc_search_http_status):
 *   one_query            none or more than one of path, asset_id, vector, upload, text (422)
 *   text_unsupported     "text": text search needs a CLIP text model (422)
 *   k_out_of_range       k not in 1..VD_VINDEX_MAX_K (422)
 *   invalid_vector       a value NaN or infinite, or the zero vector (422)
 *   dimension_mismatch   a vector of another length than the model's index (422)
 *   no_index             the library has no vector of the model yet (404)
 *   asset_not_found      unknown or deleted asset_id (404)
 *   asset_not_indexed    the asset has no vector of the model (yet) (409)
 *   max_distance_out_of_range  not in [0, VD_SVC_DUP_MAX_DISTANCE] (422)
 *   unreadable, not_an_image, file_too_large, path_not_found   the query file (422/413/404)
 *   unknown_model, model_task_mismatch   the model server's answer for a query file (422)
 * A failure that is not a refusal sets *why to the backend: "store",
 * "model_server" or "index". */
#ifndef VD_SERVICE_SEARCH_H
#define VD_SERVICE_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/paths.h"
#include "infer/runner.h"
#include "service/library_index.h"
#include "store/store.h"

#define VD_SVC_SEARCH_DEFAULT_K 20
/* Duplicates: pairs among the nearest VD_SVC_DUP_PER_VECTOR of each vector
 * (as Immich), within a cosine distance (1 - cosine similarity) of at most
 * max_distance: default calibrated by bench/search/duplicates.sh
 * (docs/search.md). */
#define VD_SVC_DUP_PER_VECTOR           64
#define VD_SVC_DUP_DEFAULT_MAX_DISTANCE 0.01
#define VD_SVC_DUP_MAX_DISTANCE         0.5

/* What to search with: exactly one of path, asset_id (> 0), vector, text. */
typedef struct {
    const char *model;           /* NULL = the default image model (vd_embed_default_model) */
    int64_t k;                   /* 0 = VD_SVC_SEARCH_DEFAULT_K */
    const char *folder;          /* NULL or "" = anywhere; else that folder or below */
    const char *path;            /* a file to embed: checked by the adapter (or an upload) */
    const vd_media_roots *roots; /* roots to open path under (NULL: an upload) */
    int64_t asset_id;
    float *vector; /* the caller's, normalised in place */
    size_t nvector;
    int has_vector; /* "vector" was given (even empty) */
    const char *text;
} vd_svc_search_req;

typedef struct {
    int64_t asset_id;
    char *path;  /* owned */
    float score; /* cosine similarity */
} vd_svc_search_hit;

/* model, or the library's image model when NULL or "" (vd_svc_library_model). */
const char *vd_svc_search_model(const char *model);

void vd_svc_search_hits_free(vd_svc_search_hit *hits, size_t n);

/* The HTTP status of a refusal (why) of this module; 0 for a backend name. */
int vd_svc_search_http_status(const char *why);

/* Searches the library's index of req->model: *hits (n, best first, at
 * most k) of live assets within req->folder. runner is needed for a path
 * only (may be NULL otherwise). */
vd_status vd_svc_search(vd_libindex *li, vd_store *store, vd_runner *runner,
                        const vd_svc_search_req *req, vd_svc_search_hit **hits, size_t *n,
                        const char **why, vd_error *err);

/* ---- duplicates ---- */

typedef struct {
    int64_t a, b;
    float distance; /* 1 - cosine similarity */
} vd_svc_dup_pair;

typedef struct {
    size_t n;
    int64_t *ids; /* owned: its assets, ascending */
    char **paths; /* owned: ids[i]'s path */
    size_t npairs;
    vd_svc_dup_pair *pairs; /* owned: the pairs that joined them (a < b) */
} vd_svc_dup_group;

void vd_svc_dup_groups_free(vd_svc_dup_group *g, size_t n);

/* Groups of near-identical live assets of model (NULL = default): the
 * connected components of the pairs within max_distance (< 0 = default)
 * among each vector's VD_SVC_DUP_PER_VECTOR nearest. Largest group first
 * (ties: smallest id first). */
vd_status vd_svc_duplicates(vd_libindex *li, vd_store *store, const char *model,
                            double max_distance, vd_svc_dup_group **groups, size_t *n,
                            const char **why, vd_error *err);

#endif
