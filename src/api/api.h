/* api.h: the visiond HTTP API service: configuration -> a running server.
 *
 * vd_api_start opens what the routes need (pools of queue, store and
 * model-server handles, the media roots, the metrics registry), registers every route module
 * (see api_impl.h: one routes_*.c file per area) and starts the HTTP server core (http.h).
 * docs/api.md describes every route. */
#ifndef VD_API_API_H
#define VD_API_API_H

#include <stddef.h>

#include "core/err.h"

typedef struct {
    const char *listen;             /* "127.0.0.1:8080" */
    const char *queue_url;          /* "sqlite:PATH" or "redis://..." */
    const char *model_server;       /* model-server address (infer/client.h); NULL = none */
    const char *data_dir;           /* runtime data; uploads go to DATA/uploads */
    const char *token;              /* bearer token or NULL (loopback only) */
    const char *const *media_roots; /* directories client paths must lie under */
    size_t nmedia_roots;
    size_t max_body;         /* bytes; 0 = 1 MiB */
    size_t max_upload;       /* bytes; 0 = 64 MiB */
    int max_uploads;         /* concurrent uploads; 0 = 4 */
    int threads;             /* HTTP threads (and pooled handles of each kind); 0 = 4 */
    const char *store_path;  /* the store (sessions, embeddings); NULL = DATA/store.db */
    const char *models_path; /* model metadata directories; NULL = ask the model server */
    /* the photo library's models (docs/library.md); NULL = the config's defaults */
    const char *library_model;
    const char *library_face_model;   /* "" = no faces */
    int immich_ml;                    /* Immich's GET /ping and POST /predict need no token */
    const char *const *immich_models; /* "NAME:TYPE=MODEL[,...]" items (docs/immich.md) */
    size_t nimmich_models;
} vd_api_config;

typedef struct vd_api vd_api;

/* Starts the API. Fails when the queue cannot be opened, a media root is not
 * a directory, the data directory cannot be created, or the server cannot
 * listen (see vd_http_start). *out is stopped with vd_api_stop. */
vd_status vd_api_start(const vd_api_config *cfg, vd_api **out, vd_error *err);

/* Returns the port the server listens on. */
int vd_api_port(const vd_api *api);

/* Stops the server (in-flight requests finish) and frees everything. */
void vd_api_stop(vd_api *api);

#endif
