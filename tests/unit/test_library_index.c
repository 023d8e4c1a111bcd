/* test_library_index.c: the index owner (service/library_index.h) and the
 * search use cases (service/search.h) on a real SQLite store: catch-up in seq
 * order across pages, removals, persistence and its counters, a corrupt file,
 * the faces hook, deleted assets never returned, the refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/library_index.h"
#include "service/search.h"
#include "store/library.h"
#include "vdtest.h"

#define DIM   8
#define MODEL "m8"

typedef struct {
    char url[512], dir[512];
    vd_store *s;
} fixture;

static int fixture_open(fixture *f)
{
    snprintf(f->url, sizeof f->url, "%s/store.db", vd_test_tmpdir());
    snprintf(f->dir, sizeof f->dir, "%s/index", vd_test_tmpdir());
    vd_error err;
    return vd_store_open(f->url, NULL, &f->s, &err) == VD_OK;
}

/* A unit vector that is mostly axis a (a distinct direction per a), nudged by eps. */
static void vec_of(int a, float eps, float *v)
{
    for (int i = 0; i < DIM; i++)
        v[i] = 0.01f * (float)((a * 7 + i * 3) % 5);
    v[a % DIM] += 1.0f;
    v[(a + 1) % DIM] += eps;
    float n = 0;
    for (int i = 0; i < DIM; i++)
        n += v[i] * v[i];
    for (int i = 0; i < DIM; i++)
        v[i] /= sqrtf(n);
}

/* Registers asset number i (its own bytes' hash) in folder and puts its vector. */
static int64_t add_asset(vd_store *s, int i, const char *folder, const float *v)
{
    char sha[65], path[128];
    snprintf(sha, sizeof sha, "%064x", i + 1);
    snprintf(path, sizeof path, "%s/img%d.jpg", folder, i);
    int64_t id = 0;
    vd_error err;
    if (vd_store_asset_register(s, sha, path, folder, &id, NULL, NULL, &err) != VD_OK) return 0;
    if (v && vd_store_asset_vector_put(s, id, MODEL, v, DIM, NULL, &err) != VD_OK) return 0;
    return id;
}

static vd_libindex *owner(const fixture *f)
{
    static const char *models[] = {MODEL};
    static const char *faces[] = {"f8"};
    vd_libindex_config c = {.store_url = f->url,
                            .dir = f->dir,
                            .image_models = models,
                            .n_image_models = 1,
                            .face_models = faces,
                            .n_face_models = 1,
                            .poll_ms = -1};
    vd_libindex *li = NULL;
    vd_error err;
    if (vd_libindex_start(&c, &li, &err) != VD_OK) {
        fprintf(stderr, "start: %s\n", err.msg);
        return NULL;
    }
    return li;
}

static vd_libindex_stats stats_of(vd_libindex *li, const char *model)
{
    vd_libindex_stats st[VD_LIBINDEX_MAX_MODELS], none;
    memset(&none, 0, sizeof none);
    size_t n = vd_libindex_stats_get(li, st, VD_LIBINDEX_MAX_MODELS);
    for (size_t i = 0; i < n; i++)
        if (strcmp(st[i].model, model) == 0) return st[i];
    return none;
}

/* The best hit for v (0 when none). */
static int64_t best(vd_libindex *li, const float *v, size_t *n)
{
    vd_vindex_hit h[8];
    vd_error err;
    *n = 0;
    if (vd_libindex_search(li, VD_LIBINDEX_IMAGE, MODEL, v, 8, NULL, NULL, h, n, &err) != VD_OK)
        return 0;
    return *n ? h[0].id : 0;
}

VD_TEST(catch_up_adds_replaces_removes)
{
    fixture f;
    CHECK(fixture_open(&f));
    float v[DIM];
    vec_of(1, 0, v);
    int64_t a = add_asset(f.s, 1, "/p", v);
    CHECK(a > 0);
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    size_t n = 0;
    CHECK_EQ_INT(best(li, v, &n), a);
    CHECK_EQ_INT(n, 1);
    float w[DIM];
    vec_of(2, 0, w);
    int64_t b = add_asset(f.s, 2, "/p", w);
    size_t added = 0;
    vd_error err;
    CHECK_OK(vd_libindex_catch_up(li, &added, &err));
    CHECK_EQ_INT(added, 1);
    CHECK_EQ_INT(best(li, w, &n), b);
    CHECK_OK(vd_libindex_catch_up(li, &added, &err)); /* nothing changed: nothing read */
    CHECK_EQ_INT(added, 0);
    /* a replaced vector replaces: asset a now points where b's vector is, nudged */
    float w2[DIM];
    vec_of(2, 0.05f, w2);
    CHECK_OK(vd_store_asset_vector_put(f.s, a, MODEL, w2, DIM, NULL, &err));
    CHECK_OK(vd_libindex_catch_up(li, &added, &err));
    CHECK_EQ_INT(best(li, w2, &n), a);
    CHECK_EQ_INT(n, 2);
    /* a deleted asset leaves the index when its removal is seen */
    CHECK_OK(vd_store_asset_delete(f.s, b, &err));
    CHECK_OK(vd_libindex_catch_up(li, &added, &err));
    CHECK_EQ_INT(best(li, w, &n), a);
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(stats_of(li, MODEL).removed, 1);
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

/* Deleted then registered again and re-indexed within one step: the removal
 * (older) must not undo the new vector (changes are applied in seq order). */
VD_TEST(removal_then_readd_in_one_step)
{
    fixture f;
    CHECK(fixture_open(&f));
    float v[DIM];
    vec_of(3, 0, v);
    int64_t a = add_asset(f.s, 3, "/p", v);
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    vd_error err;
    CHECK_OK(vd_store_asset_delete(f.s, a, &err));
    CHECK_EQ_INT(add_asset(f.s, 3, "/p", v), a); /* the same bytes: the same asset back */
    CHECK_OK(vd_libindex_catch_up(li, NULL, &err));
    size_t n = 0;
    CHECK_EQ_INT(best(li, v, &n), a);
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

/* More than one page (VD_LIBRARY_LIST_MAX) of vectors and removals. */
VD_TEST(catch_up_pages)
{
    fixture f;
    CHECK(fixture_open(&f));
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    vd_error err;
    const int N = 2 * VD_LIBRARY_LIST_MAX + 300; /* 1150 removals: two pages of them too */
    int64_t *ids = calloc((size_t)N, sizeof *ids);
    CHECK(ids != NULL);
    CHECK_OK(vd_store_begin(f.s, &err));
    for (int i = 0; i < N; i++) {
        float v[DIM];
        vec_of(i, (float)i / (float)N, v);
        ids[i] = add_asset(f.s, 100 + i, "/many", v);
    }
    CHECK_OK(vd_store_commit(f.s, &err));
    size_t added = 0;
    CHECK_OK(vd_libindex_catch_up(li, &added, &err));
    CHECK_EQ_INT(added, N);
    CHECK_OK(vd_store_begin(f.s, &err));
    for (int i = 0; i < N; i += 2)
        CHECK_OK(vd_store_asset_delete(f.s, ids[i], &err));
    CHECK_OK(vd_store_commit(f.s, &err));
    CHECK_OK(vd_libindex_catch_up(li, &added, &err));
    CHECK_EQ_INT(added, 0);
    vd_libindex_stats st = stats_of(li, MODEL);
    CHECK_EQ_INT(st.removed, N / 2);
    CHECK_EQ_INT(st.count, N / 2);
    /* a fresh owner reads only the live ones (the store's since() skips deleted assets) */
    vd_libindex_stop(li);
    char path[1024];
    CHECK_OK(vd_libindex_file(f.dir, VD_LIBINDEX_IMAGE, MODEL, path, sizeof path, &err));
    CHECK(remove(path) == 0);
    li = owner(&f);
    CHECK(li != NULL);
    CHECK_EQ_INT(stats_of(li, MODEL).caught_up, N / 2);
    CHECK_EQ_INT(stats_of(li, MODEL).count, N / 2);
    free(ids);
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

/* Stop saves; a restart loads the file and reads only what came after. */
VD_TEST(restart_loads_file_then_catches_up)
{
    fixture f;
    CHECK(fixture_open(&f));
    for (int i = 0; i < 5; i++) {
        float v[DIM];
        vec_of(i, 0, v);
        CHECK(add_asset(f.s, i, "/r", v) > 0);
    }
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    CHECK_EQ_INT(stats_of(li, MODEL).caught_up, 5);
    vd_libindex_stop(li);
    float v[DIM];
    vec_of(9, 0, v);
    int64_t late = add_asset(f.s, 9, "/r", v);
    li = owner(&f);
    CHECK(li != NULL);
    vd_libindex_stats st = stats_of(li, MODEL);
    CHECK_EQ_INT(st.loaded_from_file, 5);
    CHECK_EQ_INT(st.caught_up, 1);
    size_t n = 0;
    CHECK_EQ_INT(best(li, v, &n), late);
    vd_libindex_stop(li);
    /* a corrupt file is rebuilt from the store */
    char path[1024];
    vd_error err;
    CHECK_OK(vd_libindex_file(f.dir, VD_LIBINDEX_IMAGE, MODEL, path, sizeof path, &err));
    FILE *fp = fopen(path, "r+b");
    CHECK(fp != NULL);
    fseek(fp, 40, SEEK_SET);
    fputs("garbage", fp);
    fclose(fp);
    li = owner(&f);
    CHECK(li != NULL);
    st = stats_of(li, MODEL);
    CHECK_EQ_INT(st.loaded_from_file, 0);
    CHECK_EQ_INT(st.caught_up, 6);
    CHECK_EQ_INT(st.count, 6);
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

typedef struct {
    size_t calls, faces;
    size_t index_count;
} faces_seen;

static void on_faces(void *ud, vd_vindex *ix, const char *model, const int64_t *ids, size_t n)
{
    faces_seen *s = ud;
    (void)ids;
    if (strcmp(model, "f8") != 0) return;
    s->calls++;
    s->faces += n;
    s->index_count = vd_vindex_count(ix);
}

VD_TEST(faces_hook_sees_new_faces)
{
    fixture f;
    CHECK(fixture_open(&f));
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    faces_seen seen = {0};
    vd_libindex_set_faces_cb(li, on_faces, &seen);
    int64_t a = add_asset(f.s, 50, "/f", NULL);
    vd_stored_face fc[2];
    memset(fc, 0, sizeof fc);
    float v1[DIM], v2[DIM];
    vec_of(1, 0, v1);
    vec_of(4, 0, v2);
    fc[0].dim = fc[1].dim = DIM;
    fc[0].vector = v1;
    fc[1].vector = v2;
    fc[0].box[2] = fc[1].box[2] = fc[0].box[3] = fc[1].box[3] = 10;
    vd_error err;
    CHECK_OK(vd_store_asset_faces_put(f.s, a, "f8", fc, 2, NULL, &err));
    CHECK_OK(vd_libindex_catch_up(li, NULL, &err));
    CHECK_EQ_INT(seen.calls, 1);
    CHECK_EQ_INT(seen.faces, 2);
    CHECK_EQ_INT(seen.index_count, 2);
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

/* ---- the search use cases ---- */

VD_TEST(search_never_returns_deleted_and_filters_folders)
{
    fixture f;
    CHECK(fixture_open(&f));
    float v[DIM], near[DIM];
    vec_of(5, 0, v);
    vec_of(5, 0.02f, near);
    int64_t a = add_asset(f.s, 5, "/lib/x", v);
    int64_t b = add_asset(f.s, 6, "/lib/y", near);
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    vd_svc_search_req r = {.model = MODEL, .k = 5, .vector = v, .nvector = DIM, .has_vector = 1};
    vd_svc_search_hit *h = NULL;
    size_t n = 0;
    const char *why = NULL;
    vd_error err;
    CHECK_OK(vd_svc_search(li, f.s, NULL, &r, &h, &n, &why, &err));
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(h[0].asset_id, a);
    CHECK_EQ_STR(h[0].path, "/lib/x/img5.jpg");
    vd_svc_search_hits_free(h, n);
    r.folder = "/lib/y";
    vec_of(5, 0, v);
    CHECK_OK(vd_svc_search(li, f.s, NULL, &r, &h, &n, &why, &err));
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(h[0].asset_id, b);
    vd_svc_search_hits_free(h, n);
    /* deleted, and the owner has not caught up yet: still never returned */
    r.folder = NULL;
    CHECK_OK(vd_store_asset_delete(f.s, a, &err));
    vec_of(5, 0, v);
    CHECK_OK(vd_svc_search(li, f.s, NULL, &r, &h, &n, &why, &err));
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(h[0].asset_id, b);
    vd_svc_search_hits_free(h, n);
    /* by asset: its own vector, itself first */
    vd_svc_search_req ra = {.model = MODEL, .k = 1, .asset_id = b};
    CHECK_OK(vd_svc_search(li, f.s, NULL, &ra, &h, &n, &why, &err));
    CHECK_EQ_INT(n, 1);
    CHECK_EQ_INT(h[0].asset_id, b);
    CHECK(h[0].score > 0.999f);
    vd_svc_search_hits_free(h, n);
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

static const char *refusal(vd_libindex *li, vd_store *s, vd_svc_search_req *r)
{
    vd_svc_search_hit *h = NULL;
    size_t n = 0;
    const char *why = NULL;
    vd_error err;
    vd_status st = vd_svc_search(li, s, NULL, r, &h, &n, &why, &err);
    vd_svc_search_hits_free(h, n);
    return st == VD_OK ? "ok" : why ? why : "?";
}

VD_TEST(search_refusals)
{
    fixture f;
    CHECK(fixture_open(&f));
    float v[DIM];
    vec_of(1, 0, v);
    add_asset(f.s, 1, "/p", v);
    int64_t pending = add_asset(f.s, 2, "/p", NULL);
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    vd_svc_search_req r = {.model = MODEL, .vector = v, .nvector = DIM, .has_vector = 1};
    r.k = VD_VINDEX_MAX_K + 1;
    CHECK_EQ_STR(refusal(li, f.s, &r), "k_out_of_range");
    r.k = -1;
    CHECK_EQ_STR(refusal(li, f.s, &r), "k_out_of_range");
    r.k = 3;
    r.nvector = DIM - 1;
    CHECK_EQ_STR(refusal(li, f.s, &r), "dimension_mismatch");
    r.nvector = DIM;
    float bad[DIM];
    memcpy(bad, v, sizeof bad);
    bad[2] = NAN;
    r.vector = bad;
    CHECK_EQ_STR(refusal(li, f.s, &r), "invalid_vector");
    memset(bad, 0, sizeof bad);
    CHECK_EQ_STR(refusal(li, f.s, &r), "invalid_vector");
    r.vector = v;
    r.model = "nothing_here";
    CHECK_EQ_STR(refusal(li, f.s, &r), "no_index");
    r.model = MODEL;
    r.asset_id = 77;
    CHECK_EQ_STR(refusal(li, f.s, &r), "one_query");
    r.has_vector = 0;
    CHECK_EQ_STR(refusal(li, f.s, &r), "asset_not_found");
    r.asset_id = pending;
    CHECK_EQ_STR(refusal(li, f.s, &r), "asset_not_indexed");
    r.asset_id = 0;
    CHECK_EQ_STR(refusal(li, f.s, &r), "one_query");
    /* a text is embedded by the model's text tower through the model server:
     * without one it is that backend's failure, never a crash (a model with
     * no text tower, 422 text_unsupported: library_search.sh, clip_parity.sh) */
    r.text = "a dog";
    CHECK_EQ_STR(refusal(li, f.s, &r), "model_server");
    r.text = NULL;
    r.path = "/nowhere.jpg";
    CHECK_EQ_STR(refusal(li, f.s, &r), "model_server");
    CHECK_EQ_INT(vd_svc_search_http_status("no_index"), 404);
    CHECK_EQ_INT(vd_svc_search_http_status("asset_not_indexed"), 409);
    CHECK_EQ_INT(vd_svc_search_http_status("store"), 0);
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

VD_TEST(duplicates_groups)
{
    fixture f;
    CHECK(fixture_open(&f));
    float v[DIM];
    int64_t ids[6];
    /* two photos with two near copies each, and one alone */
    for (int i = 0; i < 6; i++) {
        vec_of(i < 3 ? 1 : i < 5 ? 4 : 6, (float)(i % 3) * 0.01f, v);
        ids[i] = add_asset(f.s, 10 + i, "/d", v);
    }
    vd_libindex *li = owner(&f);
    CHECK(li != NULL);
    vd_svc_dup_group *g = NULL;
    size_t n = 0;
    const char *why = NULL;
    vd_error err;
    CHECK_OK(vd_svc_duplicates(li, f.s, MODEL, 0.01, &g, &n, &why, &err));
    CHECK_EQ_INT(n, 2);
    CHECK_EQ_INT(g[0].n, 3);
    CHECK_EQ_INT(g[0].ids[0], ids[0]);
    CHECK_EQ_INT(g[1].n, 2);
    CHECK_EQ_INT(g[1].ids[0], ids[3]);
    CHECK(g[0].npairs >= 2);
    CHECK(g[0].pairs[0].distance <= 0.01f);
    vd_svc_dup_groups_free(g, n);
    /* a deleted copy leaves its group */
    CHECK_OK(vd_store_asset_delete(f.s, ids[4], &err));
    CHECK_OK(vd_svc_duplicates(li, f.s, MODEL, 0.01, &g, &n, &why, &err));
    CHECK_EQ_INT(n, 1);
    vd_svc_dup_groups_free(g, n);
    CHECK(vd_svc_duplicates(li, f.s, MODEL, 0.9, &g, &n, &why, &err) != VD_OK);
    CHECK_EQ_STR(why, "max_distance_out_of_range");
    vd_libindex_stop(li);
    vd_store_close(f.s);
}

int main(void)
{
    return vd_test_run_all();
}
