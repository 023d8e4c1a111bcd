/* test_library.c: the photo library in the store (store/library.h, schema
 * v3): assets by bytes, listing, soft delete and revival, vectors and faces
 * with their seq numbers for the index owners' catch-up, the removals log,
 * people's row operations, the migration of a v2 store, and seq numbers
 * from concurrent writers in forked processes. Every case runs on SQLite
 * and, when $VISIOND_TEST_PG is set, on PostgreSQL (storetest.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/sha256.h"
#include "store/blobs.h"
#include "store/library.h"
#include "store/sessions.h"
#include "store/store.h"
#include "store/store_impl.h" /* the migrations, to build a v2 store */
#include "store/vectors.h"
#include "storetest.h"
#include "vdtest.h"

static void sha_of(const char *text, char hex[65])
{
    uint8_t d[VD_SHA256_LEN];
    vd_sha256(text, strlen(text), d);
    vd_sha256_hex(d, hex);
}

/* Registers the asset whose bytes are `text`; returns its id (0 on failure). */
static int64_t reg(vd_store *s, const char *text, const char *path, const char *folder,
                   int *existed)
{
    char sha[65];
    sha_of(text, sha);
    int64_t id = 0;
    vd_error err;
    if (vd_store_asset_register(s, sha, path, folder, &id, existed, NULL, &err) != VD_OK) {
        printf("    register %s: %s\n", path, vd_error_text(&err));
        return 0;
    }
    return id;
}

STEST(assets_are_their_bytes)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    CHECK_EQ_INT(vd_store_schema_version(s), 3);
    int existed = -1;
    int64_t a = reg(s, "bytes a", "/m/x/a.jpg", "/m/x", &existed);
    CHECK(a > 0);
    CHECK_EQ_INT(existed, 0);
    /* The same bytes under another path are the same asset; nothing changes. */
    int64_t a2 = reg(s, "bytes a", "/m/y/copy.jpg", "/m/y", &existed);
    CHECK_EQ_INT(a2, a);
    CHECK_EQ_INT(existed, 1);
    int64_t b = reg(s, "bytes b", "/m/x/b.jpg", "/m/x", &existed);
    CHECK(b > a);
    CHECK_EQ_INT(existed, 0);
    vd_asset got;
    CHECK_OK(vd_store_asset_get(s, a, 0, &got, &err));
    CHECK_EQ_STR(got.path, "/m/x/a.jpg");
    CHECK_EQ_STR(got.folder, "/m/x");
    CHECK_EQ_INT(got.state, VD_ASSET_PENDING);
    CHECK(got.error == NULL && !got.deleted && got.created_ms > 0 && got.indexed_ms == 0);
    char sha[65];
    sha_of("bytes a", sha);
    CHECK_EQ_STR(got.sha256, sha);
    vd_asset_clear(&got);
    CHECK_EQ_INT(vd_store_asset_get(s, 999, 0, &got, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_asset_register(s, "nothex", "/p", "", &a2, NULL, NULL, &err),
                 VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_asset_register(s, sha, "", "", &a2, NULL, NULL, &err), VD_ERR_INVALID);

    /* States: indexed with a size, error with its message. */
    CHECK_OK(vd_store_asset_set_state(s, a, VD_ASSET_INDEXED, NULL, 640, 480, &err));
    CHECK_OK(vd_store_asset_set_state(s, b, VD_ASSET_ERROR, "image: not a JPEG", 0, 0, &err));
    CHECK_EQ_INT(vd_store_asset_set_state(s, b, VD_ASSET_ERROR, NULL, 0, 0, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_asset_set_state(s, 999, VD_ASSET_PENDING, NULL, 0, 0, &err),
                 VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_asset_get(s, a, 0, &got, &err));
    CHECK(got.state == VD_ASSET_INDEXED && got.width == 640 && got.height == 480);
    CHECK(got.indexed_ms > 0 && got.error == NULL);
    vd_asset_clear(&got);
    CHECK_OK(vd_store_asset_get(s, b, 0, &got, &err));
    CHECK_EQ_INT(got.state, VD_ASSET_ERROR);
    CHECK_EQ_STR(got.error, "image: not a JPEG");
    vd_asset_clear(&got);
    int64_t counts[VD_ASSET__NSTATES];
    CHECK_OK(vd_store_asset_count(s, counts, &err));
    CHECK(counts[VD_ASSET_PENDING] == 0 && counts[VD_ASSET_INDEXED] == 1 &&
          counts[VD_ASSET_ERROR] == 1);
    vd_store_close(s);
}

STEST(assets_list_pages_by_id_folder_and_state)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    const char *folders[] = {"/m/a", "/m/a/b", "/m/ab", "/m/a", "/n", "/m/a/b/c", ""};
    int64_t ids[7];
    for (int i = 0; i < 7; i++) {
        char text[32], path[64];
        snprintf(text, sizeof text, "img %d", i);
        snprintf(path, sizeof path, "%s/%d.jpg", folders[i], i);
        CHECK((ids[i] = reg(s, text, path, folders[i], NULL)) > 0);
    }
    CHECK_OK(vd_store_asset_set_state(s, ids[3], VD_ASSET_INDEXED, NULL, 1, 1, &err));
    vd_asset *l;
    size_t n;
    /* pages of 3 by id cursor */
    vd_asset_filter f = {.limit = 3, .state = -1};
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK(n == 3 && l[0].id == ids[0] && l[2].id == ids[2]);
    f.after_id = l[2].id;
    vd_asset_list_free(l, n);
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK(n == 3 && l[0].id == ids[3]);
    f.after_id = l[2].id;
    vd_asset_list_free(l, n);
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK(n == 1 && l[0].id == ids[6]);
    vd_asset_list_free(l, n);
    /* folder prefix: /m/a holds /m/a, /m/a/b, /m/a/b/c, never /m/ab */
    f = (vd_asset_filter){.folder = "/m/a", .state = -1};
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK_EQ_INT(n, 4);
    for (size_t i = 0; i < n; i++)
        CHECK(strcmp(l[i].folder, "/m/ab") != 0 && strncmp(l[i].folder, "/m/a", 4) == 0);
    vd_asset_list_free(l, n);
    f.folder = "/m/a/"; /* a trailing slash changes nothing */
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK_EQ_INT(n, 4);
    vd_asset_list_free(l, n);
    f.folder = "/"; /* every folder */
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK_EQ_INT(n, 7);
    vd_asset_list_free(l, n);
    f.folder = "/m/a";
    f.state = VD_ASSET_INDEXED;
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK(n == 1 && l[0].id == ids[3]);
    vd_asset_list_free(l, n);
    f = (vd_asset_filter){.folder = "/m/a/b/c", .state = VD_ASSET_PENDING};
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK(n == 1 && l[0].id == ids[5]);
    vd_asset_list_free(l, n);
    f = (vd_asset_filter){.folder = "/nothing", .state = -1};
    CHECK_OK(vd_store_asset_list(s, &f, &l, &n, &err));
    CHECK(n == 0 && l == NULL);
    vd_store_close(s);
}

static int near(float a, float b)
{
    return fabsf(a - b) < 1e-5f;
}

STEST(vectors_since_follow_seq_and_are_normalised)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    int64_t max = -1;
    CHECK_OK(vd_store_library_max_seq(s, &max, &err));
    CHECK_EQ_INT(max, 0);
    int64_t a = reg(s, "va", "/m/a.jpg", "/m", NULL), b = reg(s, "vb", "/m/b.jpg", "/m", NULL);
    float va[4] = {3, 0, 4, 0}, vb[4] = {0, 2, 0, 0};
    int64_t sa = 0, sb = 0, sa2 = 0;
    CHECK_OK(vd_store_asset_vector_put(s, a, "m1", va, 4, &sa, &err));
    CHECK_OK(vd_store_asset_vector_put(s, b, "m1", vb, 4, &sb, &err));
    CHECK(sa > 0 && sb > sa);
    CHECK_OK(vd_store_asset_vector_put(s, a, "m2", vb, 4, NULL, &err));
    vd_asset_vector *v;
    size_t n;
    CHECK_OK(vd_store_asset_vectors_since(s, "m1", 0, 0, &v, &n, &err));
    CHECK(n == 2 && v[0].asset_id == a && v[1].asset_id == b && v[0].seq == sa);
    CHECK(v[0].dim == 4 && near(v[0].vector[0], 0.6f) && near(v[0].vector[2], 0.8f));
    CHECK(near(v[1].vector[1], 1.0f));
    vd_asset_vector_list_free(v, n);
    /* Replacing gives a new, higher seq: a reader past sb sees it again, once. */
    CHECK_OK(vd_store_asset_vector_put(s, a, "m1", vb, 4, &sa2, &err));
    CHECK(sa2 > sb);
    CHECK_OK(vd_store_asset_vectors_since(s, "m1", sb, 0, &v, &n, &err));
    CHECK(n == 1 && v[0].asset_id == a && v[0].seq == sa2 && near(v[0].vector[1], 1.0f));
    vd_asset_vector_list_free(v, n);
    CHECK_OK(vd_store_asset_vectors_since(s, "m1", 0, 1, &v, &n, &err)); /* limit */
    CHECK(n == 1 && v[0].asset_id == b);
    vd_asset_vector_list_free(v, n);
    CHECK_OK(vd_store_library_max_seq(s, &max, &err));
    CHECK_EQ_INT(max, sa2);
    vd_asset_vector one;
    CHECK_OK(vd_store_asset_vector_get(s, b, "m1", &one, &err));
    CHECK(one.seq == sb && one.dim == 4);
    free(one.vector);
    CHECK_EQ_INT(vd_store_asset_vector_get(s, b, "m2", &one, &err), VD_ERR_NOT_FOUND);
    /* Bad vectors are refused: NaN, infinity, zero, no dim. */
    float bad[2] = {NAN, 1}, inf[2] = {INFINITY, 1}, zero[2] = {0, 0};
    CHECK_EQ_INT(vd_store_asset_vector_put(s, a, "m1", bad, 2, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_asset_vector_put(s, a, "m1", inf, 2, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_asset_vector_put(s, a, "m1", zero, 2, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_asset_vector_put(s, a, "m1", va, 0, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_asset_vector_put(s, 999, "m1", va, 4, NULL, &err), VD_ERR_NOT_FOUND);
    /* a refused put takes no number */
    CHECK_OK(vd_store_library_max_seq(s, &max, &err));
    CHECK_EQ_INT(max, sa2);
    vd_store_close(s);
}

/* Two faces with vectors and keypoints. */
static void two_faces(vd_stored_face f[2], float vecs[2][3])
{
    memset(f, 0, 2 * sizeof *f);
    for (int i = 0; i < 2; i++) {
        f[i].box[0] = 10.0f + (float)i;
        f[i].box[1] = 20;
        f[i].box[2] = 30;
        f[i].box[3] = 40;
        f[i].score = 0.9f - 0.1f * (float)i;
        f[i].n_keypoints = 2;
        f[i].keypoints[1][0] = 5.5f;
        f[i].dim = 3;
        f[i].vector = vecs[i];
    }
}

STEST(faces_replace_and_removals_are_logged)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    int64_t a = reg(s, "fa", "/m/a.jpg", "/m", NULL);
    float vecs[2][3] = {{1, 0, 0}, {0, 0, 2}};
    vd_stored_face f[2];
    two_faces(f, vecs);
    int64_t *ids = NULL;
    CHECK_OK(vd_store_asset_faces_put(s, a, "fm", f, 2, &ids, &err));
    CHECK(ids && ids[0] > 0 && ids[1] > ids[0]);
    int64_t old0 = ids[0], old1 = ids[1];
    free(ids);
    vd_library_face *l;
    size_t n;
    CHECK_OK(vd_store_asset_faces(s, a, NULL, 0, &l, &n, &err));
    CHECK(n == 2 && l[0].id == old0 && near(l[1].box[0], 11) && near(l[0].box[3], 40));
    CHECK(l[0].vector == NULL && l[0].dim == 3 && l[1].n_keypoints == 2);
    CHECK(near(l[1].keypoints[1][0], 5.5f) && l[0].person_id == 0);
    CHECK(l[0].assigned_by == VD_ASSIGN_NONE && near(l[0].score, 0.9f));
    vd_library_face_list_free(l, n);
    CHECK_OK(vd_store_library_faces_since(s, "fm", 0, 0, &l, &n, &err));
    CHECK(n == 2 && l[0].seq < l[1].seq && near(l[1].vector[2], 1.0f));
    int64_t seen = l[1].seq;
    vd_library_face_list_free(l, n);
    CHECK_OK(vd_store_library_faces_since(s, "other", 0, 0, &l, &n, &err));
    CHECK_EQ_INT(n, 0);
    /* A retry replaces: one face now, new id, the two old ones logged as removed. */
    CHECK_OK(vd_store_asset_faces_put(s, a, "fm", f, 1, NULL, &err));
    CHECK_OK(vd_store_asset_faces(s, a, "fm", 1, &l, &n, &err));
    CHECK(n == 1 && l[0].id > old1 && l[0].seq > seen && l[0].vector != NULL);
    vd_library_face_list_free(l, n);
    vd_library_removal *r;
    CHECK_OK(vd_store_library_removed_since(s, 0, 0, &r, &n, &err));
    CHECK(n == 2 && r[0].kind == VD_REMOVED_FACE && r[0].id == old0 && r[1].id == old1);
    CHECK(r[0].seq > seen && r[1].seq > r[0].seq);
    free(r);
    vd_library_face face;
    CHECK_EQ_INT(vd_store_library_face_get(s, old0, &face, &err), VD_ERR_NOT_FOUND);
    /* An asset without faces: "scanned, none" is n = 0 */
    CHECK_OK(vd_store_asset_faces_put(s, a, "fm", NULL, 0, NULL, &err));
    CHECK_OK(vd_store_asset_faces(s, a, "fm", 0, &l, &n, &err));
    CHECK_EQ_INT(n, 0);
    float nan3[3] = {NAN, 0, 0};
    f[0].vector = nan3;
    CHECK_EQ_INT(vd_store_asset_faces_put(s, a, "fm", f, 1, NULL, &err), VD_ERR_INVALID);
    f[0].vector = vecs[0];
    f[0].n_keypoints = VD_FACE_MAX_KEYPOINTS + 1;
    CHECK_EQ_INT(vd_store_asset_faces_put(s, a, "fm", f, 1, NULL, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_asset_faces_put(s, 999, "fm", NULL, 0, NULL, &err), VD_ERR_NOT_FOUND);
    vd_store_close(s);
}

STEST(delete_hides_vectors_and_faces_and_register_revives)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    int64_t a = reg(s, "da", "/m/a.jpg", "/m", NULL), b = reg(s, "db", "/m/b.jpg", "/m", NULL);
    float v[3] = {1, 2, 3}, vecs[2][3] = {{1, 0, 0}, {0, 1, 0}};
    vd_stored_face f[2];
    two_faces(f, vecs);
    int64_t *fids, person;
    CHECK_OK(vd_store_asset_vector_put(s, a, "m", v, 3, NULL, &err));
    CHECK_OK(vd_store_asset_vector_put(s, b, "m", v, 3, NULL, &err));
    CHECK_OK(vd_store_asset_faces_put(s, a, "fm", f, 2, &fids, &err));
    CHECK_OK(vd_store_asset_set_state(s, a, VD_ASSET_INDEXED, NULL, 10, 10, &err));
    CHECK_OK(vd_store_person_create(s, "Ann", &person, &err));
    CHECK_OK(vd_store_face_set_person(s, fids[0], person, VD_ASSIGN_USER, &err));
    vd_person_update up = {.hidden = -1, .cover_face_id = fids[0]};
    CHECK_OK(vd_store_person_update(s, person, &up, &err));
    int64_t before = 0;
    CHECK_OK(vd_store_library_max_seq(s, &before, &err));

    CHECK_OK(vd_store_asset_delete(s, a, &err));
    CHECK_EQ_INT(vd_store_asset_delete(s, a, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_asset_delete(s, 999, &err), VD_ERR_NOT_FOUND);
    vd_asset got;
    CHECK_EQ_INT(vd_store_asset_get(s, a, 0, &got, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_asset_get(s, a, 1, &got, &err));
    CHECK(got.deleted && got.deleted_ms > 0);
    vd_asset_clear(&got);
    vd_asset_vector *vl;
    size_t n;
    CHECK_OK(vd_store_asset_vectors_since(s, "m", 0, 0, &vl, &n, &err));
    CHECK(n == 1 && vl[0].asset_id == b);
    vd_asset_vector_list_free(vl, n);
    vd_library_face *fl;
    CHECK_OK(vd_store_library_faces_since(s, "fm", 0, 0, &fl, &n, &err));
    CHECK_EQ_INT(n, 0);
    /* its faces left their person, which lost its cover */
    vd_person p;
    CHECK_OK(vd_store_person_get(s, person, &p, &err));
    CHECK(p.n_faces == 0 && p.cover_face_id == 0);
    CHECK_EQ_STR(p.name, "Ann");
    vd_person_clear(&p);
    /* the removals: the asset, then its two faces, all after `before` */
    vd_library_removal *r;
    CHECK_OK(vd_store_library_removed_since(s, before, 0, &r, &n, &err));
    CHECK(n == 3 && r[0].kind == VD_REMOVED_ASSET && r[0].id == a);
    CHECK(r[1].kind == VD_REMOVED_FACE && r[1].id == fids[0] && r[2].id == fids[1]);
    free(r);
    free(fids);
    /* a deleted asset takes no vector or faces, no state */
    CHECK_EQ_INT(vd_store_asset_vector_put(s, a, "m", v, 3, NULL, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_asset_faces_put(s, a, "fm", f, 1, NULL, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_asset_set_state(s, a, VD_ASSET_INDEXED, NULL, 1, 1, &err),
                 VD_ERR_NOT_FOUND);
    vd_asset_filter all = {.state = -1};
    vd_asset *al;
    CHECK_OK(vd_store_asset_list(s, &all, &al, &n, &err));
    CHECK(n == 1 && al[0].id == b);
    vd_asset_list_free(al, n);
    /* The same bytes registered again: the same id, back as pending, at the new path. */
    int existed = -1;
    vd_asset_state st = VD_ASSET_ERROR;
    char sha[65];
    sha_of("da", sha);
    int64_t again = 0;
    CHECK_OK(vd_store_asset_register(s, sha, "/m2/a.jpg", "/m2", &again, &existed, &st, &err));
    CHECK(again == a && existed == 0 && st == VD_ASSET_PENDING);
    CHECK_OK(vd_store_asset_get(s, a, 0, &got, &err));
    CHECK(!got.deleted && got.state == VD_ASSET_PENDING && got.width == 0);
    CHECK_EQ_STR(got.path, "/m2/a.jpg");
    vd_asset_clear(&got);
    vd_store_close(s);
}

STEST(people_rows)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    int64_t a = reg(s, "pa", "/m/a.jpg", "/m", NULL);
    float vecs[2][3] = {{1, 0, 0}, {0, 1, 0}};
    vd_stored_face f[2];
    two_faces(f, vecs);
    int64_t *fid, p1, p2, p3;
    CHECK_OK(vd_store_asset_faces_put(s, a, "fm", f, 2, &fid, &err));
    CHECK_OK(vd_store_person_create(s, NULL, &p1, &err));
    CHECK_OK(vd_store_person_create(s, "Bob", &p2, &err));
    CHECK_OK(vd_store_person_create(s, "", &p3, &err));
    CHECK(p1 > 0 && p2 > p1 && p3 > p2);
    CHECK_OK(vd_store_face_set_person(s, fid[0], p1, VD_ASSIGN_AUTO, &err));
    CHECK_OK(vd_store_face_set_person(s, fid[1], p2, VD_ASSIGN_USER, &err));
    CHECK_EQ_INT(vd_store_face_set_person(s, fid[1], p2, VD_ASSIGN_NONE, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_face_set_person(s, fid[1], 999, VD_ASSIGN_USER, &err), VD_ERR_NOT_FOUND);
    CHECK_EQ_INT(vd_store_face_set_person(s, 999, p1, VD_ASSIGN_USER, &err), VD_ERR_NOT_FOUND);
    vd_library_face face;
    CHECK_OK(vd_store_library_face_get(s, fid[1], &face, &err));
    CHECK(face.person_id == p2 && face.assigned_by == VD_ASSIGN_USER && face.vector);
    free(face.vector);
    /* list with counts; a hidden one only when asked */
    vd_person_update up = {.set_name = 1, .name = "Al", .hidden = -1, .cover_face_id = fid[0]};
    CHECK_OK(vd_store_person_update(s, p1, &up, &err));
    up = (vd_person_update){.hidden = 1, .cover_face_id = -1};
    CHECK_OK(vd_store_person_update(s, p3, &up, &err));
    up = (vd_person_update){.hidden = -1, .cover_face_id = fid[1]};
    CHECK_EQ_INT(vd_store_person_update(s, p1, &up, &err), VD_ERR_INVALID); /* not its face */
    CHECK_EQ_INT(vd_store_person_update(s, 999, &up, &err), VD_ERR_NOT_FOUND);
    vd_person *pl;
    size_t n;
    CHECK_OK(vd_store_person_list(s, 0, 0, 0, &pl, &n, &err));
    CHECK(n == 2 && pl[0].id == p1 && pl[0].n_faces == 1 && pl[0].cover_face_id == fid[0]);
    CHECK_EQ_STR(pl[0].name, "Al");
    CHECK(pl[1].id == p2 && pl[1].n_faces == 1 && !pl[1].hidden);
    vd_person_list_free(pl, n);
    CHECK_OK(vd_store_person_list(s, 0, 0, 1, &pl, &n, &err));
    CHECK(n == 3 && pl[2].hidden && pl[2].name == NULL && pl[2].n_faces == 0);
    vd_person_list_free(pl, n);
    vd_library_face *fl;
    CHECK_OK(vd_store_person_faces(s, p2, 0, 0, 0, &fl, &n, &err));
    CHECK(n == 1 && fl[0].id == fid[1]);
    vd_library_face_list_free(fl, n);
    /* merge: into itself refused; p1 into p2: p2 keeps its name, takes p1's cover */
    CHECK_EQ_INT(vd_store_person_merge(s, p2, p2, VD_ASSIGN_USER, &err), VD_ERR_INVALID);
    CHECK_EQ_INT(vd_store_person_merge(s, p2, 999, VD_ASSIGN_USER, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_person_merge(s, p2, p1, VD_ASSIGN_USER, &err));
    vd_person p;
    CHECK_EQ_INT(vd_store_person_get(s, p1, &p, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_person_get(s, p2, &p, &err));
    CHECK(p.n_faces == 2 && p.cover_face_id == fid[0]);
    CHECK_EQ_STR(p.name, "Bob");
    vd_person_clear(&p);
    CHECK_OK(vd_store_library_face_get(s, fid[0], &face, &err));
    CHECK(face.person_id == p2 && face.assigned_by == VD_ASSIGN_USER);
    free(face.vector);
    /* taking the cover face out of its person empties the cover; "user said: nobody" stays */
    CHECK_OK(vd_store_face_set_person(s, fid[0], 0, VD_ASSIGN_USER, &err));
    CHECK_OK(vd_store_library_face_get(s, fid[0], &face, &err));
    CHECK(face.person_id == 0 && face.assigned_by == VD_ASSIGN_USER);
    free(face.vector);
    CHECK_OK(vd_store_person_get(s, p2, &p, &err));
    CHECK(p.n_faces == 1 && p.cover_face_id == 0);
    vd_person_clear(&p);
    /* deleting a person unassigns its faces */
    CHECK_OK(vd_store_person_delete(s, p2, &err));
    CHECK_EQ_INT(vd_store_person_delete(s, p2, &err), VD_ERR_NOT_FOUND);
    CHECK_OK(vd_store_library_face_get(s, fid[1], &face, &err));
    CHECK(face.person_id == 0 && face.assigned_by == VD_ASSIGN_NONE);
    free(face.vector);
    free(fid);
    vd_store_close(s);
}

/* A store written by the previous version (v2: sessions, caches, blobs) is
 * migrated in place when opened: its rows stay, the library works. */
STEST(migrates_a_v2_store)
{
    vd_error err;
    int pg = strncmp(url, "postgres", 8) == 0;
    vd_db *db;
    vd_db_opts o = {0};
    CHECK_OK(pg ? vd_db_open_pg(url, &o, &db, &err) : vd_db_open_sqlite(url, &o, &db, &err));
    CHECK_OK(vd_db_migrate_begin(db, &err));
    for (int v = 0; v < 2; v++)
        CHECK_OK(
            vd_db_exec(db, pg ? vd_store_migrations[v].pg : vd_store_migrations[v].sqlite, &err));
    CHECK_OK(vd_db_schema_write(db, 2, &err));
    CHECK_OK(vd_db_migrate_end(db, 1, &err));
    vd_db_close(db);
    /* a v2 store with a session and an embedding */
    vd_store *s;
    char sha[65];
    sha_of("old", sha);
    float v[2] = {1, 2};
    {
        /* Opening migrates; so write v2 rows through SQL of v2 alone first. */
        CHECK_OK(pg ? vd_db_open_pg(url, &o, &db, &err) : vd_db_open_sqlite(url, &o, &db, &err));
        int ver = 0;
        CHECK_OK(vd_db_schema_read(db, &ver, &err));
        CHECK_EQ_INT(ver, 2);
        char sql[400];
        snprintf(sql, sizeof sql,
                 "INSERT INTO sessions (id, name, kind, model, state, created_ms, updated_ms)"
                 " VALUES ('s1', 'old', 'image', 'm', 'succeeded', 1, 1);"
                 "INSERT INTO embeddings (sha256, model, dim, vector, created_ms)"
                 " VALUES ('%s', 'm', 2, %s, 1)",
                 sha, pg ? "'\\x0000803f00000040'::bytea" : "x'0000803f00000040'");
        CHECK_OK(vd_db_exec(db, sql, &err));
        vd_db_close(db);
    }
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    CHECK_EQ_INT(vd_store_schema_version(s), 3);
    vd_session ses;
    CHECK_OK(vd_store_session_get(s, "s1", &ses, &err));
    CHECK_EQ_STR(ses.name, "old");
    vd_session_clear(&ses);
    const char *keys[1] = {sha};
    vd_embedding *e;
    CHECK_OK(vd_store_embeddings_get(s, "m", 2, 1, keys, &e, NULL, &err));
    CHECK(e[0].found && e[0].vector[0] == v[0] && e[0].vector[1] == v[1]);
    vd_embedding_list_free(e, 1);
    int64_t a = reg(s, "new", "/m/new.jpg", "/m", NULL);
    CHECK(a > 0);
    CHECK_OK(vd_store_asset_vector_put(s, a, "m", v, 2, NULL, &err));
    vd_store_close(s);
}

/* Forked writers put vectors and faces at once: every seq is distinct, and a
 * reader paging with "since" sees every row exactly once. */
STEST(seq_from_concurrent_writers_is_distinct)
{
    enum { PROCS = 4, EACH = 15 };
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    vd_store_close(s);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        CHECK(pids[p] >= 0);
        if (pids[p] == 0) {
            vd_store *cs;
            vd_error cerr;
            int bad = 0;
            if (vd_store_open(url, NULL, &cs, &cerr) != VD_OK) _exit(10);
            for (int i = 0; i < EACH && !bad; i++) {
                char text[32];
                snprintf(text, sizeof text, "p%d i%d", p, i);
                int64_t id = reg(cs, text, text, "", NULL);
                float v[2] = {1, (float)i}, fv[2][3] = {{1, 0, 0}, {0, 1, 0}};
                vd_stored_face f[2];
                two_faces(f, fv);
                if (!id || vd_store_asset_vector_put(cs, id, "m", v, 2, NULL, &cerr) != VD_OK)
                    bad = 11;
                if (!bad && vd_store_asset_faces_put(cs, id, "fm", f, 2, NULL, &cerr) != VD_OK)
                    bad = 12;
            }
            if (bad) printf("    child %d: %s\n", p, vd_error_text(&cerr));
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
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    int64_t after = 0, seen = 0, last = 0;
    for (;;) {
        vd_asset_vector *v;
        size_t n;
        CHECK_OK(vd_store_asset_vectors_since(s, "m", after, 7, &v, &n, &err));
        for (size_t i = 0; i < n; i++) {
            CHECK(v[i].seq > last);
            last = v[i].seq;
        }
        seen += (int64_t)n;
        if (n) after = v[n - 1].seq;
        vd_asset_vector_list_free(v, n);
        if (n == 0) break;
    }
    CHECK_EQ_INT(seen, PROCS * EACH);
    vd_library_face *fl;
    size_t nf;
    CHECK_OK(vd_store_library_faces_since(s, "fm", 0, 0, &fl, &nf, &err));
    CHECK_EQ_INT(nf, 2 * PROCS * EACH);
    for (size_t i = 1; i < nf; i++)
        CHECK(fl[i].seq > fl[i - 1].seq);
    vd_library_face_list_free(fl, nf);
    vd_store_close(s);
}

/* An uploaded asset keeps its blob from the garbage collection while it lives. */
STEST(uploaded_asset_keeps_its_blob)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    char sha[65];
    CHECK_OK(vd_store_blob_put(s, "jpeg bytes", 10, sha, NULL, &err));
    char *ref = vd_blob_ref_new(sha, "a.jpg");
    int64_t id = 0;
    CHECK_OK(vd_store_asset_register(s, sha, ref, "", &id, NULL, NULL, &err));
    free(ref);
    size_t removed = 9;
    CHECK_OK(vd_store_blobs_gc(s, -1, &removed, &err));
    CHECK_EQ_INT(removed, 0);
    CHECK_OK(vd_store_asset_delete(s, id, &err));
    CHECK_OK(vd_store_blobs_gc(s, -1, &removed, &err));
    CHECK_EQ_INT(removed, 1);
    vd_store_close(s);
}

int main(void)
{
    return vd_test_run_all();
}
