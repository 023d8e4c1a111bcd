/* test_pipeline.c: the cached, pipelined embedding (pipeline/embed.h) on real
 * photos and real models, with the in-process ONNX Runtime runner and a real
 * store: cache misses then hits with identical vectors, per-file errors, small
 * batches through the decode thread, a stop between batches that keeps what
 * was stored, and face mode. Skips without the converted models
 * (scripts/models.sh --out data/models). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../lib/imgtest.h"
#include "../lib/vdtest.h"
#include "image/decode.h"
#include "infer/runner.h"
#include "pipeline/embed.h"
#include "store/store.h"
#include "store/vectors.h"

#define MODELS_PATH VISIOND_SOURCE_DIR "/data/models:" VISIOND_SOURCE_DIR "/models"
#define NPHOTOS     6

static vd_runner *runner;

static int ready(void)
{
    struct stat sb;
    if (stat(VISIOND_SOURCE_DIR "/data/models/mobilenet_v2.onnx", &sb) != 0 ||
        stat(VISIOND_SOURCE_DIR "/data/models/faceres.onnx", &sb) != 0) {
        vd_test_skip("converted models missing (scripts/models.sh --out data/models)");
        return 0;
    }
    char p[512];
    if (stat(imgtest_sample(p, sizeof p, 1), &sb) != 0) {
        vd_test_skip("face-api demo photos missing");
        return 0;
    }
    vd_error err;
    if (!runner && vd_runner_ort_new(MODELS_PATH, 1, &runner, &err) != VD_OK) {
        vd_test_skip(err.msg);
        return 0;
    }
    return 1;
}

/* Copies the face-api photos into dir and adds a text file and a missing path. */
static size_t make_inputs(const char *dir, char paths[][512])
{
    size_t n = 0;
    for (int i = 1; i <= NPHOTOS; i++) {
        char src[512];
        imgtest_sample(src, sizeof src, i);
        snprintf(paths[n++], 512, "%s", src);
    }
    snprintf(paths[n], 512, "%s/notes.jpg", dir);
    imgtest_write(paths[n++], "not a picture", 13);
    snprintf(paths[n++], 512, "%s/missing.jpg", dir);
    return n;
}

typedef struct {
    int calls[16];
    int stop_after; /* stop once this many items are done (0 = never) */
    int done;
} counter;

static void on_item(void *ud, size_t i, const vd_embed_item *it)
{
    (void)it;
    counter *c = ud;
    c->calls[i]++;
    c->done++;
}

static int should_stop(void *ud)
{
    counter *c = ud;
    return c->stop_after > 0 && c->done >= c->stop_after;
}

static double norm(const float *v, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

VD_TEST(misses_then_hits_with_the_same_vectors_and_per_file_errors)
{
    if (!ready()) return;
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char paths[16][512];
    size_t n = make_inputs(dir, paths);
    const char *pp[16];
    for (size_t i = 0; i < n; i++)
        pp[i] = paths[i];
    char db[600];
    snprintf(db, sizeof db, "%s/store.db", dir);
    vd_store *store;
    CHECK_OK(vd_store_open(db, NULL, &store, &err));

    counter c = {0};
    vd_embed_opts o = {.runner = runner,
                       .store = store,
                       .model = "mobilenet_v2",
                       .want_vectors = 1,
                       .batch = 4,
                       .on_item = on_item,
                       .ud = &c};
    vd_embed_item a[16], b[16];
    vd_embed_stats st;
    int dim = 0;
    CHECK_OK(vd_embed_paths(&o, pp, n, a, &dim, &st, &err));
    printf(
        "    first pass: %zu computed in %zu batches, %zu failed; decode %.0f ms, infer %.0f ms\n",
        st.computed, st.batches, st.failed, st.decode_us / 1e3, st.infer_us / 1e3);
    CHECK_EQ_INT(dim, 1792);
    CHECK_EQ_INT((int)st.computed, NPHOTOS);
    CHECK_EQ_INT((int)st.cached, 0);
    CHECK_EQ_INT((int)st.failed, 2);
    CHECK_EQ_INT((int)st.batches, 2); /* 6 photos in batches of 4 */
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(c.calls[i], 1);
    for (int i = 0; i < NPHOTOS; i++) {
        CHECK_EQ_INT(a[i].status, VD_OK);
        CHECK(!a[i].cached && a[i].vector);
        CHECK(fabs(norm(a[i].vector, dim) - 1.0) < 1e-4);
        CHECK(vd_sha256_hex_valid(a[i].sha256));
        /* the whole upright size, though the decode shrank it on load to the model's input */
        vd_image full;
        CHECK_OK(vd_image_decode_file(paths[i], NULL, &full, NULL, &err));
        CHECK(full.width > 224 && a[i].src_width == full.width && a[i].src_height == full.height);
        vd_image_free(&full);
    }
    CHECK_EQ_INT(a[NPHOTOS].status, VD_ERR_IMAGE);
    CHECK(a[NPHOTOS].src_width == 0 && a[NPHOTOS + 1].src_width == 0);
    CHECK_EQ_STR(a[NPHOTOS].error, "not an image");
    CHECK(vd_sha256_hex_valid(a[NPHOTOS].sha256)); /* read, so hashed */
    CHECK_EQ_INT(a[NPHOTOS + 1].status, VD_ERR_NOT_FOUND);
    CHECK(a[NPHOTOS + 1].sha256[0] == '\0');
    /* different photos, different vectors */
    CHECK(memcmp(a[0].vector, a[1].vector, (size_t)dim * sizeof(float)) != 0);

    /* second pass, and a copy under another name: all hits, identical vectors */
    char copy[600];
    snprintf(copy, sizeof copy, "%s/copy-of-1.jpg", dir);
    uint8_t *data;
    size_t len;
    CHECK_OK(vd_image_read_file(paths[0], 0, &data, &len, &err));
    imgtest_write(copy, data, len);
    free(data);
    pp[n] = copy;
    memset(&c, 0, sizeof c);
    int dim2 = 0;
    CHECK_OK(vd_embed_paths(&o, pp, n + 1, b, &dim2, &st, &err));
    CHECK_EQ_INT(dim2, dim);
    CHECK_EQ_INT((int)st.computed, 0);
    CHECK_EQ_INT((int)st.cached, NPHOTOS + 1);
    CHECK_EQ_INT((int)st.batches, 0);
    for (int i = 0; i < NPHOTOS; i++) {
        CHECK(b[i].cached);
        CHECK(b[i].src_width == 0 && b[i].src_height == 0); /* nothing decoded */
        CHECK_EQ_STR(b[i].sha256, a[i].sha256);
        CHECK(memcmp(a[i].vector, b[i].vector, (size_t)dim * sizeof(float)) == 0);
    }
    CHECK(b[n].cached);
    CHECK(memcmp(a[0].vector, b[n].vector, (size_t)dim * sizeof(float)) == 0);

    /* the same vectors as one batch of everything: batching changes nothing */
    vd_embed_opts o3 = o;
    o3.store = NULL;
    o3.batch = 32;
    o3.on_item = NULL;
    vd_embed_item d[16];
    CHECK_OK(vd_embed_paths(&o3, pp, NPHOTOS, d, &dim2, &st, &err));
    CHECK_EQ_INT((int)st.batches, 1);
    for (int i = 0; i < NPHOTOS; i++) {
        double diff = 0;
        for (int k = 0; k < dim; k++)
            diff = fmax(diff, fabs(d[i].vector[k] - a[i].vector[k]));
        CHECK(diff < 1e-4);
    }
    vd_embed_items_clear(d, NPHOTOS);
    vd_embed_items_clear(a, n);
    vd_embed_items_clear(b, n + 1);
    vd_store_close(store);
}

VD_TEST(a_stop_between_batches_keeps_what_was_stored)
{
    if (!ready()) return;
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char paths[16][512];
    make_inputs(dir, paths);
    const char *pp[16];
    for (int i = 0; i < NPHOTOS; i++)
        pp[i] = paths[i];
    char db[600];
    snprintf(db, sizeof db, "%s/store.db", dir);
    vd_store *store;
    CHECK_OK(vd_store_open(db, NULL, &store, &err));
    counter c = {.stop_after = 2};
    vd_embed_opts o = {.runner = runner,
                       .store = store,
                       .model = "mobilenet_v2",
                       .batch = 2,
                       .on_item = on_item,
                       .should_stop = should_stop,
                       .ud = &c};
    vd_embed_item a[16];
    int dim;
    vd_embed_stats st;
    vd_status s = vd_embed_paths(&o, pp, NPHOTOS, a, &dim, &st, &err);
    CHECK_EQ_INT(s, VD_ERR_CANCELED);
    CHECK_EQ_INT((int)st.computed, 2);
    vd_embed_items_clear(a, NPHOTOS);
    /* the resumed run finds those two in the cache and computes the rest */
    c.stop_after = 0;
    c.done = 0;
    CHECK_OK(vd_embed_paths(&o, pp, NPHOTOS, a, &dim, &st, &err));
    CHECK_EQ_INT((int)st.cached, 2);
    CHECK_EQ_INT((int)st.computed, NPHOTOS - 2);
    vd_embed_items_clear(a, NPHOTOS);
    vd_store_close(store);
}

VD_TEST(face_mode_embeds_the_largest_face_and_says_when_there_is_none)
{
    if (!ready()) return;
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char p1[512], blank[600];
    imgtest_sample(p1, sizeof p1, 1);
    /* a flat grey picture has no face */
    snprintf(blank, sizeof blank, "%s/grey.png", dir);
    uint8_t *px = malloc(64 * 64 * 3);
    memset(px, 128, 64 * 64 * 3);
    VipsImage *im = imgtest_vips_from(px, 64, 64, 3);
    CHECK(imgtest_save(im, blank) == 0);
    g_object_unref(im);
    free(px);
    const char *pp[2] = {p1, blank};
    vd_embed_opts o = {
        .runner = runner, .model = "faceres", .mode = VD_EMBED_FACE, .want_vectors = 1};
    vd_embed_item a[2];
    int dim;
    CHECK_OK(vd_embed_paths(&o, pp, 2, a, &dim, NULL, &err));
    CHECK_EQ_INT(a[0].status, VD_OK);
    CHECK_EQ_INT(dim, 1024);
    CHECK(fabs(norm(a[0].vector, dim) - 1.0) < 1e-4);
    CHECK_EQ_INT(a[1].status, VD_ERR_NOT_FOUND);
    CHECK_EQ_STR(a[1].error, "no face found");
    char key[80];
    CHECK_EQ_STR(vd_embed_cache_model("faceres", VD_EMBED_FACE, key, sizeof key), "faceres+face");
    vd_embed_items_clear(a, 2);
}

VD_TEST(an_unknown_model_fails_the_call)
{
    if (!ready()) return;
    vd_error err;
    char p1[512];
    imgtest_sample(p1, sizeof p1, 1);
    const char *pp[1] = {p1};
    vd_embed_opts o = {.runner = runner, .model = "no_such_model"};
    vd_embed_item a[1];
    int dim;
    CHECK_EQ_INT(vd_embed_paths(&o, pp, 1, a, &dim, NULL, &err), VD_ERR_NOT_FOUND);
}

/* Issue 19: a cached vector of another length (an older model under the same
 * name) is never answered: it is computed again and replaced. */
VD_TEST(a_cached_vector_of_another_length_is_computed_again)
{
    if (!ready()) return;
    vd_error err;
    const char *dir = vd_test_tmpdir();
    char db[600], p1[512], hex[VD_SHA256_HEX_LEN + 1];
    snprintf(db, sizeof db, "%s/stale.db", dir);
    vd_store *store;
    CHECK_OK(vd_store_open(db, NULL, &store, &err));
    imgtest_sample(p1, sizeof p1, 1);
    uint8_t dig[VD_SHA256_LEN];
    CHECK_OK(vd_sha256_file(p1, dig, &err));
    vd_sha256_hex(dig, hex);
    float stale[5] = {1, 2, 3, 4, 5};
    CHECK_OK(vd_store_embedding_put(store, hex, "mobilenet_v2", stale, 5, &err));
    const char *pp[1] = {p1};
    vd_embed_opts o = {
        .runner = runner, .store = store, .model = "mobilenet_v2", .want_vectors = 1};
    vd_embed_item a[1];
    int dim = 0;
    vd_embed_stats st;
    CHECK_OK(vd_embed_paths(&o, pp, 1, a, &dim, &st, &err));
    CHECK_EQ_INT(a[0].status, VD_OK);
    CHECK(!a[0].cached);
    CHECK_EQ_INT(a[0].dim, 1792);
    CHECK_EQ_INT(dim, 1792);
    CHECK_EQ_INT((int)st.computed, 1);
    vd_embed_items_clear(a, 1);
    /* replaced: the next call is a hit of the right length */
    CHECK_OK(vd_embed_paths(&o, pp, 1, a, &dim, &st, &err));
    CHECK(a[0].cached && a[0].dim == 1792 && dim == 1792);
    vd_embed_items_clear(a, 1);
    vd_store_close(store);
}

/* Issue 18 item 7: the model's task decides what may embed, in one place. */
VD_TEST(the_model_task_decides_what_may_embed)
{
    if (!ready()) return;
    vd_error err;
    CHECK_EQ_STR(vd_embed_default_model(VD_EMBED_IMAGE), "mobilenet_v2");
    CHECK_EQ_STR(vd_embed_default_model(VD_EMBED_FACE), "faceres");
    vd_model_meta meta;
    CHECK_OK(vd_embed_check_model(runner, "mobilenet_v2", VD_EMBED_IMAGE, &meta, &err));
    CHECK_EQ_INT(meta.dim, 1792);
    CHECK_OK(vd_embed_check_model(runner, "faceres", VD_EMBED_FACE, NULL, &err));
    CHECK_OK(vd_embed_check_model(runner, "faceres", VD_EMBED_IMAGE, NULL, &err)); /* crops */
    CHECK_EQ_INT(vd_embed_check_model(runner, "mobilenet_v2", VD_EMBED_FACE, NULL, &err),
                 VD_ERR_UNSUPPORTED);
    CHECK_EQ_INT(vd_embed_check_model(runner, "blazeface_front", VD_EMBED_IMAGE, NULL, &err),
                 VD_ERR_UNSUPPORTED);
    CHECK_EQ_STR(err.msg, "model blazeface_front is a face_detection model: mode image needs an "
                          "image_embedding or face_embedding model");
    /* and vd_embed_paths applies it before anything runs */
    char p1[512];
    imgtest_sample(p1, sizeof p1, 1);
    const char *pp[1] = {p1};
    vd_embed_opts o = {.runner = runner, .model = "blazeface_front", .want_vectors = 1};
    vd_embed_item a[1];
    int dim;
    CHECK_EQ_INT(vd_embed_paths(&o, pp, 1, a, &dim, NULL, &err), VD_ERR_UNSUPPORTED);
    CHECK_EQ_INT(dim, 0);
}

int main(void)
{
    vd_error err;
    if (vd_image_init("test_pipeline", &err) != VD_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int rc = vd_test_run_all();
    vd_runner_free(runner);
    vd_image_shutdown();
    return rc;
}
