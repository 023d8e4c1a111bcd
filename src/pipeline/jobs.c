/* jobs.c: the embed and train_session job types, the registry of every type
 * (pipeline/jobs.h; the index job: index.c). */
#include "pipeline/jobs.h"
#include "pipeline/jobs_impl.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sha256.h"
#include "core/util.h"
#include "image/decode.h"
#include "jobspec/jobspec.h"
#include "pipeline/light.h"
#include "infer/runner_client.h"
#include "store/blobs.h"
#include "store/vectors.h"
#include "train/classifier.h"
#include "pipeline/zeroshot.h"
#include "store/classifiers.h"

const char *vd_pipeline_default_model(vd_session_kind kind)
{
    return vd_embed_default_model(kind == VD_SESSION_FACE ? VD_EMBED_FACE : VD_EMBED_IMAGE);
}

vd_embed_mode vd_pipeline_session_mode(const vd_session *s)
{
    if (s->kind != VD_SESSION_FACE) return VD_EMBED_IMAGE;
    json_t *o = json_loads(s->options_json ? s->options_json : "{}", 0, NULL);
    int crop = json_is_true(json_object_get(o, "crop"));
    json_decref(o);
    return crop ? VD_EMBED_IMAGE : VD_EMBED_FACE;
}

vd_status vd_pipeline_open_services(const vd_pipeline_config *cfg, vd_store **store,
                                    vd_runner **runner, vd_error *err)
{
    *store = NULL;
    *runner = NULL;
    vd_status st = vd_image_init(NULL, err);
    if (st != VD_OK) return st;
    st = vd_pipeline_open_store(cfg, store, err);
    if (st != VD_OK) return st;
    st = vd_runner_client_new(cfg ? cfg->model_server : NULL, cfg ? cfg->models_path : NULL, 0,
                              runner, err);
    if (st != VD_OK) {
        vd_store_close(*store);
        *store = NULL;
    }
    return st;
}

vd_status vd_pipeline_read_blob(void *ud, const char *sha, uint8_t **data, size_t *len,
                                vd_error *err)
{
    vd_pipeline_blob_reader *r = ud;
    vd_status st = r->store ? VD_OK : vd_pipeline_open_store(r->cfg, &r->store, err);
    if (st == VD_OK) st = vd_store_blob_get(r->store, sha, 0, data, len, err);
    return st;
}

/* ---- embed ---------------------------------------------------------------- */

typedef struct {
    vd_job_ctx *ctx;
    size_t done, total;
} embed_ud;

static void embed_on_item(void *ud, size_t i, const vd_embed_item *it)
{
    (void)i;
    (void)it;
    embed_ud *u = ud;
    vd_job_ctx_progress(u->ctx, (int64_t)++u->done, (int64_t)u->total);
}

static int embed_should_stop(void *ud)
{
    return vd_job_ctx_should_stop(((embed_ud *)ud)->ctx);
}

static vd_status job_embed(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    const vd_pipeline_config *cfg = vd_job_ctx_userdata(ctx);
    json_t *p;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    vd_embed_payload ep;
    st = vd_embed_payload_parse(p, &ep, err); /* the rule vd_job_check applied at enqueue */
    if (st != VD_OK) {
        json_decref(p);
        return st;
    }
    const char *model =
        ep.model ? ep.model : vd_embed_default_model(ep.face ? VD_EMBED_FACE : VD_EMBED_IMAGE);
    size_t n = ep.npaths;
    const char **paths = calloc(n ? n : 1, sizeof *paths);
    vd_embed_item *items = calloc(n ? n : 1, sizeof *items);
    if (!paths || !items) {
        free(paths), free(items), json_decref(p);
        return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        paths[i] = json_string_value(json_array_get(ep.paths, i));
    vd_store *store;
    vd_runner *runner;
    st = vd_pipeline_open_services(cfg, &store, &runner, err);
    if (st == VD_OK) {
        embed_ud u = {ctx, 0, n};
        vd_job_ctx_progress(ctx, 0, (int64_t)n);
        vd_embed_opts o = {.runner = runner,
                           .store = store,
                           .model = model,
                           .mode = ep.face ? VD_EMBED_FACE : VD_EMBED_IMAGE,
                           .roots = cfg ? cfg->roots : NULL,
                           .on_item = embed_on_item,
                           .should_stop = embed_should_stop,
                           .ud = &u};
        int dim = 0;
        vd_embed_stats stats;
        st = vd_embed_paths(&o, paths, n, items, &dim, &stats, err);
        if (st == VD_ERR_NOT_FOUND || st == VD_ERR_UNSUPPORTED) /* unknown model, wrong task */
            vd_job_ctx_set_retryable(ctx, 0);
        if (st == VD_OK) {
            json_t *r = json_object(), *arr = json_array();
            json_object_set_new(r, "model", json_string(model));
            json_object_set_new(r, "dim", json_integer(dim));
            for (size_t i = 0; i < n; i++) {
                json_t *e = json_object();
                json_object_set_new(e, "path", json_string(paths[i]));
                if (items[i].status == VD_OK) {
                    json_object_set_new(e, "sha256", json_string(items[i].sha256));
                    json_object_set_new(e, "cached", json_boolean(items[i].cached));
                } else {
                    json_object_set_new(e, "error", json_string(items[i].error));
                }
                json_array_append_new(arr, e);
            }
            json_object_set_new(r, "embeddings", arr);
            json_object_set_new(r, "computed", json_integer((json_int_t)stats.computed));
            json_object_set_new(r, "cached", json_integer((json_int_t)stats.cached));
            json_object_set_new(r, "failed", json_integer((json_int_t)stats.failed));
            json_object_set_new(r, "batches", json_integer((json_int_t)stats.batches));
            *result = json_dumps(r, JSON_COMPACT);
            json_decref(r);
        }
        vd_embed_items_clear(items, n);
        vd_runner_free(runner);
        vd_store_close(store);
    }
    free(items);
    free(paths);
    json_decref(p);
    return st;
}

/* ---- train_session ------------------------------------------------------ */

typedef struct {
    vd_job_ctx *ctx;
    vd_store *store;
    const char *sid;
    vd_example *ex;
    size_t *map; /* item -> example index */
    int64_t done, total;
    int64_t next_check_ms;
    int gone; /* the session was canceled or deleted */
    vd_status write_err;
    vd_error werr;
} train_ud;

/* The error recorded for an example: the item's, and for a media file this
 * worker cannot find (the API that accepted the path found it, on its own
 * host), which host looked and what every host that runs jobs needs. */
static void example_error(const char *path, const vd_embed_item *it, char *msg, size_t n)
{
    const char *e = it->error ? it->error : "failed";
    char sha[VD_SHA256_HEX_LEN + 1], host[256] = "?";
    if (it->status != VD_ERR_NOT_FOUND || vd_blob_ref_parse(path, sha)) {
        snprintf(msg, n, "%s", e);
        return;
    }
    gethostname(host, sizeof host - 1);
    snprintf(msg, n,
             "%s: not found on the worker's host %.100s (every host that runs jobs needs the "
             "media at the same path as the API's host)",
             e, host);
}

static void train_on_item(void *ud, size_t i, const vd_embed_item *it)
{
    train_ud *u = ud;
    vd_example *e = &u->ex[u->map[i]];
    vd_error err;
    vd_status st;
    if (it->status == VD_OK) {
        st = vd_store_example_update(u->store, u->sid, e->idx, it->sha256, VD_EXAMPLE_EMBEDDED,
                                     NULL, &err);
        e->status = VD_EXAMPLE_EMBEDDED;
    } else {
        char msg[1024];
        example_error(e->path, it, msg, sizeof msg);
        st = vd_store_example_update(u->store, u->sid, e->idx, it->sha256[0] ? it->sha256 : NULL,
                                     VD_EXAMPLE_FAILED, msg, &err);
        if (st == VD_OK) st = vd_store_session_add_error(u->store, u->sid, e->path, msg, &err);
        e->status = VD_EXAMPLE_FAILED;
    }
    u->done++;
    if (st == VD_OK) st = vd_store_session_set_progress(u->store, u->sid, u->done, u->total, &err);
    if (st == VD_ERR_NOT_FOUND)
        u->gone = 1;
    else if (st != VD_OK && !u->write_err) {
        u->write_err = st;
        u->werr = err;
    }
    vd_job_ctx_progress(u->ctx, u->done, u->total);
}

static int train_should_stop(void *ud)
{
    train_ud *u = ud;
    if (u->gone || u->write_err || vd_job_ctx_should_stop(u->ctx)) return 1;
    int64_t now = vd_mono_ms();
    if (now >= u->next_check_ms) {
        u->next_check_ms = now + 500;
        vd_session s;
        memset(&s, 0, sizeof s);
        vd_status st = vd_store_session_get(u->store, u->sid, &s, NULL);
        if (st == VD_ERR_NOT_FOUND || (st == VD_OK && s.state == VD_SESSION_CANCELED)) u->gone = 1;
        vd_session_clear(&s);
    }
    return u->gone;
}

/* Ends the session failed (when it has not ended otherwise) and returns st. */
static vd_status fail_session(vd_store *store, const char *sid, vd_status st, const vd_error *why)
{
    vd_store_session_finish(store, sid, VD_SESSION_FAILED, NULL, 0, vd_error_text(why), NULL);
    return st;
}

static char *train_result(const char *sid, const char *state, const vd_train_result *r,
                          size_t embedded, size_t failed)
{
    json_t *j = json_object();
    json_object_set_new(j, "session_id", json_string(sid));
    json_object_set_new(j, "state", json_string(state));
    json_object_set_new(j, "embedded", json_integer((json_int_t)embedded));
    json_object_set_new(j, "failed", json_integer((json_int_t)failed));
    if (r) {
        json_object_set_new(j, "algorithm", json_string(vd_clf_algorithm_name(r->algorithm)));
        json_object_set_new(j, "cv_accuracy", json_real(r->cv_accuracy));
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

/* 1 when the session asked for its label prompts as priors. */
static int session_prompt_priors(const vd_session *s)
{
    json_t *o = json_loads(s->options_json ? s->options_json : "{}", 0, NULL);
    int on = json_is_true(json_object_get(o, "prompt_priors"));
    json_decref(o);
    return on;
}

static int cmp_label(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The priors of a prompt_priors session: its n labels (with repeats) made
 * distinct into *distinct (borrowed strings, *nd of them), and their prompt
 * vectors (pipeline/zeroshot.h) into *priors. */
static vd_status session_priors(const vd_session *s, vd_runner *runner, vd_store *store,
                                const char **labels, size_t n, int dim, const char ***distinct,
                                size_t *nd, float **priors, vd_error *err)
{
    const char **d = malloc((n ? n : 1) * sizeof *d);
    if (!d) return vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    memcpy(d, labels, n * sizeof *d);
    qsort(d, n, sizeof *d, cmp_label);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(d[k - 1], d[i]) != 0) d[k++] = d[i];
    vd_zeroshot_opts zo = {.runner = runner, .store = store, .model = s->model};
    int pdim = 0;
    vd_status st = vd_zeroshot_prompt_vectors(&zo, d, k, dim, priors, &pdim, err);
    if (st != VD_OK) {
        free(d);
        return st;
    }
    *distinct = d;
    *nd = k;
    return VD_OK;
}

/* Trains on the embedded examples: items[k] is example ex[map[k]]; a failed
 * item adds to *nfailed, the others are the training set (*nok of them).
 * VD_ERR_INVALID when none could be embedded. */
static vd_status train_fit(const vd_session *s, vd_runner *runner, vd_store *store,
                           const vd_example *ex, const size_t *map, const vd_embed_item *items,
                           size_t m, int dim, size_t *nfailed, size_t *nok, vd_train_result *tr,
                           vd_error *err)
{
    float *vecs = malloc((m ? m : 1) * (size_t)(dim > 0 ? dim : 1) * sizeof(float));
    const char **labels = calloc(m ? m : 1, sizeof *labels);
    vd_status st = VD_OK;
    if (!vecs || !labels) st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
    for (size_t k = 0; st == VD_OK && k < m; k++) {
        if (items[k].status != VD_OK || !items[k].vector) {
            *nfailed += items[k].status != VD_OK;
            continue;
        }
        memcpy(vecs + *nok * (size_t)dim, items[k].vector, (size_t)dim * sizeof(float));
        labels[(*nok)++] = ex[map[k]].label;
    }
    if (st == VD_OK && *nok == 0)
        st = vd_error_set(err, VD_ERR_INVALID, "no example could be embedded (%zu failed)",
                          *nfailed);
    vd_train_opts to;
    vd_session_train_opts(&to, s->kind);
    const char **plabels = NULL;
    float *priors = NULL;
    if (st == VD_OK && session_prompt_priors(s)) {
        st = session_priors(s, runner, store, labels, *nok, dim, &plabels, &to.npriors, &priors,
                            err);
        to.priors = priors;
        to.prior_labels = plabels;
    }
    if (st == VD_OK) st = vd_train(vecs, *nok, (size_t)dim, labels, &to, tr, err);
    free(priors);
    free(plabels);
    free(vecs);
    free(labels);
    return st;
}

static vd_status train_run(vd_job_ctx *ctx, vd_store *store, vd_runner *runner,
                           const vd_media_roots *roots, const char *sid, char **result,
                           vd_error *err)
{
    vd_session s;
    memset(&s, 0, sizeof s);
    vd_status st = vd_store_session_get(store, sid, &s, err);
    if (st != VD_OK) {
        vd_job_ctx_set_retryable(ctx, 0);
        return st;
    }
    if (vd_session_state_is_final(s.state)) { /* a duplicate delivery: nothing to do */
        *result = train_result(sid, vd_session_state_name(s.state), NULL, 0, 0);
        vd_session_clear(&s);
        return VD_OK;
    }
    st = vd_store_session_set_state(store, sid, VD_SESSION_RUNNING, err);
    vd_example *ex = NULL;
    size_t n = 0;
    if (st == VD_OK) st = vd_store_examples_list(store, sid, &ex, &n, err);
    if (st != VD_OK) {
        vd_session_clear(&s);
        return st;
    }
    /* Examples that failed in an earlier attempt stay failed (their errors
     * are recorded); every other one goes through the cache again. */
    const char **paths = calloc(n ? n : 1, sizeof *paths);
    size_t *map = calloc(n ? n : 1, sizeof *map);
    vd_embed_item *items = calloc(n ? n : 1, sizeof *items);
    size_t m = 0, nfailed = 0, nok = 0;
    int dim = 0;
    vd_train_result tr;
    memset(&tr, 0, sizeof tr);
    if (!paths || !map || !items) {
        st = vd_error_set(err, VD_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (ex[i].status == VD_EXAMPLE_FAILED) {
            nfailed++;
            continue;
        }
        paths[m] = ex[i].path;
        map[m++] = i;
    }
    train_ud u = {.ctx = ctx,
                  .store = store,
                  .sid = sid,
                  .ex = ex,
                  .map = map,
                  .done = (int64_t)nfailed,
                  .total = (int64_t)n};
    vd_store_session_set_progress(store, sid, u.done, u.total, NULL);
    vd_job_ctx_progress(ctx, u.done, u.total);
    vd_pipeline_blob_reader br = {.cfg = vd_job_ctx_userdata(ctx)};
    vd_embed_opts o = {.runner = runner,
                       .store = store,
                       .roots = roots,
                       .read_blob = vd_pipeline_read_blob,
                       .blob_ud = &br,
                       .model = s.model,
                       .mode = vd_pipeline_session_mode(&s),
                       .want_vectors = 1,
                       .on_item = train_on_item,
                       .should_stop = train_should_stop,
                       .ud = &u};
    st = vd_embed_paths(&o, paths, m, items, &dim, NULL, err);
    vd_store_close(br.store); /* the decode thread has ended */
    if (st == VD_OK && u.write_err) {
        st = u.write_err;
        *err = u.werr;
    }
    if (st == VD_OK && (u.gone || train_should_stop(&u)))
        st = vd_error_set(err, VD_ERR_CANCELED, "the session was canceled or deleted");
    if (st == VD_ERR_CANCELED) {
        if (u.gone) vd_job_ctx_set_retryable(ctx, 0); /* else: the worker decides */
        goto out;
    }
    if (st != VD_OK) {
        /* The model server or the store failed: retried while attempts are
         * left (the cache keeps what was embedded); the last one fails the
         * session. An unknown model does not get better. */
        int hopeless = st == VD_ERR_NOT_FOUND || st == VD_ERR_INVALID || st == VD_ERR_UNSUPPORTED;
        if (hopeless) vd_job_ctx_set_retryable(ctx, 0);
        if (hopeless || vd_job_ctx_attempt(ctx) >= vd_job_ctx_max_attempts(ctx))
            fail_session(store, sid, st, err);
        goto out;
    }
    st = train_fit(&s, runner, store, ex, map, items, m, dim, &nfailed, &nok, &tr, err);
    if (st != VD_OK) {
        vd_job_ctx_set_retryable(ctx, st != VD_ERR_INVALID);
        if (st == VD_ERR_INVALID) fail_session(store, sid, st, err);
        goto out;
    }
    st = vd_store_classifier_save(store, sid, &tr, err);
    if (st == VD_ERR_STATE || st == VD_ERR_NOT_FOUND) {
        vd_job_ctx_set_retryable(ctx, 0);
        st = vd_error_set(err, VD_ERR_CANCELED, "the session was canceled or deleted");
        goto out;
    }
    if (st == VD_OK) *result = train_result(sid, "succeeded", &tr, nok, nfailed);
out:
    vd_train_result_clear(&tr);
    vd_embed_items_clear(items, m);
    free(items);
    free(map);
    free(paths);
    vd_example_list_free(ex, n);
    vd_session_clear(&s);
    return st;
}

static vd_status job_train(vd_job_ctx *ctx, const char *payload, char **result, vd_error *err)
{
    const vd_pipeline_config *cfg = vd_job_ctx_userdata(ctx);
    json_t *p;
    vd_status st = vd_job_payload_object(payload, &p, err);
    if (st != VD_OK) return st;
    const char *sid;
    st = vd_train_payload_parse(p, &sid, err); /* the rule vd_job_check applied at enqueue */
    if (st != VD_OK) {
        json_decref(p);
        return st;
    }
    vd_store *store;
    vd_runner *runner;
    st = vd_pipeline_open_services(cfg, &store, &runner, err);
    if (st == VD_OK) {
        st = train_run(ctx, store, runner, cfg ? cfg->roots : NULL, sid, result, err);
        vd_runner_free(runner);
        vd_store_close(store);
    }
    json_decref(p);
    return st;
}

/* Registers the types whose horses decode images (embed, train_session, index). */
static vd_status register_decoding(vd_registry *reg, const vd_pipeline_config *cfg, vd_error *err)
{
    void *ud = (void *)cfg;
    vd_status st = vd_registry_add(reg, "embed", job_embed, ud, err);
    if (st == VD_OK) st = vd_registry_add(reg, "train_session", job_train, ud, err);
    if (st == VD_OK) st = vd_registry_add(reg, "index", vd_pipeline_job_index, ud, err);
    return st;
}

vd_status vd_pipeline_prepare_worker(vd_error *err)
{
    vd_status st = vd_image_init(NULL, err);
    if (st == VD_OK) vd_sha256_prepare();
    return st;
}

vd_status vd_pipeline_registry_new(const vd_pipeline_config *cfg, int test_jobs, vd_registry **out,
                                   vd_error *err)
{
    vd_status st = vd_pipeline_light_registry_new(cfg, test_jobs, out, err);
    if (st == VD_OK && (st = register_decoding(*out, cfg, err)) != VD_OK) {
        vd_registry_free(*out);
        *out = NULL;
    }
    return st;
}
