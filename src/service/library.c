/* library.c: registering assets and enqueueing their index job
 * (service/library.h). */
#include "service/library.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/config.h"
#include "core/sha256.h"
#include "jobspec/jobspec.h"
#include "store/blobs.h"

_Static_assert(VD_SVC_LIBRARY_MAX_FILES <= VD_INDEX_MAX_ASSETS,
               "one request's assets fit one index job");

const char *vd_svc_library_model(void)
{
    return vd_config_default(VD_CFG_LIBRARY_MODEL);
}

const char *vd_svc_library_face_model(void)
{
    return vd_config_default(VD_CFG_LIBRARY_FACE_MODEL);
}

static vd_status refused(const char **why, const char *reason, vd_status st)
{
    if (why) *why = reason;
    return st;
}

void vd_svc_assets_result_free(vd_svc_assets_result *r)
{
    for (size_t i = 0; r->v && i < r->n; i++) {
        free(r->v[i].path);
        free(r->v[i].error);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* Appends an outcome for path (copied); NULL when out of memory. */
static vd_svc_asset_outcome *add_outcome(vd_svc_assets_result *r, const char *path)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        vd_svc_asset_outcome *v = realloc(r->v, cap * sizeof *v);
        if (!v) return NULL;
        r->v = v, r->cap = cap;
    }
    vd_svc_asset_outcome *o = &r->v[r->n];
    memset(o, 0, sizeof *o);
    if (!(o->path = vd_strdup(path))) return NULL;
    r->n++;
    return o;
}

/* Records a per-file error (code static, msg copied). */
static vd_status file_error(vd_svc_asset_outcome *o, vd_svc_assets_result *r, const char *code,
                            const char *msg)
{
    o->code = code;
    o->error = vd_strdup(msg);
    r->failed++;
    return o->error ? VD_OK : VD_ERR_NOMEM;
}

/* The image files a folder scan takes (decode.h's formats), by extension. */
static int image_name(const char *name)
{
    static const char *const ext[] = {"jpg",  "jpeg", "png",  "webp", "gif", "tif", "tiff",
                                      "heic", "heif", "avif", "ppm",  "pgm", "pbm", NULL};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && ext[i]; i++)
        if (strcasecmp(dot + 1, ext[i]) == 0) return 1;
    return 0;
}

typedef struct {
    char **v;
    size_t n, cap;
} name_list;

static void names_free(name_list *l)
{
    for (size_t i = 0; l->v && i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends p (taken: freed on failure too) to l. */
static vd_status names_push(name_list *l, char *p, vd_error *err)
{
    if (p && l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) free(p), p = NULL;
        if (v) l->v = v, l->cap = cap;
    }
    if (!p) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    l->v[l->n++] = p;
    return VD_OK;
}

/* A malloc'd dir/name (NULL: no memory). */
static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    return p;
}

/* Lists the image files below dir (recursively, at most depth levels) into
 * files, sorted; too_many_paths past the limit. */
static vd_status scan(const char *dir, int depth, name_list *files, const char **why, vd_error *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        vd_error_set(err, VD_ERR_IO, "cannot list folder %.200s", dir);
        return refused(why, "unreadable_folder", VD_ERR_IO);
    }
    name_list here = {0}, subs = {0};
    vd_status st = VD_OK;
    for (struct dirent *e; st == VD_OK && (e = readdir(d));) {
        if (e->d_name[0] == '.') continue; /* hidden, ".", ".." */
        char *p = join(dir, e->d_name);
        struct stat sb;
        if (p && lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) { /* symlinks are not followed */
            if (depth > 0)
                st = names_push(&subs, p, err);
            else
                free(p);
        } else if (!p || image_name(e->d_name)) {
            st = names_push(&here, p, err);
        } else {
            free(p);
        }
    }
    closedir(d);
    if (here.n) qsort(here.v, here.n, sizeof *here.v, by_name);
    if (subs.n) qsort(subs.v, subs.n, sizeof *subs.v, by_name);
    for (size_t i = 0; st == VD_OK && i < here.n; i++) {
        if (files->n >= VD_SVC_LIBRARY_MAX_FILES) {
            vd_error_set(err, VD_ERR_LIMIT, "%.200s: more than %d image files", dir,
                         VD_SVC_LIBRARY_MAX_FILES);
            st = refused(why, "too_many_paths", VD_ERR_LIMIT);
            break;
        }
        st = names_push(files, here.v[i], err);
        here.v[i] = NULL; /* files has it */
    }
    for (size_t i = 0; st == VD_OK && i < subs.n; i++)
        st = scan(subs.v[i], depth - 1, files, why, err);
    names_free(&here);
    names_free(&subs);
    return st;
}

/* The folder an asset is in: path up to its last '/' ("/" for a file at the root). */
static char *parent_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return vd_strdup("");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *f = malloc(n + 1);
    if (!f) return NULL;
    memcpy(f, path, n);
    f[n] = '\0';
    return f;
}

/* Checks, reads and hashes the client path, and registers its asset. A
 * per-file problem is the outcome's; only the store's failure is returned. */
static vd_status register_path(const vd_svc_library *lib, const char *path, vd_svc_assets_result *r,
                               vd_error *err)
{
    vd_svc_asset_outcome *o = add_outcome(r, path);
    if (!o) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_path_problem prob = VD_PATH_OK;
    char *resolved = NULL;
    vd_error fe;
    vd_status st = lib->roots ? vd_media_roots_check(lib->roots, path, VD_PATH_WANT_FILE, &resolved,
                                                     &prob, &fe)
                              : vd_path_check_shape(path, &prob, &fe);
    uint8_t *data = NULL;
    size_t len = 0;
    vd_media_limits lim = {.max_bytes = VD_BLOB_MAX_BYTES};
    const char *at = resolved ? resolved : path;
    if (st == VD_OK) st = vd_media_read(lib->roots, at, &lim, &data, &len, &prob, &fe);
    if (st != VD_OK) {
        free(resolved);
        return file_error(o, r, prob != VD_PATH_OK ? vd_path_problem_name(prob) : "unreadable",
                          vd_error_text(&fe));
    }
    uint8_t dig[VD_SHA256_LEN];
    char sha[VD_SHA256_HEX_LEN + 1];
    vd_sha256(data, len, dig);
    vd_sha256_hex(dig, sha);
    free(data);
    char *folder = parent_of(at);
    st = folder ? vd_store_asset_register(lib->store, sha, at, folder, &o->asset_id, &o->existed,
                                          NULL, err)
                : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    free(folder);
    free(resolved);
    if (st == VD_OK) o->existed ? r->known++ : r->added++;
    return st;
}

/* Keeps an uploaded file in the store and registers it as "blob:SHA/NAME". */
static vd_status register_upload(const vd_svc_library *lib, const char *tmp, const char *name,
                                 vd_svc_assets_result *r, vd_error *err)
{
    vd_svc_asset_outcome *o = add_outcome(r, name ? name : "");
    if (!o) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_media_limits lim = {.max_bytes = VD_BLOB_MAX_BYTES};
    uint8_t *data = NULL;
    size_t len = 0;
    vd_error fe;
    vd_path_problem prob = VD_PATH_OK;
    vd_status st = vd_media_read(NULL, tmp, &lim, &data, &len, &prob, &fe); /* our own file */
    if (st != VD_OK)
        return file_error(o, r, prob != VD_PATH_OK ? vd_path_problem_name(prob) : "unreadable",
                          vd_error_text(&fe));
    char sha[VD_SHA256_HEX_LEN + 1];
    st = vd_store_blob_put(lib->store, data, len, sha, NULL, err);
    free(data);
    if (st != VD_OK) return st;
    char *ref = vd_blob_ref_new(sha, name);
    st = ref ? vd_store_asset_register(lib->store, sha, ref, "", &o->asset_id, &o->existed, NULL,
                                       err)
             : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    free(ref);
    if (st == VD_OK) o->existed ? r->known++ : r->added++;
    return st;
}

static int by_id(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The registered assets still to index (pending, or indexed without a vector
 * of the library's model), each once (the same bytes twice in a
 * request are one asset), in id order, as a JSON array into *out. */
static vd_status pending_ids(const vd_svc_library *lib, const vd_svc_assets_result *r, json_t **out,
                             vd_error *err)
{
    int64_t *v = malloc((r->n ? r->n : 1) * sizeof *v);
    json_t *ids = json_array();
    size_t m = 0;
    vd_status st = v && ids ? VD_OK : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == VD_OK && i < r->n; i++)
        if (r->v[i].asset_id) v[m++] = r->v[i].asset_id;
    if (st == VD_OK) qsort(v, m, sizeof *v, by_id);
    for (size_t i = 0; st == VD_OK && i < m; i++) {
        if (i > 0 && v[i] == v[i - 1]) continue;
        vd_asset a;
        st = vd_store_asset_get(lib->store, v[i], 0, &a, err);
        int pending = st == VD_OK && a.state == VD_ASSET_PENDING;
        if (st == VD_OK && a.state == VD_ASSET_INDEXED) { /* indexed with another model? */
            vd_asset_vector av;
            pending = vd_store_asset_vector_get(lib->store, v[i], lib->model, &av, NULL) ==
                      VD_ERR_NOT_FOUND;
            free(av.vector);
        }
        vd_asset_clear(&a);
        if (pending) json_array_append_new(ids, json_integer(v[i]));
    }
    free(v);
    if (st != VD_OK) json_decref(ids), ids = NULL;
    *out = ids;
    return st;
}

/* Enqueues one index job for the registered assets still pending. */
static vd_status enqueue_index(const vd_svc_library *lib, vd_svc_assets_result *r, const char **why,
                               vd_error *err)
{
    json_t *ids = NULL;
    vd_status st = pending_ids(lib, r, &ids, err);
    if (st != VD_OK) return refused(why, "store", st);
    r->queued = json_array_size(ids);
    if (r->queued == 0) {
        json_decref(ids);
        return VD_OK;
    }
    json_t *p = json_pack("{s:o, s:s, s:s}", "assets", ids, "model", lib->model, "face_model",
                          lib->face_model ? lib->face_model : "");
    char *payload = p ? json_dumps(p, JSON_COMPACT) : NULL;
    json_decref(p);
    if (!payload) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    vd_job_check_opts co = {.test_jobs = 0};
    st = vd_job_check("index", payload, &co, NULL, err); /* a bad model name in the config */
    if (st != VD_OK) {
        free(payload);
        return refused(why, "invalid_value", st);
    }
    vd_enqueue_opts o = {.type = "index",
                         .payload = payload,
                         .max_retries = VD_SVC_INDEX_RETRIES,
                         .retry_base_ms = VD_SVC_INDEX_RETRY_MS};
    st = vd_queue_enqueue(lib->queue, &o, r->job_id, err);
    free(payload);
    return st == VD_OK ? VD_OK : refused(why, "queue", st);
}

/* Checks the request's shape: one kind of input, within the limit. */
static vd_status check_request(const vd_svc_assets_req *req, const char **why, vd_error *err)
{
    int kinds = (req->npaths > 0) + (req->folder != NULL) + (req->nuploads > 0);
    if (kinds > 1) {
        vd_error_set(err, VD_ERR_INVALID, "give one of paths, folder or uploaded files");
        return refused(why, "paths_and_folder", VD_ERR_INVALID);
    }
    if (kinds == 0) {
        vd_error_set(err, VD_ERR_INVALID, "nothing to register: give paths, a folder or files");
        return refused(why, "empty_list", VD_ERR_INVALID);
    }
    if (req->npaths > VD_SVC_LIBRARY_MAX_FILES || req->nuploads > VD_SVC_LIBRARY_MAX_FILES) {
        vd_error_set(err, VD_ERR_LIMIT, "at most %d files per request (got %zu)",
                     VD_SVC_LIBRARY_MAX_FILES, req->npaths + req->nuploads);
        return refused(why, "too_many_paths", VD_ERR_LIMIT);
    }
    return VD_OK;
}

/* The folder's image files (checked with the roots first). */
static vd_status folder_files(const vd_svc_library *lib, const char *folder, name_list *files,
                              const char **why, vd_error *err)
{
    char *resolved = NULL;
    vd_path_problem prob = VD_PATH_OK;
    vd_status st = lib->roots ? vd_media_roots_check(lib->roots, folder, VD_PATH_WANT_DIR,
                                                     &resolved, &prob, err)
                              : vd_path_check_shape(folder, &prob, err);
    if (st != VD_OK) return refused(why, vd_path_problem_name(prob), st);
    st = scan(resolved ? resolved : folder, 32, files, why, err);
    if (st == VD_OK && files->n == 0) {
        vd_error_set(err, VD_ERR_INVALID, "%.200s holds no image files", folder);
        st = refused(why, "empty_list", VD_ERR_INVALID);
    }
    free(resolved);
    return st;
}

vd_status vd_svc_assets_register(const vd_svc_library *lib, const vd_svc_assets_req *req,
                                 vd_svc_assets_result *out, const char **why, vd_error *err)
{
    memset(out, 0, sizeof *out);
    if (why) *why = NULL;
    vd_status st = check_request(req, why, err);
    name_list files = {0};
    if (st == VD_OK && req->folder) st = folder_files(lib, req->folder, &files, why, err);
    if (st != VD_OK) return st;
    for (size_t i = 0; st == VD_OK && i < files.n; i++)
        st = register_path(lib, files.v[i], out, err);
    for (size_t i = 0; st == VD_OK && i < req->npaths; i++)
        st = register_path(lib, req->paths[i] ? req->paths[i] : "", out, err);
    for (size_t i = 0; st == VD_OK && i < req->nuploads; i++)
        st = register_upload(lib, req->uploads[i], req->names ? req->names[i] : NULL, out, err);
    names_free(&files);
    if (st != VD_OK) return refused(why, "store", st);
    if (out->added + out->known == 0) {
        /* nothing to index: the request fails as its first file did */
        vd_error_set(err, VD_ERR_INVALID, "%s", out->v[0].error);
        return refused(why, out->v[0].code, VD_ERR_INVALID);
    }
    return enqueue_index(lib, out, why, err);
}

vd_status vd_svc_asset_delete(vd_store *store, int64_t id, vd_error *err)
{
    vd_status st = vd_store_asset_delete(store, id, err);
    if (st == VD_OK) vd_store_blobs_gc(store, VD_BLOB_GC_GRACE_MS, NULL, NULL);
    return st;
}
