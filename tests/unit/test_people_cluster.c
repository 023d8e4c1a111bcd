/* test_people_cluster.c: faces into people (faces/cluster.h): the incremental decision (join,
 * found, wait) and the full re-cluster keeping what the user decided (moves, merges). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "faces/cluster.h"
#include "vdtest.h"

#define DIM 16

/* ---- incremental ------------------------------------------------------------------------- */

static vd_cluster_params params(float max_distance, int min_faces)
{
    vd_cluster_params p = {max_distance, min_faces};
    return p;
}

VD_TEST(params_checked)
{
    vd_error err;
    vd_cluster_params p;
    vd_cluster_params_default(&p);
    CHECK_OK(vd_cluster_params_check(&p, &err));
    p.max_distance = 0.0f;
    CHECK(vd_cluster_params_check(&p, &err) == VD_ERR_INVALID);
    p.max_distance = NAN;
    CHECK(vd_cluster_params_check(&p, &err) == VD_ERR_INVALID);
    p = params(0.4f, 0);
    CHECK(vd_cluster_params_check(&p, &err) == VD_ERR_INVALID);
    CHECK(strstr(err.msg, "min_faces") != NULL);
}

VD_TEST(joins_majority_of_assigned_neighbours)
{
    vd_cluster_params p = params(0.4f, 3);
    vd_cluster_neighbour nb[] = {
        {10, 1.0f, 0},  /* itself: ignored */
        {1, 0.9f, 7},   /* person 7 */
        {2, 0.7f, 8},   /* person 8, twice */
        {3, 0.65f, 8},  /* */
        {4, 0.3f, 9},   /* too far (distance 0.7): no vote */
        {5, 0.31f, 9},  /* */
        {6, 0.32f, 9},  /* */
        {11, 0.95f, 0}, /* unassigned: no vote */
    };
    int64_t person = -1, assign[9];
    size_t n_assign = 0;
    CHECK_EQ_INT(vd_cluster_decide(&p, 10, nb, 8, &person, assign, &n_assign), VD_CLUSTER_JOIN);
    CHECK_EQ_INT(person, 8);
    CHECK_EQ_INT(n_assign, 1);
    CHECK_EQ_INT(assign[0], 10);
}

VD_TEST(join_tie_goes_to_the_closer_person)
{
    vd_cluster_params p = params(0.4f, 3);
    vd_cluster_neighbour nb[] = {{1, 0.7f, 5}, {2, 0.9f, 6}};
    int64_t person = 0, assign[3];
    size_t n_assign = 0;
    CHECK_EQ_INT(vd_cluster_decide(&p, 10, nb, 2, &person, assign, &n_assign), VD_CLUSTER_JOIN);
    CHECK_EQ_INT(person, 6);
}

VD_TEST(founds_with_enough_unassigned_neighbours)
{
    vd_cluster_params p = params(0.4f, 3);
    vd_cluster_neighbour nb[] = {
        {10, 1.0f, 0}, {1, 0.8f, 0}, {2, 0.7f, 0}, {2, 0.7f, 0}, {3, 0.2f, 0}};
    int64_t person = -1, assign[6];
    size_t n_assign = 0;
    CHECK_EQ_INT(vd_cluster_decide(&p, 10, nb, 5, &person, assign, &n_assign), VD_CLUSTER_FOUND);
    CHECK_EQ_INT(person, 0);
    CHECK_EQ_INT(n_assign, 3); /* itself, 1, 2 (once); not 3 (too far) */
    CHECK_EQ_INT(assign[0], 10);
    CHECK_EQ_INT(assign[1], 1);
    CHECK_EQ_INT(assign[2], 2);
}

VD_TEST(waits_without_enough_neighbours)
{
    vd_cluster_params p = params(0.4f, 3);
    vd_cluster_neighbour nb[] = {{10, 1.0f, 0}, {1, 0.8f, 0}, {2, 0.5f, 4}};
    int64_t person = -1, assign[4];
    size_t n_assign = 7;
    /* 2 is assigned but too far (distance 0.5): no join; itself + 1 < 3: no found */
    CHECK_EQ_INT(vd_cluster_decide(&p, 10, nb, 3, &person, assign, &n_assign), VD_CLUSTER_WAIT);
    CHECK_EQ_INT(n_assign, 0);
    CHECK_EQ_INT(person, 0);
    CHECK_EQ_INT(vd_cluster_decide(&p, 10, NULL, 0, &person, assign, &n_assign), VD_CLUSTER_WAIT);
    p.min_faces = 1; /* alone is enough */
    CHECK_EQ_INT(vd_cluster_decide(&p, 10, NULL, 0, &person, assign, &n_assign), VD_CLUSTER_FOUND);
    CHECK_EQ_INT(n_assign, 1);
}

/* ---- full re-cluster --------------------------------------------------------------------- */

typedef struct {
    size_t n;
    float v[64][DIM];
    vd_cluster_face f[64];
} world;

static unsigned rnd_state = 12345;
static float rnd(void)
{
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (float)((rnd_state >> 8) & 0xffff) / 65536.0f - 0.5f;
}

/* Adds a face near axis `axis` (cosine to its axis ~0.99), with a person and an assigned_by. */
static size_t add_face(world *w, int axis, int64_t person, int user)
{
    size_t i = w->n++;
    float norm = 0.0f;
    for (int d = 0; d < DIM; d++) {
        w->v[i][d] = (d == axis ? 1.0f : 0.0f) + 0.1f * rnd();
        norm += w->v[i][d] * w->v[i][d];
    }
    for (int d = 0; d < DIM; d++)
        w->v[i][d] /= sqrtf(norm);
    w->f[i] = (vd_cluster_face){(int64_t)(100 + i), person, user};
    return i;
}

/* Exact search: every face, best first, as a vector index would answer. */
static vd_status near_exact(void *ud, size_t i, size_t cap, int64_t *ids, float *scores, size_t *n,
                            vd_error *err)
{
    (void)err;
    world *w = ud;
    *n = 0;
    for (size_t j = 0; j < w->n; j++) {
        float s = 0.0f;
        for (int d = 0; d < DIM; d++)
            s += w->v[i][d] * w->v[j][d];
        size_t at = *n < cap ? (*n)++ : cap;
        while (at > 0 && scores[at - 1] < s) {
            if (at < cap) {
                scores[at] = scores[at - 1];
                ids[at] = ids[at - 1];
            }
            at--;
        }
        if (at < cap) {
            scores[at] = s;
            ids[at] = w->f[j].id;
        }
    }
    return VD_OK;
}

static vd_status recluster(world *w, int64_t *person, size_t *new_people, vd_error *err)
{
    vd_cluster_params p = params(0.35f, 3);
    vd_cluster_graph g;
    vd_status st = vd_cluster_graph_build(&p, w->f, w->n, 16, near_exact, w, &g, err);
    if (st != VD_OK) return st;
    st = vd_cluster_full(&p, w->f, &g, person, new_people, err);
    vd_cluster_graph_free(&g);
    return st;
}

VD_TEST(recluster_finds_people_and_leaves_noise)
{
    vd_error err;
    world w = {0};
    for (int k = 0; k < 5; k++)
        add_face(&w, 0, 0, 0);
    for (int k = 0; k < 4; k++)
        add_face(&w, 1, 0, 0);
    size_t lone = add_face(&w, 2, 0, 0);
    size_t pair_a = add_face(&w, 3, 0, 0), pair_b = add_face(&w, 3, 0, 0);
    int64_t person[64];
    size_t fresh = 0;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(fresh, 2);
    for (int k = 1; k < 5; k++)
        CHECK_EQ_INT(person[k], person[0]);
    for (int k = 6; k < 9; k++)
        CHECK_EQ_INT(person[k], person[5]);
    CHECK(person[0] < 0 && person[5] < 0 && person[0] != person[5]);
    CHECK_EQ_INT(person[lone], 0);   /* alone: unassigned */
    CHECK_EQ_INT(person[pair_a], 0); /* two faces < min_faces 3: unassigned */
    CHECK_EQ_INT(person[pair_b], 0);
}

VD_TEST(recluster_keeps_existing_people)
{
    vd_error err;
    world w = {0};
    for (int k = 0; k < 4; k++)
        add_face(&w, 0, 7, 0);
    size_t late = add_face(&w, 0, 0, 0); /* waited: joins 7 now */
    int64_t person[64];
    size_t fresh = 9;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(fresh, 0);
    for (size_t k = 0; k <= late; k++)
        CHECK_EQ_INT(person[k], 7);
}

VD_TEST(recluster_keeps_a_user_move)
{
    vd_error err;
    world w = {0};
    for (int k = 0; k < 4; k++)
        add_face(&w, 0, 1, 0);
    for (int k = 0; k < 4; k++)
        add_face(&w, 1, 2, 0);
    /* The user says this face, which looks like person 1's, is person 2's. */
    size_t moved = add_face(&w, 0, 2, 1);
    int64_t person[64];
    size_t fresh = 0;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(person[moved], 2);
    CHECK_EQ_INT(fresh, 0);
    /* The others of the cluster around axis 0 stay person 1's (its majority)... */
    for (int k = 0; k < 4; k++)
        CHECK_EQ_INT(person[k], 1);
    for (int k = 4; k < 8; k++)
        CHECK_EQ_INT(person[k], 2);
    /* ...and with a user face of each person in it, it splits by the nearest anchor (equal
     * hops: the anchor with the smaller face id, face 0). */
    w.f[0].user = 1;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(person[moved], 2);
    for (int k = 0; k < 4; k++)
        CHECK_EQ_INT(person[k], 1);
    for (int k = 4; k < 8; k++)
        CHECK_EQ_INT(person[k], 2);
}

VD_TEST(recluster_user_face_takes_an_unassigned_cluster)
{
    vd_error err;
    world w = {0};
    for (int k = 0; k < 4; k++)
        add_face(&w, 0, 0, 0);
    size_t named = add_face(&w, 0, 4, 1);
    int64_t person[64];
    size_t fresh = 9;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(fresh, 0);
    for (size_t k = 0; k <= named; k++)
        CHECK_EQ_INT(person[k], 4);
}

VD_TEST(recluster_keeps_a_user_merge)
{
    vd_error err;
    world w = {0};
    /* Two looks of one person (two clusters far apart) that the user merged into person 5:
     * the merge moved the faces of the other look into 5, as automatic faces. */
    for (int k = 0; k < 4; k++)
        add_face(&w, 0, 5, 0);
    for (int k = 0; k < 4; k++)
        add_face(&w, 1, 5, 0);
    int64_t person[64];
    size_t fresh = 0;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(fresh, 0); /* not split again */
    for (int k = 0; k < 8; k++)
        CHECK_EQ_INT(person[k], 5);
}

VD_TEST(recluster_user_unassigned_stays_out)
{
    vd_error err;
    world w = {0};
    for (int k = 0; k < 4; k++)
        add_face(&w, 0, 3, 0);
    size_t out = add_face(&w, 0, 0, 1); /* the user took it out of every person */
    int64_t person[64];
    size_t fresh = 0;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(person[out], 0);
    CHECK_EQ_INT(person[0], 3);
}

VD_TEST(recluster_user_face_anchors_a_small_person)
{
    vd_error err;
    world w = {0};
    size_t a = add_face(&w, 4, 9, 1); /* a user face, with one more face of it around */
    size_t b = add_face(&w, 4, 0, 0);
    int64_t person[64];
    size_t fresh = 0;
    CHECK_OK(recluster(&w, person, &fresh, &err));
    CHECK_EQ_INT(person[a], 9);
    CHECK_EQ_INT(person[b], 9); /* a user face is a core */
}

VD_TEST(graph_refuses_unsorted_faces)
{
    vd_error err;
    world w = {0};
    add_face(&w, 0, 0, 0);
    add_face(&w, 0, 0, 0);
    w.f[1].id = w.f[0].id;
    vd_cluster_params p = params(0.35f, 3);
    vd_cluster_graph g;
    CHECK(vd_cluster_graph_build(&p, w.f, w.n, 8, near_exact, &w, &g, &err) == VD_ERR_INVALID);
    vd_cluster_graph_free(&g);
}

int main(void)
{
    return vd_test_run_all();
}
