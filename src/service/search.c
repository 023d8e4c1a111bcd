/* search.c: search and duplicates over the library's indexes (service/search.h). */
#include "service/search.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "pipeline/embed.h"
#include "pipeline/text_embed.h"
#include "service/library.h"
#include "store/library.h"

#define MAX_RETRIES 3 /* searches again when hits were deleted meanwhile */

static const struct {
    const char *why;
    int status;
} refusals[] = {
    {"one_query", 422},       {"text_unsupported", 422},   {"k_out_of_range", 422},
    {"invalid_vector", 422},  {"dimension_mismatch", 422}, {"no_index", 404},
    {"asset_not_found", 404}, {"asset_not_indexed", 409},  {"max_distance_out_of_range", 422},
    {"unreadable", 422},      {"not_an_image", 422},       {"file_too_large", 413},
    {"path_not_found", 404},  {"unknown_model", 422},      {"model_task_mismatch", 422},
    {"invalid_text", 422},
};

int vd_svc_search_http_status(const char *why)
{
    for (size_t i = 0; why && i < sizeof refusals / sizeof refusals[0]; i++)
        if (strcmp(refusals[i].why, why) == 0) return refusals[i].status;
    return 0;
}

const char *vd_svc_search_model(const char *model)
{
    return model && *model ? model : vd_svc_library_model();
}

void vd_svc_search_hits_free(vd_svc_search_hit *hits, size_t n)
{
    for (size_t i = 0; hits && i < n; i++)
        free(hits[i].path);
    free(hits);
}

static vd_status refuse(const char **why, const char *name, vd_status st)
{
    if (why) *why = name;
    return st;
}

/* ---- the query vector ---- */

/* Embeds the query file through the one embedding path (cache included). */
static vd_status query_from_path(vd_store *store, vd_runner *runner, const vd_svc_search_req *req,
                                 const char *model, float **vec, int *dim, const char **why,
                                 vd_error *err)
{
    vd_status st = vd_embed_check_model(runner, model, VD_EMBED_IMAGE, NULL, err);
    if (st == VD_ERR_NOT_FOUND) return refuse(why, "unknown_model", st);
    if (st == VD_ERR_UNSUPPORTED) return refuse(why, "model_task_mismatch", st);
    if (st != VD_OK) return refuse(why, "model_server", st);
    vd_embed_opts o = {.runner = runner,
                       .store = store,
                       .model = model,
                       .mode = VD_EMBED_IMAGE,
                       .roots = req->roots,
                       .want_vectors = 1};
    vd_embed_item item;
    const char *paths[1] = {req->path};
    st = vd_embed_paths(&o, paths, 1, &item, dim, NULL, err);
    if (st != VD_OK) {
        vd_embed_items_clear(&item, 1);
        return refuse(why, st == VD_ERR_DB ? "store" : "model_server", st);
    }
    if (item.status != VD_OK) {
        st = item.status;
        vd_error_set(err, st, "%s", item.error ? item.error : "cannot embed the file");
        vd_embed_items_clear(&item, 1);
        return refuse(why,
                      st == VD_ERR_NOT_FOUND ? "path_not_found"
                      : st == VD_ERR_LIMIT   ? "file_too_large"
                      : st == VD_ERR_IO      ? "unreadable"
                                             : "not_an_image",
                      st);
    }
    *vec = item.vector;
    item.vector = NULL;
    vd_embed_items_clear(&item, 1);
    return VD_OK;
}

/* The stored vector of an asset (asset_not_found, asset_not_indexed). */
static vd_status query_from_asset(vd_store *store, int64_t id, const char *model, float **vec,
                                  int *dim, const char **why, vd_error *err)
{
    vd_asset_vector v;
    memset(&v, 0, sizeof v);
    vd_status st = vd_store_asset_vector_get(store, id, model, &v, err);
    if (st == VD_OK) {
        *vec = v.vector;
        *dim = v.dim;
        return VD_OK;
    }
    if (st != VD_ERR_NOT_FOUND) return refuse(why, "store", st);
    vd_asset a;
    memset(&a, 0, sizeof a);
    st = vd_store_asset_get(store, id, 0, &a, err);
    vd_asset_clear(&a);
    if (st == VD_ERR_NOT_FOUND) {
        vd_error_set(err, st, "asset %lld not found", (long long)id);
        return refuse(why, "asset_not_found", st);
    }
    if (st != VD_OK) return refuse(why, "store", st);
    vd_error_set(err, VD_ERR_STATE, "asset %lld has no %s vector (yet): it is not indexed",
                 (long long)id, model);
    return refuse(why, "asset_not_indexed", VD_ERR_STATE);
}

/* Embeds the query text with model's text tower (pipeline/text_embed.h: the
 * one text path, its cache included): text_unsupported when model has no
 * text tower, the vector in the image index's space otherwise. */
static vd_status query_from_text(vd_store *store, vd_runner *runner, const char *text,
                                 const char *model, float **vec, int *dim, const char **why,
                                 vd_error *err)
{
    vd_text_opts o = {.runner = runner, .store = store, .model = model};
    vd_text_item item;
    const char *texts[1] = {text};
    vd_status st = vd_text_embed(&o, texts, 1, &item, dim, NULL, err);
    if (st == VD_OK) {
        *vec = item.vector;
        item.vector = NULL;
        vd_text_items_clear(&item, 1);
        return VD_OK;
    }
    if (st == VD_ERR_UNSUPPORTED) return refuse(why, "text_unsupported", st);
    if (st == VD_ERR_NOT_FOUND) return refuse(why, "unknown_model", st);
    if (st == VD_ERR_INVALID || st == VD_ERR_LIMIT) return refuse(why, "invalid_text", st);
    return refuse(why, st == VD_ERR_DB ? "store" : "model_server", st);
}

/* Checks the request's shape: one query, k. */
static vd_status check_req(const vd_svc_search_req *req, const char **why, vd_error *err)
{
    int given =
        (req->path != NULL) + (req->asset_id != 0) + (req->has_vector != 0) + (req->text != NULL);
    if (given != 1) {
        vd_error_set(
            err, VD_ERR_INVALID,
            "give exactly one of path, asset_id, vector, text or an uploaded file (%d given)",
            given);
        return refuse(why, "one_query", VD_ERR_INVALID);
    }
    if (req->k < 0 || req->k > VD_VINDEX_MAX_K) {
        vd_error_set(err, VD_ERR_INVALID, "k must be 1..%d", VD_VINDEX_MAX_K);
        return refuse(why, "k_out_of_range", VD_ERR_INVALID);
    }
    if (req->asset_id < 0) {
        vd_error_set(err, VD_ERR_NOT_FOUND, "asset %lld not found", (long long)req->asset_id);
        return refuse(why, "asset_not_found", VD_ERR_NOT_FOUND);
    }
    return VD_OK;
}

/* The query vector of req for model's index of dimension dim: *vec owned
 * (a copy for a given vector), normalised. */
static vd_status query_vector(vd_store *store, vd_runner *runner, const vd_svc_search_req *req,
                              const char *model, int dim, float **vec, const char **why,
                              vd_error *err)
{
    int qdim = 0;
    vd_status st = VD_OK;
    *vec = NULL;
    if (req->has_vector) {
        qdim = (int)req->nvector;
        if (req->nvector > (size_t)VD_VINDEX_MAX_DIM ||
            !(*vec = malloc(sizeof(float) * (qdim + 1))))
            return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        if (qdim) memcpy(*vec, req->vector, sizeof(float) * (size_t)qdim);
    } else if (req->asset_id) {
        st = query_from_asset(store, req->asset_id, model, vec, &qdim, why, err);
    } else if (!runner) { /* a text or a file: only the model server embeds them */
        st = refuse(why, "model_server",
                    vd_error_set(err, VD_ERR_CONN, "no model server to embed the query"));
    } else if (req->text) {
        st = query_from_text(store, runner, req->text, model, vec, &qdim, why, err);
    } else {
        st = query_from_path(store, runner, req, model, vec, &qdim, why, err);
    }
    if (st == VD_OK && qdim != dim) {
        vd_error_set(err, VD_ERR_INVALID, "the vector has %d values, the %s index %d", qdim, model,
                     dim);
        st = refuse(why, "dimension_mismatch", VD_ERR_INVALID);
    }
    if (st == VD_OK && (st = vd_vindex_normalize(*vec, dim, err)) != VD_OK)
        refuse(why, "invalid_vector", st);
    if (st != VD_OK) {
        free(*vec);
        *vec = NULL;
    }
    return st;
}

/* ---- filtering ---- */

typedef struct {
    int64_t *in; /* sorted ids allowed (folder), or NULL: any */
    size_t nin;
    int64_t *out; /* ids found deleted */
    size_t nout;
} id_filter;

static int id_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int keep_id(void *ud, int64_t id)
{
    const id_filter *f = ud;
    for (size_t i = 0; i < f->nout; i++)
        if (f->out[i] == id) return 0;
    return !f->in || bsearch(&id, f->in, f->nin, sizeof id, id_cmp) != NULL;
}

/* The live assets of folder and below, sorted (paged through the store). */
static vd_status folder_ids(vd_store *store, const char *folder, id_filter *f, vd_error *err)
{
    vd_asset_filter af = {
        .after_id = 0, .limit = VD_LIBRARY_LIST_MAX, .folder = folder, .state = -1};
    size_t cap = 0;
    for (;;) {
        vd_asset *list = NULL;
        size_t n = 0;
        vd_status st = vd_store_asset_list(store, &af, &list, &n, err);
        if (st != VD_OK) return st;
        if (f->nin + n + 1 > cap) {
            cap = (f->nin + n + 1) * 2;
            int64_t *g = realloc(f->in, cap * sizeof *g);
            if (!g) {
                vd_asset_list_free(list, n);
                return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            }
            f->in = g;
        }
        for (size_t i = 0; i < n; i++)
            f->in[f->nin++] = list[i].id;
        if (n) af.after_id = list[n - 1].id;
        vd_asset_list_free(list, n);
        if (n < (size_t)af.limit) break;
    }
    if (!f->in) f->in = malloc(sizeof *f->in); /* an empty folder keeps nothing */
    qsort(f->in, f->nin, sizeof *f->in, id_cmp);
    return f->in ? VD_OK : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
}

/* Reads each hit's asset; deleted ones go to f->out. Returns how many were. */
static vd_status hits_resolve(vd_store *store, const vd_vindex_hit *raw, size_t nraw, id_filter *f,
                              vd_svc_search_hit *out, size_t *n, size_t *dropped, vd_error *err)
{
    *n = *dropped = 0;
    for (size_t i = 0; i < nraw; i++) {
        vd_asset a;
        memset(&a, 0, sizeof a);
        vd_status st = vd_store_asset_get(store, raw[i].id, 0, &a, err);
        if (st == VD_ERR_NOT_FOUND) {
            int64_t *g = realloc(f->out, (f->nout + 1) * sizeof *g);
            if (!g) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
            f->out = g;
            f->out[f->nout++] = raw[i].id;
            (*dropped)++;
            continue;
        }
        if (st != VD_OK) return st;
        out[*n].asset_id = raw[i].id;
        out[*n].score = raw[i].score;
        out[*n].path = a.path;
        a.path = NULL;
        vd_asset_clear(&a);
        (*n)++;
    }
    return VD_OK;
}

/* ---- search ---- */

static vd_status search_run(vd_libindex *li, vd_store *store, const char *model, const float *q,
                            size_t k, id_filter *f, vd_svc_search_hit *out, size_t *n,
                            const char **why, vd_error *err)
{
    vd_vindex_hit *raw = calloc(k, sizeof *raw);
    if (!raw) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_status st = VD_OK;
    for (int tries = 0; tries < MAX_RETRIES; tries++) {
        size_t nraw = 0, dropped = 0;
        for (size_t i = 0; i < *n; i++)
            free(out[i].path);
        *n = 0;
        st = vd_libindex_search(li, VD_LIBINDEX_IMAGE, model, q, k, keep_id, f, raw, &nraw, err);
        if (st != VD_OK) {
            refuse(why, st == VD_ERR_NOT_FOUND ? "no_index" : "index", st);
            break;
        }
        if ((st = hits_resolve(store, raw, nraw, f, out, n, &dropped, err)) != VD_OK) {
            refuse(why, "store", st);
            break;
        }
        if (!dropped || nraw < k) break; /* nothing missing, or nothing more to find */
    }
    free(raw);
    return st;
}

vd_status vd_svc_search(vd_libindex *li, vd_store *store, vd_runner *runner,
                        const vd_svc_search_req *req, vd_svc_search_hit **hits, size_t *n,
                        const char **why, vd_error *err)
{
    *hits = NULL;
    *n = 0;
    if (why) *why = NULL;
    vd_status st = check_req(req, why, err);
    if (st != VD_OK) return st;
    const char *model = vd_svc_search_model(req->model);
    size_t k = req->k ? (size_t)req->k : VD_SVC_SEARCH_DEFAULT_K;
    int dim = 0;
    if ((st = vd_libindex_dim(li, VD_LIBINDEX_IMAGE, model, &dim, err)) != VD_OK)
        return refuse(why, st == VD_ERR_NOT_FOUND ? "no_index" : "index", st);
    float *q = NULL;
    if ((st = query_vector(store, runner, req, model, dim, &q, why, err)) != VD_OK) return st;
    id_filter f = {0};
    vd_svc_search_hit *out = calloc(k, sizeof *out);
    if (!out) st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (st == VD_OK && req->folder && *req->folder &&
        (st = folder_ids(store, req->folder, &f, err)) != VD_OK)
        refuse(why, "store", st);
    if (st == VD_OK) st = search_run(li, store, model, q, k, &f, out, n, why, err);
    free(q);
    free(f.in);
    free(f.out);
    if (st != VD_OK) {
        vd_svc_search_hits_free(out, *n);
        *n = 0;
        return st;
    }
    *hits = out;
    return VD_OK;
}

/* ---- duplicates ---- */

void vd_svc_dup_groups_free(vd_svc_dup_group *g, size_t n)
{
    for (size_t i = 0; g && i < n; i++) {
        for (size_t j = 0; j < g[i].n; j++)
            free(g[i].paths[j]);
        free(g[i].ids);
        free(g[i].paths);
        free(g[i].pairs);
    }
    free(g);
}
