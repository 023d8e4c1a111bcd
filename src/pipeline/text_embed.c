/* text_embed.c: texts through a CLIP text tower (pipeline/text_embed.h). */
#include "pipeline/text_embed.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/sha256.h"
#include "core/util.h"
#include "store/vectors.h"
#include "text/bpe.h"

#define TEXT_BATCH 32 /* texts per inference request */

/* The process's tokenizers, by file and its identity: loaded once, shared
 * read-only by every thread (a vd_bpe is), kept until exit. */
typedef struct tok_entry {
    char path[4096];
    struct stat sb;
    vd_bpe *bpe;
    struct tok_entry *next;
} tok_entry;

static pthread_mutex_t tok_mu = PTHREAD_MUTEX_INITIALIZER;
static tok_entry *tok_list;

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The tokenizer at path (borrowed: lives until exit). A file changed since is read again;
 * the old one stays (another thread may still use it). */
static vd_status tokenizer_get(const char *path, const vd_bpe **out, vd_error *err)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return vd_error_set(err, VD_ERR_MODEL, "%s: the model's tokenizer is missing", path);
    pthread_mutex_lock(&tok_mu);
    for (tok_entry *e = tok_list; e; e = e->next)
        if (strcmp(e->path, path) == 0 && same_file(&e->sb, &sb)) {
            *out = e->bpe;
            pthread_mutex_unlock(&tok_mu);
            return VD_OK;
        }
    tok_entry *e = calloc(1, sizeof *e);
    vd_status st =
        e ? vd_bpe_load(path, &e->bpe, err) : vd_error_set(err, VD_ERR_NOMEM, "no memory");
    if (st == VD_OK) {
        vd_strlcpy(e->path, path, sizeof e->path);
        e->sb = sb;
        e->next = tok_list;
        tok_list = e;
        *out = e->bpe;
    } else {
        free(e);
        if (st != VD_ERR_NOMEM)
            st = VD_ERR_MODEL; /* the model's files are wrong, not the request */
        err->code = st;
    }
    pthread_mutex_unlock(&tok_mu);
    return st;
}

/* The pad id: the metadata's pad_token's id in the tokenizer, else pad_id. */
static vd_status pad_id_of(const vd_model_meta *m, const vd_bpe *b, int32_t *pad, vd_error *err)
{
    *pad = m->pad_id;
    if (!m->pad_token[0]) return VD_OK;
    int32_t id = vd_bpe_token_id(b, m->pad_token);
    if (id < 0)
        return vd_error_set(err, VD_ERR_MODEL, "%s: the pad token \"%s\" is not in its vocabulary",
                            m->tokenizer_path, m->pad_token);
    *pad = id;
    return VD_OK;
}

vd_status vd_text_model_check(const vd_model_meta *meta, vd_error *err)
{
    if (meta->task != VD_TASK_TEXT_EMBEDDING) return VD_OK;
    vd_bpe *b = NULL; /* loaded and freed: the model server keeps no tokenizer */
    int32_t pad = 0;
    vd_status st = vd_bpe_load(meta->tokenizer_path, &b, err);
    if (st == VD_OK) st = pad_id_of(meta, b, &pad, err);
    if (st == VD_OK && ((meta->start_id >= 0 && meta->start_id != vd_bpe_start_id(b)) ||
                        (meta->end_id >= 0 && meta->end_id != vd_bpe_end_id(b))))
        st = vd_error_set(err, VD_ERR_MODEL,
                          "%s: its start/end ids are %d/%d, the metadata says %d/%d",
                          meta->tokenizer_path, (int)vd_bpe_start_id(b), (int)vd_bpe_end_id(b),
                          (int)meta->start_id, (int)meta->end_id);
    vd_bpe_free(b);
    return st;
}

vd_status vd_text_model_resolve(vd_runner *runner, const char *model, vd_model_meta *meta,
                                vd_error *err)
{
    vd_status st = vd_runner_meta(runner, model, meta, err);
    if (st != VD_OK) return st;
    if (meta->task == VD_TASK_TEXT_EMBEDDING) return VD_OK;
    if (meta->task == VD_TASK_IMAGE_EMBEDDING && meta->text_model[0]) {
        char text_model[VD_MODEL_NAME_MAX];
        vd_strlcpy(text_model, meta->text_model, sizeof text_model);
        st = vd_runner_meta(runner, text_model, meta, err);
        if (st == VD_OK && meta->task != VD_TASK_TEXT_EMBEDDING)
            st = vd_error_set(err, VD_ERR_UNSUPPORTED,
                              "model %s names %s as its text tower, which is a %s model", model,
                              text_model, vd_model_task_name(meta->task));
        return st;
    }
    return vd_error_set(err, VD_ERR_UNSUPPORTED,
                        "model %s is a %s model with no text tower: texts need a text_embedding "
                        "model (a CLIP folder's NAME or NAME.textual)",
                        model, vd_model_task_name(meta->task));
}

void vd_text_items_clear(vd_text_item *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++) {
        free(items[i].vector);
        memset(&items[i], 0, sizeof items[i]);
    }
}

/* The cache key of a text: SHA-256 of "text:" + its bytes. */
static vd_status text_key(const char *text, char hex[VD_SHA256_HEX_LEN + 1], vd_error *err)
{
    size_t len = strlen(text);
    char *buf = malloc(len + 6);
    if (!buf) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    memcpy(buf, "text:", 5);
    memcpy(buf + 5, text, len);
    uint8_t dig[VD_SHA256_LEN];
    vd_sha256(buf, len + 5, dig);
    vd_sha256_hex(dig, hex);
    free(buf);
    return VD_OK;
}

/* Runs one request of k texts (their ids in ids[k * ctx]) and fills their items. */
static vd_status run_chunk(const vd_text_opts *o, const vd_model_meta *m, const int32_t *ids,
                           const size_t *which, size_t k, vd_text_item *items, int *dim,
                           vd_error *err)
{
    int64_t shape[2] = {(int64_t)k, m->context_length};
    vd_tensor in, outs[VD_MODEL_MAX_OUTPUT];
    size_t nouts = 0;
    vd_status st = vd_tensor_alloc_dtype(&in, VD_DTYPE_INT32, shape, 2, err);
    if (st != VD_OK) return st;
    memcpy(in.i32, ids, k * (size_t)m->context_length * sizeof(int32_t));
    st = vd_runner_run(o->runner, m->name, &in, outs, VD_MODEL_MAX_OUTPUT, &nouts, err);
    vd_tensor_free(&in);
    if (st != VD_OK) return st;
    const vd_tensor *e = &outs[0];
    if (nouts < 1 || e->rank != 2 || e->shape[0] != (int64_t)k || e->shape[1] <= 0 ||
        (*dim > 0 && e->shape[1] != *dim))
        st = vd_error_set(err, VD_ERR_MODEL, "model %s: its output is not [%zu, dim]", m->name, k);
    for (size_t j = 0; st == VD_OK && j < k; j++) {
        *dim = (int)e->shape[1];
        float *v = malloc((size_t)*dim * sizeof *v);
        if (!v) {
            st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
            break;
        }
        memcpy(v, e->data + j * (size_t)*dim, (size_t)*dim * sizeof *v);
        double ss = 0;
        for (int d = 0; d < *dim; d++)
            ss += (double)v[d] * v[d];
        if (m->l2_normalize && ss > 0)
            for (int d = 0; d < *dim; d++)
                v[d] = (float)(v[d] / sqrt(ss));
        items[which[j]].vector = v;
    }
    for (size_t i = 0; i < nouts; i++)
        vd_tensor_free(&outs[i]);
    return st;
}

/* Tokenizes every text into ids[n * ctx]; errors name the text's index. */
static vd_status tokenize_all(const vd_model_meta *m, const char *const *texts, size_t n,
                              int32_t *ids, vd_text_item *items, vd_error *err)
{
    const vd_bpe *b = NULL;
    int32_t pad = 0;
    vd_status st = tokenizer_get(m->tokenizer_path, &b, err);
    if (st == VD_OK) st = pad_id_of(m, b, &pad, err);
    size_t ctx = (size_t)m->context_length;
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        vd_error e;
        vd_error_clear(&e);
        st = vd_bpe_encode(b, texts[i], strlen(texts[i]), ctx, pad, ids + i * ctx, &items[i].tokens,
                           &items[i].truncated, &e);
        if (st != VD_OK) st = vd_error_set(err, st, "texts[%zu]: %s", i, vd_error_text(&e));
    }
    return st;
}

/* Looks up the cache: fills the hits' items, returns the misses' indices in miss[]. */
static vd_status cache_get(const vd_text_opts *o, const char *ckey,
                           char (*keys)[VD_SHA256_HEX_LEN + 1], size_t n, int *dim,
                           vd_text_item *items, size_t *miss, size_t *nmiss, vd_error *err)
{
    *nmiss = 0;
    vd_embedding *found = NULL;
    const char **kp = malloc(n * sizeof *kp);
    if (!kp) return vd_error_set(err, VD_ERR_NOMEM, "no memory");
    for (size_t i = 0; i < n; i++)
        kp[i] = keys[i];
    vd_status st = VD_OK;
    if (o->store) st = vd_store_embeddings_get(o->store, ckey, *dim, n, kp, &found, NULL, err);
    for (size_t i = 0; st == VD_OK && i < n; i++) {
        if (found && found[i].found && (*dim == 0 || found[i].dim == *dim)) {
            *dim = found[i].dim;
            items[i].vector = found[i].vector;
            found[i].vector = NULL;
            items[i].cached = 1;
        } else {
            miss[(*nmiss)++] = i;
        }
    }
    if (found) vd_embedding_list_free(found, n);
    free(kp);
    return st;
}

vd_status vd_text_embed(const vd_text_opts *o, const char *const *texts, size_t n,
                        vd_text_item *items, int *dim, char *model_used, vd_error *err)
{
    *dim = 0;
    if (n) memset(items, 0, n * sizeof *items);
    if (n == 0) return vd_error_set(err, VD_ERR_INVALID, "texts: give at least one text");
    if (n > VD_TEXT_MAX_TEXTS)
        return vd_error_set(err, VD_ERR_LIMIT, "texts: %zu texts; at most %d a request", n,
                            VD_TEXT_MAX_TEXTS);
    vd_model_meta m;
    vd_status st = vd_text_model_resolve(o->runner, o->model, &m, err);
    if (st != VD_OK) return st;
    if (model_used) vd_strlcpy(model_used, m.name, VD_MODEL_NAME_MAX);
    size_t ctx = (size_t)m.context_length;
    int32_t *ids = malloc(n * ctx * sizeof *ids);
    char(*keys)[VD_SHA256_HEX_LEN + 1] = malloc(n * sizeof *keys);
    size_t *miss = malloc(n * sizeof *miss), nmiss = 0;
    if (!ids || !keys || !miss) st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
    if (st == VD_OK) st = tokenize_all(&m, texts, n, ids, items, err);
    for (size_t i = 0; st == VD_OK && i < n; i++)
        st = text_key(texts[i], keys[i], err);
    char ckey[VD_MODEL_NAME_MAX + 8];
    snprintf(ckey, sizeof ckey, "%s+text", m.name);
    *dim = m.dim;
    if (st == VD_OK) st = cache_get(o, ckey, keys, n, dim, items, miss, &nmiss, err);
    for (size_t c = 0; st == VD_OK && c < nmiss; c += TEXT_BATCH) {
        size_t k = nmiss - c < TEXT_BATCH ? nmiss - c : TEXT_BATCH;
        int32_t chunk[TEXT_BATCH * 64];
        int32_t *buf = k * ctx <= sizeof chunk / sizeof chunk[0] ? chunk : malloc(k * ctx * 4);
        if (!buf) {
            st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
            break;
        }
        for (size_t j = 0; j < k; j++)
            memcpy(buf + j * ctx, ids + miss[c + j] * ctx, ctx * sizeof *ids);
        st = run_chunk(o, &m, buf, miss + c, k, items, dim, err);
        if (buf != chunk) free(buf);
    }
    if (st == VD_OK && o->store && nmiss > 0) {
        const char **kp = malloc(nmiss * sizeof *kp);
        const float **vp = malloc(nmiss * sizeof *vp);
        if (kp && vp) {
            for (size_t j = 0; j < nmiss; j++) {
                kp[j] = keys[miss[j]];
                vp[j] = items[miss[j]].vector;
            }
            st = vd_store_embeddings_put(o->store, ckey, nmiss, kp, vp, *dim, err);
        } else {
            st = vd_error_set(err, VD_ERR_NOMEM, "no memory");
        }
        free(kp);
        free(vp);
    }
    if (st != VD_OK) vd_text_items_clear(items, n);
    free(ids);
    free(keys);
    free(miss);
    return st;
}
