/* test_library_service.c: registering assets (service/library.h) against a
 * real SQLite store and queue, without a model server: a folder scan (image
 * names only, recursive, hidden files left out), the same bytes twice in one
 * request are one asset and one entry of the index job's payload, per-file
 * errors with their codes while the rest go on, the request's refusals, a
 * second registration that enqueues nothing, and delete. The job itself runs
 * in tests/integration/library_assets.sh. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "queue/queue.h"
#include "service/library.h"
#include "store/library.h"
#include "vdtest.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

typedef struct {
    char media[512];
    vd_store *store;
    vd_queue *queue;
    vd_media_roots *roots;
    vd_svc_library lib;
} fixture;

static int setup(fixture *x)
{
    const char *tmp = vd_test_tmpdir();
    char p[1024], url[1024];
    vd_error err;
    snprintf(x->media, sizeof x->media, "%s/media", tmp);
    mkdir(x->media, 0755);
    snprintf(p, sizeof p, "%s/sub", x->media);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/.hidden", x->media);
    mkdir(p, 0755);
    const char *files[][2] = {{"a.jpg", "AAA"},        {"b.PNG", "BBB"},        {"notes.txt", "x"},
                              {"sub/c.jpeg", "CCC"},   {"sub/copy.jpg", "AAA"}, {".d.jpg", "DDD"},
                              {".hidden/e.jpg", "EEE"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", x->media, files[i][0]);
        write_file(p, files[i][1]);
    }
    snprintf(url, sizeof url, "%s/store.db", tmp);
    if (vd_store_open(url, NULL, &x->store, &err) != VD_OK) return 0;
    snprintf(url, sizeof url, "sqlite:%s/queue.db", tmp);
    if (vd_queue_open(url, &x->queue, &err) != VD_OK) return 0;
    const char *roots[1] = {x->media};
    if (vd_media_roots_new(roots, 1, &x->roots, &err) != VD_OK) return 0;
    x->lib = (vd_svc_library){.store = x->store,
                              .queue = x->queue,
                              .roots = x->roots,
                              .model = "mobilenet_v2",
                              .face_model = "faceres"};
    return 1;
}

static void teardown(fixture *x)
{
    vd_media_roots_free(x->roots);
    vd_queue_close(x->queue);
    vd_store_close(x->store);
}

/* The asset ids of the index job jid's payload, as a JSON text. */
static char *job_assets(vd_queue *q, const char *jid)
{
    vd_job job;
    memset(&job, 0, sizeof job);
    vd_error err;
    if (vd_queue_get(q, jid, &job, &err) != VD_OK) return NULL;
    json_t *p = json_loads(job.payload, 0, NULL);
    char *s = json_dumps(json_object_get(p, "assets"), JSON_COMPACT);
    json_decref(p);
    vd_job_clear(&job);
    return s;
}

VD_TEST(folder_is_scanned_and_the_same_bytes_are_one_asset)
{
    fixture x = {0};
    CHECK(setup(&x));
    vd_error err;
    const char *why = NULL;
    vd_svc_assets_req req = {.folder = x.media};
    vd_svc_assets_result r;
    CHECK_OK(vd_svc_assets_register(&x.lib, &req, &r, &why, &err));
    /* a.jpg, b.PNG, sub/c.jpeg, sub/copy.jpg: not notes.txt, not the hidden ones */
    CHECK_EQ_INT(r.n, 4);
    CHECK(strstr(r.v[0].path, "/media/a.jpg") && strstr(r.v[3].path, "/sub/copy.jpg"));
    CHECK(r.added == 3 && r.known == 1 && r.failed == 0 && r.queued == 3);
    CHECK(r.v[3].existed && r.v[3].asset_id == r.v[0].asset_id);
    CHECK(r.job_id[0]);
    /* each asset once in the job (the copy was listed twice before the fix) */
    char *ids = job_assets(x.queue, r.job_id);
    char want[128];
    snprintf(want, sizeof want, "[%lld,%lld,%lld]", (long long)r.v[0].asset_id,
             (long long)r.v[1].asset_id, (long long)r.v[2].asset_id);
    CHECK(ids != NULL);
    CHECK_EQ_STR(ids, want);
    free(ids);
    vd_asset a;
    CHECK_OK(vd_store_asset_get(x.store, r.v[2].asset_id, 0, &a, &err));
    CHECK(strstr(a.folder, "/media/sub") && a.state == VD_ASSET_PENDING);
    vd_asset_clear(&a);
    /* once indexed, registering again enqueues nothing */
    for (size_t i = 0; i < 3; i++)
        CHECK_OK(
            vd_store_asset_set_state(x.store, r.v[i].asset_id, VD_ASSET_INDEXED, NULL, 1, 1, &err));
    for (size_t i = 0; i < 3; i++) {
        float v[2] = {1, 0};
        CHECK_OK(
            vd_store_asset_vector_put(x.store, r.v[i].asset_id, "mobilenet_v2", v, 2, NULL, &err));
    }
    vd_svc_assets_result_free(&r);
    CHECK_OK(vd_svc_assets_register(&x.lib, &req, &r, &why, &err));
    CHECK(r.added == 0 && r.known == 4 && r.queued == 0 && !r.job_id[0]);
    vd_svc_assets_result_free(&r);
    /* another library model: the indexed assets are indexed again */
    x.lib.model = "other_model";
    CHECK_OK(vd_svc_assets_register(&x.lib, &req, &r, &why, &err));
    CHECK(r.queued == 3 && r.job_id[0]);
    int64_t gone = r.v[0].asset_id;
    vd_svc_assets_result_free(&r);
    CHECK_OK(vd_svc_asset_delete(x.store, gone, &err));
    CHECK_EQ_INT(vd_svc_asset_delete(x.store, gone, &err), VD_ERR_NOT_FOUND);
    teardown(&x);
}

VD_TEST(per_file_errors_and_refusals)
{
    fixture x = {0};
    CHECK(setup(&x));
    vd_error err;
    const char *why = NULL;
    char a[1024], missing[1024], dir[1024];
    snprintf(a, sizeof a, "%s/a.jpg", x.media);
    snprintf(missing, sizeof missing, "%s/nope.jpg", x.media);
    snprintf(dir, sizeof dir, "%s/sub", x.media);
    const char *paths[] = {"/etc/hostname", a, missing, dir, "relative.jpg"};
    vd_svc_assets_req req = {.paths = paths, .npaths = 5};
    vd_svc_assets_result r;
    CHECK_OK(vd_svc_assets_register(&x.lib, &req, &r, &why, &err));
    CHECK(r.n == 5 && r.added == 1 && r.failed == 4 && r.queued == 1);
    CHECK_EQ_STR(r.v[0].code, "path_outside_media_roots");
    CHECK(r.v[1].code == NULL && r.v[1].asset_id > 0);
    CHECK_EQ_STR(r.v[2].code, "path_not_found");
    CHECK_EQ_STR(r.v[3].code, "path_not_file");
    CHECK_EQ_STR(r.v[4].code, "path_not_absolute");
    vd_svc_assets_result_free(&r);
    /* every file refused: the request fails with the first one's code */
    req.npaths = 1;
    CHECK_EQ_INT(vd_svc_assets_register(&x.lib, &req, &r, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "path_outside_media_roots");
    vd_svc_assets_result_free(&r);
    /* the request's own refusals */
    vd_svc_assets_req none = {0};
    CHECK_EQ_INT(vd_svc_assets_register(&x.lib, &none, &r, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "empty_list");
    vd_svc_assets_result_free(&r);
    vd_svc_assets_req both = {.paths = paths, .npaths = 1, .folder = x.media};
    CHECK_EQ_INT(vd_svc_assets_register(&x.lib, &both, &r, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "paths_and_folder");
    vd_svc_assets_result_free(&r);
    vd_svc_assets_req many = {.paths = paths, .npaths = VD_SVC_LIBRARY_MAX_FILES + 1};
    CHECK_EQ_INT(vd_svc_assets_register(&x.lib, &many, &r, &why, &err), VD_ERR_LIMIT);
    CHECK_EQ_STR(why, "too_many_paths");
    vd_svc_assets_result_free(&r);
    vd_svc_assets_req outside = {.folder = "/usr"};
    CHECK_EQ_INT(vd_svc_assets_register(&x.lib, &outside, &r, &why, &err), VD_ERR_INVALID);
    CHECK_EQ_STR(why, "path_outside_media_roots");
    vd_svc_assets_result_free(&r);
    char empty[1024];
    snprintf(empty, sizeof empty, "%s/.hidden", x.media); /* only hidden... its e.jpg is found */
    vd_svc_assets_req hid = {.folder = empty};
    CHECK_OK(vd_svc_assets_register(&x.lib, &hid, &r, &why, &err));
    CHECK_EQ_INT(r.n, 1);
    vd_svc_assets_result_free(&r);
    teardown(&x);
}

int main(void)
{
    return vd_test_run_all();
}
