/* embed.c: the cached, pipelined embedding of image files (pipeline/embed.h). */
#include "pipeline/embed.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "faces/faces.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "store/blobs.h"
#include "store/vectors.h"

#define MAX_BATCH 32
#define RING      2 /* batches decoded ahead of inference */

const char *vd_embed_cache_model(const char *model, vd_embed_mode mode, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s", model, mode == VD_EMBED_FACE ? "+face" : "");
    return buf;
}

const char *vd_embed_default_model(vd_embed_mode mode)
{
    return mode == VD_EMBED_FACE ? "faceres" : "mobilenet_v2";
}

vd_status vd_embed_check_model(vd_runner *runner, const char *model, vd_embed_mode mode,
                               vd_model_meta *meta, vd_error *err)
{
    vd_model_meta local;
    if (!meta) meta = &local;
    vd_status st = vd_runner_meta(runner, model, meta, err);
    if (st != VD_OK) return st;
    int fits = mode == VD_EMBED_FACE
                   ? meta->task == VD_TASK_FACE_EMBEDDING
                   : meta->task == VD_TASK_IMAGE_EMBEDDING || meta->task == VD_TASK_FACE_EMBEDDING;
    if (!fits)
        return vd_error_set(
            err, VD_ERR_UNSUPPORTED, "model %s is a %s model: %s needs %s model", model,
            vd_model_task_name(meta->task), mode == VD_EMBED_FACE ? "mode face" : "mode image",
            mode == VD_EMBED_FACE ? "a face_embedding" : "an image_embedding or face_embedding");
    return VD_OK;
}

void vd_embed_items_clear(vd_embed_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].vector);
        free(items[i].error);
        memset(&items[i], 0, sizeof items[i]);
    }
}

static void item_fail(vd_embed_item *it, vd_status st, const char *msg)
{
    it->status = st != VD_OK ? st : VD_ERR_INTERNAL;
    free(it->error);
    it->error = vd_strdup(msg && *msg ? msg : vd_strerror(st));
}

/* One batch of misses, decoded (and for images preprocessed) by the decode thread. */
typedef struct {
    size_t n; /* rows */
    size_t idx[MAX_BATCH];
    vd_status st[MAX_BATCH];
    char *msg[MAX_BATCH]; /* owned: decode error */
    char sha[MAX_BATCH][VD_SHA256_HEX_LEN + 1];
    int row[MAX_BATCH];                     /* image mode: the row in input, -1 when it failed */
    int src_w[MAX_BATCH], src_h[MAX_BATCH]; /* the decoded images' whole sizes */
    size_t nok;
    vd_tensor input;         /* image mode: nok rows */
    vd_image img[MAX_BATCH]; /* face mode */
    int64_t decode_us;
} batch;

static void batch_free(batch *b)
{
    if (!b) return;
    for (size_t i = 0; i < b->n; i++) {
        free(b->msg[i]);
        vd_image_free(&b->img[i]);
    }
    vd_tensor_free(&b->input);
    free(b);
}

typedef struct {
    const vd_embed_opts *o;
    const vd_model_meta *meta;
    const char *const *paths;
    const size_t *miss;
    size_t nmiss, bsz;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    batch *ring[RING];
    size_t head, count;
    int stop, produced;
    vd_status fatal; /* the decode thread's own failure (no memory) */
    vd_error fatal_err;
} pipe_state;

/* Reads one file: a media path under the roots, or an upload kept in the
 * store (a blob reference, read through o->read_blob). */
static vd_status read_file(const vd_embed_opts *o, const char *path, uint8_t **data, size_t *len,
                           vd_error *e)
{
    char sha[VD_SHA256_HEX_LEN + 1];
    if (!vd_blob_ref_parse(path, sha))
        return vd_media_read(o->roots, path, NULL, data, len, NULL, e);
    if (!o->read_blob)
        return vd_error_set(e, VD_ERR_UNSUPPORTED,
                            "%.80s: an upload kept in the store, and this "
                            "caller reads files only",
                            path);
    return o->read_blob(o->blob_ud, sha, data, len, e);
}

void vd_embed_decode_opts(const vd_model_meta *meta, vd_decode_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->target_width = meta->width;
    opts->target_height = meta->height;
}

/* Reads, hashes and decodes one file into row i of b. */
static void decode_one(pipe_state *p, batch *b, size_t i)
{
    const char *path = p->paths[b->idx[i]];
    vd_error e;
    vd_error_clear(&e);
    uint8_t *data = NULL;
    size_t len = 0;
    b->row[i] = -1;
    vd_status st = read_file(p->o, path, &data, &len, &e);
    if (st == VD_OK) {
        uint8_t dig[VD_SHA256_LEN];
        vd_sha256(data, len, dig);
        vd_sha256_hex(dig, b->sha[i]);
        vd_decode_opts dopts = {0};
        if (p->o->mode == VD_EMBED_IMAGE) vd_embed_decode_opts(p->meta, &dopts);
        vd_image img;
        memset(&img, 0, sizeof img);
        st = vd_image_decode_buffer(data, len, &dopts, &img, &e);
        free(data);
        b->src_w[i] = img.src_width;
        b->src_h[i] = img.src_height;
        if (st == VD_OK && p->o->mode == VD_EMBED_IMAGE) {
            size_t per = vd_model_meta_input_len(p->meta);
            st = vd_preprocess_into(&img, p->meta, b->input.data + b->nok * per, NULL, &e);
            vd_image_free(&img);
            if (st == VD_OK) b->row[i] = (int)b->nok++;
        } else if (st == VD_OK) {
            b->img[i] = img;
            b->row[i] = (int)b->nok++;
        }
    }
    b->st[i] = st;
    if (st != VD_OK) b->msg[i] = vd_strdup(vd_error_text(&e));
}

static void *decode_thread(void *arg)
{
    pipe_state *p = arg;
    /* Face mode holds whole decoded images until their batch has run, against
     * the decode budget (image/decode.h): a batch ends early once it holds half
     * the budget, so it never waits for pixels that only it could give back. */
    int64_t budget = 0;
    if (p->o->mode == VD_EMBED_FACE) vd_image_budget_get(&budget, NULL, NULL);
    size_t n = 0;
    for (size_t start = 0; start < p->nmiss; start += n) {
        int64_t t0 = vd_mono_us();
        batch *b = calloc(1, sizeof *b);
        vd_status st = b ? VD_OK : VD_ERR_NOMEM;
        n = p->nmiss - start < p->bsz ? p->nmiss - start : p->bsz;
        if (st == VD_OK && p->o->mode == VD_EMBED_IMAGE) {
            int64_t shape[4] = {(int64_t)n, 0, 0, 0};
            const vd_model_meta *m = p->meta;
            if (m->layout == VD_LAYOUT_NCHW) {
                shape[1] = m->channels, shape[2] = m->height, shape[3] = m->width;
            } else {
                shape[1] = m->height, shape[2] = m->width, shape[3] = m->channels;
            }
            st = vd_tensor_alloc(&b->input, shape, 4, &p->fatal_err);
        }
        if (st != VD_OK) {
            pthread_mutex_lock(&p->mu);
            p->fatal = st;
            if (st == VD_ERR_NOMEM) vd_error_set(&p->fatal_err, st, "out of memory");
            pthread_mutex_unlock(&p->mu);
            batch_free(b);
            break;
        }
        b->n = n;
        int64_t held = 0;
        for (size_t i = 0; i < n; i++) {
            b->idx[i] = p->miss[start + i];
            pthread_mutex_lock(&p->mu);
            int stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop) break;
            decode_one(p, b, i);
            held += b->img[i].budget_px;
            if (budget > 0 && held * 2 >= budget && i + 1 < n) {
                b->n = n = i + 1;
                break;
            }
        }
        if (p->o->mode == VD_EMBED_IMAGE) b->input.shape[0] = (int64_t)b->nok;
        b->decode_us = vd_mono_us() - t0;
        pthread_mutex_lock(&p->mu);
        while (p->count == RING && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            batch_free(b);
            break;
        }
        p->ring[(p->head + p->count) % RING] = b;
        p->count++;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    pthread_mutex_lock(&p->mu);
    p->produced = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void l2_normalize(float *v, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++)
        s += (double)v[j] * v[j];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int j = 0; j < d; j++)
            v[j] *= inv;
    }
}

typedef struct {
    const vd_embed_opts *o;
    const char *cache_model;
    vd_embed_item *items;
    int *dim;
    vd_embed_stats *stats;
    int want; /* the call's dim: the metadata's, else the first vector's; 0 = not yet */
} run_ctx;

/* The one check on every vector this call returns or stores: d > 0 floats,
 * and the model's dim (learned from the first vector when the metadata has
 * none). */
static int vector_fits(run_ctx *c, int d)
{
    if (d <= 0) return 0;
    if (c->want == 0) c->want = d;
    return d == c->want;
}

/* Fails item i (counted, reported) with a model error. */
static void item_model_error(run_ctx *c, size_t i, const char *msg)
{
    item_fail(&c->items[i], VD_ERR_MODEL, msg);
    c->stats->failed++;
    if (c->o->on_item) c->o->on_item(c->o->ud, i, &c->items[i]);
}

/* The message for a run whose output holds no vector of the model's dim. */
static void bad_vector_msg(run_ctx *c, const vd_tensor *t, char *msg, size_t n)
{
    char sh[96] = "[";
    size_t used = 1;
    for (size_t k = 0; t && k < t->rank && used < sizeof sh; k++)
        used += (size_t)snprintf(sh + used, sizeof sh - used, "%s%lld", k ? "," : "",
                                 (long long)t->shape[k]);
    if (used < sizeof sh) snprintf(sh + used, sizeof sh - used, "]");
    if (c->want > 0)
        snprintf(msg, n, "model %s returned %s, not one vector of its dim %d per image",
                 c->o->model, t ? sh : "no output", c->want);
    else
        snprintf(msg, n, "model %s returned %s: an empty vector", c->o->model,
                 t ? sh : "no output");
}

/* Finishes item i with vector v (dim floats, borrowed). */
static void item_done(run_ctx *c, size_t i, const float *v, int d)
{
    vd_embed_item *it = &c->items[i];
    it->status = VD_OK;
    it->dim = d;
    if (c->o->want_vectors && v) {
        it->vector = malloc((size_t)d * sizeof(float));
        if (it->vector)
            memcpy(it->vector, v, (size_t)d * sizeof(float));
        else
            item_fail(it, VD_ERR_NOMEM, "out of memory");
    }
    if (c->o->on_item) c->o->on_item(c->o->ud, i, it);
}

static vd_status store_put(run_ctx *c, size_t n, const char *const *shas, const float *const *vecs,
                           int d, vd_error *err)
{
    if (!c->o->store || n == 0) return VD_OK;
    return vd_store_embeddings_put(c->o->store, c->cache_model, n, shas, vecs, d, err);
}

/* Image mode: one inference for the batch's decoded rows. */
static vd_status run_image_batch(run_ctx *c, const vd_model_meta *meta, batch *b, vd_error *err)
{
    if (b->nok == 0) return VD_OK;
    vd_tensor outs[VD_MODEL_MAX_OUTPUT];
    size_t nouts = 0;
    int64_t t0 = vd_mono_us();
    vd_status st =
        vd_runner_run(c->o->runner, c->o->model, &b->input, outs, VD_MODEL_MAX_OUTPUT, &nouts, err);
    c->stats->infer_us += vd_mono_us() - t0;
    c->stats->batches++;
    if (st != VD_OK) return st;
    int d = nouts && outs[0].rank == 2 && outs[0].shape[0] == (int64_t)b->nok &&
                    outs[0].shape[1] <= INT32_MAX
                ? (int)outs[0].shape[1]
                : 0;
    if (!vector_fits(c, d)) { /* per image: the vectors are not returned or stored */
        char msg[256];
        bad_vector_msg(c, nouts ? &outs[0] : NULL, msg, sizeof msg);
        for (size_t i = 0; i < b->n; i++) {
            if (b->row[i] < 0) continue;
            vd_strlcpy(c->items[b->idx[i]].sha256, b->sha[i], VD_SHA256_HEX_LEN + 1);
            item_model_error(c, b->idx[i], msg);
        }
        for (size_t k = 0; k < nouts; k++)
            vd_tensor_free(&outs[k]);
        return VD_OK;
    }
    *c->dim = d;
    const char *shas[MAX_BATCH];
    const float *vecs[MAX_BATCH];
    size_t k = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->row[i] < 0) continue;
        float *v = outs[0].data + (size_t)b->row[i] * (size_t)d;
        if (meta->l2_normalize) l2_normalize(v, d);
        shas[k] = b->sha[i];
        vecs[k++] = v;
    }
    st = store_put(c, k, shas, vecs, d, err);
    if (st == VD_OK)
        for (size_t i = 0; i < b->n; i++) {
            if (b->row[i] < 0) continue;
            vd_strlcpy(c->items[b->idx[i]].sha256, b->sha[i], VD_SHA256_HEX_LEN + 1);
            c->stats->computed++;
            item_done(c, b->idx[i], outs[0].data + (size_t)b->row[i] * (size_t)d, d);
        }
    for (size_t j = 0; j < nouts; j++)
        vd_tensor_free(&outs[j]);
    return st;
}

/* Face mode: detect, pick the largest face, align and embed it; image by image. */
static vd_status run_face_batch(run_ctx *c, batch *b, vd_error *err)
{
    for (size_t i = 0; i < b->n; i++) {
        if (b->row[i] < 0) continue;
        size_t ix = b->idx[i];
        vd_strlcpy(c->items[ix].sha256, b->sha[i], VD_SHA256_HEX_LEN + 1);
        vd_face_det *dets = NULL;
        size_t nd = 0;
        int64_t t0 = vd_mono_us();
        vd_status st = vd_faces_detect(c->o->runner, &b->img[i], NULL, &dets, &nd, err);
        c->stats->batches++;
        if (st != VD_OK) {
            c->stats->infer_us += vd_mono_us() - t0;
            return st;
        }
        if (nd == 0) {
            free(dets);
            c->stats->infer_us += vd_mono_us() - t0;
            item_fail(&c->items[ix], VD_ERR_NOT_FOUND, "no face found");
            c->stats->failed++;
            if (c->o->on_item) c->o->on_item(c->o->ud, ix, &c->items[ix]);
            continue;
        }
        size_t best = 0;
        float best_area = -1;
        for (size_t k = 0; k < nd; k++) {
            float a = (dets[k].x1 - dets[k].x0) * (dets[k].y1 - dets[k].y0);
            if (a > best_area) best_area = a, best = k;
        }
        float *vec = NULL;
        int d = 0;
        st = vd_faces_embed(c->o->runner, &b->img[i], &dets[best], 1, c->o->model, &vec, &d, err);
        free(dets);
        c->stats->batches++;
        c->stats->infer_us += vd_mono_us() - t0;
        if (st != VD_OK) return st;
        if (!vec || !vector_fits(c, d)) {
            char msg[256];
            vd_tensor t = {.rank = 2, .shape = {1, d}};
            bad_vector_msg(c, &t, msg, sizeof msg);
            free(vec);
            item_model_error(c, ix, msg);
            continue;
        }
        *c->dim = d;
        const char *sha = b->sha[i];
        const float *cv = vec;
        st = store_put(c, 1, &sha, &cv, d, err);
        if (st == VD_OK) {
            c->stats->computed++;
            item_done(c, ix, vec, d);
        }
        free(vec);
        if (st != VD_OK) return st;
    }
    return VD_OK;
}

static vd_status process_batch(run_ctx *c, const vd_model_meta *meta, batch *b, vd_error *err)
{
    c->stats->decode_us += b->decode_us;
    for (size_t i = 0; i < b->n; i++) {
        if (b->st[i] == VD_OK) {
            c->items[b->idx[i]].src_width = b->src_w[i];
            c->items[b->idx[i]].src_height = b->src_h[i];
        }
        if (b->row[i] >= 0 || b->st[i] == VD_OK) continue;
        vd_embed_item *it = &c->items[b->idx[i]];
        vd_strlcpy(it->sha256, b->sha[i], VD_SHA256_HEX_LEN + 1);
        item_fail(it, b->st[i], b->msg[i]);
        c->stats->failed++;
        if (c->o->on_item) c->o->on_item(c->o->ud, b->idx[i], it);
    }
    return c->o->mode == VD_EMBED_FACE ? run_face_batch(c, b, err)
                                       : run_image_batch(c, meta, b, err);
}

/* Step 3 of vd_embed_paths: a thread decodes the missed files (paths[miss[k]])
 * a batch ahead while this one runs the model on each batch; stops early when
 * asked to, or on the first fatal error. */
static vd_status decode_and_run(run_ctx *c, const vd_model_meta *meta, const char *const *paths,
                                size_t *miss, size_t nmiss, size_t bsz, vd_error *err)
{
    vd_status st = VD_OK;
    pipe_state p;
    memset(&p, 0, sizeof p);
    p.o = c->o, p.meta = meta, p.paths = paths, p.miss = miss, p.nmiss = nmiss, p.bsz = bsz;
    pthread_mutex_init(&p.mu, NULL);
    pthread_cond_init(&p.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, decode_thread, &p) != 0) {
        pthread_mutex_destroy(&p.mu);
        pthread_cond_destroy(&p.cv);
        st = vd_error_set(err, VD_ERR_INTERNAL, "cannot start the decode thread");
        return st;
    }
    for (;;) {
        if (c->o->should_stop && c->o->should_stop(c->o->ud)) {
            st = vd_error_set(err, VD_ERR_CANCELED, "stopped");
            break;
        }
        pthread_mutex_lock(&p.mu);
        while (p.count == 0 && !p.produced)
            pthread_cond_wait(&p.cv, &p.mu);
        batch *b = NULL;
        if (p.count) {
            b = p.ring[p.head];
            p.head = (p.head + 1) % RING;
            p.count--;
            pthread_cond_broadcast(&p.cv);
        }
        vd_status fatal = p.fatal;
        pthread_mutex_unlock(&p.mu);
        if (!b) {
            if (fatal != VD_OK) {
                *err = p.fatal_err;
                st = fatal;
            }
            break;
        }
        st = process_batch(c, meta, b, err);
        batch_free(b);
        if (st != VD_OK) break;
    }
    pthread_mutex_lock(&p.mu);
    p.stop = 1;
    pthread_cond_broadcast(&p.cv);
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    for (size_t k = 0; k < p.count; k++)
        batch_free(p.ring[(p.head + k) % RING]);
    pthread_mutex_destroy(&p.mu);
    pthread_cond_destroy(&p.cv);
    return st;
}

vd_status vd_embed_paths(const vd_embed_opts *o, const char *const *paths, size_t n,
                         vd_embed_item *items, int *dim, vd_embed_stats *stats, vd_error *err)
{
    vd_embed_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof *stats);
    memset(items, 0, n * sizeof *items);
    *dim = 0;
    if (!o->runner || !o->model || !*o->model)
        return vd_error_set(err, VD_ERR_INVALID, "embed: a runner and a model are needed");
    char cache_model[VD_MODEL_NAME_MAX + 8];
    vd_embed_cache_model(o->model, o->mode, cache_model, sizeof cache_model);
    vd_model_meta meta;
    vd_status st = vd_embed_check_model(o->runner, o->model, o->mode, &meta, err);
    if (st != VD_OK) return st;
    if (o->mode == VD_EMBED_IMAGE && (meta.width <= 0 || meta.height <= 0))
        return vd_error_set(err, VD_ERR_INVALID, "model %s has no input size", o->model);
    run_ctx c = {o, cache_model, items, dim, stats, meta.dim > 0 ? meta.dim : 0};

    /* 1. hash every file; 2. one cache lookup for all of them */
    size_t *miss = malloc((n ? n : 1) * sizeof *miss);
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    size_t *key_of = malloc((n ? n : 1) * sizeof *key_of);
    if (!miss || !keys || !key_of) {
        free(miss), free(keys), free(key_of);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    size_t nkeys = 0, nmiss = 0;
    int64_t t0 = vd_mono_us();
    for (size_t i = 0; i < n; i++) {
        uint8_t dig[VD_SHA256_LEN];
        vd_error e;
        vd_error_clear(&e);
        if (vd_blob_ref_parse(paths[i], items[i].sha256)) { /* the store checks it on reading */
            keys[nkeys] = items[i].sha256;
            key_of[nkeys++] = i;
            continue;
        }
        vd_status hs = vd_media_sha256(o->roots, paths[i], NULL, dig, NULL, &e);
        if (hs != VD_OK) {
            item_fail(&items[i], hs, vd_error_text(&e));
            stats->failed++;
            if (o->on_item) o->on_item(o->ud, i, &items[i]);
            continue;
        }
        vd_sha256_hex(dig, items[i].sha256);
        keys[nkeys] = items[i].sha256;
        key_of[nkeys++] = i;
    }
    stats->decode_us += vd_mono_us() - t0;
    vd_embedding *found = NULL;
    if (o->store && nkeys) {
        st = vd_store_embeddings_get(o->store, cache_model, c.want, nkeys, keys, &found, NULL, err);
        if (st != VD_OK) goto out;
    }
    for (size_t k = 0; k < nkeys; k++) {
        size_t i = key_of[k];
        /* a cached vector of another length (an older model of this name) is computed again */
        if (found && found[k].found && vector_fits(&c, found[k].dim)) {
            items[i].cached = 1;
            items[i].dim = found[k].dim;
            *dim = found[k].dim;
            if (o->want_vectors) {
                items[i].vector = found[k].vector; /* move */
                found[k].vector = NULL;
            }
            stats->cached++;
            if (o->on_item) o->on_item(o->ud, i, &items[i]);
        } else {
            miss[nmiss++] = i;
        }
    }
    if (found) vd_embedding_list_free(found, nkeys);
    if (nmiss == 0) goto out;

    /* 3. decode ahead on a thread while this one runs the model */
    size_t bsz = o->batch ? o->batch : (meta.max_batch > 0 ? (size_t)meta.max_batch : 16);
    if (bsz > MAX_BATCH) bsz = MAX_BATCH;
    if (o->mode == VD_EMBED_FACE && bsz > 8) bsz = 8; /* whole decoded images are held */
    st = decode_and_run(&c, &meta, paths, miss, nmiss, bsz, err);
out:
    free(miss);
    free(keys);
    free(key_of);
    return st;
}
