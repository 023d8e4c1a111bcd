/* index.c: the `index` job (pipeline/jobs.h, docs/library.md): for each asset
 * of the payload, its image vector with the library's model (through the
 * embedding pipeline: cache by SHA-256, batches, per-file errors) and every
 * face in it with the face pipeline (faces/faces.h), stored in the library
 * (store/library.h); the asset ends indexed, or in error with its file's
 * message while the others go on.
 *
 * Idempotent: an asset already indexed with a vector of this model is
 * skipped; any other is done again, its vector and faces replaced (never
 * added twice), so a retried attempt resumes where the last one stopped. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "faces/faces.h"
#include "image/decode.h"
#include "jobspec/jobspec.h"
#include "pipeline/jobs_impl.h"
#include "store/blobs.h"
#include "store/library.h"

#define INDEX_CHUNK      16   /* assets embedded per vd_embed_paths call */
#define INDEX_MAX_ERRORS 1000 /* per-file errors listed in the job's result */

typedef struct {
    vd_job_ctx *ctx;
    const vd_pipeline_config *cfg;
    vd_store *store;
    vd_runner *runner;
    const char *model, *face_model;
    int64_t done, total;
    size_t indexed, skipped, failed, faces;
    json_t *errors; /* [{"asset_id","path","error"}] */
} index_run;

/* Records the per-file error of asset a: its state and the job's result. */
static vd_status asset_failed(index_run *r, const vd_asset *a, const char *msg, vd_error *err)
{
    r->failed++;
    if (json_array_size(r->errors) < INDEX_MAX_ERRORS)
        json_array_append_new(r->errors, json_pack("{s:I, s:s, s:s}", "asset_id", (json_int_t)a->id,
                                                   "path", a->path, "error", msg));
    vd_status st = vd_store_asset_set_state(r->store, a->id, VD_ASSET_ERROR, msg, 0, 0, err);
    return st == VD_ERR_NOT_FOUND ? VD_OK : st; /* deleted meanwhile: nothing to record */
}

/* Failures that are the service's, not the file's: the job fails (and is retried). */
static int transient(vd_status st)
{
    return st == VD_ERR_CONN || st == VD_ERR_BUSY || st == VD_ERR_TIMEOUT || st == VD_ERR_NOMEM ||
           st == VD_ERR_DB || st == VD_ERR_NOSPACE || st == VD_ERR_INTERNAL;
}

/* Reads asset a's bytes again (confined: the media roots at this open; an
 * upload from the store), checks they are still the registered ones, and
 * decodes them. A per-file problem is returned with *per_file set. */
static vd_status read_image(index_run *r, const vd_asset *a, vd_image *img, int *per_file,
                            vd_error *err)
{
    uint8_t *data = NULL;
    size_t len = 0;
    char sha[VD_SHA256_HEX_LEN + 1];
    vd_status st =
        vd_blob_ref_parse(a->path, sha)
            ? vd_store_blob_get(r->store, sha, 0, &data, &len, err)
            : vd_media_read(r->cfg ? r->cfg->roots : NULL, a->path, NULL, &data, &len, NULL, err);
    *per_file = st != VD_OK && !transient(st);
    if (st != VD_OK) return st;
    uint8_t dig[VD_SHA256_LEN];
    vd_sha256(data, len, dig);
    vd_sha256_hex(dig, sha);
    if (strcmp(sha, a->sha256) != 0) {
        free(data);
        *per_file = 1;
        return vd_error_set(err, VD_ERR_STATE,
                            "the file changed since it was registered (its bytes hash to %.12s..., "
                            "not %.12s...): register it again",
                            sha, a->sha256);
    }
    st = vd_image_decode_buffer(data, len, NULL, img, err);
    free(data);
    *per_file = st != VD_OK && !transient(st);
    return st;
}

/* Detects and embeds every face of img and stores them as asset a's faces. */
static vd_status store_faces(index_run *r, const vd_asset *a, const vd_image *img, int *per_file,
                             vd_error *err)
{
    vd_faces_opts fo = {.embedder = r->face_model};
    vd_face *found = NULL;
    size_t n = 0;
    vd_status st = vd_faces_run(r->runner, img, &fo, &found, &n, err);
    *per_file = st != VD_OK && !transient(st) && st != VD_ERR_NOT_FOUND &&
                st != VD_ERR_UNSUPPORTED && st != VD_ERR_MODEL;
    if (st != VD_OK) return st;
    vd_stored_face *put = calloc(n ? n : 1, sizeof *put);
    if (!put) {
        vd_faces_free(found, n);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const vd_face_det *d = &found[i].det;
        put[i].box[0] = d->x0;
        put[i].box[1] = d->y0;
        put[i].box[2] = d->x1 - d->x0;
        put[i].box[3] = d->y1 - d->y0;
        put[i].score = d->score;
        put[i].n_keypoints = VD_KP_COUNT;
        memcpy(put[i].keypoints, d->kp, sizeof d->kp);
        put[i].dim = found[i].embedding ? found[i].dim : 0;
        put[i].vector = found[i].embedding; /* borrowed for the put */
    }
    st = vd_store_asset_faces_put(r->store, a->id, r->face_model, put, n, NULL, err);
    if (st == VD_OK) r->faces += n;
    free(put);
    vd_faces_free(found, n);
    return st;
}

/* Finishes asset a whose vector v was computed: the vector, its faces, its state. */
static vd_status finish_asset(index_run *r, const vd_asset *a, const vd_embed_item *it,
                              vd_error *err)
{
    if (it->status != VD_OK)
        return asset_failed(r, a, it->error ? it->error : vd_status_name(it->status), err);
    if (strcmp(it->sha256, a->sha256) != 0)
        return asset_failed(r, a, "the file changed since it was registered: register it again",
                            err);
    vd_status st =
        vd_store_asset_vector_put(r->store, a->id, r->model, it->vector, it->dim, NULL, err);
    if (st == VD_ERR_NOT_FOUND) return VD_OK; /* deleted meanwhile */
    if (st != VD_OK) return st;
    vd_image img;
    memset(&img, 0, sizeof img);
    int per_file = 0;
    if (r->face_model[0] || it->src_width <= 0) {
        /* the faces need the whole image, and a cached vector came without a size: read,
         * check and decode the file again */
        st = read_image(r, a, &img, &per_file, err);
    } else { /* the embedding's decode of these very bytes (sha256 checked above) gave it */
        img.src_width = it->src_width;
        img.src_height = it->src_height;
    }
    if (st == VD_OK && r->face_model[0]) st = store_faces(r, a, &img, &per_file, err);
    if (st == VD_OK)
        st = vd_store_asset_set_state(r->store, a->id, VD_ASSET_INDEXED, NULL, img.src_width,
                                      img.src_height, err);
    vd_image_free(&img);
    if (st == VD_OK) {
        r->indexed++;
        return VD_OK;
    }
    if (st == VD_ERR_NOT_FOUND && !per_file) return VD_OK; /* deleted meanwhile */
    if (per_file) {
        char msg[VD_ERROR_MSG_MAX];
        vd_strlcpy(msg, vd_error_text(err), sizeof msg);
        return asset_failed(r, a, msg, err);
    }
    return st;
}

/* Loads asset id into *a when it still needs indexing: 1 = to do, 0 = skipped. */
static int needs_index(index_run *r, int64_t id, vd_asset *a, vd_status *st, vd_error *err)
{
    *st = vd_store_asset_get(r->store, id, 0, a, err);
    if (*st == VD_ERR_NOT_FOUND) { /* unknown or deleted: nothing to do */
        *st = VD_OK;
        return 0;
    }
    if (*st != VD_OK || a->state != VD_ASSET_INDEXED) return *st == VD_OK;
    vd_asset_vector v;
    vd_status vs = vd_store_asset_vector_get(r->store, id, r->model, &v, NULL);
    free(v.vector);
    if (vs == VD_OK) vd_asset_clear(a);
    return vs != VD_OK;
}

/* Indexes ids[0..n): embeds those that need it in one call, then finishes each. */
static vd_status index_chunk(index_run *r, const int64_t *ids, size_t n, vd_error *err)
{
    vd_asset todo[INDEX_CHUNK];
    const char *paths[INDEX_CHUNK];
    vd_embed_item items[INDEX_CHUNK];
    memset(todo, 0, sizeof todo);
    memset(items, 0, sizeof items);
    size_t m = 0;
    vd_status st = VD_OK;
    for (size_t i = 0; i < n && st == VD_OK; i++) {
        if (needs_index(r, ids[i], &todo[m], &st, err)) {
            paths[m] = todo[m].path;
            m++;
        } else if (st == VD_OK) {
            r->skipped++;
            vd_job_ctx_progress(r->ctx, ++r->done, r->total);
        }
    }
    vd_pipeline_blob_reader br = {.cfg = r->cfg};
    if (st == VD_OK && m > 0) {
        vd_embed_opts o = {.runner = r->runner,
                           .store = r->store,
                           .model = r->model,
                           .mode = VD_EMBED_IMAGE,
                           .roots = r->cfg ? r->cfg->roots : NULL,
                           .read_blob = vd_pipeline_read_blob,
                           .blob_ud = &br,
                           .want_vectors = 1};
        int dim = 0;
        st = vd_embed_paths(&o, paths, m, items, &dim, NULL, err);
    }
    vd_store_close(br.store); /* the decode thread has ended */
    for (size_t i = 0; i < m && st == VD_OK; i++) {
        st = finish_asset(r, &todo[i], &items[i], err);
        vd_job_ctx_progress(r->ctx, ++r->done, r->total);
    }
    vd_embed_items_clear(items, m);
    for (size_t i = 0; i < m; i++)
        vd_asset_clear(&todo[i]);
    return st;
}

static char *index_result(const index_run *r)
{
    json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:O}", "model", r->model, "face_model",
                          r->face_model, "indexed", (json_int_t)r->indexed, "skipped",
                          (json_int_t)r->skipped, "failed", (json_int_t)r->failed, "faces",
                          (json_int_t)r->faces, "errors", r->errors);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

/* Runs the index over the payload's assets, chunk by chunk. */
static vd_status index_run_all(index_run *r, const vd_index_payload *ip, char **result,
                               vd_error *err)
{
    vd_status st = vd_embed_check_model(r->runner, r->model, VD_EMBED_IMAGE, NULL, err);
    if (st == VD_OK && r->face_model[0])
        st = vd_embed_check_model(r->runner, r->face_model, VD_EMBED_FACE, NULL, err);
    if (st == VD_ERR_NOT_FOUND || st == VD_ERR_UNSUPPORTED) /* no such model: hopeless */
        vd_job_ctx_set_retryable(r->ctx, 0);
    vd_job_ctx_progress(r->ctx, 0, r->total);
    for (size_t i = 0; st == VD_OK && i < ip->nassets; i += INDEX_CHUNK) {
        if (vd_job_ctx_should_stop(r->ctx))
            return vd_error_set(err, VD_ERR_CANCELED, "index: stopped after %lld of %lld assets",
                                (long long)r->done, (long long)r->total);
        int64_t ids[INDEX_CHUNK];
        size_t n = 0;
        for (size_t k = i; k < ip->nassets && n < INDEX_CHUNK; k++)
            ids[n++] = (int64_t)json_integer_value(json_array_get(ip->assets, k));
        st = index_chunk(r, ids, n, err);
    }
    if (st == VD_OK && !(*result = index_result(r)))
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    return st;
}

vd_status vd_pipeline_job_index(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    json_t *p;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    vd_index_payload ip;
    st = vd_index_payload_parse(p, &ip, err); /* the rule vd_job_check applied at enqueue */
    if (st != VD_OK) {
        json_decref(p);
        return st;
    }
    index_run r = {.ctx = ctx,
                   .cfg = vd_job_ctx_userdata(ctx),
                   .model = ip.model,
                   .face_model = ip.face_model,
                   .total = (int64_t)ip.nassets,
                   .errors = json_array()};
    st = r.errors ? vd_pipeline_open_services(r.cfg, &r.store, &r.runner, err)
                  : vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    if (st == VD_OK) {
        st = index_run_all(&r, &ip, result, err);
        vd_runner_free(r.runner);
        vd_store_close(r.store);
    }
    json_decref(r.errors);
    json_decref(p);
    return st;
}
