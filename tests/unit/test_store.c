/* test_store.c: the store's contract (sessions, examples, classifiers,
 * embedding and face caches), across close/reopen and with concurrent
 * writers in forked processes, run against every backend (storetest.h:
 * SQLite always, PostgreSQL when $VISIOND_TEST_PG is set). */
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "core/sha256.h"
#include "store/sessions.h"
#include "store/store.h"
#include "store/vectors.h"
#include "storetest.h"
#include "vdtest.h"

static void store_path(char *buf, size_t n)
{
    snprintf(buf, n, "%s/data/store.db", vd_test_tmpdir());
}

/* Writes the hex SHA-256 of data[0..len) (core/sha256.h) into hex. */
static void sha_hex(const void *data, size_t len, char hex[VD_SHA256_HEX_LEN + 1])
{
    uint8_t d[VD_SHA256_LEN];
    vd_sha256(data, len, d);
    vd_sha256_hex(d, hex);
}

VD_TEST(open_creates_and_migrates)
{
    vd_error err;
    char path[400];
    store_path(path, sizeof path);
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    CHECK_EQ_INT(vd_store_schema_version(s), VD_STORE_SCHEMA_VERSION);
    vd_store_close(s);
    /* WAL mode is persistent in the file. */
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    sqlite3_stmt *st;
    CHECK(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    /* A file from a newer schema is refused, not damaged. */
    CHECK(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    CHECK_EQ_INT(vd_store_open(path, NULL, &s, &err), VD_ERR_UNSUPPORTED);
    CHECK(strstr(err.msg, "99") != NULL);
    CHECK(s == NULL);
}

STEST(sessions_round_trip_and_states)
{
    vd_error err;
    const char *path = url;
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "pets",
                         .kind = VD_SESSION_IMAGE,
                         .model = "mobilenet_v2",
                         .options_json = "{\"crop\": false}"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    CHECK_EQ_INT(strlen(id), VD_ID_LEN);
    CHECK_OK(vd_store_session_set_job(s, id, "job-1", &err));

    vd_session got;
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    CHECK_EQ_STR(got.name, "pets");
    CHECK_EQ_INT(got.kind, VD_SESSION_IMAGE);
    CHECK_EQ_STR(got.model, "mobilenet_v2");
    CHECK_EQ_INT(got.state, VD_SESSION_QUEUED);
    CHECK_EQ_STR(got.errors_json, "[]");
    CHECK(got.metrics_json == NULL);
    CHECK_EQ_STR(got.job_id, "job-1");
    CHECK(got.created_ms > 0 && got.updated_ms >= got.created_ms);
    vd_session_clear(&got);

    CHECK_OK(vd_store_session_set_state(s, id, VD_SESSION_RUNNING, &err));
    CHECK_OK(vd_store_session_set_progress(s, id, 3, 10, &err));
    CHECK_OK(vd_store_session_add_error(s, id, "/p/a \"b\".jpg", "not an image", &err));
    CHECK_OK(vd_store_session_add_error(s, id, "/p/c.jpg", "too large", &err));
    CHECK_OK(vd_store_session_finish(s, id, VD_SESSION_SUCCEEDED, "{\"cv_accuracy\": 0.9}", 0.25,
                                     NULL, &err));
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    CHECK_EQ_INT(got.state, VD_SESSION_SUCCEEDED);
    CHECK_EQ_INT(got.progress_done, 3);
    CHECK_EQ_INT(got.progress_total, 10);
    CHECK(fabs(got.threshold - 0.25) < 1e-12);
    json_t *errs = json_loads(got.errors_json, 0, NULL);
    CHECK(errs && json_array_size(errs) == 2);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(errs, 0), "path")),
                 "/p/a \"b\".jpg");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(errs, 1), "error")), "too large");
    json_decref(errs);
    vd_session_clear(&got);

    /* An ended session stays ended. */
    CHECK_EQ_INT(vd_store_session_set_state(s, id, VD_SESSION_RUNNING, &err), VD_ERR_STATE);
    CHECK_EQ_INT(vd_store_session_finish(s, id, VD_SESSION_CANCELED, NULL, 0, NULL, &err),
                 VD_ERR_STATE);
    CHECK(strstr(err.msg, "succeeded") != NULL);
    /* Bad input gets specific errors. */
    CHECK_EQ_INT(vd_store_session_get(s, "nope", &got, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_session_set_progress(s, "nope", 1, 2, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_session_set_state(s, "nope", VD_SESSION_RUNNING, &err), VD_ERR_NOT_FOUND);
    vd_session_new bad = {.name = "", .model = "m"};
    CHECK_EQ_INT(vd_store_session_create(s, &bad, NULL, &err), VD_ERR_INVALID);
    bad = (vd_session_new){.name = "x", .model = "m", .options_json = "[1]"};
    CHECK_EQ_INT(vd_store_session_create(s, &bad, NULL, &err), VD_ERR_INVALID);
    bad = (vd_session_new){.id = id, .name = "x", .model = "m"};
    CHECK_EQ_INT(vd_store_session_create(s, &bad, NULL, &err), VD_ERR_STATE);

    vd_session_new in2 = {
        .id = "face1", .name = "team", .kind = VD_SESSION_FACE, .model = "faceres"};
    CHECK_OK(vd_store_session_create(s, &in2, NULL, &err));
    vd_session *list;
    size_t n;
    CHECK_OK(vd_store_session_list(s, 0, &list, &n, &err));
    CHECK_EQ_INT(n, 2);
    vd_session_list_free(list, n);
    CHECK_OK(vd_store_session_list(s, 1, &list, &n, &err));
    CHECK_EQ_INT(n, 1);
    vd_session_list_free(list, n);
    vd_store_close(s);
}

STEST(examples_and_classifiers_cascade_on_delete)
{
    vd_error err;
    const char *path = url;
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "n", .kind = VD_SESSION_FACE, .model = "faceres"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    vd_example ex[3] = {{.path = "/a/1.jpg", .label = "ann"},
                        {.path = "/a/2.jpg", .label = "bob"},
                        {.path = "/a/3.jpg", .label = "bob"}};
    CHECK_OK(vd_store_examples_add(s, id, ex, 3, &err));
    vd_example more = {.path = "/a/4.jpg", .label = "cy"};
    CHECK_OK(vd_store_examples_add(s, id, &more, 1, &err));
    vd_example bad = {.path = "/a/5.jpg", .label = ""};
    CHECK_EQ_INT(vd_store_examples_add(s, id, &bad, 1, &err), VD_ERR_INVALID);
    CHECK(strstr(err.msg, "empty label") != NULL);
    CHECK_EQ_INT(vd_store_examples_add(s, "nope", ex, 1, &err), VD_ERR_NOT_FOUND);

    char sha[65];
    sha_hex("x", 1, sha);
    CHECK_OK(vd_store_example_update(s, id, 1, sha, VD_EXAMPLE_EMBEDDED, NULL, &err));
    CHECK_OK(vd_store_example_update(s, id, 2, NULL, VD_EXAMPLE_FAILED, "no face", &err));
    CHECK_EQ_INT(vd_store_example_update(s, id, 9, NULL, VD_EXAMPLE_FAILED, "x", &err),
                 VD_ERR_NOT_FOUND);

    vd_example *list;
    size_t n;
    CHECK_OK(vd_store_examples_list(s, id, &list, &n, &err));
    CHECK_EQ_INT(n, 4);
    CHECK_EQ_INT(list[3].idx, 3);
    CHECK_EQ_STR(list[3].label, "cy");
    CHECK_EQ_STR(list[1].sha256, sha);
    CHECK_EQ_INT(list[1].status, VD_EXAMPLE_EMBEDDED);
    CHECK_EQ_INT(list[2].status, VD_EXAMPLE_FAILED);
    CHECK_EQ_STR(list[2].error, "no face");
    CHECK_EQ_STR(list[0].sha256, "");
    CHECK(list[0].error == NULL);
    vd_example_list_free(list, n);

    unsigned char blob[300];
    for (int i = 0; i < 300; i++)
        blob[i] = (unsigned char)(i * 7);
    CHECK_OK(vd_store_classifier_put(s, id, "logreg", "[\"ann\",\"bob\"]", blob, 300, &err));
    CHECK_OK(
        vd_store_classifier_put(s, id, "centroid", "[\"ann\",\"bob\",\"cy\"]", blob, 200, &err));
    vd_stored_classifier c;
    CHECK_OK(vd_store_classifier_get(s, id, &c, &err));
    CHECK_EQ_STR(c.algorithm, "centroid");
    CHECK_EQ_INT(c.blob_len, 200);
    CHECK(memcmp(c.blob, blob, 200) == 0);
    vd_stored_classifier_clear(&c);
    CHECK_EQ_INT(vd_store_classifier_put(s, "nope", "logreg", "[]", blob, 3, &err),
                 VD_ERR_NOT_FOUND);

    CHECK_OK(vd_store_session_delete(s, id, &err));
    CHECK_EQ_INT(vd_store_session_delete(s, id, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_classifier_get(s, id, &c, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_examples_list(s, id, &list, &n, &err));
    CHECK_EQ_INT(n, 0);
    vd_store_close(s);
}

STEST(embeddings_and_faces_round_trip)
{
    vd_error err;
    const char *path = url;
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    enum { N = 50, DIM = 1280 };
    static float vecs[N][DIM];
    char shas[N][65];
    const char *keys[N + 1];
    const float *vp[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < DIM; j++)
            vecs[i][j] = (float)(i * 0.5 - j * 1e-3);
        char text[16];
        snprintf(text, sizeof text, "img%d", i);
        sha_hex(text, strlen(text), shas[i]);
        keys[i] = shas[i];
        vp[i] = vecs[i];
    }
    CHECK_OK(vd_store_embeddings_put(s, "mobilenet_v2", N, keys, vp, DIM, &err));
    CHECK_OK(vd_store_embedding_put(s, shas[0], "other", vecs[1], 3, &err));
    char missing[65];
    sha_hex("missing", 7, missing);
    keys[N] = missing;
    vd_embedding *got;
    size_t nfound;
    CHECK_OK(vd_store_embeddings_get(s, "mobilenet_v2", 0, N + 1, keys, &got, &nfound, &err));
    CHECK_EQ_INT(nfound, N);
    CHECK(!got[N].found && got[N].vector == NULL);
    for (int i = 0; i < N; i++) {
        CHECK(got[i].found);
        CHECK_EQ_INT(got[i].dim, DIM);
        CHECK(memcmp(got[i].vector, vecs[i], sizeof vecs[i]) == 0);
    }
    vd_embedding_list_free(got, N + 1);
    CHECK_OK(vd_store_embeddings_get(s, "other", 0, 1, keys, &got, &nfound, &err));
    CHECK_EQ_INT(got[0].dim, 3);
    CHECK(got[0].vector[2] == vecs[1][2]);
    vd_embedding_list_free(got, 1);
    CHECK_EQ_INT(vd_store_embedding_put(s, "ABC", "m", vecs[0], 3, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_embedding_put(s, shas[0], "m", vecs[0], 0, &err), VD_ERR_INVALID);
    /* issue 19: an empty vector is never stored, nor one that is not there */
    CHECK_EQ_INT(vd_store_embedding_put(s, shas[0], "m", vecs[0], -1, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_embedding_put(s, shas[0], "m", NULL, 3, &err), VD_ERR_INVALID);
    /* the cache returns only vectors of the length asked for: another is stale */
    CHECK_OK(vd_store_embeddings_get(s, "other", 3, 1, keys, &got, &nfound, &err));
    CHECK(got[0].found && got[0].dim == 3 && nfound == 1);
    vd_embedding_list_free(got, 1);
    CHECK_OK(vd_store_embeddings_get(s, "other", 4, 1, keys, &got, &nfound, &err));
    CHECK(!got[0].found && got[0].vector == NULL && nfound == 0);
    vd_embedding_list_free(got, 1);

    /* Faces: two with vectors, then "no faces" for another image. */
    vd_stored_face faces[2] = {0};
    float v0[4] = {1, 2, 3, 4}, v1[4] = {-1, -2, -3, -4};
    for (int i = 0; i < 2; i++) {
        faces[i].box[0] = 10.5f + i;
        faces[i].box[1] = 20;
        faces[i].box[2] = 30;
        faces[i].box[3] = 40;
        faces[i].score = 0.9f - 0.1f * i;
        faces[i].n_keypoints = 6;
        for (int k = 0; k < 6; k++) {
            faces[i].keypoints[k][0] = (float)k;
            faces[i].keypoints[k][1] = (float)(k * i);
        }
        faces[i].dim = 4;
        faces[i].vector = i ? v1 : v0;
    }
    CHECK_OK(vd_store_faces_put(s, shas[0], "blazeface+faceres", faces, 2, &err));
    CHECK_OK(vd_store_faces_put(s, shas[1], "blazeface+faceres", NULL, 0, &err));
    vd_stored_face *fl;
    size_t nf;
    CHECK_EQ_INT(vd_store_faces_get(s, shas[2], "blazeface+faceres", &fl, &nf, &err),
                 VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_faces_get(s, shas[1], "blazeface+faceres", &fl, &nf, &err));
    CHECK_EQ_INT(nf, 0);
    CHECK(fl == NULL);
    CHECK_OK(vd_store_faces_get(s, shas[0], "blazeface+faceres", &fl, &nf, &err));
    CHECK_EQ_INT(nf, 2);
    CHECK(fl[1].box[0] == 11.5f && fl[1].score == faces[1].score);
    CHECK_EQ_INT(fl[1].n_keypoints, 6);
    CHECK(fl[1].keypoints[5][1] == 5.0f);
    CHECK_EQ_INT(fl[1].dim, 4);
    CHECK(fl[1].vector[3] == -4.0f);
    vd_stored_face_list_free(fl, nf);
    /* Replacing keeps only the new list. */
    faces[0].vector = NULL;
    faces[0].dim = 0;
    CHECK_OK(vd_store_faces_put(s, shas[0], "blazeface+faceres", faces, 1, &err));
    CHECK_OK(vd_store_faces_get(s, shas[0], "blazeface+faceres", &fl, &nf, &err));
    CHECK_EQ_INT(nf, 1);
    CHECK(fl[0].vector == NULL);
    vd_stored_face_list_free(fl, nf);
    vd_store_close(s);
}

STEST(restart_keeps_everything)
{
    vd_error err;
    const char *path = url;
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    char id[VD_ID_LEN + 1], sha[65];
    vd_session_new in = {.name = "keep", .kind = VD_SESSION_FACE, .model = "faceres"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    vd_example ex = {.path = "/k/1.png", .label = "k"};
    CHECK_OK(vd_store_examples_add(s, id, &ex, 1, &err));
    CHECK_OK(vd_store_session_finish(s, id, VD_SESSION_SUCCEEDED, "{\"labels\":[\"k\"]}", 0.4, NULL,
                                     &err));
    CHECK_OK(vd_store_classifier_put(s, id, "centroid", "[\"k\"]", "blob", 4, &err));
    sha_hex("k", 1, sha);
    float v[3] = {0.25f, -1.5f, 3e-7f};
    CHECK_OK(vd_store_embedding_put(s, sha, "faceres", v, 3, &err));
    vd_store_close(s);

    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    vd_session got;
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    CHECK_EQ_INT(got.state, VD_SESSION_SUCCEEDED);
    CHECK_EQ_STR(got.metrics_json, "{\"labels\":[\"k\"]}");
    CHECK(got.threshold == 0.4);
    vd_session_clear(&got);
    vd_stored_classifier c;
    CHECK_OK(vd_store_classifier_get(s, id, &c, &err));
    CHECK(c.blob_len == 4 && memcmp(c.blob, "blob", 4) == 0);
    vd_stored_classifier_clear(&c);
    const char *keys[1] = {sha};
    vd_embedding *e;
    CHECK_OK(vd_store_embeddings_get(s, "faceres", 0, 1, keys, &e, NULL, &err));
    CHECK(e[0].found && memcmp(e[0].vector, v, sizeof v) == 0);
    vd_embedding_list_free(e, 1);
    vd_example *list;
    size_t n;
    CHECK_OK(vd_store_examples_list(s, id, &list, &n, &err));
    CHECK_EQ_INT(n, 1);
    vd_example_list_free(list, n);
    vd_store_close(s);

    if (strncmp(url, "postgres", 8) == 0) return; /* read-only opening is SQLite's */
    /* Read-only opening works on the migrated file. */
    vd_store_opts ro = {.read_only = 1};
    CHECK_OK(vd_store_open(path, &ro, &s, &err));
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    vd_session_clear(&got);
    CHECK(vd_store_session_delete(s, id, &err) != VD_OK);
    vd_store_close(s);
}

STEST(transactions_group_and_roll_back)
{
    vd_error err;
    const char *path = url;
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "t", .model = "m"};
    CHECK_OK(vd_store_begin(s, &err));
    CHECK_EQ_INT(vd_store_begin(s, &err), VD_ERR_STATE);
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    vd_example ex = {.path = "/t", .label = "t"};
    CHECK_OK(vd_store_examples_add(s, id, &ex, 1, &err));
    vd_store_rollback(s);
    vd_session got;
    CHECK_EQ_INT(vd_store_session_get(s, id, &got, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_begin(s, &err));
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    CHECK_OK(vd_store_examples_add(s, id, &ex, 1, &err));
    CHECK_OK(vd_store_commit(s, &err));
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    vd_session_clear(&got);
    vd_store_close(s);
}

/* Several processes write at once: each opens its own handle (after fork),
 * appends errors to one shared session and puts its own embeddings; nothing
 * is lost and no writer fails with "database is locked". */
STEST(concurrent_writers_from_forked_processes)
{
    vd_error err;
    const char *path = url;
    vd_store *s;
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    char id[VD_ID_LEN + 1];
    vd_session_new in = {.name = "shared", .model = "m"};
    CHECK_OK(vd_store_session_create(s, &in, id, &err));
    vd_store_close(s);

    enum { PROCS = 4, EACH = 60 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        CHECK(pids[p] >= 0);
        if (pids[p] == 0) {
            vd_store *cs;
            vd_error cerr;
            int bad = 0;
            if (vd_store_open(path, NULL, &cs, &cerr) != VD_OK) _exit(10);
            for (int i = 0; i < EACH && !bad; i++) {
                char file[64], sha[65];
                snprintf(file, sizeof file, "/proc%d/img%d.jpg", p, i);
                if (vd_store_session_add_error(cs, id, file, "x", &cerr) != VD_OK) bad = 11;
                sha_hex(file, strlen(file), sha);
                float v[8];
                for (int j = 0; j < 8; j++)
                    v[j] = (float)(p * 1000 + i * 10 + j);
                if (!bad && vd_store_embedding_put(cs, sha, "m", v, 8, &cerr) != VD_OK) bad = 12;
                if (!bad && vd_store_session_set_progress(cs, id, i, EACH, &cerr) != VD_OK)
                    bad = 13;
            }
            if (bad) fprintf(stdout, "    child %d: %s\n", p, vd_error_text(&cerr));
            vd_store_close(cs);
            _exit(bad);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status;
        CHECK(waitpid(pids[p], &status, 0) == pids[p]);
        CHECK(WIFEXITED(status));
        CHECK_EQ_INT(WEXITSTATUS(status), 0);
    }
    CHECK_OK(vd_store_open(path, NULL, &s, &err));
    vd_session got;
    CHECK_OK(vd_store_session_get(s, id, &got, &err));
    json_t *errs = json_loads(got.errors_json, 0, NULL);
    CHECK(errs != NULL);
    CHECK_EQ_INT(json_array_size(errs), PROCS * EACH);
    json_decref(errs);
    vd_session_clear(&got);
    const char *keys[PROCS * EACH];
    char shas[PROCS * EACH][65];
    for (int p = 0; p < PROCS; p++)
        for (int i = 0; i < EACH; i++) {
            char file[64];
            snprintf(file, sizeof file, "/proc%d/img%d.jpg", p, i);
            sha_hex(file, strlen(file), shas[p * EACH + i]);
            keys[p * EACH + i] = shas[p * EACH + i];
        }
    vd_embedding *e;
    size_t nfound;
    CHECK_OK(vd_store_embeddings_get(s, "m", 0, PROCS * EACH, keys, &e, &nfound, &err));
    CHECK_EQ_INT(nfound, PROCS * EACH);
    CHECK(e[PROCS * EACH - 1].vector[7] == (float)((PROCS - 1) * 1000 + (EACH - 1) * 10 + 7));
    vd_embedding_list_free(e, PROCS * EACH);
    vd_store_close(s);
}

/* Several processes open a new, empty store at the same moment (released
 * together through a pipe): the migrations run once, under the backend's
 * lock, and every process gets a working store. Before the lock, two
 * migrating at once failed with "table sessions already exists". */
STEST(migrations_run_once_when_processes_start_together)
{
    enum { PROCS = 8 };
    int go[2];
    CHECK(pipe(go) == 0);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        CHECK(pids[p] >= 0);
        if (pids[p] == 0) {
            close(go[1]);
            char c;
            if (read(go[0], &c, 1) != 0) _exit(9); /* EOF: the parent let go */
            vd_store *cs;
            vd_error cerr;
            if (vd_store_open(url, NULL, &cs, &cerr) != VD_OK) {
                printf("    child %d: %s\n", p, vd_error_text(&cerr));
                _exit(10);
            }
            vd_session_new in = {.name = "racer", .model = "m"};
            int bad = vd_store_session_create(cs, &in, NULL, &cerr) != VD_OK ? 11 : 0;
            if (vd_store_schema_version(cs) != VD_STORE_SCHEMA_VERSION) bad = 12;
            vd_store_close(cs);
            _exit(bad);
        }
    }
    close(go[0]);
    close(go[1]); /* every child reads EOF at once */
    for (int p = 0; p < PROCS; p++) {
        int status;
        CHECK(waitpid(pids[p], &status, 0) == pids[p]);
        CHECK(WIFEXITED(status));
        CHECK_EQ_INT(WEXITSTATUS(status), 0);
    }
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    CHECK_EQ_INT(vd_store_schema_version(s), VD_STORE_SCHEMA_VERSION);
    vd_session *list;
    size_t n;
    CHECK_OK(vd_store_session_list(s, 0, &list, &n, &err));
    CHECK_EQ_INT(n, PROCS);
    vd_session_list_free(list, n);
    vd_store_close(s);
}

int main(void)
{
    return vd_test_run_all();
}
