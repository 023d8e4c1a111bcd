/* test_people.c: faces into people on a real store (SQLite, and PostgreSQL when
 * $VISIOND_TEST_PG is set): the incremental placement of new faces through a vector index
 * (service/people.h), the conditional writes (store/people.h) that keep two processes from
 * fighting, and the re-cluster (pipeline/people.h) keeping a user's move and merge. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sha256.h"
#include "pipeline/people.h"
#include "service/people.h"
#include "store/library.h"
#include "store/people.h"
#include "store/store.h"
#include "storetest.h"
#include "vdtest.h"
#include "vindex/vindex.h"

#define DIM 16

static unsigned rnd_state = 99;
static float rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (float)((rnd_state >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* A unit vector near axis `axis`. */
static void near_axis(int axis, float *v)
{
    float norm = 0.0f;
    for (int d = 0; d < DIM; d++) {
        v[d] = (d == axis ? 1.0f : 0.0f) + 0.1f * rnd();
        norm += v[d] * v[d];
    }
    for (int d = 0; d < DIM; d++)
        v[d] /= sqrtf(norm);
}

/* A photo with one face near axis; returns the face's id (0 on failure). v gets its vector. */
static int64_t add_photo(vd_store *s, int axis, float *v)
{
    static int k;
    char text[64], sha[65], path[64];
    uint8_t d[VD_SHA256_LEN];
    snprintf(text, sizeof text, "photo %d", ++k);
    snprintf(path, sizeof path, "/m/p%d.jpg", k);
    vd_sha256(text, strlen(text), d);
    vd_sha256_hex(d, sha);
    int64_t asset = 0, *ids = NULL, id = 0;
    vd_error err;
    near_axis(axis, v);
    vd_stored_face f = {.box = {10, 10, 50, 50}, .score = 0.9f, .dim = DIM, .vector = v};
    if (vd_store_asset_register(s, sha, path, "/m", &asset, NULL, NULL, &err) == VD_OK &&
        vd_store_asset_faces_put(s, asset, "faceres", &f, 1, &ids, &err) == VD_OK)
        id = ids[0];
    else
        printf("    add_photo: %s\n", vd_error_text(&err));
    free(ids);
    return id;
}

static int64_t person_of(vd_store *s, int64_t face)
{
    int64_t p = -1;
    vd_error err;
    if (vd_store_faces_people(s, &face, 1, &p, NULL, &err) != VD_OK) return -1;
    return p;
}

static vd_cluster_params params(void)
{
    vd_cluster_params p = {0.35f, 3};
    return p;
}

STEST(incremental_waits_founds_joins)
{
    vd_error err;
    vd_store *s;
    vd_vindex *ix;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    CHECK_OK(vd_vindex_new(DIM, VD_VINDEX_EXACT, &ix, &err));
    vd_cluster_params p = params();
    float v[8][DIM];
    int64_t f[8];
    vd_people_assign_stats st;
    /* Two faces of one person: not enough to found one (min_faces 3). */
    for (int i = 0; i < 2; i++) {
        f[i] = add_photo(s, 0, v[i]);
        CHECK_OK(vd_vindex_add(ix, 1, &f[i], v[i], &err));
        CHECK_OK(vd_people_assign_new(s, ix, &p, &f[i], 1, &st, &err));
        CHECK_EQ_INT(st.waiting, 1);
    }
    /* The third founds the person, with the two that waited. */
    f[2] = add_photo(s, 0, v[2]);
    CHECK_OK(vd_vindex_add(ix, 1, &f[2], v[2], &err));
    CHECK_OK(vd_people_assign_new(s, ix, &p, &f[2], 1, &st, &err));
    CHECK_EQ_INT(st.founded, 1);
    int64_t who = person_of(s, f[2]);
    CHECK(who > 0);
    CHECK_EQ_INT(person_of(s, f[0]), who);
    CHECK_EQ_INT(person_of(s, f[1]), who);
    /* A fourth joins it; a face of someone else waits. */
    f[3] = add_photo(s, 0, v[3]);
    f[4] = add_photo(s, 5, v[4]);
    CHECK_OK(vd_vindex_add(ix, 1, &f[3], v[3], &err));
    CHECK_OK(vd_vindex_add(ix, 1, &f[4], v[4], &err));
    CHECK_OK(vd_people_assign_new(s, ix, &p, &f[3], 2, &st, &err));
    CHECK_EQ_INT(st.joined, 1);
    CHECK_EQ_INT(st.waiting, 1);
    CHECK_EQ_INT(person_of(s, f[3]), who);
    CHECK_EQ_INT(person_of(s, f[4]), 0);
    /* Placing the same faces again (a second API process) changes nothing. */
    CHECK_OK(vd_people_assign_new(s, ix, &p, f, 5, &st, &err));
    CHECK_EQ_INT(st.joined + st.founded, 0);
    CHECK_EQ_INT(person_of(s, f[3]), who);
    vd_vindex_free(ix);
    vd_store_close(s);
}

STEST(conditional_writes_never_fight)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    float v[3][DIM];
    int64_t f[3] = {add_photo(s, 1, v[0]), add_photo(s, 1, v[1]), add_photo(s, 1, v[2])};
    int64_t a = 0, b = 0;
    size_t taken = 0;
    CHECK_OK(vd_store_person_found(s, f, 2, &a, &taken, &err));
    CHECK(a > 0);
    CHECK_EQ_INT(taken, 2);
    /* Another process founds with the same founder: nothing created. */
    CHECK_OK(vd_store_person_found(s, f, 3, &b, &taken, &err));
    CHECK_EQ_INT(b, 0);
    int changed = 1;
    CHECK_OK(vd_store_face_claim(s, f[0], a, &changed, &err));
    CHECK_EQ_INT(changed, 0); /* already placed */
    /* The user takes f[2] out of every person: the clusterer never takes it again. */
    CHECK_OK(vd_store_face_set_person(s, f[2], 0, VD_ASSIGN_USER, &err));
    CHECK_OK(vd_store_face_claim(s, f[2], a, &changed, &err));
    CHECK_EQ_INT(changed, 0);
    /* A move of a face that changed meanwhile changes nothing. */
    CHECK_OK(vd_store_face_move_auto(s, f[1], 12345, 0, &changed, &err));
    CHECK_EQ_INT(changed, 0);
    CHECK_EQ_INT(person_of(s, f[1]), a);
    vd_store_close(s);
}

STEST(recluster_keeps_user_move_and_merge)
{
    vd_error err;
    vd_store *s;
    CHECK_OK(vd_store_open(url, NULL, &s, &err));
    vd_cluster_params p = params();
    float v[DIM];
    int64_t g0[4], g1[4], g2[4];
    for (int i = 0; i < 4; i++) {
        g0[i] = add_photo(s, 0, v);
        g1[i] = add_photo(s, 1, v);
        g2[i] = add_photo(s, 2, v);
    }
    vd_people_recluster_stats r;
    CHECK_OK(vd_people_recluster(s, "faceres", &p, NULL, &r, &err));
    CHECK_EQ_INT(r.faces, 12);
    CHECK_EQ_INT(r.new_people, 3);
    int64_t p0 = person_of(s, g0[0]), p1 = person_of(s, g1[0]), p2 = person_of(s, g2[0]);
    CHECK(p0 > 0 && p1 > 0 && p2 > 0 && p0 != p1 && p1 != p2);
    /* The user merges p2 into p1 (two looks of one person, say) and moves g0[3] to p1. */
    const char *why = NULL;
    int64_t from = p1;
    CHECK(vd_people_merge(s, p1, &from, 1, &why, &err) == VD_ERR_INVALID);
    CHECK_EQ_STR(why, "merge_into_itself");
    from = p2;
    CHECK_OK(vd_people_merge(s, p1, &from, 1, &why, &err));
    CHECK_OK(vd_people_move_face(s, g0[3], p1, &why, &err));
    CHECK_OK(vd_people_recluster(s, "faceres", &p, NULL, &r, &err));
    CHECK_EQ_INT(r.new_people, 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ_INT(person_of(s, g1[i]), p1);
        CHECK_EQ_INT(person_of(s, g2[i]), p1); /* the merge stays */
    }
    CHECK_EQ_INT(person_of(s, g0[3]), p1); /* the move stays */
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(person_of(s, g0[i]), p0);
    vd_person q;
    memset(&q, 0, sizeof q);
    CHECK(vd_store_person_get(s, p2, &q, &err) == VD_ERR_NOT_FOUND);
    vd_store_close(s);
}

int main(void)
{
    return vd_test_run_all();
}
