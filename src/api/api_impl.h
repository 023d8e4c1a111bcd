/* api_impl.h: what the route modules (routes_*.c) share. Only src/api includes it.
 *
 * A route module is one file with one registration function,
 *   vd_status vd_api_routes_AREA(vd_api *api, vd_router *r, vd_error *err);
 * listed in api.c's table. Handlers get the vd_api as their ctx. They borrow
 * the handles a request needs from the api's pools (queue, store,
 * model-server runner and client: api_pools.c) and put them back before they
 * return (never keep one), read the request with api_request.c's helpers
 * (typed fields, query arguments, client paths checked with api->roots,
 * input images), which answer the client themselves when a value is wrong,
 * and answer with the http.h reply helpers and api_reply.c's error answers.
 * The use cases themselves live below the API (service/training.h for
 * training): a route parses, calls, answers. */
#ifndef VD_API_IMPL_H
#define VD_API_IMPL_H

#include <jansson.h>
#include <stdint.h>

#include "api/api.h"
#include "api/http.h"
#include "api/metrics.h"
#include "core/paths.h"
#include "api/router.h"
#include "infer/client.h"
#include "infer/runner.h"
#include "queue/queue.h"
#include "service/immich.h"
#include "service/library_index.h"
#include "store/store.h"
#include <pthread.h>

/* Every handle a request borrows (queue, store, model-server runners and
 * clients), private to api_pools.c. */
typedef struct vd_api_pools vd_api_pools;

struct vd_api {
    vd_api_pools *pools; /* owned */
    vd_media_roots *roots;
    vd_http_metrics *metrics;
    vd_router *router;        /* api.c only */
    vd_http_server *http;     /* api.c only */
    char *model_server;       /* address, or NULL when none is configured */
    char *upload_dir;         /* DATA/uploads */
    char *library_model;      /* the photo library's image model */
    char *library_face_model; /* its face model ("" = none) */
    int64_t started_ms;
    int immich_public;                /* GET /ping, POST /predict without the token */
    vd_immich_aliases immich_aliases; /* operator-given Immich model names */
    /* The library's index owner (service/library_index.h), started with the
     * api; when the store could not be opened then, started again by the
     * first request that needs it (vd_api_libindex). */
    pthread_mutex_t libindex_mu;
    vd_libindex *libindex;
    vd_libindex_config libindex_cfg; /* strings owned: store_url, dir */
    const char *libindex_models[2];  /* library_model, library_face_model */
    /* Places new faces into people (service/people.h): the owner's faces hook. */
    struct vd_people_clusterer *people;
};

/* Route modules. */
vd_status vd_api_routes_system(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_jobs(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_models(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_training(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_infer(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_dashboard(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_media(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_library(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_immich(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_people(vd_api *api, vd_router *r, vd_error *err);
vd_status vd_api_routes_search(vd_api *api, vd_router *r, vd_error *err);

/* The api's index owner, started now when it was not yet; NULL after
 * answering 503 index_unavailable when it cannot start (the store is down). */
vd_libindex *vd_api_libindex(vd_api *api, vd_http_resp *resp);

/* Asks the index owner to catch up now (after the api changed the library). */
void vd_api_libindex_poke(vd_api *api);

/* Returns 1 when an If-None-Match header value lists etag (a quoted entity
 * tag; "W/" prefixes are ignored) or is "*"; 0 for NULL or no match. */
int vd_api_etag_matches(const char *if_none_match, const char *etag);

/* Returns the media type ("image/png", ...) sniffed from an image file's first
 * n bytes (JPEG, PNG, GIF, WebP, BMP, TIFF, AVIF, HEIF), or NULL when the bytes
 * are none of those (routes_media.c; shared with its unit test). */
const char *vd_api_sniff_image(const unsigned char *bytes, size_t n);

/* ---- borrowing handles (api_pools.c) ---- */

/* What the pools are made from (strings copied). */
typedef struct {
    const char *queue_url;
    const char *store_path;
    const char *models_path;  /* NULL = ask the model server */
    const char *model_server; /* NULL = none: no runner or client pools */
    size_t max;               /* handles of each kind */
} vd_api_pools_config;

/* Creates the pools (nothing is opened yet: each handle on first need). */
vd_status vd_api_pools_new(const vd_api_pools_config *cfg, vd_api_pools **out, vd_error *err);

/* Closes every pooled handle and frees the pools (all handles must be back). NULL is fine. */
void vd_api_pools_free(vd_api_pools *p);

/* Each _put takes the status of the handle's last failed call (VD_OK when
 * none): after a connection, I/O, database, protocol or timeout error the
 * handle is closed, and a fresh one is opened next time. NULL is fine. */

/* Borrows a queue handle; on failure answers 503 backend_unavailable and
 * returns NULL. Return it with vd_api_queue_put. */
vd_queue *vd_api_queue_get(vd_api *api, vd_http_resp *resp);

void vd_api_queue_put(vd_api *api, vd_queue *q, vd_status last);

/* Borrows a queue handle without answering: for handlers that go on without one. */
vd_status vd_api_queue_borrow(vd_api *api, vd_queue **q, vd_error *err);

/* Borrows a store handle (opened on first need, reused by later requests;
 * one whose file was deleted or replaced is reopened); on failure answers
 * 503 store_unavailable and returns NULL. Return it with vd_api_store_put,
 * giving the status of the last store call that failed (VD_OK when none
 * did): a broken one is closed. An open transaction is rolled back. NULL
 * is fine. */
vd_store *vd_api_store_get(vd_api *api, vd_http_resp *resp);
void vd_api_store_put(vd_api *api, vd_store *s, vd_status last);

/* Borrows a model-server runner (infer/runner_client.h: its connection and
 * metadata cache are reused by later requests); NULL after answering 503
 * model_server_unavailable when none is configured. Return it with
 * vd_api_runner_put and the status of its last failed call (VD_OK when
 * none): a broken one is freed. NULL is fine. */
vd_runner *vd_api_runner_get(vd_api *api, vd_http_resp *resp);
void vd_api_runner_put(vd_api *api, vd_runner *r, vd_status last);

/* Borrows a pooled model-server client (one connection); NULL when no model
 * server is configured or the client cannot be made, after answering 503
 * model_server_unavailable. Return it with vd_api_infer_put, giving the
 * status of its last call. */
vd_infer_client *vd_api_infer_get(vd_api *api, vd_http_resp *resp);
void vd_api_infer_put(vd_api *api, vd_infer_client *c, vd_status last);

/* ---- reading a request (api_request.c) ---- */

/* Each helper returns 1 when the value is fine (or absent and optional) and
 * 0 after answering resp with the error: 400 invalid_type for a wrong JSON
 * type, 422 missing_field / invalid_value / unknown_field otherwise.
 * An absent optional field leaves *out unchanged. */
int vd_api_only_fields(vd_http_resp *resp, json_t *obj, const char *const *allowed);
int vd_api_get_string(vd_http_resp *resp, json_t *obj, const char *key, int required,
                      const char **out);
int vd_api_get_int(vd_http_resp *resp, json_t *obj, const char *key, int64_t min, int64_t max,
                   int64_t *out);
int vd_api_get_bool(vd_http_resp *resp, json_t *obj, const char *key, int *out);

/* Reads an integer query argument within [min, max]; 400 invalid_parameter otherwise. */
int vd_api_query_int(vd_http_resp *resp, const vd_http_req *req, const char *name, int64_t min,
                     int64_t max, int64_t *out);

/* Checks a client-given path against the media roots (paths.h). Returns the
 * resolved path (owned: free()) or NULL after answering 422 with the
 * problem's name as code (path_outside_media_roots, path_symlink_escape, ...)
 * or 404 path_not_found. */
char *vd_api_check_path(vd_api *api, vd_http_resp *resp, const char *path, vd_path_want want);

/* Input images of a request: "paths" of a JSON body (each checked against
 * the media roots, resolved) or the file parts of a multipart upload. */
typedef struct {
    size_t n;
    char **paths; /* owned: what to open (resolved path, or the upload's temporary file) */
    char **names; /* owned: what to call it in answers (the client's path or file name) */
    /* The roots to open paths under (vd_embed_opts.roots): the API's for
     * client paths, NULL for uploads (temporary files of the API's own). */
    const vd_media_roots *roots;
} vd_api_inputs;

/* Fills *in from req (1) or answers resp with the error (0): missing or empty
 * paths 422 no_paths, more than max 413 too_many_paths, a non-string 400
 * invalid_type, a refused path as vd_api_reply_path_error. */
int vd_api_inputs_get(vd_api *api, vd_http_req *req, vd_http_resp *resp, size_t max,
                      vd_api_inputs *in);
void vd_api_inputs_free(vd_api_inputs *in);

/* Returns a multipart plain field's value, or NULL. */
const char *vd_api_form_value(const vd_http_req *req, const char *name);

/* ---- shared error answers (api_reply.c) ---- */

/* Answers a failed model-server call: conn/timeout -> 503
 * model_server_unavailable, busy -> 429 model_server_busy, not_found -> 404
 * model_not_found, others as vd_http_reply_status. */
void vd_api_reply_infer_error(vd_http_resp *resp, vd_status st, const vd_error *err);

/* Answers a failed queue call: not_found -> 404 job_not_found, state -> 409
 * invalid_state, invalid -> 422 invalid_value, busy/conn/db -> 503
 * backend_unavailable (Retry-After), others 500. */
void vd_api_reply_queue_error(vd_http_resp *resp, vd_status st, const vd_error *err);

/* Answers a failed embedding call (pipeline/embed.h): an unknown model ->
 * 422 unknown_model, the store failing -> 503 store_unavailable, the rest as
 * vd_api_reply_infer_error. */
void vd_api_reply_embed_error(vd_http_resp *resp, vd_status st, const vd_error *err);

/* Answers a client path refused by the media roots as vd_api_check_path
 * does (path_not_found 404, every other problem 422 with its name as code),
 * the message saying which field (what) it came from. */
void vd_api_reply_path_error(vd_http_resp *resp, const char *what, vd_path_problem problem,
                             const vd_error *err);

#endif
