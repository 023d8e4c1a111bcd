/* api.c: the API service's wiring: its directories, the handle pools
 * (api_pools.c), media roots, metrics, the route modules and the HTTP server
 * core. Reading requests is api_request.c, shared error answers api_reply.c. */
#include "api/api_impl.h"
#include "core/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/datadir.h"
#include "core/util.h"
#include "core/log.h"
#include "image/decode.h"
#include "infer/client.h"
#include "pipeline/embed.h"
#include "service/people.h"
#include "store/store.h"

/* Every route module, in registration order. Add a line for a new area. */
static vd_status (*const route_modules[])(vd_api *, vd_router *, vd_error *) = {
    vd_api_routes_system, vd_api_routes_jobs,    vd_api_routes_training,  vd_api_routes_infer,
    vd_api_routes_models, vd_api_routes_media,   vd_api_routes_dashboard, vd_api_routes_search,
    vd_api_routes_people, vd_api_routes_library, vd_api_routes_immich,
};

static vd_status make_dir(const char *path, vd_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return vd_error_set(err, VD_ERR_INVALID, "directory name too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return vd_error_set(err, VD_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return vd_error_set(err, VD_ERR_IO, "cannot create %s: %s", buf, strerror(errno));
    return VD_OK;
}

void vd_api_stop(vd_api *api)
{
    if (!api) return;
    vd_http_stop(api->http);
    vd_libindex_stop(api->libindex); /* saves the indexes */
    vd_people_clusterer_free(api->people);
    pthread_mutex_destroy(&api->libindex_mu);
    free((char *)api->libindex_cfg.store_url);
    free((char *)api->libindex_cfg.dir);
    vd_router_free(api->router);
    vd_api_pools_free(api->pools);
    vd_media_roots_free(api->roots);
    vd_http_metrics_free(api->metrics);
    free(api->model_server);
    free(api->upload_dir);
    free(api->library_model);
    free(api->library_face_model);
    free(api);
}

/* Fills what api's fields come from cfg: the data and upload directories, the
 * model server's address (its form checked; no connection is made). */
static vd_status api_fields(vd_api *api, const vd_api_config *cfg, const char *data, vd_error *err)
{
    api->started_ms = vd_now_ms();
    size_t n = strlen(data) + sizeof "/uploads";
    api->upload_dir = malloc(n);
    api->metrics = vd_http_metrics_new();
    api->router = vd_router_new();
    vd_status st = VD_OK;
    api->library_model = vd_strdup(cfg->library_model && *cfg->library_model
                                       ? cfg->library_model
                                       : vd_config_default(VD_CFG_LIBRARY_MODEL));
    api->library_face_model =
        vd_strdup(cfg->library_face_model ? cfg->library_face_model
                                          : vd_config_default(VD_CFG_LIBRARY_FACE_MODEL));
    if (!api->upload_dir || !api->metrics || !api->router || !api->library_model ||
        !api->library_face_model)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    snprintf(api->upload_dir, n, "%s/uploads", data);
    api->immich_public = cfg->immich_ml;
    for (size_t i = 0; i < cfg->nimmich_models; i++)
        if ((st = vd_immich_aliases_parse(cfg->immich_models[i], &api->immich_aliases, err)) !=
            VD_OK)
            return st;
    if (cfg->model_server && *cfg->model_server) {
        vd_infer_client *probe = NULL;
        if ((st = vd_infer_client_new(cfg->model_server, &probe, err)) != VD_OK) return st;
        vd_infer_client_free(probe);
        if (!(api->model_server = vd_strdup(cfg->model_server)))
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    return make_dir(api->upload_dir, err);
}

/* Starts the index owner with the people clusterer as its faces hook (docs/people.md). */
static vd_status owner_start(vd_api *api, vd_error *err)
{
    vd_status st = vd_libindex_start(&api->libindex_cfg, &api->libindex, err);
    if (st == VD_OK && api->people)
        vd_libindex_set_faces_cb(api->libindex, vd_people_faces_hook, api->people);
    return st;
}

vd_libindex *vd_api_libindex(vd_api *api, vd_http_resp *resp)
{
    pthread_mutex_lock(&api->libindex_mu);
    vd_error err;
    vd_status st = VD_OK;
    if (!api->libindex) st = owner_start(api, &err);
    vd_libindex *li = api->libindex;
    pthread_mutex_unlock(&api->libindex_mu);
    if (st != VD_OK && resp) {
        vd_http_add_header(resp, "Retry-After", "1");
        vd_http_reply_error(resp, 503, "index_unavailable", "the library index cannot start: %s",
                            vd_error_text(&err));
    }
    return li;
}

void vd_api_libindex_poke(vd_api *api)
{
    pthread_mutex_lock(&api->libindex_mu);
    vd_libindex_poke(api->libindex);
    pthread_mutex_unlock(&api->libindex_mu);
}

/* Starts the index owner (docs/search.md): the library's image and face
 * models, files under DATA/index. A store that cannot be opened now is not
 * fatal: the first search tries again. */
static vd_status libindex_start(vd_api *api, const char *store_url, const char *data, vd_error *err)
{
    api->libindex_models[0] = api->library_model;
    api->libindex_models[1] = api->library_face_model;
    size_t n = strlen(data) + sizeof "/index";
    char *dir = malloc(n);
    if (dir) snprintf(dir, n, "%s/index", data);
    api->libindex_cfg = (vd_libindex_config){.store_url = vd_strdup(store_url),
                                             .dir = dir,
                                             .image_models = &api->libindex_models[0],
                                             .n_image_models = 1,
                                             .face_models = &api->libindex_models[1],
                                             .n_face_models = *api->library_face_model ? 1 : 0};
    if (!dir || !api->libindex_cfg.store_url)
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = vd_people_clusterer_new(store_url, NULL, &api->people, err);
    if (st != VD_OK) return st;
    vd_error lerr;
    if (owner_start(api, &lerr) != VD_OK)
        VD_WARN("the library index did not start (the first search tries again): %s",
                vd_error_text(&lerr));
    return VD_OK;
}

vd_status vd_api_start(const vd_api_config *cfg, vd_api **out, vd_error *err)
{
    *out = NULL;
    vd_api *api = calloc(1, sizeof *api);
    if (!api) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&api->libindex_mu, NULL);
    const char *data = cfg->data_dir && *cfg->data_dir ? cfg->data_dir : vd_data_dir();
    /* libvips first, before the index owner's and the HTTP threads: its start sets and removes
     * an environment variable (image/decode.h) */
    vd_status st = vd_image_init(NULL, err);
    if (st == VD_OK) st = api_fields(api, cfg, data, err);
    if (st == VD_OK) st = vd_media_roots_new(cfg->media_roots, cfg->nmedia_roots, &api->roots, err);
    int threads = cfg->threads > 0 ? cfg->threads : 4;
    char store_path[4096];
    if (cfg->store_path && *cfg->store_path)
        snprintf(store_path, sizeof store_path, "%s", cfg->store_path);
    else if (cfg->data_dir && *cfg->data_dir && !getenv("VISIOND_STORE"))
        snprintf(store_path, sizeof store_path, "%s/store.db", data);
    else
        vd_store_default_url(store_path, sizeof store_path);
    /* One handle of each kind per HTTP thread: a request holds at most one
     * of each at a time, so no borrower ever waits. */
    vd_api_pools_config pc = {.queue_url = cfg->queue_url,
                              .store_path = store_path,
                              .models_path = cfg->models_path,
                              .model_server = api->model_server,
                              .max = (size_t)threads};
    if (st == VD_OK) st = vd_api_pools_new(&pc, &api->pools, err);
    if (st == VD_OK) st = libindex_start(api, store_path, data, err);
    for (size_t i = 0; st == VD_OK && i < sizeof route_modules / sizeof route_modules[0]; i++)
        st = route_modules[i](api, api->router, err);
    vd_http_config hc = {
        .listen = cfg->listen,
        .token = cfg->token,
        .max_body = cfg->max_body,
        .max_upload = cfg->max_upload,
        .max_uploads = cfg->max_uploads,
        .threads = threads,
        .upload_dir = api->upload_dir,
        .router = api->router,
        .metrics = api->metrics,
    };
    if (st == VD_OK) st = vd_http_start(&hc, &api->http, err);
    if (st != VD_OK) {
        vd_api_stop(api);
        return st;
    }
    *out = api;
    return VD_OK;
}

int vd_api_port(const vd_api *api)
{
    return vd_http_port(api->http);
}
